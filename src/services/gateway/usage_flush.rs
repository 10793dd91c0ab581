//! What the gateway's once-a-second flush writes: per-day request counts (added to today's,
//! so several instances sum up), the last use's client address and user agent, the last five
//! addresses, and a "first use from" event for a new address. Never on the request path.

use crate::domain::EventKind;
use std::collections::HashMap;

use diesel::Connection;
use time::OffsetDateTime;

use super::token_cache::UseFacts;
use crate::db::DbConn;
use crate::domain::token::to_naive;
use crate::error::ServiceResult;
use crate::repo::usage;
use crate::services::audit::{self, By, Entry};

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
    refusals: &[(i64, [i64; 3])],
    now: OffsetDateTime,
) -> ServiceResult<()> {
    conn.transaction(|conn| {
        usage::add_counts(conn, now.date(), counts)?;
        usage::add_refusals(conn, now.date(), refusals)?;
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
        let events: Vec<Entry> = summaries
            .iter()
            .map(|(account, id, summary)| Entry {
                account_id: *account,
                by: By::System,
                at: now,
                kind: EventKind::TokenNewAddress,
                summary,
                token_id: Some(*id),
                reason: None,
            })
            .collect();
        audit::write(conn, &events)?;
        // Only a token that already had five addresses can now have more than five.
        for (id, _, _) in &new {
            if known.get(id).map_or(0, Vec::len) as i64 >= ADDRESSES {
                usage::keep_latest_addresses(conn, *id, ADDRESSES)?;
            }
        }
        Ok(())
    })
}
