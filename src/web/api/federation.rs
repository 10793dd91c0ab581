//! Workload identity federation through the API (ours; issue 29): the trust policies
//! (`/iam/clients/{clientId}/trust-policies…`) and the RFC 8693 exchange
//! (`POST /iam/auth/token-exchange`).

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use super::model::{rfc3339, RoleRef};
use super::service_accounts::{role_field, RoleBody};
use crate::domain::token::{wire_form, Separator};
use crate::domain::{AccountId, ServiceAccountId, TrustPolicyId};
use crate::services::federation::{ExchangeRequest, PolicyInput, PolicyView, Refusal};
use crate::web::ids::Id;
use crate::web::AppState;

/// A workload identity federation trust policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTrustPolicy {
    pub id: i64,
    /// The exact `iss` of the CI job's JWTs, like `https://token.actions.githubusercontent.com`.
    pub issuer: String,
    /// The `aud` the job asks its issuer for.
    pub audience: String,
    /// Claim → value or pattern (`*` within one `:`-separated part, `**` anything).
    #[schema(value_type = Object)]
    pub conditions: BTreeMap<String, String>,
    pub service_account_id: i64,
    pub service_account_name: String,
    /// The minted tokens' role, at most the service account's.
    pub role: RoleRef,
    pub lifetime_seconds: i32,
    pub created_at: String,
    /// The routes the minted tokens may call (`METHOD /pattern`); empty: the role's.
    #[schema(value_type = Vec<String>)]
    pub allowed_routes: Vec<String>,
}

impl From<PolicyView> for ApiTrustPolicy {
    fn from(v: PolicyView) -> ApiTrustPolicy {
        ApiTrustPolicy {
            id: v.id.get(),
            issuer: v.issuer,
            audience: v.audience,
            conditions: v.conditions,
            service_account_id: v.service_account.get(),
            service_account_name: v.service_account_name,
            role: v.role.into(),
            lifetime_seconds: v.lifetime_seconds,
            created_at: rfc3339(v.created_at),
            allowed_routes: v.allowed_routes.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A trust policy to add.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TrustPolicyBody {
    #[serde(default)]
    #[schema(value_type = String)]
    issuer: Field<String>,
    #[serde(default)]
    #[schema(value_type = String)]
    audience: Field<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    conditions: Field<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    #[schema(value_type = i64)]
    service_account_id: Field<i64>,
    /// `{"id": 3009}` or `{"name": "Engineers"}`.
    #[serde(default)]
    #[schema(value_type = RoleBody)]
    role: Field<RoleBody>,
    /// 60 to 3600; 900 (15 minutes) when left out.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    lifetime_seconds: Field<i64>,
    /// Routes the minted tokens are limited to, like `["POST /cdn/resources/*/purge"]`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_routes: Field<Vec<String>>,
}

impl TrustPolicyBody {
    fn input(self) -> Result<PolicyInput, ApiError> {
        let mut errors = BodyErrors::default();
        let mut text = |field: Field<String>, name: &'static str, help: &str| match field {
            Field::Value(v) => Some(v),
            _ => {
                errors.set(name, help);
                None
            }
        };
        let issuer = text(
            self.issuer,
            "issuer",
            "This field is required: the exact iss of the JWTs, like https://token.actions.githubusercontent.com.",
        );
        let audience = text(
            self.audience,
            "audience",
            "This field is required: the aud the job requests its JWT for.",
        );
        let conditions = match self.conditions {
            Field::Value(map) => {
                let mut out = BTreeMap::new();
                for (k, v) in map {
                    match v {
                        serde_json::Value::String(s) => {
                            out.insert(k, s);
                        }
                        serde_json::Value::Number(n) => {
                            out.insert(k, n.to_string());
                        }
                        serde_json::Value::Bool(b) => {
                            out.insert(k, b.to_string());
                        }
                        _ => errors.set(
                            "conditions",
                            format!(
                                "The condition on {:?} must be a string (a value or pattern).",
                                k.chars().take(40).collect::<String>()
                            ),
                        ),
                    }
                }
                Some(out)
            }
            _ => {
                errors.set("conditions", "An object of claim → value or pattern, like {\"sub\": \"repo:acme/app:ref:refs/heads/main\"}.");
                None
            }
        };
        let service_account = match self.service_account_id {
            Field::Value(id) if id > 0 => Some(ServiceAccountId::new(id)),
            _ => {
                errors.set(
                    "service_account_id",
                    "This field is required: the id of the service account whose tokens it mints.",
                );
                None
            }
        };
        let role = role_field(&self.role, "role", &mut errors);
        let lifetime = match self.lifetime_seconds {
            Field::Value(n) => Some(n),
            Field::Absent | Field::Null => Some(i64::from(
                crate::domain::federation::DEFAULT_LIFETIME_SECONDS,
            )),
            Field::WrongType(_) => {
                errors.set("lifetime_seconds", "A number of seconds, 60 to 3600.");
                None
            }
        };
        let routes = super::limits::routes_field(self.allowed_routes, &mut errors);
        let input = match (
            issuer,
            audience,
            conditions,
            service_account,
            role,
            lifetime,
            routes,
        ) {
            (
                Some(issuer),
                Some(audience),
                Some(conditions),
                Some(sa),
                Some(role),
                Some(l),
                Some(allowed_routes),
            ) => Some(PolicyInput {
                issuer,
                audience,
                conditions,
                service_account: sa,
                role,
                lifetime_seconds: l,
                allowed_routes,
            }),
            _ => None,
        };
        errors.finish(input)
    }
}

/// The account's trust policies (ours; Administrators).
#[utoipa::path(tag = "federation", params(("clientId" = i64, Path)),
    responses((status = 200, body = [ApiTrustPolicy]), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/trust-policies")]
pub async fn list_policies(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let list = state.federation.policies(caller.0.actor).await?;
    Ok(HttpResponse::Ok().json(
        list.into_iter()
            .map(ApiTrustPolicy::from)
            .collect::<Vec<_>>(),
    ))
}

/// Add a trust policy (ours; Administrators). Audited.
#[utoipa::path(tag = "federation", params(("clientId" = i64, Path)), request_body = TrustPolicyBody,
    responses((status = 201, body = ApiTrustPolicy), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/{clientId}/trust-policies")]
pub async fn create_policy(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    body: JsonBody<TrustPolicyBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    caller.0.actor.require_admin()?;
    let input = body.into_inner().input()?;
    let view = state
        .federation
        .create_policy(caller.0.actor, input)
        .await?;
    Ok(HttpResponse::Created().json(ApiTrustPolicy::from(view)))
}

/// One trust policy (ours; Administrators).
#[utoipa::path(tag = "federation", params(("clientId" = i64, Path), ("policyId" = i64, Path)),
    responses((status = 200, body = ApiTrustPolicy), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/trust-policies/{policyId}")]
pub async fn get_policy(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<TrustPolicyId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let view = state.federation.policy(caller.0.actor, id.get()).await?;
    Ok(HttpResponse::Ok().json(ApiTrustPolicy::from(view)))
}

/// Remove a trust policy; tokens it minted run out on their own (ours; Administrators).
#[utoipa::path(tag = "federation", params(("clientId" = i64, Path), ("policyId" = i64, Path)),
    responses((status = 204), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[delete("/iam/clients/{clientId}/trust-policies/{policyId}")]
pub async fn delete_policy(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<TrustPolicyId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    state
        .federation
        .delete_policy(caller.0.actor, id.get())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The exchange's answer (RFC 8693 §2.2.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiExchanged {
    /// Use as `Authorization: APIKey <access_token>` (the `<id>_<secret>` form: no `$` for a
    /// CI shell to expand).
    pub access_token: String,
    pub issued_token_type: &'static str,
    pub token_type: &'static str,
    pub expires_in: i64,
}

/// The exchange's form (RFC 8693 §2.1), sent `application/x-www-form-urlencoded`.
#[derive(Debug, ToSchema)]
pub struct ExchangeForm {
    /// `urn:ietf:params:oauth:grant-type:token-exchange`
    pub grant_type: String,
    /// The CI job's OIDC JWT.
    pub subject_token: String,
    /// `urn:ietf:params:oauth:token-type:jwt` (or `…:id_token`).
    pub subject_token_type: String,
}

/// A refusal (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiOAuthError {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`, `invalid_target` or
    /// `temporarily_unavailable`.
    pub error: &'static str,
    pub error_description: String,
}

fn oauth_error(
    status: actix_web::http::StatusCode,
    error: &'static str,
    d: String,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ApiOAuthError {
            error,
            error_description: d,
        })
}

/// Exchange a CI job's OIDC JWT for a short-lived token (RFC 8693; ours). Form body:
/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token=<JWT>`,
/// `subject_token_type=urn:ietf:params:oauth:token-type:jwt`. The JWT must be signed by a key
/// its issuer publishes, be current, be used once (`jti`), and meet exactly one trust policy.
#[utoipa::path(tag = "federation",
    request_body(content = ExchangeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = ApiExchanged), (status = 400, body = ApiOAuthError),
              (status = 503, body = ApiOAuthError)))]
#[post("/iam/auth/token-exchange")]
pub async fn token_exchange(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    use actix_web::http::StatusCode;
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d.to_owned());
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form {
        return Ok(bad(
            "Send the body as a form (Content-Type: application/x-www-form-urlencoded), as RFC 8693 says.",
        ));
    }
    if body.len() > 32 * 1024 {
        return Ok(bad("The body is larger than 32 KB."));
    }
    let mut request = ExchangeRequest::default();
    for (key, value) in url::form_urlencoded::parse(&body) {
        let slot = match key.as_ref() {
            "grant_type" => &mut request.grant_type,
            "subject_token" => &mut request.subject_token,
            "subject_token_type" => &mut request.subject_token_type,
            _ => continue,
        };
        if slot.is_some() {
            return Ok(bad(&format!("{key} is given more than once.")));
        }
        *slot = Some(value.into_owned());
    }
    match state.federation.exchange(request).await {
        Ok(minted) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(ApiExchanged {
                access_token: wire_form(minted.token_id, Separator::Underscore, &minted.secret),
                issued_token_type: crate::domain::federation::ISSUED_TOKEN_TYPE,
                token_type: "APIKey",
                expires_in: minted.expires_in,
            })),
        Err(refusal) => {
            let (status, code, d) = match refusal {
                Refusal::GrantType(d) => (StatusCode::BAD_REQUEST, "unsupported_grant_type", d),
                Refusal::Request(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
                Refusal::Grant(d) => (StatusCode::BAD_REQUEST, "invalid_grant", d),
                Refusal::Target(d) => (StatusCode::BAD_REQUEST, "invalid_target", d),
                Refusal::Unavailable(d) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    d,
                ),
                Refusal::Service(e) => return Err(e.into()),
            };
            tracing::info!(reason = %d, "token exchange refused");
            Ok(oauth_error(status, code, d))
        }
    }
}
