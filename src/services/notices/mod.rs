//! Telling people: the expiry notices' plan (what is due, to whom), the outbox's delivery as
//! digests, the in-app notifications, the e-mail preference and one-click unsubscribe.

pub mod delivery;
pub mod messages;
pub mod plan;

use crate::domain::EventKind;
use std::sync::Arc;

use diesel::Connection;
use time::OffsetDateTime;

use crate::domain::token::{from_naive, to_naive};
use crate::domain::{NoticeId, UserId};
use crate::error::ServiceResult;
use crate::metrics::EmailOutcome;
use crate::repo::notices::Notice;
use crate::repo::User;
use crate::services::runtime::Runtime;

pub use delivery::{next_digest, sweep, Delivery, Mail};
pub use plan::InAppNotice;

/// The notices' room: the outbox, the mailer, the in-app list.
#[derive(Clone)]
pub struct Notices {
    rt: Runtime,
    mail: Arc<Mail>,
}

impl Notices {
    pub fn new(rt: Runtime, mail: Arc<Mail>) -> Notices {
        Notices { rt, mail }
    }

    /// Where e-mails go through, come from and link to.
    pub fn mail(&self) -> &Arc<Mail> {
        &self.mail
    }

    /// A user's in-app notifications, newest first (the latest 200).
    pub async fn notifications(&self, user_id: UserId) -> ServiceResult<Vec<InAppNotice>> {
        let user_id = user_id.get();
        let rows = self
            .rt
            .db
            .run(move |conn| Ok(Notice::for_user(conn, user_id, 200)?))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(n, t)| InAppNotice {
                id: crate::domain::NoticeId::new(n.id),
                unread: n.read_at.is_none(),
                kind: n.kind,
                token_id: crate::domain::TokenId::new(t.id),
                token_name: t.name,
                expires_at: t.expires_at.map(from_naive),
                created_at: from_naive(n.created_at),
                detail: n.detail,
                token_deleted: t.deleted_at.is_some(),
            })
            .collect())
    }

    /// Marks one (`Some(id)`) or all of a user's notifications read.
    pub async fn mark_read(&self, user_id: UserId, id: Option<NoticeId>) -> ServiceResult<()> {
        let id = id.map(NoticeId::get);
        let user_id = user_id.get();
        let now = to_naive(self.rt.clock.now());
        self.rt
            .db
            .run(move |conn| Ok(Notice::mark_read(conn, user_id, id, now).map(drop)?))
            .await
    }

    /// Turns a user's expiry e-mails on or off (Profile → Notifications).
    #[tracing::instrument(skip(self))]
    pub async fn set_expiry_email(&self, user_id: UserId, on: bool) -> ServiceResult<()> {
        let user_id = user_id.get();
        self.rt
            .db
            .run(move |conn| Ok(User::set_token_expiry_email(conn, user_id, on)?))
            .await
    }

    /// The e-mail address an unsubscribe link was made for (`None`: not one of ours, or the
    /// person is gone). Shows nothing, changes nothing.
    pub async fn unsubscribe_target(&self, value: String) -> ServiceResult<Option<String>> {
        let Some(user_id) = crate::domain::unsubscribe::verify(&self.mail.unsubscribe_key, &value)
        else {
            return Ok(None);
        };
        self.rt
            .db
            .run(move |conn| {
                Ok(User::find(conn, user_id)?
                    .filter(|u| u.removed_at.is_none())
                    .map(|u| u.email))
            })
            .await
    }

    /// Turns off the expiry e-mails of the person an unsubscribe link was made for, with no
    /// session: the signed value is the authority (`domain::unsubscribe`). Recorded in the
    /// account's event log when it changes something; `how` says which way it came.
    #[tracing::instrument(skip(self, value))]
    pub async fn unsubscribe(
        &self,
        value: String,
        how: &'static str,
    ) -> ServiceResult<Option<String>> {
        let Some(user_id) = crate::domain::unsubscribe::verify(&self.mail.unsubscribe_key, &value)
        else {
            return Ok(None);
        };
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    // The write first: on SQLite a transaction that reads and then writes can't
                    // wait for another writer. Conditional: of a burst of clicks, one changes
                    // it, and that one is recorded.
                    let changed = User::turn_off_expiry_email(conn, user_id)?;
                    let Some(user) = User::find(conn, user_id)?.filter(|u| u.removed_at.is_none())
                    else {
                        return Ok(None);
                    };
                    if changed {
                        let summary = format!("{} turned expiry e-mails off {how}", user.email);
                        crate::services::audit::write(
                            conn,
                            &[crate::services::audit::Entry {
                                account_id: user.account_id,
                                by: crate::services::audit::By::Person(user_id),
                                at: now,
                                kind: EventKind::UserExpiryEmailsOff,
                                summary: &summary,
                                token_id: None,
                                reason: None,
                            }],
                        )?;
                    }
                    Ok(Some(user.email))
                })
            })
            .await
    }
    /// The preview of the next expiry e-mail to `user_id` (`next_digest`).
    pub async fn next_digest(
        &self,
        user_id: UserId,
    ) -> ServiceResult<Option<crate::email::Rendered>> {
        let user_id = user_id.get();
        let mail = self.mail.clone();
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| next_digest(conn, &mail, user_id, now))
            .await
    }

    /// One sweep of the outbox as of `now`: record the notices due, deliver what is pending
    /// (the periodic task through `Services::sweep`, and at once after a leak or a
    /// deprovisioning so their alerts don't wait for it).
    #[tracing::instrument(skip(self))]
    pub async fn sweep(&self, now: OffsetDateTime) -> ServiceResult<(usize, Delivery)> {
        let mail = self.mail.clone();
        let stop = self.rt.stopping.clone();
        let (recorded, d) = self
            .rt
            .db
            .run(move |conn| sweep(conn, &mail, now, &stop))
            .await?;
        let m = &self.rt.metrics;
        m.notices_recorded(recorded);
        m.emails(EmailOutcome::sent, d.sent);
        m.emails(EmailOutcome::failed, d.failed);
        m.emails(EmailOutcome::skipped, d.skipped);
        m.emails(EmailOutcome::cancelled, d.cancelled);
        Ok((recorded, d))
    }

    /// Sweeps in the background now (alerts that shouldn't wait for the periodic sweep); a
    /// failure is logged and left to the next sweep.
    pub fn sweep_soon(&self, why: &'static str) {
        let notices = self.clone();
        tokio::spawn(async move {
            if let Err(e) = notices.sweep(notices.rt.clock.now()).await {
                tracing::warn!(error = %e, why, "the sweep for alerts failed; the next one sends them");
            }
        });
    }
}
