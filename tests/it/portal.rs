//! Issue 32 in a real headless Chromium: passwords changed and forgotten, a delete that says
//! what it takes, refused forms in view with focus on their summary, the policy shown before
//! it bites, and tables that read on a phone (no word broken mid-way, actions in view).

use std::time::Duration;

use apitokens::domain::input::{
    Email, Expiry, NewPassword, PersonName, TokenDescription, TokenName,
};
use apitokens::domain::{Role, TokenId};
use apitokens::repo::User;
use apitokens::services::tokens::{create, CreateOutcome, NewTokenRequest};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use crate::browser::{
    axe_source, axe_violations, check_page, click_and_load, screenshot, sign_in, sign_out,
    start_browser,
};
use crate::helpers::{Acme, TestApp, ACME_ADMIN};
use crate::passwords::{link_in, outbox};

const NEW_PASSWORD: &str = "a fresh portal passphrase";

/// A token of `user` made through the service (with `parent`: as if through the API with it).
async fn make_token(
    app: &TestApp,
    user: &User,
    name: &str,
    expiry_days: Option<i64>,
    parent: Option<i64>,
) -> i64 {
    let actor = apitokens::services::Actor::of_user(user);
    let now = app.clock().now();
    let req = NewTokenRequest {
        name: TokenName::parse(name).unwrap(),
        description: TokenDescription::parse(None).unwrap(),
        role: Role::Users,
        expiry: match expiry_days {
            Some(d) => Expiry::at(now + time::Duration::days(d), now).unwrap(),
            None => Expiry::NEVER,
        },
        form_id: None,
        parent: parent.map(TokenId::new),
        allowed_ips: vec![],
        allowed_routes: vec![],
        rate_limit: None,
        usage_limit: None,
    };
    match app.db(move |c| create(c, &actor, &req, now)).await.unwrap() {
        CreateOutcome::Created { token, .. } => token.id.get(),
        CreateOutcome::AlreadyCreated { .. } => unreachable!(),
    }
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn type_into(client: &Client, id: &str, text: &str) {
    let field = client.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Waits (bounded, 5 s) until the element with `id` has the focus, then checks that it is
/// wholly inside the viewport: the person sees why the form was refused without scrolling.
async fn summary_has_focus_in_view(client: &Client, id: &str) {
    let mut focused = Value::Null;
    for _ in 0..100 {
        focused = js(
            client,
            "return document.activeElement && document.activeElement.id",
        )
        .await;
        if focused == json!(id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(focused, json!(id), "the error summary takes the focus");
    let inside = js(
        client,
        &format!(
            "const r = document.getElementById('{id}').getBoundingClientRect();
             return [r.top, r.bottom, innerHeight, r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth]"
        ),
    )
    .await;
    assert_eq!(inside[3], json!(true), "{id} in the viewport: {inside}");
}

#[tokio::test]
async fn a_password_is_changed_then_forgotten_and_reset_in_a_real_browser() {
    let Some(axe) = axe_source() else { return };
    let Acme { app, .. } = Acme::start().await;
    let Some(browser) = start_browser().await else {
        return;
    };
    let client = &browser.client;
    let mut problems = vec![];
    sign_in(client, &app.base, ACME_ADMIN).await;
    client.goto(&format!("{}/profile", app.base)).await.unwrap();
    // A wrong current password: the summary in view, with the focus, linking to the field.
    type_into(client, "current_password", "not the password").await;
    type_into(client, "new_password", NEW_PASSWORD).await;
    type_into(client, "confirm_password", NEW_PASSWORD).await;
    click_and_load(client, "#change-password").await;
    summary_has_focus_in_view(client, "error-summary-password").await;
    assert!(text_of(client, "#error-summary-password")
        .await
        .contains("current password is wrong"));
    check_page(client, &axe, "profile-password-refused", &mut problems).await;
    type_into(client, "current_password", crate::helpers::PASSWORD).await;
    type_into(client, "new_password", NEW_PASSWORD).await;
    type_into(client, "confirm_password", NEW_PASSWORD).await;
    click_and_load(client, "#change-password").await;
    let after = text_of(client, "main").await;
    assert!(after.contains("password is changed"), "{after}");
    sign_out(client).await;
    // Sign in with the new one.
    type_into(client, "email", ACME_ADMIN).await;
    type_into(client, "password", NEW_PASSWORD).await;
    click_and_load(client, "#sign-in").await;
    assert_eq!(
        client.current_url().await.unwrap().path(),
        "/profile/api-tokens"
    );
    sign_out(client).await;

    // Forgot it: an unknown address and a known one get the same page.
    click_and_load(client, "#forgot-password").await;
    check_page(client, &axe, "forgot-password", &mut problems).await;
    type_into(client, "email", "nobody@acme.test").await;
    click_and_load(client, "#send-reset").await;
    let unknown = text_of(client, "#main")
        .await
        .replace("nobody@acme.test", "ADDRESS");
    check_page(client, &axe, "forgot-password-sent", &mut problems).await;
    client
        .goto(&format!("{}/forgot-password", app.base))
        .await
        .unwrap();
    type_into(client, "email", ACME_ADMIN).await;
    click_and_load(client, "#send-reset").await;
    let known = text_of(client, "#main")
        .await
        .replace(ACME_ADMIN, "ADDRESS");
    assert_eq!(
        unknown, known,
        "the same answer whether or not the address exists"
    );
    // The mails so far: "changed", then the reset link.
    let mails = outbox(app.dir.path(), 2).await;
    let link = link_in(&mails[1]);
    client.goto(&format!("{}{link}", app.base)).await.unwrap();
    check_page(client, &axe, "reset-password", &mut problems).await;
    type_into(client, "password", "a third password here").await;
    type_into(client, "confirm", "a third password here").await;
    click_and_load(client, "#set-password").await;
    assert!(text_of(client, "main")
        .await
        .contains("Your password is set"));
    type_into(client, "email", ACME_ADMIN).await;
    type_into(client, "password", "a third password here").await;
    click_and_load(client, "#sign-in").await;
    assert_eq!(
        client.current_url().await.unwrap().path(),
        "/profile/api-tokens"
    );
    // The link works once.
    client.goto(&format!("{}{link}", app.base)).await.unwrap();
    assert!(text_of(client, "main").await.contains("not valid any more"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_delete_dialog_of_a_parent_names_its_children_and_they_end_with_it() {
    let Some(axe) = axe_source() else { return };
    let Acme { app, admin } = Acme::start().await;
    let parent = make_token(&app, &admin, "Deploy robot", None, None).await;
    let mut children = vec![];
    for i in 0..3 {
        children.push(
            make_token(
                &app,
                &admin,
                &format!("made by robot {i}"),
                None,
                Some(parent),
            )
            .await,
        );
    }
    let Some(browser) = start_browser().await else {
        return;
    };
    let client = &browser.client;
    let mut problems = vec![];
    sign_in(client, &app.base, ACME_ADMIN).await;
    client
        .find(Locator::Css(&format!("#actions-{parent}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_and_load(
        client,
        &format!("tr[data-token-id=\"{parent}\"] .delete-token"),
    )
    .await;
    let ends = text_of(client, "#delete-ends").await;
    assert!(
        ends.contains("also ends 3 tokens created with it"),
        "{ends}"
    );
    check_page(client, &axe, "delete-parent-dialog", &mut problems).await;
    click_and_load(client, "#confirm-delete").await;
    let flash = text_of(client, "#flash").await;
    assert!(
        flash.contains("and with it 3 tokens created with it"),
        "{flash}"
    );
    // The link lists them: ended.
    client
        .goto(&format!(
            "{}/profile/api-tokens?created_with={parent}",
            app.base
        ))
        .await
        .unwrap();
    let mut shown = crate::browser::rows(client).await;
    shown.sort();
    let expected: Vec<(i64, String)> = children
        .iter()
        .map(|id| (*id, "deleted".to_string()))
        .collect();
    assert_eq!(shown, expected);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn refused_forms_on_the_token_page_come_back_in_view_and_the_policy_shows_up_front() {
    let Some(axe) = axe_source() else { return };
    let Acme { app, admin } = Acme::start().await;
    let never = make_token(&app, &admin, "Old never-expiring token", None, None).await;
    // Made before the policy below, to be used once and then fenced by an allowlist.
    let token = app.token_for(&admin, Role::Users).await;
    let Some(browser) = start_browser().await else {
        return;
    };
    let client = &browser.client;
    let mut problems = vec![];
    sign_in(client, &app.base, ACME_ADMIN).await;
    // Without a policy: presets, 30 days chosen, "Never" offered, the picker bounded at 10 years.
    client
        .goto(&format!("{}/profile/api-tokens/new", app.base))
        .await
        .unwrap();
    let radios = js(client, "return [...document.querySelectorAll('input[name=expiration]')].map(r => r.value + (r.checked ? '*' : ''))").await;
    assert_eq!(radios, json!(["7d", "30d*", "60d", "90d", "never", "date"]));
    let today = app.clock().now().date();
    let max = js(client, "return document.getElementById('exp_date').max").await;
    assert_eq!(max, json!((today + time::Duration::days(3650)).to_string()));

    // A policy of 45 days: no "Never", 45 offered as the most, 30 still the default, the picker
    // stops at the last allowed day.
    let api = app.api_as(&admin, Role::Administrators).await;
    let set = api
        .send(
            reqwest::Method::PUT,
            &format!("/iam/clients/{}/token-policy", admin.account_id),
            Some(json!({"max_lifetime_days": 45, "expiry_required": true})),
        )
        .await;
    assert_eq!(set.status, reqwest::StatusCode::OK, "{}", set.json);
    client
        .goto(&format!("{}/profile/api-tokens/new", app.base))
        .await
        .unwrap();
    let radios = js(client, "return [...document.querySelectorAll('input[name=expiration]')].map(r => r.value + (r.checked ? '*' : ''))").await;
    assert_eq!(radios, json!(["7d", "30d*", "45d", "date"]));
    assert!(client.find(Locator::Id("expiration-never")).await.is_err());
    let max = js(client, "return document.getElementById('exp_date').max").await;
    assert_eq!(max, json!((today + time::Duration::days(45)).to_string()));
    assert!(text_of(client, "#policy-hint").await.contains("45 days"));
    check_page(client, &axe, "create-under-policy", &mut problems).await;
    // The default is accepted as it is.
    type_into(client, "name", "Within the policy").await;
    click_and_load(client, "#create-submit").await;
    assert!(client.find(Locator::Id("new-token-value")).await.is_ok());
    click_and_load(client, "#token-copied").await;

    // The never-expiring token's page: rotating needs a date now, and says so.
    client.set_window_size(1280, 800).await.unwrap();
    client
        .goto(&format!("{}/profile/api-tokens/{never}", app.base))
        .await
        .unwrap();
    assert!(text_of(client, "#rotate-required")
        .await
        .contains("required"));
    let date_max = js(
        client,
        "return document.getElementById('rotate_exp_date').max",
    )
    .await;
    assert_eq!(
        date_max,
        json!((today + time::Duration::days(45)).to_string())
    );
    // A date past the policy (typed, as a browser without a picker lets one): refused, and the
    // refusal is where the eye is, with the focus on its summary.
    let late = (today + time::Duration::days(100)).to_string();
    js(client, &format!("const d = document.getElementById('rotate_exp_date'); d.removeAttribute('max'); d.removeAttribute('required'); d.value = '{late}';")).await;
    click_and_load(client, "#rotate-token").await;
    summary_has_focus_in_view(client, "error-summary-rotate").await;
    assert!(text_of(client, "#error-summary-rotate")
        .await
        .contains("45 days"));
    check_page(client, &axe, "token-page-rotate-refused", &mut problems).await;
    // A bad allowlist: the same.
    type_into(client, "allowed_ips", "300.1.2.3").await;
    click_and_load(client, "#save-allowlist").await;
    summary_has_focus_in_view(client, "error-summary-allowlist").await;
    // A list that leaves out where the token was last used: asked in a dialog first.
    let used = crate::helpers::token_id(&token);
    assert_eq!(
        app.api(&format!("APIKey {token}"))
            .get("/iam/auth/check")
            .await
            .status,
        reqwest::StatusCode::NO_CONTENT
    );
    // The use is recorded by the once-a-second flush: wait (bounded) until it is.
    let mut recorded = false;
    for _ in 0..200 {
        let row = app
            .db(move |c| apitokens::repo::Token::find(c, used))
            .await
            .unwrap()
            .unwrap();
        if row.last_used_ip.is_some() {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recorded, "the use was recorded");
    client
        .goto(&format!("{}/profile/api-tokens/{used}", app.base))
        .await
        .unwrap();
    type_into(client, "allowed_ips", "198.51.100.0/24").await;
    click_and_load(client, "#save-allowlist").await;
    assert!(text_of(client, "#allowlist-warning")
        .await
        .contains("last used from 127.0.0.1"));
    check_page(client, &axe, "allowlist-confirm-dialog", &mut problems).await;
    click_and_load(client, "#cancel-allowlist").await;
    assert_eq!(text_of(client, "#token-allowed").await, "Any");
    client
        .goto(&format!("{}/profile/api-tokens/{never}", app.base))
        .await
        .unwrap();
    // A name too long: the same.
    type_into(client, "name", "").await;
    click_and_load(client, "#save-token").await;
    summary_has_focus_in_view(client, "error-summary-edit").await;
    // Its link leads to the field.
    client
        .find(Locator::Css("#error-summary-edit a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let at = js(client, "return location.hash").await;
    assert_eq!(at, json!("#name"));

    // Rotating with no grace asks first, in a dialog like delete's; Cancel changes nothing.
    let date = (today + time::Duration::days(20)).to_string();
    client
        .goto(&format!("{}/profile/api-tokens/{never}", app.base))
        .await
        .unwrap();
    js(client, &format!("document.getElementById('grace').value = '0'; document.getElementById('rotate_exp_date').value = '{date}';")).await;
    click_and_load(client, "#rotate-token").await;
    assert!(text_of(client, "#rotate-dialog")
        .await
        .contains("stops working the moment"));
    check_page(client, &axe, "rotate-confirm-dialog", &mut problems).await;
    click_and_load(client, "#confirm-rotate").await;
    assert!(client.find(Locator::Id("new-token-value")).await.is_ok());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Words of the cells matching `cells` that are broken across lines. Only a word longer than
/// any word of a language, more than 24 characters (an e-mail address, an id), may break:
/// every other one must fit the width its column gives it.
const BROKEN_WORDS: &str = r#"
const broken = [];
for (const cell of document.querySelectorAll(arguments[0])) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const re = /\S+/g;
    let m;
    while ((m = re.exec(node.textContent))) {
      if (m[0].length > 24) continue;
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (lines.size > 1) broken.push(`"${m[0]}" in ${cell.dataset.label || cell.className || 'a cell'}`);
    }
  }
}
return broken;
"#;

/// Row actions whose box is not wholly inside the window (they would need a sideways scroll).
const HIDDEN_ACTIONS: &str = r#"
return [...document.querySelectorAll(arguments[0])]
  .map(e => [e, e.getBoundingClientRect()])
  .filter(([e, r]) => r.width === 0 || r.left < 0 || r.right > innerWidth)
  .map(([e, r]) => `${e.className || e.tagName} at ${Math.round(r.left)}..${Math.round(r.right)}`);
"#;

#[tokio::test]
async fn the_tables_read_on_a_phone_with_no_word_broken_and_every_action_in_view() {
    let Some(axe) = axe_source() else { return };
    let Acme { app, .. } = Acme::start().await;
    // The names the review saw broken.
    let demo = {
        let input = apitokens::services::people::accounts::AddUser {
            account: "Acme".into(),
            email: Email::parse("demo.administrator@acme.test").unwrap(),
            name: PersonName::parse("Demo Administrator").unwrap(),
            role: Role::Administrators,
            password: NewPassword::parse(crate::helpers::PASSWORD).unwrap(),
        };
        let now = app.clock().now();
        app.db(move |c| apitokens::services::people::accounts::add_user(c, &input, now))
            .await
            .unwrap()
    };
    let colleague = app
        .add_user(
            "Acme",
            "a.very.long.address.of.a.colleague.with.many.parts@subdomain.example-company.test",
            Role::Engineers,
        )
        .await;
    for name in [
        "Phone token",
        "Nightly backup of the production database",
        "CI",
    ] {
        make_token(&app, &demo, name, Some(3), None).await;
    }
    for i in 0..12 {
        make_token(
            &app,
            &colleague,
            &format!("Colleague's token number {i}"),
            None,
            None,
        )
        .await;
    }
    let Some(browser) = start_browser().await else {
        return;
    };
    let client = &browser.client;
    let mut problems = vec![];
    sign_in(client, &app.base, "demo.administrator@acme.test").await;
    for (width, height) in [(1280, 1000), (390, 844)] {
        client.set_window_size(width, height).await.unwrap();
        for (page, path, cells, actions) in [
            (
                "tokens",
                "/profile/api-tokens",
                "#tokens-table td",
                "#tokens-table .actions summary",
            ),
            (
                "users",
                "/users",
                "#users-table td",
                "#users-table .user-actions a, #users-table .change-role",
            ),
        ] {
            client.goto(&format!("{}{path}", app.base)).await.unwrap();
            let broken: Vec<String> = serde_json::from_value(
                client
                    .execute(BROKEN_WORDS, vec![json!(cells)])
                    .await
                    .unwrap(),
            )
            .unwrap();
            for b in broken {
                problems.push(format!("{page} at {width} px: {b} is broken mid-word"));
            }
            let hidden: Vec<String> = serde_json::from_value(
                client
                    .execute(HIDDEN_ACTIONS, vec![json!(actions)])
                    .await
                    .unwrap(),
            )
            .unwrap();
            for h in hidden {
                problems.push(format!(
                    "{page} at {width} px: the action {h} is out of view"
                ));
            }
            let fits = js(
                client,
                "return document.documentElement.scrollWidth <= innerWidth",
            )
            .await;
            if fits != json!(true) {
                problems.push(format!("{page} at {width} px: the page scrolls sideways"));
            }
            js(
                client,
                &format!("document.getElementById('{page}-table').scrollIntoView()"),
            )
            .await;
            screenshot(client, &format!("issue32-{page}-{width}")).await;
            for v in axe_violations(client, &axe).await {
                problems.push(format!("{page} at {width} px: {v}"));
            }
        }
    }
    // The SCIM token's dialog.
    client.goto(&format!("{}/users", app.base)).await.unwrap();
    click_and_load(client, "#new-scim-token").await;
    assert!(client
        .find(Locator::Css("dialog#scim-dialog #copy-token"))
        .await
        .is_ok());
    check_page(client, &axe, "scim-token-dialog", &mut problems).await;
    // The Users table names a count, linked to the person's tokens, not every name.
    client.set_window_size(1280, 1000).await.unwrap();
    client.goto(&format!("{}/users", app.base)).await.unwrap();
    let link = client
        .find(Locator::Css(&format!(
            "tr[data-user-id=\"{}\"] .user-tokens",
            colleague.id
        )))
        .await
        .unwrap();
    assert_eq!(link.text().await.unwrap(), "12 active tokens");
    click_and_load(
        client,
        &format!("tr[data-user-id=\"{}\"] .user-tokens", colleague.id),
    )
    .await;
    assert_eq!(crate::browser::rows(client).await.len(), 12);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
