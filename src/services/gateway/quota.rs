//! Usage quotas at the gateway (issue 28), on every instance at once with no write per
//! request. Each quota'd token has one counter row (`quota_counters`); an instance *leases* a
//! hundredth of the quota at a time (`UsageLimit::chunk`), counted as used when leased, and
//! spends it from memory. So however many instances share the database, no more than the
//! quota ever passes. A lease is spent for at most `LEASE`; what it didn't spend goes back with
//! the next lease, or with the once-a-second flush once the lease is over (and at shutdown),
//! so `remaining_uses` and the other instances see it again. An instance that dies holding a
//! lease takes at most a hundredth of the quota with it, until the next refill.
//!
//! A spent quota is refused from memory until the refill, rechecked every `RECHECK` (what
//! other instances give back, or a raised quota). While the database can't be reached an
//! instance spends what it has leased and then refuses: a quota is a promise of "never more".
//!
//! The lease that crosses 80 % of a period's quota tells the issuer (a portal notice), once per
//! period: the counter row remembers the period it told.

use std::time::Duration;

use super::lease::{Fast, LeaseCells};

use diesel::Connection;
use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::notice::NoticeKind;
use crate::domain::quota::UsageLimit;
use crate::domain::token::to_naive;
use crate::domain::{AuthType, Role, TokenId};
use crate::error::ServiceResult;
use crate::repo::notices::{NewNotice, Notice};
use crate::repo::token_limits::{QuotaCounter, QuotaLease};
use crate::repo::{Token, User};

/// How long a lease may be spent before what is left of it goes back.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often a spent quota is looked at again.
pub const RECHECK: Duration = Duration::from_secs(2);

/// What a quota's slow path keeps beside the lock-free lease: the period the lease is of, and
/// the quota it was taken under (a changed quota starts afresh).
#[derive(Debug, Default)]
struct QuotaState {
    period: String,
    limit: Option<UsageLimit>,
}

/// Why a request of a quota'd token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// Spent until the refill (`None`: for good).
    Spent(Option<OffsetDateTime>),
    /// Nothing leased and the database can't be reached.
    Unavailable,
}

/// This instance's quota leases, one per quota'd token it has seen (`gateway::lease`).
#[derive(Default)]
pub struct QuotaLeases {
    cells: LeaseCells<QuotaState>,
    leases: std::sync::atomic::AtomicU64,
}

impl QuotaLeases {
    /// Leases taken from the database so far (tests count them: never one per request).
    pub fn leases(&self) -> u64 {
        self.leases.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets a token's lease on this instance without giving it back (its quota changed:
    /// the counter starts afresh).
    pub fn forget(&self, token: i64) {
        self.cells.forget(token);
    }

    /// One request of `token` under `limit`.
    pub async fn take(
        &self,
        rt: &crate::services::runtime::Runtime,
        token: TokenId,
        limit: UsageLimit,
    ) -> Result<(), QuotaRefusal> {
        let id = token.get();
        let unix = rt.clock.unix_now();
        match self.cells.fast(id, self.cells.now_ms(), unix) {
            Fast::Took => return Ok(()),
            Fast::Blocked(_) => return Err(QuotaRefusal::Spent(limit.next_refill(rt.clock.now()))),
            Fast::Slow => {}
        }
        let cell = self.cells.cell(id);
        let mut state = cell.state.lock().await;
        let at = rt.clock.now();
        let now = self.cells.now_ms();
        if state.limit == Some(limit) {
            // Another request may have leased while this one waited.
            match cell.fast(now, at.unix_timestamp()) {
                Fast::Took => return Ok(()),
                Fast::Blocked(_) => return Err(QuotaRefusal::Spent(limit.next_refill(at))),
                Fast::Slow => {}
            }
        } else {
            cell.take_left();
            *state = QuotaState {
                period: String::new(),
                limit: Some(limit),
            };
        }
        let period = limit.period(at);
        let void_at = limit
            .next_refill(at)
            .map_or(i64::MAX, OffsetDateTime::unix_timestamp);
        let back = cell.take_left();
        let back_period = std::mem::take(&mut state.period);
        let lease_period = period.clone();
        let kept_period = back_period.clone();
        let taken = rt
            .db
            .run(move |conn| {
                lease_and_tell(
                    conn,
                    id,
                    limit,
                    &lease_period,
                    back,
                    &back_period,
                    limit.chunk(),
                    at,
                )
            })
            .await;
        self.leases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let granted = match taken {
            Ok(l) => l.granted,
            Err(e) => {
                // What was to go back stays this instance's to spend.
                state.period = kept_period;
                cell.grant(back, now + LEASE.as_millis() as u64, void_at);
                tracing::warn!(error = %e, "quota lease unavailable: refusing what isn't leased");
                return Err(QuotaRefusal::Unavailable);
            }
        };
        state.period = period;
        if granted == 0 {
            cell.block(now + RECHECK.as_millis() as u64, void_at);
            return Err(QuotaRefusal::Spent(limit.next_refill(at)));
        }
        cell.grant(granted - 1, now + LEASE.as_millis() as u64, void_at);
        Ok(())
    }

    /// Gives back what leases over by now (all of them with `all`, at shutdown) didn't spend,
    /// one short write per lease; returns how many went back.
    pub async fn give_back(
        &self,
        rt: &crate::services::runtime::Runtime,
        all: bool,
    ) -> ServiceResult<u64> {
        let now = self.cells.now_ms();
        let mut returned = 0;
        for (id, cell) in self.cells.all() {
            if !all && !cell.over(now) {
                continue;
            }
            let state = cell.state.lock().await;
            let Some(limit) = state.limit else { continue };
            let back = cell.take_left();
            if back == 0 {
                continue;
            }
            let at = rt.clock.now();
            let current = limit.period(at);
            let back_period = state.period.clone();
            rt.db
                .run_bookkeeping(move |conn| {
                    lease_and_tell(conn, id, limit, &current, back, &back_period, 0, at)
                })
                .await?;
            returned += back;
        }
        Ok(returned)
    }
}

/// A lease (`QuotaCounter::lease`) and, when it crosses 80 % for the first time this period,
/// the portal notice to the token's issuer (a service account's: the Administrators), in one
/// transaction.
#[allow(clippy::too_many_arguments)]
fn lease_and_tell(
    conn: &mut DbConn,
    id: i64,
    limit: UsageLimit,
    period: &str,
    back: u64,
    back_period: &str,
    want: u64,
    at: OffsetDateTime,
) -> ServiceResult<QuotaLease> {
    conn.write_transaction(|conn| {
        let lease = QuotaCounter::lease(conn, id, limit, period, back, back_period, want)?;
        if lease.crossed_notice {
            tell(conn, id, limit, lease.used, at)?;
        }
        Ok(lease)
    })
}

fn tell(
    conn: &mut DbConn,
    id: i64,
    limit: UsageLimit,
    used: u64,
    at: OffsetDateTime,
) -> ServiceResult<()> {
    let Some(token) = Token::find(conn, id)? else {
        return Ok(());
    };
    let issuer = User::find(conn, token.issuer_id)?;
    let recipients: Vec<i64> = match issuer {
        Some(u) if u.auth_type == AuthType::Service => {
            User::list_in_account(conn, token.account_id)?
                .into_iter()
                .filter(|u| u.role == Role::Administrators && u.removed_at.is_none())
                .map(|u| u.id)
                .collect()
        }
        Some(u) if u.removed_at.is_none() => vec![u.id],
        _ => vec![],
    };
    let detail = format!(
        "{} of {} used{}",
        used.min(limit.requests),
        limit,
        limit
            .next_refill(at)
            .map(|r| format!("; refilled on {}", r.date()))
            .unwrap_or_default()
    );
    let notices: Vec<NewNotice> = recipients
        .into_iter()
        .map(|user_id| NewNotice {
            token_id: id,
            kind: NoticeKind::Quota,
            user_id,
            created_at: to_naive(at),
            next_attempt_at: to_naive(at),
            detail: Some(detail.clone()),
        })
        .collect();
    // One quota notice per token and person: a new period's replaces the last one.
    conn.transaction(|conn| {
        Notice::delete_of_token(conn, id, NoticeKind::Quota)?;
        Notice::insert_many(conn, &notices)
    })?;
    Ok(())
}
