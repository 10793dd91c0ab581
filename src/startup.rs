//! Builds the application (database, routes, middleware, state) and runs it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{web as aweb, App, HttpServer};
use anyhow::{anyhow, Context};

use crate::config::Settings;
use crate::db::{self, DbUrl, PoolOptions};
use crate::domain::Clock;
use crate::error::ServiceError;
use crate::services::database::GATEWAY_POOL_SIZE;
use crate::services::users::{ensure_demo_account, DemoCredentials};
use crate::services::Services;
use crate::web::{self, AppState};

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    pub state: AppState,
    /// Set when this start created the demo account: how to sign in to it.
    pub demo: Option<DemoCredentials>,
}

impl Application {
    /// Connects and migrates the database, binds the listener (port 0 picks a free one) and
    /// prepares the server; nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings, clock: Clock) -> anyhow::Result<Application> {
        let url = DbUrl::parse(&settings.database_url)?;
        let options = PoolOptions::new(settings.db_pool_size, settings.db_wait);
        let health = options.health.clone();
        let create_demo = settings.create_demo;
        let now = clock.now();
        let (pool, gateway_pool, demo) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let pool = db::connect(&url, &options)?;
                let gateway_pool = db::connect(
                    &url,
                    &PoolOptions {
                        max_size: GATEWAY_POOL_SIZE,
                        ..options.clone()
                    },
                )?;
                let mut conn = pool.get().context("no database connection")?;
                db::run_migrations(&mut conn)?;
                let demo = if create_demo {
                    ensure_demo_account(&mut conn, now)?
                } else {
                    None
                };
                drop(conn);
                Ok((pool, gateway_pool, demo))
            })
            .await
            .context("database setup did not finish")??;

        let listener = TcpListener::bind(&settings.bind).map_err(|e| {
            anyhow!(
                "can't listen on {}: {e}. Stop the program using it, or set APITOKENS_BIND to another address (e.g. 127.0.0.1:8081)",
                settings.bind
            )
        })?;
        let port = listener.local_addr()?.port();
        let workers = settings.workers;
        let settings = Arc::new(settings);
        let state = AppState {
            services: Services::new(pool, gateway_pool, health, clock, &settings)?,
            settings: settings.clone(),
        };
        let data = aweb::Data::new(state.clone());
        let https = settings.secure_cookies();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(security_headers(https))
                // The path without its query string: a set-password link carries its secret there.
                .wrap(
                    Logger::new("%a \"%{METHOD}xi %U\" %s %b %Dms")
                        .custom_request_replace("METHOD", |req| req.method().to_string()),
                )
                .app_data(data.clone())
                .configure(web::configure(&settings))
        });
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Application {
            port,
            server,
            state,
            demo,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until stopped, sweeping for expiry notices every `notify_interval` and writing
    /// token uses every second meanwhile; what uses are still queued are written at the end.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweep_periodically(self.state.clone()));
        let flusher = tokio::spawn(flush_uses_periodically(self.state.clone()));
        let result = self.server.await;
        sweeper.abort();
        flusher.abort();
        if let Err(e) = self.state.flush_uses().await {
            tracing::warn!(error = %e, "token uses not written at shutdown");
        }
        result
    }
}

/// How often queued token uses are written.
pub const FLUSH_USES_EVERY: Duration = Duration::from_secs(1);
/// The longest pause between attempts while the database is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The pause after `failures` failures in a row: 1 s, 2 s, 4 s, ... up to `cap`.
fn backoff(failures: u32, cap: Duration) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(16)).min(cap)
}

async fn sweep_periodically(state: AppState) {
    let every = state.settings.notify_interval;
    let mut failures = 0;
    loop {
        let pause = if failures == 0 {
            every
        } else {
            backoff(failures, every.min(MAX_BACKOFF))
        };
        tokio::time::sleep(pause).await;
        match state.sweep(state.clock().now()).await {
            Ok((recorded, d)) => {
                failures = 0;
                if recorded + d.sent + d.failed + d.skipped + d.cancelled > 0 {
                    tracing::info!(
                        recorded,
                        sent = d.sent,
                        failed = d.failed,
                        skipped = d.skipped,
                        cancelled = d.cancelled,
                        "expiry notice sweep"
                    )
                }
            }
            Err(e) => {
                failures += 1;
                log_retry("expiry notice sweep", &e, failures);
            }
        }
    }
}

async fn flush_uses_periodically(state: AppState) {
    let mut failures = 0;
    loop {
        let pause = if failures == 0 {
            FLUSH_USES_EVERY
        } else {
            backoff(failures, MAX_BACKOFF)
        };
        tokio::time::sleep(pause).await;
        match state.flush_uses().await {
            Ok(_) => failures = 0,
            Err(e) => {
                failures += 1;
                log_retry("writing token uses", &e, failures);
            }
        }
    }
}

/// An outage is announced once by the database's health; other failures are worth a warning.
fn log_retry(what: &str, e: &ServiceError, failures: u32) {
    if matches!(e, ServiceError::Unavailable(_)) {
        tracing::debug!(error = %e, failures, "{what} failed; will try again");
    } else {
        tracing::warn!(error = %e, failures, "{what} failed; will try again");
    }
}

/// Headers every response carries unless a handler set its own.
/// Served over https (the base URL says so), browsers are also told to use nothing else.
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", web::CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"));
    if https {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_second_up_to_the_cap() {
        let cap = Duration::from_secs(30);
        let pauses: Vec<u64> = (1..=7).map(|n| backoff(n, cap).as_secs()).collect();
        assert_eq!(pauses, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(100, cap), cap);
        assert_eq!(backoff(3, Duration::from_secs(3)).as_secs(), 3);
    }
}
