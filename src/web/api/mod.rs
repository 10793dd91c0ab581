//! The JSON API under `/iam`, wire-compatible with Gcore's IAM API (GCORE_IAM_API.md).

pub mod auth;
pub mod body;
pub mod error;
pub mod federation;
pub mod leaks;
pub mod lifecycle;
pub mod limits;
pub mod model;
pub mod revoke;
pub mod security;
pub mod self_token;
pub mod service_accounts;
pub mod sso;
pub mod tokens;
pub mod users;
pub mod webhooks;

use actix_web::{get, web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};

use error::ApiError;

/// What the document says beyond its paths (which `configure` collects from the registered
/// handlers): the title, the schemas, the security schemes, and the v2 twins' names.
#[derive(OpenApi)]
#[openapi(
    info(title = "apitokens IAM API", description = "Wire-compatible with Gcore's IAM API: permanent API tokens, JWT login, users."),
    components(schemas(model::ApiToken, model::ApiTokenCreated, model::ApiUser, model::ClientOverview, model::UsersPage, model::UsersList, model::UserRole, model::ClientAndRoles, model::JwtPair, model::Message, lifecycle::ApiTokenRotated, lifecycle::RotateBody, lifecycle::ApiTokenPolicy, lifecycle::PolicyBody, lifecycle::ApiEvent, lifecycle::ApiEvents, lifecycle::ApiUsage, lifecycle::ApiUsageDay, security::ApiSecurity, security::SecurityBody, sso::ApiSso, sso::SsoBody, revoke::RevokeBody, revoke::RevokeAccepted, webhooks::ApiWebhook, webhooks::ApiWebhookWithSecret, webhooks::ApiDelivery, webhooks::WebhookBody, webhooks::ApiQueued, service_accounts::ApiServiceAccount, service_accounts::ServiceAccountBody, service_accounts::RoleBody, federation::ApiTrustPolicy, federation::TrustPolicyBody, federation::ApiExchanged, federation::ApiOAuthError, federation::ExchangeForm, limits::LimitsBody, limits::RateBody, limits::QuotaBody, model::ApiRate, model::ApiQuota)),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "APIKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`APIKey <id>_<secret>` or `APIKey <id>$<secret>`",
            ))),
        );
        components.add_security_scheme(
            "Bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The v2 token routes are the v1 handlers under `/iam/v2/clients` (they answer `_` tokens
/// where v1 answers `$`): each operation is named `…_v2` and keeps the summary the v2 routes
/// have always had.
struct V2Twins;

/// The v2 summaries, by v1 operation (the v2 text differs only where the answer does).
const V2_SUMMARIES: &[(&str, Option<&str>)] = &[
    ("list_v1", Some("The same as v1.")),
    (
        "create_v1",
        Some("Create a token; the answer carries it as `<id>_<secret>`, once."),
    ),
    ("get_v1", None),
    ("delete_v1", None),
    ("update_v1", None),
    (
        "rotate_v1",
        Some("Rotate a token (ours); answers `<id>_<secret>`."),
    ),
    (
        "usage_v1",
        Some("Requests per day for the last 30 days (ours)."),
    ),
];

impl Modify for V2Twins {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/iam/v2/") {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let Some(v1) = op.operation_id.clone() else {
                    continue;
                };
                if let Some((_, summary)) = V2_SUMMARIES.iter().find(|(id, _)| *id == v1) {
                    op.summary = summary.map(str::to_owned);
                }
                op.operation_id = Some(v1.replace("_v1", "_v2"));
            }
        }
    }
}

/// The OpenAPI document, collected from the registered handlers (`document`).
#[get("/iam/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// Every API route, registered once; the OpenAPI document follows from these registrations.
/// The gateway check first: routes are tried in order, and it is the hot one. The token routes
/// are mounted twice, v1 (`$` tokens) and v2 (`_` tokens), after every other `/iam/clients/...`
/// route (a scope takes all the paths under it).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.app_data(json_config())
        .service(auth::check)
        .map(|cfg| cfg.service(openapi_json))
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::jwks)
        .service(users::me)
        .service(users::list)
        .service(users::one)
        .service(users::client)
        .service(users::update)
        .service(users::invite)
        .service(users::remove)
        .service(users::get_role)
        .service(users::set_role)
        .service(leaks::report)
        .service(revoke::revoke)
        .service(self_token::get_self)
        .service(self_token::rotate_self)
        .service(lifecycle::get_policy)
        .service(lifecycle::put_policy)
        .service(lifecycle::events)
        .service(security::get_security)
        .service(security::put_security)
        .service(sso::get_sso)
        .service(sso::put_sso)
        .service(sso::delete_sso)
        .service(webhooks::list)
        .service(webhooks::create)
        .service(webhooks::one)
        .service(webhooks::update)
        .service(webhooks::remove)
        .service(webhooks::rotate_secret)
        .service(webhooks::test)
        .service(webhooks::deliveries)
        .service(webhooks::redeliver)
        .service(service_accounts::list_service_accounts)
        .service(service_accounts::create_service_account)
        .service(service_accounts::get_service_account)
        .service(service_accounts::remove_service_account)
        .service(service_accounts::create_service_account_token)
        .service(federation::list_policies)
        .service(federation::create_policy)
        .service(federation::get_policy)
        .service(federation::delete_policy)
        .service(federation::token_exchange);
    for prefix in ["/iam/clients", "/iam/v2/clients"] {
        cfg.service(
            scope(prefix)
                .service(tokens::list)
                .service(tokens::create)
                .service(tokens::get)
                .service(tokens::delete)
                .service(limits::update)
                .service(lifecycle::usage)
                .service(lifecycle::rotate)
                .default_service(web::to(not_found)),
        );
    }
}

/// The document as the registered handlers describe it (`configure`), with `ApiDoc` around it;
/// collected once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let (_, mut doc) = actix_web::App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .configure(configure)
            .split_for_parts();
        V2Twins.modify(&mut doc);
        doc
    })
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| {
            let message = match &err {
                actix_web::error::JsonPayloadError::Overflow { .. }
                | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                    "The body is larger than 64 KB.".to_string()
                }
                actix_web::error::JsonPayloadError::ContentType => {
                    "Send the body as JSON (Content-Type: application/json).".to_string()
                }
                other => format!("The body is not valid JSON: {other}"),
            };
            ApiError::field("non_field_errors", message).into()
        })
}

/// Anything else under `/iam` answers JSON, not the HTML 404 page.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
