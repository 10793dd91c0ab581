//! What the gateway needs to know about the user behind a JWT, cached like tokens: at most a
//! second old, forgotten at once by the instance that changes the user. A JWT passes only
//! while its user is not removed and its generation is the user's current one (signing out
//! everywhere, a role change and removal raise it), and it acts with the user's current role.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::token_cache::CACHE_TTL;
use crate::domain::Role;
use crate::repo::User;

/// The user as a JWT check needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserState {
    pub account_id: i64,
    pub role: Role,
    pub removed: bool,
    pub generation: i32,
}

impl UserState {
    pub fn of(user: &User) -> UserState {
        UserState {
            account_id: user.account_id,
            role: user.role,
            removed: user.removed_at.is_some(),
            generation: user.jwt_generation,
        }
    }
}

struct Entry {
    state: Option<UserState>,
    fetched: Instant,
}

#[derive(Default)]
pub struct UserStates {
    cache: RwLock<HashMap<i64, Entry>>,
    forgotten: Mutex<HashMap<i64, Instant>>,
    outage_grace: Duration,
}

impl UserStates {
    pub fn new(outage_grace: Duration) -> UserStates {
        UserStates {
            outage_grace,
            ..UserStates::default()
        }
    }

    /// The cached state, if it is fresh (`Some(None)`: the user doesn't exist).
    pub fn fresh(&self, id: i64) -> Option<Option<UserState>> {
        let cache = self.cache.read().expect("user cache lock");
        cache
            .get(&id)
            .filter(|e| e.fetched.elapsed() < CACHE_TTL)
            .map(|e| e.state)
    }

    /// What this instance last knew, within the outage grace, for when the database can't be
    /// asked. A user changed here since is not answered from memory.
    pub fn stale(&self, id: i64) -> Option<Option<UserState>> {
        if self
            .forgotten
            .lock()
            .expect("forgotten lock")
            .contains_key(&id)
        {
            return None;
        }
        let cache = self.cache.read().expect("user cache lock");
        cache
            .get(&id)
            .filter(|e| e.fetched.elapsed() < self.outage_grace)
            .map(|e| e.state)
    }

    /// Keeps a state read at `started`, unless the user was changed here since.
    pub fn remember(&self, id: i64, state: Option<UserState>, started: Instant) {
        let changed_since = self
            .forgotten
            .lock()
            .expect("forgotten lock")
            .get(&id)
            .is_some_and(|at| *at >= started);
        if changed_since {
            return;
        }
        let mut cache = self.cache.write().expect("user cache lock");
        if cache.len() > 100_000 {
            let keep = CACHE_TTL.max(self.outage_grace);
            cache.retain(|_, e| e.fetched.elapsed() < keep);
        }
        cache.insert(
            id,
            Entry {
                state,
                fetched: started,
            },
        );
    }

    /// Called by the instance that changes a user: the next JWT check reads them again.
    pub fn forget(&self, id: i64) {
        let mut forgotten = self.forgotten.lock().expect("forgotten lock");
        if forgotten.len() > 100_000 {
            forgotten.retain(|_, at| at.elapsed() < CACHE_TTL * 10);
        }
        forgotten.insert(id, Instant::now());
        drop(forgotten);
        self.cache.write().expect("user cache lock").remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(generation: i32) -> Option<UserState> {
        Some(UserState {
            account_id: 1,
            role: Role::Engineers,
            removed: false,
            generation,
        })
    }

    #[test]
    fn a_state_read_before_a_change_here_is_not_kept() {
        let users = UserStates::new(Duration::from_secs(60));
        let before = Instant::now();
        users.remember(7, state(0), before);
        assert_eq!(users.fresh(7), Some(state(0)));
        let reload_started = Instant::now();
        users.forget(7);
        users.remember(7, state(0), reload_started);
        assert_eq!(users.fresh(7), None, "the stale read was dropped");
        assert_eq!(
            users.stale(7),
            None,
            "nor answered from memory in an outage"
        );
        users.remember(7, state(1), Instant::now());
        assert_eq!(users.fresh(7), Some(state(1)));
    }
}
