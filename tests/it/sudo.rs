//! Issue 27's "sudo mode": powerful acts ask for the password again when it was given long
//! ago, and what was typed survives the detour.

use reqwest::StatusCode;

use crate::helpers::{Acme, Page, ACME_ADMIN, PASSWORD};

/// The hidden fields of the form `form` on `page`, as (name, value), in order.
fn pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn hidden(page: &Page, form: &str) -> Vec<(String, String)> {
    let sel = format!("{form} input[type=hidden]");
    page.attrs(&sel, "name")
        .into_iter()
        .zip(page.attrs(&sel, "value"))
        .collect()
}

#[tokio::test]
async fn a_stale_session_confirms_the_password_before_powerful_acts_and_keeps_the_form() {
    let Acme { app, admin } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    // Just signed in: no question.
    let fresh = web
        .create_token(&[("name", "fresh"), ("role", "1"), ("expiration", "never")])
        .await;
    assert!(fresh.has("#new-token-value"), "{}", fresh.body);

    app.clock().advance(time::Duration::minutes(16));
    // A token with less power doesn't ask.
    let weekly = web
        .create_token(&[("name", "weekly"), ("role", "2"), ("expiration", "7d")])
        .await;
    assert!(weekly.has("#new-token-value"));
    // An Administrators token asks, makes nothing, and carries the form.
    let asked = web
        .create_token(&[
            ("name", "CI <deploys> & more"),
            ("description", "for the robot"),
            ("role", "1"),
            ("expiration", "never"),
        ])
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.has("#sudo-form") && !asked.has("#new-token-value"));
    let carried = hidden(&asked, "#sudo-form");
    assert!(
        carried.contains(&("carry.name".into(), "CI <deploys> & more".into())),
        "{carried:?}"
    );
    assert!(carried.contains(&("carry.description".into(), "for the robot".into())));
    assert!(carried.contains(&("action".into(), "/profile/api-tokens".into())));
    let with = |password: &str| {
        let mut form: Vec<(String, String)> = carried.clone();
        form.push(("password".into(), password.into()));
        form
    };

    let wrong = web.post("/sudo", &pairs(&with("not my password"))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.has("#error-summary-sudo"));
    let mut again = hidden(&wrong, "#sudo-form");
    let mut before = carried.clone();
    again.sort();
    before.sort();
    assert_eq!(
        again, before,
        "a refused confirmation still carries the form"
    );
    // Only the powerful forms may be continued.
    let mut elsewhere = with(PASSWORD);
    for (k, v) in elsewhere.iter_mut() {
        if k == "action" {
            *v = "/logout".into();
        }
    }
    assert_eq!(
        web.post("/sudo", &pairs(&elsewhere)).await.status,
        StatusCode::BAD_REQUEST
    );
    let ok = web.post("/sudo", &pairs(&with(PASSWORD))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        ok.attrs("#sudo-continue", "action"),
        vec!["/profile/api-tokens"]
    );
    let go_on = hidden(&ok, "#sudo-continue");
    assert!(
        go_on.contains(&("name".into(), "CI <deploys> & more".into())),
        "{go_on:?}"
    );
    let made = web.post("/profile/api-tokens", &pairs(&go_on)).await;
    assert!(made.has("#new-token-value"), "{}", made.body);
    assert_eq!(
        app.events_of(admin.account_id, "user.reauthenticated")
            .await
            .len(),
        1
    );
    // Confirmed: the next powerful act within the window goes straight through.
    let another = web
        .create_token(&[
            ("name", "another admin"),
            ("role", "1"),
            ("expiration", "never"),
        ])
        .await;
    assert!(another.has("#new-token-value"));

    // Later, a role change asks too (and the SCIM token, and the policies).
    app.clock().advance(time::Duration::minutes(16));
    let eng = app
        .acme_member("eng", apitokens::domain::Role::Engineers)
        .await;
    let role = web
        .post_from(
            "/users",
            &format!("/users/{}/role", eng.id),
            &[("role", "2")],
        )
        .await;
    assert!(role.has("#sudo-form"), "{}", role.body);
    for (from, action) in [
        ("/users", "/users/scim-token"),
        ("/profile/api-tokens/policy", "/profile/api-tokens/policy"),
    ] {
        let page = web.post_from(from, action, &[]).await;
        assert!(page.has("#sudo-form"), "{action}");
    }
}
