use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{notices, tokens, users};
use crate::db::DbConn;

use super::{Token, User};
use crate::domain::token::TokenStatus;
use crate::domain::{EmailStatus, NoticeKind};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = notices)]
pub struct Notice {
    pub id: i64,
    pub token_id: i64,
    pub kind: NoticeKind,
    pub user_id: i64,
    pub created_at: PrimitiveDateTime,
    pub read_at: Option<PrimitiveDateTime>,
    pub email_status: EmailStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: PrimitiveDateTime,
    pub claim_id: Option<String>,
    pub claimed_until: Option<PrimitiveDateTime>,
    pub sent_at: Option<PrimitiveDateTime>,
    /// The digest this notice was put in before sending; kept for retries.
    pub digest_key: Option<String>,
    /// A leak alert's "where it was found" (None for expiry notices).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = notices)]
pub struct NewNotice {
    pub token_id: i64,
    pub kind: NoticeKind,
    pub user_id: i64,
    pub created_at: PrimitiveDateTime,
    pub next_attempt_at: PrimitiveDateTime,
    pub detail: Option<String>,
}

type Db = <DbConn as diesel::Connection>::Backend;

/// Pending rows no live sweep holds: never claimed, or the claim ran out before `now`.
fn claimable(
    now: PrimitiveDateTime,
) -> Box<
    dyn BoxableExpression<
        notices::table,
        Db,
        SqlType = diesel::sql_types::Nullable<diesel::sql_types::Bool>,
    >,
> {
    Box::new(
        notices::email_status
            .eq(EmailStatus::Pending)
            .nullable()
            .and(
                notices::claimed_until
                    .is_null()
                    .nullable()
                    .or(notices::claimed_until.lt(now)),
            ),
    )
}

impl Notice {
    /// Active tokens that expire in `(now, horizon]`: the only ones a notice can be due for.
    /// Served by the index on `expires_at`, so the cost follows the tokens due, not all tokens.
    pub fn expiring_tokens(
        conn: &mut DbConn,
        now: PrimitiveDateTime,
        horizon: PrimitiveDateTime,
        account_id: Option<i64>,
    ) -> QueryResult<Vec<Token>> {
        let mut q = tokens::table.into_boxed();
        if let Some(account_id) = account_id {
            q = q.filter(tokens::account_id.eq(account_id));
        }
        q.filter(super::tokens::status_is(TokenStatus::Active, now))
            // Redundant with the status, but a range the planner can walk the index with.
            .filter(tokens::expires_at.gt(now))
            .filter(tokens::expires_at.le(horizon))
            .order(tokens::expires_at.asc())
            .select(Token::as_select())
            .load(conn)
    }

    /// How many e-mails wait to be sent, and when the oldest was recorded (the
    /// `notices_pending` index bounds it by what is pending, not by history).
    pub fn pending_summary(conn: &mut DbConn) -> QueryResult<(i64, Option<PrimitiveDateTime>)> {
        use diesel::dsl::{count_star, min};
        notices::table
            .filter(notices::email_status.eq(EmailStatus::Pending))
            .select((count_star(), min(notices::created_at)))
            .first(conn)
    }

    /// Gives back what a sweep claimed and didn't get to (it was asked to stop), so the next
    /// sweep, here or on another instance, takes it at once.
    pub fn unclaim(conn: &mut DbConn, claim_id: &str) -> QueryResult<usize> {
        diesel::update(
            notices::table
                .filter(notices::claim_id.eq(claim_id))
                .filter(notices::email_status.eq(EmailStatus::Pending)),
        )
        .set((
            notices::claim_id.eq(None::<String>),
            notices::claimed_until.eq(None::<PrimitiveDateTime>),
        ))
        .execute(conn)
    }

    /// Recipients with e-mails ready to go (pending, due, not claimed by a live sweep), at
    /// most `limit`, in id order.
    pub fn ready_recipients(
        conn: &mut DbConn,
        now: PrimitiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<i64>> {
        notices::table
            .filter(notices::next_attempt_at.le(now))
            .filter(claimable(now))
            .select(notices::user_id)
            .distinct()
            .order(notices::user_id.asc())
            .limit(limit)
            .load(conn)
    }

    /// Claims every ready e-mail of `user_ids` for one sweep (so each person's go in one
    /// digest), with a conditional update: rows another sweep claimed meanwhile don't match.
    pub fn claim_for(
        conn: &mut DbConn,
        user_ids: &[i64],
        claim_id: &str,
        now: PrimitiveDateTime,
        until: PrimitiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(
            notices::table
                .filter(notices::user_id.eq_any(user_ids))
                .filter(notices::next_attempt_at.le(now))
                .filter(claimable(now)),
        )
        .set((
            notices::claim_id.eq(claim_id),
            notices::claimed_until.eq(until),
        ))
        .execute(conn)
    }

    /// Forgets a token's notices of one kind (a quota's new period replaces the last).
    pub fn delete_of_token(
        conn: &mut DbConn,
        token_id: i64,
        kind: NoticeKind,
    ) -> QueryResult<usize> {
        diesel::delete(
            notices::table
                .filter(notices::token_id.eq(token_id))
                .filter(notices::kind.eq(kind)),
        )
        .execute(conn)
    }

    /// Records notices unless the same (token, kind, recipient) exists, many rows per
    /// statement; returns how many were new.
    pub fn insert_many(conn: &mut DbConn, new: &[NewNotice]) -> QueryResult<usize> {
        let mut inserted = 0;
        for chunk in new.chunks(500) {
            inserted += match conn {
                DbConn::Sqlite(c) => diesel::insert_or_ignore_into(notices::table)
                    .values(chunk)
                    .execute(c)?,
                DbConn::Postgres(c) => diesel::insert_into(notices::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?,
            };
        }
        Ok(inserted)
    }

    /// Extends a claim to the other notices of the digests it touched, so a digest is always
    /// sent whole (a batch limit may have cut one in two).
    pub fn claim_digest_siblings(
        conn: &mut DbConn,
        claim_id: &str,
        now: PrimitiveDateTime,
        until: PrimitiveDateTime,
    ) -> QueryResult<usize> {
        let keys: Vec<String> = notices::table
            .filter(notices::claim_id.eq(claim_id))
            .filter(notices::digest_key.is_not_null())
            .select(notices::digest_key.assume_not_null())
            .distinct()
            .load(conn)?;
        if keys.is_empty() {
            return Ok(0);
        }
        diesel::update(
            notices::table
                .filter(notices::digest_key.eq_any(&keys))
                .filter(claimable(now)),
        )
        .set((
            notices::claim_id.eq(claim_id),
            notices::claimed_until.eq(until),
        ))
        .execute(conn)
    }

    /// Puts claimed notices into the digest `key` (before it is sent).
    pub fn set_digest(
        conn: &mut DbConn,
        ids: &[i64],
        claim_id: &str,
        key: &str,
    ) -> QueryResult<usize> {
        diesel::update(
            notices::table
                .filter(notices::id.eq_any(ids))
                .filter(notices::claim_id.eq(claim_id)),
        )
        .set(notices::digest_key.eq(key))
        .execute(conn)
    }

    /// Takes the one sweep lease until `until` unless a live sweep holds it; `true` if taken.
    pub fn take_sweep_lease(
        conn: &mut DbConn,
        holder: &str,
        now: PrimitiveDateTime,
        until: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        use crate::db::schema::sweep_lease;
        diesel::update(
            sweep_lease::table
                .filter(sweep_lease::id.eq(1))
                .filter(sweep_lease::until.is_null().or(sweep_lease::until.lt(now))),
        )
        .set((sweep_lease::holder.eq(holder), sweep_lease::until.eq(until)))
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn release_sweep_lease(conn: &mut DbConn, holder: &str) -> QueryResult<()> {
        use crate::db::schema::sweep_lease;
        diesel::update(sweep_lease::table.filter(sweep_lease::holder.eq(holder)))
            .set((
                sweep_lease::holder.eq(None::<String>),
                sweep_lease::until.eq(None::<PrimitiveDateTime>),
            ))
            .execute(conn)
            .map(drop)
    }

    /// The rows this sweep claimed, with their token and recipient.
    pub fn claimed(conn: &mut DbConn, claim_id: &str) -> QueryResult<Vec<(Notice, Token, User)>> {
        notices::table
            .inner_join(tokens::table)
            .inner_join(users::table)
            .filter(notices::claim_id.eq(claim_id))
            .filter(notices::email_status.eq(EmailStatus::Pending))
            .order(notices::id.asc())
            .select((Notice::as_select(), Token::as_select(), User::as_select()))
            .load(conn)
    }

    /// Ends a claimed row: `sent`, `skipped` or `cancelled`. Only the claim holder may.
    pub fn finish(
        conn: &mut DbConn,
        id: i64,
        claim_id: &str,
        status: EmailStatus,
        now: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        diesel::update(
            notices::table
                .find(id)
                .filter(notices::claim_id.eq(claim_id)),
        )
        .set((
            notices::email_status.eq(status),
            notices::sent_at.eq((status == EmailStatus::Sent).then_some(now)),
            notices::claimed_until.eq(None::<PrimitiveDateTime>),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// A failed attempt: stays pending, retried at `next_attempt_at`.
    pub fn failed(
        conn: &mut DbConn,
        id: i64,
        claim_id: &str,
        error: &str,
        next_attempt_at: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        diesel::update(
            notices::table
                .find(id)
                .filter(notices::claim_id.eq(claim_id)),
        )
        .set((
            notices::attempts.eq(notices::attempts + 1),
            notices::last_error.eq(error),
            notices::next_attempt_at.eq(next_attempt_at),
            notices::claimed_until.eq(None::<PrimitiveDateTime>),
            notices::claim_id.eq(None::<String>),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// A deleted token's pending e-mails are not sent.
    pub fn cancel_for_token(conn: &mut DbConn, token_id: i64) -> QueryResult<usize> {
        diesel::update(
            notices::table
                .filter(notices::token_id.eq(token_id))
                .filter(notices::email_status.eq(EmailStatus::Pending)),
        )
        .set(notices::email_status.eq(EmailStatus::Cancelled))
        .execute(conn)
    }

    /// A user's notices whose e-mail hasn't gone out yet, with their token.
    pub fn pending_for(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<(Notice, Token)>> {
        notices::table
            .inner_join(tokens::table)
            .filter(notices::user_id.eq(user_id))
            .filter(notices::email_status.eq(EmailStatus::Pending))
            .filter(tokens::deleted_at.is_null())
            .order(notices::id.asc())
            .select((Notice::as_select(), Token::as_select()))
            .load(conn)
    }

    /// Whether the (token, kind, recipient) notice was recorded.
    pub fn exists(
        conn: &mut DbConn,
        token_id: i64,
        kind: NoticeKind,
        user_id: i64,
    ) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            notices::table
                .filter(notices::token_id.eq(token_id))
                .filter(notices::kind.eq(kind))
                .filter(notices::user_id.eq(user_id)),
        ))
        .get_result(conn)
    }

    /// A user's in-app notifications, newest first, with their token.
    pub fn for_user(
        conn: &mut DbConn,
        user_id: i64,
        limit: i64,
    ) -> QueryResult<Vec<(Notice, Token)>> {
        notices::table
            .inner_join(tokens::table)
            .filter(notices::user_id.eq(user_id))
            .order(notices::id.desc())
            .limit(limit)
            .select((Notice::as_select(), Token::as_select()))
            .load(conn)
    }

    pub fn unread_count(conn: &mut DbConn, user_id: i64) -> QueryResult<i64> {
        notices::table
            .filter(notices::user_id.eq(user_id))
            .filter(notices::read_at.is_null())
            .count()
            .get_result(conn)
    }

    /// Marks one (`Some(id)`) or all of a user's notifications read.
    pub fn mark_read(
        conn: &mut DbConn,
        user_id: i64,
        id: Option<i64>,
        now: PrimitiveDateTime,
    ) -> QueryResult<usize> {
        let mut q = diesel::update(notices::table)
            .filter(notices::user_id.eq(user_id))
            .filter(notices::read_at.is_null())
            .into_boxed();
        if let Some(id) = id {
            q = q.filter(notices::id.eq(id));
        }
        q.set(notices::read_at.eq(now)).execute(conn)
    }

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<Notice>> {
        notices::table
            .order(notices::id.asc())
            .select(Notice::as_select())
            .load(conn)
    }
}
