//! Types that carry the product's rules and know nothing of HTTP or SQL. (The enums that are
//! stored carry Diesel's two marker derives; how they map to columns is in `repo::types`.)

pub mod address;
pub mod allowlist;
pub mod clock;
pub mod event;
pub mod federation;
pub mod ids;
pub mod input;
pub mod leak_response;
pub mod notice;
pub mod passkeys;
pub mod policy;
pub mod quota;
pub mod rate;
pub mod role;
pub mod routes;
pub mod scim;
pub mod second_factor;
pub mod secret;
pub mod text;
pub mod token;
pub mod token_format;
pub mod unsubscribe;
pub mod user;
pub mod webhook;

pub use clock::Clock;
pub use event::EventKind;
pub use ids::{
    AccountId, DeliveryId, NoticeId, PasskeyId, ServiceAccountId, TokenId, TrustPolicyId, UserId,
    WebhookId,
};

/// `1 token`, `3 tokens`: a count with its noun in the right number.
pub fn count(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}
pub use notice::{EmailStatus, NoticeKind};
pub use role::Role;
pub use secret::{sha256_hex, Secret};
pub use user::AuthType;
