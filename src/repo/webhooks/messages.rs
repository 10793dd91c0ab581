//! The outbox: one row per (message, endpoint), and how its delivery went.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::Endpoint;
use crate::db::schema::webhook_messages;
use crate::db::DbConn;

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
