//! Issue 29, idle tokens retired: under the account's `max_idle_days` a token nobody used for
//! that long (a never-used one: since its creation) is told to its issuer and the
//! Administrators 7 days before (portal and e-mail, once), then revoked by the sweep
//! (`token.revoked_idle`, once); a token used meanwhile is kept. The clock is the app's.

use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use apitokens::domain::Role;

use crate::helpers::{Acme, TestApp, ACME_ADMIN};

async fn check(app: &TestApp, token: &str) -> StatusCode {
    app.api(&format!("APIKey {token}"))
        .get("/iam/auth/check")
        .await
        .status
}

fn idle_mails(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.dir.path().join("outbox"))
        .map(|d| {
            d.map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
                .filter(|m| m.contains("is unused and will be revoked"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_unused_token_is_told_then_revoked_once_and_a_used_one_is_kept() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let policy = format!("/iam/clients/{account}/token-policy");
    // Out of range or not a number: a 400 naming the field, nothing saved.
    for bad in [json!(5), json!(4000), json!("thirty")] {
        let r = api
            .put(
                &policy,
                json!({"max_lifetime_days": null, "expiry_required": false, "max_idle_days": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
        assert!(r.json.to_string().contains("max_idle_days"), "{}", r.json);
    }
    let set = api
        .put(
            &policy,
            json!({"max_lifetime_days": null, "expiry_required": false, "max_idle_days": 30}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.json);
    assert_eq!(set.json["max_idle_days"], 30);
    assert_eq!(api.get(&policy).await.json["max_idle_days"], 30);

    let never_used = app.token_for(&eng, Role::Engineers).await;
    let used = app.token_for(&eng, Role::Engineers).await;
    app.clock().advance(Duration::days(10));
    assert_eq!(check(&app, &used).await, StatusCode::NO_CONTENT);
    app.state.gateway.flush_uses().await.unwrap();

    // Day 23: the never-used token is 7 days from its end; told once, to its issuer and the
    // Administrators (the admin's own API token, never used either, is told too).
    app.clock().advance(Duration::days(13) + Duration::hours(1));
    for _ in 0..2 {
        app.state.sweep(app.clock().now()).await.unwrap();
    }
    let eng_web = app.signed_in("eng@acme.test").await;
    let inbox = eng_web.get("/notifications").await;
    assert!(inbox.has_text("revokes it on"), "{}", inbox.body);
    let mails = idle_mails(&app);
    let to_eng = mails.iter().filter(|m| m.contains("eng@acme.test")).count();
    assert_eq!(to_eng, 1, "once, whatever the sweeps");
    assert!(mails.iter().any(|m| m.contains(ACME_ADMIN)));
    assert!(
        mails.iter().all(|m| !m.contains(&used[3..20])),
        "no secret in a mail"
    );

    // Day 30: the never-used token is revoked (and this instance's cache forgets it at once);
    // the one used on day 10 is 20 days idle and kept. Recorded once, whatever the sweeps.
    app.clock().advance(Duration::days(7));
    for _ in 0..2 {
        app.state.sweep(app.clock().now()).await.unwrap();
    }
    assert_eq!(check(&app, &never_used).await, StatusCode::UNAUTHORIZED);
    assert_eq!(check(&app, &used).await, StatusCode::NO_CONTENT);
    let revoked = app.events_of(account, "token.revoked_idle").await;
    let of_it: Vec<_> = revoked
        .iter()
        .filter(|e| e.token_id == Some(crate::helpers::token_id(&never_used)))
        .collect();
    assert_eq!(of_it.len(), 1, "{revoked:?}");
    assert!(
        of_it[0].summary.contains("unused for 30 days"),
        "{}",
        of_it[0].summary
    );
    assert!(revoked
        .iter()
        .all(|e| e.token_id != Some(crate::helpers::token_id(&used))));
}

#[tokio::test]
async fn the_policy_page_sets_the_idle_limit_and_says_what_is_wrong() {
    let Acme { app, admin } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let bad = web
        .post_from(
            "/profile/api-tokens/policy",
            "/profile/api-tokens/policy",
            &[("max_lifetime_days", ""), ("max_idle_days", "3")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has_text("14 to 3650"), "{}", bad.body);
    assert_eq!(bad.input_value("max_idle_days").as_deref(), Some("3"));
    let saved = web
        .post_from(
            "/profile/api-tokens/policy",
            "/profile/api-tokens/policy",
            &[("max_lifetime_days", ""), ("max_idle_days", "90")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let api = app.api_as(&admin, Role::Administrators).await;
    let policy = api
        .get(&format!("/iam/clients/{}/token-policy", admin.account_id))
        .await;
    assert_eq!(policy.json["max_idle_days"], 90);
    assert_eq!(
        web.get("/profile/api-tokens/policy")
            .await
            .input_value("max_idle_days")
            .as_deref(),
        Some("90")
    );
    let events = app
        .events_of(admin.account_id, "account.token_policy")
        .await;
    assert!(
        events[0].summary.contains("unused for 90 days"),
        "{}",
        events[0].summary
    );
}
