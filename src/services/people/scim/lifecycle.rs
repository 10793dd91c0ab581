//! Deprovisioning (`active: false`, or `DELETE`): the person leaves the account with every
//! token they issued, in one transaction; and reactivation.

use super::error::{not_found, ScimError, ScimResult};
use super::read::get;
use crate::db::schema::users;
use crate::db::DbConn;
use crate::domain::scim::ScimProblem;
use crate::domain::token::to_naive;
use crate::domain::EventKind;
use crate::domain::NoticeKind;
use crate::error::ServiceResult;
use crate::repo::notices::{NewNotice, Notice};
use crate::repo::{Session, Token, User};
use crate::services::people::members::Changed;
use crate::services::tokens::retire;
use diesel::prelude::*;
use time::OffsetDateTime;

/// Deletes a token (with its lineage) for the identity provider and records each deletion.
pub(crate) fn retire_recorded(
    conn: &mut DbConn,
    token: &Token,
    why: crate::services::audit::Retired,
    now: OffsetDateTime,
) -> ServiceResult<Vec<i64>> {
    let retired = retire(conn, token.id, None, to_naive(now))?;
    crate::services::audit::record_retired(conn, None, now, token, &retired, why, true)?;
    Ok(retired)
}

pub(crate) fn last_admin() -> ScimError {
    ScimProblem::new(
        400,
        Some("mutability"),
        "This is the account's last Administrator: make someone else an Administrator first.",
    )
    .into()
}

/// Deprovisions a user: removed from the account (sessions ended, JWTs stopped by the
/// generation bump), every token they issued deleted, the event recorded, the Administrators
/// alerted about each deleted token. `keep` keeps them as a deactivated SCIM resource; without
/// it they are deleted. Inside the caller's transaction, which holds the account's lock.
pub(crate) fn deprovision(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    keep: bool,
    now: OffsetDateTime,
) -> ScimResult<Changed> {
    let user = User::find(conn, id)?
        .filter(|u| u.account_id == account_id && u.auth_type != crate::domain::AuthType::Service)
        .ok_or_else(|| not_found(id))?;
    if user.removed_at.is_none()
        && user.role.is_admin()
        && User::count_admins(conn, account_id)? <= 1
    {
        return Err(last_admin());
    }
    let mut changed = Changed::default();
    let active = Token::active_of_issuer(conn, id, to_naive(now))?;
    for t in &active {
        changed.deleted_tokens.extend(retire_recorded(
            conn,
            t,
            crate::services::audit::Retired::Deprovisioned,
            now,
        )?);
    }
    diesel::update(users::table.find(id))
        .set((
            users::removed_at.eq(user.removed_at.unwrap_or(to_naive(now))),
            users::deactivated.eq(keep),
            users::jwt_generation.eq(users::jwt_generation + 1),
        ))
        .execute(conn)?;
    Session::delete_for_user(conn, id)?;
    let what = if keep { "deactivated" } else { "deleted" };
    let tokens = if active.is_empty() {
        String::new()
    } else {
        format!(
            " and deleted {}: {}",
            crate::domain::count(active.len() as i64, "token", "tokens"),
            active
                .iter()
                .map(|t| format!("\"{}\"", t.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    crate::services::audit::record_system(
        conn,
        account_id,
        now,
        EventKind::UserDeprovisioned,
        &format!(
            "SCIM: {what} {} <{}>{tokens}",
            user.display_name(),
            user.email
        ),
        None,
    )?;
    // The Administrators hear of each token that died with the user: a script that used it
    // stops working now.
    let admins: Vec<User> = User::list_in_account(conn, account_id)?
        .into_iter()
        .filter(|u| u.role.is_admin() && u.id != id)
        .collect();
    let detail = format!(
        "{} was deprovisioned by the identity provider (SCIM)",
        user.email
    );
    let alerts: Vec<NewNotice> = active
        .iter()
        .flat_map(|t| {
            admins.iter().map(|a| NewNotice {
                token_id: t.id,
                kind: NoticeKind::Deprovisioned,
                user_id: a.id,
                created_at: to_naive(now),
                next_attempt_at: to_naive(now),
                detail: Some(detail.clone()),
            })
        })
        .collect();
    Notice::insert_many(conn, &alerts)?;
    Ok(changed)
}

/// Gives a deactivated user access back: no tokens (those stay deleted), no sessions.
pub(crate) fn reactivate(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    now: OffsetDateTime,
) -> ScimResult<()> {
    let user = get(conn, account_id, id)?;
    diesel::update(users::table.find(id))
        .set((
            users::removed_at.eq(None::<time::PrimitiveDateTime>),
            users::deactivated.eq(false),
        ))
        .execute(conn)?;
    crate::services::audit::record_system(
        conn,
        account_id,
        now,
        EventKind::UserReactivated,
        &format!(
            "SCIM: reactivated {} <{}> (without their deleted tokens)",
            user.display_name(),
            user.email
        ),
        None,
    )?;
    Ok(())
}
