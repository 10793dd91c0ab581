//! Delivering expiry e-mails through the outbox (`notices` rows), one digest per person.
//!
//! A sweep takes the one sweep lease (so sweeps on several instances never interleave),
//! records each due (token, notice, recipient) once (a unique key, `notices::record`), then
//! delivers: pending rows are claimed with a conditional update, grouped per recipient into
//! a digest whose key is written on the rows *before* the mail goes out, sent as one e-mail,
//! and marked. A failure leaves the rows pending (with their digest key) and a later attempt
//! time; a sweep that dies leaves a claim and a lease that expire. A retry sends the same
//! digest again, with the same Message-ID, never a regrouping: a notice is in one digest only.

use crate::domain::EventKind;
use crate::services::audit;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use time::{Duration, OffsetDateTime};

use super::messages::{
    digest_message, idle_message, leak_message, quota_message, render_digest, DigestItem,
    DigestMail, IdleMail, LeakMail, QuotaMail,
};
use super::plan::record;
use crate::config::Settings;
use crate::db::DbConn;
use crate::domain::notice::backoff;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::NoticeKind;
use crate::domain::{unsubscribe, EmailStatus, Secret};
use crate::email::{DkimKey, Mailer, Recipient};
use crate::error::ServiceResult;
use crate::repo::notices::Notice;
use crate::repo::{Token, User};

/// How long a sweep may hold a claimed row (and the sweep lease) before another may take it.
pub const CLAIM_TTL: Duration = Duration::minutes(5);
/// Recipients claimed at a time; a sweep goes on claiming until nothing is ready or its
/// time is up.
const BATCH: i64 = 200;
/// The longest a sweep keeps sending before it leaves the rest to the next one.
pub const SWEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(50);

/// Where e-mails go through, come from, and link to.
pub struct Mail {
    pub mailer: Mailer,
    pub from: String,
    pub base_url: String,
    /// Signs the one-click unsubscribe links (`domain::unsubscribe`).
    pub unsubscribe_key: Vec<u8>,
}

impl Mail {
    /// The mail setup of `settings`, signing with DKIM when a key is configured.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Mail> {
        let mut mailer = Mailer::new(settings.smtp_url.as_deref(), &settings.data_dir)?;
        if let Some((path, selector)) = &settings.dkim {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("APITOKENS_DKIM_KEY: can't read {}: {e}", path.display())
            })?;
            let domain = crate::email::sender_domain(&settings.mail_from)?;
            let config = DkimKey::from_pem(&pem)
                .and_then(|key| key.config(selector, &domain))
                .map_err(|e| anyhow::anyhow!("APITOKENS_DKIM_KEY {}: {e}", path.display()))?;
            mailer = mailer.with_dkim(Some(config));
        }
        Ok(Mail {
            mailer,
            from: settings.mail_from.clone(),
            base_url: settings.base_url.clone(),
            unsubscribe_key: settings.secret_key.bytes().to_vec(),
        })
    }

    pub fn unsubscribe_link(&self, user_id: i64) -> String {
        format!(
            "{}/unsubscribe?t={}",
            self.base_url,
            unsubscribe::sign(&self.unsubscribe_key, user_id)
        )
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Notices whose e-mail went out (in `emails` digests).
    pub sent: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
    /// Digests sent.
    pub emails: usize,
}

/// The e-mail of one digest: its recipient's due tokens, soonest first.
pub fn digest_of(
    conn: &mut DbConn,
    mail: &Mail,
    recipient: &User,
    tokens: &[&Token],
    kinds: &[crate::domain::NoticeKind],
    issuers: &mut HashMap<i64, String>,
    now: OffsetDateTime,
) -> ServiceResult<DigestMail> {
    let mut items = vec![];
    for (token, kind) in tokens.iter().zip(kinds) {
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
        items.push(DigestItem {
            token_id: token.id,
            token_name: token.name.clone(),
            role: token.role,
            issuer_name,
            expires_at: token.expires_at.map(from_naive),
            kind: *kind,
        });
    }
    Ok(DigestMail {
        recipient: Recipient {
            name: crate::domain::user::display_name(&recipient.name, &recipient.email).to_owned(),
            email: recipient.email.clone(),
        },
        lang: recipient.lang.clone(),
        items,
        unsubscribe_link: mail.unsubscribe_link(recipient.id),
        now,
    })
}

/// What the next expiry e-mail to `user_id` would say, from the same code that sends it:
/// the notices recorded and not sent yet, and those a sweep would record now. `None` when
/// nothing is due (or the person turned the e-mails off).
pub fn next_digest(
    conn: &mut DbConn,
    mail: &Mail,
    user_id: i64,
    now: OffsetDateTime,
) -> ServiceResult<Option<crate::email::Rendered>> {
    let Some(user) = User::find(conn, user_id)?.filter(|u| u.removed_at.is_none()) else {
        return Ok(None);
    };
    if !user.token_expiry_email {
        return Ok(None);
    }
    let mut due: Vec<(Token, crate::domain::NoticeKind)> = Notice::pending_for(conn, user_id)?
        .into_iter()
        .map(|(n, t)| (t, n.kind))
        .collect();
    for p in super::plan::plan_in(conn, now, Some(user.account_id))? {
        if p.recipient_id == user_id
            && !due.iter().any(|(t, k)| t.id == p.token_id && *k == p.kind)
            && !Notice::exists(conn, p.token_id, p.kind, user_id)?
        {
            if let Some(token) = Token::find(conn, p.token_id)? {
                due.push((token, p.kind));
            }
        }
    }
    if due.is_empty() {
        return Ok(None);
    }
    let tokens: Vec<&Token> = due.iter().map(|(t, _)| t).collect();
    let kinds: Vec<_> = due.iter().map(|(_, k)| *k).collect();
    let facts = digest_of(conn, mail, &user, &tokens, &kinds, &mut HashMap::new(), now)?;
    render_digest(&facts, &mail.base_url)
        .map(Some)
        .map_err(|e| crate::error::ServiceError::Internal(anyhow::anyhow!(e)))
}

/// Which digest a notice goes in: the one it was put in before (a retry), or a new one for
/// its recipient.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum DigestOf {
    Existing(String),
    New(i64),
}

/// Sends the pending e-mails that are due, one digest per recipient.
pub fn deliver(
    conn: &mut DbConn,
    mail: &Mail,
    now: OffsetDateTime,
    stop: &AtomicBool,
) -> ServiceResult<Delivery> {
    let mut report = Delivery::default();
    let recipients = Notice::ready_recipients(conn, to_naive(now), BATCH)?;
    if recipients.is_empty() {
        return Ok(report);
    }
    let claim_id = Secret::generate().into_exposed();
    let (naive_now, until) = (to_naive(now), to_naive(now + CLAIM_TTL));
    Notice::claim_for(conn, &recipients, &claim_id, naive_now, until)?;
    Notice::claim_digest_siblings(conn, &claim_id, naive_now, until)?;

    let mut digests: BTreeMap<DigestOf, Vec<(Notice, Token, User)>> = BTreeMap::new();
    let mut outgoing = vec![];
    // What each notice is about, for the "e-mailed" events of the audit trail.
    let mut about: HashMap<i64, (i64, i64, String, NoticeKind, String)> = HashMap::new();
    for (notice, token, recipient) in Notice::claimed(conn, &claim_id)? {
        about.insert(
            notice.id,
            (
                token.account_id,
                token.id,
                token.name.clone(),
                notice.kind,
                recipient.email.clone(),
            ),
        );
        if matches!(notice.kind, NoticeKind::Idle | NoticeKind::Quota) {
            // Alerts of their own (the digest's words are about expiry), under the
            // expiry-e-mail preference; not sent for a token gone meanwhile or to a removed
            // person.
            let status = if token.deleted_at.is_some() || recipient.removed_at.is_some() {
                Some(EmailStatus::Cancelled)
            } else if !recipient.token_expiry_email {
                Some(EmailStatus::Skipped)
            } else {
                None
            };
            if let Some(status) = status {
                Notice::finish(conn, notice.id, &claim_id, status, naive_now)?;
                match status {
                    EmailStatus::Skipped => report.skipped += 1,
                    _ => report.cancelled += 1,
                }
                continue;
            }
            let key = format!("{}-{}", notice.kind.code(), notice.id);
            let to = Recipient {
                name: crate::domain::user::display_name(&recipient.name, &recipient.email)
                    .to_owned(),
                email: recipient.email.clone(),
            };
            let message = if notice.kind == NoticeKind::Quota {
                let facts = QuotaMail {
                    recipient: to,
                    token_id: token.id,
                    token_name: token.name.clone(),
                    detail: notice.detail.clone().unwrap_or_default(),
                };
                quota_message(&mail.from, &facts, &mail.base_url, &key)
            } else {
                let account = crate::repo::Account::find(conn, token.account_id)?;
                let facts = IdleMail {
                    recipient: to,
                    account: account.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
                    token_id: token.id,
                    token_name: token.name.clone(),
                    since: token.last_used_at.map_or_else(
                        || {
                            format!(
                                "since its creation on {}",
                                from_naive(token.created_at).date()
                            )
                        },
                        |at| format!("since {}", from_naive(at).date()),
                    ),
                    days: account.and_then(|a| a.max_idle_days).unwrap_or_default(),
                    revoke_on: notice.detail.clone().unwrap_or_default(),
                };
                idle_message(&mail.from, &facts, &mail.base_url, &key)
            };
            outgoing.push((vec![notice.id], key, notice.attempts, message));
            continue;
        }
        if matches!(notice.kind, NoticeKind::Leaked | NoticeKind::Deprovisioned) {
            // A leak alert goes out on its own, whether or not its token is deleted by now (it
            // is about that token; its words follow which), and whatever the expiry-e-mail
            // preference: only a removed recipient stops it. Counted with the expiry e-mails
            // in the metrics and the sweep's report.
            if recipient.removed_at.is_some() {
                Notice::finish(
                    conn,
                    notice.id,
                    &claim_id,
                    EmailStatus::Cancelled,
                    naive_now,
                )?;
                report.cancelled += 1;
                continue;
            }
            let deprovisioned = notice.kind == NoticeKind::Deprovisioned;
            let key = format!("{}-{}", notice.kind.code(), notice.id);
            let alert = LeakMail {
                recipient: Recipient {
                    name: crate::domain::user::display_name(&recipient.name, &recipient.email)
                        .to_owned(),
                    email: recipient.email.clone(),
                },
                lang: recipient.lang.clone(),
                token_id: token.id,
                token_name: token.name.clone(),
                found: notice.detail.clone().unwrap_or_default(),
                revoked: token.deleted_at.is_some(),
                deprovisioned,
            };
            let message = leak_message(&mail.from, &alert, &mail.base_url, &key);
            outgoing.push((vec![notice.id], key, notice.attempts, message));
            continue;
        }
        let status = if token.deleted_at.is_some() || recipient.removed_at.is_some() {
            EmailStatus::Cancelled
        } else if !recipient.token_expiry_email {
            EmailStatus::Skipped
        } else {
            let key = match &notice.digest_key {
                Some(key) => DigestOf::Existing(key.clone()),
                None => DigestOf::New(recipient.id),
            };
            digests
                .entry(key)
                .or_default()
                .push((notice, token, recipient));
            continue;
        };
        Notice::finish(conn, notice.id, &claim_id, status, naive_now)?;
        match status {
            EmailStatus::Skipped => report.skipped += 1,
            _ => report.cancelled += 1,
        }
    }

    // 1. Every digest's key (written before anything is sent) and message.
    let mut issuers: HashMap<i64, String> = HashMap::new();
    for (of, group) in digests {
        let ids: Vec<i64> = group.iter().map(|(n, _, _)| n.id).collect();
        let key = match of {
            DigestOf::Existing(key) => key,
            DigestOf::New(_) => {
                let key = format!("digest-{}", &Secret::generate().into_exposed()[..24]);
                Notice::set_digest(conn, &ids, &claim_id, &key)?;
                key
            }
        };
        let recipient = &group[0].2;
        let tokens: Vec<&Token> = group.iter().map(|(_, t, _)| t).collect();
        let kinds: Vec<_> = group.iter().map(|(n, _, _)| n.kind).collect();
        let facts = digest_of(conn, mail, recipient, &tokens, &kinds, &mut issuers, now)?;
        let message = digest_message(&mail.from, &facts, &mail.base_url, &key);
        let attempts = group.iter().map(|(n, _, _)| n.attempts).max().unwrap_or(0);
        outgoing.push((ids, key, attempts, message));
    }

    // 2. Sent a few at a time over the pooled SMTP connections (one message at a time per
    //    connection waits on the network, not on us). Shutting down, no new one starts.
    let results = send_all(&mail.mailer, &outgoing, stop);

    // 3. Marked: sent, failed (retried later, same digest), or not tried (given back).
    let mut untried = 0;
    let mut mailed: Vec<(i64, i64, String)> = vec![];
    for ((ids, key, attempts, _), result) in outgoing.iter().zip(results) {
        match result {
            Some(Ok(())) => {
                for id in ids {
                    Notice::finish(conn, *id, &claim_id, EmailStatus::Sent, naive_now)?;
                    if let Some((account, token, name, kind, email)) = about.get(id) {
                        let what = match kind {
                            NoticeKind::Leaked => "Security alert (leak)".to_owned(),
                            NoticeKind::Deprovisioned => "Deprovisioning alert".to_owned(),
                            NoticeKind::Idle => "Idle notice (revoked in 7 days)".to_owned(),
                            NoticeKind::Quota => "Usage notice (80 % of its quota)".to_owned(),
                            k => format!("Expiry notice (expires {})", k.when()),
                        };
                        mailed.push((
                            *account,
                            *token,
                            format!("{what} about token \"{name}\" e-mailed to {email}"),
                        ));
                    }
                }
                report.sent += ids.len();
                report.emails += 1;
            }
            Some(Err(error)) => {
                tracing::warn!(digest = %key, notices = ids.len(), attempt = attempts + 1, %error, "expiry e-mail not sent; will retry");
                let next = to_naive(now + backoff(*attempts));
                for id in ids {
                    Notice::failed(conn, *id, &claim_id, &error, next)?;
                }
                report.failed += ids.len();
            }
            None => untried += 1,
        }
    }
    let events: Vec<audit::Entry> = mailed
        .iter()
        .map(|(account, token, summary)| audit::Entry {
            account_id: *account,
            by: audit::By::System,
            at: now,
            kind: EventKind::TokenNoticeSent,
            summary,
            token_id: Some(*token),
            reason: None,
        })
        .collect();
    audit::write(conn, &events)?;
    if untried > 0 {
        let left = Notice::unclaim(conn, &claim_id)?;
        tracing::info!(
            left,
            "sweep stopped for shutdown; the rest goes out with the next sweep"
        );
    }
    Ok(report)
}

/// Digests sent at once (each over its own pooled SMTP connection).
const SEND_CONCURRENCY: usize = 8;

/// One digest ready to go: its notices, its key, the attempts so far, its message.
type Outgoing = (Vec<i64>, String, i32, Result<lettre::Message, String>);

/// Sends `outgoing` with up to `SEND_CONCURRENCY` at a time; `None` for a message not tried
/// because `stop` was set (the ones already going finish).
pub(crate) fn send_all(
    mailer: &Mailer,
    outgoing: &[Outgoing],
    stop: &AtomicBool,
) -> Vec<Option<Result<(), String>>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<(), String>>>> = outgoing
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let workers = SEND_CONCURRENCY.min(outgoing.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((_, _, _, message)) = outgoing.get(i) else {
                    return;
                };
                let sent = message
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|m| mailer.send(m));
                *results[i].lock().expect("result lock") = Some(sent);
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("result lock"))
        .collect()
}

/// One sweep: record what is due, deliver what is pending. Only one sweep runs at a time
/// across instances (the sweep lease); one that finds it taken does nothing.
pub fn sweep(
    conn: &mut DbConn,
    mail: &Mail,
    now: OffsetDateTime,
    stop: &AtomicBool,
) -> ServiceResult<(usize, Delivery)> {
    let holder = Secret::generate().into_exposed();
    if !Notice::take_sweep_lease(conn, &holder, to_naive(now), to_naive(now + CLAIM_TTL))? {
        tracing::debug!("another sweep is running");
        return Ok((0, Delivery::default()));
    }
    let started = std::time::Instant::now();
    let result = record(conn, now).and_then(|recorded| {
        // Batch after batch until nothing is ready, the time is up, or we are stopping.
        let mut total = Delivery::default();
        loop {
            let d = deliver(conn, mail, now, stop)?;
            let handled = d.sent + d.failed + d.skipped + d.cancelled;
            total.sent += d.sent;
            total.failed += d.failed;
            total.skipped += d.skipped;
            total.cancelled += d.cancelled;
            total.emails += d.emails;
            if handled == 0 || stop.load(Ordering::SeqCst) || started.elapsed() > SWEEP_BUDGET {
                break;
            }
        }
        Ok((recorded, total))
    });
    Notice::release_sweep_lease(conn, &holder)?;
    result
}
