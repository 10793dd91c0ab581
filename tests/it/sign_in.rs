use apitokens::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Acme, TestApp, ACME_ADMIN, PASSWORD};

#[tokio::test]
async fn a_user_signs_in_and_sees_their_profile() {
    let app = TestApp::spawn().await;
    app.acme_member("alice", Role::Engineers).await;
    let client = app.client();

    let login = client.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    let cookie = login
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(cookie.contains("httponly"), "{cookie}");
    assert!(cookie.contains("samesite=lax"), "{cookie}");

    let answer = client.sign_in("Alice@Acme.test", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/");

    let profile = client.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(
        profile.text_of("profile-email").as_deref(),
        Some("alice@acme.test")
    );
    assert_eq!(
        profile.text_of("profile-role").as_deref(),
        Some("Engineers")
    );
    assert_eq!(profile.text_of("profile-account").as_deref(), Some("Acme"));
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_generic_message() {
    let app = TestApp::spawn().await;
    app.acme_member("alice", Role::Users).await;
    let client = app.client();
    let wrong = client.sign_in("alice@acme.test", "not the password").await;
    let unknown = client.sign_in("nobody@acme.test", PASSWORD).await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            page.text_of("login-error").as_deref(),
            Some("Wrong e-mail or password.")
        );
    }
    // Still signed out.
    assert_eq!(client.get("/profile").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_post_without_a_valid_csrf_token_is_refused_with_403() {
    let app = TestApp::spawn().await;
    app.acme_member("alice", Role::Administrators).await;
    let client = app.client();
    client.get("/login").await;
    let no_token = client
        .post(
            "/login",
            &[("email", "alice@acme.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let forged = client
        .post(
            "/login",
            &[
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
                ("csrf_token", "forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let client = app.signed_in("alice@acme.test").await;
    let create = client
        .post(
            "/profile/api-tokens",
            &[("name", "x"), ("role", "2"), ("expiration", "never")],
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    assert!(create.has_text("This form has expired"));
    let logout = client.post("/logout", &[]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    // Neither request had an effect.
    assert_eq!(client.get("/profile").await.status, StatusCode::OK);
    assert!(client
        .get("/profile/api-tokens")
        .await
        .token_rows()
        .is_empty());
}

#[tokio::test]
async fn the_api_only_role_is_told_to_use_the_api() {
    let app = TestApp::spawn().await;
    app.acme_member("bot", Role::PurgeAndPrefetchApi).await;
    let client = app.client();
    let page = client.sign_in("bot@acme.test", PASSWORD).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let message = page.text_of("login-error").unwrap();
    assert!(message.contains("works through the API only"), "{message}");
    assert_eq!(client.get("/profile").await.status, StatusCode::SEE_OTHER);
    // A wrong password does not reveal the role.
    let wrong = client.sign_in("bot@acme.test", "wrong password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_out_ends_the_session_even_for_a_copied_cookie() {
    let app = TestApp::spawn().await;
    app.acme_member("alice", Role::Users).await;
    let client = app.signed_in("alice@acme.test").await;
    let copied = client.cookie_header();
    assert!(!copied.is_empty());

    let out = client.post_from("/profile", "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login?signed_out=1");
    assert_eq!(client.get("/profile").await.status, StatusCode::SEE_OTHER);

    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/profile", app.base))
        .header("cookie", copied)
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::SEE_OTHER,
        "the old cookie must not work after sign-out"
    );
}

#[tokio::test]
async fn pages_need_a_session_and_sign_in_returns_to_them() {
    let app = TestApp::spawn().await;
    app.acme_member("alice", Role::Users).await;
    let client = app.client();
    assert_eq!(client.get("/").await.location(), "/profile/api-tokens");
    for path in ["/profile", "/profile/api-tokens", "/profile/api-tokens/new"] {
        let page = client.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location().starts_with("/login"),
            "{path}: {}",
            page.location()
        );
    }
    let to_login = client.get("/profile/api-tokens?status=active").await;
    assert_eq!(
        to_login.location(),
        "/login?next=%2Fprofile%2Fapi-tokens%3Fstatus%3Dactive"
    );
    let login = client.get(to_login.location()).await;
    assert_eq!(
        login.input_value("next").as_deref(),
        Some("/profile/api-tokens?status=active")
    );
    let csrf = login.input_value("csrf_token").unwrap();
    let answer = client
        .post(
            "/login",
            &[
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("next", "/profile/api-tokens?status=active"),
            ],
        )
        .await;
    assert_eq!(answer.location(), "/profile/api-tokens?status=active");
}

#[tokio::test]
async fn sign_in_never_redirects_off_site() {
    let app = TestApp::spawn().await;
    app.acme_member("alice", Role::Users).await;
    let client = app.client();
    let csrf = client
        .get("/login")
        .await
        .input_value("csrf_token")
        .unwrap();
    let answer = client
        .post(
            "/login",
            &[
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/");
}

#[tokio::test]
async fn repeated_failures_lock_the_email_even_for_the_right_password() {
    let app = TestApp::spawn().await;
    app.acme_member("alice", Role::Users).await;
    let client = app.client();
    for _ in 0..5 {
        assert_eq!(
            client
                .sign_in("alice@acme.test", "wrong password")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = client.sign_in("alice@acme.test", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked
        .text_of("login-error")
        .unwrap()
        .contains("Too many failed sign-in attempts"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let client = app.client();
    for path in ["/login", "/healthz", "/no-such-page"] {
        let page = client.get(path).await;
        let csp = page
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(
            page.headers.get("x-content-type-options").unwrap(),
            "nosniff"
        );
        assert!(page.headers.get("referrer-policy").is_some());
    }
    assert_eq!(
        client.get("/no-such-page").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let health = client.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );
    // /readyz answers within a second either way; on a machine busy with the rest of the
    // suite a 503 "not in time" is honest, so look again (bounded) before calling it broken.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ready = loop {
        let ready = client.get("/readyz").await;
        if ready.status == StatusCode::OK || std::time::Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::OK, "ready")
    );
}

#[tokio::test]
async fn bad_login_input_gets_a_message_not_a_500() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let csrf = client
        .get("/login")
        .await
        .input_value("csrf_token")
        .unwrap();
    let empty = client
        .post(
            "/login",
            &[("email", ""), ("password", ""), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        empty.text_of("login-error").as_deref(),
        Some("Enter your e-mail and password.")
    );
    let huge = "x".repeat(10_000);
    let big = client
        .post(
            "/login",
            &[("email", &huge), ("password", &huge), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(big.status, StatusCode::UNAUTHORIZED);
    let too_big = "x".repeat(100_000);
    let over = client
        .post("/login", &[("email", &too_big), ("csrf_token", &csrf)])
        .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn every_form_refuses_a_post_without_its_csrf_token_and_changes_nothing() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let token = app.token_for(&eng, Role::Engineers).await;
    let id = crate::helpers::token_id(&token);
    let web = app.signed_in(ACME_ADMIN).await;
    let link = "ab".repeat(32);
    let routes: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/login".into(),
            vec![("email", ACME_ADMIN), ("password", PASSWORD)],
        ),
        ("/logout".into(), vec![]),
        (
            "/profile/api-tokens".into(),
            vec![("name", "x"), ("role", "2"), ("expiration", "never")],
        ),
        (format!("/profile/api-tokens/{id}/delete"), vec![]),
        ("/notifications/read".into(), vec![]),
        ("/profile/notifications".into(), vec![]),
        (
            "/users".into(),
            vec![("name", "New"), ("email", "new@acme.test"), ("role", "2")],
        ),
        (
            format!("/users/{}/role", eng.id),
            vec![("role", "2"), ("delete_tokens", "1")],
        ),
        (
            format!("/users/{}/remove", eng.id),
            vec![("delete_tokens", "1")],
        ),
        (format!("/users/{}/delete-tokens", eng.id), vec![]),
        (
            "/set-password".into(),
            vec![
                ("token", &link),
                ("password", "long enough pw"),
                ("confirm", "long enough pw"),
            ],
        ),
    ];
    for (path, fields) in &routes {
        for forged in [None, Some("forged")] {
            let mut form = fields.clone();
            if let Some(value) = forged {
                form.push(("csrf_token", value));
            }
            let page = web.post(path, &form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} with {forged:?}");
        }
    }
    // Nothing happened: still signed in, the token works, the user keeps role and account,
    // no user was added and e-mails are still on.
    assert_eq!(web.get("/profile").await.status, StatusCode::OK);
    let api = app.api(&format!("APIKey {token}"));
    assert_eq!(api.get("/iam/users/me").await.status, StatusCode::OK);
    let users = app
        .api_as(&admin, Role::Administrators)
        .await
        .get("/iam/users")
        .await;
    let emails: Vec<&str> = users
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec![ACME_ADMIN, "eng@acme.test"]);
    assert_eq!(users.json[1]["groups"][0]["id"], 5);
    let settings = web.get("/profile/notifications").await;
    assert_eq!(
        settings
            .attrs("input[name=token_expiry_email]", "checked")
            .len(),
        1,
        "e-mails still on"
    );
}
