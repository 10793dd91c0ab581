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
//! at. Uses are noted in memory and written in one batch a second (`take_uses`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

use crossbeam_utils::sync::ShardedLock;
use rustc_hash::FxHashMap;
use std::time::{Duration as StdDuration, Instant};

use time::{Duration, OffsetDateTime};

use crate::db::DbConn;
use crate::domain::secret::Digest32;
use crate::domain::token::{to_naive, PresentedToken};
use crate::error::ServiceResult;
use crate::metrics::striped::{shard, Padded, SHARDS};
use crate::repo::TokenForAuth;
use crate::services::vocabulary::{Actor, Credential, Unauthorized};
use time::PrimitiveDateTime;

/// How long a verified token row is trusted without asking the database again.
pub const CACHE_TTL: StdDuration = StdDuration::from_secs(1);
/// A cached row that refuses a secret is read again if it is older than this: the secret
/// may be one just made by a rotation on another instance. At most one read per token this
/// often, however many wrong secrets arrive.
pub const MISMATCH_RECHECK: StdDuration = StdDuration::from_millis(100);
/// `last_used_at` is written at most this often per token.
pub const LAST_USED_GAP: Duration = Duration::minutes(1);

#[derive(Debug)]
struct CachedToken {
    row: TokenForAuth,
    /// `row.secret_hash` as bytes (`None`: malformed, matches nothing).
    digest: Option<Digest32>,
    /// During a rotation's grace: the old secret's hash as bytes, and the Unix second it
    /// stops at.
    old: Option<(Digest32, i64)>,
    /// `row.expires_at` as the first Unix second at which the token is expired (`None`:
    /// never): the check compares whole seconds, with no calendar arithmetic.
    expires: Option<i64>,
    /// The address allowlist, parsed once (`None`: any address).
    allowed: Option<std::sync::Arc<[ipnet::IpNet]>>,
    fetched: Instant,
    /// Set once a background reload of this entry has been asked for.
    refreshing: AtomicBool,
    /// Unix second of the last use passed on to `note_use` from this entry (0: none): a use
    /// within `LAST_USED_GAP` of it needs no lock at all.
    noted: AtomicI64,
}

impl CachedToken {
    fn new(row: TokenForAuth, fetched: Instant) -> CachedToken {
        let old = row
            .old_secret_hash
            .as_deref()
            .and_then(Digest32::from_stored)
            .zip(row.old_secret_until.map(unix_ceil));
        let allowed = row
            .allowed_ips
            .as_deref()
            .map(|s| crate::domain::allowlist::from_stored(Some(s)))
            .filter(|nets| !nets.is_empty())
            .map(std::sync::Arc::from);
        CachedToken {
            digest: Digest32::from_stored(&row.secret_hash),
            old,
            expires: row.expires_at.map(unix_ceil),
            allowed,
            row,
            fetched,
            refreshing: AtomicBool::new(false),
            noted: AtomicI64::new(0),
        }
    }

    /// Not deleted, expired or of a removed issuer: a refusal then means the secret didn't
    /// match.
    fn alive(&self, now: i64) -> bool {
        let row = &self.row;
        row.deleted_at.is_none()
            && row.issuer_removed_at.is_none()
            && self.expires.is_none_or(|at| at > now)
    }

    /// `now` is a Unix second (`Clock::unix_now`).
    fn verify(&self, presented: &PresentedToken, now: i64) -> Result<Credential, Unauthorized> {
        let row = &self.row;
        let secret = presented.secret.as_bytes();
        // The old secret is tried only when the current one doesn't match, and only before
        // its grace ends (to the second, whatever this entry's age).
        let hash_ok = self.digest.is_some_and(|d| d.is_hash_of(secret))
            || self
                .old
                .is_some_and(|(d, until)| now < until && d.is_hash_of(secret));
        if hash_ok && self.alive(now) {
            Ok(Credential {
                actor: Actor {
                    user_id: row.issuer_id,
                    account_id: row.account_id,
                    role: row.role.capped_by(row.issuer_role),
                    origin: Default::default(),
                },
                token_id: Some(row.id),
                stale: false,
                allowed: self.allowed.clone(),
            })
        } else {
            Err(Unauthorized)
        }
    }
}

/// A stored time (naive UTC) as the first whole Unix second not before it: for a whole
/// second `now`, `at > now` exactly when `unix_ceil(at) > now`.
pub(crate) fn unix_ceil(at: PrimitiveDateTime) -> i64 {
    let at = at.assume_utc();
    at.unix_timestamp() + i64::from(at.nanosecond() > 0)
}

/// Requests per token since the last flush, counted in the counting thread's own shard: a
/// token hot on every worker then shares no counter (an atomic in its cache entry was one
/// cache line passed between the cores on every check). The flush adds the shards up.
#[derive(Default)]
struct UseCounts {
    shards: [Padded<Mutex<FxHashMap<i64, u64>>>; SHARDS],
}

impl UseCounts {
    fn add(&self, id: i64, n: u64) {
        let mut counts = self.shards[shard()].0.lock().expect("use counts lock");
        *counts.entry(id).or_default() += n;
    }

    fn take(&self) -> FxHashMap<i64, u64> {
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

/// Verifies permanent tokens, with the one-second cache described above.
#[derive(Default)]
pub struct TokenVerifier {
    /// Read on every check: a sharded lock, whose readers on different threads write to
    /// different cache lines (a single reader count would be shared by every worker).
    cache: ShardedLock<FxHashMap<i64, CachedToken>>,
    /// When each token was last forgotten (deleted here): a row loaded before that is stale
    /// and not cached, and the token never passes on stale data.
    forgotten: Mutex<HashMap<i64, Instant>>,
    last_recorded: Mutex<HashMap<i64, OffsetDateTime>>,
    /// Uses not yet written: token id → latest use.
    pending_uses: Mutex<HashMap<i64, OffsetDateTime>>,
    /// The client address and user agent of the uses queued in `pending_uses`.
    pending_facts: Mutex<HashMap<i64, UseFacts>>,
    /// Requests served per token since the last flush (`take_counts`).
    counts: UseCounts,
    /// Entries past half their life, to be reloaded together by the next batch
    /// (`take_refreshes`): one read for many tokens instead of one each.
    refresh_queue: Mutex<Vec<i64>>,
    /// How long a verified row may stand in for the database while it is unreachable.
    outage_grace: StdDuration,
}

/// Where a use came from: the client address (under the trusted proxies) and user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UseFacts {
    pub ip: Option<String>,
    pub agent: Option<String>,
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
            self.counts.add(presented.id, 1);
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
            self.counts.add(presented.id, 1);
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
    use crate::domain::token::TokenHash;
    use time::macros::datetime;

    fn row(id: i64) -> TokenForAuth {
        TokenForAuth {
            id,
            account_id: 7,
            issuer_id: 3,
            role: crate::domain::Role::Engineers,
            secret_hash: TokenHash::of(&"a".repeat(64)).0,
            expires_at: None,
            deleted_at: None,
            issuer_removed_at: None,
            issuer_role: crate::domain::Role::Administrators,
            old_secret_hash: None,
            old_secret_until: None,
            allowed_ips: None,
        }
    }

    #[test]
    fn a_row_loaded_before_a_delete_is_never_cached_after_it() {
        let v = TokenVerifier::default();
        let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
        let presented = PresentedToken::parse(&format!("1_{}", "a".repeat(64))).unwrap();
        let fresh = LoadedRow {
            row: Some(row(1)),
            started: Instant::now(),
        };
        assert!(v.remember(&presented, fresh, now).is_ok());
        assert!(matches!(
            v.check_cached(&presented, now),
            Verdict::Known { verdict: Ok(_), .. }
        ));
        // A background reload starts, then the token is deleted here, then the reload lands.
        let stale = LoadedRow {
            row: Some(row(1)),
            started: Instant::now(),
        };
        v.forget(1);
        v.refreshed(1, stale);
        assert!(
            matches!(v.check_cached(&presented, now), Verdict::Unknown),
            "the stale row was dropped"
        );
        // A row read after the delete is cached again (and says it is deleted).
        let mut deleted = row(1);
        deleted.deleted_at = Some(datetime!(2026-11-28 10:00));
        let after = LoadedRow {
            row: Some(deleted),
            started: Instant::now(),
        };
        assert!(v.remember(&presented, after, now).is_err());
        assert!(matches!(
            v.check_cached(&presented, now),
            Verdict::Known {
                verdict: Err(_),
                ..
            }
        ));
    }

    #[test]
    fn a_wrong_secret_or_an_expired_row_is_refused_from_the_cache() {
        let v = TokenVerifier::default();
        let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
        let mut r = row(2);
        r.expires_at = Some(datetime!(2026-11-28 11:00));
        let good = PresentedToken::parse(&format!("2_{}", "a".repeat(64))).unwrap();
        let bad = PresentedToken::parse(&format!("2_{}", "b".repeat(64))).unwrap();
        assert!(v
            .remember(
                &good,
                LoadedRow {
                    row: Some(r),
                    started: Instant::now()
                },
                now
            )
            .is_ok());
        assert!(matches!(
            v.check_cached(&bad, now),
            Verdict::Known {
                verdict: Err(_),
                ..
            }
        ));
        let later = datetime!(2026-11-28 11:00 UTC).unix_timestamp();
        // A second before the expiry it still passes.
        assert!(matches!(
            v.check_cached(&good, later - 1),
            Verdict::Known { verdict: Ok(_), .. }
        ));
        assert!(matches!(
            v.check_cached(&good, later),
            Verdict::Known {
                verdict: Err(_),
                ..
            }
        ));
    }

    fn noted_recently(v: &TokenVerifier, presented: &PresentedToken, now: i64) -> bool {
        match v.check_cached(presented, now) {
            Verdict::Known { noted_recently, .. } => noted_recently,
            Verdict::Unknown => panic!("cached"),
        }
    }

    #[test]
    fn a_cached_hit_skips_the_use_lock_for_a_minute_after_a_noted_use() {
        let v = TokenVerifier::default();
        let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
        let good = PresentedToken::parse(&format!("3_{}", "a".repeat(64))).unwrap();
        let bad = PresentedToken::parse(&format!("3_{}", "b".repeat(64))).unwrap();
        let loaded = LoadedRow::from_parts(Some(row(3)), Instant::now());
        assert!(v.remember(&good, loaded, now).is_ok());
        // A refused secret never marks the entry as used.
        assert!(!noted_recently(&v, &bad, now));
        assert!(
            !noted_recently(&v, &good, now),
            "the first use goes to note_use"
        );
        assert!(noted_recently(&v, &good, now + 59));
        assert!(!noted_recently(&v, &good, now + 60));
        assert!(noted_recently(&v, &good, now + 61));
        // A reloaded entry starts over: its first use asks note_use, whose own map still
        // holds the minute, so last_used_at isn't written more often.
        v.refreshed(3, LoadedRow::from_parts(Some(row(3)), Instant::now()));
        assert!(!noted_recently(&v, &good, now + 62));
    }

    #[test]
    fn a_use_is_queued_at_most_once_a_minute_and_requeued_uses_keep_the_latest() {
        let v = TokenVerifier::default();
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

    #[test]
    fn on_stale_data_a_recent_token_passes_and_a_deleted_or_unknown_one_does_not() {
        let v = TokenVerifier::new(StdDuration::from_secs(60));
        let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
        let token = |id: i64| PresentedToken::parse(&format!("{id}_{}", "a".repeat(64))).unwrap();
        let loaded = |r: TokenForAuth| LoadedRow {
            row: Some(r),
            started: Instant::now(),
        };
        assert!(v.remember(&token(1), loaded(row(1)), now).is_ok());
        let stale = v.stale(&token(1), now).expect("known").expect("passes");
        assert!(stale.stale, "marked as answered from stale data");
        // Its expiry still holds.
        let mut expiring = row(2);
        expiring.expires_at = Some(datetime!(2026-11-28 10:05));
        assert!(v.remember(&token(2), loaded(expiring), now).is_ok());
        assert!(v.stale(&token(2), now).unwrap().is_ok());
        assert!(v
            .stale(&token(2), datetime!(2026-11-28 10:05 UTC).unix_timestamp())
            .unwrap()
            .is_err());
        // A wrong secret for a known id, a token deleted here, a token never seen.
        let wrong = PresentedToken::parse(&format!("1_{}", "b".repeat(64))).unwrap();
        assert!(v.stale(&wrong, now).unwrap().is_err());
        v.forget(1);
        assert!(v.stale(&token(1), now).unwrap().is_err());
        assert!(v.stale(&token(3), now).is_none());
        // With no grace, nothing passes on stale data, but refusals still stand.
        let off = TokenVerifier::new(StdDuration::ZERO);
        assert!(off.remember(&token(4), loaded(row(4)), now).is_ok());
        assert!(off.stale(&token(4), now).is_none());
        assert!(off.stale(&wrong, now).is_none());
    }

    #[test]
    fn an_expiry_within_a_second_holds_until_that_instant_has_passed() {
        let v = TokenVerifier::default();
        let mut r = row(5);
        r.expires_at = Some(datetime!(2026-11-28 10:00:00.5));
        let good = PresentedToken::parse(&format!("5_{}", "a".repeat(64))).unwrap();
        let ten = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
        // 10:00:00 is before 10:00:00.5; 10:00:01 is after it.
        assert!(v
            .remember(&good, LoadedRow::from_parts(Some(r), Instant::now()), ten)
            .is_ok());
        assert!(matches!(
            v.check_cached(&good, ten + 1),
            Verdict::Known {
                verdict: Err(_),
                ..
            }
        ));
        assert_eq!(unix_ceil(datetime!(2026-11-28 10:00)), ten);
        assert_eq!(unix_ceil(datetime!(2026-11-28 10:00:00.000001)), ten + 1);
    }

    #[test]
    fn uses_counted_on_many_threads_add_up_exactly() {
        let v = std::sync::Arc::new(TokenVerifier::default());
        let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
        let good = PresentedToken::parse(&format!("6_{}", "a".repeat(64))).unwrap();
        assert!(v
            .remember(
                &good,
                LoadedRow::from_parts(Some(row(6)), Instant::now()),
                now
            )
            .is_ok());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (v, good) = (v.clone(), good.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        assert!(matches!(
                            v.check_cached(&good, now),
                            Verdict::Known { verdict: Ok(_), .. }
                        ));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        v.count_use(7);
        // More threads than shards: some share one, and still nothing is lost.
        let mut counts = v.take_counts();
        counts.sort();
        assert_eq!(counts, vec![(6, 1 + 12 * 500), (7, 1)]);
        assert!(v.take_counts().is_empty());
        v.requeue_counts(&[(6, 3)]);
        assert_eq!(v.take_counts(), vec![(6, 3)]);
    }
}
