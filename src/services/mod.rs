//! The rules, and the only way to the database, in rooms named by what they own:
//!
//! - `gateway`: checking credentials on the hot path, in memory (caches, id horizon, JWTs);
//! - `people`: signing in, sessions, the members of an account, the limiter (and `scim`,
//!   provisioning by an identity provider);
//! - `tokens`: the lifecycle, rotation and lineage, the policy, leaks and usage;
//! - `notices`: what is due to whom, delivered as digests, in the portal and by e-mail;
//! - `audit`: the account's trail, one `EventKind` per event;
//! - `webhooks`: events out, an outbox `audit` writes into and a worker delivers;
//! - `federation`: trust policies and the RFC 8693 exchange of a CI job's JWT for a token;
//! - `vocabulary`: the words they share (a leaf); `runtime`: machinery that isn't a rule.
//!
//! Each rule is a synchronous function over a connection that owns its transaction (tests
//! call these); each room's struct holds the async entry points the web layer calls, which run
//! that work on the blocking pool and keep the in-memory state in step with it. Rooms depend
//! on each other in one direction: people → tokens → notices → audit → webhooks' outbox, each of them → gateway
//! and runtime. Nothing here knows about HTTP.

pub mod audit;
pub mod federation;
pub mod gateway;
pub mod notices;
pub mod people;
pub mod runtime;
pub mod tokens;
pub mod vocabulary;
pub mod webhooks;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::Settings;
use crate::db::{DbPool, Health};
use crate::domain::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::metrics::Metrics;

pub use audit::Audit;
pub use gateway::Gateway;
pub use notices::{Mail, Notices};
pub use people::scim::Provisioning;
pub use people::People;
pub use runtime::{Database, Pools, Runtime};
pub use tokens::Tokens;
pub use vocabulary::{Actor, Origin, Via, ADMINS_ONLY};
pub use webhooks::Webhooks;

/// The longest a readiness check takes.
pub const READY_DEADLINE: std::time::Duration = std::time::Duration::from_millis(900);

/// The application: its rooms, built once and shared by every request.
#[derive(Clone)]
pub struct Services {
    pub gateway: Gateway,
    pub people: People,
    pub scim: Provisioning,
    pub tokens: Tokens,
    pub notices: Notices,
    pub audit: Audit,
    pub webhooks: Webhooks,
    pub federation: federation::Federation,
    rt: Runtime,
}

impl Services {
    pub fn new(
        pools: Pools,
        health: Arc<Health>,
        clock: Clock,
        settings: &Settings,
    ) -> anyhow::Result<Services> {
        let metrics = Arc::new(Metrics::new());
        let scanning_keys = match &settings.secret_scanning_keys {
            Some(path) => Some(tokens::ScanningKeys::load(path)?),
            None => None,
        };
        let rt = Runtime {
            db: Database::new(pools, health, metrics.clone()),
            clock,
            metrics,
            stopping: Arc::default(),
        };
        let gateway = Gateway::new(rt.clone(), settings)?;
        let notices = Notices::new(rt.clone(), Arc::new(Mail::from_settings(settings)?));
        let tokens = Tokens::new(rt.clone(), gateway.clone(), notices.clone(), scanning_keys);
        let people = People::new(rt.clone(), gateway.clone(), notices.clone(), settings);
        Ok(Services {
            scim: Provisioning::new(rt.clone(), gateway.clone(), notices.clone()),
            audit: Audit::new(rt.clone()),
            webhooks: Webhooks::new(rt.clone(), settings, notices.mail().clone())?,
            federation: federation::Federation::new(rt.clone(), gateway.clone(), settings),
            gateway,
            people,
            tokens,
            notices,
            rt,
        })
    }

    pub fn clock(&self) -> &Clock {
        &self.rt.clock
    }

    /// The pool, for the command line and for tests that look at what was stored.
    pub fn pool(&self) -> &DbPool {
        self.rt.db.pool()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.rt.metrics
    }

    /// Starts the shutdown: `/readyz` answers 503 from now on, and a running sweep stops
    /// after the e-mail it is sending.
    pub fn begin_shutdown(&self) {
        self.rt.stopping.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.rt.is_stopping()
    }

    /// The periodic sweep (the server's task, `apitokens notify`): housekeeping on the same
    /// beat — failed-attempt windows that ended, old secrets whose rotation grace ended (checks
    /// stop them on time anyway; this forgets the hash and records it), usage past its days —
    /// then the notices due are recorded and the outbox delivered.
    #[tracing::instrument(skip(self))]
    pub async fn sweep(&self, now: OffsetDateTime) -> ServiceResult<(usize, notices::Delivery)> {
        self.people.purge_attempts(now).await?;
        self.tokens.housekeeping(now).await?;
        self.federation.sweep(now).await?;
        self.webhooks.sweep(now).await?;
        self.notices.sweep(now).await
    }

    /// The metrics in Prometheus' text format, with the values read at scrape: connections
    /// in use, e-mails pending (one indexed count; left as they were if the database
    /// doesn't answer), password work in flight.
    pub async fn metrics_text(&self) -> String {
        let pending = self
            .rt
            .db
            .run(|conn| Ok(crate::repo::notices::Notice::pending_summary(conn)?))
            .await
            .ok();
        let now = self.rt.clock.now();
        let readings = crate::metrics::Readings {
            pools: self.rt.db.pool_states(),
            pending_emails: pending.map(|(count, oldest)| {
                let age = oldest.map_or(std::time::Duration::ZERO, |at| {
                    (now - crate::domain::token::from_naive(at))
                        .try_into()
                        .unwrap_or_default()
                });
                (count, age)
            }),
            password_work_in_flight: self.people.password_work_in_flight() as i64,
            draining: self.is_stopping(),
        };
        self.rt.metrics.render(&readings)
    }

    /// Ready to serve: the database answers, within `READY_DEADLINE`, and has every migration
    /// this build knows. Never waits longer than the deadline, so a load balancer's probe gets
    /// an answer, not a timeout.
    pub async fn ready(&self) -> ServiceResult<()> {
        use diesel::r2d2::R2D2Connection;
        if self.is_stopping() {
            return Err(ServiceError::Unavailable("shutting down".into()));
        }
        let check = self.rt.db.run(|conn| {
            conn.ping()?;
            if crate::db::has_pending_migrations(conn)? {
                return Err(ServiceError::Unavailable(
                    "the database lacks migrations this build needs".into(),
                ));
            }
            Ok(())
        });
        tokio::time::timeout(READY_DEADLINE, check)
            .await
            .unwrap_or_else(|_| {
                Err(ServiceError::Unavailable(
                    "the database did not answer in time".into(),
                ))
            })
    }
}
