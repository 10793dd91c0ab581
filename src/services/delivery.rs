//! Delivering expiry e-mails through the outbox (`notices` rows).
//!
//! A sweep records each due (token, notice, recipient) once (a unique key, `notices::record`),
//! then delivers pending e-mails: claimed with a conditional update, sent, marked. A failure
//! leaves the row pending with the error and a later attempt time; a sweep that dies after
//! claiming leaves a claim that expires, and the next sweep takes the row again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::metrics::EmailOutcome;

use time::{Duration, OffsetDateTime};

use super::notices::record;
use super::Services;
use crate::db::DbConn;
use crate::domain::notice::backoff;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::{EmailStatus, Secret};
use crate::email::{expiry_message, ExpiryMail, Mailer, Recipient};
use crate::error::ServiceResult;
use crate::repo::notices::Notice;
use crate::repo::User;

/// How long a sweep may hold a claimed row before another sweep may take it.
pub const CLAIM_TTL: Duration = Duration::minutes(5);
/// E-mails handled per sweep.
const BATCH: i64 = 200;

/// Where e-mails go through, come from, and link to.
pub struct Mail {
    pub mailer: Mailer,
    pub from: String,
    pub base_url: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
}

/// Sends the pending e-mails that are due.
pub fn deliver(
    conn: &mut DbConn,
    mail: &Mail,
    now: OffsetDateTime,
    stop: &AtomicBool,
) -> ServiceResult<Delivery> {
    let mut report = Delivery::default();
    let ids = Notice::ready(conn, to_naive(now), BATCH)?;
    if ids.is_empty() {
        return Ok(report);
    }
    let claim_id = Secret::generate().into_exposed();
    let mut issuers: HashMap<i64, String> = HashMap::new();

    Notice::claim(
        conn,
        &ids,
        &claim_id,
        to_naive(now),
        to_naive(now + CLAIM_TTL),
    )?;
    for (notice, token, recipient) in Notice::claimed(conn, &claim_id)? {
        // Shutting down: the e-mail being sent was finished; give the rest back at once.
        if stop.load(Ordering::SeqCst) {
            let left = Notice::unclaim(conn, &claim_id)?;
            tracing::info!(
                left,
                "sweep stopped for shutdown; the rest goes out with the next sweep"
            );
            break;
        }
        let status = if token.deleted_at.is_some() || recipient.removed_at.is_some() {
            EmailStatus::Cancelled
        } else if !recipient.token_expiry_email {
            EmailStatus::Skipped
        } else {
            // A token's notices go to several people: look its issuer up once.
            let issuer_name = match issuers.get(&token.issuer_id) {
                Some(name) => name.clone(),
                None => {
                    let name = User::find(conn, token.issuer_id)?
                        .map(|u| u.display_name().to_owned())
                        .unwrap_or_default();
                    issuers.insert(token.issuer_id, name.clone());
                    name
                }
            };
            let facts = ExpiryMail {
                recipient: Recipient {
                    name: crate::domain::user::display_name(&recipient.name, &recipient.email)
                        .to_owned(),
                    email: recipient.email.clone(),
                },
                token_id: token.id,
                token_name: token.name.clone(),
                role: token.role,
                issuer_name,
                expires_at: token.expires_at.map(from_naive),
                kind: notice.kind,
            };
            let sent = expiry_message(&mail.from, &facts, &mail.base_url)
                .and_then(|message| mail.mailer.send(&message));
            match sent {
                Ok(()) => EmailStatus::Sent,
                Err(error) => {
                    tracing::warn!(notice_id = notice.id, attempt = notice.attempts + 1, %error, "expiry e-mail not sent; will retry");
                    let next = now + backoff(notice.attempts);
                    Notice::failed(conn, notice.id, &claim_id, &error, to_naive(next))?;
                    report.failed += 1;
                    continue;
                }
            }
        };
        Notice::finish(conn, notice.id, &claim_id, status, to_naive(now))?;
        match status {
            EmailStatus::Sent => report.sent += 1,
            EmailStatus::Skipped => report.skipped += 1,
            _ => report.cancelled += 1,
        }
    }
    Ok(report)
}

/// One sweep: record what is due, then deliver what is pending.
pub fn sweep(
    conn: &mut DbConn,
    mail: &Mail,
    now: OffsetDateTime,
    stop: &AtomicBool,
) -> ServiceResult<(usize, Delivery)> {
    let recorded = record(conn, now)?;
    let delivery = deliver(conn, mail, now, stop)?;
    Ok((recorded, delivery))
}

impl Services {
    /// One expiry-notice sweep as of `now` (the server's periodic task, `apitokens notify`).
    #[tracing::instrument(skip(self))]
    pub async fn sweep(&self, now: OffsetDateTime) -> ServiceResult<(usize, Delivery)> {
        let mail = self.mail.clone();
        let limiter = self.limiter.clone();
        let stop = self.stopping.clone();
        let (recorded, d) = self
            .db
            .run(move |conn| {
                // Housekeeping on the same beat: failed-attempt windows that ended.
                limiter.purge(conn, now)?;
                sweep(conn, &mail, now, &stop)
            })
            .await?;
        let m = &self.metrics;
        m.notices_recorded(recorded);
        m.emails(EmailOutcome::sent, d.sent);
        m.emails(EmailOutcome::failed, d.failed);
        m.emails(EmailOutcome::skipped, d.skipped);
        m.emails(EmailOutcome::cancelled, d.cancelled);
        Ok((recorded, d))
    }
}
