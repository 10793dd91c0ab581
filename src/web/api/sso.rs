//! An account's single sign-on through the API (ours): `GET`/`PUT`/`DELETE
//! /iam/clients/{clientId}/sso`, Administrators only. OpenID Connect today; SAML's body
//! (`"protocol": "saml"`) is refused with a message saying so.

use actix_web::{delete, get, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use crate::domain::{AccountId, Role};
use crate::services::people::sso_flow::{SsoChange, SsoView};
use crate::web::ids::Id;
use crate::web::AppState;

/// An account's single sign-on (ours): the configuration (never the client secret) and what
/// the identity provider needs from us.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiSso {
    pub enabled: bool,
    /// `"oidc"`, or null when SSO is off.
    pub protocol: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// The account's people sign in only through SSO (Administrators keep a break-glass
    /// password sign-in, audited).
    pub required: bool,
    /// The role of a person the provider vouches for but the account doesn't know, added at
    /// their first sign-in; null: nobody is added.
    pub jit_role: Option<String>,
    /// The redirect (callback) URI to register at the provider.
    pub redirect_uri: String,
    /// The account's own sign-in link (how people new to the server arrive for JIT).
    pub sign_in_url: String,
}

impl From<SsoView> for ApiSso {
    fn from(v: SsoView) -> ApiSso {
        ApiSso {
            enabled: v.enabled,
            protocol: v.enabled.then(|| "oidc".to_owned()),
            issuer: v.enabled.then_some(v.issuer),
            client_id: v.enabled.then_some(v.client_id),
            required: v.required,
            jit_role: v.jit_role.map(|r| r.name().to_owned()),
            redirect_uri: v.redirect_uri,
            sign_in_url: v.sign_in_url,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SsoBody {
    /// `"oidc"` (`"saml"` is not available yet).
    #[serde(default)]
    #[schema(value_type = String)]
    protocol: Field<String>,
    #[serde(default)]
    #[schema(value_type = String)]
    issuer: Field<String>,
    #[serde(default)]
    #[schema(value_type = String)]
    client_id: Field<String>,
    /// Required the first time; absent or empty later keeps the stored one.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    client_secret: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    required: Field<bool>,
    /// A role name or id, or null.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    jit_role: Field<serde_json::Value>,
}

/// The account's single sign-on (ours; Administrators).
#[utoipa::path(tag = "users", params(("clientId" = i64, Path)),
    responses((status = 200, body = ApiSso), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/sso")]
pub async fn get_sso(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let view = state.people.sso_config(caller.0.actor).await?;
    Ok(HttpResponse::Ok().json(ApiSso::from(view)))
}

/// Set the account's single sign-on (ours; Administrators): OpenID Connect with the issuer
/// (its discovery document is fetched now), the client id and secret, `required` and
/// `jit_role`. Audited.
#[utoipa::path(tag = "users", params(("clientId" = i64, Path)),
    request_body = SsoBody,
    responses((status = 200, body = ApiSso), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[put("/iam/clients/{clientId}/sso")]
pub async fn put_sso(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    body: JsonBody<SsoBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    caller.0.actor.require_admin()?;
    let body = body.into_inner();
    let mut errors = BodyErrors::default();
    match &body.protocol {
        Field::Value(p) if p == "oidc" => {}
        Field::Value(p) if p == "saml" => errors.set(
            "protocol",
            "SAML isn't available here yet: use OpenID Connect (\"oidc\"), which Okta, Entra ID and Google Workspace all offer.",
        ),
        _ => errors.set("protocol", "This field is required: \"oidc\"."),
    }
    let text = |f: &Field<String>, name: &str, errors: &mut BodyErrors| match f {
        Field::Value(v) => Some(v.clone()),
        _ => {
            errors.set(name, "This field is required.");
            None
        }
    };
    let issuer = text(&body.issuer, "issuer", &mut errors);
    let client_id = text(&body.client_id, "client_id", &mut errors);
    let client_secret = match &body.client_secret {
        Field::Value(v) => Some(v.clone()),
        Field::Absent | Field::Null => None,
        Field::WrongType(_) => {
            errors.set("client_secret", "A string.");
            None
        }
    };
    let required = match &body.required {
        Field::Value(b) => *b,
        Field::Absent | Field::Null => false,
        Field::WrongType(_) => {
            errors.set("required", "true or false.");
            false
        }
    };
    let jit_role = match &body.jit_role {
        Field::Absent | Field::Null => None,
        Field::Value(v) => {
            let role = match v {
                serde_json::Value::String(s) => Role::parse(s),
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .and_then(Role::from_id),
                _ => None,
            };
            if role.is_none() {
                errors.set(
                    "jit_role",
                    "A role's name or id (for example \"Engineers\"), or null.",
                );
            }
            role
        }
        Field::WrongType(_) => {
            errors.set("jit_role", "A role's name or id, or null.");
            None
        }
    };
    let (issuer, client_id) = errors.finish(issuer.zip(client_id))?;
    let view = state
        .people
        .set_sso(
            caller.0.actor,
            SsoChange {
                issuer,
                client_id,
                client_secret,
                required,
                jit_role,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ApiSso::from(view)))
}

/// Turn the account's single sign-on off (ours; Administrators). Audited.
#[utoipa::path(tag = "users", params(("clientId" = i64, Path)),
    responses((status = 204), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[delete("/iam/clients/{clientId}/sso")]
pub async fn delete_sso(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    state.people.delete_sso(caller.0.actor).await?;
    Ok(HttpResponse::NoContent().finish())
}
