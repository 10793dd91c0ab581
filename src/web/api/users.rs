//! `/iam/users...` and `/iam/clients/me`.

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use diesel::Connection;
use serde_json::json;

use crate::domain::input::{Email, PersonName};
use crate::domain::Role;
use crate::services::members;

use super::auth::{url_pairs, ApiCaller};
use super::error::ApiError;
use super::model::{ApiUser, ClientOverview, Message};
use crate::services::users;
use crate::web::AppState;

/// The caller's own user.
#[utoipa::path(get, path = "/iam/users/me", tag = "users",
    responses((status = 200, body = ApiUser), (status = 401, body = Message)), security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/users/me")]
pub async fn me(state: web::Data<AppState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    let actor = caller.0.actor;
    let id = actor.user_id;
    let (user, account) = state
        .db(move |conn| users::visible_user(conn, &actor, id))
        .await?;
    Ok(HttpResponse::Ok().json(ApiUser::new(&user, &account)))
}

/// A user of the caller's account (Administrators: anyone; others: themselves).
#[utoipa::path(get, path = "/iam/users/{userId}", tag = "users", params(("userId" = i64, Path)),
    responses((status = 200, body = ApiUser), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/users/{user_id}")]
pub async fn one(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path.parse().map_err(|_| ApiError::NotFound)?;
    let actor = caller.0.actor;
    let (user, account) = state
        .db(move |conn| users::visible_user(conn, &actor, id))
        .await?;
    Ok(HttpResponse::Ok().json(ApiUser::new(&user, &account)))
}

/// The account's users; needs an Administrators credential (a token's own role counts).
#[utoipa::path(get, path = "/iam/users", tag = "users",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = [ApiUser]), (status = 401, body = Message), (status = 403, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/users")]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
) -> Result<HttpResponse, ApiError> {
    let (mut limit, mut offset) = (1000_i64, 0_i64);
    for (key, value) in url_pairs(req.query_string())? {
        let slot = match key.as_str() {
            "limit" => &mut limit,
            "offset" => &mut offset,
            _ => continue,
        };
        *slot = value
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::field(&key, "A valid non-negative integer is required."))?;
    }
    let actor = caller.0.actor;
    let (list, account) = state
        .db(move |conn| users::account_users(conn, &actor, limit, offset))
        .await?;
    let body: Vec<ApiUser> = list.iter().map(|u| ApiUser::new(u, &account)).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// The caller's account.
#[utoipa::path(get, path = "/iam/clients/me", tag = "users",
    responses((status = 200, body = ClientOverview), (status = 401, body = Message)), security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/me")]
pub async fn client(
    state: web::Data<AppState>,
    caller: ApiCaller,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.0.actor;
    let current = actor.user_id;
    let (account, admin_email, visible) = state
        .db(move |conn| users::account_overview(conn, &actor))
        .await?;
    let body = ClientOverview {
        id: account.id,
        email: admin_email.clone().unwrap_or_default(),
        companyName: account.name.clone(),
        currentUser: current,
        deleted: false,
        has_active_admin: admin_email.is_some(),
        is_test: false,
        status: "active",
        bill_type: "",
        capabilities: vec![],
        freeFeatures: json!({}),
        paidFeatures: json!({}),
        serviceStatuses: json!({}),
        users: visible.iter().map(|u| ApiUser::new(u, &account)).collect(),
    };
    Ok(HttpResponse::Ok().json(body))
}

/// Reads a role from `{"id": 5}`, `{"name": "Engineers"}` or both.
fn role_from(value: &serde_json::Value) -> Option<Role> {
    let by_id = value
        .get("id")
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
    let by_name = value.get("name").and_then(|v| v.as_str());
    match (by_id, by_name) {
        (Some(id), name) => {
            let role = Role::from_id(i32::try_from(id).ok()?)?;
            name.is_none_or(|n| Role::from_name(n) == Some(role))
                .then_some(role)
        }
        (None, Some(name)) => Role::from_name(name),
        (None, None) => None,
    }
}

const LANGUAGES: [&str; 5] = ["en", "ru", "de", "es", "zh"];

/// Change a user's name, phone, language or role (`groups: [{"id": ...}]`). Changing someone
/// else, or any role, needs an Administrators credential.
#[utoipa::path(patch, path = "/iam/users/{userId}", tag = "users", params(("userId" = i64, Path)),
    request_body(content = Object, description = "name, phone, lang, groups: [{id}]"),
    responses((status = 200, body = ApiUser), (status = 400), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[patch("/iam/users/{user_id}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path.parse().map_err(|_| ApiError::NotFound)?;
    let body = body.into_inner();
    let Some(obj) = body.as_object() else {
        return Err(ApiError::field(
            "non_field_errors",
            "Expected a JSON object.",
        ));
    };
    let mut errors = serde_json::Map::new();
    let name = match obj.get("name") {
        None => None,
        Some(v) => match v.as_str().map(PersonName::parse) {
            Some(Ok(n)) => Some(n),
            Some(Err(m)) => {
                errors.insert("name".into(), json!([m]));
                None
            }
            None => {
                errors.insert("name".into(), json!(["Not a valid string."]));
                None
            }
        },
    };
    let phone = match obj.get("phone") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(s))
            if s.len() <= 32 && s.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) =>
        {
            Some(Some(s.trim().to_string()))
        }
        Some(_) => {
            errors.insert(
                "phone".into(),
                json!(["Enter a phone number of digits, spaces and + - ( )."]),
            );
            None
        }
    };
    let lang = match obj.get("lang") {
        None => None,
        Some(v) => match v.as_str().filter(|l| LANGUAGES.contains(l)) {
            Some(l) => Some(l.to_string()),
            None => {
                errors.insert(
                    "lang".into(),
                    json!([format!("Must be one of: {}.", LANGUAGES.join(", "))]),
                );
                None
            }
        },
    };
    let role = match obj.get("groups") {
        None => None,
        Some(serde_json::Value::Array(groups)) if groups.len() == 1 => {
            match role_from(&groups[0]) {
                Some(r) => Some(r),
                None => {
                    errors.insert(
                        "groups".into(),
                        json!([format!("Invalid role: {}", groups[0])]),
                    );
                    None
                }
            }
        }
        Some(_) => {
            errors.insert(
                "groups".into(),
                json!(["Give exactly one group: [{\"id\": <role id>}]."]),
            );
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(serde_json::Value::Object(errors)));
    }
    let actor = caller.0.actor;
    let now = state.clock.now();
    let (changed, user, account) = state
        .db(move |conn| {
            // One transaction: the role change is refused before anything is written.
            conn.transaction(|conn| {
                let changed = match role {
                    Some(role) => members::change_role(conn, &actor, id, role, false, now)?,
                    None => members::Changed::default(),
                };
                if name.is_some() || phone.is_some() || lang.is_some() {
                    members::update_profile(conn, &actor, id, name, phone, lang, now)?;
                }
                let (user, account) = users::visible_user(conn, &actor, id)?;
                Ok((changed, user, account))
            })
        })
        .await?;
    state.forget_tokens(&changed.deleted_tokens);
    Ok(HttpResponse::Ok().json(ApiUser::new(&user, &account)))
}

/// Add a user to the account and e-mail them a link to set their password.
#[utoipa::path(post, path = "/iam/clients/invite_user", tag = "users",
    request_body(content = Object, description = "client_id, email, name, user_role {id, name}, lang"),
    responses((status = 200, description = "{\"user_id\": <id>}"), (status = 400), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/invite_user")]
pub async fn invite(
    state: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let actor = caller.0.actor;
    if !actor.role.is_admin() {
        return Err(ApiError::Forbidden(
            "Only Administrators can manage the users of the account.".into(),
        ));
    }
    match body.get("client_id").and_then(|v| v.as_i64()) {
        Some(id) if id == actor.account_id => {}
        Some(_) => return Err(ApiError::NotFound),
        None => return Err(ApiError::field("client_id", "This field is required.")),
    }
    let mut errors = serde_json::Map::new();
    let email = body.get("email").and_then(|v| v.as_str()).map(Email::parse);
    let name = body
        .get("name")
        .and_then(|v| v.as_str())
        .map(PersonName::parse);
    let role = body.get("user_role").and_then(role_from);
    match &email {
        Some(Err(m)) => drop(errors.insert("email".into(), json!([m]))),
        None => drop(errors.insert("email".into(), json!(["This field is required."]))),
        _ => {}
    }
    match &name {
        Some(Err(m)) => drop(errors.insert("name".into(), json!([m]))),
        None => drop(errors.insert("name".into(), json!(["This field is required."]))),
        _ => {}
    }
    if role.is_none() {
        errors.insert(
            "user_role".into(),
            json!([format!(
                "Invalid role: {}",
                body.get("user_role").unwrap_or(&serde_json::Value::Null)
            )]),
        );
    }
    let (Some(Ok(email)), Some(Ok(name)), Some(role)) = (email, name, role) else {
        return Err(ApiError::Validation(serde_json::Value::Object(errors)));
    };
    let (user, _link, _mailed) = state.invite(actor, email, name, role, false).await?;
    Ok(HttpResponse::Ok().json(json!({ "user_id": user.id })))
}

/// Remove a user from the account. Refused while they have active tokens.
#[utoipa::path(delete, path = "/iam/clients/{clientId}/client-users/{userId}", tag = "users",
    params(("clientId" = i64, Path), ("userId" = i64, Path)),
    responses((status = 204), (status = 400, body = Message), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[delete("/iam/clients/{client_id}/client-users/{user_id}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.0.actor;
    match path.0.parse::<i64>() {
        Ok(id) if id == actor.account_id => {}
        _ => return Err(ApiError::NotFound),
    }
    let id: i64 = path.1.parse().map_err(|_| ApiError::NotFound)?;
    let now = state.clock.now();
    let changed = state
        .db(move |conn| members::remove(conn, &actor, id, false, now))
        .await?;
    state.forget_tokens(&changed.deleted_tokens);
    Ok(HttpResponse::NoContent().finish())
}
