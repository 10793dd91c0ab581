//! A token's lineage: the tokens created with it (through the API), which end with it.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::tokens;
use crate::db::DbConn;
use crate::domain::token::TokenStatus;
use crate::repo::tokens::{filtered, status_is};
use crate::repo::{Token, TokenFilter};

impl Token {
    /// Active tokens created with any of `parents`.
    pub fn active_children(conn: &mut DbConn, parents: &[i64]) -> QueryResult<Vec<i64>> {
        tokens::table
            .filter(tokens::parent_id.eq_any(parents))
            .filter(tokens::deleted_at.is_null())
            .select(tokens::id)
            .load(conn)
    }

    /// The account's active tokens that were created with another token, as (id, parent id):
    /// at most the account's 50 active tokens, however long its history.
    pub fn active_with_parent(
        conn: &mut DbConn,
        account_id: i64,
        now: PrimitiveDateTime,
    ) -> QueryResult<Vec<(i64, i64)>> {
        filtered(
            &TokenFilter {
                account_id,
                status: Some(TokenStatus::Active),
                ..Default::default()
            },
            now,
        )
        .filter(tokens::parent_id.is_not_null())
        .select((tokens::id, tokens::parent_id.assume_not_null()))
        .load(conn)
    }

    /// Every token created with `id`, at any depth (a deleted one's children too when
    /// `live_only` is false), in the order found. Bounded like `retire`.
    pub fn descendants(conn: &mut DbConn, id: i64, live_only: bool) -> QueryResult<Vec<i64>> {
        let mut found = vec![];
        let mut frontier = vec![id];
        while !frontier.is_empty() && found.len() <= 10_000 {
            frontier = if live_only {
                Token::active_children(conn, &frontier)?
            } else {
                tokens::table
                    .filter(tokens::parent_id.eq_any(&frontier))
                    .select(tokens::id)
                    .load(conn)?
            };
            found.extend_from_slice(&frontier);
        }
        Ok(found)
    }

    /// How many of `ids` are active now.
    pub fn count_active_among(
        conn: &mut DbConn,
        ids: &[i64],
        now: PrimitiveDateTime,
    ) -> QueryResult<i64> {
        if ids.is_empty() {
            return Ok(0);
        }
        tokens::table
            .filter(tokens::id.eq_any(ids))
            .filter(status_is(TokenStatus::Active, now))
            .count()
            .get_result(conn)
    }
}
