//! What narrows a token beyond its role: the networks it may be used from and the routes it
//! may call (issue 28).

use diesel::prelude::*;

use crate::db::schema::tokens;
use crate::db::DbConn;
use crate::repo::Token;

impl Token {
    pub fn set_allowed_ips(conn: &mut DbConn, id: i64, stored: Option<&str>) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set(tokens::allowed_ips.eq(stored))
            .execute(conn)
            .map(drop)
    }

    pub fn set_allowed_routes(conn: &mut DbConn, id: i64, stored: Option<&str>) -> QueryResult<()> {
        diesel::update(tokens::table.find(id))
            .set(tokens::allowed_routes.eq(stored))
            .execute(conn)
            .map(drop)
    }
}
