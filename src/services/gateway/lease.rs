//! What rate limits and usage quotas share on the hot path: per token, a lease of requests
//! this instance may let through, spent without a lock. The cells live in a map read under a
//! `ShardedLock` (each thread its own read lock: a hot token on every worker shares no lock),
//! and a request that finds its lease alive takes one unit with a compare-and-swap. Only a
//! request that finds none goes to the cell's async `state` lock and the database (the rate's
//! `RateLeases`, the quota's `QuotaLeases`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_utils::sync::ShardedLock;

/// One token's lease on this instance.
#[derive(Debug)]
pub struct LeaseCell<S> {
    /// Units of the lease not yet spent.
    left: AtomicU64,
    /// Until when (ms since the cells' base) they may be spent.
    until_ms: AtomicU64,
    /// Until when (ms since the base) requests are refused from memory: the budget is empty.
    blocked_ms: AtomicU64,
    /// The Unix second from which the lease and the block are void (a quota's next period;
    /// `i64::MAX`: never).
    void_at: AtomicI64,
    /// What the slow path keeps, and the lock it takes.
    pub state: tokio::sync::Mutex<S>,
}

/// What the lock-free path found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// One unit of a live lease taken.
    Took,
    /// Refused from memory for this long yet.
    Blocked(Duration),
    /// Nothing to decide from memory: the slow path must.
    Slow,
}

impl<S: Default> Default for LeaseCell<S> {
    fn default() -> Self {
        LeaseCell {
            left: AtomicU64::new(0),
            until_ms: AtomicU64::new(0),
            blocked_ms: AtomicU64::new(0),
            void_at: AtomicI64::new(i64::MAX),
            state: tokio::sync::Mutex::default(),
        }
    }
}

impl<S> LeaseCell<S> {
    /// Takes a unit of a live lease, or says the token is blocked, without a lock. `unix`:
    /// the clock's Unix second (compared with `void_at`).
    pub fn fast(&self, now_ms: u64, unix: i64) -> Fast {
        if unix >= self.void_at.load(Ordering::Acquire) {
            return Fast::Slow;
        }
        if now_ms < self.until_ms.load(Ordering::Acquire)
            && self
                .left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| l.checked_sub(1))
                .is_ok()
        {
            return Fast::Took;
        }
        let blocked = self.blocked_ms.load(Ordering::Acquire);
        if now_ms < blocked {
            return Fast::Blocked(Duration::from_millis(blocked - now_ms));
        }
        Fast::Slow
    }

    /// Takes what the lease has left (to give back), so nothing else spends it.
    pub fn take_left(&self) -> u64 {
        self.left.swap(0, Ordering::AcqRel)
    }

    /// Whether the lease's time is over at `now_ms`.
    pub fn over(&self, now_ms: u64) -> bool {
        now_ms >= self.until_ms.load(Ordering::Acquire)
    }

    /// A new lease: `left` units until `until_ms`, void from `void_at`.
    pub fn grant(&self, left: u64, until_ms: u64, void_at: i64) {
        self.blocked_ms.store(0, Ordering::Release);
        self.void_at.store(void_at, Ordering::Release);
        self.left.store(left, Ordering::Release);
        self.until_ms.store(until_ms, Ordering::Release);
    }

    /// The budget is empty: refuse from memory until `until_ms` (or `void_at`).
    pub fn block(&self, until_ms: u64, void_at: i64) {
        self.until_ms.store(0, Ordering::Release);
        self.left.store(0, Ordering::Release);
        self.void_at.store(void_at, Ordering::Release);
        self.blocked_ms.store(until_ms, Ordering::Release);
    }
}

/// This instance's lease cells, one per limited token it has seen.
pub struct LeaseCells<S> {
    base: Instant,
    map: ShardedLock<HashMap<i64, Arc<LeaseCell<S>>>>,
}

impl<S: Default> Default for LeaseCells<S> {
    fn default() -> Self {
        LeaseCells {
            base: Instant::now(),
            map: ShardedLock::default(),
        }
    }
}

impl<S: Default> LeaseCells<S> {
    /// Milliseconds since the base (monotonic; what `until_ms` and `blocked_ms` count).
    pub fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// `LeaseCell::fast` for `id` under a read lock (a token never seen: `Slow`).
    pub fn fast(&self, id: i64, now_ms: u64, unix: i64) -> Fast {
        match self.map.read().expect("lease cells lock").get(&id) {
            Some(cell) => cell.fast(now_ms, unix),
            None => Fast::Slow,
        }
    }

    /// The cell of `id`, made on first use.
    pub fn cell(&self, id: i64) -> Arc<LeaseCell<S>> {
        if let Some(cell) = self.map.read().expect("lease cells lock").get(&id) {
            return cell.clone();
        }
        self.map
            .write()
            .expect("lease cells lock")
            .entry(id)
            .or_default()
            .clone()
    }

    /// Forgets `id`'s cell (its limit changed; what it held is not given back).
    pub fn forget(&self, id: i64) {
        self.map.write().expect("lease cells lock").remove(&id);
    }

    /// Every cell, for the flush that gives back what is left of leases that are over.
    pub fn all(&self) -> Vec<(i64, Arc<LeaseCell<S>>)> {
        self.map
            .read()
            .expect("lease cells lock")
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_spent_once_per_unit_until_it_ends_or_turns_void() {
        let cells: LeaseCells<()> = LeaseCells::default();
        assert_eq!(cells.fast(1, 0, 0), Fast::Slow, "never seen");
        let cell = cells.cell(1);
        cell.grant(2, 100, 1_000);
        assert_eq!(cells.fast(1, 10, 0), Fast::Took);
        assert_eq!(cells.fast(1, 10, 0), Fast::Took);
        assert_eq!(cells.fast(1, 10, 0), Fast::Slow, "spent");
        cell.grant(5, 100, 1_000);
        assert_eq!(cells.fast(1, 100, 0), Fast::Slow, "over");
        assert_eq!(cell.take_left(), 5);
        cell.grant(5, 200, 1_000);
        assert_eq!(cells.fast(1, 150, 1_000), Fast::Slow, "a new period");
        cell.block(300, i64::MAX);
        assert_eq!(
            cells.fast(1, 250, 0),
            Fast::Blocked(Duration::from_millis(50))
        );
        assert_eq!(cells.fast(1, 300, 0), Fast::Slow);
        cells.forget(1);
        assert_eq!(cells.fast(1, 0, 0), Fast::Slow);
    }

    #[test]
    fn parallel_spenders_never_take_more_than_the_lease() {
        let cells: Arc<LeaseCells<()>> = Arc::default();
        cells.cell(7).grant(10_000, u64::MAX, i64::MAX);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cells = cells.clone();
                std::thread::spawn(move || {
                    (0..5_000)
                        .filter(|_| cells.fast(7, 1, 0) == Fast::Took)
                        .count()
                })
            })
            .collect();
        let took: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(took, 10_000);
    }
}
