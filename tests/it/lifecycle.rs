//! Issue 13's token lifecycle on the real server, SQLite and PostgreSQL: rotation with a grace
//! window (to the second, on every instance), the account's token policy through the form and
//! the API, and an audit trail where every event appears exactly once.

use apitokens::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::Duration;

use crate::helpers::{token_id, Acme, TestApp, ACME_ADMIN};

async fn check(app: &TestApp, token: &str) -> StatusCode {
    app.api(&format!("APIKey {token}"))
        .get("/iam/auth/check")
        .await
        .status
}

async fn events(
    app: &TestApp,
    account: i64,
    token: i64,
) -> Vec<(String, Option<i64>, Option<String>)> {
    app.db(move |c| {
        apitokens::repo::events::AccountEvent::for_token(c, account, token, 100)
            .unwrap()
            .into_iter()
            .rev()
            .map(|(e, _)| (e.kind, e.actor_id, e.client_address))
            .collect()
    })
    .await
}

#[tokio::test]
async fn a_rotated_secret_replaces_the_old_one_which_works_to_the_end_of_its_grace_on_every_instance(
) {
    let Acme { app, admin } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    let old = app.token_for(&admin, Role::Engineers).await;
    let id = token_id(&old);
    // The issuer rotates it (a token may rotate only itself: `rotation_stays_inside_the_lineage`).
    let api = app.api_jwt(ACME_ADMIN).await;
    // Both instances have the old secret cached.
    assert_eq!(check(&app, &old).await, StatusCode::NO_CONTENT);
    assert_eq!(check(&sibling, &old).await, StatusCode::NO_CONTENT);

    let path = format!("/iam/v2/clients/{}/tokens/{id}/rotate", admin.account_id);
    let r = api.post(&path, json!({"grace_seconds": 3600})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.headers["cache-control"], "no-store");
    let new = r.json["token"].as_str().unwrap().to_string();
    assert_eq!(token_id(&new), id, "the same token id");
    assert_ne!(new, old);
    assert!(apitokens::domain::token_format::checksum_ok(
        id,
        &new[new.len() - 64..]
    ));
    assert_eq!(r.json["name"], "api test");
    let until = r.json["old_secret_valid_until"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(until.ends_with('Z'), "{until}");

    // Only hashes are stored; the new secret is never returned again.
    let row = app
        .db(move |c| apitokens::repo::Token::find(c, id).unwrap().unwrap())
        .await;
    let secret_of = |t: &str| t[t.len() - 64..].to_string();
    assert_eq!(
        row.secret_hash,
        apitokens::domain::sha256_hex(&secret_of(&new))
    );
    assert_eq!(
        row.old_secret_hash.as_deref(),
        Some(apitokens::domain::sha256_hex(&secret_of(&old)).as_str())
    );
    let again = api
        .get(&format!("/iam/v2/clients/{}/tokens/{id}", admin.account_id))
        .await;
    assert!(!again.json.to_string().contains(&secret_of(&new)));

    // Inside the grace both work, here and on the sibling; just before its end too.
    assert_eq!(
        check(&app, &new).await,
        StatusCode::NO_CONTENT,
        "forgotten here at once"
    );
    assert_eq!(check(&app, &old).await, StatusCode::NO_CONTENT);
    assert_eq!(check(&sibling, &old).await, StatusCode::NO_CONTENT);
    // The sibling still holds the row read before the rotation: it reads it again when a
    // secret doesn't match (at most every 100 ms), so the new one works there at once too
    // (poll, bounded: at most 100 ms plus a poll).
    let rotated_at = std::time::Instant::now();
    let accepted_after = loop {
        if check(&sibling, &new).await == StatusCode::NO_CONTENT {
            break rotated_at.elapsed();
        }
        assert!(
            rotated_at.elapsed() < std::time::Duration::from_secs(2),
            "new secret refused on the sibling for 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        accepted_after < std::time::Duration::from_millis(400),
        "accepted only after {accepted_after:?}"
    );
    assert_eq!(check(&sibling, &old).await, StatusCode::NO_CONTENT);
    // Ten seconds before its end (the real clock moves on under the test a little too).
    app.clock().advance(Duration::seconds(3590));
    for inst in [&app, &sibling] {
        assert_eq!(check(inst, &old).await, StatusCode::NO_CONTENT);
    }
    // At its end, the old one stops on both at once (whatever their cache holds); the new one
    // goes on.
    app.clock().advance(Duration::seconds(10));
    for inst in [&app, &sibling] {
        assert_eq!(check(inst, &old).await, StatusCode::UNAUTHORIZED);
        assert_eq!(check(inst, &new).await, StatusCode::NO_CONTENT);
    }

    // A sweep forgets the old hash and records it, once.
    let now = app.clock().now();
    app.state.sweep(now).await.unwrap();
    app.state.sweep(now).await.unwrap();
    let row = app
        .db(move |c| apitokens::repo::Token::find(c, id).unwrap().unwrap())
        .await;
    assert_eq!((row.old_secret_hash, row.old_secret_until), (None, None));
    // (Less the background flush's "first use from" event, which lands whenever its
    // once-a-second flush does: not what this test is about, and a loaded CI machine once
    // flushed before the assertion.)
    let kinds: Vec<String> = events(&app, admin.account_id, id)
        .await
        .into_iter()
        .map(|e| e.0)
        .filter(|k| k != "token.new_address")
        .collect();
    assert_eq!(
        kinds,
        ["token.created", "token.rotated", "token.grace_ended"]
    );

    // No grace: the old secret stops at once. (A new JWT: the clock moved past the first's hour.)
    let api = app.api_jwt(ACME_ADMIN).await;
    let r = api.post(&path, json!({})).await;
    assert_eq!(r.json["old_secret_valid_until"], Value::Null);
    let newest = r.json["token"].as_str().unwrap().to_string();
    assert_eq!(check(&app, &new).await, StatusCode::UNAUTHORIZED);
    assert_eq!(check(&app, &newest).await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn rotation_refuses_what_it_must_and_changes_nothing_then() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let eng_token = app.token_for(&eng, Role::Engineers).await;
    let admin_token = app.token_for(&admin, Role::Administrators).await;
    let account = admin.account_id;
    let as_eng = app.api(&format!("APIKey {eng_token}"));
    let rotate = |api: &crate::helpers::Api, id: i64, body: Value| {
        let path = format!("/iam/clients/{account}/tokens/{id}/rotate");
        let api = api.clone();
        async move { api.send(Method::POST, &path, Some(body)).await }
    };
    // Someone else's token (invisible), another account, nonsense: 404.
    assert_eq!(
        rotate(&as_eng, token_id(&admin_token), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let other = app
        .add_user("Other", "o@other.test", Role::Administrators)
        .await;
    let other_api = app.api_as(&other, Role::Administrators).await;
    assert_eq!(
        rotate(&other_api, token_id(&eng_token), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Bad bodies: 400, field by field.
    for (body, field) in [
        (json!({"grace_seconds": -1}), "grace_seconds"),
        (json!({"grace_seconds": 604_801}), "grace_seconds"),
        (json!({"grace_seconds": "an hour"}), "grace_seconds"),
        (json!({"exp_date": "soon"}), "exp_date"),
        (json!({"exp_date": "2020-01-01T00:00:00Z"}), "exp_date"),
    ] {
        let r = rotate(&as_eng, token_id(&eng_token), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.json["errors"][field].is_array(), "{body}: {}", r.json);
    }
    // v1 answers the `$` form.
    let r = rotate(&as_eng, token_id(&eng_token), json!({"grace_seconds": 60})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let rotated = r.json["token"].as_str().unwrap().to_string();
    assert!(rotated.contains('$'));
    // A deleted token can't be rotated.
    let admin_api = app.api_jwt(ACME_ADMIN).await;
    let id = token_id(&admin_token);
    admin_api
        .delete(&format!("/iam/clients/{account}/tokens/{id}"))
        .await;
    let r = rotate(&admin_api, id, json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    let kinds: Vec<String> = events(&app, account, id)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        kinds,
        ["token.created", "token.deleted"],
        "refusals record nothing"
    );
}

#[tokio::test]
async fn the_token_policy_holds_for_creates_and_rotations_through_the_form_and_the_api() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let forever = app.token_for(&admin, Role::Engineers).await;
    let admin_api = app.api_as(&admin, Role::Administrators).await;
    let policy = format!("/iam/clients/{account}/token-policy");
    assert_eq!(
        admin_api.get(&policy).await.json,
        json!({"max_lifetime_days": null, "expiry_required": false, "max_idle_days": null, "routes_required": false, "max_rate_limit": null})
    );
    // Only Administrators set it; bad values are refused field by field.
    let eng = app.acme_member("eng", Role::Engineers).await;
    let eng_api = app.api_as(&eng, Role::Engineers).await;
    let put = |api: &crate::helpers::Api, body: Value| {
        let (api, policy) = (api.clone(), policy.clone());
        async move { api.send(Method::PUT, &policy, Some(body)).await }
    };
    assert_eq!(
        put(
            &eng_api,
            json!({"max_lifetime_days": 90, "expiry_required": true})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    for body in [
        json!({"max_lifetime_days": 0, "expiry_required": true}),
        json!({"max_lifetime_days": 3651, "expiry_required": true}),
        json!({"max_lifetime_days": "90", "expiry_required": true}),
        json!({"expiry_required": true}),
        json!({"max_lifetime_days": 90}),
    ] {
        assert_eq!(
            put(&admin_api, body.clone()).await.status,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    let set = put(
        &admin_api,
        json!({"max_lifetime_days": 90, "expiry_required": true}),
    )
    .await;
    assert_eq!(
        set.json,
        json!({"max_lifetime_days": 90, "expiry_required": true, "max_idle_days": null, "routes_required": false, "max_rate_limit": null})
    );
    assert_eq!(
        eng_api.get(&policy).await.json["max_lifetime_days"],
        90,
        "everyone may read it"
    );

    // Creates through the API: never and too late are refused, with the last allowed day.
    let create = |exp: Value| {
        let api = admin_api.clone();
        async move {
            api.post(
                &format!("/iam/v2/clients/{account}/tokens"),
                json!({"name": "ci", "exp_date": exp, "client_user": {"role": {"id": 5}}}),
            )
            .await
        }
    };
    let now = app.clock().now();
    let never = create(Value::Null).await;
    assert_eq!(never.status, StatusCode::BAD_REQUEST);
    assert!(
        never.json["errors"]["exp_date"][0]
            .as_str()
            .unwrap()
            .contains("within 90 days"),
        "{}",
        never.json
    );
    let late = create(json!(apitokens::web::api::model::rfc3339(
        now + Duration::days(91)
    )))
    .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    let fine = create(json!(apitokens::web::api::model::rfc3339(
        now + Duration::days(30)
    )))
    .await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.json);

    // Through the form: the message beside the expiry field.
    let web = app.signed_in(ACME_ADMIN).await;
    let form = web.get("/profile/api-tokens/new").await;
    let page = web
        .post(
            "/profile/api-tokens",
            &[
                ("csrf_token", &form.input_value("csrf_token").unwrap()),
                ("name", "nightly"),
                ("role", "5"),
                ("expiration", "never"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page
        .text_of("error-expiration")
        .unwrap()
        .contains("within 90 days"));

    // The old never-expiring token keeps working, marked outside the policy; rotating it
    // without a new expiry is refused, with one inside the policy it is done.
    assert_eq!(check(&app, &forever).await, StatusCode::NO_CONTENT);
    let table = web.get("/profile/api-tokens").await;
    assert!(table.has(&format!(
        "tr[data-token-id=\"{}\"] .outside-policy",
        token_id(&forever)
    )));
    let rotate = format!(
        "/iam/v2/clients/{account}/tokens/{}/rotate",
        token_id(&forever)
    );
    let admin_jwt = app.api_jwt(ACME_ADMIN).await;
    assert_eq!(
        admin_jwt.post(&rotate, json!({})).await.status,
        StatusCode::BAD_REQUEST
    );
    let ok = admin_jwt
        .post(
            &rotate,
            json!({"exp_date": apitokens::web::api::model::rfc3339(now + Duration::days(60))}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);

    // The policy page (Administrators) sets it too, and says what's wrong.
    let policy_page = web.get("/profile/api-tokens/policy").await;
    assert_eq!(
        policy_page.input_value("max_lifetime_days").as_deref(),
        Some("90")
    );
    let csrf = policy_page.input_value("csrf_token").unwrap();
    let bad = web
        .post(
            "/profile/api-tokens/policy",
            &[("csrf_token", &csrf), ("max_lifetime_days", "ninety")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text_of("error-policy").is_some());
    let off = web
        .post(
            "/profile/api-tokens/policy",
            &[("csrf_token", &csrf), ("max_lifetime_days", "")],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert_eq!(
        admin_api.get(&policy).await.json,
        json!({"max_lifetime_days": null, "expiry_required": false, "max_idle_days": null, "routes_required": false, "max_rate_limit": null})
    );
    assert_eq!(
        app.signed_in("eng@acme.test")
            .await
            .get("/profile/api-tokens/policy")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.events_of(account, "account.token_policy").await.len(),
        2
    );
}

#[tokio::test]
async fn every_token_event_is_recorded_once_with_who_how_and_from_where() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let web = app.signed_in(ACME_ADMIN).await;
    // Created in the portal.
    let form = web.get("/profile/api-tokens/new").await;
    let created = web
        .post(
            "/profile/api-tokens",
            &[
                ("csrf_token", &form.input_value("csrf_token").unwrap()),
                ("form_id", &form.input_value("form_id").unwrap()),
                ("name", "deploy"),
                ("role", "5"),
                ("expiration", "never"),
            ],
        )
        .await;
    let token = created.text_of("new-token-value").unwrap();
    let id = token_id(&token);
    // Its page: details, then renamed through the form.
    let page = web.get(&format!("/profile/api-tokens/{id}")).await;
    assert_eq!(page.text_of("token-title").as_deref(), Some("deploy"));
    let csrf = page.input_value("csrf_token").unwrap();
    let empty = web
        .post(
            &format!("/profile/api-tokens/{id}/edit"),
            &[("csrf_token", &csrf), ("name", " ")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.text_of("error-edit").is_some());
    let renamed = web
        .post(
            &format!("/profile/api-tokens/{id}/edit"),
            &[
                ("csrf_token", &csrf),
                ("name", "deploy-prod"),
                ("description", "CI"),
            ],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);
    // Rotated in the portal with a 1-hour grace: shown once, in the dialog.
    let rotated = web
        .post(
            &format!("/profile/api-tokens/{id}/rotate"),
            &[("csrf_token", &csrf), ("grace", "3600")],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new = rotated.text_of("new-token-value").unwrap();
    assert_eq!(check(&app, &token).await, StatusCode::NO_CONTENT);
    assert_eq!(check(&app, &new).await, StatusCode::NO_CONTENT);
    let after = web.get(&format!("/profile/api-tokens/{id}")).await;
    assert!(!after.body.contains(&new[new.len() - 64..]), "shown once");
    assert!(after.has("#grace-note"));
    let table = web.get("/profile/api-tokens").await;
    assert!(table.has(&format!("tr[data-token-id=\"{id}\"] .grace")));
    // Deleted through the API with another token.
    let api = app.api_as(&admin, Role::Administrators).await;
    assert_eq!(
        api.delete(&format!("/iam/clients/{account}/tokens/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let trail = events(&app, account, id).await;
    let kinds: Vec<&str> = trail.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "token.created",
            "token.renamed",
            "token.rotated",
            "token.deleted"
        ]
    );
    for (kind, actor, client) in &trail {
        assert_eq!(*actor, Some(admin.id), "{kind}");
        assert_eq!(client.as_deref(), Some("127.0.0.1"), "{kind}");
    }
    // The events API (Administrators): the same, newest first, paged.
    let r = api
        .get(&format!(
            "/iam/clients/{account}/events?token_id={id}&limit=2"
        ))
        .await;
    assert_eq!(r.json["count"], 4, "{}", r.json);
    let kinds: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["token.deleted", "token.rotated"]);
    assert!(r.json["results"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("through the API with token \"api test\""));
    let r = api
        .get(&format!(
            "/iam/clients/{account}/events?token_id={id}&limit=2&offset=2"
        ))
        .await;
    assert!(
        r.json["results"][1]["summary"]
            .as_str()
            .unwrap()
            .contains("in the portal"),
        "{}",
        r.json
    );
    assert_eq!(
        api.get(&format!("/iam/clients/{account}/events?limit=0"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let eng = app.acme_member("eng", Role::Engineers).await;
    let eng_api = app.api_as(&eng, Role::Engineers).await;
    assert_eq!(
        eng_api
            .get(&format!("/iam/clients/{account}/events"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The Activity page (Administrators): filtered by token, and the token's page shows it.
    let activity = web.get(&format!("/activity?kind=token.&token={id}")).await;
    assert_eq!(activity.texts("#activity li").len(), 4);
    assert_eq!(
        app.signed_in("eng@acme.test")
            .await
            .get("/activity")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        web.get("/activity?offset=minus").await.status,
        StatusCode::BAD_REQUEST
    );
    let gone = web.get(&format!("/profile/api-tokens/{id}")).await;
    assert_eq!(gone.texts("#token-events li").len(), 4);
    assert!(
        !gone.has("#rotate-token"),
        "a deleted token can't be rotated"
    );
    // Someone else's token page is "not found" for a non-Administrator.
    let eng_web = app.signed_in("eng@acme.test").await;
    assert_eq!(
        eng_web
            .get(&format!("/profile/api-tokens/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        eng_web.get("/profile/api-tokens/abc").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_allowlisted_token_works_only_from_its_networks_ipv4_ipv6_and_through_a_trusted_proxy() {
    let app =
        TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let Acme { app, admin } = Acme::on(app).await;
    let account = admin.account_id;
    let api = app.api_as(&admin, Role::Administrators).await;
    let create = |allowed: Value| {
        let api = api.clone();
        async move {
            api.post(
                &format!("/iam/v2/clients/{account}/tokens"),
                json!({"name": "pinned", "exp_date": null, "client_user": {"role": {"id": 5}}, "allowed_ips": allowed}),
            )
            .await
        }
    };
    // Bad lists are refused by name, and nothing is created.
    for bad in [
        json!(["10.0.0.0/33"]),
        json!(["example.com"]),
        json!("10.0.0.0/8"),
    ] {
        let r = create(bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json["errors"]["allowed_ips"].is_array(), "{}", r.json);
    }
    let r = create(json!(["203.0.113.7/24", "2001:db8::/32"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["allowed_ips"],
        json!(["203.0.113.0/24", "2001:db8::/32"])
    );
    let token = r.json["token"].as_str().unwrap().to_string();
    let id = token_id(&token);
    let from = |xff: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            app.api(&format!("APIKey {token}"))
                .send_with(
                    Method::GET,
                    "/iam/auth/check",
                    None,
                    &[("x-forwarded-for", xff)],
                )
                .await
        }
    };
    // From outside first: refused, and not counted as a use.
    let outside = from("198.51.100.1").await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN);
    assert!(outside.json["message"]
        .as_str()
        .unwrap()
        .contains("198.51.100.1"));
    assert_eq!(from("2001:db9::1").await.status, StatusCode::FORBIDDEN);
    // The proxy itself (no forwarded address) is outside too; so is the management API.
    assert_eq!(check(&app, &token).await, StatusCode::FORBIDDEN);
    let users_me = app
        .api(&format!("APIKey {token}"))
        .get("/iam/users/me")
        .await;
    assert_eq!(users_me.status, StatusCode::FORBIDDEN);
    app.state.gateway.flush_uses().await.unwrap();
    let last_used = || {
        app.db(move |c| {
            apitokens::repo::Token::find(c, id)
                .unwrap()
                .unwrap()
                .last_used_at
        })
    };
    assert_eq!(last_used().await, None, "a refused request is not a use");
    // Through the trusted proxy (127.0.0.1): the forwarded address decides.
    assert_eq!(from("203.0.113.50").await.status, StatusCode::NO_CONTENT);
    assert_eq!(from("2001:db8:1::9").await.status, StatusCode::NO_CONTENT);
    app.state.gateway.flush_uses().await.unwrap();
    assert!(last_used().await.is_some());

    // The token's page changes it (with a message beside the field for a bad entry), and the
    // change reaches this instance's cache at once.
    let web = app.signed_in(ACME_ADMIN).await;
    let page = web.get(&format!("/profile/api-tokens/{id}")).await;
    assert_eq!(
        page.text_of("token-allowed").as_deref(),
        Some("203.0.113.0/24, 2001:db8::/32")
    );
    let csrf = page.input_value("csrf_token").unwrap();
    let bad = web
        .post(
            &format!("/profile/api-tokens/{id}/allowlist"),
            &[
                ("csrf_token", &csrf),
                ("allowed_ips", "10.0.0.0/8\n300.1.1.1"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad
        .text_of("error-allowlist")
        .unwrap()
        .contains("300.1.1.1"));
    // The list leaves out where the token was last used: the page asks first, saves nothing.
    // (The use is recorded by the once-a-second flush: waited for, bounded.)
    let mut recorded = false;
    for _ in 0..200 {
        let row = app
            .db(move |c| apitokens::repo::Token::find(c, id))
            .await
            .unwrap()
            .unwrap();
        if row.last_used_ip.is_some() {
            recorded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(recorded, "the use was recorded");
    let asked = web
        .post(
            &format!("/profile/api-tokens/{id}/allowlist"),
            &[("csrf_token", &csrf), ("allowed_ips", "127.0.0.1")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    let warning = asked.text_of("allowlist-warning").expect("a warning");
    assert!(warning.contains("last used from 203.0.113."), "{warning}");
    assert_eq!(
        asked.text_of("token-allowed").as_deref(),
        Some("203.0.113.0/24, 2001:db8::/32")
    );
    let set = web
        .post(
            &format!("/profile/api-tokens/{id}/allowlist"),
            &[
                ("csrf_token", &csrf),
                ("allowed_ips", "127.0.0.1"),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER);
    assert_eq!(
        check(&app, &token).await,
        StatusCode::NO_CONTENT,
        "from the proxy's own address now"
    );
    assert_eq!(from("203.0.113.50").await.status, StatusCode::FORBIDDEN);
    let cleared = web
        .post(
            &format!("/profile/api-tokens/{id}/allowlist"),
            &[("csrf_token", &csrf), ("allowed_ips", "")],
        )
        .await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    assert_eq!(
        from("198.51.100.1").await.status,
        StatusCode::NO_CONTENT,
        "any address"
    );
    let kinds: Vec<String> = events(&app, account, id)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        kinds,
        [
            "token.created",
            "token.new_address",
            "token.allowlist_changed",
            "token.allowlist_changed"
        ]
    );
}

/// Counts from two instances add up exactly; days without requests are there as zeros; the
/// last use's address and user agent, the last five addresses, and one event per new address
/// are written by the flush, never by the request.
#[tokio::test]
async fn usage_counts_from_two_instances_add_up_and_the_last_addresses_are_kept() {
    let app =
        TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let Acme { app, admin } = Acme::on(app).await;
    let sibling = app.spawn_sibling().await;
    let account = admin.account_id;
    let token = app.token_for(&admin, Role::Engineers).await;
    let id = token_id(&token);
    let use_from = |inst: &TestApp, xff: String| {
        let api = inst.api(&format!("APIKey {token}"));
        async move {
            api.send_with(
                Method::GET,
                "/iam/auth/check",
                None,
                &[
                    ("x-forwarded-for", xff.as_str()),
                    ("user-agent", "deploy-bot/1.0"),
                ],
            )
            .await
            .status
        }
    };
    for _ in 0..7 {
        assert_eq!(
            use_from(&app, "203.0.113.1".into()).await,
            StatusCode::NO_CONTENT
        );
    }
    for _ in 0..5 {
        assert_eq!(
            use_from(&sibling, "203.0.113.1".into()).await,
            StatusCode::NO_CONTENT
        );
    }
    let api = app.api_as(&admin, Role::Administrators).await;
    let usage_path = format!("/iam/v2/clients/{account}/tokens/{id}/usage");
    // Nothing written yet: counting never writes on the request path.
    let before = api.get(&usage_path).await;
    assert_eq!(before.json["days"].as_array().unwrap().len(), 30);
    assert_eq!(before.json["days"][29]["requests"], 0);
    app.state.gateway.flush_uses().await.unwrap();
    sibling.state.gateway.flush_uses().await.unwrap();
    app.state.gateway.flush_uses().await.unwrap();
    let r = api.get(&usage_path).await;
    let days = r.json["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let today = app.clock().now().date().to_string();
    assert_eq!(
        days[29],
        json!({"date": today, "requests": 12}),
        "7 + 5, exactly once each"
    );
    assert!(days[..29].iter().all(|d| d["requests"] == 0));
    assert!(
        days[0]["date"].as_str().unwrap() < days[29]["date"].as_str().unwrap(),
        "oldest first"
    );

    let got = api
        .get(&format!("/iam/v2/clients/{account}/tokens/{id}"))
        .await;
    assert_eq!(got.json["last_used_ip"], "203.0.113.1");
    assert_eq!(got.json["last_used_user_agent"], "deploy-bot/1.0");

    // Six more addresses, a minute apart (a use is noted once a minute per token): the last
    // five are kept, each new one recorded once.
    for i in 2..=7 {
        app.clock().advance(Duration::seconds(61));
        assert_eq!(
            use_from(&app, format!("203.0.113.{i}")).await,
            StatusCode::NO_CONTENT
        );
        app.state.gateway.flush_uses().await.unwrap();
    }
    let kept = app
        .db(move |c| apitokens::repo::usage::addresses(c, id, 10).unwrap())
        .await;
    let kept: Vec<&str> = kept.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        kept,
        [
            "203.0.113.7",
            "203.0.113.6",
            "203.0.113.5",
            "203.0.113.4",
            "203.0.113.3"
        ]
    );
    let new_addresses = events(&app, account, id)
        .await
        .into_iter()
        .filter(|e| e.0 == "token.new_address")
        .count();
    assert_eq!(new_addresses, 7, "203.0.113.1 to .7, once each");

    // The token's page: the chart's 30 bars, the summary, the addresses.
    let page = app
        .signed_in(ACME_ADMIN)
        .await
        .get(&format!("/profile/api-tokens/{id}"))
        .await;
    assert_eq!(page.texts("#usage-chart rect.bar").len(), 30);
    let summary = page.text_of("usage-summary").unwrap();
    assert!(
        summary.starts_with("18 requests in the last 30 days"),
        "{summary}"
    );
    assert_eq!(page.texts("#token-addresses li").len(), 5);
    // Another account can't read it.
    let other = app
        .add_user("Other", "o@other.test", Role::Administrators)
        .await;
    let other_api = app.api_as(&other, Role::Administrators).await;
    assert_eq!(
        other_api
            .get(&format!(
                "/iam/v2/clients/{}/tokens/{id}/usage",
                other.account_id
            ))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// A burst of rotations of one token at once: each answers with its own secret, they run one
/// at a time (the account lock), each is recorded once, and exactly one secret is current —
/// the last one handed out — with the one before it in its grace.
#[tokio::test]
async fn a_burst_of_rotations_of_one_token_runs_one_at_a_time() {
    let Acme { app, admin } = Acme::start().await;
    let token = app.token_for(&admin, Role::Engineers).await;
    let id = token_id(&token);
    let api = app.api_jwt(ACME_ADMIN).await;
    let path = format!("/iam/v2/clients/{}/tokens/{id}/rotate", admin.account_id);
    let burst = (0..6).map(|_| {
        let (api, path) = (api.clone(), path.clone());
        async move { api.post(&path, json!({"grace_seconds": 600})).await }
    });
    let replies = futures_util::future::join_all(burst).await;
    let secrets: Vec<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
            r.json["token"].as_str().unwrap().to_string()
        })
        .collect();
    let mut unique = secrets.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "six different secrets");
    let working: Vec<&String> = {
        let mut w = vec![];
        for s in &secrets {
            if check(&app, s).await == StatusCode::NO_CONTENT {
                w.push(s);
            }
        }
        w
    };
    assert_eq!(
        working.len(),
        2,
        "the current secret and the one in its grace"
    );
    assert_eq!(
        check(&app, &token).await,
        StatusCode::UNAUTHORIZED,
        "the original is two rotations back"
    );
    let rotated = events(&app, admin.account_id, id)
        .await
        .into_iter()
        .filter(|e| e.0 == "token.rotated")
        .count();
    assert_eq!(rotated, 6);
}

/// A flood of wrong secrets for a live, cached token: each is refused, and the re-reads that
/// let a secret rotated elsewhere work are at most two per 100 ms window (plus the first),
/// however many requests come.
#[tokio::test]
async fn wrong_secrets_for_a_live_token_cost_a_few_reads_a_second_not_one_each() {
    let Acme { app, admin } = Acme::start().await;
    let token = app.token_for(&admin, Role::Engineers).await;
    assert_eq!(check(&app, &token).await, StatusCode::NO_CONTENT);
    let wrong = format!("{}_{}", token_id(&token), "ab".repeat(32));
    let reads_before = app.state.gateway.reads();
    let started = std::time::Instant::now();
    let mut refused = 0;
    while started.elapsed() < std::time::Duration::from_millis(500) {
        let burst = (0..20).map(|_| check(&app, &wrong));
        refused += futures_util::future::join_all(burst)
            .await
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
    }
    let elapsed = started.elapsed();
    let reads = app.state.gateway.reads() - reads_before;
    // Per 100 ms window at most two re-reads (one in flight, and the batch queued behind it),
    // plus the first and the background refresh of a busy entry.
    let bound = 2 * (elapsed.as_millis() as u64 / 100) + 3;
    assert!(refused >= 100, "{refused} wrong secrets sent");
    assert!(
        reads <= bound,
        "{reads} reads for {refused} wrong secrets in {elapsed:?} (at most {bound})"
    );
    assert_eq!(
        check(&app, &token).await,
        StatusCode::NO_CONTENT,
        "the right one still works"
    );
}

/// The 7-day reminder links to the token's own page (where Rotate is), and each notice e-mailed
/// is in the token's audit trail once.
#[tokio::test]
async fn the_reminder_links_to_the_tokens_page_and_its_sending_is_recorded_once() {
    let smtp = crate::smtp::SmtpServer::start();
    let smtp_url = smtp.url();
    let app = TestApp::spawn_with(move |s| {
        s.smtp_url = Some(smtp_url);
        s.base_url = "https://tokens.example".into();
    })
    .await;
    let Acme { app, admin } = Acme::on(app).await;
    let (id, _) = app
        .expiring_token(&admin, "nightly", Duration::days(10))
        .await;
    app.clock().advance(Duration::days(3) + Duration::hours(1));
    let now = app.clock().now();
    app.state.sweep(now).await.unwrap();
    app.state.sweep(now).await.unwrap();
    crate::leaks::wait_for_mail(&smtp, 1).await;
    let text = smtp.received()[0].text();
    assert!(
        text.contains(&format!("https://tokens.example/profile/api-tokens/{id}")),
        "{text}"
    );
    let sent: Vec<_> = events(&app, admin.account_id, id)
        .await
        .into_iter()
        .filter(|e| e.0 == "token.notice_sent")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].1, None, "no person sent it");
}
