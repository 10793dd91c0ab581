//! An account's webhook endpoints, as Administrators manage them: add (the signing secret
//! shown once), change, turn on and off, rotate the secret (the old one signs beside the new
//! one for 24 hours), remove, send a test event, read the delivery log, redeliver. Each
//! change is audited under the account's lock.

use diesel::Connection;
use time::OffsetDateTime;

use super::outbox::enqueue_ping;
use crate::db::DbConn;
use crate::domain::second_factor::SealKey;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::webhook::{
    new_secret, parse_events, shown_url, WebhookType, OLD_SECRET_SIGNS_FOR,
};
use crate::domain::{DeliveryId, EventKind, WebhookId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::webhooks::{Endpoint, Message, NewEndpoint};
use crate::repo::Account;
use crate::services::audit;
use crate::services::vocabulary::Actor;

/// The most endpoints an account may have.
pub const MAX_ENDPOINTS: i64 = 20;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 500;
/// Delivery log rows shown.
pub const LOG_ROWS: i64 = 100;

/// An endpoint as its page and the API show it (never its secret).
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    /// The types it receives; empty: every type.
    pub events: Vec<WebhookType>,
    pub enabled: bool,
    /// Why it is off, when the service turned it off.
    pub disabled_reason: Option<String>,
    /// Failing since (every attempt since then failed).
    pub failing_since: Option<OffsetDateTime>,
    /// Until when the previous secret still signs, after a rotation.
    pub previous_secret_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl EndpointView {
    fn of(e: Endpoint, now: OffsetDateTime) -> EndpointView {
        EndpointView {
            id: WebhookId::new(e.id),
            events: parse_events(&e.events),
            url: e.url,
            description: e.description,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since.map(from_naive),
            previous_secret_until: e.previous_secret_until.map(from_naive).filter(|u| *u > now),
            created_at: from_naive(e.created_at),
        }
    }
}

/// A line of the delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub id: DeliveryId,
    /// The `webhook-id`, the same on every attempt.
    pub msg_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
}

impl DeliveryView {
    fn of(m: Message) -> DeliveryView {
        DeliveryView {
            id: DeliveryId::new(m.id),
            next_attempt_at: (m.state == crate::repo::webhooks::PENDING)
                .then(|| from_naive(m.next_attempt_at)),
            msg_id: m.msg_id,
            event_type: m.event_type,
            state: m.state,
            attempts: m.attempts,
            created_at: from_naive(m.created_at),
            last_attempt_at: m.last_attempt_at.map(from_naive),
            last_status: m.last_status,
            last_latency_ms: m.last_latency_ms,
            last_error: m.last_error,
        }
    }
}

/// An endpoint to add, or the fields of one to change (`None`: keep).
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    /// Checked by `domain::webhook::check_url` (and the resolved addresses) before it comes here.
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<WebhookType>>,
    pub enabled: Option<bool>,
}

fn stored_events(events: &[WebhookType]) -> String {
    // A ping always goes; naming it alone subscribes to nothing else.
    let mut names: Vec<&str> = events.iter().map(|t| t.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

fn check_description(d: &str) -> ServiceResult<String> {
    let d = d.trim();
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ServiceError::invalid(
            "description",
            format!("At most {MAX_DESCRIPTION} characters."),
        ));
    }
    Ok(d.to_owned())
}

fn record(
    conn: &mut DbConn,
    actor: &Actor,
    now: OffsetDateTime,
    what: String,
) -> ServiceResult<()> {
    let via = audit::via_words(conn, actor)?;
    audit::record(
        conn,
        actor,
        now,
        EventKind::WebhookConfigured,
        &format!("{what}{via}"),
        None,
    )
}

pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<Vec<EndpointView>> {
    actor.require_admin()?;
    Ok(Endpoint::of_account(conn, actor.account_id.get())?
        .into_iter()
        .map(|e| EndpointView::of(e, now))
        .collect())
}

fn found(conn: &mut DbConn, actor: &Actor, id: WebhookId) -> ServiceResult<Endpoint> {
    actor.require_admin()?;
    Endpoint::find(conn, actor.account_id.get(), id.get())?.ok_or(ServiceError::NotFound)
}

pub fn get(
    conn: &mut DbConn,
    actor: &Actor,
    id: WebhookId,
    now: OffsetDateTime,
) -> ServiceResult<EndpointView> {
    Ok(EndpointView::of(found(conn, actor, id)?, now))
}

/// Adds an endpoint; returns it and its signing secret (shown this once).
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    new: EndpointChange,
    seal: &SealKey,
    now: OffsetDateTime,
) -> ServiceResult<(EndpointView, String)> {
    actor.require_admin()?;
    let url = new
        .url
        .ok_or_else(|| ServiceError::invalid("url", "Give the URL that receives the events."))?;
    let description = check_description(new.description.as_deref().unwrap_or(""))?;
    let secret = new_secret();
    conn.transaction(|conn| {
        let account = actor.account_id.get();
        Account::lock(conn, account)?;
        if Endpoint::count_of_account(conn, account)? >= MAX_ENDPOINTS {
            return Err(ServiceError::Conflict(format!(
                "An account can have at most {MAX_ENDPOINTS} webhook endpoints: remove one first."
            )));
        }
        let e = Endpoint::insert(
            conn,
            &NewEndpoint {
                account_id: account,
                url: url.clone(),
                description: description.clone(),
                events: stored_events(new.events.as_deref().unwrap_or(&[])),
                enabled: new.enabled.unwrap_or(true),
                secret_sealed: seal.seal(secret.as_bytes()),
                created_at: to_naive(now),
                updated_at: to_naive(now),
            },
        )?;
        record(
            conn,
            actor,
            now,
            format!("Added webhook endpoint {} ({})", e.id, shown_url(&url)),
        )?;
        Ok((EndpointView::of(e, now), secret.clone()))
    })
}

/// Changes an endpoint. Turning it on again clears why it was off and its failing streak.
pub fn update(
    conn: &mut DbConn,
    actor: &Actor,
    id: WebhookId,
    change: EndpointChange,
    now: OffsetDateTime,
) -> ServiceResult<EndpointView> {
    let description = change
        .description
        .as_deref()
        .map(check_description)
        .transpose()?;
    conn.transaction(|conn| {
        Account::lock(conn, actor.account_id.get())?;
        let mut e = found(conn, actor, id)?;
        let mut what = vec![];
        if let Some(url) = &change.url {
            if *url != e.url {
                what.push(format!("URL to {}", shown_url(url)));
                e.url = url.clone();
            }
        }
        if let Some(d) = &description {
            e.description = d.clone();
        }
        if let Some(events) = &change.events {
            let stored = stored_events(events);
            if stored != e.events {
                what.push(format!(
                    "events to {}",
                    if stored.is_empty() {
                        "every type"
                    } else {
                        &stored
                    }
                ));
                e.events = stored;
            }
        }
        if let Some(on) = change.enabled {
            if on != e.enabled {
                what.push(if on {
                    "turned on".into()
                } else {
                    "turned off".into()
                });
            }
            if on {
                e.disabled_reason = None;
                e.failing_since = None;
            }
            e.enabled = on;
        }
        e.updated_at = to_naive(now);
        e.save(conn)?;
        if !what.is_empty() {
            record(
                conn,
                actor,
                now,
                format!("Changed webhook endpoint {}: {}", e.id, what.join(", ")),
            )?;
        }
        Ok(EndpointView::of(e, now))
    })
}

/// A new signing secret (shown this once); the old one signs beside it for 24 hours.
pub fn rotate_secret(
    conn: &mut DbConn,
    actor: &Actor,
    id: WebhookId,
    seal: &SealKey,
    now: OffsetDateTime,
) -> ServiceResult<(EndpointView, String)> {
    let secret = new_secret();
    conn.transaction(|conn| {
        Account::lock(conn, actor.account_id.get())?;
        let mut e = found(conn, actor, id)?;
        e.previous_secret_sealed = Some(e.secret_sealed.clone());
        e.previous_secret_until = Some(to_naive(now + OLD_SECRET_SIGNS_FOR));
        e.secret_sealed = seal.seal(secret.as_bytes());
        e.updated_at = to_naive(now);
        e.save(conn)?;
        record(
            conn,
            actor,
            now,
            format!(
                "Rotated the signing secret of webhook endpoint {} (the old one signs for 24 hours more)",
                e.id
            ),
        )?;
        Ok((EndpointView::of(e, now), secret.clone()))
    })
}

pub fn delete(
    conn: &mut DbConn,
    actor: &Actor,
    id: WebhookId,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    conn.transaction(|conn| {
        Account::lock(conn, actor.account_id.get())?;
        let e = found(conn, actor, id)?;
        Endpoint::delete(conn, e.account_id, e.id)?;
        record(
            conn,
            actor,
            now,
            format!("Removed webhook endpoint {} ({})", e.id, shown_url(&e.url)),
        )
    })
}

/// Queues a `ping` to the endpoint; its `webhook-id`.
pub fn ping(
    conn: &mut DbConn,
    actor: &Actor,
    id: WebhookId,
    now: OffsetDateTime,
) -> ServiceResult<String> {
    let e = found(conn, actor, id)?;
    enqueue_ping(conn, e.account_id, e.id, now)
}

pub fn log(conn: &mut DbConn, actor: &Actor, id: WebhookId) -> ServiceResult<Vec<DeliveryView>> {
    let e = found(conn, actor, id)?;
    Ok(Message::log(conn, e.account_id, e.id, LOG_ROWS)?
        .into_iter()
        .map(DeliveryView::of)
        .collect())
}

/// Sends a delivered or failed message again (same `webhook-id` and body).
pub fn redeliver(
    conn: &mut DbConn,
    actor: &Actor,
    id: WebhookId,
    delivery: DeliveryId,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let e = found(conn, actor, id)?;
    if Message::redeliver(conn, e.account_id, e.id, delivery.get(), to_naive(now))? {
        super::outbox::QUEUED.notify_waiters();
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}
