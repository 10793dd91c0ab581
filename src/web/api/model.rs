//! The JSON shapes of Gcore's IAM API (see GCORE_IAM_API.md), with their OpenAPI schemas.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::domain::token::TokenStatus;
use crate::domain::Role;
use crate::services::tokens::TokenView;
use crate::services::vocabulary::{AccountInfo, Person};

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
pub struct ClientUser<'a> {
    pub client_id: i64,
    pub user_id: i64,
    pub user_name: &'a str,
    pub user_email: &'a str,
    /// Repeats the token's `deleted` flag, as Gcore's SDK documents.
    pub deleted: bool,
    pub role: RoleRef,
}

/// A time written as RFC 3339 in UTC (`2026-11-28T10:00:00Z`) straight into the output: no
/// string is made for it.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub OffsetDateTime);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self.0.to_offset(time::UtcOffset::UTC);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }
}

/// `at` as the API writes times (`Rfc3339`), as a string.
pub fn rfc3339(at: OffsetDateTime) -> String {
    Rfc3339(at).to_string()
}

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A token as the API shows it, borrowed from the row it describes, so a list of thousands
/// is written straight from its rows (`write_list`) with no allocation per token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiToken<'a> {
    pub id: i64,
    pub name: &'a str,
    pub description: Option<&'a str>,
    /// RFC 3339, UTC.
    #[schema(value_type = String)]
    pub created: Rfc3339,
    /// RFC 3339, UTC; `null` for a token that never expires.
    #[schema(value_type = Option<String>)]
    pub exp_date: Option<Rfc3339>,
    pub expired: bool,
    pub deleted: bool,
    /// Last use, RFC 3339; the creation time for a token never used.
    #[schema(value_type = String)]
    pub last_usage: Rfc3339,
    pub client_user: ClientUser<'a>,
    /// Ours, not Gcore's: the networks (CIDRs) the token may be used from; empty: any address.
    #[schema(value_type = Vec<String>)]
    pub allowed_ips: Networks<'a>,
    /// Ours: the routes (`METHOD /pattern`) the token may call, at the gateway and here;
    /// empty: whatever its role allows.
    #[schema(value_type = Vec<String>)]
    pub allowed_routes: Texts<'a, crate::domain::routes::Route>,
    /// Ours: `{"requests": N, "per_seconds": S}`, or `null` for no limit.
    pub rate_limit: Option<ApiRate>,
    /// Ours: `{"requests": N, "refill": null | "daily" | "monthly"}`, or `null` for no quota.
    pub usage_limit: Option<ApiQuota>,
    /// Ours: what the usage quota has left this period (`null`: no quota).
    pub remaining_uses: Option<u64>,
    /// Ours: the client address of the last use (`null` until used).
    pub last_used_ip: Option<&'a str>,
    /// Ours: the user agent of the last use (`null` until used).
    pub last_used_user_agent: Option<&'a str>,
    /// Ours: active tokens created with this one through the API, at any depth; deleting
    /// this token ends them too.
    pub active_created_tokens: i64,
}

/// A token's allowlist as the API writes it: CIDR strings, straight from the parsed networks.
#[derive(Debug)]
pub struct Networks<'a>(pub &'a [ipnet::IpNet]);

impl Serialize for Networks<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for net in self.0 {
            seq.serialize_element(&AsStr(net))?;
        }
        seq.end()
    }
}

/// A token's rate limit: a burst of `requests`, then `requests` per `per_seconds`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiRate {
    pub requests: u32,
    pub per_seconds: u32,
}

/// A token's usage quota: at most `requests` allowed requests, refilled at each UTC day or
/// calendar month (`null`: never).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiQuota {
    pub requests: u64,
    pub refill: Option<&'static str>,
}

/// A list of `Display`s written as JSON strings.
#[derive(Debug)]
pub struct Texts<'a, T>(pub &'a [T]);

impl<T: std::fmt::Display> Serialize for Texts<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&AsStr(item))?;
        }
        seq.end()
    }
}

/// Any `Display` written as a JSON string without an intermediate `String`.
struct AsStr<'a, T: std::fmt::Display>(&'a T);

impl<T: std::fmt::Display> Serialize for AsStr<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

impl<'a> ApiToken<'a> {
    pub fn new(t: &'a TokenView, now: OffsetDateTime) -> ApiToken<'a> {
        let deleted = t.status == TokenStatus::Deleted;
        ApiToken {
            id: t.id.get(),
            name: &t.name,
            description: t.description.as_deref(),
            created: Rfc3339(t.created_at),
            exp_date: t.expires_at.map(Rfc3339),
            expired: t.expires_at.is_some_and(|at| at <= now),
            deleted,
            last_usage: Rfc3339(t.last_used_at.unwrap_or(t.created_at)),
            client_user: ClientUser {
                client_id: t.account_id.get(),
                user_id: t.issuer_id.get(),
                user_name: &t.issuer_name,
                user_email: &t.issuer_email,
                deleted,
                role: t.role.into(),
            },
            allowed_ips: Networks(&t.allowed_ips),
            allowed_routes: Texts(&t.allowed_routes),
            rate_limit: t.rate_limit.map(|r| ApiRate {
                requests: r.requests,
                per_seconds: r.per_seconds,
            }),
            usage_limit: t.usage_limit.map(|q| ApiQuota {
                requests: q.requests,
                refill: q.refill.as_str(),
            }),
            remaining_uses: t.remaining_uses,
            last_used_ip: t.last_used_ip.as_deref(),
            last_used_user_agent: t.last_used_user_agent.as_deref(),
            active_created_tokens: t.ends_with_it,
        }
    }

    /// The JSON array of `tokens`, written into one buffer.
    pub fn write_list(tokens: &[TokenView], now: OffsetDateTime) -> serde_json::Result<Vec<u8>> {
        struct List<'t>(&'t [TokenView], OffsetDateTime);
        impl Serialize for List<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(|t| ApiToken::new(t, self.1)))
            }
        }
        // About 450 bytes a token: one allocation (or a few doublings) for the whole list.
        let mut out = Vec::with_capacity(64 + tokens.len() * 512);
        serde_json::to_writer(&mut out, &List(tokens, now))?;
        Ok(out)
    }
}

/// An `APIToken` plus the token itself: the only time the secret is returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenCreated<'a> {
    #[serde(flatten)]
    pub details: ApiToken<'a>,
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
    pub fn new(u: &Person, account: &AccountInfo) -> ApiUser {
        let sso = u.auth_type.is_sso();
        ApiUser {
            id: u.id.get(),
            email: u.email.clone(),
            name: (!u.name.trim().is_empty()).then(|| u.name.clone()),
            client: u.account_id.get(),
            company: account.name.clone(),
            groups: vec![u.role.into()],
            client_and_roles: vec![ClientAndRoles {
                client_id: u.account_id.get(),
                client_company_name: account.name.clone(),
                user_id: u.id.get(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_are_written_as_rfc3339_utc_seconds() {
        let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        for at in [
            datetime!(2026-11-28 10:00:00 UTC),
            datetime!(2026-01-02 03:04:05.999 UTC),
            datetime!(2026-12-31 23:30:00 -02:00),
            datetime!(0999-03-04 05:06:07 UTC),
        ] {
            let utc = at.to_offset(time::UtcOffset::UTC);
            assert_eq!(Rfc3339(at).to_string(), utc.format(&f).unwrap());
        }
        assert_eq!(
            serde_json::to_string(&Rfc3339(datetime!(2026-12-31 23:30:00 -02:00))).unwrap(),
            "\"2027-01-01T01:30:00Z\""
        );
    }

    #[test]
    fn the_written_list_is_the_array_of_its_tokens() {
        let now = datetime!(2026-11-28 10:00 UTC);
        let token = |id: i64, deleted: bool| TokenView {
            id: crate::domain::TokenId::new(id),
            account_id: crate::domain::AccountId::new(7),
            name: format!("token \"{id}\" ✓"),
            description: (id % 2 == 0).then(|| "line\nbreak".to_string()),
            role: Role::Engineers,
            issuer_id: crate::domain::UserId::new(3),
            issuer_name: "Ann <admin>".into(),
            issuer_email: "ann@example.com".into(),
            created_at: datetime!(2026-11-01 09:00 UTC),
            expires_at: (id == 2).then_some(datetime!(2026-11-20 00:00 UTC)),
            last_used_at: (id == 3).then_some(datetime!(2026-11-27 08:00 UTC)),
            deleted_at: deleted.then_some(datetime!(2026-11-02 00:00 UTC)),
            status: if deleted {
                TokenStatus::Deleted
            } else {
                TokenStatus::of(None, (id == 2).then_some(datetime!(2026-11-20 00:00)), now)
            },
            created_with: None,
            old_secret_until: None,
            outside_policy: false,
            allowed_ips: vec![],
            allowed_routes: vec![],
            rate_limit: None,
            usage_limit: None,
            remaining_uses: None,
            last_used_ip: None,
            last_used_user_agent: None,
            ends_with_it: 0,
        };
        let tokens = vec![token(1, false), token(2, false), token(3, true)];
        let written: serde_json::Value =
            serde_json::from_slice(&ApiToken::write_list(&tokens, now).unwrap()).unwrap();
        let each: Vec<_> = tokens.iter().map(|t| ApiToken::new(t, now)).collect();
        assert_eq!(written, serde_json::to_value(&each).unwrap());
        assert_eq!(written[0]["name"], "token \"1\" ✓");
        assert_eq!(written[1]["exp_date"], "2026-11-20T00:00:00Z");
        assert_eq!(written[1]["expired"], true);
        assert_eq!(written[2]["last_usage"], "2026-11-27T08:00:00Z");
        assert_eq!(written[2]["client_user"]["deleted"], true);
        assert_eq!(written[0]["description"], serde_json::Value::Null);
        assert_eq!(ApiToken::write_list(&[], now).unwrap(), b"[]");
    }
}
