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

use std::time::Duration;

use super::lease::{Fast, LeaseCells};
use crate::domain::rate::RateLimit;
use crate::repo::token_limits::RateBucket;

/// This instance's leases, one per rate-limited token it has seen (`gateway::lease`).
#[derive(Default)]
pub struct RateLeases {
    cells: LeaseCells<()>,
    leases: std::sync::atomic::AtomicU64,
}

impl RateLeases {
    /// Leases taken from the database so far (tests count them: never one per request).
    pub fn leases(&self) -> u64 {
        self.leases.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One request of `token` under `limit`: `Ok`, or how long until one would pass.
    pub async fn take(
        &self,
        rt: &crate::services::runtime::Runtime,
        token: crate::domain::TokenId,
        limit: RateLimit,
    ) -> Result<(), Duration> {
        let id = token.get();
        match self.cells.fast(id, self.cells.now_ms(), 0) {
            Fast::Took => return Ok(()),
            Fast::Blocked(wait) => return Err(wait),
            Fast::Slow => {}
        }
        let cell = self.cells.cell(id);
        let _slow = cell.state.lock().await;
        // Another request may have leased while this one waited.
        let now = self.cells.now_ms();
        match cell.fast(now, 0) {
            Fast::Took => return Ok(()),
            Fast::Blocked(wait) => return Err(wait),
            Fast::Slow => {}
        }
        // What the last lease didn't spend goes back with this one.
        let give_back = cell.take_left() as u32;
        let now_ms = (rt.clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
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
            cell.block(now + wait_ms, i64::MAX);
            return Err(Duration::from_millis(wait_ms));
        }
        cell.grant(u64::from(granted - 1), now + limit.lease_ms(), i64::MAX);
        Ok(())
    }
}
