//! Accounts and their users: adding them, passwords, the demo account.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::Argon2;
use diesel::Connection;
use time::OffsetDateTime;

use super::{Actor, Services, ADMINS_ONLY};
use crate::db::DbConn;
use crate::domain::input::{Email, NewPassword, PersonName};
use crate::domain::token::to_naive;
use crate::domain::{AuthType, Role};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, NewUser, User};

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
    conn.transaction(|conn| {
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

/// Argon2id with the crate's recommended parameters and a random salt.
pub fn hash_password(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("password hashing failed: {e}")))
}

thread_local! {
    /// Argon2's working memory (19 MiB), allocated once per thread that verifies and reused:
    /// letting the crate allocate it per call leaves every freed copy in the allocator of
    /// whichever thread ran it, and a sign-in flood then grew the process by hundreds of MB.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks a password against a stored hash (PHC string, any Argon2 variant and parameters);
/// a damaged hash never matches. Compares in constant time.
pub fn verify_password(stored: &str, password: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        argon2::Algorithm::try_from(parsed.algorithm),
        argon2::Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let hashed = ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon.hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut memory[..blocks],
        )
    });
    hashed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A hash to verify against when the e-mail is unknown, so a wrong address takes as long
/// as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password").expect("hashing works"))
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
pub fn visible_user(conn: &mut DbConn, actor: &Actor, id: i64) -> ServiceResult<(User, Account)> {
    let user = User::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if user.account_id != actor.account_id {
        return Err(ServiceError::NotFound);
    }
    if user.id != actor.user_id && !actor.role.is_admin() {
        return Err(ServiceError::Forbidden(ADMINS_ONLY.into()));
    }
    let account = Account::find(conn, user.account_id)?.ok_or(ServiceError::NotFound)?;
    Ok((user, account))
}

/// The account's users (not removed), for Administrators only.
/// One page of the account's users, and how many there are in all.
pub struct UsersListing {
    pub users: Vec<User>,
    pub total: i64,
    pub account: Account,
}

pub fn account_users(
    conn: &mut DbConn,
    actor: &Actor,
    limit: i64,
    offset: i64,
) -> ServiceResult<UsersListing> {
    actor.require_admin()?;
    let account = Account::find(conn, actor.account_id)?.ok_or(ServiceError::NotFound)?;
    let users = User::page_in_account(conn, actor.account_id, limit.max(0), offset.max(0))?;
    let total = User::count_in_account(conn, actor.account_id)?;
    Ok(UsersListing {
        users,
        total,
        account,
    })
}

/// The account, its first Administrator's e-mail, and the users the actor may see
/// (all of them for Administrators, themselves otherwise).
pub fn account_overview(
    conn: &mut DbConn,
    actor: &Actor,
) -> ServiceResult<(Account, Option<String>, Vec<User>)> {
    let account = Account::find(conn, actor.account_id)?.ok_or(ServiceError::NotFound)?;
    let users = User::list_in_account(conn, actor.account_id)?;
    let mut admins: Vec<&User> = users
        .iter()
        .filter(|u| u.role == Role::Administrators)
        .collect();
    admins.sort_by_key(|u| u.id);
    let admin_email = admins.first().map(|u| u.email.clone());
    let visible = users
        .into_iter()
        .filter(|u| actor.role.is_admin() || u.id == actor.user_id)
        .collect();
    Ok((account, admin_email, visible))
}

impl Services {
    /// A user as `actor` may see them (see `visible_user`).
    pub async fn user(&self, actor: Actor, id: i64) -> ServiceResult<(User, Account)> {
        self.db
            .run(move |conn| visible_user(conn, &actor, id))
            .await
    }

    /// The account's users, Administrators only (see `account_users`).
    pub async fn account_users(
        &self,
        actor: Actor,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<UsersListing> {
        self.db
            .run(move |conn| account_users(conn, &actor, limit, offset))
            .await
    }

    /// The account overview (see `account_overview`).
    pub async fn account_overview(
        &self,
        actor: Actor,
    ) -> ServiceResult<(Account, Option<String>, Vec<User>)> {
        self.db
            .run(move |conn| account_overview(conn, &actor))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("garbage", "correct horse battery"));
        // Hashes made with other parameters and variants (an older install, another tool)
        // verify too: the working memory follows the hash's own parameters.
        for (algorithm, m) in [
            (argon2::Algorithm::Argon2i, 8192),
            (argon2::Algorithm::Argon2id, 65536),
        ] {
            let params = argon2::Params::new(m, 2, 1, None).unwrap();
            let other = Argon2::new(algorithm, argon2::Version::V0x13, params)
                .hash_password(b"other tool", &SaltString::generate(&mut OsRng))
                .unwrap()
                .to_string();
            assert!(verify_password(&other, "other tool"), "{other}");
            assert!(!verify_password(&other, "other toot"));
        }
        // A tampered digest never matches.
        let mut tampered = hash.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!verify_password(&tampered, "correct horse battery"));
    }

    #[test]
    fn random_passwords_are_long_and_differ() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, random_password());
    }
}
