//! Expiry notices: which are due and to whom (recorded once each by a sweep), and the
//! in-app notifications they become. Their e-mails go out through `delivery`.

use std::collections::HashMap;

use diesel::Connection;

use time::OffsetDateTime;

use super::tokens::Visibility;
use super::{Actor, Services};
use crate::db::DbConn;
use crate::domain::notice::due_notice;
use crate::domain::token::{from_naive, to_naive, TokenStatus};
use crate::domain::{NoticeKind, Role};
use crate::error::ServiceResult;
use crate::repo::notices::{NewNotice, Notice};
use crate::repo::{Token, TokenFilter, User};

/// Who is told about a token: its issuer and every Administrator of the account, once each,
/// removed users never.
pub fn recipients(token: &Token, account_users: &[User]) -> Vec<User> {
    let mut out: Vec<User> = account_users
        .iter()
        .filter(|u| u.removed_at.is_none())
        .filter(|u| u.id == token.issuer_id || u.role == Role::Administrators)
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
    plan_in(conn, now, None)
}

/// Like `plan`, for one account only (`Some`), or all.
pub fn plan_in(
    conn: &mut DbConn,
    now: OffsetDateTime,
    account_id: Option<i64>,
) -> ServiceResult<Vec<PlannedNotice>> {
    let tokens = Notice::expiring_tokens(
        conn,
        to_naive(now),
        to_naive(now + NoticeKind::SevenDays.lead()),
        account_id,
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
    let new: Vec<NewNotice> = plan(conn, now)?
        .into_iter()
        .map(|p| NewNotice {
            token_id: p.token_id,
            kind: p.kind,
            user_id: p.recipient_id,
            created_at: to_naive(now),
            next_attempt_at: to_naive(now),
            detail: None,
        })
        .collect();
    // Many rows per statement, in one transaction: one commit however many are due.
    Ok(conn.transaction(|conn| Notice::insert_many(conn, &new))?)
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
        status: Some(TokenStatus::Active),
        expiring_soon: true,
        ..Default::default()
    };
    Ok(Token::count(conn, &filter, to_naive(now))?)
}

/// An in-app notification, as its recipient sees it.
#[derive(Debug, Clone)]
pub struct InAppNotice {
    pub id: i64,
    pub unread: bool,
    pub kind: NoticeKind,
    pub token_id: i64,
    pub token_name: String,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    /// A leak alert's "where it was found".
    pub detail: Option<String>,
    pub token_deleted: bool,
}

impl Services {
    /// A user's in-app notifications, newest first (the latest 200).
    pub async fn notifications(&self, user_id: i64) -> ServiceResult<Vec<InAppNotice>> {
        let rows = self
            .db
            .run(move |conn| Ok(Notice::for_user(conn, user_id, 200)?))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(n, t)| InAppNotice {
                id: n.id,
                unread: n.read_at.is_none(),
                kind: n.kind,
                token_id: t.id,
                token_name: t.name,
                expires_at: t.expires_at.map(from_naive),
                created_at: from_naive(n.created_at),
                detail: n.detail,
                token_deleted: t.deleted_at.is_some(),
            })
            .collect())
    }

    /// Marks one (`Some(id)`) or all of a user's notifications read.
    pub async fn mark_read(&self, user_id: i64, id: Option<i64>) -> ServiceResult<()> {
        let now = to_naive(self.clock.now());
        self.db
            .run(move |conn| Ok(Notice::mark_read(conn, user_id, id, now).map(drop)?))
            .await
    }

    /// Turns a user's expiry e-mails on or off (Profile → Notifications).
    #[tracing::instrument(skip(self))]
    pub async fn set_expiry_email(&self, user_id: i64, on: bool) -> ServiceResult<()> {
        self.db
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
        self.db
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
        let now = to_naive(self.clock.now());
        self.db
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
                        crate::repo::events::AccountEvent::record(
                            conn,
                            user.account_id,
                            Some(user_id),
                            now,
                            "user.expiry_emails_off",
                            &format!("{} turned expiry e-mails off {how}", user.email),
                        )?;
                    }
                    Ok(Some(user.email))
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn user(id: i64, role: Role, removed: bool) -> User {
        let mut u = User::fixture(id, 1, role);
        u.removed_at = removed.then_some(datetime!(2026-02-01 0:00));
        u
    }

    fn token(issuer: i64) -> Token {
        let mut t = Token::fixture(1, issuer);
        t.id = 9;
        t
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
}
