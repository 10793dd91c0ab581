//! SCIM 2.0 provisioning against the real server, on SQLite and PostgreSQL: deprovisioning
//! kills a person's tokens, sessions and JWTs at once and tells the Administrators; the
//! account comes from the SCIM token only; bad input gets a SCIM error and changes nothing.
//! (RFC conformance as a whole is scim2-tester's job: tests/scim/run, in CI on both databases.)

use apitokens::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Acme, Api, TestApp, ACME_ADMIN, PASSWORD};
use crate::smtp::SmtpServer;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// A request and the status and `scimType` it must get.
type Case<'a> = (Method, &'a str, Option<Value>, StatusCode, Option<&'a str>);

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A new SCIM token for the account (the service the Users page and the CLI share).
async fn scim_token(app: &TestApp, account_id: i64) -> String {
    let now = app.clock().now();
    app.db(move |c| apitokens::services::people::scim::issue_token(c, account_id, None, now))
        .await
        .unwrap()
}

async fn scim(app: &TestApp, account_id: i64) -> Api {
    app.api(&format!("Bearer {}", scim_token(app, account_id).await))
}

fn new_user(user_name: &str, email: &str, role: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "displayName": "New Person",
           "emails": [{"value": email, "primary": true, "type": "work"}],
           "roles": [{"value": role}], "name": {"givenName": "New"}})
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

async fn send(api: &Api, method: Method, path: &str, body: Option<Value>) -> crate::helpers::Reply {
    api.send(method, &format!("/scim/v2{path}"), body).await
}

#[tokio::test]
async fn deprovisioning_ends_tokens_sessions_and_jwts_at_once_and_tells_the_admins() {
    let smtp = SmtpServer::start();
    let smtp_url = smtp.url();
    let app = TestApp::spawn_with(move |s| {
        s.smtp_url = Some(smtp_url);
        s.base_url = "https://tokens.example".into();
    })
    .await;
    let Acme { app, admin } = Acme::on(app).await;
    let scim = scim(&app, admin.account_id).await;
    // A person who was there before SCIM: a password user with a token, a session and a JWT.
    let eng = app.acme_member("eng", Role::Engineers).await;
    let token = app.token_for(&eng, Role::Engineers).await;
    let second = app.token_for(&eng, Role::Users).await;
    let session = app.signed_in("eng@acme.test").await;
    let jwt = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "eng@acme.test", "password": PASSWORD}),
        )
        .await
        .json["access"]
        .as_str()
        .unwrap()
        .to_string();
    let by_token = app.api(&format!("APIKey {token}"));
    let by_jwt = app.api(&format!("Bearer {jwt}"));
    assert_eq!(
        by_token.get("/iam/auth/check").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(by_jwt.get("/iam/users/me").await.status, StatusCode::OK);

    // The identity provider finds them by userName (their e-mail, any case) and deactivates.
    let found = send(
        &scim,
        Method::GET,
        "/Users?filter=userName%20eq%20%22ENG@acme.test%22",
        None,
    )
    .await;
    assert_eq!(found.json["totalResults"], 1, "{}", found.json);
    let id = found.json["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id, eng.id.to_string());
    let off = send(
        &scim,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "value": {"active": false}}]),
        )),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.json);
    assert_eq!(off.json["active"], false);

    // From the next request: the tokens, the JWT and the session are refused.
    for t in [&token, &second] {
        assert_eq!(
            app.api(&format!("APIKey {t}"))
                .get("/iam/auth/check")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        by_jwt.get("/iam/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        session.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "session ended"
    );
    let events = app.events_of(admin.account_id, "user.deprovisioned").await;
    assert_eq!(events.len(), 1);
    assert!(
        events[0]
            .summary
            .contains("deactivated eng <eng@acme.test> and deleted 2 tokens"),
        "{}",
        events[0].summary
    );
    assert_eq!(events[0].actor_id, None, "no person did it");

    // The Administrator is told about each token, in the portal and by e-mail (not the
    // removed issuer), without any secret.
    crate::leaks::wait_for_mail(&smtp, 2).await;
    for m in smtp.received() {
        assert_eq!(m.to, [ACME_ADMIN]);
        let text = m.text();
        assert!(
            text.contains("eng@acme.test was deprovisioned by the identity provider"),
            "{text}"
        );
        assert!(!text.contains(&token[token.len() - 64..]));
    }
    let notes = app.signed_in(ACME_ADMIN).await.get("/notifications").await;
    assert!(
        notes
            .body
            .contains("was deleted: eng@acme.test was deprovisioned"),
        "{}",
        notes.body
    );

    // Still a SCIM resource, inactive; reactivation gives access back, never the tokens.
    let got = send(&scim, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(
        (got.status, got.json["active"].clone()),
        (StatusCode::OK, json!(false))
    );
    let on = send(
        &scim,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": "True"}]),
        )),
    )
    .await;
    assert_eq!(on.json["active"], true, "{}", on.json);
    assert_eq!(
        by_token.get("/iam/auth/check").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        by_jwt.get("/iam/users/me").await.status,
        StatusCode::UNAUTHORIZED,
        "old JWTs stay dead"
    );
    assert_eq!(
        app.client().sign_in("eng@acme.test", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.events_of(admin.account_id, "user.reactivated")
            .await
            .len(),
        1
    );

    // DELETE: gone for SCIM too.
    let gone = send(&scim, Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let after = send(&scim, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
    assert_eq!(
        after.json["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(
        app.client().sign_in("eng@acme.test", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_scim_user_is_an_sso_user_with_the_role_given_and_users_by_default() {
    let Acme { app, admin } = Acme::start().await;
    let scim = scim(&app, admin.account_id).await;
    let made = send(
        &scim,
        Method::POST,
        "/Users",
        Some(new_user("okta|7", "Dana@Acme.test", "Engineers")),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    assert_eq!(made.headers["content-type"], "application/scim+json");
    let id: i64 = made.json["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        made.headers["location"].to_str().unwrap(),
        made.json["meta"]["location"].as_str().unwrap()
    );
    assert_eq!(made.json["userName"], "okta|7");
    assert_eq!(made.json["emails"], json!([{"value": "dana@acme.test"}]));
    assert_eq!(made.json["roles"], json!([{"value": "Engineers"}]));
    let user = app
        .db(move |c| apitokens::repo::User::find(c, id).unwrap().unwrap())
        .await;
    assert!(user.auth_type.is_sso() && user.password_hash.is_none());
    assert_eq!(
        (user.role, user.account_id),
        (Role::Engineers, admin.account_id)
    );

    let plain = send(
        &scim,
        Method::POST,
        "/Users",
        Some(json!({"schemas": [USER], "userName": "erin@acme.test"})),
    )
    .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.json);
    assert_eq!(plain.json["roles"], json!([{"value": "Users"}]));
    assert_eq!(plain.json["active"], true);
    assert_eq!(app.events_of(admin.account_id, "user.added").await.len(), 2);

    // Paging and filters.
    let all = send(&scim, Method::GET, "/Users?startIndex=2&count=1", None).await;
    assert_eq!(all.json["totalResults"], 3);
    assert_eq!(all.json["itemsPerPage"], 1);
    assert_eq!(all.json["startIndex"], 2);
    assert_eq!(all.json["Resources"][0]["id"], id.to_string());
    let none = send(&scim, Method::GET, "/Users?count=0", None).await;
    assert_eq!(
        (
            none.json["totalResults"].clone(),
            none.json["Resources"].clone()
        ),
        (json!(3), json!([]))
    );
    let by_email = send(
        &scim,
        Method::GET,
        "/Users?filter=emails.value%20eq%20%22dana@acme.test%22&attributes=userName",
        None,
    )
    .await;
    assert_eq!(
        by_email.json["Resources"],
        json!([{"schemas": [USER], "id": id.to_string(), "userName": "okta|7"}])
    );

    // Promotion through PATCH, demotion with a higher token deletes that token (the identity
    // provider decides), and the role is written down.
    let up = send(
        &scim,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "path": "roles", "value": [{"value": "Administrators"}]}]),
        )),
    )
    .await;
    assert_eq!(
        up.json["roles"],
        json!([{"value": "Administrators"}]),
        "{}",
        up.json
    );
    let dana = app
        .db(move |c| apitokens::repo::User::find(c, id).unwrap().unwrap())
        .await;
    let admin_token = app.token_for(&dana, Role::Administrators).await;
    let down = send(
        &scim,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(json!([{"op": "remove", "path": "roles"}]))),
    )
    .await;
    assert_eq!(
        down.json["roles"],
        json!([{"value": "Users"}]),
        "{}",
        down.json
    );
    assert_eq!(
        app.api(&format!("APIKey {admin_token}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let changed = app.events_of(admin.account_id, "user.role_changed").await;
    assert!(
        changed[0]
            .summary
            .contains("from Administrators to Users and deleted 1 token above it"),
        "{}",
        changed[0].summary
    );
}

#[tokio::test]
async fn scim_needs_the_accounts_own_token_and_never_reaches_another_account() {
    let Acme { app, admin } = Acme::start().await;
    let other_admin = app
        .add_user("Other", "boss@other.test", Role::Administrators)
        .await;
    let acme = scim(&app, admin.account_id).await;
    let other = scim(&app, other_admin.account_id).await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let token = app.token_for(&eng, Role::Engineers).await;

    // Another account's SCIM token: Acme's people are "not found", and not listed.
    let path = format!("/Users/{}", eng.id);
    for (method, body) in [
        (Method::GET, None),
        (
            Method::PUT,
            Some(new_user("eng@acme.test", "eng@acme.test", "Users")),
        ),
        (
            Method::PATCH,
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        ),
        (Method::DELETE, None),
    ] {
        let r = send(&other, method.clone(), &path, body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {}", r.json);
    }
    let listed = send(&other, Method::GET, "/Users", None).await;
    assert_eq!(
        listed.json["totalResults"], 1,
        "only Other's admin: {}",
        listed.json
    );
    let by_name = send(
        &other,
        Method::GET,
        "/Users?filter=userName%20eq%20%22eng@acme.test%22",
        None,
    )
    .await;
    assert_eq!(by_name.json["totalResults"], 0);
    assert_eq!(
        app.api(&format!("APIKey {token}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // No token, a made-up one, an API token, an admin's JWT: 401, SCIM-shaped.
    let jwt = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": ACME_ADMIN, "password": PASSWORD}),
        )
        .await
        .json["access"]
        .as_str()
        .unwrap()
        .to_string();
    let api_token = app.token_for(&admin, Role::Administrators).await;
    for auth in [
        String::new(),
        format!("Bearer scim_{}", "0".repeat(64)),
        format!("Bearer {api_token}"),
        format!("APIKey {api_token}"),
        format!("Bearer {jwt}"),
    ] {
        let r = send(&app.api(&auth), Method::GET, "/Users", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"SCIM\"");
        assert_eq!(r.json["status"], "401");
    }

    // A new token replaces the old one at once, and is recorded.
    let fresh = scim(&app, admin.account_id).await;
    assert_eq!(
        send(&acme, Method::GET, "/Users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&fresh, Method::GET, "/Users", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.events_of(admin.account_id, "scim.token_created")
            .await
            .len(),
        2
    );
    let stored = app
        .db(move |c| {
            apitokens::repo::Account::find(c, admin.account_id)
                .unwrap()
                .unwrap()
                .scim_token_hash
        })
        .await
        .unwrap();
    assert!(
        !fresh.auth.contains(&stored) && stored.len() == 64,
        "only the hash is kept"
    );
}

#[tokio::test]
async fn bad_scim_input_gets_a_scim_error_and_changes_nothing() {
    let Acme { app, admin } = Acme::start().await;
    app.add_user("Other", "taken@other.test", Role::Administrators)
        .await;
    let scim = scim(&app, admin.account_id).await;
    let dana = send(
        &scim,
        Method::POST,
        "/Users",
        Some(new_user("dana", "dana@acme.test", "Users")),
    )
    .await;
    let dana_id = dana.json["id"].as_str().unwrap().to_string();
    let account = admin.account_id;
    let count = || app.db(move |c| apitokens::repo::User::count_in_account(c, account).unwrap());
    let before = count().await;
    let dana_path = format!("/Users/{dana_id}");
    let admin_path = format!("/Users/{}", admin.id);

    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER]})),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users",
            Some(json!("text")),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Users",
            Some(new_user("DANA", "other@acme.test", "Users")),
            StatusCode::CONFLICT,
            Some("uniqueness"),
        ),
        (
            Method::POST,
            "/Users",
            Some(new_user("x", "taken@other.test", "Users")),
            StatusCode::CONFLICT,
            Some("uniqueness"),
        ),
        (
            Method::POST,
            "/Users",
            Some(new_user("y", "y@acme.test", "Root")),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users",
            Some(new_user("z", "not an address", "Users")),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::GET,
            "/Users?filter=title%20eq%20%22x%22",
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
        ),
        (
            Method::GET,
            "/Users?startIndex=first",
            None,
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (Method::GET, "/Users/abc", None, StatusCode::NOT_FOUND, None),
        (
            Method::PATCH,
            &dana_path,
            Some(json!({"Operations": []})),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            Method::PATCH,
            &dana_path,
            Some(patch(json!([{"op": "remove", "path": "active"}]))),
            StatusCode::BAD_REQUEST,
            Some("mutability"),
        ),
        // A valid first operation and a bad second: neither applies.
        (
            Method::PATCH,
            &dana_path,
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "Changed"}, {"op": "replace", "path": "userName", "value": 5}]),
            )),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::PATCH,
            &admin_path,
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
            StatusCode::BAD_REQUEST,
            Some("mutability"),
        ),
        (
            Method::PUT,
            &admin_path,
            Some(new_user("admin", ACME_ADMIN, "Users")),
            StatusCode::BAD_REQUEST,
            Some("mutability"),
        ),
        (
            Method::DELETE,
            &admin_path,
            None,
            StatusCode::BAD_REQUEST,
            Some("mutability"),
        ),
        (
            Method::POST,
            "/Bulk",
            Some(json!({})),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::PUT,
            "/Users",
            Some(json!({})),
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
    ];
    for (method, path, body, status, scim_type) in cases {
        let r = send(&scim, method.clone(), path, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.json);
        assert_eq!(r.json["status"], status.as_u16().to_string());
        assert_eq!(
            r.json["scimType"].as_str(),
            scim_type,
            "{method} {path}: {}",
            r.json
        );
        assert!(r.json["detail"].as_str().unwrap().len() > 5);
    }
    // Huge and hostile bodies.
    let huge =
        json!({"schemas": [USER], "userName": "h@acme.test", "displayName": "x".repeat(70_000)});
    assert_eq!(
        send(&scim, Method::POST, "/Users", Some(huge)).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let hostile = new_user("<script>", "evil@acme.test", "Users");
    let made = send(&scim, Method::POST, "/Users", Some(hostile)).await;
    assert_eq!(
        made.json["userName"], "<script>",
        "kept as text, escaped where shown"
    );

    assert_eq!(
        count().await,
        before + 1,
        "only the hostile-but-valid user was added"
    );
    let still = send(&scim, Method::GET, &dana_path, None).await;
    assert_eq!(still.json["displayName"], "New Person");
    let admin_now = send(&scim, Method::GET, &admin_path, None).await;
    assert_eq!(
        (
            admin_now.json["active"].clone(),
            admin_now.json["roles"].clone()
        ),
        (json!(true), json!([{"value": "Administrators"}]))
    );
}

#[tokio::test]
async fn the_users_page_makes_a_scim_token_shown_once_for_administrators_only() {
    let Acme { app, admin } = Acme::start().await;
    app.acme_member("eng", Role::Engineers).await;
    let web = app.signed_in(ACME_ADMIN).await;
    let page = web.get("/users").await;
    assert!(page.has_text("No SCIM token yet"), "{}", page.body);
    let shown = web.post_from("/users", "/users/scim-token", &[]).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let token = shown.text_of("scim-token").expect("the token is shown");
    assert!(token.starts_with("scim_"));
    assert!(shown.has_text(&format!("{}/scim/v2", app.state.settings.base_url)));
    let r = send(
        &app.api(&format!("Bearer {token}")),
        Method::GET,
        "/Users",
        None,
    )
    .await;
    assert_eq!(r.json["totalResults"], 2);
    // Shown once: the page afterwards only says there is one.
    let again = web.get("/users").await;
    assert!(!again.body.contains(&token) && again.has_text("The account has a SCIM token"));

    // Not for others, and not without the form's CSRF token.
    let eng = app.signed_in("eng@acme.test").await;
    assert_eq!(
        eng.post_from("/profile", "/users/scim-token", &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let forged = web
        .post("/users/scim-token", &[("csrf_token", "forged")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.events_of(admin.account_id, "scim.token_created")
            .await
            .len(),
        1
    );
}

/// A burst of the same deprovisioning at once (an identity provider retrying): every request
/// answers, the person is deprovisioned once, their tokens deleted once, each alert recorded
/// once.
#[tokio::test]
async fn a_burst_of_the_same_deprovisioning_acts_once() {
    let Acme { app, admin } = Acme::start().await;
    let scim = scim(&app, admin.account_id).await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let token = app.token_for(&eng, Role::Engineers).await;
    let path = format!("/scim/v2/Users/{}", eng.id);
    let off = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    let burst = (0..8).map(|i| {
        let (scim, path, off) = (&scim, path.clone(), off.clone());
        async move {
            if i % 2 == 0 {
                scim.send(Method::PATCH, &path, Some(off)).await.status
            } else {
                scim.send(
                    Method::PUT,
                    &path,
                    Some(json!({"schemas": [USER], "userName": "eng@acme.test", "active": false})),
                )
                .await
                .status
            }
        }
    });
    let statuses = futures_util::future::join_all(burst).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        app.events_of(admin.account_id, "user.deprovisioned")
            .await
            .len(),
        1
    );
    assert_eq!(
        app.api(&format!("APIKey {token}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let alerts = app
        .db(move |c| {
            apitokens::repo::notices::Notice::for_user(c, admin.id, 50)
                .unwrap()
                .into_iter()
                .filter(|(n, _)| n.kind == apitokens::domain::NoticeKind::Deprovisioned)
                .count()
        })
        .await;
    assert_eq!(alerts, 1);
}

/// An anonymous flood of made-up SCIM tokens: junk costs no database read at all (the shape
/// and checksum are checked first); a well-made-up token costs exactly one indexed read, no
/// write. Every one gets a 401.
#[tokio::test]
async fn a_flood_of_made_up_scim_tokens_costs_no_reads_unless_well_formed() {
    use crate::operate::{delta, scrape, with_metrics};
    let Acme { app, .. } = with_metrics().await;
    let series = "apitokens_db_connection_wait_seconds_count{pool=\"main\"}";
    let flood = |tokens: Vec<String>| {
        let app = &app;
        async move {
            let requests = tokens.into_iter().map(|t| async move {
                send(
                    &app.api(&format!("Bearer {t}")),
                    Method::GET,
                    "/Users",
                    None,
                )
                .await
                .status
            });
            futures_util::future::join_all(requests).await
        }
    };
    let junk: Vec<String> = (0..100).map(|i| format!("scim_{:064x}", i)).collect();
    // A scrape itself reads once (the e-mail backlog), which may land in either count.
    let before = scrape(&app).await;
    let statuses = flood(junk).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    let after = scrape(&app).await;
    let reads = delta(&before, &after, series);
    assert!(
        reads <= 1.0,
        "junk never reaches the database: {reads} reads"
    );

    // Well-formed (right checksum) but unknown: one read each.
    let shaped: Vec<String> = (0..20)
        .map(|_| apitokens::domain::scim::generate_token())
        .collect();
    let statuses = flood(shaped).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    let last = scrape(&app).await;
    let reads = delta(&after, &last, series);
    assert!(
        (20.0..=21.0).contains(&reads),
        "one read per token: {reads}"
    );
}

/// Two PATCHes of different attributes at once (an identity provider syncing two changes):
/// both land; neither writes back what it read before the other.
#[tokio::test]
async fn parallel_patches_of_different_attributes_both_land() {
    let Acme { app, admin } = Acme::start().await;
    let scim = scim(&app, admin.account_id).await;
    for round in 0..5 {
        let made = send(
            &scim,
            Method::POST,
            "/Users",
            Some(new_user(
                &format!("p{round}"),
                &format!("p{round}@acme.test"),
                "Users",
            )),
        )
        .await;
        let path = format!("/Users/{}", made.json["id"].as_str().unwrap());
        let name = patch(json!([{"op": "replace", "path": "displayName", "value": "Renamed"}]));
        let ext = patch(json!([{"op": "replace", "path": "externalId", "value": "00u-new"}]));
        let (a, b) = futures_util::future::join(
            send(&scim, Method::PATCH, &path, Some(name)),
            send(&scim, Method::PATCH, &path, Some(ext)),
        )
        .await;
        assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
        let now = send(&scim, Method::GET, &path, None).await;
        assert_eq!(
            now.json["displayName"], "Renamed",
            "round {round}: {}",
            now.json
        );
        assert_eq!(
            now.json["externalId"], "00u-new",
            "round {round}: {}",
            now.json
        );
    }
}
