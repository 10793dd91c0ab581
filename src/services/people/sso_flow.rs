//! An account's single sign-on as the people's room keeps it: the configuration
//! (Administrators, audited) for OpenID Connect or SAML 2.0, and what the identity provider
//! needs from us. Signing in is `sso_sign_in`.

use diesel::Connection;

use super::saml::{self, SpUrls};
use super::sso::seal_secret;
use super::People;
use crate::domain::token::to_naive;
use crate::domain::{EventKind, Role};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::sso::SsoConfig;
use crate::services::audit;
use crate::services::vocabulary::Actor;

/// The protocol an account signs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoProtocol {
    Oidc,
    Saml,
}

impl SsoProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SsoProtocol::Oidc => "oidc",
            SsoProtocol::Saml => "saml",
        }
    }
}

/// An account's SSO as `GET .../sso` and the page show it (never the client secret).
#[derive(Debug, Clone)]
pub struct SsoView {
    pub enabled: bool,
    pub protocol: Option<SsoProtocol>,
    /// OIDC: the issuer; SAML: the IdP's entity id.
    pub issuer: String,
    pub client_id: String,
    /// SAML: the IdP's sign-on URL, its metadata, and whether IdP-initiated sign-in is on.
    pub idp_sso_url: String,
    pub idp_metadata: String,
    pub idp_initiated: bool,
    pub required: bool,
    pub jit_role: Option<Role>,
    /// What the provider needs from us, and the account's own sign-in link.
    pub redirect_uri: String,
    pub sp: SpUrls,
    pub sign_in_url: String,
}

/// A new configuration.
#[derive(Debug, Clone)]
pub struct SsoChange {
    pub protocol: SsoSetting,
    pub required: bool,
    pub jit_role: Option<Role>,
}

/// What each protocol is set up with.
#[derive(Debug, Clone)]
pub enum SsoSetting {
    /// `client_secret: None` keeps the one stored.
    Oidc {
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
    },
    /// The IdP's metadata XML; whether IdP-initiated sign-in is accepted.
    Saml {
        idp_metadata: String,
        idp_initiated: bool,
    },
}

impl People {
    pub fn sso_redirect_uri(&self) -> String {
        format!("{}/sso/oidc/callback", self.base_url)
    }

    pub(super) fn sp_urls(&self, account_id: i64) -> SpUrls {
        SpUrls::of(&self.base_url, account_id)
    }

    /// Our SAML service provider metadata for `account_id` (public: an Administrator gives it
    /// to their IdP before SSO is set up here).
    pub fn saml_sp_metadata(&self, account_id: i64) -> String {
        saml::sp_metadata(self.sp_urls(account_id))
    }

    fn sso_view(&self, account_id: i64, config: Option<SsoConfig>) -> SsoView {
        let sign_in_url = format!("{}/sso/start?account={account_id}", self.base_url);
        let mut view = SsoView {
            enabled: false,
            protocol: None,
            issuer: String::new(),
            client_id: String::new(),
            idp_sso_url: String::new(),
            idp_metadata: String::new(),
            idp_initiated: false,
            required: false,
            jit_role: None,
            redirect_uri: self.sso_redirect_uri(),
            sp: self.sp_urls(account_id),
            sign_in_url,
        };
        if let Some(c) = config {
            view.enabled = true;
            view.required = c.required;
            view.jit_role = c.jit_role;
            view.issuer = c.issuer;
            if c.protocol == "saml" {
                view.protocol = Some(SsoProtocol::Saml);
                view.idp_sso_url = c.client_id;
                view.idp_metadata = c.idp_metadata.unwrap_or_default();
                view.idp_initiated = c.idp_initiated;
            } else {
                view.protocol = Some(SsoProtocol::Oidc);
                view.client_id = c.client_id;
            }
        }
        view
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

    /// Sets the account's SSO (Administrators). OIDC: the issuer is checked (https, or listed
    /// by the operator) and its discovery document fetched first, so a typo is caught here
    /// rather than at everyone's next sign-in. SAML: the metadata must name an entity, an
    /// HTTP-Redirect sign-on URL and a signing certificate. Audited.
    pub async fn set_sso(&self, actor: Actor, change: SsoChange) -> ServiceResult<SsoView> {
        actor.require_admin()?;
        let mut problems = vec![];
        if change.jit_role.is_some_and(|r| !actor.role.may_issue(r)) {
            problems.push((
                "jit_role",
                "People added at first sign-in can't get a role above your own.".into(),
            ));
        }
        let account = actor.account_id.get();
        let now = self.rt.clock.now();
        // (protocol, issuer, client id, a new secret to seal, metadata, IdP-initiated)
        let fields = match change.protocol {
            SsoSetting::Oidc {
                issuer,
                client_id,
                client_secret,
            } => {
                let issuer = issuer.trim().trim_end_matches('/').to_owned();
                let client_id = client_id.trim().to_owned();
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
                if client_secret.as_ref().is_some_and(|s| s.len() > 2000) {
                    problems.push((
                        "client_secret",
                        "A client secret is at most 2,000 characters.".into(),
                    ));
                }
                if !problems.is_empty() {
                    return Err(ServiceError::Invalid(problems));
                }
                if let Err(e) = self.sso.metadata(&issuer).await {
                    return Err(ServiceError::invalid("issuer", e.describe()));
                }
                let sealed = client_secret
                    .filter(|s| !s.is_empty())
                    .map(|s| seal_secret(&self.seal, &s));
                (SsoProtocol::Oidc, issuer, client_id, sealed, None, false)
            }
            SsoSetting::Saml {
                idp_metadata,
                idp_initiated,
            } => match saml::read_metadata(&idp_metadata, self.sso.insecure()) {
                Ok(idp) if problems.is_empty() => (
                    SsoProtocol::Saml,
                    idp.entity_id,
                    idp.sso_url,
                    Some(String::new()),
                    Some(idp_metadata.trim().to_owned()),
                    idp_initiated,
                ),
                Ok(_) => return Err(ServiceError::Invalid(problems)),
                Err(m) => {
                    problems.push(("idp_metadata", m));
                    return Err(ServiceError::Invalid(problems));
                }
            },
        };
        let (protocol, issuer, client_id, sealed, idp_metadata, idp_initiated) = fields;
        let config = self
            .rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let old = SsoConfig::find(conn, account)?;
                    let sealed = match (sealed, old) {
                        (Some(s), _) => s,
                        (None, Some(old)) if old.protocol == "oidc" => old.client_secret_sealed,
                        (None, _) => {
                            return Err(ServiceError::invalid(
                                "client_secret",
                                "Enter the client secret the identity provider gave this app.",
                            ))
                        }
                    };
                    let config = SsoConfig {
                        account_id: account,
                        protocol: protocol.name().into(),
                        issuer: issuer.clone(),
                        client_id,
                        client_secret_sealed: sealed,
                        required: change.required,
                        jit_role: change.jit_role,
                        updated_at: to_naive(now),
                        idp_metadata,
                        idp_initiated,
                    };
                    SsoConfig::put(conn, &config)?;
                    let summary = format!(
                        "Set single sign-on ({}) to {issuer}{}{}{}",
                        match protocol {
                            SsoProtocol::Oidc => "OpenID Connect",
                            SsoProtocol::Saml => "SAML",
                        },
                        if change.required {
                            ", required for everyone"
                        } else {
                            ""
                        },
                        change
                            .jit_role
                            .map(|r| format!(", new people join as {}", r.name()))
                            .unwrap_or_default(),
                        if idp_initiated {
                            ", IdP-initiated sign-in on"
                        } else {
                            ""
                        }
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
}
