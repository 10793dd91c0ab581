//! Service accounts through the API (ours; issue 29): `/iam/clients/{clientId}/service-accounts…`,
//! and the tokens an Administrator issues them.

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use super::model::{rfc3339, ApiToken, ApiTokenCreated, RoleRef};
use super::tokens::CreateTokenBody;
use crate::domain::input::PersonName;
use crate::domain::token::{wire_form, Separator};
use crate::domain::{AccountId, Role, ServiceAccountId};
use crate::services::people::service_accounts::{
    check_description, NewServiceAccount, ServiceAccountView,
};
use crate::services::tokens::CreateOutcome;
use crate::web::ids::Id;
use crate::web::AppState;

/// A service account: a machine's identity that holds tokens (no e-mail, no sign-in).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiServiceAccount {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// Its role ceiling: its tokens' roles are at most this.
    pub role: RoleRef,
    pub created_at: String,
}

impl From<ServiceAccountView> for ApiServiceAccount {
    fn from(v: ServiceAccountView) -> ApiServiceAccount {
        ApiServiceAccount {
            id: v.id.get(),
            name: v.name,
            description: v.description,
            role: v.role.into(),
            created_at: rfc3339(v.created_at),
        }
    }
}

/// A service account to add.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ServiceAccountBody {
    #[serde(default)]
    #[schema(value_type = String)]
    name: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    description: Field<String>,
    /// `{"id": 3009}` or `{"name": "Engineers"}`.
    #[serde(default)]
    #[schema(value_type = RoleBody)]
    role: Field<RoleBody>,
}

/// A role as the body names it: `{"id": N}` or `{"name": "…"}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RoleBody {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
}

/// The role a `role` field names, or its problem under `field`.
pub fn role_field(
    value: &Field<RoleBody>,
    field: &'static str,
    errors: &mut BodyErrors,
) -> Option<Role> {
    let role = match value {
        Field::Value(RoleBody { id: Some(id), .. }) => {
            i32::try_from(*id).ok().and_then(Role::from_id)
        }
        Field::Value(RoleBody {
            name: Some(name), ..
        }) => Role::from_name(name),
        _ => None,
    };
    if role.is_none() {
        errors.set(field, ROLE_HELP);
    }
    role
}

pub const ROLE_HELP: &str =
    "A role as {\"id\": 3009} or {\"name\": \"Engineers\"} (ids: Administrators 1, Engineers 5, Purge and Prefetch only (API+Web) 3009, Purge and Prefetch only (API) 3022, Users 2).";

/// The account's service accounts (ours; Administrators).
#[utoipa::path(tag = "service accounts", params(("clientId" = i64, Path)),
    responses((status = 200, body = [ApiServiceAccount]), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/service-accounts")]
pub async fn list_service_accounts(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let list = state.people.service_accounts(caller.0.actor).await?;
    Ok(HttpResponse::Ok().json(
        list.into_iter()
            .map(ApiServiceAccount::from)
            .collect::<Vec<_>>(),
    ))
}

/// Add a service account (ours; Administrators). Audited.
#[utoipa::path(tag = "service accounts", params(("clientId" = i64, Path)), request_body = ServiceAccountBody,
    responses((status = 201, body = ApiServiceAccount), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/{clientId}/service-accounts")]
pub async fn create_service_account(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    body: JsonBody<ServiceAccountBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    caller.0.actor.require_admin()?;
    let body = body.into_inner();
    let mut errors = BodyErrors::default();
    let name = match body.name {
        Field::Value(n) => PersonName::parse(&n)
            .map_err(|m| errors.set("name", m))
            .ok(),
        _ => {
            errors.set(
                "name",
                "This field is required: what the machine is, like \"deploy bot\".",
            );
            None
        }
    };
    let description = match body.description {
        Field::Value(d) => check_description(&d)
            .map_err(|m| errors.set("description", m))
            .ok(),
        Field::Absent | Field::Null => Some(String::new()),
        Field::WrongType(_) => {
            errors.set("description", "A string.");
            None
        }
    };
    let role = role_field(&body.role, "role", &mut errors);
    let new = match (name, description, role) {
        (Some(name), Some(description), Some(role)) => Some(NewServiceAccount {
            name,
            description,
            role,
        }),
        _ => None,
    };
    let new = errors.finish(new)?;
    let view = state
        .people
        .create_service_account(caller.0.actor, new)
        .await?;
    Ok(HttpResponse::Created().json(ApiServiceAccount::from(view)))
}

/// One service account (ours; Administrators).
#[utoipa::path(tag = "service accounts", params(("clientId" = i64, Path), ("serviceAccountId" = i64, Path)),
    responses((status = 200, body = ApiServiceAccount), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/service-accounts/{serviceAccountId}")]
pub async fn get_service_account(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<ServiceAccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let view = state
        .people
        .service_account(caller.0.actor, id.get())
        .await?;
    if view.removed_at.is_some() {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::Ok().json(ApiServiceAccount::from(view)))
}

/// Remove a service account: its tokens end, and the trust policies that mint them go (ours;
/// Administrators). Audited.
#[utoipa::path(tag = "service accounts", params(("clientId" = i64, Path), ("serviceAccountId" = i64, Path)),
    responses((status = 204), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[delete("/iam/clients/{clientId}/service-accounts/{serviceAccountId}")]
pub async fn remove_service_account(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<ServiceAccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    state
        .people
        .remove_service_account(caller.0.actor, id.get())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create a token of a service account, with the usual token body (ours; Administrators). The
/// answer carries it as `<id>$<secret>`, once. It belongs to the service account: it has no
/// parent token, and outlives the person who made it.
#[utoipa::path(tag = "service accounts", params(("clientId" = i64, Path), ("serviceAccountId" = i64, Path)),
    request_body = CreateTokenBody,
    responses((status = 200, body = ApiTokenCreated), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/{clientId}/service-accounts/{serviceAccountId}/tokens")]
pub async fn create_service_account_token(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<ServiceAccountId>,
    body: JsonBody<CreateTokenBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    caller.0.actor.require_admin()?;
    let now = state.clock().now();
    let request = body.into_inner().parse(now)?;
    let outcome = state
        .tokens
        .create_service_account_token(caller.0.actor, id.get(), request)
        .await
        .map_err(|e| ApiError::from_service(e, super::tokens::CREATE_FIELDS))?;
    let CreateOutcome::Created { token, secret } = outcome else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "API creates carry no form id"
        )));
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ApiTokenCreated {
            details: ApiToken::new(&token, now),
            token: wire_form(token.id, Separator::Dollar, &secret),
        }))
}
