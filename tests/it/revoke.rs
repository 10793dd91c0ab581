//! Issue 30, its public revocation: `POST /iam/credentials/revoke` with no sign-in answers
//! the same 202 whatever it was sent, revokes exactly the live tokens among a mix (with the
//! tokens they created), tells their issuers and Administrators naming "a public report",
//! audits it; junk costs no database read; a flood of well-formed made-up tokens waits (429).

use reqwest::StatusCode;
use serde_json::json;

use apitokens::domain::{NoticeKind, Role};

use crate::helpers::{token_id, Acme, TestApp};
use crate::operate::{delta, scrape, with_metrics};

async fn revoke(app: &TestApp, credentials: Vec<String>) -> crate::helpers::Reply {
    app.api("")
        .post(
            "/iam/credentials/revoke",
            json!({ "credentials": credentials }),
        )
        .await
}

async fn check(app: &TestApp, token: &str) -> StatusCode {
    app.api(&format!("APIKey {token}"))
        .get("/iam/auth/check")
        .await
        .status
}

/// A token that looks real (the right checksum) but was never made.
fn made_up(id: i64) -> String {
    let secret = apitokens::domain::token_format::generate_secret(id);
    format!("{id}_{}", secret.expose())
}

#[tokio::test]
async fn anyone_revokes_the_live_tokens_among_a_mix_and_learns_nothing() {
    let Acme { app, admin } = Acme::start().await;
    let eve = app.acme_member("eve", Role::Engineers).await;
    let other = app
        .add_user("Other", "olga@other.test", Role::Administrators)
        .await;
    let live = app.token_for(&eve, Role::Engineers).await;
    let elsewhere = app.token_for(&other, Role::Users).await;
    let kept = app.token_for(&eve, Role::Users).await;
    let deleted = app.token_for(&eve, Role::Users).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let gone = api
        .delete(&format!(
            "/iam/v2/clients/{}/tokens/{}",
            admin.account_id,
            token_id(&deleted)
        ))
        .await;
    assert!(gone.status.is_success(), "{}", gone.json);
    // The answer to nothing but junk, and to nothing at all: the baseline.
    let junk = revoke(&app, vec!["hello".into(), "1_abc".into()]).await;
    assert_eq!(junk.status, StatusCode::ACCEPTED);
    let empty = revoke(&app, vec![]).await;
    assert_eq!(
        (empty.status, &empty.json),
        (StatusCode::ACCEPTED, &junk.json)
    );

    let mix = revoke(
        &app,
        vec![
            live.clone(),
            elsewhere.clone(),
            deleted.clone(),
            made_up(987_654),
            "not a token".into(),
            live.replace('_', "$"),
        ],
    )
    .await;
    assert_eq!(mix.status, StatusCode::ACCEPTED);
    assert_eq!(mix.json, junk.json, "the same answer whatever was found");

    assert_eq!(check(&app, &live).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        check(&app, &elsewhere).await,
        StatusCode::UNAUTHORIZED,
        "any account's"
    );
    assert_eq!(
        check(&app, &kept).await,
        StatusCode::NO_CONTENT,
        "only what was sent"
    );
    let revoked = app.events_of(admin.account_id, "token.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert!(
        revoked[0].summary.contains("public report"),
        "{}",
        revoked[0].summary
    );
    assert_eq!(
        app.events_of(other.account_id, "token.revoked").await.len(),
        1
    );
    // The issuer and the Administrators are told, naming where it was found.
    for person in [eve.id, admin.id] {
        let told = app
            .db(move |c| {
                apitokens::repo::notices::Notice::for_user(c, person, 50)
                    .unwrap()
                    .into_iter()
                    .filter(|(n, _)| n.kind == NoticeKind::Leaked)
                    .map(|(n, _)| n.detail.unwrap_or_default())
                    .collect::<Vec<_>>()
            })
            .await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].contains("public report"), "{told:?}");
    }
    // Sent again: nothing more happens, the same answer.
    let again = revoke(&app, vec![live.clone()]).await;
    assert_eq!(
        (again.status, &again.json),
        (StatusCode::ACCEPTED, &junk.json)
    );
    assert_eq!(
        app.events_of(admin.account_id, "token.revoked").await.len(),
        1
    );

    // Bad bodies are named; none is a 500.
    let too_many = revoke(&app, (0..1001).map(|i| format!("x{i}")).collect()).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    assert!(
        too_many.json.to_string().contains("1000"),
        "{}",
        too_many.json
    );
    let not_json = reqwest::Client::new()
        .post(format!("{}/iam/credentials/revoke", app.base))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let huge = reqwest::Client::new()
        .post(format!("{}/iam/credentials/revoke", app.base))
        .body(format!(
            "{{\"credentials\": [\"{}\"]}}",
            "a".repeat(300 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn junk_costs_no_read_and_a_flood_of_well_formed_tokens_waits() {
    let Acme { app, .. } = with_metrics().await;
    let series = "apitokens_db_connection_wait_seconds_count{pool=\"main\"}";
    // 50 requests of 1,000 junk strings each (no checksum): not one database read.
    let before = scrape(&app).await;
    let junk: Vec<String> = (0..1000).map(|i| format!("{i}_{:064x}", i)).collect();
    for _ in 0..50 {
        assert_eq!(
            revoke(&app, junk.clone()).await.status,
            StatusCode::ACCEPTED
        );
    }
    let after = scrape(&app).await;
    let reads = delta(&before, &after, series);
    assert!(
        reads <= 1.0,
        "junk never reaches the database: {reads} reads"
    );
    // Well-formed made-up tokens cost a read each, so they are what is limited: one full
    // batch passes, the next from the same address waits.
    let batch: Vec<String> = (1..=1000).map(|i| made_up(5_000_000 + i)).collect();
    assert_eq!(
        revoke(&app, batch.clone()).await.status,
        StatusCode::ACCEPTED
    );
    let next: Vec<String> = (1..=1000).map(|i| made_up(6_000_000 + i)).collect();
    let waited = revoke(&app, next).await;
    assert_eq!(
        waited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        waited.json
    );
    let retry: u64 = waited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
}
