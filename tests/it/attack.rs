//! Tried as an attacker would: parallel guesses, guesses spread over instances, and a flood of
//! made-up set-password links.

use apitokens::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Acme, ACME_ADMIN, PASSWORD};

/// `POST /iam/auth/jwt/login` with these credentials.
async fn login(
    app: &crate::helpers::TestApp,
    email: impl std::fmt::Display,
    password: impl std::fmt::Display,
) -> crate::helpers::Reply {
    app.api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": email.to_string(), "password": password.to_string()}),
        )
        .await
}

/// 100 wrong passwords at once for one e-mail: at most the limit (5) are ever checked; the
/// rest are refused before any password work; then even the right password is refused.
#[tokio::test]
async fn parallel_guesses_get_no_more_than_the_limit() {
    let Acme { app, .. } = Acme::start().await;
    let work_before = app.state.people.password_work_done();
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
    let checked = app.state.people.password_work_done() - work_before;
    assert!(checked <= 5, "{checked} passwords were hashed");
    let right = login(&app, ACME_ADMIN, PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Guesses spread over two instances of one database count together.
#[tokio::test]
async fn two_instances_share_the_limit() {
    let Acme { app, .. } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    for (n, instance) in [&app, &sibling, &app, &sibling, &app].iter().enumerate() {
        let r = login(instance, ACME_ADMIN, format!("wrong {n}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "guess {n}");
    }
    for instance in [&sibling, &app] {
        let r = login(instance, ACME_ADMIN, PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json);
    }
    // Another person isn't locked out by it.
    app.acme_member("other", Role::Engineers).await;
    let r = login(&sibling, "other@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// A right password takes its attempt back: signing in often never locks anyone out.
#[tokio::test]
async fn right_passwords_do_not_count() {
    let Acme { app, .. } = Acme::start().await;
    for _ in 0..8 {
        let r = login(&app, ACME_ADMIN, PASSWORD).await;
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
    let before = app.state.people.password_work_done();
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
        app.state.people.password_work_done(),
        before,
        "no hashing for dead links"
    );
}

/// The per-address limit keys on the real client: `X-Forwarded-For` counts only when the
/// TCP peer is a trusted proxy.
#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    use crate::helpers::TestApp;
    let guess = |app: &TestApp, forwarded: &'static str, n: usize| {
        let http = reqwest::Client::new();
        let url = format!("{}/iam/auth/jwt/login", app.base);
        async move {
            http.post(url)
                .header("x-forwarded-for", forwarded)
                .json(&json!({"username": format!("nobody{n}@acme.test"), "password": "x"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Behind a trusted proxy (the tests connect from 127.0.0.1): 20 failures lock 10.0.0.1
    // only; 10.0.0.2 still gets its passwords checked.
    let trusted = TestApp::spawn_with(|s| {
        s.trusted_proxies = apitokens::config::parse_trusted_proxies("127.0.0.1").unwrap()
    })
    .await;
    for n in 0..20 {
        assert_eq!(
            guess(&trusted, "10.0.0.1", n).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        guess(&trusted, "10.0.0.1", 99).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        guess(&trusted, "10.0.0.2", 99).await,
        StatusCode::BAD_REQUEST
    );
    // A client that forges the header in front of the proxy doesn't escape: the proxy's own
    // entry (the rightmost) is what counts.
    assert_eq!(
        guess(&trusted, "10.0.0.2, 10.0.0.1", 98).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Without trusted proxies the header is ignored: every guess counts against the peer.
    let plain = TestApp::spawn().await;
    for n in 0..20 {
        assert_eq!(guess(&plain, "10.0.0.1", n).await, StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        guess(&plain, "10.0.0.2", 99).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// A leaked low-role token can't see or delete its issuer's higher-role tokens.
#[tokio::test]
async fn a_low_role_token_cannot_reach_higher_tokens() {
    let Acme { app, admin } = Acme::start().await;
    let strong = crate::helpers::token_id(&app.token_for(&admin, Role::Administrators).await);
    let weak = app.api_as(&admin, Role::Users).await;
    let tokens = format!("/iam/v2/clients/{}/tokens", admin.account_id);
    let listed = weak.get(&tokens).await;
    assert_eq!(listed.status, StatusCode::OK);
    let ids: Vec<i64> = listed
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert!(!ids.contains(&strong), "{ids:?}");
    assert_eq!(
        weak.get(&format!("{tokens}/{strong}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        weak.delete(&format!("{tokens}/{strong}")).await.status,
        StatusCode::NOT_FOUND
    );
    let admin_api = app.api_as(&admin, Role::Administrators).await;
    let still = admin_api.get(&format!("{tokens}/{strong}")).await;
    assert_eq!(still.json["deleted"], false);
}

/// A token acts with the lower of its own role and its issuer's current one.
#[tokio::test]
async fn a_token_never_acts_above_its_issuer() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let token = app.token_for(&eng, Role::Engineers).await;
    // As if a demotion had raced past the token rule: the issuer is now a Users member.
    let eng_id = eng.id;
    app.db(move |c| {
        use apitokens::db::schema::users::dsl::*;
        use diesel::prelude::*;
        diesel::update(users.find(eng_id))
            .set(role.eq(Role::Users))
            .execute(c)
            .unwrap()
    })
    .await;
    let check = app.api(&format!("APIKey {token}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = check.get("/iam/auth/check").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        if r.headers["x-auth-role"] == "2" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still acting as Engineers"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = check.get("/iam/auth/check?min_role=Engineers").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    drop(admin);
}

/// Many creates racing one demotion: no token ends up above its issuer.
#[tokio::test]
async fn creates_racing_a_demotion_leave_no_token_above_the_issuer() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Administrators).await;
    let eng_api = app.api_as(&eng, Role::Administrators).await;
    let admin_api = app.api_as(&admin, Role::Administrators).await;
    let tokens = format!("/iam/v2/clients/{}/tokens", admin.account_id);
    let demote = format!("/iam/clients/{}/client-users/{}", admin.account_id, eng.id);
    let creates = (0..20).map(|n| {
        let (api, tokens) = (&eng_api, &tokens);
        async move {
            api.post(
                tokens,
                json!({"name": format!("race {n}"), "exp_date": null,
                       "client_user": {"role": {"id": 1}}}),
            )
            .await
            .status
        }
    });
    let demotion = async {
        admin_api
            .send(
                reqwest::Method::PUT,
                &demote,
                Some(json!({"user_role": {"id": 5}})),
            )
            .await
            .status
    };
    let (statuses, demoted) = tokio::join!(futures_util::future::join_all(creates), demotion);
    let issuer = eng.id;
    let above = app
        .db(move |c| {
            use apitokens::db::schema::tokens::dsl::*;
            use diesel::prelude::*;
            tokens
                .filter(issuer_id.eq(issuer))
                .filter(deleted_at.is_null())
                .filter(role.eq(Role::Administrators))
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    let current = app
        .db(move |c| {
            apitokens::repo::User::find(c, issuer)
                .unwrap()
                .unwrap()
                .role
        })
        .await;
    if demoted == StatusCode::NO_CONTENT {
        assert_eq!(current, Role::Engineers);
        assert_eq!(
            above, 0,
            "demoted, yet {above} Administrators tokens: {statuses:?}"
        );
    } else {
        // The demotion lost the race and was refused because of those tokens: consistent too.
        assert_eq!(demoted, StatusCode::FORBIDDEN);
        assert_eq!(current, Role::Administrators);
        assert!(above > 0);
    }
}

/// The mail outbox (set-password links travel in it) is private: the folder 0700, each
/// message 0600.
#[tokio::test]
async fn outbox_messages_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let r = api
        .post(
            "/iam/clients/invite_user",
            json!({"client_id": admin.account_id, "email": "new@acme.test", "user_role": {"id": 2}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let outbox = app.dir.path().join("outbox");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&outbox), 0o700);
    let messages: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert!(!messages.is_empty());
    for m in messages {
        assert_eq!(mode(&m), 0o600, "{}", m.display());
    }
}

/// Over https the browser is told to stay on https.
#[tokio::test]
async fn hsts_only_over_https() {
    use crate::helpers::TestApp;
    let https = TestApp::spawn_with(|s| s.base_url = "https://tokens.example".into()).await;
    let r = reqwest::get(format!("{}/healthz", https.base))
        .await
        .unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let plain = TestApp::spawn().await;
    let r = reqwest::get(format!("{}/healthz", plain.base))
        .await
        .unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
}

/// Signing in again in a browser ends the session it had: an old copy of the cookie no
/// longer works.
#[tokio::test]
async fn signing_in_ends_the_browsers_previous_session() {
    let Acme { app, .. } = Acme::start().await;
    app.acme_member("eng", Role::Engineers).await;
    let browser = app.signed_in(ACME_ADMIN).await;
    let old_cookie = browser.cookie_header();
    let with_old = || async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}/profile", app.base))
            .header("cookie", &old_cookie)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        with_old().await,
        StatusCode::OK,
        "the copy works while the session lives"
    );
    let page = browser.sign_in("eng@acme.test", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        with_old().await,
        StatusCode::SEE_OTHER,
        "the old session ended"
    );
}

async fn jwt_of(app: &crate::helpers::TestApp, email: &str) -> (String, String) {
    let r = login(app, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    (
        r.json["access"].as_str().unwrap().to_string(),
        r.json["refresh"].as_str().unwrap().to_string(),
    )
}

/// Refused at the gateway here at once, and on a sibling within the cache's bound (polled).
async fn refused_everywhere(apps: [&crate::helpers::TestApp; 2], jwt: &str) {
    assert_eq!(
        apps[0]
            .api(&format!("Bearer {jwt}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "at once on the instance that made the change"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = apps[1]
            .api(&format!("Bearer {jwt}"))
            .get("/iam/auth/check")
            .await
            .status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(
            std::time::Instant::now() < deadline,
            "the sibling still accepts it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Removing a user, changing their role and "Sign out everywhere" end their JWTs at the
/// gateway (and their refresh tokens), not an hour later.
#[tokio::test]
async fn revocation_reaches_jwts_at_the_gateway() {
    let Acme { app, admin } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    let admin_api = app.api_as(&admin, Role::Administrators).await;
    let acct = admin.account_id;

    // A role change: the old JWT ends; a new one acts with the new role.
    let eng = app.acme_member("eng", Role::Engineers).await;
    let (jwt, _) = jwt_of(&app, "eng@acme.test").await;
    for instance in [&app, &sibling] {
        let r = instance
            .api(&format!("Bearer {jwt}"))
            .get("/iam/auth/check")
            .await;
        assert_eq!(r.headers["x-auth-role"], "5");
    }
    let r = admin_api
        .send(
            reqwest::Method::PUT,
            &format!("/iam/clients/{acct}/client-users/{}", eng.id),
            Some(json!({"user_role": {"id": 2}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    refused_everywhere([&app, &sibling], &jwt).await;
    let (fresh, _) = jwt_of(&app, "eng@acme.test").await;
    let r = sibling
        .api(&format!("Bearer {fresh}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(r.headers["x-auth-role"], "2");

    // Removal: the JWT and its refresh token end.
    let (jwt, refresh) = jwt_of(&app, "eng@acme.test").await;
    sibling
        .api(&format!("Bearer {jwt}"))
        .get("/iam/auth/check")
        .await;
    let r = admin_api
        .delete(&format!("/iam/clients/{acct}/client-users/{}", eng.id))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    refused_everywhere([&app, &sibling], &jwt).await;
    let r = app
        .api("")
        .post("/iam/auth/jwt/refresh", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Sign out everywhere: portal sessions, JWTs and refresh tokens end.
    app.acme_member("ops", Role::Engineers).await;
    let (jwt, refresh) = jwt_of(&app, "ops@acme.test").await;
    let other_browser = app.signed_in("ops@acme.test").await;
    let browser = app.signed_in("ops@acme.test").await;
    let profile = browser.get("/profile").await;
    let csrf = profile.input_value("csrf_token").unwrap();
    let out = browser
        .post("/profile/sign-out-everywhere", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    refused_everywhere([&app, &sibling], &jwt).await;
    let r = app
        .api("")
        .post("/iam/auth/jwt/refresh", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let page = other_browser.get("/profile").await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "the other browser is signed out"
    );
    // Signing in again works, and its JWTs do.
    let (again, _) = jwt_of(&app, "ops@acme.test").await;
    let r = sibling
        .api(&format!("Bearer {again}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

/// Work that holds every connection of the main pool (a flood, a slow page) can't starve
/// the gateway: token and user reads have connections of their own.
#[tokio::test]
async fn the_gateway_has_database_capacity_no_one_else_can_take() {
    let Acme { app, admin } = Acme::start().await;
    let token = app.token_for(&admin, Role::Engineers).await;
    let lister = app.api_as(&admin, Role::Administrators).await;
    let tokens = format!("/iam/v2/clients/{}/tokens", admin.account_id);
    assert_eq!(lister.get(&tokens).await.status, StatusCode::OK);
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Arc::new(std::sync::Mutex::new(held));
    let size = app.state.settings.db_pool_size;
    let (taken_tx, mut taken_rx) = tokio::sync::mpsc::channel::<()>(size as usize);
    let mut holders = vec![];
    for _ in 0..size {
        let (pool, held, taken) = (app.state.pool().clone(), held.clone(), taken_tx.clone());
        holders.push(tokio::task::spawn_blocking(move || {
            let conn = pool.get().expect("a connection");
            taken.blocking_send(()).unwrap();
            let _ = held.lock().unwrap().recv();
            drop(conn);
        }));
    }
    for _ in 0..size {
        taken_rx.recv().await.unwrap();
    }
    // Every main connection is taken: a list can't get one (503 after the wait)...
    assert_eq!(
        lister.get(&tokens).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // ...but a token this instance never saw is checked at once.
    let check = app
        .api(&format!("APIKey {token}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(check.status, StatusCode::NO_CONTENT);
    assert!(check.headers.get("x-auth-stale").is_none());
    for _ in 0..size {
        release.send(()).unwrap();
    }
    for h in holders {
        h.await.unwrap();
    }
}

/// A token made with a token lives no longer than it, and goes when it goes, transitively.
#[tokio::test]
async fn tokens_made_with_tokens_are_capped_and_revoked_with_their_parent() {
    let Acme { app, admin } = Acme::start().await;
    let acct = admin.account_id;
    let tokens = format!("/iam/v2/clients/{acct}/tokens");
    let admin_api = app.api_as(&admin, Role::Administrators).await;
    async fn make(
        api: &crate::helpers::Api,
        tokens: &str,
        name: &str,
        exp: serde_json::Value,
    ) -> crate::helpers::Reply {
        let body = json!({"name": name, "exp_date": exp, "client_user": {"role": {"id": 5}}});
        api.post(tokens, body).await
    }
    // A parent that expires in 10 days: children can't outlive it.
    let in_10_days =
        apitokens::web::api::model::rfc3339(app.clock().now() + time::Duration::days(10));
    let parent = make(&admin_api, &tokens, "parent", json!(in_10_days)).await;
    assert_eq!(parent.status, StatusCode::OK, "{}", parent.json);
    let parent_api = app.api(&format!(
        "APIKey {}",
        parent.json["token"].as_str().unwrap()
    ));
    let never = make(&parent_api, &tokens, "child never", serde_json::Value::Null).await;
    assert_eq!(
        never.json["exp_date"],
        json!(in_10_days),
        "capped at the parent's"
    );
    let later = apitokens::web::api::model::rfc3339(app.clock().now() + time::Duration::days(30));
    let capped = make(&parent_api, &tokens, "child later", json!(later)).await;
    assert_eq!(capped.json["exp_date"], json!(in_10_days));
    let sooner = apitokens::web::api::model::rfc3339(app.clock().now() + time::Duration::days(2));
    let kept = make(&parent_api, &tokens, "child sooner", json!(sooner)).await;
    assert_eq!(kept.json["exp_date"], json!(sooner));

    // A chain: parent → child → grandchild; deleting the parent ends all three at once.
    let child_api = app.api(&format!("APIKey {}", never.json["token"].as_str().unwrap()));
    let grandchild = make(&child_api, &tokens, "grandchild", serde_json::Value::Null).await;
    assert_eq!(grandchild.status, StatusCode::OK);
    let grandchild_api = app.api(&format!(
        "APIKey {}",
        grandchild.json["token"].as_str().unwrap()
    ));
    assert_eq!(
        grandchild_api.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT
    );
    let page = app
        .signed_in(ACME_ADMIN)
        .await
        .get("/profile/api-tokens")
        .await;
    assert!(page.has_text("created with token parent"), "{}", page.body);
    assert!(page.has_text("created with token child never"));

    let parent_id = parent.json["id"].as_i64().unwrap();
    assert_eq!(
        admin_api
            .delete(&format!("{tokens}/{parent_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    for api in [&parent_api, &child_api, &grandchild_api] {
        assert_eq!(
            api.get("/iam/auth/check").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    for made in [&never, &capped, &kept, &grandchild] {
        let id = made.json["id"].as_i64().unwrap();
        let shown = admin_api.get(&format!("{tokens}/{id}")).await;
        assert_eq!(shown.json["deleted"], true, "{}", made.json["name"]);
    }
    // Tokens made in the portal have no parent and are untouched.
    assert_eq!(
        admin_api.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT
    );
}

fn made_up_token(id: i64) -> String {
    format!(
        "APIKey {id}_{}",
        apitokens::domain::Secret::generate().expose()
    )
}

/// Probing the next id before its token exists never delays that token: it works the moment
/// it is created, on the instance that was probed and on any other.
#[tokio::test]
async fn a_probed_id_works_the_moment_its_token_is_created() {
    let Acme { app, admin } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    let first = app.token_for(&admin, Role::Engineers).await;
    let next = crate::helpers::token_id(&first) + 1;
    for round in 0..3 {
        for instance in [&app, &sibling] {
            let r = instance
                .api(&made_up_token(next + round))
                .get("/iam/auth/check")
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
    }
    let fresh = app.token_for(&admin, Role::Engineers).await;
    assert_eq!(crate::helpers::token_id(&fresh), next, "ids are a sequence");
    for instance in [&sibling, &app] {
        let r = instance
            .api(&format!("APIKey {fresh}"))
            .get("/iam/auth/check")
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
}

/// A burst of made-up ids above every real one shares one `max(id)` read at a time instead of
/// costing a read each; real tokens in the same burst still pass.
#[tokio::test]
async fn a_burst_of_made_up_ids_shares_reads() {
    let Acme { app, admin } = Acme::start().await;
    let real = app.token_for(&admin, Role::Engineers).await;
    let services = &app.state.services;
    let before = services.gateway.reads();
    let made_up: Vec<String> = (0..200)
        .map(|i| made_up_token(1_000_000 + i * 7919))
        .collect();
    let answers =
        futures_util::future::join_all(made_up.iter().map(|h| services.gateway.authenticate(h)))
            .await;
    assert!(answers.iter().all(|a| matches!(
        a,
        Err(apitokens::services::vocabulary::AuthError::Unauthorized)
    )));
    let reads = services.gateway.reads() - before;
    // Two when all 200 arrive while the first read runs (the usual case); a busy machine that
    // pauses the burst midway makes one more round per pause. Without sharing it would be 200.
    assert!(
        (1..=10).contains(&reads),
        "200 made-up ids took {reads} reads"
    );
    // Ids that can't be sequence values cost nothing at all.
    let before = services.gateway.reads();
    for id in [0, -1, -9_000_000_000] {
        assert!(services
            .gateway
            .authenticate(&made_up_token(id))
            .await
            .is_err());
    }
    assert_eq!(services.gateway.reads(), before);
    let real = format!("APIKey {real}");
    assert!(services.gateway.authenticate(&real).await.is_ok());
}

/// PostgreSQL can commit a lower id after a higher one. An id missing while a slow create
/// still holds it must work once that create commits: "missing" below the highest id is only
/// remembered once every create that could hold it has ended.
#[tokio::test]
async fn a_lower_id_committed_after_a_higher_one_works_at_once() {
    use diesel::prelude::*;
    let Acme { app, admin } = Acme::start().await;
    if crate::helpers::postgres_url().is_none() {
        eprintln!("SQLite writes one transaction at a time: the race needs PostgreSQL");
        return;
    }
    let secret = apitokens::domain::Secret::generate();
    let hash = apitokens::domain::secret::sha256_hex(secret.expose());
    let url = app.state.settings.database_url.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel::<i64>();
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<()>();
    let (account, issuer) = (admin.account_id, admin.id);
    let slow_create = tokio::task::spawn_blocking(move || {
        let mut conn = apitokens::db::establish_postgres(&url).expect("connect");
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
            }
            let row: Id = diesel::sql_query(format!(
                "INSERT INTO tokens (account_id, issuer_id, name, role, secret_hash, created_at) \
                 VALUES ({account}, {issuer}, 'slow', {role}, '{hash}', now()) RETURNING id",
                role = Role::Engineers.id()
            ))
            .get_result(conn)?;
            held_tx.send(row.id).unwrap();
            commit_rx.recv().unwrap();
            Ok(())
        })
        .expect("slow create commits");
    });
    let held = held_rx.recv().unwrap();
    let later = app.token_for(&admin, Role::Engineers).await;
    assert!(crate::helpers::token_id(&later) > held);
    let held_token = format!("APIKey {held}_{}", secret.expose());
    for _ in 0..3 {
        let r = app.api(&held_token).get("/iam/auth/check").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "not committed yet");
    }
    commit_tx.send(()).unwrap();
    slow_create.await.unwrap();
    let r = app.api(&held_token).get("/iam/auth/check").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

/// Misses of many distinct tokens at once are read together (a few reads, not one each),
/// and each still gets its own answer: a deleted token among them is refused.
#[tokio::test]
async fn concurrent_misses_share_reads_and_keep_their_own_answers() {
    let Acme { app, admin } = Acme::start().await;
    let mut tokens = vec![];
    for _ in 0..40 {
        tokens.push(format!(
            "APIKey {}",
            app.token_for(&admin, Role::Engineers).await
        ));
    }
    let gone = crate::helpers::token_id(&tokens[7]["APIKey ".len()..]);
    let api = app.api_as(&admin, Role::Administrators).await;
    let r = api
        .delete(&format!(
            "/iam/v2/clients/{}/tokens/{gone}",
            admin.account_id
        ))
        .await;
    assert!(r.status.is_success(), "{}", r.status);
    // A fresh instance: every one of them is a miss there.
    let sibling = app.spawn_sibling().await;
    let services = &sibling.state.services;
    let before = services.gateway.reads();
    let answers =
        futures_util::future::join_all(tokens.iter().map(|t| services.gateway.authenticate(t)))
            .await;
    for (i, answer) in answers.iter().enumerate() {
        if i == 7 {
            assert!(matches!(
                answer,
                Err(apitokens::services::vocabulary::AuthError::Unauthorized)
            ));
        } else {
            assert!(answer.is_ok(), "token #{i}: {answer:?}");
        }
    }
    let reads = services.gateway.reads() - before;
    assert!(reads <= 4, "40 misses took {reads} reads");
}
