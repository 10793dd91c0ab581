//! `apitokens migrate`: apply the database migrations this build has and exit (the server does
//! it on start too).

use super::options::{cli_pool, settings, Options};
use crate::db::{self, DbUrl};

pub fn run(options: &Options) -> anyhow::Result<()> {
    let settings = settings(options, false)?;
    let url = DbUrl::parse(&settings.database_url)?;
    let pool = db::connect(&url, &cli_pool(&settings))?;
    let applied = db::run_migrations(&mut *pool.get()?)?;
    println!(
        "{} applied to {}",
        crate::domain::count(applied as i64, "migration", "migrations"),
        url.display()
    );
    Ok(())
}
