//! Issue 32's passwords: changed under Profile → General, reset with "Forgot password?", set
//! by an operator; each ends the person's other sessions and JWTs, is audited and e-mailed.

use std::path::Path;
use std::time::Duration;

use apitokens::domain::Role;
use reqwest::StatusCode;

use crate::cli::apitokens;
use crate::helpers::{unescape, Acme, TestApp, ACME_ADMIN, PASSWORD};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// The mails in the outbox, once there are `n` of them (they leave after the answer, on the
/// blocking pool): polled, bounded to 10 s, and the count must then be exactly `n`.
pub(crate) async fn outbox(dir: &Path, n: usize) -> Vec<String> {
    let folder = dir.join("outbox");
    let read = || -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            return vec![];
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .replace("=\r\n", "")
                    .replace("=3D", "=")
            })
            .collect()
    };
    // A file can be seen before the mail is written into it: wait for whole ones.
    for _ in 0..200 {
        let mails = read();
        if mails.len() >= n && mails.iter().all(|m| m.contains("Content-Type")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mails = read();
    assert_eq!(mails.len(), n, "mails in the outbox: {mails:#?}");
    mails
}

/// The set-password link of a mail, as a path.
pub(crate) fn link_in(mail: &str) -> String {
    let at = mail
        .find("/set-password?token=")
        .expect("a link in the mail");
    let token: String = mail[at + "/set-password?token=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(token.len(), 64, "{mail}");
    format!("/set-password?token={token}")
}

#[tokio::test]
async fn a_changed_password_ends_every_other_session_and_jwt_and_is_told() {
    let Acme { app, admin } = Acme::start().await;
    let me = app.signed_in(ACME_ADMIN).await;
    let elsewhere = app.signed_in(ACME_ADMIN).await;
    let script = app.api_jwt(ACME_ADMIN).await;
    assert_eq!(script.get("/iam/users/me").await.status, StatusCode::OK);

    // Refusals come back with the summary and change nothing.
    for (fields, field, words) in [
        (
            [
                ("current_password", "wrong password!"),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
            "current_password",
            "current password is wrong",
        ),
        (
            [
                ("current_password", PASSWORD),
                ("new_password", "short"),
                ("confirm_password", "short"),
            ],
            "new_password",
            "at least 10 characters",
        ),
        (
            [
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", "something else"),
            ],
            "confirm_password",
            "different",
        ),
        (
            [
                ("current_password", ""),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
            "current_password",
            "Enter your current password",
        ),
    ] {
        let page = me.post_from("/profile", "/profile/password", &fields).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
        let summary = page
            .text("#error-summary-password")
            .expect("an error summary");
        assert!(summary.contains(words), "{summary}");
        assert_eq!(
            page.attrs("#error-summary-password a", "href"),
            vec![format!("#{field}")]
        );
        assert!(page.has(&format!("#{field}[aria-invalid=true]")), "{field}");
    }
    assert_eq!(
        app.client().sign_in(ACME_ADMIN, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    let changed = me
        .post_from(
            "/profile",
            "/profile/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    // This browser stays signed in (a new session), and is told.
    let profile = me.get("/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile
        .text("#flash")
        .unwrap()
        .contains("password is changed"));
    // Every other session and the JWT ended; the old password opens nothing.
    assert_eq!(
        elsewhere.get("/profile").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        script.get("/iam/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client().sign_in(ACME_ADMIN, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client().sign_in(ACME_ADMIN, NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // Audited, with the client address; e-mailed without any secret.
    let events = app
        .events_of(admin.account_id, "user.password_changed")
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let mails = outbox(app.dir.path(), 1).await;
    assert!(
        mails[0].contains("was changed in the portal"),
        "{}",
        mails[0]
    );
    assert!(!mails[0].contains(NEW_PASSWORD) && !mails[0].contains("set-password?token"));
}

#[tokio::test]
async fn a_wrong_current_password_counts_toward_the_sign_in_limit() {
    let Acme { app, .. } = Acme::start().await;
    let me = app.signed_in(ACME_ADMIN).await;
    let mut statuses = vec![];
    for _ in 0..7 {
        let page = me
            .post_from(
                "/profile",
                "/profile/password",
                &[
                    ("current_password", "not my password"),
                    ("new_password", NEW_PASSWORD),
                    ("confirm_password", NEW_PASSWORD),
                ],
            )
            .await;
        statuses.push(page.status);
    }
    assert_eq!(statuses[0], StatusCode::BAD_REQUEST);
    assert_eq!(
        *statuses.last().unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "{statuses:?}"
    );
    // Even the right one is refused now, from this address: guessing through the form is
    // as slow as guessing through the sign-in page.
    let right = me
        .post_from(
            "/profile",
            "/profile/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    // Once the window has passed, the old password still opens the account: nothing changed.
    app.clock().advance(time::Duration::minutes(16));
    assert_eq!(
        app.client().sign_in(ACME_ADMIN, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn forgot_password_sends_a_one_hour_link_that_works_once_and_says_the_same_for_anyone() {
    let Acme { app, admin } = Acme::start().await;
    let signed_in = app.signed_in(ACME_ADMIN).await;
    let script = app.api_jwt(ACME_ADMIN).await;
    let anonymous = app.client();
    let asked = anonymous
        .post_from(
            "/forgot-password",
            "/forgot-password",
            &[("email", "Admin@Acme.test")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    let nobody = anonymous
        .post_from(
            "/forgot-password",
            "/forgot-password",
            &[("email", "nobody@acme.test")],
        )
        .await;
    assert_eq!(nobody.status, StatusCode::OK);
    // The same page, but for the address typed back.
    let normalise = |page: &crate::helpers::Page, email: &str| {
        page.text("#main").unwrap().replace(email, "ADDRESS")
    };
    assert_eq!(
        normalise(&asked, "admin@acme.test"),
        normalise(&nobody, "nobody@acme.test")
    );
    let mails = outbox(app.dir.path(), 1).await;
    let link = link_in(&mails[0]);
    assert!(mails[0].contains("one hour"));

    // The link shows the form; the new password is set once.
    let form = anonymous.get(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.headers.get("referrer-policy").unwrap(), "no-referrer");
    let token = link.rsplit('=').next().unwrap();
    let set = anonymous
        .post_from(
            &link,
            "/set-password",
            &[
                ("token", token),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", unescape(&set.body));
    let again = anonymous
        .post_from(
            "/login",
            "/set-password",
            &[
                ("token", token),
                ("password", "yet another one!"),
                ("confirm", "yet another one!"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(anonymous.get(&link).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.client()
            .sign_in(ACME_ADMIN, "yet another one!")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client().sign_in(ACME_ADMIN, NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // Everything the old password opened has ended; audited; told by e-mail.
    assert_eq!(
        signed_in.get("/profile").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        script.get("/iam/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.events_of(admin.account_id, "user.password_reset")
            .await
            .len(),
        1
    );
    let mails = outbox(app.dir.path(), 2).await;
    assert!(mails[1].contains("with a reset link"), "{}", mails[1]);

    // A link an hour old opens nothing.
    anonymous
        .post_from(
            "/forgot-password",
            "/forgot-password",
            &[("email", ACME_ADMIN)],
        )
        .await;
    let late = link_in(&outbox(app.dir.path(), 3).await[2]);
    app.clock().advance(time::Duration::minutes(61));
    assert_eq!(anonymous.get(&late).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn reset_mails_are_limited_per_person_and_per_address_and_bad_input_is_told() {
    let Acme { app, .. } = Acme::start().await;
    let anonymous = app.client();
    for _ in 0..5 {
        let page = anonymous
            .post_from(
                "/forgot-password",
                "/forgot-password",
                &[("email", ACME_ADMIN)],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "over the limit, the same answer"
        );
    }
    // Three mails for the person, however often asked.
    outbox(app.dir.path(), 3).await;
    // Ten requests from one address for anyone, then none for anybody from it.
    for i in 0..10 {
        anonymous
            .post_from(
                "/forgot-password",
                "/forgot-password",
                &[("email", &format!("someone{i}@acme.test"))],
            )
            .await;
    }
    let other = app.acme_member("other", Role::Engineers).await;
    anonymous
        .post_from(
            "/forgot-password",
            "/forgot-password",
            &[("email", &other.email)],
        )
        .await;
    outbox(app.dir.path(), 3).await;

    for (typed, words) in [
        ("", "Enter the e-mail address"),
        ("not an address", "like name@example.com"),
        (&"x".repeat(5000) as &str, "like name@example.com"),
    ] {
        let page = anonymous
            .post_from("/forgot-password", "/forgot-password", &[("email", typed)])
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.text("#error-summary-forgot").unwrap().contains(words));
    }
}

#[tokio::test]
async fn an_sso_person_is_told_where_to_sign_in_and_gets_no_link() {
    let Acme { app, .. } = Acme::start().await;
    let admin = app.signed_in(ACME_ADMIN).await;
    let added = admin
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
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    app.client()
        .post_from(
            "/forgot-password",
            "/forgot-password",
            &[("email", "sam@acme.test")],
        )
        .await;
    let mails = outbox(app.dir.path(), 1).await;
    assert!(mails[0].contains("identity provider"), "{}", mails[0]);
    assert!(!mails[0].contains("set-password"));
}

#[tokio::test]
async fn an_operator_sets_a_password_from_the_command_line() {
    if crate::helpers::postgres_url().is_some() {
        eprintln!("the command-line test uses the SQLite file; covered by the SQLite run");
        return;
    }
    let Acme { app, admin } = Acme::start().await;
    let signed_in = app.signed_in(ACME_ADMIN).await;
    let db = format!("sqlite://{}", app.dir.path().join("test.db").display());
    let dir = app.dir.path().to_str().unwrap().to_string();
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("APITOKENS_DATA_DIR", dir.as_str()),
    ];
    let run = |email: &str, password: &str| {
        apitokens(
            &["user", "set-password", "--email", email, "--password-stdin"],
            &env,
            Some(&format!("{password}\n")),
        )
    };
    let short = run(ACME_ADMIN, "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"));
    let nobody = run("nobody@acme.test", NEW_PASSWORD);
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("No user has this e-mail address"));

    let done = run("ADMIN@acme.test", NEW_PASSWORD);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        signed_in.get("/profile").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.client().sign_in(ACME_ADMIN, NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.events_of(admin.account_id, "user.password_changed")
            .await
            .len(),
        1
    );
    assert!(outbox(app.dir.path(), 1).await[0].contains("by an operator"));
    // The password never reached the command line or the output.
    let help = apitokens(&["user", "set-password", "--help"], &[], None);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--password-stdin") && !help.contains("--password "),
        "{help}"
    );
}

#[tokio::test]
async fn user_add_finds_the_account_whatever_the_case_and_its_help_leads_with_its_own_options() {
    if crate::helpers::postgres_url().is_some() {
        eprintln!("the command-line test uses the SQLite file; covered by the SQLite run");
        return;
    }
    let Acme { app, admin } = Acme::start().await;
    let db = format!("sqlite://{}", app.dir.path().join("test.db").display());
    let dir = app.dir.path().to_str().unwrap().to_string();
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("APITOKENS_DATA_DIR", dir.as_str()),
    ];
    let out = apitokens(
        &[
            "user",
            "add",
            "--account",
            "acme",
            "--email",
            "lower@acme.test",
            "--name",
            "Lower",
            "--role",
            "2",
            "--password-stdin",
        ],
        &env,
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let user = app
        .db(move |c| apitokens::repo::User::find(c, id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        user.account_id, admin.account_id,
        "the existing account Acme, not a new one"
    );

    let help = apitokens(&["user", "add", "--help"], &[], None);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let own = help.find("--email").expect("--email listed");
    let settings = help
        .find("Settings (every command")
        .expect("a heading for the settings");
    assert!(
        own < settings,
        "the command's own options come first:\n{help}"
    );
    assert!(
        help.contains("which they sign in with"),
        "--email is described:\n{help}"
    );
}

#[tokio::test]
async fn the_sign_in_page_links_to_forgot_password_and_an_sso_profile_has_no_password_form() {
    let app = TestApp::spawn().await;
    let page = app.client().get("/login").await;
    assert_eq!(
        page.attrs("#forgot-password", "href"),
        vec!["/forgot-password"]
    );
    let wrong = app
        .client()
        .sign_in("nobody@acme.test", "wrong password")
        .await;
    assert!(wrong.has("#password[autofocus]") && !wrong.has("#email[autofocus]"));
}
