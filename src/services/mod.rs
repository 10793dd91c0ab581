//! The rules, and the only way to the database.
//!
//! Each rule is a synchronous function over a connection (`tokens::create`, `members::remove`,
//! ...) that owns its transaction and returns domain values or a `ServiceError`; unit and
//! integration tests call those directly. The web layer calls the async entry points on
//! `Services`, which run that work on the blocking pool and keep the in-memory state (token
//! cache, sign-in limits) in step with it. Nothing here knows about HTTP.

pub mod api_auth;
pub mod audit;
pub mod auth;
pub mod database;
pub mod delivery;
pub mod id_horizon;
pub mod jwt;
pub mod leaks;
pub mod login_limit;
pub mod members;
pub mod miss_batch;
pub mod notices;
pub mod password_work;
pub mod report_gate;
pub mod scan;
pub mod scim;
pub mod token_cache;
pub mod tokens;
pub mod usage;
pub mod user_cache;
pub mod users;

use std::sync::Arc;

use crate::metrics::Metrics;

use crate::config::Settings;
use crate::db::{DbPool, Health};
use crate::domain::{Clock, Role};
use crate::error::{ServiceError, ServiceResult};

pub use crate::repo::{Account, User};
pub use database::Database;
pub use delivery::Mail;

/// Who is acting, and with which role. Through the portal the role is the user's; through
/// an API token it is the token's role, which caps what the token can do.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: i64,
    pub account_id: i64,
    pub role: Role,
    /// Where the action came from, for the account's audit trail.
    pub origin: Origin,
}

/// How an action reached us and from which client address (the audit trail's "by what").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub via: Via,
    pub client: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Via {
    /// The command line, a background task, a test.
    #[default]
    System,
    Portal,
    /// The JSON API, with a JWT (`None`) or a permanent token (its id).
    Api(Option<i64>),
}

impl Actor {
    pub fn of_user(user: &User) -> Actor {
        Actor {
            user_id: user.id,
            account_id: user.account_id,
            role: user.role,
            origin: Origin::default(),
        }
    }

    /// The same actor, reached through `via` from `client`.
    pub fn from(mut self, via: Via, client: &str) -> Actor {
        self.origin = Origin {
            via,
            client: (!client.is_empty()).then(|| client.to_owned()),
        };
        self
    }

    /// The one "Administrators only" check, with the one message for it.
    pub fn require_admin(&self) -> ServiceResult<()> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(ADMINS_ONLY.into()))
        }
    }
}

/// What a non-Administrator is told when they reach for something only Administrators do.
pub const ADMINS_ONLY: &str =
    "Only Administrators can see and manage the other users of the account. Ask one of them.";

/// The longest a readiness check takes.
pub const READY_DEADLINE: std::time::Duration = std::time::Duration::from_millis(900);

/// Everything the web layer may ask of the application: the entry points live beside their
/// rules (`impl Services` blocks in `tokens.rs`, `members.rs`, `auth.rs`, ...).
#[derive(Clone)]
pub struct Services {
    db: Database,
    clock: Clock,
    verifier: Arc<token_cache::TokenVerifier>,
    horizon: Arc<id_horizon::IdHorizon>,
    misses: Arc<miss_batch::MissBatcher>,
    user_states: Arc<user_cache::UserStates>,
    jwt: Arc<jwt::JwtKeys>,
    limiter: Arc<login_limit::LoginLimiter>,
    passwords: Arc<password_work::PasswordWork>,
    mail: Arc<Mail>,
    metrics: Arc<Metrics>,
    /// The keys leak reports must be signed with (`leaks`); `None`: reports aren't taken.
    scanning_keys: Option<Arc<leaks::ScanningKeys>>,
    /// Leak-report signature checks: one at a time, off the request workers, in a bounded
    /// queue with per-address limits (`report_gate`).
    report_gate: Arc<report_gate::ReportGate>,
    /// Set on SIGTERM/SIGINT: not ready any more, and a running sweep stops after its
    /// current e-mail.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Services {
    pub fn new(
        pools: database::Pools,
        health: Arc<Health>,
        clock: Clock,
        settings: &Settings,
    ) -> anyhow::Result<Services> {
        let metrics = Arc::new(Metrics::new());
        let scanning_keys = match &settings.secret_scanning_keys {
            Some(path) => Some(Arc::new(leaks::ScanningKeys::load(path)?)),
            None => None,
        };
        Ok(Services {
            scanning_keys,
            report_gate: Arc::default(),
            db: Database::new(pools, health, metrics.clone()),
            metrics,
            stopping: Arc::default(),
            clock,
            verifier: Arc::new(token_cache::TokenVerifier::new(settings.outage_grace)),
            horizon: Arc::default(),
            misses: Arc::default(),
            user_states: Arc::new(user_cache::UserStates::new(settings.outage_grace)),
            jwt: Arc::new(jwt::JwtKeys::new(&settings.jwt_keys)?),
            limiter: Arc::new(login_limit::LoginLimiter::new(
                settings.secret_key.bytes(),
                login_limit::Limits::default(),
            )),
            passwords: Arc::new(password_work::PasswordWork::sized_to_machine()),
            mail: Arc::new(Mail::from_settings(settings)?),
        })
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The pool, for the command line and for tests that look at what was stored.
    pub fn pool(&self) -> &DbPool {
        self.db.pool()
    }

    /// Forgets deleted tokens in this instance's cache, so they are refused from the very
    /// next request (other instances within the cache's life).
    /// The keys leak reports are checked with, if any are configured.
    pub fn scanning_keys(&self) -> Option<&leaks::ScanningKeys> {
        self.scanning_keys.as_deref()
    }

    /// A place in the queue of leak-report signature checks for a report from `from`, or why
    /// not (`report_gate`): asked before the report's body is read.
    pub fn admit_leak_report(
        &self,
        from: Option<std::net::IpAddr>,
    ) -> Result<report_gate::Ticket, report_gate::Refusal> {
        self.report_gate.admit(from)
    }

    /// Checks a leak report's signature on the blocking pool when its turn comes; `None` when
    /// no keys are configured.
    pub async fn verify_leak_report(
        &self,
        ticket: report_gate::Ticket,
        key_id: String,
        signature: String,
        body: Vec<u8>,
    ) -> Option<(Result<(), leaks::BadSignature>, Vec<u8>)> {
        let keys = self.scanning_keys.clone()?;
        self.report_gate
            .run(ticket, move || {
                (keys.verify(&key_id, &signature, &body), body)
            })
            .await
    }

    fn forget_tokens(&self, ids: &[i64]) {
        for id in ids {
            self.verifier.forget(*id);
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts the shutdown: `/readyz` answers 503 from now on, and a running sweep stops
    /// after the e-mail it is sending.
    pub fn begin_shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The metrics in Prometheus' text format, with the values read at scrape: connections
    /// in use, e-mails pending (one indexed count; left as they were if the database
    /// doesn't answer), password work in flight.
    pub async fn metrics_text(&self) -> String {
        let pending = self
            .db
            .run(|conn| Ok(crate::repo::notices::Notice::pending_summary(conn)?))
            .await
            .ok();
        let now = self.clock.now();
        let readings = crate::metrics::Readings {
            pools: self.db.pool_states(),
            pending_emails: pending.map(|(count, oldest)| {
                let age = oldest.map_or(std::time::Duration::ZERO, |at| {
                    (now - crate::domain::token::from_naive(at))
                        .try_into()
                        .unwrap_or_default()
                });
                (count, age)
            }),
            password_work_in_flight: self.passwords.in_flight() as i64,
            draining: self.is_stopping(),
        };
        self.metrics.render(&readings)
    }

    /// Reads this instance made on the gateway's connections (token and user loads).
    pub fn gateway_reads(&self) -> u64 {
        self.db.gateway_runs()
    }

    /// Password hashes and verifications run so far by this instance.
    pub fn password_work_done(&self) -> u64 {
        self.passwords.done()
    }

    /// The public keys that verify our JWTs, as a JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        self.jwt.jwks(self.clock.now())
    }

    /// Ready to serve: the database answers, within `READY_DEADLINE`, and has every migration
    /// this build knows. Never waits longer than the deadline, so a load balancer's probe gets
    /// an answer, not a timeout.
    pub async fn ready(&self) -> ServiceResult<()> {
        use diesel::r2d2::R2D2Connection;
        if self.is_stopping() {
            return Err(ServiceError::Unavailable("shutting down".into()));
        }
        let check = self.db.run(|conn| {
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
