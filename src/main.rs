//! The command line: a thin layer over the library.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use apitokens::config::{prepare_data_dir, JwtKeyFiles, SecretKey, Settings};
use apitokens::db::{self, DbUrl};
use apitokens::domain::input::{Email, NewPassword, PersonName};
use apitokens::domain::{Clock, Role};
use apitokens::error::ServiceError;
use apitokens::services::notices::{self, delivery};
use apitokens::services::people::accounts::{add_user, AddUser};
use apitokens::startup::Application;

/// Permanent API tokens for the people of an account, and a Gcore-compatible API.
#[derive(Parser)]
#[command(name = "apitokens", version, about)]
struct Cli {
    #[command(flatten)]
    options: Options,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Every flag is also an environment variable.
#[derive(Args)]
struct Options {
    /// sqlite://path/to/file.db or postgres://user@host/db [default: sqlite://<data dir>/apitokens.db]
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Directory for the SQLite file, the generated secret key and the mail outbox.
    #[arg(
        long,
        env = "APITOKENS_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(
        long,
        env = "APITOKENS_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    bind: String,
    /// Public address of the app, for links in e-mails; https:// turns on Secure cookies. [default: http://<bind>]
    #[arg(long, env = "APITOKENS_BASE_URL", global = true)]
    base_url: Option<String>,
    /// Key that signs sessions (at least 32 characters); the same on every instance.
    /// [default: generated once into <data dir>/secret_key]
    #[arg(
        long,
        env = "APITOKENS_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    secret_key: Option<String>,
    /// RSA private key (PEM) that signs JWTs; the same on every instance. `<file>.previous`
    /// beside it, if present, is the key it replaced. [default: generated once into
    /// <data dir>/jwt_key.pem]
    #[arg(long, env = "APITOKENS_JWT_KEY_FILE", global = true)]
    jwt_key_file: Option<PathBuf>,
    /// smtp://host:port, smtps://user:pass@host; unset: e-mails are written to <data dir>/outbox/.
    #[arg(
        long,
        env = "APITOKENS_SMTP_URL",
        global = true,
        hide_env_values = true
    )]
    smtp_url: Option<String>,
    /// Sender of e-mails.
    #[arg(
        long,
        env = "APITOKENS_MAIL_FROM",
        default_value = "apitokens <no-reply@localhost>",
        global = true
    )]
    mail_from: String,
    /// How often the server sweeps for expiry notices, in seconds.
    #[arg(
        long,
        env = "APITOKENS_NOTIFY_INTERVAL_SECS",
        default_value_t = 300,
        global = true
    )]
    notify_interval_secs: u64,
    /// Longest wait for a database connection, in milliseconds, before a request answers 503.
    #[arg(
        long,
        env = "APITOKENS_DB_TIMEOUT_MS",
        default_value_t = 1000,
        global = true
    )]
    db_timeout_ms: u64,
    /// While the database is unreachable, a token this instance verified within this many
    /// seconds keeps passing /iam/auth/check (answered with X-Auth-Stale: 1); 0 turns it off.
    #[arg(
        long,
        env = "APITOKENS_OUTAGE_GRACE_SECS",
        default_value_t = 60,
        global = true
    )]
    outage_grace_secs: u64,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For names the
    /// client; from anyone else the header is ignored. [default: none]
    #[arg(
        long,
        env = "APITOKENS_TRUSTED_PROXIES",
        default_value = "",
        global = true
    )]
    trusted_proxies: String,
    /// Serve Prometheus metrics at http://<this address>/metrics (e.g. 127.0.0.1:9100), on a
    /// listener of its own so they are never public by accident. [default: off]
    #[arg(long, env = "APITOKENS_METRICS_BIND", global = true)]
    metrics_bind: Option<String>,
    /// Log lines as text or as JSON objects (one per line).
    #[arg(
        long,
        env = "APITOKENS_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    /// On SIGTERM/SIGINT, seconds /readyz answers 503 while requests are still served.
    #[arg(long, env = "APITOKENS_DRAIN_SECS", default_value_t = 0, global = true)]
    drain_secs: u64,
    /// Then, seconds in-flight requests and a running sweep's current e-mail may take.
    #[arg(
        long,
        env = "APITOKENS_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    shutdown_timeout_secs: u64,
    /// DKIM private key (PEM: RSA, or Ed25519 in PKCS#8); every e-mail is signed for the
    /// sender's domain. Needs --dkim-selector. `apitokens dkim-record` prints the DNS record.
    #[arg(long, env = "APITOKENS_DKIM_KEY", global = true)]
    dkim_key: Option<PathBuf>,
    /// DKIM selector: the record lives at <selector>._domainkey.<sender's domain>.
    #[arg(long, env = "APITOKENS_DKIM_SELECTOR", global = true)]
    dkim_selector: Option<String>,
    /// JSON file of the public keys that sign leak reports, in the shape of GitHub's list
    /// (`{"public_keys": [{"key_identifier", "key": "<PEM>", "is_current"}]}`); turns on
    /// POST /iam/secret-scanning/report. [default: off]
    #[arg(long, env = "APITOKENS_SECRET_SCANNING_KEYS", global = true)]
    secret_scanning_keys: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app and the API (the default).
    Serve,
    /// Apply database migrations and exit (the server also does this on start).
    Migrate,
    /// Run one expiry-notice sweep and exit (for cron): record the notices due, send pending e-mails.
    Notify {
        /// List what would be recorded, without recording or sending anything.
        #[arg(long)]
        dry_run: bool,
        /// Sweep as if it were this instant (RFC 3339, e.g. 2026-12-24T09:00:00Z).
        #[arg(long, value_parser = parse_instant)]
        as_of: Option<time::OffsetDateTime>,
    },
    /// Print the DNS TXT record that publishes the DKIM key (APITOKENS_DKIM_KEY).
    DkimRecord,
    /// Check the stored data for what today's rules would refuse: e-mail addresses not in
    /// their normal form (NFC, lower case, no invisible characters) and people whose addresses
    /// are the same once normalised. Reports, changes nothing; exits 1 when it found any.
    Doctor,
    /// Find apitokens tokens in files (honouring .gitignore, skipping binaries) and print
    /// `file:line: token id N (status)`, never the secret. The status comes from the database
    /// when DATABASE_URL is set (or the default SQLite file exists). Exits 1 when an active
    /// token (or, with no database to ask, any token) was found, also when --revoke revoked
    /// it (it is still in the file): use it as a pre-commit hook or a CI step.
    Scan {
        /// Files or directories to scan [default: .]
        paths: Vec<PathBuf>,
        /// Delete the active tokens found, with the tokens they created (recorded in the
        /// account's activity as "revoked: found in <file>").
        #[arg(long)]
        revoke: bool,
    },
    /// Make a new SCIM token for an account and print it (shown this once; only its SHA-256
    /// is kept). It replaces the account's old one, which stops working at once. Give it to the
    /// identity provider with the base URL <APITOKENS_BASE_URL>/scim/v2.
    ScimToken {
        /// The account's name.
        #[arg(long)]
        account: String,
    },
    /// Manage the key that signs JWTs.
    JwtKey {
        #[command(subcommand)]
        command: JwtKeyCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum JwtKeyCommand {
    /// Make a new signing key; the old one stays published (and accepted) for 24 hours, until
    /// the last JWT it signed has expired. Restart every instance (with the same files) after.
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user (and the account, if it is new); prints the new user's id.
    Add {
        /// Account name; a new name creates the account.
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        /// The person's name.
        #[arg(long)]
        name: String,
        /// Role id or name: 1 Administrators, 5 Engineers, 3009 "Purge and Prefetch only (API+Web)",
        /// 3022 "Purge and Prefetch only (API)", 2 Users.
        #[arg(long)]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,actix_server=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.options.log_format {
        // One JSON object per line, with the request's span (its id) on each.
        LogFormat::Json => logs.json().with_current_span(true).init(),
        LogFormat::Text => logs.with_ansi(colour_logs()).init(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Colours only for a person at a terminal: never into a file, a pipe or a log collector, and
/// never when `NO_COLOR` is set (https://no-color.org).
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("can't start the async runtime")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(settings(&cli.options, true)?)),
        Command::Migrate => {
            let settings = settings(&cli.options, false)?;
            let url = DbUrl::parse(&settings.database_url)?;
            let pool = db::connect(&url, &cli_pool(&settings))?;
            let applied = db::run_migrations(&mut *pool.get()?)?;
            println!(
                "{} applied to {}",
                apitokens::domain::count(applied as i64, "migration", "migrations"),
                url.display()
            );
            Ok(())
        }
        Command::Notify { dry_run, as_of } => {
            let settings = settings(&cli.options, false)?;
            let url = DbUrl::parse(&settings.database_url)?;
            let pool = db::connect(&url, &cli_pool(&settings))?;
            let mut conn = pool.get()?;
            db::run_migrations(&mut conn)?;
            let now = as_of.unwrap_or_else(|| Clock::default().now());
            if dry_run {
                let planned = notices::plan::plan(&mut conn, now)?;
                for p in &planned {
                    println!(
                        "{}\ttoken {} \"{}\"\tto {}\te-mail {}",
                        p.kind.code(),
                        p.token_id,
                        p.token_name,
                        p.recipient_email,
                        if p.email_wanted {
                            "on"
                        } else {
                            "off (in-app only)"
                        }
                    );
                }
                println!(
                    "dry run: {} due as of {now}; nothing recorded or sent",
                    apitokens::domain::count(planned.len() as i64, "notice", "notices")
                );
                return Ok(());
            }
            let mail = delivery::Mail::from_settings(&settings)?;
            let (recorded, d) = delivery::sweep(
                &mut conn,
                &mail,
                now,
                &std::sync::atomic::AtomicBool::new(false),
            )?;
            println!(
                "recorded {recorded}, sent {} in {} e-mails, failed {}, skipped {} (e-mail off), cancelled {}",
                d.sent, d.emails, d.failed, d.skipped, d.cancelled
            );
            Ok(())
        }
        Command::Scan { paths, revoke } => scan(&cli.options, paths, revoke),
        Command::Doctor => doctor(&cli.options),
        Command::ScimToken { account } => {
            let settings = settings(&cli.options, false)?;
            let url = DbUrl::parse(&settings.database_url)?;
            let pool = db::connect(&url, &cli_pool(&settings))?;
            let mut conn = pool.get()?;
            db::run_migrations(&mut conn)?;
            let found = apitokens::repo::Account::find_by_name(&mut conn, &account)?
                .with_context(|| format!("there is no account named `{account}`"))?;
            let token = apitokens::services::people::scim::issue_token(
                &mut conn,
                found.id,
                None,
                Clock::default().now(),
            )?;
            println!("{token}");
            eprintln!(
                "SCIM base URL: {}/scim/v2 (the account's old SCIM token, if any, stopped working)",
                settings.base_url
            );
            Ok(())
        }
        Command::DkimRecord => {
            let settings = settings(&cli.options, false)?;
            let Some((path, selector)) = &settings.dkim else {
                anyhow::bail!("set APITOKENS_DKIM_KEY and APITOKENS_DKIM_SELECTOR first");
            };
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("can't read {}", path.display()))?;
            let key = apitokens::email::DkimKey::from_pem(&pem)?;
            let domain = apitokens::email::sender_domain(&settings.mail_from)?;
            println!(
                "{selector}._domainkey.{domain}. IN TXT \"{}\"",
                key.dns_record()?
            );
            Ok(())
        }
        Command::JwtKey {
            command: JwtKeyCommand::Rotate,
        } => {
            prepare_data_dir(&cli.options.data_dir)?;
            let path = jwt_key_path(&cli.options);
            JwtKeyFiles::rotate(&path)?;
            println!(
                "a new JWT signing key is in {}; the old one, {}.previous, stays valid for 24 hours. \
                 Restart every instance with these files.",
                path.display(),
                path.display()
            );
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    account,
                    email,
                    name,
                    role,
                    password_stdin: _,
                },
        } => {
            let settings = settings(&cli.options, false)?;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("can't read the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            let input = AddUser {
                account,
                email: Email::parse(&email).map_err(anyhow::Error::msg)?,
                name: PersonName::parse(&name).map_err(anyhow::Error::msg)?,
                role: Role::parse(&role).with_context(|| {
                    format!("unknown role `{role}`: use an id (1, 5, 3009, 3022, 2) or a name such as Engineers")
                })?,
                password: NewPassword::parse(password).map_err(anyhow::Error::msg)?,
            };
            let url = DbUrl::parse(&settings.database_url)?;
            let pool = db::connect(&url, &cli_pool(&settings))?;
            let mut conn = pool.get()?;
            db::run_migrations(&mut conn)?;
            match add_user(&mut conn, &input, Clock::default().now()) {
                Ok(user) => {
                    println!("{}", user.id);
                    Ok(())
                }
                Err(ServiceError::Invalid(fields)) => {
                    bail!(
                        "{}",
                        fields
                            .into_iter()
                            .map(|(_, m)| m)
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// `apitokens doctor`: see `Command::Doctor`.
fn doctor(options: &Options) -> anyhow::Result<()> {
    use apitokens::domain::text::escape_controls;
    use apitokens::services::people::accounts::{email_problems, EmailProblem};
    let settings = settings(options, false)?;
    let url = DbUrl::parse(&settings.database_url)?;
    let pool = db::connect(&url, &cli_pool(&settings))?;
    let mut conn = pool.get()?;
    db::run_migrations(&mut conn)?;
    let problems = email_problems(&mut conn)?;
    for problem in &problems {
        match problem {
            EmailProblem::NotNormal {
                user_id,
                account_id,
                email,
                why,
            } => println!(
                "user {user_id} (account {account_id}): e-mail \"{}\" is not in normal form: {}",
                escape_controls(email),
                escape_controls(why)
            ),
            EmailProblem::Duplicates { normal, users } => println!(
                "users {} share the address {} once normalised: {}",
                users
                    .iter()
                    .map(|(id, _, _)| id.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                escape_controls(normal),
                users
                    .iter()
                    .map(|(id, account, email)| format!(
                        "user {id} (account {account}) \"{}\"",
                        escape_controls(email)
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }
    if problems.is_empty() {
        println!("doctor: nothing to report");
        return Ok(());
    }
    eprintln!(
        "doctor: {} found; nothing was changed (merge or fix them by hand)",
        apitokens::domain::count(problems.len() as i64, "problem", "problems")
    );
    use std::io::Write;
    std::io::stdout().flush().ok();
    std::process::exit(1);
}

/// `apitokens scan`: see `Command::Scan`.
fn scan(options: &Options, paths: Vec<PathBuf>, revoke: bool) -> anyhow::Result<()> {
    use apitokens::domain::text::escape_controls;
    use apitokens::domain::token::TokenStatus;
    use apitokens::services::scan;
    use apitokens::services::tokens::{revoke_found, status_of_presented, FoundToken};

    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths
    };
    let (findings, skipped) = scan::scan(&paths);
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
                    match revoke_found(&mut conn, &f.token, &where_found, now)? {
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
        apitokens::domain::count(findings.len() as i64, "token", "tokens"),
        skipped.binary,
        skipped.too_large,
        scan::MAX_FILE_BYTES / (1024 * 1024),
        skipped.unreadable
    );
    if alarm {
        use std::io::Write;
        std::io::stdout().flush().ok();
        std::process::exit(1);
    }
    Ok(())
}

fn settings(o: &Options, create_demo: bool) -> anyhow::Result<Settings> {
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
        trusted_proxies: apitokens::config::parse_trusted_proxies(&o.trusted_proxies)?,
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
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let base_url = settings.base_url.clone();
    let app = Application::build(settings, Clock::default()).await?;
    println!(
        "apitokens is listening on port {}: open {base_url}/",
        app.port()
    );
    if let Some(demo) = &app.demo {
        println!();
        println!("A demo account was created. Sign in with:");
        println!("  e-mail:   {}", demo.email);
        println!("  password: {}", demo.password);
        println!("This is shown only this once. Add users with `apitokens user add --help`.");
        println!();
    }
    app.run_until(apitokens::startup::shutdown_signal())
        .await
        .context("the server stopped with an error")
}

fn jwt_key_path(o: &Options) -> PathBuf {
    o.jwt_key_file
        .clone()
        .unwrap_or_else(|| o.data_dir.join("jwt_key.pem"))
}

/// The one connection of a command-line run: it may wait longer than a request (for the
/// server's writers, say).
fn cli_pool(settings: &Settings) -> db::PoolOptions {
    db::PoolOptions::new(1, settings.db_wait * 10)
}

fn parse_instant(value: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|at| at.replace_nanosecond(0).unwrap_or(at))
        .map_err(|_| format!("`{value}` is not an RFC 3339 instant like 2026-12-24T09:00:00Z"))
}
