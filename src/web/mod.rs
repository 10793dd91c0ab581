//! The HTTP edge: pages (HTML) and, later, the JSON API. Handlers parse input into domain
//! types, call one service, and render.

pub mod api;
pub mod assets;
pub mod auth;
pub mod error;
pub mod pages;
pub mod session;
pub mod views;

use std::sync::Arc;

use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::config::Settings;
use crate::db::{DbConn, DbPool};
use crate::domain::Clock;
use crate::email::Mailer;
use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::SignInError;
use crate::services::credentials::{JwtKeys, TokenVerifier};
use crate::services::login_limit::LoginLimiter;
use crate::services::tokens::{self, DeleteOutcome};
use crate::services::{members, notifier, Actor};

pub use error::WebError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub clock: Clock,
    pub limiter: Arc<LoginLimiter>,
    pub settings: Arc<Settings>,
    pub verifier: Arc<TokenVerifier>,
    pub jwt: Arc<JwtKeys>,
    pub mailer: Arc<Mailer>,
}

impl AppState {
    /// Runs `f` with a pooled connection on the blocking thread pool (Diesel is synchronous
    /// and must not hold up the async workers).
    pub async fn db<T, F>(&self, f: F) -> ServiceResult<T>
    where
        F: FnOnce(&mut DbConn) -> ServiceResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(|e| {
                ServiceError::Internal(anyhow::anyhow!("no database connection: {e}"))
            })?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }

    /// One expiry-notice sweep (record what is due, deliver what is pending) as of `now`.
    pub async fn sweep(
        &self,
        now: time::OffsetDateTime,
    ) -> ServiceResult<(usize, notifier::Delivery)> {
        let mailer = self.mailer.clone();
        let settings = self.settings.clone();
        self.db(move |conn| {
            let mail = notifier::MailContext {
                mailer: &mailer,
                from: &settings.mail_from,
                base_url: &settings.base_url,
            };
            notifier::sweep(conn, &mail, now)
        })
        .await
    }

    /// Adds a user to the actor's account and sends the invitation (web page and API alike).
    /// Returns the user, their set-password link (password users), and whether the e-mail went.
    pub async fn invite(
        &self,
        actor: Actor,
        email: crate::domain::input::Email,
        name: crate::domain::input::PersonName,
        role: crate::domain::Role,
        sso: bool,
    ) -> ServiceResult<(crate::repo::User, Option<String>, Result<(), String>)> {
        let now = self.clock.now();
        let mailer = self.mailer.clone();
        let settings = self.settings.clone();
        self.db(move |conn| {
            let inv = members::invite(conn, &actor, &email, &name, role, sso, now)?;
            let Some(secret) = inv.setup_secret else {
                return Ok((inv.user, None, Ok(())));
            };
            let link = format!("{}/set-password?token={secret}", settings.base_url);
            let account = crate::repo::Account::find(conn, actor.account_id)?
                .map(|a| a.name)
                .unwrap_or_default();
            let inviter = crate::repo::User::find(conn, actor.user_id)?
                .map(|u| u.name)
                .unwrap_or_default();
            let sent = crate::email::invitation_message(
                &settings.mail_from,
                &inv.user,
                &account,
                &inviter,
                &link,
                &settings.base_url,
            )
            .and_then(|m| mailer.send(&m));
            if let Err(e) = &sent {
                tracing::warn!(user_id = inv.user.id, error = %e, "invitation e-mail not sent");
            }
            Ok((inv.user, Some(link), sent))
        })
        .await
    }

    /// Runs a sign-in `attempt` under the failed-attempt limit that the portal and the API
    /// share: `Err(wait)` while the e-mail or the address is locked; a wrong password counts.
    pub async fn limited_sign_in<T: Send + 'static>(
        &self,
        email: &str,
        address: &str,
        attempt: impl FnOnce(&mut DbConn) -> Result<T, SignInError> + Send + 'static,
    ) -> Result<Result<T, SignInError>, std::time::Duration> {
        self.limiter.check(email, address)?;
        let pool = self.pool.clone();
        let outcome = web::block(move || {
            let mut conn = pool.get().map_err(|e| {
                SignInError::Service(anyhow::anyhow!("no database connection: {e}").into())
            })?;
            attempt(&mut conn)
        })
        .await
        .unwrap_or_else(|e| {
            Err(SignInError::Service(
                anyhow::anyhow!("blocking task failed: {e}").into(),
            ))
        });
        match &outcome {
            Ok(_) => self.limiter.record_success(email),
            Err(SignInError::WrongCredentials) => self.limiter.record_failure(email, address),
            Err(_) => {}
        }
        Ok(outcome)
    }

    /// Forgets deleted tokens in this instance's cache.
    pub fn forget_tokens(&self, ids: &[i64]) {
        for id in ids {
            self.verifier.forget(*id);
        }
    }

    /// Deletes a token (web page and API alike) and forgets it in this instance's cache, so
    /// it is refused from the very next request.
    pub async fn delete_token(&self, actor: Actor, id: i64) -> ServiceResult<DeleteOutcome> {
        let now = self.clock.now();
        let outcome = self
            .db(move |conn| tokens::delete(conn, &actor, id, now))
            .await?;
        self.verifier.forget(id);
        Ok(outcome)
    }
}

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
            .service(pages::health::healthz)
            .configure(api::configure)
            .service(web::scope("/iam").default_service(web::to(api::not_found)))
            .service(pages::health::readyz)
            .service(assets::stylesheet)
            .service(assets::script)
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
