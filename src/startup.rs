//! Builds the application (database, routes, middleware, state) and runs it.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{web as aweb, App, HttpServer};
use anyhow::{anyhow, Context};

use crate::config::Settings;
use crate::db::{self, DbUrl};
use crate::domain::Clock;
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
        let pool_size = settings.db_pool_size;
        let create_demo = settings.create_demo;
        let now = clock.now();
        let (pool, demo) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let pool = db::connect(&url, pool_size)?;
            let mut conn = pool.get().context("no database connection")?;
            db::run_migrations(&mut conn)?;
            let demo = if create_demo {
                ensure_demo_account(&mut conn, now)?
            } else {
                None
            };
            drop(conn);
            Ok((pool, demo))
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
            services: Services::new(pool, clock, &settings)?,
            settings: settings.clone(),
        };
        let data = aweb::Data::new(state.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(security_headers())
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

    /// Serves until stopped, sweeping for expiry notices every `notify_interval` meanwhile.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweep_periodically(self.state.clone()));
        let result = self.server.await;
        sweeper.abort();
        result
    }
}

async fn sweep_periodically(state: AppState) {
    let every = state.settings.notify_interval;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        match state.sweep(state.clock().now()).await {
            Ok((recorded, d)) if recorded + d.sent + d.failed + d.skipped + d.cancelled > 0 => {
                tracing::info!(
                    recorded,
                    sent = d.sent,
                    failed = d.failed,
                    skipped = d.skipped,
                    cancelled = d.cancelled,
                    "expiry notice sweep"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiry notice sweep failed; will try again"),
        }
    }
}

/// Headers every response carries unless a handler set its own.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", web::CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"))
}
