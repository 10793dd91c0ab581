//! Expiry notices: which are due, to whom, and their delivery through the outbox.
//!
//! A sweep records each due (token, notice, recipient) once (a unique key), then delivers
//! pending e-mails: claimed with a conditional update, sent, marked. A failure leaves the row
//! pending with the error and a later attempt time; a sweep that dies after claiming leaves a
//! claim that expires, and the next sweep takes the row again.

use std::collections::HashMap;

use time::{Duration, OffsetDateTime};

use super::auth::random_id;
use super::tokens::{Visibility, EXPIRING_SOON};
use super::{role_of, Actor};
use crate::db::DbConn;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::Role;
use crate::email::{expiry_message, Mailer};
use crate::error::ServiceResult;
use crate::repo::notices::{NewNotice, Notice, CANCELLED, SENT, SKIPPED};
use crate::repo::{Token, TokenFilter, User};

/// How long a sweep may hold a claimed row before another sweep may take it.
pub const CLAIM_TTL: Duration = Duration::minutes(5);
/// E-mails handled per sweep.
const BATCH: i64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    SevenDays,
    OneDay,
}

impl NoticeKind {
    pub fn code(self) -> &'static str {
        match self {
            NoticeKind::SevenDays => "7d",
            NoticeKind::OneDay => "1d",
        }
    }

    pub fn parse(code: &str) -> Option<NoticeKind> {
        match code {
            "7d" => Some(NoticeKind::SevenDays),
            "1d" => Some(NoticeKind::OneDay),
            _ => None,
        }
    }

    /// How long before expiry the notice's window opens.
    pub fn lead(self) -> Duration {
        match self {
            NoticeKind::SevenDays => EXPIRING_SOON,

            NoticeKind::OneDay => Duration::days(1),
        }
    }

    /// "in 7 days" / "tomorrow".
    pub fn when(self) -> &'static str {
        match self {
            NoticeKind::SevenDays => "in 7 days",
            NoticeKind::OneDay => "tomorrow",
        }
    }
}

/// The notice due for a token at `now`, if any. A window opens `lead` before expiry; one that
/// was already open when the token was created is skipped (its issuer just chose that date);
/// when both are open, only the 1-day notice is due.
pub fn due_notice(
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    deleted: bool,
    now: OffsetDateTime,
) -> Option<NoticeKind> {
    let expires_at = expires_at?;
    if deleted || expires_at <= now {
        return None;
    }
    let due = |kind: NoticeKind| {
        let opens = expires_at - kind.lead();
        opens <= now && created_at < opens
    };
    [NoticeKind::OneDay, NoticeKind::SevenDays]
        .into_iter()
        .find(|k| due(*k))
}

/// Who is told about a token: its issuer and every Administrator of the account, once each,
/// removed users never.
pub fn recipients(token: &Token, account_users: &[User]) -> Vec<User> {
    let mut out: Vec<User> = account_users
        .iter()
        .filter(|u| u.removed_at.is_none())
        .filter(|u| u.id == token.issuer_id || role_of(u.role) == Role::Administrators)
        .cloned()
        .collect();
    out.sort_by_key(|u| u.id);
    out.dedup_by_key(|u| u.id);
    out
}

/// A notice that is due and not yet recorded (what `notify --dry-run` lists).
#[derive(Debug, Clone)]
pub struct PlannedNotice {
    pub token_id: i64,
    pub token_name: String,
    pub kind: NoticeKind,
    pub recipient_id: i64,
    pub recipient_email: String,
    pub email_wanted: bool,
}

/// Every (token, notice, recipient) due at `now`.
pub fn plan(conn: &mut DbConn, now: OffsetDateTime) -> ServiceResult<Vec<PlannedNotice>> {
    let tokens = Notice::expiring_tokens(
        conn,
        to_naive(now),
        to_naive(now + NoticeKind::SevenDays.lead()),
    )?;
    let mut users_of: HashMap<i64, Vec<User>> = HashMap::new();
    let mut planned = vec![];
    for token in tokens {
        let Some(kind) = due_notice(
            from_naive(token.created_at),
            token.expires_at.map(from_naive),
            token.deleted_at.is_some(),
            now,
        ) else {
            continue;
        };
        let users = match users_of.entry(token.account_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(User::list_in_account(conn, token.account_id)?)
            }
        };
        for user in recipients(&token, users) {
            planned.push(PlannedNotice {
                token_id: token.id,
                token_name: token.name.clone(),
                kind,
                recipient_id: user.id,
                recipient_email: user.email.clone(),
                email_wanted: user.token_expiry_email,
            });
        }
    }
    Ok(planned)
}

/// Records the due notices; returns how many were new.
pub fn record(conn: &mut DbConn, now: OffsetDateTime) -> ServiceResult<usize> {
    let mut recorded = 0;
    for p in plan(conn, now)? {
        let new = NewNotice {
            token_id: p.token_id,
            kind: p.kind.code().into(),
            user_id: p.recipient_id,
            created_at: to_naive(now),
            next_attempt_at: to_naive(now),
        };
        if Notice::insert_once(conn, &new)? {
            recorded += 1;
        }
    }
    Ok(recorded)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
}

/// Wait before retry `attempt` (0-based): 1, 2, 4 ... minutes, at most 6 hours.
pub fn backoff(attempt: i32) -> Duration {
    Duration::minutes(1i64 << attempt.clamp(0, 9)).min(Duration::hours(6))
}

/// Where e-mails link to and come from.
pub struct MailContext<'a> {
    pub mailer: &'a Mailer,
    pub from: &'a str,
    pub base_url: &'a str,
}

/// Sends the pending e-mails that are due.
pub fn deliver(
    conn: &mut DbConn,
    mail: &MailContext,
    now: OffsetDateTime,
) -> ServiceResult<Delivery> {
    let mut report = Delivery::default();
    let ids = Notice::ready(conn, to_naive(now), BATCH)?;
    if ids.is_empty() {
        return Ok(report);
    }
    let claim_id = random_id();
    let mut issuers: HashMap<i64, String> = HashMap::new();

    Notice::claim(
        conn,
        &ids,
        &claim_id,
        to_naive(now),
        to_naive(now + CLAIM_TTL),
    )?;
    for (notice, token, recipient) in Notice::claimed(conn, &claim_id)? {
        let status = if token.deleted_at.is_some() || recipient.removed_at.is_some() {
            CANCELLED
        } else if !recipient.token_expiry_email {
            SKIPPED
        } else {
            let kind = NoticeKind::parse(&notice.kind).unwrap_or(NoticeKind::OneDay);
            // A token's notices go to several people: look its issuer up once.
            let issuer_name = match issuers.get(&token.issuer_id) {
                Some(name) => name.clone(),
                None => {
                    let name = User::find(conn, token.issuer_id)?
                        .map(|u| u.name)
                        .unwrap_or_default();
                    issuers.insert(token.issuer_id, name.clone());
                    name
                }
            };
            let sent = expiry_message(
                mail.from,
                &recipient,
                &token,
                &issuer_name,
                kind,
                mail.base_url,
            )
            .and_then(|message| mail.mailer.send(&message));
            match sent {
                Ok(()) => SENT,
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
            SENT => report.sent += 1,
            SKIPPED => report.skipped += 1,
            _ => report.cancelled += 1,
        }
    }
    Ok(report)
}

/// One sweep: record what is due, then deliver what is pending.
pub fn sweep(
    conn: &mut DbConn,
    mail: &MailContext,
    now: OffsetDateTime,
) -> ServiceResult<(usize, Delivery)> {
    let recorded = record(conn, now)?;
    let delivery = deliver(conn, mail, now)?;
    Ok((recorded, delivery))
}

/// How many tokens `actor` can see that are active and expire within 7 days (the badge).
pub fn expiring_soon_count(
    conn: &mut DbConn,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<i64> {
    let visibility = Visibility::of(actor);
    let filter = TokenFilter {
        account_id: visibility.account_id,
        issuer_id: visibility.only_issuer,
        status: Some(crate::domain::token::TokenStatus::Active),
        expires_before: Some(to_naive(now + EXPIRING_SOON)),
        ..Default::default()
    };
    Ok(Token::count(conn, &filter, to_naive(now))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const EXP: OffsetDateTime = datetime!(2026-12-31 23:59:59 UTC);
    const LONG_AGO: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    #[test]
    fn the_seven_day_notice_is_due_exactly_at_t_minus_7d() {
        let opens = EXP - Duration::days(7);
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens - Duration::seconds(1)),
            None
        );
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens),
            Some(NoticeKind::SevenDays)
        );
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens + Duration::days(5)),
            Some(NoticeKind::SevenDays)
        );
    }

    #[test]
    fn the_one_day_notice_is_due_exactly_at_t_minus_1d_and_wins_when_both_are() {
        let opens = EXP - Duration::days(1);
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens - Duration::seconds(1)),
            Some(NoticeKind::SevenDays)
        );
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens),
            Some(NoticeKind::OneDay)
        );
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, EXP - Duration::seconds(1)),
            Some(NoticeKind::OneDay)
        );
    }

    #[test]
    fn a_window_open_at_creation_is_skipped() {
        let created_in_7d_window = EXP - Duration::days(3);
        assert_eq!(
            due_notice(
                created_in_7d_window,
                Some(EXP),
                false,
                EXP - Duration::days(2)
            ),
            None
        );
        assert_eq!(
            due_notice(
                created_in_7d_window,
                Some(EXP),
                false,
                EXP - Duration::days(1)
            ),
            Some(NoticeKind::OneDay)
        );
        let created_in_1d_window = EXP - Duration::hours(12);
        assert_eq!(
            due_notice(
                created_in_1d_window,
                Some(EXP),
                false,
                EXP - Duration::hours(1)
            ),
            None
        );
    }

    #[test]
    fn expired_deleted_and_never_expiring_tokens_get_nothing() {
        assert_eq!(due_notice(LONG_AGO, Some(EXP), false, EXP), None);
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), true, EXP - Duration::hours(1)),
            None
        );
        assert_eq!(due_notice(LONG_AGO, None, false, EXP), None);
    }

    fn user(id: i64, role: Role, removed: bool) -> User {
        User {
            id,
            account_id: 1,
            email: format!("u{id}@x.test"),
            name: format!("u{id}"),
            password_hash: None,
            role: role.id(),
            auth_type: "password".into(),
            created_at: datetime!(2026-01-01 0:00),
            last_login_at: None,
            removed_at: removed.then_some(datetime!(2026-02-01 0:00)),
            token_expiry_email: true,
            phone: None,
            lang: "en".into(),
        }
    }

    fn token(issuer: i64) -> Token {
        Token {
            id: 9,
            account_id: 1,
            issuer_id: issuer,
            name: "t".into(),
            description: None,
            role: 2,
            secret_hash: String::new(),
            created_at: datetime!(2026-01-01 0:00),
            expires_at: None,
            last_used_at: None,
            deleted_at: None,
            deleted_by: None,
            form_id: None,
        }
    }

    #[test]
    fn recipients_are_the_issuer_and_admins_once_each_never_removed_users() {
        let users = vec![
            user(1, Role::Administrators, false),
            user(2, Role::Administrators, true),
            user(3, Role::Engineers, false),
            user(4, Role::Users, false),
            user(5, Role::Administrators, false),
        ];
        let ids = |v: Vec<User>| v.iter().map(|u| u.id).collect::<Vec<_>>();
        assert_eq!(ids(recipients(&token(3), &users)), vec![1, 3, 5]);
        assert_eq!(
            ids(recipients(&token(1), &users)),
            vec![1, 5],
            "an admin issuer is told once"
        );
        let removed_issuer = vec![
            user(1, Role::Administrators, false),
            user(6, Role::Users, true),
        ];
        assert_eq!(ids(recipients(&token(6), &removed_issuer)), vec![1]);
    }

    #[test]
    fn retries_back_off_up_to_six_hours() {
        assert_eq!(backoff(0), Duration::minutes(1));
        assert_eq!(backoff(3), Duration::minutes(8));
        assert_eq!(backoff(30), Duration::hours(6));
    }
}
