//! Tried as an attacker would: parallel guesses, guesses spread over instances, and a flood of
//! made-up set-password links.

use apitokens::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Acme, ACME_ADMIN, PASSWORD};

/// 100 wrong passwords at once for one e-mail: at most the limit (5) are ever checked; the
/// rest are refused before any password work; then even the right password is refused.
#[tokio::test]
async fn parallel_guesses_get_no_more_than_the_limit() {
    let Acme { app, .. } = Acme::start().await;
    let work_before = app.state.password_work_done();
    let guesses = (0..100).map(|n| {
        let api = app.api("");
        async move {
            api.post(
                "/iam/auth/jwt/login",
                json!({"username": ACME_ADMIN, "password": format!("guess {n}")}),
            )
            .await
            .status
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let judged = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let busy = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(judged + limited + busy, 100, "{statuses:?}");
    assert!(judged <= 5, "{judged} guesses were checked: {statuses:?}");
    assert!(limited >= 95 - busy, "{statuses:?}");
    let checked = app.state.password_work_done() - work_before;
    assert!(checked <= 5, "{checked} passwords were hashed");
    let right = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": ACME_ADMIN, "password": PASSWORD}),
        )
        .await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Guesses spread over two instances of one database count together.
#[tokio::test]
async fn two_instances_share_the_limit() {
    let Acme { app, .. } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    for (n, instance) in [&app, &sibling, &app, &sibling, &app].iter().enumerate() {
        let r = instance
            .api("")
            .post(
                "/iam/auth/jwt/login",
                json!({"username": ACME_ADMIN, "password": format!("wrong {n}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "guess {n}");
    }
    for instance in [&sibling, &app] {
        let r = instance
            .api("")
            .post(
                "/iam/auth/jwt/login",
                json!({"username": ACME_ADMIN, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json);
    }
    // Another person isn't locked out by it.
    app.acme_member("other", Role::Engineers).await;
    let r = sibling
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "other@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// A right password takes its attempt back: signing in often never locks anyone out.
#[tokio::test]
async fn right_passwords_do_not_count() {
    let Acme { app, .. } = Acme::start().await;
    for _ in 0..8 {
        let r = app
            .api("")
            .post(
                "/iam/auth/jwt/login",
                json!({"username": ACME_ADMIN, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

/// Made-up set-password links are refused after one indexed read: no password is hashed for
/// them, however many come.
#[tokio::test]
async fn made_up_set_password_links_cost_no_hashing() {
    let Acme { app, .. } = Acme::start().await;
    let client = app.client();
    let form = client.get("/login").await;
    let csrf = form.input_value("csrf_token").expect("a CSRF token");
    let before = app.state.password_work_done();
    for n in 0..20 {
        let link = apitokens::domain::Secret::generate().into_exposed();
        let r = client
            .post(
                "/set-password",
                &[
                    ("csrf_token", &csrf),
                    ("token", &link),
                    ("password", &format!("{PASSWORD} {n}")),
                    ("confirm", &format!("{PASSWORD} {n}")),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "link {n}");
    }
    assert_eq!(
        app.state.password_work_done(),
        before,
        "no hashing for dead links"
    );
}
