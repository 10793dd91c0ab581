//! Builds the application (database, routes, middleware, state) and runs it.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web as aweb, App, HttpServer};
use anyhow::{anyhow, Context};
use tokio::sync::Notify;

use crate::config::Settings;
use crate::db::{self, DbUrl, PoolOptions};
use crate::domain::Clock;
use crate::error::ServiceError;
use crate::services::people::accounts::{ensure_demo_account, DemoCredentials};
use crate::services::runtime::database::GATEWAY_POOL_SIZE;
use crate::services::Services;
use crate::web::{self, AppState};

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    /// The metrics listener (`APITOKENS_METRICS_BIND`), apart from the app's.
    metrics: Option<(u16, actix_web::dev::Server)>,
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
        let (pool, gateway_pool, bookkeeping_pool, demo) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let pool = db::connect(&url, &options)?;
                let gateway_pool = db::connect(
                    &url,
                    &PoolOptions {
                        max_size: GATEWAY_POOL_SIZE,
                        ..options.clone()
                    },
                )?;
                // One connection of its own for the batched last-use writes, so they never
                // wait behind requests and requests never wait behind them.
                let bookkeeping_pool = db::connect(
                    &url,
                    &PoolOptions {
                        max_size: 1,
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
                Ok((pool, gateway_pool, bookkeeping_pool, demo))
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
            services: Services::new(
                crate::services::Pools {
                    main: pool,
                    gateway: gateway_pool,
                    bookkeeping: bookkeeping_pool,
                },
                health,
                clock,
                &settings,
            )?,
            settings: settings.clone(),
        };
        let data = aweb::Data::new(state.clone());
        let metrics = match settings.metrics_bind.as_deref() {
            Some(bind) => Some(metrics_server(bind, data.clone())?),
            None => None,
        };
        let app_settings = settings.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                // Request id, security headers, access log line and metrics, around
                // everything else.
                .wrap(web::observe::Observe)
                .app_data(data.clone())
                .configure(web::configure(&app_settings))
        })
        // Signals are ours (`run_until`): drain first, then stop gracefully.
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs());
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Application {
            port,
            server,
            metrics,
            state,
            demo,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until the process ends (tests: until the runtime stops).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves, sweeping for expiry notices every `notify_interval` and writing token uses
    /// every second, until `shutdown` completes; then shuts down without losing anything:
    /// `/readyz` answers 503 for the drain time while requests are still served, the
    /// listener closes and in-flight requests finish (up to the shutdown timeout), a running
    /// sweep finishes the e-mail it is sending and gives the rest back, and the queued token
    /// uses are written.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let state = self.state.clone();
        let settings = state.settings.clone();
        let stop_sweeps = Arc::new(Notify::new());
        let sweeper = tokio::spawn(sweep_periodically(state.clone(), stop_sweeps.clone()));
        let flusher = tokio::spawn(flush_uses_periodically(state.clone()));
        let refresher = tokio::spawn(refresh_tokens_periodically(state.clone()));
        let webhooks = tokio::spawn(deliver_webhooks(state.clone()));
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let handle = self.server.handle();
        let server = self.server;
        tokio::pin!(server);
        let result = tokio::select! {
            result = &mut server => result,
            () = shutdown => {
                tracing::info!(drain_secs = settings.drain.as_secs(), "shutting down: /readyz answers 503");
                state.begin_shutdown();
                tokio::time::sleep(settings.drain).await;
                tracing::info!("shutting down: no new connections; finishing requests in flight");
                // The server makes progress only while polled: stop it and drive it together.
                let ((), result) = tokio::join!(handle.stop(true), &mut server);
                result
            }
        };
        state.begin_shutdown();
        stop_sweeps.notify_one();
        if tokio::time::timeout(settings.shutdown_timeout, sweeper)
            .await
            .is_err()
        {
            tracing::warn!("the running sweep did not finish within the shutdown timeout");
        }
        flusher.abort();
        refresher.abort();
        // A delivery cut short keeps its claim, which expires: the message is sent again
        // (at least once) by whichever instance comes next.
        webhooks.abort();
        if let Err(e) = self.state.gateway.flush_at_shutdown().await {
            tracing::warn!(error = %e, "token uses not written at shutdown");
        }
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        tracing::info!("stopped");
        result
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "can't listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "can't listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The metrics listener: `GET /metrics` and nothing else, one worker.
fn metrics_server(
    bind: &str,
    data: aweb::Data<AppState>,
) -> anyhow::Result<(u16, actix_web::dev::Server)> {
    let listener = TcpListener::bind(bind)
        .map_err(|e| anyhow!("can't listen on {bind} for metrics (APITOKENS_METRICS_BIND): {e}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/metrics", aweb::get().to(web::pages::health::metrics))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// How often queued token uses are written.
pub const FLUSH_USES_EVERY: Duration = Duration::from_secs(1);
/// The longest pause between attempts while the database is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The pause after `failures` failures in a row: 1 s, 2 s, 4 s, ... up to `cap`.
fn backoff(failures: u32, cap: Duration) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(16)).min(cap)
}

async fn sweep_periodically(state: AppState, stop: Arc<Notify>) {
    let every = state.settings.notify_interval;
    let mut failures = 0;
    loop {
        let pause = if failures == 0 {
            every
        } else {
            backoff(failures, every.min(MAX_BACKOFF))
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.notified() => return,
        }
        if state.is_stopping() {
            return;
        }
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

/// How often the webhook worker looks for messages when nothing woke it.
pub const WEBHOOK_POLL: Duration = Duration::from_secs(1);

/// Delivers webhook messages: at once when this instance queued some (the outbox rings), and
/// at least every second for what other instances queued and for retries that came due.
async fn deliver_webhooks(state: AppState) {
    let mut failures = 0;
    loop {
        let queued = crate::services::webhooks::outbox::QUEUED.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let pause = if failures == 0 {
            WEBHOOK_POLL
        } else {
            backoff(failures, MAX_BACKOFF)
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut queued => {
                // Rung inside the writer's transaction: give it a moment to commit.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if state.is_stopping() {
            return;
        }
        loop {
            match state.webhooks.deliver_due().await {
                Ok(done) => {
                    failures = 0;
                    if done.sent + done.failed == 0 {
                        break;
                    }
                }
                Err(e) => {
                    failures += 1;
                    log_retry("webhook delivery", &e, failures);
                    break;
                }
            }
        }
    }
}

/// Reloads the token cache's entries past half their life, together, ten times a second.
async fn refresh_tokens_periodically(state: AppState) {
    let mut tick = tokio::time::interval(crate::services::gateway::REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.gateway.refresh_tokens().await {
            if !matches!(e, ServiceError::Unavailable(_)) {
                tracing::warn!(error = %e, "token cache refresh failed");
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
        match state.gateway.flush_uses().await {
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
