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
}

impl AccountEvent {
    pub fn record(
        conn: &mut DbConn,
        account_id: i64,
        actor_id: Option<i64>,
        at: PrimitiveDateTime,
        kind: &str,
        summary: &str,
    ) -> QueryResult<()> {
        diesel::insert_into(account_events::table)
            .values((
                account_events::account_id.eq(account_id),
                account_events::actor_id.eq(actor_id),
                account_events::at.eq(at),
                account_events::kind.eq(kind),
                account_events::summary.eq(summary),
            ))
            .execute(conn)
            .map(drop)
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
