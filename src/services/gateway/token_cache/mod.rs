//! The in-memory cache of verified permanent tokens.
//!
//! Token checks are the hot path of the whole system (every API call behind the gateway), so
//! verified rows are cached in memory for at most one second: a token deleted on another
//! instance stops working within that second, and the instance that deletes it forgets it at
//! once (`TokenVerifier::forget`). A cache hit costs one SHA-256 and a map lookup, no database.
//!
//! While the database can't be reached, a token verified here within the outage grace keeps
//! passing from what was last read (`TokenVerifier::stale`): its expiry and role still hold, a
//! token this instance saw deleted or refused never passes, and one never seen is not guessed
//! at. Uses are noted in memory and written in one batch a second (`uses`).

mod entry;
pub mod uses;

use entry::CachedToken;
pub use uses::{Refusal, UseFacts, Uses, LAST_USED_GAP};

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use crossbeam_utils::sync::ShardedLock;
use rustc_hash::FxHashMap;
use std::time::{Duration as StdDuration, Instant};

use crate::db::DbConn;
use crate::domain::token::PresentedToken;
use crate::error::ServiceResult;
use crate::repo::TokenForAuth;
use crate::services::vocabulary::{Credential, Unauthorized};

/// How long a verified token row is trusted without asking the database again.
pub const CACHE_TTL: StdDuration = StdDuration::from_secs(1);
/// A cached row that refuses a secret is read again if it is older than this: the secret
/// may be one just made by a rotation on another instance. At most one read per token this
/// often, however many wrong secrets arrive.
pub const MISMATCH_RECHECK: StdDuration = StdDuration::from_millis(100);

/// Verifies permanent tokens, with the one-second cache described above.
#[derive(Default)]
pub struct TokenVerifier {
    /// Read on every check: a sharded lock, whose readers on different threads write to
    /// different cache lines (a single reader count would be shared by every worker).
    cache: ShardedLock<FxHashMap<i64, CachedToken>>,
    /// When each token was last forgotten (deleted here): a row loaded before that is stale
    /// and not cached, and the token never passes on stale data.
    forgotten: Mutex<HashMap<i64, Instant>>,
    /// Uses noted since the last flush (`uses::Uses`).
    pub uses: Uses,
    /// Entries past half their life, to be reloaded together by the next batch
    /// (`take_refreshes`): one read for many tokens instead of one each.
    refresh_queue: Mutex<Vec<i64>>,
    /// How long a verified row may stand in for the database while it is unreachable.
    outage_grace: StdDuration,
}

/// A token row as read from the database, stamped with when the read began.
pub struct LoadedRow {
    row: Option<TokenForAuth>,
    started: Instant,
}

pub enum Verdict {
    /// Answered from the cache. `refresh` asks the caller to reload the row in the background
    /// (`refresh_in_background`): the entry is past half its life, and reloading it before it
    /// expires spares the requests of the next second a wait for the database.
    Known {
        verdict: Result<Credential, Unauthorized>,
        refresh: bool,
        /// A use of this token was passed to `note_use` within `LAST_USED_GAP`: this one need
        /// not be (it would be dropped there anyway).
        noted_recently: bool,
    },
    /// Not cached (or stale): load the row (`MissBatcher`, `load_many`) and call `remember`.
    Unknown,
}

impl LoadedRow {
    pub fn exists(&self) -> bool {
        self.row.is_some()
    }

    pub fn from_parts(row: Option<TokenForAuth>, started: Instant) -> LoadedRow {
        LoadedRow { row, started }
    }
}

impl TokenVerifier {
    pub fn new(outage_grace: StdDuration) -> TokenVerifier {
        TokenVerifier {
            outage_grace,
            ..TokenVerifier::default()
        }
    }

    /// How long entries and tombstones are kept: the cache life, or the outage grace.
    fn keep(&self) -> StdDuration {
        CACHE_TTL.max(self.outage_grace)
    }

    /// The answer from what this instance last knew, for when the database can't be asked.
    /// `None`: nothing to go on (never verified here, or verified too long ago), so the caller
    /// must say "unavailable", not guess. `now` is a Unix second.
    pub fn stale(
        &self,
        presented: &PresentedToken,
        now: i64,
    ) -> Option<Result<Credential, Unauthorized>> {
        let deleted_here = self
            .forgotten
            .lock()
            .expect("forgotten lock")
            .contains_key(&presented.id);
        if deleted_here {
            return Some(Err(Unauthorized));
        }
        let cache = self.cache.read().expect("token cache lock");
        let entry = cache.get(&presented.id)?;
        match entry.verify(presented, now) {
            // A refusal stands however old it is: a stale row can't make a token valid.
            Err(refused) => Some(Err(refused)),
            Ok(credential) if entry.fetched.elapsed() < self.outage_grace => Some(Ok(Credential {
                stale: true,
                ..credential
            })),
            Ok(_) => None,
        }
    }

    /// The check from the cache alone; `now` is a Unix second (`Clock::unix_now`). The hot
    /// path: it writes to no memory another worker reads, except once per entry and minute.
    pub fn check_cached(&self, presented: &PresentedToken, now: i64) -> Verdict {
        let cache = self.cache.read().expect("token cache lock");
        let Some(entry) = cache.get(&presented.id) else {
            return Verdict::Unknown;
        };
        let age = entry.fetched.elapsed();
        if age >= CACHE_TTL {
            return Verdict::Unknown;
        }
        let verdict = entry.verify(presented, now);
        if verdict.is_err() && age >= MISMATCH_RECHECK && entry.alive(now) {
            // Perhaps a secret rotated elsewhere since this row was read: read again.
            return Verdict::Unknown;
        }
        // Read before swapped: after half its life every check sees the entry, and a swap
        // on each would pass its line between the cores.
        let refresh = age >= CACHE_TTL / 2
            && !entry.refreshing.load(Ordering::Relaxed)
            && !entry.refreshing.swap(true, Ordering::Relaxed);
        let noted = entry.noted.load(Ordering::Relaxed);
        let noted_recently = now - noted < LAST_USED_GAP.whole_seconds();
        // Not for an allowlisted token: its request may still be refused for its address,
        // which is no use (`count_use` counts it once the address passed).
        if verdict.is_ok() && entry.allowed.is_none() {
            self.uses.counts.add(presented.id, 1);
            if !noted_recently {
                entry.noted.store(now, Ordering::Relaxed);
            }
        }
        Verdict::Known {
            verdict,
            refresh,
            noted_recently,
        }
    }

    /// Caches a freshly loaded row and verifies against it (`now`: a Unix second).
    pub fn remember(
        &self,
        presented: &PresentedToken,
        loaded: LoadedRow,
        now: i64,
    ) -> Result<Credential, Unauthorized> {
        let Some(row) = loaded.row else {
            return Err(Unauthorized);
        };
        let entry = CachedToken::new(row, loaded.started);
        let verdict = entry.verify(presented, now);
        if verdict.is_ok() && entry.allowed.is_none() {
            self.uses.counts.add(presented.id, 1);
        }
        self.store([(presented.id, Some(entry))], loaded.started);
        verdict
    }

    /// Asks for `id` to be reloaded with the next batch.
    pub fn queue_refresh(&self, id: i64) {
        self.refresh_queue
            .lock()
            .expect("refresh queue lock")
            .push(id);
    }

    /// The ids waiting for a reload, at most `max` (the rest wait for the next batch).
    pub fn take_refreshes(&self, max: usize) -> Vec<i64> {
        let mut queue = self.refresh_queue.lock().expect("refresh queue lock");
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }

    /// Reloads `ids` in one read, stamped with when the read began.
    pub fn load_many(
        conn: &mut DbConn,
        ids: &[i64],
    ) -> ServiceResult<(Vec<TokenForAuth>, Instant)> {
        let started = Instant::now();
        Ok((TokenForAuth::find_many(conn, ids)?, started))
    }

    /// Replaces the entries of `ids` with the rows of one batch read (an id without a row is
    /// dropped), taking the cache's lock once per chunk instead of once per token (a write
    /// takes every shard of the lock).
    pub fn refreshed_many(&self, ids: &[i64], rows: Vec<TokenForAuth>, started: Instant) {
        let mut by_id: HashMap<i64, TokenForAuth> = rows.into_iter().map(|r| (r.id, r)).collect();
        // Chunks: readers wait for one chunk's inserts at most, not a whole batch's.
        for chunk in ids.chunks(256) {
            let entries = chunk
                .iter()
                .map(|id| (*id, by_id.remove(id).map(|r| CachedToken::new(r, started))));
            self.store(entries, started);
        }
    }

    pub fn refreshed(&self, id: i64, loaded: LoadedRow) {
        let started = loaded.started;
        let entry = loaded.row.map(|row| CachedToken::new(row, started));
        self.store([(id, entry)], started);
    }

    /// Caches rows read at `loaded_at` (`None`: the token has no row; forget it).
    fn store(
        &self,
        entries: impl IntoIterator<Item = (i64, Option<CachedToken>)>,
        loaded_at: Instant,
    ) {
        let entries: Vec<_> = {
            let forgotten = self.forgotten.lock().expect("forgotten lock");
            entries
                .into_iter()
                .map(|(id, entry)| {
                    // A row read before this instance deleted the token is stale: never
                    // cache it.
                    let stale = forgotten.get(&id).is_some_and(|at| loaded_at <= *at);
                    (id, entry.filter(|_| !stale))
                })
                .collect()
        };
        let mut cache = self.cache.write().expect("token cache lock");
        // Past 100,000 entries, those too old even for an outage go (once per call: a scan
        // per insert would make a large cache quadratic).
        if cache.len() > 100_000 {
            let keep = self.keep();
            cache.retain(|_, e| e.fetched.elapsed() < keep);
        }
        for (id, entry) in entries {
            match entry {
                Some(entry) => {
                    cache.insert(id, entry);
                }
                None => {
                    cache.remove(&id);
                }
            }
        }
    }

    /// Called by the instance that deletes a token: it is refused from the next request on.
    pub fn forget(&self, id: i64) {
        let mut forgotten = self.forgotten.lock().expect("forgotten lock");
        if forgotten.len() > 100_000 {
            let keep = self.keep().max(CACHE_TTL * 10);
            forgotten.retain(|_, at| at.elapsed() < keep);
        }
        forgotten.insert(id, Instant::now());
        drop(forgotten);
        self.cache.write().expect("token cache lock").remove(&id);
    }
}

#[cfg(test)]
mod tests;
