//! Users as SCIM sees them: one, or a page filtered by one `eq`.

use super::error::{not_found, ScimResult};
use crate::db::schema::users;
use crate::db::DbConn;
use crate::domain::input::Email;
use crate::domain::scim::{Filter, UserView};
use crate::domain::token::from_naive;
use crate::error::ServiceResult;
use crate::repo::User;
use diesel::prelude::*;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The users SCIM sees: the account's live users and the deactivated ones.
pub(crate) fn visible(account_id: i64) -> users::BoxedQuery<'static, crate::db::MultiBackend> {
    users::table
        .filter(users::account_id.eq(account_id))
        .filter(users::auth_type.ne(crate::domain::AuthType::Service))
        .filter(users::removed_at.is_null().or(users::deactivated.eq(true)))
        .into_boxed()
}

/// SCIM's userName of a user: the identity provider's, else the e-mail.
pub fn user_name(user: &User) -> &str {
    user.user_name.as_deref().unwrap_or(&user.email)
}

/// A user as SCIM shows them; `base_url` makes `meta.location`.
pub fn view(user: &User, base_url: &str) -> UserView {
    UserView {
        id: user.id,
        user_name: user_name(user).to_owned(),
        display_name: user.name.clone(),
        email: user.email.clone(),
        active: user.removed_at.is_none(),
        role: user.role,
        external_id: user.external_id.clone(),
        created: from_naive(user.created_at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        location: format!("{base_url}/scim/v2/Users/{}", user.id),
    }
}

/// One page of the account's users (by id), matching `filter`, and how many match in all.
pub fn list(
    conn: &mut DbConn,
    account_id: i64,
    filter: Option<&Filter>,
    start_index: i64,
    count: i64,
) -> ServiceResult<(i64, Vec<User>)> {
    let filtered = || {
        let q = visible(account_id);
        match filter {
            None => Some(q),
            Some(Filter::UserName(v)) => Some(
                q.filter(
                    lower(users::user_name.assume_not_null())
                        .eq(Email::normal_form(v))
                        .or(users::user_name
                            .is_null()
                            .and(lower(users::email).eq(Email::normal_form(v)))),
                ),
            ),
            Some(Filter::Email(v)) => Some(q.filter(lower(users::email).eq(Email::normal_form(v)))),
            Some(Filter::ExternalId(v)) => Some(q.filter(users::external_id.eq(v.clone()))),
            Some(Filter::Id(id)) => Some(q.filter(users::id.eq(*id))),
            Some(Filter::Active(true)) => Some(q.filter(users::removed_at.is_null())),
            Some(Filter::Active(false)) => Some(q.filter(users::removed_at.is_not_null())),
            Some(Filter::Nothing) => None,
        }
    };
    let Some(total_query) = filtered() else {
        return Ok((0, vec![]));
    };
    let total: i64 = total_query.count().get_result(conn)?;
    if count <= 0 || start_index > total {
        return Ok((total, vec![]));
    }
    let page = filtered()
        .expect("the same filter")
        .order(users::id.asc())
        .offset(start_index - 1)
        .limit(count)
        .select(User::as_select())
        .load(conn)?;
    Ok((total, page))
}

/// A user SCIM sees, of this account; anyone else is "not found".
pub fn get(conn: &mut DbConn, account_id: i64, id: i64) -> ScimResult<User> {
    visible(account_id)
        .filter(users::id.eq(id))
        .select(User::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found(id))
}
