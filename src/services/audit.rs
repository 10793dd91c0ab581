//! The account's audit trail: every token event recorded once, with who, when, from where
//! and about which token, in the same transaction as the change it describes. The Activity
//! page, a token's page and `GET /iam/clients/{clientId}/events` read it.

use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::{EventKind, TokenId, UserId};
use crate::error::ServiceResult;
use crate::repo::events::{AccountEvent, NewEvent};
use crate::repo::Token;
use crate::services::runtime::Runtime;
use crate::services::vocabulary::{Actor, Via};
use crate::services::webhooks::outbox::{enqueue_events, Happened};

/// Who an event is by: a person acting (their client address is kept), a person known only
/// by id (a one-click link carries no session), or nobody (a sweep, a leak report, the
/// identity provider).
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    Actor(&'a Actor),
    Person(i64),
    System,
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub account_id: i64,
    pub by: By<'a>,
    pub at: OffsetDateTime,
    pub kind: EventKind,
    pub summary: &'a str,
    /// The token it is about, if any.
    pub token_id: Option<i64>,
    /// Why a token was deleted or revoked, for webhooks (`Retired::code`).
    pub reason: Option<&'a str>,
}

/// The one way events are written: in the caller's transaction, with the acting person's
/// client address, as few statements as the batch needs; the webhook messages they send are
/// queued in the same transaction (`webhooks::outbox`).
pub fn write(conn: &mut DbConn, entries: &[Entry]) -> ServiceResult<()> {
    let rows: Vec<NewEvent> = entries
        .iter()
        .map(|e| NewEvent {
            account_id: e.account_id,
            actor_id: match e.by {
                By::Actor(actor) => Some(actor.user_id.get()),
                By::Person(id) => Some(id),
                By::System => None,
            },
            at: to_naive(e.at),
            kind: e.kind.as_str(),
            summary: e.summary,
            token_id: e.token_id,
            client_address: match e.by {
                By::Actor(actor) => actor.origin.client.as_deref(),
                _ => None,
            },
        })
        .collect();
    AccountEvent::insert_many(conn, &rows)?;
    let happened: Vec<Happened> = entries
        .iter()
        .map(|e| Happened {
            account_id: e.account_id,
            kind: e.kind,
            at: e.at,
            actor_id: match e.by {
                By::Actor(actor) => Some(actor.user_id.get()),
                By::Person(id) => Some(id),
                By::System => None,
            },
            token_id: e.token_id,
            summary: e.summary,
            reason: e.reason.or(match e.kind {
                EventKind::TokenDeleted => Some("person"),
                _ => None,
            }),
        })
        .collect();
    enqueue_events(conn, &happened)?;
    Ok(())
}

/// Records what `actor` did (`token_id`: the token it is about).
pub fn record(
    conn: &mut DbConn,
    actor: &Actor,
    at: OffsetDateTime,
    kind: EventKind,
    summary: &str,
    token_id: Option<i64>,
) -> ServiceResult<()> {
    write(
        conn,
        &[Entry {
            account_id: actor.account_id.get(),
            by: By::Actor(actor),
            at,
            kind,
            summary,
            token_id,
            reason: None,
        }],
    )
}

/// Records what happened with no person acting (a sweep, a leak report, the identity provider).
pub fn record_system(
    conn: &mut DbConn,
    account_id: i64,
    at: OffsetDateTime,
    kind: EventKind,
    summary: &str,
    token_id: Option<i64>,
) -> ServiceResult<()> {
    write(
        conn,
        &[Entry {
            account_id,
            by: By::System,
            at,
            kind,
            summary,
            token_id,
            reason: None,
        }],
    )
}

/// Records the end of a token no person caused (a leak report, the idle rule), with the
/// reason its webhook names.
pub fn record_ended(
    conn: &mut DbConn,
    account_id: i64,
    at: OffsetDateTime,
    kind: EventKind,
    summary: &str,
    token_id: i64,
    reason: &str,
) -> ServiceResult<()> {
    write(
        conn,
        &[Entry {
            account_id,
            by: By::System,
            at,
            kind,
            summary,
            token_id: Some(token_id),
            reason: Some(reason),
        }],
    )
}

/// "in the portal", "through the API with token "deploy"", ...: how an action came.
pub fn via_words(conn: &mut DbConn, actor: &Actor) -> ServiceResult<String> {
    Ok(match actor.origin.via {
        Via::Portal => " in the portal".into(),
        Via::Api(None) => " through the API (JWT)".into(),
        Via::Api(Some(id)) => match Token::find(conn, id.get())? {
            Some(t) => format!(" through the API with token \"{}\"", t.name),
            None => " through the API".into(),
        },
        Via::System => String::new(),
    })
}

/// Why tokens were deleted, for their events.
#[derive(Debug, Clone, Copy)]
pub enum Retired<'a> {
    /// A person deleted it.
    ByPerson,
    /// Its issuer's role was lowered below it.
    RoleLowered,
    /// Its issuer was removed from the account.
    IssuerRemoved,
    /// An Administrator deleted all of its issuer's tokens.
    AllOfIssuer,
    /// Its issuer was deprovisioned by the identity provider.
    Deprovisioned,
    /// Found where it shouldn't be (the root's own event says where).
    Found(&'a str),
    /// Unused for the account's idle limit (the root's own event says how long).
    Idle,
}

impl Retired<'_> {
    /// The reason a webhook names.
    pub fn code(&self) -> &'static str {
        match self {
            Retired::ByPerson => "person",
            Retired::RoleLowered => "role_lowered",
            Retired::IssuerRemoved => "issuer_removed",
            Retired::AllOfIssuer => "all_of_issuer",
            Retired::Deprovisioned => "deprovisioning",
            Retired::Found(place) if *place == crate::services::webhooks::outbox::PUBLIC_REPORT => {
                "public_report"
            }
            Retired::Found(_) => "leak_report",
            Retired::Idle => "idle",
        }
    }

    fn why(&self) -> String {
        match self {
            Retired::ByPerson => String::new(),
            Retired::RoleLowered => " (its issuer's role was lowered below it)".into(),
            Retired::IssuerRemoved => " (its issuer was removed from the account)".into(),
            Retired::AllOfIssuer => " (with all of its issuer's tokens)".into(),
            Retired::Deprovisioned => {
                " (its issuer was deprovisioned by the identity provider)".into()
            }
            Retired::Found(place) => format!(" (found in {place})"),
            Retired::Idle => " (unused for the account's idle limit)".into(),
        }
    }
}

/// Records the deletion of `root` (unless `root_event` is false: its caller records its own)
/// and of each token deleted with it because `root` created it (`retired`: every id deleted
/// now, the root's included).
pub fn record_retired(
    conn: &mut DbConn,
    by: Option<&Actor>,
    at: OffsetDateTime,
    root: &Token,
    retired: &[i64],
    why: Retired,
    root_event: bool,
) -> ServiceResult<()> {
    let code = why.code();
    let why = why.why();
    let account_id = root.account_id;
    let record_one =
        |conn: &mut DbConn, id: i64, summary: String, reason: &str| -> ServiceResult<()> {
            write(
                conn,
                &[Entry {
                    account_id,
                    by: by.map_or(By::System, By::Actor),
                    at,
                    kind: EventKind::TokenDeleted,
                    summary: &summary,
                    token_id: Some(id),
                    reason: Some(reason),
                }],
            )
        };
    if root_event && retired.contains(&root.id) {
        let via = match by {
            Some(actor) => via_words(conn, actor)?,
            None => String::new(),
        };
        record_one(
            conn,
            root.id,
            format!("Deleted token \"{}\"{via}{why}", root.name),
            code,
        )?;
    }
    for &id in retired.iter().filter(|id| **id != root.id) {
        let name = Token::find(conn, id)?.map(|t| t.name).unwrap_or_default();
        record_one(
            conn,
            id,
            format!(
                "Deleted token \"{name}\" with token \"{}\", which created it{why}",
                root.name
            ),
            "lineage",
        )?;
    }
    Ok(())
}

/// A line of the audit trail.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub at: OffsetDateTime,
    pub kind: String,
    /// Who did it (their name), if a person did.
    pub who: Option<String>,
    pub actor_id: Option<UserId>,
    pub summary: String,
    pub token_id: Option<TokenId>,
    pub client_address: Option<String>,
}

impl Event {
    fn of((e, who): (AccountEvent, Option<String>)) -> Event {
        Event {
            id: e.id,
            at: from_naive(e.at),
            kind: e.kind,
            who,
            actor_id: e.actor_id.map(UserId::new),
            summary: e.summary,
            token_id: e.token_id.map(TokenId::new),
            client_address: e.client_address,
        }
    }
}

/// One page of the account's events (Administrators only), newest first, and the total.
pub fn page(
    conn: &mut DbConn,
    actor: &Actor,
    kind_prefix: Option<&str>,
    token_id: Option<i64>,
    limit: i64,
    offset: i64,
) -> ServiceResult<(Vec<Event>, i64)> {
    actor.require_admin()?;
    let (rows, total) = AccountEvent::page(
        conn,
        actor.account_id.get(),
        kind_prefix,
        token_id,
        limit.clamp(1, 1000),
        offset.max(0),
    )?;
    Ok((rows.into_iter().map(Event::of).collect(), total))
}

/// The events about one token (its page), newest first.
pub fn for_token(
    conn: &mut DbConn,
    account_id: i64,
    token_id: i64,
    limit: i64,
) -> ServiceResult<Vec<Event>> {
    Ok(AccountEvent::for_token(conn, account_id, token_id, limit)?
        .into_iter()
        .map(Event::of)
        .collect())
}

/// The account's activity, as Administrators read it.
#[derive(Clone)]
pub struct Audit {
    rt: Runtime,
}

impl Audit {
    pub fn new(rt: Runtime) -> Audit {
        Audit { rt }
    }

    /// A page of the account's activity (Administrators only).
    pub async fn activity(
        &self,
        actor: Actor,
        kind_prefix: Option<String>,
        token_id: Option<TokenId>,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<(Vec<Event>, i64)> {
        let token_id = token_id.map(TokenId::get);
        self.rt
            .db
            .run(move |conn| {
                page(
                    conn,
                    &actor,
                    kind_prefix.as_deref(),
                    token_id,
                    limit,
                    offset,
                )
            })
            .await
    }
}
