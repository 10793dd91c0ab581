use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::users;
use crate::db::DbConn;
use crate::domain::{AuthType, Role};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub account_id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub role: Role,
    pub auth_type: AuthType,
    pub created_at: PrimitiveDateTime,
    pub last_login_at: Option<PrimitiveDateTime>,
    pub removed_at: Option<PrimitiveDateTime>,
    pub token_expiry_email: bool,
    pub phone: Option<String>,
    pub lang: String,
    /// JWTs issued with an older generation are refused.
    pub jwt_generation: i32,
    /// SCIM's `userName` when the identity provider's isn't the e-mail.
    pub user_name: Option<String>,
    /// SCIM's `externalId`: the identity provider's own id for the person.
    pub external_id: Option<String>,
    /// Deprovisioned through SCIM (`active: false`): removed, but still a SCIM resource.
    pub deactivated: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub account_id: i64,
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: Option<&'a str>,
    pub role: Role,
    pub auth_type: AuthType,
    pub created_at: PrimitiveDateTime,
}

#[cfg(test)]
impl User {
    /// A password user `u<id>@x.test` of `account_id` with `role`, for unit tests of the rules.
    pub fn fixture(id: i64, account_id: i64, role: Role) -> User {
        User {
            id,
            account_id,
            email: format!("u{id}@x.test"),
            name: format!("u{id}"),
            password_hash: None,
            role,
            auth_type: AuthType::Password,
            created_at: time::macros::datetime!(2026-01-01 0:00),
            last_login_at: None,
            removed_at: None,
            token_expiry_email: true,
            phone: None,
            lang: "en".into(),
            jwt_generation: 0,
            user_name: None,
            external_id: None,
            deactivated: false,
        }
    }
}

impl User {
    pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    /// Ends every JWT issued to the user so far.
    pub fn bump_jwt_generation(conn: &mut DbConn, id: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set(users::jwt_generation.eq(users::jwt_generation + 1))
            .execute(conn)
            .map(drop)
    }

    /// The name, or the e-mail for a user without one.
    pub fn display_name(&self) -> &str {
        crate::domain::user::display_name(&self.name, &self.email)
    }

    pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<User>> {
        users::table
            .filter(users::auth_type.ne(AuthType::Service))
            .filter(users::email.eq(email))
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    /// Every user's id, account and e-mail, by id (for `apitokens doctor`).
    pub fn all_emails(conn: &mut DbConn) -> QueryResult<Vec<(i64, i64, String)>> {
        users::table
            .filter(users::auth_type.ne(AuthType::Service))
            .order(users::id.asc())
            .select((users::id, users::account_id, users::email))
            .load(conn)
    }

    /// The person of `account_id` whose SCIM `userName` is `name` (when it differs from the
    /// e-mail; see `scim::write`), ignoring case.
    pub fn find_by_user_name(
        conn: &mut DbConn,
        account_id: i64,
        name: &str,
    ) -> QueryResult<Option<User>> {
        diesel::define_sql_function!(fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>);
        users::table
            .filter(users::auth_type.ne(AuthType::Service))
            .filter(users::account_id.eq(account_id))
            .filter(lower(users::user_name).eq(name.to_lowercase()))
            .select(users::all_columns)
            .first(conn)
            .optional()
    }

    pub fn insert(conn: &mut DbConn, new: &NewUser) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(new)
            .returning(users::all_columns)
            .get_result(conn)
    }

    /// The account's users that are not removed, by name.
    pub fn list_in_account(conn: &mut DbConn, account_id: i64) -> QueryResult<Vec<User>> {
        users::table
            .filter(users::auth_type.ne(AuthType::Service))
            .filter(users::account_id.eq(account_id))
            .filter(users::removed_at.is_null())
            .order((users::name.asc(), users::id.asc()))
            .select(User::as_select())
            .load(conn)
    }

    pub fn set_role(conn: &mut DbConn, id: i64, role: Role) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::role.eq(role),
                users::jwt_generation.eq(users::jwt_generation + 1),
            ))
            .execute(conn)
            .map(drop)
    }

    pub fn set_password_hash(conn: &mut DbConn, id: i64, hash: &str) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set(users::password_hash.eq(hash))
            .execute(conn)
            .map(drop)
    }

    pub fn mark_removed(conn: &mut DbConn, id: i64, at: PrimitiveDateTime) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::removed_at.eq(at),
                users::jwt_generation.eq(users::jwt_generation + 1),
            ))
            .execute(conn)
            .map(drop)
    }

    pub fn update_profile(
        conn: &mut DbConn,
        id: i64,
        name: &str,
        phone: Option<&str>,
        lang: &str,
    ) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::name.eq(name),
                users::phone.eq(phone),
                users::lang.eq(lang),
            ))
            .execute(conn)
            .map(drop)
    }

    pub fn set_email(conn: &mut DbConn, id: i64, email: &str) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set(users::email.eq(email))
            .execute(conn)
            .map(drop)
    }

    /// One page of the account's users (not removed), in the list's order.
    pub fn page_in_account(
        conn: &mut DbConn,
        account_id: i64,
        limit: i64,
        offset: i64,
    ) -> QueryResult<Vec<User>> {
        users::table
            .filter(users::auth_type.ne(AuthType::Service))
            .filter(users::account_id.eq(account_id))
            .filter(users::removed_at.is_null())
            .order((users::name.asc(), users::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(User::as_select())
            .load(conn)
    }

    pub fn count_in_account(conn: &mut DbConn, account_id: i64) -> QueryResult<i64> {
        users::table
            .filter(users::auth_type.ne(AuthType::Service))
            .filter(users::account_id.eq(account_id))
            .filter(users::removed_at.is_null())
            .count()
            .get_result(conn)
    }

    /// Administrators of the account that are not removed.
    pub fn count_admins(conn: &mut DbConn, account_id: i64) -> QueryResult<i64> {
        users::table
            .filter(users::auth_type.ne(AuthType::Service))
            .filter(users::account_id.eq(account_id))
            .filter(users::removed_at.is_null())
            .filter(users::role.eq(Role::Administrators))
            .count()
            .get_result(conn)
    }

    pub fn set_token_expiry_email(conn: &mut DbConn, id: i64, on: bool) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set(users::token_expiry_email.eq(on))
            .execute(conn)
            .map(drop)
    }

    /// Turns a live user's expiry e-mails off if they are on; `true` if this call did it (a
    /// conditional update, so of two at once only one sees `true`).
    pub fn turn_off_expiry_email(conn: &mut DbConn, id: i64) -> QueryResult<bool> {
        diesel::update(
            users::table
                .find(id)
                .filter(users::removed_at.is_null())
                .filter(users::token_expiry_email.eq(true)),
        )
        .set(users::token_expiry_email.eq(false))
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn record_sign_in(conn: &mut DbConn, id: i64, at: PrimitiveDateTime) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set(users::last_login_at.eq(at))
            .execute(conn)
            .map(drop)
    }
}
