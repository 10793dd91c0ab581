//! A limit on failed sign-in attempts per e-mail and per client address, shared by every
//! instance on the same database (the `login_failures` table).
//!
//! An attempt is counted *before* its password is checked (`reserve`), so a burst of parallel
//! guesses can't all slip past a check that happens before the count; a successful sign-in
//! takes its count back (`succeeded`). Why not a token-bucket crate (governor): it lives in
//! one process, and what is limited here is failures, which a bucket can't take back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use diesel::Connection;
use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::token::{from_naive, to_naive};
use crate::error::ServiceResult;
use crate::repo::login_failures::LoginFailures;

#[derive(Debug)]
pub struct LoginLimiter {
    max_per_email: i32,
    max_per_address: i32,
    window: time::Duration,
    /// Keys this instance saw go over the limit, and until when: a flood against a locked key
    /// is refused from memory, without a database write per attempt. (Only ever refuses what
    /// the shared count already refused, so instances still agree.)
    locked: Mutex<HashMap<String, OffsetDateTime>>,
}

impl Default for LoginLimiter {
    /// 5 failures per e-mail and 20 per address within 15 minutes.
    fn default() -> Self {
        LoginLimiter::new(5, 20, Duration::from_secs(15 * 60))
    }
}

impl LoginLimiter {
    pub fn new(max_per_email: i32, max_per_address: i32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max_per_email,
            max_per_address,
            window: time::Duration::try_from(window).unwrap_or(time::Duration::minutes(15)),
            locked: Mutex::default(),
        }
    }

    /// `Some(wait)` if this instance already knows the e-mail or the address to be locked.
    pub fn locked_here(&self, email: &str, address: &str, now: OffsetDateTime) -> Option<Duration> {
        let locked = self.locked.lock().expect("login lock map");
        keys(email, address)
            .into_iter()
            .flatten()
            .filter_map(|key| locked.get(&key).copied())
            .filter(|until| *until > now)
            .filter_map(|until| Duration::try_from(until - now).ok())
            .max()
    }

    fn remember_locked(&self, key: String, until: OffsetDateTime, now: OffsetDateTime) {
        let mut locked = self.locked.lock().expect("login lock map");
        if locked.len() > 100_000 {
            locked.retain(|_, until| *until > now);
        }
        locked.insert(key, until);
    }

    /// Counts this attempt for the e-mail and the address. `Err(wait)` when either has had
    /// its failures for the window: the password must not be checked then.
    pub fn reserve(
        &self,
        conn: &mut DbConn,
        email: &str,
        address: &str,
        now: OffsetDateTime,
    ) -> ServiceResult<Result<(), Duration>> {
        let cutoff = to_naive(now - self.window);
        conn.transaction(|conn| {
            let mut wait = None;
            for (key, max) in keys(email, address)
                .into_iter()
                .zip([self.max_per_email, self.max_per_address])
                .filter_map(|(key, max)| key.map(|k| (k, max)))
            {
                let (count, since) =
                    LoginFailures::count_attempt(conn, &key, to_naive(now), cutoff)?;
                if count > max {
                    let left = from_naive(since) + self.window - now;
                    let left = Duration::try_from(left).unwrap_or(Duration::from_secs(1));
                    wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
                    self.remember_locked(key, from_naive(since) + self.window, now);
                }
            }
            Ok(match wait {
                Some(wait) => Err(wait.max(Duration::from_secs(1))),
                None => Ok(()),
            })
        })
    }

    /// The attempt was right: the e-mail's failures are forgiven, and the address's count
    /// gets this attempt back.
    pub fn succeeded(&self, conn: &mut DbConn, email: &str, address: &str) -> ServiceResult<()> {
        let [email_key, address_key] = keys(email, address);
        if let Some(key) = &email_key {
            self.locked.lock().expect("login lock map").remove(key);
        }
        if let Some(key) = email_key {
            LoginFailures::clear(conn, &key)?;
        }
        if let Some(key) = address_key {
            LoginFailures::uncount(conn, &key)?;
        }
        Ok(())
    }

    /// Forgets counts whose window ended (the sweep calls this).
    pub fn purge(&self, conn: &mut DbConn, now: OffsetDateTime) -> ServiceResult<usize> {
        Ok(LoginFailures::purge(conn, to_naive(now - self.window))?)
    }
}

/// `e:<e-mail>` and `a:<address>`; no address key when the address is unknown.
fn keys(email: &str, address: &str) -> [Option<String>; 2] {
    let email = email.trim().to_lowercase();
    let email = email.chars().take(320).collect::<String>();
    [
        Some(format!("e:{email}")),
        (!address.is_empty())
            .then(|| format!("a:{}", address.chars().take(64).collect::<String>())),
    ]
}
