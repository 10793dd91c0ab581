//! Signing in through an account's single sign-on: begun for an e-mail or an account (to the
//! OpenID provider, or to the SAML IdP with an AuthnRequest), ended by the provider's answer
//! (the person found, or added at first sign-in, and a portal session), every outcome of a
//! sign-in begun in this browser audited.

use diesel::Connection;
use time::OffsetDateTime;

use super::saml;
use super::sso::{open_secret, SsoFailure, SsoStart, Vouched, START_TTL_SECS};
use super::People;
use crate::domain::input::Email;
use crate::domain::token::to_naive;
use crate::domain::{sha256_hex, AccountId, AuthType, EventKind, Role};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::sso::{SsoConfig, UsedAssertion};
use crate::repo::{NewUser, User};
use crate::services::audit::{self, By, Entry};
use crate::services::vocabulary::Person;

/// A SAML response posted to an account's ACS, as the web layer read it.
#[derive(Debug)]
pub struct SamlPost {
    pub account_id: i64,
    pub response: String,
    /// Whether the posted `RelayState` was absent or a local path; `next`: that path.
    pub relay_state_local: bool,
    pub next: String,
}

impl People {
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
        let now = self.rt.clock.now();
        if config.protocol == "saml" {
            let metadata = config.idp_metadata.unwrap_or_default();
            let (url, request_id) =
                saml::authn_request(&metadata, self.sp_urls(config.account_id), &next)?;
            return Ok((
                url,
                SsoStart {
                    account_id: config.account_id,
                    protocol: "saml".into(),
                    state: request_id,
                    nonce: String::new(),
                    pkce_verifier: String::new(),
                    next,
                    started: now.unix_timestamp(),
                },
            ));
        }
        self.sso
            .begin(
                &config.issuer,
                &config.client_id,
                &self.sso_redirect_uri(),
                AccountId::new(config.account_id),
                next,
                now,
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
            .filter(|s| s.protocol.is_empty())
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
        self.audit_sso(account, &result, now).await;
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
        let config = self.sso_of(account, "oidc").await?;
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
            .run(move |conn| sso_person(conn, account, &vouched, jit, now, None))
            .await
            .map_err(|e| SsoFailure::Provider(e.to_string()))?
    }

    /// The account's SSO if it is set up with `protocol` (it may have changed since the
    /// sign-in began).
    async fn sso_of(&self, account: i64, protocol: &'static str) -> Result<SsoConfig, SsoFailure> {
        self.rt
            .db
            .run(move |conn| Ok(SsoConfig::find(conn, account)?))
            .await
            .map_err(|e| SsoFailure::Provider(e.to_string()))?
            .filter(|c| c.protocol == protocol)
            .ok_or(SsoFailure::NotSetUp)
    }

    /// Writes `sso.sign_in` or `sso.failed` (with the reason) for a sign-in begun in this
    /// browser (never for an anonymous post: that would let anyone write to an account's log).
    async fn audit_sso(
        &self,
        account: i64,
        result: &Result<(Person, String), SsoFailure>,
        now: OffsetDateTime,
    ) {
        let (kind, summary) = match result {
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
        let by = result.as_ref().ok().map(|(p, _)| p.id.get());
        let summary: String = crate::domain::text::escape_controls(&summary)
            .chars()
            .take(500)
            .collect();
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
                        summary: &summary,
                        token_id: None,
                        reason: None,
                    }],
                )
            })
            .await;
    }

    /// Ends a SAML sign-in with the IdP's response posted to `post.account_id`'s ACS: the
    /// response must answer the AuthnRequest this browser started (`start`, from its cookie),
    /// unless the account accepts IdP-initiated sign-in. The person and a new portal session
    /// (ending no later than the IdP's `SessionNotOnOrAfter`), and where to go.
    pub async fn finish_saml(
        &self,
        start: Option<SsoStart>,
        post: SamlPost,
        from: Option<std::net::IpAddr>,
    ) -> Result<(Person, String, String), SsoFailure> {
        let now = self.rt.clock.now();
        let account = post.account_id;
        let start = start.filter(|s| {
            let age = now.unix_timestamp() - s.started;
            s.protocol == "saml" && s.account_id == account && (0..=START_TTL_SECS).contains(&age)
        });
        if start.is_none() {
            // Anyone can post here: the flood gate before any XML work.
            self.sso_gate.admit(from).map_err(|_| SsoFailure::TooMany)?;
        }
        let next = match &start {
            Some(s) => s.next.clone(),
            None => post.next.clone(),
        };
        let result = self.finish_saml_checked(start.as_ref(), &post, now).await;
        if start.is_some() {
            self.audit_sso(account, &result, now).await;
        } else if let Err(f) = &result {
            tracing::info!(account, reason = %f.describe(), "an unsolicited SAML response was refused");
        }
        result.map(|(person, session)| (person, session, next))
    }

    async fn finish_saml_checked(
        &self,
        start: Option<&SsoStart>,
        post: &SamlPost,
        now: OffsetDateTime,
    ) -> Result<(Person, String), SsoFailure> {
        if !post.relay_state_local {
            return Err(SsoFailure::NotLocal);
        }
        let account = post.account_id;
        let config = self.sso_of(account, "saml").await?;
        let verified = saml::verify(
            config.idp_metadata.as_deref().unwrap_or_default(),
            self.sp_urls(account),
            config.idp_initiated,
            &post.response,
            start.map(|s| s.state.as_str()),
            now,
        )?;
        let jit = config.jit_role;
        let replay_key = sha256_hex(&format!("{}\n{}", verified.issuer, verified.assertion_id));
        self.rt
            .db
            .run(move |conn| {
                if !UsedAssertion::take(
                    conn,
                    &replay_key,
                    to_naive(verified.accept_until),
                    to_naive(now),
                )? {
                    return Ok(Err(SsoFailure::Replayed));
                }
                sso_person(
                    conn,
                    account,
                    &verified.vouched,
                    jit,
                    now,
                    verified.session_until,
                )
            })
            .await
            .map_err(|e| SsoFailure::Provider(e.to_string()))?
    }
}

/// The person the provider vouched for, in `account`: by e-mail, or SCIM `userName` (the
/// e-mail or the preferred user name); added as an SSO user with `jit` when unknown and the
/// account allows it. A new portal session for them, ending by `until` if it is sooner.
fn sso_person(
    conn: &mut crate::db::DbConn,
    account: i64,
    vouched: &Vouched,
    jit: Option<Role>,
    now: OffsetDateTime,
    until: Option<OffsetDateTime>,
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
    if until.is_some_and(|u| u <= now) {
        return Ok(Err(SsoFailure::Invalid(
            "the identity provider's session has already ended (SessionNotOnOrAfter)".into(),
        )));
    }
    match super::sign_in::start_session_until(conn, user, now, until) {
        Ok((user, session)) => Ok(Ok((Person::from(user), session))),
        Err(crate::services::vocabulary::SignInError::ApiOnly) => Ok(Err(SsoFailure::ApiOnly)),
        Err(crate::services::vocabulary::SignInError::Service(e)) => Err(e),
        Err(_) => Ok(Err(SsoFailure::ApiOnly)),
    }
}
