//! `/iam/clients/{clientId}/tokens` (v1, `$` tokens) and `/iam/v2/clients/{clientId}/tokens`
//! (v2, `_` tokens): the same token service as the web page.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::auth::{url_pairs, ApiCaller};
use super::error::ApiError;
use super::model::{ApiToken, ApiTokenCreated, Message};
use crate::domain::input::{Expiry, TokenDescription, TokenName};
use crate::domain::token::{wire_form, Separator, TokenStatus};
use crate::domain::Role;
use crate::services::tokens::{self, CreateOutcome, ListQuery, NewTokenRequest};
use crate::web::AppState;

/// The path's `clientId` must be the caller's own account; another is "not found".
fn own_account(caller: &ApiCaller, client_id: &str) -> Result<(), ApiError> {
    match client_id.parse::<i64>() {
        Ok(id) if id == caller.0.actor.account_id => Ok(()),
        _ => Err(ApiError::NotFound),
    }
}

fn token_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| ApiError::NotFound)
}

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
            "issued_by" => q.issued_by = int(&value, &mut errors, "issued_by"),
            "not_issued_by" => q.not_issued_by = int(&value, &mut errors, "not_issued_by"),
            "deleted" => match value.to_ascii_lowercase().as_str() {
                "true" | "1" => q.deleted = Some(true),
                "false" | "0" => q.deleted = Some(false),
                _ => {
                    errors.insert(key, json!(["Must be true or false."]));
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

/// Reads the create body field by field, collecting every problem at once.
pub fn parse_create(body: &Value, now: OffsetDateTime) -> Result<NewTokenRequest, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::field(
            "non_field_errors",
            "Expected a JSON object.",
        ));
    };
    let mut errors = Map::new();
    let mut fail = |field: &str, message: String| {
        errors.insert(field.into(), json!([message]));
    };
    let name = match obj.get("name") {
        None | Some(Value::Null) => {
            fail("name", "This field is required.".into());
            None
        }
        Some(Value::String(s)) => TokenName::parse(s).map_err(|m| fail("name", m)).ok(),
        Some(_) => {
            fail("name", "Not a valid string.".into());
            None
        }
    };
    let description = match obj.get("description") {
        None | Some(Value::Null) => TokenDescription::parse(None).ok(),
        Some(Value::String(s)) => TokenDescription::parse(Some(s))
            .map_err(|m| fail("description", m))
            .ok(),
        Some(_) => {
            fail("description", "Not a valid string.".into());
            None
        }
    };
    let expiry = match obj.get("exp_date") {
        None => {
            fail(
                "exp_date",
                "This field is required (null for a token that never expires).".into(),
            );
            None
        }
        Some(Value::Null) => Some(Expiry::NEVER),
        Some(Value::String(s)) => match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(at) => Expiry::at(at.replace_nanosecond(0).unwrap_or(at), now)
                .map_err(|m| fail("exp_date", m))
                .ok(),
            Err(_) => {
                fail(
                    "exp_date",
                    "Use an RFC 3339 date and time, like 2026-12-31T23:59:59Z.".into(),
                );
                None
            }
        },
        Some(_) => {
            fail("exp_date", "Use an RFC 3339 date and time, or null.".into());
            None
        }
    };
    let role = parse_role(obj.get("client_user").and_then(|c| c.get("role")));
    let role = match role {
        Ok(role) => Some(role),
        Err(message) => {
            errors.insert("client_user".into(), json!({ "role": [message] }));
            None
        }
    };
    match (name, description, expiry, role) {
        (Some(name), Some(description), Some(expiry), Some(role)) if errors.is_empty() => {
            Ok(NewTokenRequest {
                name,
                description,
                role,
                expiry,
                form_id: None,
            })
        }
        _ => Err(ApiError::Validation(Value::Object(errors))),
    }
}

/// `{"id": 5}`, `{"name": "Engineers"}` or both (then they must agree).
fn parse_role(value: Option<&Value>) -> Result<Role, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Err("This field is required.".into());
    };
    let by_id = match value.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let shown = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            let id = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
            Some(
                id.and_then(|id| i32::try_from(id).ok())
                    .and_then(Role::from_id)
                    .ok_or(format!("Invalid role: {shown}"))?,
            )
        }
    };
    let by_name = match value.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Role::from_name(s).ok_or(format!("Invalid role: {s}"))?),
        Some(v) => return Err(format!("Invalid role: {v}")),
    };
    match (by_id, by_name) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "Invalid role: id {} and name {} are different roles",
            a.id(),
            b.name()
        )),
        (Some(r), _) | (None, Some(r)) => Ok(r),
        (None, None) => Err("This field is required.".into()),
    }
}

async fn list(
    state: &AppState,
    caller: ApiCaller,
    client_id: &str,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    own_account(&caller, client_id)?;
    let query = parse_list_query(req.query_string())?;
    let now = state.clock.now();
    let actor = caller.0.actor;
    let page = state
        .db(move |conn| tokens::list(conn, &actor, &query, now))
        .await?;
    let body: Vec<ApiToken> = page.tokens.iter().map(|t| ApiToken::new(t, now)).collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn create(
    state: &AppState,
    caller: ApiCaller,
    client_id: &str,
    body: Value,
    sep: Separator,
) -> Result<HttpResponse, ApiError> {
    own_account(&caller, client_id)?;
    let now = state.clock.now();
    let request = parse_create(&body, now)?;
    let actor = caller.0.actor;
    let outcome = state
        .db(move |conn| tokens::create(conn, &actor, &request, now))
        .await?;
    let CreateOutcome::Created { token, secret } = outcome else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "API creates carry no form id"
        )));
    };
    tracing::info!(token_id = token.id, "token created through the API");
    let body = ApiTokenCreated {
        details: ApiToken::new(&token, now),
        token: wire_form(token.id, sep, &secret),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

async fn get(
    state: &AppState,
    caller: ApiCaller,
    client_id: &str,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    own_account(&caller, client_id)?;
    let id = token_id(id)?;
    let now = state.clock.now();
    let actor = caller.0.actor;
    let token = state
        .db(move |conn| tokens::get(conn, &actor, id, now))
        .await?;
    Ok(HttpResponse::Ok().json(ApiToken::new(&token, now)))
}

async fn delete(
    state: &AppState,
    caller: ApiCaller,
    client_id: &str,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    own_account(&caller, client_id)?;
    let id = token_id(id)?;
    state.delete_token(caller.0.actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

type TokenPath = web::Path<(String, String)>;

/// List the tokens the caller may see (Administrators: the whole account).
#[utoipa::path(get, path = "/iam/clients/{clientId}/tokens", tag = "tokens",
    params(("clientId" = i64, Path), ("role" = Option<String>, Query), ("issued_by" = Option<i64>, Query),
           ("not_issued_by" = Option<i64>, Query), ("deleted" = Option<bool>, Query), ("status" = Option<String>, Query)),
    responses((status = 200, body = [ApiToken]), (status = 400), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
pub async fn list_v1(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(&state, caller, &path, &req).await
}

/// The same as v1.
#[utoipa::path(get, path = "/iam/v2/clients/{clientId}/tokens", tag = "tokens",
    params(("clientId" = i64, Path), ("role" = Option<String>, Query), ("issued_by" = Option<i64>, Query),
           ("not_issued_by" = Option<i64>, Query), ("deleted" = Option<bool>, Query), ("status" = Option<String>, Query)),
    responses((status = 200, body = [ApiToken]), (status = 400), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
pub async fn list_v2(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(&state, caller, &path, &req).await
}

/// Create a token; the answer carries it as `<id>$<secret>`, once.
#[utoipa::path(post, path = "/iam/clients/{clientId}/tokens", tag = "tokens", params(("clientId" = i64, Path)),
    request_body(content = Object, description = "name, description, exp_date (RFC 3339 or null), client_user.role {id, name}"),
    responses((status = 200, body = ApiTokenCreated), (status = 400), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
pub async fn create_v1(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    create(&state, caller, &path, body.into_inner(), Separator::Dollar).await
}

/// Create a token; the answer carries it as `<id>_<secret>`, once.
#[utoipa::path(post, path = "/iam/v2/clients/{clientId}/tokens", tag = "tokens", params(("clientId" = i64, Path)),
    request_body(content = Object, description = "name, description, exp_date (RFC 3339 or null), client_user.role {id, name}"),
    responses((status = 200, body = ApiTokenCreated), (status = 400), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
pub async fn create_v2(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    create(
        &state,
        caller,
        &path,
        body.into_inner(),
        Separator::Underscore,
    )
    .await
}

#[utoipa::path(get, path = "/iam/clients/{clientId}/tokens/{tokenId}", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)),
    responses((status = 200, body = ApiToken), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
pub async fn get_v1(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: TokenPath,
) -> Result<HttpResponse, ApiError> {
    get(&state, caller, &path.0, &path.1).await
}

#[utoipa::path(get, path = "/iam/v2/clients/{clientId}/tokens/{tokenId}", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)),
    responses((status = 200, body = ApiToken), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
pub async fn get_v2(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: TokenPath,
) -> Result<HttpResponse, ApiError> {
    get(&state, caller, &path.0, &path.1).await
}

/// Delete (soft) a token; it is refused from then on.
#[utoipa::path(delete, path = "/iam/clients/{clientId}/tokens/{tokenId}", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)),
    responses((status = 204), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
pub async fn delete_v1(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: TokenPath,
) -> Result<HttpResponse, ApiError> {
    delete(&state, caller, &path.0, &path.1).await
}

#[utoipa::path(delete, path = "/iam/v2/clients/{clientId}/tokens/{tokenId}", tag = "tokens",
    params(("clientId" = i64, Path), ("tokenId" = i64, Path)),
    responses((status = 204), (status = 401, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
pub async fn delete_v2(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: TokenPath,
) -> Result<HttpResponse, ApiError> {
    delete(&state, caller, &path.0, &path.1).await
}
