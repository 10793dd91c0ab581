//! `PATCH /iam/users/{id}`: name, phone, language, e-mail and sign-in method (and the role,
//! through `changes::change_role`), in one transaction.

use super::changes::{change_role, member};
use crate::db::DbConn;
use crate::domain::input::{Email, Language, PersonName};
use crate::domain::EventKind;
use crate::domain::UserId;
use crate::domain::{AuthType, Role};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, User};
use crate::services::vocabulary::Actor;
use diesel::Connection;
use time::OffsetDateTime;

/// `PATCH /iam/users/{id}`: name, phone, language, e-mail, sign-in method (and the role,
/// through `change_role`). Someone else's profile, and anyone's e-mail, need an
/// Administrator: the e-mail is where notices and set-password links go.
pub(crate) fn update_profile(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: i64,
    update: &UserUpdate,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let user = member(conn, actor, user_id)?;
    if user.id != actor.user_id.get() {
        actor.require_admin()?;
    }
    if user.removed_at.is_some() {
        return Err(ServiceError::NotFound);
    }
    if let Some(wanted) = update.auth_type {
        if wanted != user.auth_type {
            return Err(ServiceError::invalid(
                "auth_types",
                format!(
                    "The sign-in method can't be changed through the API (this user signs in with {}). Remove the user and add them again with the other method.",
                    user.auth_type.code()
                ),
            ));
        }
    }
    let name = match &update.name {
        None => user.name.clone(),
        Some(None) => String::new(),
        Some(Some(n)) => n.as_str().to_owned(),
    };
    let phone = update.phone.clone().unwrap_or(user.phone.clone());
    let lang = update
        .lang
        .as_ref()
        .map_or(user.lang.clone(), |l| l.as_str().to_owned());
    User::update_profile(conn, user.id, &name, phone.as_deref(), &lang)?;
    crate::services::audit::record(
        conn,
        actor,
        now,
        EventKind::UserUpdated,
        &format!("Updated the profile of {}", user.email),
        None,
    )?;
    if let Some(email) = update.email.as_ref().filter(|e| e.as_str() != user.email) {
        actor.require_admin()?;
        let taken =
            ServiceError::invalid("email", "A user with this e-mail address already exists.");
        if User::find_by_email(conn, email.as_str())?.is_some() {
            return Err(taken);
        }
        match User::set_email(conn, user.id, email.as_str()) {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => return Err(taken),
            other => other?,
        }
        crate::services::audit::record(
            conn,
            actor,
            now,
            EventKind::UserEmailChanged,
            &format!("Changed the e-mail of {} to {}", user.email, email.as_str()),
            None,
        )?;
    }
    Ok(())
}

/// A change to a user through the API (`PATCH /iam/users/{id}`): each field is `None` when
/// not asked for.
#[derive(Debug, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    /// `Some(None)` clears the name (the portal then shows the e-mail).
    pub name: Option<Option<PersonName>>,
    /// `Some(None)` clears the phone number.
    pub phone: Option<Option<String>>,
    pub lang: Option<Language>,
    pub email: Option<Email>,
    /// Accepted when it is the user's own method; a change is refused by name.
    pub auth_type: Option<AuthType>,
}

/// Applies `update` in one transaction (a refused change changes nothing) and returns the
/// user as they are now.
pub fn update_user(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: UserId,
    update: UserUpdate,
    now: OffsetDateTime,
) -> ServiceResult<(User, Account)> {
    conn.transaction(|conn| {
        if let Some(role) = update.role {
            change_role(conn, actor, user_id, role, false, now)?;
        }
        let profile = update.name.is_some()
            || update.phone.is_some()
            || update.lang.is_some()
            || update.email.is_some()
            || update.auth_type.is_some();
        if profile {
            update_profile(conn, actor, user_id.get(), &update, now)?;
        }
        crate::services::people::accounts::visible_user(conn, actor, user_id)
    })
}
