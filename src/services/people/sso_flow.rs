//! Single sign-on as the people's room does it: an account's configuration (Administrators,
//! audited), a sign-in begun for an e-mail or an account, its end (the person found, or added
//! at first sign-in, and a portal session), and "SSO required" for password sign-ins.

use diesel::Connection;
use time::OffsetDateTime;

use super::sso::{open_secret, seal_secret, SsoFailure, SsoStart, Vouched, START_TTL_SECS};
use super::People;
use crate::domain::input::Email;
use crate::domain::token::to_naive;
use crate::domain::{AccountId, AuthType, EventKind, Role};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::sso::SsoConfig;
use crate::repo::{NewUser, User};
use crate::services::audit::{self, By, Entry};
use crate::services::vocabulary::{Actor, Person};

/// An account's SSO as `GET .../sso` and the page show it (never the client secret).
#[derive(Debug, Clone)]
pub struct SsoView {
    pub enabled: bool,
    pub issuer: String,
    pub client_id: String,
    pub required: bool,
    pub jit_role: Option<Role>,
    /// What the provider needs from us, and the account's own sign-in link.
    pub redirect_uri: String,
    pub sign_in_url: String,
}

/// A new configuration; `client_secret: None` keeps the one stored.
#[derive(Debug, Clone)]
pub struct SsoChange {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub required: bool,
    pub jit_role: Option<Role>,
}

impl People {
    pub fn sso_redirect_uri(&self) -> String {
        format!("{}/sso/oidc/callback", self.base_url)
    }

    fn sso_view(&self, account_id: i64, config: Option<SsoConfig>) -> SsoView {
        let sign_in_url = format!("{}/sso/start?account={account_id}", self.base_url);
        match config {
            Some(c) => SsoView {
                enabled: true,
                issuer: c.issuer,
                client_id: c.client_id,
                required: c.required,
                jit_role: c.jit_role,
                redirect_uri: self.sso_redirect_uri(),
                sign_in_url,
            },
            None => SsoView {
                enabled: false,
                issuer: String::new(),
                client_id: String::new(),
                required: false,
                jit_role: None,
                redirect_uri: self.sso_redirect_uri(),
                sign_in_url,
            },
        }
    }

    /// The account's SSO (Administrators).
    pub async fn sso_config(&self, actor: Actor) -> ServiceResult<SsoView> {
        actor.require_admin()?;
        let account = actor.account_id.get();
        let config = self
            .rt
            .db
            .run(move |conn| Ok(SsoConfig::find(conn, account)?))
            .await?;
        Ok(self.sso_view(account, config))
    }

    /// Sets the account's SSO (Administrators): the issuer is checked (https, or listed by the
    /// operator) and its discovery document fetched first, so a typo is caught here rather
    /// than at everyone's next sign-in. Audited.
    pub async fn set_sso(&self, actor: Actor, change: SsoChange) -> ServiceResult<SsoView> {
        actor.require_admin()?;
        let issuer = change.issuer.trim().trim_end_matches('/').to_owned();
        let client_id = change.client_id.trim().to_owned();
        let mut problems = vec![];
        if let Err(m) = self.sso.check_issuer(&issuer) {
            problems.push(("issuer", m));
        }
        if client_id.is_empty() || client_id.len() > 500 {
            problems.push((
                "client_id",
                "Enter the client id the identity provider gave this app (at most 500 characters)."
                    .into(),
            ));
        }
        if change
            .client_secret
            .as_ref()
            .is_some_and(|s| s.len() > 2000)
        {
            problems.push((
                "client_secret",
                "A client secret is at most 2,000 characters.".into(),
            ));
        }
        if change.jit_role.is_some_and(|r| !actor.role.may_issue(r)) {
            problems.push((
                "jit_role",
                "People added at first sign-in can't get a role above your own.".into(),
            ));
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        if let Err(e) = self.sso.metadata(&issuer).await {
            return Err(ServiceError::invalid("issuer", e.describe()));
        }
        let account = actor.account_id.get();
        let now = self.rt.clock.now();
        let key = self.seal.clone();
        let config =
            self.rt
                .db
                .run(move |conn| {
                    conn.transaction(|conn| {
                        let sealed =
                            match (&change.client_secret, SsoConfig::find(conn, account)?) {
                                (Some(s), _) if !s.is_empty() => seal_secret(&key, s),
                                (_, Some(old)) => old.client_secret_sealed,
                                (_, None) => return Err(ServiceError::invalid(
                                    "client_secret",
                                    "Enter the client secret the identity provider gave this app.",
                                )),
                            };
                        let config = SsoConfig {
                            account_id: account,
                            protocol: "oidc".into(),
                            issuer: issuer.clone(),
                            client_id,
                            client_secret_sealed: sealed,
                            required: change.required,
                            jit_role: change.jit_role,
                            updated_at: to_naive(now),
                        };
                        SsoConfig::put(conn, &config)?;
                        let summary = format!(
                            "Set single sign-on (OpenID Connect) to {issuer}{}{}",
                            if change.required {
                                ", required for everyone"
                            } else {
                                ""
                            },
                            change
                                .jit_role
                                .map(|r| format!(", new people join as {}", r.name()))
                                .unwrap_or_default()
                        );
                        audit::record(conn, &actor, now, EventKind::SsoConfigured, &summary, None)?;
                        Ok(config)
                    })
                })
                .await?;
        Ok(self.sso_view(account, Some(config)))
    }

    /// Turns the account's SSO off (Administrators), audited.
    pub async fn delete_sso(&self, actor: Actor) -> ServiceResult<bool> {
        actor.require_admin()?;
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let was = SsoConfig::delete(conn, actor.account_id.get())?;
                    if was {
                        audit::record(
                            conn,
                            &actor,
                            now,
                            EventKind::SsoConfigured,
                            "Turned single sign-on off",
                            None,
                        )?;
                    }
                    Ok(was)
                })
            })
            .await
    }

    /// Begins a sign-in through the SSO of `account`, or of the account of the person with
    /// `email`: the provider's URL to send the browser to, and the state to keep in its cookie.
    pub async fn begin_sso(
        &self,
        email: Option<&str>,
        account: Option<AccountId>,
        next: String,
        from: Option<std::net::IpAddr>,
    ) -> Result<(String, SsoStart), SsoFailure> {
        self.sso_gate.admit(from).map_err(|_| SsoFailure::TooMany)?;
        let login = email.map(Email::normal_form);
        let config = self
            .rt
            .db
            .run(move |conn| {
                let account = match (account, login) {
                    (Some(a), _) => Some(a.get()),
                    (None, Some(login)) => User::find_by_email(conn, &login)?
                        .filter(|u| u.removed_at.is_none())
                        .map(|u| u.account_id),
                    (None, None) => None,
                };
                Ok(match account {
                    Some(a) => SsoConfig::find(conn, a)?,
                    None => None,
                })
            })
            .await
            .map_err(|e| SsoFailure::Provider(e.to_string()))?
            .ok_or(SsoFailure::NotSetUp)?;
        self.sso
            .begin(
                &config.issuer,
                &config.client_id,
                &self.sso_redirect_uri(),
                AccountId::new(config.account_id),
                next,
                self.rt.clock.now(),
            )
            .await
    }

    /// Ends a sign-in begun in this browser (`start`, from its cookie) with the provider's
    /// answer: the person and a new portal session. Every outcome with an account is audited
    /// (`sso.sign_in`, or `sso.failed` with the reason).
    pub async fn finish_sso(
        &self,
        start: Option<SsoStart>,
        state: &str,
        code: Option<String>,
        provider_error: Option<String>,
    ) -> Result<(Person, String, String), SsoFailure> {
        let now = self.rt.clock.now();
        let start = start
            .filter(|s| {
                let age = now.unix_timestamp() - s.started;
                (0..=START_TTL_SECS).contains(&age)
                    && bool::from(subtle::ConstantTimeEq::ct_eq(
                        s.state.as_bytes(),
                        state.as_bytes(),
                    ))
            })
            .ok_or(SsoFailure::NotStartedHere)?;
        let account = start.account_id;
        let result = self
            .finish_sso_checked(&start, code, provider_error, now)
            .await;
        let (kind, summary) = match &result {
            Ok((person, _)) => (
                EventKind::SsoSignIn,
                format!(
                    "{} <{}> signed in with single sign-on",
                    person.name, person.email
                ),
            ),
            Err(f) => (
                EventKind::SsoFailed,
                format!("A single sign-on failed: {}", f.describe()),
            ),
        };
        let (by, summary_owned) = (
            result.as_ref().ok().map(|(p, _)| p.id.get()),
            crate::domain::text::escape_controls(&summary)
                .chars()
                .take(500)
                .collect::<String>(),
        );
        let _ = self
            .rt
            .db
            .run(move |conn| {
                audit::write(
                    conn,
                    &[Entry {
                        account_id: account,
                        by: by.map(By::Person).unwrap_or(By::System),
                        at: now,
                        kind,
                        summary: &summary_owned,
                        token_id: None,
                        reason: None,
                    }],
                )
            })
            .await;
        result.map(|(person, session)| (person, session, start.next))
    }

    async fn finish_sso_checked(
        &self,
        start: &SsoStart,
        code: Option<String>,
        provider_error: Option<String>,
        now: OffsetDateTime,
    ) -> Result<(Person, String), SsoFailure> {
        if let Some(e) = provider_error {
            return Err(SsoFailure::Refused(e.chars().take(200).collect()));
        }
        let code = code
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| SsoFailure::Invalid("no code came back".into()))?;
        let account = start.account_id;
        let config = self
            .rt
            .db
            .run(move |conn| Ok(SsoConfig::find(conn, account)?))
            .await
            .map_err(|e| SsoFailure::Provider(e.to_string()))?
            .ok_or(SsoFailure::NotSetUp)?;
        let secret = open_secret(&self.seal, &config.client_secret_sealed).ok_or_else(|| {
            SsoFailure::Provider(
                "the stored client secret doesn't open with this installation's key".into(),
            )
        })?;
        let vouched = self
            .sso
            .finish(
                &config.issuer,
                &config.client_id,
                secret,
                &self.sso_redirect_uri(),
                start,
                code,
            )
            .await?;
        let jit = config.jit_role;
        self.rt
            .db
            .run(move |conn| sso_person(conn, account, &vouched, jit, now))
            .await
            .map_err(|e| SsoFailure::Provider(e.to_string()))?
    }
}

/// The person the provider vouched for, in `account`: by e-mail, or SCIM `userName` (the
/// e-mail or the preferred user name); added as an SSO user with `jit` when unknown and the
/// account allows it. A new portal session for them.
fn sso_person(
    conn: &mut crate::db::DbConn,
    account: i64,
    vouched: &Vouched,
    jit: Option<Role>,
    now: OffsetDateTime,
) -> ServiceResult<Result<(Person, String), SsoFailure>> {
    let not_a_person = || Ok(Err(SsoFailure::NotAPerson(vouched.who())));
    let by_email = match &vouched.email {
        Some(e) => User::find_by_email(conn, &Email::normal_form(e))?,
        None => None,
    };
    let user = match by_email {
        Some(u) if u.account_id != account => return not_a_person(),
        Some(u) => Some(u),
        None => {
            let mut found = None;
            for name in [
                vouched.email.as_deref(),
                vouched.preferred_username.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(u) = User::find_by_user_name(conn, account, name)? {
                    found = Some(u);
                    break;
                }
            }
            found
        }
    };
    let user = match (user, jit, &vouched.email) {
        (Some(u), _, _) if u.removed_at.is_some() => return not_a_person(),
        (Some(u), _, _) => u,
        (None, Some(role), Some(email)) => {
            let Ok(email) = Email::parse(email) else {
                return not_a_person();
            };
            let name: String = vouched
                .name
                .clone()
                .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("").to_owned())
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
            conn.transaction(|conn| {
                let user = User::insert(
                    conn,
                    &NewUser {
                        account_id: account,
                        email: email.as_str(),
                        name: &name,
                        password_hash: None,
                        role,
                        auth_type: AuthType::Sso,
                        created_at: to_naive(now),
                    },
                )?;
                let summary = format!(
                    "{} <{}> joined as {} at their first single sign-on",
                    user.display_name(),
                    user.email,
                    role.name()
                );
                audit::record_system(conn, account, now, EventKind::UserAdded, &summary, None)?;
                Ok::<_, ServiceError>(user)
            })?
        }
        (None, _, _) => return not_a_person(),
    };
    match super::sign_in::start_session(conn, user, now) {
        Ok((user, session)) => Ok(Ok((Person::from(user), session))),
        Err(crate::services::vocabulary::SignInError::ApiOnly) => Ok(Err(SsoFailure::ApiOnly)),
        Err(crate::services::vocabulary::SignInError::Service(e)) => Err(e),
        Err(_) => Ok(Err(SsoFailure::ApiOnly)),
    }
}
