use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::accounts;
use crate::db::DbConn;
use crate::domain::leak_response::LeakResponse;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub created_at: PrimitiveDateTime,
    pub leak_response: LeakResponse,
    /// SHA-256 of the account's SCIM bearer token, if it has one.
    pub scim_token_hash: Option<String>,
    /// The token policy: the longest lifetime a new token may have, in days (`None`: any).
    pub max_lifetime_days: Option<i32>,
    /// The token policy: every new token must have an expiry date.
    pub expiry_required: bool,
    /// Everyone who signs in with a password must have a second factor.
    pub mfa_required: bool,
    /// The token policy: tokens unused this many days are revoked (`None`: never).
    pub max_idle_days: Option<i32>,
    /// The token policy: every new token must be limited to allowed routes.
    pub routes_required: bool,
    /// The token policy: the fastest rate limit a new token may have ("N/S"; `None`: any).
    pub max_rate_limit: Option<String>,
}

impl Account {
    pub fn set_leak_response(
        conn: &mut DbConn,
        id: i64,
        response: LeakResponse,
    ) -> QueryResult<bool> {
        diesel::update(accounts::table.find(id))
            .set(accounts::leak_response.eq(response))
            .execute(conn)
            .map(|n| n == 1)
    }

    pub fn set_mfa_required(conn: &mut DbConn, id: i64, required: bool) -> QueryResult<bool> {
        diesel::update(accounts::table.find(id))
            .set(accounts::mfa_required.eq(required))
            .execute(conn)
            .map(|n| n == 1)
    }

    pub fn set_token_policy(
        conn: &mut DbConn,
        id: i64,
        policy: &crate::domain::policy::TokenPolicy,
    ) -> QueryResult<bool> {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::max_lifetime_days.eq(policy.max_lifetime_days),
                accounts::expiry_required.eq(policy.expiry_required),
                accounts::max_idle_days.eq(policy.max_idle_days),
                accounts::routes_required.eq(policy.routes_required),
                accounts::max_rate_limit.eq(policy.max_rate.map(|r| r.to_stored())),
            ))
            .execute(conn)
            .map(|n| n == 1)
    }

    pub fn token_policy(&self) -> crate::domain::policy::TokenPolicy {
        crate::domain::policy::TokenPolicy {
            max_lifetime_days: self.max_lifetime_days,
            expiry_required: self.expiry_required,
            max_idle_days: self.max_idle_days,
            routes_required: self.routes_required,
            max_rate: crate::domain::rate::RateLimit::from_stored(self.max_rate_limit.as_deref()),
        }
    }

    /// Accounts that retire idle tokens: (id, days).
    pub fn with_idle_policy(conn: &mut DbConn) -> QueryResult<Vec<(i64, i32)>> {
        let rows: Vec<(i64, Option<i32>)> = accounts::table
            .filter(accounts::max_idle_days.is_not_null())
            .select((accounts::id, accounts::max_idle_days))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, d)| Some((id, d?)))
            .collect())
    }

    pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Account>> {
        accounts::table
            .find(id)
            .select(Account::as_select())
            .first(conn)
            .optional()
    }

    /// The account of this name, whatever its case ("demo" is the account "Demo"): two
    /// accounts whose names differ only in case would look like one to every person.
    pub fn find_by_name(conn: &mut DbConn, name: &str) -> QueryResult<Option<Account>> {
        diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
        accounts::table
            .filter(lower(accounts::name).eq(name.to_lowercase()))
            .order(accounts::id.asc())
            .select(Account::as_select())
            .first(conn)
            .optional()
    }

    pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
        accounts::table.count().get_result(conn)
    }

    pub fn insert(conn: &mut DbConn, name: &str, now: PrimitiveDateTime) -> QueryResult<Account> {
        diesel::insert_into(accounts::table)
            .values((accounts::name.eq(name), accounts::created_at.eq(now)))
            .returning(accounts::all_columns)
            .get_result(conn)
    }

    /// Takes the account's row lock for the rest of the transaction, so writes that must see
    /// each other (the 50-token limit) run one at a time per account. A no-op UPDATE works on
    /// both backends: a row lock on PostgreSQL, the database write lock on SQLite, taken by the
    /// transaction's first statement so it never has to upgrade a read lock.
    pub fn lock(conn: &mut DbConn, id: i64) -> QueryResult<bool> {
        diesel::update(accounts::table.find(id))
            .set(accounts::name.eq(accounts::name))
            .execute(conn)
            .map(|n| n == 1)
    }
}
