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
    // And knows no particular message: those are the notices' template sets.
    let found = offences(
        "src/email",
        &[
            "Digest",
            "Leak",
            "Invitation",
            "NoticeKind",
            "Role",
            "\"email/",
        ],
    );
    assert!(
        found.is_empty(),
        "e-mail knows a message:\n{}",
        found.join("\n")
    );
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
    // The one form without our CSRF token is the SAML IdP's post to the ACS (its signature and
    // this browser's AuthnRequest vouch for it): nowhere else.
    let unchecked: Vec<_> = offences("src/web/pages", &["IdpPost<"])
        .into_iter()
        .filter(|l| !l.contains("src/web/pages/sso/saml.rs"))
        .collect();
    assert!(
        unchecked.is_empty(),
        "a form without a CSRF check outside the SAML ACS:\n{}",
        unchecked.join("\n")
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

/// The module path of a source file under `src/` (`services/tokens/read.rs` → `services::tokens::read`).
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The module paths one file refers to (`crate::…`, `super::…`, `self::…` and, from a
/// folder's `mod.rs`, its children), groups (`{a, b::c}`) expanded, comments skipped.
fn references(
    module: &[String],
    is_folder: bool,
    text: &str,
    modules: &[Vec<String>],
) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = vec![];
    let tokens: Vec<char> = code.chars().collect();
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < tokens.len() {
        if !ident(tokens[i]) || (i > 0 && (ident(tokens[i - 1]) || tokens[i - 1] == ':')) {
            i += 1;
            continue;
        }
        // A path: ident(::ident)*, possibly ending in ::{ group }
        let mut segs: Vec<String> = vec![];
        let mut j = i;
        loop {
            let start = j;
            while j < tokens.len() && ident(tokens[j]) {
                j += 1;
            }
            segs.push(tokens[start..j].iter().collect());
            if j + 2 < tokens.len()
                && tokens[j] == ':'
                && tokens[j + 1] == ':'
                && ident(tokens[j + 2])
            {
                j += 2;
                continue;
            }
            break;
        }
        let mut group: Vec<Vec<String>> = vec![vec![]];
        if j + 2 < tokens.len() && tokens[j] == ':' && tokens[j + 1] == ':' && tokens[j + 2] == '{'
        {
            let close = (j + 3..tokens.len())
                .find(|&k| tokens[k] == '}')
                .unwrap_or(tokens.len());
            let inner: String = tokens[j + 3..close].iter().collect();
            group = inner
                .split(',')
                .map(|item| {
                    item.trim()
                        .split("::")
                        .map(|s| s.trim().trim_start_matches('{').to_string())
                        .filter(|s| !s.is_empty() && s.chars().all(ident))
                        .collect()
                })
                .collect();
            j = close;
        }
        i = j + 1;
        let grouped = group.len() > 1 || !group[0].is_empty();
        if segs.len() < 2 && !grouped {
            // `self.x`, `crate` alone, a plain name: not a path to a module.
            continue;
        }
        let base: Option<Vec<String>> = match segs[0].as_str() {
            "crate" => Some(segs[1..].to_vec()),
            "super" => {
                let mut b = module.to_vec();
                let mut k = 0;
                while k < segs.len() && segs[k] == "super" {
                    b.pop();
                    k += 1;
                }
                b.extend(segs[k..].iter().cloned());
                Some(b)
            }
            "self" => Some([module.to_vec(), segs[1..].to_vec()].concat()),
            first
                if is_folder
                    && modules.contains(&[module.to_vec(), vec![first.to_string()]].concat()) =>
            {
                Some([module.to_vec(), segs.clone()].concat())
            }
            _ => None,
        };
        let Some(base) = base else { continue };
        for tail in group {
            let full = [base.clone(), tail].concat();
            // The longest prefix that is a module.
            if let Some(m) = (1..=full.len())
                .rev()
                .map(|n| full[..n].to_vec())
                .find(|p| modules.contains(p))
            {
                out.push(m);
            }
        }
    }
    out
}

#[test]
fn no_two_files_of_the_services_import_each_other_even_through_others() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&root.join("services"));
    let modules: Vec<Vec<String>> = files.iter().map(|f| module_of(&root, f)).collect();
    let mut edges: Vec<Vec<usize>> = vec![vec![]; files.len()];
    for (n, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        let folder = file.ends_with("mod.rs");
        for r in references(&modules[n], folder, text, &modules) {
            if let Some(to) = modules.iter().position(|m| *m == r) {
                if to != n && !edges[n].contains(&to) {
                    edges[n].push(to);
                }
            }
        }
    }
    // Depth-first search for a cycle, reporting the first one found.
    fn visit(
        n: usize,
        edges: &[Vec<usize>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[n] = 1;
        stack.push(n);
        for &m in &edges[n] {
            if state[m] == 1 {
                let at = stack.iter().position(|&x| x == m).unwrap();
                return Some(stack[at..].to_vec());
            }
            if state[m] == 0 {
                if let Some(c) = visit(m, edges, state, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state[n] = 2;
        None
    }
    let mut state = vec![0u8; files.len()];
    for n in 0..files.len() {
        if state[n] == 0 {
            if let Some(cycle) = visit(n, &edges, &mut state, &mut vec![]) {
                let names: Vec<String> = cycle.iter().map(|&k| modules[k].join("::")).collect();
                panic!("an import cycle in services/: {} → back", names.join(" → "));
            }
        }
    }
    assert!(
        edges.iter().map(Vec::len).sum::<usize>() > 50,
        "the checker found the imports"
    );
}

#[test]
fn no_source_file_is_over_500_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let big: Vec<String> = rust_files(&root)
        .into_iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            (lines > 500).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(
        big.is_empty(),
        "one concern per file, at most 500 lines:\n{}",
        big.join("\n")
    );
}

#[test]
fn the_web_layer_sees_views_and_typed_ids_never_rows_or_raw_ids() {
    // No row type is re-exported to the web layer, nor anything from the database below.
    let found = offences(
        "src/services",
        &["pub use crate::repo", "pub use crate::db"],
    );
    assert!(found.is_empty(), "rows handed out:\n{}", found.join("\n"));
    // Every entry point the web layer calls takes its ids as `TokenId`, `UserId`, `AccountId`.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/services");
    let mut raw = vec![];
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("pub async fn ") {
            let signature = &text[at..text[at..].find('{').map_or(text.len(), |e| at + e)];
            let compact: String = signature.split_whitespace().collect::<Vec<_>>().join(" ");
            if compact.contains("id: i64") || compact.contains("id: Option<i64>") {
                raw.push(format!("{}: {compact}", file.display()));
            }
        }
    }
    assert!(
        raw.is_empty(),
        "raw ids at the service boundary:\n{}",
        raw.join("\n")
    );
}

#[test]
fn audit_events_are_written_with_one_kind_enum_through_one_function() {
    let found = offences(
        "src/services",
        &[
            "\"token.",
            "\"tokens.",
            "\"user.",
            "\"account.",
            "\"scim.",
            "AccountEvent::insert",
        ],
    )
    .into_iter()
    .filter(|l| !l.contains("src/services/audit.rs") || l.contains("\"token."))
    .collect::<Vec<_>>();
    assert!(
        found.is_empty(),
        "an event kind as a string, or written past audit::write:\n{}",
        found.join("\n")
    );
}
