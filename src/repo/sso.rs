//! An account's single sign-on (OpenID Connect): the issuer, our client there, the sealed
//! client secret, and the account's choices (`required`, the role of people added at first
//! sign-in).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::sso_configs;
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
