//! What an attacker found in a review (issue 31), each finding tried again as they tried it,
//! on SQLite and PostgreSQL: rotation escaping the lineage, IPv4-mapped proxy addresses,
//! leak reports starved by junk, targeted lockouts, typed text kept in plain, e-mails that
//! look alike, and file names that forge the scanner's output.

use apitokens::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use crate::helpers::{token_id, Acme, TestApp, ACME_ADMIN, PASSWORD};

async fn check(app: &TestApp, token: &str) -> StatusCode {
    app.api(&format!("APIKey {token}"))
        .get("/iam/auth/check")
        .await
        .status
}

fn rotate_path(account: i64, id: i64) -> String {
    format!("/iam/v2/clients/{account}/tokens/{id}/rotate")
}

/// The stored secret hash of a token (to prove a refusal changed nothing).
async fn secret_hash(app: &TestApp, id: i64) -> (String, Option<String>) {
    app.db(move |c| {
        let t = apitokens::repo::Token::find(c, id).unwrap().unwrap();
        (t.secret_hash, t.old_secret_hash)
    })
    .await
}

/// A leaked Users token can't rotate a sibling (another token of the same person at or below
/// its role) into a never-expiring secret that deleting the leaked token would leave working.
#[tokio::test]
async fn a_leaked_token_cannot_rotate_a_sibling() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let account = admin.account_id;
    let leaked = app.token_for(&eng, Role::Users).await;
    let (sibling_id, sibling_secret) = app
        .expiring_token(&eng, "nightly", Duration::days(30))
        .await;
    let sibling = format!("{sibling_id}_{sibling_secret}");
    let before = secret_hash(&app, sibling_id).await;
    let as_leaked = app.api(&format!("APIKey {leaked}"));
    let r = as_leaked
        .post(
            &rotate_path(account, sibling_id),
            json!({"grace_seconds": 604_800, "exp_date": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("can rotate only itself"),
        "{}",
        r.json
    );
    assert_eq!(
        secret_hash(&app, sibling_id).await,
        before,
        "nothing changed"
    );
    assert!(
        app.events_of(account, "token.rotated").await.is_empty(),
        "a refusal records no rotation"
    );
    // Deleting the leaked token leaves nothing of the attacker's working.
    let eng_jwt = app.api_jwt("eng@acme.test").await;
    let r = eng_jwt
        .delete(&format!(
            "/iam/v2/clients/{account}/tokens/{}",
            token_id(&leaked)
        ))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(check(&app, &leaked).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        check(&app, &sibling).await,
        StatusCode::NO_CONTENT,
        "the owner's own secret"
    );
}

/// A child capped at its parent's expiry can't rotate itself past it (`exp_date: null` or a
/// later date), by itself or through its issuer's JWT; its old secret's grace ends no later
/// than the token; and revoking the parent ends both of the child's secrets.
#[tokio::test]
async fn a_child_cannot_outlive_its_parent_by_rotating() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let account = admin.account_id;
    let tokens = format!("/iam/v2/clients/{account}/tokens");
    let now = app.clock().now();
    let in_2_days = apitokens::web::api::model::rfc3339(now + Duration::days(2));
    let (parent_id, parent_secret) = app.expiring_token(&eng, "parent", Duration::days(2)).await;
    let parent = app.api(&format!("APIKey {parent_id}_{parent_secret}"));
    let made = parent
        .post(
            &tokens,
            json!({"name": "child", "exp_date": null, "client_user": {"role": {"id": 2}}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.json);
    let parents_expiry = made.json["exp_date"].clone();
    let parents_expiry_str = parents_expiry.as_str().unwrap().to_string();
    assert!(
        parents_expiry_str.starts_with(&in_2_days[..13]),
        "capped at creation: {parents_expiry} vs {in_2_days}"
    );
    let child_old = made.json["token"].as_str().unwrap().to_string();
    let child_id = made.json["id"].as_i64().unwrap();
    let as_child = app.api(&format!("APIKey {child_old}"));

    // The child rotates itself asking for "never" and a 7-day grace: still capped.
    let r = as_child
        .post(
            &rotate_path(account, child_id),
            json!({"grace_seconds": 604_800, "exp_date": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["exp_date"], parents_expiry,
        "no later than the parent"
    );
    assert_eq!(
        r.json["old_secret_valid_until"], parents_expiry,
        "the grace ends no later than the token"
    );
    let child_new = r.json["token"].as_str().unwrap().to_string();

    // The issuer's JWT asking for a date after the parent's: capped too.
    let later = apitokens::web::api::model::rfc3339(now + Duration::days(60));
    let eng_jwt = app.api_jwt("eng@acme.test").await;
    let r = eng_jwt
        .post(
            &rotate_path(account, child_id),
            json!({"grace_seconds": 3600, "exp_date": later}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["exp_date"], parents_expiry);
    let child_newest = r.json["token"].as_str().unwrap().to_string();
    // Rotating again replaced the secret in grace: the first one is gone now.
    assert_eq!(check(&app, &child_old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(check(&app, &child_new).await, StatusCode::NO_CONTENT);
    assert_eq!(check(&app, &child_newest).await, StatusCode::NO_CONTENT);

    // Revoking the parent (here by the scan's and leak reports' path) ends every secret of
    // the child, the one in its grace too.
    let presented =
        apitokens::domain::token::PresentedToken::parse(&format!("{parent_id}_{parent_secret}"))
            .unwrap();
    let found = app
        .db(move |c| {
            apitokens::services::tokens::revoke_found(
                c,
                &presented,
                "a pastebin",
                apitokens::domain::Clock::default().now(),
                false,
            )
            .unwrap()
        })
        .await;
    assert_eq!(found.0, apitokens::services::tokens::FoundToken::Revoked);
    assert!(found.1.contains(&child_id), "{:?}", found.1);
    // Revoked in the database by another process: refused here within the cache's second.
    for secret in [&child_new, &child_newest] {
        refused_soon(&app, secret).await;
    }
}

/// An Administrator can't rotate a colleague's token: the new secret would act as the
/// colleague (the gateway names them), so only the issuer may receive one. The API answers
/// 403, the portal shows no Rotate form, and a forged POST changes nothing.
#[tokio::test]
async fn an_administrator_cannot_rotate_someone_elses_token() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let account = admin.account_id;
    let eng_token = app.token_for(&eng, Role::Engineers).await;
    let id = token_id(&eng_token);
    let before = secret_hash(&app, id).await;
    for api in [
        app.api_jwt(ACME_ADMIN).await,
        app.api_as(&admin, Role::Administrators).await,
    ] {
        let r = api
            .post(&rotate_path(account, id), json!({"grace_seconds": 60}))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
        assert!(r.json["message"]
            .as_str()
            .unwrap()
            .contains("Only the person who issued a token can rotate it"));
    }
    let web = app.signed_in(ACME_ADMIN).await;
    let page = web.get(&format!("/profile/api-tokens/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.has("#rotate-token"),
        "no Rotate button for someone else's token"
    );
    assert!(page.has("#rotate-not-yours"));
    assert!(
        page.has("#delete-from-page"),
        "deleting is how an Administrator ends it"
    );
    let forged = web
        .post_from(
            &format!("/profile/api-tokens/{id}"),
            &format!("/profile/api-tokens/{id}/rotate"),
            &[("grace", "3600"), ("exp_date", "")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!forged.has("#new-token-value"), "no secret shown");
    assert_eq!(secret_hash(&app, id).await, before, "nothing changed");
    // The issuer still can, in the portal.
    let own = app.signed_in("eng@acme.test").await;
    let page = own.get(&format!("/profile/api-tokens/{id}")).await;
    assert!(page.has("#rotate-token"));
    let done = own
        .post_from(
            &format!("/profile/api-tokens/{id}"),
            &format!("/profile/api-tokens/{id}/rotate"),
            &[("grace", "0"), ("exp_date", "")],
        )
        .await;
    // No grace: the old secret would stop at once, so the page asks first and changes nothing.
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.has("#rotate-dialog") && !done.has("#new-token-value"));
    assert_eq!(check(&app, &eng_token).await, StatusCode::NO_CONTENT);
    let done = own
        .post_from(
            &format!("/profile/api-tokens/{id}"),
            &format!("/profile/api-tokens/{id}/rotate"),
            &[("grace", "0"), ("exp_date", ""), ("confirmed", "1")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.has("#new-token-value"));
    assert_eq!(check(&app, &eng_token).await, StatusCode::UNAUTHORIZED);
}

/// POST `/iam/auth/jwt/login` as if through a proxy that saw `forwarded`.
async fn login_from(app: &TestApp, forwarded: &str, email: &str, password: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{}/iam/auth/jwt/login", app.base))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"username": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

fn trusting_loopback(settings: &mut apitokens::config::Settings) {
    settings.trusted_proxies = apitokens::config::parse_trusted_proxies("127.0.0.1").unwrap();
}

/// A server on a dual-stack socket sees its loopback proxy as `::ffff:127.0.0.1`; with
/// `APITOKENS_TRUSTED_PROXIES=127.0.0.1` that is still the proxy, so the allowlist, the
/// limiter and the audit trail all see the forwarded client, as IPv4.
#[tokio::test]
async fn a_proxy_seen_as_an_ipv4_mapped_address_is_still_the_proxy() {
    let app = TestApp::spawn_with(|s| {
        trusting_loopback(s);
        s.bind = "[::ffff:127.0.0.1]:0".into();
    })
    .await;
    let Acme { app, admin } = Acme::on(app).await;
    let account = admin.account_id;
    // Allowlist: a token pinned to the proxy's own address lets no one else through, and
    // one pinned to a client network lets that client through.
    let pinned_to_proxy = app.token_for(&admin, Role::Users).await;
    let pinned_to_client = app.token_for(&admin, Role::Users).await;
    let jwt = app.api_jwt(ACME_ADMIN).await;
    for (token, net) in [
        (&pinned_to_proxy, "127.0.0.1/32"),
        (&pinned_to_client, "203.0.113.0/24"),
    ] {
        let id = token_id(token);
        let nets = vec![net.parse().unwrap()];
        let actor = apitokens::services::Actor::of_user(&admin);
        let now = app.clock().now();
        app.db(move |c| {
            let id = apitokens::domain::TokenId::new(id);
            apitokens::services::tokens::set_allowed_ips(c, &actor, id, &nets, now).unwrap()
        })
        .await;
    }
    let gateway = |token: &str, from: &'static str| {
        let api = app.api(&format!("APIKey {token}"));
        async move {
            api.send_with(
                reqwest::Method::GET,
                "/iam/auth/check",
                None,
                &[("x-forwarded-for", from)],
            )
            .await
            .status
        }
    };
    assert_eq!(
        gateway(&pinned_to_proxy, "198.51.100.9").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        gateway(&pinned_to_client, "203.0.113.5").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        gateway(&pinned_to_client, "198.51.100.9").await,
        StatusCode::FORBIDDEN
    );

    // The limiter: 20 failures from 20 forwarded addresses lock none of them, nor the real
    // administrator coming through the same proxy.
    for n in 0..20 {
        let from = format!("198.51.100.{}", n + 1);
        assert_eq!(
            login_from(&app, &from, &format!("nobody{n}@acme.test"), "guess").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        login_from(&app, "203.0.113.50", ACME_ADMIN, PASSWORD).await,
        StatusCode::OK
    );

    // The audit trail records the client, not the proxy.
    let r = jwt
        .send_with(
            reqwest::Method::POST,
            &format!("/iam/v2/clients/{account}/tokens"),
            Some(json!({"name": "from afar", "exp_date": null, "client_user": {}})),
            &[("x-forwarded-for", "203.0.113.77")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let created = app.events_of(account, "token.created").await;
    assert_eq!(
        created[0].client_address.as_deref(),
        Some("203.0.113.77"),
        "{:?}",
        created[0]
    );
}

/// Five wrong passwords for a person from one address don't lock the person out: the right
/// password from another address still signs in (portal and JWT), while the guessing
/// address stays refused even with the right one. Past ten failures from anywhere only an
/// address that never failed for the person is heard.
#[tokio::test]
async fn wrong_passwords_from_one_address_lock_that_address_not_the_person() {
    let Acme { app, .. } = Acme::on(TestApp::spawn_with(trusting_loopback).await).await;
    for n in 0..5 {
        assert_eq!(
            login_from(&app, "198.51.100.1", ACME_ADMIN, &format!("wrong {n}")).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        login_from(&app, "198.51.100.1", ACME_ADMIN, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address is held"
    );
    assert_eq!(
        login_from(&app, "203.0.113.10", ACME_ADMIN, PASSWORD).await,
        StatusCode::OK,
        "the person, from elsewhere, is not"
    );
    // The portal's sign-in follows the same rule.
    let web = app.client();
    let form = web.get("/login").await;
    let csrf = form.input_value("csrf_token").unwrap();
    let signed = web
        .http
        .post(format!("{}/login", app.base))
        .header("x-forwarded-for", "203.0.113.11")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", ACME_ADMIN),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);

    // A spread-out attack: one guess each from ten more addresses puts the person over
    // their budget. Then an address that failed before is refused even with the right
    // password; a clean one still gets in.
    for n in 0..10 {
        let from = format!("192.0.2.{}", n + 1);
        assert_eq!(
            login_from(&app, &from, ACME_ADMIN, "guess").await,
            StatusCode::BAD_REQUEST,
            "guess from {from}"
        );
    }
    assert_eq!(
        login_from(&app, "192.0.2.1", ACME_ADMIN, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&app, "203.0.113.12", ACME_ADMIN, PASSWORD).await,
        StatusCode::OK
    );
}

/// What people type into the e-mail field (passwords, pasted by mistake) and their
/// addresses are never stored: the limiter's rows are keyed by HMACs.
#[tokio::test]
async fn the_failed_attempt_table_holds_no_typed_text() {
    let Acme { app, .. } = Acme::on(TestApp::spawn_with(trusting_loopback).await).await;
    let typed = "MySecretPassw0rd!";
    assert_eq!(
        login_from(&app, "198.51.100.23", typed, "x").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        login_from(&app, "198.51.100.23", ACME_ADMIN, "wrong").await,
        StatusCode::BAD_REQUEST
    );
    let keys: Vec<String> = app
        .db(|c| {
            use diesel::prelude::*;
            apitokens::db::schema::login_failures::table
                .select(apitokens::db::schema::login_failures::key)
                .load(c)
                .unwrap()
        })
        .await;
    assert!(keys.len() >= 4, "{keys:?}");
    for key in &keys {
        let lower = key.to_lowercase();
        for leak in [typed.to_lowercase().as_str(), "admin", "acme", "198.51.100"] {
            assert!(!lower.contains(leak), "{key} holds {leak}");
        }
        let (kind, mac) = key.split_once(':').unwrap();
        assert!(["p", "pa", "a"].contains(&kind), "{key}");
        assert!(
            mac.len() == 64 && mac.bytes().all(|b| b.is_ascii_hexdigit()),
            "{key}"
        );
    }
}

/// A zero-width space or a decomposed accent can't make a second person who looks like the
/// first: refused or recognised at every way in (invite, PATCH, SCIM), and the decomposed
/// form signs in as the person.
#[tokio::test]
async fn lookalike_emails_are_refused_or_recognised_everywhere() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    app.add_user("Acme", "r\u{e9}sum\u{e9}@acme.test", Role::Engineers)
        .await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let invite =
        |email: &str| json!({"client_id": account, "email": email, "user_role": {"id": 2}});
    let r = api
        .post("/iam/clients/invite_user", invite("eng@acme.test\u{200b}"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(r.json["errors"]["email"][0]
        .as_str()
        .unwrap()
        .contains("invisible"));
    let r = api
        .post(
            "/iam/clients/invite_user",
            invite("re\u{301}sume\u{301}@acme.test"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.json.to_string().contains("already exists"),
        "the decomposed form is the same person: {}",
        r.json
    );
    let r = api
        .send(
            reqwest::Method::PATCH,
            &format!("/iam/users/{}", admin.id),
            Some(json!({"email": "admin@acme.test\u{2060}"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    // SCIM, with the account's SCIM token.
    let scim = app
        .state
        .scim
        .issue_token(apitokens::services::Actor::of_user(&admin))
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/scim/v2/Users", app.base))
        .bearer_auth(&scim)
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "eng\u{200b}@acme.test",
            "emails": [{"value": "eng\u{200b}@acme.test", "primary": true}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let count = app
        .db(move |c| apitokens::repo::User::count_in_account(c, account).unwrap())
        .await;
    assert_eq!(count, 2, "nobody was added");
    // The person types the decomposed form and signs in.
    let r = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "RE\u{301}SUME\u{301}@acme.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

/// `apitokens doctor` reports a stored address that isn't in its normal form and the people
/// who are one address once normalised, merges nothing, and exits 1; on a clean database 0.
#[tokio::test]
async fn doctor_reports_lookalike_addresses_and_changes_nothing() {
    let Acme { app, admin } = Acme::start().await;
    let url = app.state.settings.database_url.clone();
    let dir = app.dir.path().to_str().unwrap().to_string();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("APITOKENS_DATA_DIR", dir.as_str()),
    ];
    let clean = crate::cli::apitokens(&["doctor"], &env, None);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    // Rows written before normalisation: a decomposed twin and a zero-width twin of admin.
    let account = admin.account_id;
    let ids: Vec<i64> = app
        .db(move |c| {
            use apitokens::domain::AuthType;
            ["admin@acme.test\u{200b}", "ADMIN@acme.test"]
                .into_iter()
                .map(|email| {
                    apitokens::repo::User::insert(
                        c,
                        &apitokens::repo::NewUser {
                            account_id: account,
                            email,
                            name: "Twin",
                            password_hash: None,
                            role: Role::Users,
                            auth_type: AuthType::Sso,
                            created_at: apitokens::domain::token::to_naive(
                                time::OffsetDateTime::now_utc(),
                            ),
                        },
                    )
                    .unwrap()
                    .id
                })
                .collect()
        })
        .await;
    let out = crate::cli::apitokens(&["doctor"], &env, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("user {}", ids[0])), "{stdout}");
    assert!(stdout.contains("\\u{200b}"), "shown escaped: {stdout}");
    assert!(!stdout.contains('\u{200b}'), "never raw: {stdout}");
    let dupes = stdout
        .lines()
        .find(|l| l.contains("share the address"))
        .expect("the duplicates line");
    for id in [admin.id, ids[0], ids[1]] {
        assert!(dupes.contains(&id.to_string()), "{dupes}");
    }
    let count = app
        .db(move |c| apitokens::repo::User::count_in_account(c, account).unwrap())
        .await;
    assert_eq!(count, 3, "nothing merged or removed");
}

/// A file named with a newline and a terminal escape can't forge a line of `apitokens scan`
/// nor colour the terminal, and the `--revoke` audit event shows the name escaped.
#[tokio::test]
async fn hostile_file_names_are_escaped_in_scan_output_and_the_audit_trail() {
    let Acme { app, admin } = Acme::start().await;
    let token = app.token_for(&admin, Role::Users).await;
    let tree = tempfile::tempdir().unwrap();
    let name = "x\nfake.env:1: token id 1 (deleted)\x1b[31m\u{202e}";
    std::fs::write(tree.path().join(name), format!("KEY={token}\n")).unwrap();
    let url = app.state.settings.database_url.clone();
    let dir = app.dir.path().to_str().unwrap().to_string();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("APITOKENS_DATA_DIR", dir.as_str()),
    ];
    let out = crate::cli::apitokens(
        &["scan", "--revoke", tree.path().to_str().unwrap()],
        &env,
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one finding, one line: {stdout:?}");
    assert!(
        lines[0].contains("x\\nfake.env:1: token id 1 (deleted)\\x1b[31m\\u{202e}"),
        "{stdout:?}"
    );
    assert!(lines[0].ends_with(&format!(
        ": token id {} (active, revoked now)",
        token_id(&token)
    )));
    assert!(!stdout.contains('\x1b') && !stdout.contains('\u{202e}'));
    let revoked = app.events_of(admin.account_id, "token.revoked").await;
    let summary = &revoked[0].summary;
    assert!(
        summary.contains("\\n") && summary.contains("\\x1b"),
        "{summary}"
    );
    assert!(!summary.chars().any(|c| c.is_control()), "{summary:?}");
}

/// Polls the gateway (bounded: 2 s, the cache's second and then some) until `secret` is
/// refused.
async fn refused_soon(app: &TestApp, secret: &str) {
    let started = std::time::Instant::now();
    while check(app, secret).await != StatusCode::UNAUTHORIZED {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{secret} still works 2 s after its revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Every audit event is written one way (issue 25): a person's change in the portal keeps
/// their client address as token events do, and the kinds are the stable names.
#[tokio::test]
async fn people_events_keep_the_client_address_like_token_events() {
    let Acme { app, admin } = Acme::on(TestApp::spawn_with(trusting_loopback).await).await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let web = app.signed_in(ACME_ADMIN).await;
    let form = web.get("/users").await;
    let csrf = form.input_value("csrf_token").unwrap();
    let r = web
        .http
        .post(format!("{}/users/{}/role", app.base, eng.id))
        .header("x-forwarded-for", "203.0.113.88")
        .form(&[("csrf_token", csrf.as_str()), ("role", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let changed = app.events_of(admin.account_id, "user.role_changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].client_address.as_deref(), Some("203.0.113.88"));
    assert_eq!(changed[0].actor_id, Some(admin.id));
}
