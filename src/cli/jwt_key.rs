//! `apitokens jwt-key rotate`: a new JWT signing key; the old one stays published and
//! accepted for 24 hours (the life of the last refresh token it signed).

use clap::Subcommand;

use super::options::{jwt_key_path, Options};
use crate::config::{prepare_data_dir, JwtKeyFiles};

#[derive(Subcommand)]
pub enum JwtKey {
    /// Make a new signing key; the old one stays published (and accepted) for 24 hours, until
    /// the last JWT it signed has expired. Restart every instance (with the same files) after.
    Rotate,
}

pub fn run(options: &Options, command: JwtKey) -> anyhow::Result<()> {
    match command {
        JwtKey::Rotate => {
            prepare_data_dir(&options.data_dir)?;
            let path = jwt_key_path(options);
            JwtKeyFiles::rotate(&path)?;
            println!(
                "a new JWT signing key is in {}; the old one, {}.previous, stays valid for 24 hours. \
                 Restart every instance with these files.",
                path.display(),
                path.display()
            );
            Ok(())
        }
    }
}
