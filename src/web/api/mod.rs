//! The JSON API under `/iam`, wire-compatible with Gcore's IAM API (GCORE_IAM_API.md).

pub mod auth;
pub mod body;
pub mod error;
pub mod leaks;
pub mod lifecycle;
pub mod model;
pub mod tokens;
pub mod users;

use actix_web::{get, web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "apitokens IAM API", description = "Wire-compatible with Gcore's IAM API: permanent API tokens, JWT login, users."),
    paths(
        auth::login, auth::refresh, auth::check, auth::jwks,
        users::me, users::one, users::list, users::client, users::update, users::invite, users::remove,
        users::get_role, users::set_role,
        tokens::list_v1, tokens::list_v2, tokens::create_v1, tokens::create_v2,
        tokens::get_v1, tokens::get_v2, tokens::delete_v1, tokens::delete_v2,
        leaks::report,
        lifecycle::rotate_v1, lifecycle::rotate_v2, lifecycle::usage_v1, lifecycle::usage_v2, lifecycle::get_policy, lifecycle::put_policy, lifecycle::events,
    ),
    components(schemas(model::ApiToken, model::ApiTokenCreated, model::ApiUser, model::ClientOverview, model::UsersPage, model::UsersList, model::UserRole, model::ClientAndRoles, model::JwtPair, model::Message, lifecycle::ApiTokenRotated, lifecycle::RotateBody, lifecycle::ApiTokenPolicy, lifecycle::PolicyBody, lifecycle::ApiEvent, lifecycle::ApiEvents, lifecycle::ApiUsage, lifecycle::ApiUsageDay)),
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

/// The OpenAPI document, generated from the handlers above.
#[get("/iam/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The gateway check first: routes are tried in order, and it is the hot one.
    cfg.app_data(json_config())
        .service(auth::check)
        .service(openapi_json)
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
        .service(lifecycle::get_policy)
        .service(lifecycle::put_policy)
        .service(lifecycle::events);

    for (prefix, v2) in [("/iam/clients", false), ("/iam/v2/clients", true)] {
        let (list, create, get, delete) = if v2 {
            (
                web::get().to(tokens::list_v2),
                web::post().to(tokens::create_v2),
                web::get().to(tokens::get_v2),
                web::delete().to(tokens::delete_v2),
            )
        } else {
            (
                web::get().to(tokens::list_v1),
                web::post().to(tokens::create_v1),
                web::get().to(tokens::get_v1),
                web::delete().to(tokens::delete_v1),
            )
        };
        cfg.service(
            web::resource(format!("{prefix}/{{client_id}}/tokens"))
                .route(list)
                .route(create),
        )
        .service(
            web::resource(format!("{prefix}/{{client_id}}/tokens/{{token_id}}"))
                .route(get)
                .route(delete),
        )
        .service(
            web::resource(format!("{prefix}/{{client_id}}/tokens/{{token_id}}/usage")).route(
                if v2 {
                    web::get().to(lifecycle::usage_v2)
                } else {
                    web::get().to(lifecycle::usage_v1)
                },
            ),
        )
        .service(
            web::resource(format!("{prefix}/{{client_id}}/tokens/{{token_id}}/rotate")).route(
                if v2 {
                    web::post().to(lifecycle::rotate_v2)
                } else {
                    web::post().to(lifecycle::rotate_v1)
                },
            ),
        );
    }
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
