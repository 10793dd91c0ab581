//! Counters of failed sign-in attempts, one row per key (an HMAC of a person, an address or
//! both: `services::login_limit`).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::login_failures;
use crate::db::DbConn;

pub struct LoginFailures;

impl LoginFailures {
    /// Counts one more attempt for `key` and returns the count and when its window began. A
    /// window that began at or before `cutoff` starts over. Atomic per key: concurrent calls
    /// (on any instance) each see a different count. Run inside the caller's transaction.
    pub fn count_attempt(
        conn: &mut DbConn,
        key: &str,
        now: PrimitiveDateTime,
        cutoff: PrimitiveDateTime,
    ) -> QueryResult<(i32, PrimitiveDateTime)> {
        use login_failures::dsl;
        diesel::update(
            dsl::login_failures
                .find(key)
                .filter(dsl::window_start.le(cutoff)),
        )
        .set((dsl::count.eq(0), dsl::window_start.eq(now)))
        .execute(conn)?;
        let bumped = diesel::update(dsl::login_failures.find(key))
            .set(dsl::count.eq(dsl::count + 1))
            .execute(conn)?;
        if bumped == 0 {
            // A savepoint, so that losing the race to insert leaves the transaction usable.
            let inserted = conn.transaction(|conn| {
                diesel::insert_into(dsl::login_failures)
                    .values((
                        dsl::key.eq(key),
                        dsl::count.eq(1),
                        dsl::window_start.eq(now),
                    ))
                    .execute(conn)
            });
            match inserted {
                Ok(_) => {}
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => {
                    diesel::update(dsl::login_failures.find(key))
                        .set(dsl::count.eq(dsl::count + 1))
                        .execute(conn)?;
                }
                Err(e) => return Err(e),
            }
        }
        dsl::login_failures
            .find(key)
            .select((dsl::count, dsl::window_start))
            .first(conn)
    }

    /// Takes back one counted attempt (it turned out not to be a failure).
    pub fn uncount(conn: &mut DbConn, key: &str) -> QueryResult<()> {
        use login_failures::dsl;
        diesel::update(dsl::login_failures.find(key).filter(dsl::count.gt(0)))
            .set(dsl::count.eq(dsl::count - 1))
            .execute(conn)
            .map(drop)
    }

    pub fn clear(conn: &mut DbConn, key: &str) -> QueryResult<()> {
        diesel::delete(login_failures::table.find(key))
            .execute(conn)
            .map(drop)
    }

    /// Forgets windows that ended: the table holds only recent attackers.
    pub fn purge(conn: &mut DbConn, cutoff: PrimitiveDateTime) -> QueryResult<usize> {
        diesel::delete(login_failures::table.filter(login_failures::window_start.le(cutoff)))
            .execute(conn)
    }
}
