//! The command line: `user add`, and one clear line (not a panic) for each startup mistake.

use std::process::{Command, Output, Stdio};

use apitokens::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, PASSWORD};

fn apitokens(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
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
