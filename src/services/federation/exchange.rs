//! `POST /iam/auth/token-exchange` (RFC 8693): a CI job's OIDC JWT becomes a short-lived token
//! of a service account, when a trust policy of some account accepts it. The order keeps a
//! stranger's cost low: shape and algorithm offline, then one indexed read of the policies
//! naming the JWT's (unverified) issuer, and only then the issuer's keys and the signature;
//! claims, audience and conditions are read only from the verified JWT.

use std::collections::BTreeMap;

use base64::Engine;
use diesel::Connection;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use super::keys::KeyError;
use crate::db::DbConn;
use crate::domain::federation::{
    first_unmet, GRANT_TYPE, LEEWAY_SECONDS, MAX_SUBJECT_TOKEN_LEN, SUBJECT_TOKEN_TYPE_ID_TOKEN,
    SUBJECT_TOKEN_TYPE_JWT,
};
use crate::domain::secret::Secret;
use crate::domain::token::to_naive;
use crate::domain::{AuthType, EventKind, TokenId};
use crate::error::ServiceError;
use crate::repo::machines::{TokenExchange, TrustPolicyRow, MAX_POLICIES_PER_ISSUER};
use crate::repo::{Account, NewToken, User};
use crate::services::audit;

/// Why an exchange was refused, in RFC 6749 §5.2's words; the text is for the engineer.
#[derive(Debug)]
pub enum Refusal {
    /// `unsupported_grant_type`
    GrantType(String),
    /// `invalid_request`: the form is wrong.
    Request(String),
    /// `invalid_grant`: the JWT isn't one we accept.
    Grant(String),
    /// `invalid_target`: more than one policy would take it.
    Target(String),
    /// `temporarily_unavailable`: the issuer's keys couldn't be fetched (retry).
    Unavailable(String),
    Service(ServiceError),
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Refusal {
        Refusal::Service(e)
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(e: diesel::result::Error) -> Refusal {
        Refusal::Service(e.into())
    }
}

/// The form an exchange arrives as.
#[derive(Debug, Default, Clone)]
pub struct ExchangeRequest {
    pub grant_type: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
}

/// A token minted by an exchange.
#[derive(Debug)]
pub struct Minted {
    pub token_id: TokenId,
    pub secret: Secret,
    pub expires_in: i64,
}

/// What was read, unverified, from the JWT: enough to find the policies and the key.
#[derive(Debug)]
pub(crate) struct Presented {
    pub token: String,
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub issuer: String,
}

const ALLOWED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Checks the form and reads the JWT's header and issuer, offline.
pub(crate) fn presented(request: ExchangeRequest) -> Result<Presented, Refusal> {
    match request.grant_type.as_deref() {
        Some(GRANT_TYPE) => {}
        None => {
            return Err(Refusal::Request(format!(
                "grant_type is required: {GRANT_TYPE}"
            )))
        }
        Some(_) => {
            return Err(Refusal::GrantType(format!(
                "Only grant_type={GRANT_TYPE} is offered here."
            )))
        }
    }
    match request.subject_token_type.as_deref() {
        Some(SUBJECT_TOKEN_TYPE_JWT) | Some(SUBJECT_TOKEN_TYPE_ID_TOKEN) => {}
        _ => {
            return Err(Refusal::Request(format!(
                "subject_token_type must be {SUBJECT_TOKEN_TYPE_JWT}"
            )))
        }
    }
    let token = request
        .subject_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Refusal::Request("subject_token is required: the CI job's OIDC JWT".into())
        })?;
    if token.len() > MAX_SUBJECT_TOKEN_LEN {
        return Err(Refusal::Request(
            "subject_token is larger than 16 KB: not a CI job's JWT".into(),
        ));
    }
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Grant(
            "subject_token is not a signed JWT (three base64url parts joined by dots)".into(),
        ));
    };
    let decode = |part: &str| -> Option<Map<String, Value>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header =
        decode(head).ok_or_else(|| Refusal::Grant("the JWT's header isn't JSON".into()))?;
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = alg_name
        .parse::<Algorithm>()
        .ok()
        .filter(|a| ALLOWED.contains(a))
        .ok_or_else(|| {
            Refusal::Grant(format!(
                "alg {:?} is not accepted: the issuer must sign with its published asymmetric key (RS256, ES256, …)",
                alg_name.chars().take(20).collect::<String>()
            ))
        })?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .map(|k| k.chars().take(256).collect());
    let claims =
        decode(body).ok_or_else(|| Refusal::Grant("the JWT's claims aren't JSON".into()))?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty() && i.len() <= 512)
        .ok_or_else(|| Refusal::Grant("the JWT has no iss claim".into()))?
        .to_owned();
    Ok(Presented {
        token,
        alg,
        kid,
        issuer,
    })
}

/// The policies naming the issuer, or a refusal that says none does.
pub(crate) fn policies(conn: &mut DbConn, issuer: &str) -> Result<Vec<TrustPolicyRow>, Refusal> {
    let found = TrustPolicyRow::of_issuer(conn, issuer)?;
    if found.is_empty() {
        return Err(Refusal::Grant(format!(
            "no trust policy accepts tokens from issuer {:?}",
            issuer.chars().take(100).collect::<String>()
        )));
    }
    if found.len() as i64 > MAX_POLICIES_PER_ISSUER {
        return Err(Refusal::Target(
            "too many trust policies name this issuer".into(),
        ));
    }
    Ok(found)
}

pub(crate) fn key_refusal(e: KeyError) -> Refusal {
    match e {
        KeyError::Unreachable(d) => Refusal::Unavailable(format!(
            "the issuer's signing keys couldn't be fetched ({d}); try again shortly"
        )),
        KeyError::UnknownKey(d) => Refusal::Grant(d),
    }
}

/// Verifies the signature with `key`, then the times against `now` (60 s of skew); the
/// verified claims.
pub(crate) fn verified(
    p: &Presented,
    key: &jsonwebtoken::jwk::Jwk,
    now: OffsetDateTime,
) -> Result<Map<String, Value>, Refusal> {
    if let Some(key_alg) = key.common.key_algorithm {
        if key_alg.to_string() != format!("{:?}", p.alg) {
            return Err(Refusal::Grant(
                "the JWT's alg isn't the one its key is published for".into(),
            ));
        }
    }
    let decoding = DecodingKey::from_jwk(key)
        .map_err(|_| Refusal::Grant("the issuer's key for this kid can't be used".into()))?;
    let mut validation = Validation::new(p.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Map<String, Value>>(&p.token, &decoding, &validation)
        .map_err(|e| {
            Refusal::Grant(match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "the JWT's signature doesn't verify with the issuer's key".into()
                }
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    "the JWT's alg doesn't fit the issuer's key".into()
                }
                _ => "the JWT couldn't be verified".to_string(),
            })
        })?;
    let claims = data.claims;
    let leeway = LEEWAY_SECONDS as i64;
    let now = now.unix_timestamp();
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    match time("exp") {
        None => return Err(Refusal::Grant("the JWT has no exp claim".into())),
        Some(exp) if exp + leeway <= now => {
            return Err(Refusal::Grant(format!(
                "the JWT expired {} seconds ago",
                now - exp
            )))
        }
        _ => {}
    }
    if time("nbf").is_some_and(|nbf| nbf - leeway > now) {
        return Err(Refusal::Grant("the JWT is not valid yet (nbf)".into()));
    }
    if time("iat").is_some_and(|iat| iat - leeway > now) {
        return Err(Refusal::Grant(
            "the JWT was issued in the future (iat): check the issuer's clock".into(),
        ));
    }
    Ok(claims)
}

fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// The one policy the verified claims meet.
pub(crate) fn choose(
    policies: Vec<TrustPolicyRow>,
    claims: &Map<String, Value>,
) -> Result<TrustPolicyRow, Refusal> {
    let auds = audiences(claims);
    let for_us: Vec<TrustPolicyRow> = policies
        .into_iter()
        .filter(|p| auds.contains(&p.audience))
        .collect();
    if for_us.is_empty() {
        return Err(Refusal::Grant(format!(
            "no trust policy of this issuer expects audience {:?}",
            auds.join(", ").chars().take(200).collect::<String>()
        )));
    }
    let mut unmet = None;
    let mut met = vec![];
    for p in for_us {
        let conditions: BTreeMap<String, String> =
            serde_json::from_str(&p.conditions).unwrap_or_default();
        match first_unmet(&conditions, claims) {
            None => met.push(p),
            Some(claim) => {
                unmet.get_or_insert_with(|| claim.to_owned());
            }
        }
    }
    match met.len() {
        1 => Ok(met.pop().expect("one")),
        0 => Err(Refusal::Grant(format!(
            "the JWT's {:?} claim doesn't meet the trust policy's condition",
            unmet.unwrap_or_default()
        ))),
        n => Err(Refusal::Target(format!(
            "{n} trust policies accept this JWT: give each its own audience or narrower conditions"
        ))),
    }
}

/// The claims the audit trail keeps of an exchange (never the JWT itself).
const AUDITED: [&str; 12] = [
    "sub",
    "jti",
    "repository",
    "ref",
    "workflow",
    "job_workflow_ref",
    "run_id",
    "actor",
    "environment",
    "project_path",
    "pipeline_id",
    "user_login",
];

fn claim_words(claims: &Map<String, Value>) -> String {
    AUDITED
        .iter()
        .filter_map(|name| {
            let v = claims.get(*name)?;
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            Some(format!(
                "{name} {:?}",
                text.chars().take(200).collect::<String>()
            ))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mints the token under the account's lock: the jti once, the service account live and at
/// least the policy's role, the 50-token cap; audited with the JWT's claims.
pub(crate) fn mint(
    conn: &mut DbConn,
    policy: &TrustPolicyRow,
    issuer: &str,
    claims: &Map<String, Value>,
    now: OffsetDateTime,
) -> Result<Minted, Refusal> {
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 255)
        .ok_or_else(|| {
            Refusal::Grant("the JWT has no jti claim, so it couldn't be used only once".into())
        })?
        .to_owned();
    let jwt_exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let naive_now = to_naive(now);
    let expires = now + Duration::seconds(i64::from(policy.lifetime_seconds));
    let keep_until = OffsetDateTime::from_unix_timestamp(jwt_exp + LEEWAY_SECONDS as i64)
        .unwrap_or(expires)
        .max(expires);
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("?");
    conn.transaction(|conn| {
        if !Account::lock(conn, policy.account_id)? {
            return Err(Refusal::Grant("the trust policy's account is gone".into()));
        }
        // Read under the lock every exchange of the account takes, so of two racing
        // exchanges of one JWT on two instances the second finds the first's row.
        if TokenExchange::exists(conn, issuer, &jti)? {
            return Err(Refusal::Grant(
                "this JWT was exchanged already: each is accepted once (its jti)".into(),
            ));
        }
        let sa = User::find(conn, policy.service_account_id)?
            .filter(|u| {
                u.auth_type == AuthType::Service
                    && u.removed_at.is_none()
                    && u.account_id == policy.account_id
            })
            .ok_or_else(|| Refusal::Grant("the trust policy's service account is gone".into()))?;
        if !sa.role.may_issue(policy.role) {
            return Err(Refusal::Grant(format!(
                "the service account's role ({}) is now below the trust policy's ({})",
                sa.role, policy.role
            )));
        }
        crate::services::tokens::create::ensure_room(conn, policy.account_id, naive_now)
            .map_err(|_| {
                Refusal::Grant(
                    "the account has 50 active tokens, the most it can have".into(),
                )
            })?;
        let name: String = format!("exchange: {sub}")
            .chars()
            .filter(|c| !c.is_control())
            .take(crate::domain::input::NAME_MAX)
            .collect();
        let description = format!(
            "Exchanged from {issuer} under trust policy {}",
            policy.id
        );
        let description: String = description.chars().take(500).collect();
        let (id, secret) = crate::services::tokens::create::insert(
            conn,
            &NewToken {
                account_id: policy.account_id,
                issuer_id: sa.id,
                name: &name,
                description: Some(&description),
                role: policy.role,
                secret_hash: "",
                created_at: naive_now,
                expires_at: Some(to_naive(expires)),
                form_id: None,
                parent_id: None,
                allowed_ips: None,
                allowed_routes: policy.allowed_routes.as_deref(),
                rate_limit: None,
                usage_limit: None,
            },
        )?;
        TokenExchange::insert(
            conn,
            &TokenExchange {
                issuer: issuer.to_owned(),
                jti: jti.clone(),
                account_id: policy.account_id,
                token_id: id,
                policy_id: Some(policy.id),
                expires_at: to_naive(expires),
                keep_until: to_naive(keep_until),
                ended: false,
            },
        )?;
        audit::record_system(
            conn,
            policy.account_id,
            now,
            EventKind::TokenExchanged,
            &format!(
                "Exchanged a JWT from {issuer} ({}) under trust policy {} for token \"{name}\" of service account {} ({}, expires {})",
                claim_words(claims),
                policy.id,
                sa.name,
                policy.role,
                expires.time()
            ),
            Some(id),
        )?;
        Ok(Minted {
            token_id: TokenId::new(id),
            secret,
            expires_in: i64::from(policy.lifetime_seconds),
        })
    })
}

/// Deletes the minted tokens that expired (a batch), and forgets exchanges whose JWT and token
/// are both past; the ids deleted, for the caches.
pub(crate) fn sweep(conn: &mut DbConn, now: OffsetDateTime) -> Result<Vec<i64>, ServiceError> {
    let naive_now = to_naive(now);
    let due = TokenExchange::due(conn, naive_now, 500)?;
    let mut deleted = vec![];
    for row in due {
        conn.transaction(|conn| -> Result<(), ServiceError> {
            Account::lock(conn, row.account_id)?;
            deleted.extend(crate::services::tokens::retire::retire(
                conn,
                row.token_id,
                None,
                naive_now,
            )?);
            TokenExchange::mark_ended(conn, &row.issuer, &row.jti)?;
            Ok(())
        })?;
    }
    TokenExchange::purge(conn, naive_now)?;
    Ok(deleted)
}
