//! Account → Users: only Administrators; add with a one-time set-password link; role changes
//! and removal with the token rules; the last Administrator; SSO bulk delete; the API.

use apitokens::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{captured_logs, token_id, unescape, Acme, ACME_ADMIN, PASSWORD};

/// The set-password link shown on the page after adding a user.
fn setup_path(page: &crate::helpers::Page) -> String {
    let link = page.text_of("setup-link").expect("link shown");
    link.split_once("127.0.0.1")
        .map(|(_, rest)| rest.to_string())
        .expect("absolute link")
}

#[tokio::test]
async fn only_administrators_manage_users() {
    let Acme { app, admin } = Acme::start().await;
    app.acme_member("eng", Role::Engineers).await;
    let outsider = app
        .add_user("Other", "admin@other.test", Role::Administrators)
        .await;
    let eng = app.signed_in("eng@acme.test").await;
    let page = eng.get("/users").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page
        .text_of("error-message")
        .unwrap()
        .contains("Only Administrators"));
    assert!(!eng.get("/profile").await.has("#nav-users"));
    let r = eng
        .post_from(
            "/profile",
            &format!("/users/{}/role", admin.id),
            &[("role", "2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = eng
        .post_from(
            "/profile",
            "/users",
            &[("name", "x"), ("email", "x@acme.test"), ("role", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Never across accounts.
    let other = app.signed_in("admin@other.test").await;
    let r = other
        .post_from("/users", &format!("/users/{}/remove", admin.id), &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = other
        .post_from(
            "/users",
            &format!("/users/{}/role", admin.id),
            &[("role", "2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let listed = other.get("/users").await;
    assert!(!listed.has_text("admin@acme.test"));
    let api = app.api_as(&outsider, Role::Administrators).await;
    assert_eq!(
        api.send(
            reqwest::Method::PATCH,
            &format!("/iam/users/{}", admin.id),
            Some(json!({"name": "x"}))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&format!(
            "/iam/clients/{}/client-users/{}",
            admin.account_id, admin.id
        ))
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let admin_page = app.signed_in(ACME_ADMIN).await.get("/users").await;
    assert_eq!(admin_page.status, StatusCode::OK);
    assert!(admin_page.has_text("eng@acme.test"));
}

#[tokio::test]
async fn an_added_user_sets_a_password_once_and_signs_in() {
    let Acme { app, .. } = Acme::start().await;
    let admin = app.signed_in(ACME_ADMIN).await;
    let added = admin
        .post_from(
            "/users",
            "/users",
            &[
                ("name", "Carol"),
                ("email", "Carol@Acme.test"),
                ("role", "5"),
                ("sign_in", "password"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.headers.get("cache-control").unwrap(), "no-store");
    let path = setup_path(&added);
    let secret = path.rsplit('=').next().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    // The invitation went to the outbox (no SMTP configured), with the same link.
    let outbox: Vec<_> = std::fs::read_dir(app.dir.path().join("outbox"))
        .unwrap()
        .collect();
    assert_eq!(outbox.len(), 1);
    let mail = std::fs::read_to_string(outbox[0].as_ref().unwrap().path()).unwrap();
    assert!(mail
        .replace("=\r\n", "")
        .replace("=3D", "=")
        .contains(&secret));
    assert!(mail.contains("carol@acme.test"));

    let again = admin
        .post_from(
            "/users",
            "/users",
            &[
                ("name", "Carol"),
                ("email", "carol@acme.test"),
                ("role", "5"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again
        .text_of("add-user-error")
        .unwrap()
        .contains("already exists"));
    let bad = admin
        .post_from(
            "/users",
            "/users",
            &[("name", ""), ("email", "nope"), ("role", "99")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad
        .text_of("add-user-error")
        .unwrap()
        .contains("Enter a name."));

    let carol = app.client();
    assert_eq!(
        carol.sign_in("carol@acme.test", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "no password yet"
    );
    let form = carol.get(&unescape(&path)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.headers.get("referrer-policy").unwrap(), "no-referrer");
    let csrf = form.input_value("csrf_token").unwrap();
    let short = carol
        .post(
            "/set-password",
            &[
                ("csrf_token", &csrf),
                ("token", &secret),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    let mismatch = carol
        .post(
            "/set-password",
            &[
                ("csrf_token", &csrf),
                ("token", &secret),
                ("password", PASSWORD),
                ("confirm", "something else entirely"),
            ],
        )
        .await;
    assert!(mismatch
        .text_of("setup-error")
        .unwrap()
        .contains("different"));
    let done = carol
        .post(
            "/set-password",
            &[
                ("csrf_token", &csrf),
                ("token", &secret),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, "/login?password_set=1")
    );
    assert_eq!(
        carol.sign_in("carol@acme.test", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // The link works once, and never shows up in a log line.
    let reuse = app.client().get(&unescape(&path)).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert!(!captured_logs().contains(&secret));
    let users = admin.get("/users").await;
    assert!(
        users.text_of("events").is_some()
            && users
                .body
                .contains("Added Carol &lt;carol@acme.test&gt; as Engineers")
            || users
                .body
                .contains("Added Carol &#60;carol@acme.test&#62; as Engineers")
    );
}

#[tokio::test]
async fn lowering_a_role_is_refused_by_a_higher_token_and_done_in_one_step() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let high = app.token_for(&eng, Role::Engineers).await;
    let low = app.token_for(&eng, Role::Users).await;
    let web = app.signed_in(ACME_ADMIN).await;

    let refused = web
        .post_from(
            "/users",
            &format!("/users/{}/role", eng.id),
            &[("role", "2")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused
        .text_of("refusal-message")
        .unwrap()
        .contains("can't be lowered to Users"));
    assert!(refused.texts("li").contains(&"api test".to_string()));
    assert_eq!(
        app.api(&format!("APIKey {high}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::NO_CONTENT,
        "nothing changed"
    );
    // Through the API: Gcore's words, 403.
    let api = app.api_as(&admin, Role::Administrators).await;
    let r = api
        .send(
            reqwest::Method::PATCH,
            &format!("/iam/users/{}", eng.id),
            Some(json!({"groups": [{"id": 2}], "name": "Renamed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json,
        json!({"message": "The specified user has issued a token with a higher role. Try using another role."})
    );
    assert_eq!(
        api.get(&format!("/iam/users/{}", eng.id)).await.json["name"],
        "eng",
        "the name was not changed either"
    );

    // One step: delete the tokens in the way and change the role.
    let csrf = refused.input_value("csrf_token").unwrap();
    let done = web
        .post(
            &format!("/users/{}/role", eng.id),
            &[("csrf_token", &csrf), ("role", "2"), ("delete_tokens", "1")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.api(&format!("APIKey {high}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "refused at once"
    );
    assert_eq!(
        app.api(&format!("APIKey {low}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::NO_CONTENT,
        "a Users token stays"
    );
    let page = web.get("/users").await;
    assert!(page
        .body
        .contains(&format!("data-user-id=\"{}\" data-role=\"2\"", eng.id)));
    assert!(page
        .body
        .contains("Changed the role of eng@acme.test from Engineers to Users"));
    assert!(page.has_text("above Users"));
    assert!(page
        .text_of("flash")
        .unwrap()
        .contains("1 token with a higher role was deleted"));
    let _ = token_id(&low);
}

#[tokio::test]
async fn removal_is_refused_while_tokens_are_active_and_done_in_one_step() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let token = app.token_for(&eng, Role::Engineers).await;
    let eng_web = app.signed_in("eng@acme.test").await;
    let web = app.signed_in(ACME_ADMIN).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let path = format!("/iam/clients/{}/client-users/{}", admin.account_id, eng.id);
    let r = api.delete(&path).await;
    assert_eq!(
        (r.status, r.json),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "You can't remove the user as they have active tokens"})
        )
    );

    let refused = web
        .post_from("/users", &format!("/users/{}/remove", eng.id), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(
        refused.text_of("refusal-message").as_deref(),
        Some("You can't remove the user as they have active tokens.")
    );
    let csrf = refused.input_value("csrf_token").unwrap();
    // Used just now, so this instance has it cached: removal must make the cache forget it.
    assert_eq!(
        app.api(&format!("APIKey {token}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let done = web
        .post(
            &format!("/users/{}/remove", eng.id),
            &[("csrf_token", &csrf), ("delete_tokens", "1")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.api(&format!("APIKey {token}"))
            .get("/iam/auth/check")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        eng_web.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "their session ended"
    );
    assert_eq!(
        app.client().sign_in("eng@acme.test", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !web.get("/users")
            .await
            .texts("tr[data-user-id]")
            .iter()
            .any(|row| row.contains("eng@acme.test")),
        "no longer listed"
    );
    // The deleted token still shows who issued it.
    let tokens = web.get("/profile/api-tokens?status=deleted").await;
    assert_eq!(
        tokens.token_rows(),
        vec![(token_id(&token), "deleted".to_string())]
    );
    assert!(tokens.has("[title=\"eng@acme.test\"]"));

    // Through the API, once the tokens are gone: 204.
    let user = app.acme_member("user", Role::Users).await;
    let r = api
        .delete(&format!(
            "/iam/clients/{}/client-users/{}",
            admin.account_id, user.id
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn the_last_administrator_can_be_neither_demoted_nor_removed() {
    let Acme { app, admin } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let demote = web
        .post_from(
            "/users",
            &format!("/users/{}/role", admin.id),
            &[("role", "5")],
        )
        .await;
    assert_eq!(demote.status, StatusCode::BAD_REQUEST);
    // Said on the Users page, in its error summary, not on a bare error page.
    assert!(demote
        .text_of("error-summary-users")
        .unwrap()
        .contains("at least one Administrator"));
    assert!(demote.has("#users-table"));
    let remove = web
        .post_from("/users", &format!("/users/{}/remove", admin.id), &[])
        .await;
    assert_eq!(remove.status, StatusCode::BAD_REQUEST);
    let api = app.api_as(&admin, Role::Administrators).await;
    let r = api
        .send(
            reqwest::Method::PATCH,
            &format!("/iam/users/{}", admin.id),
            Some(json!({"groups": [{"id": 5}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // With a second Administrator, the first may step down.
    let second = app.acme_member("admin2", Role::Administrators).await;
    let web2 = app.signed_in("admin2@acme.test").await;
    let ok = web2
        .post_from(
            "/users",
            &format!("/users/{}/role", admin.id),
            &[("role", "5"), ("delete_tokens", "1")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let last = web2
        .post_from("/users", &format!("/users/{}/remove", second.id), &[])
        .await;
    assert_eq!(last.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sso_users_are_marked_and_their_tokens_deleted_in_one_action() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let added = web
        .post_from(
            "/users",
            "/users",
            &[
                ("name", "Sam"),
                ("email", "sam@acme.test"),
                ("role", "5"),
                ("sign_in", "sso"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK);
    assert!(
        added.text_of("setup-link").is_none(),
        "SSO users get no password link"
    );
    let sam = app
        .db(|c| apitokens::repo::User::find_by_email(c, "sam@acme.test"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sam.auth_type, apitokens::domain::AuthType::Sso);
    let t1 = app.token_for(&sam, Role::Engineers).await;
    let t2 = app.token_for(&sam, Role::Users).await;
    let page = web.get("/users?role=5").await;
    assert_eq!(page.texts(".sso-badge"), vec!["SSO"]);
    assert_eq!(
        page.attrs("[data-user-id]", "data-user-id").len(),
        1,
        "the role filter keeps Engineers only"
    );
    let done = web
        .post_from("/users", &format!("/users/{}/delete-tokens", sam.id), &[])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    for t in [t1, t2] {
        assert_eq!(
            app.api(&format!("APIKey {t}"))
                .get("/iam/auth/check")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(web
        .get("/users")
        .await
        .text_of("flash")
        .unwrap()
        .contains("2 active tokens"));
}

#[tokio::test]
async fn the_users_api_patches_invites_and_validates() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let eng_api = app.api_as(&eng, Role::Users).await;
    let path = format!("/iam/users/{}", eng.id);
    let r = api
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"name": "Erin", "phone": "+1 555 0100", "lang": "de"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        (
            r.json["name"].clone(),
            r.json["phone"].clone(),
            r.json["lang"].clone()
        ),
        (json!("Erin"), json!("+1 555 0100"), json!("de"))
    );
    let r = api
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"groups": [{"id": 3009}]})),
        )
        .await;
    assert_eq!(
        r.json["groups"],
        json!([{"id": 3009, "name": "Purge and Prefetch only (API+Web)"}]),
        "{}",
        r.json
    );
    for (body, field) in [
        (json!({"lang": "xx"}), "lang"),
        (json!({"groups": [{"id": 4}]}), "groups"),
        (json!({"phone": "call me"}), "phone"),
        (json!({"name": ""}), "name"),
    ] {
        let r = api
            .send(reqwest::Method::PATCH, &path, Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.json["errors"][field].is_array(), "{body}: {}", r.json);
    }
    // A non-admin may rename themselves but not change roles or others.
    let me = format!("/iam/users/{}", eng.id);
    assert_eq!(
        eng_api
            .send(reqwest::Method::PATCH, &me, Some(json!({"name": "Me"})))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        eng_api
            .send(
                reqwest::Method::PATCH,
                &me,
                Some(json!({"groups": [{"id": 1}]}))
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        eng_api
            .send(
                reqwest::Method::PATCH,
                &format!("/iam/users/{}", admin.id),
                Some(json!({"name": "x"}))
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let body = json!({"client_id": admin.account_id, "email": "new@acme.test", "name": "New", "user_role": {"id": 2, "name": "Users"}, "lang": "en"});
    let r = api.post("/iam/clients/invite_user", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(r.json["user_id"].is_i64());
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("outbox"))
            .unwrap()
            .count(),
        1,
        "the invitation went through the mailer"
    );
    let dup = api.post("/iam/clients/invite_user", body).await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(dup.json["errors"]["email"].is_array());
    let bad = api
        .post(
            "/iam/clients/invite_user",
            json!({"client_id": admin.account_id, "email": "x", "user_role": {"id": 99}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    for f in ["email", "user_role"] {
        assert!(bad.json["errors"][f].is_array(), "{f}: {}", bad.json);
    }
    assert!(bad.json["errors"]["name"].is_null(), "the name is optional");
    let other = api
        .post(
            "/iam/clients/invite_user",
            json!({"client_id": 999, "email": "y@acme.test", "name": "Y", "user_role": {"id": 2}}),
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let denied = eng_api.post("/iam/clients/invite_user", json!({"client_id": admin.account_id, "email": "z@acme.test", "name": "Z", "user_role": {"id": 2}})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn removing_a_user_or_their_tokens_asks_first() {
    let Acme { app, .. } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let outsider = app
        .add_user("Other", "admin@other.test", Role::Administrators)
        .await;
    let web = app.signed_in(ACME_ADMIN).await;
    let page = web
        .get(&format!("/users?confirm=remove&user={}", eng.id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .text_of("user-confirm-title")
        .unwrap()
        .contains("Remove eng?"));
    assert!(page
        .body
        .contains(&format!("action=\"/users/{}/remove\"", eng.id)));
    let page = web
        .get(&format!("/users?confirm=delete-tokens&user={}", eng.id))
        .await;
    assert!(page.has_text("This action cannot be undone"));
    // Nothing happened by looking.
    assert!(web.get("/users").await.has_text("eng@acme.test"));
    assert_eq!(
        web.get(&format!("/users?confirm=remove&user={}", outsider.id))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        web.get("/users?confirm=explode&user=1").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        web.get("/users?confirm=remove").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        web.get("/users?confirm=remove&user=abc").await.status,
        StatusCode::NOT_FOUND
    );
}
