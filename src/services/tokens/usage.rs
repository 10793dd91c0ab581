//! Where and how much a token is used: per-day request counts (counted in memory by the token
//! cache, added to the database by the batched flush, so several instances sum up), the last
//! use's client address and user agent, and the last five addresses — none of it written on
//! the request path.

use time::{Date, Duration, OffsetDateTime};

use super::view::Usage;
use crate::db::DbConn;
use crate::domain::TokenId;
use crate::error::ServiceResult;
use crate::repo::usage;
use crate::services::vocabulary::Actor;

/// Days of counts kept and shown.
pub const DAYS: i64 = 30;
use crate::services::gateway::usage_flush::ADDRESSES;

/// The last `DAYS` days up to `today`, oldest first, zero days included.
pub fn fill_days(rows: &[(Date, i64)], today: Date) -> Vec<(Date, i64)> {
    (0..DAYS)
        .rev()
        .map(|back| {
            let day = today - Duration::days(back);
            let n = rows.iter().find(|(d, _)| *d == day).map_or(0, |(_, n)| *n);
            (day, n)
        })
        .collect()
}

pub fn of_token(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    now: OffsetDateTime,
) -> ServiceResult<Usage> {
    super::read::get(conn, actor, id, now)?;
    of_visible_token(conn, id.get(), now)
}

/// `of_token` for a token whose visibility the caller has checked.
pub fn of_visible_token(conn: &mut DbConn, id: i64, now: OffsetDateTime) -> ServiceResult<Usage> {
    let today = now.date();
    let from = today - Duration::days(DAYS - 1);
    let rows = usage::days(conn, id, from)?;
    let refusals = usage::refusal_days(conn, id, from)?;
    let addresses = usage::addresses(conn, id, ADDRESSES)?
        .into_iter()
        .map(|(a, at)| (a, crate::domain::token::from_naive(at)))
        .collect();
    let days = fill_days(&rows, today);
    let refused = days
        .iter()
        .map(|(d, _)| {
            refusals
                .iter()
                .find(|(day, _)| day == d)
                .map_or([0; 3], |(_, n)| *n)
        })
        .collect();
    Ok(Usage {
        days,
        refused,
        addresses,
    })
}

/// Forgets the counts older than the days shown (a sweep's step).
pub fn prune(conn: &mut DbConn, now: OffsetDateTime) -> ServiceResult<usize> {
    Ok(usage::prune(conn, now.date() - Duration::days(DAYS))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn thirty_days_oldest_first_with_the_empty_ones() {
        let today = date!(2026 - 11 - 28);
        let days = fill_days(
            &[
                (date!(2026 - 11 - 27), 5),
                (today, 2),
                (date!(2026 - 10 - 01), 9),
            ],
            today,
        );
        assert_eq!(days.len(), 30);
        assert_eq!(days[0], (date!(2026 - 10 - 30), 0));
        assert_eq!(days[28], (date!(2026 - 11 - 27), 5));
        assert_eq!(days[29], (today, 2));
        assert_eq!(
            days.iter().map(|(_, n)| n).sum::<i64>(),
            7,
            "older rows aren't shown"
        );
    }
}
