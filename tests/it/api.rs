//! The JSON API over HTTP: shapes, errors, visibility, role caps, JWTs, the gateway check.

use std::time::{Duration as StdDuration, Instant};

use apitokens::db::schema;
use apitokens::domain::token::to_naive;
use apitokens::domain::Role;
use diesel::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::Duration;

use crate::helpers::{token_id, Acme, TestApp, ACME_ADMIN, PASSWORD};

fn create_body(name: &str, role: Value, exp: Value) -> Value {
    json!({"name": name, "description": "from the API", "exp_date": exp, "client_user": {"role": role}})
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
            && s.ends_with('Z')
    })
}

#[tokio::test]
async fn a_token_from_the_browser_lists_creates_and_deletes_with_both_separators() {
    let Acme { app, admin } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let token = web.new_token("automation", Role::Administrators).await;
    let api = app.api(&format!("APIKey {token}"));
    let account = admin.account_id;

    for prefix in ["/iam", "/iam/v2"] {
        let list = api.get(&format!("{prefix}/clients/{account}/tokens")).await;
        assert_eq!(list.status, StatusCode::OK, "{prefix}");
        assert!(list
            .json
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == token_id(&token)));
    }
    let v1 = api
        .post(
            &format!("/iam/clients/{account}/tokens"),
            create_body("v1", json!({"id": 2}), Value::Null),
        )
        .await;
    assert_eq!(v1.status, StatusCode::OK);
    assert_eq!(v1.headers.get("cache-control").unwrap(), "no-store");
    let v1_token = v1.json["token"].as_str().unwrap().to_string();
    assert!(
        v1_token.contains('$') && !v1_token.contains('_'),
        "{v1_token}"
    );
    let v2 = api
        .post(
            &format!("/iam/v2/clients/{account}/tokens"),
            create_body("v2", json!({"name": "Users"}), Value::Null),
        )
        .await;
    let v2_token = v2.json["token"].as_str().unwrap().to_string();
    assert!(
        v2_token.contains('_') && !v2_token.contains('$'),
        "{v2_token}"
    );

    // Both forms authenticate, on both API versions.
    for t in [&v1_token, &v2_token] {
        let me = app.api(&format!("APIKey {t}")).get("/iam/users/me").await;
        assert_eq!(me.status, StatusCode::OK, "{t}");
        assert_eq!(me.json["email"], "admin@acme.test");
    }
    // Delete with 204; the deleted token is refused at once.
    let id = token_id(&v1_token);
    let deleted = api
        .delete(&format!("/iam/clients/{account}/tokens/{id}"))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.json, Value::Null);
    assert_eq!(
        app.api(&format!("APIKey {v1_token}"))
            .get("/iam/users/me")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let gone = api
        .get(&format!("/iam/v2/clients/{account}/tokens/{id}"))
        .await;
    assert_eq!(gone.json["deleted"], true);
}

#[tokio::test]
async fn tokens_have_exactly_the_contract_shape() {
    let Acme { app, admin } = Acme::start().await;
    let token = app.token_for(&admin, Role::Administrators).await;
    let api = app.api(&format!("APIKey {token}"));
    let exp = app.clock().now() + Duration::days(10);
    let exp_text = apitokens::web::api::model::rfc3339(exp);
    let created = api
        .post(
            &format!("/iam/clients/{}/tokens", admin.account_id),
            create_body(
                "CI deploys",
                json!({"id": 5, "name": "Engineers"}),
                json!(exp_text),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.json);
    let t = &created.json;
    let mut keys: Vec<&String> = t.as_object().unwrap().keys().collect();
    keys.sort();
    // Gcore's fields, and ours (issue 13): allowed_ips, last_used_ip, last_used_user_agent;
    // (issue 28) allowed_routes, rate_limit, usage_limit and remaining_uses.
    assert_eq!(
        keys,
        [
            "active_created_tokens",
            "allowed_ips",
            "allowed_routes",
            "client_user",
            "created",
            "deleted",
            "description",
            "exp_date",
            "expired",
            "id",
            "last_usage",
            "last_used_ip",
            "last_used_user_agent",
            "name",
            "rate_limit",
            "remaining_uses",
            "token",
            "usage_limit"
        ]
    );
    assert!(t["id"].is_i64());
    assert_eq!(t["name"], "CI deploys");
    assert_eq!(t["description"], "from the API");
    assert!(is_rfc3339(&t["created"]));
    assert_eq!(t["exp_date"], json!(exp_text));
    assert_eq!(
        (t["expired"].clone(), t["deleted"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(
        t["last_usage"], t["created"],
        "never used: the creation time"
    );
    assert_eq!(
        t["client_user"],
        json!({"client_id": admin.account_id, "user_id": admin.id, "user_name": "admin",
               "user_email": "admin@acme.test", "deleted": false, "role": {"id": 5, "name": "Engineers"}})
    );
    let id = t["id"].as_i64().unwrap();
    let one = api
        .get(&format!("/iam/clients/{}/tokens/{id}", admin.account_id))
        .await;
    assert!(
        one.json.get("token").is_none(),
        "the secret is returned only once"
    );
    let never = api
        .post(
            &format!("/iam/clients/{}/tokens", admin.account_id),
            create_body("n", json!({"id": 2}), Value::Null),
        )
        .await;
    assert_eq!(never.json["exp_date"], Value::Null);

    let me = api.get("/iam/users/me").await.json;
    for key in [
        "id",
        "email",
        "name",
        "client",
        "company",
        "groups",
        "deleted",
        "is_active",
        "activated",
        "auth_types",
        "sso_auth",
        "two_fa",
        "lang",
        "phone",
        "reseller",
        "user_type",
    ] {
        assert!(me.get(key).is_some(), "user has {key}");
    }
    assert_eq!(me["groups"], json!([{"id": 1, "name": "Administrators"}]));
    assert_eq!(me["auth_types"], json!(["password"]));
    let client = api.get("/iam/clients/me").await.json;
    for key in [
        "id",
        "email",
        "companyName",
        "currentUser",
        "deleted",
        "has_active_admin",
        "is_test",
        "status",
        "bill_type",
        "capabilities",
        "freeFeatures",
        "paidFeatures",
        "serviceStatuses",
        "users",
    ] {
        assert!(client.get(key).is_some(), "client has {key}");
    }
    assert_eq!(
        (client["companyName"].clone(), client["currentUser"].clone()),
        (json!("Acme"), json!(admin.id))
    );
    assert_eq!(client["email"], "admin@acme.test");
}

#[tokio::test]
async fn create_errors_use_the_contract_bodies() {
    let Acme { app, admin } = Acme::start().await;
    let user = app.acme_member("user", Role::Users).await;
    let admin_api = app.api_as(&admin, Role::Administrators).await;
    let user_api = app.api_as(&user, Role::Users).await;
    let path = format!("/iam/clients/{}/tokens", admin.account_id);
    let past = apitokens::web::api::model::rfc3339(app.clock().now() - Duration::hours(1));
    let cases = [
        (
            json!({"exp_date": null, "client_user": {"role": {"id": 2}}}),
            json!({"name": ["This field is required."]}),
        ),
        (
            json!({"name": "x", "client_user": {"role": {"id": 2}}}),
            json!({"exp_date": ["This field is required (null for a token that never expires)."]}),
        ),
        (
            create_body("x", json!({"id": 2}), json!(past)),
            json!({"exp_date": ["The expiration date must be in the future."]}),
        ),
        (
            create_body("x", json!({"id": 2}), json!("next week")),
            json!({"exp_date": ["Use an RFC 3339 date and time, like 2026-12-31T23:59:59Z."]}),
        ),
        (
            create_body("x", json!({"id": 999}), Value::Null),
            json!({"client_user": {"role": ["Invalid role: 999"]}}),
        ),
        (
            create_body("x", json!({"name": "Root"}), Value::Null),
            json!({"client_user": {"role": ["Invalid role: Root"]}}),
        ),
        (
            json!({"name": "x", "exp_date": null}),
            json!({"client_user": {"role": ["This field is required."]}}),
        ),
        (
            create_body(&"n".repeat(101), json!({"id": 2}), Value::Null),
            json!({"name": ["The token name can be at most 100 characters."]}),
        ),
        (
            json!([1, 2]),
            json!({"non_field_errors": ["Expected a JSON object."]}),
        ),
    ];
    for (body, errors) in cases {
        let r = admin_api.post(&path, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.json, json!({ "errors": errors }), "{body}");
    }
    let mismatch = admin_api
        .post(
            &path,
            create_body("x", json!({"id": 1, "name": "Users"}), Value::Null),
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(mismatch.json["errors"]["client_user"]["role"][0]
        .as_str()
        .unwrap()
        .starts_with("Invalid role"));
    let above = user_api
        .post(&path, create_body("x", json!({"id": 1}), Value::Null))
        .await;
    assert_eq!(above.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        above.json,
        json!({"errors": {"client_user": {"role": ["Can't create token with role Administrators"]}}})
    );
    // Not JSON at all, or too large: 400 with a message, nothing created.
    let raw = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .header("authorization", &admin_api.auth)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let big = admin_api
        .post(
            &path,
            create_body(&"x".repeat(70_000), json!({"id": 2}), Value::Null),
        )
        .await;
    assert_eq!(big.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        admin_api.get(&path).await.json.as_array().unwrap().len(),
        2,
        "only the two setup tokens exist"
    );
}

#[tokio::test]
async fn the_fifty_limit_answers_with_a_limit_error() {
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let path = format!("/iam/v2/clients/{}/tokens", admin.account_id);
    for i in 0..49 {
        assert_eq!(
            api.post(
                &path,
                create_body(&format!("t{i}"), json!({"id": 2}), Value::Null)
            )
            .await
            .status,
            StatusCode::OK
        );
    }
    let refused = api
        .post(&path, create_body("51st", json!({"id": 2}), Value::Null))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.json["errors"]["limit"][0]
        .as_str()
        .unwrap()
        .contains("50 active API tokens"));
}

#[tokio::test]
async fn list_filters_work_and_bad_values_are_400() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let admin_token = app.token_for(&admin, Role::Administrators).await;
    let eng_token = app.token_for(&eng, Role::Engineers).await;
    let api = app.api(&format!("APIKey {admin_token}"));
    let base = format!("/iam/clients/{}/tokens", admin.account_id);
    let del = app.token_for(&eng, Role::Users).await;
    app.api(&format!("APIKey {eng_token}"))
        .delete(&format!("{base}/{}", token_id(&del)))
        .await;

    let ids = |r: &Value| -> Vec<i64> {
        r.as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    let (a, e, d) = (token_id(&admin_token), token_id(&eng_token), token_id(&del));
    assert_eq!(ids(&api.get(&base).await.json), vec![d, e, a]);
    assert_eq!(
        ids(&api.get(&format!("{base}?issued_by={}", eng.id)).await.json),
        vec![d, e]
    );
    assert_eq!(
        ids(&api
            .get(&format!("{base}?not_issued_by={}", eng.id))
            .await
            .json),
        vec![a]
    );
    assert_eq!(
        ids(&api.get(&format!("{base}?role=Engineers")).await.json),
        vec![e]
    );
    assert_eq!(ids(&api.get(&format!("{base}?role=1")).await.json), vec![a]);
    assert_eq!(
        ids(&api.get(&format!("{base}?deleted=true")).await.json),
        vec![d]
    );
    assert_eq!(
        ids(&api.get(&format!("{base}?deleted=false")).await.json),
        vec![e, a]
    );
    assert_eq!(
        ids(&api
            .get(&format!("{base}?status=active&issued_by={}", eng.id))
            .await
            .json),
        vec![e]
    );
    for (query, field) in [
        ("issued_by=abc", "issued_by"),
        ("role=Root", "role"),
        ("deleted=maybe", "deleted"),
        ("status=gone", "status"),
        ("not_issued_by=1.5", "not_issued_by"),
        ("issued_by=%ZZ", "issued_by"),
        ("role=%FF%FE", "role"),
    ] {
        let r = api.get(&format!("{base}?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(r.json["errors"][field].is_array(), "{query}: {}", r.json);
    }
}

#[tokio::test]
async fn visibility_is_the_same_as_on_the_web_page() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let eng2 = app.acme_member("eng2", Role::Engineers).await;
    let outsider = app
        .add_user("Other", "admin@other.test", Role::Administrators)
        .await;
    let admin_api = app.api_as(&admin, Role::Administrators).await;
    let eng_token = app.token_for(&eng, Role::Engineers).await;
    let eng_api = app.api(&format!("APIKey {eng_token}"));
    let eng2_api = app.api_as(&eng2, Role::Engineers).await;
    let out_api = app.api_as(&outsider, Role::Administrators).await;
    let acme = admin.account_id;
    let id = token_id(&eng_token);
    let path = format!("/iam/clients/{acme}/tokens/{id}");

    assert_eq!(admin_api.get(&path).await.status, StatusCode::OK);
    assert_eq!(eng_api.get(&path).await.status, StatusCode::OK);
    assert_eq!(eng2_api.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        eng2_api
            .get(&format!("/iam/clients/{acme}/tokens"))
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Another account: its own client id hides ours, our client id is "not found".
    let r = out_api.get(&path).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::NOT_FOUND, json!({"message": "Not found."}))
    );
    assert_eq!(
        out_api
            .get(&format!("/iam/clients/{}/tokens/{id}", outsider.account_id))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(out_api.delete(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(eng2_api.delete(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        admin_api.get("/iam/clients/abc/tokens").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin_api
            .get(&format!("/iam/clients/{acme}/tokens/xyz"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Users: a colleague is forbidden to non-admins, another account's user not found.
    assert_eq!(
        eng_api.get(&format!("/iam/users/{}", eng2.id)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin_api
            .get(&format!("/iam/users/{}", eng2.id))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        admin_api
            .get(&format!("/iam/users/{}", outsider.id))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The admin deletes the engineer's token.
    assert_eq!(admin_api.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        eng_api.get("/iam/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The API lists exactly what each person's web page shows (deleted tokens included).
    let eng_api = app.api_as(&eng, Role::Engineers).await;
    let deleted = app.token_for(&eng2, Role::Users).await;
    eng2_api
        .delete(&format!(
            "/iam/clients/{acme}/tokens/{}",
            token_id(&deleted)
        ))
        .await;
    for (email, api) in [
        (ACME_ADMIN, &admin_api),
        ("eng@acme.test", &eng_api),
        ("eng2@acme.test", &eng2_api),
    ] {
        let web = app.signed_in(email).await;
        let mut on_page: Vec<i64> = web
            .get("/profile/api-tokens?status=all")
            .await
            .token_rows()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let mut in_api: Vec<i64> = api
            .get(&format!("/iam/clients/{acme}/tokens"))
            .await
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        on_page.sort_unstable();
        in_api.sort_unstable();
        assert!(!on_page.is_empty(), "{email} sees some tokens");
        assert_eq!(on_page, in_api, "{email}: web page and API disagree");
    }
    assert_eq!(
        app.signed_in(ACME_ADMIN)
            .await
            .get("/profile/api-tokens?status=all")
            .await
            .token_rows()
            .len(),
        5,
        "the Administrator sees every token of Acme and none of Other"
    );
}

#[tokio::test]
async fn a_tokens_role_caps_what_it_can_do() {
    let Acme { app, admin } = Acme::start().await;
    let weak = app.api_as(&admin, Role::Users).await;
    let strong = app.api_as(&admin, Role::Administrators).await;
    let path = format!("/iam/clients/{}/tokens", admin.account_id);
    let r = weak
        .post(&path, create_body("x", json!({"id": 5}), Value::Null))
        .await;
    assert_eq!(
        r.json,
        json!({"errors": {"client_user": {"role": ["Can't create token with role Engineers"]}}})
    );
    let r = weak.get("/iam/users").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json["message"].is_string());
    let r = strong.get("/iam/users?limit=1&offset=0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["results"].as_array().unwrap().len(), 1);
    assert_eq!(
        strong.get("/iam/users?limit=-1").await.status,
        StatusCode::BAD_REQUEST
    );
    // A Users-role token of an admin sees only the admin's own tokens, not the account's,
    // and of those only the ones no higher than Users (itself, not the Administrators one).
    let user = app.acme_member("user", Role::Users).await;
    app.token_for(&user, Role::Users).await;
    assert_eq!(weak.get(&path).await.json.as_array().unwrap().len(), 1);
    assert_eq!(strong.get(&path).await.json.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn malformed_credentials_are_all_the_same_401() {
    let Acme { app, admin } = Acme::start().await;
    let good = app.token_for(&admin, Role::Administrators).await;
    let other = app.token_for(&admin, Role::Users).await;
    let (id, secret) = good.split_once('_').unwrap();
    let other_id = token_id(&other);
    let headers = vec![
        String::new(),
        "APIKey".into(),
        "APIKey ".into(),
        good.clone(),
        format!("Basic {good}"),
        format!("Token {good}"),
        format!("APIKey {id}{secret}"),
        format!("APIKey abc_{secret}"),
        format!("APIKey 99999999999999999999999_{secret}"),
        format!("APIKey 999999_{secret}"),
        format!("APIKey {id}_{}", "0".repeat(64)),
        format!("APIKey {other_id}_{secret}"),
        format!("APIKey {id}_{}é", &secret[..62]),
        format!("APIKey {}", "9".repeat(10_000)),
        "Bearer".into(),
        "Bearer not.a.jwt".into(),
        format!("Bearer {good}"),
    ];
    let mut bodies = vec![];
    for h in headers {
        let r = app.api(&h).get("/iam/users/me").await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{:?}",
            &h[..h.len().min(40)]
        );
        bodies.push(r.json);
        let c = app.api(&h).get("/iam/auth/check").await;
        assert_eq!(c.status, StatusCode::UNAUTHORIZED);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one body for every failure"
    );
    // The scheme word is case-insensitive and whitespace around is tolerated.
    for h in [format!("apikey {good}"), format!("  APIKEY   {good}  ")] {
        assert_eq!(
            app.api(&h).get("/iam/users/me").await.status,
            StatusCode::OK,
            "{h}"
        );
    }
    // A header with bytes that aren't text.
    let r = reqwest::Client::new()
        .get(format!("{}/iam/auth/check", app.base))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"APIKey \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_and_deleted_tokens_stop_at_once() {
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let exp = apitokens::web::api::model::rfc3339(app.clock().now() + Duration::hours(2));
    let created = api
        .post(
            &format!("/iam/clients/{}/tokens", admin.account_id),
            create_body("short", json!({"id": 2}), json!(exp)),
        )
        .await;
    let short = app.api(&format!(
        "APIKey {}",
        created.json["token"].as_str().unwrap()
    ));
    assert_eq!(
        short.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT
    );
    app.clock().advance(Duration::hours(2));
    assert_eq!(
        short.get("/iam/auth/check").await.status,
        StatusCode::UNAUTHORIZED,
        "expired, though cached"
    );

    // Deleted on the web page of this instance: refused on the next request.
    let web = app.signed_in(ACME_ADMIN).await;
    let t = web.new_token("web", Role::Users).await;
    let by_web = app.api(&format!("APIKey {t}"));
    assert_eq!(
        by_web.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT
    );
    let page = web
        .post_from(
            "/profile/api-tokens",
            &format!("/profile/api-tokens/{}/delete", token_id(&t)),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        by_web.get("/iam/auth/check").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_token_deleted_on_another_instance_is_refused_within_the_cache_second() {
    let app = TestApp::spawn().await;
    let sibling = app.spawn_sibling().await;
    let admin = app.acme_member("admin", Role::Administrators).await;
    let token = app.token_for(&admin, Role::Users).await;
    let on_sibling = sibling.api(&format!("APIKey {token}"));
    assert_eq!(
        on_sibling.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT,
        "cached on the sibling"
    );
    let deleted_at = Instant::now();
    let admin_api = app.api_as(&admin, Role::Administrators).await;
    assert_eq!(
        admin_api
            .delete(&format!(
                "/iam/clients/{}/tokens/{}",
                admin.account_id,
                token_id(&token)
            ))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // Poll (bounded) until the sibling refuses it; the cache keeps a row at most one second.
    let refused_after = loop {
        if on_sibling.get("/iam/auth/check").await.status == StatusCode::UNAUTHORIZED {
            break deleted_at.elapsed();
        }
        assert!(
            deleted_at.elapsed() < StdDuration::from_secs(5),
            "still accepted 5 s after deletion"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    eprintln!("sibling refused the deleted token after {refused_after:?}");
    // A token in constant use is reloaded (in batches) before its second is up, so the bound
    // holds for it too: one second, plus a poll.
    assert!(
        refused_after < StdDuration::from_millis(1500),
        "refused only after {refused_after:?}"
    );
}

#[tokio::test]
async fn use_is_recorded_as_last_usage() {
    let Acme { app, admin } = Acme::start().await;
    let token = app.token_for(&admin, Role::Administrators).await;
    let id = token_id(&token);
    let api = app.api(&format!("APIKey {token}"));
    assert_eq!(
        api.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT
    );
    // The write happens off the request path; wait (bounded) for it to land.
    let deadline = Instant::now() + StdDuration::from_secs(5);
    let used = loop {
        let row = app
            .db(move |c| apitokens::repo::Token::find(c, id))
            .await
            .unwrap()
            .unwrap();
        if let Some(at) = row.last_used_at {
            break at;
        }
        assert!(Instant::now() < deadline, "last_used_at never written");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };
    let shown = api
        .get(&format!("/iam/clients/{}/tokens/{id}", admin.account_id))
        .await;
    assert_eq!(
        shown.json["last_usage"],
        json!(apitokens::web::api::model::rfc3339(used.assume_utc()))
    );
    let page = app
        .signed_in(ACME_ADMIN)
        .await
        .get("/profile/api-tokens")
        .await;
    assert!(!page.has_text("Never used"));
}

#[tokio::test]
async fn uses_on_two_instances_are_written_in_batches_and_the_latest_time_wins() {
    let Acme { app, admin } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    let tokens = [
        app.token_for(&admin, Role::Users).await,
        app.token_for(&admin, Role::Engineers).await,
        app.token_for(&admin, Role::Administrators).await,
    ];
    for token in &tokens {
        for instance in [&app, &sibling] {
            let reply = instance
                .api(&format!("APIKey {token}"))
                .get("/iam/auth/check")
                .await;
            assert_eq!(reply.status, StatusCode::NO_CONTENT);
        }
    }
    // Nothing is written on the request path; each instance writes its uses in one batch.
    let t0 = app.clock().now();
    assert_eq!(sibling.state.gateway.flush_uses().await.unwrap(), 3);
    assert_eq!(app.state.gateway.flush_uses().await.unwrap(), 3);
    assert_eq!(
        app.state.gateway.flush_uses().await.unwrap(),
        0,
        "the queue was emptied"
    );
    let ids: Vec<i64> = tokens.iter().map(|t| token_id(t)).collect();
    let read = |ids: Vec<i64>| {
        move |c: &mut apitokens::db::DbConn| {
            ids.iter()
                .map(|id| {
                    apitokens::repo::Token::find(c, *id)
                        .unwrap()
                        .unwrap()
                        .last_used_at
                })
                .collect::<Vec<_>>()
        }
    };
    for at in app.db(read(ids.clone())).await {
        let at = at.expect("written").assume_utc();
        assert!(at <= t0 && t0 - at < Duration::seconds(10), "{at} vs {t0}");
    }
    // Batches landing out of order never move a time backwards.
    let (a, b) = (ids[0], ids[1]);
    let later = t0 + Duration::minutes(5);
    app.db(move |c| {
        use apitokens::services::gateway::token_cache::Uses;
        Uses::record_uses(c, &[(a, later), (b, later)]).unwrap();
        Uses::record_uses(c, &[(a, t0 + Duration::minutes(1))]).unwrap();
    })
    .await;
    let after = app.db(read(vec![a, b])).await;
    assert_eq!(after, vec![Some(to_naive(later)), Some(to_naive(later))]);
}

#[tokio::test]
async fn jwt_login_refresh_once_and_expiry() {
    let Acme { app, admin } = Acme::start().await;
    app.acme_member("bot", Role::PurgeAndPrefetchApi).await;
    let anon = app.api("");
    let bad = anon
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "admin@acme.test", "password": "wrong"}),
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "Gcore's status for wrong credentials"
    );
    let missing = anon
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "admin@acme.test"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let bot = anon
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "bot@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        bot.status,
        StatusCode::OK,
        "the API-only role logs in to the API"
    );

    let pair = anon
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "Admin@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(pair.status, StatusCode::OK);
    let access = pair.json["access"].as_str().unwrap().to_string();
    let refresh = pair.json["refresh"].as_str().unwrap().to_string();
    let bearer = app.api(&format!("Bearer {access}"));
    assert_eq!(bearer.get("/iam/users/me").await.json["id"], admin.id);
    let check = bearer.get("/iam/auth/check").await;
    assert_eq!(check.status, StatusCode::NO_CONTENT);
    assert!(check.headers.get("x-auth-token-id").is_none());
    assert_eq!(
        check.headers.get("x-auth-user-id").unwrap(),
        &admin.id.to_string()
    );
    // A refresh token is not an access token.
    assert_eq!(
        app.api(&format!("Bearer {refresh}"))
            .get("/iam/users/me")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A tampered signature is refused.
    let mut tampered = access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(
        app.api(&format!("Bearer {tampered}"))
            .get("/iam/users/me")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Refresh works once.
    let renewed = anon
        .post("/iam/auth/jwt/refresh", json!({"refresh": refresh}))
        .await;
    assert_eq!(renewed.status, StatusCode::OK);
    let again = anon
        .post("/iam/auth/jwt/refresh", json!({"refresh": refresh}))
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anon.post("/iam/auth/jwt/refresh", json!({"refresh": access}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anon.post("/iam/auth/jwt/refresh", json!({})).await.status,
        StatusCode::BAD_REQUEST
    );

    // After an hour the access token is refused; after a day the refresh token too.
    app.clock().advance(Duration::minutes(61));
    assert_eq!(
        bearer.get("/iam/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let new_refresh = renewed.json["refresh"].as_str().unwrap().to_string();
    app.clock().advance(Duration::hours(24));
    assert_eq!(
        anon.post("/iam/auth/jwt/refresh", json!({"refresh": new_refresh}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_gateway_check_answers_with_identity_headers() {
    let Acme { app, admin } = Acme::start().await;
    let token = app.token_for(&admin, Role::Engineers).await;
    let api = app.api(&format!("APIKey {token}"));
    let r = api.get("/iam/auth/check").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let h = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("x-auth-account-id"), admin.account_id.to_string());
    assert_eq!(h("x-auth-user-id"), admin.id.to_string());
    assert_eq!(h("x-auth-role"), "5");
    assert_eq!(h("x-auth-token-id"), token_id(&token).to_string());
    assert!(r.headers.get("x-request-id").is_some());
    // The bodiless "yes" goes only to the proxy: no browser headers on it; answers with a
    // body keep them.
    assert!(r.headers.get("content-security-policy").is_none());
    let refused = app.api("APIKey 1_nope").get("/iam/auth/check").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.headers.get("content-security-policy").is_some());
    assert_eq!(
        refused.headers.get("x-content-type-options").unwrap(),
        "nosniff"
    );
    assert_eq!(
        api.get("/iam/auth/check?min_role=Engineers").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get("/iam/auth/check?min_role=2").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get("/iam/auth/check?min_role=Administrators")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.get("/iam/auth/check?min_role=Root").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.api("").get("/iam/auth/check").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let app = TestApp::spawn().await;
    let doc = app.api("").get("/iam/openapi.json").await.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/iam/auth/jwt/login",
        "/iam/auth/jwt/refresh",
        "/iam/auth/check",
        "/iam/users/me",
        "/iam/users",
        "/iam/users/{userId}",
        "/iam/clients/me",
        "/iam/clients/{clientId}/tokens",
        "/iam/clients/{clientId}/tokens/{tokenId}",
        "/iam/v2/clients/{clientId}/tokens",
        "/iam/v2/clients/{clientId}/tokens/{tokenId}",
        "/iam/clients/invite_user",
        "/iam/clients/{clientId}/client-users/{userId}",
        "/iam/.well-known/jwks.json",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    for method in ["get", "put", "delete"] {
        assert!(
            paths["/iam/clients/{clientId}/client-users/{userId}"]
                .get(method)
                .is_some(),
            "{method}"
        );
    }
    assert!(paths["/iam/clients/{clientId}/tokens/{tokenId}"]
        .get("delete")
        .is_some());
    assert!(doc["components"]["schemas"]["ApiToken"]["properties"]
        .get("client_user")
        .is_some());
    let unknown = app
        .api("")
        .send(Method::GET, "/iam/nothing-here", None)
        .await;
    assert_eq!(
        (unknown.status, unknown.json),
        (StatusCode::NOT_FOUND, json!({"message": "Not found."}))
    );
}

#[tokio::test]
async fn a_removed_users_jwt_and_tokens_stop_working() {
    let app = TestApp::spawn().await;
    let user = app.acme_member("user", Role::Users).await;
    let token = app.token_for(&user, Role::Users).await;
    let pair = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "user@acme.test", "password": PASSWORD}),
        )
        .await;
    let bearer = app.api(&format!("Bearer {}", pair.json["access"].as_str().unwrap()));
    assert_eq!(bearer.get("/iam/users/me").await.status, StatusCode::OK);
    let id = user.id;
    let now = apitokens::domain::token::to_naive(app.clock().now());
    app.db(move |c| {
        diesel::update(schema::users::table.find(id))
            .set(schema::users::removed_at.eq(now))
            .execute(c)
            .unwrap()
    })
    .await;
    // Changed behind the app's back (not through a service that tells the caches): the
    // user's cached state lives at most a second; after that the removal is seen.
    let deadline = Instant::now() + StdDuration::from_secs(5);
    while bearer.get("/iam/users/me").await.status != StatusCode::UNAUTHORIZED {
        assert!(
            Instant::now() < deadline,
            "the removed user's JWT still works"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    // The token's cache entry lives at most a second; after that the removal is seen.
    let api = app.api(&format!("APIKey {token}"));
    let deadline = Instant::now() + StdDuration::from_secs(5);
    while api.get("/iam/auth/check").await.status != StatusCode::UNAUTHORIZED {
        assert!(
            Instant::now() < deadline,
            "a removed user's token still works"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn jwt_login_shares_the_portals_failed_attempt_limit() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.client();
    for _ in 0..3 {
        assert_eq!(
            web.sign_in("admin@acme.test", "wrong password")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let anon = app.api("");
    for _ in 0..2 {
        let r = anon
            .post(
                "/iam/auth/jwt/login",
                json!({"username": "admin@acme.test", "password": "wrong"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    // Five failures in all: both doors are locked, even for the right password.
    let r = anon
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "admin@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .contains("Too many failed login attempts"));
    assert_eq!(
        web.sign_in("admin@acme.test", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Ours, beside Gcore's unpaged array: `limit` and `offset`, newest first; wrong values get
/// a 400 naming the field.
#[tokio::test]
async fn the_token_list_takes_limit_and_offset() {
    let Acme { app, admin } = Acme::start().await;
    let mut made = vec![];
    for _ in 0..7 {
        made.push(crate::helpers::token_id(
            &app.token_for(&admin, Role::Users).await,
        ));
    }
    let api = app.api_as(&admin, Role::Administrators).await;
    let base = format!("/iam/v2/clients/{}/tokens", admin.account_id);
    let ids = |r: &crate::helpers::Reply| -> Vec<i64> {
        r.json
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    let all = ids(&api.get(&base).await);
    assert_eq!(
        all.len(),
        8,
        "without limit: everything (7 + the caller's own)"
    );
    let mut paged = vec![];
    for offset in [0, 3, 6] {
        let r = api.get(&format!("{base}?limit=3&offset={offset}")).await;
        assert_eq!(r.status, StatusCode::OK);
        paged.extend(ids(&r));
    }
    assert_eq!(paged, all, "pages in order, each token once");
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=1e3", "offset"),
    ] {
        let r = api.get(&format!("{base}?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(r.json["errors"][field].is_array(), "{query}: {}", r.json);
    }
}

/// Keyset paging (`limit` + `before`) returns every token exactly once while tokens are being
/// created and deleted between the pages.
#[tokio::test]
async fn keyset_pages_return_every_token_once_while_tokens_come_and_go() {
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let base = format!("/iam/v2/clients/{}/tokens", admin.account_id);
    let mut before_paging = vec![];
    for _ in 0..30 {
        before_paging.push(crate::helpers::token_id(
            &app.token_for(&admin, Role::Users).await,
        ));
    }
    let ids = |r: &crate::helpers::Reply| -> Vec<i64> {
        r.json
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    let mut seen: Vec<i64> = vec![];
    let mut cursor: Option<i64> = None;
    let mut round = 0;
    loop {
        let path = match cursor {
            None => format!("{base}?limit=7"),
            Some(c) => format!("{base}?limit=7&before={c}"),
        };
        let r = api.get(&path).await;
        assert_eq!(r.status, StatusCode::OK);
        let page = ids(&r);
        if page.is_empty() {
            break;
        }
        seen.extend(&page);
        cursor = page.last().copied();
        // Between pages: a new token, and one already seen and one not yet seen deleted.
        app.token_for(&admin, Role::Users).await;
        for victim in [seen[seen.len() / 2], before_paging[round]] {
            let r = api.delete(&format!("{base}/{victim}")).await;
            assert!(
                r.status.is_success() || r.status == StatusCode::NOT_FOUND,
                "{}",
                r.status
            );
        }
        round += 1;
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no token twice");
    for id in &before_paging {
        assert!(
            seen.contains(id),
            "token {id} that existed before paging was listed"
        );
    }
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first throughout"
    );
    let bad = api.get(&format!("{base}?before=0")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json["errors"]["before"].is_array());
}
