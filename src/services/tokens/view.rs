//! What the tokens room takes and gives: requests already parsed into domain types, and the
//! views of tokens the portal and the API show (never a database row).

use ipnet::IpNet;
use time::{Date, OffsetDateTime};

use crate::domain::input::{Expiry, TokenDescription, TokenName};
use crate::domain::policy::TokenPolicy;
use crate::domain::token::{from_naive, is_expiring_soon, TokenSecret, TokenStatus};
use crate::domain::{AccountId, Role, TokenId, UserId};
use crate::repo::TokenWithIssuer;
use crate::services::vocabulary::Person;

/// Rows per page of a token list.
pub const PAGE_SIZE: i64 = 50;

/// What to create, already parsed into domain types.
#[derive(Debug, Clone)]
pub struct NewTokenRequest {
    pub name: TokenName,
    pub description: TokenDescription,
    pub role: Role,
    pub expiry: Expiry,
    /// The web form's one-time id: a second submission of the same form creates nothing.
    pub form_id: Option<String>,
    /// The token this request came through (API), which the new token can't outlive.
    pub parent: Option<TokenId>,
    /// The networks it may be used from (`domain::allowlist`); empty: any address.
    pub allowed_ips: Vec<IpNet>,
    /// The routes it may call (`domain::routes`); empty: whatever its role allows (a token made
    /// with a limited token gets its parent's).
    pub allowed_routes: Vec<crate::domain::routes::Route>,
    /// A burst and a rate it may be called at (`None`: no limit; a token made with a limited
    /// token gets its parent's).
    pub rate_limit: Option<crate::domain::rate::RateLimit>,
    /// At most this many requests, for ever or per period (`None`: no quota; a token made
    /// with a quota'd token gets its parent's).
    pub usage_limit: Option<crate::domain::quota::UsageLimit>,
}

/// A token as the portal and the API show it.
#[derive(Debug, Clone)]
pub struct TokenView {
    pub id: TokenId,
    pub account_id: AccountId,
    pub name: String,
    pub description: Option<String>,
    pub role: Role,
    pub issuer_id: UserId,
    pub issuer_name: String,
    pub issuer_email: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
    pub status: TokenStatus,
    /// The token this one was created with (through the API): its id, and its name when the
    /// list that shows this one knows it.
    pub created_with: Option<(TokenId, Option<String>)>,
    /// After a rotation, while the old secret still works: until when.
    pub old_secret_until: Option<OffsetDateTime>,
    /// Active, but the account's token policy would not allow it today (set by lists that
    /// know the policy).
    pub outside_policy: bool,
    /// The networks it may be used from; empty: any address.
    pub allowed_ips: Vec<IpNet>,
    /// The routes it may call; empty: whatever its role allows.
    pub allowed_routes: Vec<crate::domain::routes::Route>,
    pub rate_limit: Option<crate::domain::rate::RateLimit>,
    pub usage_limit: Option<crate::domain::quota::UsageLimit>,
    /// What the usage quota has left this period (`None`: no quota); set by the reads that
    /// know the counters.
    pub remaining_uses: Option<u64>,
    /// The last use's client address and user agent (`None` until used).
    pub last_used_ip: Option<String>,
    pub last_used_user_agent: Option<String>,
    /// Active tokens created with this one, at any depth: what deleting it ends too.
    pub ends_with_it: i64,
}

impl TokenView {
    /// Active and expiring soon (`domain::token::is_expiring_soon`).
    pub fn expiring_soon(&self, now: OffsetDateTime) -> bool {
        is_expiring_soon(self.status, self.expires_at, now)
    }

    pub fn new(row: TokenWithIssuer, now: OffsetDateTime) -> TokenView {
        let t = row.token;
        TokenView {
            status: TokenStatus::of(t.deleted_at, t.expires_at, now),
            id: TokenId::new(t.id),
            account_id: AccountId::new(t.account_id),
            name: t.name,
            description: t.description,
            role: t.role,
            issuer_id: UserId::new(t.issuer_id),
            issuer_name: if crate::domain::user::is_service_account_address(&row.issuer_email) {
                format!("service account {}", row.issuer_name)
            } else {
                crate::domain::user::display_name(&row.issuer_name, &row.issuer_email).to_owned()
            },
            // A service account's stand-in address is nobody's to show.
            issuer_email: if crate::domain::user::is_service_account_address(&row.issuer_email) {
                String::new()
            } else {
                row.issuer_email
            },
            created_at: from_naive(t.created_at),
            expires_at: t.expires_at.map(from_naive),
            last_used_at: t.last_used_at.map(from_naive),
            deleted_at: t.deleted_at.map(from_naive),
            created_with: t.parent_id.map(|id| (TokenId::new(id), None)),
            old_secret_until: t
                .old_secret_until
                .map(from_naive)
                .filter(|until| *until > now && t.deleted_at.is_none()),
            outside_policy: false,
            allowed_ips: crate::domain::allowlist::from_stored(t.allowed_ips.as_deref()),
            allowed_routes: crate::domain::routes::from_stored(t.allowed_routes.as_deref()),
            rate_limit: crate::domain::rate::RateLimit::from_stored(t.rate_limit.as_deref()),
            usage_limit: crate::domain::quota::UsageLimit::from_stored(t.usage_limit.as_deref()),
            remaining_uses: None,
            last_used_ip: t.last_used_ip,
            last_used_user_agent: t.last_used_user_agent,
            ends_with_it: 0,
        }
    }
}

pub enum CreateOutcome {
    /// The new token and its secret: the only time the secret exists outside the client.
    Created {
        token: TokenView,
        secret: TokenSecret,
    },
    /// This form was submitted before; that submission created `token`.
    AlreadyCreated { token: TokenView },
}

/// Filters of a token list, as the web page and the API accept them.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub issued_by: Option<UserId>,
    pub not_issued_by: Option<UserId>,
    pub role: Option<Role>,
    pub status: Option<TokenStatus>,
    pub deleted: Option<bool>,
    /// Just this token (links from e-mails and notifications).
    pub token_id: Option<TokenId>,
    /// Only the tokens created with this one, at any depth, whatever their status (the
    /// delete dialog's link; 404 when the viewer may not see this one).
    pub created_with: Option<TokenId>,
    /// Only tokens that are expiring soon (the badge's link; use with `Active`).
    pub expiring_soon: bool,
    /// 1-based.
    pub page: i64,
    /// `None` = every matching token (the API's list without `limit`).
    pub per_page: Option<i64>,
    /// Rows to skip (the API's `offset`); `None`: from `page`.
    pub offset: Option<i64>,
    /// Keyset paging (see `TokenFilter`): tokens older than `before`, or the page just newer
    /// than `after`.
    pub before: Option<TokenId>,
    pub after: Option<TokenId>,
    /// Also count every match (`TokenPage::total`).
    pub count: bool,
}

pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// Every match, when the query asked for the count.
    pub total: Option<i64>,
    pub page: i64,
    pub per_page: i64,
}

pub enum DeleteOutcome {
    /// Deleted now, with every token it created (the ids, for the cache).
    Deleted(TokenView, Vec<i64>),
    /// It was deleted before; nothing changed.
    AlreadyDeleted(TokenView),
}

/// What a rotation asks for.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// How long the old secret keeps working (0: it stops now; at most 7 days).
    pub grace: time::Duration,
    /// A new expiry (`None`: keep the token's own), within the account's policy.
    pub expiry: Option<Expiry>,
}

/// Everything a token's page shows: the token, its trail, and the account's policy.
pub struct TokenDetail {
    pub token: TokenView,
    pub usage: Usage,
    pub events: Vec<crate::services::audit::Event>,
    pub policy: TokenPolicy,
}

/// What became of a token found where it shouldn't be (`revoke_found`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundToken {
    /// It was active and is now revoked (with the tokens it created: their ids, for caches).
    Revoked,
    /// It is active and stays so: its account only wants to be told (`LeakResponse`).
    Reported,
    /// It was already expired or deleted: nothing to do.
    AlreadyDead(TokenStatus),
    /// No token has this id and secret.
    Unknown,
}

/// Everything the tokens section of the portal shows, loaded in one trip.
pub struct TokenSection {
    pub page: TokenPage,
    pub active_count: i64,
    /// The account's users, for the "Issued by" filter (Administrators only; else empty).
    pub issuers: Vec<Person>,
    /// The token a delete confirmation asks about.
    pub confirm: Option<TokenView>,
}

/// A token's usage as its page and the API show it, if `actor` may see the token.
pub struct Usage {
    pub days: Vec<(Date, i64)>,
    /// Of each day's requests, refused by the token's limits: [route, rate, quota].
    pub refused: Vec<[i64; 3]>,
    /// The last addresses, most recent first, with their last time.
    pub addresses: Vec<(String, OffsetDateTime)>,
}
