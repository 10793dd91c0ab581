//! Delivering the outbox: any instance's worker claims endpoints whose oldest pending
//! message is due, sends their run of messages in order (one worker per endpoint at a time;
//! the claim outlives the 10-second timeout), and records each attempt. A failure is retried
//! with exponential back-off and jitter for 24 hours, with the same `webhook-id` and body,
//! then the message is marked failed; an endpoint failing for 3 days is turned off and the
//! event recorded. A worker that dies leaves claims that expire.
//!
//! The request is made safe to point anywhere: `https` only (or a host the operator
//! lists), every address a name resolves to checked on every new connection (so DNS
//! rebinding finds the same wall), no redirects followed, 10 seconds at most, and no more
//! than 64 KB of the answer read.

use std::sync::Arc;
use std::time::Instant;

use diesel::Connection;
use futures_util::future::join_all;
use time::{Duration, OffsetDateTime};

use crate::domain::second_factor::SealKey;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::webhook::{
    check_url, jitter, retry_delay, secret_key, shown_url, signature, DISABLE_AFTER, RETRY_FOR,
};
use crate::domain::EventKind;
use crate::error::ServiceResult;
use crate::repo::webhooks::{Attempt, Endpoint, Message};
use crate::services::audit;
use crate::services::notices::messages::{webhook_disabled_message, WebhookDisabledMail};
use crate::services::runtime::guarded_dns::GuardedResolver;
use crate::services::runtime::Runtime;

/// How long a worker holds what it claimed.
const CLAIM_TTL: Duration = Duration::seconds(60);
/// A run stops starting new attempts this long into its claim, so an attempt never outlives
/// it (with the timeout, and time to record).
const CLAIM_SAFE: std::time::Duration = std::time::Duration::from_secs(45);
/// Endpoints served at once by one worker.
const ENDPOINTS_AT_ONCE: i64 = 16;
/// Messages of one endpoint claimed together (sent one after the other).
const RUN: i64 = 25;
/// The longest a request to an endpoint may take.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most of an answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// The HTTP client for webhooks (one per instance: its connections are reused).
pub fn client(allow_hosts: Arc<Vec<String>>) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(allow_hosts)))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(std::time::Duration::from_secs(5))
        .user_agent(concat!("apitokens-webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(4)
        .build()?)
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub sent: usize,
    pub failed: usize,
}

/// The worker's parts.
#[derive(Clone)]
pub struct Deliverer {
    pub rt: Runtime,
    /// Tells the Administrators when an endpoint is turned off.
    pub mail: Arc<crate::services::notices::Mail>,
    pub client: reqwest::Client,
    pub allow_hosts: Arc<Vec<String>>,
    pub seal: SealKey,
}

/// How an attempt went.
struct Outcome {
    status: Option<i32>,
    error: Option<String>,
    latency_ms: i32,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Deliverer {
    /// Delivers what is due now, across endpoints at once; returns what it did.
    pub async fn deliver_due(&self) -> ServiceResult<Delivered> {
        let now = self.rt.clock.now();
        let due = self
            .rt
            .db
            .run(move |conn| Ok(Endpoint::due(conn, to_naive(now), ENDPOINTS_AT_ONCE)?))
            .await?;
        let runs = join_all(due.into_iter().map(|(e, seen)| self.deliver_run(e, seen))).await;
        let mut total = Delivered::default();
        for run in runs {
            let run = run?;
            total.sent += run.sent;
            total.failed += run.failed;
        }
        Ok(total)
    }

    /// Serves one due endpoint (`seen`: its queueing count when it was found due): its run
    /// of due messages in order, then when it is next due.
    async fn deliver_run(&self, endpoint_id: i64, seen: i64) -> ServiceResult<Delivered> {
        let now = self.rt.clock.now();
        let claim = crate::domain::webhook::new_message_id();
        let claim_id = claim.clone();
        let (endpoint, run, held_elsewhere) = self
            .rt
            .db
            .run(move |conn| {
                let endpoint = Endpoint::by_id(conn, endpoint_id)?;
                if !endpoint.as_ref().is_some_and(|e| e.enabled) {
                    return Ok((None, vec![], false));
                }
                let run = Message::claim_run(
                    conn,
                    endpoint_id,
                    to_naive(now),
                    &claim_id,
                    to_naive(now + CLAIM_TTL),
                    RUN,
                )?;
                // Nothing to take while another worker holds the head: that worker reschedules.
                let held_elsewhere =
                    run.is_empty() && Message::head_claimed(conn, endpoint_id, to_naive(now))?;
                Ok((endpoint, run, held_elsewhere))
            })
            .await?;
        let done = match endpoint {
            Some(endpoint) => self.send_run(&endpoint, run, &claim).await?,
            None => Delivered::default(),
        };
        if !held_elsewhere {
            self.rt
                .db
                .run(move |conn| Ok(Endpoint::reschedule(conn, endpoint_id, seen)?))
                .await?;
        }
        Ok(done)
    }

    /// Sends a claimed run in order, recording each attempt; stops at the first failure and
    /// gives the rest back.
    async fn send_run(
        &self,
        endpoint: &Endpoint,
        run: Vec<Message>,
        claim: &str,
    ) -> ServiceResult<Delivered> {
        let endpoint_id = endpoint.id;
        let mut done = Delivered::default();
        // Sent one after the other, recorded together (one commit a run, not one a message):
        // a worker that dies mid-run leaves its claim, and what it sent is sent again.
        let mut attempts: Vec<(i64, Outcome, OffsetDateTime, Option<OffsetDateTime>)> = vec![];
        let started = Instant::now();
        for message in run {
            // Never past the claim: what is left goes back, for the next pass.
            if started.elapsed() + TIMEOUT >= CLAIM_SAFE {
                break;
            }
            let outcome = self.attempt(endpoint, &message).await;
            let at = self.rt.clock.now();
            let ok = outcome.ok();
            // 24 hours of retries from when the message was queued (a redelivery is one
            // more attempt).
            let retry_at = (!ok)
                .then(|| at + retry_delay(message.attempts + 1, jitter()))
                .filter(|next| *next < from_naive(message.created_at) + RETRY_FOR);
            attempts.push((message.id, outcome, at, retry_at));
            if ok {
                done.sent += 1;
            } else {
                // The rest wait behind it, in order.
                done.failed += 1;
                break;
            }
        }
        let claim_id = claim.to_owned();
        let (account_id, shown) = (endpoint.account_id, shown_url(&endpoint.url));
        let turned_off = self
            .rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let mut last = None;
                    for (id, outcome, at, retry_at) in &attempts {
                        let ok = outcome.ok();
                        Message::record_attempt(
                            conn,
                            *id,
                            &claim_id,
                            &Attempt {
                                at: to_naive(*at),
                                status: outcome.status,
                                latency_ms: outcome.latency_ms,
                                error: outcome.error.as_deref(),
                            },
                            ok,
                            retry_at.map(to_naive),
                        )?;
                        last = Some((ok, *at));
                    }
                    // What this claim still holds goes back.
                    Message::unclaim(conn, &claim_id)?;
                    match last {
                        Some((true, _)) => {
                            Endpoint::succeeded(conn, endpoint_id)?;
                            Ok(None)
                        }
                        Some((false, at)) => {
                            turn_off_if_failing(conn, endpoint_id, account_id, &shown, at)
                        }
                        None => Ok(None),
                    }
                })
            })
            .await?;
        if let Some((since, at)) = turned_off {
            self.tell_turned_off(account_id, endpoint_id, shown_url(&endpoint.url), since, at)
                .await;
        }
        Ok(done)
    }

    /// Tells each Administrator of the account, by e-mail, that the endpoint was turned off
    /// (the portal shows it on the Webhooks page and badge; a failure to send is logged).
    async fn tell_turned_off(
        &self,
        account_id: i64,
        endpoint_id: i64,
        url: String,
        since: OffsetDateTime,
        at: OffsetDateTime,
    ) {
        let found = self
            .rt
            .db
            .run(move |conn| {
                let account = crate::repo::Account::find(conn, account_id)?
                    .map(|a| a.name)
                    .unwrap_or_default();
                let admins: Vec<crate::repo::User> =
                    crate::repo::User::list_in_account(conn, account_id)?
                        .into_iter()
                        .filter(|u| u.role.is_admin())
                        .collect();
                Ok((account, admins))
            })
            .await;
        let Ok((account, admins)) = found else {
            tracing::warn!(
                endpoint_id,
                "the Administrators weren't told of a webhook endpoint turned off"
            );
            return;
        };
        let mail = self.mail.clone();
        let mails: Vec<WebhookDisabledMail> = admins
            .iter()
            .map(|u| WebhookDisabledMail {
                recipient: crate::email::Recipient {
                    name: u.display_name().to_owned(),
                    email: u.email.clone(),
                },
                account: account.clone(),
                url: url.clone(),
                since: crate::domain::text::utc_minute(since),
                when: crate::domain::text::utc_minute(at),
                endpoint_id,
            })
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for facts in &mails {
                let sent = webhook_disabled_message(&mail.from, facts, &mail.base_url)
                    .and_then(|m| mail.mailer.send(&m));
                if let Err(e) = sent {
                    tracing::warn!(endpoint_id, error = %e, "webhook turned-off e-mail not sent");
                }
            }
        })
        .await;
    }

    /// One attempt: the signed POST, its status and how long it took.
    async fn attempt(&self, endpoint: &Endpoint, message: &Message) -> Outcome {
        let started = Instant::now();
        let finish = |status: Option<i32>, error: Option<String>| Outcome {
            status,
            error,
            latency_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
        };
        // The same rules as when it was added (the operator's list may have changed since);
        // what a name resolves to is the resolver's to check, at connection.
        let url = match check_url(&endpoint.url, &self.allow_hosts) {
            Ok(u) => u,
            Err(why) => return finish(None, Some(format!("refused: {why}"))),
        };
        let now = self.rt.clock.now();
        let mut keys = vec![];
        if let Some(key) = self.seal.open(&endpoint.secret_sealed) {
            keys.push(key);
        }
        if let (Some(old), Some(until)) = (
            &endpoint.previous_secret_sealed,
            endpoint.previous_secret_until,
        ) {
            if from_naive(until) > now {
                keys.extend(self.seal.open(old));
            }
        }
        let keys: Vec<Vec<u8>> = keys
            .iter()
            .filter_map(|k| secret_key(std::str::from_utf8(k).ok()?))
            .collect();
        if keys.is_empty() {
            return finish(None, Some("the signing secret can't be read".into()));
        }
        // The receiver compares this with its own clock: the wall clock, whatever the
        // service's clock says.
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(&keys, &message.msg_id, timestamp, &message.payload),
            )
            .body(message.payload.clone())
            .send()
            .await;
        match sent {
            Ok(mut response) => {
                let status = i32::from(response.status().as_u16());
                // Read (and drop) at most 64 KB, so the connection can be reused.
                let mut read = 0usize;
                while read < MAX_ANSWER {
                    match response.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        _ => break,
                    }
                }
                let error = (!(200..300).contains(&status)).then(|| {
                    if (300..400).contains(&status) {
                        format!("answered {status}: redirects are not followed")
                    } else {
                        format!("answered {status}")
                    }
                });
                finish(Some(status), error)
            }
            Err(e) => finish(None, Some(error_chain(&e))),
        }
    }
}

/// A failed attempt at `at`: the endpoint's failing streak starts (or goes on); 3 days of
/// it turns the endpoint off, recorded. When it did: since when it failed, and `at`.
fn turn_off_if_failing(
    conn: &mut crate::db::DbConn,
    endpoint_id: i64,
    account_id: i64,
    shown: &str,
    at: OffsetDateTime,
) -> ServiceResult<Option<(OffsetDateTime, OffsetDateTime)>> {
    let Some(since) = Endpoint::failed(conn, endpoint_id, to_naive(at))?.map(from_naive) else {
        return Ok(None);
    };
    if at - since < DISABLE_AFTER {
        return Ok(None);
    }
    let reason = format!(
        "Turned off: every delivery failed for 3 days (since {}).",
        since.date()
    );
    if !Endpoint::disable(conn, endpoint_id, &reason)? {
        return Ok(None);
    }
    audit::record_system(
        conn,
        account_id,
        at,
        EventKind::WebhookDisabled,
        &format!(
            "Webhook endpoint {endpoint_id} ({shown}) turned off: every delivery failed for 3 days"
        ),
        None,
    )?;
    Ok(Some((since, at)))
}

/// An error with its causes, one line (the resolver's refusal is a cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    if e.to_string().contains("timed out") || text.contains("operation timed out") {
        return "timed out after 10 s".into();
    }
    text.chars().take(500).collect()
}
