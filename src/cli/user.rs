//! `apitokens user add`: add a person (and the account, if new) from the command line, the
//! password read from standard input; prints the new user's id.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::Subcommand;

use super::options::{open_database, settings, Options};
use crate::domain::input::{Email, NewPassword, PersonName};
use crate::domain::{Clock, Role};
use crate::error::ServiceError;
use crate::services::people::accounts::{add_user, AddUser};

#[derive(Subcommand)]
pub enum User {
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

pub fn run(options: &Options, command: User) -> anyhow::Result<()> {
    let User::Add {
        account,
        email,
        name,
        role,
        password_stdin: _,
    } = command;
    let settings = settings(options, false)?;
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
    let (_, mut conn) = open_database(&settings)?;
    match add_user(&mut conn, &input, Clock::default().now()) {
        Ok(user) => {
            println!("{}", user.id);
            Ok(())
        }
        Err(ServiceError::Invalid(fields)) => bail!(
            "{}",
            fields
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Err(e) => Err(e.into()),
    }
}
