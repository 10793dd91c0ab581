//! One cached token: its row, with what the hot path compares parsed once (digests, expiry
//! and grace as Unix seconds, the allowlist), and the verification itself.

use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Instant;

use time::PrimitiveDateTime;

use crate::domain::secret::Digest32;
use crate::domain::token::PresentedToken;
use crate::domain::{AccountId, TokenId, UserId};
use crate::repo::TokenForAuth;
use crate::services::vocabulary::{Actor, Credential, Unauthorized};

#[derive(Debug)]
pub struct CachedToken {
    pub row: TokenForAuth,
    /// `row.secret_hash` as bytes (`None`: malformed, matches nothing).
    pub digest: Option<Digest32>,
    /// During a rotation's grace: the old secret's hash as bytes, and the Unix second it
    /// stops at.
    pub old: Option<(Digest32, i64)>,
    /// `row.expires_at` as the first Unix second at which the token is expired (`None`:
    /// never): the check compares whole seconds, with no calendar arithmetic.
    pub expires: Option<i64>,
    /// The address allowlist, parsed once (`None`: any address).
    pub allowed: Option<std::sync::Arc<[ipnet::IpNet]>>,
    /// The routes it may call, parsed once (`None`: any).
    pub routes: Option<std::sync::Arc<[crate::domain::routes::Route]>>,
    pub rate: Option<crate::domain::rate::RateLimit>,
    pub quota: Option<crate::domain::quota::UsageLimit>,
    pub fetched: Instant,
    /// Set once a background reload of this entry has been asked for.
    pub refreshing: AtomicBool,
    /// Unix second of the last use passed on to `note_use` from this entry (0: none): a use
    /// within `LAST_USED_GAP` of it needs no lock at all.
    pub noted: AtomicI64,
}

impl CachedToken {
    pub fn new(row: TokenForAuth, fetched: Instant) -> CachedToken {
        let old = row
            .old_secret_hash
            .as_deref()
            .and_then(Digest32::from_stored)
            .zip(row.old_secret_until.map(unix_ceil));
        let allowed = row
            .allowed_ips
            .as_deref()
            .map(|s| crate::domain::allowlist::from_stored(Some(s)))
            .filter(|nets| !nets.is_empty())
            .map(std::sync::Arc::from);
        let routes = Some(crate::domain::routes::from_stored(
            row.allowed_routes.as_deref(),
        ))
        .filter(|r| !r.is_empty())
        .map(std::sync::Arc::from);
        CachedToken {
            rate: crate::domain::rate::RateLimit::from_stored(row.rate_limit.as_deref()),
            quota: crate::domain::quota::UsageLimit::from_stored(row.usage_limit.as_deref()),
            routes,
            digest: Digest32::from_stored(&row.secret_hash),
            old,
            expires: row.expires_at.map(unix_ceil),
            allowed,
            row,
            fetched,
            refreshing: AtomicBool::new(false),
            noted: AtomicI64::new(0),
        }
    }

    /// Not deleted, expired or of a removed issuer: a refusal then means the secret didn't
    /// match.
    pub fn alive(&self, now: i64) -> bool {
        let row = &self.row;
        row.deleted_at.is_none()
            && row.issuer_removed_at.is_none()
            && self.expires.is_none_or(|at| at > now)
    }

    /// `now` is a Unix second (`Clock::unix_now`).
    pub fn verify(&self, presented: &PresentedToken, now: i64) -> Result<Credential, Unauthorized> {
        let row = &self.row;
        let secret = presented.secret.as_bytes();
        // The old secret is tried only when the current one doesn't match, and only before
        // its grace ends (to the second, whatever this entry's age).
        let hash_ok = self.digest.is_some_and(|d| d.is_hash_of(secret))
            || self
                .old
                .is_some_and(|(d, until)| now < until && d.is_hash_of(secret));
        if hash_ok && self.alive(now) {
            Ok(Credential {
                actor: Actor {
                    user_id: UserId::new(row.issuer_id),
                    account_id: AccountId::new(row.account_id),
                    role: row.role.capped_by(row.issuer_role),
                    origin: Default::default(),
                },
                token_id: Some(TokenId::new(row.id)),
                stale: false,
                allowed: self.allowed.clone(),
                routes: self.routes.clone(),
                rate: self.rate,
                quota: self.quota,
            })
        } else {
            Err(Unauthorized)
        }
    }
}

/// A stored time (naive UTC) as the first whole Unix second not before it: for a whole
/// second `now`, `at > now` exactly when `unix_ceil(at) > now`.
pub fn unix_ceil(at: PrimitiveDateTime) -> i64 {
    let at = at.assume_utc();
    at.unix_timestamp() + i64::from(at.nanosecond() > 0)
}
