//! The Users page's list: the account's people with their active tokens, and its events.

use crate::db::DbConn;
use crate::domain::token::{to_naive, TokenStatus};
use crate::domain::Role;
use crate::error::ServiceResult;
use crate::repo::events::AccountEvent;
use crate::repo::{Token, TokenFilter, User};
use crate::services::vocabulary::{Actor, Person, TokenRef};
use std::collections::HashMap;
use time::OffsetDateTime;

pub struct MemberRow {
    pub user: Person,
    pub role: Role,
    pub active_tokens: Vec<TokenRef>,
}

/// The account's users (not removed), with their active tokens; Administrators only.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    role: Option<Role>,
    now: OffsetDateTime,
) -> ServiceResult<Vec<MemberRow>> {
    actor.require_admin()?;
    // Every active token of the account in one query, grouped by issuer.
    let filter = TokenFilter {
        account_id: actor.account_id.get(),
        status: Some(TokenStatus::Active),
        limit: i64::MAX / 4,
        ..Default::default()
    };
    let mut by_issuer: HashMap<i64, Vec<Token>> = HashMap::new();
    for row in Token::list(conn, &filter, to_naive(now))?.0 {
        by_issuer
            .entry(row.token.issuer_id)
            .or_default()
            .push(row.token);
    }
    let mut rows = vec![];
    for user in User::list_in_account(conn, actor.account_id.get())? {
        let user_role = user.role;
        if role.is_some_and(|r| r != user_role) {
            continue;
        }
        let active_tokens = by_issuer.remove(&user.id).unwrap_or_default();
        rows.push(MemberRow {
            user: Person::from(user),
            role: user_role,
            active_tokens: active_tokens.iter().map(TokenRef::from).collect(),
        });
    }
    Ok(rows)
}

pub fn events(
    conn: &mut DbConn,
    actor: &Actor,
    limit: i64,
) -> ServiceResult<Vec<(AccountEvent, Option<String>)>> {
    actor.require_admin()?;
    Ok(AccountEvent::recent(conn, actor.account_id.get(), limit)?)
}

/// The Users page: the account's people with their active tokens, and the latest events.
pub struct UsersPage {
    pub members: Vec<MemberRow>,
    pub events: Vec<EventEntry>,
}

/// A line of the account's event log.
pub struct EventEntry {
    pub at: OffsetDateTime,
    /// Who did it (their name), if known.
    pub who: Option<String>,
    pub summary: String,
}
