//! Prometheus metrics: one registry per running application (no global state, so two
//! instances in one process, as in the tests, count apart). The web layer counts requests,
//! the services count what they do, and values that are cheaper to read than to keep
//! (connections in use, pending notices) are read when `/metrics` is scraped.
//!
//! Served only on `APITOKENS_METRICS_BIND`, a listener of its own (see `startup.rs`).

pub(crate) mod striped;

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use striped::{StripedHistogram, StripedU64};

/// A counter that busy threads don't contend on (`striped`).
type HotCounter = Counter<u64, StripedU64>;

/// The gateway's check (nginx `auth_request`): the one hot route.
pub const GATEWAY_ROUTE: &str = "/iam/auth/check";
/// What it answers: yes, bad `min_role`, no, too low, database unreachable.
const GATEWAY_STATUSES: [u16; 5] = [204, 400, 401, 403, 503];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's template (`/iam/clients/{client_id}/tokens`), never the raw path, so ids
    /// don't make a series each.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// How a gateway check (`/iam/auth/check`) ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CheckOutcome {
    ok,
    unauthorized,
    forbidden,
    unavailable,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: CheckOutcome,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CacheResult {
    hit,
    miss,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: CacheResult,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum EmailOutcome {
    sent,
    failed,
    skipped,
    cancelled,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EmailLabels {
    outcome: EmailOutcome,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum PoolName {
    main,
    gateway,
    bookkeeping,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: PoolName,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ConnState {
    busy,
    idle,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnLabels {
    pool: PoolName,
    state: ConnState,
}

/// What a scrape reads at that moment (filled in by the services).
#[derive(Debug, Default)]
pub struct Readings {
    /// (pool, busy, idle) per pool.
    pub pools: Vec<(PoolName, u32, u32)>,
    /// Expiry e-mails waiting to be sent, and the age of the oldest (None if unknown: the
    /// database didn't answer).
    pub pending_emails: Option<(i64, Duration)>,
    pub password_work_in_flight: i64,
    pub draining: bool,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, HotCounter>,
    latency: Family<RouteLabels, StripedHistogram>,
    /// One counter per outcome, fetched once: the hot path only increments an atomic.
    checks: [HotCounter; 4],
    cache: [HotCounter; 2],
    /// The gateway check's request counters for the statuses it answers, and its latency
    /// histogram, fetched once: counting the hottest route allocates no label set.
    gateway_requests: [(u16, HotCounter); 5],
    gateway_latency: StripedHistogram,
    notices_recorded: Counter,
    emails: Family<EmailLabels, Counter>,
    pending_emails: Gauge,
    oldest_pending: Gauge<f64, std::sync::atomic::AtomicU64>,
    connections: Family<ConnLabels, Gauge>,
    pool_wait: Family<PoolLabels, StripedHistogram>,
    password_work: Gauge,
    draining: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("apitokens");
        let requests = Family::<RequestLabels, HotCounter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, StripedHistogram>::default();
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response, by route template",
            latency.clone(),
        );
        let checks = Family::<OutcomeLabels, HotCounter>::default();
        registry.register(
            "gateway_checks",
            "/iam/auth/check answers: ok (204), unauthorized (401), forbidden (403, below min_role), unavailable (503)",
            checks.clone(),
        );
        let cache = Family::<CacheLabels, HotCounter>::default();
        registry.register(
            "token_cache_lookups",
            "Permanent-token checks answered from the in-memory cache (hit) or not (miss)",
            cache.clone(),
        );
        let notices_recorded = Counter::default();
        registry.register(
            "expiry_notices_recorded",
            "Expiry notices recorded by sweeps (one per token, window and recipient)",
            notices_recorded.clone(),
        );
        let emails = Family::<EmailLabels, Counter>::default();
        registry.register(
            "expiry_emails",
            "Expiry notices by what became of their e-mail: sent (in a digest), failed (will retry), skipped (turned off), cancelled (token or person gone)",
            emails.clone(),
        );
        let pending_emails = Gauge::default();
        registry.register(
            "expiry_emails_pending",
            "Expiry e-mails waiting to be sent (read at scrape)",
            pending_emails.clone(),
        );
        let oldest_pending = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "expiry_email_oldest_pending_age_seconds",
            "Age of the oldest expiry e-mail waiting to be sent (0 when none; read at scrape)",
            oldest_pending.clone(),
        );
        let connections = Family::<ConnLabels, Gauge>::default();
        registry.register(
            "db_connections",
            "Database connections per pool, busy or idle (read at scrape)",
            connections.clone(),
        );
        let pool_wait = Family::<PoolLabels, StripedHistogram>::default();
        registry.register(
            "db_connection_wait_seconds",
            "Time spent waiting for a pooled database connection",
            pool_wait.clone(),
        );
        let password_work = Gauge::default();
        registry.register(
            "password_hashes_in_flight",
            "Argon2 hashes and verifications running now (read at scrape)",
            password_work.clone(),
        );
        let draining = Gauge::default();
        registry.register(
            "draining",
            "1 while the instance is shutting down",
            draining.clone(),
        );
        let checks = [
            CheckOutcome::ok,
            CheckOutcome::unauthorized,
            CheckOutcome::forbidden,
            CheckOutcome::unavailable,
        ]
        .map(|outcome| checks.get_or_create(&OutcomeLabels { outcome }).clone());
        let cache = [CacheResult::hit, CacheResult::miss]
            .map(|result| cache.get_or_create(&CacheLabels { result }).clone());
        let gateway_requests = GATEWAY_STATUSES.map(|status| {
            let labels = RequestLabels {
                method: "GET".into(),
                route: GATEWAY_ROUTE.into(),
                status,
            };
            (status, requests.get_or_create(&labels).clone())
        });
        let gateway_latency = latency
            .get_or_create(&RouteLabels {
                route: GATEWAY_ROUTE.into(),
            })
            .clone();
        Metrics {
            registry,
            gateway_requests,
            gateway_latency,
            requests,
            latency,
            checks,
            cache,
            notices_recorded,
            emails,
            pending_emails,
            oldest_pending,
            connections,
            pool_wait,
            password_work,
            draining,
        }
    }

    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(took);
    }

    /// A request to the gateway check (`GET /iam/auth/check`), counted like `request` does.
    pub fn gateway_request(&self, status: u16, took: Duration) {
        match self.gateway_requests.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => {
                counter.inc();
                self.gateway_latency.observe(took);
            }
            None => self.request("GET", GATEWAY_ROUTE, status, took),
        }
    }

    pub fn check(&self, outcome: CheckOutcome) {
        self.checks[outcome as usize].inc();
    }

    pub fn cache(&self, result: CacheResult) {
        self.cache[result as usize].inc();
    }

    pub fn notices_recorded(&self, n: usize) {
        self.notices_recorded.inc_by(n as u64);
    }

    pub fn emails(&self, outcome: EmailOutcome, n: usize) {
        if n > 0 {
            self.emails
                .get_or_create(&EmailLabels { outcome })
                .inc_by(n as u64);
        }
    }

    pub fn pool_wait(&self, pool: PoolName, waited: Duration) {
        self.pool_wait
            .get_or_create(&PoolLabels { pool })
            .observe(waited);
    }

    /// The text exposition format, with `readings` taken just now.
    pub fn render(&self, readings: &Readings) -> String {
        for (pool, busy, idle) in &readings.pools {
            for (state, n) in [(ConnState::busy, busy), (ConnState::idle, idle)] {
                self.connections
                    .get_or_create(&ConnLabels { pool: *pool, state })
                    .set(i64::from(*n));
            }
        }
        if let Some((count, age)) = readings.pending_emails {
            self.pending_emails.set(count);
            self.oldest_pending.set(age.as_secs_f64());
        }
        self.password_work.set(readings.password_work_in_flight);
        self.draining.set(i64::from(readings.draining));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String can't fail");
        out
    }
}

/// The content type of `render`'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_under_their_labels() {
        let m = Metrics::new();
        m.request(
            "GET",
            "/iam/clients/{client_id}/tokens",
            200,
            Duration::from_millis(3),
        );
        m.request(
            "GET",
            "/iam/clients/{client_id}/tokens",
            200,
            Duration::from_millis(3),
        );
        m.check(CheckOutcome::unauthorized);
        let text = m.render(&Readings {
            pools: vec![(PoolName::main, 2, 6)],
            pending_emails: Some((4, Duration::from_secs(90))),
            ..Readings::default()
        });
        assert!(text.contains(
            r#"apitokens_http_requests_total{method="GET",route="/iam/clients/{client_id}/tokens",status="200"} 2"#
        ), "{text}");
        assert!(text.contains(r#"apitokens_gateway_checks_total{outcome="unauthorized"} 1"#));
        assert!(text.contains(r#"apitokens_db_connections{pool="main",state="busy"} 2"#));
        assert!(text.contains("apitokens_expiry_emails_pending 4"));
        assert!(text.contains("apitokens_expiry_email_oldest_pending_age_seconds 90.0"));
        assert!(text.ends_with("# EOF\n"));
    }
}
