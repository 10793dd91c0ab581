//! The account's security settings through the API (ours): whether everyone who signs in with
//! a password must have a second factor.

use actix_web::{get, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use crate::domain::AccountId;
use crate::web::ids::Id;
use crate::web::AppState;

/// The account's security settings (ours).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiSecurity {
    /// Everyone who signs in with a password must have a second factor (SSO people are exempt).
    pub mfa_required: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SecurityBody {
    #[serde(default)]
    #[schema(value_type = bool)]
    mfa_required: Field<bool>,
}

/// The account's security settings (ours; any user of the account may read them).
#[utoipa::path(tag = "users", params(("clientId" = i64, Path)),
    responses((status = 200, body = ApiSecurity), (status = 401, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/security")]
pub async fn get_security(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let mfa_required = state.people.mfa_required(caller.0.actor).await?;
    Ok(HttpResponse::Ok().json(ApiSecurity { mfa_required }))
}

/// Require a second factor of everyone who signs in with a password, or stop (ours;
/// Administrators who have one themselves).
#[utoipa::path(tag = "users", params(("clientId" = i64, Path)),
    request_body = SecurityBody,
    responses((status = 200, body = ApiSecurity), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[put("/iam/clients/{clientId}/security")]
pub async fn put_security(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    body: JsonBody<SecurityBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    caller.0.actor.require_admin()?;
    let mut errors = BodyErrors::default();
    let required = match body.into_inner().mfa_required {
        Field::Value(b) => Some(b),
        _ => {
            errors.set("mfa_required", "This field is required: true or false.");
            None
        }
    };
    let required = errors.finish(required)?;
    let mfa_required = state
        .people
        .set_mfa_required(caller.0.actor, required)
        .await?;
    Ok(HttpResponse::Ok().json(ApiSecurity { mfa_required }))
}
