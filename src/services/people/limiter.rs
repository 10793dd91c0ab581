//! A limit on failed sign-in attempts, shared by every instance on the same database (the
//! `login_failures` table), built so that guessing is slow but nobody can lock a chosen
//! person out (OWASP's Authentication Cheat Sheet: lock on account *and* origin, not on the
//! account alone, which lets anyone deny a person their account).
//!
//! Three counts per window (15 minutes), each a row keyed by an HMAC under the installation's
//! secret key, so nothing anyone typed (people paste passwords into the e-mail field) is kept:
//! - **person + address**: 5 failures, then that address may not try that person again;
//! - **address**: 20 failures, then that address may not try anyone;
//! - **person**: past 10 failures (from anywhere) the person is under attack, and only an
//!   address that has never failed for them in the window is still heard: the person, typing
//!   the right password from their own machine, signs in; each attacking address gets one
//!   guess, and then the other two limits hold it.
//!
//! An attempt is counted *before* its password is checked (`reserve`), so a burst of parallel
//! guesses can't slip past a check that happens before the count; a right password takes its
//! counts back (`succeeded`). Why not a token-bucket crate (governor): it lives in one
//! process, and what is limited here is failures, which a bucket can't take back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use diesel::Connection;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::input::Email;
use crate::domain::token::{from_naive, to_naive};
use crate::error::ServiceResult;
use crate::repo::login_failures::LoginFailures;

/// The limits, per window.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures of one address for one person.
    pub per_person_and_address: i32,
    /// Failures of one address, for anyone.
    pub per_address: i32,
    /// Failures for one person from anywhere, past which only a clean address is heard.
    pub per_person: i32,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_person_and_address: 5,
            per_address: 20,
            per_person: 10,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Wrong second-factor codes for one person per window, from anywhere. Unlike passwords, a
/// code is guessed by someone who already has the password, from as many addresses as they
/// like, and a 6-digit code falls to about 300,000 guesses: so past this many the person's
/// codes aren't checked at all until the window ends (GitHub and GitLab lock the same way).
pub const CODES_PER_PERSON: i32 = 10;

/// Reset mails for one person per window: enough to retry a lost mail, too few to flood a
/// mailbox.
pub const RESET_PER_PERSON: i32 = 3;
/// "Forgot password?" requests from one address per window, for anyone.
pub const RESET_PER_ADDRESS: i32 = 10;

pub struct LoginLimiter {
    limits: Limits,
    window: time::Duration,
    /// Keys the HMAC of what people typed; derived from the installation's secret key.
    key: Vec<u8>,
    /// Keys this instance saw go over their limit, and until when: a flood against a locked
    /// key is refused from memory, without a database write per attempt. (Only ever refuses
    /// what the shared count already refused, so instances still agree.)
    locked: Mutex<HashMap<String, OffsetDateTime>>,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The three keys of one attempt (`None`: the address is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptKeys {
    pair: Option<String>,
    address: Option<String>,
    person: String,
}

impl LoginLimiter {
    /// A limiter whose keys are HMACs under `secret` (the installation's secret key).
    pub fn new(secret: &[u8], limits: Limits) -> LoginLimiter {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"apitokens sign-in limiter keys, v1\n");
        LoginLimiter {
            limits,
            window: time::Duration::try_from(limits.window).unwrap_or(time::Duration::minutes(15)),
            key: mac.finalize().into_bytes().to_vec(),
            locked: Mutex::default(),
        }
    }

    fn hmac(&self, parts: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The keys of an attempt for `login` (as typed) from `address`.
    pub fn keys(&self, login: &str, address: &str) -> AttemptKeys {
        let login = Email::normal_form(login);
        let login: String = login.chars().take(320).collect();
        let address: String = address.chars().take(64).collect();
        let known = !address.is_empty();
        AttemptKeys {
            pair: known.then(|| format!("pa:{}", self.hmac(&["pair", &login, &address]))),
            address: known.then(|| format!("a:{}", self.hmac(&["address", &address]))),
            person: format!("p:{}", self.hmac(&["person", &login])),
        }
    }

    /// `Some(wait)` if this instance already knows the pair or the address to be locked.
    pub fn locked_here(&self, keys: &AttemptKeys, now: OffsetDateTime) -> Option<Duration> {
        let locked = self.locked.lock().expect("login lock map");
        [&keys.pair, &keys.address]
            .into_iter()
            .flatten()
            .filter_map(|key| locked.get(key).copied())
            .filter(|until| *until > now)
            .filter_map(|until| Duration::try_from(until - now).ok())
            .max()
    }

    fn remember_locked(&self, key: &str, until: OffsetDateTime, now: OffsetDateTime) {
        let mut locked = self.locked.lock().expect("login lock map");
        if locked.len() > 100_000 {
            locked.retain(|_, until| *until > now);
        }
        locked.insert(key.to_owned(), until);
    }

    /// Counts this attempt. `Err(wait)` when it may not be checked: its address has had its
    /// failures (for this person, or for anyone), or the person is under attack and this
    /// address has failed for them before. The password must not be checked then.
    pub fn reserve(
        &self,
        conn: &mut DbConn,
        keys: &AttemptKeys,
        now: OffsetDateTime,
    ) -> ServiceResult<Result<(), Duration>> {
        let cutoff = to_naive(now - self.window);
        let at = to_naive(now);
        conn.transaction(|conn| {
            let mut wait: Option<Duration> = None;
            let mut refuse = |since: time::PrimitiveDateTime| {
                let left = from_naive(since) + self.window - now;
                let left = Duration::try_from(left).unwrap_or(Duration::from_secs(1));
                wait = Some(wait.map_or(left, |w| w.max(left)));
                from_naive(since) + self.window
            };
            let mut pair_count = 0;
            for (key, max) in [
                (&keys.pair, self.limits.per_person_and_address),
                (&keys.address, self.limits.per_address),
            ] {
                let Some(key) = key else { continue };
                let (count, since) = LoginFailures::count_attempt(conn, key, at, cutoff)?;
                if key.starts_with("pa:") {
                    pair_count = count;
                }
                if count > max {
                    let until = refuse(since);
                    self.remember_locked(key, until, now);
                }
            }
            let (person_count, since) =
                LoginFailures::count_attempt(conn, &keys.person, at, cutoff)?;
            // Under attack: only an address with no failure for this person is heard (its own
            // count is 1: this attempt). An unknown address is never clean.
            let clean = keys.pair.is_some() && pair_count <= 1;
            if person_count > self.limits.per_person && !clean {
                refuse(since);
            }
            Ok(match wait {
                Some(wait) => Err(wait.max(Duration::from_secs(1))),
                None => Ok(()),
            })
        })
    }

    /// The attempt was right: this address's failures for the person are forgiven, and the
    /// address and the person get this attempt back (the person's other failures stand: a
    /// right password from one place says nothing of the guesses from elsewhere).
    pub fn succeeded(&self, conn: &mut DbConn, keys: &AttemptKeys) -> ServiceResult<()> {
        if let Some(pair) = &keys.pair {
            self.locked.lock().expect("login lock map").remove(pair);
            LoginFailures::clear(conn, pair)?;
        }
        if let Some(address) = &keys.address {
            LoginFailures::uncount(conn, address)?;
        }
        LoginFailures::uncount(conn, &keys.person)?;
        Ok(())
    }

    /// Whether "Forgot password?" may send another mail for `login` asked from `address`:
    /// `RESET_PER_PERSON` mails per person and `RESET_PER_ADDRESS` requests per address in a
    /// window, on every instance (the same table, keys of their own). Counted whether or not
    /// anyone has the address, so the cost and the answer are the same either way.
    pub fn reset_allowed(
        &self,
        conn: &mut DbConn,
        login: &str,
        address: &str,
        now: OffsetDateTime,
    ) -> ServiceResult<bool> {
        let login = Email::normal_form(login);
        let login: String = login.chars().take(320).collect();
        let address: String = address.chars().take(64).collect();
        let person = format!("rp:{}", self.hmac(&["reset-person", &login]));
        let origin = format!("ra:{}", self.hmac(&["reset-address", &address]));
        let (cutoff, at) = (to_naive(now - self.window), to_naive(now));
        conn.transaction(|conn| {
            let (from_origin, _) = LoginFailures::count_attempt(conn, &origin, at, cutoff)?;
            if from_origin > RESET_PER_ADDRESS {
                return Ok(false);
            }
            let (for_person, _) = LoginFailures::count_attempt(conn, &person, at, cutoff)?;
            Ok(for_person <= RESET_PER_PERSON)
        })
    }

    /// Counts a second-factor attempt for `login` before its code is checked: `Err((wait,
    /// first))` once the person has had `CODES_PER_PERSON` wrong codes in the window, from any
    /// address; `first` for the one attempt (on any instance) that tipped it over, so the
    /// person is told once.
    pub fn reserve_code(
        &self,
        conn: &mut DbConn,
        login: &str,
        now: OffsetDateTime,
    ) -> ServiceResult<Result<(), (Duration, bool)>> {
        let key = self.code_key(login);
        let (count, since) =
            LoginFailures::count_attempt(conn, &key, to_naive(now), to_naive(now - self.window))?;
        if count > CODES_PER_PERSON {
            let left = from_naive(since) + self.window - now;
            let wait = Duration::try_from(left)
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_secs(1));
            return Ok(Err((wait, count == CODES_PER_PERSON + 1)));
        }
        Ok(Ok(()))
    }

    /// The code was right: the attempt is taken back.
    pub fn code_succeeded(&self, conn: &mut DbConn, login: &str) -> ServiceResult<()> {
        Ok(LoginFailures::uncount(conn, &self.code_key(login))?)
    }

    fn code_key(&self, login: &str) -> String {
        let login = Email::normal_form(login);
        let login: String = login.chars().take(320).collect();
        format!("c:{}", self.hmac(&["second-factor", &login]))
    }

    /// Forgets counts whose window ended (the sweep calls this).
    pub fn purge(&self, conn: &mut DbConn, now: OffsetDateTime) -> ServiceResult<usize> {
        Ok(LoginFailures::purge(conn, to_naive(now - self.window))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_macs_of_the_normal_form_and_never_the_text() {
        let limiter = LoginLimiter::new(b"one installation", Limits::default());
        let keys = limiter.keys(" Alice@Example.COM ", "203.0.113.9");
        assert_eq!(keys, limiter.keys("alice@example.com", "203.0.113.9"));
        for key in [
            keys.pair.as_deref().unwrap(),
            keys.address.as_deref().unwrap(),
            &keys.person,
        ] {
            assert!(!key.contains("alice") && !key.contains("203.0"), "{key}");
            let (_, mac) = key.split_once(':').unwrap();
            assert_eq!(mac.len(), 64, "{key}");
        }
        let other_install = LoginLimiter::new(b"another installation", Limits::default());
        assert_ne!(
            keys.person,
            other_install
                .keys("alice@example.com", "203.0.113.9")
                .person
        );
        let unknown = limiter.keys("alice@example.com", "");
        assert_eq!((unknown.pair, unknown.address), (None, None));
        assert_eq!(unknown.person, keys.person);
    }
}
