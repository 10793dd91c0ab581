//! The rules. Each public function takes a connection, owns its transaction, and returns
//! domain values or a `ServiceError`; nothing here knows about HTTP.

pub mod auth;
pub mod credentials;
pub mod login_limit;
pub mod members;

pub mod notifier;
pub mod tokens;
pub mod users;

use crate::domain::Role;
use crate::repo::User;

/// Who is acting, and with which role. Through the portal the role is the user's; through
/// an API token it is the token's role, which caps what the token can do.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: i64,
    pub account_id: i64,
    pub role: Role,
}

impl Actor {
    pub fn of_user(user: &User) -> Actor {
        Actor {
            user_id: user.id,
            account_id: user.account_id,
            role: role_of(user.role),
        }
    }
}

/// A stored role id as a `Role`; an unknown id (which no code path writes) counts as the
/// least privileged role.
pub fn role_of(id: i32) -> Role {
    Role::from_id(id).unwrap_or(Role::Users)
}
