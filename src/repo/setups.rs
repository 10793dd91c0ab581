use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::password_setups;
use crate::db::DbConn;

/// A one-time set-password link (only the hash of its secret is stored).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = password_setups)]
pub struct PasswordSetup {
    pub token_hash: String,
    pub user_id: i64,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
    pub used_at: Option<PrimitiveDateTime>,
}

impl PasswordSetup {
    pub fn insert(conn: &mut DbConn, setup: &PasswordSetup) -> QueryResult<()> {
        diesel::insert_into(password_setups::table)
            .values(setup)
            .execute(conn)
            .map(drop)
    }

    pub fn find(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<PasswordSetup>> {
        password_setups::table
            .find(token_hash)
            .select(PasswordSetup::as_select())
            .first(conn)
            .optional()
    }

    /// Marks the link used; `false` if it was used already (so it works once, even in a race).
    pub fn use_once(
        conn: &mut DbConn,
        token_hash: &str,
        at: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        diesel::update(
            password_setups::table
                .find(token_hash)
                .filter(password_setups::used_at.is_null()),
        )
        .set(password_setups::used_at.eq(at))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// Ends every link of the user not used yet (their password was just set some other way,
    /// or with one of them): an old invitation or reset mail opens nothing afterwards.
    pub fn use_all_for_user(
        conn: &mut DbConn,
        user_id: i64,
        at: PrimitiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(
            password_setups::table
                .filter(password_setups::user_id.eq(user_id))
                .filter(password_setups::used_at.is_null()),
        )
        .set(password_setups::used_at.eq(at))
        .execute(conn)
    }
}
