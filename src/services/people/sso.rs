//! Single sign-on with OpenID Connect (issue 26): an account's Administrators point it at
//! their identity provider; its people then sign in there and come back with an ID token,
//! which `openidconnect` checks (issuer, audience, expiry, nonce, signature by the issuer's
//! JWKS). The flow is the authorization code flow with PKCE (S256), `state` and `nonce`; its
//! state rides in the sealed session cookie (`SsoStart`), so any instance finishes it and the
//! cookie binds it to the browser that started it. The provider's documents are fetched with
//! a 5-second timeout, no redirects followed, and kept for ten minutes per issuer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::second_factor::SealKey;

/// How long a sign-in may spend at the provider.
pub const START_TTL_SECS: i64 = 600;
/// How long a provider's discovery document (and keys) are kept.
const DISCOVERY_TTL: StdDuration = StdDuration::from_secs(600);
/// Longest wait for the provider.
const PROVIDER_TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// A sign-in begun: what the callback needs, kept in the sealed session cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SsoStart {
    pub account_id: i64,
    /// `"saml"` for a SAML sign-in (then `state` is the AuthnRequest's ID); empty: OIDC.
    #[serde(default)]
    pub protocol: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
    pub started: i64,
}

/// Why a single sign-on didn't work, in words a person can pass to their IT team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoFailure {
    /// No SSO for that address or account.
    NotSetUp,
    /// The provider can't be reached or answered something that isn't OpenID Connect.
    Provider(String),
    /// The answer doesn't belong to a sign-in this browser started (state, cookie, age).
    NotStartedHere,
    /// The provider said no (the person cancelled, or isn't assigned to the app).
    Refused(String),
    /// The ID token or the SAML response didn't hold (signature, issuer, audience, expiry,
    /// nonce, request) or the code didn't exchange.
    Invalid(String),
    /// The provider vouched for someone who isn't a person of this account.
    NotAPerson(String),
    /// The person may not use the portal (an API-only role).
    ApiOnly,
    /// Too many sign-ins started from this address (or everywhere) just now.
    TooMany,
    /// This SAML assertion was accepted before (here or on another instance).
    Replayed,
    /// The return address isn't a page of this site.
    NotLocal,
}

impl SsoFailure {
    /// The reason, as the audit trail and the failure page put it.
    pub fn describe(&self) -> String {
        match self {
            SsoFailure::NotSetUp => "Single sign-on isn't set up for that address or account.".into(),
            SsoFailure::Provider(d) => format!("The identity provider couldn't be reached or its settings here don't work ({d})."),
            SsoFailure::NotStartedHere => "This answer doesn't belong to a sign-in started in this browser (it was started elsewhere, used already, or is more than 10 minutes old). Start again.".into(),
            SsoFailure::Refused(d) => format!("The identity provider refused the sign-in ({d})."),
            SsoFailure::Invalid(d) => format!("The identity provider's answer didn't pass our checks ({d})."),
            SsoFailure::NotAPerson(who) => format!("The identity provider signed in {who}, who isn't a person of this account here. An Administrator can add them, or let new people in at first sign-in."),
            SsoFailure::ApiOnly => "Your role works through the API only: it can't sign in to the portal.".into(),
            SsoFailure::Replayed => "This sign-in answer was used already (each works once). Start again.".into(),
            SsoFailure::NotLocal => "The address to return to after signing in isn't a page of this site, so we stopped.".into(),
            SsoFailure::TooMany => "Too many single sign-ons were started from here just now. Wait a few seconds and try again.".into(),
        }
    }
}

/// The discovery documents of the providers in use, with the HTTP client that fetches them.
pub struct Providers {
    http: openidconnect::reqwest::Client,
    cache: Mutex<HashMap<String, (CoreProviderMetadata, Instant)>>,
    /// Issuers an operator allows over plain `http` (`APITOKENS_INSECURE_ISSUERS`; tests).
    insecure: Vec<String>,
}

impl Providers {
    pub fn new(insecure: Vec<String>) -> Providers {
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .build()
            .expect("an HTTP client with no special settings builds");
        Providers {
            http,
            cache: Mutex::default(),
            insecure: insecure
                .into_iter()
                .map(|i| i.trim().trim_end_matches('/').to_owned())
                .filter(|i| !i.is_empty())
                .collect(),
        }
    }

    /// The issuers an operator allows over plain `http`.
    pub fn insecure(&self) -> &[String] {
        &self.insecure
    }

    /// Whether `issuer` may be used: `https`, or listed by the operator.
    pub fn check_issuer(&self, issuer: &str) -> Result<(), String> {
        let issuer = issuer.trim_end_matches('/');
        let url = url_of(issuer).ok_or_else(|| {
            "Enter the issuer as a URL, like https://login.example.com.".to_string()
        })?;
        if url.scheme() == "https" || self.insecure.iter().any(|i| i == issuer) {
            Ok(())
        } else {
            Err("The issuer must be an https:// URL (plain http only for issuers the operator lists in APITOKENS_INSECURE_ISSUERS).".into())
        }
    }

    /// The issuer's discovery document (cached), checked: its issuer is the one asked for, and
    /// its endpoints are `https` unless the issuer is allowed over `http`.
    pub async fn metadata(&self, issuer: &str) -> Result<CoreProviderMetadata, SsoFailure> {
        let issuer = issuer.trim_end_matches('/').to_owned();
        if let Some((m, at)) = self.cache.lock().expect("cache lock").get(&issuer) {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(m.clone());
            }
        }
        self.check_issuer(&issuer).map_err(SsoFailure::Provider)?;
        let url =
            IssuerUrl::new(issuer.clone()).map_err(|e| SsoFailure::Provider(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(url, &self.http)
            .await
            .map_err(|e| SsoFailure::Provider(error_chain(&e)))?;
        let secure = |u: &str| {
            url_of(u).is_some_and(|u| u.scheme() == "https") || self.insecure.contains(&issuer)
        };
        if !secure(metadata.authorization_endpoint().as_str())
            || !secure(metadata.jwks_uri().as_str())
            || metadata
                .token_endpoint()
                .is_some_and(|t| !secure(t.as_str()))
        {
            return Err(SsoFailure::Provider("its endpoints must be https".into()));
        }
        self.cache
            .lock()
            .expect("cache lock")
            .insert(issuer, (metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    /// Forgets the issuer's documents (its keys may have rotated).
    pub fn forget(&self, issuer: &str) {
        self.cache
            .lock()
            .expect("cache lock")
            .remove(issuer.trim_end_matches('/'));
    }

    /// The provider's authorization URL for a new sign-in, and what the callback will need.
    pub async fn begin(
        &self,
        issuer: &str,
        client_id: &str,
        redirect_uri: &str,
        account_id: crate::domain::AccountId,
        next: String,
        now: OffsetDateTime,
    ) -> Result<(String, SsoStart), SsoFailure> {
        let metadata = self.metadata(issuer).await?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| SsoFailure::Provider(e.to_string()))?;
        let client =
            CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.to_owned()), None)
                .set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok((
            url.to_string(),
            SsoStart {
                account_id: account_id.get(),
                protocol: String::new(),
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                next,
                started: now.unix_timestamp(),
            },
        ))
    }

    /// Exchanges the code and checks the ID token: the e-mail (or, without one, the subject)
    /// and the name the provider vouches for.
    pub async fn finish(
        &self,
        issuer: &str,
        client_id: &str,
        client_secret: String,
        redirect_uri: &str,
        start: &SsoStart,
        code: String,
    ) -> Result<Vouched, SsoFailure> {
        let metadata = self.metadata(issuer).await?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| SsoFailure::Provider(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.to_owned()),
            Some(ClientSecret::new(client_secret)),
        )
        .set_redirect_uri(redirect);
        let exchange = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SsoFailure::Provider(error_chain(&e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(start.pkce_verifier.clone()));
        let tokens = exchange.request_async(&self.http).await.map_err(|e| {
            SsoFailure::Invalid(format!(
                "the code didn't exchange for tokens: {}",
                error_chain(&e)
            ))
        })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoFailure::Invalid("no ID token came with the code".into()))?;
        let verifier = client.id_token_verifier();
        let claims = match id_token.claims(&verifier, &Nonce::new(start.nonce.clone())) {
            Ok(c) => c.clone(),
            Err(e) => {
                // An unknown key may be a rotation: fetch the documents again next time.
                self.forget(issuer);
                return Err(SsoFailure::Invalid(format!(
                    "the ID token: {}",
                    error_chain(&e)
                )));
            }
        };
        if claims.email_verified() == Some(false) {
            return Err(SsoFailure::Invalid(
                "the provider says the e-mail isn't verified".into(),
            ));
        }
        Ok(Vouched {
            email: claims.email().map(|e| e.as_str().to_owned()),
            subject: claims.subject().as_str().to_owned(),
            preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
        })
    }
}

/// Who the provider vouched for.
#[derive(Debug, Clone)]
pub struct Vouched {
    pub email: Option<String>,
    pub subject: String,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
}

impl Vouched {
    /// How the failure page and the audit trail name them.
    pub fn who(&self) -> String {
        self.email
            .clone()
            .unwrap_or_else(|| format!("subject {}", self.subject))
    }
}

fn url_of(text: &str) -> Option<openidconnect::url::Url> {
    openidconnect::url::Url::parse(text)
        .ok()
        .filter(|u| u.host_str().is_some())
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(300).collect()
}

/// Seals and opens client secrets (the TOTP seeds' key: both must be read back).
pub fn seal_secret(key: &SealKey, secret: &str) -> String {
    key.seal(secret.as_bytes())
}

pub fn open_secret(key: &SealKey, sealed: &str) -> Option<String> {
    key.open(sealed).and_then(|b| String::from_utf8(b).ok())
}

pub type SharedProviders = Arc<Providers>;
