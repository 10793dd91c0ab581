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
}

/// Change a token's allowed routes (ours): the issuer's own tokens, or any of the account's
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
    let routes = errors.finish(routes)?;
    let view = match routes {
        Some(routes) => state
            .tokens
            .set_token_routes(caller.0.actor, id.get(), routes, caller.0.routes.clone())
            .await
            .map_err(|e| ApiError::from_service(e, &[]))?,
        None => state.tokens.token(caller.0.actor, id.get()).await?,
    };
    Ok(HttpResponse::Ok().json(ApiToken::new(&view, state.clock().now())))
}
