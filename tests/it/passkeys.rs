//! Issue 27, its passkey part: register a passkey, sign out, sign in with it, in a real
//! Chromium whose authenticator is chromedriver's virtual one (the W3C WebAuthn extension
//! commands); a second browser profile without it can't; an answer works once; and, over
//! plain HTTP, what an anonymous caller, a stale session and an installation on an IP address
//! get.

use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client as Wd, Locator};
use reqwest::StatusCode;
use serde_json::{json, Value};

use apitokens::domain::Role;

use crate::browser::{axe_source, check_page, click_and_load, sign_in, start_browser_with};
use crate::helpers::{Acme, TestApp, ACME_ADMIN, PASSWORD};

/// A WebDriver command of the WebAuthn extension (chromedriver implements them).
#[derive(Debug)]
struct WebAuthnCmd {
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthnCmd {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/{}",
            session.unwrap_or(""),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        match &self.body {
            Some(b) => (http::Method::POST, Some(b.to_string())),
            None => (http::Method::GET, None),
        }
    }
}

/// Adds a platform authenticator that keeps discoverable credentials and verifies its user
/// (as a phone's or a laptop's does); its id.
async fn add_authenticator(wd: &Wd) -> String {
    let id = wd
        .issue_cmd(WebAuthnCmd {
            path: "authenticator".into(),
            body: Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        })
        .await
        .expect("chromedriver adds a virtual authenticator");
    id.as_str().expect("an authenticator id").to_owned()
}

/// The credentials the virtual authenticator holds.
async fn credentials(wd: &Wd, authenticator: &str) -> Vec<Value> {
    let v = wd
        .issue_cmd(WebAuthnCmd {
            path: format!("authenticator/{authenticator}/credentials"),
            body: None,
        })
        .await
        .expect("credentials listed");
    v.as_array().cloned().unwrap_or_default()
}

/// An app whose base URL is a host name (browsers refuse an IP address as relying party):
/// `http://localhost:<port>`, the port chosen here.
async fn app_on_localhost() -> (Acme, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://localhost:{port}");
    let b = base.clone();
    let app = TestApp::spawn_with(move |s| {
        s.bind = format!("127.0.0.1:{port}");
        s.base_url = b;
    })
    .await;
    (Acme::on(app).await, base)
}

/// Waits (bounded) until the element's text contains `what`.
async fn wait_for_text(wd: &Wd, css: &str, what: &str) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        if let Ok(el) = wd.find(Locator::Css(css)).await {
            last = el.text().await.unwrap_or_default();
            if last.contains(what) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never said {what:?}; it says {last:?}");
}

async fn path_of(wd: &Wd) -> String {
    wd.current_url().await.unwrap().path().to_owned()
}

#[tokio::test]
async fn a_passkey_registers_signs_in_alone_and_after_the_password_and_only_where_it_is() {
    let (Acme { app, admin }, base) = app_on_localhost().await;
    let axe = axe_source();
    let Some(browser) = start_browser_with(&[]).await else {
        return;
    };
    let wd = &browser.client;
    let authenticator = add_authenticator(wd).await;
    let mut problems = vec![];

    // Register: name it, press the button, the browser and its authenticator do the rest.
    sign_in(wd, &base, ACME_ADMIN).await;
    wd.goto(&format!("{base}/profile/security")).await.unwrap();
    if let Some(axe) = &axe {
        check_page(wd, axe, "passkeys-none", &mut problems).await;
    }
    // Nameless: the page says so before the authenticator is asked.
    wd.find(Locator::Id("add-passkey"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(
        wd,
        "#add-passkey-form [data-passkey-status]",
        "Name the passkey",
    )
    .await;
    assert!(credentials(wd, &authenticator).await.is_empty());
    wd.find(Locator::Id("passkey_name"))
        .await
        .unwrap()
        .send_keys("Work laptop")
        .await
        .unwrap();
    click_and_load(wd, "#add-passkey").await;
    assert_eq!(path_of(wd).await, "/profile/security");
    let table = wd
        .find(Locator::Id("passkeys-table"))
        .await
        .expect("the passkey is listed")
        .text()
        .await
        .unwrap();
    assert!(
        table.contains("Work laptop") && table.contains("Never"),
        "{table}"
    );
    let held = credentials(wd, &authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        held[0]["isResidentCredential"], true,
        "a discoverable credential: {held:?}"
    );
    if let Some(axe) = &axe {
        check_page(wd, axe, "passkeys-one", &mut problems).await;
    }
    assert_eq!(
        app.events_of(admin.account_id, "user.passkey_added")
            .await
            .len(),
        1
    );
    // Under "two factors required", the last second factor can't be removed: the page says
    // why and the passkey stays.
    let account = admin.account_id;
    app.db(move |c| apitokens::repo::Account::set_mfa_required(c, account, true).unwrap())
        .await;
    click_and_load(wd, "#passkeys-table button.danger-button").await;
    let why = wd
        .find(Locator::Id("error-summary-security"))
        .await
        .expect("the page says why")
        .text()
        .await
        .unwrap();
    assert!(why.contains("last one"), "{why}");
    assert!(
        wd.find(Locator::Id("passkeys-table")).await.is_ok(),
        "still listed"
    );
    app.db(move |c| apitokens::repo::Account::set_mfa_required(c, account, false).unwrap())
        .await;

    // Sign out; sign in with the passkey alone.
    click_and_load(wd, "#sign-out").await;
    if let Some(axe) = &axe {
        check_page(wd, axe, "login-with-passkey", &mut problems).await;
    }
    click_and_load(wd, "#passkey-sign-in").await;
    assert_eq!(
        path_of(wd).await,
        "/profile/api-tokens",
        "signed in by the passkey"
    );
    wd.goto(&format!("{base}/profile/security")).await.unwrap();
    let table = wd
        .find(Locator::Id("passkeys-table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!table.contains("Never"), "its last use is shown: {table}");

    // With a password, the passkey is the second step (a password alone makes no session).
    click_and_load(wd, "#sign-out").await;
    wd.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(ACME_ADMIN)
        .await
        .unwrap();
    wd.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click_and_load(wd, "#sign-in").await;
    assert_eq!(path_of(wd).await, "/login/two-factor");
    assert!(
        wd.find(Locator::Id("code")).await.is_err(),
        "no authenticator app: only the passkey is offered"
    );
    if let Some(axe) = &axe {
        check_page(wd, axe, "two-factor-passkey", &mut problems).await;
    }
    click_and_load(wd, "#use-passkey").await;
    assert_eq!(path_of(wd).await, "/profile/api-tokens");

    // Sudo mode with the passkey: a stale session is asked again before an Administrators
    // token, confirms with the passkey alone, and the form's values survive.
    app.clock().advance(time::Duration::minutes(20));
    wd.goto(&format!("{base}/profile/api-tokens/new"))
        .await
        .unwrap();
    wd.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("deploy")
        .await
        .unwrap();
    wd.find(Locator::Css("#role option[value='1']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_and_load(wd, "#create-submit").await;
    assert!(
        wd.find(Locator::Id("sudo-use-passkey")).await.is_ok(),
        "asked to confirm"
    );
    assert!(
        wd.find(Locator::Id("sudo_password")).await.is_err(),
        "a passkey-only person isn't asked for a password and code"
    );
    if let Some(axe) = &axe {
        check_page(wd, axe, "sudo-passkey", &mut problems).await;
    }
    click_and_load(wd, "#sudo-use-passkey").await;
    click_and_load(wd, "#sudo-go-on").await;
    let revealed = wd
        .find(Locator::Id("token-dialog"))
        .await
        .expect("the token was made after confirming with the passkey")
        .text()
        .await
        .unwrap();
    assert!(revealed.contains("deploy"), "{revealed}");

    // A second profile (another browser, its own authenticator without the passkey) can't.
    let Some(other) = start_browser_with(&[]).await else {
        return;
    };
    let stranger = &other.client;
    let empty = add_authenticator(stranger).await;
    stranger.goto(&format!("{base}/login")).await.unwrap();
    stranger
        .find(Locator::Id("passkey-sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(
        stranger,
        "#passkey-form [data-passkey-status]",
        "wasn't used",
    )
    .await;
    assert!(credentials(stranger, &empty).await.is_empty());
    stranger
        .goto(&format!("{base}/profile/api-tokens"))
        .await
        .unwrap();
    assert_eq!(
        path_of(stranger).await,
        "/login",
        "no session without the passkey"
    );

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One answer signs in once, on every instance: the same answer sent again with the same
/// cookie (a copy of the browser's state) is refused; and a removed person's passkey opens
/// nothing.
#[tokio::test]
async fn a_passkey_answer_works_once_and_not_for_a_removed_person() {
    let (Acme { app, .. }, base) = app_on_localhost().await;
    let bob = app.acme_member("bob", Role::Engineers).await;
    let Some(browser) = start_browser_with(&[]).await else {
        return;
    };
    let wd = &browser.client;
    add_authenticator(wd).await;
    sign_in(wd, &base, "bob@acme.test").await;
    wd.goto(&format!("{base}/profile/security")).await.unwrap();
    wd.find(Locator::Id("passkey_name"))
        .await
        .unwrap()
        .send_keys("Phone")
        .await
        .unwrap();
    click_and_load(wd, "#add-passkey").await;
    click_and_load(wd, "#sign-out").await;

    // The browser answers a challenge; the answer and the cookie are copied before it posts.
    let answer = |wd: &Wd| {
        let wd = wd.clone();
        async move {
            let got = wd
                .execute_async(
                    r#"const done = arguments[arguments.length - 1];
                       const form = document.getElementById("passkey-form");
                       form.addEventListener("submit", e => e.preventDefault(), true);
                       HTMLFormElement.prototype.submit = function () {
                         done(form.querySelector("input[name=credential]").value);
                       };
                       document.getElementById("passkey-sign-in").click();"#,
                    vec![],
                )
                .await
                .expect("the browser answers");
            let credential = got.as_str().expect("an answer").to_owned();
            let csrf = wd
                .find(Locator::Css("#passkey-form input[name=csrf_token]"))
                .await
                .unwrap()
                .attr("value")
                .await
                .unwrap()
                .unwrap();
            let cookie = wd.get_named_cookie("apitokens_session").await.unwrap();
            (
                credential,
                csrf,
                format!("apitokens_session={}", cookie.value()),
            )
        }
    };
    let post = |credential: String, csrf: String, cookie: String| {
        let url = format!("{}/login/passkey", app.base);
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(url)
                .header("cookie", cookie)
                .form(&[
                    ("csrf_token", csrf),
                    ("credential", credential),
                    ("next", "/".into()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    wd.goto(&format!("{base}/login")).await.unwrap();
    let (credential, csrf, cookie) = answer(wd).await;
    assert!(credential.contains("authenticatorData"), "{credential}");
    let first = post(credential.clone(), csrf.clone(), cookie.clone()).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        first.headers()["location"],
        "/",
        "the first answer signs in"
    );
    let again = post(credential, csrf, cookie).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert!(
        again.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "a replayed answer is refused"
    );
    let used: i64 = app
        .db(|c| {
            use diesel::prelude::*;
            apitokens::db::schema::webauthn_used_challenges::table
                .count()
                .get_result(c)
                .unwrap()
        })
        .await;
    assert!(
        used >= 2,
        "each finished ceremony's challenge is recorded ({used})"
    );

    // Bob is removed; a fresh answer from his passkey opens nothing.
    wd.goto(&format!("{base}/login")).await.unwrap();
    let (credential, csrf, cookie) = answer(wd).await;
    let admin = app.api_jwt(ACME_ADMIN).await;
    let removed = admin
        .delete(&format!(
            "/iam/clients/{}/client-users/{}",
            bob.account_id, bob.id
        ))
        .await;
    assert!(removed.status.is_success(), "{}", removed.json);
    let after = post(credential, csrf, cookie).await;
    assert!(
        after.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "a removed person's passkey signs nobody in"
    );
}

/// Without a browser: what anyone can send, what a stale session gets, what a passkey-only
/// person's scripts get from the JWT login, and an installation on an IP address.
#[tokio::test]
async fn passkey_endpoints_refuse_what_they_should_and_write_nothing_to_start() {
    let (Acme { app, .. }, _) = app_on_localhost().await;
    let anonymous = app.client();
    // No CSRF token: refused.
    let forged = anonymous.post("/login/passkey/options", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A start: the challenge, this relying party, user verification required; nothing
    // written (a flood of starts costs the database nothing).
    let before: i64 = used_challenges(&app).await;
    let start = anonymous
        .post_from("/login", "/login/passkey/options", &[])
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    assert_eq!(start.headers.get("cache-control").unwrap(), "no-store");
    let options: Value = serde_json::from_str(&start.body).unwrap();
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options["publicKey"]["challenge"].as_str().unwrap().len() >= 43);
    assert_eq!(used_challenges(&app).await, before);
    // Junk answers: back to sign-in with a message, no session, never a 500.
    for junk in [
        "",
        "{}",
        "not json",
        &"x".repeat(70_000),
        r#"{"id":"AA","rawId":"AA","type":"public-key","response":{"authenticatorData":"AA","clientDataJSON":"AA","signature":"AA","userHandle":null},"extensions":{}}"#,
    ] {
        let r = anonymous
            .post_from(
                "/login",
                "/login/passkey",
                &[("credential", junk), ("next", "/")],
            )
            .await;
        assert!(
            r.status == StatusCode::SEE_OTHER || r.status == StatusCode::PAYLOAD_TOO_LARGE,
            "{}: {}",
            r.status,
            r.body
        );
        if r.status == StatusCode::SEE_OTHER {
            assert!(r.location().starts_with("/login"), "{}", r.location());
        }
    }
    let login = anonymous.get("/login").await;
    let why = login
        .text_of("passkey-error")
        .expect("the sign-in page says why");
    assert!(why.contains("sign you in"), "{why}");
    assert!(
        !login.body.contains("aria-invalid"),
        "the password fields aren't blamed"
    );
    assert_eq!(
        anonymous.get("/profile").await.status,
        StatusCode::SEE_OTHER
    );

    // Adding a passkey with a stale confirmation: asked to confirm first (JSON for the script).
    let web = app.signed_in(ACME_ADMIN).await;
    app.clock().advance(time::Duration::minutes(20));
    let stale = web
        .post_from(
            "/profile/security",
            "/profile/security/passkeys/options",
            &[],
        )
        .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.body);
    let sent = web
        .post_from(
            "/profile/security",
            "/profile/security/passkeys",
            &[("name", "Laptop")],
        )
        .await;
    assert!(
        sent.has("#sudo-form"),
        "the form goes through \"confirm it's you\""
    );
    assert!(sent.body.contains("value=\"Laptop\""), "and keeps the name");
    // Someone else's passkey can't be removed (nor told from one that doesn't exist).
    let carol = app.acme_member("carol", Role::Engineers).await;
    let hers = insert_passkey(&app, carol.id, "carols-key").await;
    let web = app.signed_in(ACME_ADMIN).await;
    let other = web
        .post_from(
            "/profile/security",
            &format!("/profile/security/passkeys/{hers}/remove"),
            &[],
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(passkeys_of(&app, carol.id).await, 1);

    // Carol's second factor is a passkey: her password alone makes no session, and her JWT
    // login is refused naming the field, with what to use instead.
    let carol_web = app.client();
    let step = carol_web.sign_in("carol@acme.test", PASSWORD).await;
    assert!(
        step.location().starts_with("/login/two-factor"),
        "{}",
        step.location()
    );
    assert_eq!(
        carol_web.get("/profile").await.status,
        StatusCode::SEE_OTHER
    );
    let jwt = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "carol@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(jwt.status, StatusCode::BAD_REQUEST, "{}", jwt.json);
    assert!(
        jwt.json.to_string().contains("one_time_password")
            && jwt.json.to_string().contains("passkey"),
        "{}",
        jwt.json
    );
    // An Administrator's reset removes her passkeys too.
    let reset = web
        .post_from(
            "/users",
            &format!("/users/{}/reset-two-factor", carol.id),
            &[],
        )
        .await;
    assert!(
        reset.status.is_redirection() || reset.status.is_success(),
        "{}",
        reset.body
    );
    assert_eq!(passkeys_of(&app, carol.id).await, 0);
}

#[tokio::test]
async fn on_an_ip_address_passkeys_are_off_and_the_page_says_why() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let page = web.get("/profile/security").await;
    let why = page.text_of("passkeys-off").expect("the page says why");
    assert!(
        why.contains("host name") && why.contains("APITOKENS_BASE_URL"),
        "{why}"
    );
    assert!(!page.has("#add-passkey-form"));
    assert!(!app.client().get("/login").await.has("#passkey-form"));
    let start = app
        .client()
        .post_from("/login", "/login/passkey/options", &[])
        .await;
    assert_eq!(start.status, StatusCode::BAD_REQUEST);
    assert!(start.body.contains("host name"), "{}", start.body);
}

async fn used_challenges(app: &TestApp) -> i64 {
    app.db(|c| {
        use diesel::prelude::*;
        apitokens::db::schema::webauthn_used_challenges::table
            .count()
            .get_result(c)
            .unwrap()
    })
    .await
}

async fn passkeys_of(app: &TestApp, user_id: i64) -> i64 {
    app.db(move |c| apitokens::repo::passkeys::PasskeyRow::count_of_user(c, user_id).unwrap())
        .await
}

/// A passkey row as registration leaves one (its key material is irrelevant where it is used).
async fn insert_passkey(app: &TestApp, user_id: i64, credential: &'static str) -> i64 {
    app.db(move |c| {
        use apitokens::repo::passkeys::{NewPasskey, PasskeyRow};
        let now = time::OffsetDateTime::now_utc();
        let now = time::PrimitiveDateTime::new(now.date(), now.time());
        assert!(PasskeyRow::insert(
            c,
            &NewPasskey {
                user_id,
                credential_id: credential,
                name: "Key",
                passkey: "{}",
                created_at: now,
            },
        )
        .unwrap());
        PasskeyRow::of_user(c, user_id).unwrap()[0].id
    })
    .await
}
