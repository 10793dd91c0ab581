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
    /// Webhook endpoints the service turned off (Administrators; the badge on "Webhooks").
    pub webhooks_off: i64,
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
    crate::domain::text::utc_minute(at)
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

/// A refused form's error summary, as GOV.UK and GitHub show one: at the top of the form,
/// taking focus when the page loads (app.js; `autofocus` without it), so the person sees why
/// without scrolling, with a link to each field that needs them.
#[derive(Debug, Clone, Default, Template)]
#[template(path = "error_summary.html")]
pub struct ErrorSummary {
    /// The summary's own id (unique on the page): `error-summary-<form>`.
    pub id: &'static str,
    /// (the field's id, the message); an empty id: a message about the whole form.
    pub items: Vec<(&'static str, String)>,
}

impl ErrorSummary {
    pub fn new(id: &'static str) -> ErrorSummary {
        ErrorSummary {
            id,
            items: Vec::new(),
        }
    }

    /// One message about `field` (the id of its input).
    pub fn one(id: &'static str, field: &'static str, message: impl Into<String>) -> ErrorSummary {
        ErrorSummary {
            id,
            items: vec![(field, message.into())],
        }
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.items.push((field, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The message about `field`, to repeat beside it.
    pub fn about(&self, field: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// The markup (the template escapes: the messages may repeat what was typed).
    pub fn html(&self) -> String {
        askama::Template::render(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn a_summary_links_each_field_and_escapes_what_was_typed() {
        let mut s = ErrorSummary::new("error-summary-edit");
        s.add("name", "<script>x</script> is not a name");
        s.add("", "Try again & again");
        let html = s.html();
        assert!(html.contains("href=\"#name\""), "{html}");
        assert!(
            html.contains("&#60;script&#62;") && !html.contains("<script>"),
            "{html}"
        );
        assert!(html.contains("Try again &#38; again"), "{html}");
        assert!(html.contains("data-error-summary") && html.contains("tabindex=\"-1\""));
        assert_eq!(s.about("name"), Some("<script>x</script> is not a name"));
        assert_eq!(ErrorSummary::new("x").html(), "");
    }
}
