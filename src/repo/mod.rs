//! Synchronous Diesel queries, one file per table family. No rules here: the services
//! decide, these only read and write.

pub mod accounts;
pub mod events;
pub mod lineage;
pub mod login_failures;
pub mod machines;
pub mod setups;

pub mod notices;
pub mod passkeys;
pub mod refresh;
pub mod sessions;
pub mod sso;
pub mod token_auth;
pub mod token_limits;
pub mod tokens;
pub mod two_factor;
mod types;
pub mod usage;
pub mod users;
pub mod webhooks;

pub use accounts::Account;
pub use refresh::UsedRefreshToken;
pub use sessions::Session;
pub use token_auth::TokenForAuth;
pub use tokens::{NewToken, Token, TokenFilter, TokenWithIssuer};
pub use users::{NewUser, User};
