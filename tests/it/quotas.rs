//! Issue 28's usage quotas, the usage chart's refusals, and the policy's rate cap: a quota
//! stops a token after N allowed requests until its refill (gateway 403 `X-Auth-Reason: quota`,
//! our API 429), `remaining_uses` tells what is left, 80 % tells the issuer, a child is never
//! larger, `PATCH` changes it all or nothing, two instances together never pass more than N,
//! and the portal's forms set rate and quota.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Acme, Api, TestApp, ACME_ADMIN};

async fn check(app: &TestApp, token: &str) -> crate::helpers::Reply {
    app.api(&format!("APIKey {token}"))
        .get("/iam/auth/check")
        .await
}

async fn create(api: &Api, account: i64, extra: Value) -> crate::helpers::Reply {
    let mut body = json!({"name": "quota'd", "client_user": {"role": {"id": 5}}, "exp_date": null});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    api.post(&format!("/iam/clients/{account}/tokens"), body)
        .await
}

fn quota_mails(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.dir.path().join("outbox"))
        .map(|d| {
            d.map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
                .filter(|m| m.contains("of its usage quota"))
                .collect()
        })
        .unwrap_or_default()
}

async fn token_json(api: &Api, account: i64, id: i64) -> Value {
    api.get(&format!("/iam/clients/{account}/tokens/{id}"))
        .await
        .json
}

#[tokio::test]
async fn a_quota_stops_a_token_after_n_until_the_refill_and_tells_the_issuer_at_80_percent() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let made = create(
        &api,
        account,
        json!({"usage_limit": {"requests": 500, "refill": "daily"}}),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.json);
    assert_eq!(
        made.json["usage_limit"],
        json!({"requests": 500, "refill": "daily"})
    );
    assert_eq!(made.json["remaining_uses"], 500);
    let token = made.json["token"].as_str().unwrap().to_owned();
    let id = made.json["id"].as_i64().unwrap();
    let portal = app.signed_in(ACME_ADMIN).await;
    let leases = app.state.gateway.quota_leases();
    for i in 0..394 {
        assert_eq!(
            check(&app, &token).await.status,
            StatusCode::NO_CONTENT,
            "request {i}"
        );
    }
    // Leased a hundredth at a time: 79 leases for 394 requests, never one per request.
    let taken = app.state.gateway.quota_leases() - leases;
    assert!(taken <= 80, "{taken} leases");
    // The lease in hand counts as used: what is left is the quota less what was leased.
    let left = token_json(&api, account, id).await["remaining_uses"]
        .as_u64()
        .unwrap();
    assert!((105..=106).contains(&left), "{left}");
    let notices = portal.get("/notifications").await;
    assert!(
        !notices.has_text("80 %"),
        "not yet at 80 %: {}",
        notices.body
    );
    for _ in 0..106 {
        assert_eq!(check(&app, &token).await.status, StatusCode::NO_CONTENT);
    }
    let notices = portal.get("/notifications").await;
    assert!(
        notices.has_text("has used 80 % of its usage quota"),
        "{}",
        notices.body
    );
    // And by e-mail, once, under the expiry-e-mail preference (the sweep sends it).
    for _ in 0..2 {
        app.state.sweep(app.clock().now()).await.unwrap();
    }
    let mails = quota_mails(&app);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains(ACME_ADMIN), "{}", mails[0]);
    assert!(
        mails[0].contains("400 of 500 requests a day used"),
        "{}",
        mails[0]
    );
    assert!(!mails[0].contains(&token[3..20]), "no secret in a mail");
    // Spent: refused with why and until when; a flood costs no database work.
    let over = check(&app, &token).await;
    assert_eq!(over.status, StatusCode::FORBIDDEN, "{}", over.json);
    assert_eq!(over.headers["x-auth-reason"], "quota");
    let now = app.clock().now();
    let midnight = (now.date() + time::Duration::days(1))
        .with_time(time::Time::MIDNIGHT)
        .assume_utc();
    let retry: i64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (retry - (midnight - now).whole_seconds()).abs() <= 2,
        "{retry}"
    );
    let leases = app.state.gateway.quota_leases();
    for _ in 0..50 {
        assert_eq!(check(&app, &token).await.status, StatusCode::FORBIDDEN);
    }
    assert!(app.state.gateway.quota_leases() - leases <= 1);
    assert_eq!(token_json(&api, account, id).await["remaining_uses"], 0);
    // Our own API answers 429, with when it refills.
    let ours = app.api(&format!("APIKey {token}"));
    let refused = ours.get("/iam/tokens/self").await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.json
    );
    assert!(refused.headers.contains_key("retry-after"));
    assert!(refused.json["message"]
        .as_str()
        .unwrap()
        .contains("usage quota is spent"));
    // The next day (UTC) it is whole again.
    app.clock().advance(time::Duration::days(1));
    assert_eq!(check(&app, &token).await.status, StatusCode::NO_CONTENT);
    // (A day later: a new JWT and a new portal session.)
    let api = app.api_jwt(ACME_ADMIN).await;
    let portal = app.signed_in(ACME_ADMIN).await;
    let left = token_json(&api, account, id).await["remaining_uses"]
        .as_u64()
        .unwrap();
    assert!((494..=499).contains(&left), "{left}");
    // The usage chart splits the refusals out (the flush writes them).
    app.state.gateway.flush_uses().await.unwrap();
    let page = portal.get(&format!("/profile/api-tokens/{id}")).await;
    let summary = page.text_of("usage-summary").unwrap();
    assert!(summary.contains("over its quota"), "{summary}");
    assert!(page.has(".usage-chart .bar.refused"), "{}", page.body);
    assert!(page
        .text_of("token-quota")
        .unwrap()
        .contains("500 requests a day"));
}

#[tokio::test]
async fn bad_quotas_are_named_and_a_child_is_never_larger_and_patch_is_all_or_nothing() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    for bad in [
        json!({"requests": 0}),
        json!({"requests": 10, "refill": "weekly"}),
        json!({"refill": "daily"}),
        json!({"requests": 1_000_000_001_i64}),
        json!("lots"),
    ] {
        let r = create(&api, account, json!({ "usage_limit": bad })).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json["errors"]["usage_limit"].is_array(), "{}", r.json);
    }
    let parent = create(
        &api,
        account,
        json!({"usage_limit": {"requests": 1000, "refill": "monthly"}}),
    )
    .await;
    let as_parent = app.api(&format!(
        "APIKey {}",
        parent.json["token"].as_str().unwrap()
    ));
    for wider in [
        json!({"requests": 1001, "refill": "monthly"}),
        json!({"requests": 10, "refill": "daily"}),
    ] {
        let r = create(&as_parent, account, json!({ "usage_limit": wider })).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{wider}: {}", r.json);
    }
    let child = create(&as_parent, account, json!({})).await;
    assert_eq!(
        child.json["usage_limit"],
        json!({"requests": 1000, "refill": "monthly"}),
        "inherited"
    );
    let id = child.json["id"].as_i64().unwrap();
    let path = format!("/iam/clients/{account}/tokens/{id}");
    let patch = |body: Value| {
        let api = as_parent.clone();
        let path = path.clone();
        async move { api.send(reqwest::Method::PATCH, &path, Some(body)).await }
    };
    let narrowed = patch(json!({"usage_limit": {"requests": 5, "refill": null}})).await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.json);
    assert_eq!(narrowed.json["remaining_uses"], 5);
    assert_eq!(
        patch(json!({"usage_limit": null})).await.status,
        StatusCode::BAD_REQUEST
    );
    // All or nothing: good routes with a bad quota change nothing.
    let mixed =
        patch(json!({"allowed_routes": ["GET /dns/**"], "usage_limit": {"requests": 5000}})).await;
    assert_eq!(mixed.status, StatusCode::BAD_REQUEST, "{}", mixed.json);
    let now = token_json(&api, account, id).await;
    assert_eq!(now["allowed_routes"], json!([]), "{now}");
    assert_eq!(now["usage_limit"]["requests"], 5);
    let events = app.events_of(account, "token.routes_changed").await;
    assert!(
        events
            .iter()
            .any(|e| e.summary.starts_with("Narrowed the usage quota")),
        "{events:?}"
    );
    // A low-role token can't raise its own quota (it can see itself, not widen itself).
    let child_token = child.json["token"].as_str().unwrap();
    let own = app.api(&format!("APIKey {child_token}"));
    let raised = own
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"usage_limit": {"requests": 10}})),
        )
        .await;
    assert_eq!(raised.status, StatusCode::BAD_REQUEST, "{}", raised.json);
    assert!(
        raised.json["errors"]["usage_limit"]
            .to_string()
            .contains("the token asking"),
        "{}",
        raised.json
    );
    assert_eq!(
        token_json(&api, account, id).await["usage_limit"]["requests"],
        5
    );
    // Five requests in all (the refused PATCH above was the first: our own API spends the
    // quota too), then the sixth is refused.
    for _ in 0..4 {
        assert_eq!(
            check(&app, child_token).await.status,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(check(&app, child_token).await.status, StatusCode::FORBIDDEN);
}

/// Two instances on one database, each hammered by two callers until it refuses ten in a row:
/// together they never pass more than the quota (leases count when taken), and the quota is
/// used up, not stranded in leases.
#[tokio::test]
async fn two_instances_together_never_pass_more_than_the_quota() {
    let Acme { app, admin } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let n = 1000u64;
    let made = create(
        &api,
        admin.account_id,
        json!({"usage_limit": {"requests": n}}),
    )
    .await;
    let token = made.json["token"].as_str().unwrap().to_owned();
    let leases_before = app.state.gateway.quota_leases() + sibling.state.gateway.quota_leases();
    let run = |base: String| {
        let token = token.clone();
        let http = api.http.clone();
        tokio::spawn(async move {
            let (mut passed, mut refused_in_a_row) = (0u64, 0);
            while refused_in_a_row < 10 {
                let r = http
                    .get(format!("{base}/iam/auth/check"))
                    .header("authorization", format!("APIKey {token}"))
                    .send()
                    .await
                    .unwrap();
                if r.status() == StatusCode::NO_CONTENT {
                    passed += 1;
                    refused_in_a_row = 0;
                } else {
                    assert_eq!(r.headers()["x-auth-reason"], "quota");
                    refused_in_a_row += 1;
                }
            }
            passed
        })
    };
    let tasks = [
        run(app.base.clone()),
        run(app.base.clone()),
        run(sibling.base.clone()),
        run(sibling.base.clone()),
    ];
    let mut each = vec![];
    for t in tasks {
        each.push(t.await.unwrap());
    }
    let passed: u64 = each.iter().sum();
    let leases =
        app.state.gateway.quota_leases() + sibling.state.gateway.quota_leases() - leases_before;
    eprintln!(
        "quota {n} across two instances: passed {passed} ({each:?} per caller), {leases} leases"
    );
    assert!(passed <= n + n / 100, "{passed} passed: over {n} + 1 %");
    // Whatever one instance held unspent when the other ran dry is at most a lease each.
    assert!(
        passed >= n - 2 * (n / 100),
        "{passed} passed: quota stranded"
    );
    assert!(leases <= n / 10 / 2 * 3, "{leases} leases for {n} requests");
}

#[tokio::test]
async fn the_policy_caps_the_rate_and_the_portal_sets_rate_and_quota() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let policy = api
        .put(
            &format!("/iam/clients/{account}/token-policy"),
            json!({"max_lifetime_days": null, "expiry_required": false,
                   "max_rate_limit": {"requests": 100, "per_seconds": 60}}),
        )
        .await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.json);
    assert_eq!(
        policy.json["max_rate_limit"],
        json!({"requests": 100, "per_seconds": 60})
    );
    let bad = api
        .put(
            &format!("/iam/clients/{account}/token-policy"),
            json!({"max_lifetime_days": null, "expiry_required": false, "max_rate_limit": {"requests": 0, "per_seconds": 60}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json["errors"]["max_rate_limit"].is_array(),
        "{}",
        bad.json
    );
    // Without a rate: the cap; faster than it: refused; slower: fine.
    let none = create(&api, account, json!({})).await;
    assert_eq!(
        none.json["rate_limit"],
        json!({"requests": 100, "per_seconds": 60})
    );
    let faster = create(
        &api,
        account,
        json!({"rate_limit": {"requests": 100, "per_seconds": 30}}),
    )
    .await;
    assert_eq!(faster.status, StatusCode::BAD_REQUEST, "{}", faster.json);
    assert!(
        faster.json.to_string().contains("policy"),
        "{}",
        faster.json
    );
    let slower = create(
        &api,
        account,
        json!({"rate_limit": {"requests": 10, "per_seconds": 60}}),
    )
    .await;
    assert_eq!(slower.status, StatusCode::OK);
    let id = slower.json["id"].as_i64().unwrap();
    let widened = api
        .send(
            reqwest::Method::PATCH,
            &format!("/iam/clients/{account}/tokens/{id}"),
            Some(json!({"rate_limit": null})),
        )
        .await;
    assert_eq!(widened.status, StatusCode::BAD_REQUEST, "{}", widened.json);

    // The portal: rate and quota on the create form, errors named, then shown and changed on
    // the token page.
    let portal = app.signed_in(ACME_ADMIN).await;
    let half = portal
        .create_token(&[
            ("name", "ci"),
            ("role", "5"),
            ("expiration", "never"),
            ("rate_requests", "5"),
            ("quota_requests", "lots"),
        ])
        .await;
    assert_eq!(half.status, StatusCode::BAD_REQUEST);
    assert!(half.has_text("Give both numbers"), "{}", half.body);
    assert!(half.has_text("whole number of requests"), "{}", half.body);
    assert_eq!(half.input_value("rate_requests").as_deref(), Some("5"));
    let made = portal
        .create_token(&[
            ("name", "ci"),
            ("role", "5"),
            ("expiration", "never"),
            ("rate_requests", "50"),
            ("rate_seconds", "60"),
            ("quota_requests", "3"),
            ("quota_refill", "monthly"),
        ])
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let token = made.text_of("new-token-value").unwrap();
    let id = crate::helpers::token_id(&token);
    let got = token_json(&api, account, id).await;
    assert_eq!(
        got["rate_limit"],
        json!({"requests": 50, "per_seconds": 60})
    );
    assert_eq!(
        got["usage_limit"],
        json!({"requests": 3, "refill": "monthly"})
    );
    for _ in 0..3 {
        assert_eq!(check(&app, &token).await.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(check(&app, &token).await.status, StatusCode::FORBIDDEN);
    let page = portal.get(&format!("/profile/api-tokens/{id}")).await;
    assert!(
        page.text_of("token-quota").unwrap().contains("0 left"),
        "{}",
        page.body
    );
    assert_eq!(page.input_value("quota_requests").as_deref(), Some("3"));
    // Raised on the page: a changed quota starts afresh.
    let saved = portal
        .post_from(
            &format!("/profile/api-tokens/{id}"),
            &format!("/profile/api-tokens/{id}/routes"),
            &[
                ("allowed_routes", ""),
                ("rate_requests", "50"),
                ("rate_seconds", "60"),
                ("quota_requests", "10"),
                ("quota_refill", "monthly"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(check(&app, &token).await.status, StatusCode::NO_CONTENT);
    // Faster than the policy on the page: refused and named.
    let refused = portal
        .post_from(
            &format!("/profile/api-tokens/{id}"),
            &format!("/profile/api-tokens/{id}/routes"),
            &[
                ("allowed_routes", ""),
                ("rate_requests", "500"),
                ("rate_seconds", "60"),
                ("quota_requests", "10"),
                ("quota_refill", "monthly"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.has_text("token policy"), "{}", refused.body);
}

#[tokio::test]
async fn the_quota_mail_follows_the_expiry_mail_preference() {
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let made = create(
        &api,
        admin.account_id,
        json!({"usage_limit": {"requests": 5}}),
    )
    .await;
    let token = made.json["token"].as_str().unwrap().to_owned();
    // The issuer turned expiry e-mails off: the portal still tells, no e-mail goes.
    let id = admin.id;
    app.db(move |c| {
        use apitokens::db::schema::users;
        use diesel::prelude::*;
        diesel::update(users::table.find(id))
            .set(users::token_expiry_email.eq(false))
            .execute(c)?;
        Ok::<_, apitokens::error::ServiceError>(())
    })
    .await
    .unwrap();
    for _ in 0..4 {
        assert_eq!(check(&app, &token).await.status, StatusCode::NO_CONTENT);
    }
    app.state.sweep(app.clock().now()).await.unwrap();
    let portal = app.signed_in(ACME_ADMIN).await;
    assert!(portal
        .get("/notifications")
        .await
        .has_text("80 % of its usage quota"));
    assert!(quota_mails(&app).is_empty());
}

/// Narrowing a token narrows the tokens made with it, at any depth: each stays within its
/// parent, as it was made; a parent made wider leaves them be.
#[tokio::test]
async fn narrowing_a_parent_narrows_its_children_and_grandchildren() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let parent = create(
        &api,
        account,
        json!({"allowed_routes": ["GET /dns/**", "POST /cdn/**", "POST /iam/**"],
               "rate_limit": {"requests": 100, "per_seconds": 60},
               "usage_limit": {"requests": 1000, "refill": "monthly"}}),
    )
    .await;
    let as_parent = app.api(&format!(
        "APIKey {}",
        parent.json["token"].as_str().unwrap()
    ));
    let child = create(
        &as_parent,
        account,
        json!({"allowed_routes": ["POST /cdn/resources/1/purge", "POST /iam/clients/*/tokens"],
               "rate_limit": {"requests": 10, "per_seconds": 60},
               "usage_limit": {"requests": 100, "refill": "monthly"}}),
    )
    .await;
    assert_eq!(child.status, StatusCode::OK, "{}", child.json);
    let as_child = app.api(&format!("APIKey {}", child.json["token"].as_str().unwrap()));
    let grandchild = create(&as_child, account, json!({})).await;
    assert_eq!(grandchild.status, StatusCode::OK, "{}", grandchild.json);
    // A sibling already within what the parent becomes keeps its own.
    let sibling = create(
        &as_parent,
        account,
        json!({"allowed_routes": ["GET /dns/zones/*"], "rate_limit": {"requests": 1, "per_seconds": 60},
               "usage_limit": {"requests": 5, "refill": "monthly"}}),
    )
    .await;
    let id = |r: &crate::helpers::Reply| r.json["id"].as_i64().unwrap();
    let narrowed = api
        .send(
            reqwest::Method::PATCH,
            &format!("/iam/clients/{account}/tokens/{}", id(&parent)),
            Some(json!({"allowed_routes": ["GET /dns/**"],
                        "rate_limit": {"requests": 5, "per_seconds": 60},
                        "usage_limit": {"requests": 50, "refill": "monthly"}})),
        )
        .await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.json);
    for t in [&child, &grandchild] {
        let now = token_json(&api, account, id(t)).await;
        assert_eq!(now["allowed_routes"], json!(["GET /dns/**"]), "{now}");
        assert_eq!(
            now["rate_limit"],
            json!({"requests": 5, "per_seconds": 60}),
            "{now}"
        );
        assert_eq!(
            now["usage_limit"],
            json!({"requests": 50, "refill": "monthly"}),
            "{now}"
        );
    }
    let kept = token_json(&api, account, id(&sibling)).await;
    assert_eq!(
        kept["allowed_routes"],
        json!(["GET /dns/zones/*"]),
        "{kept}"
    );
    assert_eq!(kept["rate_limit"]["requests"], 1);
    assert_eq!(kept["usage_limit"]["requests"], 5);
    let events = app.events_of(account, "token.routes_changed").await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.summary.starts_with("Narrowed token"))
            .count(),
        2,
        "{events:?}"
    );
    // Widening the parent again leaves the children as they are now.
    let widened = api
        .send(
            reqwest::Method::PATCH,
            &format!("/iam/clients/{account}/tokens/{}", id(&parent)),
            Some(json!({"allowed_routes": null, "rate_limit": null, "usage_limit": null})),
        )
        .await;
    assert_eq!(widened.status, StatusCode::OK, "{}", widened.json);
    let still = token_json(&api, account, id(&child)).await;
    assert_eq!(still["allowed_routes"], json!(["GET /dns/**"]), "{still}");
}
