//! In-app notifications (`/notifications`) and the preferences (`/profile/notifications`).

use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::repo::notices::Notice;
use crate::repo::User;
use crate::services::notifier::NoticeKind;
use crate::web::auth::SignedIn;
use crate::web::views::{datetime, ok, see_other, Layout};
use crate::web::{AppState, WebError};

pub struct NotificationRow {
    pub id: i64,
    pub unread: bool,
    pub text: String,
    pub token_link: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    layout: Layout,
    rows: Vec<NotificationRow>,
}

#[get("/notifications")]
pub async fn list(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, WebError> {
    let user_id = me.user.user.id;
    let rows = state
        .db(move |conn| Ok(Notice::for_user(conn, user_id, 200)?))
        .await?;
    let rows = rows
        .into_iter()
        .map(|(n, t)| {
            let when = NoticeKind::parse(&n.kind)
                .map(NoticeKind::when)
                .unwrap_or("soon");
            let expires = t
                .expires_at
                .map(|at| datetime(at.assume_utc()))
                .unwrap_or_default();
            NotificationRow {
                id: n.id,
                unread: n.read_at.is_none(),
                text: format!("API token \"{}\" expires {when} ({expires}).", t.name),
                token_link: format!("/profile/api-tokens?token={}", t.id),
                created: datetime(n.created_at.assume_utc()),
            }
        })
        .collect();
    ok(&NotificationsPage {
        layout: me.layout("notifications"),
        rows,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ReadForm {
    #[serde(default)]
    csrf_token: String,
    /// One notification, or all when absent.
    id: Option<String>,
}

#[post("/notifications/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<ReadForm>,
) -> Result<HttpResponse, WebError> {
    me.session.check_csrf(&form.csrf_token)?;
    let id = match form.id.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| WebError::NotFound)?),
        None => None,
    };
    let user_id = me.user.user.id;
    let now = crate::domain::token::to_naive(state.clock.now());
    state
        .db(move |conn| Ok(Notice::mark_read(conn, user_id, id, now)?))
        .await?;
    Ok(see_other("/notifications"))
}

#[derive(Template)]
#[template(path = "notification_settings.html")]
struct SettingsPage {
    layout: Layout,
    token_expiry_email: bool,
}

#[get("/profile/notifications")]
pub async fn settings(me: SignedIn) -> Result<HttpResponse, WebError> {
    let token_expiry_email = me.user.user.token_expiry_email;
    ok(&SettingsPage {
        layout: me.layout("notification-settings"),
        token_expiry_email,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf_token: String,
    /// A checkbox: present ("on") when checked, absent when not.
    token_expiry_email: Option<String>,
}

#[post("/profile/notifications")]
pub async fn save_settings(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, WebError> {
    me.session.check_csrf(&form.csrf_token)?;
    let on = form.token_expiry_email.is_some();
    let user_id = me.user.user.id;
    state
        .db(move |conn| Ok(User::set_token_expiry_email(conn, user_id, on)?))
        .await?;
    me.session.set_flash(if on {
        "Saved: you will get e-mails 7 days and 1 day before an API token expires."
    } else {
        "Saved: no more e-mails about expiring API tokens. You still see them under Notifications."
    });
    Ok(see_other("/profile/notifications"))
}
