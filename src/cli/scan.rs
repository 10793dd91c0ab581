//! `apitokens scan [--revoke] [PATH]...`: finds tokens in files (recognised offline by their
//! checksum), tells each one's status when a database can be asked, and exits 1 when an active
//! one (or, with no database, any) was found: a pre-commit hook or a CI step.
// The arguments' doc comments are their `--help` text, where `<file>` reads as a placeholder.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::files;
use super::options::Options;
use crate::db::{self, DbUrl};
use crate::domain::text::escape_controls;
use crate::domain::token::TokenStatus;
use crate::domain::Clock;
use crate::services::tokens::{revoke_found, status_of_presented, FoundToken};

/// Find apitokens tokens in files (honouring .gitignore, skipping binaries) and print
/// `file:line: token id N (status)`, never the secret. The status comes from the database
/// when DATABASE_URL is set (or the default SQLite file exists). Exits 1 when an active
/// token (or, with no database to ask, any token) was found, also when --revoke revoked
/// it (it is still in the file): use it as a pre-commit hook or a CI step.
#[derive(Args)]
pub struct Scan {
    /// Files or directories to scan [default: .]
    pub paths: Vec<PathBuf>,
    /// Delete the active tokens found, with the tokens they created (recorded in the
    /// account's activity as "revoked: found in <file>").
    #[arg(long)]
    pub revoke: bool,
}

pub fn run(options: &Options, args: Scan) -> anyhow::Result<()> {
    let Scan { paths, revoke } = args;

    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths
    };
    let (findings, skipped) = files::scan(&paths);
    // A database only when one is configured: a pre-commit hook in some checkout must not
    // create ./data/apitokens.db.
    let default_db = options.data_dir.join("apitokens.db");
    let pool = if options.database_url.is_some() || default_db.exists() {
        let url = options
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", default_db.display()));
        // Not `settings()`: that prepares a data directory, which a scan must not make.
        let wait = Duration::from_millis(options.db_timeout_ms) * 10;
        let connect = DbUrl::parse(&url).and_then(|url| {
            if let Some(path) = url.sqlite_path() {
                if !std::path::Path::new(path).exists() {
                    bail!("{path} does not exist");
                }
            }
            db::connect(&url, &db::PoolOptions::new(1, wait))
        });
        match connect {
            Ok(pool) => Some(pool),
            Err(e) => {
                eprintln!("can't reach the database ({e:#}): tokens found are reported as unknown");
                None
            }
        }
    } else {
        None
    };
    if revoke && pool.is_none() && !findings.is_empty() {
        bail!("--revoke needs the database (DATABASE_URL): nothing was revoked");
    }
    let now = Clock::default().now();
    let mut alarm = false;
    for f in &findings {
        let status = match &pool {
            None => {
                // Recognised by its checksum, but nobody can say it's dead: treat as live.
                alarm = true;
                "unknown (no database to ask)".to_string()
            }
            Some(pool) => {
                let mut conn = pool.get()?;
                let where_found = format!("{}:{}", f.path.display(), f.line);
                if revoke {
                    match revoke_found(&mut conn, &f.token, &where_found, now, false)? {
                        (FoundToken::Revoked, _) => {
                            // Dead now, but still in the file: the hook still stops the commit.
                            alarm = true;
                            "active, revoked now".to_string()
                        }
                        (FoundToken::Reported, _) => {
                            alarm = true;
                            "active, reported: the account is set to notify only".to_string()
                        }
                        (FoundToken::AlreadyDead(s), _) => s.as_str().to_string(),
                        (FoundToken::Unknown, _) => "unknown".to_string(),
                    }
                } else {
                    match status_of_presented(&mut conn, &f.token, now)? {
                        Some((_, TokenStatus::Active)) => {
                            alarm = true;
                            "active".to_string()
                        }
                        Some((_, s)) => s.as_str().to_string(),
                        None => "unknown".to_string(),
                    }
                }
            }
        };
        println!(
            "{}:{}: token id {} ({status})",
            escape_controls(&f.path.display().to_string()),
            f.line,
            f.token.id
        );
    }
    eprintln!(
        "scan: {} found; skipped {} binary, {} over {} MB, {} unreadable",
        crate::domain::count(findings.len() as i64, "token", "tokens"),
        skipped.binary,
        skipped.too_large,
        files::MAX_FILE_BYTES / (1024 * 1024),
        skipped.unreadable
    );
    if alarm {
        use std::io::Write;
        std::io::stdout().flush().ok();
        std::process::exit(1);
    }
    Ok(())
}
