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

impl Token {
    pub fn set_usage_limit(conn: &mut DbConn, id: i64, stored: Option<&str>) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set(tokens::usage_limit.eq(stored))
            .execute(conn)
            .map(drop)
    }
}

/// What a quota lease did: granted, used after it, and whether it crossed 80 % of the quota
/// for the first time in its period (the caller tells the issuer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLease {
    pub granted: u64,
    pub used: u64,
    pub crossed_notice: bool,
}

/// The counter of a token with a usage quota (`domain::quota::lease` decides).
pub struct QuotaCounter;

impl QuotaCounter {
    /// Takes a lease from the token's counter in one short write transaction, locked as
    /// `RateBucket::lease` locks its row: `give_back` (from a lease of `back_period`) first,
    /// then at most `want`. A period the row hasn't seen starts from nothing.
    pub fn lease(
        conn: &mut DbConn,
        token_id: i64,
        limit: crate::domain::quota::UsageLimit,
        period: &str,
        give_back: u64,
        back_period: &str,
        want: u64,
    ) -> QueryResult<QuotaLease> {
        use crate::db::schema::quota_counters as q;
        conn.write_transaction(|conn| {
            let fresh = (
                q::token_id.eq(token_id),
                q::period.eq(period),
                q::used.eq(0i64),
            );
            match conn {
                DbConn::Sqlite(c) => diesel::insert_or_ignore_into(q::table)
                    .values(fresh)
                    .execute(c)?,
                DbConn::Postgres(c) => diesel::insert_into(q::table)
                    .values(fresh)
                    .on_conflict_do_nothing()
                    .execute(c)?,
            };
            diesel::update(q::table.find(token_id))
                .set(q::used.eq(q::used))
                .execute(conn)?;
            let (stored, used, noticed): (String, i64, Option<String>) = q::table
                .find(token_id)
                .select((q::period, q::used, q::noticed_period))
                .first(conn)?;
            let (granted, used) = crate::domain::quota::lease(
                limit,
                &stored,
                used.max(0) as u64,
                period,
                give_back,
                back_period,
                want,
            );
            let crossed_notice = used >= limit.notice_at() && noticed.as_deref() != Some(period);
            let noticed = if crossed_notice {
                Some(period.to_owned())
            } else {
                noticed
            };
            diesel::update(q::table.find(token_id))
                .set((
                    q::period.eq(period),
                    q::used.eq(used as i64),
                    q::noticed_period.eq(noticed),
                ))
                .execute(conn)?;
            Ok(QuotaLease {
                granted,
                used,
                crossed_notice,
            })
        })
    }

    /// The counters of `ids` (those that have one): (token id, period, used).
    pub fn of(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<(i64, String, i64)>> {
        use crate::db::schema::quota_counters as q;
        let mut rows = vec![];
        for chunk in ids.chunks(500) {
            rows.extend(
                q::table
                    .filter(q::token_id.eq_any(chunk))
                    .select((q::token_id, q::period, q::used))
                    .load::<(i64, String, i64)>(conn)?,
            );
        }
        Ok(rows)
    }

    /// Starts a token's count afresh (its quota was changed).
    pub fn reset(conn: &mut DbConn, token_id: i64) -> QueryResult<()> {
        use crate::db::schema::quota_counters as q;
        diesel::delete(q::table.find(token_id))
            .execute(conn)
            .map(drop)
    }
}
