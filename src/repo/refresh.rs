use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::used_refresh_tokens;
use crate::db::DbConn;

/// An insert whose unique key says "once": `true` if it went in, `false` if the key was there
/// already (on any instance: the database decides). On PostgreSQL a unique violation ends the
/// transaction around it, so run such inserts outside one.
pub fn first_time(inserted: QueryResult<usize>) -> QueryResult<bool> {
    match inserted {
        Ok(_) => Ok(true),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Ids of refresh tokens that were used (each works once).
pub struct UsedRefreshToken;

impl UsedRefreshToken {
    /// Records `jti` as used; `false` if it was used before (the unique key decides, so two
    /// instances can't both accept it).
    pub fn claim(conn: &mut DbConn, jti: &str, expires_at: PrimitiveDateTime) -> QueryResult<bool> {
        first_time(
            diesel::insert_into(used_refresh_tokens::table)
                .values((
                    used_refresh_tokens::jti.eq(jti),
                    used_refresh_tokens::expires_at.eq(expires_at),
                ))
                .execute(conn),
        )
    }

    /// Forgets ids whose refresh token has expired anyway.
    pub fn purge_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> QueryResult<usize> {
        diesel::delete(used_refresh_tokens::table.filter(used_refresh_tokens::expires_at.le(now)))
            .execute(conn)
    }
}
