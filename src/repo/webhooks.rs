//! An account's webhook endpoints and the outbox of messages to them (`webhook_messages`):
//! written with the event they tell, claimed by one worker at a time, in order per endpoint.

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

/// One message to one endpoint, and how its delivery went.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_messages)]
pub struct Message {
    pub id: i64,
    pub endpoint_id: i64,
    pub account_id: i64,
    pub msg_id: String,
    pub event_type: String,
    pub payload: String,
    pub dedupe_key: Option<String>,
    pub state: String,
    pub attempts: i32,
    pub created_at: PrimitiveDateTime,
    pub next_attempt_at: PrimitiveDateTime,
    pub claim_id: Option<String>,
    pub claimed_until: Option<PrimitiveDateTime>,
    pub last_attempt_at: Option<PrimitiveDateTime>,
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub finished_at: Option<PrimitiveDateTime>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_messages)]
pub struct NewMessage {
    pub endpoint_id: i64,
    pub account_id: i64,
    pub msg_id: String,
    pub event_type: String,
    pub payload: String,
    pub dedupe_key: Option<String>,
    pub created_at: PrimitiveDateTime,
    pub next_attempt_at: PrimitiveDateTime,
}

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// How an attempt went, for the log.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub at: PrimitiveDateTime,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<&'a str>,
}

impl Message {
    /// Queues messages (one whose (endpoint, dedupe key) is already queued is left out) and
    /// makes their endpoints due at `now`. Returns how many were new.
    pub fn enqueue(
        conn: &mut DbConn,
        new: &[NewMessage],
        now: PrimitiveDateTime,
    ) -> QueryResult<usize> {
        let mut endpoints: Vec<i64> = new.iter().map(|m| m.endpoint_id).collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        let mut inserted = 0;
        for chunk in new.chunks(500) {
            inserted += match conn {
                DbConn::Sqlite(c) => diesel::insert_or_ignore_into(webhook_messages::table)
                    .values(chunk)
                    .execute(c)?,
                DbConn::Postgres(c) => diesel::insert_into(webhook_messages::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?,
            };
        }
        if inserted > 0 {
            Endpoint::queued(conn, &endpoints, now)?;
        }
        Ok(inserted)
    }

    /// Claims up to `max` of the endpoint's pending messages from its oldest on, in order,
    /// while each is due; nothing when the oldest isn't due or another worker holds it. Rows
    /// another worker claimed meanwhile don't match. Returns what this claim holds, oldest
    /// first.
    pub fn claim_run(
        conn: &mut DbConn,
        endpoint_id: i64,
        now: PrimitiveDateTime,
        claim_id: &str,
        until: PrimitiveDateTime,
        max: i64,
    ) -> QueryResult<Vec<Message>> {
        let run: Vec<(i64, PrimitiveDateTime, Option<PrimitiveDateTime>)> = webhook_messages::table
            .filter(webhook_messages::endpoint_id.eq(endpoint_id))
            .filter(webhook_messages::state.eq(PENDING))
            .order(webhook_messages::id.asc())
            .limit(max)
            .select((
                webhook_messages::id,
                webhook_messages::next_attempt_at,
                webhook_messages::claimed_until,
            ))
            .load(conn)?;
        let free = |held: &Option<PrimitiveDateTime>| held.is_none_or(|u| u < now);
        let ids: Vec<i64> = run
            .iter()
            .take_while(|(_, at, held)| *at <= now && free(held))
            .map(|(id, _, _)| *id)
            .collect();
        let Some(&head) = ids.first() else {
            return Ok(vec![]);
        };
        diesel::update(
            webhook_messages::table
                .filter(webhook_messages::id.eq_any(&ids))
                .filter(webhook_messages::state.eq(PENDING))
                .filter(
                    webhook_messages::claimed_until
                        .is_null()
                        .or(webhook_messages::claimed_until.lt(now)),
                ),
        )
        .set((
            webhook_messages::claim_id.eq(claim_id),
            webhook_messages::claimed_until.eq(until),
        ))
        .execute(conn)?;
        let mut held: Vec<Message> = webhook_messages::table
            .filter(webhook_messages::claim_id.eq(claim_id))
            .filter(webhook_messages::endpoint_id.eq(endpoint_id))
            .filter(webhook_messages::state.eq(PENDING))
            .order(webhook_messages::id.asc())
            .select(Message::as_select())
            .load(conn)?;
        // Only the run from the head on, with no gap another worker holds.
        if held.first().map(|m| m.id) != Some(head) {
            Self::unclaim(conn, claim_id)?;
            return Ok(vec![]);
        }
        let keep = held
            .iter()
            .zip(&ids)
            .take_while(|(m, id)| m.id == **id)
            .count();
        held.truncate(keep);
        Ok(held)
    }

    /// Whether the endpoint's oldest pending message is held by a live claim (another worker
    /// is sending it).
    pub fn head_claimed(
        conn: &mut DbConn,
        endpoint_id: i64,
        now: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        let held: Option<Option<PrimitiveDateTime>> = webhook_messages::table
            .filter(webhook_messages::endpoint_id.eq(endpoint_id))
            .filter(webhook_messages::state.eq(PENDING))
            .order(webhook_messages::id.asc())
            .select(webhook_messages::claimed_until)
            .first(conn)
            .optional()?;
        Ok(held.flatten().is_some_and(|until| until >= now))
    }

    /// Gives back whatever `claim_id` still holds.
    pub fn unclaim(conn: &mut DbConn, claim_id: &str) -> QueryResult<usize> {
        diesel::update(webhook_messages::table.filter(webhook_messages::claim_id.eq(claim_id)))
            .set((
                webhook_messages::claim_id.eq(None::<String>),
                webhook_messages::claimed_until.eq(None::<PrimitiveDateTime>),
            ))
            .execute(conn)
    }

    /// Records an attempt of a message this claim holds: delivered, retried at `retry_at`,
    /// or failed for good (`retry_at` None and not delivered). Whether the claim still held it.
    pub fn record_attempt(
        conn: &mut DbConn,
        id: i64,
        claim_id: &str,
        attempt: &Attempt,
        delivered: bool,
        retry_at: Option<PrimitiveDateTime>,
    ) -> QueryResult<bool> {
        let state = if delivered {
            DELIVERED
        } else if retry_at.is_some() {
            PENDING
        } else {
            FAILED
        };
        let finished = (state != PENDING).then_some(attempt.at);
        diesel::update(
            webhook_messages::table
                .find(id)
                .filter(webhook_messages::claim_id.eq(claim_id)),
        )
        .set((
            webhook_messages::state.eq(state),
            webhook_messages::attempts.eq(webhook_messages::attempts + 1),
            webhook_messages::next_attempt_at.eq(retry_at.unwrap_or(attempt.at)),
            webhook_messages::claim_id.eq(None::<String>),
            webhook_messages::claimed_until.eq(None::<PrimitiveDateTime>),
            webhook_messages::last_attempt_at.eq(attempt.at),
            webhook_messages::last_status.eq(attempt.status),
            webhook_messages::last_latency_ms.eq(attempt.latency_ms),
            webhook_messages::last_error.eq(attempt.error),
            webhook_messages::finished_at.eq(finished),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// The endpoint's messages, newest first (its delivery log).
    pub fn log(
        conn: &mut DbConn,
        account_id: i64,
        endpoint_id: i64,
        limit: i64,
    ) -> QueryResult<Vec<Message>> {
        webhook_messages::table
            .filter(webhook_messages::endpoint_id.eq(endpoint_id))
            .filter(webhook_messages::account_id.eq(account_id))
            .order(webhook_messages::id.desc())
            .limit(limit)
            .select(Message::as_select())
            .load(conn)
    }

    /// Sends a finished message again (same id and body) as soon as a worker is free;
    /// whether it was there and finished.
    pub fn redeliver(
        conn: &mut DbConn,
        account_id: i64,
        endpoint_id: i64,
        id: i64,
        now: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        let again = diesel::update(
            webhook_messages::table
                .find(id)
                .filter(webhook_messages::endpoint_id.eq(endpoint_id))
                .filter(webhook_messages::account_id.eq(account_id))
                .filter(webhook_messages::state.ne(PENDING)),
        )
        .set((
            webhook_messages::state.eq(PENDING),
            webhook_messages::next_attempt_at.eq(now),
            webhook_messages::finished_at.eq(None::<PrimitiveDateTime>),
        ))
        .execute(conn)?
            == 1;
        if again {
            Endpoint::queued(conn, &[endpoint_id], now)?;
        }
        Ok(again)
    }

    /// Forgets finished messages older than `before`.
    pub fn purge(conn: &mut DbConn, before: PrimitiveDateTime) -> QueryResult<usize> {
        diesel::delete(
            webhook_messages::table
                .filter(webhook_messages::state.ne(PENDING))
                .filter(webhook_messages::finished_at.lt(before)),
        )
        .execute(conn)
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
