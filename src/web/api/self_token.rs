//! A token that knows itself (ours, as GitLab's `personal_access_tokens/self`): a script asks
//! which token it is and when it expires (`GET /iam/tokens/self`), and rotates itself before
//! then (`POST /iam/tokens/self/rotate`), with no id to know and nothing to see beyond itself.

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};

use super::auth::ApiCaller;
use super::body::JsonBody;
use super::error::ApiError;
use super::lifecycle::{parse_rotation, ApiTokenRotated, RotateBody};
use super::model::{rfc3339, ApiToken};
use crate::domain::token::{wire_form, PresentedToken};
use crate::web::AppState;

/// The token this request authenticated with, as presented (`APIKey <id>_<secret>`); a JWT
/// or a header that isn't a token is answered with what to send instead.
fn presented(req: &HttpRequest, caller: &ApiCaller) -> Result<PresentedToken, ApiError> {
    let not_a_token = || {
        ApiError::field(
            "non_field_errors",
            "This answers for an API token: send Authorization: APIKey <token> (a JWT is a person, not a token).",
        )
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (scheme, value) = header.trim().split_once(' ').ok_or_else(not_a_token)?;
    if !scheme.eq_ignore_ascii_case("apikey") {
        return Err(not_a_token());
    }
    let presented = PresentedToken::parse(value).ok_or_else(not_a_token)?;
    match caller.0.token_id {
        Some(id) if id.get() == presented.id => Ok(presented),
        _ => Err(not_a_token()),
    }
}

/// The calling token (ours): its id, name, role, expiry, issuer and lineage, as `GET
/// .../tokens/{tokenId}` answers it. A token sees only itself here.
#[utoipa::path(operation_id = "token_self", tag = "tokens",
    responses((status = 200, body = ApiToken), (status = 400, description = "authenticated with a JWT, not a token"),
              (status = 401, body = super::model::Message)),
    security(("APIKey" = [])))]
#[get("/iam/tokens/self")]
pub async fn get_self(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
) -> Result<HttpResponse, ApiError> {
    let me = presented(&req, &caller)?;
    let id = crate::domain::TokenId::new(me.id);
    let token = state.tokens.token(caller.0.actor, id).await?;
    Ok(HttpResponse::Ok().json(ApiToken::new(&token, state.clock().now())))
}

/// The calling token rotates itself (ours): the same rules and answer as `POST
/// .../tokens/{tokenId}/rotate`, the new secret shown once in the form it was presented in.
/// Only the current secret may rotate: the previous one, still in its grace, gets a 400.
#[utoipa::path(operation_id = "rotate_self", tag = "tokens",
    request_body = RotateBody,
    responses((status = 200, body = ApiTokenRotated),
              (status = 400, description = "a bad grace or expiry, an inactive token, a JWT instead of a token, or a secret already replaced by a rotation"),
              (status = 401, body = super::model::Message), (status = 403, body = super::model::Message)),
    security(("APIKey" = [])))]
#[post("/iam/tokens/self/rotate")]
pub async fn rotate_self(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
    body: JsonBody<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    let me = presented(&req, &caller)?;
    let now = state.clock().now();
    let rotation = parse_rotation(body.into_inner(), now)?;
    let (token, secret) = state
        .tokens
        .rotate_token(
            caller.0.actor,
            crate::domain::TokenId::new(me.id),
            rotation,
            Some(me.secret),
        )
        .await
        .map_err(|e| ApiError::from_service(e, &[("expiry", &["exp_date"])]))?;
    let body = ApiTokenRotated {
        details: ApiToken::new(&token, now),
        token: wire_form(token.id, me.separator, &secret),
        old_secret_valid_until: token.old_secret_until.map(rfc3339),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
