//! Every route, the extractor settings, and what answers when nothing matches.

use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};

use utoipa_actix_web::service_config::ServiceConfig;

use super::{api, assets, pages, WebError};
use crate::config::Settings;

/// Content-Security-Policy of every response: no inline script or style, no framing.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// All routes. The API under `/iam` needs no cookie session, so only the pages get one.
pub fn configure(settings: &Settings) -> impl FnOnce(&mut web::ServiceConfig) {
    let key = Key::derive_from(settings.secret_key.bytes());
    let secure = settings.secure_cookies();
    move |cfg: &mut web::ServiceConfig| {
        let sessions = SessionMiddleware::builder(CookieSessionStore::default(), key)
            .cookie_name("apitokens_session".into())
            .cookie_secure(secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(
                PersistentSession::default()
                    .session_ttl(actix_web::cookie::time::Duration::hours(12)),
            )
            .build();
        cfg.app_data(form_config())
            .app_data(query_config())
            .app_data(path_config())
            .configure(|cfg| api::configure(&mut ServiceConfig::new(cfg)))
            .service(pages::health::healthz)
            .service(web::scope("/iam").default_service(web::to(api::not_found)))
            .configure(super::scim::configure)
            .service(pages::health::readyz)
            .service(assets::stylesheet)
            .service(assets::script)
            .service(assets::icon)
            .service(assets::favicon)
            .service(
                web::scope("")
                    .wrap(sessions)
                    .configure(pages::configure)
                    .default_service(web::to(not_found)),
            );
    }
}

async fn not_found(_req: HttpRequest) -> Result<HttpResponse, WebError> {
    Err(WebError::NotFound)
}

fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| {
            let message = match &err {
                actix_web::error::UrlencodedError::Overflow { .. } => {
                    return WebError::PayloadTooLarge(
                        "The form is larger than 64 KB. Shorten what you entered.".into(),
                    )
                    .into()
                }
                actix_web::error::UrlencodedError::ContentType => {
                    "The form must be sent as application/x-www-form-urlencoded.".to_string()
                }
                other => format!("The form could not be read: {other}."),
            };
            WebError::BadRequest(message).into()
        })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        WebError::BadRequest(format!(
            "The address has a query string that could not be read: {err}."
        ))
        .into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_err, _req| WebError::NotFound.into())
}
