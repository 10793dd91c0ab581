//! Ours, not Gcore's: rotating a token with a grace window, the account's token policy, and
//! the account's audit trail.

use actix_web::http::header;
use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use super::model::{rfc3339, ApiToken};
use super::tokens::separator;
use crate::domain::policy::{grace, TokenPolicy};
use crate::domain::token::wire_form;
use crate::domain::{AccountId, TokenId, UserId};
use crate::services::tokens::Rotation;
use crate::web::ids::Id;
use crate::web::AppState;

/// `{"grace_seconds": N, "exp_date": "..."}`: how long the old secret keeps working (0 to
/// 604800, default 0), and optionally a new expiry (RFC 3339, or `null` for never; absent:
/// keep the token's own).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RotateBody {
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 604800)]
    grace_seconds: Field<i64>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    exp_date: Field<String>,
}

/// The token object, its new secret (once) and until when the old one works.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenRotated<'a> {
    #[serde(flatten)]
    pub details: ApiToken<'a>,
    /// `<id>$<secret>` from `/iam/...`, `<id>_<secret>` from `/iam/v2/...`.
    pub token: String,
    /// RFC 3339; `null` when the old secret stopped at once.
    pub old_secret_valid_until: Option<String>,
}

pub(super) fn parse_rotation(body: RotateBody, now: OffsetDateTime) -> Result<Rotation, ApiError> {
    let mut errors = BodyErrors::default();
    let grace = match body.grace_seconds {
        Field::Absent | Field::Null => Some(time::Duration::ZERO),
        Field::Value(n) => grace(n).map_err(|m| errors.set("grace_seconds", m)).ok(),
        Field::WrongType(_) => {
            errors.set("grace_seconds", "A whole number of seconds, 0 to 604800.");
            None
        }
    };
    let expiry = match body.exp_date {
        Field::Absent => Some(None),
        given => super::tokens::exp_date(given, now, &mut errors).map(Some),
    };
    let rotation = match (grace, expiry) {
        (Some(grace), Some(expiry)) => Some(Rotation { grace, expiry }),
        _ => None,
    };
    errors.finish(rotation)
}

/// Rotate a token (ours): a new secret for the same token id, shown once; the old secret keeps
/// working for `grace_seconds`. Answers `<id>$<secret>`.
#[utoipa::path(operation_id = "rotate_v1", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)), request_body = RotateBody,
    responses((status = 200, body = ApiTokenRotated), (status = 400, description = "a bad grace or expiry, a token that isn't active, or an expiry outside the account's token policy"),
              (status = 401, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/{clientId}/tokens/{tokenId}/rotate")]
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<TokenId>,
    body: JsonBody<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let now = state.clock().now();
    let rotation = parse_rotation(body.into_inner(), now)?;
    let (token, secret) = state
        .tokens
        .rotate_token(caller.0.actor, id.get(), rotation, None)
        .await
        .map_err(|e| ApiError::from_service(e, &[("expiry", &["exp_date"])]))?;
    let body = ApiTokenRotated {
        details: ApiToken::new(&token, now),
        token: wire_form(token.id, separator(&req), &secret),
        old_secret_valid_until: token.old_secret_until.map(rfc3339),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// The account's token policy (ours).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenPolicy {
    /// The longest a new token may live, in days (1–3650), or `null` for no limit.
    pub max_lifetime_days: Option<i32>,
    /// Whether every new token must have an expiry date.
    pub expiry_required: bool,
    /// Tokens unused this many days (14–3650; never-used ones count from creation) are
    /// revoked, their issuer and the Administrators told 7 days before; `null`: never.
    pub max_idle_days: Option<i32>,
    /// Whether every new token must be limited to allowed routes.
    pub routes_required: bool,
    /// The fastest rate limit a new token may have (one created without a rate limit gets
    /// this one); `null`: no cap.
    pub max_rate_limit: Option<super::model::ApiRate>,
}

impl From<TokenPolicy> for ApiTokenPolicy {
    fn from(p: TokenPolicy) -> Self {
        ApiTokenPolicy {
            max_lifetime_days: p.max_lifetime_days,
            expiry_required: p.expiry_required,
            max_idle_days: p.max_idle_days,
            routes_required: p.routes_required,
            max_rate_limit: p.max_rate.map(|r| super::model::ApiRate {
                requests: r.requests,
                per_seconds: r.per_seconds,
            }),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PolicyBody {
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3650)]
    max_lifetime_days: Field<i64>,
    #[serde(default)]
    #[schema(value_type = bool)]
    expiry_required: Field<bool>,
    /// Absent or null: idle tokens are kept.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 14, maximum = 3650)]
    max_idle_days: Field<i64>,
    /// Absent: false.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    routes_required: Field<bool>,
    /// `{"requests": N, "per_seconds": S}`: new tokens are no faster (and get it when they ask
    /// for no rate limit). Absent or null: no cap.
    #[serde(default)]
    #[schema(value_type = Option<super::limits::RateBody>)]
    max_rate_limit: Field<super::limits::RateBody>,
}

/// The account's token policy (ours; any user of the account may read it).
#[utoipa::path(tag = "tokens", params(("clientId" = i64, Path)),
    responses((status = 200, body = ApiTokenPolicy), (status = 401, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/token-policy")]
pub async fn get_policy(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let p = state.tokens.token_policy(caller.0.actor).await?;
    Ok(HttpResponse::Ok().json(ApiTokenPolicy::from(p)))
}

/// Set the account's token policy (ours; Administrators). Both fields are required; it applies
/// to tokens created or rotated from now on.
#[utoipa::path(tag = "tokens", params(("clientId" = i64, Path)),
    request_body = PolicyBody,
    responses((status = 200, body = ApiTokenPolicy), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[put("/iam/clients/{clientId}/token-policy")]
pub async fn put_policy(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    body: JsonBody<PolicyBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    caller.0.actor.require_admin()?;
    let body = body.into_inner();
    let mut errors = BodyErrors::default();
    let days = match body.max_lifetime_days {
        Field::Null => Some(None),
        Field::Value(d) => Some(Some(d)),
        Field::Absent => {
            errors.set(
                "max_lifetime_days",
                "This field is required (null for no limit).",
            );
            None
        }
        Field::WrongType(_) => {
            errors.set(
                "max_lifetime_days",
                "A whole number of days, 1 to 3650, or null.",
            );
            None
        }
    };
    let required = match body.expiry_required {
        Field::Value(b) => Some(b),
        _ => {
            errors.set("expiry_required", "This field is required: true or false.");
            None
        }
    };
    let idle = match body.max_idle_days {
        Field::Null | Field::Absent => Some(None),
        Field::Value(d) => Some(Some(d)),
        Field::WrongType(_) => {
            errors.set(
                "max_idle_days",
                "A whole number of days, 14 to 3650, or null.",
            );
            None
        }
    };
    let policy = match (days, required) {
        (Some(d), Some(r)) => TokenPolicy::new(d, r)
            .map_err(|m| errors.set("max_lifetime_days", m))
            .ok(),
        _ => None,
    };
    let policy = match (policy, idle) {
        (Some(p), Some(i)) => p
            .with_idle_days(i)
            .map_err(|m| errors.set("max_idle_days", m))
            .ok(),
        _ => None,
    };
    let routes_required = match body.routes_required {
        Field::Value(b) => b,
        Field::Absent | Field::Null => false,
        Field::WrongType(_) => {
            errors.set("routes_required", "true or false.");
            false
        }
    };
    let max_rate =
        super::limits::rate_field_named(body.max_rate_limit, "max_rate_limit", &mut errors);
    let policy = errors
        .finish(policy.zip(max_rate))
        .map(|(p, rate)| p.with_routes_required(routes_required).with_max_rate(rate))?;
    let p = state
        .tokens
        .set_token_policy(caller.0.actor, policy)
        .await?;
    Ok(HttpResponse::Ok().json(ApiTokenPolicy::from(p)))
}

/// A line of the account's audit trail (ours).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiEvent {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `token.created`, `token.rotated`, `token.deleted`, `user.removed`, ...
    pub kind: String,
    pub summary: String,
    /// The user who did it; `null` when no person did (a sweep, a leak report, SCIM).
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub token_id: Option<i64>,
    pub client_address: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiEvents {
    pub count: i64,
    pub results: Vec<ApiEvent>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// 1–1000 (default 100).
    limit: Option<String>,
    offset: Option<String>,
    /// Only events of this token.
    token_id: Option<String>,
    /// Only events whose kind starts with this (`token.`, `user.`).
    kind: Option<String>,
}

/// The account's audit trail, newest first (ours; Administrators).
#[utoipa::path(tag = "events",
    params(("clientId" = i64, Path), EventsQuery),
    responses((status = 200, body = ApiEvents), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/events")]
pub async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let query: EventsQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| ApiError::field("non_field_errors", "The query string could not be read."))?;
    let number = |raw: &Option<String>, name: &str, range: std::ops::RangeInclusive<i64>| match raw
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| {
                ApiError::field(
                    name,
                    format!("A whole number from {} to {}.", range.start(), range.end()),
                )
            }),
    };
    let limit = number(&query.limit, "limit", 1..=1000)?.unwrap_or(100);
    let offset = number(&query.offset, "offset", 0..=i64::MAX / 4)?.unwrap_or(0);
    let token_id = number(&query.token_id, "token_id", 1..=i64::MAX)?.map(TokenId::new);
    let kind = query
        .kind
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .filter(|k| k.len() <= 50);
    let (events, total) = state
        .audit
        .activity(caller.0.actor, kind, token_id, limit, offset)
        .await?;
    Ok(HttpResponse::Ok().json(ApiEvents {
        count: total,
        results: events
            .into_iter()
            .map(|e| ApiEvent {
                id: e.id,
                at: rfc3339(e.at),
                kind: e.kind,
                summary: e.summary,
                actor_id: e.actor_id.map(UserId::get),
                actor_name: e.who,
                token_id: e.token_id.map(TokenId::get),
                client_address: e.client_address,
            })
            .collect(),
    }))
}

/// A day of a token's usage (ours).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiUsageDay {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub requests: i64,
}

/// The last 30 days of a token's usage, oldest first, days without requests included (ours).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiUsage {
    pub days: Vec<ApiUsageDay>,
}

/// Requests per day for the last 30 days (ours). Counted by every instance and added up, within
/// about a second.
#[utoipa::path(operation_id = "usage_v1", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)),
    responses((status = 200, body = ApiUsage), (status = 401, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/{clientId}/tokens/{tokenId}/usage")]
pub async fn usage(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<TokenId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let usage = state.tokens.token_usage(caller.0.actor, id.get()).await?;
    Ok(HttpResponse::Ok().json(ApiUsage {
        days: usage
            .days
            .into_iter()
            .map(|(day, requests)| ApiUsageDay {
                date: day.to_string(),
                requests,
            })
            .collect(),
    }))
}
