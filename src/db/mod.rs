//! The database: one connection type over SQLite and PostgreSQL, a pool, migrations.

pub mod schema;

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// A connection to either backend; all queries in `repo/` are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = r2d2::Pool<ConnManager>;
pub type PooledConn = r2d2::PooledConnection<ConnManager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A `DATABASE_URL`, with the backend chosen from its scheme (never by trial: SQLite would
/// accept almost any string as a file name).
#[derive(Debug, Clone)]
pub struct DbUrl {
    pub backend: Backend,
    /// A file path for SQLite, the whole URL for PostgreSQL.
    target: String,
}

impl DbUrl {
    pub fn parse(url: &str) -> anyhow::Result<DbUrl> {
        let url = url.trim();
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                bail!("DATABASE_URL `{url}` names no file: use sqlite://path/to/apitokens.db");
            }
            return Ok(DbUrl {
                backend: Backend::Sqlite,
                target: path.to_owned(),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl {
                backend: Backend::Postgres,
                target: url.to_owned(),
            });
        }
        bail!(
            "DATABASE_URL must start with sqlite:// or postgres:// (got `{}`)",
            redact(url)
        )
    }

    pub fn sqlite_path(&self) -> Option<&str> {
        (self.backend == Backend::Sqlite).then_some(self.target.as_str())
    }

    /// For messages: the URL without a password.
    pub fn display(&self) -> String {
        redact(&self.target)
    }
}

/// Hides the password of `scheme://user:password@host`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Opens connections of the right backend and prepares SQLite ones.
#[derive(Debug)]
pub struct ConnManager {
    url: DbUrl,
}

impl ManageConnection for ConnManager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match self.url.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.url.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                // Foreign keys are off unless asked for; WAL lets readers run beside a writer;
                // writers wait for each other instead of failing at once.
                conn.batch_execute(
                    "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; \
                     PRAGMA busy_timeout = 15000; PRAGMA synchronous = NORMAL;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
            Backend::Postgres => PgConnection::establish(&self.url.target)
                .map(DbConn::Postgres)
                .map_err(r2d2::Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Builds the pool and checks that the database answers, with a message that says how to fix
/// it when it doesn't.
pub fn connect(url: &DbUrl, max_size: u32) -> anyhow::Result<DbPool> {
    if let Some(path) = url.sqlite_path() {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!(
                        "can't create the directory {} for the SQLite database",
                        dir.display()
                    )
                })?;
            }
        }
    }
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(ConnManager { url: url.clone() })
        .map_err(|e| {
            anyhow!(
                "can't connect to the database {}: {e}. Check DATABASE_URL and that the server runs.",
                url.display()
            )
        })?;
    Ok(pool)
}

/// Applies the migrations this build embeds for the connection's backend; returns how many ran.
pub fn run_migrations(conn: &mut DbConn) -> anyhow::Result<usize> {
    let applied = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    applied.map_err(|e| anyhow!("database migration failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_their_backend_from_the_scheme() {
        let u = DbUrl::parse("sqlite://./data/apitokens.db").unwrap();
        assert_eq!(u.backend, Backend::Sqlite);
        assert_eq!(u.sqlite_path(), Some("./data/apitokens.db"));
        assert_eq!(
            DbUrl::parse("sqlite:x.db").unwrap().sqlite_path(),
            Some("x.db")
        );
        let p = DbUrl::parse("postgres://postgres@127.0.0.1/test").unwrap();
        assert_eq!(p.backend, Backend::Postgres);
        assert!(DbUrl::parse("mysql://x").is_err());
        assert!(DbUrl::parse("./apitokens.db").is_err());
        assert!(DbUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        let err = DbUrl::parse("mysql://bob:hunter2@db/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let p = DbUrl::parse("postgres://bob:hunter2@db/x").unwrap();
        assert_eq!(p.display(), "postgres://bob:***@db/x");
    }

    #[test]
    fn both_backends_have_the_same_migration_names() {
        let names = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let sqlite = names(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"));
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite,
            names(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        );
    }
}
