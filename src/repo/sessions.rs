use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{sessions, users};
use crate::db::DbConn;

use super::User;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id_hash: String,
    pub user_id: i64,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
}

impl Session {
    pub fn insert(conn: &mut DbConn, session: &Session) -> QueryResult<()> {
        diesel::insert_into(sessions::table)
            .values(session)
            .execute(conn)
            .map(drop)
    }

    /// The user of an unexpired session.
    pub fn find_user(
        conn: &mut DbConn,
        id_hash: &str,
        now: PrimitiveDateTime,
    ) -> QueryResult<Option<User>> {
        sessions::table
            .inner_join(users::table)
            .filter(sessions::id_hash.eq(id_hash))
            .filter(sessions::expires_at.gt(now))
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    pub fn delete(conn: &mut DbConn, id_hash: &str) -> QueryResult<()> {
        diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash)))
            .execute(conn)
            .map(drop)
    }

    /// Ends every session of a user (on removal).
    pub fn delete_for_user(conn: &mut DbConn, user_id: i64) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
    }

    pub fn delete_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)
    }
}
