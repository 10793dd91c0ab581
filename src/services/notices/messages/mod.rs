//! What the notices tell people by e-mail, each a set of facts and a template set
//! (`templates/email/<name>/`) with its words from the Fluent catalogues: the expiry digest,
//! the invitation, the leak (and deprovisioning) alert, the password mails, a webhook
//! endpoint turned off, the idle and the usage-quota notices.

pub mod digest;
pub mod idle;
pub mod invitation;
pub mod leak;
pub mod password;
pub mod quota;
pub mod two_factor;
pub mod webhook;

pub use digest::{digest_message, render_digest, DigestItem, DigestMail};
pub use idle::{idle_message, IdleMail};
pub use invitation::{invitation_message, render_invitation, InvitationMail};
pub use leak::{leak_message, render_leak, LeakMail};
pub use password::{changed_message, reset_message, ChangedMail, ResetMail};
pub use quota::{quota_message, QuotaMail};
pub use two_factor::{two_factor_message, TwoFactorMail};
pub use webhook::{webhook_disabled_message, WebhookDisabledMail};
