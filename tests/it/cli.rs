//! The command line: `user add`, and one clear line (not a panic) for each startup mistake.

use std::process::{Command, Output, Stdio};

use apitokens::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, PASSWORD};

pub(crate) fn apitokens(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apitokens"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn user_add_creates_a_user_who_can_sign_in() {
    if crate::helpers::postgres_url().is_some() {
        eprintln!("the command-line test uses the SQLite file; covered by the SQLite run");
        return;
    }
    let app = TestApp::spawn().await;
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
            "Acme",
            "--email",
            "cli@acme.test",
            "--name",
            "Cli",
            "--role",
            "Engineers",
            "--password-stdin",
        ],
        &env,
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("prints the new user's id");
    let user = app
        .db(move |c| apitokens::repo::User::find(c, id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (user.email.as_str(), user.role),
        ("cli@acme.test", Role::Engineers)
    );
    assert_eq!(
        app.client().sign_in("cli@acme.test", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    // The same e-mail again, an unknown role, a short password: one clear line each.
    for (args, message) in [
        (
            vec!["--email", "cli@acme.test", "--role", "2"],
            "already exists",
        ),
        (
            vec!["--email", "x@acme.test", "--role", "Root"],
            "unknown role `Root`",
        ),
    ] {
        let mut all = vec![
            "user",
            "add",
            "--account",
            "Acme",
            "--name",
            "X",
            "--password-stdin",
        ];
        all.extend(args);
        let out = apitokens(&all, &env, Some(&format!("{PASSWORD}\n")));
        assert!(!out.status.success());
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
    let out = apitokens(
        &[
            "user",
            "add",
            "--account",
            "Acme",
            "--email",
            "y@acme.test",
            "--name",
            "Y",
            "--role",
            "2",
            "--password-stdin",
        ],
        &env,
        Some("short\n"),
    );
    assert!(
        stderr(&out).contains("at least 10 characters"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn startup_mistakes_get_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("DATABASE_URL", "mysql://db/x")],
            "DATABASE_URL must start with sqlite:// or postgres://",
        ),
        (
            vec![("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")],
            "can't connect to the database",
        ),
        (
            vec![("APITOKENS_BIND", taken_addr.as_str())],
            "can't listen on",
        ),
        (
            vec![("APITOKENS_DATA_DIR", file.to_str().unwrap())],
            "APITOKENS_DATA_DIR",
        ),
        (
            vec![("APITOKENS_SECRET_KEY", "short")],
            "at least 32 characters",
        ),
    ];
    for (env, message) in cases {
        let mut all = vec![("APITOKENS_DATA_DIR", data)];
        all.extend(env.iter().copied());
        let out = apitokens(&["serve"], &all, None);
        let err = stderr(&out);
        assert!(!out.status.success(), "{env:?} must fail");
        assert!(err.contains(message), "{env:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
    }
    drop(taken);
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let app = TestApp::spawn_with(|s| s.base_url = "https://tokens.example".into()).await;
    let page = app.client().get("/login").await;
    let cookie = page
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        cookie.contains("secure") && cookie.contains("httponly") && cookie.contains("samesite=lax"),
        "{cookie}"
    );
    let plain = TestApp::spawn().await.client().get("/login").await;
    assert!(!plain
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_lowercase()
        .contains("secure"));
}

/// Log lines carry no colour codes unless a person reads them at a terminal, and not even
/// then with `NO_COLOR` set. (`script` gives the program a terminal.)
#[test]
fn logs_are_coloured_only_at_a_terminal_without_no_color() {
    let args = ["migrate"];
    let env = [
        (
            "DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
        ),
        ("APITOKENS_DB_TIMEOUT_MS", "50"),
        ("RUST_LOG", "warn"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut piped = env.to_vec();
    piped.push(("APITOKENS_DATA_DIR", data));
    let out = apitokens(&args, &piped, None);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("the database is unreachable"), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err:?}");

    let Ok(script) = which("script") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs `script` (util-linux)"
        );
        eprintln!("skipping the terminal half: `script` (util-linux) is not installed");
        return;
    };
    let at_terminal = |no_color: Option<&str>| {
        let line = format!("{} migrate", env!("CARGO_BIN_EXE_apitokens"));
        let mut cmd = Command::new(&script);
        cmd.args(["-qec", &line, "/dev/null"])
            .envs(env)
            .env("APITOKENS_DATA_DIR", data)
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().expect("script runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = at_terminal(None);
    assert!(
        coloured.contains("the database is unreachable"),
        "{coloured}"
    );
    assert!(
        coloured.contains('\x1b'),
        "a terminal gets colours: {coloured:?}"
    );
    let plain = at_terminal(Some("1"));
    assert!(plain.contains("the database is unreachable"), "{plain}");
    assert!(!plain.contains('\x1b'), "NO_COLOR is respected: {plain:?}");
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

/// `apitokens jwt-key rotate`: a new private key, the old one kept beside it; both 0600.
#[test]
fn jwt_key_rotate_keeps_the_previous_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let env = [("APITOKENS_DATA_DIR", data)];
    let first = apitokens(&["jwt-key", "rotate"], &env, None);
    assert!(first.status.success(), "{}", stderr(&first));
    let key = dir.path().join("jwt_key.pem");
    let before = std::fs::read_to_string(&key).unwrap();
    let second = apitokens(&["jwt-key", "rotate"], &env, None);
    assert!(second.status.success(), "{}", stderr(&second));
    let after = std::fs::read_to_string(&key).unwrap();
    let previous = std::fs::read_to_string(dir.path().join("jwt_key.pem.previous")).unwrap();
    assert_ne!(after, before);
    assert_eq!(previous, before);
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("24 hours"), "{out}");
    assert!(!out.contains("PRIVATE KEY"), "the key is never printed");
    #[cfg(unix)]
    for name in ["jwt_key.pem", "jwt_key.pem.previous"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}

/// Files at rest: the data directory 0700; the SQLite file, its WAL, the keys 0600.
#[test]
fn files_at_rest_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_str = data.to_str().unwrap();
    let out = apitokens(&["migrate"], &[("APITOKENS_DATA_DIR", data_str)], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data directory");
    for file in ["apitokens.db", "secret_key", "jwt_key.pem"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    if data.join("apitokens.db-wal").exists() {
        assert_eq!(mode("apitokens.db-wal"), 0o600);
    }
}

/// `apitokens scan` on a tree with an active, a deleted and a made-up token: statuses, the
/// secret never printed, exit codes, and `--revoke` revoking only the active one.
#[tokio::test]
async fn scan_finds_tokens_tells_their_status_and_revokes_only_active_ones() {
    use apitokens::domain::token::PresentedToken;
    if crate::helpers::postgres_url().is_some() {
        eprintln!("the scan command test uses the SQLite file; the revoke rule runs on both in tokens_service");
        return;
    }
    let crate::helpers::Acme { app, admin } = crate::helpers::Acme::start().await;
    let active = app.token_for(&admin, Role::Engineers).await;
    let deleted = app.token_for(&admin, Role::Engineers).await;
    let deleted_id = PresentedToken::parse(&deleted).unwrap().id;
    let actor = apitokens::services::Actor::of_user(&admin);
    let now = app.clock().now();
    app.db(move |c| {
        apitokens::services::tokens::delete(
            c,
            &actor,
            apitokens::domain::TokenId::new(deleted_id),
            now,
        )
    })
    .await
    .unwrap();
    let active_id = PresentedToken::parse(&active).unwrap().id;
    // Right shape, made-up secret: not recognised (checksum), so not reported at all.
    let fake = format!("{}_{}", active_id + 100, "ab".repeat(32));

    let tree = tempfile::tempdir().unwrap();
    std::fs::write(
        tree.path().join("deploy.sh"),
        format!("#!/bin/sh\nTOKEN={active}\n"),
    )
    .unwrap();
    std::fs::create_dir(tree.path().join("docs")).unwrap();
    std::fs::write(
        tree.path().join("docs/old.md"),
        format!("Old: `{deleted}` and {fake}\n"),
    )
    .unwrap();
    let tree_path = tree.path().to_str().unwrap().to_string();

    let db = format!("sqlite://{}", app.dir.path().join("test.db").display());
    let env = [("DATABASE_URL", db.as_str())];
    let out = apitokens(&["scan", &tree_path], &env, None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an active token fails the scan: {stdout}{}",
        stderr(&out)
    );
    assert!(
        stdout.contains(&format!("deploy.sh:2: token id {active_id} (active)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("old.md:1: token id {deleted_id} (deleted)")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        2,
        "the made-up token isn't reported: {stdout}"
    );
    for secret in [&active, &deleted] {
        assert!(
            !stdout.contains(&secret[secret.len() - 64..]),
            "no secret printed"
        );
        assert!(!stderr(&out).contains(&secret[secret.len() - 64..]));
    }

    let out = apitokens(&["scan", "--revoke", &tree_path], &env, None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Revoked, but still in the file: the scan still fails.
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", stderr(&out));
    assert!(
        stdout.contains(&format!("token id {active_id} (active, revoked now)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("token id {deleted_id} (deleted)")),
        "{stdout}"
    );
    let api = app.api(&format!("APIKey {active}"));
    // The server's cache forgets within its one second; the row says deleted at once.
    let row = app
        .db(move |c| apitokens::repo::Token::find(c, active_id))
        .await
        .unwrap()
        .unwrap();
    assert!(row.deleted_at.is_some() && row.deleted_by.is_none());
    let revoked = app.events_of(row.account_id, "token.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0].summary.contains("deploy.sh:2"),
        "{}",
        revoked[0].summary
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while api.get("/iam/auth/check").await.status != StatusCode::UNAUTHORIZED {
        assert!(
            std::time::Instant::now() < deadline,
            "revoked token still passes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Clean now: exit 0. With no database to ask, a found token fails the scan.
    let again = apitokens(&["scan", &tree_path], &env, None);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let offline_dir = tempfile::tempdir().unwrap();
    let offline = apitokens(
        &["scan", &tree_path],
        &[("APITOKENS_DATA_DIR", offline_dir.path().to_str().unwrap())],
        None,
    );
    assert_eq!(offline.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&offline.stdout).contains("unknown (no database to ask)"));
    assert!(
        std::fs::read_dir(offline_dir.path())
            .unwrap()
            .next()
            .is_none(),
        "a scan creates no database"
    );
    // Nothing to find: exit 0.
    let empty = tempfile::tempdir().unwrap();
    let none = apitokens(&["scan", empty.path().to_str().unwrap()], &env, None);
    assert_eq!(none.status.code(), Some(0));
}

/// `apitokens scim-token --account NAME` prints a new SCIM token that the running server takes
/// (the old one stops), recorded in the account's activity; an unknown account is one line.
#[tokio::test]
async fn scim_token_prints_a_working_token_that_replaces_the_old_one() {
    if crate::helpers::postgres_url().is_some() {
        eprintln!(
            "the scim-token command test uses the SQLite file; the rule runs on both in scim"
        );
        return;
    }
    let crate::helpers::Acme { app, admin } = crate::helpers::Acme::start().await;
    let db = format!("sqlite://{}", app.dir.path().join("test.db").display());
    let env = [("DATABASE_URL", db.as_str())];
    let run = || apitokens(&["scim-token", "--account", "Acme"], &env, None);
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    let first = String::from_utf8(first.stdout).unwrap().trim().to_string();
    let second = run();
    let second = String::from_utf8(second.stdout).unwrap().trim().to_string();
    assert!(second.starts_with("scim_") && second != first);
    let status = |token: String| {
        let app = &app;
        async move {
            app.api(&format!("Bearer {token}"))
                .get("/scim/v2/ServiceProviderConfig")
                .await
                .status
        }
    };
    assert_eq!(status(first).await, StatusCode::UNAUTHORIZED, "replaced");
    assert_eq!(status(second).await, StatusCode::OK);
    let events = app.events_of(admin.account_id, "scim.token_created").await;
    assert_eq!(events.len(), 2);
    assert!(events[0].summary.contains("on the command line"));

    let unknown = apitokens(&["scim-token", "--account", "Nope"], &env, None);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("there is no account named `Nope`"),
        "{}",
        stderr(&unknown)
    );
}
