//! Expiry notices: due windows, recipients, the outbox over a real SMTP conversation, faults.

use apitokens::domain::EmailStatus;
use apitokens::domain::Role;
use apitokens::repo::notices::Notice;
use apitokens::repo::User;
use apitokens::services::notices::delivery::{Delivery, CLAIM_TTL};
use apitokens::services::notices::plan as notifier;
use apitokens::services::tokens;
use apitokens::services::Actor;
use reqwest::StatusCode;
use time::Duration;

use crate::helpers::{TestApp, ACME_ADMIN};
use crate::smtp::{Received, SmtpServer};

async fn app_with_smtp(smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    TestApp::spawn_with(move |s| {
        s.smtp_url = Some(url);
        s.base_url = "https://tokens.example".into();
    })
    .await
}

async fn expiring_token(
    app: &TestApp,
    issuer: &User,
    name: &str,
    after: Duration,
) -> (i64, String) {
    app.expiring_token(issuer, name, after).await
}

async fn sweep(app: &TestApp) -> (usize, Delivery) {
    app.state.sweep(app.clock().now()).await.expect("sweep")
}

fn recipients(mails: &[Received]) -> Vec<String> {
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    to
}

struct Cast {
    admin: User,
    admin2: User,
    eng: User,
}

async fn cast(app: &TestApp) -> Cast {
    let admin = app.acme_member("admin", Role::Administrators).await;
    let admin2 = app.acme_member("admin2", Role::Administrators).await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    app.acme_member("user", Role::Users).await;
    app.add_user("Other", "admin@other.test", Role::Administrators)
        .await;
    let removed = app.acme_member("gone", Role::Administrators).await;
    let at = apitokens::domain::token::to_naive(app.clock().now());
    app.db(move |c| {
        use apitokens::db::schema::users;
        use diesel::prelude::*;
        diesel::update(users::table.find(removed.id))
            .set(users::removed_at.eq(at))
            .execute(c)
            .unwrap();
    })
    .await;
    Cast { admin, admin2, eng }
}

#[tokio::test]
async fn the_issuer_and_the_admins_get_one_email_7_days_and_one_1_day_before() {
    let smtp = SmtpServer::start();
    let app = app_with_smtp(&smtp).await;
    let c = cast(&app).await;
    let (id, secret) = expiring_token(&app, &c.eng, "Deploys", Duration::days(10)).await;

    assert_eq!(
        sweep(&app).await,
        (0, Delivery::default()),
        "nothing is due 10 days out"
    );
    // To just before T-7d, measured from the token's own expiry (the clock is wall time plus
    // an offset, so time spent since the token was made on a loaded machine must not count).
    let expires = app
        .db(move |c| apitokens::repo::Token::find(c, id))
        .await
        .unwrap()
        .unwrap()
        .expires_at
        .unwrap()
        .assume_utc();
    app.clock()
        .advance(expires - Duration::days(7) - Duration::seconds(30) - app.clock().now());
    assert_eq!(sweep(&app).await.0, 0, "just before T-7d");
    app.clock().advance(Duration::seconds(30));
    let (recorded, delivery) = sweep(&app).await;
    assert_eq!((recorded, delivery.sent), (3, 3));
    let mails = smtp.received();
    assert_eq!(
        recipients(&mails),
        ["admin2@acme.test", "admin@acme.test", "eng@acme.test"]
    );
    for m in &mails {
        let text = m.text();
        assert!(
            text.contains("Subject: API token \"Deploys\" expires in 7 days"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/plain") && text.contains("Content-Type: text/html")
        );
        assert!(
            text.contains("Date: ")
                && text.contains("Message-ID: ")
                && text.contains("From: apitokens")
        );
        assert!(text.contains(&format!(
            "To: {} <{}>",
            m.to[0].split('@').next().unwrap(),
            m.to[0]
        )));
        assert!(
            text.contains(&format!("https://tokens.example/profile/api-tokens/{id}")),
            "{text}"
        );
        assert!(text.contains("https://tokens.example/profile/notifications"));
        assert!(text.contains("Issued by: eng") && text.contains("Role: Users"));
        assert!(
            text.contains("Rotate it on its page")
                && text.contains(&format!("/profile/api-tokens/{id}#rotate-title"))
        );
        assert!(
            !m.data.contains(&secret) && !text.contains(&secret),
            "never the secret"
        );
        assert_eq!(m.from, "no-reply@localhost");
    }
    // Again at the same moment, or later in the same window: nothing new.
    assert_eq!(sweep(&app).await, (0, Delivery::default()));
    app.clock().advance(Duration::days(2));
    assert_eq!(sweep(&app).await, (0, Delivery::default()));

    app.clock().advance(Duration::days(4));
    let (recorded, delivery) = sweep(&app).await;
    assert_eq!((recorded, delivery.sent), (3, 3));
    let mails = smtp.received();
    assert_eq!(mails.len(), 6);
    assert!(mails[3..]
        .iter()
        .all(|m| m.text().contains("expires in 1 day")));
    assert_eq!(sweep(&app).await, (0, Delivery::default()));

    // The same notices in the portal, and the badge.
    let web = app.signed_in("eng@acme.test").await;
    let page = web.get("/notifications").await;
    assert_eq!(
        page.attrs("[data-notification-id]", "data-notification-id")
            .len(),
        2
    );
    assert_eq!(page.text_of("unread-count").as_deref(), Some("2"));
    assert!(page.has_text("expires tomorrow") && page.has_text("expires in 7 days"));
    let tokens_page = web.get("/profile/api-tokens").await;
    assert!(tokens_page.has("#api-tokens-badge"));
    assert!(tokens_page.has("[data-expiring-soon=\"true\"]"));
    let read = web
        .post_from("/notifications", "/notifications/read", &[])
        .await;
    assert_eq!(read.status, StatusCode::SEE_OTHER);
    assert!(web
        .get("/notifications")
        .await
        .text_of("unread-count")
        .is_none());
    // A user who is neither issuer nor Administrator got nothing.
    let user = app
        .signed_in("user@acme.test")
        .await
        .get("/notifications")
        .await;
    assert!(user.has("#no-notifications"));
}

#[tokio::test]
async fn turning_the_preference_off_stops_the_email_but_not_the_portal_notice() {
    let smtp = SmtpServer::start();
    let app = app_with_smtp(&smtp).await;
    let c = cast(&app).await;
    let web = app.signed_in("admin2@acme.test").await;
    let settings = web.get("/profile/notifications").await;
    assert!(
        settings
            .body
            .contains("name=\"token_expiry_email\" id=\"token_expiry_email\" checked"),
        "on by default"
    );
    let saved = web
        .post_from("/profile/notifications", "/profile/notifications", &[])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(!web
        .get("/profile/notifications")
        .await
        .body
        .contains("id=\"token_expiry_email\" checked"));

    expiring_token(&app, &c.eng, "Deploys", Duration::days(7)).await;
    app.clock().advance(Duration::days(1) + Duration::hours(1));
    // Created inside the 7-day window: only the 1-day notice comes, 6 days later.
    assert_eq!(sweep(&app).await.0, 0);
    app.clock().advance(Duration::days(5));
    let web = app.signed_in("admin2@acme.test").await;
    let (recorded, d) = sweep(&app).await;
    assert_eq!((recorded, d.sent, d.skipped), (3, 2, 1));
    assert_eq!(
        recipients(&smtp.received()),
        ["admin@acme.test", "eng@acme.test"]
    );
    let page = web.get("/notifications").await;
    assert_eq!(
        page.attrs("[data-notification-id]", "data-notification-id")
            .len(),
        1,
        "still told in the portal"
    );

    // Turned back on, the form keeps it.
    let on = web
        .post_from(
            "/profile/notifications",
            "/profile/notifications",
            &[("token_expiry_email", "on")],
        )
        .await;
    assert_eq!(on.status, StatusCode::SEE_OTHER);
    assert!(web
        .get("/profile/notifications")
        .await
        .body
        .contains("id=\"token_expiry_email\" checked"));
    let _ = c.admin;
}

#[tokio::test]
async fn an_smtp_outage_loses_and_duplicates_nothing() {
    let mut smtp = SmtpServer::start();
    let app = app_with_smtp(&smtp).await;
    let c = cast(&app).await;
    expiring_token(&app, &c.eng, "Deploys", Duration::days(8)).await;
    app.clock().advance(Duration::days(1));
    smtp.stop();
    let (recorded, d) = sweep(&app).await;
    assert_eq!((recorded, d.sent, d.failed), (3, 0, 3));
    let rows = app.db(Notice::all).await.unwrap();
    assert!(rows.iter().all(|n| n.email_status == EmailStatus::Pending
        && n.attempts == 1
        && n.last_error.is_some()));
    assert!(rows.iter().all(|n| n.sent_at.is_none()));

    smtp.restart();
    // Before the back-off has passed nothing is tried.
    assert_eq!(sweep(&app).await.1, Delivery::default());
    app.clock().advance(Duration::minutes(1));
    let (_, d) = sweep(&app).await;
    assert_eq!((d.sent, d.failed), (3, 0));
    assert_eq!(sweep(&app).await.1, Delivery::default());
    app.clock().advance(Duration::hours(1));
    assert_eq!(sweep(&app).await.1, Delivery::default());
    assert_eq!(
        recipients(&smtp.received()),
        ["admin2@acme.test", "admin@acme.test", "eng@acme.test"]
    );
    let _ = (c.admin, c.admin2);
}

#[tokio::test]
async fn a_sweep_that_died_after_claiming_is_finished_by_the_next() {
    let smtp = SmtpServer::start();
    let app = app_with_smtp(&smtp).await;
    let c = cast(&app).await;
    expiring_token(&app, &c.eng, "Deploys", Duration::days(8)).await;
    app.clock().advance(Duration::days(1));
    let now = app.clock().now();
    // Record, then claim as a sweep would, and "crash" before sending.
    let claimed = app
        .db(move |conn| {
            notifier::record(conn, now).unwrap();
            let naive = apitokens::domain::token::to_naive(now);
            let who = Notice::ready_recipients(conn, naive, 100).unwrap();
            let until = apitokens::domain::token::to_naive(now + CLAIM_TTL);
            Notice::claim_for(
                conn,
                &who,
                "dead-sweep",
                apitokens::domain::token::to_naive(now),
                until,
            )
            .unwrap()
        })
        .await;
    assert_eq!(claimed, 3);
    assert_eq!(
        sweep(&app).await.1,
        Delivery::default(),
        "a live claim is respected"
    );
    app.clock().advance(CLAIM_TTL + Duration::seconds(1));
    assert_eq!(sweep(&app).await.1.sent, 3);
    assert_eq!(smtp.received().len(), 3);
}

/// Four sweeps at once (as four instances would run them): each person gets exactly one
/// digest, and every due notice is in exactly one digest, once.
#[tokio::test]
async fn parallel_sweeps_send_one_digest_per_person_with_every_notice_once() {
    let smtp = SmtpServer::start();
    let app = app_with_smtp(&smtp).await;
    let c = cast(&app).await;
    let mut ids = vec![];
    for i in 0..10 {
        ids.push(
            expiring_token(&app, &c.eng, &format!("t{i}"), Duration::days(8))
                .await
                .0,
        );
    }
    app.clock().advance(Duration::days(1));
    let now = app.clock().now();
    let mut sweeps = vec![];
    for _ in 0..4 {
        let state = app.state.clone();
        sweeps.push(tokio::spawn(async move { state.sweep(now).await.unwrap() }));
    }
    let (mut recorded, mut sent, mut emails) = (0, 0, 0);
    for s in sweeps {
        let (r, d) = s.await.unwrap();
        recorded += r;
        sent += d.sent;
        emails += d.emails;
    }
    assert_eq!((recorded, sent, emails), (30, 30, 3));
    let mails = smtp.received();
    assert_eq!(
        recipients(&mails),
        ["admin2@acme.test", "admin@acme.test", "eng@acme.test"],
        "one digest each"
    );
    for m in &mails {
        let text = m.text();
        assert!(
            text.contains("10 API tokens expire within 7 days"),
            "{text}"
        );
        for id in &ids {
            let link = format!("/profile/api-tokens/{id}\r\n");
            assert_eq!(
                text.matches(&link).count(),
                1,
                "token {id} once in {}",
                m.to[0]
            );
        }
    }
    assert_eq!(sweep(&app).await, (0, Delivery::default()), "nothing left");
}

#[tokio::test]
async fn deleting_a_token_cancels_its_pending_emails() {
    let mut smtp = SmtpServer::start();
    let app = app_with_smtp(&smtp).await;
    let c = cast(&app).await;
    let (id, _) = expiring_token(&app, &c.eng, "Deploys", Duration::days(8)).await;
    app.clock().advance(Duration::days(1));
    smtp.stop();
    assert_eq!(sweep(&app).await.1.failed, 3);
    let actor = Actor::of_user(&c.eng);
    let now = app.clock().now();
    app.db(move |conn| tokens::delete(conn, &actor, apitokens::domain::TokenId::new(id), now))
        .await
        .unwrap();
    smtp.restart();
    app.clock().advance(Duration::hours(1));
    assert_eq!(sweep(&app).await, (0, Delivery::default()));
    assert!(smtp.received().is_empty());
    let rows = app.db(Notice::all).await.unwrap();
    assert!(rows
        .iter()
        .all(|n| n.email_status == EmailStatus::Cancelled));
}

#[tokio::test]
async fn the_badge_shows_for_visible_tokens_expiring_within_7_days() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let eng2 = app.acme_member("eng2", Role::Engineers).await;
    let (soon, _) = expiring_token(&app, &c.eng, "soon", Duration::days(6)).await;
    let (later, _) = expiring_token(&app, &c.eng, "later", Duration::days(9)).await;
    let _ = eng2;
    for (email, badge) in [
        ("eng@acme.test", true),
        ("admin@acme.test", true),
        ("eng2@acme.test", false),
        ("admin@other.test", false),
    ] {
        let page = app.signed_in(email).await.get("/profile").await;
        assert_eq!(page.has("#api-tokens-badge"), badge, "{email}");
    }
    let web = app.signed_in(ACME_ADMIN).await;
    let page = web.get("/profile/api-tokens").await;
    assert!(page
        .body
        .contains("title=\"1 token expires within 7 days\""));
    let filtered = web
        .get("/profile/api-tokens?status=active&expiring=soon")
        .await;
    assert_eq!(filtered.token_rows(), vec![(soon, "active".to_string())]);
    let one = web.get(&format!("/profile/api-tokens?token={later}")).await;
    assert_eq!(one.token_rows(), vec![(later, "active".to_string())]);
    assert_eq!(
        web.get("/profile/api-tokens?expiring=later").await.status,
        StatusCode::BAD_REQUEST
    );
    // Two more days: both are within 7 days.
    app.clock()
        .advance(Duration::days(2) + Duration::seconds(1));
    let web = app.signed_in(ACME_ADMIN).await;
    assert!(web
        .get("/profile")
        .await
        .body
        .contains("title=\"2 tokens expire within 7 days\""));
    // Expired, it no longer counts.
    app.clock().advance(Duration::days(4));
    let web = app.signed_in(ACME_ADMIN).await;
    assert!(web
        .get("/profile")
        .await
        .body
        .contains("title=\"1 token expires within 7 days\""));
}

#[tokio::test]
async fn notify_dry_run_lists_and_records_nothing_and_notify_writes_the_outbox() {
    if crate::helpers::postgres_url().is_some() {
        eprintln!("the command-line test uses the SQLite file; covered by the SQLite run");
        return;
    }
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (_, secret) = expiring_token(&app, &c.eng, "Deploys", Duration::days(10)).await;
    let as_of = apitokens::web::api::model::rfc3339(app.clock().now() + Duration::days(3));
    let db = format!("sqlite://{}", app.dir.path().join("test.db").display());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_apitokens"))
            .args(args)
            .env("DATABASE_URL", &db)
            .env("APITOKENS_DATA_DIR", app.dir.path())
            .env_remove("APITOKENS_SMTP_URL")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = run(&["notify", "--dry-run", "--as-of", &as_of]);
    assert!(dry.contains("dry run: 3 notices due"), "{dry}");
    assert!(dry.contains("7d\ttoken") && dry.contains("eng@acme.test"));
    assert!(
        app.db(Notice::all).await.unwrap().is_empty(),
        "dry run recorded nothing"
    );
    let real = run(&["notify", "--as-of", &as_of]);
    assert!(
        real.contains("recorded 3, sent 3 in 3 e-mails, failed 0"),
        "{real}"
    );
    let outbox: Vec<_> = std::fs::read_dir(app.dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(outbox.len(), 3);
    for file in outbox {
        assert_eq!(file.extension().unwrap(), "eml");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains("text/html") && text.contains("text/plain") && !text.contains(&secret)
        );
    }
    assert!(run(&["notify", "--as-of", &as_of]).contains("recorded 0, sent 0"));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_apitokens"))
        .args(["notify", "--as-of", "next tuesday"])
        .env("APITOKENS_DATA_DIR", app.dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

#[tokio::test]
async fn the_due_token_query_uses_the_expiry_index() {
    let app = TestApp::spawn().await;
    let plan = app
        .plan(
            "SELECT 1",
            "* FROM tokens WHERE expires_at > '2026-01-01 00:00:00' AND expires_at <= '2026-01-08 00:00:00' AND deleted_at IS NULL".into(),
        )
        .await;
    // The partial index over live, expiring tokens: deleted ones are not even in it.
    assert!(plan.contains("tokens_expiring_live"), "{plan}");
}
