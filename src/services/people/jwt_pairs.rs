//! JWT pairs for people: `POST /iam/auth/jwt/login` once the password was right, and
//! `POST /iam/auth/jwt/refresh`, where each refresh token works once (a table of used ids
//! every instance shares). The keys and the checking are the gateway's (`gateway::jwt`).

use diesel::Connection;
use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::error::ServiceError;
use crate::repo::{Account, UsedRefreshToken, User};
use crate::services::gateway::jwt::{JwtKeys, TokenPair};
use crate::services::vocabulary::SignInError;

/// `POST /iam/auth/jwt/login`, once the password was right: any role may log in here, the
/// API-only one included.
pub fn login(
    conn: &mut DbConn,
    keys: &JwtKeys,
    user: User,
    now: OffsetDateTime,
) -> Result<TokenPair, SignInError> {
    let account = Account::find(conn, user.account_id)?.ok_or(SignInError::WrongCredentials)?;
    Ok(keys.issue(&user, &account, now)?)
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
        if user.removed_at.is_some() || user.jwt_generation != claims.gen {
            return Err(RefreshError::Unauthorized);
        }
        let account = Account::find(conn, user.account_id)?.ok_or(RefreshError::Unauthorized)?;
        Ok(keys.issue(&user, &account, now)?)
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
