//! `/iam/users...` and `/iam/clients/me`.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde_json::json;

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
    for (key, value) in url_pairs(req.query_string()) {
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
