//! Types that carry the product's rules and know nothing of HTTP or SQL.

pub mod clock;
pub mod input;
pub mod role;
pub mod token;

pub use clock::Clock;
pub use role::Role;
