//! Short-lived JWTs for the API (`Bearer`): issued at login, refreshed once each.

use diesel::Connection;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::api_auth::{Credential, Unauthorized};
use super::auth::{check_password, SignInError};
use super::Actor;
use crate::config::SecretKey;
use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::domain::{Role, Secret};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{UsedRefreshToken, User};

pub const ACCESS_TTL: Duration = Duration::hours(1);
pub const REFRESH_TTL: Duration = Duration::hours(24);

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
        let role = user.role;
        let claims = |token_type: &str, ttl: Duration| Claims {
            token_type: token_type.into(),
            exp: (now + ttl).unix_timestamp(),
            iat: now.unix_timestamp(),
            jti: Secret::generate().into_exposed(),
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
            stale: false,
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
    Service(ServiceError),
}

impl From<ServiceError> for RefreshError {
    fn from(e: ServiceError) -> Self {
        RefreshError::Service(e)
    }
}

impl From<diesel::result::Error> for RefreshError {
    fn from(e: diesel::result::Error) -> Self {
        RefreshError::Service(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn user() -> User {
        let mut u = User::fixture(3, 7, Role::Engineers);
        u.email = "alice@example.com".into();
        u
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
}
