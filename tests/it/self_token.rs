//! Issue 29, its "token that knows itself": `GET /iam/tokens/self` and `POST
//! /iam/tokens/self/rotate`, with a leaked low-role token (it sees only itself), the lineage
//! rules kept, and no rotation through a secret a rotation replaced.

use reqwest::StatusCode;
use serde_json::json;

use apitokens::domain::Role;

use crate::helpers::{token_id, Acme, ACME_ADMIN};

#[tokio::test]
async fn a_token_reads_and_rotates_itself_and_nothing_else() {
    let Acme { app, .. } = Acme::start().await;
    let eve = app.acme_member("eve", Role::Users).await;
    let token = app.token_for(&eve, Role::Users).await;
    let as_token = |t: &str| app.api(&format!("APIKey {t}"));
    // Which token am I?
    let me = as_token(&token).get("/iam/tokens/self").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.json);
    assert_eq!(me.json["id"].as_i64(), Some(token_id(&token)));
    assert!(me.json.to_string().contains("Users"), "{}", me.json);
    // A JWT is a person, not a token: told what to send.
    let jwt = app.api_jwt(ACME_ADMIN).await;
    let person = jwt.get("/iam/tokens/self").await;
    assert_eq!(person.status, StatusCode::BAD_REQUEST);
    assert!(
        person.json.to_string().contains("APIKey"),
        "{}",
        person.json
    );
    assert_eq!(
        app.api("").get("/iam/tokens/self").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Rotate with a grace: the new secret in the form presented, shown once.
    let rotated = as_token(&token)
        .post("/iam/tokens/self/rotate", json!({"grace_seconds": 600}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);
    let new = rotated.json["token"].as_str().unwrap().to_owned();
    assert_eq!(token_id(&new), token_id(&token));
    assert_ne!(new, token);
    assert!(rotated.json["old_secret_valid_until"].is_string());
    // The old secret still authenticates through its grace, but can't rotate again (that
    // would take the token from whoever holds the new secret).
    assert_eq!(
        as_token(&token).get("/iam/tokens/self").await.status,
        StatusCode::OK
    );
    let stale = as_token(&token)
        .post("/iam/tokens/self/rotate", json!({"grace_seconds": 0}))
        .await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST, "{}", stale.json);
    assert!(
        stale.json.to_string().contains("replaced by a rotation"),
        "{}",
        stale.json
    );
    assert_eq!(
        as_token(&new).get("/iam/tokens/self").await.status,
        StatusCode::OK
    );
    // The new one may, and the old one then stops at once (no grace asked).
    let again = as_token(&new)
        .post("/iam/tokens/self/rotate", json!({}))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    let newest = again.json["token"].as_str().unwrap().to_owned();
    assert_eq!(
        as_token(&new).get("/iam/tokens/self").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        as_token(&token).get("/iam/tokens/self").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The `$` form answers in kind.
    let dollar = newest.replace('_', "$");
    let kind = as_token(&dollar)
        .post("/iam/tokens/self/rotate", json!({"grace_seconds": 0}))
        .await;
    assert_eq!(kind.status, StatusCode::OK, "{}", kind.json);
    assert!(kind.json["token"].as_str().unwrap().contains('$'));
    // Bad bodies are named.
    let latest = kind.json["token"].as_str().unwrap().to_owned();
    let bad = as_token(&latest)
        .post("/iam/tokens/self/rotate", json!({"grace_seconds": -5}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json.to_string().contains("grace_seconds"),
        "{}",
        bad.json
    );
}

/// A child made with a token expires no later than its parent, and rotating itself can't
/// push it past that (the lineage rules of rotation, through the self route).
#[tokio::test]
async fn a_child_rotating_itself_stays_inside_its_lineage() {
    let Acme { app, admin } = Acme::start().await;
    let (id, secret) = app
        .expiring_token(&admin, "parent", time::Duration::days(10))
        .await;
    let parent = format!("{id}_{secret}");
    let api = app.api(&format!("APIKey {parent}"));
    let made = api
        .post(
            &format!("/iam/v2/clients/{}/tokens", admin.account_id),
            json!({"name": "child", "exp_date": null, "client_user": {"role": {"id": Role::Users.id()}}}),
        )
        .await;
    assert!(made.status.is_success(), "{}", made.json);
    let child = made.json["token"].as_str().unwrap().to_owned();
    let far = (app.clock().now() + time::Duration::days(300)).date();
    let r = app
        .api(&format!("APIKey {child}"))
        .post(
            "/iam/tokens/self/rotate",
            json!({"grace_seconds": 0, "exp_date": format!("{far}T00:00:00Z")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let until = r.json["exp_date"].as_str().unwrap_or_default().to_owned();
    let cap = (app.clock().now() + time::Duration::days(11))
        .date()
        .to_string();
    assert!(
        !until.is_empty() && until.as_str() < cap.as_str(),
        "capped at the parent's expiry, not 300 days: {}",
        r.json
    );
}
