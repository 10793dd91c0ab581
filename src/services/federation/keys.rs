//! The signing keys of the issuers that trust policies name: the discovery document
//! (`<issuer>/.well-known/openid-configuration`) gives `jwks_uri`, which gives the keys. Kept
//! ten minutes per issuer; a JWT whose `kid` isn't in the set fetches it again (the issuer
//! rolled its keys), at most once per ten seconds per issuer, so a flood of made-up `kid`s
//! costs the issuer one request per ten seconds. 5-second timeouts, no redirects followed,
//! 256 KB at most per document; only issuers a policy names are ever fetched (the policy is
//! looked up first), so a stranger's JWT can't make us fetch anything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};

const KEYS_TTL: Duration = Duration::from_secs(600);
const REFETCH_GAP: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT: usize = 256 * 1024;

/// Why no key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The issuer or its JWKS couldn't be fetched or read (worth a retry).
    Unreachable(String),
    /// The set has no key with that `kid` even after fetching it again.
    UnknownKey(String),
}

#[derive(Clone)]
struct Entry {
    set: std::sync::Arc<JwkSet>,
    fetched: Instant,
    /// When a `kid` that wasn't there last made us fetch again.
    refetched_for_unknown: Option<Instant>,
}

/// The keys of the issuers in use, with the HTTP client that fetches them.
pub struct Keys {
    http: reqwest::Client,
    entries: Mutex<HashMap<String, Entry>>,
    insecure: Vec<String>,
    fetches: std::sync::atomic::AtomicU64,
}

impl Keys {
    pub fn new(insecure: Vec<String>) -> Keys {
        // Issuers are chosen by Administrators, not operators: their keys are fetched from
        // public addresses only, unless the operator lists the issuer as insecure (tests and
        // in-house issuers on loopback or a private network).
        let allow_hosts: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
            insecure
                .iter()
                .filter_map(|i| url::Url::parse(i).ok()?.host_str().map(str::to_owned))
                .collect(),
        );
        let http = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(
                crate::services::runtime::guarded_dns::GuardedResolver::new(allow_hosts),
            ))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .expect("an HTTP client with no special settings builds");
        Keys {
            http,
            entries: Mutex::default(),
            insecure,
            fetches: Default::default(),
        }
    }

    /// The issuers allowed over plain http (`APITOKENS_INSECURE_ISSUERS`).
    pub fn insecure(&self) -> &[String] {
        &self.insecure
    }

    /// How many times key sets were fetched (for tests and the flood question).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The issuer's key for `kid` (or its only key when the JWT names none).
    pub async fn key(&self, issuer: &str, kid: Option<&str>) -> Result<Jwk, KeyError> {
        let cached = self.entries.lock().expect("keys lock").get(issuer).cloned();
        let unknown_refetch = match &cached {
            Some(e) if e.fetched.elapsed() < KEYS_TTL => {
                if let Some(k) = pick(&e.set, kid) {
                    return Ok(k);
                }
                if e.refetched_for_unknown
                    .is_some_and(|at| at.elapsed() < REFETCH_GAP)
                {
                    return Err(unknown(kid));
                }
                // Claim the refetch before the await, so a burst of unknown kids sends one.
                if let Some(e) = self.entries.lock().expect("keys lock").get_mut(issuer) {
                    e.refetched_for_unknown = Some(Instant::now());
                }
                true
            }
            _ => false,
        };
        let set = self.fetch(issuer).await?;
        let key = pick(&set, kid);
        self.entries.lock().expect("keys lock").insert(
            issuer.to_owned(),
            Entry {
                set: std::sync::Arc::new(set),
                fetched: Instant::now(),
                refetched_for_unknown: unknown_refetch.then(Instant::now),
            },
        );
        key.ok_or_else(|| unknown(kid))
    }

    async fn fetch(&self, issuer: &str) -> Result<JwkSet, KeyError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let discovery: serde_json::Value = self
            .get_json(&format!("{issuer}/.well-known/openid-configuration"))
            .await?;
        if discovery.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(KeyError::Unreachable(
                "its discovery document names another issuer".into(),
            ));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                KeyError::Unreachable("its discovery document has no jwks_uri".into())
            })?;
        let secure = url::Url::parse(jwks_uri).is_ok_and(|u| u.scheme() == "https")
            || self.insecure.iter().any(|i| i == issuer);
        if !secure {
            return Err(KeyError::Unreachable("its jwks_uri must be https".into()));
        }
        let set: JwkSet = self.get_json(jwks_uri).await?;
        Ok(set)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, KeyError> {
        let parsed = url::Url::parse(url)
            .map_err(|_| KeyError::Unreachable(format!("{url} isn't a URL")))?;
        // A listed issuer's own origin (host and port) may be private; nothing else may.
        let listed = self
            .insecure
            .iter()
            .any(|i| url::Url::parse(i).is_ok_and(|i| i.origin() == parsed.origin()));
        if let Some(why) = (!listed)
            .then(|| crate::services::runtime::guarded_dns::refused_literal(&parsed, &[]))
            .flatten()
        {
            return Err(KeyError::Unreachable(format!("{url}: refused, {why}")));
        }
        let mut response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| KeyError::Unreachable(format!("{url}: {}", short(&e))))?;
        if !response.status().is_success() {
            return Err(KeyError::Unreachable(format!(
                "{url} answered {}",
                response.status().as_u16()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| KeyError::Unreachable(format!("{url}: {}", short(&e))))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(KeyError::Unreachable(format!("{url}: larger than 256 KB")));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|_| KeyError::Unreachable(format!("{url} isn't the JSON expected")))
    }
}

fn short(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "can't connect".into()
    } else {
        "request failed".into()
    }
}

fn unknown(kid: Option<&str>) -> KeyError {
    KeyError::UnknownKey(match kid {
        Some(k) => format!(
            "the issuer has no key with kid {:?}",
            k.chars().take(64).collect::<String>()
        ),
        None => "the JWT names no kid and the issuer has more than one key".into(),
    })
}

fn pick(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(k) => set.find(k).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}
