//! Leak reports (GitHub's secret scanning partner format) against the real server: a signed
//! report revokes an active token at once and labels each match; anything unsigned, signed
//! with another key or malformed changes nothing.

use apitokens::domain::token::PresentedToken;
use apitokens::domain::Role;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Acme, TestApp};
use crate::smtp::SmtpServer;

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

/// A server that takes reports signed by `reporter` (and mails through `smtp`, if given).
async fn app_taking_reports_from(reporter: &Reporter, smtp: Option<&SmtpServer>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        json!({"public_keys": [reporter.entry()]}).to_string(),
    )
    .unwrap();
    let smtp_url = smtp.map(SmtpServer::url);
    // The keys are read at startup; the file may go after.
    TestApp::spawn_with(move |s| {
        s.secret_scanning_keys = Some(keys);
        s.smtp_url = smtp_url;
        s.base_url = "https://tokens.example".into();
    })
    .await
}

/// Waits (bounded) until `smtp` has received `n` messages.
pub(crate) async fn wait_for_mail(smtp: &SmtpServer, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while smtp.received().len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} e-mails arrived",
            smtp.received().len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_signed_report_revokes_at_once_and_bad_ones_change_nothing() {
    let github = Reporter::new("gh-current");
    let stranger = Reporter::new("gh-current"); // same id, other key
    let app = app_taking_reports_from(&github, None).await;
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
    assert_eq!(
        app.events_of(admin.account_id, "token.revoked").await.len(),
        0
    );

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
    let revoked = app.events_of(admin.account_id, "token.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert!(revoked[0].summary.contains(
        "https://github.com/acme/app/blob/main/.env (content, reported by secret scanning)"
    ));

    // The same report again: still a true positive, no second revocation.
    let (status, again) = post(&app, "gh-current", &github.sign(body), body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again[0]["label"], "true_positive");
    assert_eq!(
        app.events_of(admin.account_id, "token.revoked").await.len(),
        1
    );
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
    let app = app_taking_reports_from(&github, None).await;
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, answer) = post(&app, "k", &github.sign(&big), &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
}

/// A revoked leak tells the issuer and the Administrators at once: in the portal, and by an
/// e-mail of its own over a real SMTP conversation (whatever their expiry-e-mail setting),
/// with where it was found and never the secret; the same report again tells nobody twice.
#[tokio::test]
async fn a_revoked_leak_alerts_the_issuer_and_admins_in_the_portal_and_by_email() {
    let smtp = SmtpServer::start();
    let github = Reporter::new("gh");
    let app = app_taking_reports_from(&github, Some(&smtp)).await;
    let Acme { app, admin } = Acme::on(app).await;
    let eng = app.add_user("Acme", "eng@acme.test", Role::Engineers).await;
    let other = app
        .add_user("Acme", "other@acme.test", Role::Engineers)
        .await;
    // The issuer turned expiry e-mails off: a security alert still goes out.
    app.state
        .notices
        .set_expiry_email(apitokens::domain::UserId::new(eng.id), false)
        .await
        .unwrap();
    let token = app.token_for(&eng, Role::Engineers).await;
    let secret = token[token.len() - 64..].to_string();
    let body = json!([{"token": token, "type": "apitokens_token",
        "url": "https://github.com/acme/app/blob/main/deploy.sh", "source": "content"}])
    .to_string();
    let (status, _) = post(&app, "gh", &github.sign(body.as_bytes()), body.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);

    // Sent right after the report (no periodic sweep runs in tests): wait for both.
    wait_for_mail(&smtp, 2).await;
    let mut to: Vec<String> = smtp.received().iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        ["admin@acme.test", "eng@acme.test"],
        "the issuer and the admin, not others"
    );
    for m in smtp.received() {
        let text = m.text();
        assert!(text.contains("Security alert"), "{text}");
        assert!(
            text.contains("https://github.com/acme/app/blob/main/deploy.sh"),
            "{text}"
        );
        assert!(!text.contains(&secret), "no secret in an e-mail");
        assert!(
            !text.to_ascii_lowercase().contains("list-unsubscribe"),
            "alerts can't be turned off"
        );
    }

    // In the portal: the issuer's notifications say it, with where.
    let page = app
        .signed_in("eng@acme.test")
        .await
        .get("/notifications")
        .await;
    assert!(
        page.body.contains("was found at https://github.com/acme/app/blob/main/deploy.sh (content, reported by secret scanning) and revoked"),
        "{}",
        page.body
    );
    let others = app
        .signed_in("other@acme.test")
        .await
        .get("/notifications")
        .await;
    assert!(!others.body.contains("Security alert"));
    let _ = other;

    // The same report again: no new alert, no new e-mail.
    let (status, _) = post(&app, "gh", &github.sign(body.as_bytes()), body.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    app.state.sweep(app.clock().now()).await.unwrap();
    assert_eq!(smtp.received().len(), 2);
    let eng_id = eng.id;
    let notices = app
        .db(move |c| apitokens::repo::notices::Notice::for_user(c, eng_id, 50))
        .await
        .unwrap();
    assert_eq!(notices.len(), 1);
    let _ = admin;
}

/// An account set to "notify only" (by an Administrator, on the Users page) keeps a reported
/// token working, records it, and alerts with words that say it still works.
#[tokio::test]
async fn a_notify_only_account_keeps_the_token_and_says_so() {
    let smtp = SmtpServer::start();
    let github = Reporter::new("gh");
    let app = app_taking_reports_from(&github, Some(&smtp)).await;
    let Acme { app, admin } = Acme::on(app).await;
    app.add_user("Acme", "eng@acme.test", Role::Engineers).await;

    // Only Administrators may change it; a bad value is a 400; nothing changes either way.
    let eng = app.signed_in("eng@acme.test").await;
    let refused = eng
        .post_from(
            "/profile/api-tokens",
            "/users/leak-response",
            &[("leak_response", "notify")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let admin_web = app.signed_in(crate::helpers::ACME_ADMIN).await;
    let bad = admin_web
        .post_from(
            "/users",
            "/users/leak-response",
            &[("leak_response", "ignore")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.state
            .tokens
            .leak_response(apitokens::services::Actor::of_user(&admin))
            .await
            .unwrap(),
        apitokens::domain::leak_response::LeakResponse::Revoke
    );
    let saved = admin_web
        .post_from(
            "/users",
            "/users/leak-response",
            &[("leak_response", "notify")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let users = admin_web.get("/users").await;
    assert!(
        users
            .body
            .contains(r#"value="notify" id="leaks-notify" checked"#),
        "{}",
        users.body
    );

    let token = app.token_for(&admin, Role::Engineers).await;
    let body = json!([{"token": token, "type": "apitokens_token", "url": "https://paste.example/x", "source": "content"}])
        .to_string();
    let (status, answer) = post(&app, "gh", &github.sign(body.as_bytes()), body.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer[0]["label"], "true_positive");
    let api = app.api(&format!("APIKey {token}"));
    assert_eq!(
        api.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT,
        "kept"
    );
    for (kind, n) in [
        ("token.leaked", 1),
        ("token.revoked", 0),
        ("account.leak_response", 1),
    ] {
        assert_eq!(
            app.events_of(admin.account_id, kind).await.len(),
            n,
            "{kind}"
        );
    }

    wait_for_mail(&smtp, 1).await;
    let text = smtp.received()[0].text();
    assert!(text.contains("so it still works"), "{text}");
    assert!(!text.contains("and revoked"), "{text}");
    let inbox = admin_web.get("/notifications").await;
    assert!(inbox.body.contains("It still works"), "{}", inbox.body);
}

/// Key ids are public, so anyone can post well-formed signatures that don't verify, each
/// costing an ECDSA check. Under such a flood (32 connections, every request from another
/// address, as a botnet behind a trusted proxy), 50 genuine reports still each get their
/// answer, none turned away as busy: checks wait their turn in a bounded queue instead of
/// failing whenever another check is running. (The latency figures are `scripts/abuse`'s.)
#[tokio::test]
async fn genuine_reports_get_through_a_flood_of_junk_signatures() {
    let github = Reporter::new("gh-current");
    let forger = Reporter::new("gh-current"); // the public id, any other key
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, json!({"public_keys": [github.entry()]}).to_string()).unwrap();
    let app = TestApp::spawn_with(move |s| {
        s.secret_scanning_keys = Some(keys);
        s.trusted_proxies = apitokens::config::parse_trusted_proxies("127.0.0.1").unwrap();
    })
    .await;
    let Acme { app, admin } = Acme::on(app).await;
    let token = app.token_for(&admin, Role::Engineers).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let junk_answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let junk_body = json!([{"token": "1_x", "type": "t", "url": "u", "source": "s"}]).to_string();
    let junk_signature = forger.sign(junk_body.as_bytes());
    let url = format!("{}/iam/secret-scanning/report", app.base);
    let flood: Vec<_> = (0..32u32)
        .map(|worker| {
            let (stop, answered) = (stop.clone(), junk_answered.clone());
            let (url, body, signature) = (url.clone(), junk_body.clone(), junk_signature.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let from = format!("10.{}.{}.{}", worker, n / 250 % 250, n % 250 + 1);
                    let r = http
                        .post(&url)
                        .header("x-forwarded-for", from)
                        .header("content-type", "application/json")
                        .header("Github-Public-Key-Identifier", "gh-current")
                        .header("Github-Public-Key-Signature", &signature)
                        .body(body.clone())
                        .send()
                        .await;
                    if r.is_ok_and(|r| r.status() == StatusCode::UNAUTHORIZED) {
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // Let the flood fill the queue first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = junk_answered.load(std::sync::atomic::Ordering::Relaxed);
    let http = reqwest::Client::new();
    let body = json!([{"token": token, "type": "apitokens_token",
                       "url": "https://github.com/acme/app/blob/main/.env", "source": "content"}])
    .to_string();
    let mut slowest = std::time::Duration::ZERO;
    for n in 0..50 {
        let started = std::time::Instant::now();
        let r = http
            .post(&url)
            .header("x-forwarded-for", "140.82.115.10")
            .header("content-type", "application/json")
            .header("Github-Public-Key-Identifier", "gh-current")
            .header("Github-Public-Key-Signature", github.sign(body.as_bytes()))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "genuine report {n}: {answer}");
        assert_eq!(answer[0]["label"], "true_positive");
        slowest = slowest.max(started.elapsed());
    }
    let during = junk_answered.load(std::sync::atomic::Ordering::Relaxed) - before;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in flood {
        worker.await.unwrap();
    }
    assert!(
        during >= 100,
        "the flood ran alongside: {during} junk reports checked"
    );
    // Not a timing target (that is `scripts/abuse`'s), a bound that says none was starved.
    assert!(
        slowest < std::time::Duration::from_secs(5),
        "a genuine report waited {slowest:?}"
    );
    assert_eq!(
        app.events_of(admin.account_id, "token.revoked").await.len(),
        1,
        "revoked once"
    );
}

/// One address can't hold the queue: past its share it is told to wait (429 with
/// `Retry-After`) before its body is read, while another address is still heard.
#[tokio::test]
async fn one_address_gets_its_share_then_429_and_others_are_still_heard() {
    let github = Reporter::new("k");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, json!({"public_keys": [github.entry()]}).to_string()).unwrap();
    let app = TestApp::spawn_with(move |s| {
        s.secret_scanning_keys = Some(keys);
        s.trusted_proxies = apitokens::config::parse_trusted_proxies("127.0.0.1").unwrap();
    })
    .await;
    let body = b"[]";
    let send = |from: &'static str| {
        let (url, signature) = (
            format!("{}/iam/secret-scanning/report", app.base),
            github.sign(body),
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .header("x-forwarded-for", from)
                .header("Github-Public-Key-Identifier", "k")
                .header("Github-Public-Key-Signature", signature)
                .body(body.to_vec())
                .send()
                .await
                .unwrap()
        }
    };
    let burst = futures_util::future::join_all(
        (0..apitokens::services::runtime::report_gate::PER_ADDRESS_BURST + 20)
            .map(|_| send("198.51.100.66")),
    )
    .await;
    let mut ok = 0;
    let mut told_to_wait = 0;
    for r in &burst {
        match r.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1);
                told_to_wait += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert!(
        ok >= 1 && told_to_wait >= 20,
        "{ok} checked, {told_to_wait} told to wait"
    );
    let other = send("203.0.113.1").await;
    assert_eq!(other.status(), StatusCode::OK, "another address is heard");
}
