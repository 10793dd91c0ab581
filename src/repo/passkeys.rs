//! A person's passkeys (WebAuthn credentials: public key and counter, nothing secret) and the
//! challenges already answered, so a ceremony finishes once on every instance.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{passkeys, webauthn_used_challenges};
use crate::db::DbConn;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    pub id: i64,
    pub user_id: i64,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    pub name: String,
    /// webauthn-rs's `Passkey` as JSON.
    pub passkey: String,
    pub created_at: PrimitiveDateTime,
    pub last_used_at: Option<PrimitiveDateTime>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = passkeys)]
pub struct NewPasskey<'a> {
    pub user_id: i64,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub passkey: &'a str,
    pub created_at: PrimitiveDateTime,
}

impl PasskeyRow {
    /// The person's passkeys, oldest first.
    pub fn of_user(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<PasskeyRow>> {
        passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .order(passkeys::id.asc())
            .select(PasskeyRow::as_select())
            .load(conn)
    }

    pub fn count_of_user(conn: &mut DbConn, user_id: i64) -> QueryResult<i64> {
        passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .count()
            .get_result(conn)
    }

    pub fn by_credential(
        conn: &mut DbConn,
        credential_id: &str,
    ) -> QueryResult<Option<PasskeyRow>> {
        passkeys::table
            .filter(passkeys::credential_id.eq(credential_id))
            .select(PasskeyRow::as_select())
            .first(conn)
            .optional()
    }

    /// Adds a passkey; `false` if the credential is registered already (to anyone).
    pub fn insert(conn: &mut DbConn, row: &NewPasskey<'_>) -> QueryResult<bool> {
        if PasskeyRow::by_credential(conn, row.credential_id)?.is_some() {
            return Ok(false);
        }
        diesel::insert_into(passkeys::table)
            .values(row)
            .execute(conn)
            .map(|n| n == 1)
    }

    /// A sign-in with it: when, and its new counter (the whole credential as JSON).
    pub fn record_use(
        conn: &mut DbConn,
        id: i64,
        passkey: Option<&str>,
        at: PrimitiveDateTime,
    ) -> QueryResult<()> {
        let row = passkeys::table.find(id);
        match passkey {
            Some(p) => diesel::update(row)
                .set((passkeys::last_used_at.eq(at), passkeys::passkey.eq(p)))
                .execute(conn)?,
            None => diesel::update(row)
                .set(passkeys::last_used_at.eq(at))
                .execute(conn)?,
        };
        Ok(())
    }

    /// Removes one of the person's passkeys: the removed one, if it was theirs.
    pub fn remove(conn: &mut DbConn, user_id: i64, id: i64) -> QueryResult<Option<PasskeyRow>> {
        let Some(row) = passkeys::table
            .find(id)
            .filter(passkeys::user_id.eq(user_id))
            .select(PasskeyRow::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        diesel::delete(passkeys::table.find(id)).execute(conn)?;
        Ok(Some(row))
    }

    /// Removes every passkey of the person (an Administrator's reset); how many.
    pub fn remove_all(conn: &mut DbConn, user_id: i64) -> QueryResult<usize> {
        diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)
    }

    /// The people of an account with a passkey.
    pub fn holders_in_account(conn: &mut DbConn, account_id: i64) -> QueryResult<Vec<i64>> {
        use crate::db::schema::users;
        passkeys::table
            .inner_join(users::table)
            .filter(users::account_id.eq(account_id))
            .select(passkeys::user_id)
            .distinct()
            .load(conn)
    }
}

/// Challenges already answered.
pub struct UsedChallenge;

impl UsedChallenge {
    /// Records a finished ceremony's challenge (its hash); `false` if it finished before, here
    /// or on another instance (`first_time`).
    pub fn take(conn: &mut DbConn, hash: &str, expires_at: PrimitiveDateTime) -> QueryResult<bool> {
        super::refresh::first_time(
            diesel::insert_into(webauthn_used_challenges::table)
                .values((
                    webauthn_used_challenges::challenge_hash.eq(hash),
                    webauthn_used_challenges::expires_at.eq(expires_at),
                ))
                .execute(conn),
        )
    }

    /// Forgets challenges that could no longer be answered anyway.
    pub fn purge_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> QueryResult<usize> {
        diesel::delete(
            webauthn_used_challenges::table.filter(webauthn_used_challenges::expires_at.le(now)),
        )
        .execute(conn)
    }
}
