//! The page behind an invitation's one-time set-password link.

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::input::NewPassword;
use crate::domain::secret::is_secret_hex;
use crate::error::ServiceError;
use crate::web::csrf::CsrfForm;
use crate::web::session::TypedSession;
use crate::web::views::{render, see_other};
use crate::web::{AppState, WebError};

#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPasswordPage {
    csrf_token: String,
    token: String,
    email: String,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

fn invalid_link() -> WebError {
    WebError::BadRequest("This link is not valid any more: it was used, or it expired (an invitation's link works for 72 hours, a reset link for one hour). Ask for a new one with \"Forgot password?\" on the sign-in page.".into())
}

fn well_formed(token: &str) -> bool {
    is_secret_hex(token)
}

#[get("/set-password")]
pub async fn show(
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, WebError> {
    let token = query.into_inner().token;
    if !well_formed(&token) {
        return Err(invalid_link());
    }
    let user = state
        .people
        .setup_user(token.clone())
        .await?
        .ok_or_else(invalid_link)?;
    let page = SetPasswordPage {
        csrf_token: session.csrf_token(),
        token,
        email: user.email,
        error: None,
    };
    let mut response = render(StatusCode::OK, &page)?;
    // The link is a credential: keep it out of other sites' Referer headers.
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

#[post("/set-password")]
pub async fn submit(
    state: web::Data<AppState>,
    session: TypedSession,
    form: CsrfForm<SetupForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    if !well_formed(&form.token) {
        return Err(invalid_link());
    }
    let again = |error: &str| {
        let page = SetPasswordPage {
            csrf_token: session.csrf_token(),
            token: form.token.clone(),
            email: form.email.chars().take(254).collect(),
            error: Some(error.to_string()),
        };
        render(StatusCode::BAD_REQUEST, &page)
    };
    let password = match NewPassword::parse(&form.password) {
        Ok(p) => p,
        Err(message) => return again(&message),
    };
    if form.password != form.confirm {
        return again("The two passwords are different.");
    }
    match state
        .people
        .set_password(form.token.clone(), password.expose().to_owned())
        .await
    {
        Ok(_) => Ok(see_other("/login?password_set=1")),
        Err(ServiceError::Invalid(_)) => Err(invalid_link()),
        Err(e) => Err(e.into()),
    }
}
