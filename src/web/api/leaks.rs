//! `POST /iam/secret-scanning/report`: leak reports from secret-scanning services (ours, not
//! Gcore's). See `services::leaks` for the format and what a report does.

use actix_web::{post, web, HttpRequest, HttpResponse};

use super::error::ApiError;
use crate::services::runtime::report_gate::Refusal;
use crate::services::tokens::leaks::{BadSignature, LeakReport, MAX_REPORTS};
use crate::web::AppState;

/// GitHub's headers: which of its published keys signed the body, and the signature.
const KEY_ID: &str = "github-public-key-identifier";
const SIGNATURE: &str = "github-public-key-signature";

/// Largest report body read (1,000 reports of a token, a URL and a little more).
const MAX_BODY: usize = 1024 * 1024;

/// A leak report (GitHub secret scanning partner format): a JSON array of
/// `{"token", "type", "url", "source"}`, signed with ECDSA P-256 over the raw body, key id in
/// `Github-Public-Key-Identifier`, base64 DER signature in `Github-Public-Key-Signature`. An
/// active token reported is revoked at once (with the tokens it created) and the event is
/// recorded with where it was found; the answer labels each `true_positive` or
/// `false_positive`, naming tokens by their SHA-256. 404 when no keys are configured
/// (`APITOKENS_SECRET_SCANNING_KEYS`).
#[utoipa::path(tag = "secret-scanning",
    request_body(content = String, description = "[{\"token\": \"12_ab…\", \"type\": \"apitokens_token\", \"url\": \"https://github.com/…\", \"source\": \"content\"}]", content_type = "application/json"),
    params(("Github-Public-Key-Identifier" = String, Header), ("Github-Public-Key-Signature" = String, Header, description = "base64 DER ECDSA P-256 signature over the raw body")),
    responses((status = 200, description = "[{\"token_hash\": \"<sha256 hex>\", \"token_type\": \"…\", \"label\": \"true_positive\" | \"false_positive\"}]"),
              (status = 400, description = "not a JSON array of reports (after the signature held)"),
              (status = 401, description = "unknown key id or a signature that doesn't verify; nothing changed"),
              (status = 404, description = "secret scanning isn't configured here"),
              (status = 413, description = "body over 1 MB"),
              (status = 429, description = "too many reports from this address (more than 10 a second after a burst of 50, or 2 waiting); Retry-After says when to try again"),
              (status = 503, description = "the queue of signature checks is full; Retry-After says when to try again")))]
#[post("/iam/secret-scanning/report")]
pub async fn report(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(keys) = state.tokens.scanning_keys() else {
        return Err(ApiError::NotFound);
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    // Per-address limits and the queue's bound first, before the body is read.
    let from = crate::web::client::client_ip(&req, &state.settings.trusted_proxies);
    let ticket = state.tokens.admit_leak_report(from).map_err(|refusal| match refusal {
        Refusal::TooMany(wait) => ApiError::TooManyRequests(
            "Too many leak reports from this address: send them in batches (up to 1,000 per request).".into(),
            wait,
        ),
        Refusal::Busy => ApiError::Busy,
    })?;
    let (key_id, signature) = (header(KEY_ID), header(SIGNATURE));
    if key_id.is_empty() || signature.is_empty() {
        return Err(ApiError::BadSignature(format!(
            "A report must be signed: send the key id in {KEY_ID} and the signature in {SIGNATURE}."
        )));
    }
    let body = super::body::read_limited(
        &mut payload,
        MAX_BODY,
        "A report may be at most 1 MB: send fewer tokens per request.",
    )
    .await?;
    // An unknown key id is refused before a signature check is queued.
    if !keys.knows(&key_id) {
        return Err(refused(BadSignature::UnknownKey, &key_id));
    }
    let Some((verified, body)) = state
        .tokens
        .verify_leak_report(ticket, key_id.clone(), signature, body.to_vec())
        .await
    else {
        return Err(ApiError::Busy);
    };
    verified.map_err(|why| refused(why, &key_id))?;
    let reports: Vec<LeakReport> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::Validation(serde_json::json!({
            "body": [format!("Expected a JSON array of {{\"token\", \"type\", \"url\", \"source\"}}: {e}.")]
        }))
    })?;
    if reports.len() > MAX_REPORTS {
        return Err(ApiError::Validation(serde_json::json!({
            "body": [format!("At most {MAX_REPORTS} reports per request.")]
        })));
    }
    let (labels, revoked) = state.tokens.handle_leak_reports(reports).await?;
    if revoked > 0 {
        tracing::warn!(revoked, key_id = %key_id, "leak report: tokens revoked");
    }
    Ok(HttpResponse::Ok().json(labels))
}

/// The 401 for a report whose signature doesn't hold, saying why.
fn refused(why: BadSignature, key_id: &str) -> ApiError {
    ApiError::BadSignature(match why {
        BadSignature::UnknownKey => format!(
            "No configured key has the id {:?}.",
            key_id.chars().take(100).collect::<String>()
        ),
        BadSignature::Invalid => {
            "The signature does not verify over this body with that key.".into()
        }
    })
}
