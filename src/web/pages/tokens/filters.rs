//! The section's filters, read from and written back to the query string.

use serde::Deserialize;

use super::SECTION;
use crate::domain::token::TokenStatus;
use crate::domain::{Role, TokenId, UserId};
use crate::web::WebError;

/// The filters of the section, as query parameters (empty = all).
#[derive(Debug, Default, Deserialize)]
pub struct SectionParams {
    issued_by: Option<String>,
    role: Option<String>,
    status: Option<String>,
    before: Option<String>,
    after: Option<String>,
    pub confirm_delete: Option<String>,
    token: Option<String>,
    created_with: Option<String>,
    expiring: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub issued_by: Option<UserId>,
    pub role: Option<Role>,
    pub status: Option<TokenStatus>,
    /// `status=all`: deleted tokens too. Without a status, deleted ones are left out: they
    /// would fill the first page of an account that has deleted many.
    pub all_statuses: bool,
    pub cursor: Cursor,
    pub token: Option<TokenId>,
    /// Only the tokens created with this one (what deleting it ends).
    pub created_with: Option<TokenId>,
    pub expiring: bool,
}

/// Where a page of the table starts (keyset paging: a page costs what it shows).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    #[default]
    Newest,
    /// Tokens older than this id.
    Before(TokenId),
    /// The page just newer than this id.
    After(TokenId),
}

fn cursor_id(name: &str, v: &str) -> Result<TokenId, WebError> {
    v.parse::<TokenId>()
        .ok()
        .ok_or_else(|| WebError::BadRequest(format!("\"{name}\" must be a token id, not \"{v}\".")))
}

pub fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Filters {
    pub fn parse(p: &SectionParams) -> Result<Filters, WebError> {
        let issued_by = non_empty(&p.issued_by)
            .map(|v| {
                v.parse::<i64>().map(UserId::new).map_err(|_| {
                    WebError::BadRequest(format!("\"Issued by\" must be a user id, not \"{v}\"."))
                })
            })
            .transpose()?;
        let role = non_empty(&p.role)
            .map(|v| {
                Role::parse(v)
                    .ok_or_else(|| WebError::BadRequest(format!("There is no role \"{v}\".")))
            })
            .transpose()?;
        let all_statuses = non_empty(&p.status) == Some("all");
        let status = non_empty(&p.status)
            .filter(|v| *v != "all")
            .map(|v| {
                TokenStatus::parse(v).ok_or_else(|| {
                    WebError::BadRequest(format!(
                        "Status must be active, expired, deleted or all, not \"{v}\"."
                    ))
                })
            })
            .transpose()?;
        let cursor = match (non_empty(&p.before), non_empty(&p.after)) {
            (None, None) => Cursor::Newest,
            (Some(v), None) => Cursor::Before(cursor_id("before", v)?),
            (None, Some(v)) => Cursor::After(cursor_id("after", v)?),
            (Some(_), Some(_)) => {
                return Err(WebError::BadRequest(
                    "Ask for the tokens before an id or after one, not both.".into(),
                ))
            }
        };
        let token = non_empty(&p.token)
            .map(|v| {
                v.parse::<TokenId>()
                    .map_err(|_| WebError::BadRequest(format!("\"{v}\" is not a token id.")))
            })
            .transpose()?;
        let created_with = non_empty(&p.created_with)
            .map(|v| {
                v.parse::<TokenId>()
                    .map_err(|_| WebError::BadRequest(format!("\"{v}\" is not a token id.")))
            })
            .transpose()?;
        let expiring = match non_empty(&p.expiring) {
            None => false,
            Some("soon") => true,
            Some(v) => {
                return Err(WebError::BadRequest(format!(
                    "\"expiring\" can only be \"soon\", not \"{v}\"."
                )))
            }
        };
        Ok(Filters {
            issued_by,
            role,
            status,
            all_statuses,
            cursor,
            token,
            created_with,
            expiring,
        })
    }

    /// Deleted tokens are left out unless asked for: by status, by id, or as what a delete
    /// ended (`created_with`).
    pub fn hides_deleted(&self) -> bool {
        self.status.is_none()
            && !self.all_statuses
            && self.token.is_none()
            && self.created_with.is_none()
    }

    pub fn is_filtered(&self) -> bool {
        self.issued_by.is_some()
            || self.role.is_some()
            || self.status.is_some()
            || self.all_statuses
            || self.token.is_some()
            || self.created_with.is_some()
            || self.expiring
    }

    /// The section's address with these filters, from `cursor`.
    pub fn url(&self, cursor: Cursor) -> String {
        let mut pairs: Vec<(&str, String)> = vec![];
        if let Some(id) = self.issued_by {
            pairs.push(("issued_by", id.to_string()));
        }
        if let Some(role) = self.role {
            pairs.push(("role", role.id().to_string()));
        }
        if let Some(status) = self.status {
            pairs.push(("status", status.as_str().to_string()));
        } else if self.all_statuses {
            pairs.push(("status", "all".to_string()));
        }
        if let Some(id) = self.token {
            pairs.push(("token", id.to_string()));
        }
        if let Some(id) = self.created_with {
            pairs.push(("created_with", id.to_string()));
        }
        if self.expiring {
            pairs.push(("expiring", "soon".to_string()));
        }
        match cursor {
            Cursor::Newest => {}
            Cursor::Before(id) => pairs.push(("before", id.to_string())),
            Cursor::After(id) => pairs.push(("after", id.to_string())),
        }
        if pairs.is_empty() {
            SECTION.to_string()
        } else {
            format!(
                "{SECTION}?{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            )
        }
    }
}
