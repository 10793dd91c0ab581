//! Reading tokens as their viewer may see them: one, a page of a list, the account's active
//! count, a token's page; and the one "visible to the actor, under the account's lock" read
//! that starts every change to a token.

use time::OffsetDateTime;

use super::policy::policy;
use super::view::{ListQuery, TokenPage, TokenView};
use crate::db::DbConn;
use crate::domain::token::{to_naive, TokenStatus};
use crate::domain::{AccountId, TokenId, UserId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, Token, TokenFilter};
use crate::services::vocabulary::{Actor, Visibility};

pub(crate) fn load_view(
    conn: &mut DbConn,
    id: i64,
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    let row = Token::find_with_issuer(conn, id)?.ok_or(ServiceError::NotFound)?;
    let mut view = TokenView::new(row, now);
    view.ends_with_it = ends_with(conn, id, now)?;
    fill_remaining(conn, std::slice::from_mut(&mut view), now)?;
    Ok(view)
}

/// Fills `remaining_uses` for the tokens with a usage quota, from one read of their counters:
/// what the period's quota has left (leases out on instances count as used).
fn fill_remaining(
    conn: &mut DbConn,
    tokens: &mut [TokenView],
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let ids: Vec<i64> = tokens
        .iter()
        .filter(|t| t.usage_limit.is_some())
        .map(|t| t.id.get())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let counters = crate::repo::token_limits::QuotaCounter::of(conn, &ids)?;
    for t in tokens.iter_mut() {
        let Some(limit) = t.usage_limit else { continue };
        let used = counters
            .iter()
            .find(|(id, period, _)| *id == t.id.get() && *period == limit.period(now))
            .map_or(0, |(_, _, used)| (*used).max(0) as u64);
        t.remaining_uses = Some(limit.requests.saturating_sub(used));
    }
    Ok(())
}

/// How many active tokens deleting `id` would end with it: the walk `retire` takes.
pub(crate) fn ends_with(conn: &mut DbConn, id: i64, now: OffsetDateTime) -> ServiceResult<i64> {
    let live = Token::descendants(conn, id, true)?;
    Ok(Token::count_active_among(conn, &live, to_naive(now))?)
}

/// Fills `ends_with_it` for a page of tokens from one read of the account's active tokens
/// made with tokens (at most its 50 active ones), walked in memory.
fn fill_ends_with(
    conn: &mut DbConn,
    account_id: i64,
    tokens: &mut [TokenView],
    now: OffsetDateTime,
) -> ServiceResult<()> {
    if tokens.is_empty() {
        return Ok(());
    }
    let edges = Token::active_with_parent(conn, account_id, to_naive(now))?;
    if edges.is_empty() {
        return Ok(());
    }
    let mut children: std::collections::HashMap<i64, Vec<i64>> = Default::default();
    for (id, parent) in edges {
        children.entry(parent).or_default().push(id);
    }
    for view in tokens.iter_mut() {
        let mut count = 0;
        let mut stack = vec![view.id.get()];
        while let Some(id) = stack.pop() {
            if let Some(kids) = children.get(&id) {
                count += kids.len() as i64;
                stack.extend_from_slice(kids);
            }
        }
        view.ends_with_it = count;
    }
    Ok(())
}

/// The tokens `actor` may see that match `query`, newest first.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    query: &ListQuery,
    now: OffsetDateTime,
) -> ServiceResult<TokenPage> {
    let visibility = Visibility::of(actor);
    let per_page = query.per_page.unwrap_or(i64::MAX / 4).max(1);
    let page = query.page.max(1);
    let issuer_id = match (visibility.only_issuer, query.issued_by.map(UserId::get)) {
        // Someone else's tokens are not visible: an empty list, not an error.
        (Some(own), Some(asked)) if own != asked => {
            return Ok(TokenPage {
                tokens: vec![],
                total: query.count.then_some(0),
                page,
                per_page,
            });
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let ids = match (query.created_with, query.token_id) {
        (Some(parent), only) => {
            get(conn, actor, parent, now)?;
            let mut ids = Token::descendants(conn, parent.get(), false)?;
            if let Some(only) = only {
                ids.retain(|id| *id == only.get());
            }
            Some(ids)
        }
        (None, only) => only.map(|id| vec![id.get()]),
    };
    let filter = TokenFilter {
        account_id: visibility.account_id,
        issuer_id,
        not_issuer_id: query.not_issued_by.map(UserId::get),
        role: query.role,
        roles: visibility.roles(),
        status: query.status,
        deleted: query.deleted,
        ids,
        expiring_soon: query.expiring_soon,
        limit: per_page,
        offset: query
            .offset
            .unwrap_or_else(|| (page - 1).saturating_mul(per_page)),
        before: query.before.map(TokenId::get),
        after: query.after.map(TokenId::get),
        count: query.count,
    };
    let (rows, total) = Token::list(conn, &filter, to_naive(now))?;
    let mut tokens: Vec<TokenView> = rows.into_iter().map(|r| TokenView::new(r, now)).collect();
    fill_ends_with(conn, visibility.account_id, &mut tokens, now)?;
    fill_remaining(conn, &mut tokens, now)?;
    let policy = policy(conn, actor.account_id.get())?;
    if policy.is_set() {
        for t in tokens
            .iter_mut()
            .filter(|t| t.status == TokenStatus::Active)
        {
            t.outside_policy = policy.excludes(t.created_at, t.expires_at);
        }
    }
    // Name the parents the viewer may see (one lookup each; a page holds at most a few).
    let visibility = Visibility::of(actor);
    for view in tokens.iter_mut() {
        if let Some((parent_id, name)) = view.created_with.as_mut() {
            if let Some(parent) =
                Token::find(conn, parent_id.get())?.filter(|p| visibility.admits(p))
            {
                *name = Some(parent.name);
            }
        }
    }
    Ok(TokenPage {
        tokens,
        total,
        page,
        per_page,
    })
}

/// How many active tokens the account has (the 50 limit counts these).
pub fn active_count(
    conn: &mut DbConn,
    account_id: AccountId,
    now: OffsetDateTime,
) -> ServiceResult<i64> {
    let account_id = account_id.get();
    Ok(Token::count_active(conn, account_id, to_naive(now))?)
}

/// One token, if `actor` may see it.
pub fn get(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    let id = id.get();
    let row = Token::find_with_issuer(conn, id)?.ok_or(ServiceError::NotFound)?;
    if !Visibility::of(actor).admits(&row.token) {
        return Err(ServiceError::NotFound);
    }
    let mut view = TokenView::new(row, now);
    view.ends_with_it = ends_with(conn, id, now)?;
    fill_remaining(conn, std::slice::from_mut(&mut view), now)?;
    Ok(view)
}

/// A token `actor` may manage, read under the account's lock (the start of every change to
/// one): visible to them, else "not found".
pub(crate) fn lock_visible(conn: &mut DbConn, actor: &Actor, id: i64) -> ServiceResult<Token> {
    if !Account::lock(conn, actor.account_id.get())? {
        return Err(ServiceError::NotFound);
    }
    let token = Token::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if !Visibility::of(actor).admits(&token) {
        return Err(ServiceError::NotFound);
    }
    Ok(token)
}

/// A token `actor` may manage that isn't deleted (under the account's lock); `field` names
/// where the refusal goes.
pub(crate) fn lock_changeable(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    field: &'static str,
) -> ServiceResult<Token> {
    let token = lock_visible(conn, actor, id)?;
    if token.deleted_at.is_some() {
        return Err(ServiceError::invalid(
            field,
            "A deleted token can't be changed.",
        ));
    }
    Ok(token)
}
