//! Changing who someone is in the account: their role, their removal, and deleting all
//! their tokens, each refused where active tokens stand in the way unless asked to delete them.

use crate::domain::EventKind;
use diesel::Connection;
use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::domain::Role;
use crate::domain::UserId;
use crate::error::{Blocker, ServiceError, ServiceResult};
use crate::repo::{Account, Session, Token, User};
use crate::services::tokens::retire;
use crate::services::vocabulary::Actor;

/// Takes the account's lock and loads a user of it who is not removed; anyone else is
/// "not found". The start of every change to a user.
pub(crate) fn lock_live_member(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: i64,
) -> ServiceResult<User> {
    Account::lock(conn, actor.account_id.get())?;
    let user = member(conn, actor, user_id)?;
    if user.removed_at.is_some() {
        return Err(ServiceError::NotFound);
    }
    Ok(user)
}

/// A user of the actor's account (removed ones too); another account's is "not found".
pub(crate) fn member(conn: &mut DbConn, actor: &Actor, user_id: i64) -> ServiceResult<User> {
    match User::find(conn, user_id)? {
        // A service account isn't a person: its own page and routes manage it.
        Some(user)
            if user.account_id == actor.account_id.get()
                && user.auth_type != crate::domain::AuthType::Service =>
        {
            Ok(user)
        }
        _ => Err(ServiceError::NotFound),
    }
}

/// What a change did to tokens: the ids it deleted (the caller forgets them in its cache).
#[derive(Debug, Default)]
pub struct Changed {
    pub deleted_tokens: Vec<i64>,
}

/// Changes a user's role. Refused while the user holds an active token above the new role,
/// unless `delete_blocking` asks to delete those tokens in the same step; refused if it would
/// leave the account without an Administrator.
pub fn change_role(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: UserId,
    new_role: Role,
    delete_blocking: bool,
    now: OffsetDateTime,
) -> ServiceResult<Changed> {
    let user_id = user_id.get();
    actor.require_admin()?;
    conn.transaction(|conn| {
        let user = lock_live_member(conn, actor, user_id)?;
        let old_role = user.role;
        if old_role == new_role {
            return Ok(Changed::default());
        }
        ensure_not_last_admin(conn, actor, &user)?;
        let above: Vec<Token> = Token::active_of_issuer(conn, user.id, to_naive(now))?
            .into_iter()
            .filter(|t| !new_role.may_issue(t.role))
            .collect();
        if !above.is_empty() && !delete_blocking {
            return Err(in_the_way(Blocker::HigherRole, &above));
        }
        let changed = retire_all(
            conn,
            actor,
            &user,
            &above,
            now,
            &format!(" above {new_role}"),
            crate::services::audit::Retired::RoleLowered,
        )?;
        User::set_role(conn, user.id, new_role)?;
        crate::services::audit::record(
            conn,
            actor,
            now,
            EventKind::UserRoleChanged,
            &format!(
                "Changed the role of {} from {old_role} to {new_role}",
                user.email
            ),
            None,
        )?;
        Ok(changed)
    })
}

/// Removes a user (softly: their tokens keep showing who issued them). Refused while they have
/// active tokens, unless `delete_tokens` deletes them in the same step; refused for the last
/// Administrator.
pub fn remove(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: UserId,
    delete_tokens: bool,
    now: OffsetDateTime,
) -> ServiceResult<Changed> {
    let user_id = user_id.get();
    actor.require_admin()?;
    conn.transaction(|conn| {
        let user = lock_live_member(conn, actor, user_id)?;
        ensure_not_last_admin(conn, actor, &user)?;
        let active = Token::active_of_issuer(conn, user.id, to_naive(now))?;
        if !active.is_empty() && !delete_tokens {
            return Err(in_the_way(Blocker::ActiveTokens, &active));
        }
        let changed = retire_all(
            conn,
            actor,
            &user,
            &active,
            now,
            "",
            crate::services::audit::Retired::IssuerRemoved,
        )?;
        User::mark_removed(conn, user.id, to_naive(now))?;
        Session::delete_for_user(conn, user.id)?;
        crate::services::audit::record(
            conn,
            actor,
            now,
            EventKind::UserRemoved,
            &format!("Removed {} <{}>", user.display_name(), user.email),
            None,
        )?;
        Ok(changed)
    })
}

/// Deletes every active token of a user at once: the remedy for an SSO user whose access the
/// identity provider revoked.
pub fn delete_all_tokens(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: UserId,
    now: OffsetDateTime,
) -> ServiceResult<Changed> {
    let user_id = user_id.get();
    actor.require_admin()?;
    conn.transaction(|conn| {
        Account::lock(conn, actor.account_id.get())?;
        let user = member(conn, actor, user_id)?;
        let active = Token::active_of_issuer(conn, user.id, to_naive(now))?;
        retire_all(
            conn,
            actor,
            &user,
            &active,
            now,
            "",
            crate::services::audit::Retired::AllOfIssuer,
        )
    })
}

/// Deletes `tokens` of `user` and logs it once; `why` completes "Deleted N tokens of X".
pub(crate) fn retire_all(
    conn: &mut DbConn,
    actor: &Actor,
    user: &User,
    tokens: &[Token],
    now: OffsetDateTime,
    why: &str,
    kind: crate::services::audit::Retired,
) -> ServiceResult<Changed> {
    let mut changed = Changed::default();
    if tokens.is_empty() {
        return Ok(changed);
    }
    for t in tokens {
        let retired = retire(conn, t.id, Some(actor.user_id.get()), to_naive(now))?;
        crate::services::audit::record_retired(conn, Some(actor), now, t, &retired, kind, true)?;
        changed.deleted_tokens.extend(retired);
    }
    let summary = format!(
        "Deleted {} of {}{why}: {}",
        crate::domain::count(tokens.len() as i64, "token", "tokens"),
        user.email,
        names(tokens)
    );
    crate::services::audit::record(conn, actor, now, EventKind::TokensDeleted, &summary, None)?;
    Ok(changed)
}

pub(crate) fn in_the_way(reason: Blocker, tokens: &[Token]) -> ServiceError {
    ServiceError::TokensInTheWay {
        reason,
        tokens: tokens
            .iter()
            .map(|t| (crate::domain::TokenId::new(t.id), t.name.clone()))
            .collect(),
    }
}

/// An account always keeps an Administrator: one who is `role` may not stop being one
/// (by a role change or removal) while the account has `admins` Administrators.
pub fn may_stop_being_admin(role: Role, admins: i64) -> bool {
    !role.is_admin() || admins > 1
}

pub(crate) fn ensure_not_last_admin(
    conn: &mut DbConn,
    actor: &Actor,
    user: &User,
) -> ServiceResult<()> {
    if user.role.is_admin()
        && !may_stop_being_admin(user.role, User::count_admins(conn, actor.account_id.get())?)
    {
        return Err(last_admin());
    }
    Ok(())
}

pub(crate) fn last_admin() -> ServiceError {
    ServiceError::invalid("role", "An account must keep at least one Administrator: make someone else an Administrator first.")
}

pub(crate) fn names(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| format!("\"{}\"", t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_administrator_may_not_stop_being_one() {
        assert!(!may_stop_being_admin(Role::Administrators, 1));
        assert!(!may_stop_being_admin(Role::Administrators, 0));
        assert!(may_stop_being_admin(Role::Administrators, 2));
    }

    #[test]
    fn anyone_else_may_change_whatever_the_count() {
        for role in Role::ALL.into_iter().filter(|r| !r.is_admin()) {
            assert!(may_stop_being_admin(role, 1), "{role}");
            assert!(may_stop_being_admin(role, 0), "{role}");
        }
    }
}
