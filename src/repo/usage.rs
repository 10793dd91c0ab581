//! Where and how much tokens are used: requests per token per day, and the last addresses.

use diesel::prelude::*;
use diesel::upsert::excluded;
use time::{Date, PrimitiveDateTime};

use crate::db::schema::{token_addresses, token_usage, tokens};
use crate::db::DbConn;

/// Rows per insert statement (SQLite binds at most 32766 values).
const CHUNK: usize = 500;

/// Adds `counts` (token id, requests) to `day`'s totals: an upsert that adds, so every
/// instance's flushes sum up, whatever their order.
pub fn add_counts(conn: &mut DbConn, day: Date, counts: &[(i64, i64)]) -> QueryResult<()> {
    for chunk in counts.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(id, n)| {
                (
                    token_usage::token_id.eq(*id),
                    token_usage::day.eq(day),
                    token_usage::requests.eq(*n),
                )
            })
            .collect();
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(token_usage::table)
                .values(&rows)
                .on_conflict((token_usage::token_id, token_usage::day))
                .do_update()
                .set(
                    token_usage::requests
                        .eq(token_usage::requests + excluded(token_usage::requests)),
                )
                .execute(c)?,
            DbConn::Postgres(c) => diesel::insert_into(token_usage::table)
                .values(&rows)
                .on_conflict((token_usage::token_id, token_usage::day))
                .do_update()
                .set(
                    token_usage::requests
                        .eq(token_usage::requests + excluded(token_usage::requests)),
                )
                .execute(c)?,
        };
    }
    Ok(())
}

/// Adds refusals (token id, [route, rate, quota]) to `day`'s, as `add_counts` adds.
pub fn add_refusals(conn: &mut DbConn, day: Date, refusals: &[(i64, [i64; 3])]) -> QueryResult<()> {
    use token_usage as u;
    for chunk in refusals.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(id, n)| {
                (
                    u::token_id.eq(*id),
                    u::day.eq(day),
                    u::requests.eq(0i64),
                    u::refused_route.eq(n[0]),
                    u::refused_rate.eq(n[1]),
                    u::refused_quota.eq(n[2]),
                )
            })
            .collect();
        let add = (
            u::refused_route.eq(u::refused_route + excluded(u::refused_route)),
            u::refused_rate.eq(u::refused_rate + excluded(u::refused_rate)),
            u::refused_quota.eq(u::refused_quota + excluded(u::refused_quota)),
        );
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(u::table)
                .values(&rows)
                .on_conflict((u::token_id, u::day))
                .do_update()
                .set(add)
                .execute(c)?,
            DbConn::Postgres(c) => diesel::insert_into(u::table)
                .values(&rows)
                .on_conflict((u::token_id, u::day))
                .do_update()
                .set(add)
                .execute(c)?,
        };
    }
    Ok(())
}

/// A token's daily refusals from `from` on: (day, [route, rate, quota]).
pub fn refusal_days(
    conn: &mut DbConn,
    token_id: i64,
    from: Date,
) -> QueryResult<Vec<(Date, [i64; 3])>> {
    use token_usage as u;
    Ok(u::table
        .filter(u::token_id.eq(token_id))
        .filter(u::day.ge(from))
        .filter((u::refused_route + u::refused_rate + u::refused_quota).gt(0i64))
        .select((u::day, u::refused_route, u::refused_rate, u::refused_quota))
        .load::<(Date, i64, i64, i64)>(conn)?
        .into_iter()
        .map(|(d, a, b, c)| (d, [a, b, c]))
        .collect())
}

/// A token's daily totals from `from` on (days without requests have no row).
pub fn days(conn: &mut DbConn, token_id: i64, from: Date) -> QueryResult<Vec<(Date, i64)>> {
    token_usage::table
        .filter(token_usage::token_id.eq(token_id))
        .filter(token_usage::day.ge(from))
        .order(token_usage::day.asc())
        .select((token_usage::day, token_usage::requests))
        .load(conn)
}

/// Forgets the totals of days before `before`.
pub fn prune(conn: &mut DbConn, before: Date) -> QueryResult<usize> {
    diesel::delete(token_usage::table.filter(token_usage::day.lt(before))).execute(conn)
}

/// The addresses already known for any of `ids`.
pub fn known_addresses(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    token_addresses::table
        .filter(token_addresses::token_id.eq_any(ids))
        .select((token_addresses::token_id, token_addresses::address))
        .load(conn)
}

/// Records that each token was used from an address at a time (a later time wins).
pub fn upsert_addresses(
    conn: &mut DbConn,
    rows: &[(i64, String, PrimitiveDateTime)],
) -> QueryResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(id, address, at)| {
                (
                    token_addresses::token_id.eq(*id),
                    token_addresses::address.eq(address.as_str()),
                    token_addresses::last_at.eq(*at),
                )
            })
            .collect();
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(token_addresses::table)
                .values(&values)
                .on_conflict((token_addresses::token_id, token_addresses::address))
                .do_update()
                .set(token_addresses::last_at.eq(excluded(token_addresses::last_at)))
                .execute(c)?,
            DbConn::Postgres(c) => diesel::insert_into(token_addresses::table)
                .values(&values)
                .on_conflict((token_addresses::token_id, token_addresses::address))
                .do_update()
                .set(token_addresses::last_at.eq(excluded(token_addresses::last_at)))
                .execute(c)?,
        };
    }
    Ok(())
}

/// A token's last addresses, most recent first.
pub fn addresses(
    conn: &mut DbConn,
    token_id: i64,
    limit: i64,
) -> QueryResult<Vec<(String, PrimitiveDateTime)>> {
    token_addresses::table
        .filter(token_addresses::token_id.eq(token_id))
        .order(token_addresses::last_at.desc())
        .limit(limit)
        .select((token_addresses::address, token_addresses::last_at))
        .load(conn)
}

/// Keeps only a token's `keep` most recent addresses.
pub fn keep_latest_addresses(conn: &mut DbConn, token_id: i64, keep: i64) -> QueryResult<()> {
    let latest: Vec<String> = addresses(conn, token_id, keep)?
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    diesel::delete(
        token_addresses::table
            .filter(token_addresses::token_id.eq(token_id))
            .filter(token_addresses::address.ne_all(latest)),
    )
    .execute(conn)
    .map(drop)
}

/// The account and name of each of `ids` (for the events a flush records).
pub fn owners(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<(i64, i64, String)>> {
    tokens::table
        .filter(tokens::id.eq_any(ids))
        .select((tokens::id, tokens::account_id, tokens::name))
        .load(conn)
}

/// Sets the last use's address and user agent of many tokens in one statement (PostgreSQL: an
/// `unnest` of three arrays; SQLite: a `VALUES` list per chunk), in the caller's transaction.
pub fn set_last_facts(
    conn: &mut DbConn,
    rows: &[(i64, Option<String>, Option<String>)],
) -> QueryResult<()> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text};
    if rows.is_empty() {
        return Ok(());
    }
    match conn {
        DbConn::Postgres(c) => {
            let ids: Vec<i64> = rows.iter().map(|(id, _, _)| *id).collect();
            let ips: Vec<Option<String>> = rows.iter().map(|(_, ip, _)| ip.clone()).collect();
            let agents: Vec<Option<String>> = rows.iter().map(|(_, _, a)| a.clone()).collect();
            diesel::sql_query(
                "UPDATE tokens AS t SET last_used_ip = u.ip, last_used_user_agent = u.agent \
                 FROM unnest($1, $2, $3) AS u(id, ip, agent) WHERE t.id = u.id",
            )
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Nullable<Text>>, _>(ips)
            .bind::<Array<Nullable<Text>>, _>(agents)
            .execute(c)
            .map(drop)
        }
        DbConn::Sqlite(c) => {
            for chunk in rows.chunks(CHUNK) {
                let values = vec!["(?, ?, ?)"; chunk.len()].join(", ");
                let mut q = diesel::sql_query(format!(
                    "UPDATE tokens SET last_used_ip = u.ip, last_used_user_agent = u.agent \
                     FROM (SELECT column1 AS id, column2 AS ip, column3 AS agent FROM (VALUES {values})) AS u \
                     WHERE tokens.id = u.id"
                ))
                .into_boxed::<diesel::sqlite::Sqlite>();
                for (id, ip, agent) in chunk {
                    q = q
                        .bind::<BigInt, _>(*id)
                        .bind::<Nullable<Text>, _>(ip.clone())
                        .bind::<Nullable<Text>, _>(agent.clone());
                }
                q.execute(c)?;
            }
            Ok(())
        }
    }
}
