//! `apitokens notify [--dry-run] [--as-of INSTANT]`: one expiry-notice sweep, then exit (for
//! cron): record the notices due and send the pending e-mails, or, dry, list what would be.

use std::sync::atomic::AtomicBool;

use clap::Args;

use super::options::{open_database, parse_instant, settings, Options};
use crate::domain::Clock;
use crate::services::notices::{delivery, plan};

/// Run one expiry-notice sweep and exit (for cron): record the notices due, send pending e-mails.
#[derive(Args)]
pub struct Notify {
    /// List what would be recorded, without recording or sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Sweep as if it were this instant (RFC 3339, e.g. 2026-12-24T09:00:00Z).
    #[arg(long, value_parser = parse_instant)]
    pub as_of: Option<time::OffsetDateTime>,
}

pub fn run(options: &Options, args: Notify) -> anyhow::Result<()> {
    let settings = settings(options, false)?;
    let (_, mut conn) = open_database(&settings)?;
    let now = args.as_of.unwrap_or_else(|| Clock::default().now());
    if args.dry_run {
        let planned = plan::plan(&mut conn, now)?;
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
            crate::domain::count(planned.len() as i64, "notice", "notices")
        );
        return Ok(());
    }
    if options.base_url.is_none() {
        // From cron nothing says where the portal is: the links would point at this machine.
        eprintln!(
            "warning: APITOKENS_BASE_URL is not set, so the e-mails link to {}; set it to the portal's public address (as the server has it)",
            settings.base_url
        );
    }
    let mail = delivery::Mail::from_settings(&settings)?;
    let (recorded, d) = delivery::sweep(&mut conn, &mail, now, &AtomicBool::new(false))?;
    println!(
        "recorded {recorded}, sent {} in {} e-mails, failed {}, skipped {} (e-mail off), cancelled {}",
        d.sent, d.emails, d.failed, d.skipped, d.cancelled
    );
    Ok(())
}
