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
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_secs(1))
        };
        if let Some(ip) = from {
            self.per_address.check_key(&ip).map_err(wait)?;
            if self.per_address.len() > 100_000 {
                self.per_address.retain_recent();
            }
        }
        self.global.check().map_err(wait)
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
}
