//! Issue 26, its OpenID Connect part, against a real OpenID provider (oidc-provider-mock from
//! PyPI, pinned in tests/oidc/requirements.txt, run as its own process): an SSO person signs
//! in through it (in Chromium too) and makes a token; what an attacker tries fails with a
//! clear 4xx and writes nothing; "required" refuses passwords except an Administrator's
//! break-glass, audited.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use apitokens::domain::Role;

use crate::helpers::{free_port, Acme, Client, ProcessGroup, TestApp, ACME_ADMIN, PASSWORD};

/// The OpenID provider, killed (with its process group) when dropped.
pub(crate) struct Provider {
    _process: ProcessGroup,
    issuer: String,
}

/// Starts oidc-provider-mock (nonce required); `None` (skipped, with the reason printed) on a
/// developer's machine without it; in CI its absence fails the test.
pub(crate) async fn provider() -> Option<Provider> {
    let command = match std::env::var("OIDC_PROVIDER") {
        Ok(c) => c,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI must run the SSO tests: set OIDC_PROVIDER (tests/oidc/run-setup)")
        }
        Err(_) => {
            eprintln!("SKIPPED SSO test: OIDC_PROVIDER=$(tests/oidc/run-setup) to run it");
            return None;
        }
    };
    let port = free_port();
    let child = Command::new(command)
        .process_group(0)
        .args(["--port", &port.to_string(), "--require-nonce", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("oidc-provider-mock starts");
    let issuer = format!("http://127.0.0.1:{port}");
    let provider = Provider {
        _process: ProcessGroup(child),
        issuer,
    };
    let discovery = format!("{}/.well-known/openid-configuration", provider.issuer);
    for _ in 0..200 {
        if reqwest::get(&discovery)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Some(provider);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("oidc-provider-mock did not answer at {discovery}");
}

/// Acme on an app whose base URL has its port (the redirect URI must reach it), allowing the
/// provider over plain http.
pub(crate) async fn acme_with(provider: &Provider) -> (Acme, u16) {
    let port = free_port();
    let issuer = provider.issuer.clone();
    let app = TestApp::spawn_with(move |s| {
        s.bind = format!("127.0.0.1:{port}");
        s.base_url = format!("http://127.0.0.1:{port}");
        s.insecure_issuers = vec![issuer];
    })
    .await;
    (Acme::on(app).await, port)
}

/// Turns SSO on for Acme through the API, as an Administrator's script would.
pub(crate) async fn configure(
    app: &TestApp,
    provider: &Provider,
    extra: serde_json::Value,
) -> serde_json::Value {
    let admin = app.api_jwt(ACME_ADMIN).await;
    let account = admin.get("/iam/users/me").await.json["client"]
        .as_i64()
        .unwrap();
    let mut body = json!({
        "protocol": "oidc",
        "issuer": provider.issuer,
        "client_id": "apitokens-acme",
        "client_secret": "s3cret-of-the-provider",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = admin
        .put(&format!("/iam/clients/{account}/sso"), body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json
}

/// An SSO person of Acme (no password).
async fn sso_person(app: &TestApp, email: &str, role: Role) {
    let admin = app.signed_in(ACME_ADMIN).await;
    let added = admin
        .post_from(
            "/users",
            "/users",
            &[
                ("name", email.split('@').next().unwrap()),
                ("email", email),
                ("role", &role.id().to_string()),
                ("sign_in", "sso"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
}

/// `/sso/start` for `email` from `client`, then the provider's form answered as `sub`: the
/// callback URL the provider sends the browser to (not followed yet).
pub(crate) async fn through_provider(client: &Client, start: &str, sub: &str) -> String {
    let started = client.get(start).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let authorize = started.location().to_owned();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "PKCE: {authorize}"
    );
    assert!(
        authorize.contains("nonce=") && authorize.contains("state="),
        "{authorize}"
    );
    callback_for(&authorize, sub).await
}

/// The provider's answer to its authorization URL for `sub` (its form, posted).
async fn callback_for(authorize: &str, sub: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(authorize)
        .form(&[("sub", sub)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.text().await.unwrap());
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The path and query of a URL of the app.
pub(crate) fn local(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

async fn sessions(app: &TestApp) -> i64 {
    app.db(|c| {
        use diesel::prelude::*;
        apitokens::db::schema::sessions::table
            .count()
            .get_result(c)
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn an_sso_person_signs_in_through_the_provider_and_what_attackers_try_fails() {
    let Some(provider) = provider().await else {
        return;
    };
    let (Acme { app, admin }, _) = acme_with(&provider).await;
    let shown = configure(&app, &provider, json!({})).await;
    assert_eq!(shown["enabled"], true);
    assert!(
        shown.get("client_secret").is_none(),
        "never the secret: {shown}"
    );
    assert!(shown["redirect_uri"]
        .as_str()
        .unwrap()
        .ends_with("/sso/oidc/callback"));
    assert_eq!(
        app.events_of(admin.account_id, "sso.configured")
            .await
            .len(),
        1
    );
    sso_person(&app, "sam@acme.test", Role::Engineers).await;

    // Sam signs in: e-mail → provider → back with a session; `next` stays local.
    let sam = app.client();
    let back = through_provider(
        &sam,
        "/sso/start?email=sam%40acme.test&next=https%3A%2F%2Fevil.example%2F",
        "sam@acme.test",
    )
    .await;
    let done = sam.get(&local(&back)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/", "never another host");
    let tokens = sam.get("/profile/api-tokens").await;
    assert_eq!(tokens.status, StatusCode::OK);
    assert!(
        tokens.has("#sso-warning"),
        "the seed's warning for SSO people"
    );
    let made = sam
        .create_token(&[
            ("name", "from sso"),
            ("role", &Role::Engineers.id().to_string()),
        ])
        .await;
    assert!(made.body.contains("from sso"), "{}", made.body);
    assert_eq!(
        app.events_of(admin.account_id, "sso.sign_in").await.len(),
        1
    );

    // The same answer again (a replay, with the cookie that finished it): refused.
    let replay = sam.get(&local(&back)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);

    // Another browser can't finish a sign-in this one started, nor a made-up state.
    let victim = app.client();
    let theirs =
        through_provider(&victim, "/sso/start?email=sam%40acme.test", "sam@acme.test").await;
    let before = sessions(&app).await;
    let stranger = app.client();
    let stolen = stranger.get(&local(&theirs)).await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);
    assert!(stolen
        .text_of("sso-error")
        .unwrap()
        .contains("started in this browser"));
    let forged = victim
        .get(&local(&theirs).replace("state=", "state=x"))
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert_eq!(sessions(&app).await, before, "nothing signed in");

    // A code the provider issued to another client, slipped into our callback: refused.
    let attacker = app.client();
    let started = attacker.get("/sso/start?email=sam%40acme.test").await;
    let ours = started.location().to_owned();
    let state = url::Url::parse(&ours)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let other_client = ours.replace("client_id=apitokens-acme", "client_id=another-app");
    let other = callback_for(&other_client, "sam@acme.test").await;
    let code = url::Url::parse(&other)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let injected = attacker
        .get(&format!("/sso/oidc/callback?code={code}&state={state}"))
        .await;
    assert_eq!(
        injected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        injected.body
    );
    assert!(
        injected.text_of("sso-error").unwrap().contains("checks"),
        "{}",
        injected.body
    );
    assert_eq!(sessions(&app).await, before, "nothing signed in");

    // A person of another account, vouched for by the provider: refused, nothing written.
    app.add_user("Other", "olga@other.test", Role::Administrators)
        .await;
    let olga = app.client();
    let back = through_provider(
        &olga,
        &format!("/sso/start?account={}", admin.account_id),
        "olga@other.test",
    )
    .await;
    let refused = olga.get(&local(&back)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused
        .text_of("sso-error")
        .unwrap()
        .contains("olga@other.test"));
    assert_eq!(sessions(&app).await, before);
    // Someone the account doesn't know: refused unless it lets new people in.
    let newcomer = app.client();
    let back = through_provider(
        &newcomer,
        &format!("/sso/start?account={}", admin.account_id),
        "nina@acme.test",
    )
    .await;
    assert_eq!(
        newcomer.get(&local(&back)).await.status,
        StatusCode::FORBIDDEN
    );
    let failed = app.events_of(admin.account_id, "sso.failed").await;
    assert!(failed.len() >= 3, "{failed:?}");
    configure(&app, &provider, json!({"jit_role": "Engineers"})).await;
    let back = through_provider(
        &newcomer,
        &format!("/sso/start?account={}", admin.account_id),
        "nina@acme.test",
    )
    .await;
    assert_eq!(
        newcomer.get(&local(&back)).await.status,
        StatusCode::SEE_OTHER
    );
    let nina = app
        .db(|c| {
            apitokens::repo::User::find_by_email(c, "nina@acme.test")
                .unwrap()
                .unwrap()
        })
        .await;
    assert_eq!(
        (nina.role, nina.auth_type),
        (Role::Engineers, apitokens::domain::AuthType::Sso)
    );
    assert_eq!(nina.account_id, admin.account_id);

    // A removed person, still vouched for by the provider: refused, no session.
    let sam_id = app
        .db(|c| {
            apitokens::repo::User::find_by_email(c, "sam@acme.test")
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    let removed = app
        .api_jwt(ACME_ADMIN)
        .await
        .delete(&format!(
            "/iam/clients/{}/client-users/{sam_id}",
            admin.account_id
        ))
        .await;
    assert!(removed.status.is_success(), "{}", removed.json);
    let gone = app.client();
    // By e-mail the server no longer finds them; through the account's link, the provider's
    // answer is refused.
    assert_eq!(
        gone.get("/sso/start?email=sam%40acme.test").await.status,
        StatusCode::BAD_REQUEST
    );
    let back = through_provider(
        &gone,
        &format!("/sso/start?account={}", admin.account_id),
        "sam@acme.test",
    )
    .await;
    let before = sessions(&app).await;
    let refused = gone.get(&local(&back)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(
        sessions(&app).await,
        before,
        "a removed person gets no session"
    );
    assert_eq!(gone.get("/profile").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn required_sso_refuses_passwords_but_an_administrators_break_glass_and_bad_settings_are_named(
) {
    let Some(provider) = provider().await else {
        return;
    };
    let (Acme { app, admin }, _) = acme_with(&provider).await;
    app.acme_member("eve", Role::Engineers).await;
    // Not an Administrator: can't read or change it.
    let eve_api = app.api_jwt("eve@acme.test").await;
    let path = format!("/iam/clients/{}/sso", admin.account_id);
    assert_eq!(eve_api.get(&path).await.status, StatusCode::FORBIDDEN);
    let admin_api = app.api_jwt(ACME_ADMIN).await;
    // Plain http only for listed issuers; an issuer that isn't there is named.
    for (issuer, says) in [
        ("http://login.example.test", "https"),
        ("https://127.0.0.1:1", "couldn't be reached"),
        ("not a url", "URL"),
    ] {
        let r = admin_api
            .put(&path, json!({"protocol": "oidc", "issuer": issuer, "client_id": "x", "client_secret": "y"}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{issuer}: {}", r.json);
        assert!(
            r.json["errors"]["issuer"].to_string().contains(says),
            "{issuer}: {}",
            r.json
        );
    }
    let saml = admin_api
        .put(&path, json!({"protocol": "saml", "idp_metadata": "<x/>"}))
        .await;
    assert_eq!(saml.status, StatusCode::BAD_REQUEST);
    assert!(
        saml.json["errors"]["idp_metadata"]
            .to_string()
            .contains("entityID"),
        "SAML metadata that can't work is named (tests/it/saml.rs has the rest): {}",
        saml.json
    );
    assert_eq!(admin_api.get(&path).await.json["enabled"], false);

    configure(&app, &provider, json!({"required": true})).await;
    // Eve's password no longer opens the portal, nor a JWT.
    let eve = app.client();
    let page = eve.sign_in("eve@acme.test", PASSWORD).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("single sign-on"), "{}", page.body);
    let jwt = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "eve@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(jwt.status, StatusCode::BAD_REQUEST, "{}", jwt.json);
    assert!(
        jwt.json.to_string().contains("single sign-on"),
        "{}",
        jwt.json
    );
    // The Administrator's does (break-glass), and Activity records it.
    let admin_web = app.client();
    assert_eq!(
        admin_web.sign_in(ACME_ADMIN, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.events_of(admin.account_id, "sso.break_glass")
            .await
            .len(),
        1
    );
    // A flood of starts from one address: 20 go to the provider, then 429 (each start reads
    // the e-mail's account, so starts are bounded per address and per instance).
    let flood = app.client();
    let mut statuses = vec![];
    for _ in 0..30 {
        statuses.push(flood.get("/sso/start?email=eve%40acme.test").await.status);
    }
    assert!(
        statuses[..20].iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    assert!(
        statuses[20..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Off again: passwords work.
    assert_eq!(admin_api.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        eve.sign_in("eve@acme.test", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_sso_person_signs_in_in_a_real_browser_and_makes_a_token() {
    use crate::browser::{axe_source, check_page, click_and_load, start_browser};
    use fantoccini::Locator;
    let Some(provider) = provider().await else {
        return;
    };
    let (Acme { app, .. }, port) = acme_with(&provider).await;
    configure(&app, &provider, json!({})).await;
    sso_person(&app, "sam@acme.test", Role::Engineers).await;
    let Some(browser) = start_browser().await else {
        return;
    };
    let wd = &browser.client;
    let axe = axe_source();
    let mut problems = vec![];
    let base = format!("http://127.0.0.1:{port}");
    wd.goto(&format!("{base}/login")).await.unwrap();
    click_and_load(wd, "#sso-sign-in").await;
    if let Some(axe) = &axe {
        check_page(wd, axe, "sso-start", &mut problems).await;
    }
    wd.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys("sam@acme.test")
        .await
        .unwrap();
    click_and_load(wd, "#sso-continue").await;
    // The provider's own page: who signs in.
    assert!(wd
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&provider.issuer));
    wd.find(Locator::Css("input[name=sub]"))
        .await
        .unwrap()
        .send_keys("sam@acme.test")
        .await
        .unwrap();
    click_and_load(wd, "form button[type=submit]").await;
    assert_eq!(
        wd.current_url().await.unwrap().path(),
        "/profile/api-tokens"
    );
    assert!(wd.find(Locator::Id("sso-warning")).await.is_ok());
    wd.goto(&format!("{base}/profile/api-tokens/new"))
        .await
        .unwrap();
    wd.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("made through sso")
        .await
        .unwrap();
    click_and_load(wd, "#create-submit").await;
    let dialog = wd
        .find(Locator::Id("token-dialog"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dialog.contains("made through sso"), "{dialog}");
    // A failure page, and the Administrators' settings page, pass axe too.
    wd.goto(&format!("{base}/sso/oidc/callback?code=x&state=y"))
        .await
        .unwrap();
    assert!(wd.find(Locator::Id("sso-error")).await.is_ok());
    if let Some(axe) = &axe {
        check_page(wd, axe, "sso-failed", &mut problems).await;
        crate::browser::sign_in(wd, &base, ACME_ADMIN).await;
        wd.goto(&format!("{base}/single-sign-on")).await.unwrap();
        assert!(wd.find(Locator::Id("sso-redirect-uri")).await.is_ok());
        check_page(wd, axe, "sso-settings", &mut problems).await;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
