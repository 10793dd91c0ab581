//! The database: one connection type over SQLite and PostgreSQL, a pool, migrations.

pub mod schema;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

impl DbConn {
    /// A transaction that will write after it reads: on SQLite it takes the write lock at
    /// its start (`BEGIN IMMEDIATE`), so it waits for other writers (the busy timeout)
    /// instead of failing with "database is locked" when its first write comes after
    /// another connection's commit. PostgreSQL: an ordinary transaction. Inside a
    /// transaction already, it is a savepoint, as `transaction` is.
    pub fn write_transaction<T, E>(
        &mut self,
        f: impl FnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        let outermost = match self {
            DbConn::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
                .transaction_depth()
                .map_err(E::from)?
                .is_none(),
            DbConn::Postgres(_) => false,
        };
        if !outermost {
            return self.transaction(f);
        }
        if let DbConn::Sqlite(c) = self {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE").map_err(E::from)?;
        }
        match f(self) {
            Ok(value) => {
                <Self as Connection>::TransactionManager::commit_transaction(self)
                    .map_err(E::from)?;
                Ok(value)
            }
            Err(e) => {
                let _ = <Self as Connection>::TransactionManager::rollback_transaction(self);
                Err(e)
            }
        }
    }
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

/// Whether the database can be reached, as last seen by this process. It turns "down" when a
/// connection can't be opened or dies under a query, and "up" when one opens again; while it
/// is down, request paths answer 503 at once instead of each waiting for the pool's timeout.
#[derive(Debug, Default)]
pub struct Health {
    down: AtomicBool,
}

impl Health {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Marks the database unreachable; true if it was thought reachable until now.
    pub fn went_down(&self, why: &str) -> bool {
        let changed = !self.down.swap(true, Ordering::AcqRel);
        if changed {
            tracing::warn!(error = %why, "the database is unreachable; answering 503 until it is back");
        }
        changed
    }

    /// Marks the database reachable again.
    pub fn came_back(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("the database is reachable again");
        }
    }
}

/// Opens connections of the right backend and prepares SQLite ones.
#[derive(Debug)]
pub struct ConnManager {
    url: DbUrl,
    /// How long a SQLite connection waits for another writer's lock before giving up.
    busy_timeout: Duration,
    health: Arc<Health>,
}

impl ConnManager {
    fn establish(&self) -> Result<DbConn, r2d2::Error> {
        match self.url.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.url.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                // Foreign keys are off unless asked for; WAL lets readers run beside a writer;
                // writers wait for each other (up to the busy timeout) instead of failing at once.
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; \
                     PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL;",
                    self.busy_timeout.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                // The file holds every token hash and password hash: owner only.
                for suffix in ["", "-wal", "-shm"] {
                    let file = format!("{}{suffix}", self.url.target);
                    let _ = crate::config::set_mode(std::path::Path::new(&file), 0o600);
                }
                Ok(DbConn::Sqlite(conn))
            }
            Backend::Postgres => establish_postgres(&self.url.target)
                .map(DbConn::Postgres)
                .map_err(r2d2::Error::ConnectionError),
        }
    }
}

/// Opens one PostgreSQL connection; every PostgreSQL connection of the process goes through here.
///
/// libpq is built with OpenSSL, and OpenSSL left to initialise itself (as libpq does on its
/// first TLS handshake) registers an `atexit` cleanup that frees its locks while the pool's
/// threads may still be using a connection: the process then dies with SIGSEGV on its way
/// out (openssl/openssl#6214, sfackler/r2d2#137). Initialising it first through `openssl-sys`,
/// which asks for `OPENSSL_INIT_NO_ATEXIT`, leaves the cleanup to the operating system.
pub fn establish_postgres(url: &str) -> diesel::ConnectionResult<PgConnection> {
    openssl_sys::init();
    PgConnection::establish(url)
}

impl ManageConnection for ConnManager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        let opened = self.establish();
        match &opened {
            Ok(_) => self.health.came_back(),
            Err(e) => {
                self.health.went_down(&e.to_string());
            }
        }
        opened
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Why a query failed, when the reason is the database rather than the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// The connection to the server is gone (server stopped, restarted, network cut).
    ConnectionLost,
    /// The database is there but can't take the work now: a SQLite file locked past the busy
    /// timeout, read-only, full or unreadable.
    Busy,
}

/// Tells a database outage from a failed query. PostgreSQL marks lost connections itself
/// (diesel reports `ClosedConnection` when libpq says the connection is bad); SQLite reports
/// only a message, so its few outage messages are matched here, in one place.
pub fn trouble(e: &diesel::result::Error) -> Option<Trouble> {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | Error::BrokenTransactionManager => Some(Trouble::ConnectionLost),
        Error::DatabaseError(_, info) => {
            const SQLITE_OUTAGE: [&str; 6] = [
                "database is locked",
                "database table is locked",
                "readonly database",
                "unable to open database file",
                "disk I/O error",
                "database or disk is full",
            ];
            let message = info.message();
            SQLITE_OUTAGE
                .iter()
                .any(|m| message.contains(m))
                .then_some(Trouble::Busy)
        }
        Error::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => trouble(commit_error).or_else(|| trouble(rollback_error)),
        _ => None,
    }
}

/// r2d2 logs every failed attempt to open a connection at ERROR, many a second during an
/// outage. `Health` says it once when the database goes and once when it is back; the
/// attempts themselves are only worth a debug line.
#[derive(Debug)]
struct QuietErrors;

impl r2d2::HandleError<r2d2::Error> for QuietErrors {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::debug!(error = %error, "database connection attempt failed");
    }
}

/// How a pool waits and what it shares with the rest of the process.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    /// Longest wait for a pooled connection (and for a new one to open) before giving up.
    pub wait: Duration,
    pub health: Arc<Health>,
}

impl PoolOptions {
    pub fn new(max_size: u32, wait: Duration) -> PoolOptions {
        PoolOptions {
            max_size,
            wait,
            health: Arc::default(),
        }
    }
}

/// SQLite writers queue on one lock; a writer waits this many times the pool wait for it.
const SQLITE_BUSY_FACTOR: u32 = 5;

/// Builds the pool and checks that the database answers, with a message that says how to fix
/// it when it doesn't.
pub fn connect(url: &DbUrl, options: &PoolOptions) -> anyhow::Result<DbPool> {
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
        .max_size(options.max_size)
        .min_idle(Some(1))
        .connection_timeout(options.wait)
        .error_handler(Box::new(QuietErrors))
        .build(ConnManager {
            url: url.clone(),
            busy_timeout: options.wait * SQLITE_BUSY_FACTOR,
            health: options.health.clone(),
        })
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

/// True while this build knows migrations the database hasn't had (another instance may be
/// applying them): the instance isn't ready then.
pub fn has_pending_migrations(conn: &mut DbConn) -> anyhow::Result<bool> {
    let pending = match conn {
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
        DbConn::Postgres(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
    };
    pending.map_err(|e| anyhow!("can't read the applied migrations: {e}"))
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

    /// Real SQLite errors: a locked file and a read-only one are outages (503), a broken
    /// query is not.
    #[test]
    fn sqlite_outages_are_told_from_failed_queries() {
        use diesel::RunQueryDsl;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db").display().to_string();
        let mut owner = SqliteConnection::establish(&path).unwrap();
        owner
            .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .unwrap();
        let insert = |conn: &mut SqliteConnection| {
            diesel::sql_query("INSERT INTO t (id) VALUES (1)")
                .execute(conn)
                .unwrap_err()
        };

        let mut other = SqliteConnection::establish(&path).unwrap();
        other.batch_execute("PRAGMA busy_timeout = 0").unwrap();
        owner.batch_execute("BEGIN EXCLUSIVE").unwrap();
        assert_eq!(trouble(&insert(&mut other)), Some(Trouble::Busy));
        owner.batch_execute("ROLLBACK").unwrap();

        let mut read_only = SqliteConnection::establish(&format!("file:{path}?mode=ro")).unwrap();
        assert_eq!(trouble(&insert(&mut read_only)), Some(Trouble::Busy));

        let broken = diesel::sql_query("INSERT INTO nowhere VALUES (1)")
            .execute(&mut owner)
            .unwrap_err();
        assert_eq!(trouble(&broken), None);
        owner
            .batch_execute("INSERT INTO t (id) VALUES (1)")
            .unwrap();
        assert_eq!(trouble(&insert(&mut owner)), None, "a unique violation");
        assert_eq!(trouble(&diesel::result::Error::NotFound), None);
        assert_eq!(
            trouble(&diesel::result::Error::BrokenTransactionManager),
            Some(Trouble::ConnectionLost)
        );
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
