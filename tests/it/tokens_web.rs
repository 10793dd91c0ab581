//! Profile → API tokens over HTTP: create, reveal once, list, filter, delete, bad input.

use apitokens::db::schema;
use apitokens::domain::input::{Expiry, TokenDescription, TokenName};
use apitokens::domain::Role;
use apitokens::repo::{Account, Session, Token, User};
use apitokens::services::tokens::{self, NewTokenRequest};
use apitokens::services::Actor;
use diesel::prelude::*;
use reqwest::StatusCode;
use time::Duration;

use crate::helpers::{captured_logs, token_id, Acme, TestApp, ACME_ADMIN};

fn is_token_value(v: &str) -> bool {
    let Some((id, secret)) = v.split_once('_') else {
        return false;
    };
    id.parse::<i64>().is_ok()
        && secret.len() == 64
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn create_reveals_the_token_once_and_lists_it() {
    let Acme { app, .. } = Acme::start().await;
    let client = app.signed_in(ACME_ADMIN).await;
    let empty = client.get("/profile/api-tokens").await;
    assert!(empty.has("#empty-state"));
    assert!(empty.has_text("Authorization: APIKey <token>"));

    let exp = (app.clock().now() + Duration::days(30)).date().to_string();
    let page = client
        .create_token(&[
            ("name", "CI deploys"),
            ("description", "GitLab runner"),
            ("role", "5"),
            ("expiration", "date"),
            ("exp_date", &exp),
        ])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers.get("cache-control").unwrap(), "no-store");
    let value = page.text_of("new-token-value").expect("revealed");
    assert!(is_token_value(&value), "{value}");
    assert_eq!(
        page.text_of("token-copied").as_deref(),
        Some("OK, I've copied token")
    );
    assert!(page.has_text("will not be shown again"));
    let id = token_id(&value);
    assert_eq!(page.token_rows(), vec![(id, "active".to_string())]);

    // The next view of the section shows the row, never the secret.
    let later = client.get("/profile/api-tokens").await;
    assert_eq!(later.token_rows(), vec![(id, "active".to_string())]);
    assert!(later.has_text("CI deploys") && later.has_text("GitLab runner"));
    assert!(later.has_text(&format!("{exp} 23:59 UTC")));
    assert!(later.has_text("Never used"));
    assert!(later.text_of("new-token-value").is_none());
    let secret = value.split_once('_').unwrap().1.to_string();
    for path in [
        "/profile/api-tokens",
        "/profile",
        "/profile/api-tokens/new",
        "/profile/api-tokens?status=active",
    ] {
        assert!(!client.get(path).await.body.contains(&secret), "{path}");
    }

    // Nowhere in the database: every column of every table, and the SQLite files themselves.
    let s = secret.clone();
    let dump = app
        .db(move |c| {
            let tokens: Vec<Token> = schema::tokens::table
                .select(Token::as_select())
                .load(c)
                .unwrap();
            let users: Vec<User> = schema::users::table
                .select(User::as_select())
                .load(c)
                .unwrap();
            let sessions: Vec<Session> = schema::sessions::table
                .select(Session::as_select())
                .load(c)
                .unwrap();
            let accounts: Vec<Account> = schema::accounts::table
                .select(Account::as_select())
                .load(c)
                .unwrap();
            assert_eq!(
                tokens[0].secret_hash,
                apitokens::domain::token::TokenHash::of(&s).0
            );
            format!("{tokens:?}{users:?}{sessions:?}{accounts:?}")
        })
        .await;
    assert!(dump.contains("CI deploys"));
    assert!(!dump.contains(&secret));
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();

        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    // Nor in the logs.
    let logs = captured_logs();
    assert!(logs.contains("token created"), "the log capture works");
    assert!(!logs.contains(&secret));
}

#[tokio::test]
async fn resubmitting_the_same_form_creates_nothing_and_shows_no_secret() {
    let Acme { app, .. } = Acme::start().await;
    let client = app.signed_in(ACME_ADMIN).await;
    let form = client.get("/profile/api-tokens/new").await;
    let fields = [
        ("csrf_token", form.input_value("csrf_token").unwrap()),
        ("form_id", form.input_value("form_id").unwrap()),
        ("name", "once".to_string()),
        ("role", "2".to_string()),
        ("expiration", "never".to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = client.post("/profile/api-tokens", &fields).await;
    assert!(first.text_of("new-token-value").is_some());
    let second = client.post("/profile/api-tokens", &fields).await;
    assert_eq!(second.status, StatusCode::SEE_OTHER);
    assert!(!second.has_text("new-token-value"));
    let list = client.get(second.location()).await;
    assert_eq!(list.token_rows().len(), 1);
    assert!(list.text_of("flash").unwrap().contains("already submitted"));
    assert!(list.text_of("new-token-value").is_none());
}

#[tokio::test]
async fn bad_input_is_answered_with_messages_and_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    app.acme_member("user", Role::Users).await;
    let client = app.signed_in("user@acme.test").await;
    let yesterday = (app.clock().now() - Duration::days(1)).date().to_string();
    let long = "n".repeat(10_000);
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("name", "  "), ("role", "2"), ("expiration", "never")],
            "error-name",
            "Enter a token name.",
        ),
        (
            vec![("name", &long), ("role", "2"), ("expiration", "never")],
            "error-name",
            "at most 100 characters",
        ),
        (
            vec![
                ("name", "x"),
                ("role", "2"),
                ("expiration", "date"),
                ("exp_date", &yesterday),
            ],
            "error-expiration",
            "must be in the future",
        ),
        (
            vec![
                ("name", "x"),
                ("role", "2"),
                ("expiration", "date"),
                ("exp_date", ""),
            ],
            "error-expiration",
            "Choose the expiration date.",
        ),
        (
            vec![
                ("name", "x"),
                ("role", "2"),
                ("expiration", "date"),
                ("exp_date", "tomorrow"),
            ],
            "error-expiration",
            "YYYY-MM-DD",
        ),
        (
            vec![("name", "x"), ("role", "2"), ("expiration", "sometimes")],
            "error-expiration",
            "Never expire",
        ),
        (
            vec![("name", "x"), ("role", "999"), ("expiration", "never")],
            "error-role",
            "Choose one of the roles",
        ),
        (
            vec![("name", "x"), ("role", "<script>"), ("expiration", "never")],
            "error-role",
            "Choose one of the roles",
        ),
        (
            vec![("name", "x"), ("role", "1"), ("expiration", "never")],
            "error-role",
            "Can't create token with role Administrators",
        ),
        (
            vec![
                ("name", "x"),
                ("description", &long),
                ("role", "2"),
                ("expiration", "never"),
            ],
            "error-description",
            "at most 500",
        ),
    ];
    for (fields, id, message) in cases {
        let page = client.create_token(&fields).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{fields:?}");
        let shown = page
            .text_of(id)
            .unwrap_or_else(|| panic!("no {id} for {fields:?}"));
        assert!(shown.contains(message), "{id}: {shown}");
    }
    // What was typed comes back.
    let page = client
        .create_token(&[
            ("name", "kept <b>name</b>"),
            ("role", "999"),
            ("expiration", "never"),
        ])
        .await;
    // What was typed comes back as the field's value, escaped (never as markup).
    assert_eq!(
        page.input_value("name").as_deref(),
        Some("kept <b>name</b>")
    );
    assert!(!page.has("b"), "no markup was injected");
    // Hostile ids and filters: messages, never a 500.
    for path in [
        "/profile/api-tokens?status=gone",
        "/profile/api-tokens?issued_by=abc",
        "/profile/api-tokens?role=Root",
        "/profile/api-tokens?before=0",
        "/profile/api-tokens?before=abc",
        "/profile/api-tokens?after=-3",
        "/profile/api-tokens?before=5&after=2",
    ] {
        assert_eq!(
            client.get(path).await.status,
            StatusCode::BAD_REQUEST,
            "{path}"
        );
    }
    for path in [
        "/profile/api-tokens?confirm_delete=abc",
        "/profile/api-tokens?confirm_delete=99999999999999999999",
    ] {
        assert_eq!(
            client.get(path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    for path in [
        "/profile/api-tokens/abc/delete",
        "/profile/api-tokens/99999999999999999999/delete",
        "/profile/api-tokens/-1/delete",
    ] {
        let page = client.post_from("/profile/api-tokens", path, &[]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Nothing was written by any of it.
    assert!(client
        .get("/profile/api-tokens")
        .await
        .token_rows()
        .is_empty());
}

#[tokio::test]
async fn admin_filters_and_deletes_a_users_token_the_user_sees_only_their_own() {
    let Acme { app, .. } = Acme::start().await;
    let user = app.acme_member("user", Role::Users).await;
    let outsider = app
        .add_user("Other", "admin@other.test", Role::Administrators)
        .await;
    let admin_c = app.signed_in(ACME_ADMIN).await;
    let user_c = app.signed_in("user@acme.test").await;
    let other_c = app.signed_in("admin@other.test").await;

    let admin_token = token_id(&admin_c.new_token("admin's", Role::Engineers).await);
    let user_token = token_id(&user_c.new_token("user's", Role::Users).await);
    let other_token = token_id(&other_c.new_token("other's", Role::Users).await);

    let admin_view = admin_c.get("/profile/api-tokens").await;
    let ids: Vec<i64> = admin_view.token_rows().iter().map(|r| r.0).collect();
    assert_eq!(ids, vec![user_token, admin_token]);
    assert!(admin_view.has("#filter-issued-by"));
    assert!(
        !admin_view.has_text("admin@other.test"),
        "no other account's users in the filter"
    );
    let user_view = user_c.get("/profile/api-tokens").await;
    assert_eq!(user_view.token_rows(), vec![(user_token, "active".into())]);
    assert!(!user_view.has("#filter-issued-by"));

    let filtered = admin_c
        .get(&format!("/profile/api-tokens?issued_by={}", user.id))
        .await;
    assert_eq!(filtered.token_rows(), vec![(user_token, "active".into())]);
    let by_role = admin_c.get("/profile/api-tokens?role=5").await;
    assert_eq!(by_role.token_rows(), vec![(admin_token, "active".into())]);
    let cross = admin_c
        .get(&format!("/profile/api-tokens?issued_by={}", outsider.id))
        .await;
    assert!(cross.token_rows().is_empty());

    // Someone else's token: 404 whichever way it is asked for.
    for (client, id) in [
        (&user_c, admin_token),
        (&other_c, user_token),
        (&admin_c, other_token),
    ] {
        assert_eq!(
            client
                .get(&format!("/profile/api-tokens?confirm_delete={id}"))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let page = client
            .post_from(
                "/profile/api-tokens",
                &format!("/profile/api-tokens/{id}/delete"),
                &[],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }

    // The admin deletes the user's token, after a confirmation that says it can't be undone.
    let confirm = admin_c
        .get(&format!(
            "/profile/api-tokens?status=active&confirm_delete={user_token}"
        ))
        .await;
    assert!(confirm.has_text("This action cannot be undone"));
    let csrf = confirm.input_value("csrf_token").unwrap();
    let back = confirm.input_value("back").unwrap();
    assert_eq!(back, "/profile/api-tokens?status=active");
    let done = admin_c
        .post(
            &format!("/profile/api-tokens/{user_token}/delete"),
            &[("csrf_token", &csrf), ("back", &back)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/profile/api-tokens?status=active");
    let after = admin_c.get(done.location()).await;
    assert!(after.text_of("flash").unwrap().contains("was deleted"));
    assert_eq!(after.token_rows(), vec![(admin_token, "active".into())]);
    // Deleted tokens are left out of the list unless asked for.
    assert_eq!(user_c.get("/profile/api-tokens").await.token_rows(), vec![]);
    assert_eq!(
        user_c
            .get("/profile/api-tokens?status=all")
            .await
            .token_rows(),
        vec![(user_token, "deleted".into())]
    );
    let deleted = admin_c.get("/profile/api-tokens?status=deleted").await;
    assert_eq!(deleted.token_rows(), vec![(user_token, "deleted".into())]);
    // Deleting it again is a message, not an error page.
    let again = admin_c
        .post(
            &format!("/profile/api-tokens/{user_token}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(admin_c
        .get("/profile/api-tokens")
        .await
        .text_of("flash")
        .unwrap()
        .contains("already deleted"));
}

fn req(name: &str) -> NewTokenRequest {
    NewTokenRequest {
        name: TokenName::parse(name).unwrap(),
        description: TokenDescription::parse(None).unwrap(),
        role: Role::Users,
        expiry: Expiry::NEVER,
        form_id: None,
        parent: None,
        allowed_ips: vec![],
        allowed_routes: vec![],
        rate_limit: None,
        usage_limit: None,
    }
}

#[tokio::test]
async fn at_fifty_the_create_button_is_disabled_with_the_reason_and_the_list_pages() {
    let app = TestApp::spawn().await;
    let admin = Actor::of_user(&app.acme_member("admin", Role::Administrators).await);
    let now = app.clock().now();
    app.db(move |c| {
        for i in 0..55 {
            tokens::create(c, &admin, &req(&format!("t{i}")), now).unwrap();
            if i < 5 {
                let id = tokens::list(c, &admin, &Default::default(), now)
                    .unwrap()
                    .tokens[0]
                    .id;
                tokens::delete(c, &admin, id, now).unwrap();
            }
        }
    })
    .await;
    let client = app.signed_in(ACME_ADMIN).await;
    let page = client.get("/profile/api-tokens").await;
    assert_eq!(
        page.text_of("token-count").as_deref(),
        Some("50 of 50 active tokens used in this account")
    );
    assert!(page.has("#limit-reason"));
    assert!(!page.has("#create-token"));
    // The first page holds the 50 active ones: the deleted are left out unless asked for.
    assert_eq!(page.token_rows().len(), 50);
    assert!(page.token_rows().iter().all(|(_, s)| s == "active"));
    assert!(page.attrs("a[rel=next]", "href").is_empty());
    assert_eq!(
        page.attrs("#show-deleted", "href"),
        vec!["/profile/api-tokens?status=deleted"]
    );
    // All of them, deleted too, page by page.
    let page = client.get("/profile/api-tokens?status=all").await;
    assert_eq!(page.token_rows().len(), 50);
    assert!(
        page.attrs("a[rel=prev]", "href").is_empty(),
        "nothing newer"
    );
    let older = page.attrs("a[rel=next]", "href");
    let last_shown = page.token_rows().last().unwrap().0;
    assert_eq!(
        older,
        vec![format!(
            "/profile/api-tokens?status=all&before={last_shown}"
        )],
        "keyset: older than the last row shown"
    );
    let second = client.get(&crate::helpers::unescape(&older[0])).await;
    assert_eq!(second.token_rows().len(), 5);
    assert!(second.token_rows().iter().all(|(_, s)| s == "deleted"));
    assert!(
        second.attrs("a[rel=next]", "href").is_empty(),
        "nothing older"
    );
    // Back to newer: the same 50 as the first page.
    let newer = second.attrs("a[rel=prev]", "href");
    let back = client.get(&crate::helpers::unescape(&newer[0])).await;
    assert_eq!(back.token_rows(), page.token_rows());

    let form = client.get("/profile/api-tokens/new").await;
    assert!(form
        .text_of("form-errors")
        .unwrap()
        .contains("50 active API tokens"));
    let refused = client
        .create_token(&[("name", "51st"), ("role", "2"), ("expiration", "never")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text_of("form-errors").is_some());
}

#[tokio::test]
async fn sso_users_are_warned_that_their_tokens_outlive_revocation() {
    let app = TestApp::spawn().await;
    let user = app.acme_member("sso", Role::Engineers).await;
    let client = app.signed_in("sso@acme.test").await;
    assert!(!client
        .get("/profile/api-tokens")
        .await
        .body
        .contains("id=\"sso-warning\""));
    app.db(move |c| {
        diesel::update(schema::users::table.find(user.id))
            .set(schema::users::auth_type.eq("sso"))
            .execute(c)
            .unwrap()
    })
    .await;
    let page = client.get("/profile/api-tokens").await;
    assert!(page.text_of("sso-warning").unwrap().contains("stay active"));
}
