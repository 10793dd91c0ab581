//! The portal in a real headless Chromium, driven through WebDriver (chromedriver).
//!
//! Skips with a printed reason when chromedriver is missing on a developer's machine; in CI
//! (`CI` set) a missing browser fails the test instead.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use apitokens::domain::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Acme, ProcessGroup, PASSWORD};

pub(crate) struct Browser {
    pub(crate) client: Client,
    /// chromedriver, ended with every Chromium process it started (they share its group).
    _driver: ProcessGroup,
    _profile: tempfile::TempDir,
}

fn find_binary(env: &str, candidates: &[&str]) -> Option<String> {
    std::env::var(env)
        .ok()
        .into_iter()
        .chain(candidates.iter().map(|s| s.to_string()))
        .find(|p| std::path::Path::new(p).exists())
}

pub(crate) async fn start_browser() -> Option<Browser> {
    start_browser_with(&[]).await
}

/// A browser with extra Chromium flags (e.g. `--force-dark-mode`).
pub(crate) async fn start_browser_with(extra: &[&str]) -> Option<Browser> {
    let driver_path = find_binary(
        "CHROMEDRIVER",
        &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
    );
    let chromium = find_binary(
        "CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let (Some(driver_path), Some(chromium)) = (driver_path, chromium) else {
        if std::env::var_os("CI").is_some() {
            panic!("CI must run the browser suite: install chromium and chromium-driver (apt-get install chromium chromium-driver)");
        }
        eprintln!("SKIPPED browser test: chromium/chromedriver not found (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(driver_path)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
    ]
    .iter()
    .chain(extra)
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args }),
    );
    // chromedriver takes a moment to listen: retry the connection, at most 10 s.
    let url = format!("http://127.0.0.1:{port}");
    let mut last_error = None;
    for _ in 0..100 {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Some(Browser {
                    client,
                    _driver: ProcessGroup(driver),
                    _profile: profile,
                })
            }
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start: {last_error:?}");
}

pub(crate) async fn screenshot(client: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Does `act` (something that loads a new page) and waits, bounded, until the new page is
/// there: the old page's body is marked first, so a page that didn't change can't pass.
pub(crate) async fn and_load<F: std::future::Future<Output = ()>>(
    client: &Client,
    what: &str,
    act: F,
) {
    client
        .execute("document.body.setAttribute('data-old-page', '1')", vec![])
        .await
        .unwrap();
    act.await;
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("body:not([data-old-page])"))
        .await
        .unwrap_or_else(|e| panic!("no new page after {what}: {e}"));
}

/// Clicks something that loads a new page and waits (bounded) until the new page is there.
pub(crate) async fn click_and_load(client: &Client, css: &str) {
    and_load(client, css, async {
        client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    })
    .await;
}

pub(crate) async fn sign_in(client: &Client, base: &str, email: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    client
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(email)
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
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/profile/api-tokens", "signed in as {email}");
}

pub(crate) async fn sign_out(client: &Client) {
    click_and_load(client, "#sign-out").await;
}

/// (id, status) of every row of the table on the current page.
pub(crate) async fn rows(client: &Client) -> Vec<(i64, String)> {
    let mut out = vec![];
    for row in client
        .find_all(Locator::Css("tr[data-token-id]"))
        .await
        .unwrap()
    {
        let id = row
            .attr("data-token-id")
            .await
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        out.push((id, row.attr("data-status").await.unwrap().unwrap()));
    }
    out
}

async fn create_token(client: &Client, name: &str, role: &str, exp_date: Option<&str>) -> String {
    click_and_load(client, "#create-token").await;
    client
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    client
        .find(Locator::Id("description"))
        .await
        .unwrap()
        .send_keys("made in the browser test")
        .await
        .unwrap();
    client
        .find(Locator::Id("role"))
        .await
        .unwrap()
        .select_by_value(role)
        .await
        .unwrap();
    if let Some(date) = exp_date {
        let date_field = client.find(Locator::Id("exp-date-field")).await.unwrap();
        assert!(
            !date_field.is_displayed().await.unwrap(),
            "the date field is hidden until chosen"
        );
        client
            .find(Locator::Id("expiration-date"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(
            date_field.is_displayed().await.unwrap(),
            "choosing a date shows the field"
        );
        // Date inputs take keys in the browser's locale format; set the value directly.
        client
            .execute(
                "document.getElementById('exp_date').value = arguments[0]",
                vec![json!(date)],
            )
            .await
            .unwrap();
        screenshot(client, "create-form").await;
    }
    click_and_load(client, "#create-submit").await;
    let value = client
        .find(Locator::Id("new-token-value"))
        .await
        .expect("the token is revealed")
        .text()
        .await
        .unwrap();
    let dialog = client.find(Locator::Id("token-dialog")).await.unwrap();
    assert!(dialog.is_displayed().await.unwrap());
    let ok = client.find(Locator::Id("token-copied")).await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "OK, I've copied token");
    value
}

#[tokio::test]
async fn tokens_are_created_shown_once_filtered_and_deleted_in_a_real_browser() {
    let Some(browser) = start_browser().await else {
        return;
    };
    let c = &browser.client;
    let Acme { app, .. } = Acme::start().await;
    app.acme_member("user", Role::Users).await;
    let base = app.base.clone();
    let exp = (app.clock().now() + time::Duration::days(20))
        .date()
        .to_string();

    // The administrator creates a token with an expiration date and reads it from the modal.
    sign_in(c, &base, "admin@acme.test").await;
    assert!(c.find(Locator::Id("empty-state")).await.is_ok());
    let admin_token = create_token(c, "Deploys", "5", Some(&exp)).await;
    screenshot(c, "token-modal").await;
    let (id, secret) = admin_token.split_once('_').unwrap();
    let admin_id: i64 = id.parse().unwrap();
    assert_eq!(secret.len(), 64);
    click_and_load(c, "#token-copied").await;
    assert!(
        c.find(Locator::Id("token-dialog")).await.is_err(),
        "the modal is gone"
    );
    assert!(
        !c.source().await.unwrap().contains(secret),
        "the secret is not on the page any more"
    );
    assert_eq!(rows(c).await, vec![(admin_id, "active".to_string())]);
    let row_text = c
        .find(Locator::Css(&format!("tr[data-token-id='{admin_id}']")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        row_text.contains(&format!("{exp} 23:59 UTC")) && row_text.contains("Engineers"),
        "{row_text}"
    );
    sign_out(c).await;

    // A plain user may only give the Users role and sees only their own token.
    sign_in(c, &base, "user@acme.test").await;
    click_and_load(c, "#create-token").await;
    let options = c.find_all(Locator::Css("#role option")).await.unwrap();
    assert_eq!(options.len(), 1);
    assert_eq!(
        options[0].attr("value").await.unwrap().as_deref(),
        Some("2")
    );
    c.goto(&format!("{base}/profile/api-tokens")).await.unwrap();
    let user_token = create_token(c, "Purge cache", "2", None).await;
    let user_id: i64 = user_token.split_once('_').unwrap().0.parse().unwrap();
    click_and_load(c, "#token-copied").await;
    assert_eq!(rows(c).await, vec![(user_id, "active".to_string())]);
    sign_out(c).await;

    // The administrator sees both, filters by role and status, and deletes the user's token.
    sign_in(c, &base, "admin@acme.test").await;
    assert_eq!(
        rows(c).await,
        vec![(user_id, "active".into()), (admin_id, "active".into())]
    );
    c.find(Locator::Id("filter-role"))
        .await
        .unwrap()
        .select_by_value("2")
        .await
        .unwrap();
    click_and_load(c, "#apply-filters").await;
    assert_eq!(rows(c).await, vec![(user_id, "active".into())]);
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap()
            .contains("role=2"),
        "filters live in the address"
    );
    screenshot(c, "token-list-filtered").await;

    c.find(Locator::Css(&format!(
        "tr[data-token-id='{user_id}'] summary"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let delete_link = c
        .find(Locator::Css(&format!(
            "tr[data-token-id='{user_id}'] .delete-token"
        )))
        .await
        .unwrap();
    assert!(
        delete_link.is_displayed().await.unwrap(),
        "the ⋮ menu opens"
    );
    click_and_load(c, &format!("tr[data-token-id='{user_id}'] .delete-token")).await;
    let confirm = c.find(Locator::Id("delete-dialog")).await.unwrap();
    assert!(confirm
        .text()
        .await
        .unwrap()
        .contains("This action cannot be undone"));
    screenshot(c, "delete-confirm").await;
    click_and_load(c, "#confirm-delete").await;
    assert!(c
        .find(Locator::Id("flash"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("was deleted"));
    // Back on the list with the role filter kept; the deleted token is left out of it.
    let url = c.current_url().await.unwrap();
    assert!(url.query().unwrap_or("").contains("role="), "{url}");
    assert_eq!(rows(c).await, vec![]);

    c.goto(&format!("{base}/profile/api-tokens")).await.unwrap();
    c.find(Locator::Id("filter-status"))
        .await
        .unwrap()
        .select_by_value("active")
        .await
        .unwrap();
    click_and_load(c, "#apply-filters").await;
    assert_eq!(rows(c).await, vec![(admin_id, "active".into())]);
    c.goto(&format!("{base}/profile/api-tokens")).await.unwrap();
    assert_eq!(rows(c).await, vec![(admin_id, "active".into())]);
    c.goto(&format!("{base}/profile/api-tokens?status=all"))
        .await
        .unwrap();
    assert_eq!(
        rows(c).await,
        vec![(user_id, "deleted".into()), (admin_id, "active".into())]
    );
    screenshot(c, "token-list").await;
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn the_expiry_badge_notifications_and_preferences_in_a_real_browser() {
    let Some(browser) = start_browser().await else {
        return;
    };
    let c = &browser.client;
    let Acme { app, .. } = Acme::start().await;
    let base = app.base.clone();
    let soon = (app.clock().now() + time::Duration::days(10))
        .date()
        .to_string();

    sign_in(c, &base, "admin@acme.test").await;
    assert!(
        c.find(Locator::Id("api-tokens-badge")).await.is_err(),
        "no badge without expiring tokens"
    );
    let token = create_token(c, "Nightly purge", "2", Some(&soon)).await;
    let id: i64 = token.split_once('_').unwrap().0.parse().unwrap();
    click_and_load(c, "#token-copied").await;
    assert!(
        c.find(Locator::Id("api-tokens-badge")).await.is_err(),
        "10 days out: no badge yet"
    );

    // Four days later the token is inside its 7-day window: badge, highlight, notice.
    app.clock().advance(time::Duration::days(4));
    let (recorded, _) = app.state.sweep(app.clock().now()).await.unwrap();
    assert_eq!(recorded, 1);
    sign_in(c, &base, "admin@acme.test").await;
    let badge = c
        .find(Locator::Id("api-tokens-badge"))
        .await
        .expect("the badge shows");
    assert_eq!(
        badge.attr("title").await.unwrap().as_deref(),
        Some("1 token expires within 7 days")
    );
    let row = c
        .find(Locator::Css(&format!("tr[data-token-id='{id}']")))
        .await
        .unwrap();
    assert_eq!(
        row.attr("data-expiring-soon").await.unwrap().as_deref(),
        Some("true")
    );
    screenshot(c, "expiring-badge").await;
    click_and_load(c, "#show-expiring").await;
    assert_eq!(rows(c).await, vec![(id, "active".to_string())]);

    assert_eq!(
        c.find(Locator::Id("unread-count"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "1"
    );
    click_and_load(c, "#notifications-link").await;
    let item = c.find(Locator::Css("#notification-list li")).await.unwrap();
    assert!(item
        .text()
        .await
        .unwrap()
        .contains("\"Nightly purge\" expires in 7 days"));
    screenshot(c, "notifications").await;
    click_and_load(c, ".mark-read").await;
    assert!(
        c.find(Locator::Id("unread-count")).await.is_err(),
        "read: no unread count"
    );
    assert_eq!(
        c.find(Locator::Css("#notification-list li"))
            .await
            .unwrap()
            .attr("data-unread")
            .await
            .unwrap()
            .as_deref(),
        Some("false")
    );

    // Profile → Notifications: the e-mail preference, on by default, turned off.
    c.goto(&format!("{base}/profile/notifications"))
        .await
        .unwrap();
    let checkbox = c.find(Locator::Id("token_expiry_email")).await.unwrap();
    assert_eq!(
        checkbox.prop("checked").await.unwrap().as_deref(),
        Some("true")
    );
    checkbox.click().await.unwrap();
    click_and_load(c, "#save-notifications").await;
    let checkbox = c.find(Locator::Id("token_expiry_email")).await.unwrap();
    assert_eq!(
        checkbox.prop("checked").await.unwrap().as_deref(),
        Some("false")
    );
    assert!(c
        .find(Locator::Id("flash"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("no more e-mails"));
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_administrator_adds_a_colleague_and_deals_with_their_token_in_one_step() {
    let Some(browser) = start_browser().await else {
        return;
    };
    let c = &browser.client;
    let Acme { app, .. } = Acme::start().await;
    let base = app.base.clone();

    // The Administrator adds a colleague and gets a one-time set-password link.
    sign_in(c, &base, "admin@acme.test").await;
    click_and_load(c, "#nav-users").await;
    c.find(Locator::Id("new-user-name"))
        .await
        .unwrap()
        .send_keys("Colleague")
        .await
        .unwrap();
    c.find(Locator::Id("new-user-email"))
        .await
        .unwrap()
        .send_keys("colleague@acme.test")
        .await
        .unwrap();
    c.find(Locator::Id("new-user-role"))
        .await
        .unwrap()
        .select_by_value("5")
        .await
        .unwrap();
    click_and_load(c, "#add-user").await;
    let link = c
        .find(Locator::Id("setup-link"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    screenshot(c, "users-added").await;
    sign_out(c).await;

    // The colleague sets a password, signs in and creates an Engineers token.
    // Tests bind port 0, so the configured base URL has no port: aim the link at this server.
    let link = format!("{base}{}", link.split_once("127.0.0.1").unwrap().1);
    c.goto(&link).await.unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Id("confirm"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click_and_load(c, "#set-password").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    sign_in(c, &base, "colleague@acme.test").await;
    let token = create_token(c, "Colleague's deploys", "5", None).await;
    click_and_load(c, "#token-copied").await;
    sign_out(c).await;

    // The Administrator can't demote the colleague while that token exists, and does it in one step.
    sign_in(c, &base, "admin@acme.test").await;
    click_and_load(c, "#nav-users").await;
    let colleague_row = {
        let mut found = None;
        for r in c.find_all(Locator::Css("tr[data-user-id]")).await.unwrap() {
            if r.text().await.unwrap().contains("colleague@acme.test") {
                found = Some(r.attr("data-user-id").await.unwrap().unwrap());
            }
        }
        format!(
            "tr[data-user-id='{}']",
            found.expect("the colleague is listed")
        )
    };

    c.find(Locator::Css(&format!("{colleague_row} select[name=role]")))
        .await
        .unwrap()
        .select_by_value("2")
        .await
        .unwrap();
    click_and_load(c, &format!("{colleague_row} .change-role")).await;
    let refusal = c.find(Locator::Id("refusal")).await.expect("refused");
    assert!(refusal
        .text()
        .await
        .unwrap()
        .contains("Colleague's deploys"));
    screenshot(c, "users-refusal").await;
    click_and_load(c, "#delete-and-continue").await;
    assert!(c
        .find(Locator::Id("flash"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("The role is now Users"));
    let api = app.api(&format!("APIKey {token}"));
    assert_eq!(
        api.get("/iam/auth/check").await.status,
        reqwest::StatusCode::UNAUTHORIZED
    );

    // Removing someone with an active token: one confirmation that says so and deletes it too.
    let id: i64 = colleague_row.split('\'').nth(1).unwrap().parse().unwrap();
    let colleague = app
        .db(move |conn| apitokens::repo::User::find(conn, id))
        .await
        .unwrap()
        .unwrap();
    app.token_for(&colleague, Role::Users).await;
    c.refresh().await.unwrap();
    click_and_load(c, &format!("{colleague_row} .remove-user")).await;
    let confirm = c
        .find(Locator::Id("user-confirm-dialog"))
        .await
        .expect("asks first");
    let asked = confirm.text().await.unwrap();
    assert!(asked.contains("Remove Colleague?"), "{asked}");
    assert!(
        asked.contains("their 1 active token will stop working"),
        "{asked}"
    );
    click_and_load(c, "#confirm-user-action").await;
    assert!(
        c.find(Locator::Css(&colleague_row)).await.is_err(),
        "removed"
    );
    let events = c
        .find(Locator::Id("events"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        events.contains("Removed Colleague")
            && events.contains("Changed the role of colleague@acme.test")
    );
    screenshot(c, "users").await;
    browser.client.clone().close().await.unwrap();
}

// ---- Accessibility, keyboard, phone width and dark theme ----

/// axe-core's script (npm, pinned in tests/axe). Missing: skip with a reason on a laptop,
/// fail in CI.
pub(crate) fn axe_source() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/axe/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI must run axe-core: npm ci --prefix tests/axe")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED accessibility checks: run `npm ci --prefix tests/axe` to get axe-core"
            );
            None
        }
    }
}

/// Runs axe-core on the current page; the violations, one line each (empty: none).
pub(crate) async fn axe_violations(client: &Client, axe: &str) -> Vec<String> {
    client.execute(axe, vec![]).await.expect("axe-core loads");
    let found = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               axe.run(document, { resultTypes: ["violations"] })
                 .then(r => done(r.violations.flatMap(v => v.nodes.map(n =>
                     `${v.id} (${v.impact}): ${n.target.join(" ")}: ${n.failureSummary.replace(/\s+/g, " ")}`))))
                 .catch(e => done(["axe failed: " + e]));"#,
            vec![],
        )
        .await
        .expect("axe-core runs");
    serde_json::from_value(found).unwrap()
}

/// The page is no wider than the window (nothing scrolls sideways).
pub(crate) async fn page_fits(client: &Client) -> (i64, i64) {
    let v = client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await
        .unwrap();
    (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
}

/// Checks the current page at desktop width and at 390 px: zero axe violations, no sideways
/// scrolling on the phone, and a screenshot of each.
pub(crate) async fn check_page(client: &Client, axe: &str, name: &str, problems: &mut Vec<String>) {
    client.set_window_size(1280, 1000).await.unwrap();
    for v in axe_violations(client, axe).await {
        problems.push(format!("{name} (desktop): {v}"));
    }
    screenshot(client, &format!("{name}-desktop")).await;
    client.set_window_size(390, 844).await.unwrap();
    let (scroll, inner) = page_fits(client).await;
    if scroll > inner {
        let wide = client
            .execute(
                "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))",
                vec![],
            )
            .await
            .unwrap();
        problems.push(format!(
            "{name} (390 px): the page is {scroll} px wide in a {inner} px window: {wide}"
        ));
    }
    for v in axe_violations(client, axe).await {
        problems.push(format!("{name} (390 px): {v}"));
    }
    screenshot(client, &format!("{name}-390")).await;
    client.set_window_size(1280, 1000).await.unwrap();
}

/// Every page, dialog and error state, in the light and the dark theme, at desktop width and
/// at 390 px: zero axe-core violations and no page wider than the phone.
#[tokio::test]
async fn every_page_passes_axe_and_fits_a_phone_in_light_and_dark() {
    let Some(axe) = axe_source() else { return };
    let Acme { app, admin } = Acme::start().await;
    let colleague = app
        .add_user(
            "Acme",
            "a.very.long.address.of.a.colleague.with.many.parts@subdomain.example-company.test",
            Role::Engineers,
        )
        .await;
    app.token_for(&colleague, Role::Engineers).await;
    // A token that expires within 7 days, for the badge and the banner.
    let now = app.clock().now();
    let actor = apitokens::services::Actor::of_user(&admin);
    // A service account, so its page shows its table and the trust policy form.
    let bot = apitokens::services::people::service_accounts::NewServiceAccount {
        name: apitokens::domain::input::PersonName::parse("deploy bot").unwrap(),
        description: "ships main".into(),
        role: Role::Engineers,
    };
    let sa_actor = actor.clone();
    app.db(move |c| {
        apitokens::services::people::service_accounts::create(c, &sa_actor, &bot, now).unwrap()
    })
    .await;
    app.db(move |c| {
        let req = apitokens::services::tokens::NewTokenRequest {
            name: apitokens::domain::input::TokenName::parse(
                "A token with a rather long name that should wrap nicely on a phone",
            )
            .unwrap(),
            description: apitokens::domain::input::TokenDescription::parse(None).unwrap(),
            role: Role::Users,
            expiry: apitokens::domain::input::Expiry::at(now + time::Duration::days(3), now)
                .unwrap(),
            form_id: None,
            parent: None,
            allowed_ips: vec![],
            allowed_routes: vec![],
            rate_limit: None,
            usage_limit: None,
        };
        apitokens::services::tokens::create(c, &actor, &req, now).unwrap();
    })
    .await;

    for (theme, extra) in [("light", &[][..]), ("dark", &["--force-dark-mode"][..])] {
        let Some(browser) = start_browser_with(extra).await else {
            return;
        };
        let client = &browser.client;
        let mut problems = vec![];
        client.goto(&format!("{}/login", app.base)).await.unwrap();
        let dark = client
            .execute(
                "return matchMedia('(prefers-color-scheme: dark)').matches",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            dark,
            json!(theme == "dark"),
            "the {theme} theme is what the page sees"
        );
        check_page(client, &axe, &format!("{theme}-login"), &mut problems).await;
        // A failed sign-in (an error state).
        client
            .find(Locator::Id("email"))
            .await
            .unwrap()
            .send_keys("nobody@acme.test")
            .await
            .unwrap();
        client
            .find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys("wrong")
            .await
            .unwrap();
        click_and_load(client, "#sign-in").await;
        // The error is announced and tied to the fields.
        for field in ["email", "password"] {
            let input = client.find(Locator::Id(field)).await.unwrap();
            assert_eq!(
                input.attr("aria-invalid").await.unwrap().as_deref(),
                Some("true")
            );
            let described = input.attr("aria-describedby").await.unwrap();
            assert_eq!(described.as_deref(), Some("login-error"));
        }
        check_page(
            client,
            &axe,
            &format!("{theme}-login-failed"),
            &mut problems,
        )
        .await;
        client
            .goto(&format!("{}/set-password?token=nonsense", app.base))
            .await
            .unwrap();
        check_page(
            client,
            &axe,
            &format!("{theme}-set-password"),
            &mut problems,
        )
        .await;

        sign_in(client, &app.base, crate::helpers::ACME_ADMIN).await;
        check_page(client, &axe, &format!("{theme}-tokens"), &mut problems).await;
        client
            .goto(&format!("{}/profile/api-tokens/new", app.base))
            .await
            .unwrap();
        check_page(client, &axe, &format!("{theme}-create"), &mut problems).await;
        click_and_load(client, "#create-submit").await; // no name: the form's error state
        let name = client.find(Locator::Id("name")).await.unwrap();
        assert_eq!(
            name.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true")
        );
        let described = name.attr("aria-describedby").await.unwrap().unwrap();
        let message = client.find(Locator::Id(&described)).await.unwrap();
        assert!(!message.text().await.unwrap().is_empty());
        assert!(client
            .find(Locator::Css("#form-errors[role=alert]"))
            .await
            .is_ok());
        check_page(
            client,
            &axe,
            &format!("{theme}-create-errors"),
            &mut problems,
        )
        .await;
        client
            .find(Locator::Id("name"))
            .await
            .unwrap()
            .send_keys("axe")
            .await
            .unwrap();
        click_and_load(client, "#create-submit").await;
        check_page(
            client,
            &axe,
            &format!("{theme}-reveal-dialog"),
            &mut problems,
        )
        .await;
        click_and_load(client, "#token-copied").await;
        let (id, _) = rows(client).await[0].clone();
        client
            .goto(&format!(
                "{}/profile/api-tokens?confirm_delete={id}",
                app.base
            ))
            .await
            .unwrap();
        check_page(
            client,
            &axe,
            &format!("{theme}-delete-dialog"),
            &mut problems,
        )
        .await;
        for (page, path) in [
            ("profile", "/profile"),
            ("notification-settings", "/profile/notifications"),
            ("inbox", "/notifications"),
            ("users", "/users"),
            ("not-found", "/no/such/page"),
            ("token-policy", "/profile/api-tokens/policy"),
            ("activity", "/activity"),
            ("forgot-password", "/forgot-password"),
            ("security", "/profile/security"),
            ("scim-confirm", "/users?confirm=scim-token"),
            ("webhooks", "/webhooks"),
            ("service-accounts", "/service-accounts"),
        ] {
            client.goto(&format!("{}{path}", app.base)).await.unwrap();
            check_page(client, &axe, &format!("{theme}-{page}"), &mut problems).await;
        }
        client
            .goto(&format!("{}/profile/api-tokens/{id}", app.base))
            .await
            .unwrap();
        check_page(client, &axe, &format!("{theme}-token-page"), &mut problems).await;
        client
            .goto(&format!(
                "{}/users?confirm=remove&user={}",
                app.base, colleague.id
            ))
            .await
            .unwrap();
        check_page(
            client,
            &axe,
            &format!("{theme}-users-confirm"),
            &mut problems,
        )
        .await;
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

/// Presses keys on whatever has the focus (WebDriver key codes).
async fn press(client: &Client, keys: &str) {
    client
        .active_element()
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
}

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// Whether the focused element matches `css`.
async fn focused(client: &Client, css: &str) -> bool {
    client
        .execute(
            "return document.activeElement !== null && document.activeElement.matches(arguments[0])",
            vec![json!(css)],
        )
        .await
        .unwrap()
        == json!(true)
}

/// Tabs forward until the focus is on `css` (at most 60 presses).
async fn tab_to(client: &Client, css: &str) {
    for _ in 0..60 {
        if focused(client, css).await {
            return;
        }
        press(client, TAB).await;
    }
    panic!("Tab never reached {css}");
}

/// Presses Enter on the focused element, which loads a new page.
async fn enter_and_load(client: &Client) {
    and_load(client, "Enter", press(client, ENTER)).await;
}

/// Sign in, create, reveal, copy, OK, and delete a token with the keyboard alone: focus goes
/// into each dialog and back to what opened it, Escape cancels the delete but can't lose the
/// new token.
#[tokio::test]
async fn the_whole_token_flow_works_with_the_keyboard_alone() {
    let Some(browser) = start_browser().await else {
        return;
    };
    let client = &browser.client;
    let Acme { app, .. } = Acme::start().await;
    client.goto(&format!("{}/login", app.base)).await.unwrap();
    tab_to(client, "#email").await;
    press(client, crate::helpers::ACME_ADMIN).await;
    tab_to(client, "#password").await;
    press(client, PASSWORD).await;
    enter_and_load(client).await;
    assert_eq!(
        client.current_url().await.unwrap().path(),
        "/profile/api-tokens"
    );

    tab_to(client, "#create-token").await;
    enter_and_load(client).await;
    tab_to(client, "#name").await;
    press(client, "keyboard token").await;
    tab_to(client, "#create-submit").await;
    enter_and_load(client).await;
    assert!(
        focused(client, "#token-dialog *").await,
        "focus is inside the new token's dialog"
    );
    tab_to(client, "#copy-token").await;
    press(client, ENTER).await;
    let copy = client.find(Locator::Id("copy-token")).await.unwrap();
    assert_ne!(
        copy.text().await.unwrap(),
        "Copy",
        "the copy button answered"
    );
    press(client, ESCAPE).await;
    assert!(
        client
            .find(Locator::Id("token-dialog"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "Escape can't lose the new token"
    );
    tab_to(client, "#token-copied").await;
    enter_and_load(client).await;
    assert!(
        focused(client, "#create-token").await,
        "focus is back on Create API token"
    );
    let (id, status) = rows(client).await[0].clone();
    assert_eq!(status, "active");

    // Delete: open the row's menu, choose Delete, then Escape cancels...
    let menu = format!("#actions-{id}");
    let delete = format!("tr[data-token-id='{id}'] a.delete-token");
    tab_to(client, &menu).await;
    press(client, ENTER).await;
    tab_to(client, &delete).await;
    enter_and_load(client).await;
    assert!(
        focused(client, "#delete-dialog *").await,
        "focus is inside the delete dialog"
    );
    // Escape follows the dialog's Cancel link back to the list.
    and_load(client, "Escape", press(client, ESCAPE)).await;
    assert!(client.find(Locator::Id("delete-dialog")).await.is_err());
    assert!(
        focused(client, &menu).await,
        "focus is back on the row's menu"
    );
    assert_eq!(rows(client).await[0], (id, "active".to_string()));
    // ...and the confirm button deletes.
    press(client, ENTER).await;
    tab_to(client, &delete).await;
    enter_and_load(client).await;
    tab_to(client, "#confirm-delete").await;
    enter_and_load(client).await;
    assert!(
        !rows(client).await.iter().any(|(row, _)| *row == id),
        "deleted, so left out of the list"
    );
}

/// Issue 13's scenario in a real browser: create → open the token's page → rotate with a
/// 1-hour grace → both secrets work → the table shows the grace → set an allowlist → a request
/// from outside it is refused. Screenshots of the token page and the Activity page.
#[tokio::test]
async fn a_token_is_rotated_with_a_grace_and_pinned_to_addresses_in_a_real_browser() {
    let Some(browser) = start_browser().await else {
        return;
    };
    let app = crate::helpers::TestApp::spawn_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]
    })
    .await;
    let Acme { app, .. } = Acme::on(app).await;
    let client = &browser.client;
    sign_in(client, &app.base, crate::helpers::ACME_ADMIN).await;
    let old = create_token(client, "deploy", "5", None).await;
    click_and_load(client, "#token-copied").await;
    let id = crate::helpers::token_id(&old);
    click_and_load(client, &format!("tr[data-token-id=\"{id}\"] a.token-name")).await;
    assert_eq!(
        client
            .find(Locator::Id("token-title"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "deploy"
    );
    client
        .find(Locator::Id("grace"))
        .await
        .unwrap()
        .select_by_value("3600")
        .await
        .unwrap();
    click_and_load(client, "#rotate-token").await;
    let new = client
        .find(Locator::Id("new-token-value"))
        .await
        .expect("the new secret is revealed")
        .text()
        .await
        .unwrap();
    assert_ne!(new, old);
    assert!(client
        .find(Locator::Id("token-dialog"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    click_and_load(client, "#token-copied").await;
    let check = |token: String, from: &'static str| {
        let app = &app;
        async move {
            app.api(&format!("APIKey {token}"))
                .send_with(
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
        check(old.clone(), "198.51.100.1").await,
        StatusCode::NO_CONTENT,
        "old, in its grace"
    );
    assert_eq!(
        check(new.clone(), "198.51.100.1").await,
        StatusCode::NO_CONTENT,
        "new"
    );
    assert!(client
        .find(Locator::Id("grace-note"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("old secret still works until"));

    // The table says it too.
    client
        .goto(&format!("{}/profile/api-tokens", app.base))
        .await
        .unwrap();
    let grace = client
        .find(Locator::Css(&format!("tr[data-token-id=\"{id}\"] .grace")))
        .await
        .expect("the grace is shown in the table");
    assert!(grace
        .text()
        .await
        .unwrap()
        .starts_with("old secret valid until"));

    // Pinned to a network: a request from outside it is refused, one from inside works. The
    // token was last used from here (once the flush has recorded it: waited for, bounded),
    // so saving a list without this address asks first.
    let mut recorded = false;
    for _ in 0..200 {
        let row = app
            .db(move |c| apitokens::repo::Token::find(c, id))
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
        .goto(&format!("{}/profile/api-tokens/{id}", app.base))
        .await
        .unwrap();
    client
        .find(Locator::Id("allowed_ips"))
        .await
        .unwrap()
        .send_keys("203.0.113.0/24")
        .await
        .unwrap();
    click_and_load(client, "#save-allowlist").await;
    assert!(client
        .find(Locator::Id("allowlist-warning"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("which this list leaves out"));
    click_and_load(client, "#confirm-allowlist").await;
    assert_eq!(
        client
            .find(Locator::Id("token-allowed"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "203.0.113.0/24"
    );
    assert_eq!(
        check(new.clone(), "198.51.100.1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        check(new.clone(), "203.0.113.9").await,
        StatusCode::NO_CONTENT
    );
    app.state.gateway.flush_uses().await.unwrap();
    client
        .goto(&format!("{}/profile/api-tokens/{id}", app.base))
        .await
        .unwrap();
    screenshot(client, "token-page").await;
    client
        .goto(&format!("{}/activity", app.base))
        .await
        .unwrap();
    let kinds: Vec<String> = {
        let mut out = vec![];
        for li in client.find_all(Locator::Css("#activity li")).await.unwrap() {
            out.push(li.attr("data-kind").await.unwrap().unwrap());
        }
        out
    };
    for kind in ["token.created", "token.rotated", "token.allowlist_changed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    screenshot(client, "activity").await;
}
