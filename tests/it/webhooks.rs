//! Issue 30, events out: webhook endpoints per account, messages written with the events
//! they tell, delivered by any instance at least once and in order, signed as the Standard
//! Webhooks specification says — each delivery checked by its reference library
//! (standardwebhooks, PyPI) — and safe to point anywhere.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

use apitokens::domain::Role;

use crate::helpers::{token_id, Acme, Api, TestApp, ACME_ADMIN};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Got {
    pub fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok,
    /// This status, this many times, then 200.
    Fail(u16, usize),
    /// A redirect to this URL.
    Redirect(String),
    /// 200 after this long.
    Slow(Duration),
    /// 200 with a body this many bytes long.
    Huge(usize),
}

struct Shared {
    got: Mutex<Vec<Got>>,
    answer: Mutex<Answer>,
    in_flight: AtomicI64,
    most_in_flight: AtomicI64,
}

/// A real HTTP receiver on loopback.
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
    _server: actix_web::dev::ServerHandle,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Arc<Shared>>,
) -> HttpResponse {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    shared.got.lock().unwrap().push(Got {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let answer = {
        let mut a = shared.answer.lock().unwrap();
        let now = a.clone();
        let answered = now.clone();
        if let Answer::Fail(status, left) = now {
            *a = if left <= 1 {
                Answer::Ok
            } else {
                Answer::Fail(status, left - 1)
            };
        }
        answered
    };
    let response = match answer {
        Answer::Ok => HttpResponse::Ok().body("thanks"),
        Answer::Fail(status, _) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
        }
        Answer::Redirect(to) => HttpResponse::Found()
            .insert_header(("location", to))
            .finish(),
        Answer::Huge(n) => HttpResponse::Ok().body(vec![b'x'; n]),
        Answer::Slow(pause) => {
            tokio::time::sleep(pause).await;
            HttpResponse::Ok().finish()
        }
    };
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

impl Receiver {
    pub async fn start(answer: Answer) -> Receiver {
        let shared = Arc::new(Shared {
            got: Mutex::default(),
            answer: Mutex::new(answer),
            in_flight: AtomicI64::new(0),
            most_in_flight: AtomicI64::new(0),
        });
        let data = web::Data::new(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(2)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/apitokens"),
            shared,
            _server: handle,
        }
    }

    pub fn got(&self) -> Vec<Got> {
        self.shared.got.lock().unwrap().clone()
    }

    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    pub fn most_in_flight(&self) -> i64 {
        self.shared.most_in_flight.load(Ordering::SeqCst)
    }

    /// Waits (up to 15 s) until `enough` holds for what arrived; what arrived.
    pub async fn wait_for(&self, what: &str, enough: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.got();
            if enough(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited 15 s for {what}; got {:?}",
                got.iter().map(Got::kind).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Each delivery checked by the Standard Webhooks reference library with `secret`: the
/// payloads, or the library's complaint. `None` (skipped, said why) on a developer's machine
/// without it; in CI its absence fails.
pub fn verify(secret: &str, got: &[Got]) -> Option<Vec<Result<Value, String>>> {
    let python = match std::env::var("WEBHOOKS_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI must verify webhooks with standardwebhooks: set WEBHOOKS_PYTHON (tests/webhooks/run-setup)")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED signature check: WEBHOOKS_PYTHON=$(tests/webhooks/run-setup) to run it"
            );
            return None;
        }
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/verify.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let input: String = got
        .iter()
        .map(|g| json!({"secret": secret, "headers": g.headers, "body": g.body}).to_string() + "\n")
        .collect();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                if v["ok"] == true {
                    Ok(v["payload"].clone())
                } else {
                    Err(v["error"].as_str().unwrap_or("").to_owned())
                }
            })
            .collect(),
    )
}

/// Asserts every delivery verifies with `secret`.
pub fn assert_signed(secret: &str, got: &[Got]) {
    if let Some(results) = verify(secret, got) {
        assert_eq!(results.len(), got.len());
        for (r, g) in results.iter().zip(got) {
            assert!(r.is_ok(), "{} didn't verify: {r:?}", g.body);
        }
    }
}

/// Adds an endpoint through the API: its id and secret.
pub async fn add_endpoint(api: &Api, account: i64, url: &str, events: Value) -> (i64, String) {
    let r = api
        .post(
            &format!("/iam/clients/{account}/webhooks"),
            json!({"url": url, "events": events, "description": "SIEM"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (r.json["id"].as_i64().unwrap(), secret)
}

async fn deliveries(api: &Api, account: i64, endpoint: i64) -> Vec<Value> {
    let r = api
        .get(&format!(
            "/iam/clients/{account}/webhooks/{endpoint}/deliveries"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json.as_array().unwrap().clone()
}

/// Waits (up to 15 s) until a delivery of the endpoint satisfies `found`; that delivery.
async fn wait_delivery(
    api: &Api,
    account: i64,
    endpoint: i64,
    found: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = deliveries(api, account, endpoint).await;
        if let Some(d) = log.iter().find(|d| found(d)) {
            return d.clone();
        }
        assert!(Instant::now() < deadline, "waited 15 s: {log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 15 s) until the endpoint's newest delivery satisfies `done`; that delivery.
async fn newest_delivery(
    api: &Api,
    account: i64,
    endpoint: i64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = deliveries(api, account, endpoint).await;
        if let Some(d) = log.first().filter(|d| done(d)) {
            return d.clone();
        }
        assert!(Instant::now() < deadline, "waited 15 s: {log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_event_type_arrives_once_signed_and_a_portal_delete_at_once() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let receiver = Receiver::start(Answer::Ok).await;
    // A token that doesn't expire while the clock moves, and a person SCIM will remove,
    // made before the endpoint exists.
    let sam = app.acme_member("sam", Role::Engineers).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let (endpoint, secret) = add_endpoint(&api, account, &receiver.url, json!([])).await;

    // token.created (through the service), token.rotated (the token itself).
    let token = app.token_for(&admin, Role::Users).await;
    let rotated = app
        .api(&format!("APIKey {token}"))
        .post("/iam/tokens/self/rotate", json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);
    // token.deleted, in the portal: it arrives at once (no sweep, no poll to wait for).
    let web = app.signed_in(ACME_ADMIN).await;
    let doomed = app.token_for(&admin, Role::Users).await;
    let deleted = web
        .post_from(
            "/profile/api-tokens",
            &format!("/profile/api-tokens/{}/delete", token_id(&doomed)),
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    let asked = Instant::now();
    receiver
        .wait_for("token.deleted", |g| {
            g.iter().any(|g| g.kind() == "token.deleted")
        })
        .await;
    eprintln!(
        "token.deleted arrived {:?} after the portal answered",
        asked.elapsed()
    );
    // token.revoked by a public report; token.leaked where the account only wants to be told.
    let reported = app.token_for(&admin, Role::Users).await;
    let r = app
        .api("")
        .post(
            "/iam/credentials/revoke",
            json!({"credentials": [reported.clone()]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let leaked = app.token_for(&admin, Role::Users).await;
    let now = app.clock().now();
    app.db(move |c| {
        use apitokens::domain::leak_response::LeakResponse;
        apitokens::repo::Account::set_leak_response(c, account, LeakResponse::NotifyOnly).unwrap();
        let presented = apitokens::domain::token::PresentedToken::parse(&leaked).unwrap();
        apitokens::services::tokens::revoke_found(c, &presented, "a gist", now, false).unwrap();
    })
    .await;
    // user.added, user.role_changed, user.removed (the API), user.deprovisioned (SCIM).
    let invited = api
        .post(
            "/iam/clients/invite_user",
            json!({"client_id": account, "email": "nina@acme.test", "user_role": {"id": 2}}),
        )
        .await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.json);
    let nina = invited.json["user_id"].as_i64().unwrap();
    let person = format!("/iam/clients/{account}/client-users/{nina}");
    let changed = api.put(&person, json!({"user_role": {"id": 5}})).await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.json);
    assert_eq!(api.delete(&person).await.status, StatusCode::OK);
    let scim_token = {
        let now = app.clock().now();
        app.db(move |c| apitokens::services::people::scim::issue_token(c, account, None, now))
            .await
            .unwrap()
    };
    let gone = app
        .api(&format!("Bearer {scim_token}"))
        .send(
            reqwest::Method::DELETE,
            &format!("/scim/v2/Users/{}", sam.id),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    // token.expiring (the 1-day notice's time) and token.expired, found by the sweep.
    let (expiring, _) = app
        .expiring_token(&admin, "soon", time::Duration::days(3))
        .await;
    app.clock().advance(time::Duration::hours(49));
    app.state.sweep(app.clock().now()).await.unwrap();
    app.state.sweep(app.clock().now()).await.unwrap();
    app.clock().advance(time::Duration::days(1));
    app.state.sweep(app.clock().now()).await.unwrap();
    // ping, from "Send test event".
    let ping = api
        .post(
            &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
            json!({}),
        )
        .await;
    assert_eq!(ping.status, StatusCode::ACCEPTED, "{}", ping.json);

    let expected = [
        "token.created",
        "token.rotated",
        "token.deleted",
        "token.revoked",
        "token.leaked",
        "user.added",
        "user.role_changed",
        "user.removed",
        "user.deprovisioned",
        "token.expiring",
        "token.expired",
        "ping",
    ];
    let got = receiver
        .wait_for("every type", |g| {
            expected.iter().all(|t| g.iter().any(|g| g.kind() == *t))
        })
        .await;
    assert_signed(&secret, &got);
    let mut ids: Vec<&str> = got.iter().map(Got::id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "each message once");
    let of = |t: &str| {
        got.iter()
            .filter(|g| g.kind() == t)
            .map(Got::json)
            .collect::<Vec<_>>()
    };
    // Tokens made for the test are created: one message each, no more.
    assert_eq!(
        of("token.created").len(),
        4 + 1,
        "four through token_for, one expiring"
    );
    for t in expected.iter().filter(|t| **t != "token.created") {
        assert_eq!(of(t).len(), 1, "{t}: {:?}", of(t));
    }
    assert_eq!(of("token.revoked")[0]["data"]["reason"], "public_report");
    assert_eq!(of("token.deleted")[0]["data"]["reason"], "person");
    assert_eq!(
        of("token.deleted")[0]["data"]["token_id"],
        token_id(&doomed)
    );
    assert_eq!(of("token.expiring")[0]["data"]["token_id"], expiring);
    assert_eq!(of("token.expired")[0]["data"]["token_id"], expiring);
    // Never a secret nor a hash in a body.
    let rotated_secret = rotated.json["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for g in &got {
        for secret_text in [&token, &doomed, &reported, &rotated_secret] {
            let raw = secret_text.split(['_', '$']).nth(1).unwrap_or("");
            assert!(
                raw.is_empty() || !g.body.contains(raw),
                "a secret in {}",
                g.body
            );
        }
        assert!(!g.body.contains("secret_hash"), "{}", g.body);
    }
    // The delivery log has them, delivered, with the receiver's answer.
    // (The last one's record may land a moment after the receiver has it.)
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = deliveries(&api, account, endpoint).await;
        assert!(log.len() >= expected.len());
        if log
            .iter()
            .all(|d| d["status"] == "delivered" && d["response_code"] == 200)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_the_same_message_again_in_order() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let receiver = Receiver::start(Answer::Fail(503, 2)).await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let (endpoint, secret) = add_endpoint(&api, account, &receiver.url, json!(["ping"])).await;
    let first = api
        .post(
            &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
            json!({}),
        )
        .await;
    let second = api
        .post(
            &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
            json!({}),
        )
        .await;
    let (first, second) = (
        first.json["webhook_id"].as_str().unwrap().to_owned(),
        second.json["webhook_id"].as_str().unwrap().to_owned(),
    );
    receiver
        .wait_for("the first attempt", |g| !g.is_empty())
        .await;
    // The second waits behind the first: nothing else is tried while the first backs off.
    let head = wait_delivery(&api, account, endpoint, |d| {
        d["webhook_id"] == first.as_str() && d["attempts"] == 1
    })
    .await;
    assert_eq!(head["status"], "pending");
    assert_eq!(head["response_code"], 503);
    assert!(head["next_attempt_at"].is_string());
    for attempts in 1..=2 {
        // Its failure recorded (and its retry set) before the clock moves.
        wait_delivery(&api, account, endpoint, |d| {
            d["webhook_id"] == first.as_str() && d["attempts"] == attempts
        })
        .await;
        let seen = receiver.got().len();
        app.clock().advance(time::Duration::minutes(2));
        receiver.wait_for("a retry", |g| g.len() > seen).await;
    }
    let got = receiver
        .wait_for("both", |g| g.iter().any(|g| g.id() == second))
        .await;
    let ids: Vec<&str> = got.iter().map(Got::id).collect();
    assert_eq!(
        ids,
        vec![
            first.as_str(),
            first.as_str(),
            first.as_str(),
            second.as_str()
        ]
    );
    assert!(
        got[..3].iter().all(|g| g.body == got[0].body),
        "the same body each time"
    );
    assert_signed(&secret, &got);
    // The receiver answers before the worker records the outcome: wait (bounded) for the log
    // to say so, rather than reading it once.
    let head = wait_delivery(&api, account, endpoint, |d| {
        d["webhook_id"] == first.as_str() && d["status"] == "delivered"
    })
    .await;
    assert_eq!(
        (head["status"].as_str(), head["attempts"].as_i64()),
        (Some("delivered"), Some(3))
    );
    // Redeliver: the same id and body once more.
    let redo = api
        .post(
            &format!(
                "/iam/clients/{account}/webhooks/{endpoint}/deliveries/{}/redeliver",
                head["id"]
            ),
            json!({}),
        )
        .await;
    assert_eq!(redo.status, StatusCode::ACCEPTED);
    let got = receiver.wait_for("the redelivery", |g| g.len() == 5).await;
    assert_eq!(got[4].id(), first);
    assert_eq!(got[4].body, got[0].body);
}

#[tokio::test]
async fn two_instances_never_deliver_one_message_twice_at_once() {
    let Acme { app, admin } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    let account = admin.account_id;
    let receiver = Receiver::start(Answer::Slow(Duration::from_millis(30))).await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let (endpoint, secret) = add_endpoint(&api, account, &receiver.url, json!([])).await;
    let api2 = sibling.api_jwt(ACME_ADMIN).await;
    let mut sent = vec![];
    for i in 0..40 {
        let via = if i % 2 == 0 { &api } else { &api2 };
        let r = via
            .post(
                &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
                json!({}),
            )
            .await;
        sent.push(r.json["webhook_id"].as_str().unwrap().to_owned());
    }
    let got = receiver.wait_for("40 messages", |g| g.len() >= 40).await;
    // Both workers are awake (each was rung by its own requests); still each message came
    // once, one at a time, in the order they were queued.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_after = receiver.got();
    assert_eq!(got_after.len(), 40, "no message twice");
    assert_eq!(
        receiver.most_in_flight(),
        1,
        "one delivery to an endpoint at a time"
    );
    let ids: Vec<String> = got.iter().map(|g| g.id().to_owned()).collect();
    assert_eq!(ids, sent, "in order");
    assert_signed(&secret, &got);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let receiver = Receiver::start(Answer::Ok).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let (endpoint, old) = add_endpoint(&api, account, &receiver.url, json!(["ping"])).await;
    let r = api
        .post(
            &format!("/iam/clients/{account}/webhooks/{endpoint}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let new = r.json["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(r.json["previous_secret_until"].is_string());
    api.post(
        &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
        json!({}),
    )
    .await;
    let got = receiver.wait_for("a ping", |g| g.len() == 1).await;
    assert_eq!(got[0].headers["webhook-signature"].split(' ').count(), 2);
    assert_signed(&old, &got);
    assert_signed(&new, &got);
    // A day later only the new one signs.
    app.clock().advance(time::Duration::hours(25));
    api.post(
        &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
        json!({}),
    )
    .await;
    let got = receiver.wait_for("another ping", |g| g.len() == 2).await;
    assert_eq!(got[1].headers["webhook-signature"].split(' ').count(), 1);
    assert_signed(&new, &got[1..]);
    if let Some(results) = verify(&old, &got[1..]) {
        assert!(results[0].is_err(), "the old secret no longer signs");
    }
    let events = app.events_of(account, "webhook.configured").await;
    assert!(
        events.iter().any(|e| e.summary.contains("Rotated")),
        "{events:?}"
    );
}

#[tokio::test]
async fn private_addresses_and_redirects_are_refused() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let path = format!("/iam/clients/{account}/webhooks");
    let receiver = Receiver::start(Answer::Ok).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for (url, says) in [
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://10.0.0.7/hook", "private"),
        ("https://[::1]/hook", "loopback"),
        // A name that resolves to 127.0.0.1, not on the operator's list (only the address is).
        (&*format!("https://localhost:{port}/hook"), "resolves"),
        ("http://hooks.example.com/hook", "https"),
        ("https://user:pw@hooks.example.com/hook", "password"),
        ("not a url", "URL"),
    ] {
        let r = api.post(&path, json!({"url": url})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.json);
        assert!(r.json.to_string().contains(says), "{url}: {}", r.json);
    }
    // Other bad bodies: a clear 400 naming the field, nothing written.
    for body in [
        json!({}),
        json!({"url": 7}),
        json!({"url": receiver.url, "events": ["token.made_up"]}),
        json!({"url": receiver.url, "events": "token.created"}),
        json!({"url": receiver.url, "description": "x".repeat(501)}),
        json!({"url": receiver.url, "enabled": "yes"}),
    ] {
        let r = api.post(&path, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
    }
    assert_eq!(api.get(&path).await.json, json!([]));
}

#[tokio::test]
async fn an_instance_that_does_not_list_the_host_refuses_at_the_attempt_and_redirects_are_not_followed(
) {
    let receiver = Receiver::start(Answer::Ok).await;
    let elsewhere = Receiver::start(Answer::Ok).await;
    // This instance's operator lists no host: 127.0.0.1 is off limits for it.
    let app = TestApp::spawn_with(|s| s.webhook_allow_hosts = vec![]).await;
    let Acme { app, admin } = Acme::on(app).await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    // Stored as if by an instance that allowed it (or a name that resolved elsewhere then).
    let now = app.clock().now();
    let url = receiver.url.clone();
    let endpoint = app
        .db(move |c| {
            use apitokens::domain::token::to_naive;
            use apitokens::repo::webhooks::{Endpoint, NewEndpoint};
            let key =
                apitokens::domain::second_factor::SealKey::derive("test-key-".repeat(8).as_bytes());
            Endpoint::insert(
                c,
                &NewEndpoint {
                    account_id: account,
                    url,
                    description: String::new(),
                    events: String::new(),
                    enabled: true,
                    secret_sealed: key.seal(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                    created_at: to_naive(now),
                    updated_at: to_naive(now),
                },
            )
            .unwrap()
            .id
        })
        .await;
    api.post(
        &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
        json!({}),
    )
    .await;
    let refused = newest_delivery(&api, account, endpoint, |d| {
        d["attempts"].as_i64() >= Some(1)
    })
    .await;
    assert!(
        refused["error"].as_str().unwrap().contains("refused"),
        "{refused}"
    );
    assert!(
        receiver.got().is_empty(),
        "nothing reached the loopback receiver"
    );

    // A redirect to loopback is not followed: the attempt fails, the target hears nothing.
    let listed = TestApp::spawn().await;
    let Acme { app: listed, .. } = Acme::on(listed).await;
    let api = listed.api_jwt(ACME_ADMIN).await;
    let account = api.get("/iam/users/me").await.json["client"]
        .as_i64()
        .unwrap();
    receiver.answer(Answer::Redirect(elsewhere.url.clone()));
    let (endpoint, _) = add_endpoint(&api, account, &receiver.url, json!(["ping"])).await;
    api.post(
        &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
        json!({}),
    )
    .await;
    receiver.wait_for("the attempt", |g| !g.is_empty()).await;
    let attempt = newest_delivery(&api, account, endpoint, |d| {
        d["attempts"].as_i64() >= Some(1)
    })
    .await;
    assert_eq!(attempt["response_code"], 302);
    assert_eq!(attempt["status"], "pending", "retried later, not followed");
    assert!(
        elsewhere.got().is_empty(),
        "the redirect's target heard nothing"
    );
}

#[tokio::test]
async fn only_administrators_of_the_account_manage_webhooks() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let receiver = Receiver::start(Answer::Ok).await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let (endpoint, _) = add_endpoint(&api, account, &receiver.url, json!([])).await;
    // A leaked Engineers token: 403 everywhere, nothing learned of the endpoint.
    let eng = app.acme_member("eng", Role::Engineers).await;
    let low = app.api_as(&eng, Role::Engineers).await;
    let base = format!("/iam/clients/{account}/webhooks");
    let one = format!("{base}/{endpoint}");
    assert_eq!(low.get(&base).await.status, StatusCode::FORBIDDEN);
    assert_eq!(low.get(&one).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        low.post(&base, json!({"url": receiver.url})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(low.delete(&one).await.status, StatusCode::FORBIDDEN);
    // Another account's Administrator: not found, through either account's path.
    let olga = app
        .add_user("Other", "olga@other.test", Role::Administrators)
        .await;
    let other = app.api_as(&olga, Role::Administrators).await;
    assert_eq!(other.get(&one).await.status, StatusCode::NOT_FOUND);
    let theirs = format!("/iam/clients/{}/webhooks/{endpoint}", olga.account_id);
    assert_eq!(other.get(&theirs).await.status, StatusCode::NOT_FOUND);
    assert_eq!(other.delete(&theirs).await.status, StatusCode::NOT_FOUND);
    // No auth at all: 401.
    assert_eq!(
        app.api("").get(&base).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The endpoint is as it was; a PATCH by the admin turns it off (audited), DELETE removes it.
    let off = api
        .send(
            reqwest::Method::PATCH,
            &one,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.json);
    assert_eq!(off.json["enabled"], false);
    assert!(off.json.get("secret").is_none());
    assert_eq!(api.delete(&one).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get(&one).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.events_of(account, "webhook.configured").await.len(), 3);
}

#[tokio::test]
async fn an_endpoint_failing_for_three_days_is_turned_off() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let receiver = Receiver::start(Answer::Fail(500, usize::MAX)).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let (endpoint, _) = add_endpoint(&api, account, &receiver.url, json!(["ping"])).await;
    let one = format!("/iam/clients/{account}/webhooks/{endpoint}");
    api.post(&format!("{one}/test"), json!({})).await;
    receiver
        .wait_for("the first attempt", |g| g.len() == 1)
        .await;
    newest_delivery(&api, account, endpoint, |d| d["attempts"] == 1).await;
    assert!(api.get(&one).await.json["failing_since"].is_string());
    // A day of retries, then the message is failed for good.
    for _ in 0..14 {
        // Each failure recorded (and its retry set) before the clock moves.
        let seen = receiver.got().len();
        newest_delivery(&api, account, endpoint, |d| {
            d["attempts"].as_u64() == Some(seen as u64)
        })
        .await;
        app.clock().advance(time::Duration::hours(2));
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            receiver.wait_for("a retry", |g| g.len() > seen),
        )
        .await;
    }
    newest_delivery(&api, account, endpoint, |d| d["status"] == "failed").await;
    assert_eq!(
        api.get(&one).await.json["enabled"],
        true,
        "not off before 3 days"
    );
    // Two days on, another message fails too: the endpoint is turned off, and it is recorded.
    app.clock().advance(time::Duration::days(2));
    api.post(&format!("{one}/test"), json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let e = api.get(&one).await.json;
        if e["enabled"] == false {
            assert!(
                e["disabled_reason"].as_str().unwrap().contains("3 days"),
                "{e}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not turned off: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.events_of(account, "webhook.disabled").await.len(), 1);
    // The Administrators are told: by e-mail (an Engineer isn't), and by the badge on
    // "Webhooks" in the portal.
    app.acme_member("eng", Role::Engineers).await;
    let mails: Vec<String> = std::fs::read_dir(app.dir.path().join("outbox"))
        .map(|d| {
            d.map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
                .filter(|m| m.contains("webhook endpoint"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(mails.len(), 1, "one Administrator, one e-mail");
    assert!(mails[0].contains(ACME_ADMIN));
    assert!(mails[0].contains("turned off"));
    assert!(
        !mails[0].contains("/hooks/apitokens"),
        "the URL's path stays out of the mail"
    );
    let web = app.signed_in(ACME_ADMIN).await;
    assert!(web.get("/profile").await.has("#webhooks-badge"));
    assert!(!app
        .signed_in("eng@acme.test")
        .await
        .get("/profile")
        .await
        .has("#webhooks-badge"));
    // Turned on again by an Administrator: its streak starts over.
    let on = api
        .send(reqwest::Method::PATCH, &one, Some(json!({"enabled": true})))
        .await;
    assert_eq!(on.json["enabled"], true);
    assert!(on.json["failing_since"].is_null());
    assert!(on.json["disabled_reason"].is_null());
    assert!(!web.get("/profile").await.has("#webhooks-badge"));
}

#[tokio::test]
async fn a_failed_single_sign_on_is_sent_as_sso_sign_in_failed() {
    use crate::sso::{acme_with, configure, local, provider, through_provider};
    let Some(provider) = provider().await else {
        return;
    };
    let (Acme { app, admin }, _) = acme_with(&provider).await;
    configure(&app, &provider, json!({})).await;
    let receiver = Receiver::start(Answer::Ok).await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let (_, secret) = add_endpoint(
        &api,
        admin.account_id,
        &receiver.url,
        json!(["sso.sign_in_failed"]),
    )
    .await;
    // Someone the provider vouches for but the account doesn't know.
    let stranger = app.client();
    let back = through_provider(
        &stranger,
        &format!("/sso/start?account={}", admin.account_id),
        "nobody@acme.test",
    )
    .await;
    assert_eq!(
        stranger.get(&local(&back)).await.status,
        StatusCode::FORBIDDEN
    );
    let got = receiver
        .wait_for("sso.sign_in_failed", |g| !g.is_empty())
        .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind(), "sso.sign_in_failed");
    assert!(got[0].json()["data"]["summary"]
        .as_str()
        .unwrap()
        .contains("nobody@acme.test"));
    assert_signed(&secret, &got);
}

#[tokio::test]
async fn the_webhooks_page_adds_an_endpoint_shows_its_secret_once_and_its_log() {
    let Acme { app, admin } = Acme::start().await;
    let receiver = Receiver::start(Answer::Ok).await;
    let web = app.signed_in(ACME_ADMIN).await;
    let page = web.get("/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has("#no-webhooks"));
    // A refused URL comes back with the form as typed and the reason.
    let refused = web
        .post_from(
            "/webhooks",
            "/webhooks",
            &[
                ("url", "https://169.254.169.254/x"),
                ("event:token.revoked", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.has_text("metadata"), "{}", refused.body);
    assert_eq!(
        refused.input_value("url").as_deref(),
        Some("https://169.254.169.254/x")
    );
    // Without the form's CSRF token: refused, nothing added.
    let forged = web
        .http
        .post(format!("{}/webhooks", app.base))
        .form(&[("url", receiver.url.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let added = web
        .post_from(
            "/webhooks",
            "/webhooks",
            &[
                ("url", &receiver.url),
                ("description", "SIEM"),
                ("event:token.revoked", "1"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let secret = added.text_of("webhook-secret").unwrap();
    assert!(secret.starts_with("whsec_"));
    let again = web.get("/webhooks").await;
    assert!(!again.body.contains(&secret), "shown once");
    let id = again.attrs("tr[data-webhook-id]", "data-webhook-id")[0].clone();
    assert!(again.has_text("token.revoked"));
    // Send test event: it arrives signed, and the log shows it delivered.
    let sent = web
        .post_from(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/test"),
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    let got = receiver.wait_for("the test event", |g| !g.is_empty()).await;
    assert_eq!(got[0].kind(), "ping");
    assert_signed(&secret, &got);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = web.get(&format!("/webhooks/{id}")).await;
        if page.has("tr[data-state=delivered]") {
            assert!(page.has_text("200"));
            break;
        }
        assert!(Instant::now() < deadline, "{}", page.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // People who aren't Administrators don't see the page.
    app.acme_member("eng", Role::Engineers).await;
    let other = app.signed_in("eng@acme.test").await;
    assert_eq!(other.get("/webhooks").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        other.get(&format!("/webhooks/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    // Turned off, then removed.
    let off = web
        .post_from(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/enabled"),
            &[("enabled", "0")],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert!(web
        .get(&format!("/webhooks/{id}"))
        .await
        .text_of("webhook-status")
        .unwrap()
        .starts_with("Off"));
    let gone = web
        .post_from(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(
        web.get(&format!("/webhooks/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.events_of(admin.account_id, "webhook.configured")
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn the_webhooks_pages_pass_axe_in_a_real_browser() {
    use crate::browser::{axe_source, check_page, click_and_load, sign_in, start_browser};
    use fantoccini::Locator;
    let Acme { app, .. } = Acme::start().await;
    let receiver = Receiver::start(Answer::Ok).await;
    let Some(browser) = start_browser().await else {
        return;
    };
    let wd = &browser.client;
    let mut problems = vec![];
    sign_in(wd, &app.base, ACME_ADMIN).await;
    wd.goto(&format!("{}/webhooks", app.base)).await.unwrap();
    wd.find(Locator::Id("url"))
        .await
        .unwrap()
        .send_keys(&receiver.url)
        .await
        .unwrap();
    click_and_load(wd, "#add-webhook").await;
    let secret = wd
        .find(Locator::Id("webhook-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let axe = axe_source();
    if let Some(axe) = &axe {
        check_page(wd, axe, "webhooks-added", &mut problems).await;
    }
    click_and_load(wd, "#webhooks a").await;
    click_and_load(wd, "#send-test").await;
    receiver.wait_for("the test event", |g| !g.is_empty()).await;
    wd.refresh().await.unwrap();
    if let Some(axe) = &axe {
        check_page(wd, axe, "webhook-endpoint", &mut problems).await;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_backlog_behind_a_failing_endpoint_does_not_hold_up_the_others() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let down = Receiver::start(Answer::Fail(503, usize::MAX)).await;
    let up = Receiver::start(Answer::Ok).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let (failing, _) = add_endpoint(&api, account, &down.url, json!(["ping"])).await;
    let (working, secret) = add_endpoint(&api, account, &up.url, json!(["ping"])).await;
    // More messages wait behind the failing endpoint's head than a worker looks at in a pass.
    for _ in 0..120 {
        let r = api
            .post(
                &format!("/iam/clients/{account}/webhooks/{failing}/test"),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    down.wait_for("the failing head's first attempt", |g| !g.is_empty())
        .await;
    api.post(
        &format!("/iam/clients/{account}/webhooks/{working}/test"),
        json!({}),
    )
    .await;
    let got = up
        .wait_for("the working endpoint's event", |g| g.len() == 1)
        .await;
    assert_signed(&secret, &got);
    // The failing one was tried once, its head only, and waits for its retry.
    assert_eq!(down.got().len(), 1);
}

#[tokio::test]
async fn a_parallel_burst_keeps_the_cap_and_a_huge_answer_is_not_read() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let receiver = Receiver::start(Answer::Huge(8 * 1024 * 1024)).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    // 30 at once: the account's lock keeps the cap of 20.
    let burst = futures_util::future::join_all((0..30).map(|_| {
        let api = api.clone();
        let url = receiver.url.clone();
        async move {
            api.post(
                &format!("/iam/clients/{account}/webhooks"),
                json!({"url": url, "events": ["ping"]}),
            )
            .await
        }
    }))
    .await;
    let created = burst
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = burst
        .iter()
        .filter(|r| r.status == StatusCode::BAD_REQUEST)
        .collect();
    assert_eq!((created, refused.len()), (20, 10));
    assert!(
        refused
            .iter()
            .all(|r| r.json.to_string().contains("at most 20")),
        "{:?}",
        refused.iter().map(|r| &r.json).collect::<Vec<_>>()
    );
    let list = api
        .get(&format!("/iam/clients/{account}/webhooks"))
        .await
        .json;
    assert_eq!(list.as_array().unwrap().len(), 20);
    // An endpoint that answers 8 MB: delivered, and no more than 64 KB of it was read.
    let endpoint = list[0]["id"].as_i64().unwrap();
    api.post(
        &format!("/iam/clients/{account}/webhooks/{endpoint}/test"),
        json!({}),
    )
    .await;
    newest_delivery(&api, account, endpoint, |d| d["status"] == "delivered").await;
}

#[tokio::test]
async fn the_worker_and_the_sweep_read_by_index_whatever_the_backlog() {
    let app = TestApp::spawn().await;
    // The worker's scan: due endpoints only (never the messages).
    let due = app
        .plan(
            "SELECT 1",
            "id, queued_seq FROM webhook_endpoints WHERE due_at <= '2026-12-03 00:00:00' AND enabled = TRUE ORDER BY due_at LIMIT 16".into(),
        )
        .await;
    assert!(due.contains("webhook_endpoints_due"), "{due}");
    // An endpoint's head: its pending messages only.
    let head = app
        .plan(
            "SELECT 1",
            "id FROM webhook_messages WHERE endpoint_id = 7 AND state = 'pending' ORDER BY id LIMIT 25".into(),
        )
        .await;
    assert!(head.contains("webhook_messages_pending"), "{head}");
    // The sweep's expiring and expired tokens: by the live-expiry index, never by account.
    let sweep = app
        .plan(
            "SELECT 1",
            "id FROM tokens WHERE deleted_at IS NULL AND expires_at > '2026-12-01 00:00:00' AND expires_at <= '2026-12-10 00:00:00'".into(),
        )
        .await;
    assert!(sweep.contains("tokens_expiring_live"), "{sweep}");
}
