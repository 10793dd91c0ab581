//! SCIM 2.0 (RFC 7643/7644) as far as the product speaks it, with no HTTP or SQL: the
//! account's bearer-token format, the `User` resource as JSON and back, the filters and
//! PATCH operations accepted, and `attributes`/`excludedAttributes`.
//!
//! The published `User` schema has exactly the attributes stored: `userName`, `displayName`,
//! `emails` (one address, the one notices go to), `active`, `roles` (one apitokens role, by
//! name) and `externalId`. Other attributes an identity provider sends (`name`, `title`,
//! `phoneNumbers`, ...) are ignored, as RFC 7644 §3.3 allows for attributes outside the schema.

use serde_json::{json, Value};

use super::Role;

mod filter;
mod patch;
mod user;

pub use filter::{parse_filter, Filter};
pub use patch::apply_patch;
pub use user::UserInput;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Largest page of a list (`count` above it is cut to it; ServiceProviderConfig says so).
pub const MAX_RESULTS: i64 = 200;
/// Page size when `count` isn't given.
pub const DEFAULT_COUNT: i64 = 100;
/// Longest `userName` and `externalId` kept.
const ID_MAX: usize = 254;
/// Most PATCH operations in one request.
const MAX_OPERATIONS: usize = 100;

const TOKEN_PREFIX: &str = "scim_";
const TOKEN_RANDOM: usize = 56;

/// An account's SCIM bearer token: `scim_` + 56 random hex digits + the CRC-32 of everything
/// before it (8 hex), so a scanner — and the server, before any database read — can tell it
/// from junk. Only its SHA-256 is stored.
pub fn generate_token() -> String {
    let random = &super::Secret::generate().into_exposed()[..TOKEN_RANDOM];
    let body = format!("{TOKEN_PREFIX}{random}");
    let sum = crc32fast::hash(body.as_bytes());
    format!("{body}{sum:08x}")
}

/// Whether `token` has the shape and checksum of one `generate_token` makes.
pub fn token_shape_ok(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(TOKEN_PREFIX) else {
        return false;
    };
    if rest.len() != TOKEN_RANDOM + 8
        || !rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return false;
    }
    let (body, sum) = token.split_at(TOKEN_PREFIX.len() + TOKEN_RANDOM);
    u32::from_str_radix(sum, 16).is_ok_and(|s| s == crc32fast::hash(body.as_bytes()))
}

/// What a SCIM request got wrong: the HTTP status, RFC 7644's `scimType` and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimProblem {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimProblem {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimProblem {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        ScimProblem::new(400, Some("invalidValue"), detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        ScimProblem::new(400, Some("invalidSyntax"), detail)
    }

    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        body
    }
}

/// A user as SCIM shows them.
#[derive(Debug, Clone)]
pub struct UserView {
    pub id: i64,
    pub user_name: String,
    pub display_name: String,
    pub email: String,
    pub active: bool,
    pub role: Role,
    pub external_id: Option<String>,
    pub created: String,
    /// Where the resource lives (`https://host/scim/v2/Users/7`).
    pub location: String,
}

impl UserView {
    pub fn to_json(&self) -> Value {
        let mut user = json!({
            "schemas": [USER_SCHEMA],
            "id": self.id.to_string(),
            "userName": self.user_name,
            "emails": [{"value": self.email}],
            "active": self.active,
            "roles": [{"value": self.role.name()}],
            "meta": {
                "resourceType": "User",
                "created": self.created,
                "location": self.location,
            },
        });
        if !self.display_name.trim().is_empty() {
            user["displayName"] = json!(self.display_name);
        }
        if let Some(e) = &self.external_id {
            user["externalId"] = json!(e);
        }
        user
    }
}

/// Which attributes a response carries (`attributes` / `excludedAttributes`, RFC 7644
/// §3.4.2.5): top-level names, any case, with or without the schema URN; `emails.value` means
/// `emails`. `id` and `schemas` are always returned.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    only: Option<Vec<String>>,
    except: Vec<String>,
}

impl Projection {
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        let names = |list: &str| -> Vec<String> {
            list.split(',')
                .map(|a| attribute_name(a).split('.').next().unwrap_or("").to_owned())
                .filter(|a| !a.is_empty())
                .collect()
        };
        Projection {
            only: attributes.filter(|a| !a.trim().is_empty()).map(names),
            except: excluded.map(names).unwrap_or_default(),
        }
    }

    pub fn apply(&self, mut resource: Value) -> Value {
        if let Value::Object(obj) = &mut resource {
            obj.retain(|k, _| {
                let name = k.to_ascii_lowercase();
                if name == "id" || name == "schemas" {
                    return true;
                }
                match &self.only {
                    Some(only) => only.contains(&name),
                    None => !self.except.contains(&name),
                }
            });
        }
        resource
    }
}

/// The names an attribute goes by: plain or with the core schema's URN in front, any case.
pub(crate) fn attribute_name(raw: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    let urn = USER_SCHEMA.to_ascii_lowercase();
    match lower.strip_prefix(&urn) {
        Some(rest) => rest.trim_start_matches(':').to_owned(),
        None => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_has_its_shape_and_any_changed_digit_fails() {
        let token = generate_token();
        assert!(token_shape_ok(&token), "{token}");
        assert_eq!(token.len(), 5 + 64);
        for i in 5..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            assert!(
                !token_shape_ok(std::str::from_utf8(&bytes).unwrap()),
                "digit {i}"
            );
        }
        assert!(!token_shape_ok(&token.replace("scim_", "scim-")));
        assert!(!token_shape_ok(&format!("{token}0")));
        assert!(!token_shape_ok(""));
    }

    #[test]
    fn projection_keeps_id_and_schemas_and_honours_the_lists() {
        let view = json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "a", "displayName": "A", "emails": [], "active": true});
        let only = Projection::parse(Some("displayName,emails.value"), None).apply(view.clone());
        let keys: Vec<_> = only.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert!(only.get("userName").is_none());
        let except = Projection::parse(
            None,
            Some("urn:ietf:params:scim:schemas:core:2.0:User:active"),
        )
        .apply(view);
        assert!(except.get("active").is_none() && except.get("userName").is_some());
    }
}
