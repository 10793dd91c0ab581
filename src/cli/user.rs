//! `apitokens user add` and `apitokens user set-password`: a person added (and the account,
//! if new), or an operator's new password for someone locked out; the password is read from
//! standard input, never from the command line (where `ps` and shell history would see it).

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;

use super::options::{open_database, settings, Options};
use crate::domain::input::{Email, NewPassword, PersonName};
use crate::domain::{Clock, Role};
use crate::error::ServiceError;
use crate::services::people::accounts::{add_user, AddUser};
use crate::services::people::passwords::{operator_target, replace_password, HowChanged};
use crate::services::runtime::passwords::hash_password;

#[derive(Subcommand)]
pub enum User {
    /// Add a user (and the account, if it is new); prints the new user's id.
    Add {
        /// The account's name. An existing account is matched whatever the case ("demo" is
        /// the account "Demo"); a new name creates the account.
        #[arg(long)]
        account: String,
        /// The person's e-mail address, which they sign in with.
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
    /// Set the password of a person who signs in with one (for someone locked out who can't
    /// use "Forgot password?"). Every session and JWT of theirs ends, every set-password link
    /// stops working, the account's audit trail records it and the person is told by e-mail.
    SetPassword {
        /// The person's e-mail address.
        #[arg(long)]
        email: String,
        /// Read the new password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

fn read_password() -> anyhow::Result<NewPassword> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("can't read the password from standard input")?;
    NewPassword::parse(line.trim_end_matches(['\r', '\n'])).map_err(anyhow::Error::msg)
}

fn refusal(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid(fields) => anyhow::anyhow!(
            "{}",
            fields
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        e => e.into(),
    }
}

pub fn run(options: &Options, command: User) -> anyhow::Result<()> {
    match command {
        User::Add {
            account,
            email,
            name,
            role,
            password_stdin: _,
        } => add(options, account, email, name, role),
        User::SetPassword {
            email,
            password_stdin: _,
        } => set_password(options, email),
    }
}

fn add(
    options: &Options,
    account: String,
    email: String,
    name: String,
    role: String,
) -> anyhow::Result<()> {
    let settings = settings(options, false)?;
    let password = read_password()?;
    let input = AddUser {
        account,
        email: Email::parse(&email).map_err(anyhow::Error::msg)?,
        name: PersonName::parse(&name).map_err(anyhow::Error::msg)?,
        role: Role::parse(&role).with_context(|| {
            format!("unknown role `{role}`: use an id (1, 5, 3009, 3022, 2) or a name such as Engineers")
        })?,
        password,
    };
    let (_, mut conn) = open_database(&settings)?;
    let user = add_user(&mut conn, &input, Clock::default().now()).map_err(refusal)?;
    println!("{}", user.id);
    Ok(())
}

fn set_password(options: &Options, email: String) -> anyhow::Result<()> {
    let settings = settings(options, false)?;
    let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
    let password = read_password()?;
    let (_, mut conn) = open_database(&settings)?;
    let user = operator_target(&mut conn, email.as_str()).map_err(refusal)?;
    let hashed = hash_password(password.expose()).map_err(refusal)?;
    let now = Clock::default().now();
    replace_password(&mut conn, &user, &hashed, HowChanged::Operator, None, now)
        .map_err(refusal)?;
    // The person hears of it, as from the portal; the mail failing doesn't undo the change.
    let mail = crate::services::notices::Mail::from_settings(&settings)?;
    let facts = crate::services::notices::messages::ChangedMail {
        recipient: crate::email::Recipient {
            name: user.display_name().to_owned(),
            email: user.email.clone(),
        },
        how: HowChanged::Operator.words(),
        when: crate::domain::text::utc_minute(now),
    };
    let sent =
        crate::services::notices::messages::changed_message(&mail.from, &facts, &mail.base_url)
            .and_then(|m| mail.mailer.send(&m));
    match sent {
        Ok(()) => eprintln!("The password of {} is set; every session and JWT of theirs has ended; they were told by e-mail.", user.email),
        Err(e) => eprintln!("The password of {} is set; every session and JWT of theirs has ended. The e-mail telling them was not sent: {e}", user.email),
    }
    Ok(())
}
