//! Where and how much a token is used: per-day request counts (counted in memory by the token
//! cache, added to the database by the batched flush, so several instances sum up), the last
//! use's client address and user agent, and the last five addresses — none of it written on
//! the request path.

use std::collections::HashMap;

use diesel::prelude::*;
use time::{Date, Duration, OffsetDateTime};

use super::token_cache::UseFacts;
use super::{Actor, Services};
use crate::db::schema::tokens;
use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::error::ServiceResult;
use crate::repo::usage;

/// Days of counts kept and shown.
pub const DAYS: i64 = 30;
/// Distinct addresses kept per token.
pub const ADDRESSES: i64 = 5;

/// Writes one flush: the counts (added to today's), and for the uses that carry facts, the
/// last address and user agent, the address list, and a "first use from" event for an address
/// the token hadn't been used from. One transaction.
pub fn record(
    conn: &mut DbConn,
    uses: &[(i64, OffsetDateTime)],
    facts: &HashMap<i64, UseFacts>,
    counts: &[(i64, i64)],
    now: OffsetDateTime,
) -> ServiceResult<()> {
    conn.transaction(|conn| {
        usage::add_counts(conn, now.date(), counts)?;
        let mut seen = vec![];
        for (id, at) in uses {
            let Some(f) = facts.get(id) else { continue };
            diesel::update(tokens::table.find(*id))
                .set((
                    tokens::last_used_ip.eq(f.ip.as_deref()),
                    tokens::last_used_user_agent.eq(f.agent.as_deref()),
                ))
                .execute(conn)?;
            if let Some(ip) = &f.ip {
                seen.push((*id, ip.clone(), to_naive(*at)));
            }
        }
        if seen.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = seen.iter().map(|(id, _, _)| *id).collect();
        let known = usage::known_addresses(conn, &ids)?;
        usage::upsert_addresses(conn, &seen)?;
        let new: Vec<&(i64, String, time::PrimitiveDateTime)> = seen
            .iter()
            .filter(|(id, ip, _)| !known.iter().any(|(k, a)| k == id && a == ip))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let owners = usage::owners(conn, &ids)?;
        for (id, ip, _) in new {
            let Some((_, account, name)) = owners.iter().find(|(o, _, _)| o == id) else {
                continue;
            };
            let agent = facts
                .get(id)
                .and_then(|f| f.agent.as_deref())
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
            super::audit::record_system(
                conn,
                *account,
                now,
                "token.new_address",
                &format!("Token \"{name}\" was used from {ip} for the first time{agent}"),
                Some(*id),
            )?;
            usage::keep_latest_addresses(conn, *id, ADDRESSES)?;
        }
        Ok(())
    })
}

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

/// A token's usage as its page and the API show it, if `actor` may see the token.
pub struct Usage {
    pub days: Vec<(Date, i64)>,
    /// The last addresses, most recent first, with their last time.
    pub addresses: Vec<(String, OffsetDateTime)>,
}

pub fn of_token(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    now: OffsetDateTime,
) -> ServiceResult<Usage> {
    super::tokens::get(conn, actor, id, now)?;
    let today = now.date();
    let rows = usage::days(conn, id, today - Duration::days(DAYS - 1))?;
    let addresses = usage::addresses(conn, id, ADDRESSES)?
        .into_iter()
        .map(|(a, at)| (a, crate::domain::token::from_naive(at)))
        .collect();
    Ok(Usage {
        days: fill_days(&rows, today),
        addresses,
    })
}

/// Forgets the counts older than the days shown (a sweep's step).
pub fn prune(conn: &mut DbConn, now: OffsetDateTime) -> ServiceResult<usize> {
    Ok(usage::prune(conn, now.date() - Duration::days(DAYS))?)
}

impl Services {
    /// A token's usage (see `of_token`).
    pub async fn token_usage(&self, actor: Actor, id: i64) -> ServiceResult<Usage> {
        let now = self.clock.now();
        self.db
            .run(move |conn| of_token(conn, &actor, id, now))
            .await
    }
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
