use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{account_events, users};
use crate::db::DbConn;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = account_events)]
pub struct AccountEvent {
    pub id: i64,
    pub account_id: i64,
    pub actor_id: Option<i64>,
    pub at: PrimitiveDateTime,
    pub kind: String,
    pub summary: String,
    /// The token the event is about, if it is about one.
    pub token_id: Option<i64>,
    /// Where the request that caused it came from (the client address), if a request did.
    pub client_address: Option<String>,
}

/// An event to record, with the token it is about and the client address, when known.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub account_id: i64,
    pub actor_id: Option<i64>,
    pub at: PrimitiveDateTime,
    pub kind: &'a str,
    pub summary: &'a str,
    pub token_id: Option<i64>,
    pub client_address: Option<&'a str>,
}

/// Events with the name of who did each.
pub type Named = Vec<(AccountEvent, Option<String>)>;

impl AccountEvent {
    /// Records many events in a few statements (a sweep's "e-mailed" events).
    pub fn insert_many(conn: &mut DbConn, events: &[NewEvent]) -> QueryResult<()> {
        for chunk in events.chunks(500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|e| {
                    (
                        account_events::account_id.eq(e.account_id),
                        account_events::actor_id.eq(e.actor_id),
                        account_events::at.eq(e.at),
                        account_events::kind.eq(e.kind),
                        account_events::summary.eq(e.summary),
                        account_events::token_id.eq(e.token_id),
                        account_events::client_address.eq(e.client_address),
                    )
                })
                .collect();
            match conn {
                DbConn::Sqlite(c) => diesel::insert_into(account_events::table)
                    .values(&rows)
                    .execute(c)?,
                DbConn::Postgres(c) => diesel::insert_into(account_events::table)
                    .values(&rows)
                    .execute(c)?,
            };
        }
        Ok(())
    }

    /// The events about one token, newest first, with who did each (the token's page).
    pub fn for_token(
        conn: &mut DbConn,
        account_id: i64,
        token_id: i64,
        limit: i64,
    ) -> QueryResult<Vec<(AccountEvent, Option<String>)>> {
        account_events::table
            .left_join(users::table.on(account_events::actor_id.eq(users::id.nullable())))
            .filter(account_events::token_id.eq(token_id))
            .filter(account_events::account_id.eq(account_id))
            .order(account_events::id.desc())
            .limit(limit)
            .select((AccountEvent::as_select(), users::name.nullable()))
            .load(conn)
    }

    /// A page of the account's events, newest first, optionally of one kind family
    /// (`token.` matches every token event) or one token, and how many match in all.
    pub fn page(
        conn: &mut DbConn,
        account_id: i64,
        kind_prefix: Option<&str>,
        token_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> QueryResult<(Named, i64)> {
        let filtered = || {
            let mut q = account_events::table
                .filter(account_events::account_id.eq(account_id))
                .into_boxed();
            if let Some(prefix) = kind_prefix {
                q = q.filter(account_events::kind.like(format!("{prefix}%")));
            }
            if let Some(id) = token_id {
                q = q.filter(account_events::token_id.eq(id));
            }
            q
        };
        let total = filtered().count().get_result(conn)?;
        let ids: Vec<i64> = filtered()
            .order(account_events::id.desc())
            .limit(limit)
            .offset(offset)
            .select(account_events::id)
            .load(conn)?;
        let rows = account_events::table
            .left_join(users::table.on(account_events::actor_id.eq(users::id.nullable())))
            .filter(account_events::id.eq_any(ids))
            .order(account_events::id.desc())
            .select((AccountEvent::as_select(), users::name.nullable()))
            .load(conn)?;
        Ok((rows, total))
    }

    /// The newest events of an account, with the name of who did each.
    pub fn recent(
        conn: &mut DbConn,
        account_id: i64,
        limit: i64,
    ) -> QueryResult<Vec<(AccountEvent, Option<String>)>> {
        account_events::table
            .left_join(users::table.on(account_events::actor_id.eq(users::id.nullable())))
            .filter(account_events::account_id.eq(account_id))
            .order(account_events::id.desc())
            .limit(limit)
            .select((AccountEvent::as_select(), users::name.nullable()))
            .load(conn)
    }
}
