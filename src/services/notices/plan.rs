//! Expiry notices: which are due and to whom (recorded once each by a sweep), and the
//! in-app notifications they become. Their e-mails go out through `delivery`.

use std::collections::HashMap;

use diesel::Connection;

use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::notice::due_notice;
use crate::domain::token::{from_naive, to_naive, TokenStatus};
use crate::domain::{NoticeKind, Role};
use crate::error::ServiceResult;
use crate::repo::notices::{NewNotice, Notice};
use crate::repo::{Token, TokenFilter, User};
use crate::services::vocabulary::{Actor, Visibility};

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
    pub id: crate::domain::NoticeId,
    pub unread: bool,
    pub kind: NoticeKind,
    pub token_id: crate::domain::TokenId,
    pub token_name: String,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    /// A leak alert's "where it was found".
    pub detail: Option<String>,
    pub token_deleted: bool,
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
