//! The account's SCIM bearer token: one per account, shown once, only its SHA-256 kept.

use crate::db::schema::accounts;
use crate::db::DbConn;
use crate::domain::sha256_hex;
use crate::domain::EventKind;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::Account;
use crate::services::vocabulary::Actor;
use diesel::prelude::*;
use time::OffsetDateTime;

/// The account whose SCIM token this is. The shape (and its checksum) is checked before any
/// database read, so made-up tokens cost nothing but a CRC.
pub fn account_of_token(conn: &mut DbConn, presented: &str) -> ServiceResult<Option<Account>> {
    if !crate::domain::scim::token_shape_ok(presented) {
        return Ok(None);
    }
    Ok(accounts::table
        .filter(accounts::scim_token_hash.eq(sha256_hex(presented)))
        .select(Account::as_select())
        .first(conn)
        .optional()?)
}

/// Makes the account's SCIM token (replacing the one it had), records it, and returns the
/// token: the only time it exists outside the identity provider. `by`: the Administrator who
/// asked, `None` from the command line.
pub fn issue_token(
    conn: &mut DbConn,
    account_id: i64,
    by: Option<&Actor>,
    now: OffsetDateTime,
) -> ServiceResult<String> {
    let token = crate::domain::scim::generate_token();
    conn.transaction(|conn| {
        if !Account::lock(conn, account_id)? {
            return Err(ServiceError::NotFound);
        }
        let replaced = Account::find(conn, account_id)?
            .and_then(|a| a.scim_token_hash)
            .is_some();
        diesel::update(accounts::table.find(account_id))
            .set(accounts::scim_token_hash.eq(sha256_hex(&token)))
            .execute(conn)?;
        let how = if by.is_some() {
            "in the portal"
        } else {
            "on the command line"
        };
        let summary = if replaced {
            format!("Created a new SCIM token {how}; the old one stopped working")
        } else {
            format!("Created the account's SCIM token {how}")
        };
        crate::services::audit::write(
            conn,
            &[crate::services::audit::Entry {
                account_id,
                by: by.map_or(
                    crate::services::audit::By::System,
                    crate::services::audit::By::Actor,
                ),
                at: now,
                kind: EventKind::ScimTokenCreated,
                summary: &summary,
                token_id: None,
                reason: None,
            }],
        )?;
        Ok(())
    })?;
    Ok(token)
}

/// Whether the account has a SCIM token (the Users page says so).
pub fn has_token(conn: &mut DbConn, account_id: i64) -> ServiceResult<bool> {
    Ok(Account::find(conn, account_id)?.is_some_and(|a| a.scim_token_hash.is_some()))
}
