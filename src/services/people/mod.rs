//! People: signing in (portal sessions and JWT pairs, under the failed-attempt limit and
//! the password budget), the members of an account as its Administrators manage them, the
//! accounts themselves, a person's own password, and SCIM provisioning by an identity
//! provider.

pub mod accounts;
pub mod jwt_pairs;
pub mod limiter;
pub mod members;
pub mod passkeys;
pub mod passwords;
pub mod reauth;
pub mod saml;
pub mod scim;
pub mod service_accounts;
pub mod sign_in;
pub mod sso;
pub mod sso_flow;
pub mod sso_sign_in;
pub mod two_factor;

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::Settings;
use crate::db::DbConn;
use crate::domain::{Role, UserId};
use crate::error::ServiceResult;
use crate::repo::notices::Notice;
use crate::repo::{Account, User};
use crate::services::gateway::jwt::TokenPair;
use crate::services::gateway::Gateway;
use crate::services::notices::plan::expiring_soon_count;
use crate::services::notices::Notices;
use crate::services::runtime::password_work::PasswordWork;
use crate::services::runtime::Runtime;
use crate::services::vocabulary::{AccountInfo, Actor, Person, SignInError};

use crate::domain::token::from_naive;
use crate::email::Recipient;
use crate::services::notices::messages::{invitation_message, InvitationMail};
use crate::services::people::members::listing::events;
use accounts::{account_overview, account_users, visible_user, UsersListing};
use limiter::{Limits, LoginLimiter};
use members::list;
use members::{
    change_role, delete_all_tokens, invite, remove, update_user, Changed, EventEntry, Invited,
    NewMember, UserUpdate, UsersPage,
};
use sign_in::{
    password_opens, session_user, sign_out, sign_out_everywhere, start_session, NavCounts,
    PortalUser,
};

/// Where a password sign-in stands: signed in, or waiting for the second factor.
#[derive(Debug)]
pub enum SignInStep {
    Signed(Box<Person>, String),
    SecondFactor(UserId),
}

/// The people's room: the limiter and the password budget, with the gateway (told at once
/// whose JWTs and tokens ended) and the notices (invitations, alerts, the badge) beside them.
#[derive(Clone)]
pub struct People {
    rt: Runtime,
    gateway: Gateway,
    notices: Notices,
    limiter: Arc<LoginLimiter>,
    passwords: Arc<PasswordWork>,
    /// Seals and opens TOTP seeds (derived from the installation's secret key).
    seal: crate::domain::second_factor::SealKey,
    /// The WebAuthn relying party (or why passkeys are off) and the user handles' key.
    passkey_rp: crate::domain::passkeys::SharedRelyingParty,
    passkey_handles: crate::domain::passkeys::HandleKey,
    /// Bounds passkey answers, whose credential id costs a database read before its
    /// signature can be checked (5 a second per address after 20; 200 a second in all).
    passkey_gate: Arc<crate::services::runtime::flood_gate::FloodGate>,
    /// Bounds SSO starts, each a read (the e-mail's account) anyone can ask for: 5 a second
    /// per address after 20, 200 a second in all.
    sso_gate: Arc<crate::services::runtime::flood_gate::FloodGate>,
    /// The OpenID providers' documents and the client that fetches them.
    sso: sso::SharedProviders,
    /// The portal's public address (SSO's redirect URI, the sign-in links).
    base_url: String,
}

impl People {
    pub fn new(rt: Runtime, gateway: Gateway, notices: Notices, settings: &Settings) -> People {
        People {
            rt,
            gateway,
            notices,
            limiter: Arc::new(LoginLimiter::new(
                settings.secret_key.bytes(),
                Limits::default(),
            )),
            passwords: Arc::new(PasswordWork::sized_to_machine()),
            seal: crate::domain::second_factor::SealKey::derive(settings.secret_key.bytes()),
            passkey_rp: Arc::new(crate::domain::passkeys::RelyingParty::from_base_url(
                &settings.base_url,
            )),
            passkey_handles: crate::domain::passkeys::HandleKey::derive(
                settings.secret_key.bytes(),
            ),
            passkey_gate: Arc::new(crate::services::runtime::flood_gate::FloodGate::new(
                5, 20, 200, 400,
            )),
            sso_gate: Arc::new(crate::services::runtime::flood_gate::FloodGate::new(
                5, 20, 200, 400,
            )),
            sso: Arc::new(sso::Providers::new(settings.insecure_issuers.clone())),
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Password hashes and verifications run so far by this instance.
    pub fn password_work_done(&self) -> u64 {
        self.passwords.done()
    }

    /// Password hashes and verifications running now.
    pub fn password_work_in_flight(&self) -> usize {
        self.passwords.in_flight()
    }

    /// Forgets failed-attempt windows that ended (the periodic sweep's housekeeping).
    pub async fn purge_attempts(&self, now: OffsetDateTime) -> ServiceResult<usize> {
        let limiter = self.limiter.clone();
        self.rt.db.run(move |conn| limiter.purge(conn, now)).await
    }

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
        let now = self.rt.clock.now();
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
            .rt
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
        self.rt
            .db
            .run(move |conn| {
                limiter.succeeded(conn, &keys)?;
                Ok(finish(conn, user))
            })
            .await
            .unwrap_or_else(|e| Err(SignInError::Service(e)))
            .map_err(|e| match e {
                SignInError::Service(e) => SignInError::Service(self.rt.db.classify(e)),
                other => other,
            })
    }

    /// Signs in to the portal from `address`: the user and a new session id, or, for a
    /// person with a second factor, the step that asks for it (no session yet).
    #[tracing::instrument(skip_all)]
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        address: &str,
    ) -> Result<SignInStep, SignInError> {
        let now = self.rt.clock.now();
        self.limited(email, password, address, move |conn, user| {
            sign_in::sso_allows_password(conn, &user, now)?;
            if crate::repo::two_factor::factors(conn, user.id)?.any() {
                return Ok(SignInStep::SecondFactor(UserId::new(user.id)));
            }
            start_session(conn, user, now)
                .map(|(user, session)| SignInStep::Signed(Box::new(Person::from(user)), session))
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
        one_time_password: Option<&str>,
    ) -> Result<TokenPair, SignInError> {
        let now = self.rt.clock.now();
        let (user, second) = self
            .limited(email, password, address, move |conn, user| {
                sign_in::sso_allows_password(conn, &user, now)?;
                let second = crate::repo::two_factor::factors(conn, user.id)?;
                if !second.any()
                    && user.auth_type != crate::domain::AuthType::Sso
                    && Account::find(conn, user.account_id)?.is_some_and(|a| a.mfa_required)
                {
                    return Err(SignInError::SecondFactorNotSetUp);
                }
                Ok((user, second))
            })
            .await?;
        if second.passkeys && !second.totp {
            // A passkey answers a browser, not a script: such a person's scripts use tokens.
            return Err(SignInError::UsePasskey);
        }
        if second.totp {
            let code = one_time_password
                .filter(|c| !c.trim().is_empty())
                .ok_or(SignInError::SecondFactorRequired)?;
            self.check_second_factor(UserId::new(user.id), code, address)
                .await?;
        }
        let now = self.rt.clock.now();
        let keys = self.gateway.jwt_keys().clone();
        self.rt
            .db
            .run(move |conn| Ok(jwt_pairs::login(conn, &keys, user, now)))
            .await
            .unwrap_or_else(|e| Err(SignInError::Service(e)))
    }

    /// `POST /iam/auth/jwt/refresh`: each refresh token works once.
    #[tracing::instrument(skip_all)]
    pub async fn jwt_refresh(&self, refresh: String) -> Result<TokenPair, jwt_pairs::RefreshError> {
        let now = self.rt.clock.now();
        let keys = self.gateway.jwt_keys().clone();
        self.rt
            .db
            .run(move |conn| Ok(jwt_pairs::refresh(conn, &keys, &refresh, now)))
            .await?
            .map_err(|e| match e {
                jwt_pairs::RefreshError::Service(e) => {
                    jwt_pairs::RefreshError::Service(self.rt.db.classify(e))
                }
                other => other,
            })
    }

    /// The person behind a portal session, with what the navigation shows them.
    pub async fn signed_in(
        &self,
        session_id: String,
    ) -> ServiceResult<Option<(PortalUser, NavCounts)>> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                let Some(user) = session_user(conn, &session_id, now)? else {
                    return Ok(None);
                };
                let counts = NavCounts {
                    unread: Notice::unread_count(conn, user.user.id.get())?,
                    expiring_soon: expiring_soon_count(conn, &user.actor(), now)?,
                    webhooks_off: if user.role.is_admin() {
                        crate::repo::webhooks::Endpoint::turned_off_count(
                            conn,
                            user.account.id.get(),
                        )?
                    } else {
                        0
                    },
                };
                Ok(Some((user, counts)))
            })
            .await
    }

    #[tracing::instrument(skip_all)]
    /// "Sign out everywhere" (Profile → General): sessions and JWTs end, on this instance at
    /// once and on the others within the cache's second.
    #[tracing::instrument(skip(self))]
    pub async fn sign_out_everywhere(&self, user_id: UserId) -> ServiceResult<()> {
        self.rt
            .db
            .run(move |conn| sign_out_everywhere(conn, user_id.get()))
            .await?;
        self.gateway.forget_user(user_id);
        Ok(())
    }

    pub async fn sign_out(&self, session_id: String) -> ServiceResult<()> {
        self.rt
            .db
            .run(move |conn| sign_out(conn, &session_id))
            .await
    }
    /// A user as `actor` may see them (see `visible_user`).
    pub async fn user(&self, actor: Actor, id: UserId) -> ServiceResult<(Person, AccountInfo)> {
        self.rt
            .db
            .run(move |conn| visible_user(conn, &actor, id))
            .await
            .map(|(user, account)| (Person::from(user), AccountInfo::from(account)))
    }

    /// The account's users, Administrators only (see `account_users`).
    pub async fn account_users(
        &self,
        actor: Actor,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<UsersListing> {
        self.rt
            .db
            .run(move |conn| account_users(conn, &actor, limit, offset))
            .await
    }

    /// The account overview (see `account_overview`).
    pub async fn account_overview(
        &self,
        actor: Actor,
    ) -> ServiceResult<(AccountInfo, Option<String>, Vec<Person>)> {
        self.rt
            .db
            .run(move |conn| account_overview(conn, &actor))
            .await
    }
    /// The Users page (Administrators only): members filtered by `role`, the latest 50 events.
    pub async fn users_page(&self, actor: Actor, role: Option<Role>) -> ServiceResult<UsersPage> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                let members = list(conn, &actor, role, now)?;
                let events = events(conn, &actor, 50)?
                    .into_iter()
                    .map(|(e, who)| EventEntry {
                        at: from_naive(e.at),
                        who,
                        summary: e.summary,
                    })
                    .collect();
                Ok(UsersPage { members, events })
            })
            .await
    }

    /// Adds a user to the actor's account and sends the invitation (web page and API alike).
    #[tracing::instrument(skip(self, member), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn invite(&self, actor: Actor, member: NewMember) -> ServiceResult<Invited> {
        let now = self.rt.clock.now();
        let mail = self.notices.mail().clone();
        self.rt
            .db
            .run(move |conn| {
                let inv = invite(conn, &actor, &member, now)?;
                let Some(secret) = inv.setup_secret else {
                    return Ok(Invited {
                        user: Person::from(inv.user),
                        link: None,
                        mailed: Ok(()),
                        outbox: false,
                    });
                };
                let link = format!("{}/set-password?token={secret}", mail.base_url);
                let account = Account::find(conn, actor.account_id.get())?
                    .map(|a| a.name)
                    .unwrap_or_default();
                let inviter = User::find(conn, actor.user_id.get())?
                    .map(|u| u.display_name().to_owned())
                    .unwrap_or_default();
                let facts = InvitationMail {
                    recipient: Recipient {
                        name: inv.user.display_name().to_owned(),
                        email: inv.user.email.clone(),
                    },
                    account,
                    inviter,
                    link: link.clone(),
                };
                let mailed = invitation_message(&mail.from, &facts, &mail.base_url)
                    .and_then(|m| mail.mailer.send(&m));
                if let Err(e) = &mailed {
                    tracing::warn!(user_id = inv.user.id, error = %e, "invitation e-mail not sent");
                }
                Ok(Invited {
                    user: Person::from(inv.user),
                    link: Some(link),
                    mailed,
                    outbox: mail.mailer.outbox().is_some(),
                })
            })
            .await
    }

    /// Runs a change to a user and makes this instance's token cache forget the tokens it
    /// deleted, so they are refused from the next request: the one way every user change
    /// reaches the cache.
    async fn change_user(
        &self,
        target: UserId,
        change: impl FnOnce(&mut DbConn, OffsetDateTime) -> ServiceResult<Changed> + Send + 'static,
    ) -> ServiceResult<Changed> {
        let now = self.rt.clock.now();
        let changed = self.rt.db.run(move |conn| change(conn, now)).await?;
        self.gateway.forget_tokens(&changed.deleted_tokens);
        self.gateway.forget_user(target);
        Ok(changed)
    }

    /// Changes a user's role (see `change_role`); deleted tokens are forgotten by the cache.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn change_role(
        &self,
        actor: Actor,
        target: UserId,
        role: Role,
        delete_blocking: bool,
    ) -> ServiceResult<Changed> {
        self.change_user(target, move |conn, now| {
            change_role(conn, &actor, target, role, delete_blocking, now)
        })
        .await
    }

    /// Removes a user (see `remove`); deleted tokens are forgotten by the cache.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn remove_user(
        &self,
        actor: Actor,
        target: UserId,
        delete_tokens: bool,
    ) -> ServiceResult<Changed> {
        self.change_user(target, move |conn, now| {
            remove(conn, &actor, target, delete_tokens, now)
        })
        .await
    }

    /// Deletes every active token of a user at once.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn delete_user_tokens(&self, actor: Actor, target: UserId) -> ServiceResult<Changed> {
        self.change_user(target, move |conn, now| {
            delete_all_tokens(conn, &actor, target, now)
        })
        .await
    }

    /// `PATCH /iam/users/{id}` in one transaction.
    #[tracing::instrument(skip(self, update), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn update_user(
        &self,
        actor: Actor,
        target: UserId,
        update: UserUpdate,
    ) -> ServiceResult<(Person, AccountInfo)> {
        let now = self.rt.clock.now();
        let updated = self
            .rt
            .db
            .run(move |conn| update_user(conn, &actor, target, update, now))
            .await;
        self.gateway.forget_user(target);
        updated.map(|(user, account)| (Person::from(user), AccountInfo::from(account)))
    }
}
