//! Where and how much a token is used: per-day request counts (counted in memory by the token
//! cache, added to the database by the batched flush, so several instances sum up), the last
//! use's client address and user agent, and the last five addresses — none of it written on
//! the request path.

use std::collections::HashMap;

use diesel::Connection;
use time::{Date, Duration, OffsetDateTime};

use super::token_cache::UseFacts;
use super::{Actor, Services};
use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::error::ServiceResult;
use crate::repo::events::{AccountEvent, NewEvent};
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
        let with_facts: Vec<(i64, OffsetDateTime, &UseFacts)> = uses
            .iter()
            .filter_map(|(id, at)| facts.get(id).map(|f| (*id, *at, f)))
            .collect();
        // Everything below in a few statements, however many tokens: a cold start sees
        // thousands of first uses in one flush.
        usage::set_last_facts(
            conn,
            &with_facts
                .iter()
                .map(|(id, _, f)| (*id, f.ip.clone(), f.agent.clone()))
                .collect::<Vec<_>>(),
        )?;
        let seen: Vec<(i64, String, time::PrimitiveDateTime)> = with_facts
            .iter()
            .filter_map(|(id, at, f)| f.ip.clone().map(|ip| (*id, ip, to_naive(*at))))
            .collect();
        if seen.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = seen.iter().map(|(id, _, _)| *id).collect();
        let mut known: HashMap<i64, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(1000) {
            for (id, address) in usage::known_addresses(conn, chunk)? {
                known.entry(id).or_default().push(address);
            }
        }
        usage::upsert_addresses(conn, &seen)?;
        let new: Vec<&(i64, String, time::PrimitiveDateTime)> = seen
            .iter()
            .filter(|(id, ip, _)| !known.get(id).is_some_and(|k| k.contains(ip)))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let new_ids: Vec<i64> = new.iter().map(|(id, _, _)| *id).collect();
        let mut owners: HashMap<i64, (i64, String)> = HashMap::new();
        for chunk in new_ids.chunks(1000) {
            for (id, account, name) in usage::owners(conn, chunk)? {
                owners.insert(id, (account, name));
            }
        }
        let summaries: Vec<(i64, i64, String)> = new
            .iter()
            .filter_map(|(id, ip, _)| {
                let (account, name) = owners.get(id)?;
                let agent = facts
                    .get(id)
                    .and_then(|f| f.agent.as_deref())
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default();
                Some((
                    *account,
                    *id,
                    format!("Token \"{name}\" was used from {ip} for the first time{agent}"),
                ))
            })
            .collect();
        let events: Vec<NewEvent> = summaries
            .iter()
            .map(|(account, id, summary)| NewEvent {
                account_id: *account,
                actor_id: None,
                at: to_naive(now),
                kind: "token.new_address",
                summary,
                token_id: Some(*id),
                client_address: None,
            })
            .collect();
        AccountEvent::insert_many(conn, &events)?;
        // Only a token that already had five addresses can now have more than five.
        for (id, _, _) in &new {
            if known.get(id).map_or(0, Vec::len) as i64 >= ADDRESSES {
                usage::keep_latest_addresses(conn, *id, ADDRESSES)?;
            }
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
    of_visible_token(conn, id, now)
}

/// `of_token` for a token whose visibility the caller has checked.
pub fn of_visible_token(conn: &mut DbConn, id: i64, now: OffsetDateTime) -> ServiceResult<Usage> {
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
