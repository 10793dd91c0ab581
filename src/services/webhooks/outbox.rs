//! Writing webhook messages into the outbox, in the transaction of what they tell: the audit
//! trail's events (`audit::write` hands each one here), a sweep's findings (`token.expiring`
//! with the expiry notices, `token.expired`), and a ping. Knows no other room.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::db::DbConn;
use crate::domain::notice::due_notice;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::webhook::{new_message_id, wants, WebhookType};
use crate::domain::EventKind;
use crate::error::ServiceResult;
use crate::repo::webhooks::{tokens_expiring_between, Endpoint, Message, NewMessage};

/// Rung when messages were queued, so this instance's worker looks at once (the others find
/// them at their next poll, within a second).
pub static QUEUED: Notify = Notify::const_new();

/// Where a public report says a token was found (`POST /iam/credentials/revoke`): its
/// revocation's reason is `public_report`, any other find's `leak_report`.
pub const PUBLIC_REPORT: &str = "a public report (POST /iam/credentials/revoke)";

/// Something that happened, as a message tells it.
#[derive(Debug, Clone)]
pub struct Happened<'a> {
    pub account_id: i64,
    pub kind: EventKind,
    pub at: OffsetDateTime,
    /// The person who did it, if one did.
    pub actor_id: Option<i64>,
    pub token_id: Option<i64>,
    pub summary: &'a str,
    /// Why a token was deleted or revoked (`person`, `lineage`, `public_report`, ...).
    pub reason: Option<&'a str>,
}

/// The body of a message: `{"type", "timestamp", "data"}`. Never a secret or a hash.
pub fn body(t: WebhookType, at: OffsetDateTime, data: Map<String, Value>) -> String {
    json!({
        "type": t.as_str(),
        "timestamp": at.format(&Rfc3339).unwrap_or_default(),
        "data": data,
    })
    .to_string()
}

/// Queues a message for each enabled endpoint of the account that wants each event (one
/// read per account among `events`). Returns how many were queued.
pub fn enqueue_events(conn: &mut DbConn, events: &[Happened]) -> ServiceResult<usize> {
    let mut subscribers: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    let mut new = vec![];
    for e in events {
        let Some(t) = WebhookType::of_event(e.kind) else {
            continue;
        };
        if let Entry::Vacant(v) = subscribers.entry(e.account_id) {
            v.insert(Endpoint::subscribers(conn, e.account_id)?);
        }
        let wanting: Vec<i64> = subscribers[&e.account_id]
            .iter()
            .filter(|(_, events)| wants(events, t))
            .map(|(id, _)| *id)
            .collect();
        if wanting.is_empty() {
            continue;
        }
        let mut data = Map::new();
        data.insert("client_id".into(), e.account_id.into());
        if let Some(id) = e.token_id {
            data.insert("token_id".into(), id.into());
        }
        if let Some(id) = e.actor_id {
            data.insert("actor_id".into(), id.into());
        }
        if let Some(reason) = e.reason {
            data.insert("reason".into(), reason.into());
        }
        data.insert("summary".into(), e.summary.into());
        let payload = body(t, e.at, data);
        for endpoint_id in wanting {
            new.push(NewMessage {
                endpoint_id,
                account_id: e.account_id,
                msg_id: new_message_id(),
                event_type: t.as_str().to_owned(),
                payload: payload.clone(),
                dedupe_key: None,
                created_at: to_naive(e.at),
                next_attempt_at: to_naive(e.at),
            });
        }
    }
    queue(conn, &new)
}

fn queue(conn: &mut DbConn, new: &[NewMessage]) -> ServiceResult<usize> {
    let Some(first) = new.first() else {
        return Ok(0);
    };
    let n = Message::enqueue(conn, new, first.created_at)?;
    QUEUED.notify_waiters();
    Ok(n)
}

/// The sweep's findings: `token.expiring` when a token's 7-day or 1-day notice is due (as the
/// notices are), `token.expired` for a token that expired in the last two days; each once
/// per endpoint (a dedupe key), however many sweeps see it. Only accounts with an enabled
/// endpoint are read.
pub fn enqueue_sweep(conn: &mut DbConn, now: OffsetDateTime) -> ServiceResult<usize> {
    let rows = tokens_expiring_between(
        conn,
        to_naive(now - Duration::days(2)),
        to_naive(now + Duration::days(7)),
    )?;
    let mut subscribers: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    let mut new = vec![];
    for (token_id, account_id, name, created, expires) in rows {
        let expires = from_naive(expires);
        let (t, key) = if expires <= now {
            (WebhookType::TokenExpired, format!("expired:{token_id}"))
        } else {
            match due_notice(from_naive(created), Some(expires), false, now) {
                Some(kind) => (
                    WebhookType::TokenExpiring,
                    format!("expiring:{token_id}:{}", kind.code()),
                ),
                None => continue,
            }
        };
        if let Entry::Vacant(v) = subscribers.entry(account_id) {
            v.insert(Endpoint::subscribers(conn, account_id)?);
        }
        let mut data = Map::new();
        data.insert("client_id".into(), account_id.into());
        data.insert("token_id".into(), token_id.into());
        data.insert("name".into(), name.clone().into());
        data.insert(
            "expires_at".into(),
            expires.format(&Rfc3339).unwrap_or_default().into(),
        );
        let payload = body(t, now, data);
        for (endpoint_id, events) in &subscribers[&account_id] {
            if wants(events, t) {
                new.push(NewMessage {
                    endpoint_id: *endpoint_id,
                    account_id,
                    msg_id: new_message_id(),
                    event_type: t.as_str().to_owned(),
                    payload: payload.clone(),
                    dedupe_key: Some(key.clone()),
                    created_at: to_naive(now),
                    next_attempt_at: to_naive(now),
                });
            }
        }
    }
    queue(conn, &new)
}

/// A `ping` to one endpoint ("Send test event").
pub fn enqueue_ping(
    conn: &mut DbConn,
    account_id: i64,
    endpoint_id: i64,
    now: OffsetDateTime,
) -> ServiceResult<String> {
    let mut data = Map::new();
    data.insert("client_id".into(), account_id.into());
    data.insert("endpoint_id".into(), endpoint_id.into());
    let msg_id = new_message_id();
    queue(
        conn,
        &[NewMessage {
            endpoint_id,
            account_id,
            msg_id: msg_id.clone(),
            event_type: WebhookType::Ping.as_str().to_owned(),
            payload: body(WebhookType::Ping, now, data),
            dedupe_key: None,
            created_at: to_naive(now),
            next_attempt_at: to_naive(now),
        }],
    )?;
    Ok(msg_id)
}
