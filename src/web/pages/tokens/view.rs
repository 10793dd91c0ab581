//! What the section and the form show, formatted for the templates.

use askama::Template;

use crate::domain::token::TokenStatus;
use crate::domain::TokenId;
use crate::services::tokens::TokenView;
use crate::web::views::{datetime, Layout};

/// An option of a `<select>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub fn choice(value: impl ToString, label: impl ToString, selected: bool) -> Choice {
    Choice {
        value: value.to_string(),
        label: label.to_string(),
        selected,
    }
}

/// A row of the table, formatted for display.
pub struct TokenRow {
    pub id: TokenId,
    pub name: String,
    pub description: Option<String>,
    pub issuer_name: String,
    pub issuer_email: String,
    pub role: &'static str,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub status: &'static str,
    pub deletable: bool,
    pub expiring_soon: bool,
    /// "created with token <name>" for a token made through the API with another token.
    pub created_with: Option<String>,
    /// After a rotation: until when the old secret still works.
    pub grace_until: Option<String>,
    /// Active, but outside the account's token policy.
    pub outside_policy: bool,
}

impl TokenRow {
    pub fn new(t: &TokenView, now: time::OffsetDateTime) -> TokenRow {
        TokenRow {
            id: t.id,
            name: t.name.clone(),
            description: t.description.clone(),
            issuer_name: t.issuer_name.clone(),
            issuer_email: t.issuer_email.clone(),
            role: t.role.name(),
            created: datetime(t.created_at),
            last_used: t
                .last_used_at
                .map(datetime)
                .unwrap_or_else(|| "Never used".into()),
            expires: t.expires_at.map(datetime).unwrap_or_else(|| "Never".into()),
            status: t.status.as_str(),
            deletable: t.status != TokenStatus::Deleted,
            expiring_soon: t.expiring_soon(now),
            grace_until: t.old_secret_until.map(datetime),
            outside_policy: t.outside_policy,
            created_with: t.created_with.as_ref().map(|(id, name)| match name {
                Some(name) => format!("created with token {name}"),
                None => format!("created with token #{id}"),
            }),
        }
    }
}

/// The token value, shown once.
pub struct Reveal {
    pub value: String,
    pub name: String,
}

pub struct ConfirmDelete {
    /// Active tokens created with it, at any depth, that the delete ends too.
    pub ends: i64,
    pub id: TokenId,
    pub name: String,
}

impl ConfirmDelete {
    /// "1 token", "3 tokens".
    pub fn ends_label(&self) -> String {
        crate::domain::count(self.ends, "token", "tokens")
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
pub struct SectionPage {
    pub layout: Layout,
    pub rows: Vec<TokenRow>,
    /// Rows on this page.
    pub shown: i64,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
    pub show_issuer_filter: bool,
    pub issuers: Vec<Choice>,
    pub roles: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub filtered: bool,
    pub active_count: i64,
    pub limit: i64,
    pub at_limit: bool,
    pub reveal: Option<Reveal>,
    pub confirm: Option<ConfirmDelete>,
    pub sso_warning: bool,
    pub back: String,
    pub expiring_soon: i64,
    pub only_expiring: bool,
    pub token_filter: Option<TokenId>,
    /// "All, deleted too" is the status chosen.
    pub all_statuses: bool,
    /// The list leaves deleted tokens out (no status chosen).
    pub deleted_hidden: bool,
}

impl SectionPage {
    pub fn expiring_alert(&self) -> String {
        let verb = if self.expiring_soon == 1 {
            "expires"
        } else {
            "expire"
        };
        format!(
            "{} you can see {verb} within 7 days.",
            crate::domain::count(self.expiring_soon, "token", "tokens")
        )
    }

    pub fn shown_label(&self) -> String {
        crate::domain::count(self.shown, "token", "tokens")
    }
}
