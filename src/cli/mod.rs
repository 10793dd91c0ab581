//! The command line, a table of contents: `Cli` parses, `run` dispatches, and each command
//! lives in a file of its own (`serve`, `migrate`, `user`, `notify`, `scan`, `scim_token`,
//! `dkim_record`, `jwt_key`, `doctor`); `options` is what they all read.

pub mod dkim_record;
pub mod doctor;
pub mod files;
pub mod jwt_key;
pub mod migrate;
pub mod notify;
pub mod options;
pub mod scan;
pub mod scim_token;
pub mod serve;
pub mod user;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use options::{settings, LogFormat, Options};

/// Permanent API tokens for the people of an account, and a Gcore-compatible API.
#[derive(Parser)]
#[command(name = "apitokens", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub options: Options,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the web app and the API (the default).
    Serve,
    /// Apply database migrations and exit (the server also does this on start).
    Migrate,
    /// Run one expiry-notice sweep and exit (for cron): record the notices due, send pending e-mails.
    Notify(notify::Notify),
    /// Print the DNS TXT record that publishes the DKIM key (APITOKENS_DKIM_KEY).
    DkimRecord,
    /// Check the stored data for what today's rules would refuse: e-mail addresses not in
    /// their normal form (NFC, lower case, no invisible characters) and people whose addresses
    /// are the same once normalised. Reports, changes nothing; exits 1 when it found any.
    Doctor,
    /// Find apitokens tokens in files and tell their status (see `scan --help`).
    Scan(scan::Scan),
    /// Make a new SCIM token for an account and print it (shown this once).
    ScimToken(scim_token::ScimToken),
    /// Manage the key that signs JWTs.
    JwtKey {
        #[command(subcommand)]
        command: jwt_key::JwtKey,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: user::User,
    },
}

/// Parses the command line, sets up logging and runs the command.
pub fn main() -> ExitCode {
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

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let o = &cli.options;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("can't start the async runtime")?;
            runtime.block_on(serve::run(settings(o, true)?))
        }
        Command::Migrate => migrate::run(o),
        Command::Notify(args) => notify::run(o, args),
        Command::DkimRecord => dkim_record::run(o),
        Command::Doctor => doctor::run(o),
        Command::Scan(args) => scan::run(o, args),
        Command::ScimToken(args) => scim_token::run(o, args),
        Command::JwtKey { command } => jwt_key::run(o, command),
        Command::User { command } => user::run(o, command),
    }
}
