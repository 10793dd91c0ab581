//! Changing a token that stays what it is: its name and description, and the networks it may
//! be used from. Its role and expiry don't change (rotation is for that).

use crate::domain::EventKind;
use diesel::Connection;
use ipnet::IpNet;
use time::OffsetDateTime;

use super::read::{load_view, lock_changeable};
use super::view::TokenView;
use crate::db::DbConn;
use crate::domain::input::{TokenDescription, TokenName};
use crate::domain::TokenId;
use crate::error::ServiceResult;
use crate::repo::Token;
use crate::services::audit;
use crate::services::vocabulary::Actor;

/// Changes a token's name and description (its role and expiry don't change: rotation is
/// for that). A deleted token can't be edited.
pub fn rename(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    name: &TokenName,
    description: &TokenDescription,
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    let id = id.get();
    conn.transaction(|conn| {
        let token = lock_changeable(conn, actor, id, "name")?;
        let description = description.clone().into_inner();
        if token.name == name.as_str() && token.description == description {
            return Ok(());
        }
        Token::rename(conn, id, name.as_str(), description.as_deref())?;
        let summary = if token.name == name.as_str() {
            format!("Changed the description of token \"{}\"", token.name)
        } else {
            format!("Renamed token \"{}\" to \"{}\"", token.name, name.as_str())
        };
        audit::record(
            conn,
            actor,
            now,
            EventKind::TokenRenamed,
            &summary,
            Some(id),
        )
    })?;
    load_view(conn, id, now)
}

/// Sets the networks a token may be used from (empty: any), recorded when it changes.
pub fn set_allowed_ips(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    nets: &[IpNet],
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    let id = id.get();
    conn.transaction(|conn| {
        let token = lock_changeable(conn, actor, id, "allowed_ips")?;
        let stored = crate::domain::allowlist::to_stored(nets);
        if stored == token.allowed_ips {
            return Ok(());
        }
        Token::set_allowed_ips(conn, id, stored.as_deref())?;
        let summary = match &stored {
            Some(list) => format!(
                "Limited token \"{}\" to {}",
                token.name,
                list.replace(',', ", ")
            ),
            None => format!("Let token \"{}\" be used from any address", token.name),
        };
        audit::record(
            conn,
            actor,
            now,
            EventKind::TokenAllowlistChanged,
            &summary,
            Some(id),
        )
    })?;
    load_view(conn, id, now)
}
