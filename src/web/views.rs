//! What templates need beyond their own fields: the page frame and display formats.

use actix_web::http::header;
use actix_web::HttpResponse;
use askama::Template;
use time::OffsetDateTime;

use super::WebError;

/// The frame around every signed-in page.
pub struct Layout {
    pub account_name: String,
    pub user_name: String,
    pub user_email: String,
    pub role_name: &'static str,
    pub is_admin: bool,
    pub csrf_token: String,
    /// Which navigation item is current.
    pub nav: &'static str,
    pub flash: Option<String>,
    /// Unread in-app notifications.
    pub unread: i64,
    /// Tokens the user can see that expire within 7 days (the badge on "API tokens").
    pub expiring_soon: i64,
}

impl Layout {
    /// The badge's words: "1 token expires within 7 days", "3 tokens expire ...".
    pub fn expiring_label(&self) -> String {
        let verb = if self.expiring_soon == 1 {
            "expires"
        } else {
            "expire"
        };
        format!(
            "{} {verb} within 7 days",
            crate::domain::count(self.expiring_soon, "token", "tokens")
        )
    }
}

/// `2026-12-31 23:59 UTC`.
pub fn datetime(at: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.format(&f).unwrap_or_default()
}

/// `2026-12-31`.
pub fn date(at: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    at.format(&f).unwrap_or_default()
}

/// Renders a page with a status. Pages are personal, so nothing is cached.
pub fn render<T: Template>(
    status: actix_web::http::StatusCode,
    page: &T,
) -> Result<HttpResponse, WebError> {
    let body = page.render().map_err(|e| WebError::Internal(e.into()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

pub fn ok<T: Template>(page: &T) -> Result<HttpResponse, WebError> {
    render(actix_web::http::StatusCode::OK, page)
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}
