//! The way into a leak report's signature check, which anyone can knock at: the key ids are
//! public, so a flood of well-formed junk signatures costs an ECDSA verification each
//! (~0.1–0.3 ms of CPU) and must neither take the machine nor crowd out a genuine report.
//!
//! - **One check at a time, in a bounded FIFO queue** (not a single try-acquire, which turned
//!   a genuine report away whenever any check was running): a report waits its turn behind
//!   at most `MAX_QUEUED` others, well under a second; past that the answer is "busy" (503).
//! - **Per address**: at most `PER_ADDRESS_IN_FLIGHT` reports queued or being checked, and a
//!   rate of `PER_ADDRESS_RATE` a second with a burst of `PER_ADDRESS_BURST` (GCRA, by the
//!   `governor` crate); past either, 429 with `Retry-After`, before the body is read. A
//!   scanner sends batches of up to 1,000 reports per request, so these are far above its need.
//!
//! Per instance, on purpose: each instance protects its own CPU; a report is checked by the
//! instance it reaches.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

/// Reports waiting for or in their signature check, from everyone.
pub const MAX_QUEUED: usize = 256;
/// Reports one address may have waiting or in their check.
pub const PER_ADDRESS_IN_FLIGHT: u32 = 2;
/// Reports one address may send per second, and in a burst.
pub const PER_ADDRESS_RATE: u32 = 10;
pub const PER_ADDRESS_BURST: u32 = 50;

/// Why a report was turned away before its signature was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This address sends too fast, or has too many reports in the queue: wait this long.
    TooMany(Duration),
    /// The queue is full: everyone waits.
    Busy,
}

pub struct ReportGate {
    check: Arc<Semaphore>,
    queued: AtomicUsize,
    in_flight: Mutex<HashMap<IpAddr, u32>>,
    rate: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl Default for ReportGate {
    fn default() -> Self {
        let quota = Quota::per_second(NonZeroU32::new(PER_ADDRESS_RATE).expect("non-zero"))
            .allow_burst(NonZeroU32::new(PER_ADDRESS_BURST).expect("non-zero"));
        ReportGate {
            check: Arc::new(Semaphore::new(1)),
            queued: AtomicUsize::new(0),
            in_flight: Mutex::default(),
            rate: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }
}

/// A place in the queue, held from admission to the end of the check; gives it back on drop.
pub struct Ticket {
    gate: Arc<ReportGate>,
    from: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.queued.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.from {
            let mut in_flight = self.gate.in_flight.lock().expect("report gate lock");
            if let Some(n) = in_flight.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    in_flight.remove(&ip);
                }
            }
        }
    }
}

impl ReportGate {
    /// Lets a report from `from` (`None`: unknown address) into the queue, or says why not.
    pub fn admit(self: &Arc<Self>, from: Option<IpAddr>) -> Result<Ticket, Refusal> {
        if let Some(ip) = from {
            if let Err(not_until) = self.rate.check_key(&ip) {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(Refusal::TooMany(wait.max(Duration::from_secs(1))));
            }
            if self.rate.len() > 100_000 {
                self.rate.retain_recent();
            }
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Busy);
        }
        if let Some(ip) = from {
            let mut in_flight = self.in_flight.lock().expect("report gate lock");
            let n = in_flight.entry(ip).or_default();
            if *n >= PER_ADDRESS_IN_FLIGHT {
                drop(in_flight);
                self.queued.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::TooMany(Duration::from_secs(1)));
            }
            *n += 1;
        }
        Ok(Ticket {
            gate: self.clone(),
            from,
        })
    }

    /// Runs `check` on the blocking pool when this ticket's turn comes (first come, first
    /// served), one check at a time.
    pub async fn run<T: Send + 'static>(
        &self,
        ticket: Ticket,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = self.check.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _turn = permit;
            let _place = ticket;
            check()
        })
        .await
        .ok()
    }

    /// Reports queued or being checked now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_gets_its_burst_then_waits_and_others_are_untouched() {
        let gate = Arc::new(ReportGate::default());
        let mut held = vec![];
        for n in 0..PER_ADDRESS_BURST {
            // Give each ticket back at once: only the rate is in play here.
            assert!(gate.admit(ip("203.0.113.1")).is_ok(), "report {n}");
        }
        match gate.admit(ip("203.0.113.1")) {
            Err(Refusal::TooMany(wait)) => assert!(wait >= Duration::from_secs(1)),
            other => panic!("expected TooMany, got {:?}", other.is_ok()),
        }
        held.push(gate.admit(ip("198.51.100.2")).expect("another address"));
        assert_eq!(gate.queued(), 1);
        drop(held);
        assert_eq!(gate.queued(), 0);
    }

    #[test]
    fn an_address_holds_at_most_two_places_and_everyone_at_most_the_queue() {
        let gate = Arc::new(ReportGate::default());
        let a = gate.admit(ip("203.0.113.1")).unwrap();
        let b = gate.admit(ip("203.0.113.1")).unwrap();
        assert!(matches!(
            gate.admit(ip("203.0.113.1")),
            Err(Refusal::TooMany(_))
        ));
        drop(a);
        let _c = gate.admit(ip("203.0.113.1")).expect("a place came back");
        drop(b);
        let mut held = vec![];
        for n in 0..MAX_QUEUED - 1 {
            let addr = format!("10.0.{}.{}", n / 250, n % 250 + 1);
            held.push(gate.admit(ip(&addr)).expect("room in the queue"));
        }
        assert!(matches!(gate.admit(ip("192.0.2.1")), Err(Refusal::Busy)));
        held.pop();
        assert!(gate.admit(ip("192.0.2.1")).is_ok());
    }
}
