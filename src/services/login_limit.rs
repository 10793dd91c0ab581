//! A limit on failed sign-in attempts per e-mail and per client address.
//!
//! Why not a token-bucket crate (governor): what is limited here is *failed* attempts, and a
//! locked key must refuse before the password is checked. A bucket spends a cell on every
//! attempt and can't be looked at without spending one, so a correct password would also be
//! counted. The logic below is a few lines over a map.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginLimiter {
    max_per_email: u32,
    max_per_address: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Default for LoginLimiter {
    /// 5 failures per e-mail and 20 per address within 15 minutes.
    fn default() -> Self {
        LoginLimiter::new(5, 20, Duration::from_secs(15 * 60))
    }
}

impl LoginLimiter {
    pub fn new(max_per_email: u32, max_per_address: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max_per_email,
            max_per_address,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while either key has used up its failures in the current window.
    pub fn check(&self, email: &str, address: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.failures.lock().expect("limiter lock");
        for (key, max) in [
            (email_key(email), self.max_per_email),
            (address_key(address), self.max_per_address),
        ] {
            if let Some((count, since)) = map.get(&key) {
                let elapsed = now.duration_since(*since);
                if elapsed < self.window && *count >= max {
                    return Err(self.window - elapsed);
                }
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, email: &str, address: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("limiter lock");
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| now.duration_since(*since) < self.window);
        }
        for key in [email_key(email), address_key(address)] {
            let entry = map.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= self.window {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// A successful sign-in clears the e-mail's count (not the address's).
    pub fn record_success(&self, email: &str) {
        self.failures
            .lock()
            .expect("limiter lock")
            .remove(&email_key(email));
    }
}

fn email_key(email: &str) -> String {
    format!("e:{}", email.trim().to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("a:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_locked_after_its_failures_and_others_are_not() {
        let limiter = LoginLimiter::new(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("a@x", "1.1.1.1").is_ok());
            limiter.record_failure("A@x", "1.1.1.1");
        }
        let wait = limiter.check("a@x", "2.2.2.2").unwrap_err();
        assert!(wait > Duration::from_secs(50));
        assert!(limiter.check("b@x", "1.1.1.1").is_ok());
    }

    #[test]
    fn an_address_is_locked_across_emails() {
        let limiter = LoginLimiter::new(100, 4, Duration::from_secs(60));
        for i in 0..4 {
            limiter.record_failure(&format!("u{i}@x"), "9.9.9.9");
        }
        assert!(limiter.check("new@x", "9.9.9.9").is_err());
        assert!(limiter.check("new@x", "8.8.8.8").is_ok());
    }

    #[test]
    fn success_clears_the_email_and_the_window_expires() {
        let limiter = LoginLimiter::new(2, 100, Duration::from_millis(0));
        limiter.record_failure("a@x", "1");
        limiter.record_failure("a@x", "1");
        // A zero-length window has always passed.
        assert!(limiter.check("a@x", "1").is_ok());
        let limiter = LoginLimiter::new(2, 100, Duration::from_secs(60));
        limiter.record_failure("a@x", "1");
        limiter.record_failure("a@x", "1");
        assert!(limiter.check("a@x", "2").is_err());
        limiter.record_success("a@x");
        assert!(limiter.check("a@x", "2").is_ok());
    }
}
