//! Idle tokens retired: under an account's `max_idle_days`, a token nobody has used for that
//! long (a never-used one: since its creation) is revoked by the sweep, with the tokens it
//! created; its issuer and the Administrators are told 7 days before (in the portal and by
//! e-mail, once per token and person). Only active tokens (not expired) are looked at, at most
//! 50 an account.

use std::collections::{BTreeMap, HashMap};

use diesel::Connection;
use time::{Duration, OffsetDateTime};

use super::retire::retire;
use crate::db::DbConn;
use crate::domain::policy::IDLE_NOTICE_LEAD;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::{EventKind, NoticeKind};
use crate::error::ServiceResult;
use crate::repo::notices::{NewNotice, Notice};
use crate::repo::{Account, Token, User};
use crate::services::audit;
use crate::services::notices::plan::recipients;

/// What a pass did: notices recorded (new ones), and the ids revoked (roots and the tokens
/// they created).
#[derive(Debug, Default)]
pub struct IdlePass {
    pub noticed: usize,
    pub revoked: Vec<i64>,
}

/// When an active token's idle time runs out under a limit of `days`.
fn idle_until(token: &Token, days: i32) -> OffsetDateTime {
    from_naive(token.last_used_at.unwrap_or(token.created_at)) + Duration::days(days as i64)
}

/// One pass over the accounts with an idle rule: their active tokens in a statement per
/// thousand accounts, then the people of only those accounts with a token due.
pub fn retire_idle(conn: &mut DbConn, now: OffsetDateTime) -> ServiceResult<IdlePass> {
    let mut pass = IdlePass::default();
    let limits: HashMap<i64, i32> = Account::with_idle_policy(conn)?.into_iter().collect();
    if limits.is_empty() {
        return Ok(pass);
    }
    let accounts: Vec<i64> = limits.keys().copied().collect();
    let mut due_of: BTreeMap<i64, Vec<Token>> = BTreeMap::new();
    let mut active = vec![];
    for chunk in accounts.chunks(1000) {
        active.extend(Token::active_of_accounts(conn, chunk, to_naive(now))?);
    }
    for token in active {
        let days = limits[&token.account_id];
        if idle_until(&token, days) - IDLE_NOTICE_LEAD <= now {
            due_of.entry(token.account_id).or_default().push(token);
        }
    }
    for (account_id, due) in due_of {
        let days = limits[&account_id];
        let users = User::list_in_account(conn, account_id)?;
        let mut notices = vec![];
        for token in &due {
            let until = idle_until(token, days);
            if until <= now {
                pass.revoked
                    .extend(revoke_idle(conn, account_id, token.id, days, now)?);
            } else {
                notices.extend(recipients(token, &users).into_iter().map(|u| NewNotice {
                    token_id: token.id,
                    kind: NoticeKind::Idle,
                    user_id: u.id,
                    created_at: to_naive(now),
                    next_attempt_at: to_naive(now),
                    detail: Some(until.date().to_string()),
                }));
            }
        }
        // Once per (token, kind, person): a unique key keeps later sweeps from repeating it.
        pass.noticed += Notice::insert_many(conn, &notices)?;
    }
    Ok(pass)
}

/// Revokes a token idle past `days`, under its account's lock and only if it still is (a use
/// written since the read keeps it); audited `token.revoked_idle`, the tokens it created with
/// it. The ids revoked.
fn revoke_idle(
    conn: &mut DbConn,
    account_id: i64,
    id: i64,
    days: i32,
    now: OffsetDateTime,
) -> ServiceResult<Vec<i64>> {
    // The lock first: on SQLite a transaction that reads before it writes can't wait.
    conn.transaction(|conn| {
        Account::lock(conn, account_id)?;
        let Some(token) = Token::find(conn, id)?.filter(|t| t.account_id == account_id) else {
            return Ok(vec![]);
        };
        let expired = token.expires_at.is_some_and(|e| from_naive(e) <= now);
        if token.deleted_at.is_some() || expired || idle_until(&token, days) > now {
            return Ok(vec![]);
        }
        let ids = retire(conn, token.id, None, to_naive(now))?;
        let since = token.last_used_at.map_or_else(
            || {
                format!(
                    "never used since its creation on {}",
                    from_naive(token.created_at).date()
                )
            },
            |at| format!("last used on {}", from_naive(at).date()),
        );
        let summary = format!(
            "Revoked token \"{}\": unused for {days} days ({since}), the account's idle limit",
            token.name
        );
        audit::record_ended(
            conn,
            token.account_id,
            now,
            EventKind::TokenRevokedIdle,
            &summary,
            token.id,
            "idle",
        )?;
        audit::record_retired(conn, None, now, &token, &ids, audit::Retired::Idle, false)?;
        Ok(ids)
    })
}
