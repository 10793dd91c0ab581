//! `PATCH .../tokens/{tokenId}` (ours; issue 28): narrowing or widening what a token may do.
//! Its name, role and expiry don't change here (the portal renames, rotation renews).

use actix_web::{patch, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use super::model::{ApiToken, Message};
use crate::domain::{AccountId, TokenId};
use crate::services::tokens::limits::{CallerLimits, LimitsChange};
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
    #[schema(value_type = Option<RateBody>)]
    rate_limit: Field<RateBody>,
    /// `{"requests": N, "refill": null | "daily" | "monthly"}`; `null`: no quota. Absent:
    /// unchanged. A changed quota starts its count afresh.
    #[serde(default)]
    #[schema(value_type = Option<QuotaBody>)]
    usage_limit: Field<QuotaBody>,
}

/// Change a token's allowed routes, rate limit and usage quota (ours), all or nothing: the issuer's own tokens, or any of the account's
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
        given => rate_field(given, &mut errors).map(Some),
    };
    let quota = match body.usage_limit {
        Field::Absent => Some(None),
        given => quota_field(given, &mut errors).map(Some),
    };
    let (routes, (rate, quota)) = errors.finish(routes.zip(rate.zip(quota)))?;
    let caller_limits = CallerLimits {
        routes: caller.0.routes.clone(),
        rate: caller.0.rate,
        quota: caller.0.quota,
    };
    let view = state
        .tokens
        .set_token_limits(
            caller.0.actor,
            id.get(),
            LimitsChange {
                routes,
                rate,
                quota,
            },
            caller_limits,
        )
        .await
        .map_err(|e| ApiError::from_service(e, &[]))?;
    Ok(HttpResponse::Ok().json(ApiToken::new(&view, state.clock().now())))
}

/// A usage quota as a body gives it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct QuotaBody {
    #[serde(default)]
    requests: Option<i64>,
    /// `null` (never), `"daily"` or `"monthly"`.
    #[serde(default)]
    refill: Option<String>,
}

/// A `usage_limit` field: `Some(None)` for no quota, or its problem under its name.
pub fn quota_field(
    field: Field<QuotaBody>,
    errors: &mut BodyErrors,
) -> Option<Option<crate::domain::quota::UsageLimit>> {
    match field {
        Field::Absent | Field::Null => Some(None),
        Field::Value(QuotaBody {
            requests: Some(n),
            refill,
        }) => crate::domain::quota::UsageLimit::new(n, refill.as_deref())
            .map(Some)
            .map_err(|m| errors.set("usage_limit", m))
            .ok(),
        _ => {
            errors.set(
                "usage_limit",
                "{\"requests\": N, \"refill\": null | \"daily\" | \"monthly\"}; or null.",
            );
            None
        }
    }
}

/// A rate limit as a body gives it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RateBody {
    #[serde(default)]
    requests: Option<i64>,
    #[serde(default)]
    per_seconds: Option<i64>,
}

/// A `rate_limit` field: `Some(None)` for no limit, or its problem under its name.
pub fn rate_field(
    field: Field<RateBody>,
    errors: &mut BodyErrors,
) -> Option<Option<crate::domain::rate::RateLimit>> {
    rate_field_named(field, "rate_limit", errors)
}

/// `rate_field` for a field of another name.
pub fn rate_field_named(
    field: Field<RateBody>,
    name: &str,
    errors: &mut BodyErrors,
) -> Option<Option<crate::domain::rate::RateLimit>> {
    let help =
        "{\"requests\": N, \"per_seconds\": S}: a burst of N, then N per S seconds; or null.";
    match field {
        Field::Absent | Field::Null => Some(None),
        Field::Value(RateBody {
            requests: Some(n),
            per_seconds: Some(s),
        }) => crate::domain::rate::RateLimit::new(n, s)
            .map(Some)
            .map_err(|m| errors.set(name, m))
            .ok(),
        _ => {
            errors.set(name, help);
            None
        }
    }
}

/// An `allowed_routes` field: the routes, or its problem (naming the line) under its name.
pub fn routes_field(
    field: Field<Vec<String>>,
    errors: &mut BodyErrors,
) -> Option<Vec<crate::domain::routes::Route>> {
    match field {
        Field::Absent | Field::Null => Some(vec![]),
        Field::Value(lines) => crate::domain::routes::parse_lines(lines.iter().map(String::as_str))
            .map_err(|m| errors.set("allowed_routes", m))
            .ok(),
        Field::WrongType(_) => {
            errors.set(
                "allowed_routes",
                "A list of routes, like [\"GET /dns/**\", \"POST /cdn/resources/123/purge\"].",
            );
            None
        }
    }
}
