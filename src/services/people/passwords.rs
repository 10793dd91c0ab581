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

use super::sign_in::start_session;
use super::People;
use crate::domain::input::NewPassword;
use crate::domain::UserId;
use crate::email::Recipient;
use crate::services::notices::messages::{changed_message, reset_message, ChangedMail, ResetMail};
use crate::services::vocabulary::{Person, SignInError};

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
                reason: None,
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

/// The answer to a set-password link that is unknown, used or expired.
pub(crate) fn invalid_link() -> ServiceError {
    ServiceError::invalid(
        "token",
        "This link is not valid any more: it was used, or it expired. Ask for a new one with \"Forgot password?\" on the sign-in page.",
    )
}

/// Whether a set-password link still works: one SHA-256 and an indexed read, so a flood of
/// made-up links costs no password hashing.
pub fn check_link(conn: &mut DbConn, secret: &str, now: OffsetDateTime) -> ServiceResult<()> {
    match PasswordSetup::find(conn, &sha256_hex(secret))? {
        Some(s) if s.used_at.is_none() && s.expires_at > to_naive(now) => Ok(()),
        _ => Err(invalid_link()),
    }
}

/// Sets the password (already hashed) of the user behind a set-password link (an invitation's
/// or a reset's); the link works once, also when two posts race, and everything the old
/// password opened ends (`replace_password`). Returns the user as they were before, so the
/// caller can tell a reset (they had a password) from a first password.
pub fn set_password(
    conn: &mut DbConn,
    secret: &str,
    hashed: &str,
    now: OffsetDateTime,
) -> ServiceResult<User> {
    conn.transaction(|conn| {
        let invalid = invalid_link;
        let setup = PasswordSetup::find(conn, &sha256_hex(secret))?.ok_or_else(invalid)?;
        if setup.used_at.is_some() || setup.expires_at <= to_naive(now) {
            return Err(invalid());
        }
        let user = User::find(conn, setup.user_id)?
            .filter(|u| u.removed_at.is_none())
            .ok_or_else(invalid)?;
        if !PasswordSetup::use_once(conn, &setup.token_hash, to_naive(now))? {
            return Err(invalid());
        }
        let how = if user.password_hash.is_some() {
            HowChanged::Link
        } else {
            HowChanged::Invitation
        };
        replace_password(conn, &user, hashed, how, None, now)?;
        Ok(user)
    })
}

/// The user behind a set-password link, if the link still works (to greet them on the page).
pub fn setup_user(
    conn: &mut DbConn,
    secret: &str,
    now: OffsetDateTime,
) -> ServiceResult<Option<User>> {
    let Some(setup) = PasswordSetup::find(conn, &sha256_hex(secret))? else {
        return Ok(None);
    };
    if setup.used_at.is_some() || setup.expires_at <= to_naive(now) {
        return Ok(None);
    }
    Ok(User::find(conn, setup.user_id)?.filter(|u| u.removed_at.is_none()))
}

impl People {
    /// The user behind a set-password link, if the link still works.
    pub async fn setup_user(&self, secret: String) -> ServiceResult<Option<Person>> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| setup_user(conn, &secret, now))
            .await
            .map(|user| user.map(Person::from))
    }
    /// Sets the password behind a set-password link (the link works once). A reset (the
    /// person had a password) ends every session and JWT and tells the person by e-mail.
    /// The link is looked up first; only a live link's password is hashed (under the
    /// password budget, holding no connection).
    #[tracing::instrument(skip_all)]
    pub async fn set_password(&self, secret: String, password: String) -> ServiceResult<Person> {
        let now = self.rt.clock.now();
        let link = secret.clone();
        // A turn in the budget first, as sign-in does: a flood of links told "busy" costs no
        // database work, and the lookups it does make are bounded by the budget's pace.
        let turn = self.passwords.turn().await?;
        self.rt
            .db
            .run(move |conn| check_link(conn, &link, now))
            .await?;
        let hashed = self
            .passwords
            .run_in(turn, move || {
                crate::services::runtime::passwords::hash_password(&password)
            })
            .await??;
        let before = self
            .rt
            .db
            .run(move |conn| set_password(conn, &secret, &hashed, now))
            .await?;
        self.gateway.forget_user(UserId::new(before.id));
        if before.password_hash.is_some() {
            self.tell_password_changed(&before, HowChanged::Link, now);
        }
        Ok(Person::from(before))
    }

    /// Profile → General: the current password, then the new one (already checked against
    /// the rules). Wrong current passwords count toward the sign-in limit. Every session and
    /// JWT of the person ends; the browser that asked gets a new session (its id returned).
    #[tracing::instrument(skip_all, fields(user_id = actor.user_id.get()))]
    pub async fn change_password(
        &self,
        actor: Actor,
        email: &str,
        current: &str,
        new: NewPassword,
        address: &str,
    ) -> Result<String, SignInError> {
        let (me, who) = (actor.user_id.get(), actor.user_id);
        let user = self
            .limited(email, current, address, move |_, user| Ok(user))
            .await?;
        if user.id != me {
            return Err(SignInError::WrongCredentials);
        }
        let turn = self.passwords.turn().await?;
        let hashed = self
            .passwords
            .run_in(turn, move || {
                crate::services::runtime::passwords::hash_password(new.expose())
            })
            .await?
            .map_err(SignInError::Service)?;
        let now = self.rt.clock.now();
        let changed = user.clone();
        let session = self
            .rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    replace_password(
                        conn,
                        &changed,
                        &hashed,
                        HowChanged::Portal,
                        Some(&actor),
                        now,
                    )?;
                    start_session(conn, changed.clone(), now)
                        .map(|(_, session)| session)
                        .map_err(|e| match e {
                            SignInError::Service(e) => e,
                            _ => ServiceError::Forbidden("This role can't use the portal.".into()),
                        })
                })
            })
            .await
            .map_err(SignInError::Service)?;
        self.gateway.forget_user(who);
        self.tell_password_changed(&user, HowChanged::Portal, now);
        Ok(session)
    }

    /// "Forgot password?": a one-hour link by e-mail to a password person, word of where to
    /// sign in to an SSO person, nothing to an address nobody has; the answer is the same
    /// (`Ok`) in every case, and so is the work done before answering: the mail leaves after
    /// the answer, so its time tells nothing either. Limited per address and per person.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, email: &str, address: &str) -> ServiceResult<()> {
        let now = self.rt.clock.now();
        let limiter = self.limiter.clone();
        let (login, address) = (
            crate::domain::input::Email::normal_form(email),
            address.to_owned(),
        );
        let answer = self
            .rt
            .db
            .run(move |conn| {
                if !limiter.reset_allowed(conn, &login, &address, now)? {
                    tracing::info!("password reset not sent: over the limit");
                    return Ok(ResetAnswer::Nobody);
                }
                start_reset(conn, &login, now)
            })
            .await?;
        let mail = self.notices.mail().clone();
        let (user, link) = match answer {
            ResetAnswer::Nobody => return Ok(()),
            ResetAnswer::Sso(user) => (user, None),
            ResetAnswer::Link(user, secret) => {
                let link = format!("{}/set-password?token={secret}", mail.base_url);
                (user, Some(link))
            }
        };
        let facts = ResetMail {
            recipient: Recipient {
                name: user.display_name().to_owned(),
                email: user.email.clone(),
            },
            link,
        };
        let user_id = user.id;
        tokio::task::spawn_blocking(move || {
            let sent = reset_message(&mail.from, &facts, &mail.base_url)
                .and_then(|m| mail.mailer.send(&m));
            if let Err(e) = sent {
                tracing::warn!(user_id, error = %e, "password reset e-mail not sent");
            }
        });
        Ok(())
    }

    /// Tells a person their password changed (after the answer; a failure is logged).
    fn tell_password_changed(&self, user: &User, how: HowChanged, at: OffsetDateTime) {
        let mail = self.notices.mail().clone();
        let facts = ChangedMail {
            recipient: Recipient {
                name: user.display_name().to_owned(),
                email: user.email.clone(),
            },
            how: how.words(),
            when: crate::domain::text::utc_minute(at),
        };
        let user_id = user.id;
        tokio::task::spawn_blocking(move || {
            let sent = changed_message(&mail.from, &facts, &mail.base_url)
                .and_then(|m| mail.mailer.send(&m));
            if let Err(e) = sent {
                tracing::warn!(user_id, error = %e, "password-changed e-mail not sent");
            }
        });
    }
}
