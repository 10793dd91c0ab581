//! The one place that says what time it is, so tests can move it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Wall clock plus an adjustable offset (zero in production; tests move it forward).
#[derive(Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        let now =
            OffsetDateTime::now_utc() + Duration::seconds(self.offset_secs.load(Ordering::Relaxed));
        // Whole seconds: both databases then store and compare the same value.
        now.replace_nanosecond(0).expect("0 is a valid nanosecond")
    }

    /// `now()` as a Unix second, read without calendar arithmetic: what the gateway check
    /// compares expiries with.
    pub fn unix_now(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        since_epoch + self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every copy of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_secs
            .fetch_add(by.whole_seconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_now_is_now_as_a_unix_second_and_moves_with_it() {
        let clock = Clock::default();
        let before = clock.unix_now();
        let now = clock.now().unix_timestamp();
        let after = clock.unix_now();
        assert!(before <= now && now <= after, "{before} {now} {after}");
        clock.advance(Duration::days(2));
        let moved = clock.unix_now();
        assert!(moved >= after + 2 * 86_400 && moved <= clock.now().unix_timestamp());
    }
}
