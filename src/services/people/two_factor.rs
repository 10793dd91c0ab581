//! A person's second factor (TOTP and recovery codes): enrolling under Profile → Security,
//! the sign-in step after the password, the JWT login's `one_time_password`, turning it off.
//! Codes are checked under the sign-in limiter (an attempt is counted before it is checked,
//! per person and per address, on every instance), and a code works once: the row's last
//! accepted step only moves forward.

use diesel::Connection;
use time::OffsetDateTime;

use super::People;
use crate::db::DbConn;
use crate::domain::second_factor::{normal_recovery_code, recovery_codes, SealKey, Seed};
use crate::domain::token::to_naive;
use crate::domain::{sha256_hex, AuthType, EventKind, UserId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::two_factor::{factors, Factors};
use crate::repo::two_factor::{RecoveryCodes, TotpRow};
use crate::repo::User;
use crate::services::audit::{self, By, Entry};
use crate::services::notices::messages::{two_factor_message, TwoFactorMail};
use crate::services::vocabulary::{Actor, Person, SignInError};

/// What Profile → Security shows.
#[derive(Debug, Clone)]
pub struct SecurityView {
    /// A confirmed authenticator app.
    pub enabled: bool,
    /// An enrolment started and not confirmed yet: the QR code's text and the seed to type.
    pub pending: Option<Enrolment>,
    pub recovery_codes_left: i64,
    pub sso: bool,
}

#[derive(Debug, Clone)]
pub struct Enrolment {
    pub uri: String,
    pub base32: String,
}

/// A second factor as typed: a code from the app, or a recovery code.
enum Typed {
    Code(String),
    Recovery(String),
}

fn typed(input: &str) -> Option<Typed> {
    let trimmed: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Typed::Code(trimmed));
    }
    normal_recovery_code(input).map(Typed::Recovery)
}

/// Checks a second factor of `user` at `now`: `Some(recovery_used)` if it opens, once.
fn check(
    conn: &mut DbConn,
    key: &SealKey,
    user: &User,
    input: &str,
    now: OffsetDateTime,
) -> ServiceResult<Option<bool>> {
    let Some(row) = TotpRow::find(conn, user.id)?.filter(|r| r.confirmed_at.is_some()) else {
        return Ok(None);
    };
    match typed(input) {
        Some(Typed::Code(code)) => {
            let Some(seed) = Seed::unseal(&row.secret_sealed, key) else {
                return Err(ServiceError::Internal(anyhow::anyhow!(
                    "a TOTP seed doesn't open with this installation's key (was APITOKENS_SECRET_KEY changed?)"
                )));
            };
            let Some(step) = seed.matching_step(&code, now.unix_timestamp()) else {
                return Ok(None);
            };
            Ok(TotpRow::take_step(conn, user.id, step)?.then_some(false))
        }
        Some(Typed::Recovery(code)) => {
            if !RecoveryCodes::use_once(conn, user.id, &sha256_hex(&code), to_naive(now))? {
                return Ok(None);
            }
            record(
                conn,
                user,
                EventKind::UserRecoveryCodeUsed,
                "used a recovery code",
                now,
            )?;
            Ok(Some(true))
        }
        None => Ok(None),
    }
}

pub(super) fn record(
    conn: &mut DbConn,
    user: &User,
    kind: EventKind,
    what: &str,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let summary = format!("{} <{}> {what}", user.display_name(), user.email);
    audit::write(
        conn,
        &[Entry {
            account_id: user.account_id,
            by: By::Person(user.id),
            at: now,
            kind,
            summary: &summary,
            token_id: None,
            reason: None,
        }],
    )
}

impl People {
    /// Profile → Security.
    pub async fn security(&self, user_id: UserId) -> ServiceResult<SecurityView> {
        let key = self.seal.clone();
        self.rt
            .db
            .run(move |conn| {
                let user = User::find(conn, user_id.get())?.ok_or(ServiceError::NotFound)?;
                let row = TotpRow::find(conn, user.id)?;
                let pending = row
                    .as_ref()
                    .filter(|r| r.confirmed_at.is_none())
                    .and_then(|r| Seed::unseal(&r.secret_sealed, &key))
                    .map(|seed| Enrolment {
                        uri: seed.uri(&user.email),
                        base32: seed.base32(),
                    });
                Ok(SecurityView {
                    enabled: row.as_ref().is_some_and(|r| r.confirmed_at.is_some()),
                    pending,
                    recovery_codes_left: RecoveryCodes::remaining(conn, user.id)?,
                    sso: user.auth_type == AuthType::Sso,
                })
            })
            .await
    }

    /// Which second factors the person has (the sign-in's second step offers those).
    pub async fn second_factors(&self, user_id: UserId) -> ServiceResult<Factors> {
        self.rt
            .db
            .run(move |conn| Ok(factors(conn, user_id.get())?))
            .await
    }

    /// Starts enrolling an authenticator app: a new seed (replacing one never confirmed).
    pub async fn start_two_factor(&self, actor: Actor) -> ServiceResult<()> {
        let now = self.rt.clock.now();
        let key = self.seal.clone();
        self.rt
            .db
            .run(move |conn| {
                let row = TotpRow {
                    user_id: actor.user_id.get(),
                    secret_sealed: Seed::generate().seal(&key),
                    created_at: to_naive(now),
                    confirmed_at: None,
                    last_step: 0,
                };
                if TotpRow::start(conn, &row)? {
                    Ok(())
                } else {
                    Err(ServiceError::invalid(
                        "code",
                        "Two-factor authentication is already on. Turn it off first to use another app.",
                    ))
                }
            })
            .await
    }

    /// Confirms the enrolment with a current code; the ten recovery codes, to show once.
    pub async fn confirm_two_factor(
        &self,
        actor: Actor,
        code: String,
    ) -> ServiceResult<Vec<String>> {
        let now = self.rt.clock.now();
        let key = self.seal.clone();
        self.rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let user = User::find(conn, actor.user_id.get())?.ok_or(ServiceError::NotFound)?;
                    let wrong = || {
                        ServiceError::invalid(
                            "code",
                            "That code is not the app's current one. Check the time on your phone and enter the code now shown.",
                        )
                    };
                    let row = TotpRow::find(conn, user.id)?
                        .filter(|r| r.confirmed_at.is_none())
                        .ok_or_else(|| {
                            ServiceError::invalid("code", "Start again: choose \"Set up an authenticator app\".")
                        })?;
                    let seed = Seed::unseal(&row.secret_sealed, &key).ok_or_else(wrong)?;
                    let step = seed
                        .matching_step(&code, now.unix_timestamp())
                        .ok_or_else(wrong)?;
                    if !TotpRow::take_step(conn, user.id, step)? || !TotpRow::confirm(conn, user.id, to_naive(now))? {
                        return Err(wrong());
                    }
                    let codes = recovery_codes();
                    let hashes: Vec<String> = codes
                        .iter()
                        .filter_map(|c| normal_recovery_code(c))
                        .map(|c| sha256_hex(&c))
                        .collect();
                    RecoveryCodes::replace(conn, user.id, &hashes)?;
                    record(conn, &user, EventKind::UserTwoFactorOn, "turned on two-factor authentication", now)?;
                    Ok(codes)
                })
            })
            .await
    }

    /// Checks a second factor of the person `user_id` under the limiter: `Ok(recovery_used)`.
    pub async fn check_second_factor(
        &self,
        user_id: UserId,
        input: &str,
        address: &str,
    ) -> Result<bool, SignInError> {
        let now = self.rt.clock.now();
        let key = self.seal.clone();
        let limiter = self.limiter.clone();
        let input = input.chars().take(64).collect::<String>();
        let address = address.to_owned();
        self.rt
            .db
            .run(move |conn| {
                let user = User::find(conn, user_id.get())?
                    .filter(|u| u.removed_at.is_none())
                    .ok_or(ServiceError::NotFound)?;
                let keys = limiter.keys(&user.email, &address);
                if let Some(wait) = limiter.locked_here(&keys, now) {
                    return Ok(Err((SignInError::TooManyAttempts(wait), None)));
                }
                if let Err(wait) = limiter.reserve(conn, &keys, now)? {
                    return Ok(Err((SignInError::TooManyAttempts(wait), None)));
                }
                if let Err((wait, first)) = limiter.reserve_code(conn, &user.email, now)? {
                    // Someone is guessing this person's codes: they have the password.
                    return Ok(Err((
                        SignInError::TooManyAttempts(wait),
                        first.then(|| Box::new(user)),
                    )));
                }
                match check(conn, &key, &user, &input, now)? {
                    Some(recovery) => {
                        limiter.succeeded(conn, &keys)?;
                        limiter.code_succeeded(conn, &user.email)?;
                        // Two recovery codes or fewer left: the person hears of it.
                        let left = if recovery {
                            Some(RecoveryCodes::remaining(conn, user.id)?).filter(|n| *n <= 2)
                        } else {
                            None
                        };
                        Ok(Ok((recovery, left.map(|n| (user, n)))))
                    }
                    None => Ok(Err((SignInError::WrongSecondFactor, None))),
                }
            })
            .await
            .unwrap_or_else(|e| Err((SignInError::Service(e), None)))
            .map(|(recovery, low)| {
                if let Some((user, left)) = low {
                    self.tell_two_factor(&user, None, left, now, false);
                }
                recovery
            })
            .map_err(|(e, guessed)| {
                if let Some(user) = guessed {
                    tracing::warn!(
                        user_id = user.id,
                        "second-factor codes locked: someone is guessing them"
                    );
                    self.tell_two_factor(&user, None, 0, now, true);
                }
                e
            })
    }

    /// Tells a person of their second factor (after the answer; a failure is logged).
    fn tell_two_factor(
        &self,
        user: &User,
        reset_by: Option<String>,
        left: i64,
        at: OffsetDateTime,
        locked: bool,
    ) {
        let mail = self.notices.mail().clone();
        let facts = TwoFactorMail {
            recipient: crate::email::Recipient {
                name: user.display_name().to_owned(),
                email: user.email.clone(),
            },
            reset_by,
            left,
            locked,
            when: crate::domain::text::utc_minute(at),
        };
        let user_id = user.id;
        tokio::task::spawn_blocking(move || {
            let sent = two_factor_message(&mail.from, &facts, &mail.base_url)
                .and_then(|m| mail.mailer.send(&m));
            if let Err(e) = sent {
                tracing::warn!(user_id, error = %e, "two-factor e-mail not sent");
            }
        });
    }

    /// The sign-in's second step: the code (or a recovery code), then a session.
    pub async fn finish_sign_in(
        &self,
        user_id: UserId,
        input: &str,
        address: &str,
    ) -> Result<(Person, String), SignInError> {
        self.check_second_factor(user_id, input, address).await?;
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                let user = User::find(conn, user_id.get())?.ok_or(ServiceError::NotFound)?;
                Ok(super::sign_in::start_session(conn, user, now))
            })
            .await
            .unwrap_or_else(|e| Err(SignInError::Service(e)))
            .map(|(user, session)| (Person::from(user), session))
    }

    /// Turns the second factor off, with a current code or a recovery code.
    pub async fn disable_two_factor(
        &self,
        actor: Actor,
        input: &str,
        address: &str,
    ) -> Result<(), SignInError> {
        self.check_second_factor(actor.user_id, input, address)
            .await?;
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let user =
                        User::find(conn, actor.user_id.get())?.ok_or(ServiceError::NotFound)?;
                    TotpRow::remove(conn, user.id)?;
                    record(
                        conn,
                        &user,
                        EventKind::UserTwoFactorOff,
                        "turned off two-factor authentication",
                        now,
                    )
                })
            })
            .await
            .map_err(SignInError::Service)
    }

    /// The account's "two factors required" (Administrators), audited.
    pub async fn set_mfa_required(&self, actor: Actor, required: bool) -> ServiceResult<bool> {
        actor.require_admin()?;
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    // As GitHub asks of an organisation's owners: your own first.
                    if !factors(conn, actor.user_id.get())?.any() {
                        return Err(ServiceError::invalid(
                            "mfa_required",
                            "Set up your own second factor first: then you can require one of everyone.",
                        ));
                    }
                    crate::repo::Account::set_mfa_required(conn, actor.account_id.get(), required)?;
                    audit::record(
                        conn,
                        &actor,
                        now,
                        EventKind::AccountTwoFactorPolicy,
                        if required {
                            "Required two-factor authentication of everyone who signs in with a password"
                        } else {
                            "Stopped requiring two-factor authentication"
                        },
                        None,
                    )?;
                    Ok(required)
                })
            })
            .await
    }

    /// Whether the actor's account requires two factors.
    pub async fn mfa_required(&self, actor: Actor) -> ServiceResult<bool> {
        self.rt
            .db
            .run(move |conn| {
                Ok(crate::repo::Account::find(conn, actor.account_id.get())?
                    .is_some_and(|a| a.mfa_required))
            })
            .await
    }

    /// An Administrator removes someone's second factor (a lost phone and no recovery codes):
    /// audited; the person sets one up again (at once, under the account's policy).
    pub async fn reset_two_factor(&self, actor: Actor, target: UserId) -> ServiceResult<()> {
        actor.require_admin()?;
        let now = self.rt.clock.now();
        let (user, admin) = self
            .rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let user = User::find(conn, target.get())?
                        .filter(|u| {
                            u.account_id == actor.account_id.get() && u.removed_at.is_none()
                        })
                        .ok_or(ServiceError::NotFound)?;
                    if !factors(conn, user.id)?.any() {
                        return Err(ServiceError::invalid(
                            "user",
                            "This person has no second factor to reset.",
                        ));
                    }
                    TotpRow::remove(conn, user.id)?;
                    crate::repo::passkeys::PasskeyRow::remove_all(conn, user.id)?;
                    audit::record(
                        conn,
                        &actor,
                        now,
                        EventKind::UserTwoFactorReset,
                        &format!(
                            "Reset the two-factor authentication of {} <{}>",
                            user.display_name(),
                            user.email
                        ),
                        None,
                    )?;
                    let admin = User::find(conn, actor.user_id.get())?
                        .map(|a| a.display_name().to_owned())
                        .unwrap_or_default();
                    Ok((user, admin))
                })
            })
            .await?;
        self.tell_two_factor(&user, Some(admin), 0, now, false);
        Ok(())
    }

    /// Which of the account's people have a second factor (the Users page).
    pub async fn with_two_factor(&self, actor: Actor) -> ServiceResult<Vec<UserId>> {
        self.rt
            .db
            .run(move |conn| {
                let mut ids = TotpRow::confirmed_in_account(conn, actor.account_id.get())?;
                ids.extend(crate::repo::passkeys::PasskeyRow::holders_in_account(
                    conn,
                    actor.account_id.get(),
                )?);
                ids.sort_unstable();
                ids.dedup();
                Ok(ids.into_iter().map(UserId::new).collect())
            })
            .await
    }
}
