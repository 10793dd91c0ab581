//! Adding people: an invitation with a one-time set-password link (72 hours, works once,
//! only its SHA-256 kept), or an SSO user with none.

use crate::db::DbConn;
use crate::domain::input::{Email, Language, PersonName};
use crate::domain::token::to_naive;
use crate::domain::EventKind;
use crate::domain::{sha256_hex, AuthType, Role, Secret};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::setups::PasswordSetup;
use crate::repo::{Account, NewUser, User};
use crate::services::vocabulary::{Actor, Person};
use diesel::Connection;
use time::{Duration, OffsetDateTime};

/// How long an invitation's set-password link works.
pub const SETUP_TTL: Duration = Duration::hours(72);

/// A new user and, for password sign-in, the secret of their one-time set-password link.
pub struct Invitation {
    pub user: User,
    pub setup_secret: Option<String>,
}

/// Someone to add to the account.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub email: Email,
    /// Optional through the API (Gcore's invite); the portal asks for it.
    pub name: Option<PersonName>,
    pub role: Role,
    pub sso: bool,
    /// English when not given.
    pub lang: Option<Language>,
}

/// Adds a user to the actor's account. Password users get a set-password link (valid 72 h);
/// SSO users sign in through their identity provider and get none.
pub fn invite(
    conn: &mut DbConn,
    actor: &Actor,
    member: &NewMember,
    now: OffsetDateTime,
) -> ServiceResult<Invitation> {
    let NewMember {
        email,
        name,
        role,
        sso,
        lang,
    } = member;
    let (role, sso) = (*role, *sso);
    actor.require_admin()?;
    let secret = (!sso).then(|| Secret::generate().into_exposed());
    conn.transaction(|conn| {
        Account::lock(conn, actor.account_id.get())?;
        if User::find_by_email(conn, email.as_str())?.is_some() {
            return Err(ServiceError::invalid(
                "email",
                "A user with this e-mail address already exists.",
            ));
        }
        let user = User::insert(
            conn,
            &NewUser {
                account_id: actor.account_id.get(),
                email: email.as_str(),
                name: name.as_ref().map_or("", |n| n.as_str()),
                password_hash: None,
                role,
                auth_type: if sso {
                    AuthType::Sso
                } else {
                    AuthType::Password
                },
                created_at: to_naive(now),
            },
        )?;
        let user = match lang {
            Some(lang) => {
                User::update_profile(conn, user.id, &user.name, None, lang.as_str())?;
                User {
                    lang: lang.as_str().to_owned(),
                    ..user
                }
            }
            None => user,
        };
        if let Some(secret) = &secret {
            PasswordSetup::insert(
                conn,
                &PasswordSetup {
                    token_hash: sha256_hex(secret),
                    user_id: user.id,
                    created_at: to_naive(now),
                    expires_at: to_naive(now + SETUP_TTL),
                    used_at: None,
                },
            )?;
        }
        let how = if sso { "SAML SSO" } else { "password" };
        crate::services::audit::record(
            conn,
            actor,
            now,
            EventKind::UserAdded,
            &format!(
                "Added {} <{}> as {role} ({how} sign-in)",
                user.display_name(),
                user.email
            ),
            None,
        )?;
        Ok(Invitation {
            user,
            setup_secret: secret,
        })
    })
}

/// An invitation as sent: the user, their set-password link (password users), and whether
/// the e-mail went out (`Err` with the reason if not).
pub struct Invited {
    pub user: Person,
    pub link: Option<String>,
    pub mailed: Result<(), String>,
    /// The mail went to the outbox folder (no SMTP server configured), not to the person.
    pub outbox: bool,
}
