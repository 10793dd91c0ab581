//! Accounts and their users: adding them, passwords, the demo account.

use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::input::{Email, NewPassword, PersonName};
use crate::domain::token::to_naive;
use crate::domain::UserId;
use crate::domain::{AuthType, Role};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, NewUser, User};
use crate::services::runtime::passwords::hash_password;
use crate::services::vocabulary::{AccountInfo, Actor, Person, ADMINS_ONLY};

pub struct AddUser {
    /// The account's name; a new name creates the account.
    pub account: String,
    pub email: Email,
    pub name: PersonName,
    pub role: Role,
    pub password: NewPassword,
}

/// Adds a user (and the account, if it is new). The e-mail must be unused in the whole app.
pub fn add_user(conn: &mut DbConn, input: &AddUser, now: OffsetDateTime) -> ServiceResult<User> {
    let account_name = input.account.trim();
    if account_name.is_empty() || account_name.chars().count() > 100 {
        return Err(ServiceError::invalid(
            "account",
            "An account name is 1 to 100 characters.",
        ));
    }
    let hash = hash_password(input.password.expose())?;
    // Reads, then writes: the write lock first on SQLite, so a busy server makes it wait.
    conn.write_transaction(|conn| {
        if User::find_by_email(conn, input.email.as_str())?.is_some() {
            return Err(email_taken());
        }
        let account = match Account::find_by_name(conn, account_name)? {
            Some(account) => account,
            None => Account::insert(conn, account_name, to_naive(now))?,
        };
        let new = NewUser {
            account_id: account.id,
            email: input.email.as_str(),
            name: input.name.as_str(),
            password_hash: Some(&hash),
            role: input.role,
            auth_type: AuthType::Password,
            created_at: to_naive(now),
        };
        User::insert(conn, &new).map_err(|e| match e {
            // Lost a race with another insert of the same address.
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => email_taken(),
            e => e.into(),
        })
    })
}

fn email_taken() -> ServiceError {
    ServiceError::invalid("email", "A user with this e-mail address already exists.")
}

/// A stored e-mail address that `apitokens doctor` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailProblem {
    /// Not in the one normal form (`Email::parse` refuses it, or would store it otherwise):
    /// stored before addresses were normalised.
    NotNormal {
        user_id: i64,
        account_id: i64,
        email: String,
        why: String,
    },
    /// Several users whose addresses are the same once normalised: they look identical on
    /// the Users page. Reported, never merged: which one is the person is for a human to say.
    Duplicates {
        normal: String,
        users: Vec<(i64, i64, String)>,
    },
}

/// The stored e-mail addresses that aren't what `Email::parse` would store today, and the
/// groups of users who are one address once normalised.
pub fn email_problems(conn: &mut DbConn) -> ServiceResult<Vec<EmailProblem>> {
    let mut problems = vec![];
    let mut by_normal: std::collections::BTreeMap<String, Vec<(i64, i64, String)>> =
        Default::default();
    for (user_id, account_id, email) in User::all_emails(conn)? {
        let normal = match Email::parse(&email) {
            Ok(parsed) if parsed.as_str() == email => email.clone(),
            Ok(parsed) => {
                problems.push(EmailProblem::NotNormal {
                    user_id,
                    account_id,
                    email: email.clone(),
                    why: format!("its normal form is {:?}", parsed.as_str()),
                });
                parsed.as_str().to_owned()
            }
            Err(why) => {
                problems.push(EmailProblem::NotNormal {
                    user_id,
                    account_id,
                    email: email.clone(),
                    why,
                });
                // Compared without its invisible characters, as a person reads it.
                Email::normal_form(&email)
                    .chars()
                    .filter(|c| !crate::domain::text::needs_escape(*c))
                    .collect()
            }
        };
        by_normal
            .entry(normal)
            .or_default()
            .push((user_id, account_id, email));
    }
    problems.extend(
        by_normal
            .into_iter()
            .filter(|(_, users)| users.len() > 1)
            .map(|(normal, users)| EmailProblem::Duplicates { normal, users }),
    );
    Ok(problems)
}

/// How to sign in to the demo account created on a brand-new database.
pub struct DemoCredentials {
    pub email: String,
    pub password: String,
}

pub const DEMO_ACCOUNT: &str = "Demo";
pub const DEMO_EMAIL: &str = "admin@demo.example";

/// On a database with no account at all, creates the demo account with one Administrator
/// and a random password. Returns the credentials only when it created them.
pub fn ensure_demo_account(
    conn: &mut DbConn,
    now: OffsetDateTime,
) -> ServiceResult<Option<DemoCredentials>> {
    if Account::count(conn)? > 0 {
        return Ok(None);
    }
    let password = random_password();
    let input = AddUser {
        account: DEMO_ACCOUNT.into(),
        email: Email::parse(DEMO_EMAIL).expect("valid demo e-mail"),
        name: PersonName::parse("Demo Administrator").expect("valid name"),
        role: Role::Administrators,
        password: NewPassword::parse(&password).expect("random password is long enough"),
    };
    match add_user(conn, &input, now) {
        Ok(_) => Ok(Some(DemoCredentials {
            email: DEMO_EMAIL.into(),
            password,
        })),
        // Another instance created it first.
        Err(ServiceError::Invalid(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// 20 characters from an unambiguous alphabet, from the OS CSPRNG.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A user as `actor` may see them: themselves, or anyone of their account for Administrators.
/// Another account's user is "not found"; a colleague, for a non-Administrator, is forbidden.
pub fn visible_user(
    conn: &mut DbConn,
    actor: &Actor,
    id: UserId,
) -> ServiceResult<(User, Account)> {
    let id = id.get();
    let user = User::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if user.account_id != actor.account_id.get() || user.auth_type == AuthType::Service {
        return Err(ServiceError::NotFound);
    }
    if user.id != actor.user_id.get() && !actor.role.is_admin() {
        return Err(ServiceError::Forbidden(ADMINS_ONLY.into()));
    }
    let account = Account::find(conn, user.account_id)?.ok_or(ServiceError::NotFound)?;
    Ok((user, account))
}

/// The account's users (not removed), for Administrators only.
/// One page of the account's users, and how many there are in all.
pub struct UsersListing {
    pub users: Vec<Person>,
    pub total: i64,
    pub account: AccountInfo,
}

pub fn account_users(
    conn: &mut DbConn,
    actor: &Actor,
    limit: i64,
    offset: i64,
) -> ServiceResult<UsersListing> {
    actor.require_admin()?;
    let account = Account::find(conn, actor.account_id.get())?.ok_or(ServiceError::NotFound)?;
    let users = User::page_in_account(conn, actor.account_id.get(), limit.max(0), offset.max(0))?;
    let total = User::count_in_account(conn, actor.account_id.get())?;
    Ok(UsersListing {
        users: users.iter().map(Person::from).collect(),
        total,
        account: AccountInfo::from(account),
    })
}

/// The account, its first Administrator's e-mail, and the users the actor may see
/// (all of them for Administrators, themselves otherwise).
pub fn account_overview(
    conn: &mut DbConn,
    actor: &Actor,
) -> ServiceResult<(AccountInfo, Option<String>, Vec<Person>)> {
    let account = Account::find(conn, actor.account_id.get())?.ok_or(ServiceError::NotFound)?;
    let users = User::list_in_account(conn, actor.account_id.get())?;
    let mut admins: Vec<&User> = users
        .iter()
        .filter(|u| u.role == Role::Administrators)
        .collect();
    admins.sort_by_key(|u| u.id);
    let admin_email = admins.first().map(|u| u.email.clone());
    let visible = users
        .iter()
        .filter(|u| actor.role.is_admin() || u.id == actor.user_id.get())
        .map(Person::from)
        .collect();
    Ok((AccountInfo::from(account), admin_email, visible))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_passwords_are_long_and_differ() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, random_password());
    }
}
