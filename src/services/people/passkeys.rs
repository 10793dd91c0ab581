//! Passkeys (WebAuthn) by `webauthn-rs`: registered under Profile → Security, used as the
//! sign-in's second step, as the whole sign-in (a discoverable credential with user
//! verification: something held and something known or one is), and for "sudo mode".
//!
//! A ceremony's state (the challenge and what it allows) is serialised into the encrypted
//! session cookie, so starting one writes nothing and any instance can finish it; finishing
//! records the state's hash in `webauthn_used_challenges`, so each challenge is answered once
//! across instances. The relying party id and origin come from `APITOKENS_BASE_URL`; browsers
//! refuse an IP address as relying party id, so on such a base URL passkeys are off and the
//! page says why.

use diesel::Connection;
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, PrimitiveDateTime};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn,
};

use super::two_factor::record;
use super::People;
use crate::domain::passkeys::{credential_key, RelyingParty, CEREMONY};
use crate::domain::token::to_naive;
use crate::domain::{sha256_hex, EventKind, PasskeyId, UserId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::passkeys::{NewPasskey, PasskeyRow, UsedChallenge};
use crate::repo::User;
use crate::services::vocabulary::{Actor, Person, SignInError};

/// Passkeys one person may register.
pub const MAX_PER_PERSON: i64 = 10;
/// The longest name a passkey may have.
pub const MAX_NAME: usize = 100;
/// The most a browser's answer may weigh (an attestation with certificates is a few KB).
pub const MAX_CREDENTIAL_JSON: usize = 64 * 1024;

/// A ceremony under way, as it rides in the session cookie.
#[derive(Serialize, Deserialize)]
enum Ceremony {
    Register {
        user_id: i64,
        started: i64,
        state: PasskeyRegistration,
    },
    /// A passkey sign-in: whoever's passkey answers, or only `person`'s (the step after the
    /// password, "sudo mode"). Always the discoverable ceremony: its state is a challenge, so
    /// the cookie stays small however many passkeys a person has (a list of allowed
    /// credentials would carry each one's public key), and every passkey here is discoverable.
    Assert {
        person: Option<i64>,
        started: i64,
        state: DiscoverableAuthentication,
    },
}

impl Ceremony {
    fn started(&self) -> i64 {
        match self {
            Ceremony::Register { started, .. } | Ceremony::Assert { started, .. } => *started,
        }
    }
}

/// What the browser needs to start a ceremony, and the state to keep in the session.
pub struct Started {
    /// `{"publicKey": {...}}` for `navigator.credentials.create` / `.get`.
    pub options: serde_json::Value,
    pub ceremony: String,
}

/// A passkey as Profile → Security lists it.
#[derive(Debug, Clone)]
pub struct PasskeyView {
    pub id: PasskeyId,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// The refusal past `MAX_PER_PERSON` (asked when the browser starts, and again at the end).
fn too_many() -> ServiceError {
    ServiceError::invalid(
        "passkey_name",
        format!(
            "You have {MAX_PER_PERSON} passkeys, the most one person may have: remove one first."
        ),
    )
}

fn rejected() -> SignInError {
    SignInError::WrongSecondFactor
}

/// The ceremony back from the cookie, if it is one of `now`'s (not older than `CEREMONY`).
fn open(ceremony: &str, now: OffsetDateTime) -> Option<Ceremony> {
    let c: Ceremony = serde_json::from_str(ceremony).ok()?;
    let age = now.unix_timestamp() - c.started();
    (0..=CEREMONY.whole_seconds()).contains(&age).then_some(c)
}

/// Marks the ceremony answered: `false` if it was answered before (a replay).
fn take_once(
    conn: &mut crate::db::DbConn,
    ceremony: &str,
    started: i64,
    now: OffsetDateTime,
) -> ServiceResult<bool> {
    let until = OffsetDateTime::from_unix_timestamp(started)
        .unwrap_or(now)
        .saturating_add(CEREMONY);
    UsedChallenge::purge_expired(conn, to_naive(now))?;
    Ok(UsedChallenge::take(
        conn,
        &sha256_hex(ceremony),
        to_naive(until),
    )?)
}

fn at(naive: PrimitiveDateTime) -> OffsetDateTime {
    crate::domain::token::from_naive(naive)
}

impl People {
    fn relying_party(&self) -> Result<&Webauthn, ServiceError> {
        match &*self.passkey_rp {
            RelyingParty::On(w) => Ok(w),
            RelyingParty::Off(why) => Err(ServiceError::invalid("passkey", why.clone())),
        }
    }

    /// Why passkeys can't be used on this installation, if they can't.
    pub fn passkeys_off(&self) -> Option<String> {
        match &*self.passkey_rp {
            RelyingParty::On(_) => None,
            RelyingParty::Off(why) => Some(why.clone()),
        }
    }

    /// The person's passkeys, oldest first.
    pub async fn passkeys(&self, user_id: UserId) -> ServiceResult<Vec<PasskeyView>> {
        self.rt
            .db
            .run(move |conn| {
                Ok(PasskeyRow::of_user(conn, user_id.get())?
                    .into_iter()
                    .map(|r| PasskeyView {
                        id: PasskeyId::new(r.id),
                        name: r.name,
                        created_at: at(r.created_at),
                        last_used_at: r.last_used_at.map(at),
                    })
                    .collect())
            })
            .await
    }

    /// Starts registering a passkey for the signed-in person: a discoverable credential with
    /// user verification, none of the ones they have already.
    pub async fn begin_passkey_registration(&self, actor: Actor) -> ServiceResult<Started> {
        let rp = self.relying_party()?.clone();
        let handle = self.passkey_handles.handle(actor.user_id.get());
        let now = self.rt.clock.now();
        let (user, existing) = self
            .rt
            .db
            .run(move |conn| {
                let user = User::find(conn, actor.user_id.get())?.ok_or(ServiceError::NotFound)?;
                let existing = PasskeyRow::of_user(conn, user.id)?;
                Ok((user, existing))
            })
            .await?;
        if existing.len() as i64 >= MAX_PER_PERSON {
            return Err(too_many());
        }
        let exclude = existing
            .iter()
            .filter_map(|r| serde_json::from_str::<Passkey>(&r.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        let (options, state) = rp
            .start_passkey_registration(handle, &user.email, user.display_name(), Some(exclude))
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey registration: {e}")))?;
        let mut options =
            serde_json::to_value(&options).map_err(|e| ServiceError::Internal(e.into()))?;
        // A passkey signs in on its own, so the authenticator must keep it (discoverable);
        // the state doesn't depend on it, only what the browser is asked.
        options["publicKey"]["authenticatorSelection"]["residentKey"] = "required".into();
        options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = true.into();
        let ceremony = Ceremony::Register {
            user_id: user.id,
            started: now.unix_timestamp(),
            state,
        };
        Ok(Started {
            options,
            ceremony: serde_json::to_string(&ceremony)
                .map_err(|e| ServiceError::Internal(e.into()))?,
        })
    }

    /// Finishes a registration begun in this session: the browser's answer checked, the
    /// passkey kept under `name`, audited.
    pub async fn finish_passkey_registration(
        &self,
        actor: Actor,
        ceremony: &str,
        name: &str,
        credential: &str,
    ) -> ServiceResult<()> {
        let rp = self.relying_party()?.clone();
        let now = self.rt.clock.now();
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(ServiceError::invalid(
                "passkey_name",
                "Name the passkey (for example \"Work laptop\"), so you can tell it from others later.",
            ));
        }
        if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                "passkey_name",
                format!("A passkey's name is at most {MAX_NAME} characters, without control characters."),
            ));
        }
        let again = || {
            ServiceError::invalid(
                "passkey_name",
                "The passkey wasn't created: the browser's answer didn't match what we asked for, or took too long. Choose \"Add a passkey\" again.",
            )
        };
        let Some(Ceremony::Register {
            user_id,
            started,
            state,
        }) = open(ceremony, now)
        else {
            return Err(again());
        };
        if user_id != actor.user_id.get() || credential.len() > MAX_CREDENTIAL_JSON {
            return Err(again());
        }
        let answer: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| again())?;
        let passkey = rp
            .finish_passkey_registration(&answer, &state)
            .map_err(|e| {
                tracing::info!(error = %e, "passkey registration refused");
                again()
            })?;
        let json = serde_json::to_string(&passkey).map_err(|e| ServiceError::Internal(e.into()))?;
        let ceremony = ceremony.to_owned();
        self.rt
            .db
            .run(move |conn| {
                if !take_once(conn, &ceremony, started, now)? {
                    return Err(again());
                }
                conn.transaction(|conn| {
                    let user = User::find(conn, user_id)?
                        .filter(|u| u.removed_at.is_none())
                        .ok_or(ServiceError::NotFound)?;
                    if PasskeyRow::count_of_user(conn, user_id)? >= MAX_PER_PERSON {
                        return Err(too_many());
                    }
                    let added = PasskeyRow::insert(
                        conn,
                        &NewPasskey {
                            user_id,
                            credential_id: &credential_key(passkey.cred_id()),
                            name: &name,
                            passkey: &json,
                            created_at: to_naive(now),
                        },
                    )?;
                    if !added {
                        return Err(ServiceError::invalid(
                            "passkey_name",
                            "That passkey is registered already.",
                        ));
                    }
                    record(
                        conn,
                        &user,
                        EventKind::UserPasskeyAdded,
                        &format!("added a passkey, \"{name}\""),
                        now,
                    )
                })
            })
            .await
    }

    /// Removes one of the signed-in person's passkeys, audited. The last second factor of a
    /// person whose account requires one stays until another replaces it.
    pub async fn remove_passkey(&self, actor: Actor, id: PasskeyId) -> ServiceResult<()> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let user = User::find(conn, actor.user_id.get())?.ok_or(ServiceError::NotFound)?;
                    let Some(row) = PasskeyRow::remove(conn, user.id, id.get())? else {
                        return Err(ServiceError::NotFound);
                    };
                    let required = crate::repo::Account::find(conn, user.account_id)?
                        .is_some_and(|a| a.mfa_required);
                    if required && !crate::repo::two_factor::factors(conn, user.id)?.any() {
                        return Err(ServiceError::invalid(
                            "passkeys",
                            "Your account requires a second factor and this passkey is your last one: add another passkey or an authenticator app first.",
                        ));
                    }
                    record(
                        conn,
                        &user,
                        EventKind::UserPasskeyRemoved,
                        &format!("removed a passkey, \"{}\"", row.name),
                        now,
                    )
                })
            })
            .await
    }

    /// Starts a passkey sign-in: with `person`, only theirs will do (the step after the
    /// password, or "sudo mode"); without, whoever's passkey answers. Writes nothing.
    pub fn begin_passkey_sign_in(&self, person: Option<UserId>) -> ServiceResult<Started> {
        let rp = self.relying_party()?;
        let (options, state) = rp
            .start_discoverable_authentication()
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey sign-in: {e}")))?;
        let ceremony = Ceremony::Assert {
            person: person.map(UserId::get),
            started: self.rt.clock.now().unix_timestamp(),
            state,
        };
        Ok(Started {
            options: serde_json::to_value(&options)
                .map_err(|e| ServiceError::Internal(e.into()))?,
            ceremony: serde_json::to_string(&ceremony)
                .map_err(|e| ServiceError::Internal(e.into()))?,
        })
    }

    /// Checks the browser's answer to a passkey sign-in begun in this session: the person
    /// whose passkey it is (only `expected`, when given), once. The counter and last use are
    /// kept.
    async fn passkey_answer(
        &self,
        ceremony: &str,
        credential: &str,
        expected: Option<UserId>,
        from: Option<std::net::IpAddr>,
    ) -> Result<User, SignInError> {
        let rp = self.relying_party().map_err(SignInError::Service)?.clone();
        let now = self.rt.clock.now();
        let ceremony_text = ceremony.to_owned();
        let ceremony = open(ceremony, now).ok_or_else(rejected)?;
        if credential.len() > MAX_CREDENTIAL_JSON {
            return Err(rejected());
        }
        let answer: PublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| rejected())?;
        if let Err(wait) = self.passkey_gate.admit(from) {
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "passkey answers over the limit"
            );
            return Err(rejected());
        }
        let key = credential_key(answer.raw_id.as_ref());
        let Some(row) = self
            .rt
            .db
            .run(move |conn| Ok(PasskeyRow::by_credential(conn, &key)?))
            .await?
        else {
            return Err(rejected());
        };
        let mut passkey: Passkey = serde_json::from_str(&row.passkey).map_err(|e| {
            SignInError::Service(ServiceError::Internal(anyhow::anyhow!(
                "a stored passkey doesn't parse: {e}"
            )))
        })?;
        let Ceremony::Assert {
            person,
            started,
            state,
        } = ceremony
        else {
            return Err(rejected());
        };
        let (handle, _) = rp
            .identify_discoverable_authentication(&answer)
            .map_err(|_| rejected())?;
        if handle != self.passkey_handles.handle(row.user_id)
            || person.is_some_and(|p| p != row.user_id)
        {
            return Err(rejected());
        }
        let result = rp
            .finish_discoverable_authentication(&answer, state, &[DiscoverableKey::from(&passkey)])
            .map_err(|e| {
                tracing::info!(error = %e, "passkey sign-in refused");
                rejected()
            })?;
        if expected.is_some_and(|e| e.get() != row.user_id) || !result.user_verified() {
            return Err(rejected());
        }
        let updated = passkey
            .update_credential(&result)
            .filter(|changed| *changed)
            .and_then(|_| serde_json::to_string(&passkey).ok());
        self.rt
            .db
            .run(move |conn| {
                if !take_once(conn, &ceremony_text, started, now)? {
                    return Ok(None);
                }
                PasskeyRow::record_use(conn, row.id, updated.as_deref(), to_naive(now))?;
                Ok(User::find(conn, row.user_id)?.filter(|u| u.removed_at.is_none()))
            })
            .await?
            .ok_or_else(rejected)
    }

    /// Signs in with a passkey, as the whole sign-in or the step after the password
    /// (`pending`): a new portal session.
    pub async fn sign_in_with_passkey(
        &self,
        ceremony: &str,
        credential: &str,
        pending: Option<UserId>,
        from: Option<std::net::IpAddr>,
    ) -> Result<(Person, String), SignInError> {
        let user = self
            .passkey_answer(ceremony, credential, pending, from)
            .await?;
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| Ok(super::sign_in::start_session(conn, user, now)))
            .await?
            .map(|(user, session)| (Person::from(user), session))
    }

    /// "Sudo mode" with a passkey (user verification makes it two factors): audited.
    pub async fn reauthenticate_with_passkey(
        &self,
        actor: Actor,
        ceremony: &str,
        credential: &str,
        from: Option<std::net::IpAddr>,
    ) -> Result<(), SignInError> {
        let user = self
            .passkey_answer(ceremony, credential, Some(actor.user_id), from)
            .await?;
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                record(
                    conn,
                    &user,
                    EventKind::UserReauthenticated,
                    "confirmed who they are with a passkey for a powerful act",
                    now,
                )
            })
            .await
            .map_err(SignInError::Service)
    }
}
