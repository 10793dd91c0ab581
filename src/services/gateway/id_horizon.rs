//! Which token ids can exist yet: the gateway's cheap "no" for ids that don't.
//!
//! A flood of made-up tokens (`APIKey 98123_...`) would otherwise cost one primary-key read
//! each on the gateway's connections. Ids are taken from a sequence and rows are never
//! removed, so two facts answer most of them without a read per id:
//!
//! - **Above the highest id.** An id above `max(id)` doesn't exist *yet*. A client can only
//!   present a token after its create committed, so a `max(id)` read that *starts after the
//!   request arrived* sees it if it exists. All requests waiting on such ids share one read
//!   at a time (`max_since`): a flood costs one small indexed read per round, and a brand-new
//!   token is never refused, on any instance.
//! - **Gaps below it** (an aborted create on PostgreSQL): an id found missing is remembered
//!   as "never" only if it lies below a highest id read at least `settle` ago. PostgreSQL can
//!   commit a lower sequence value after a higher one, but a create holds its id for at most a
//!   few seconds (`INSERT_TO_COMMIT`), so below such a watermark every id is
//!   committed or never will be. SQLite writes one transaction at a time and has no gaps.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ServiceResult;
use crate::repo::tokens::INSERT_TO_COMMIT;

/// How long after a `max(id)` read every lower id is settled (committed or never will be):
/// three times the create's bound between taking an id and committing it.
pub const SETTLE: Duration = Duration::from_secs(3 * INSERT_TO_COMMIT.as_secs());

/// Most ids remembered as "never"; past it the set starts over (it is only a saving).
const MAX_NEVER: usize = 100_000;

/// Readings kept for the watermark are at least this far apart.
const READING_GAP: Duration = Duration::from_secs(1);

pub struct IdHorizon {
    /// A committed id at least this high exists (from any read of this instance).
    known_max: AtomicI64,
    /// `max(id)` reads started so far; a request remembers the count when it arrives.
    started: AtomicU64,
    /// The newest finished read: (its number, what it saw). Held during a read, so reads run
    /// one at a time and every waiter can use the one that finishes.
    latest: tokio::sync::Mutex<(u64, i64)>,
    /// Readings for the watermark, oldest first: (first finished, last finished, highest id
    /// seen). Reads less than `READING_GAP` apart share one, settling with the last.
    readings: Mutex<VecDeque<(Instant, Instant, i64)>>,
    /// Every id at or below this is committed or never will be.
    settled: AtomicI64,
    /// Ids at or below `settled` found missing.
    never: Mutex<HashSet<i64>>,
    settle: Duration,
}

impl Default for IdHorizon {
    fn default() -> Self {
        IdHorizon::new(SETTLE)
    }
}

/// What the horizon says of an id before any per-id read.
#[derive(Debug, PartialEq, Eq)]
pub enum Sight {
    /// Can't exist: not a sequence value, or known missing for good.
    Never,
    /// At or below an id known to exist: read the row.
    Within,
    /// Above everything this instance has seen: ask `max_since` first.
    Beyond,
}

impl IdHorizon {
    pub fn new(settle: Duration) -> IdHorizon {
        IdHorizon {
            known_max: AtomicI64::new(0),
            started: AtomicU64::new(0),
            latest: tokio::sync::Mutex::new((0, 0)),
            readings: Mutex::default(),
            settled: AtomicI64::new(0),
            never: Mutex::default(),
            settle,
        }
    }

    pub fn sight(&self, id: i64) -> Sight {
        if id <= 0 || self.never.lock().expect("never lock").contains(&id) {
            Sight::Never
        } else if id <= self.known_max.load(Ordering::Acquire) {
            Sight::Within
        } else {
            Sight::Beyond
        }
    }

    /// Taken when a request arrives, before it may wait for `max_since`.
    pub fn arrival(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }

    /// The highest committed id as read by a `max(id)` read that started after `arrived`
    /// (`arrival()`): the newest one if it did, else a new one. One read runs at a time;
    /// `read` returns the id and when it finished.
    pub async fn max_since<F, Fut>(&self, arrived: u64, read: F) -> ServiceResult<i64>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ServiceResult<(i64, Instant)>>,
    {
        let mut latest = self.latest.lock().await;
        if latest.0 > arrived {
            return Ok(latest.1);
        }
        let number = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        let (max, finished) = read().await?;
        *latest = (number, max);
        drop(latest);
        self.saw(max, finished);
        Ok(max)
    }

    /// Notes that id `id` was committed by `finished` (a read that ended then saw it).
    pub fn saw(&self, id: i64, finished: Instant) {
        self.known_max.fetch_max(id, Ordering::AcqRel);
        let mut readings = self.readings.lock().expect("readings lock");
        match readings.back_mut() {
            Some((first, last, max))
                if finished.saturating_duration_since(*first) < READING_GAP =>
            {
                *last = (*last).max(finished);
                *max = (*max).max(id);
            }
            _ => readings.push_back((finished, finished, id)),
        }
        drop(readings);
        self.settle_by(Instant::now());
    }

    /// Moves the watermark up to the readings at least `settle` old.
    fn settle_by(&self, now: Instant) {
        let mut readings = self.readings.lock().expect("readings lock");
        while let Some(&(_, last, max)) = readings.front() {
            if now.saturating_duration_since(last) < self.settle {
                break;
            }
            self.settled.fetch_max(max, Ordering::AcqRel);
            readings.pop_front();
        }
    }

    /// A per-id read found `id` missing: remembered for good if it is below the watermark.
    pub fn missing(&self, id: i64) {
        self.settle_by(Instant::now());
        if id <= self.settled.load(Ordering::Acquire) {
            let mut never = self.never.lock().expect("never lock");
            if never.len() >= MAX_NEVER {
                never.clear();
            }
            never.insert(id);
        }
    }

    #[cfg(test)]
    fn settled(&self) -> i64 {
        self.settled.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn ids_that_are_not_sequence_values_never_exist_and_unseen_ones_are_beyond() {
        let h = IdHorizon::default();
        assert_eq!(h.sight(0), Sight::Never);
        assert_eq!(h.sight(-5), Sight::Never);
        assert_eq!(h.sight(1), Sight::Beyond);
        h.saw(10, Instant::now());
        assert_eq!(h.sight(10), Sight::Within);
        assert_eq!(h.sight(11), Sight::Beyond);
    }

    #[tokio::test]
    async fn a_read_that_started_before_a_request_arrived_is_not_used_for_it() {
        let h = Arc::new(IdHorizon::default());
        let before = h.arrival();
        assert_eq!(
            h.max_since(before, || async { Ok((5, Instant::now())) })
                .await
                .unwrap(),
            5
        );
        // Arrived before that read started: it may use it.
        assert_eq!(
            h.max_since(before, || async { panic!("a newer read is there") })
                .await
                .unwrap(),
            5
        );
        // Arrived after it: reads again, and sees the token committed since.
        let after = h.arrival();
        assert_eq!(
            h.max_since(after, || async { Ok((6, Instant::now())) })
                .await
                .unwrap(),
            6
        );
        assert_eq!(h.sight(6), Sight::Within);
    }

    #[tokio::test]
    async fn concurrent_requests_share_reads() {
        let h = Arc::new(IdHorizon::default());
        let reads = Arc::new(AtomicU64::new(0));
        let waiting = (0..200).map(|_| {
            let (h, reads) = (h.clone(), reads.clone());
            async move {
                let arrived = h.arrival();
                h.max_since(arrived, || async {
                    reads.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok((3, Instant::now()))
                })
                .await
                .unwrap()
            }
        });
        let seen = futures_util::future::join_all(waiting).await;
        assert!(seen.iter().all(|m| *m == 3));
        // The first arrival reads; those that arrived while it ran share one more read.
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_missing_id_is_remembered_only_below_a_settled_watermark() {
        let h = IdHorizon::new(Duration::from_millis(50));
        let long_ago = Instant::now() - Duration::from_secs(2);
        h.saw(100, long_ago);
        h.saw(120, Instant::now());
        assert_eq!(h.settled(), 100);
        h.missing(99);
        // 110 may still be held by a create that hasn't committed: not remembered.
        h.missing(110);
        assert_eq!(h.sight(99), Sight::Never);
        assert_eq!(h.sight(110), Sight::Within);
    }

    #[test]
    fn readings_close_together_are_kept_as_one() {
        let h = IdHorizon::default();
        let now = Instant::now();
        for i in 0..1000 {
            h.saw(i, now);
        }
        assert_eq!(h.readings.lock().unwrap().len(), 1);
        assert_eq!(h.readings.lock().unwrap()[0].2, 999);
    }
}
