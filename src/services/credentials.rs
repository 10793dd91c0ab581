//! API credentials: permanent tokens (`APIKey`) and short-lived JWTs (`Bearer`).
//!
//! Token checks are the hot path of the whole system (every API call behind the gateway), so
//! verified rows are cached in memory for at most one second: a token deleted on another
//! instance stops working within that second, and the instance that deletes it forgets it at
//! once (`TokenVerifier::forget`). A cache hit costs one SHA-256 and a map lookup, no database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration as StdDuration, Instant};

use diesel::Connection;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::auth::{check_password, random_id, SignInError};
use super::{role_of, Actor};
use crate::config::SecretKey;
use crate::db::DbConn;
use crate::domain::token::{from_naive, to_naive, PresentedToken, TokenHash};
use crate::domain::Role;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{TokenForAuth, UsedRefreshToken, User};

/// How long a verified token row is trusted without asking the database again.
pub const CACHE_TTL: StdDuration = StdDuration::from_secs(1);
/// `last_used_at` is written at most this often per token.
pub const LAST_USED_GAP: Duration = Duration::minutes(1);
pub const ACCESS_TTL: Duration = Duration::hours(1);
pub const REFRESH_TTL: Duration = Duration::hours(24);

/// A credential that checked out: who acts, in which account, with which role.
#[derive(Debug, Clone)]
pub struct Credential {
    pub actor: Actor,
    /// The permanent token used, if any (absent for a JWT).
    pub token_id: Option<i64>,
}

/// Every failure looks the same from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

#[derive(Debug)]
struct CachedToken {
    row: TokenForAuth,
    fetched: Instant,
    /// Set once a background reload of this entry has been asked for.
    refreshing: AtomicBool,
}

impl CachedToken {
    fn verify(
        &self,
        presented: &PresentedToken,
        now: OffsetDateTime,
    ) -> Result<Credential, Unauthorized> {
        let row = &self.row;
        let hash_ok = TokenHash::of(presented.secret.expose()).matches(&row.secret_hash);
        let alive = row.deleted_at.is_none()
            && row.issuer_removed_at.is_none()
            && row.expires_at.is_none_or(|at| from_naive(at) > now);
        if hash_ok && alive {
            Ok(Credential {
                actor: Actor {
                    user_id: row.issuer_id,
                    account_id: row.account_id,
                    role: role_of(row.role),
                },
                token_id: Some(row.id),
            })
        } else {
            Err(Unauthorized)
        }
    }
}

/// Verifies permanent tokens, with the one-second cache described above.
#[derive(Default)]
pub struct TokenVerifier {
    cache: RwLock<HashMap<i64, CachedToken>>,
    /// When each token was last forgotten: a row loaded before that is stale and not cached.
    forgotten: Mutex<HashMap<i64, Instant>>,
    last_recorded: Mutex<HashMap<i64, OffsetDateTime>>,
}

/// A token row as read from the database, stamped with when the read began.
pub struct LoadedRow {
    row: Option<TokenForAuth>,
    started: Instant,
}

pub enum Verdict {
    /// Answered from the cache. `refresh` asks the caller to reload the row in the background
    /// (`refresh_in_background`): the entry is past half its life, and reloading it before it
    /// expires spares the requests of the next second a wait for the database.
    Known {
        verdict: Result<Credential, Unauthorized>,
        refresh: bool,
    },
    /// Not cached (or stale): load the row with `TokenVerifier::load` and call `remember`.
    Unknown,
}

impl TokenVerifier {
    pub fn check_cached(&self, presented: &PresentedToken, now: OffsetDateTime) -> Verdict {
        let cache = self.cache.read().expect("token cache lock");
        match cache.get(&presented.id) {
            Some(entry) if entry.fetched.elapsed() < CACHE_TTL => {
                let verdict = entry.verify(presented, now);
                let refresh = entry.fetched.elapsed() >= CACHE_TTL / 2
                    && !entry.refreshing.swap(true, Ordering::Relaxed);
                Verdict::Known { verdict, refresh }
            }
            _ => Verdict::Unknown,
        }
    }

    pub fn load(conn: &mut DbConn, id: i64) -> ServiceResult<LoadedRow> {
        let started = Instant::now();
        Ok(LoadedRow {
            row: TokenForAuth::find(conn, id)?,
            started,
        })
    }

    /// Caches a freshly loaded row and verifies against it.
    pub fn remember(
        &self,
        presented: &PresentedToken,
        loaded: LoadedRow,
        now: OffsetDateTime,
    ) -> Result<Credential, Unauthorized> {
        let Some(row) = loaded.row else {
            return Err(Unauthorized);
        };
        let entry = CachedToken {
            row,
            fetched: loaded.started,
            refreshing: AtomicBool::new(false),
        };
        let verdict = entry.verify(presented, now);
        self.store(presented.id, Some(entry), loaded.started);
        verdict
    }

    /// Replaces a cached row with one just reloaded (or drops it if the row is gone).
    pub fn refreshed(&self, id: i64, loaded: LoadedRow) {
        let started = loaded.started;
        let entry = loaded.row.map(|row| CachedToken {
            row,
            fetched: started,
            refreshing: AtomicBool::new(false),
        });
        self.store(id, entry, started);
    }

    fn store(&self, id: i64, entry: Option<CachedToken>, loaded_at: Instant) {
        let forgotten = self
            .forgotten
            .lock()
            .expect("forgotten lock")
            .get(&id)
            .copied();
        let mut cache = self.cache.write().expect("token cache lock");
        match entry {
            // A row read before this instance deleted the token is stale: never cache it.
            Some(entry) if forgotten.is_none_or(|at| loaded_at > at) => {
                if cache.len() > 100_000 {
                    cache.retain(|_, e| e.fetched.elapsed() < CACHE_TTL);
                }
                cache.insert(id, entry);
            }
            _ => {
                cache.remove(&id);
            }
        }
    }

    /// Called by the instance that deletes a token: it is refused from the next request on.
    pub fn forget(&self, id: i64) {
        let mut forgotten = self.forgotten.lock().expect("forgotten lock");
        if forgotten.len() > 100_000 {
            forgotten.retain(|_, at| at.elapsed() < CACHE_TTL * 10);
        }
        forgotten.insert(id, Instant::now());
        drop(forgotten);
        self.cache.write().expect("token cache lock").remove(&id);
    }

    /// True at most once a minute per token on this instance: time to write `last_used_at`.
    pub fn should_record_use(&self, id: i64, now: OffsetDateTime) -> bool {
        let mut map = self.last_recorded.lock().expect("last-used lock");
        match map.get(&id) {
            Some(at) if now - *at < LAST_USED_GAP => false,
            _ => {
                if map.len() > 100_000 {
                    map.retain(|_, at| now - *at < LAST_USED_GAP);
                }
                map.insert(id, now);
                true
            }
        }
    }

    pub fn record_use(conn: &mut DbConn, id: i64, now: OffsetDateTime) -> ServiceResult<bool> {
        Ok(TokenForAuth::record_use(
            conn,
            id,
            to_naive(now),
            LAST_USED_GAP,
        )?)
    }
}

/// The claims of our JWTs (Gcore's names, plus `role`, our role id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub user_id: i64,
    pub client_id: i64,
    pub email: String,
    pub user_groups: Vec<String>,
    pub is_admin: bool,
    pub role: i32,
}

/// HS256 keys derived from the server's secret key.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

impl JwtKeys {
    pub fn new(secret: &SecretKey) -> JwtKeys {
        // A key of its own, so a JWT can never be confused with a session cookie.
        let key = Sha256::new()
            .chain_update(b"apitokens jwt v1")
            .chain_update(secret.bytes())
            .finalize();
        JwtKeys {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
        }
    }

    pub fn issue(&self, user: &User, now: OffsetDateTime) -> ServiceResult<TokenPair> {
        let role = role_of(user.role);
        let claims = |token_type: &str, ttl: Duration| Claims {
            token_type: token_type.into(),
            exp: (now + ttl).unix_timestamp(),
            iat: now.unix_timestamp(),
            jti: random_id(),
            user_id: user.id,
            client_id: user.account_id,
            email: user.email.clone(),
            user_groups: vec![role.name().to_string()],
            is_admin: role.is_admin(),
            role: role.id(),
        };
        let encode = |c: &Claims| {
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), c, &self.encoding)
                .map_err(|e| ServiceError::Internal(anyhow::anyhow!("JWT encoding failed: {e}")))
        };
        Ok(TokenPair {
            access: encode(&claims("access", ACCESS_TTL))?,
            refresh: encode(&claims("refresh", REFRESH_TTL))?,
        })
    }

    /// Checks signature, type and expiry (against our clock, so tests can move time).
    pub fn decode(
        &self,
        jwt: &str,
        token_type: &str,
        now: OffsetDateTime,
    ) -> Result<Claims, Unauthorized> {
        if jwt.len() > 4096 {
            return Err(Unauthorized);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(jwt, &self.decoding, &validation)
            .map_err(|_| Unauthorized)?
            .claims;
        if claims.token_type != token_type || claims.exp <= now.unix_timestamp() {
            return Err(Unauthorized);
        }
        Ok(claims)
    }

    /// A Bearer access token as a credential; the role is the one it was issued with.
    pub fn verify_access(
        &self,
        jwt: &str,
        now: OffsetDateTime,
    ) -> Result<Credential, Unauthorized> {
        let claims = self.decode(jwt, "access", now)?;
        let role = Role::from_id(claims.role).ok_or(Unauthorized)?;
        Ok(Credential {
            actor: Actor {
                user_id: claims.user_id,
                account_id: claims.client_id,
                role,
            },
            token_id: None,
        })
    }
}

/// `POST /iam/auth/jwt/login`: any role may log in here, the API-only one included.
pub fn login(
    conn: &mut DbConn,
    keys: &JwtKeys,
    email: &str,
    password: &str,
    now: OffsetDateTime,
) -> Result<TokenPair, SignInError> {
    let user = check_password(conn, email, password)?;
    Ok(keys.issue(&user, now)?)
}

/// `POST /iam/auth/jwt/refresh`: each refresh token works once.
pub fn refresh(
    conn: &mut DbConn,
    keys: &JwtKeys,
    refresh: &str,
    now: OffsetDateTime,
) -> Result<TokenPair, RefreshError> {
    let claims = keys
        .decode(refresh, "refresh", now)
        .map_err(|_| RefreshError::Unauthorized)?;
    let expires =
        OffsetDateTime::from_unix_timestamp(claims.exp).map_err(|_| RefreshError::Unauthorized)?;
    conn.transaction(|conn| {
        UsedRefreshToken::purge_expired(conn, to_naive(now))?;
        if !UsedRefreshToken::claim(conn, &claims.jti, to_naive(expires))? {
            return Err(RefreshError::Unauthorized);
        }
        let user = User::find(conn, claims.user_id)?.ok_or(RefreshError::Unauthorized)?;
        if user.removed_at.is_some() {
            return Err(RefreshError::Unauthorized);
        }
        Ok(keys.issue(&user, now)?)
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("invalid refresh token")]
    Unauthorized,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<diesel::result::Error> for RefreshError {
    fn from(e: diesel::result::Error) -> Self {
        RefreshError::Service(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::User;
    use time::macros::datetime;

    fn user() -> User {
        User {
            id: 3,
            account_id: 7,
            email: "alice@example.com".into(),
            name: "Alice".into(),
            password_hash: None,
            role: 5,
            auth_type: "password".into(),
            created_at: datetime!(2026-01-01 0:00),
            last_login_at: None,
            removed_at: None,
            token_expiry_email: true,
            phone: None,
            lang: "en".into(),
        }
    }

    fn keys() -> JwtKeys {
        JwtKeys::new(&SecretKey::from_text(&"k".repeat(40)).unwrap())
    }

    #[test]
    fn access_tokens_carry_gcore_claims_and_expire_after_an_hour() {
        let now = datetime!(2026-11-28 10:00 UTC);
        let pair = keys().issue(&user(), now).unwrap();
        let claims = keys().decode(&pair.access, "access", now).unwrap();
        assert_eq!(
            (claims.user_id, claims.client_id, claims.is_admin),
            (3, 7, false)
        );
        assert_eq!(claims.user_groups, vec!["Engineers".to_string()]);
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(keys()
            .decode(&pair.access, "access", now + Duration::minutes(59))
            .is_ok());
        assert!(keys()
            .decode(&pair.access, "access", now + Duration::hours(1))
            .is_err());
        let refresh = keys().decode(&pair.refresh, "refresh", now).unwrap();
        assert_eq!(refresh.exp - refresh.iat, 24 * 3600);
    }

    #[test]
    fn the_wrong_type_a_tampered_signature_or_another_key_is_refused() {
        let now = datetime!(2026-11-28 10:00 UTC);
        let pair = keys().issue(&user(), now).unwrap();
        assert!(
            keys().verify_access(&pair.refresh, now).is_err(),
            "refresh is not access"
        );
        assert!(keys().decode(&pair.access, "refresh", now).is_err());
        let mut tampered = pair.access.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(keys().verify_access(&tampered, now).is_err());
        let other = JwtKeys::new(&SecretKey::from_text(&"o".repeat(40)).unwrap());
        assert!(other.verify_access(&pair.access, now).is_err());
        assert!(keys().verify_access("not.a.jwt", now).is_err());
        assert!(keys().verify_access(&"a".repeat(10_000), now).is_err());
    }

    fn row(id: i64) -> TokenForAuth {
        TokenForAuth {
            id,
            account_id: 7,
            issuer_id: 3,
            role: 5,
            secret_hash: TokenHash::of(&"a".repeat(64)).0,
            expires_at: None,
            deleted_at: None,
            issuer_removed_at: None,
        }
    }

    #[test]
    fn a_row_loaded_before_a_delete_is_never_cached_after_it() {
        let v = TokenVerifier::default();
        let now = datetime!(2026-11-28 10:00 UTC);
        let presented = PresentedToken::parse(&format!("1_{}", "a".repeat(64))).unwrap();
        let fresh = LoadedRow {
            row: Some(row(1)),
            started: Instant::now(),
        };
        assert!(v.remember(&presented, fresh, now).is_ok());
        assert!(matches!(
            v.check_cached(&presented, now),
            Verdict::Known { verdict: Ok(_), .. }
        ));
        // A background reload starts, then the token is deleted here, then the reload lands.
        let stale = LoadedRow {
            row: Some(row(1)),
            started: Instant::now(),
        };
        v.forget(1);
        v.refreshed(1, stale);
        assert!(
            matches!(v.check_cached(&presented, now), Verdict::Unknown),
            "the stale row was dropped"
        );
        // A row read after the delete is cached again (and says it is deleted).
        let mut deleted = row(1);
        deleted.deleted_at = Some(datetime!(2026-11-28 10:00));
        let after = LoadedRow {
            row: Some(deleted),
            started: Instant::now(),
        };
        assert!(v.remember(&presented, after, now).is_err());
        assert!(matches!(
            v.check_cached(&presented, now),
            Verdict::Known {
                verdict: Err(_),
                ..
            }
        ));
    }

    #[test]
    fn a_wrong_secret_or_an_expired_row_is_refused_from_the_cache() {
        let v = TokenVerifier::default();
        let now = datetime!(2026-11-28 10:00 UTC);
        let mut r = row(2);
        r.expires_at = Some(datetime!(2026-11-28 11:00));
        let good = PresentedToken::parse(&format!("2_{}", "a".repeat(64))).unwrap();
        let bad = PresentedToken::parse(&format!("2_{}", "b".repeat(64))).unwrap();
        assert!(v
            .remember(
                &good,
                LoadedRow {
                    row: Some(r),
                    started: Instant::now()
                },
                now
            )
            .is_ok());
        assert!(matches!(
            v.check_cached(&bad, now),
            Verdict::Known {
                verdict: Err(_),
                ..
            }
        ));
        let later = datetime!(2026-11-28 11:00 UTC);
        assert!(matches!(
            v.check_cached(&good, later),
            Verdict::Known {
                verdict: Err(_),
                ..
            }
        ));
    }

    #[test]
    fn last_use_is_recorded_at_most_once_a_minute() {
        let v = TokenVerifier::default();
        let now = datetime!(2026-11-28 10:00 UTC);
        assert!(v.should_record_use(1, now));
        assert!(!v.should_record_use(1, now + Duration::seconds(59)));
        assert!(v.should_record_use(2, now));
        assert!(v.should_record_use(1, now + Duration::seconds(60)));
    }
}
