//! Issue 27, its TOTP part: codes computed by an independent implementation (pyotp, pinned in
//! tests/totp/requirements.txt); a person with two factors gets no session, JWT or token with
//! the password alone; a code works once on every instance; wrong codes are limited like wrong
//! passwords; recovery codes work once; turning it off needs a code.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use apitokens::domain::Role;

use crate::helpers::{unescape, Acme, Client, TestApp, ACME_ADMIN, PASSWORD};

/// The code pyotp computes for `secret` (base32) at `unix`: `None` (and the test skips) when
/// pyotp is missing on a developer's machine; in CI its absence fails the test.
fn pyotp(secret: &str, unix: i64) -> Option<String> {
    let python = match std::env::var("PYOTP_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI must check TOTP with pyotp: set PYOTP_PYTHON (tests/totp/run-setup)")
        }
        Err(_) => {
            eprintln!("SKIPPED two-factor test: PYOTP_PYTHON=$(tests/totp/run-setup) to run it");
            return None;
        }
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
            secret,
            &unix.to_string(),
        ])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

/// Turns two-factor authentication on for the signed-in `web` client: the seed as shown on
/// the page, and the recovery codes as shown once. `None` when pyotp is missing.
async fn enrol(app: &TestApp, web: &Client) -> Option<(String, Vec<String>)> {
    let started = web
        .post_from("/profile/security", "/profile/security/totp", &[])
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let page = web.get("/profile/security").await;
    let secret = page
        .text_of("totp-secret")
        .expect("the key is shown as text");
    let uri = unescape(&page.text_of("totp-uri").expect("the setup link"));
    assert!(uri.starts_with("otpauth://totp/apitokens:"), "{uri}");
    assert!(
        uri.contains(&format!("secret={secret}")) && uri.contains("issuer=apitokens"),
        "{uri}"
    );
    assert!(page.has("#totp-qr svg"), "a QR code drawn as SVG");
    // A wrong code doesn't turn it on.
    let wrong = web
        .post_from(
            "/profile/security",
            "/profile/security/totp/confirm",
            &[("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.has("#error-summary-security"));
    let code = pyotp(&secret, app.clock().now().unix_timestamp())?;
    let on = web
        .post_from(
            "/profile/security",
            "/profile/security/totp/confirm",
            &[("code", &code)],
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    assert_eq!(on.headers.get("cache-control").unwrap(), "no-store");
    let codes: Vec<String> = on
        .text_of("recovery-codes")
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    Some((secret, codes))
}

/// Signs in with the password: the answer must send to the second step, with no session.
async fn password_step(app: &TestApp) -> Client {
    let client = app.client();
    let first = client.sign_in(ACME_ADMIN, PASSWORD).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert!(
        first.location().starts_with("/login/two-factor"),
        "{}",
        first.location()
    );
    assert_eq!(
        client.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "the password step alone makes no session"
    );
    client
}

#[tokio::test]
async fn a_second_factor_guards_the_portal_and_the_jwt_login_and_each_code_works_once() {
    let Acme { app, admin } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let Some((secret, recovery)) = enrol(&app, &web).await else {
        return;
    };
    let now = || app.clock().now().unix_timestamp();
    // The code used to confirm is spent: a replay within its window is refused.
    let replayed = pyotp(&secret, now()).unwrap();
    let client = password_step(&app).await;
    let page = client
        .post_from(
            "/login/two-factor",
            "/login/two-factor",
            &[("code", &replayed)],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    assert!(page.has("#error-summary-two-factor"));
    // The next step's code opens a session, once.
    app.clock().advance(time::Duration::seconds(30));
    let code = pyotp(&secret, now()).unwrap();
    let done = client
        .post_from("/login/two-factor", "/login/two-factor", &[("code", &code)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(client.get("/profile").await.status, StatusCode::OK);
    let other = password_step(&app).await;
    let again = other
        .post_from("/login/two-factor", "/login/two-factor", &[("code", &code)])
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "a code works once");

    // The JWT login: Gcore's one_time_password, named when missing or wrong.
    let login = |otp: Option<String>| {
        let api = app.api("");
        async move {
            let mut body = json!({"username": ACME_ADMIN, "password": PASSWORD});
            if let Some(otp) = otp {
                body["one_time_password"] = json!(otp);
            }
            api.post("/iam/auth/jwt/login", body).await
        }
    };
    let missing = login(None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.json["errors"]["one_time_password"][0]
            .as_str()
            .unwrap()
            .contains("required"),
        "{}",
        missing.json
    );
    let wrong = login(Some("123456".into())).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.json["errors"]["one_time_password"].is_array(),
        "{}",
        wrong.json
    );
    app.clock().advance(time::Duration::seconds(30));
    let jwt = login(Some(pyotp(&secret, now()).unwrap())).await;
    assert_eq!(jwt.status, StatusCode::OK, "{}", jwt.json);
    assert!(jwt.json["access"].is_string());

    // A recovery code signs in once.
    let lost_phone = password_step(&app).await;
    let used = lost_phone
        .post_from(
            "/login/two-factor",
            "/login/two-factor",
            &[("code", &recovery[0].to_uppercase())],
        )
        .await;
    assert_eq!(used.status, StatusCode::SEE_OTHER, "{}", used.body);
    let twice = password_step(&app).await;
    let refused = twice
        .post_from(
            "/login/two-factor",
            "/login/two-factor",
            &[("code", &recovery[0])],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(web
        .get("/profile/security")
        .await
        .text_of("recovery-left")
        .unwrap()
        .contains("9 of 10"));

    // Turning it off needs a code; then the password alone signs in again.
    let no = web
        .post_from(
            "/profile/security",
            "/profile/security/totp/disable",
            &[("code", "999999")],
        )
        .await;
    assert_eq!(no.status, StatusCode::BAD_REQUEST);
    let off = web
        .post_from(
            "/profile/security",
            "/profile/security/totp/disable",
            &[("code", &recovery[1])],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);
    let plain = app.client().sign_in(ACME_ADMIN, PASSWORD).await;
    assert_eq!(plain.location(), "/");
    for kind in [
        "user.two_factor_enabled",
        "user.recovery_code_used",
        "user.two_factor_disabled",
    ] {
        assert!(
            !app.events_of(admin.account_id, kind).await.is_empty(),
            "{kind} recorded"
        );
    }
}

#[tokio::test]
async fn a_burst_of_wrong_codes_checks_no_more_than_the_limit_allows() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let Some((secret, _)) = enrol(&app, &web).await else {
        return;
    };
    let client = password_step(&app).await;
    let csrf = client
        .get("/login/two-factor")
        .await
        .input_value("csrf_token")
        .unwrap();
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (client, csrf) = (client.clone(), csrf.clone());
        burst.spawn(async move {
            client
                .post(
                    "/login/two-factor",
                    &[
                        ("csrf_token", &csrf),
                        ("code", &format!("{:06}", 100_000 + i)),
                    ],
                )
                .await
                .status
        });
    }
    let mut checked = 0;
    let mut limited = 0;
    while let Some(status) = burst.join_next().await {
        match status.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // The limiter's count for one person from one address (5 per window) and no more.
    assert!(checked <= 5, "{checked} wrong codes were checked");
    assert_eq!(checked + limited, 200);
    // From this address, even the right code waits for the window to end.
    app.clock().advance(time::Duration::seconds(30));
    let right = pyotp(&secret, app.clock().now().unix_timestamp()).unwrap();
    let page = client
        .post(
            "/login/two-factor",
            &[("csrf_token", &csrf), ("code", &right)],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_second_step_needs_the_first_and_expires() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let Some(_) = enrol(&app, &web).await else {
        return;
    };
    // Without the password step there is nothing to finish.
    let stranger = app.client();
    assert_eq!(
        stranger.get("/login/two-factor").await.status,
        StatusCode::SEE_OTHER
    );
    // The password step lasts five minutes.
    let slow = password_step(&app).await;
    assert_eq!(slow.get("/login/two-factor").await.status, StatusCode::OK);
    app.clock().advance(time::Duration::minutes(6));
    assert_eq!(slow.get("/login/two-factor").await.location(), "/login");
}

#[tokio::test]
async fn the_enrolment_the_codes_and_the_second_step_pass_axe_in_a_real_browser() {
    let Some(axe) = crate::browser::axe_source() else {
        return;
    };
    for (theme, extra) in [("light", &[][..]), ("dark", &["--force-dark-mode"][..])] {
        enrol_sign_in_and_confirm(theme, extra, &axe).await;
    }
}

/// The whole second-factor journey in one theme, axe-checked at 1280 and 390 px.
async fn enrol_sign_in_and_confirm(theme: &str, extra: &[&str], axe: &str) {
    use crate::browser::{check_page, click_and_load, sign_in, start_browser_with};
    use fantoccini::Locator;
    let Acme { app, .. } = Acme::start().await;
    let Some(browser) = start_browser_with(extra).await else {
        return;
    };
    let client = &browser.client;
    let mut problems = vec![];
    sign_in(client, &app.base, ACME_ADMIN).await;
    client
        .goto(&format!("{}/profile/security", app.base))
        .await
        .unwrap();
    click_and_load(client, "#start-two-factor").await;
    check_page(
        client,
        axe,
        &format!("{theme}-two-factor-enrol"),
        &mut problems,
    )
    .await;
    let secret = client
        .find(Locator::Id("totp-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let Some(code) = pyotp(&secret, app.clock().now().unix_timestamp()) else {
        return;
    };
    client
        .find(Locator::Id("code"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    click_and_load(client, "#confirm-two-factor").await;
    assert!(client
        .find(Locator::Css("dialog#recovery-dialog #recovery-codes"))
        .await
        .is_ok());
    check_page(
        client,
        axe,
        &format!("{theme}-two-factor-recovery-codes"),
        &mut problems,
    )
    .await;
    click_and_load(client, "#codes-saved").await;
    check_page(
        client,
        axe,
        &format!("{theme}-two-factor-on"),
        &mut problems,
    )
    .await;
    // Sign out and in again: the password, then the code's own step.
    click_and_load(client, "#sign-out").await;
    client
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(ACME_ADMIN)
        .await
        .unwrap();
    client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click_and_load(client, "#sign-in").await;
    assert_eq!(
        client.current_url().await.unwrap().path(),
        "/login/two-factor"
    );
    check_page(
        client,
        axe,
        &format!("{theme}-two-factor-step"),
        &mut problems,
    )
    .await;
    app.clock().advance(time::Duration::seconds(30));
    let code = pyotp(&secret, app.clock().now().unix_timestamp()).unwrap();
    client
        .find(Locator::Id("code"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    click_and_load(client, "#verify-code").await;
    assert_eq!(
        client.current_url().await.unwrap().path(),
        "/profile/api-tokens"
    );
    // Later, an Administrators token asks for the password and the code again; the form
    // survives the detour.
    app.clock().advance(time::Duration::minutes(16));
    client
        .goto(&format!("{}/profile/api-tokens/new", app.base))
        .await
        .unwrap();
    client
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("Robot admin")
        .await
        .unwrap();
    client
        .find(Locator::Css("#role option[value='1']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_and_load(client, "#create-submit").await;
    assert!(client.find(Locator::Id("sudo-form")).await.is_ok());
    check_page(client, axe, &format!("{theme}-sudo"), &mut problems).await;
    client
        .find(Locator::Id("sudo_password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    let code = pyotp(&secret, app.clock().now().unix_timestamp()).unwrap();
    client
        .find(Locator::Id("sudo_code"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    click_and_load(client, "#sudo-confirm").await;
    check_page(
        client,
        axe,
        &format!("{theme}-sudo-confirmed"),
        &mut problems,
    )
    .await;
    click_and_load(client, "#sudo-go-on").await;
    let revealed = client
        .find(Locator::Id("token-dialog"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(revealed.contains("Robot admin"), "{revealed}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn an_account_can_require_two_factors_and_an_administrator_can_reset_one() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let web = app.signed_in(ACME_ADMIN).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let security = format!("/iam/clients/{}/security", admin.account_id);
    assert_eq!(
        api.get(&security).await.json,
        json!({"mfa_required": false})
    );
    // Only with a second factor of one's own, and only Administrators; bad bodies named.
    let early = api
        .send(
            reqwest::Method::PUT,
            &security,
            Some(json!({"mfa_required": true})),
        )
        .await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{}", early.json);
    assert!(early.json["errors"]["mfa_required"][0]
        .as_str()
        .unwrap()
        .contains("your own second factor"));
    let Some((secret, _)) = enrol(&app, &web).await else {
        return;
    };
    let eng_api = app.api_as(&eng, Role::Engineers).await;
    let put = |api: &crate::helpers::Api, body: serde_json::Value| {
        let (api, path) = (api.clone(), security.clone());
        async move { api.send(reqwest::Method::PUT, &path, Some(body)).await }
    };
    assert_eq!(
        put(&eng_api, json!({"mfa_required": true})).await.status,
        StatusCode::FORBIDDEN
    );
    for bad in [
        json!({}),
        json!({"mfa_required": "yes"}),
        json!({"mfa_required": null}),
    ] {
        let r = put(&api, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json["errors"]["mfa_required"].is_array(), "{}", r.json);
    }
    let on = put(&api, json!({"mfa_required": true})).await;
    assert_eq!(on.json, json!({"mfa_required": true}));
    assert_eq!(
        app.events_of(admin.account_id, "account.two_factor_policy")
            .await
            .len(),
        1
    );

    // Someone without one: signed in, but every page leads to Profile → Security until they set
    // one up; their JWT login is refused with the reason; their tokens keep working.
    let eng_web = app.signed_in("eng@acme.test").await;
    for path in [
        "/profile/api-tokens",
        "/profile",
        "/users",
        "/notifications",
    ] {
        let page = eng_web.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/profile/security?required=1", "{path}");
    }
    let refused = eng_web
        .post_from(
            "/profile/security",
            "/profile/api-tokens",
            &[("name", "x"), ("role", "2"), ("expiration", "7d")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::SEE_OTHER,
        "no token while enrolment is due"
    );
    assert!(eng_web
        .get("/profile/security")
        .await
        .has("#enrolment-required"));
    let jwt = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "eng@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(jwt.status, StatusCode::BAD_REQUEST);
    assert!(jwt.json["errors"]["one_time_password"][0]
        .as_str()
        .unwrap()
        .contains("requires two-factor"));
    assert_eq!(eng_api.get("/iam/users/me").await.status, StatusCode::OK);
    let Some((eng_secret, _)) = enrol(&app, &eng_web).await else {
        return;
    };
    assert_eq!(
        eng_web.get("/profile/api-tokens").await.status,
        StatusCode::OK
    );

    // An Administrator resets the engineer's (a lost phone): audited; the policy sends them
    // to enrol again at once.
    let users = web.get("/users").await;
    assert_eq!(
        users.attrs(
            &format!("tr[data-user-id=\"{}\"] .reset-two-factor", eng.id),
            "href"
        ),
        vec![format!("/users?confirm=reset-2fa&user={}", eng.id)]
    );
    let confirm = web
        .get(&format!("/users?confirm=reset-2fa&user={}", eng.id))
        .await;
    assert!(confirm
        .text_of("user-confirm-dialog")
        .unwrap()
        .contains("Reset the second factor"));
    let reset = web
        .post_from(
            "/users",
            &format!("/users/{}/reset-two-factor", eng.id),
            &[],
        )
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
    assert_eq!(
        app.events_of(admin.account_id, "user.two_factor_reset")
            .await
            .len(),
        1
    );
    assert_eq!(
        eng_web.get("/profile/api-tokens").await.location(),
        "/profile/security?required=1"
    );
    let _ = (secret, eng_secret);
    // Another account's person can't be reset from here.
    let other = app.add_user("Other", "x@other.test", Role::Users).await;
    let foreign = web
        .post_from(
            "/users",
            &format!("/users/{}/reset-two-factor", other.id),
            &[],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_botnet_that_has_the_password_gets_ten_code_guesses_a_window_in_all() {
    // Attackers with the password, each request from another address (believed through a
    // trusted proxy): the per-address limits can't hold them, the per-person count must.
    let app =
        TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let Acme { app, .. } = Acme::on(app).await;
    let web = app.signed_in(ACME_ADMIN).await;
    let Some((secret, _)) = enrol(&app, &web).await else {
        return;
    };
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let http = reqwest::Client::new();
        let url = format!("{}/iam/auth/jwt/login", app.base);
        burst.spawn(async move {
            http.post(url)
                .header("x-forwarded-for", format!("10.1.{}.{}", i / 250, i % 250 + 1))
                .json(&json!({"username": ACME_ADMIN, "password": PASSWORD, "one_time_password": format!("{:06}", 200_000 + i)}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    // 400: a code was checked and wrong; 429: refused by the count; 503: the password budget
    // was full (each attempt's right password costs an Argon2 check), told to come back.
    let (mut checked, mut refused) = (0, 0);
    while let Some(status) = burst.join_next().await {
        match status.unwrap() {
            StatusCode::BAD_REQUEST => checked += 1,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("unexpected {other}: nothing may get through"),
        }
    }
    assert!(checked <= 10, "{checked} codes were checked");
    assert!(checked >= 1, "some attempts reached the code check");
    assert_eq!(checked + refused, 200);
    // Attempts told "busy" never reached the count: keep guessing (sequentially, bounded)
    // until the count refuses, so the lock has surely tripped.
    for i in 0..20u32 {
        let r = reqwest::Client::new()
            .post(format!("{}/iam/auth/jwt/login", app.base))
            .header("x-forwarded-for", format!("10.2.0.{}", i + 1))
            .json(&json!({"username": ACME_ADMIN, "password": PASSWORD, "one_time_password": "000000"}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // The person is told, once, that someone has their password.
    let told = crate::passwords::outbox(app.dir.path(), 1).await;
    assert!(told[0].contains("knows your password"), "{}", told[0]);
    // The person's own right code waits for the window too (they are told to change their
    // password: someone has it); after it, it works.
    app.clock().advance(time::Duration::seconds(30));
    let code = pyotp(&secret, app.clock().now().unix_timestamp()).unwrap();
    let r = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": ACME_ADMIN, "password": PASSWORD, "one_time_password": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    app.clock().advance(time::Duration::minutes(16));
    let code = pyotp(&secret, app.clock().now().unix_timestamp()).unwrap();
    let r = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": ACME_ADMIN, "password": PASSWORD, "one_time_password": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn the_person_is_told_when_two_recovery_codes_are_left_and_when_an_administrator_resets() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let Some((_, recovery)) = enrol(&app, &web).await else {
        return;
    };
    for code in &recovery[..7] {
        let client = password_step(&app).await;
        let used = client
            .post_from("/login/two-factor", "/login/two-factor", &[("code", code)])
            .await;
        assert_eq!(used.status, StatusCode::SEE_OTHER);
    }
    assert!(
        std::fs::read_dir(app.dir.path().join("outbox")).map_or(true, |d| d.count() == 0),
        "3 left: no mail yet"
    );
    let client = password_step(&app).await;
    client
        .post_from(
            "/login/two-factor",
            "/login/two-factor",
            &[("code", &recovery[7])],
        )
        .await;
    let mails = crate::passwords::outbox(app.dir.path(), 1).await;
    assert!(mails[0].contains("2 of your ten are left"), "{}", mails[0]);
    assert!(!mails[0].contains(&recovery[8]), "no code in the mail");

    // Another Administrator resets it: the person is told who did.
    let second = app.acme_member("second", Role::Administrators).await;
    let other = app.signed_in("second@acme.test").await;
    let admin = app
        .db(|c| apitokens::repo::User::find_by_email(c, ACME_ADMIN))
        .await
        .unwrap()
        .unwrap();
    let reset = other
        .post_from(
            "/users",
            &format!("/users/{}/reset-two-factor", admin.id),
            &[],
        )
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
    let mails = crate::passwords::outbox(app.dir.path(), 2).await;
    let reset_mail = mails
        .iter()
        .find(|m| m.contains("an Administrator of your account, reset"))
        .unwrap_or_else(|| panic!("a mail about the reset: {mails:#?}"));
    assert!(reset_mail.contains(&second.name), "{reset_mail}");
}
