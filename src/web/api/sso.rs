//! An account's single sign-on through the API (ours): `GET`/`PUT`/`DELETE
//! /iam/clients/{clientId}/sso`, Administrators only: OpenID Connect or SAML 2.0.

use actix_web::{delete, get, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use crate::domain::{AccountId, Role};
use crate::services::people::sso_flow::{SsoChange, SsoProtocol, SsoSetting, SsoView};
use crate::web::ids::Id;
use crate::web::AppState;

/// An account's single sign-on (ours): the configuration (never the client secret) and what
/// the identity provider needs from us.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiSso {
    pub enabled: bool,
    /// `"oidc"` or `"saml"`, or null when SSO is off.
    pub protocol: Option<String>,
    /// OpenID Connect: the issuer.
    pub issuer: Option<String>,
    /// OpenID Connect: our client id there.
    pub client_id: Option<String>,
    /// SAML: the IdP's metadata as given, its entity id and its sign-on URL (from the metadata).
    pub idp_metadata: Option<String>,
    pub idp_entity_id: Option<String>,
    pub idp_sso_url: Option<String>,
    /// SAML: whether a response that answers no request of ours (IdP-initiated) is accepted.
    pub idp_initiated: bool,
    /// The account's people sign in only through SSO (Administrators keep a break-glass
    /// password sign-in, audited).
    pub required: bool,
    /// The role of a person the provider vouches for but the account doesn't know, added at
    /// their first sign-in; null: nobody is added.
    pub jit_role: Option<String>,
    /// OpenID Connect: the redirect (callback) URI to register at the provider.
    pub redirect_uri: String,
    /// SAML: what the IdP needs from us: our entity id (the assertions' audience), our
    /// Assertion Consumer Service (HTTP-POST), and our SP metadata's URL.
    pub sp_entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
    /// The account's own sign-in link (how people new to the server arrive for JIT).
    pub sign_in_url: String,
}

impl From<SsoView> for ApiSso {
    fn from(v: SsoView) -> ApiSso {
        let oidc = v.protocol == Some(SsoProtocol::Oidc);
        let saml = v.protocol == Some(SsoProtocol::Saml);
        ApiSso {
            enabled: v.enabled,
            protocol: v.protocol.map(|p| p.name().to_owned()),
            issuer: oidc.then(|| v.issuer.clone()),
            client_id: oidc.then_some(v.client_id),
            idp_metadata: saml.then_some(v.idp_metadata),
            idp_entity_id: saml.then_some(v.issuer),
            idp_sso_url: saml.then_some(v.idp_sso_url),
            idp_initiated: v.idp_initiated,
            required: v.required,
            jit_role: v.jit_role.map(|r| r.name().to_owned()),
            redirect_uri: v.redirect_uri,
            sp_entity_id: v.sp.entity_id,
            acs_url: v.sp.acs_url,
            metadata_url: v.sp.metadata_url,
            sign_in_url: v.sign_in_url,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SsoBody {
    /// `"oidc"` or `"saml"`.
    #[serde(default)]
    #[schema(value_type = String)]
    protocol: Field<String>,
    /// SAML: the IdP's metadata XML (an `EntityDescriptor` with its entity id, an HTTP-Redirect
    /// sign-on URL and a signing certificate); at most 60 KB.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    idp_metadata: Field<String>,
    /// SAML: accept responses that answer no request of ours (IdP-initiated); default false.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    idp_initiated: Field<bool>,
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
/// (its discovery document is fetched now), the client id and secret; or SAML with the IdP's
/// metadata (and `idp_initiated`); both with `required` and `jit_role`. Audited.
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
    let protocol = match &body.protocol {
        Field::Value(p) if p == "oidc" => Some(SsoProtocol::Oidc),
        Field::Value(p) if p == "saml" => Some(SsoProtocol::Saml),
        _ => {
            errors.set("protocol", "This field is required: \"oidc\" or \"saml\".");
            None
        }
    };
    let text = |f: &Field<String>, name: &str, errors: &mut BodyErrors| match f {
        Field::Value(v) => Some(v.clone()),
        _ => {
            errors.set(name, "This field is required.");
            None
        }
    };
    let setting = match protocol {
        Some(SsoProtocol::Oidc) => {
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
            issuer
                .zip(client_id)
                .map(|(issuer, client_id)| SsoSetting::Oidc {
                    issuer,
                    client_id,
                    client_secret,
                })
        }
        Some(SsoProtocol::Saml) => {
            let idp_metadata = match &body.idp_metadata {
                Field::Value(v) => Some(v.clone()),
                _ => {
                    errors.set(
                        "idp_metadata",
                        "This field is required: the identity provider's metadata XML.",
                    );
                    None
                }
            };
            let idp_initiated = match &body.idp_initiated {
                Field::Value(b) => *b,
                Field::Absent | Field::Null => false,
                Field::WrongType(_) => {
                    errors.set("idp_initiated", "true or false.");
                    false
                }
            };
            idp_metadata.map(|idp_metadata| SsoSetting::Saml {
                idp_metadata,
                idp_initiated,
            })
        }
        None => None,
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
    let setting = errors.finish(setting)?;
    let view = state
        .people
        .set_sso(
            caller.0.actor,
            SsoChange {
                protocol: setting,
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
