//! Errors of the JSON API, in Gcore's shapes: `{"message": ...}` or `{"errors": {...}}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::body::BodyErrors;

use crate::error::{Blocker, ServiceError};
use crate::web::error::{BUSY_MESSAGE, RETRY_AFTER_SECS, UNAVAILABLE_MESSAGE};

pub const UNAUTHORIZED_MESSAGE: &str =
    "Authentication credentials were not provided or are not valid.";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One body for every authentication failure.
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// `{"errors": {...}}`, field → list of messages (nested for `client_user.role`).
    #[error("validation failed")]
    Validation(Value),
    /// 429, with how long to wait (`Retry-After`, whole seconds, at least 1).
    #[error("{0}")]
    TooManyRequests(String, std::time::Duration),
    /// 429: a token over its rate limit, with `Retry-After` and the IETF `RateLimit` headers.
    #[error("rate limited")]
    RateLimited(crate::domain::rate::RateLimit, std::time::Duration),
    /// 429: a token whose usage quota is spent, with `Retry-After` until the refill (none: it
    /// never refills).
    #[error("quota spent")]
    QuotaSpent(Option<std::time::Duration>),
    /// A signed request (a leak report) whose signature doesn't hold: 401 with why.
    #[error("{0}")]
    BadSignature(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("busy")]
    Busy,
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

/// Where an endpoint puts a service's field errors: (service field, path in the body).
/// A field not listed keeps its own name.
pub type FieldPaths = &'static [(&'static str, &'static [&'static str])];

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Validation(json!({ field: [message.into()] }))
    }

    /// A service error as this endpoint answers it: field errors under the endpoint's own
    /// names (`paths`), so one endpoint's body shape never leaks into another's.
    pub fn from_service(e: ServiceError, paths: FieldPaths) -> ApiError {
        match e {
            ServiceError::Invalid(fields) => {
                let mut errors = BodyErrors::default();
                for (field, message) in fields {
                    let path = paths
                        .iter()
                        .find(|(name, _)| *name == field)
                        .map(|(_, path)| *path)
                        .unwrap_or(std::slice::from_ref(&field));
                    errors.add(path, message);
                }
                match errors.finish::<()>(None) {
                    Err(e) => e,
                    Ok(()) => unreachable!("finish(None) is an error"),
                }
            }
            other => other.into(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::Forbidden(m) => ApiError::Forbidden(m),
            ServiceError::Invalid(_) => ApiError::from_service(e, &[]),
            ServiceError::Conflict(m) => ApiError::Validation(json!({ "non_field_errors": [m] })),
            // Gcore's own wording for these two refusals.
            ServiceError::TokensInTheWay {
                reason: Blocker::HigherRole,
                ..
            } => ApiError::Forbidden(
                "The specified user has issued a token with a higher role. Try using another role."
                    .into(),
            ),
            ServiceError::TokensInTheWay {
                reason: Blocker::ActiveTokens,
                ..
            } => ApiError::Forbidden("You can't remove the user as they have active tokens".into()),
            ServiceError::Unavailable(why) => ApiError::Unavailable(why),
            ServiceError::Busy => ApiError::Busy,
            ServiceError::Database(e) => ApiError::Internal(e.into()),
            ServiceError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::TooManyRequests(..) | ApiError::RateLimited(..) | ApiError::QuotaSpent(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::Unauthorized => json!({ "message": UNAUTHORIZED_MESSAGE }),
            ApiError::Forbidden(m)
            | ApiError::TooManyRequests(m, _)
            | ApiError::BadSignature(m)
            | ApiError::TooLarge(m) => {
                json!({ "message": m })
            }
            ApiError::RateLimited(limit, _) => json!({ "message": rate_message(*limit) }),
            ApiError::QuotaSpent(wait) => json!({ "message": quota_message(wait.is_some()) }),
            ApiError::NotFound => json!({ "message": "Not found." }),
            ApiError::Validation(errors) => json!({ "errors": errors }),
            ApiError::Busy => json!({ "message": BUSY_MESSAGE }),
            ApiError::Unavailable(why) => {
                tracing::debug!(error = %why, "answered 503");
                json!({ "message": UNAVAILABLE_MESSAGE })
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error in the API");
                json!({ "message": "Internal server error." })
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            response.insert_header((header::WWW_AUTHENTICATE, "APIKey, Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_) | ApiError::Busy) {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
        }
        if let ApiError::RateLimited(limit, wait) = self {
            rate_headers(&mut response, *limit, *wait);
        }
        if let ApiError::QuotaSpent(Some(wait)) = self {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let ApiError::TooManyRequests(_, wait) = self {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        response.json(body)
    }
}

/// What a request of a token whose usage quota is spent is told.
pub fn quota_message(refills: bool) -> String {
    if refills {
        "This token's usage quota is spent: it is refilled as Retry-After says.".into()
    } else {
        "This token's usage quota is spent, and it doesn't refill: raise the quota or use another token.".into()
    }
}

/// What a request over a token's rate limit is told.
pub fn rate_message(limit: crate::domain::rate::RateLimit) -> String {
    format!("This token is limited to {limit}: wait as Retry-After says.")
}

/// `Retry-After` (whole seconds, at least 1) and the IETF `RateLimit-Policy`/`RateLimit` fields
/// (draft-ietf-httpapi-ratelimit-headers: quota `q` per window `w` seconds; `r` remaining, `t`
/// seconds until there is room again) for a request over `limit`.
pub fn rate_headers(
    response: &mut actix_web::HttpResponseBuilder,
    limit: crate::domain::rate::RateLimit,
    wait: std::time::Duration,
) {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    response.insert_header((header::RETRY_AFTER, secs.to_string()));
    response.insert_header((
        "RateLimit-Policy",
        format!("\"token\";q={};w={}", limit.requests, limit.per_seconds),
    ));
    response.insert_header(("RateLimit", format!("\"token\";r=0;t={secs}")));
}
