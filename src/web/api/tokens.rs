//! `/iam/clients/{clientId}/tokens` (v1, `$` tokens) and `/iam/v2/clients/{clientId}/tokens`
//! (v2, `_` tokens): the same token service as the web page.

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{url_pairs, ApiCaller};
use super::body::{BodyErrors, Field, JsonBody, RoleBody};
use super::error::{ApiError, FieldPaths};
use super::limits::{quota_field, rate_field, routes_field, QuotaBody, RateBody};
use super::model::{ApiToken, ApiTokenCreated, Message};
use crate::domain::input::{Expiry, TokenDescription, TokenName};
use crate::domain::token::{wire_form, Separator, TokenStatus};
use crate::domain::{AccountId, Role, TokenId, UserId};
use crate::services::tokens::{CreateOutcome, ListQuery, NewTokenRequest};
use crate::web::ids::Id;
use crate::web::AppState;

/// The most tokens one `limit` asks for.
pub const MAX_LIMIT: i64 = 1000;

pub fn parse_list_query(query: &str) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery {
        page: 1,
        ..Default::default()
    };
    let mut errors = Map::new();
    let int = |v: &str, errors: &mut Map<String, Value>, key: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| errors.insert(key.into(), json!(["A valid integer is required."])))
            .ok()
    };
    for (key, value) in url_pairs(query)? {
        match key.as_str() {
            "role" => match Role::parse(&value) {
                Some(r) => q.role = Some(r),
                None => {
                    errors.insert(key, json!([format!("Invalid role: {value}")]));
                }
            },
            "issued_by" => q.issued_by = int(&value, &mut errors, "issued_by").map(UserId::new),
            "not_issued_by" => {
                q.not_issued_by = int(&value, &mut errors, "not_issued_by").map(UserId::new)
            }
            "deleted" => match value.to_ascii_lowercase().as_str() {
                "true" | "1" => q.deleted = Some(true),
                "false" | "0" => q.deleted = Some(false),
                _ => {
                    errors.insert(key, json!(["Must be true or false."]));
                }
            },
            // Ours (Gcore's list has no paging): newest first, `limit` at a time.
            "limit" => match value.trim().parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => q.per_page = Some(n),
                _ => {
                    errors.insert(
                        key,
                        json!([format!("Must be a whole number from 1 to {MAX_LIMIT}.")]),
                    );
                }
            },
            // Keyset paging: the tokens older than this id (stable while tokens come and go).
            "before" => match value.trim().parse::<i64>() {
                Ok(n) if n > 0 => q.before = Some(TokenId::new(n)),
                _ => {
                    errors.insert(key, json!(["Must be a token id."]));
                }
            },
            "offset" => match value.trim().parse::<i64>() {
                Ok(n) if n >= 0 => q.offset = Some(n),
                _ => {
                    errors.insert(key, json!(["Must be a whole number, 0 or more."]));
                }
            },
            "status" => match TokenStatus::parse(&value) {
                Some(s) => q.status = Some(s),
                None => {
                    errors.insert(key, json!(["Must be one of: active, expired, deleted."]));
                }
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(ApiError::Validation(Value::Object(errors)))
    }
}

/// `POST .../tokens`: every field as sent (see `body::Field`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateTokenBody {
    #[serde(default)]
    #[schema(value_type = String)]
    name: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    description: Field<String>,
    /// RFC 3339, or `null` for a token that never expires.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    exp_date: Field<String>,
    /// `{"role": {"id": 5, "name": "Engineers"}}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    client_user: Field<ClientUserBody>,
    /// Ours, not Gcore's: the networks the token may be used from, as CIDRs
    /// (`["203.0.113.0/24", "2001:db8::/32"]`); absent, `null` or empty: any address.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_ips: Field<Vec<String>>,
    /// Ours: the routes the token may call, as `METHOD /pattern` lines (`*` one path segment,
    /// `**` the rest), like `["GET /dns/**", "POST /cdn/resources/123/purge"]`; absent, `null`
    /// or empty: whatever its role allows (a token made with a limited token: its parent's).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_routes: Field<Vec<String>>,
    /// Ours: `{"requests": N, "per_seconds": S}`, a burst of N then N per S seconds (over it:
    /// 403 `X-Auth-Reason: rate-limited` at the gateway, 429 here); absent or `null`: no limit
    /// (a token made with a limited token: its parent's).
    #[serde(default)]
    #[schema(value_type = Option<RateBody>)]
    rate_limit: Field<RateBody>,
    /// Ours: `{"requests": N, "refill": null | "daily" | "monthly"}`: at most N allowed requests,
    /// for ever or per UTC day or calendar month (over it: 403 `X-Auth-Reason: quota` at the
    /// gateway, 429 here); absent or `null`: no quota (a token made with a quota'd token: its
    /// parent's).
    #[serde(default)]
    #[schema(value_type = Option<QuotaBody>)]
    usage_limit: Field<QuotaBody>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ClientUserBody {
    #[serde(default)]
    role: Field<RoleBody>,
}

/// Where the token service's field errors go in this endpoint's 400 body.
pub const CREATE_FIELDS: FieldPaths = &[
    ("role", &["client_user", "role"]),
    ("expiry", &["exp_date"]),
];

/// An `exp_date` that was sent: `null` for never, or an RFC 3339 instant in the future;
/// what's wrong goes to `errors` under `exp_date`.
pub fn exp_date(
    field: Field<String>,
    now: OffsetDateTime,
    errors: &mut BodyErrors,
) -> Option<Expiry> {
    match field {
        Field::Absent | Field::Null => Some(Expiry::NEVER),
        Field::Value(s) => match parse_instant(&s) {
            Some(at) => Expiry::at(at.replace_nanosecond(0).unwrap_or(at), now)
                .map_err(|m| errors.set("exp_date", m))
                .ok(),
            None => {
                errors.set(
                    "exp_date",
                    "Use an RFC 3339 date and time, like 2026-12-31T23:59:59Z.",
                );
                None
            }
        },
        Field::WrongType(_) => {
            errors.set("exp_date", "Use an RFC 3339 date and time, or null.");
            None
        }
    }
}

/// An instant as clients send it: RFC 3339 (`Z` or an offset, any fraction of a second), or
/// with an offset without a colon (`+0000`), as Gcore's Go client writes it.
pub fn parse_instant(raw: &str) -> Option<OffsetDateTime> {
    let raw = raw.trim();
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(at);
    }
    let split = raw.len().checked_sub(5)?;
    let (head, zone) = (raw.get(..split)?, raw.get(split..)?);
    let bytes = zone.as_bytes();
    if matches!(bytes[0], b'+' | b'-') && bytes[1..].iter().all(u8::is_ascii_digit) {
        OffsetDateTime::parse(&format!("{head}{}:{}", &zone[..3], &zone[3..]), &Rfc3339).ok()
    } else {
        None
    }
}

impl CreateTokenBody {
    /// The domain request, or every problem with the body at once.
    pub fn parse(self, now: OffsetDateTime) -> Result<NewTokenRequest, ApiError> {
        let mut errors = BodyErrors::default();
        let name = match self.name {
            Field::Absent | Field::Null => {
                errors.set("name", "This field is required.");
                None
            }
            Field::Value(s) => TokenName::parse(&s).map_err(|m| errors.set("name", m)).ok(),
            Field::WrongType(_) => {
                errors.set("name", "Not a valid string.");
                None
            }
        };
        let description = match self.description {
            Field::Absent | Field::Null => TokenDescription::parse(None).ok(),
            Field::Value(s) => TokenDescription::parse(Some(&s))
                .map_err(|m| errors.set("description", m))
                .ok(),
            Field::WrongType(_) => {
                errors.set("description", "Not a valid string.");
                None
            }
        };
        let expiry = match self.exp_date {
            Field::Absent => {
                errors.set(
                    "exp_date",
                    "This field is required (null for a token that never expires).",
                );
                None
            }
            given => exp_date(given, now, &mut errors),
        };
        let role = match self.client_user {
            Field::Value(ClientUserBody { role }) => match role {
                Field::Value(role) => Role::try_from(role),
                // `client_user: {}` is valid in Gcore's SDK types: the least privilege.
                Field::Absent | Field::Null => Ok(Role::Users),
                Field::WrongType(v) => Err(format!("Invalid role: {v}")),
            },
            _ => Err("This field is required.".to_string()),
        }
        .map_err(|m| errors.add(&["client_user", "role"], m))
        .ok();
        let allowed_ips = match self.allowed_ips {
            Field::Absent | Field::Null => Some(vec![]),
            Field::Value(nets) => crate::domain::allowlist::parse(&nets)
                .map_err(|m| errors.set("allowed_ips", m))
                .ok(),
            Field::WrongType(_) => {
                errors.set(
                    "allowed_ips",
                    "A list of networks, like [\"203.0.113.0/24\", \"2001:db8::/32\"].",
                );
                None
            }
        };
        let allowed_routes = routes_field(self.allowed_routes, &mut errors);
        let rate_limit = rate_field(self.rate_limit, &mut errors);
        let usage_limit = quota_field(self.usage_limit, &mut errors);
        let request = match (
            (name, description, expiry, role),
            (allowed_ips, allowed_routes, rate_limit, usage_limit),
        ) {
            (
                (Some(name), Some(description), Some(expiry), Some(role)),
                (Some(allowed_ips), Some(allowed_routes), Some(rate_limit), Some(usage_limit)),
            ) => Some(NewTokenRequest {
                name,
                description,
                role,
                expiry,
                form_id: None,
                parent: None,
                allowed_ips,
                allowed_routes,
                rate_limit,
                usage_limit,
            }),
            _ => None,
        };
        errors.finish(request)
    }
}

/// Which wire form a path's tokens take: `<id>$<secret>` under `/iam/clients` (v1),
/// `<id>_<secret>` under `/iam/v2/clients`. One handler serves both.
pub fn separator(req: &HttpRequest) -> Separator {
    if req.path().starts_with("/iam/v2/") {
        Separator::Underscore
    } else {
        Separator::Dollar
    }
}

/// List the tokens the caller may see (Administrators: the whole account).
#[utoipa::path(operation_id = "list_v1", tag = "tokens",
    params(("clientId" = i64, Path), ("role" = Option<String>, Query), ("issued_by" = Option<i64>, Query),
           ("not_issued_by" = Option<i64>, Query), ("deleted" = Option<bool>, Query), ("status" = Option<String>, Query),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "ours, not Gcore's: at most this many tokens, newest first (without it: all)"),
           ("offset" = Option<i64>, Query, minimum = 0, description = "ours: skip this many (with limit, for paging)"),
           ("before" = Option<i64>, Query, minimum = 1, description = "ours: only tokens older than this id; with limit, page by passing the last id you got (stable while tokens are created and deleted)")),
    responses((status = 200, body = [ApiToken]), (status = 400), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/{clientId}/tokens")]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let query = parse_list_query(req.query_string())?;
    let now = state.clock().now();
    let page = state.tokens.list_tokens(caller.0.actor, query).await?;
    let body = ApiToken::write_list(&page.tokens, now)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("writing the token list: {e}")))?;
    Ok(HttpResponse::Ok()
        .insert_header(header::ContentType::json())
        .body(body))
}

/// Create a token; the answer carries it as `<id>$<secret>`, once.
#[utoipa::path(operation_id = "create_v1", tag = "tokens", params(("clientId" = i64, Path)),
    request_body = CreateTokenBody,
    responses((status = 200, body = ApiTokenCreated), (status = 400), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/{clientId}/tokens")]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    body: JsonBody<CreateTokenBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let now = state.clock().now();
    let mut request = body.into_inner().parse(now)?;
    // Made with a token: it can't outlive that token, and goes when that token goes.
    request.parent = caller.0.token_id;
    let outcome = state
        .tokens
        .create_token(caller.0.actor, request)
        .await
        .map_err(|e| ApiError::from_service(e, CREATE_FIELDS))?;
    let CreateOutcome::Created { token, secret } = outcome else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "API creates carry no form id"
        )));
    };
    let body = ApiTokenCreated {
        details: ApiToken::new(&token, now),
        token: wire_form(token.id, separator(&req), &secret),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

#[utoipa::path(operation_id = "get_v1", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)),
    responses((status = 200, body = ApiToken), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/{clientId}/tokens/{tokenId}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<TokenId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let token = state.tokens.token(caller.0.actor, id.get()).await?;
    Ok(HttpResponse::Ok().json(ApiToken::new(&token, state.clock().now())))
}

/// Delete (soft) a token; it is refused from then on.
#[utoipa::path(operation_id = "delete_v1", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)),
    responses((status = 204), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[delete("/{clientId}/tokens/{tokenId}")]
pub async fn delete(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<TokenId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    state.tokens.delete_token(caller.0.actor, id.get()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_parse_in_every_form_clients_send() {
        let at = datetime!(2026-12-31 23:59:59 UTC);
        for raw in [
            "2026-12-31T23:59:59Z",
            "2026-12-31T23:59:59.000000Z",
            "2026-12-31T23:59:59.5Z",
            "2026-12-31T23:59:59+00:00",
            "2026-12-31T23:59:59+0000",
            "2027-01-01T01:59:59+0200",
            "2026-12-31T22:59:59.000-0100",
            " 2026-12-31T23:59:59Z ",
        ] {
            let parsed = parse_instant(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(parsed.replace_nanosecond(0).unwrap(), at, "{raw}");
        }
        for bad in [
            "",
            "2026-12-31",
            "2026-12-31T23:59:59",
            "2026-12-31T23:59:59+00",
            "2026-12-31T23:59:59+0x00",
            "2026-12-31T23:59:59ü0000",
            "tomorrow",
        ] {
            assert!(parse_instant(bad).is_none(), "{bad}");
        }
    }
}
