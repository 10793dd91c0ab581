//! Operating it as a service: Prometheus metrics, request ids, JSON logs, a graceful shutdown.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apitokens::domain::input::{Expiry, TokenDescription, TokenName};
use apitokens::domain::Role;
use apitokens::services::tokens::{create, CreateOutcome, NewTokenRequest};
use apitokens::services::Actor;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{free_port, Acme, TestApp, ACME_ADMIN, PASSWORD};
use crate::smtp::SmtpServer;

pub(crate) async fn scrape(app: &TestApp) -> String {
    let port = app.metrics_port.expect("metrics are on");
    let r = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    r.text().await.unwrap()
}

/// The value of one series (`name{labels}` exactly as exposed); 0 when it isn't there yet.
pub(crate) fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

pub(crate) fn delta(before: &str, after: &str, series: &str) -> f64 {
    value(after, series) - value(before, series)
}

pub(crate) async fn with_metrics() -> Acme {
    Acme::on(TestApp::spawn_with(|s| s.metrics_bind = Some("127.0.0.1:0".into())).await).await
}

/// A known sequence of requests moves the counters by exactly what happened.
#[tokio::test]
async fn metrics_count_exactly_what_happened() {
    let Acme { app, admin } = with_metrics().await;
    let token = app.token_for(&admin, Role::Engineers).await;
    let before = scrape(&app).await;
    let good = app.api(&format!("APIKey {token}"));
    for _ in 0..3 {
        assert_eq!(
            good.get("/iam/auth/check").await.status,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        good.get("/iam/auth/check?min_role=Administrators")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let stranger = app.api(&format!("APIKey 999999_{}", "a".repeat(64)));
    for _ in 0..2 {
        assert_eq!(
            stranger.get("/iam/auth/check").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.api("Bearer nonsense")
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(good.get("/iam/users/me").await.status, StatusCode::OK);
    // Not on the app's own port.
    let public = reqwest::get(format!("{}/metrics", app.base)).await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);

    let after = scrape(&app).await;
    let checks = |o: &str| {
        delta(
            &before,
            &after,
            &format!("apitokens_gateway_checks_total{{outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(checks("ok"), 3.0);
    assert_eq!(checks("forbidden"), 1.0);
    assert_eq!(checks("unauthorized"), 3.0);
    assert_eq!(checks("unavailable"), 0.0);
    let requests = |route: &str, status: u16| {
        delta(
            &before,
            &after,
            &format!("apitokens_http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("/iam/auth/check", 204), 3.0);
    assert_eq!(requests("/iam/auth/check", 401), 3.0);
    assert_eq!(requests("/iam/users/me", 200), 1.0);
    assert_eq!(
        delta(
            &before,
            &after,
            "apitokens_http_request_duration_seconds_count{route=\"/iam/auth/check\"}"
        ),
        7.0
    );
    // Every APIKey check (4 of the real token, 2 made up) is a cache hit or a miss; the JWT
    // is neither. /iam/users/me checks the token too.
    let lookups = delta(
        &before,
        &after,
        "apitokens_token_cache_lookups_total{result=\"hit\"}",
    ) + delta(
        &before,
        &after,
        "apitokens_token_cache_lookups_total{result=\"miss\"}",
    );
    assert_eq!(lookups, 7.0);
    for pool in ["main", "gateway"] {
        assert!(
            after.contains(&format!(
                "apitokens_db_connections{{pool=\"{pool}\",state=\"idle\"}}"
            )),
            "{after}"
        );
    }
    assert_eq!(value(&after, "apitokens_password_hashes_in_flight"), 0.0);
    assert_eq!(value(&after, "apitokens_draining"), 0.0);
}

/// A sweep's notices and e-mails are counted, and what is pending is read at scrape.
#[tokio::test]
async fn metrics_follow_expiry_notices() {
    let Acme { app, admin } = with_metrics().await;
    let now = app.clock().now();
    expiring_tokens(&app, &admin, 2).await;
    let before = scrape(&app).await;
    let (recorded, d) = app.state.sweep(now).await.unwrap();
    assert!(recorded >= 2 && d.sent == recorded, "{recorded} {d:?}");
    let after = scrape(&app).await;
    assert_eq!(
        delta(&before, &after, "apitokens_expiry_notices_recorded_total"),
        recorded as f64
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "apitokens_expiry_emails_total{outcome=\"sent\"}"
        ),
        d.sent as f64
    );
    assert_eq!(value(&after, "apitokens_expiry_emails_pending"), 0.0);
    assert_eq!(
        value(&after, "apitokens_expiry_email_oldest_pending_age_seconds"),
        0.0
    );
}

/// `n` tokens made ten days ago that expire in 20 hours: their 1-day notice is due.
async fn expiring_tokens(app: &TestApp, admin: &apitokens::repo::User, n: usize) -> Vec<i64> {
    let now = app.clock().now() - time::Duration::days(10);
    let expires = app.clock().now() + time::Duration::hours(20);
    let mut ids = vec![];
    for i in 0..n {
        let actor = Actor::of_user(admin);
        let req = NewTokenRequest {
            name: TokenName::parse(&format!("expiring {i}")).unwrap(),
            description: TokenDescription::parse(None).unwrap(),
            role: Role::Engineers,
            expiry: Expiry::at(expires, now).unwrap(),
            form_id: None,
            parent: None,
            allowed_ips: vec![],
            allowed_routes: vec![],
            rate_limit: None,
            usage_limit: None,
        };
        let id = match app.db(move |c| create(c, &actor, &req, now)).await.unwrap() {
            CreateOutcome::Created { token, .. } => token.id.get(),
            CreateOutcome::AlreadyCreated { .. } => unreachable!(),
        };
        ids.push(id);
    }
    ids
}

/// Every response carries a request id; one from a trusted proxy is kept, anyone else's is
/// replaced; the id is on the access line and on what the services log for that request.
#[tokio::test]
async fn request_ids_reach_the_response_and_every_log_line() {
    let Acme { app, admin } = Acme::on(
        TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await,
    )
    .await;
    let anon = reqwest::Client::new();
    let a = anon
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    let b = anon
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id(&a), id(&b));
    let hostile = anon
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "forged\tid with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(id(&hostile), "forged\tid with spaces");

    let trace = format!(
        "trace-{}",
        &apitokens::domain::Secret::generate().expose()[..10]
    );
    let api = app.api_as(&admin, Role::Administrators).await;
    let r = api
        .send_with(
            reqwest::Method::POST,
            &format!("/iam/v2/clients/{}/tokens", admin.account_id),
            Some(json!({"name": "traced", "exp_date": null, "client_user": {"role": {"id": 5}}})),
            &[("x-request-id", &trace)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.headers["x-request-id"], trace.as_str());
    let logs = crate::helpers::captured_logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&trace)).collect();
    assert!(
        lines.iter().any(|l| l.contains("token created")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("status=200")), "{lines:#?}");
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(database_url: &str, data_dir: &std::path::Path, smtp: &SmtpServer) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_apitokens"))
            .env("DATABASE_URL", database_url)
            .env("APITOKENS_DATA_DIR", data_dir)
            .env("APITOKENS_BIND", format!("127.0.0.1:{port}"))
            .env("APITOKENS_SMTP_URL", smtp.url())
            .env("APITOKENS_NOTIFY_INTERVAL_SECS", "1")
            .env("APITOKENS_DRAIN_SECS", "1")
            .env("APITOKENS_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; the exit status and everything logged.
    fn finish(&mut self) -> (std::process::ExitStatus, String) {
        let mut logs = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (self.child.wait().unwrap(), logs)
    }
}

impl Drop for Server {
    /// A failed test leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    app.db(move |c| diesel::sql_query(sql).get_result::<N>(c).unwrap().n)
        .await
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM: `/readyz` turns 503 while requests are still served, a request in flight
/// finishes, the running sweep finishes the e-mail it is sending and gives the rest back, the
/// token uses are written; the next start sends the rest. No e-mail is lost or sent twice.
#[tokio::test]
async fn sigterm_loses_nothing_and_sends_nothing_twice() {
    let Acme { app, admin } = Acme::start().await;
    // 24 Administrators (three times what a sweep sends at once): each gets one digest of the
    // six tokens.
    for i in 0..23 {
        app.acme_member(&format!("admin{i}"), Role::Administrators)
            .await;
    }
    expiring_tokens(&app, &admin, 6).await;
    let token = app.token_for(&admin, Role::Engineers).await;
    let token_id = crate::helpers::token_id(&token);
    let url = app.state.settings.database_url.clone();
    let smtp = SmtpServer::start();
    // Slow enough that the signal lands long before the next wave of sends could start.
    smtp.set_delay(Duration::from_millis(1000));
    let data = tempfile::tempdir().unwrap();

    let mut server = Server::start(&url, data.path(), &smtp);
    let http = reqwest::Client::new();
    // A use of a token, to be written at the latest on the way out.
    let check = http
        .get(server.url("/iam/auth/check"))
        .header("authorization", format!("APIKey {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::NO_CONTENT);
    // The sweep is sending (slowly).
    wait_for("the first e-mail", async || !smtp.received().is_empty()).await;

    // A request whose body is still on its way when the signal comes.
    let body = json!({"username": ACME_ADMIN, "password": PASSWORD}).to_string();
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        slow,
        "POST /iam/auth/jwt/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    server.terminate();
    let ready = server.url("/readyz");
    wait_for("/readyz to answer 503", async || {
        http.get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    slow.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"access\""));
    let request_id = answer
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("the answer carries its request id")
        .trim()
        .to_owned();

    let (status, logs) = server.finish();
    assert!(status.success(), "{status:?}\n{logs}");
    let total = count(&app, "SELECT count(*) AS n FROM notices").await;
    assert_eq!(total, 144, "6 tokens, 24 recipients");
    let digests = 24;
    let mails_first = smtp.received().len() as i64;
    assert!(
        (1..digests).contains(&mails_first),
        "the sweep stopped early: {mails_first} of {digests} digests"
    );
    let sent_first = mails_first * 6;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM notices WHERE email_status = 'sent'"
        )
        .await,
        sent_first,
        "what was sent is marked, nothing more"
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM notices WHERE claim_id IS NOT NULL AND email_status = 'pending'").await,
        0,
        "the rest was given back"
    );
    let used = app
        .db(move |c| {
            apitokens::repo::Token::find(c, token_id)
                .unwrap()
                .unwrap()
                .last_used_at
        })
        .await;
    assert!(used.is_some(), "the token's use was written");
    // JSON logs, the request's id on its lines.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["span"]["id"] == request_id.as_str()
        && l["fields"]["status"] == 200
        && l["fields"]["path"] == "/iam/auth/jwt/login"));
    // The gateway's check is the one route whose access line is at debug.
    assert!(!lines
        .iter()
        .any(|l| l["fields"]["path"] == "/iam/auth/check"));
    assert!(lines.iter().any(|l| l["fields"]["message"] == "stopped"));

    // The next start sends the rest at once (nothing left claimed), each exactly once.
    smtp.set_delay(Duration::ZERO);
    let mut server = Server::start(&url, data.path(), &smtp);
    wait_for("every e-mail", async || {
        smtp.received().len() as i64 >= digests
    })
    .await;
    server.terminate();
    let (status, _) = server.finish();
    assert!(status.success());
    assert_eq!(smtp.received().len() as i64, digests, "no e-mail twice");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM notices WHERE email_status = 'sent'"
        )
        .await,
        total
    );
}
