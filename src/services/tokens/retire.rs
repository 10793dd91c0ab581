//! Ending tokens: a person deletes one (softly: the row stays, it can't be undone), and every
//! way a token ends goes through `retire`, which takes the tokens it created with it,
//! transitively, and cancels their pending e-mails.

use diesel::Connection;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::read::{load_view, lock_visible};
use super::view::DeleteOutcome;
use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::domain::TokenId;
use crate::error::ServiceResult;
use crate::repo::notices::Notice;
use crate::repo::Token;
use crate::services::audit;
use crate::services::vocabulary::Actor;

/// Soft-deletes a token `actor` may see (Administrators: any of the account; others: their own).
pub fn delete(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    now: OffsetDateTime,
) -> ServiceResult<DeleteOutcome> {
    let id = id.get();
    let naive_now: PrimitiveDateTime = to_naive(now);
    let retired = conn.transaction(|conn| -> ServiceResult<Option<Vec<i64>>> {
        let token = lock_visible(conn, actor, id)?;
        if token.deleted_at.is_some() {
            return Ok(None);
        }
        let retired = retire(conn, id, Some(actor.user_id.get()), naive_now)?;
        audit::record_retired(
            conn,
            Some(actor),
            now,
            &token,
            &retired,
            audit::Retired::ByPerson,
            true,
        )?;
        Ok(Some(retired))
    })?;
    let view = load_view(conn, id, now)?;
    Ok(match retired {
        None => DeleteOutcome::AlreadyDeleted(view),
        Some(ids) => DeleteOutcome::Deleted(view, ids),
    })
}

/// Marks a token deleted by `by`, with every active token it created, transitively, and
/// cancels their pending expiry e-mails. Returns the ids deleted now (for the cache). For use
/// inside a transaction that holds the account's lock.
pub fn retire(
    conn: &mut DbConn,
    id: i64,
    by: Option<i64>,
    at: PrimitiveDateTime,
) -> ServiceResult<Vec<i64>> {
    let mut retired = vec![];
    let mut frontier = vec![id];
    while !frontier.is_empty() {
        for &token in &frontier {
            if Token::mark_deleted(conn, token, by, at)? {
                retired.push(token);
            }
            Notice::cancel_for_token(conn, token)?;
        }
        // Ids only grow and a token's parent is older, so this ends; the cap is a guard.
        frontier = Token::active_children(conn, &frontier)?;
        if retired.len() > 10_000 {
            break;
        }
    }
    Ok(retired)
}
