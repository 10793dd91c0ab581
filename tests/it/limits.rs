//! Issue 28's allowed routes: the gateway with and without `X-Original-*`, evasions refused,
//! our own API honouring the list, a child never wider than its parent, `PATCH` narrowing and
//! widening (audited), the account's policy requiring routes, and the portal's forms.

use reqwest::StatusCode;
use serde_json::{json, Value};

use apitokens::domain::Role;

use crate::helpers::{Acme, Api, TestApp, ACME_ADMIN};

async fn check(
    app: &TestApp,
    token: &str,
    original: Option<(&str, &str)>,
) -> crate::helpers::Reply {
    let mut headers = vec![];
    if let Some((method, uri)) = original {
        headers.push(("x-original-method", method));
        headers.push(("x-original-uri", uri));
    }
    app.api(&format!("APIKey {token}"))
        .send_with(reqwest::Method::GET, "/iam/auth/check", None, &headers)
        .await
}

async fn create(api: &Api, account: i64, routes: Value) -> crate::helpers::Reply {
    api.post(
        &format!("/iam/clients/{account}/tokens"),
        json!({"name": "limited", "client_user": {"role": {"id": 5}}, "exp_date": null, "allowed_routes": routes}),
    )
    .await
}

#[tokio::test]
async fn the_gateway_admits_only_a_tokens_routes_and_fails_closed() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let made = create(
        &api,
        account,
        json!(["POST /cdn/resources/123/purge", "get /dns/**"]),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.json);
    assert_eq!(
        made.json["allowed_routes"],
        json!(["POST /cdn/resources/123/purge", "GET /dns/**"])
    );
    let token = made.json["token"].as_str().unwrap().to_owned();
    for (method, uri, passes) in [
        ("POST", "/cdn/resources/123/purge", true),
        ("POST", "/cdn/resources/123/purge?async=1", true),
        ("GET", "/dns/zones/example.com", true),
        ("GET", "/cdn/resources/123/purge", false),
        ("POST", "/cdn/resources/124/purge", false),
        ("POST", "/cdn/resources/123/../124/purge", false),
        ("POST", "/cdn/resources/123/%2e%2e/124/purge", false),
        ("POST", "/cdn/resources/123%2f..%2f124/purge", false),
        ("GET", "/dns/../iam/users", false),
        ("GET", "//dns//zones", true),
        ("DELETE", "/dns/zones/example.com", false),
    ] {
        let r = check(&app, &token, Some((method, uri))).await;
        if passes {
            assert_eq!(
                r.status,
                StatusCode::NO_CONTENT,
                "{method} {uri}: {}",
                r.json
            );
        } else {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
            assert_eq!(r.headers["x-auth-reason"], "route", "{method} {uri}");
        }
    }
    // Without the headers a limited token is refused; an unlimited one passes as before.
    let bare = check(&app, &token, None).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);
    assert_eq!(bare.headers["x-auth-reason"], "route");
    assert!(bare.json["message"]
        .as_str()
        .unwrap()
        .contains("X-Original-URI"));
    let plain = app.token_for(&admin, Role::Engineers).await;
    assert_eq!(
        check(&app, &plain, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        check(&app, &plain, Some(("DELETE", "/anything")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // Our own API honours the list too: this token may call none of it.
    let limited = app.api(&format!("APIKey {token}"));
    let me = limited.get("/iam/users/me").await;
    assert_eq!(me.status, StatusCode::FORBIDDEN, "{}", me.json);
    assert!(
        me.json.to_string().contains("allowed routes"),
        "{}",
        me.json
    );

    // Bad lines are named.
    let bad = create(&api, account, json!(["GET /dns", "/cdn"])).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json.to_string().contains("Line 2"), "{}", bad.json);
    let wrong = create(&api, account, json!("GET /dns")).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_child_is_never_wider_and_patch_narrows_and_widens_on_the_record() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let parent = create(&api, account, json!(["* /iam/**", "GET /dns/**"])).await;
    let parent_token = parent.json["token"].as_str().unwrap().to_owned();
    let parent_id = parent.json["id"].as_i64().unwrap();
    let as_parent = app.api(&format!("APIKey {parent_token}"));
    // Narrower: fine. Wider: refused. None given: the parent's.
    let narrow = create(&as_parent, account, json!(["GET /dns/zones/*"])).await;
    assert_eq!(narrow.status, StatusCode::OK, "{}", narrow.json);
    let wide = create(&as_parent, account, json!(["GET /cdn/**"])).await;
    assert_eq!(wide.status, StatusCode::BAD_REQUEST, "{}", wide.json);
    assert!(
        wide.json.to_string().contains("can't reach further"),
        "{}",
        wide.json
    );
    let inherited = create(&as_parent, account, Value::Null).await;
    assert_eq!(inherited.status, StatusCode::OK, "{}", inherited.json);
    assert_eq!(
        inherited.json["allowed_routes"],
        json!(["* /iam/**", "GET /dns/**"])
    );

    // PATCH: the limited parent can't widen a token beyond its own routes...
    let child_id = narrow.json["id"].as_i64().unwrap();
    let beyond = as_parent
        .send(
            reqwest::Method::PATCH,
            &format!("/iam/clients/{account}/tokens/{child_id}"),
            Some(json!({"allowed_routes": ["GET /cdn/**"]})),
        )
        .await;
    assert_eq!(beyond.status, StatusCode::BAD_REQUEST, "{}", beyond.json);
    // ...the person narrows and widens the parent, each on the record.
    let patch = |routes: Value| {
        let api = api.clone();
        async move {
            api.send(
                reqwest::Method::PATCH,
                &format!("/iam/clients/{account}/tokens/{parent_id}"),
                Some(json!({"allowed_routes": routes})),
            )
            .await
        }
    };
    let narrowed = patch(json!(["GET /dns/**"])).await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.json);
    assert_eq!(narrowed.json["allowed_routes"], json!(["GET /dns/**"]));
    // The instance forgets the old list at once: the parent can't call our API any more.
    assert_eq!(
        as_parent.get("/iam/users/me").await.status,
        StatusCode::FORBIDDEN
    );
    let widened = patch(Value::Null).await;
    assert_eq!(widened.status, StatusCode::OK, "{}", widened.json);
    assert_eq!(widened.json["allowed_routes"], json!([]));
    // Narrowing the parent narrowed the child that had inherited its wider list; the child
    // already within it kept its own.
    let events = app.events_of(account, "token.routes_changed").await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.summary.starts_with("Narrowed the routes")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.summary.starts_with("Narrowed token")
                && e.token_id == inherited.json["id"].as_i64()),
        "{events:?}"
    );
    let child = |id: i64| {
        let api = api.clone();
        async move {
            api.get(&format!("/iam/clients/{account}/tokens/{id}"))
                .await
                .json
        }
    };
    assert_eq!(
        child(inherited.json["id"].as_i64().unwrap()).await["allowed_routes"],
        json!(["GET /dns/**"])
    );
    assert_eq!(
        child(child_id).await["allowed_routes"],
        json!(["GET /dns/zones/*"])
    );
    assert!(
        events.iter().any(|e| e.summary.starts_with("Widened")),
        "{events:?}"
    );
    // Another account's token: not found.
    let other = app
        .add_user("Globex", "boss@globex.test", Role::Administrators)
        .await;
    let globex = app.api_as(&other, Role::Administrators).await;
    let theirs = globex
        .send(
            reqwest::Method::PATCH,
            &format!("/iam/clients/{}/tokens/{parent_id}", other.account_id),
            Some(json!({"allowed_routes": []})),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_policy_can_require_routes_and_the_portal_sets_them() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let policy = api
        .put(
            &format!("/iam/clients/{account}/token-policy"),
            json!({"max_lifetime_days": null, "expiry_required": false, "routes_required": true}),
        )
        .await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.json);
    assert_eq!(policy.json["routes_required"], true);
    let none = create(&api, account, Value::Null).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.json);
    assert!(none.json.to_string().contains("requires"), "{}", none.json);

    // The create form: a preset ticked, a line typed; a bad line is named on the form.
    let portal = app.signed_in(ACME_ADMIN).await;
    let bad = portal
        .create_token(&[
            ("name", "ci"),
            ("role", "5"),
            ("expiration", "never"),
            ("allowed_routes", "GET dns"),
        ])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has_text("Line 1"), "{}", bad.body);
    let made = portal
        .create_token(&[
            ("name", "ci"),
            ("role", "5"),
            ("expiration", "never"),
            ("allowed_routes", "POST /cdn/resources/7/purge"),
            ("preset:2", "1"),
        ])
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let token = made.text_of("new-token-value").unwrap();
    assert_eq!(
        check(&app, &token, Some(("PUT", "/dns/zones/x")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        check(&app, &token, Some(("POST", "/cdn/resources/7/purge")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        check(&app, &token, Some(("GET", "/iam/users")))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The token page shows them and narrows them.
    let id = crate::helpers::token_id(&token);
    let page = portal.get(&format!("/profile/api-tokens/{id}")).await;
    assert!(
        page.text_of("token-routes").unwrap().contains("* /dns/**"),
        "{}",
        page.body
    );
    let saved = portal
        .post_from(
            &format!("/profile/api-tokens/{id}"),
            &format!("/profile/api-tokens/{id}/routes"),
            &[("allowed_routes", "GET /dns/**")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        check(&app, &token, Some(("PUT", "/dns/zones/x")))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Emptying them is refused while the policy requires routes.
    let emptied = portal
        .post_from(
            &format!("/profile/api-tokens/{id}"),
            &format!("/profile/api-tokens/{id}/routes"),
            &[("allowed_routes", "")],
        )
        .await;
    assert_eq!(emptied.status, StatusCode::BAD_REQUEST);
    assert!(emptied.has_text("requires"), "{}", emptied.body);
}

/// nginx from Debian in front of the app with the README's `auth_request` recipe: the backend
/// is the app's own `/healthz` (every request rewritten to it), so what reaches it is exactly
/// what the gateway check let through. `None` (said why) where nginx isn't installed; CI
/// installs it and fails without it.
struct Nginx {
    port: u16,
    /// The master and its workers (a killed master alone left its workers running, one set
    /// per test run, until this held the whole group).
    _process: crate::helpers::ProcessGroup,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(app: &TestApp) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            if std::env::var_os("CI").is_some() {
                panic!("CI must run the nginx recipe: apt-get install nginx");
            }
            eprintln!("SKIPPED nginx recipe: apt-get install nginx to run it");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let upstream = app.base.trim_start_matches("http://");
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [dir.path().to_path_buf(), dir.path().join("tmp")] {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
            }
        }
        let conf = format!(
            r#"worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_auth;
            auth_request_set $auth_reason $upstream_http_x_auth_reason;
            auth_request_set $auth_retry  $upstream_http_retry_after;
            error_page 403 = @denied;
            rewrite ^ /healthz break;
            proxy_method GET;
            proxy_pass http://{upstream};
        }}
        location @denied {{
            if ($auth_reason ~ "^(rate-limited|quota)$") {{
                add_header Retry-After $auth_retry always;
                return 429;
            }}
            return 403;
        }}
        location = /_auth {{
            internal;
            proxy_pass http://{upstream}/iam/auth/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Authorization $http_authorization;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI    $request_uri;
        }}
    }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new(binary)
            .process_group(0)
            .args(["-p", &d.to_string(), "-c"])
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts");
        let process = crate::helpers::ProcessGroup(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Nginx {
                    port,
                    _process: process,
                    _dir: dir,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        drop(process);
        panic!(
            "nginx didn't listen: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
    }

    /// A raw request (the target exactly as written: no client normalises it), its status.
    fn send(&self, method: &str, target: &str, token: Option<&str>) -> u16 {
        self.exchange(method, target, token).0
    }

    /// A raw request: its status and the answer's `Retry-After`, if any.
    fn exchange(&self, method: &str, target: &str, token: Option<&str>) -> (u16, Option<String>) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: APIKey {t}\r\n"));
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let retry = answer
            .lines()
            .find_map(|l| l.strip_prefix("Retry-After: ").map(str::to_owned));
        (status, retry)
    }
}

#[tokio::test]
async fn the_nginx_recipe_lets_through_only_a_tokens_routes() {
    let Acme { app, admin } = Acme::start().await;
    let Some(nginx) = Nginx::start(&app) else {
        return;
    };
    let api = app.api_jwt(ACME_ADMIN).await;
    let made = create(
        &api,
        admin.account_id,
        json!(["POST /cdn/resources/123/purge", "GET /dns/**"]),
    )
    .await;
    let token = made.json["token"].as_str().unwrap().to_owned();
    let plain = app.token_for(&admin, Role::Engineers).await;
    let cases = [
        (
            "POST",
            "/cdn/resources/123/purge",
            Some(token.as_str()),
            200,
        ),
        ("GET", "/dns/zones?page=2", Some(token.as_str()), 200),
        (
            "POST",
            "/cdn/resources/124/purge",
            Some(token.as_str()),
            403,
        ),
        (
            "POST",
            "/cdn/resources/123/../124/purge",
            Some(token.as_str()),
            403,
        ),
        (
            "POST",
            "/cdn/resources/123/%2e%2e/124/purge",
            Some(token.as_str()),
            403,
        ),
        ("GET", "/dns/%2e%2e/iam/users", Some(token.as_str()), 403),
        ("DELETE", "/dns/zones/x", Some(token.as_str()), 403),
        ("DELETE", "/anything/at/all", Some(plain.as_str()), 200),
        ("GET", "/dns/zones", None, 401),
    ];
    let results: Vec<u16> = tokio::task::spawn_blocking({
        let cases: Vec<(String, String, Option<String>)> = cases
            .iter()
            .map(|(m, t, k, _)| (m.to_string(), t.to_string(), k.map(str::to_owned)))
            .collect();
        move || {
            cases
                .iter()
                .map(|(m, t, k)| nginx.send(m, t, k.as_deref()))
                .collect()
        }
    })
    .await
    .unwrap();
    for ((method, target, _, expected), got) in cases.iter().zip(results) {
        assert_eq!(got, *expected, "{method} {target}");
    }
}

#[tokio::test]
async fn a_limited_token_made_in_a_real_browser_is_refused_outside_its_routes() {
    use fantoccini::Locator;
    let Some(axe) = crate::browser::axe_source() else {
        return;
    };
    let Acme { app, .. } = Acme::start().await;
    let Some(browser) = crate::browser::start_browser().await else {
        return;
    };
    let client = &browser.client;
    crate::browser::sign_in(client, &app.base, ACME_ADMIN).await;
    client
        .goto(&format!("{}/profile/api-tokens/new", app.base))
        .await
        .unwrap();
    let name = client.find(Locator::Id("name")).await.unwrap();
    name.send_keys("purge bot").await.unwrap();
    client
        .find(Locator::Css("#limit-token summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut problems = vec![];
    crate::browser::check_page(client, &axe, "create-limited", &mut problems).await;
    // A bad line is named as it is typed, before any submit.
    let routes = client.find(Locator::Id("allowed_routes")).await.unwrap();
    routes.send_keys("GET dns").await.unwrap();
    let live = client
        .find(Locator::Id("routes-live"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(live.starts_with("Line 1"), "{live:?}");
    routes.clear().await.unwrap();
    routes
        .send_keys("POST /cdn/resources/123/purge")
        .await
        .unwrap();
    // (Clearing sends no input event: one keystroke more re-checks the text.)
    routes.send_keys(" ").await.unwrap();
    let live = client
        .find(Locator::Id("routes-live"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(live, "", "a good line clears the message");
    // And a quota of three allowed requests.
    client
        .find(Locator::Id("quota_requests"))
        .await
        .unwrap()
        .send_keys("3")
        .await
        .unwrap();
    client
        .find(Locator::Id("preset-2"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    crate::browser::click_and_load(client, "#create-submit").await;
    let token = client
        .find(Locator::Id("new-token-value"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // In its routes: through. Outside them: refused with the reason.
    assert_eq!(
        check(&app, &token, Some(("POST", "/cdn/resources/123/purge")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        check(&app, &token, Some(("GET", "/dns/zones")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let outside = check(&app, &token, Some(("POST", "/cdn/resources/9/purge"))).await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN);
    assert_eq!(outside.headers["x-auth-reason"], "route");
    // A refusal for its route spent none of the quota: one more passes, then the quota stops it.
    let purge = Some(("POST", "/cdn/resources/123/purge"));
    assert_eq!(
        check(&app, &token, purge).await.status,
        StatusCode::NO_CONTENT
    );
    let spent = check(&app, &token, purge).await;
    assert_eq!(spent.status, StatusCode::FORBIDDEN);
    assert_eq!(spent.headers["x-auth-reason"], "quota");
    // The token page lists them.
    let id = crate::helpers::token_id(&token);
    client
        .goto(&format!("{}/profile/api-tokens/{id}", app.base))
        .await
        .unwrap();
    let shown = client
        .find(Locator::Id("token-routes"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        shown.contains("POST /cdn/resources/123/purge") && shown.contains("* /dns/**"),
        "{shown}"
    );
}

async fn create_rated(api: &Api, account: i64, rate: Value) -> crate::helpers::Reply {
    api.post(
        &format!("/iam/clients/{account}/tokens"),
        json!({"name": "rated", "client_user": {"role": {"id": 5}}, "exp_date": null, "rate_limit": rate}),
    )
    .await
}

#[tokio::test]
async fn a_rate_limit_passes_a_burst_then_refuses_with_when_to_retry() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let made = create_rated(&api, account, json!({"requests": 100, "per_seconds": 3600})).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.json);
    assert_eq!(
        made.json["rate_limit"],
        json!({"requests": 100, "per_seconds": 3600})
    );
    let token = made.json["token"].as_str().unwrap().to_owned();
    let leases = app.state.gateway.rate_leases();
    for i in 0..100 {
        assert_eq!(
            check(&app, &token, None).await.status,
            StatusCode::NO_CONTENT,
            "request {i}"
        );
    }
    // The database was asked ten times (a tenth of the burst each), not a hundred.
    assert!(
        app.state.gateway.rate_leases() - leases <= 11,
        "{}",
        app.state.gateway.rate_leases() - leases
    );
    let over = check(&app, &token, None).await;
    assert_eq!(over.status, StatusCode::FORBIDDEN);
    assert_eq!(over.headers["x-auth-reason"], "rate-limited");
    assert_eq!(over.headers["ratelimit-policy"], "\"token\";q=100;w=3600");
    let retry: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=36).contains(&retry), "{retry}");
    assert!(over.headers["ratelimit"]
        .to_str()
        .unwrap()
        .starts_with("\"token\";r=0;t="));
    // A flood of refused requests costs no database work.
    let leases = app.state.gateway.rate_leases();
    for _ in 0..50 {
        assert_eq!(
            check(&app, &token, None).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(app.state.gateway.rate_leases(), leases);
    // Our own API answers 429 directly.
    let ours = create_rated(&api, account, json!({"requests": 1, "per_seconds": 3600})).await;
    let one = app.api(&format!("APIKey {}", ours.json["token"].as_str().unwrap()));
    assert_eq!(one.get("/iam/tokens/self").await.status, StatusCode::OK);
    let refused = one.get("/iam/tokens/self").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.contains_key("retry-after"));
    // Bad limits are named.
    for bad in [
        json!({"requests": 0, "per_seconds": 1}),
        json!({"requests": 5}),
        json!(7),
    ] {
        let r = create_rated(&api, account, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json.to_string().contains("rate_limit"), "{}", r.json);
    }
}

#[tokio::test]
async fn a_child_is_never_faster_and_patch_changes_the_rate_on_the_record() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let parent = create_rated(&api, account, json!({"requests": 1000, "per_seconds": 60})).await;
    let as_parent = app.api(&format!(
        "APIKey {}",
        parent.json["token"].as_str().unwrap()
    ));
    let faster = create_rated(
        &as_parent,
        account,
        json!({"requests": 1000, "per_seconds": 30}),
    )
    .await;
    assert_eq!(faster.status, StatusCode::BAD_REQUEST, "{}", faster.json);
    let inherited = create_rated(&as_parent, account, Value::Null).await;
    assert_eq!(
        inherited.json["rate_limit"],
        json!({"requests": 1000, "per_seconds": 60})
    );
    let id = inherited.json["id"].as_i64().unwrap();
    let patch = |body: Value| {
        let api = as_parent.clone();
        async move {
            api.send(
                reqwest::Method::PATCH,
                &format!("/iam/clients/{account}/tokens/{id}"),
                Some(body),
            )
            .await
        }
    };
    // Narrower: fine; beyond the parent's (or none): refused.
    let narrowed = patch(json!({"rate_limit": {"requests": 10, "per_seconds": 60}})).await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.json);
    assert_eq!(narrowed.json["rate_limit"]["requests"], 10);
    assert_eq!(
        patch(json!({"rate_limit": null})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        patch(json!({"rate_limit": {"requests": 2000, "per_seconds": 60}}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let events = app.events_of(account, "token.routes_changed").await;
    assert!(
        events
            .iter()
            .any(|e| e.summary.starts_with("Narrowed the rate limit")),
        "{events:?}"
    );
}

/// Two instances on one database, hammered at twice the rate for 10 s: what passes in every
/// window stays within the bound N·(t/S + 1) plus 10 %, and the limiter isn't refusing what it
/// should let through.
#[tokio::test]
async fn two_instances_share_one_rate_within_ten_percent() {
    let Acme { app, admin } = Acme::start().await;
    let sibling = app.spawn_sibling().await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let (n, s) = (20u64, 1u64);
    let made = create_rated(
        &api,
        admin.account_id,
        json!({"requests": n, "per_seconds": s}),
    )
    .await;
    let token = made.json["token"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let run = |base: String| {
        let token = token.clone();
        let http = api.http.clone();
        tokio::spawn(async move {
            // Each instance gets the whole rate: together, twice it.
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(1000 / n));
            let mut passed = vec![];
            while started.elapsed() < std::time::Duration::from_secs(10) {
                tick.tick().await;
                let r = http
                    .get(format!("{base}/iam/auth/check"))
                    .header("authorization", format!("APIKey {token}"))
                    .send()
                    .await
                    .unwrap();
                if r.status() == StatusCode::NO_CONTENT {
                    passed.push(started.elapsed());
                } else {
                    assert_eq!(r.headers()["x-auth-reason"], "rate-limited");
                }
            }
            passed
        })
    };
    let (a, b) = (run(app.base.clone()), run(sibling.base.clone()));
    let mut passed = a.await.unwrap();
    passed.extend(b.await.unwrap());
    passed.sort();
    let in_window = |from: f64, len: f64| {
        passed
            .iter()
            .filter(|t| (from..from + len).contains(&t.as_secs_f64()))
            .count() as f64
    };
    let windows: Vec<f64> = (0..10).map(|w| in_window(w as f64, 1.0)).collect();
    eprintln!(
        "two instances, {n}/{s}s, passed per 1-s window: {windows:?}, total {}",
        passed.len()
    );
    for len in [1.0, 2.0, 5.0, 10.0] {
        let bound = n as f64 * (len / s as f64 + 1.0) * 1.10;
        let mut from = 0.0;
        while from + len <= 10.0 + 1e-9 {
            let got = in_window(from, len);
            assert!(
                got <= bound,
                "{got} passed in [{from}, {from}+{len}) s: over {bound}"
            );
            from += 0.25;
        }
    }
    // And it lets the rate through (loosely: a slow machine sends less).
    assert!(
        passed.len() as f64 >= n as f64 * 10.0 * 0.5,
        "{}",
        passed.len()
    );
}

#[tokio::test]
async fn the_nginx_recipe_turns_a_rate_refusal_into_429_with_retry_after() {
    let Acme { app, admin } = Acme::start().await;
    let Some(nginx) = Nginx::start(&app) else {
        return;
    };
    let api = app.api_jwt(ACME_ADMIN).await;
    let made = create_rated(
        &api,
        admin.account_id,
        json!({"requests": 2, "per_seconds": 3600}),
    )
    .await;
    let token = made.json["token"].as_str().unwrap().to_owned();
    let answers = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| nginx.exchange("GET", "/dns/zones", Some(&token)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(answers[0].0, 200);
    assert_eq!(answers[1].0, 200);
    assert_eq!(answers[2].0, 429, "{answers:?}");
    let retry: u64 = answers[2]
        .1
        .as_deref()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{answers:?}");
}

#[tokio::test]
async fn the_nginx_recipe_turns_a_spent_quota_into_429_with_retry_after() {
    let Acme { app, admin } = Acme::start().await;
    let Some(nginx) = Nginx::start(&app) else {
        return;
    };
    let api = app.api_jwt(ACME_ADMIN).await;
    let made = api
        .post(
            &format!("/iam/clients/{}/tokens", admin.account_id),
            json!({"name": "quota'd", "client_user": {"role": {"id": 5}}, "exp_date": null,
                   "usage_limit": {"requests": 2, "refill": "daily"}}),
        )
        .await;
    let token = made.json["token"].as_str().unwrap().to_owned();
    let answers = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| nginx.exchange("GET", "/dns/zones", Some(&token)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!((answers[0].0, answers[1].0), (200, 200), "{answers:?}");
    assert_eq!(answers[2].0, 429, "{answers:?}");
    let retry: u64 = answers[2]
        .1
        .as_deref()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry), "{answers:?}");
}
