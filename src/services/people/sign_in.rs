//! Signing in to the portal and the sessions that follow.

use diesel::Connection;
use time::{Duration, OffsetDateTime};

use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::domain::{sha256_hex, Role, Secret};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, Session, User};
use crate::services::runtime::passwords::{dummy_hash, verify_password};
use crate::services::vocabulary::Actor;
use crate::services::vocabulary::{AccountInfo, Person, SignInError};

/// How long a portal session lives without signing in again.
pub const SESSION_TTL: Duration = Duration::hours(12);

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
    start_session_until(conn, user, now, None)
}

/// A new portal session that ends after `SESSION_TTL`, or at `until` if that is sooner (a
/// SAML IdP's `SessionNotOnOrAfter`).
pub fn start_session_until(
    conn: &mut DbConn,
    user: User,
    now: OffsetDateTime,
    until: Option<OffsetDateTime>,
) -> Result<(User, String), SignInError> {
    if !user.role.may_use_portal() {
        return Err(SignInError::ApiOnly);
    }
    let session_id = Secret::generate().into_exposed();
    let session = Session {
        id_hash: sha256_hex(&session_id),
        user_id: user.id,
        created_at: to_naive(now),
        expires_at: to_naive(until.map_or(now + SESSION_TTL, |u| u.min(now + SESSION_TTL))),
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
    pub user: Person,
    pub role: Role,
    pub account: AccountInfo,
    /// The account requires a second factor and this person (signing in with a password) has
    /// none yet: the portal shows them nothing but Profile → Security until they set one up.
    pub must_enrol: bool,
}

impl PortalUser {
    pub fn actor(&self) -> Actor {
        Actor::of_person(&self.user)
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
    let must_enrol = account.mfa_required
        && user.auth_type != crate::domain::AuthType::Sso
        && !crate::repo::two_factor::factors(conn, user.id)?.any();
    Ok(Some(PortalUser {
        user: Person::from(user),
        role,
        account: AccountInfo::from(account),
        must_enrol,
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
    /// Webhook endpoints turned off after failing for 3 days (Administrators only; 0 for
    /// others, and not read for them).
    pub webhooks_off: i64,
}

/// A right password opens the portal (or a JWT) unless the person's account requires single
/// sign-on; an Administrator's password still does (break-glass), and that is audited.
pub fn sso_allows_password(
    conn: &mut crate::db::DbConn,
    user: &User,
    now: OffsetDateTime,
) -> Result<(), crate::services::vocabulary::SignInError> {
    let Some(config) = crate::repo::sso::SsoConfig::find(conn, user.account_id)? else {
        return Ok(());
    };
    if !config.required {
        return Ok(());
    }
    if !user.role.is_admin() {
        return Err(crate::services::vocabulary::SignInError::SsoRequired);
    }
    let summary = format!(
        "{} <{}> signed in with a password while single sign-on is required (break-glass)",
        user.display_name(),
        user.email
    );
    crate::services::audit::write(
        conn,
        &[crate::services::audit::Entry {
            account_id: user.account_id,
            by: crate::services::audit::By::Person(user.id),
            at: now,
            kind: crate::domain::EventKind::SsoBreakGlass,
            summary: &summary,
            token_id: None,
            reason: None,
        }],
    )?;
    Ok(())
}
