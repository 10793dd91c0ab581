//! `apitokens scim-token --account NAME`: a new SCIM bearer token for an account, printed once
//! (only its SHA-256 is kept); the old one stops working at once.

use anyhow::Context;
use clap::Args;

use super::options::{open_database, settings, Options};
use crate::domain::Clock;

/// Make a new SCIM token for an account and print it (shown this once; only its SHA-256
/// is kept). It replaces the account's old one, which stops working at once. Give it to the
/// identity provider with the base URL <APITOKENS_BASE_URL>/scim/v2.
#[derive(Args)]
pub struct ScimToken {
    /// The account's name.
    #[arg(long)]
    pub account: String,
}

pub fn run(options: &Options, args: ScimToken) -> anyhow::Result<()> {
    let settings = settings(options, false)?;
    let (_, mut conn) = open_database(&settings)?;
    let found = crate::repo::Account::find_by_name(&mut conn, &args.account)?
        .with_context(|| format!("there is no account named `{}`", args.account))?;
    let token = crate::services::people::scim::issue_token(
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
