use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{tokens, users};
use crate::db::DbConn;
use crate::domain::token::{TokenStatus, EXPIRING_SOON};
use crate::domain::Role;

/// On PostgreSQL, the longest a create holds a token id before committing it: the insert, the
/// one statement after it (`set_secret_hash`) and the wait for the commit each get a third.
pub const INSERT_TO_COMMIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tokens)]
pub struct Token {
    pub id: i64,
    pub account_id: i64,
    pub issuer_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub role: Role,
    pub secret_hash: String,
    pub created_at: PrimitiveDateTime,
    pub expires_at: Option<PrimitiveDateTime>,
    pub last_used_at: Option<PrimitiveDateTime>,
    pub deleted_at: Option<PrimitiveDateTime>,
    pub deleted_by: Option<i64>,
    pub form_id: Option<String>,
    /// The token this one was created with, through the API.
    pub parent_id: Option<i64>,
    /// After a rotation with a grace window: the previous secret's hash, and until when it
    /// still works.
    pub old_secret_hash: Option<String>,
    pub old_secret_until: Option<PrimitiveDateTime>,
    /// The networks it may be used from, comma-separated (`domain::allowlist`); `None`: any.
    pub allowed_ips: Option<String>,
    /// The last use's client address and user agent.
    pub last_used_ip: Option<String>,
    pub last_used_user_agent: Option<String>,
    /// The routes it is limited to, one `METHOD /pattern` a line (`domain::routes`); `None`: any.
    pub allowed_routes: Option<String>,
    pub rate_limit: Option<String>,
    /// `domain::quota`'s stored form: "N", "N/daily" or "N/monthly".
    pub usage_limit: Option<String>,
}

#[derive(Debug, Clone, Copy, Insertable)]
#[diesel(table_name = tokens)]
pub struct NewToken<'a> {
    pub account_id: i64,
    pub issuer_id: i64,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub role: Role,
    pub secret_hash: &'a str,
    pub created_at: PrimitiveDateTime,
    pub expires_at: Option<PrimitiveDateTime>,
    pub form_id: Option<&'a str>,
    pub parent_id: Option<i64>,
    pub allowed_ips: Option<&'a str>,
    pub allowed_routes: Option<&'a str>,
    /// `domain::rate`'s stored form, "N/S".
    pub rate_limit: Option<&'a str>,
    /// `domain::quota`'s stored form.
    pub usage_limit: Option<&'a str>,
}

/// A token with the name and e-mail of the user who issued it, for tables and the API.
#[derive(Debug, Clone, Queryable)]
pub struct TokenWithIssuer {
    pub token: Token,
    pub issuer_name: String,
    pub issuer_email: String,
}

/// Which tokens of one account to list. `issuer_id` is both the visibility limit and the
/// "Issued by" filter; the service decides which.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub account_id: i64,
    pub issuer_id: Option<i64>,
    pub not_issuer_id: Option<i64>,
    pub role: Option<Role>,
    /// Only tokens with one of these roles (the roles the viewer may see).
    pub roles: Option<Vec<Role>>,
    pub status: Option<TokenStatus>,
    pub deleted: Option<bool>,
    pub ids: Option<Vec<i64>>,
    /// Only tokens that expire within `EXPIRING_SOON` (use with `status: Active`).
    pub expiring_soon: bool,
    pub limit: i64,
    pub offset: i64,
    /// Keyset paging: only ids below (`before`, newest first) or above (`after`, the page
    /// just newer than `after`, still returned newest first). Walks the primary key from the
    /// cursor, so a page costs what it shows, however deep.
    pub before: Option<i64>,
    pub after: Option<i64>,
    /// Count every matching row too (costs what matches; pages don't need it).
    pub count: bool,
}

#[cfg(test)]
impl Token {
    /// An active, never-expiring Users token of `account_id` issued by `issuer_id`, for unit
    /// tests of the rules.
    pub fn fixture(account_id: i64, issuer_id: i64) -> Token {
        Token {
            id: 1,
            account_id,
            issuer_id,
            name: "t".into(),
            description: None,
            role: Role::Users,
            secret_hash: String::new(),
            created_at: time::macros::datetime!(2026-01-01 0:00),
            expires_at: None,
            last_used_at: None,
            deleted_at: None,
            deleted_by: None,
            form_id: None,
            parent_id: None,
            old_secret_hash: None,
            old_secret_until: None,
            allowed_ips: None,
            last_used_ip: None,
            last_used_user_agent: None,
            allowed_routes: None,
            rate_limit: None,
            usage_limit: None,
        }
    }
}

type Db = <DbConn as diesel::Connection>::Backend;
type BoxedTokens<'a> = tokens::BoxedQuery<'a, Db>;

/// The SQL twin of `TokenStatus::of`, and the one place queries derive a token's status:
/// deleted if deleted_at is set, else expired if expires_at <= now, else active.
pub(super) fn status_is(
    status: TokenStatus,
    now: PrimitiveDateTime,
) -> Box<
    dyn BoxableExpression<
        tokens::table,
        Db,
        SqlType = diesel::sql_types::Nullable<diesel::sql_types::Bool>,
    >,
> {
    match status {
        TokenStatus::Deleted => Box::new(tokens::deleted_at.is_not_null().nullable()),
        TokenStatus::Expired => Box::new(
            tokens::deleted_at
                .is_null()
                .nullable()
                .and(tokens::expires_at.le(now)),
        ),
        TokenStatus::Active => Box::new(
            tokens::deleted_at.is_null().nullable().and(
                tokens::expires_at
                    .is_null()
                    .nullable()
                    .or(tokens::expires_at.gt(now)),
            ),
        ),
    }
}

impl Token {
    /// Inserts a token; only `set_secret_hash` may follow it in the create transaction. On
    /// PostgreSQL the time between taking the id and committing is bounded
    /// (`INSERT_TO_COMMIT`), which the gateway's "this id will never exist" relies on
    /// (`services::id_horizon`).
    pub fn insert(conn: &mut DbConn, new: &NewToken) -> QueryResult<Token> {
        if let DbConn::Postgres(_) = conn {
            let ms = INSERT_TO_COMMIT.as_millis() / 3;
            for setting in ["statement_timeout", "idle_in_transaction_session_timeout"] {
                diesel::sql_query(format!("SET LOCAL {setting} = {ms}")).execute(conn)?;
            }
        }
        diesel::insert_into(tokens::table)
            .values(new)
            .returning(tokens::all_columns)
            .get_result(conn)
    }

    /// Sets the hash of a token just inserted in this transaction (`services::tokens::create`).
    pub fn set_secret_hash(conn: &mut DbConn, id: i64, hash: &str) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set(tokens::secret_hash.eq(hash))
            .execute(conn)
            .map(drop)
    }

    /// A rotation: the new secret's hash, the old one kept until `until` (`None`: forgotten
    /// now), and the expiry (kept or newly chosen).
    pub fn rotate(
        conn: &mut DbConn,
        id: i64,
        new_hash: &str,
        old: Option<(&str, PrimitiveDateTime)>,
        expires_at: Option<PrimitiveDateTime>,
    ) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set((
                tokens::secret_hash.eq(new_hash),
                tokens::old_secret_hash.eq(old.map(|(h, _)| h)),
                tokens::old_secret_until.eq(old.map(|(_, u)| u)),
                tokens::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .map(drop)
    }

    pub fn rename(
        conn: &mut DbConn,
        id: i64,
        name: &str,
        description: Option<&str>,
    ) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set((tokens::name.eq(name), tokens::description.eq(description)))
            .execute(conn)
            .map(drop)
    }

    /// Tokens whose old secret's grace has ended by `now` (at most `limit`; the partial index
    /// over `old_secret_until` finds them without reading anything else).
    pub fn graces_ended(
        conn: &mut DbConn,
        now: PrimitiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<Token>> {
        tokens::table
            .filter(tokens::old_secret_until.le(now))
            .order(tokens::old_secret_until.asc())
            .limit(limit)
            .select(Token::as_select())
            .load(conn)
    }

    /// Forgets a token's old secret if its grace has ended by `now`; `true` if this call did.
    pub fn forget_old_secret(
        conn: &mut DbConn,
        id: i64,
        now: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        diesel::update(
            tokens::table
                .find(id)
                .filter(tokens::old_secret_until.le(now)),
        )
        .set((
            tokens::old_secret_hash.eq(None::<String>),
            tokens::old_secret_until.eq(None::<PrimitiveDateTime>),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Token>> {
        tokens::table
            .find(id)
            .select(Token::as_select())
            .first(conn)
            .optional()
    }

    pub fn find_with_issuer(conn: &mut DbConn, id: i64) -> QueryResult<Option<TokenWithIssuer>> {
        tokens::table
            .inner_join(users::table)
            .filter(tokens::id.eq(id))
            .select((Token::as_select(), users::name, users::email))
            .first(conn)
            .optional()
    }

    pub fn find_by_form(
        conn: &mut DbConn,
        issuer_id: i64,
        form_id: &str,
    ) -> QueryResult<Option<Token>> {
        tokens::table
            .filter(tokens::issuer_id.eq(issuer_id))
            .filter(tokens::form_id.eq(form_id))
            .select(Token::as_select())
            .first(conn)
            .optional()
    }

    /// Tokens that are neither deleted nor expired at `now`.
    pub fn count_active(
        conn: &mut DbConn,
        account_id: i64,
        now: PrimitiveDateTime,
    ) -> QueryResult<i64> {
        filtered(
            &TokenFilter {
                account_id,
                status: Some(TokenStatus::Active),
                ..Default::default()
            },
            now,
        )
        .count()
        .get_result(conn)
    }

    /// How many tokens match `filter`.
    pub fn count(
        conn: &mut DbConn,
        filter: &TokenFilter,
        now: PrimitiveDateTime,
    ) -> QueryResult<i64> {
        filtered(filter, now).count().get_result(conn)
    }

    /// One page of matching tokens, newest first, and how many match in all (when asked).
    pub fn list(
        conn: &mut DbConn,
        filter: &TokenFilter,
        now: PrimitiveDateTime,
    ) -> QueryResult<(Vec<TokenWithIssuer>, Option<i64>)> {
        let total = if filter.count {
            Some(filtered(filter, now).count().get_result(conn)?)
        } else {
            None
        };
        let ids: Vec<i64> = match (filter.before, filter.after) {
            (_, Some(after)) => {
                // The `limit` rows just above the cursor, then newest first like the rest.
                let mut ids: Vec<i64> = filtered(filter, now)
                    .filter(tokens::id.gt(after))
                    .select(tokens::id)
                    .order(tokens::id.asc())
                    .limit(filter.limit)
                    .load(conn)?;
                ids.reverse();
                ids
            }
            (before, None) => {
                let mut q = filtered(filter, now);
                if let Some(before) = before {
                    q = q.filter(tokens::id.lt(before));
                }
                q.select(tokens::id)
                    .order(tokens::id.desc())
                    .limit(filter.limit)
                    .offset(filter.offset)
                    .load(conn)?
            }
        };
        let rows = tokens::table
            .inner_join(users::table)
            .filter(tokens::id.eq_any(&ids))
            .order(tokens::id.desc())
            .select((Token::as_select(), users::name, users::email))
            .load(conn)?;
        Ok((rows, total))
    }

    /// A user's active tokens (not deleted, not expired), oldest first.
    pub fn active_of_issuer(
        conn: &mut DbConn,
        issuer_id: i64,
        now: PrimitiveDateTime,
    ) -> QueryResult<Vec<Token>> {
        tokens::table
            .filter(tokens::issuer_id.eq(issuer_id))
            .filter(status_is(TokenStatus::Active, now))
            .order(tokens::id.asc())
            .select(Token::as_select())
            .load(conn)
    }

    /// The active tokens of these accounts (at most 50 each: the cap), for the idle rule.
    pub fn active_of_accounts(
        conn: &mut DbConn,
        ids: &[i64],
        now: PrimitiveDateTime,
    ) -> QueryResult<Vec<Token>> {
        tokens::table
            .filter(tokens::account_id.eq_any(ids))
            .filter(status_is(TokenStatus::Active, now))
            .select(Token::as_select())
            .load(conn)
    }

    /// `by`: the person who deleted it; `None` when no person did (a leaked token revoked by
    /// `apitokens scan --revoke` or a leak report).
    pub fn mark_deleted(
        conn: &mut DbConn,
        id: i64,
        by: Option<i64>,
        at: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        diesel::update(tokens::table.find(id).filter(tokens::deleted_at.is_null()))
            .set((tokens::deleted_at.eq(at), tokens::deleted_by.eq(by)))
            .execute(conn)
            .map(|n| n == 1)
    }
}

/// The WHERE clause of a filter.
pub(crate) fn filtered<'a>(filter: &'a TokenFilter, now: PrimitiveDateTime) -> BoxedTokens<'a> {
    let mut q = tokens::table
        .filter(tokens::account_id.eq(filter.account_id))
        .into_boxed();
    if let Some(issuer) = filter.issuer_id {
        q = q.filter(tokens::issuer_id.eq(issuer));
    }
    if let Some(issuer) = filter.not_issuer_id {
        q = q.filter(tokens::issuer_id.ne(issuer));
    }
    if let Some(role) = filter.role {
        q = q.filter(tokens::role.eq(role));
    }
    if let Some(roles) = &filter.roles {
        q = q.filter(tokens::role.eq_any(roles));
    }
    if let Some(deleted) = filter.deleted {
        q = if deleted {
            q.filter(tokens::deleted_at.is_not_null())
        } else {
            q.filter(tokens::deleted_at.is_null())
        };
    }
    if let Some(ids) = &filter.ids {
        q = q.filter(tokens::id.eq_any(ids));
    }
    if filter.expiring_soon {
        q = q.filter(tokens::expires_at.le(now + EXPIRING_SOON));
    }
    match filter.status {
        None => q,
        Some(status) => q.filter(status_is(status, now)),
    }
}
