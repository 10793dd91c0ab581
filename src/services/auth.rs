//! Signing in to the portal and the sessions that follow.

use diesel::Connection;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::users::{dummy_hash, verify_password};
use super::{role_of, Actor};
use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::domain::Role;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, Session, User};

/// How long a portal session lives without signing in again.
pub const SESSION_TTL: Duration = Duration::hours(12);

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown e-mail, wrong password, removed user, or no password (SSO): one answer for all.
    #[error("wrong e-mail or password")]
    WrongCredentials,
    /// The password was right, but the role works through the API only.
    #[error("this role uses the API only")]
    ApiOnly,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        SignInError::Service(e.into())
    }
}

/// Checks e-mail and password; spends the same time whether or not the e-mail exists.
pub fn check_password(conn: &mut DbConn, email: &str, password: &str) -> Result<User, SignInError> {
    let email = email.trim().to_lowercase();
    let user = User::find_by_email(conn, &email)?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.as_deref())
        .unwrap_or_else(|| dummy_hash());
    let password_ok = verify_password(hash, password);
    match user {
        Some(user) if password_ok && user.password_hash.is_some() && user.removed_at.is_none() => {
            Ok(user)
        }
        _ => Err(SignInError::WrongCredentials),
    }
}

/// Signs in to the portal: returns the user and a new session id (to be kept in the cookie;
/// only its hash is stored).
pub fn sign_in(
    conn: &mut DbConn,
    email: &str,
    password: &str,
    now: OffsetDateTime,
) -> Result<(User, String), SignInError> {
    let user = check_password(conn, email, password)?;
    if !role_of(user.role).may_use_portal() {
        return Err(SignInError::ApiOnly);
    }
    let session_id = random_id();
    let session = Session {
        id_hash: hash_id(&session_id),
        user_id: user.id,
        created_at: to_naive(now),
        expires_at: to_naive(now + SESSION_TTL),
    };
    conn.transaction(|conn| {
        Session::insert(conn, &session)?;
        User::record_sign_in(conn, user.id, to_naive(now))?;
        Session::delete_expired(conn, to_naive(now))
    })?;
    Ok((user, session_id))
}

/// The signed-in person behind a session, as the portal shows them.
#[derive(Debug, Clone)]
pub struct PortalUser {
    pub user: User,
    pub role: Role,
    pub account: Account,
}

impl PortalUser {
    pub fn actor(&self) -> Actor {
        Actor::of_user(&self.user)
    }
}

/// The user of a live session; `None` when the session is unknown, expired, or its user was
/// removed or may no longer use the portal.
pub fn session_user(
    conn: &mut DbConn,
    session_id: &str,
    now: OffsetDateTime,
) -> ServiceResult<Option<PortalUser>> {
    let Some(user) = Session::find_user(conn, &hash_id(session_id), to_naive(now))? else {
        return Ok(None);
    };
    let role = role_of(user.role);
    if user.removed_at.is_some() || !role.may_use_portal() {
        return Ok(None);
    }
    let account = Account::find(conn, user.account_id)?.ok_or(ServiceError::NotFound)?;
    Ok(Some(PortalUser {
        user,
        role,
        account,
    }))
}

pub fn sign_out(conn: &mut DbConn, session_id: &str) -> ServiceResult<()> {
    Ok(Session::delete(conn, &hash_id(session_id))?)
}

/// 32 random bytes as hex: session ids, CSRF tokens, form ids.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    hex::encode(bytes)
}

fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}
