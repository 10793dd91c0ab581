//! An account's single sign-on: OpenID Connect (the issuer, our client there, the sealed
//! client secret) or SAML 2.0 (the IdP's entity id, its sign-on URL and metadata), and the
//! account's choices (`required`, the role of people added at first sign-in, IdP-initiated
//! SAML); and the SAML assertions already accepted.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{saml_used_assertions, sso_configs};
use crate::db::DbConn;
use crate::domain::Role;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = sso_configs)]
#[diesel(treat_none_as_null = true)]
pub struct SsoConfig {
    pub account_id: i64,
    pub protocol: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_sealed: String,
    pub required: bool,
    pub jit_role: Option<Role>,
    pub updated_at: PrimitiveDateTime,
    pub idp_metadata: Option<String>,
    pub idp_initiated: bool,
}

impl SsoConfig {
    pub fn find(conn: &mut DbConn, account_id: i64) -> QueryResult<Option<SsoConfig>> {
        sso_configs::table
            .find(account_id)
            .select(SsoConfig::as_select())
            .first(conn)
            .optional()
    }

    /// Sets the account's configuration (a new one, or replacing the one there).
    pub fn put(conn: &mut DbConn, config: &SsoConfig) -> QueryResult<()> {
        let updated = diesel::update(sso_configs::table.find(config.account_id))
            .set(config)
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(sso_configs::table)
                .values(config)
                .execute(conn)?;
        }
        Ok(())
    }

    /// Turns SSO off for the account; whether it was on.
    pub fn delete(conn: &mut DbConn, account_id: i64) -> QueryResult<bool> {
        diesel::delete(sso_configs::table.find(account_id))
            .execute(conn)
            .map(|n| n == 1)
    }
}

/// SAML assertions already accepted (by the SHA-256 of issuer and assertion ID).
pub struct UsedAssertion;

impl UsedAssertion {
    /// Records an assertion as accepted; `false` if it was accepted before, here or on another
    /// instance. Forgets those that can no longer be accepted anyway first.
    pub fn take(
        conn: &mut DbConn,
        hash: &str,
        expires_at: PrimitiveDateTime,
        now: PrimitiveDateTime,
    ) -> QueryResult<bool> {
        diesel::delete(
            saml_used_assertions::table.filter(saml_used_assertions::expires_at.le(now)),
        )
        .execute(conn)?;
        super::refresh::first_time(
            diesel::insert_into(saml_used_assertions::table)
                .values((
                    saml_used_assertions::assertion_hash.eq(hash),
                    saml_used_assertions::expires_at.eq(expires_at),
                ))
                .execute(conn),
        )
    }
}
