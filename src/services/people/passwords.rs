//! A person's own password: changed under Profile → General (the current one first), reset
//! with a one-time link asked for on the sign-in page ("Forgot password?"), or set by an
//! operator (`apitokens user set-password`). However it changes, every session and JWT of the
//! person ends, every set-password link still open stops working, the account's audit trail
//! records it and the person is told by e-mail.

use diesel::Connection;
use time::{Duration, OffsetDateTime};

use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::domain::{sha256_hex, AuthType, EventKind, Secret};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::setups::PasswordSetup;
use crate::repo::{Session, User};
use crate::services::audit::{self, By, Entry};
use crate::services::vocabulary::Actor;

/// How long a reset link works (GitHub's and GitLab's are shorter than a day; an hour is
/// enough to open one's mail and short enough that a mailbox read later opens nothing).
pub const RESET_TTL: Duration = Duration::hours(1);

/// How a password came to change, as the audit trail and the person's e-mail say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HowChanged {
    /// Profile → General, with the current password.
    Portal,
    /// A reset link.
    Link,
    /// The invitation's set-password link (the first password).
    Invitation,
    /// `apitokens user set-password`.
    Operator,
}

impl HowChanged {
    pub fn words(self) -> &'static str {
        match self {
            HowChanged::Portal => "in the portal",
            HowChanged::Link => "with a reset link",
            HowChanged::Invitation => "with the invitation's link",
            HowChanged::Operator => "by an operator (apitokens user set-password)",
        }
    }

    fn kind(self) -> EventKind {
        match self {
            HowChanged::Link => EventKind::UserPasswordReset,
            HowChanged::Portal | HowChanged::Operator | HowChanged::Invitation => {
                EventKind::UserPasswordChanged
            }
        }
    }
}

/// Stores the new password (already hashed) of `user` and ends everything the old one
/// opened: every portal session, every JWT (the generation moves on), every set-password
/// link not used yet. Recorded in the account's audit trail. One transaction.
pub fn replace_password(
    conn: &mut DbConn,
    user: &User,
    hashed: &str,
    how: HowChanged,
    actor: Option<&Actor>,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    conn.transaction(|conn| {
        User::set_password_hash(conn, user.id, hashed)?;
        Session::delete_for_user(conn, user.id)?;
        User::bump_jwt_generation(conn, user.id)?;
        PasswordSetup::use_all_for_user(conn, user.id, to_naive(now))?;
        let summary = format!(
            "Password of {} <{}> changed {}",
            user.display_name(),
            user.email,
            how.words()
        );
        audit::write(
            conn,
            &[Entry {
                account_id: user.account_id,
                by: match actor {
                    Some(actor) => By::Actor(actor),
                    None if how == HowChanged::Operator => By::System,
                    None => By::Person(user.id),
                },
                at: now,
                kind: how.kind(),
                summary: &summary,
                token_id: None,
            }],
        )
    })
}

/// What "Forgot password?" does for an address, once the limits let it through.
#[derive(Debug)]
pub enum ResetAnswer {
    /// Nobody (or a removed person) has this address: nothing is sent.
    Nobody,
    /// A person who signs in through SSO: told so, with no link.
    Sso(User),
    /// A password person (or one invited who never set one): a one-hour link.
    Link(User, String),
}

/// Makes a reset link for the person with `email`, if there is one who signs in with a
/// password; only the link's SHA-256 is stored.
pub fn start_reset(
    conn: &mut DbConn,
    email: &str,
    now: OffsetDateTime,
) -> ServiceResult<ResetAnswer> {
    let Some(user) = User::find_by_email(conn, email)? else {
        return Ok(ResetAnswer::Nobody);
    };
    if user.removed_at.is_some() {
        return Ok(ResetAnswer::Nobody);
    }
    if user.auth_type == AuthType::Sso {
        return Ok(ResetAnswer::Sso(user));
    }
    let secret = Secret::generate().into_exposed();
    PasswordSetup::insert(
        conn,
        &PasswordSetup {
            token_hash: sha256_hex(&secret),
            user_id: user.id,
            created_at: to_naive(now),
            expires_at: to_naive(now + RESET_TTL),
            used_at: None,
        },
    )?;
    Ok(ResetAnswer::Link(user, secret))
}

/// The person an operator names by e-mail, for `apitokens user set-password`.
pub fn operator_target(conn: &mut DbConn, email: &str) -> ServiceResult<User> {
    let user = User::find_by_email(conn, email)?
        .filter(|u| u.removed_at.is_none())
        .ok_or_else(|| ServiceError::invalid("email", "No user has this e-mail address."))?;
    if user.auth_type == AuthType::Sso {
        return Err(ServiceError::invalid(
            "email",
            "This user signs in through SSO and has no password here.",
        ));
    }
    Ok(user)
}
