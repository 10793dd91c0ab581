//! The walk of `apitokens scan`: finds apitokens tokens in files, with no database needed to recognise
//! them (`domain::token_format`), and tells what each is when a database can be asked.

use std::path::{Path, PathBuf};

use crate::domain::token::PresentedToken;
use crate::domain::token_format::find_tokens;

/// Files larger than this are skipped (logs and dumps; a token in source code is small).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A checksum-valid token found in a file.
#[derive(Debug)]
pub struct Finding {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    pub token: PresentedToken,
}

/// What a scan walked past without reading, for the summary line.
#[derive(Debug, Default)]
pub struct Skipped {
    pub binary: usize,
    pub too_large: usize,
    pub unreadable: usize,
}

/// Walks `roots` (files or directories), honouring `.gitignore`, `.ignore` and git's global
/// excludes even outside a git checkout, skipping hidden directories like `.git`, binary
/// files (a NUL byte in the first 8 KB, as git decides) and files over `MAX_FILE_BYTES`.
pub fn scan(roots: &[PathBuf]) -> (Vec<Finding>, Skipped) {
    let mut findings = Vec::new();
    let mut skipped = Skipped::default();
    let Some((first, rest)) = roots.split_first() else {
        return (findings, skipped);
    };
    let mut walk = ignore::WalkBuilder::new(first);
    for root in rest {
        walk.add(root);
    }
    walk.require_git(false).follow_links(false);
    for entry in walk.build() {
        let Ok(entry) = entry else {
            skipped.unreadable += 1;
            continue;
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        scan_file(entry.path(), &mut findings, &mut skipped);
    }
    findings.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    (findings, skipped)
}

fn scan_file(path: &Path, findings: &mut Vec<Finding>, skipped: &mut Skipped) {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            skipped.too_large += 1;
            return;
        }
        Ok(_) => {}
        Err(_) => {
            skipped.unreadable += 1;
            return;
        }
    }
    let Ok(bytes) = std::fs::read(path) else {
        skipped.unreadable += 1;
        return;
    };
    if bytes[..bytes.len().min(8192)].contains(&0) {
        skipped.binary += 1;
        return;
    }
    // Tokens are ASCII: text in another encoding is read lossily, and a token in it still is.
    let text = String::from_utf8_lossy(&bytes);
    let mut line = 1;
    let mut counted = 0;
    for found in find_tokens(&text) {
        line += text[counted..found.offset].matches('\n').count();
        counted = found.offset;
        if let Some(token) = PresentedToken::parse(found.token) {
            findings.push(Finding {
                path: path.to_owned(),
                line,
                token,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::{wire_form, Separator};
    use crate::domain::token_format::generate_secret;

    #[test]
    fn finds_tokens_by_line_and_honours_gitignore_and_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let token = wire_form(12, Separator::Underscore, &generate_secret(12));
        let other = wire_form(13, Separator::Dollar, &generate_secret(13));
        std::fs::write(dir.path().join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(
            dir.path().join("config.env"),
            format!("# keys\nA={token}\n\nB=\"{other}\" C={token}\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.txt"), &token).unwrap();
        std::fs::write(
            dir.path().join("blob.bin"),
            [b"\0".as_slice(), token.as_bytes()].concat(),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("sub/fake.txt"),
            format!("12_{}", "a".repeat(64)),
        )
        .unwrap();
        let (found, skipped) = scan(&[dir.path().to_owned()]);
        let seen: Vec<_> = found
            .iter()
            .map(|f| {
                (
                    f.path.file_name().unwrap().to_str().unwrap(),
                    f.line,
                    f.token.id,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("config.env", 2, 12),
                ("config.env", 4, 13),
                ("config.env", 4, 12)
            ]
        );
        assert_eq!(skipped.binary, 1);
    }
}
