//! The architecture of DESIGN.md, checked: the web layer talks to services only, e-mail
//! builders take plain data, and no handler can read a form or a JSON body past the
//! extractors that check them.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Every (file, line) under `dir` that contains one of `forbidden`, comments aside.
fn offences(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let files = rust_files(&root);
    assert!(!files.is_empty(), "no sources under {dir}");
    let mut found = vec![];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for f in forbidden {
                if code.contains(f) {
                    found.push(format!("{}:{}: {f}: {code}", file.display(), n + 1));
                }
            }
        }
    }
    found
}

#[test]
fn the_web_layer_reaches_the_database_only_through_services() {
    let found = offences(
        "src/web",
        &[
            "crate::repo",
            "crate::db",
            "DbConn",
            "DbPool",
            "diesel",
            ".pool()",
            "transaction(",
        ],
    );
    assert!(
        found.is_empty(),
        "web code past the services:\n{}",
        found.join("\n")
    );
}

#[test]
fn email_builders_take_plain_data() {
    let found = offences(
        "src/email",
        &["crate::services", "crate::repo", "crate::db"],
    );
    assert!(found.is_empty(), "e-mail depends on:\n{}", found.join("\n"));
}

#[test]
fn domain_and_repo_do_not_depend_on_the_layers_above() {
    let found = offences(
        "src/domain",
        &[
            "crate::repo",
            "crate::db",
            "crate::services",
            "crate::web",
            "crate::email",
        ],
    );
    assert!(found.is_empty(), "domain depends on:\n{}", found.join("\n"));
    let found = offences(
        "src/repo",
        &["crate::services", "crate::web", "crate::email"],
    );
    assert!(found.is_empty(), "repo depends on:\n{}", found.join("\n"));
    let found = offences("src/services", &["crate::web", "actix_web", "HttpResponse"]);
    assert!(
        found.is_empty(),
        "services know HTTP:\n{}",
        found.join("\n")
    );
}

#[test]
fn forms_and_json_bodies_only_arrive_through_their_checking_extractors() {
    // `CsrfForm` checks the CSRF token before a handler runs; `JsonBody` refuses
    // anything but an object; nobody walks a raw `serde_json::Value` body.
    let found = offences("src/web/pages", &["web::Form<", "check_csrf(", "Form<"])
        .into_iter()
        .filter(|l| !l.contains("CsrfForm<"))
        .collect::<Vec<_>>();
    assert!(
        found.is_empty(),
        "a form read by hand:\n{}",
        found.join("\n")
    );
    let found = offences("src/web/api", &["web::Json<", "as_object()", ".get(\""]);
    let found: Vec<_> = found
        .into_iter()
        .filter(|l| !l.contains("src/web/api/body.rs"))
        .collect();
    assert!(
        found.is_empty(),
        "a JSON body walked by hand:\n{}",
        found.join("\n")
    );
}
