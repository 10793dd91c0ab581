//! Account → Activity (Administrators): the account's audit trail, filtered and paged.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::tokens::EventLine;
use crate::domain::TokenId;
use crate::web::auth::SignedIn;
use crate::web::views::{render, Layout};
use crate::web::{AppState, WebError};

/// Events per page.
const PAGE: i64 = 50;

/// The kinds of event one can filter on: (prefix, label).
const KINDS: [(&str, &str); 7] = [
    ("token.", "Tokens"),
    ("user.", "Users"),
    ("account.", "Account settings"),
    ("scim.", "SCIM"),
    ("tokens.", "Tokens deleted with a user"),
    ("sso.", "Single sign-on"),
    ("webhook.", "Webhooks"),
];

pub struct KindChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    layout: Layout,
    events: Vec<EventLine>,
    kinds: Vec<KindChoice>,
    token: String,
    total: i64,
    from: i64,
    to: i64,
    newer: Option<String>,
    older: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ActivityQuery {
    kind: Option<String>,
    token: Option<String>,
    offset: Option<String>,
}

#[get("/activity")]
pub async fn activity(
    state: web::Data<AppState>,
    me: SignedIn,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let bad = |what: &str| WebError::BadRequest(format!("The {what} in the address isn't valid."));
    let kind = match query
        .kind
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        None => None,
        Some(k) => Some(
            KINDS
                .iter()
                .find(|(prefix, _)| *prefix == k)
                .map(|(prefix, _)| *prefix)
                .ok_or_else(|| bad("kind of event"))?,
        ),
    };
    let token = match query
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(t) => Some(t.parse::<TokenId>().map_err(|_| bad("token id"))?),
    };
    let offset = match query
        .offset
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        None => 0,
        Some(o) => o
            .parse::<i64>()
            .ok()
            .filter(|o| (0..=10_000_000).contains(o))
            .ok_or_else(|| bad("page"))?,
    };
    let (events, total) = state
        .audit
        .activity(me.actor(), kind.map(str::to_owned), token, PAGE, offset)
        .await?;
    let link = |offset: i64| {
        let mut params = vec![];
        if let Some(k) = kind {
            params.push(format!("kind={k}"));
        }
        if let Some(t) = token {
            params.push(format!("token={t}"));
        }
        params.push(format!("offset={offset}"));
        format!("/activity?{}", params.join("&"))
    };
    let shown = events.len() as i64;
    let page = ActivityPage {
        layout: me.layout("activity"),
        kinds: KINDS
            .iter()
            .map(|(value, label)| KindChoice {
                value,
                label,
                selected: kind == Some(*value),
            })
            .collect(),
        token: token.map(|t| t.to_string()).unwrap_or_default(),
        total,
        from: if shown == 0 { 0 } else { offset + 1 },
        to: offset + shown,
        newer: (offset > 0).then(|| link((offset - PAGE).max(0))),
        older: (offset + shown < total).then(|| link(offset + PAGE)),
        events: events.into_iter().map(EventLine::of).collect(),
    };
    render(StatusCode::OK, &page)
}
