//! What the gateway reads of a token on a cache miss or a reload: the row with its issuer's
//! current role and removal, one token or many per statement; and the batched last-use write.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{tokens, users};
use crate::db::DbConn;
use crate::domain::Role;

/// What verifying a token needs: the row, and whether its issuer was removed.
#[derive(Debug, Clone, Queryable)]
pub struct TokenForAuth {
    pub id: i64,
    pub account_id: i64,
    pub issuer_id: i64,
    pub role: Role,
    pub secret_hash: String,
    pub expires_at: Option<PrimitiveDateTime>,
    pub deleted_at: Option<PrimitiveDateTime>,
    pub issuer_removed_at: Option<PrimitiveDateTime>,
    /// The issuer's role now: a token acts with the lower of the two.
    pub issuer_role: Role,
    /// The previous secret during a rotation's grace window, and its end.
    pub old_secret_hash: Option<String>,
    pub old_secret_until: Option<PrimitiveDateTime>,
    pub allowed_ips: Option<String>,
    pub allowed_routes: Option<String>,
    pub rate_limit: Option<String>,
    pub usage_limit: Option<String>,
}

impl TokenForAuth {
    /// The rows of `ids` (those that exist), many per statement.
    pub fn find_many(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<TokenForAuth>> {
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(SQLITE_USES_PER_STATEMENT) {
            rows.extend(
                tokens::table
                    .inner_join(users::table)
                    .filter(tokens::id.eq_any(chunk))
                    .select((
                        tokens::id,
                        tokens::account_id,
                        tokens::issuer_id,
                        tokens::role,
                        tokens::secret_hash,
                        tokens::expires_at,
                        tokens::deleted_at,
                        users::removed_at,
                        users::role,
                        tokens::old_secret_hash,
                        tokens::old_secret_until,
                        tokens::allowed_ips,
                        tokens::allowed_routes,
                        tokens::rate_limit,
                        tokens::usage_limit,
                    ))
                    .load::<TokenForAuth>(conn)?,
            );
        }
        Ok(rows)
    }

    /// The highest token id committed (0 when there is none): one step down the primary key.
    pub fn max_id(conn: &mut DbConn) -> QueryResult<i64> {
        use diesel::dsl::max;
        Ok(tokens::table
            .select(max(tokens::id))
            .first::<Option<i64>>(conn)?
            .unwrap_or(0))
    }

    /// Records the latest use of each token, all in one transaction (one commit, however
    /// many tokens). A time only moves forward, so instances flushing out of order agree.
    /// On PostgreSQL the commit doesn't wait for the disk: a crash loses at most the last
    /// batch of use times, never anything else (`docs/decisions.md`).
    pub fn record_uses(conn: &mut DbConn, uses: &[(i64, PrimitiveDateTime)]) -> QueryResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        match conn {
            // One statement for the whole batch: the ids and times as two arrays.
            DbConn::Postgres(c) => c.transaction(|c| {
                use diesel::sql_types::{Array, BigInt, Timestamp};
                diesel::sql_query("SET LOCAL synchronous_commit = off").execute(c)?;
                let ids: Vec<i64> = uses.iter().map(|(id, _)| *id).collect();
                let ats: Vec<PrimitiveDateTime> = uses.iter().map(|(_, at)| *at).collect();
                diesel::sql_query(
                    "UPDATE tokens AS t SET last_used_at = u.at \
                     FROM unnest($1, $2) AS u(id, at) \
                     WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)",
                )
                .bind::<Array<BigInt>, _>(ids)
                .bind::<Array<Timestamp>, _>(ats)
                .execute(c)
                .map(drop)
            }),
            // One statement per chunk of a VALUES list (SQLite's UPDATE ... FROM), in one
            // transaction.
            DbConn::Sqlite(c) => c.transaction(|c| {
                use diesel::sql_types::{BigInt, Timestamp};
                for chunk in uses.chunks(SQLITE_USES_PER_STATEMENT) {
                    let values = vec!["(?, ?)"; chunk.len()].join(", ");
                    let mut q = diesel::sql_query(format!(
                        "UPDATE tokens SET last_used_at = u.at \
                         FROM (SELECT column1 AS id, column2 AS at FROM (VALUES {values})) AS u \
                         WHERE tokens.id = u.id \
                         AND (tokens.last_used_at IS NULL OR tokens.last_used_at < u.at)"
                    ))
                    .into_boxed::<diesel::sqlite::Sqlite>();
                    for (id, at) in chunk {
                        q = q.bind::<BigInt, _>(*id).bind::<Timestamp, _>(*at);
                    }
                    q.execute(c)?;
                }
                Ok(())
            }),
        }
    }
}

/// Rows per `UPDATE` when writing uses on SQLite (two bound values each, well under its limit).
const SQLITE_USES_PER_STATEMENT: usize = 500;
