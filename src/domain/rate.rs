//! A token's rate limit (issue 28): a burst of `requests`, then `requests` per `per_seconds`,
//! as a token bucket of that size refilled at that rate gives: over any stretch of time t at
//! most requests·(t/per_seconds + 1) pass (a fixed window would let 2·requests through across
//! its edge). The bucket is shared by every instance through leases (`gateway::rate`).

use std::fmt;

pub const MAX_REQUESTS: u32 = 1_000_000;
pub const MAX_PER_SECONDS: u32 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per_seconds: u32,
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {} s", self.requests, self.per_seconds)
    }
}

impl RateLimit {
    /// A limit as given: 1 to 1,000,000 requests per 1 to 86,400 seconds.
    pub fn new(requests: i64, per_seconds: i64) -> Result<RateLimit, String> {
        if !(1..=i64::from(MAX_REQUESTS)).contains(&requests)
            || !(1..=i64::from(MAX_PER_SECONDS)).contains(&per_seconds)
        {
            return Err(format!(
                "A rate limit is 1 to {MAX_REQUESTS} requests per 1 to {MAX_PER_SECONDS} seconds, like {{\"requests\": 100, \"per_seconds\": 60}}."
            ));
        }
        Ok(RateLimit {
            requests: requests as u32,
            per_seconds: per_seconds as u32,
        })
    }

    /// As stored: "N/S".
    pub fn to_stored(self) -> String {
        format!("{}/{}", self.requests, self.per_seconds)
    }

    pub fn from_stored(stored: Option<&str>) -> Option<RateLimit> {
        let (n, s) = stored?.split_once('/')?;
        RateLimit::new(n.parse().ok()?, s.parse().ok()?).ok()
    }

    /// Tokens the bucket gains per millisecond.
    pub fn per_ms(self) -> f64 {
        f64::from(self.requests) / (f64::from(self.per_seconds) * 1000.0)
    }

    /// How many requests an instance leases at once: a tenth of the burst (at least one), so
    /// the database is written at most ten times per burst's worth of requests, never per
    /// request.
    pub fn chunk(self) -> u32 {
        (self.requests / 10).max(1)
    }

    /// How long a lease may be spent: a tenth of the period (at least 50 ms, at most 10 s),
    /// which bounds what leases can add to the limit over any stretch of time to a tenth of
    /// a burst.
    pub fn lease_ms(self) -> u64 {
        (u64::from(self.per_seconds) * 100).clamp(50, 10_000)
    }

    /// Whether `self` is no larger than `parent`: no bigger burst and no faster rate.
    pub fn within(self, parent: RateLimit) -> bool {
        self.requests <= parent.requests
            && u64::from(self.requests) * u64::from(parent.per_seconds)
                <= u64::from(parent.requests) * u64::from(self.per_seconds)
    }
}

/// One lease taken from a bucket at `now_ms`: the bucket's level refilled since `updated_ms`
/// (capped at the burst), what an instance gives back first, then at most `want` taken.
/// Returns (granted, new level, ms until the next whole request is there when none was).
pub fn lease(
    limit: RateLimit,
    level: f64,
    updated_ms: i64,
    now_ms: i64,
    give_back: u32,
    want: u32,
) -> (u32, f64, u64) {
    let cap = f64::from(limit.requests);
    let elapsed = (now_ms - updated_ms).max(0) as f64;
    let level = (level + elapsed * limit.per_ms() + f64::from(give_back)).min(cap);
    let granted = (level.floor() as u32).min(want);
    let left = level - f64::from(granted);
    let wait = if granted == 0 {
        ((1.0 - left) / limit.per_ms()).ceil().max(1.0) as u64
    } else {
        0
    };
    (granted, left, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_and_compared() {
        assert!(RateLimit::new(0, 60).is_err());
        assert!(RateLimit::new(10, 0).is_err());
        assert!(RateLimit::new(10, 86_401).is_err());
        let r = RateLimit::new(100, 60).unwrap();
        assert_eq!(RateLimit::from_stored(Some(&r.to_stored())), Some(r));
        assert_eq!(RateLimit::from_stored(Some("x/1")), None);
        assert!(RateLimit::new(50, 60).unwrap().within(r));
        assert!(RateLimit::new(100, 120).unwrap().within(r));
        assert!(!RateLimit::new(101, 120).unwrap().within(r), "bigger burst");
        assert!(!RateLimit::new(100, 30).unwrap().within(r), "faster");
        assert_eq!(r.chunk(), 10);
        assert_eq!(RateLimit::new(5, 1).unwrap().chunk(), 1);
    }

    #[test]
    fn a_bucket_grants_a_burst_then_the_rate_and_never_more() {
        let r = RateLimit::new(10, 1).unwrap();
        // Full at first: the burst.
        let (g, level, _) = lease(r, 10.0, 0, 0, 0, 10);
        assert_eq!((g, level), (10, 0.0));
        // Empty: nothing, and when the next one comes.
        let (g, _, wait) = lease(r, 0.0, 0, 0, 0, 1);
        assert_eq!((g, wait), (0, 100));
        // Half a second later: five.
        let (g, _, _) = lease(r, 0.0, 0, 500, 0, 10);
        assert_eq!(g, 5);
        // What is given back counts, but never past the burst.
        let (g, level, _) = lease(r, 9.0, 0, 10_000, 5, 3);
        assert_eq!((g, level), (3, 7.0));
        // Simulated: a client asking every millisecond for 10 s gets at most N·(t/S + 1).
        let (mut level, mut at, mut passed) = (10.0, 0i64, 0u32);
        for now in 0..10_000i64 {
            let (g, l, _) = lease(r, level, at, now, 0, 1);
            level = l;
            at = now;
            passed += g;
        }
        assert!(passed <= 10 * (10 + 1), "{passed}");
        assert!(passed >= 100, "{passed}");
    }
}
