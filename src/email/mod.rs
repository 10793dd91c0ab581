//! Outgoing mail, knowing no particular message: the transport (SMTP, or `.eml` files in
//! `<data dir>/outbox/` so a first run works offline), DKIM signing, the rendering of a
//! message's template set (`templates/email/<name>/`), the wrapping into a multipart message,
//! and the Fluent catalogues messages take their words from. The messages themselves are the
//! notices' (`services::notices::messages`). No mail ever contains a token's secret.

pub mod dkim;
pub mod i18n;
pub mod message;
pub mod render;
pub mod transport;

pub use dkim::{sender_domain, DkimKey};
pub use message::{compose, domain_of, Envelope, Recipient};
pub use render::{render, Rendered, TemplateSet};
pub use transport::Mailer;
