//! A bound on work anyone can ask for, per client address and for the whole instance (GCRA,
//! by the `governor` crate, as the leak-report gate): past either, the work is refused with
//! how long to wait. Per instance, on purpose: each instance protects its own share of the
//! database; many instances multiply the global figure.
//!
//! Used where a request can't be told from junk without a database read: a passkey answer
//! names a credential id, which must be looked up before its signature can be checked.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

pub struct FloodGate {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    global: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

fn quota(rate: u32, burst: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(rate.max(1)).expect("non-zero"))
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero"))
}

impl FloodGate {
    /// `rate` a second after a burst of `burst`, per address and (`global_*`) for everyone.
    pub fn new(rate: u32, burst: u32, global_rate: u32, global_burst: u32) -> FloodGate {
        FloodGate {
            per_address: DefaultKeyedRateLimiter::keyed(quota(rate, burst)),
            global: DefaultDirectRateLimiter::direct(quota(global_rate, global_burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Lets one more piece of work from `from` through, or says how long to wait.
    pub fn admit(&self, from: Option<IpAddr>) -> Result<(), Duration> {
        self.admit_n(from, 1)
    }

    /// Lets `n` pieces of work from `from` through at once, or says how long to wait (a
    /// batch larger than a burst never goes through: one second, and the caller sends less).
    pub fn admit_n(&self, from: Option<IpAddr>, n: usize) -> Result<(), Duration> {
        let Some(n) = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)) else {
            return Ok(());
        };
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_secs(1))
        };
        if let Some(ip) = from {
            match self.per_address.check_key_n(&ip, n) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => return Err(wait(not_until)),
                Err(_) => return Err(Duration::from_secs(1)),
            }
            if self.per_address.len() > 100_000 {
                self.per_address.retain_recent();
            }
        }
        match self.global.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(wait(not_until)),
            Err(_) => Err(Duration::from_secs(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_waits_after_its_burst_and_everyone_after_the_global_one() {
        let gate = FloodGate::new(1, 3, 1, 5);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(gate.admit(Some(a)), Ok(()));
        }
        let wait = gate.admit(Some(a)).expect_err("a's burst is spent");
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
        assert_eq!(gate.admit(Some(b)), Ok(()), "b has its own share");
        assert_eq!(gate.admit(Some(b)), Ok(()));
        assert!(
            gate.admit(Some(b)).is_err(),
            "the instance's burst of 5 is spent"
        );
    }

    #[test]
    fn a_batch_counts_as_its_size_and_nothing_costs_nothing() {
        let gate = FloodGate::new(100, 1000, 2000, 5000);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(gate.admit_n(Some(a), 0), Ok(()));
        assert_eq!(gate.admit_n(Some(a), 1000), Ok(()), "one full batch");
        assert!(gate.admit_n(Some(a), 1000).is_err(), "the next waits");
        assert!(
            gate.admit_n(Some(a), 5000).is_err(),
            "more than a burst never passes"
        );
    }
}
