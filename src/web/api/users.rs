//! `/iam/users...` and `/iam/clients/me`.

use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::domain::input::{Email, Language, PersonName};
use crate::domain::{AuthType, Role};
use crate::error::ServiceError;
use crate::services::people::members::{NewMember, UserUpdate};
use crate::services::ADMINS_ONLY;

use super::auth::{url_pairs, ApiCaller};
use super::body::{BodyErrors, Field, JsonBody, RoleBody};
use super::error::{ApiError, FieldPaths};
use super::model::{ApiUser, ClientOverview, Message, UserRole, UsersList, UsersPage};
use crate::domain::{AccountId, UserId};
use crate::web::ids::Id;
use crate::web::AppState;

/// The caller's own user.
#[utoipa::path(tag = "users",
    responses((status = 200, body = ApiUser), (status = 401, body = Message)), security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/users/me")]
pub async fn me(state: web::Data<AppState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    let actor = caller.0.actor;
    let id = actor.user_id;
    let (user, account) = state.people.user(actor, id).await?;
    Ok(HttpResponse::Ok().json(ApiUser::new(&user, &account)))
}

/// A user of the caller's account (Administrators: anyone; others: themselves).
#[utoipa::path(tag = "users", params(("userId" = i64, Path)),
    responses((status = 200, body = ApiUser), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/users/{userId}")]
pub async fn one(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.get();
    let (user, account) = state.people.user(caller.0.actor, id).await?;
    Ok(HttpResponse::Ok().json(ApiUser::new(&user, &account)))
}

/// Most users one page of `GET /iam/users?limit=` may ask for.
const MAX_PAGE: i64 = 1000;

/// The account's users; needs an Administrators credential (a token's own role counts).
/// Without `limit`: an array of every user (older clients). With `limit` (and `offset`):
/// `{"count": <all users>, "results": [...]}`, as Gcore's SDK pages it.
#[utoipa::path(tag = "users",
    params(("limit" = Option<i64>, Query, description = "page size, 1-1000; turns the answer into {count, results}"),
           ("offset" = Option<i64>, Query, description = "users to skip")),
    responses((status = 200, body = UsersList, description = "with limit, a page; without it, an array of every user"),
              (status = 400), (status = 401, body = Message), (status = 403, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/users")]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ApiCaller,
) -> Result<HttpResponse, ApiError> {
    let (mut limit, mut offset) = (None, 0_i64);
    let mut errors = BodyErrors::default();
    for (key, value) in url_pairs(req.query_string())? {
        let number = value.parse::<i64>().ok();
        match key.as_str() {
            "limit" => match number.filter(|n| (1..=MAX_PAGE).contains(n)) {
                Some(n) => limit = Some(n),
                None => errors.set(
                    "limit",
                    format!("A whole number from 1 to {MAX_PAGE} is required."),
                ),
            },
            "offset" => match number.filter(|n| *n >= 0) {
                Some(n) => offset = n,
                None => errors.set("offset", "A valid non-negative integer is required."),
            },
            _ => {}
        }
    }
    errors.finish(Some(()))?;
    let page = state
        .people
        .account_users(caller.0.actor, limit.unwrap_or(i64::MAX), offset)
        .await?;
    let users: Vec<ApiUser> = page
        .users
        .iter()
        .map(|u| ApiUser::new(u, &page.account))
        .collect();
    Ok(HttpResponse::Ok().json(match limit {
        None => UsersList::All(users),
        Some(_) => UsersList::Page(UsersPage {
            count: page.total,
            results: users,
        }),
    }))
}

/// The caller's account.
#[utoipa::path(tag = "users",
    responses((status = 200, body = ClientOverview), (status = 401, body = Message)), security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/me")]
pub async fn client(
    state: web::Data<AppState>,
    caller: ApiCaller,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.0.actor;
    let current = actor.user_id;
    let (account, admin_email, visible) = state.people.account_overview(actor).await?;
    let body = ClientOverview {
        id: account.id.get(),
        email: admin_email.clone().unwrap_or_default(),
        companyName: account.name.clone(),
        currentUser: current.get(),
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

/// `PATCH /iam/users/{id}`: every field optional (see `body::Field`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateUserBody {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    name: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    phone: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    lang: Field<String>,
    /// Administrators only; the same rules as in the portal (valid, unique, lower-cased).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    email: Field<String>,
    /// The user's sign-in method, `["password"]` or `["sso"]`: accepted when unchanged; a
    /// change is refused (remove and add the user again).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    auth_types: Field<Vec<String>>,
    /// `[{"id": <role id>}]`: changes the role under the token rule.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    groups: Field<Vec<Value>>,
}

/// Where the member service's field errors go in a `PATCH /iam/users/{id}` answer.
const UPDATE_FIELDS: FieldPaths = &[("role", &["groups"])];

/// `{"id": 5}`, `{"name": "Engineers"}` or both, as one element of `groups` or `user_role`;
/// anything else is `Invalid role: <the JSON sent>`.
fn role_of_json(value: &Value) -> Result<Role, String> {
    serde_json::from_value::<RoleBody>(value.clone())
        .ok()
        .and_then(|body| Role::try_from(body).ok())
        .ok_or_else(|| format!("Invalid role: {value}"))
}

impl TryFrom<UpdateUserBody> for UserUpdate {
    type Error = ApiError;

    fn try_from(body: UpdateUserBody) -> Result<UserUpdate, ApiError> {
        let mut errors = BodyErrors::default();
        let mut change = UserUpdate::default();
        match body.name {
            Field::Absent => {}
            Field::Null => change.name = Some(None),
            Field::Value(s) => match PersonName::parse(&s) {
                Ok(n) => change.name = Some(Some(n)),
                Err(m) => errors.set("name", m),
            },
            Field::WrongType(_) => errors.set("name", "Not a valid string."),
        }
        match body.phone {
            Field::Absent => {}
            Field::Null => change.phone = Some(None),
            Field::Value(s)
                if s.len() <= 32
                    && s.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) =>
            {
                change.phone = Some(Some(s.trim().to_string()))
            }
            Field::Value(_) | Field::WrongType(_) => errors.set(
                "phone",
                "Enter a phone number of digits, spaces and + - ( ).",
            ),
        }
        match body.lang {
            Field::Absent => {}
            Field::Value(l) => match Language::parse(&l) {
                Ok(l) => change.lang = Some(l),
                Err(m) => errors.set("lang", m),
            },
            Field::Null | Field::WrongType(_) => errors.set("lang", "Not a valid string."),
        }
        match body.email {
            Field::Absent => {}
            Field::Value(s) => match Email::parse(&s) {
                Ok(e) => change.email = Some(e),
                Err(m) => errors.set("email", m),
            },
            Field::Null | Field::WrongType(_) => {
                errors.set("email", "Enter a valid e-mail address.")
            }
        }
        match body.auth_types {
            Field::Absent => {}
            Field::Value(types) if types.len() == 1 => {
                match AuthType::parse(&types[0]).filter(|t| *t != AuthType::Service) {
                    Some(t) => change.auth_type = Some(t),
                    None => errors.set(
                        "auth_types",
                        format!(
                            "\"{}\" sign-in is not offered here: use [\"password\"] or [\"sso\"].",
                            types[0]
                        ),
                    ),
                }
            }
            _ => errors.set(
                "auth_types",
                "Give exactly one sign-in method: [\"password\"] or [\"sso\"].",
            ),
        }
        match body.groups {
            Field::Absent => {}
            Field::Value(groups) if groups.len() == 1 => match role_of_json(&groups[0]) {
                Ok(role) => change.role = Some(role),
                Err(m) => errors.set("groups", m),
            },
            _ => errors.set("groups", "Give exactly one group: [{\"id\": <role id>}]."),
        }
        errors.finish(Some(change))
    }
}

/// Change a user's name, phone, language or role (`groups: [{"id": ...}]`). Changing someone
/// else, or any role, needs an Administrators credential.
#[utoipa::path(tag = "users", params(("userId" = i64, Path)),
    request_body = UpdateUserBody,
    responses((status = 200, body = ApiUser), (status = 400), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[patch("/iam/users/{userId}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: Id<UserId>,
    body: JsonBody<UpdateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.get();
    let change = UserUpdate::try_from(body.into_inner())?;
    let (user, account) = state
        .people
        .update_user(caller.0.actor, id, change)
        .await
        .map_err(|e| ApiError::from_service(e, UPDATE_FIELDS))?;
    Ok(HttpResponse::Ok().json(ApiUser::new(&user, &account)))
}

/// `POST /iam/clients/invite_user`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct InviteBody {
    #[serde(default)]
    #[schema(value_type = i64)]
    client_id: Field<i64>,
    #[serde(default)]
    #[schema(value_type = String)]
    email: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    name: Field<String>,
    /// `{"id": 5, "name": "Engineers"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    user_role: Field<Value>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    lang: Field<String>,
}

/// Where the member service's field errors go in an invitation's answer.
const INVITE_FIELDS: FieldPaths = &[("role", &["user_role"])];

/// Add a user to the account and e-mail them a link to set their password.
#[utoipa::path(tag = "users",
    request_body = InviteBody,
    responses((status = 200, description = "{\"status\": \"sent\", \"user_id\": <id>}"), (status = 400), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/invite_user")]
pub async fn invite(
    state: web::Data<AppState>,
    caller: ApiCaller,
    body: JsonBody<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let actor = caller.0.actor;
    actor.require_admin()?;
    match body.client_id {
        Field::Value(id) if id == actor.account_id.get() => {}
        Field::Value(_) => return Err(ApiError::NotFound),
        _ => return Err(ApiError::field("client_id", "This field is required.")),
    }
    let mut errors = BodyErrors::default();
    let email = match body.email {
        Field::Value(s) => Email::parse(&s).map_err(|m| errors.set("email", m)).ok(),
        _ => {
            errors.set("email", "This field is required.");
            None
        }
    };
    let name = match body.name {
        Field::Absent | Field::Null => None,
        Field::Value(s) if s.trim().is_empty() => None,
        Field::Value(s) => PersonName::parse(&s)
            .map_err(|m| errors.set("name", m))
            .ok(),
        Field::WrongType(_) => {
            errors.set("name", "Not a valid string.");
            None
        }
    };
    let lang = match body.lang {
        Field::Absent | Field::Null => None,
        Field::Value(l) => Language::parse(&l).map_err(|m| errors.set("lang", m)).ok(),
        Field::WrongType(_) => {
            errors.set("lang", "Not a valid string.");
            None
        }
    };
    let sent = match body.user_role {
        Field::Value(v) | Field::WrongType(v) => v,
        Field::Absent | Field::Null => Value::Null,
    };
    let role = role_of_json(&sent)
        .map_err(|m| errors.set("user_role", m))
        .ok();
    let (email, role) = match (email, role) {
        (Some(e), Some(r)) if errors.is_empty() => (e, r),
        _ => return errors.finish(None),
    };
    let member = NewMember {
        email,
        name,
        role,
        sso: false,
        lang,
    };
    let invited = state
        .people
        .invite(actor, member)
        .await
        .map_err(|e| ApiError::from_service(e, INVITE_FIELDS))?;
    Ok(HttpResponse::Ok().json(json!({ "status": "sent", "user_id": invited.user.id })))
}

/// Gcore's words for a management call by someone who isn't an Administrator.
const NO_PERMISSION: &str = "You do not have permission to perform this action.";

/// A service refusal as the `client-users` endpoints word it: the services' one
/// "Administrators only" refusal in Gcore's words, the rest as everywhere.
fn in_gcores_words(e: ServiceError, paths: FieldPaths) -> ApiError {
    match e {
        ServiceError::Forbidden(m) if m == ADMINS_ONLY => ApiError::Forbidden(NO_PERMISSION.into()),
        other => ApiError::from_service(other, paths),
    }
}

/// Remove a user from the account (200). Refused (403) while they have active tokens.
#[utoipa::path(tag = "users",
    params(("clientId" = i64, Path), ("userId" = i64, Path)),
    responses((status = 200, description = "removed; empty body"), (status = 400, description = "it would leave the account without an Administrator"),
              (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[delete("/iam/clients/{clientId}/client-users/{userId}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let id = id.get();
    state
        .people
        .remove_user(caller.0.actor, id, false)
        .await
        .map_err(|e| in_gcores_words(e, &[]))?;
    Ok(HttpResponse::Ok().finish())
}

/// A user's role in the account: `{"user_role": {"id": 5, "name": "Engineers"}}`.
#[utoipa::path(tag = "users",
    params(("clientId" = i64, Path), ("userId" = i64, Path)),
    responses((status = 200, body = UserRole), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/client-users/{userId}")]
pub async fn get_role(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<UserId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let actor = caller.0.actor;
    let id = id.get();
    let (user, _) = state.people.user(actor, id).await?;
    Ok(HttpResponse::Ok().json(UserRole {
        user_role: user.role.into(),
    }))
}

/// `PUT /iam/clients/{clientId}/client-users/{userId}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UserRoleBody {
    /// `{"id": 5, "name": "Engineers"}`, either key or both.
    #[serde(default)]
    #[schema(value_type = Object)]
    user_role: Field<Value>,
}

/// Change a user's role (204), under the token rule: lowering it below an active token the
/// user issued is refused (403) naming the rule; the portal offers to delete those tokens.
#[utoipa::path(tag = "users",
    params(("clientId" = i64, Path), ("userId" = i64, Path)), request_body = UserRoleBody,
    responses((status = 204), (status = 400), (status = 401, body = Message), (status = 403, body = Message), (status = 404, body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[put("/iam/clients/{clientId}/client-users/{userId}")]
pub async fn set_role(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<UserId>,
    body: JsonBody<UserRoleBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let actor = caller.0.actor;
    let id = id.get();
    let sent = match body.into_inner().user_role {
        Field::Value(v) | Field::WrongType(v) => v,
        Field::Absent | Field::Null => Value::Null,
    };
    let role = role_of_json(&sent).map_err(|m| ApiError::field("user_role", m))?;
    state
        .people
        .change_role(actor, id, role, false)
        .await
        .map_err(|e| in_gcores_words(e, INVITE_FIELDS))?;
    Ok(HttpResponse::NoContent().finish())
}
