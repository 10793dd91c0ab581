//! Counters and histograms that two busy workers can update without sharing a cache line.
//!
//! A plain atomic counter incremented by every request on two cores passes its cache line
//! back and forth on each increment, and prometheus-client's histogram takes a lock per
//! observation; on the gateway check (about 10 µs of CPU in all) that was measurable. Here
//! every thread adds to its own shard and a scrape adds the shards up: the totals are exact,
//! only their layout differs.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Atomic;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Shards per metric: more than the threads that count on a typical instance.
pub(crate) const SHARDS: usize = 8;

/// This thread's shard, handed out round-robin on first use.
pub(crate) fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        s.get()
    })
}

/// One cache line (two, for CPUs that fetch lines in pairs) per shard.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// The value of a `Counter<u64, StripedU64>`.
#[derive(Debug, Default)]
pub struct StripedU64 {
    shards: [Padded<AtomicU64>; SHARDS],
}

impl Atomic<u64> for StripedU64 {
    fn inc(&self) -> u64 {
        self.inc_by(1)
    }

    fn inc_by(&self, v: u64) -> u64 {
        self.shards[shard()].0.fetch_add(v, Ordering::Relaxed)
    }

    fn get(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// Upper bounds of the latency buckets: 0.25 ms doubling to about 4 s, then +Inf.
const BOUNDS: usize = 15;

/// The bounds in seconds, made once (an observation only compares).
const BOUND_SECS: [f64; BOUNDS] = {
    let mut bounds = [0.000_25; BOUNDS];
    let mut i = 1;
    while i < BOUNDS {
        bounds[i] = bounds[i - 1] * 2.0;
        i += 1;
    }
    bounds
};

#[derive(Debug, Default)]
struct HistogramShard {
    count: AtomicU64,
    sum_nanos: AtomicU64,
    /// Observations per bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; BOUNDS + 1],
}

/// A latency histogram (seconds) with the buckets of `bound`.
#[derive(Debug, Clone, Default)]
pub struct StripedHistogram {
    shards: std::sync::Arc<[Padded<HistogramShard>; SHARDS]>,
}

impl StripedHistogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BOUND_SECS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BOUNDS);
        let shard = &self.shards[shard()].0;
        shard.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts with their upper bounds).
    fn totals(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut nanos = 0u64;
        let mut buckets: Vec<(f64, u64)> = (0..=BOUNDS)
            .map(|i| (BOUND_SECS.get(i).copied().unwrap_or(f64::MAX), 0))
            .collect();
        for shard in self.shards.iter() {
            count += shard.0.count.load(Ordering::Relaxed);
            nanos = nanos.saturating_add(shard.0.sum_nanos.load(Ordering::Relaxed));
            for (total, n) in buckets.iter_mut().zip(&shard.0.buckets) {
                total.1 += n.load(Ordering::Relaxed);
            }
        }
        (nanos as f64 / 1e9, count, buckets)
    }
}

impl TypedMetric for StripedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for StripedHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.totals();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up_exactly() {
        let counter = std::sync::Arc::new(StripedU64::default());
        let histogram = StripedHistogram::default();
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (counter, histogram) = (counter.clone(), histogram.clone());
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        counter.inc();
                        histogram.observe(Duration::from_micros(100 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.get(), 12_000);
        let (sum, count, buckets) = histogram.totals();
        assert_eq!(count, 12_000);
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 12_000);
        // 100..1099 µs: 151 at or under 0.25 ms, 250 in (0.25, 0.5], 500 in (0.5, 1], 99 above.
        assert_eq!(
            buckets[..4].iter().map(|b| b.1).collect::<Vec<_>>(),
            vec![151 * 12, 250 * 12, 500 * 12, 99 * 12]
        );
        let expected: f64 = (0..1000).map(|i| (100 + i) as f64 / 1e6).sum::<f64>() * 12.0;
        assert!((sum - expected).abs() < 1e-9, "{sum} vs {expected}");
    }
}
