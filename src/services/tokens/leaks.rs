//! Leak reports from secret-scanning services, in the format of GitHub's secret scanning
//! partner program: a JSON array of `{token, type, url, source}`, signed with ECDSA P-256
//! (SHA-256) over the raw body; the key's id and the base64 DER signature come in headers.
//! The public keys are read from a file in the shape of GitHub's published list
//! (`APITOKENS_SECRET_SCANNING_KEYS`), so a server with no way out can still check them.

use crate::domain::EventKind;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};

use diesel::Connection;
use time::OffsetDateTime;

use super::retire::retire;
use super::view::FoundToken;
use crate::db::DbConn;
use crate::domain::leak_response::LeakResponse;
use crate::domain::token::{from_naive, to_naive, TokenStatus};
use crate::domain::NoticeKind;
use crate::error::ServiceResult;
use crate::repo::notices::{NewNotice, Notice};
use crate::repo::{Account, Token, User};
use crate::services::audit;
use crate::services::notices::plan::recipients;

/// Most reports one request may carry (GitHub sends batches of up to a few hundred).
pub const MAX_REPORTS: usize = 1000;

/// The verifying keys, by key identifier.
#[derive(Debug, Default)]
pub struct ScanningKeys {
    keys: Vec<(String, VerifyingKey)>,
}

#[derive(Deserialize)]
struct KeyFile {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

/// Why a report was turned away before anything was read from it.
#[derive(Debug, PartialEq, Eq)]
pub enum BadSignature {
    UnknownKey,
    Invalid,
}

impl ScanningKeys {
    /// Reads `{"public_keys": [{"key_identifier": "...", "key": "<PEM>", "is_current": true}]}`.
    pub fn load(path: &Path) -> anyhow::Result<ScanningKeys> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("can't read the secret scanning keys {}", path.display()))?;
        ScanningKeys::parse(&text)
            .with_context(|| format!("the secret scanning keys in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<ScanningKeys> {
        let file: KeyFile =
            serde_json::from_str(text).context("not a JSON object with a \"public_keys\" list")?;
        let mut keys = Vec::with_capacity(file.public_keys.len());
        for entry in file.public_keys {
            let key = VerifyingKey::from_public_key_pem(entry.key.trim()).with_context(|| {
                format!(
                    "key {:?} is not an ECDSA P-256 public key in PEM",
                    entry.key_identifier
                )
            })?;
            keys.push((entry.key_identifier, key));
        }
        anyhow::ensure!(!keys.is_empty(), "the list has no keys");
        Ok(ScanningKeys { keys })
    }

    /// Is there a key with this id? (Cheap: an unknown id is refused before any crypto.)
    pub fn knows(&self, key_id: &str) -> bool {
        self.keys.iter().any(|(id, _)| id == key_id)
    }

    /// Checks `signature` (base64 of a DER ECDSA signature) over `body` with key `key_id`.
    pub fn verify(&self, key_id: &str, signature: &str, body: &[u8]) -> Result<(), BadSignature> {
        let key = self
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, key)| key)
            .ok_or(BadSignature::UnknownKey)?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| BadSignature::Invalid)?;
        let signature = DerSignature::from_bytes(&der).map_err(|_| BadSignature::Invalid)?;
        key.verify(body, &signature)
            .map_err(|_| BadSignature::Invalid)
    }
}

/// One reported match.
#[derive(Debug, Deserialize)]
pub struct LeakReport {
    pub token: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// The answer for one reported match, as GitHub's partner API expects it: the token's
/// SHA-256 (never the token itself), its type as reported, and whether it is one of ours.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Labelled {
    pub token_hash: String,
    pub token_type: String,
    pub label: &'static str,
}

/// "`<url> (<source>, reported by secret scanning)`", or as much of it as was sent.
pub fn where_found(report: &LeakReport) -> String {
    let url = report.url.as_deref().unwrap_or("an unnamed place");
    match report.source.as_deref() {
        Some(source) if !source.is_empty() => {
            format!("{url} ({source}, reported by secret scanning)")
        }
        _ => format!("{url} (reported by secret scanning)"),
    }
}

/// The status of a token known only by its wire form: `None` when no token has this id and
/// secret (so a guess at an id learns nothing about that token).
pub fn status_of_presented(
    conn: &mut DbConn,
    presented: &crate::domain::token::PresentedToken,
    now: OffsetDateTime,
) -> ServiceResult<Option<(Token, TokenStatus)>> {
    let Some(token) = Token::find(conn, presented.id)? else {
        return Ok(None);
    };
    let hash = presented.secret.hash();
    let in_grace = token.old_secret_until.is_some_and(|u| from_naive(u) > now)
        && token
            .old_secret_hash
            .as_deref()
            .is_some_and(|old| hash.matches(old));
    if !hash.matches(&token.secret_hash) && !in_grace {
        return Ok(None);
    }
    let status = TokenStatus::of(token.deleted_at, token.expires_at, now);
    Ok(Some((token, status)))
}

/// Revokes an active token that was found where it shouldn't be (`where_found`: a file, a
/// URL), with every token it created — or, if its account is set to notify only, leaves it
/// — records it in the account's event log and alerts the issuer and the Administrators. No person
/// acts: the presented secret itself is the proof. Returns what happened and the ids revoked.
pub fn revoke_found(
    conn: &mut DbConn,
    presented: &crate::domain::token::PresentedToken,
    where_found: &str,
    now: OffsetDateTime,
    always_revoke: bool,
) -> ServiceResult<(FoundToken, Vec<i64>)> {
    // Which account, read first: the transaction then starts with the account's lock (on
    // SQLite a read that turns into a write inside one transaction can't wait, it fails).
    let Some((token, _)) = status_of_presented(conn, presented, now)? else {
        return Ok((FoundToken::Unknown, vec![]));
    };
    conn.transaction(|conn| {
        Account::lock(conn, token.account_id)?;
        // Read again under the lock, so a delete racing this one is seen and wins once.
        let Some((token, status)) = status_of_presented(conn, presented, now)? else {
            return Ok((FoundToken::Unknown, vec![]));
        };
        if status != TokenStatus::Active {
            return Ok((FoundToken::AlreadyDead(status), vec![]));
        }
        // A public report revokes whatever the account chose for scanners' reports: the
        // secret itself is the proof, and whoever sent it could use it.
        let revoke = always_revoke
            || Account::find(conn, token.account_id)?
                .is_none_or(|a| a.leak_response == LeakResponse::Revoke);
        let (outcome, ids, kind, verb) = if revoke {
            let ids = retire(conn, token.id, None, to_naive(now))?;
            audit::record_retired(
                conn,
                None,
                now,
                &token,
                &ids,
                audit::Retired::Found(&clip(where_found, 200)),
                false,
            )?;
            (FoundToken::Revoked, ids, EventKind::TokenRevoked, "revoked")
        } else {
            (
                FoundToken::Reported,
                vec![],
                EventKind::TokenLeaked,
                "reported leaked (not revoked: the account only wants to be told)",
            )
        };
        let summary = format!(
            "Token {} \"{}\" {verb}: found in {}",
            token.id,
            token.name,
            clip(where_found, 500)
        );
        let reason = if where_found == crate::services::webhooks::outbox::PUBLIC_REPORT {
            "public_report"
        } else {
            "leak_report"
        };
        audit::record_ended(
            conn,
            token.account_id,
            now,
            kind,
            &summary,
            token.id,
            reason,
        )?;
        // The issuer and the Administrators are told, in the portal and by e-mail (a leak
        // alert each, sent by the next delivery, whatever their expiry-e-mail preference).
        let users = User::list_in_account(conn, token.account_id)?;
        let alerts: Vec<NewNotice> = recipients(&token, &users)
            .into_iter()
            .map(|user| NewNotice {
                token_id: token.id,
                kind: NoticeKind::Leaked,
                user_id: user.id,
                created_at: to_naive(now),
                next_attempt_at: to_naive(now),
                detail: Some(clip(where_found, 500)),
            })
            .collect();
        Notice::insert_many(conn, &alerts)?;
        Ok((outcome, ids))
    })
}

/// At most `max` characters of `text` (an address or path from outside), control and
/// invisible characters escaped (`domain::text`), with "…" if cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let text = crate::domain::text::escape_controls(text);
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::EncodePublicKey;

    pub fn key_pair() -> (SigningKey, String) {
        let signing = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let pem = signing
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        (signing, pem)
    }

    fn sign(key: &SigningKey, body: &[u8]) -> String {
        let signature: Signature = key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    #[test]
    fn signatures_verify_only_with_the_named_key_over_the_exact_body() {
        let (current, current_pem) = key_pair();
        let (old, old_pem) = key_pair();
        let file = serde_json::json!({"public_keys": [
            {"key_identifier": "cur", "key": current_pem, "is_current": true},
            {"key_identifier": "old", "key": old_pem, "is_current": false},
        ]});
        let keys = ScanningKeys::parse(&file.to_string()).unwrap();
        let body = br#"[{"token":"1_x","type":"apitokens","url":"https://x","source":"content"}]"#;
        assert_eq!(keys.verify("cur", &sign(&current, body), body), Ok(()));
        assert_eq!(keys.verify("old", &sign(&old, body), body), Ok(()));
        assert_eq!(
            keys.verify("cur", &sign(&old, body), body),
            Err(BadSignature::Invalid)
        );
        assert_eq!(
            keys.verify("nope", &sign(&current, body), body),
            Err(BadSignature::UnknownKey)
        );
        let mut tampered = body.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            keys.verify("cur", &sign(&current, body), &tampered),
            Err(BadSignature::Invalid)
        );
        assert_eq!(
            keys.verify("cur", "not base64!", body),
            Err(BadSignature::Invalid)
        );
        assert_eq!(keys.verify("cur", "AAAA", body), Err(BadSignature::Invalid));
    }

    #[test]
    fn a_bad_key_file_says_what_is_wrong() {
        for (text, says) in [
            ("nope", "public_keys"),
            (r#"{"public_keys": []}"#, "no keys"),
            (
                r#"{"public_keys": [{"key_identifier": "k", "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}]}"#,
                "\"k\" is not an ECDSA P-256 public key",
            ),
        ] {
            let e = format!("{:#}", ScanningKeys::parse(text).unwrap_err());
            assert!(e.contains(says), "{e}");
        }
    }
}
