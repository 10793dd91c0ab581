//! In-app notifications (`/notifications`) and the preferences (`/profile/notifications`).

use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::NoticeKind;
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::views::{datetime, ok, see_other, Layout};
use crate::web::{AppState, WebError};

pub struct NotificationRow {
    pub id: crate::domain::NoticeId,
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
    let rows = state
        .notices.notifications(me.user.user.id)
        .await?
        .into_iter()
        .map(|n| {
            let expires = n.expires_at.map(datetime).unwrap_or_default();
            let text = match n.kind {
                NoticeKind::Leaked if n.token_deleted => format!(
                    "Security alert: API token \"{}\" was found at {} and revoked. Remove it from there and create a replacement.",
                    n.token_name,
                    n.detail.as_deref().unwrap_or("an unnamed place")
                ),
                NoticeKind::Leaked => format!(
                    "Security alert: API token \"{}\" was found at {}. It still works (your account only reports leaks): delete it now.",
                    n.token_name,
                    n.detail.as_deref().unwrap_or("an unnamed place")
                ),
                NoticeKind::Idle => format!(
                    "API token \"{}\" hasn't been used for a long time: the account's policy revokes it on {} unless it is used before.",
                    n.token_name,
                    n.detail.as_deref().unwrap_or("a date soon")
                ),
                NoticeKind::Quota => format!(
                    "API token \"{}\" has used 80 % of its usage quota: {}. At 100 % it is refused until the refill.",
                    n.token_name,
                    n.detail.as_deref().unwrap_or("most of its quota")
                ),
                NoticeKind::Deprovisioned => format!(
                    "API token \"{}\" was deleted: {}.",
                    n.token_name,
                    n.detail.as_deref().unwrap_or("its issuer was deprovisioned")
                ),
                _ => format!(
                    "API token \"{}\" expires {} ({expires}).",
                    n.token_name,
                    n.kind.when()
                ),
            };
            NotificationRow {
                id: n.id,
                unread: n.unread,
                text,
                token_link: format!("/profile/api-tokens/{}", n.token_id),
                created: datetime(n.created_at),
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
    /// One notification, or all when absent.
    id: Option<String>,
}

#[post("/notifications/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<ReadForm>,
) -> Result<HttpResponse, WebError> {
    let id = match form.id.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(
            raw.parse::<crate::domain::NoticeId>()
                .map_err(|_| WebError::NotFound)?,
        ),
        None => None,
    };
    state.notices.mark_read(me.user.user.id, id).await?;
    Ok(see_other("/notifications"))
}

#[derive(Template)]
#[template(path = "notification_settings.html")]
struct SettingsPage {
    layout: Layout,
    token_expiry_email: bool,
    /// Administrators: what the next expiry e-mail would say (subject, text), if any.
    preview: Option<(String, String)>,
    show_preview: bool,
}

#[get("/profile/notifications")]
pub async fn settings(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, WebError> {
    let token_expiry_email = me.user.user.token_expiry_email;
    let show_preview = me.actor().role == crate::domain::Role::Administrators;
    let preview = if show_preview {
        state
            .notices
            .next_digest(me.user.user.id)
            .await?
            .map(|r| (r.subject, r.text))
    } else {
        None
    };
    ok(&SettingsPage {
        layout: me.layout("notification-settings"),
        token_expiry_email,
        preview,
        show_preview,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsForm {
    /// A checkbox: present ("on") when checked, absent when not.
    token_expiry_email: Option<String>,
}

#[post("/profile/notifications")]
pub async fn save_settings(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<SettingsForm>,
) -> Result<HttpResponse, WebError> {
    let on = form.token_expiry_email.is_some();
    state.notices.set_expiry_email(me.user.user.id, on).await?;
    me.session.set_flash(if on {
        "Saved: you will get e-mails 7 days and 1 day before an API token expires."
    } else {
        "Saved: no more e-mails about expiring API tokens. You still see them under Notifications."
    });
    Ok(see_other("/profile/notifications"))
}
