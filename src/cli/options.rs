//! What every command reads: the flags (each also an environment variable, defaults that run
//! offline), turned into `Settings`, and the one database connection a command-line run uses.
// The flags' doc comments are their `--help` text, where `<data dir>` reads as a placeholder.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config::{prepare_data_dir, JwtKeyFiles, SecretKey, Settings};
use crate::db::{self, DbUrl};

/// Every flag is also an environment variable. In a command's `--help` they come after the
/// command's own options, under a heading of their own.
#[derive(Args)]
#[command(next_help_heading = "Settings (every command; each also an environment variable)")]
pub struct Options {
    /// sqlite://path/to/file.db or postgres://user@host/db [default: sqlite://<data dir>/apitokens.db]
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for the SQLite file, the generated secret key and the mail outbox.
    #[arg(
        long,
        env = "APITOKENS_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(
        long,
        env = "APITOKENS_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// Public address of the app, for links in e-mails; https:// turns on Secure cookies. [default: http://<bind>]
    #[arg(long, env = "APITOKENS_BASE_URL", global = true)]
    pub base_url: Option<String>,
    /// Key that signs sessions (at least 32 characters); the same on every instance.
    /// [default: generated once into <data dir>/secret_key]
    #[arg(
        long,
        env = "APITOKENS_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
    /// RSA private key (PEM) that signs JWTs; the same on every instance. `<file>.previous`
    /// beside it, if present, is the key it replaced. [default: generated once into
    /// <data dir>/jwt_key.pem]
    #[arg(long, env = "APITOKENS_JWT_KEY_FILE", global = true)]
    pub jwt_key_file: Option<PathBuf>,
    /// smtp://host:port, smtps://user:pass@host; unset: e-mails are written to <data dir>/outbox/.
    #[arg(
        long,
        env = "APITOKENS_SMTP_URL",
        global = true,
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,
    /// Sender of e-mails.
    #[arg(
        long,
        env = "APITOKENS_MAIL_FROM",
        default_value = "apitokens <no-reply@localhost>",
        global = true
    )]
    pub mail_from: String,
    /// How often the server sweeps for expiry notices, in seconds.
    #[arg(
        long,
        env = "APITOKENS_NOTIFY_INTERVAL_SECS",
        default_value_t = 300,
        global = true
    )]
    pub notify_interval_secs: u64,
    /// Longest wait for a database connection, in milliseconds, before a request answers 503.
    #[arg(
        long,
        env = "APITOKENS_DB_TIMEOUT_MS",
        default_value_t = 1000,
        global = true
    )]
    pub db_timeout_ms: u64,
    /// While the database is unreachable, a token this instance verified within this many
    /// seconds keeps passing /iam/auth/check (answered with X-Auth-Stale: 1); 0 turns it off.
    #[arg(
        long,
        env = "APITOKENS_OUTAGE_GRACE_SECS",
        default_value_t = 60,
        global = true
    )]
    pub outage_grace_secs: u64,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For names the
    /// client; from anyone else the header is ignored. [default: none]
    #[arg(
        long,
        env = "APITOKENS_TRUSTED_PROXIES",
        default_value = "",
        global = true
    )]
    pub trusted_proxies: String,
    /// Serve Prometheus metrics at http://<this address>/metrics (e.g. 127.0.0.1:9100), on a
    /// listener of its own so they are never public by accident. [default: off]
    #[arg(long, env = "APITOKENS_METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,
    /// Log lines as text or as JSON objects (one per line).
    #[arg(
        long,
        env = "APITOKENS_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// On SIGTERM/SIGINT, seconds /readyz answers 503 while requests are still served.
    #[arg(long, env = "APITOKENS_DRAIN_SECS", default_value_t = 0, global = true)]
    pub drain_secs: u64,
    /// Then, seconds in-flight requests and a running sweep's current e-mail may take.
    #[arg(
        long,
        env = "APITOKENS_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_timeout_secs: u64,
    /// Seconds after the password (and second factor) was last given during which powerful
    /// acts (an Administrators or never-expiring token, a role change, a removal, a policy, a
    /// SCIM token) don't ask for it again.
    #[arg(
        long,
        env = "APITOKENS_SUDO_SECS",
        default_value_t = 900,
        global = true
    )]
    pub sudo_secs: u64,

    /// OpenID Connect issuers allowed over plain http (comma-separated URLs; for tests and
    /// local providers). Every other issuer must be https.
    #[arg(
        long,
        env = "APITOKENS_INSECURE_ISSUERS",
        default_value = "",
        global = true
    )]
    pub insecure_issuers: String,
    /// Webhook hosts allowed over plain http and on private or loopback addresses
    /// (comma-separated host names or addresses, no ports; for tests and internal receivers).
    /// Every other endpoint must be https on a public address.
    #[arg(
        long,
        env = "APITOKENS_WEBHOOK_ALLOW_HOSTS",
        default_value = "",
        global = true
    )]
    pub webhook_allow_hosts: String,
    /// DKIM private key (PEM: RSA, or Ed25519 in PKCS#8); every e-mail is signed for the
    /// sender's domain. Needs --dkim-selector. `apitokens dkim-record` prints the DNS record.
    #[arg(long, env = "APITOKENS_DKIM_KEY", global = true)]
    pub dkim_key: Option<PathBuf>,
    /// DKIM selector: the record lives at <selector>._domainkey.<sender's domain>.
    #[arg(long, env = "APITOKENS_DKIM_SELECTOR", global = true)]
    pub dkim_selector: Option<String>,
    /// JSON file of the public keys that sign leak reports, in the shape of GitHub's list
    /// (`{"public_keys": [{"key_identifier", "key": "<PEM>", "is_current"}]}`); turns on
    /// POST /iam/secret-scanning/report. [default: off]
    #[arg(long, env = "APITOKENS_SECRET_SCANNING_KEYS", global = true)]
    pub secret_scanning_keys: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn settings(o: &Options, create_demo: bool) -> anyhow::Result<Settings> {
    prepare_data_dir(&o.data_dir)?;
    let secret_key = match &o.secret_key {
        Some(text) => SecretKey::from_text(text)?,
        None => SecretKey::load_or_create(&o.data_dir)?,
    };
    let jwt_path = jwt_key_path(o);
    let jwt_keys = JwtKeyFiles::load(&jwt_path, o.jwt_key_file.is_none())?;
    let database_url = o
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", o.data_dir.join("apitokens.db").display()));
    Ok(Settings {
        database_url,
        data_dir: o.data_dir.clone(),
        base_url: o
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", o.bind))
            .trim_end_matches('/')
            .to_owned(),
        bind: o.bind.clone(),
        secret_key,
        jwt_keys,
        smtp_url: o.smtp_url.clone(),
        mail_from: o.mail_from.clone(),
        notify_interval: Duration::from_secs(o.notify_interval_secs.max(1)),
        create_demo,
        workers: None,
        db_pool_size: 16,
        db_wait: Duration::from_millis(o.db_timeout_ms.clamp(50, 60_000)),
        outage_grace: Duration::from_secs(o.outage_grace_secs),
        trusted_proxies: crate::config::parse_trusted_proxies(&o.trusted_proxies)?,
        metrics_bind: o.metrics_bind.clone().filter(|b| !b.trim().is_empty()),
        dkim: match (&o.dkim_key, &o.dkim_selector) {
            (Some(key), Some(selector)) if !selector.trim().is_empty() => {
                Some((key.clone(), selector.trim().to_owned()))
            }
            (None, _) => None,
            (Some(_), _) => anyhow::bail!(
                "APITOKENS_DKIM_KEY is set but APITOKENS_DKIM_SELECTOR is not: set the selector your DNS record is published under (e.g. apitokens)"
            ),
        },
        secret_scanning_keys: o
            .secret_scanning_keys
            .clone()
            .filter(|p| !p.as_os_str().is_empty()),
        drain: Duration::from_secs(o.drain_secs.min(300)),
        shutdown_timeout: Duration::from_secs(o.shutdown_timeout_secs.min(600)),
        sudo_window: Duration::from_secs(o.sudo_secs.clamp(60, 86_400)),
        insecure_issuers: o
            .insecure_issuers
            .split(',')
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
            .collect(),
        webhook_allow_hosts: o
            .webhook_allow_hosts
            .split(',')
            .map(|h| h.trim().trim_start_matches('[').trim_end_matches(']').to_owned())
            .filter(|h| !h.is_empty())
            .collect(),
    })
}

pub fn jwt_key_path(o: &Options) -> PathBuf {
    o.jwt_key_file
        .clone()
        .unwrap_or_else(|| o.data_dir.join("jwt_key.pem"))
}

/// The one connection of a command-line run: it may wait longer than a request (for the
/// server's writers, say).
pub fn cli_pool(settings: &Settings) -> db::PoolOptions {
    db::PoolOptions::new(1, settings.db_wait * 10)
}

/// The database of `settings`, migrated, as the one connection of a command-line run.
pub fn open_database(settings: &Settings) -> anyhow::Result<(DbUrl, db::PooledConn)> {
    let url = DbUrl::parse(&settings.database_url)?;
    let pool = db::connect(&url, &cli_pool(settings))?;
    let mut conn = pool.get()?;
    db::run_migrations(&mut conn)?;
    Ok((url, conn))
}

pub fn parse_instant(value: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|at| at.replace_nanosecond(0).unwrap_or(at))
        .map_err(|_| format!("`{value}` is not an RFC 3339 instant like 2026-12-24T09:00:00Z"))
}
