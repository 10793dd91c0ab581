//! What narrows a token beyond its role: the networks it may be used from and the routes it
//! may call (issue 28).

use diesel::prelude::*;

use crate::db::schema::tokens;
use crate::db::DbConn;
use crate::repo::Token;

impl Token {
    pub fn set_allowed_ips(conn: &mut DbConn, id: i64, stored: Option<&str>) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set(tokens::allowed_ips.eq(stored))
            .execute(conn)
            .map(drop)
    }

    pub fn set_allowed_routes(conn: &mut DbConn, id: i64, stored: Option<&str>) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set(tokens::allowed_routes.eq(stored))
            .execute(conn)
            .map(drop)
    }
}

impl Token {
    pub fn set_rate_limit(conn: &mut DbConn, id: i64, stored: Option<&str>) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set(tokens::rate_limit.eq(stored))
            .execute(conn)
            .map(drop)
    }
}

/// The shared bucket of a rate-limited token (`domain::rate::lease` decides).
pub struct RateBucket;

impl RateBucket {
    /// Takes a lease from the token's bucket in one short write transaction (the row made full
    /// at first, locked by the write that makes sure it exists): what `lease` gives back
    /// decided over the level read under that lock. Returns (granted, ms until the next).
    pub fn lease(
        conn: &mut DbConn,
        token_id: i64,
        limit: crate::domain::rate::RateLimit,
        now_ms: i64,
        give_back: u32,
        want: u32,
    ) -> QueryResult<(u32, u64)> {
        use crate::db::schema::rate_buckets as b;
        conn.write_transaction(|conn| {
            let full = (
                b::token_id.eq(token_id),
                b::level.eq(f64::from(limit.requests)),
                b::updated_ms.eq(now_ms),
            );
            match conn {
                DbConn::Sqlite(c) => diesel::insert_or_ignore_into(b::table)
                    .values(full)
                    .execute(c)?,
                DbConn::Postgres(c) => diesel::insert_into(b::table)
                    .values(full)
                    .on_conflict_do_nothing()
                    .execute(c)?,
            };
            // Takes the row's lock on PostgreSQL (SQLite's write lock is already held).
            diesel::update(b::table.find(token_id))
                .set(b::level.eq(b::level))
                .execute(conn)?;
            let (level, updated): (f64, i64) = b::table
                .find(token_id)
                .select((b::level, b::updated_ms))
                .first(conn)?;
            let (granted, left, wait) =
                crate::domain::rate::lease(limit, level, updated, now_ms, give_back, want);
            diesel::update(b::table.find(token_id))
                .set((b::level.eq(left), b::updated_ms.eq(now_ms.max(updated))))
                .execute(conn)?;
            Ok((granted, wait))
        })
    }
}
