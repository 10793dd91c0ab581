use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::used_refresh_tokens;
use crate::db::DbConn;

/// Ids of refresh tokens that were used (each works once).
pub struct UsedRefreshToken;

impl UsedRefreshToken {
    /// Records `jti` as used; `false` if it was used before (the unique key decides, so two
    /// instances can't both accept it).
    pub fn claim(conn: &mut DbConn, jti: &str, expires_at: PrimitiveDateTime) -> QueryResult<bool> {
        let inserted = diesel::insert_into(used_refresh_tokens::table)
            .values((
                used_refresh_tokens::jti.eq(jti),
                used_refresh_tokens::expires_at.eq(expires_at),
            ))
            .execute(conn);
        match inserted {
            Ok(_) => Ok(true),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Forgets ids whose refresh token has expired anyway.
    pub fn purge_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> QueryResult<usize> {
        diesel::delete(used_refresh_tokens::table.filter(used_refresh_tokens::expires_at.le(now)))
            .execute(conn)
    }
}
