//! Leak reports (GitHub's secret scanning partner format) against the real server: a signed
//! report revokes an active token at once and labels each match; anything unsigned, signed
//! with another key or malformed changes nothing.

use apitokens::domain::token::PresentedToken;
use apitokens::domain::Role;
use apitokens::repo::events::AccountEvent;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Acme, TestApp};

struct Reporter {
    key: SigningKey,
    id: &'static str,
}

impl Reporter {
    fn new(id: &'static str) -> Reporter {
        Reporter {
            key: SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
            id,
        }
    }

    fn entry(&self) -> Value {
        let pem = self
            .key
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        json!({"key_identifier": self.id, "key": pem, "is_current": true})
    }

    fn sign(&self, body: &[u8]) -> String {
        let signature: Signature = self.key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }
}

async fn post(app: &TestApp, key_id: &str, signature: &str, body: &[u8]) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/iam/secret-scanning/report", app.base))
        .header("content-type", "application/json")
        .header("Github-Public-Key-Identifier", key_id)
        .header("Github-Public-Key-Signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn revocations(app: &TestApp, account: i64) -> usize {
    app.db(move |c| AccountEvent::recent(c, account, 100))
        .await
        .unwrap()
        .iter()
        .filter(|(e, _)| e.kind == "token.revoked")
        .count()
}

#[tokio::test]
async fn a_signed_report_revokes_at_once_and_bad_ones_change_nothing() {
    let github = Reporter::new("gh-current");
    let stranger = Reporter::new("gh-current"); // same id, other key
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, json!({"public_keys": [github.entry()]}).to_string()).unwrap();
    let app = TestApp::spawn_with(|s| s.secret_scanning_keys = Some(keys.clone())).await;
    let Acme { app, admin } = Acme::on(app).await;
    let token = app.token_for(&admin, Role::Engineers).await;
    let id = PresentedToken::parse(&token).unwrap().id;
    let api = app.api(&format!("APIKey {token}"));
    assert_eq!(
        api.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT
    );

    let fake = format!("{}_{}", id + 1000, "ab".repeat(32));
    let body = json!([
        {"token": token, "type": "apitokens_token", "url": "https://github.com/acme/app/blob/main/.env", "source": "content"},
        {"token": fake, "type": "apitokens_token", "url": "https://github.com/acme/app/blob/main/x", "source": "content"},
        {"token": "not a token", "type": "apitokens_token", "url": "https://x", "source": "commit"},
    ])
    .to_string();
    let body = body.as_bytes();

    // Refused, nothing changed: unsigned, wrong key, unknown key id, tampered body.
    for (key_id, signature, sent) in [
        ("", String::new(), body.to_vec()),
        ("gh-current", stranger.sign(body), body.to_vec()),
        ("gh-old", github.sign(body), body.to_vec()),
        ("gh-current", github.sign(b"[]"), body.to_vec()),
    ] {
        let (status, answer) = post(&app, key_id, &signature, &sent).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert!(answer["message"].as_str().unwrap().len() > 10);
    }
    // Signed but malformed: 400, nothing changed.
    let malformed = br#"{"token": "x"}"#;
    let (status, answer) = post(&app, "gh-current", &github.sign(malformed), malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        api.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(revocations(&app, admin.account_id).await, 0);

    // The real report: revoked at once on this instance (its cache is told), labelled.
    let (status, answer) = post(&app, "gh-current", &github.sign(body), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let labels: Vec<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["true_positive", "false_positive", "false_positive"]
    );
    assert_eq!(
        answer[0]["token_hash"],
        apitokens::domain::sha256_hex(&token),
        "named by hash"
    );
    assert!(
        !answer.to_string().contains(&token[token.len() - 64..]),
        "never echoed"
    );
    assert_eq!(
        api.get("/iam/auth/check").await.status,
        StatusCode::UNAUTHORIZED
    );
    let events = app
        .db(move |c| AccountEvent::recent(c, admin.account_id, 100))
        .await
        .unwrap();
    let revoked: Vec<_> = events
        .iter()
        .filter(|(e, _)| e.kind == "token.revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    assert!(revoked[0].0.summary.contains(
        "https://github.com/acme/app/blob/main/.env (content, reported by secret scanning)"
    ));

    // The same report again: still a true positive, no second revocation.
    let (status, again) = post(&app, "gh-current", &github.sign(body), body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again[0]["label"], "true_positive");
    assert_eq!(revocations(&app, admin.account_id).await, 1);
}

#[tokio::test]
async fn without_keys_the_report_endpoint_is_not_there() {
    let app = TestApp::spawn().await;
    let (status, _) = post(&app, "k", "sig", b"[]").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_oversized_report_is_refused_before_it_is_read() {
    let github = Reporter::new("k");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, json!({"public_keys": [github.entry()]}).to_string()).unwrap();
    let app = TestApp::spawn_with(|s| s.secret_scanning_keys = Some(keys.clone())).await;
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, answer) = post(&app, "k", &github.sign(&big), &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
}
