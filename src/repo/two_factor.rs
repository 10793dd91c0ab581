//! A person's second factor: the TOTP seed (sealed) with the last time step accepted, and the
//! recovery codes (SHA-256 only), each usable once.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{recovery_codes, user_totp};
use crate::db::DbConn;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_totp)]
pub struct TotpRow {
    pub user_id: i64,
    pub secret_sealed: String,
    pub created_at: PrimitiveDateTime,
    pub confirmed_at: Option<PrimitiveDateTime>,
    pub last_step: i64,
}

impl TotpRow {
    pub fn find(conn: &mut DbConn, user_id: i64) -> QueryResult<Option<TotpRow>> {
        user_totp::table
            .find(user_id)
            .select(TotpRow::as_select())
            .first(conn)
            .optional()
    }

    /// Whether the person has a confirmed second factor (sign-in must ask for it).
    pub fn confirmed(conn: &mut DbConn, user_id: i64) -> QueryResult<bool> {
        Ok(TotpRow::find(conn, user_id)?.is_some_and(|r| r.confirmed_at.is_some()))
    }

    /// The people of an account with a confirmed second factor (at most its people).
    pub fn confirmed_in_account(conn: &mut DbConn, account_id: i64) -> QueryResult<Vec<i64>> {
        use crate::db::schema::users;
        user_totp::table
            .inner_join(users::table)
            .filter(users::account_id.eq(account_id))
            .filter(user_totp::confirmed_at.is_not_null())
            .select(user_totp::user_id)
            .load(conn)
    }

    /// Starts an enrolment: a new seed, not confirmed, replacing one that was never confirmed.
    /// `false` if the person has a confirmed one (it must be turned off first).
    pub fn start(conn: &mut DbConn, row: &TotpRow) -> QueryResult<bool> {
        diesel::delete(
            user_totp::table
                .find(row.user_id)
                .filter(user_totp::confirmed_at.is_null()),
        )
        .execute(conn)?;
        if TotpRow::find(conn, row.user_id)?.is_some() {
            return Ok(false);
        }
        diesel::insert_into(user_totp::table)
            .values(row)
            .execute(conn)
            .map(|n| n == 1)
    }

    /// Takes time step `step` for the person: `true` once per step and only forward, on every
    /// instance (the row's update is the arbiter), so a code can't be replayed.
    pub fn take_step(conn: &mut DbConn, user_id: i64, step: i64) -> QueryResult<bool> {
        diesel::update(
            user_totp::table
                .find(user_id)
                .filter(user_totp::last_step.lt(step)),
        )
        .set(user_totp::last_step.eq(step))
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn confirm(conn: &mut DbConn, user_id: i64, at: PrimitiveDateTime) -> QueryResult<bool> {
        diesel::update(
            user_totp::table
                .find(user_id)
                .filter(user_totp::confirmed_at.is_null()),
        )
        .set(user_totp::confirmed_at.eq(at))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// Removes the person's second factor: the seed and every recovery code.
    pub fn remove(conn: &mut DbConn, user_id: i64) -> QueryResult<()> {
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
            .execute(conn)?;
        diesel::delete(user_totp::table.find(user_id)).execute(conn)?;
        Ok(())
    }
}

pub struct RecoveryCodes;

impl RecoveryCodes {
    /// Replaces the person's codes with these (hashes).
    pub fn replace(conn: &mut DbConn, user_id: i64, hashes: &[String]) -> QueryResult<()> {
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
            .execute(conn)?;
        // One insert each: a multi-row insert isn't portable over both backends' connection.
        for hash in hashes {
            diesel::insert_into(recovery_codes::table)
                .values((
                    recovery_codes::user_id.eq(user_id),
                    recovery_codes::code_hash.eq(hash),
                ))
                .execute(conn)?;
        }
        Ok(())
    }

    /// Uses a code: `true` once, also when two sign-ins race.
    pub fn use_once(
        conn: &mut DbConn,
        user_id: i64,
        hash: &str,
        at: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        diesel::update(
            recovery_codes::table
                .find((user_id, hash))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(at))
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn remaining(conn: &mut DbConn, user_id: i64) -> QueryResult<i64> {
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::used_at.is_null())
            .count()
            .get_result(conn)
    }
}

/// Which second factors a person has.
#[derive(Debug, Clone, Copy, Default)]
pub struct Factors {
    /// A confirmed authenticator app.
    pub totp: bool,
    /// One passkey or more.
    pub passkeys: bool,
}

impl Factors {
    pub fn any(self) -> bool {
        self.totp || self.passkeys
    }
}

/// Which second factors the person has.
pub fn factors(conn: &mut DbConn, user_id: i64) -> QueryResult<Factors> {
    Ok(Factors {
        totp: TotpRow::confirmed(conn, user_id)?,
        passkeys: super::passkeys::PasskeyRow::count_of_user(conn, user_id)? > 0,
    })
}
