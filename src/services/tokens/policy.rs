//! The account's token policy: a maximum lifetime and "expiry required", read by anyone of
//! the account, set by its Administrators; create and rotate obey it.

use crate::domain::EventKind;
use diesel::Connection;
use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::policy::TokenPolicy;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::Account;
use crate::services::audit;
use crate::services::vocabulary::Actor;

/// The account's token policy.
pub fn policy(conn: &mut DbConn, account_id: i64) -> ServiceResult<TokenPolicy> {
    Ok(Account::find(conn, account_id)?
        .ok_or(ServiceError::NotFound)?
        .token_policy())
}

/// Sets the account's token policy (Administrators only), recorded when it changes.
pub fn set_policy(
    conn: &mut DbConn,
    actor: &Actor,
    wanted: TokenPolicy,
    now: OffsetDateTime,
) -> ServiceResult<TokenPolicy> {
    actor.require_admin()?;
    conn.transaction(|conn| {
        if !Account::lock(conn, actor.account_id.get())? {
            return Err(ServiceError::NotFound);
        }
        let before = policy(conn, actor.account_id.get())?;
        if before != wanted {
            Account::set_token_policy(conn, actor.account_id.get(), &wanted)?;
            let lifetime = wanted
                .max_lifetime_days
                .map_or("no maximum lifetime".to_owned(), |d| {
                    format!("a maximum lifetime of {d} days")
                });
            let required = if wanted.expiry_required {
                "an expiry date required"
            } else {
                "no expiry date required"
            };
            let idle = wanted
                .max_idle_days
                .map_or("idle tokens kept".to_owned(), |d| {
                    format!("tokens unused for {d} days revoked")
                });
            let mut limits = String::new();
            if wanted.routes_required {
                limits.push_str(", allowed routes required");
            }
            if let Some(r) = wanted.max_rate {
                limits.push_str(&format!(", rate limits of at most {r}"));
            }
            audit::record(
                conn,
                actor,
                now,
                EventKind::AccountTokenPolicy,
                &format!("Set the token policy: {lifetime}, {required}, {idle}{limits}"),
                None,
            )?;
        }
        Ok(wanted)
    })
}
