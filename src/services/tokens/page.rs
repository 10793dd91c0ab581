//! A token's own page: the token as its viewer may see it, its lineage named where the
//! viewer may see the parent, its usage, its audit trail and the account's policy.

use time::OffsetDateTime;

use super::policy::policy;
use super::read::get;
use super::view::TokenDetail;
use crate::db::DbConn;
use crate::domain::token::TokenStatus;
use crate::domain::TokenId;
use crate::error::ServiceResult;
use crate::repo::Token;
use crate::services::audit;
use crate::services::vocabulary::{Actor, Visibility};

/// A token's page, if `actor` may see the token.
pub fn token_page(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    now: OffsetDateTime,
) -> ServiceResult<TokenDetail> {
    let mut token = get(conn, actor, id, now)?;
    let policy = policy(conn, actor.account_id.get())?;
    token.outside_policy =
        token.status == TokenStatus::Active && policy.excludes(token.created_at, token.expires_at);
    if let Some((parent_id, name)) = token.created_with.as_mut() {
        if let Some(parent) =
            Token::find(conn, parent_id.get())?.filter(|p| Visibility::of(actor).admits(p))
        {
            *name = Some(parent.name);
        }
    }
    let events = audit::for_token(conn, actor.account_id.get(), id.get(), 100)?;
    let usage = super::usage::of_visible_token(conn, id.get(), now)?;
    Ok(TokenDetail {
        token,
        usage,
        events,
        policy,
    })
}
