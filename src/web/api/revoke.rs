//! `POST /iam/credentials/revoke` (ours, as GitHub's `/credentials/revoke`): anyone who finds
//! an apitokens token can revoke it, no sign-in needed. See `services::tokens::public_revoke`.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use crate::services::tokens::public_revoke::MAX_CREDENTIALS;
use crate::web::AppState;

/// Largest body read: 1,000 tokens of about 85 characters, with room for JSON around them.
const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeBody {
    /// Up to 1,000 strings that may be apitokens tokens (`<id>_<secret>` or `<id>$<secret>`).
    pub credentials: Vec<String>,
}

/// The one answer, whatever was found.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeAccepted {
    pub message: String,
}

/// Revoke tokens found where they shouldn't be (ours; no authentication). Every live token
/// among them is revoked at once, and its issuer and the account's Administrators are told.
/// The answer is always the same 202, so it tells nothing about what was found.
#[utoipa::path(tag = "secret-scanning",
    request_body = RevokeBody,
    responses((status = 202, body = RevokeAccepted),
              (status = 400, description = "not {\"credentials\": [strings]}, or more than 1,000"),
              (status = 413, description = "body over 256 KB"),
              (status = 429, description = "too many well-formed tokens from this address or from everyone; Retry-After says when to try again")))]
#[post("/iam/credentials/revoke")]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = super::body::read_limited(
        &mut payload,
        MAX_BODY,
        "The body may be at most 256 KB: send at most 1,000 tokens per request.",
    )
    .await?;
    let parsed: RevokeBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::Validation(serde_json::json!({
            "credentials": [format!("Send {{\"credentials\": [\"<token>\", …]}}: {e}.")]
        }))
    })?;
    if parsed.credentials.len() > MAX_CREDENTIALS {
        return Err(ApiError::Validation(serde_json::json!({
            "credentials": [format!("At most {MAX_CREDENTIALS} per request.")]
        })));
    }
    let from = crate::web::client::client_ip(&req, &state.settings.trusted_proxies);
    match state.tokens.revoke_public(parsed.credentials, from).await? {
        Ok(revoked) => {
            if revoked > 0 {
                tracing::warn!(revoked, "public revocation: tokens revoked");
            }
            Ok(HttpResponse::Accepted().json(RevokeAccepted {
                message: "Thank you. Any live apitokens token among these is revoked now, and its owners are told.".into(),
            }))
        }
        Err(wait) => Err(ApiError::TooManyRequests(
            "Too many tokens to check from here just now: wait, then send the rest.".into(),
            wait,
        )),
    }
}
