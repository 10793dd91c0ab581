//! Errors at the web edge, each rendered as a page with the right status.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::error::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not signed in: redirect to the sign-in page, and back to `next` afterwards.
    #[error("sign-in required")]
    SignInRequired { next: Option<String> },
    /// The account requires a second factor this person hasn't set up: to Profile → Security.
    #[error("two-factor enrolment required")]
    MustEnrol,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The database can't be reached (or can't take the work) right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Too many password checks in flight (`PasswordWork`).
    #[error("busy")]
    Busy,
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => WebError::NotFound,
            ServiceError::Forbidden(m) => WebError::Forbidden(m),
            ServiceError::Invalid(fields) => WebError::BadRequest(
                fields
                    .into_iter()
                    .map(|(_, m)| m)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ServiceError::Conflict(m) => WebError::BadRequest(m),
            ServiceError::TokensInTheWay { tokens, .. } => WebError::BadRequest(format!(
                "The user's active tokens are in the way: {}.",
                tokens
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),

            ServiceError::Unavailable(why) => WebError::Unavailable(why),
            ServiceError::Busy => WebError::Busy,
            ServiceError::Database(e) => WebError::Internal(e.into()),
            ServiceError::Internal(e) => WebError::Internal(e),
        }
    }
}

/// What a person or a script is told while the database can't be reached. Nothing was
/// changed, and the same request can simply be sent again.
pub const UNAVAILABLE_MESSAGE: &str =
    "The service can't reach its database right now, so nothing was changed. Try again in a few seconds.";
/// What a person or a script is told when too many passwords are being checked at once.
pub const BUSY_MESSAGE: &str =
    "Too many sign-ins are being checked right now, so this one wasn't. Try again in a few seconds.";
/// `Retry-After` on a 503, in seconds.
pub const RETRY_AFTER_SECS: u32 = 2;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignInRequired { .. } | WebError::MustEnrol => StatusCode::SEE_OTHER,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Unavailable(_) | WebError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::MustEnrol = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/profile/security?required=1"))
                .finish();
        }
        if let WebError::SignInRequired { next } = self {
            let location = match next {
                Some(next) => format!(
                    "/login?{}",
                    serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
                ),
                None => "/login".into(),
            };
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        let (title, message) = match self {
            WebError::NotFound => (
                "Page not found",
                "There is nothing here, or you may not see it.",
            ),
            WebError::Forbidden(m) => ("Not allowed", m.as_str()),
            WebError::BadRequest(m) => ("That didn't work", m.as_str()),
            WebError::PayloadTooLarge(m) => ("Too large", m.as_str()),
            WebError::Busy => ("Busy", BUSY_MESSAGE),
            WebError::Unavailable(why) => {
                tracing::debug!(error = %why, "answered 503");
                ("Temporarily unavailable", UNAVAILABLE_MESSAGE)
            }
            WebError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    "Something went wrong",
                    "Something went wrong on our side. Try again in a moment.",
                )
            }
            WebError::SignInRequired { .. } | WebError::MustEnrol => unreachable!("handled above"),
        };
        let status = self.status_code();
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message,
        };
        let body = page.render().unwrap_or_else(|_| message.to_string());
        let mut response = HttpResponse::build(status);
        if matches!(self, WebError::Unavailable(_) | WebError::Busy) {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
        }
        response.content_type("text/html; charset=utf-8").body(body)
    }
}
