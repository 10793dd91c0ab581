//! Runs synchronous Diesel work on the blocking thread pool, so it never holds up the async
//! workers. Only the services reach the database, and only through this.
//!
//! It is also where an outage is noticed: a connection that can't be had within the pool's
//! wait, or one that dies under a query, turns `Health` down; from then on work fails at once
//! with `ServiceError::Unavailable` (503) instead of each request waiting for the pool, and
//! one background probe a quarter-second apart turns it up again when the database answers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::db::{self, DbConn, DbPool, Health, Trouble};
use crate::error::{ServiceError, ServiceResult};
use crate::metrics::{Metrics, PoolName};

/// How often the probe tries the database while it is down.
const PROBE_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Database {
    pool: DbPool,
    /// A few connections only the gateway's token and user reads use, so a flood of portal
    /// or sign-in work holding every connection of `pool` can't starve `/iam/auth/check`.
    gateway: DbPool,
    /// One connection for the batched last-use writes (`run_bookkeeping`).
    bookkeeping: DbPool,
    health: Arc<Health>,
    probing: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    /// Work run on the gateway's connections so far (reads that reached the database).
    gateway_runs: Arc<AtomicU64>,
}

/// The pools of one instance.
pub struct Pools {
    pub main: DbPool,
    pub gateway: DbPool,
    pub bookkeeping: DbPool,
}

/// Connections reserved for the gateway's cache misses.
pub const GATEWAY_POOL_SIZE: u32 = 4;

impl Database {
    pub fn new(pools: Pools, health: Arc<Health>, metrics: Arc<Metrics>) -> Database {
        let Pools {
            main: pool,
            gateway,
            bookkeeping,
        } = pools;
        Database {
            bookkeeping,
            metrics,
            pool,
            gateway,
            health,
            probing: Arc::default(),
            gateway_runs: Arc::default(),
        }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// False while this process knows the database to be unreachable.
    pub fn is_up(&self) -> bool {
        if self.health.is_down() {
            self.probe_until_back();
            false
        } else {
            true
        }
    }

    /// Runs `f` with a pooled connection on the blocking pool. Fails at once with
    /// `Unavailable` while the database is known to be down.
    pub async fn run<T, F>(&self, f: F) -> ServiceResult<T>
    where
        F: FnOnce(&mut DbConn) -> ServiceResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_on(self.pool.clone(), PoolName::main, f).await
    }

    /// Like `run`, on the connections reserved for the gateway (token and user reads).
    pub async fn run_gateway<T, F>(&self, f: F) -> ServiceResult<T>
    where
        F: FnOnce(&mut DbConn) -> ServiceResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.gateway_runs.fetch_add(1, Ordering::Relaxed);
        self.run_on(self.gateway.clone(), PoolName::gateway, f)
            .await
    }

    /// Like `run`, on the one connection of the background writes (token uses): they never
    /// queue behind requests, and requests never queue behind them.
    pub async fn run_bookkeeping<T, F>(&self, f: F) -> ServiceResult<T>
    where
        F: FnOnce(&mut DbConn) -> ServiceResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_on(self.bookkeeping.clone(), PoolName::bookkeeping, f)
            .await
    }

    /// (pool, busy, idle) of each pool, for the metrics.
    pub fn pool_states(&self) -> Vec<(PoolName, u32, u32)> {
        [
            (PoolName::main, &self.pool),
            (PoolName::gateway, &self.gateway),
            (PoolName::bookkeeping, &self.bookkeeping),
        ]
        .into_iter()
        .map(|(name, pool)| {
            let state = pool.state();
            (
                name,
                state.connections - state.idle_connections,
                state.idle_connections,
            )
        })
        .collect()
    }

    /// How many times `run_gateway` was called.
    pub fn gateway_runs(&self) -> u64 {
        self.gateway_runs.load(Ordering::Relaxed)
    }

    async fn run_on<T, F>(&self, pool: DbPool, name: PoolName, f: F) -> ServiceResult<T>
    where
        F: FnOnce(&mut DbConn) -> ServiceResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if !self.is_up() {
            return Err(ServiceError::Unavailable("the database is down".into()));
        }
        let health = self.health.clone();
        let metrics = self.metrics.clone();
        // The request's span (its id) on whatever the work logs.
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || {
            let _in_request = span.enter();
            let asked = std::time::Instant::now();
            let conn = pool.get();
            metrics.pool_wait(name, asked.elapsed());
            let mut conn = conn.map_err(|e| {
                // Every connection is busy, or none can be opened (then `Health` is down).
                ServiceError::Unavailable(format!("no database connection: {e}"))
            })?;
            f(&mut conn).map_err(|e| classify(&health, e))
        })
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?;
        if self.health.is_down() {
            self.probe_until_back();
        }
        result
    }

    /// For work that carries its own error type through `run` (sign-in, refresh): the
    /// database errors inside it, told apart from outages as `run` does.
    pub fn classify(&self, e: ServiceError) -> ServiceError {
        classify(&self.health, e)
    }

    /// Starts the one probe of this process, unless it runs already. It is a plain thread:
    /// it must outlive whichever async worker noticed the outage.
    fn probe_until_back(&self) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = self.pool.clone();
        let health = self.health.clone();
        let probing = self.probing.clone();
        let spawned = std::thread::Builder::new()
            .name("db-probe".into())
            .spawn(move || {
                while health.is_down() {
                    std::thread::sleep(PROBE_EVERY);
                    let answered = pool.get_timeout(PROBE_EVERY).is_ok_and(|mut conn| {
                        use diesel::r2d2::R2D2Connection;
                        conn.ping().is_ok()
                    });
                    if answered {
                        health.came_back();
                    }
                }
                probing.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.probing.store(false, Ordering::Release);
        }
    }
}

/// A query's failure as the caller should see it: an outage is `Unavailable` (and a lost
/// connection turns the health down), anything else stays what it was.
fn classify(health: &Health, e: ServiceError) -> ServiceError {
    match e {
        ServiceError::Database(e) => match db::trouble(&e) {
            Some(Trouble::ConnectionLost) => {
                health.went_down(&e.to_string());
                ServiceError::Unavailable(e.to_string())
            }
            Some(Trouble::Busy) => ServiceError::Unavailable(e.to_string()),
            None => ServiceError::Database(e),
        },
        other => other,
    }
}
