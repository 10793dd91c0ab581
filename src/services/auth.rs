//! Signing in to the portal and the sessions that follow.

use diesel::Connection;
use time::{Duration, OffsetDateTime};

use super::jwt::{self, TokenPair};
use super::notices::expiring_soon_count;
use super::users::{dummy_hash, verify_password};
use super::{Actor, Services};
use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::domain::{sha256_hex, Role, Secret};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::notices::Notice;
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
    /// Too many failed attempts for this e-mail or address: try again after the wait.
    #[error("too many failed attempts")]
    TooManyAttempts(std::time::Duration),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        SignInError::Service(e.into())
    }
}

/// Whether `password` opens `user`'s account. Spends one Argon2 verification whether or not
/// the user exists (against a dummy hash), so a wrong e-mail takes as long as a wrong
/// password. CPU only: run it under the password budget, never holding a connection.
pub fn password_opens(user: Option<&User>, password: &str) -> bool {
    let hash = user
        .and_then(|u| u.password_hash.as_deref())
        .unwrap_or_else(|| dummy_hash());
    let ok = verify_password(hash, password);
    ok && user.is_some_and(|u| u.password_hash.is_some() && u.removed_at.is_none())
}

/// Starts a portal session for a user whose password was right: the user and a new session
/// id (to be kept in the cookie; only its hash is stored).
pub fn start_session(
    conn: &mut DbConn,
    user: User,
    now: OffsetDateTime,
) -> Result<(User, String), SignInError> {
    if !user.role.may_use_portal() {
        return Err(SignInError::ApiOnly);
    }
    let session_id = Secret::generate().into_exposed();
    let session = Session {
        id_hash: sha256_hex(&session_id),
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
    let Some(user) = Session::find_user(conn, &sha256_hex(session_id), to_naive(now))? else {
        return Ok(None);
    };
    let role = user.role;
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

/// Ends every portal session of the user and every JWT issued to them so far.
pub fn sign_out_everywhere(conn: &mut DbConn, user_id: i64) -> ServiceResult<()> {
    conn.transaction(|conn| {
        Session::delete_for_user(conn, user_id)?;
        User::bump_jwt_generation(conn, user_id)?;
        Ok(())
    })
}

pub fn sign_out(conn: &mut DbConn, session_id: &str) -> ServiceResult<()> {
    Ok(Session::delete(conn, &sha256_hex(session_id))?)
}

/// The numbers the navigation shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct NavCounts {
    /// Unread in-app notifications.
    pub unread: i64,
    /// Tokens the user can see that are active and expire soon (the badge).
    pub expiring_soon: i64,
}

impl Services {
    /// A password check under the failed-attempt limit that the portal and the API share,
    /// in three steps, so that no connection is held while Argon2 runs: count the attempt
    /// and look the user up; check the password under the budget; if it was right, take the
    /// count back and `finish` (a session, a JWT pair).
    async fn limited<T: Send + 'static>(
        &self,
        email: &str,
        password: &str,
        address: &str,
        finish: impl FnOnce(&mut DbConn, User) -> Result<T, SignInError> + Send + 'static,
    ) -> Result<T, SignInError> {
        let now = self.clock.now();
        let limiter = self.limiter.clone();
        let keys = limiter.keys(email, address);
        let login = crate::domain::input::Email::normal_form(email);
        if let Some(wait) = limiter.locked_here(&keys, now) {
            return Err(SignInError::TooManyAttempts(wait));
        }
        // A turn first: when the budget is full the answer is "busy" before any database work.
        let turn = self.passwords.turn().await?;
        let k = keys.clone();
        let (reserved, user) = self
            .db
            .run(move |conn| {
                if let Err(wait) = limiter.reserve(conn, &k, now)? {
                    return Ok((Err(wait), None));
                }
                Ok((Ok(()), User::find_by_email(conn, &login)?))
            })
            .await?;
        reserved.map_err(SignInError::TooManyAttempts)?;
        let password = password.to_owned();
        let checked = self
            .passwords
            .run_in(turn, move || {
                password_opens(user.as_ref(), &password).then_some(user)
            })
            .await?;
        let limiter = self.limiter.clone();
        let Some(Some(user)) = checked else {
            return Err(SignInError::WrongCredentials);
        };
        self.db
            .run(move |conn| {
                limiter.succeeded(conn, &keys)?;
                Ok(finish(conn, user))
            })
            .await
            .unwrap_or_else(|e| Err(SignInError::Service(e)))
            .map_err(|e| match e {
                SignInError::Service(e) => SignInError::Service(self.db.classify(e)),
                other => other,
            })
    }

    /// Signs in to the portal from `address`: the user and a new session id.
    #[tracing::instrument(skip_all)]
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        address: &str,
    ) -> Result<(User, String), SignInError> {
        let now = self.clock.now();
        self.limited(email, password, address, move |conn, user| {
            start_session(conn, user, now)
        })
        .await
    }

    /// `POST /iam/auth/jwt/login`: any role may log in here, the API-only one included.
    #[tracing::instrument(skip_all)]
    pub async fn jwt_login(
        &self,
        email: &str,
        password: &str,
        address: &str,
    ) -> Result<TokenPair, SignInError> {
        let now = self.clock.now();
        let keys = self.jwt.clone();
        self.limited(email, password, address, move |conn, user| {
            jwt::login(conn, &keys, user, now)
        })
        .await
    }

    /// `POST /iam/auth/jwt/refresh`: each refresh token works once.
    #[tracing::instrument(skip_all)]
    pub async fn jwt_refresh(&self, refresh: String) -> Result<TokenPair, jwt::RefreshError> {
        let now = self.clock.now();
        let keys = self.jwt.clone();
        self.db
            .run(move |conn| Ok(jwt::refresh(conn, &keys, &refresh, now)))
            .await?
            .map_err(|e| match e {
                jwt::RefreshError::Service(e) => jwt::RefreshError::Service(self.db.classify(e)),
                other => other,
            })
    }

    /// The person behind a portal session, with what the navigation shows them.
    pub async fn signed_in(
        &self,
        session_id: String,
    ) -> ServiceResult<Option<(PortalUser, NavCounts)>> {
        let now = self.clock.now();
        self.db
            .run(move |conn| {
                let Some(user) = session_user(conn, &session_id, now)? else {
                    return Ok(None);
                };
                let counts = NavCounts {
                    unread: Notice::unread_count(conn, user.user.id)?,
                    expiring_soon: expiring_soon_count(conn, &user.actor(), now)?,
                };
                Ok(Some((user, counts)))
            })
            .await
    }

    #[tracing::instrument(skip_all)]
    /// "Sign out everywhere" (Profile → General): sessions and JWTs end, on this instance at
    /// once and on the others within the cache's second.
    #[tracing::instrument(skip(self))]
    pub async fn sign_out_everywhere(&self, user_id: i64) -> ServiceResult<()> {
        self.db
            .run(move |conn| sign_out_everywhere(conn, user_id))
            .await?;
        self.user_states.forget(user_id);
        Ok(())
    }

    pub async fn sign_out(&self, session_id: String) -> ServiceResult<()> {
        self.db.run(move |conn| sign_out(conn, &session_id)).await
    }
}
