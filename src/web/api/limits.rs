//! `PATCH .../tokens/{tokenId}` (ours; issue 28): narrowing or widening what a token may do.
//! Its name, role and expiry don't change here (the portal renames, rotation renews).

use actix_web::{patch, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use super::model::{ApiToken, Message};
use super::tokens::routes_field;
use crate::domain::{AccountId, TokenId};
use crate::web::ids::Id;
use crate::web::AppState;

/// What to change of a token's limits.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LimitsBody {
    /// `METHOD /pattern` lines (`*` one path segment, `**` the rest); `[]` or `null`: whatever
    /// the token's role allows. Absent: unchanged.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_routes: Field<Vec<String>>,
    /// `{"requests": N, "per_seconds": S}`; `null`: no limit. Absent: unchanged.
    #[serde(default)]
    #[schema(value_type = Option<super::tokens::RateBody>)]
    rate_limit: Field<super::tokens::RateBody>,
}

/// Change a token's allowed routes and rate limit (ours): the issuer's own tokens, or any of the account's
/// for Administrators. Never beyond the token it was created with, nor beyond the calling
/// token's own routes. Audited as narrowed or widened.
#[utoipa::path(operation_id = "update_v1", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)), request_body = LimitsBody,
    responses((status = 200, body = ApiToken), (status = 400), (status = 401, body = Message),
              (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[patch("/{clientId}/tokens/{tokenId}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<TokenId>,
    body: JsonBody<LimitsBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let body = body.into_inner();
    let mut errors = BodyErrors::default();
    let routes = match body.allowed_routes {
        Field::Absent => Some(None),
        given => routes_field(given, &mut errors).map(Some),
    };
    let rate = match body.rate_limit {
        Field::Absent => Some(None),
        given => super::tokens::rate_field(given, &mut errors).map(Some),
    };
    let (routes, rate) = errors.finish(routes.zip(rate))?;
    let actor = caller.0.actor;
    if let Some(routes) = routes {
        state
            .tokens
            .set_token_routes(actor.clone(), id.get(), routes, caller.0.routes.clone())
            .await
            .map_err(|e| ApiError::from_service(e, &[]))?;
    }
    if let Some(rate) = rate {
        state
            .tokens
            .set_token_rate(actor.clone(), id.get(), rate, caller.0.rate)
            .await
            .map_err(|e| ApiError::from_service(e, &[]))?;
    }
    let view = state.tokens.token(actor, id.get()).await?;
    Ok(HttpResponse::Ok().json(ApiToken::new(&view, state.clock().now())))
}
