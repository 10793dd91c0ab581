//! `apitokens doctor`: what today's rules would refuse in the stored data — e-mail addresses
//! not in their normal form, people who are one address once normalised. Reports, changes
//! nothing, exits 1 when it found any.

use super::options::{open_database, settings, Options};
use crate::domain::text::escape_controls;
use crate::services::people::accounts::{email_problems, EmailProblem};

pub fn run(options: &Options) -> anyhow::Result<()> {
    let settings = settings(options, false)?;
    let (_, mut conn) = open_database(&settings)?;
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
        crate::domain::count(problems.len() as i64, "problem", "problems")
    );
    use std::io::Write;
    std::io::stdout().flush().ok();
    std::process::exit(1);
}
