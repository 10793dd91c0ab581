//! Uses of tokens, noted in memory on the hot path and written by the once-a-second flush:
//! request counts per token in per-thread shards (a hot token on every worker shares no
//! counter), and the last use's time, address and user agent, queued at most once a minute
//! per token on this instance.

use std::collections::HashMap;
use std::sync::Mutex;

use rustc_hash::FxHashMap;
use time::{Duration, OffsetDateTime};

use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::error::ServiceResult;
use crate::metrics::striped::{shard, Padded, SHARDS};
use crate::repo::TokenForAuth;

/// `last_used_at` is written at most this often per token.
pub const LAST_USED_GAP: Duration = Duration::minutes(1);

/// Requests per token since the last flush, counted in the counting thread's own shard: a
/// token hot on every worker then shares no counter (an atomic in its cache entry was one
/// cache line passed between the cores on every check). The flush adds the shards up.
#[derive(Default)]
pub struct UseCounts {
    shards: [Padded<Mutex<FxHashMap<i64, u64>>>; SHARDS],
}

impl UseCounts {
    pub fn add(&self, id: i64, n: u64) {
        let mut counts = self.shards[shard()].0.lock().expect("use counts lock");
        *counts.entry(id).or_default() += n;
    }

    pub fn take(&self) -> FxHashMap<i64, u64> {
        let mut all = FxHashMap::default();
        for shard in &self.shards {
            let taken = std::mem::take(&mut *shard.0.lock().expect("use counts lock"));
            for (id, n) in taken {
                *all.entry(id).or_default() += n;
            }
        }
        all
    }
}

/// Why a good token's request was refused: its routes, its rate or its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Route = 0,
    Rate = 1,
    Quota = 2,
}

/// Where a use came from: the client address (under the trusted proxies) and user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UseFacts {
    pub ip: Option<String>,
    pub agent: Option<String>,
}

/// The uses noted since the last flush, per token.
#[derive(Default)]
pub struct Uses {
    last_recorded: Mutex<HashMap<i64, OffsetDateTime>>,
    /// Uses not yet written: token id → latest use.
    pending_uses: Mutex<HashMap<i64, OffsetDateTime>>,
    /// The client address and user agent of the uses queued in `pending_uses`.
    pending_facts: Mutex<HashMap<i64, UseFacts>>,
    /// Requests served per token since the last flush (`take_counts`).
    pub counts: UseCounts,
    /// Of those, refused by the token's limits, per `Refusal` (rare: a map behind one lock).
    refusals: Mutex<HashMap<i64, [i64; 3]>>,
}

impl Uses {
    /// Counts a request of a token whose cache entry couldn't count it itself (one with an
    /// allowlist, counted only once its address passed).
    pub fn count_use(&self, id: i64) {
        self.counts.add(id, 1);
    }

    /// The requests counted since the last take, per token (every instance adds its own).
    pub fn take_counts(&self) -> Vec<(i64, i64)> {
        self.counts
            .take()
            .into_iter()
            .map(|(id, n)| (id, n as i64))
            .collect()
    }

    /// Counts a refusal (`Refusal`) of a token's request.
    pub fn count_refusal(&self, id: i64, why: Refusal) {
        let mut map = self.refusals.lock().expect("refusals lock");
        map.entry(id).or_default()[why as usize] += 1;
    }

    /// The refusals counted since the last take: (token, [route, rate, quota]).
    pub fn take_refusals(&self) -> Vec<(i64, [i64; 3])> {
        std::mem::take(&mut *self.refusals.lock().expect("refusals lock"))
            .into_iter()
            .collect()
    }

    /// Puts back refusals a write could not store.
    pub fn requeue_refusals(&self, refusals: &[(i64, [i64; 3])]) {
        let mut map = self.refusals.lock().expect("refusals lock");
        for (id, n) in refusals {
            let counts = map.entry(*id).or_default();
            for (c, add) in counts.iter_mut().zip(n) {
                *c += add;
            }
        }
    }

    /// Puts back counts a write could not store.
    pub fn requeue_counts(&self, counts: &[(i64, i64)]) {
        for (id, n) in counts {
            self.counts.add(*id, *n as u64);
        }
    }

    /// Notes a use with where it came from: the client address and user agent are asked for
    /// only when the use is queued (at most once a minute per token on this instance).
    pub fn note_use_from(&self, id: i64, now: OffsetDateTime, facts: impl FnOnce() -> UseFacts) {
        {
            let mut map = self.last_recorded.lock().expect("last-used lock");
            if map.get(&id).is_some_and(|at| now - *at < LAST_USED_GAP) {
                return;
            }
            if map.len() > 100_000 {
                map.retain(|_, at| now - *at < LAST_USED_GAP);
            }
            map.insert(id, now);
        }
        self.pending_facts
            .lock()
            .expect("pending facts lock")
            .insert(id, facts());
        self.requeue_uses([(id, now)]);
    }

    /// The client facts of the queued uses.
    pub fn take_facts(&self) -> HashMap<i64, UseFacts> {
        std::mem::take(&mut *self.pending_facts.lock().expect("pending facts lock"))
    }

    /// Puts back facts a write could not store (newer ones win).
    pub fn requeue_facts(&self, facts: HashMap<i64, UseFacts>) {
        let mut pending = self.pending_facts.lock().expect("pending facts lock");
        for (id, f) in facts {
            pending.entry(id).or_insert(f);
        }
    }

    /// Notes a use of a token; at most once a minute per token on this instance it is queued
    /// for the next batched write of `last_used_at`.
    pub fn note_use(&self, id: i64, now: OffsetDateTime) {
        let mut map = self.last_recorded.lock().expect("last-used lock");
        if map.get(&id).is_some_and(|at| now - *at < LAST_USED_GAP) {
            return;
        }
        if map.len() > 100_000 {
            map.retain(|_, at| now - *at < LAST_USED_GAP);
        }
        map.insert(id, now);
        drop(map);
        self.requeue_uses([(id, now)]);
    }

    /// The uses queued since the last take, latest per token.
    pub fn take_uses(&self) -> Vec<(i64, OffsetDateTime)> {
        std::mem::take(&mut *self.pending_uses.lock().expect("pending uses lock"))
            .into_iter()
            .collect()
    }

    /// Puts back uses a write could not store; a later use of the same token wins.
    pub fn requeue_uses(&self, uses: impl IntoIterator<Item = (i64, OffsetDateTime)>) {
        let mut pending = self.pending_uses.lock().expect("pending uses lock");
        for (id, at) in uses {
            let latest = pending.entry(id).or_insert(at);
            *latest = (*latest).max(at);
        }
    }

    /// Writes uses in one transaction; a token's time only ever moves forward.
    pub fn record_uses(conn: &mut DbConn, uses: &[(i64, OffsetDateTime)]) -> ServiceResult<()> {
        let rows: Vec<_> = uses.iter().map(|(id, at)| (*id, to_naive(*at))).collect();
        Ok(TokenForAuth::record_uses(conn, &rows)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_use_is_queued_at_most_once_a_minute_and_requeued_uses_keep_the_latest() {
        let v = Uses::default();
        let now = datetime!(2026-11-28 10:00 UTC);
        v.note_use(1, now);
        v.note_use(1, now + Duration::seconds(59));
        v.note_use(2, now);
        let mut taken = v.take_uses();
        taken.sort();
        assert_eq!(taken, vec![(1, now), (2, now)]);
        assert!(v.take_uses().is_empty());
        v.note_use(1, now + Duration::seconds(60));
        // A failed write puts back an older time: the newer queued one stays.
        v.requeue_uses([(1, now)]);
        assert_eq!(v.take_uses(), vec![(1, now + Duration::seconds(60))]);
    }
}
