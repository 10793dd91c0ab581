//! Issue 32's smaller items, each pinned: the icon, one confirmation that says why, SCIM's
//! token in a dialog behind a confirmation, the outbox said as such, a horizon for dates,
//! styled inputs, one order for roles, deleted tokens out of the first page, the inbox named.

use apitokens::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Acme, ACME_ADMIN};

#[tokio::test]
async fn the_icon_is_served_where_browsers_ask_for_it() {
    let Acme { app, .. } = Acme::start().await;
    for path in ["/favicon.ico", "/static/favicon.svg"] {
        let page = app.client().get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(page.headers.get("content-type").unwrap(), "image/svg+xml");
        assert!(page.body.starts_with("<svg"));
    }
    let login = app.client().get("/login").await;
    assert_eq!(
        login.attrs("link[rel=icon]", "href"),
        vec!["/static/favicon.svg"]
    );
}

#[tokio::test]
async fn removing_someone_with_tokens_is_one_confirmation_that_says_so() {
    let Acme { app, .. } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    app.token_for(&eng, Role::Users).await;
    app.token_for(&eng, Role::Users).await;
    let web = app.signed_in(ACME_ADMIN).await;
    let asked = web
        .get(&format!("/users?confirm=remove&user={}", eng.id))
        .await;
    let text = asked.text_of("user-confirm-dialog").unwrap();
    assert!(
        text.contains("their 2 active tokens will stop working"),
        "{text}"
    );
    assert_eq!(
        asked.attrs("#user-confirm-dialog input[name=delete_tokens]", "value"),
        vec!["1"]
    );
    let csrf = asked.input_value("csrf_token").unwrap();
    let done = web
        .post(
            &format!("/users/{}/remove", eng.id),
            &[("csrf_token", &csrf), ("delete_tokens", "1")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let users = web.get("/users").await;
    assert!(!users.has(&format!("tr[data-user-id=\"{}\"]", eng.id)));
    // Someone without tokens: the plain question, no deletion in the form.
    let other = app.acme_member("other", Role::Users).await;
    let plain = web
        .get(&format!("/users?confirm=remove&user={}", other.id))
        .await;
    assert!(!plain.has("#user-confirm-dialog input[name=delete_tokens]"));
}

#[tokio::test]
async fn a_new_scim_token_is_asked_for_then_shown_in_a_dialog_with_copy() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    // The first needs no confirmation: nothing is cut off.
    let first = web.post_from("/users", "/users/scim-token", &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.has("dialog#scim-dialog[open] #scim-token"));
    assert_eq!(
        first.attrs("#copy-token", "data-copy-target"),
        vec!["scim-token"]
    );
    // With one in place, the button leads to a confirmation first.
    let users = web.get("/users").await;
    assert_eq!(
        users.attrs("a#new-scim-token", "href"),
        vec!["/users?confirm=scim-token"]
    );
    let asked = web.get("/users?confirm=scim-token").await;
    assert!(asked
        .text_of("user-confirm-dialog")
        .unwrap()
        .contains("stops working at once"));
    assert_eq!(
        asked.attrs("#user-confirm-dialog form", "action"),
        vec!["/users/scim-token"]
    );
}

#[tokio::test]
async fn an_invitation_written_to_the_outbox_is_not_called_sent() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let added = web
        .post_from(
            "/users",
            "/users",
            &[
                ("name", "Carol"),
                ("email", "carol@acme.test"),
                ("role", "5"),
                ("sign_in", "password"),
            ],
        )
        .await;
    let said = added.text_of("invitation").unwrap();
    assert!(said.contains("written to the outbox folder"), "{said}");
    assert!(!said.contains("was sent to them"), "{said}");
}

#[tokio::test]
async fn dates_past_ten_years_are_refused_with_a_reason_in_the_form_and_the_api() {
    let Acme { app, admin } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let refused = web
        .create_token(&[
            ("name", "typo"),
            ("role", "2"),
            ("expiration", "date"),
            ("exp_date", "9999-12-31"),
        ])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let summary = refused.text_of("form-errors").unwrap();
    assert!(summary.contains("at most 10 years away"), "{summary}");
    assert_eq!(refused.attrs("#form-errors a", "href"), vec!["#exp_date"]);
    let api = app.api_as(&admin, Role::Administrators).await;
    let r = api
        .post(
            &format!("/iam/clients/{}/tokens", admin.account_id),
            json!({"name": "typo", "exp_date": "9999-12-31T00:00:00Z", "client_user": {"role": {"id": 2}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    // A preset is a number of days; one past the horizon or made up is refused.
    for bad in ["3651d", "0d", "-1d", "xd"] {
        let page = web
            .create_token(&[("name", "x"), ("role", "2"), ("expiration", bad)])
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let ok = web
        .create_token(&[("name", "a week"), ("role", "2"), ("expiration", "7d")])
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let t = api
        .get(&format!("/iam/clients/{}/tokens", admin.account_id))
        .await;
    let week = t
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "a week")
        .unwrap();
    let expected = (app.clock().now() + time::Duration::days(7))
        .date()
        .to_string();
    assert!(
        week["exp_date"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{expected}T23:59:59")),
        "{week}"
    );
}

#[tokio::test]
async fn every_text_input_is_typed_so_it_is_styled() {
    let Acme { app, admin } = Acme::start().await;
    let id = crate::helpers::token_id(&app.token_for(&admin, Role::Users).await);
    let web = app.signed_in(ACME_ADMIN).await;
    for path in [
        format!("/profile/api-tokens/{id}"),
        "/activity".into(),
        "/profile/api-tokens/policy".into(),
        "/profile/api-tokens/new".into(),
        "/users".into(),
        "/profile".into(),
    ] {
        let page = web.get(&path).await;
        let untyped = page.attrs("main input:not([type])", "name");
        assert!(
            untyped.is_empty(),
            "{path}: inputs without a type: {untyped:?}"
        );
    }
}

#[tokio::test]
async fn roles_come_in_one_order_with_what_each_may_do() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let filter = web
        .get("/profile/api-tokens")
        .await
        .attrs("#filter-role option", "value");
    let form = web.get("/profile/api-tokens/new").await;
    let offered = form.attrs("#role option", "value");
    assert_eq!(
        filter[1..],
        offered[..],
        "the filter (after \"All roles\") and the form agree"
    );
    let labels = form.texts("#role option");
    assert!(
        labels[0].starts_with("Administrators: everything"),
        "{labels:?}"
    );
    assert_eq!(
        form.attrs("#role option[selected]", "value"),
        vec!["2"],
        "Users by default"
    );
}

#[tokio::test]
async fn the_inbox_is_called_the_inbox_and_points_to_its_settings() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let inbox = web.get("/notifications").await;
    assert_eq!(inbox.text("h1").as_deref(), Some("Inbox"));
    assert_eq!(inbox.text("#notifications-link").as_deref(), Some("Inbox"));
    assert!(inbox
        .attrs("main a", "href")
        .contains(&"/profile/notifications".to_string()));
}

#[tokio::test]
async fn what_a_delete_would_end_is_shown_only_to_who_may_see_the_token() {
    let Acme { app, admin } = Acme::start().await;
    let parent = crate::helpers::token_id(&app.token_for(&admin, Role::Administrators).await);
    app.acme_member("eng", Role::Engineers).await;
    let eng = app.signed_in("eng@acme.test").await;
    // Another person's token: its lineage is not the engineer's to list, or to confirm.
    let page = eng
        .get(&format!("/profile/api-tokens?created_with={parent}"))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let dialog = eng
        .get(&format!("/profile/api-tokens?confirm_delete={parent}"))
        .await;
    assert!(!dialog.has("#delete-dialog"));
}

#[tokio::test]
async fn a_removed_person_gets_no_reset_link() {
    let Acme { app, .. } = Acme::start().await;
    let gone = app.acme_member("gone", Role::Engineers).await;
    let admin = app.signed_in(ACME_ADMIN).await;
    let removed = admin
        .post_from("/users", &format!("/users/{}/remove", gone.id), &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let asked = app
        .client()
        .post_from(
            "/forgot-password",
            "/forgot-password",
            &[("email", "gone@acme.test")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    // The same page as anyone's; and nothing in the outbox, even after the mail would have left.
    let told = app
        .client()
        .post_from(
            "/forgot-password",
            "/forgot-password",
            &[("email", ACME_ADMIN)],
        )
        .await;
    assert_eq!(told.status, StatusCode::OK);
    let mails = crate::passwords::outbox(app.dir.path(), 1).await;
    assert!(mails[0].contains("admin@acme.test") && !mails[0].contains("gone@acme.test"));
}
