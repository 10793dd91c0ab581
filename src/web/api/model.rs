//! The JSON shapes of Gcore's IAM API (see GCORE_IAM_API.md), with their OpenAPI schemas.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::domain::token::TokenStatus;
use crate::domain::Role;
use crate::services::tokens::TokenView;
use crate::services::{Account, User};

/// RFC 3339 in UTC, seconds precision: `2026-12-01T23:59:59Z`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleRef {
    /// Gcore's role id: 1, 5, 3009, 3022 or 2.
    pub id: i32,
    pub name: &'static str,
}

impl From<Role> for RoleRef {
    fn from(r: Role) -> Self {
        RoleRef {
            id: r.id(),
            name: r.name(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientUser {
    pub client_id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub user_email: String,
    /// Repeats the token's `deleted` flag, as Gcore's SDK documents.
    pub deleted: bool,
    pub role: RoleRef,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// RFC 3339, UTC.
    pub created: String,
    /// RFC 3339, UTC; `null` for a token that never expires.
    pub exp_date: Option<String>,
    pub expired: bool,
    pub deleted: bool,
    /// Last use, RFC 3339; the creation time for a token never used.
    pub last_usage: String,
    pub client_user: ClientUser,
}

impl ApiToken {
    pub fn new(t: &TokenView, now: OffsetDateTime) -> ApiToken {
        let deleted = t.status == TokenStatus::Deleted;
        ApiToken {
            id: t.id,
            name: t.name.clone(),
            description: t.description.clone(),
            created: rfc3339(t.created_at),
            exp_date: t.expires_at.map(rfc3339),
            expired: t.expires_at.is_some_and(|at| at <= now),
            deleted,
            last_usage: rfc3339(t.last_used_at.unwrap_or(t.created_at)),
            client_user: ClientUser {
                client_id: t.account_id,
                user_id: t.issuer_id,
                user_name: t.issuer_name.clone(),
                user_email: t.issuer_email.clone(),
                deleted,
                role: t.role.into(),
            },
        }
    }
}

/// An `APIToken` plus the token itself: the only time the secret is returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenCreated {
    #[serde(flatten)]
    pub details: ApiToken,
    /// `<id>$<secret>` from `/iam/...`, `<id>_<secret>` from `/iam/v2/...`.
    pub token: String,
}

/// One entry of a user's `client_and_roles`: the account and the user's roles in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientAndRoles {
    pub client_id: i64,
    pub client_company_name: String,
    pub user_id: i64,
    pub user_roles: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiUser {
    pub id: i64,
    pub email: String,
    /// `null` for a user without a name.
    pub name: Option<String>,
    /// The account (Gcore: client) id.
    pub client: i64,
    pub company: String,
    pub groups: Vec<RoleRef>,
    pub client_and_roles: Vec<ClientAndRoles>,
    pub deleted: bool,
    pub is_active: bool,
    pub activated: bool,
    pub auth_types: Vec<String>,
    pub sso_auth: bool,
    pub two_fa: bool,
    pub lang: String,
    pub phone: Option<String>,
    pub reseller: i64,
    pub user_type: &'static str,
}

impl ApiUser {
    pub fn new(u: &User, account: &Account) -> ApiUser {
        let sso = u.auth_type.is_sso();
        ApiUser {
            id: u.id,
            email: u.email.clone(),
            name: (!u.name.trim().is_empty()).then(|| u.name.clone()),
            client: u.account_id,
            company: account.name.clone(),
            groups: vec![u.role.into()],
            client_and_roles: vec![ClientAndRoles {
                client_id: u.account_id,
                client_company_name: account.name.clone(),
                user_id: u.id,
                user_roles: vec![u.role.name().to_string()],
            }],
            deleted: u.removed_at.is_some(),
            is_active: u.removed_at.is_none(),
            activated: true,
            auth_types: vec![u.auth_type.code().to_string()],
            sso_auth: sso,
            two_fa: false,
            lang: u.lang.clone(),
            phone: u.phone.clone(),
            reseller: 0,
            user_type: "common",
        }
    }
}

/// `GET /iam/users?limit=...`: one page and the number of users in all.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersPage {
    pub count: i64,
    pub results: Vec<ApiUser>,
}

/// `GET /iam/users`'s answer, as documented: an array without `limit`, a page with it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UsersList {
    All(Vec<ApiUser>),
    Page(UsersPage),
}

/// `GET /iam/clients/{clientId}/client-users/{userId}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRole {
    pub user_role: RoleRef,
}

#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub struct ClientOverview {
    pub id: i64,
    /// The first Administrator's e-mail.
    pub email: String,
    pub companyName: String,
    pub currentUser: i64,
    pub deleted: bool,
    pub has_active_admin: bool,
    pub is_test: bool,
    pub status: &'static str,
    pub bill_type: &'static str,
    pub capabilities: Vec<String>,
    #[schema(value_type = Object)]
    pub freeFeatures: serde_json::Value,
    #[schema(value_type = Object)]
    pub paidFeatures: serde_json::Value,
    #[schema(value_type = Object)]
    pub serviceStatuses: serde_json::Value,
    pub users: Vec<ApiUser>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JwtPair {
    /// Access token, valid 1 hour.
    pub access: String,
    /// Refresh token, valid 24 hours, usable once.
    pub refresh: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}
