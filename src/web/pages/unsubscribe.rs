//! The one-click unsubscribe of expiry e-mails (RFC 8058), reached from the mail without a
//! session. The link's signed value is the authority (`domain::unsubscribe`), so there is no
//! CSRF token: the value can only do this one thing for this one person.
//!
//! `GET` only shows a page with a button (link scanners and previews fetch links; they must
//! not unsubscribe anyone); `POST` does it, from the page's button or straight from the
//! mail program (`List-Unsubscribe=One-Click`).

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::web::views::render;
use crate::web::{AppState, WebError};

#[derive(Template)]
#[template(path = "unsubscribe.html")]
struct UnsubscribePage {
    done: bool,
    email: String,
    value: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct UnsubscribeQuery {
    #[serde(default)]
    t: String,
}

fn invalid() -> WebError {
    WebError::BadRequest(
        "This unsubscribe link is not valid. Turn expiry e-mails off under Profile → Notifications instead.".into(),
    )
}

/// Longest value read; ours are far shorter.
const MAX_VALUE: usize = 128;

fn page(page: &UnsubscribePage) -> Result<HttpResponse, WebError> {
    let mut response = render(StatusCode::OK, page)?;
    // The link names a person: keep it out of other sites' Referer headers.
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

#[get("/unsubscribe")]
pub async fn show(
    state: web::Data<AppState>,
    query: web::Query<UnsubscribeQuery>,
) -> Result<HttpResponse, WebError> {
    let value = query.into_inner().t;
    if value.len() > MAX_VALUE {
        return Err(invalid());
    }
    let email = state
        .notices
        .unsubscribe_target(value.clone())
        .await?
        .ok_or_else(invalid)?;
    page(&UnsubscribePage {
        done: false,
        email,
        value,
    })
}

#[post("/unsubscribe")]
pub async fn submit(
    state: web::Data<AppState>,
    query: web::Query<UnsubscribeQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let value = query.into_inner().t;
    if value.len() > MAX_VALUE {
        return Err(invalid());
    }
    let how = if body.as_ref() == b"List-Unsubscribe=One-Click" {
        "with one click in the mail program"
    } else {
        "on the unsubscribe page"
    };
    let email = state
        .notices
        .unsubscribe(value.clone(), how)
        .await?
        .ok_or_else(invalid)?;
    page(&UnsubscribePage {
        done: true,
        email,
        value,
    })
}
