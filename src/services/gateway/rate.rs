//! Rate limits at the gateway (issue 28), on every instance at once with no write per request:
//! each token's bucket lives in the database (`rate_buckets`), and an instance *leases* a tenth
//! of the burst at a time (`RateLimit::chunk`), spends it from memory for at most a tenth of
//! the period (`lease_ms`), and gives back what it didn't spend with its next lease. An empty
//! bucket tells the instance when the next request will be there, and until then it refuses
//! from memory: a flood costs no database work. What leases can add to the limit over any
//! stretch of time is what was leased in the last `lease_ms` before it, at most a tenth of the
//! burst, so across instances the bound holds within 10 %. An instance that dies holding a
//! lease takes at most a chunk with it: the bucket refills it within a tenth of the period.
//! While the database can't be reached an instance grants itself a chunk per `lease_ms`, the
//! rate on its own (the gateway's stale-if-error, applied to limits).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::rate::RateLimit;
use crate::repo::token_limits::RateBucket;

#[derive(Debug, Default)]
struct Lease {
    /// Requests left of the current lease, and when it ends.
    left: u32,
    until: Option<Instant>,
    /// The bucket was empty: refuse from memory until then.
    empty_until: Option<Instant>,
}

/// This instance's leases, one per rate-limited token it has seen.
#[derive(Default)]
pub struct RateLeases {
    cells: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Lease>>>>,
    leases: std::sync::atomic::AtomicU64,
}

impl RateLeases {
    fn cell(&self, token: i64) -> Arc<tokio::sync::Mutex<Lease>> {
        self.cells
            .lock()
            .expect("leases lock")
            .entry(token)
            .or_default()
            .clone()
    }

    /// Leases taken from the database so far (tests count them: never one per request).
    pub fn leases(&self) -> u64 {
        self.leases.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl RateLeases {
    /// One request of `token` under `limit`: `Ok`, or how long until one would pass.
    pub async fn take(
        &self,
        rt: &crate::services::runtime::Runtime,
        token: crate::domain::TokenId,
        limit: RateLimit,
    ) -> Result<(), Duration> {
        let cell = self.cell(token.get());
        let mut lease = cell.lock().await;
        let now = Instant::now();
        if lease.left > 0 && lease.until.is_some_and(|u| now < u) {
            lease.left -= 1;
            return Ok(());
        }
        if let Some(until) = lease.empty_until.filter(|u| now < *u) {
            return Err(until - now);
        }
        // What the last lease didn't spend goes back with this one.
        let give_back = std::mem::take(&mut lease.left);
        let now_ms = (rt.clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
        let id = token.get();
        let taken = rt
            .db
            .run(move |conn| {
                Ok(RateBucket::lease(
                    conn,
                    id,
                    limit,
                    now_ms,
                    give_back,
                    limit.chunk(),
                )?)
            })
            .await;
        self.leases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (granted, wait_ms) = match taken {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "rate lease unavailable: this instance limits alone");
                (limit.chunk(), 0)
            }
        };
        if granted == 0 {
            let wait = Duration::from_millis(wait_ms);
            lease.empty_until = Some(now + wait);
            lease.until = None;
            return Err(wait);
        }
        lease.left = granted - 1;
        lease.until = Some(now + Duration::from_millis(limit.lease_ms()));
        lease.empty_until = None;
        Ok(())
    }
}
