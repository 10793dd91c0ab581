//! Writing users from SCIM: create, replace, PATCH and DELETE, each under the account's lock.

use crate::domain::EventKind;
use diesel::prelude::*;
use serde_json::Value;
use time::OffsetDateTime;

use super::error::{conflict, ScimResult};
use super::lifecycle::{deprovision, last_admin, reactivate, retire_recorded};
use super::read::{get, list, view};
use crate::db::schema::users;
use crate::db::DbConn;
use crate::domain::input::Email;
use crate::domain::scim::{Filter, UserInput};
use crate::domain::token::to_naive;
use crate::domain::{AuthType, Role};
use crate::error::ServiceResult;
use crate::repo::{Account, NewUser, Token, User};
use crate::services::people::members::Changed;

/// Another user of the account (live or deactivated) with this userName, any case.
pub(crate) fn user_name_taken(
    conn: &mut DbConn,
    account_id: i64,
    name: &str,
    except: Option<i64>,
) -> ServiceResult<bool> {
    let filter = Filter::UserName(name.to_owned());
    let (_, found) = list(conn, account_id, Some(&filter), 1, 2)?;
    Ok(found.iter().any(|u| Some(u.id) != except))
}

/// The e-mail belongs to someone else (any account: e-mails are how people sign in).
pub(crate) fn email_taken(
    conn: &mut DbConn,
    email: &Email,
    except: Option<i64>,
) -> ServiceResult<Option<User>> {
    Ok(User::find_by_email(conn, email.as_str())?.filter(|u| Some(u.id) != except))
}

/// What is stored as `user_name`: nothing when it is the e-mail.
pub(crate) fn stored_user_name(input: &UserInput) -> Option<String> {
    (!input.user_name.eq_ignore_ascii_case(input.email.as_str())).then(|| input.user_name.clone())
}

/// Adds a user (an SSO user: they sign in through the identity provider). A userName or
/// e-mail already in use is a 409; an e-mail of a user the identity provider deleted from this
/// account earlier revives that row, without any of its old tokens.
pub fn create(
    conn: &mut DbConn,
    account_id: i64,
    input: &UserInput,
    now: OffsetDateTime,
) -> ScimResult<User> {
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        if user_name_taken(conn, account_id, &input.user_name, None)? {
            return Err(conflict(format!(
                "A user with userName \"{}\" already exists.",
                input.user_name
            )));
        }
        let role = input.role.unwrap_or(Role::Users);
        let id = match email_taken(conn, &input.email, None)? {
            Some(old)
                if old.account_id == account_id && old.removed_at.is_some() && !old.deactivated =>
            {
                diesel::update(users::table.find(old.id))
                    .set((
                        users::removed_at.eq(None::<time::PrimitiveDateTime>),
                        users::auth_type.eq(AuthType::Sso),
                        users::password_hash.eq(None::<String>),
                    ))
                    .execute(conn)?;
                old.id
            }
            Some(_) => {
                return Err(conflict(format!(
                    "A user with the e-mail address {} already exists.",
                    input.email.as_str()
                )))
            }
            None => {
                User::insert(
                    conn,
                    &NewUser {
                        account_id,
                        email: input.email.as_str(),
                        name: input.display_name.as_ref().map_or("", |n| n.as_str()),
                        password_hash: None,
                        role,
                        auth_type: AuthType::Sso,
                        created_at: to_naive(now),
                    },
                )?
                .id
            }
        };
        write_attributes(conn, id, input, role)?;
        crate::services::audit::record_system(
            conn,
            account_id,
            now,
            EventKind::UserAdded,
            &format!(
                "SCIM: added {} as {role} (SSO sign-in)",
                input.email.as_str()
            ),
            None,
        )?;
        if input.active == Some(false) {
            deprovision(conn, account_id, id, true, now)?;
        }
        get(conn, account_id, id)
    })
}

pub(crate) fn write_attributes(
    conn: &mut DbConn,
    id: i64,
    input: &UserInput,
    role: Role,
) -> ServiceResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::email.eq(input.email.as_str()),
            users::name.eq(input.display_name.as_ref().map_or("", |n| n.as_str())),
            users::user_name.eq(stored_user_name(input)),
            users::external_id.eq(input.external_id.as_deref()),
            users::role.eq(role),
        ))
        .execute(conn)?;
    Ok(())
}

/// Replaces a user's attributes (PUT, and PATCH after its operations are applied). A role
/// change follows the identity provider: tokens above the new role are deleted with it. The
/// account keeps an Administrator: demoting or deprovisioning the last one is refused.
pub fn replace(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    input: &UserInput,
    now: OffsetDateTime,
) -> ScimResult<(User, Changed)> {
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        let user = get(conn, account_id, id)?;
        if user_name_taken(conn, account_id, &input.user_name, Some(id))? {
            return Err(conflict(format!(
                "A user with userName \"{}\" already exists.",
                input.user_name
            )));
        }
        if email_taken(conn, &input.email, Some(id))?.is_some() {
            return Err(conflict(format!(
                "A user with the e-mail address {} already exists.",
                input.email.as_str()
            )));
        }
        let role = input.role.unwrap_or(user.role);
        let mut changed = Changed::default();
        if role != user.role {
            let live = user.removed_at.is_none();
            if live && user.role.is_admin() && User::count_admins(conn, account_id)? <= 1 {
                return Err(last_admin());
            }
            let above: Vec<Token> = Token::active_of_issuer(conn, id, to_naive(now))?
                .into_iter()
                .filter(|t| !role.may_issue(t.role))
                .collect();
            for t in &above {
                changed.deleted_tokens.extend(retire_recorded(
                    conn,
                    t,
                    crate::services::audit::Retired::RoleLowered,
                    now,
                )?);
            }
            diesel::update(users::table.find(id))
                .set(users::jwt_generation.eq(users::jwt_generation + 1))
                .execute(conn)?;
            crate::services::audit::record_system(
                conn,
                account_id,
                now,
                EventKind::UserRoleChanged,
                &format!(
                    "SCIM: changed the role of {} from {} to {role}{}",
                    user.email,
                    user.role,
                    if above.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " and deleted {} above it",
                            crate::domain::count(above.len() as i64, "token", "tokens")
                        )
                    }
                ),
                None,
            )?;
        }
        if input.email.as_str() != user.email {
            crate::services::audit::record_system(
                conn,
                account_id,
                now,
                EventKind::UserEmailChanged,
                &format!(
                    "SCIM: changed the e-mail of {} to {}",
                    user.email,
                    input.email.as_str()
                ),
                None,
            )?;
        }
        write_attributes(conn, id, input, role)?;
        match (input.active, user.removed_at.is_none()) {
            (Some(false), true) => {
                changed
                    .deleted_tokens
                    .extend(deprovision(conn, account_id, id, true, now)?.deleted_tokens);
            }
            (Some(true), false) => reactivate(conn, account_id, id, now)?,
            _ => {}
        }
        Ok((get(conn, account_id, id)?, changed))
    })
}

/// DELETE: deprovisions the user and makes them no SCIM resource any more.
pub fn delete(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    now: OffsetDateTime,
) -> ScimResult<Changed> {
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        get(conn, account_id, id)?;
        deprovision(conn, account_id, id, false, now)
    })
}

/// PATCH: the operations applied to the user as SCIM shows them, then replaced like a PUT.
pub fn patch(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    body: &Value,
    base_url: &str,
    now: OffsetDateTime,
) -> ScimResult<(User, Changed)> {
    // Read and replaced under the account's lock, so two PATCHes of different attributes at
    // once both land (neither replaces the other's change with what it read before).
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        let user = get(conn, account_id, id)?;
        let mut current = view(&user, base_url).to_json();
        crate::domain::scim::apply_patch(&mut current, body)?;
        let input = UserInput::from_json(&current)?;
        // `active` is always in the view: unchanged unless an operation changed it.
        replace(conn, account_id, id, &input, now)
    })
}
