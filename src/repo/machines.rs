//! Machine identities (issue 29): service accounts' own columns, workload identity federation's
//! trust policies, and the record of each JWT exchanged.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{service_accounts, token_exchanges, trust_policies, users};
use crate::db::DbConn;
use crate::domain::{AuthType, Role};
use crate::repo::User;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_accounts)]
pub struct ServiceAccountRow {
    pub user_id: i64,
    pub account_id: i64,
    pub description: String,
    pub created_by: Option<i64>,
    pub created_at: PrimitiveDateTime,
}

impl ServiceAccountRow {
    pub fn insert(conn: &mut DbConn, row: &ServiceAccountRow) -> QueryResult<()> {
        diesel::insert_into(service_accounts::table)
            .values(row)
            .execute(conn)
            .map(|_| ())
    }

    /// The account's service accounts that are not removed, by name, with their user rows.
    pub fn list(conn: &mut DbConn, account_id: i64) -> QueryResult<Vec<(ServiceAccountRow, User)>> {
        service_accounts::table
            .inner_join(users::table)
            .filter(service_accounts::account_id.eq(account_id))
            .filter(users::removed_at.is_null())
            .filter(users::auth_type.eq(AuthType::Service))
            .order((users::name.asc(), users::id.asc()))
            .select((ServiceAccountRow::as_select(), User::as_select()))
            .load(conn)
    }

    /// One service account of `account_id` (removed ones too).
    pub fn find(
        conn: &mut DbConn,
        account_id: i64,
        user_id: i64,
    ) -> QueryResult<Option<(ServiceAccountRow, User)>> {
        service_accounts::table
            .inner_join(users::table)
            .filter(service_accounts::account_id.eq(account_id))
            .filter(service_accounts::user_id.eq(user_id))
            .filter(users::auth_type.eq(AuthType::Service))
            .select((ServiceAccountRow::as_select(), User::as_select()))
            .first(conn)
            .optional()
    }

    /// How many live service accounts the account has.
    pub fn count(conn: &mut DbConn, account_id: i64) -> QueryResult<i64> {
        service_accounts::table
            .inner_join(users::table)
            .filter(service_accounts::account_id.eq(account_id))
            .filter(users::removed_at.is_null())
            .count()
            .get_result(conn)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = trust_policies)]
pub struct TrustPolicyRow {
    pub id: i64,
    pub account_id: i64,
    pub issuer: String,
    pub audience: String,
    /// A JSON object of claim name → value or glob.
    pub conditions: String,
    pub service_account_id: i64,
    pub role: Role,
    pub lifetime_seconds: i32,
    pub created_by: Option<i64>,
    pub created_at: PrimitiveDateTime,
    /// The routes its tokens are limited to (`domain::routes`); `None`: the role's.
    pub allowed_routes: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = trust_policies)]
pub struct NewTrustPolicy<'a> {
    pub account_id: i64,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub conditions: &'a str,
    pub service_account_id: i64,
    pub role: Role,
    pub lifetime_seconds: i32,
    pub created_by: Option<i64>,
    pub created_at: PrimitiveDateTime,
    pub allowed_routes: Option<&'a str>,
}

/// The most policies one issuer's token is weighed against (an issuer like GitHub's is shared
/// by every account that trusts it; beyond this many the exchange is refused, not slowed).
pub const MAX_POLICIES_PER_ISSUER: i64 = 200;

impl TrustPolicyRow {
    pub fn insert(conn: &mut DbConn, new: &NewTrustPolicy) -> QueryResult<TrustPolicyRow> {
        diesel::insert_into(trust_policies::table)
            .values(new)
            .returning(trust_policies::all_columns)
            .get_result(conn)
    }

    pub fn list(conn: &mut DbConn, account_id: i64) -> QueryResult<Vec<TrustPolicyRow>> {
        trust_policies::table
            .filter(trust_policies::account_id.eq(account_id))
            .order(trust_policies::id.asc())
            .select(TrustPolicyRow::as_select())
            .load(conn)
    }

    pub fn count(conn: &mut DbConn, account_id: i64) -> QueryResult<i64> {
        trust_policies::table
            .filter(trust_policies::account_id.eq(account_id))
            .count()
            .get_result(conn)
    }

    pub fn find(
        conn: &mut DbConn,
        account_id: i64,
        id: i64,
    ) -> QueryResult<Option<TrustPolicyRow>> {
        trust_policies::table
            .filter(trust_policies::account_id.eq(account_id))
            .filter(trust_policies::id.eq(id))
            .select(TrustPolicyRow::as_select())
            .first(conn)
            .optional()
    }

    /// Every policy trusting `issuer`, in every account (one indexed read), at most
    /// `MAX_POLICIES_PER_ISSUER + 1`.
    pub fn of_issuer(conn: &mut DbConn, issuer: &str) -> QueryResult<Vec<TrustPolicyRow>> {
        trust_policies::table
            .filter(trust_policies::issuer.eq(issuer))
            .order(trust_policies::id.asc())
            .limit(MAX_POLICIES_PER_ISSUER + 1)
            .select(TrustPolicyRow::as_select())
            .load(conn)
    }

    pub fn delete(conn: &mut DbConn, account_id: i64, id: i64) -> QueryResult<bool> {
        diesel::delete(
            trust_policies::table
                .filter(trust_policies::account_id.eq(account_id))
                .filter(trust_policies::id.eq(id)),
        )
        .execute(conn)
        .map(|n| n == 1)
    }

    /// Removes the policies that mint tokens for a service account (it is being removed).
    pub fn delete_for_service_account(conn: &mut DbConn, user_id: i64) -> QueryResult<usize> {
        diesel::delete(trust_policies::table.filter(trust_policies::service_account_id.eq(user_id)))
            .execute(conn)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = token_exchanges)]
pub struct TokenExchange {
    pub issuer: String,
    pub jti: String,
    pub account_id: i64,
    pub token_id: i64,
    pub policy_id: Option<i64>,
    pub expires_at: PrimitiveDateTime,
    pub keep_until: PrimitiveDateTime,
    pub ended: bool,
}

impl TokenExchange {
    /// Records an exchange; a second one of the same `(issuer, jti)` fails with a unique
    /// violation, on any instance.
    pub fn insert(conn: &mut DbConn, row: &TokenExchange) -> QueryResult<()> {
        diesel::insert_into(token_exchanges::table)
            .values(row)
            .execute(conn)
            .map(|_| ())
    }

    /// Whether `(issuer, jti)` was exchanged already (read before the insert, so a replay is
    /// refused without an error inside the transaction).
    pub fn exists(conn: &mut DbConn, issuer: &str, jti: &str) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            token_exchanges::table
                .filter(token_exchanges::issuer.eq(issuer))
                .filter(token_exchanges::jti.eq(jti)),
        ))
        .get_result(conn)
    }

    /// Minted tokens that expired and aren't deleted yet, oldest first, at most `limit`.
    pub fn due(
        conn: &mut DbConn,
        now: PrimitiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<TokenExchange>> {
        // `NOT ended`, not `ended = $1`: only the literal form lets either database prove
        // the partial index's predicate (`token_exchanges_due`), whatever the plan cache does.
        token_exchanges::table
            .filter(diesel::dsl::not(token_exchanges::ended))
            .filter(token_exchanges::expires_at.le(now))
            .order(token_exchanges::expires_at.asc())
            .limit(limit)
            .select(TokenExchange::as_select())
            .load(conn)
    }

    pub fn mark_ended(conn: &mut DbConn, issuer: &str, jti: &str) -> QueryResult<()> {
        diesel::update(
            token_exchanges::table
                .filter(token_exchanges::issuer.eq(issuer))
                .filter(token_exchanges::jti.eq(jti)),
        )
        .set(token_exchanges::ended.eq(true))
        .execute(conn)
        .map(|_| ())
    }

    /// Forgets exchanges whose JWT and token have both expired (their jti can't come back).
    pub fn purge(conn: &mut DbConn, now: PrimitiveDateTime) -> QueryResult<usize> {
        diesel::delete(
            token_exchanges::table
                .filter(token_exchanges::ended.eq(true))
                .filter(token_exchanges::keep_until.lt(now)),
        )
        .execute(conn)
    }
}
