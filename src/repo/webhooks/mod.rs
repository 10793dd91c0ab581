//! An account's webhook endpoints (and when each is next due for the delivery worker), and
//! the outbox of messages to them (`messages`): written with the event they tell, claimed by
//! one worker at a time, in order per endpoint.

mod messages;

pub use messages::{Attempt, Message, NewMessage, DELIVERED, FAILED, PENDING};

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{webhook_endpoints, webhook_messages};
use crate::db::DbConn;

#[derive(Debug, Clone, Queryable, Selectable, AsChangeset, Identifiable)]
#[diesel(table_name = webhook_endpoints)]
#[diesel(treat_none_as_null = true)]
pub struct Endpoint {
    pub id: i64,
    pub account_id: i64,
    pub url: String,
    pub description: String,
    pub events: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_until: Option<PrimitiveDateTime>,
    pub failing_since: Option<PrimitiveDateTime>,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    /// When its oldest pending message is due; the worker's to keep (never saved from here).
    #[diesel(skip_update)]
    pub due_at: Option<PrimitiveDateTime>,
    #[diesel(skip_update)]
    pub queued_seq: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewEndpoint {
    pub account_id: i64,
    pub url: String,
    pub description: String,
    pub events: String,
    pub enabled: bool,
    pub secret_sealed: String,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

impl Endpoint {
    pub fn of_account(conn: &mut DbConn, account_id: i64) -> QueryResult<Vec<Endpoint>> {
        webhook_endpoints::table
            .filter(webhook_endpoints::account_id.eq(account_id))
            .order(webhook_endpoints::id.asc())
            .select(Endpoint::as_select())
            .load(conn)
    }

    /// The account's endpoint `id` (another account's is not found).
    pub fn find(conn: &mut DbConn, account_id: i64, id: i64) -> QueryResult<Option<Endpoint>> {
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::account_id.eq(account_id))
            .select(Endpoint::as_select())
            .first(conn)
            .optional()
    }

    pub fn by_id(conn: &mut DbConn, id: i64) -> QueryResult<Option<Endpoint>> {
        webhook_endpoints::table
            .find(id)
            .select(Endpoint::as_select())
            .first(conn)
            .optional()
    }

    pub fn insert(conn: &mut DbConn, new: &NewEndpoint) -> QueryResult<Endpoint> {
        diesel::insert_into(webhook_endpoints::table)
            .values(new)
            .returning(webhook_endpoints::all_columns)
            .get_result(conn)
    }

    /// Writes every field of `self` back.
    pub fn save(&self, conn: &mut DbConn) -> QueryResult<()> {
        diesel::update(webhook_endpoints::table.find(self.id))
            .set(self)
            .execute(conn)
            .map(|_| ())
    }

    /// Deletes the endpoint and its messages; whether it was there.
    pub fn delete(conn: &mut DbConn, account_id: i64, id: i64) -> QueryResult<bool> {
        diesel::delete(webhook_messages::table.filter(webhook_messages::endpoint_id.eq(id)))
            .filter(webhook_messages::account_id.eq(account_id))
            .execute(conn)?;
        diesel::delete(
            webhook_endpoints::table
                .find(id)
                .filter(webhook_endpoints::account_id.eq(account_id)),
        )
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn count_of_account(conn: &mut DbConn, account_id: i64) -> QueryResult<i64> {
        webhook_endpoints::table
            .filter(webhook_endpoints::account_id.eq(account_id))
            .count()
            .get_result(conn)
    }

    /// The account's enabled endpoints and what each subscribed to: (id, events).
    pub fn subscribers(conn: &mut DbConn, account_id: i64) -> QueryResult<Vec<(i64, String)>> {
        webhook_endpoints::table
            .filter(webhook_endpoints::account_id.eq(account_id))
            .filter(webhook_endpoints::enabled.eq(true))
            .select((webhook_endpoints::id, webhook_endpoints::events))
            .load(conn)
    }

    /// A delivery succeeded: the endpoint isn't failing any more.
    pub fn succeeded(conn: &mut DbConn, id: i64) -> QueryResult<()> {
        diesel::update(
            webhook_endpoints::table
                .find(id)
                .filter(webhook_endpoints::failing_since.is_not_null()),
        )
        .set(webhook_endpoints::failing_since.eq(None::<PrimitiveDateTime>))
        .execute(conn)
        .map(|_| ())
    }

    /// An attempt failed: since when the endpoint has been failing (now, if it wasn't).
    pub fn failed(
        conn: &mut DbConn,
        id: i64,
        now: PrimitiveDateTime,
    ) -> QueryResult<Option<PrimitiveDateTime>> {
        diesel::update(
            webhook_endpoints::table
                .find(id)
                .filter(webhook_endpoints::failing_since.is_null()),
        )
        .set(webhook_endpoints::failing_since.eq(now))
        .execute(conn)?;
        webhook_endpoints::table
            .find(id)
            .select(webhook_endpoints::failing_since)
            .first(conn)
            .optional()
            .map(Option::flatten)
    }

    /// Enabled endpoints with a message due at `now`, soonest first: (id, queued_seq as seen).
    pub fn due(
        conn: &mut DbConn,
        now: PrimitiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<(i64, i64)>> {
        webhook_endpoints::table
            .filter(webhook_endpoints::due_at.le(now))
            .filter(webhook_endpoints::enabled.eq(true))
            .order(webhook_endpoints::due_at.asc())
            .limit(limit)
            .select((webhook_endpoints::id, webhook_endpoints::queued_seq))
            .load(conn)
    }

    /// Something was queued for these endpoints at `now` (in the queueing transaction): they
    /// are due now, unless due sooner already; and the queueing is counted.
    pub fn queued(conn: &mut DbConn, ids: &[i64], now: PrimitiveDateTime) -> QueryResult<()> {
        use diesel::dsl::case_when;
        use diesel::sql_types::{Nullable, Timestamp};
        let due = webhook_endpoints::due_at;
        diesel::update(webhook_endpoints::table.filter(webhook_endpoints::id.eq_any(ids)))
            .set((
                webhook_endpoints::queued_seq.eq(webhook_endpoints::queued_seq + 1),
                due.eq(case_when(
                    due.is_null().or(due.gt(now)),
                    now.into_sql::<Nullable<Timestamp>>(),
                )
                .otherwise(due)),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// After a worker's pass over the endpoint: due when its oldest pending message is (or
    /// never, if none is pending), unless something was queued since the worker looked
    /// (`seen`, its queueing count then), which keeps it due now.
    pub fn reschedule(conn: &mut DbConn, id: i64, seen: i64) -> QueryResult<()> {
        let head: Option<PrimitiveDateTime> = webhook_messages::table
            .filter(webhook_messages::endpoint_id.eq(id))
            .filter(webhook_messages::state.eq(PENDING))
            .order(webhook_messages::id.asc())
            .select(webhook_messages::next_attempt_at)
            .first(conn)
            .optional()?;
        diesel::update(
            webhook_endpoints::table
                .find(id)
                .filter(webhook_endpoints::queued_seq.eq(seen)),
        )
        .set(webhook_endpoints::due_at.eq(head))
        .execute(conn)
        .map(|_| ())
    }

    /// The account's endpoints the service turned off (its at most 20 rows, by account).
    pub fn turned_off_count(conn: &mut DbConn, account_id: i64) -> QueryResult<i64> {
        webhook_endpoints::table
            .filter(webhook_endpoints::account_id.eq(account_id))
            .filter(webhook_endpoints::enabled.eq(false))
            .filter(webhook_endpoints::disabled_reason.is_not_null())
            .count()
            .get_result(conn)
    }

    /// Turns the endpoint off (`reason` shown on its page); whether it was on.
    pub fn disable(conn: &mut DbConn, id: i64, reason: &str) -> QueryResult<bool> {
        diesel::update(
            webhook_endpoints::table
                .find(id)
                .filter(webhook_endpoints::enabled.eq(true)),
        )
        .set((
            webhook_endpoints::enabled.eq(false),
            webhook_endpoints::disabled_reason.eq(reason),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }
}

/// (id, account, name, created, expires) of a token.
pub type ExpiringToken = (i64, i64, String, PrimitiveDateTime, PrimitiveDateTime);

/// A live token of an account with an enabled endpoint, expiring in `(from, to]`: (id,
/// account, name, created, expires). The sweep's `token.expiring` and `token.expired`. No
/// account listening (the usual case): one read of the endpoints, nothing else. Otherwise the
/// tokens come by the live-expiry index (what the notices' plan reads too), the listening
/// accounts' kept: never by account, whose undeleted tokens grow with its history.
pub fn tokens_expiring_between(
    conn: &mut DbConn,
    from: PrimitiveDateTime,
    to: PrimitiveDateTime,
) -> QueryResult<Vec<ExpiringToken>> {
    use crate::db::schema::tokens;
    let mut listening: Vec<i64> = webhook_endpoints::table
        .filter(webhook_endpoints::enabled.eq(true))
        .select(webhook_endpoints::account_id)
        .distinct()
        .load(conn)?;
    if listening.is_empty() {
        return Ok(vec![]);
    }
    listening.sort_unstable();
    let rows: Vec<(
        i64,
        i64,
        String,
        PrimitiveDateTime,
        Option<PrimitiveDateTime>,
    )> = tokens::table
        .filter(tokens::deleted_at.is_null())
        .filter(tokens::expires_at.gt(from))
        .filter(tokens::expires_at.le(to))
        .select((
            tokens::id,
            tokens::account_id,
            tokens::name,
            tokens::created_at,
            tokens::expires_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, a, ..)| listening.binary_search(a).is_ok())
        .filter_map(|(id, a, n, c, e)| Some((id, a, n, c, e?)))
        .collect())
}
