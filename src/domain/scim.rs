//! SCIM 2.0 (RFC 7643/7644) as far as the product speaks it, with no HTTP or SQL: the
//! account's bearer-token format, the `User` resource as JSON and back, the filters and
//! PATCH operations accepted, and `attributes`/`excludedAttributes`.
//!
//! The published `User` schema has exactly the attributes stored: `userName`, `displayName`,
//! `emails` (one address, the one notices go to), `active`, `roles` (one apitokens role, by
//! name) and `externalId`. Other attributes an identity provider sends (`name`, `title`,
//! `phoneNumbers`, ...) are ignored, as RFC 7644 §3.3 allows for attributes outside the schema.

use serde_json::{json, Map, Value};

use super::input::{Email, PersonName};
use super::Role;

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

/// A `User` as given by the identity provider (POST, PUT, or the result of a PATCH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    pub user_name: String,
    pub display_name: Option<PersonName>,
    pub email: Email,
    /// `None`: not given (a new user is active; a replaced one keeps its state).
    pub active: Option<bool>,
    /// `None`: not given (a new user gets Users; a replaced one keeps their role).
    pub role: Option<Role>,
    pub external_id: Option<String>,
}

/// The names an attribute goes by: plain or with the core schema's URN in front, any case.
fn attribute_name(raw: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    let urn = USER_SCHEMA.to_ascii_lowercase();
    match lower.strip_prefix(&urn) {
        Some(rest) => rest.trim_start_matches(':').to_owned(),
        None => lower,
    }
}

fn string_field(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimProblem> {
    match obj
        .iter()
        .find(|(k, _)| attribute_name(k) == name.to_ascii_lowercase())
    {
        None | Some((_, Value::Null)) => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.clone())),
        Some((k, _)) => Err(ScimProblem::invalid_value(format!("{k} must be a string."))),
    }
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| attribute_name(k) == name.to_ascii_lowercase())
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// A boolean as identity providers send it: `true`, or the string `"True"` (Entra ID).
fn boolean(value: &Value, what: &str) -> Result<bool, ScimProblem> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimProblem::invalid_value(format!(
            "{what} must be true or false."
        ))),
    }
}

/// The one value of a multi-valued attribute (`emails`, `roles`): the `primary` one, else the
/// only one. Each entry is `{"value": ...}` (a bare string is taken too).
fn one_value(value: &Value, what: &str) -> Result<Option<String>, ScimProblem> {
    let entries: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) | Value::String(_) => vec![value],
        Value::Null => vec![],
        _ => {
            return Err(ScimProblem::invalid_value(format!(
                "{what} must be a list of {{\"value\": ...}}."
            )))
        }
    };
    let value_of = |v: &Value| -> Result<Option<String>, ScimProblem> {
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Object(o) => string_field(o, "value"),
            _ => Err(ScimProblem::invalid_value(format!(
                "{what} must be a list of {{\"value\": ...}}."
            ))),
        }
    };
    let primary: Vec<&Value> = entries
        .iter()
        .copied()
        .filter(|v| {
            v.as_object()
                .and_then(|o| field(o, "primary"))
                .is_some_and(|p| boolean(p, "primary").unwrap_or(false))
        })
        .collect();
    match (primary.as_slice(), entries.as_slice()) {
        ([one], _) => value_of(one),
        ([], []) => Ok(None),
        ([], [one]) => value_of(one),
        _ => Err(ScimProblem::invalid_value(format!(
            "{what}: a user here has one; send one value, or mark one \"primary\": true."
        ))),
    }
}

impl UserInput {
    /// Reads a `User` body. Attributes outside the schema are ignored; `id` and `meta` too
    /// (they are the server's).
    pub fn from_json(body: &Value) -> Result<UserInput, ScimProblem> {
        let Value::Object(obj) = body else {
            return Err(ScimProblem::invalid_syntax(
                "The body must be a JSON object (a SCIM User).",
            ));
        };
        if let Some(schemas) = obj.get("schemas") {
            let listed = schemas
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(USER_SCHEMA)));
            if !listed {
                return Err(ScimProblem::invalid_syntax(format!(
                    "schemas must list \"{USER_SCHEMA}\"."
                )));
            }
        }
        let user_name = string_field(obj, "userName")?
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ScimProblem::invalid_value("userName is required."))?;
        if user_name.chars().count() > ID_MAX || user_name.chars().any(char::is_control) {
            return Err(ScimProblem::invalid_value(format!(
                "userName is at most {ID_MAX} characters, without control characters."
            )));
        }
        let display_name = match string_field(obj, "displayName")? {
            Some(s) if !s.trim().is_empty() => Some(
                PersonName::parse(&s)
                    .map_err(|m| ScimProblem::invalid_value(format!("displayName: {m}")))?,
            ),
            _ => None,
        };
        let email = match field(obj, "emails") {
            Some(v) => one_value(v, "emails")?,
            None => None,
        };
        let email = match email {
            Some(e) => {
                Email::parse(&e).map_err(|m| ScimProblem::invalid_value(format!("emails: {m}")))?
            }
            // Without emails, a userName that is an address is the address.
            None => Email::parse(&user_name).map_err(|_| {
                ScimProblem::invalid_value(
                    "emails is required: every user here has an e-mail address (notices go there).",
                )
            })?,
        };
        let active = field(obj, "active")
            .map(|v| boolean(v, "active"))
            .transpose()?;
        let role = match field(obj, "roles") {
            Some(v) => match one_value(v, "roles")? {
                Some(name) => Some(Role::from_name(&name).ok_or_else(|| {
                    ScimProblem::invalid_value(format!(
                        "roles: \"{name}\" is not a role here; use one of {}.",
                        Role::ALL.map(|r| format!("\"{}\"", r.name())).join(", ")
                    ))
                })?),
                None => None,
            },
            None => None,
        };
        let external_id = string_field(obj, "externalId")?.filter(|s| !s.is_empty());
        if external_id
            .as_ref()
            .is_some_and(|s| s.chars().count() > ID_MAX || s.chars().any(char::is_control))
        {
            return Err(ScimProblem::invalid_value(format!(
                "externalId is at most {ID_MAX} characters, without control characters."
            )));
        }
        Ok(UserInput {
            user_name,
            display_name,
            email,
            active,
            role,
            external_id,
        })
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

/// The filters `GET /Users` takes: one comparison `<attribute> eq <value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Any case (userName is not case-exact).
    UserName(String),
    /// Any case.
    Email(String),
    /// Exact.
    ExternalId(String),
    Id(i64),
    Active(bool),
    /// Matches nothing (an id that isn't a number).
    Nothing,
}

/// Parses `userName eq "alice@example.com"` and its kin (`externalId`, `emails`/
/// `emails.value`, `id`, `active`). Anything else is refused as RFC 7644's `invalidFilter`.
pub fn parse_filter(raw: &str) -> Result<Filter, ScimProblem> {
    let bad = |why: &str| {
        ScimProblem::new(
            400,
            Some("invalidFilter"),
            format!(
                "{why} Filters here are one comparison with eq: userName, externalId, emails.value, id or active, e.g. userName eq \"alice@example.com\"."
            ),
        )
    };
    let raw = raw.trim();
    let mut parts = raw.splitn(3, char::is_whitespace);
    let (Some(attr), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("The filter could not be read."));
    };
    if !op.eq_ignore_ascii_case("eq") {
        return Err(bad(&format!("The operator \"{op}\" isn't supported.")));
    }
    let value: Value = serde_json::from_str(value.trim())
        .map_err(|_| bad("The value must be a JSON string in double quotes, true or false."))?;
    let text = || {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad("The value must be a string in double quotes."))
    };
    match attribute_name(attr).as_str() {
        "username" => Ok(Filter::UserName(text()?)),
        "emails" | "emails.value" => Ok(Filter::Email(text()?)),
        "externalid" => Ok(Filter::ExternalId(text()?)),
        "id" => Ok(text()?.parse().map(Filter::Id).unwrap_or(Filter::Nothing)),
        "active" => match value {
            Value::Bool(b) => Ok(Filter::Active(b)),
            _ => Err(bad("active compares with true or false.")),
        },
        _ => Err(bad(&format!(
            "The attribute \"{attr}\" can't be filtered on."
        ))),
    }
}

/// Applies a PATCH request (RFC 7644 §3.5.2) to the user's current representation; the
/// result is then read with `UserInput::from_json` like a PUT. `add` and `replace` set a
/// value (a user has one e-mail and one role, so adding to them replaces them); `remove`
/// clears it, and removing `roles` goes back to the default role, Users.
pub fn apply_patch(current: &mut Value, body: &Value) -> Result<(), ScimProblem> {
    let Some(obj) = body.as_object() else {
        return Err(ScimProblem::invalid_syntax(
            "The body must be a JSON object (a SCIM PatchOp).",
        ));
    };
    let schemas_ok = obj
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(PATCH_SCHEMA)));
    if !schemas_ok {
        return Err(ScimProblem::invalid_syntax(format!(
            "schemas must be [\"{PATCH_SCHEMA}\"]."
        )));
    }
    let ops = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("operations"))
        .and_then(|(_, v)| v.as_array())
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| ScimProblem::invalid_syntax("Operations must be a non-empty list."))?;
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimProblem::invalid_syntax(format!(
            "At most {MAX_OPERATIONS} operations per request."
        )));
    }
    let Value::Object(user) = current else {
        return Err(ScimProblem::invalid_syntax("The user could not be read."));
    };
    for op in ops {
        let op = op
            .as_object()
            .ok_or_else(|| ScimProblem::invalid_syntax("Each operation must be an object."))?;
        let kind = op
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("op"))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| {
                ScimProblem::invalid_syntax("Each operation needs \"op\": add, replace or remove.")
            })?;
        let path = op
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("path"))
            .map(|(_, v)| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ScimProblem::new(400, Some("invalidPath"), "path must be a string.")
                })
            })
            .transpose()?;
        let value = op
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("value"))
            .map(|(_, v)| v.clone());
        match (kind.as_str(), path) {
            ("add" | "replace", Some(path)) => {
                let value = value.ok_or_else(|| {
                    ScimProblem::invalid_syntax(format!("\"{kind}\" needs a value."))
                })?;
                set_path(user, &path, Some(value))?;
            }
            ("add" | "replace", None) => {
                let Some(Value::Object(values)) = value else {
                    return Err(ScimProblem::invalid_syntax(format!(
                        "\"{kind}\" without a path needs an object of attributes as its value."
                    )));
                };
                for (name, v) in values {
                    set_path(user, &name, Some(v))?;
                }
            }
            ("remove", Some(path)) => set_path(user, &path, None)?,
            ("remove", None) => {
                return Err(ScimProblem::new(
                    400,
                    Some("noTarget"),
                    "\"remove\" needs a path.",
                ))
            }
            _ => {
                return Err(ScimProblem::invalid_syntax(format!(
                    "\"{kind}\" is not an operation; use add, replace or remove."
                )))
            }
        }
    }
    Ok(())
}

/// Sets (`Some`) or removes (`None`) the attribute a PATCH path names. Paths: `userName`,
/// `displayName`, `active`, `externalId`, `emails`, `roles`, and for the last two `.value`
/// or `[<filter>].value` (which one doesn't matter: a user has one).
fn set_path(
    user: &mut Map<String, Value>,
    path: &str,
    value: Option<Value>,
) -> Result<(), ScimProblem> {
    let name = attribute_name(path);
    let (base, rest) = match name.find(['.', '[']) {
        Some(at) => (&name[..at], &name[at..]),
        None => (name.as_str(), ""),
    };
    let key = match base {
        "username" => "userName",
        "displayname" => "displayName",
        "active" => "active",
        "externalid" => "externalId",
        "emails" => "emails",
        "roles" => "roles",
        // Outside the schema (name, title, phoneNumbers, an extension's URN...): nothing
        // here keeps it.
        _ if base.starts_with("urn:") => return Ok(()),
        _ if !base.is_empty()
            && base
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '$' || c == '-' || c == '_') =>
        {
            return Ok(())
        }
        _ => {
            return Err(ScimProblem::new(
                400,
                Some("invalidPath"),
                format!("The path \"{path}\" could not be read."),
            ))
        }
    };
    let multi = key == "emails" || key == "roles";
    if !rest.is_empty() {
        let sub_ok = multi && {
            let after_filter = match rest.strip_prefix('[') {
                Some(r) => r.split_once(']').map(|(_, after)| after).ok_or_else(|| {
                    ScimProblem::new(
                        400,
                        Some("invalidPath"),
                        format!("The path \"{path}\" could not be read."),
                    )
                })?,
                None => rest,
            };
            after_filter.is_empty() || after_filter == ".value"
        };
        if !sub_ok {
            if !multi {
                return Err(ScimProblem::new(
                    400,
                    Some("invalidPath"),
                    format!("{key} has no sub-attributes."),
                ));
            }
            // emails[...].type, .primary, .display: not kept.
            return Ok(());
        }
    }
    match value {
        None if key == "active" => {
            return Err(ScimProblem::new(
                400,
                Some("mutability"),
                "active can't be removed: set it to true or false.",
            ))
        }
        None if key == "roles" => {
            user.insert(key.into(), json!([{ "value": Role::Users.name() }]));
        }
        None => {
            user.remove(key);
        }
        Some(v) if multi && !v.is_array() && !v.is_object() => {
            user.insert(key.into(), json!([{ "value": v }]));
        }
        Some(Value::Object(o)) if multi => {
            user.insert(key.into(), Value::Array(vec![Value::Object(o)]));
        }
        Some(v) => {
            user.insert(key.into(), v);
        }
    }
    Ok(())
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

    fn alice() -> Value {
        json!({"schemas": [USER_SCHEMA], "userName": "alice", "displayName": "Alice",
               "emails": [{"value": "Alice@Example.com", "type": "work", "primary": true}],
               "roles": [{"value": "engineers"}], "externalId": "00u1", "name": {"givenName": "A"}})
    }

    #[test]
    fn a_user_body_is_read_with_its_one_email_and_role() {
        let u = UserInput::from_json(&alice()).unwrap();
        assert_eq!(u.user_name, "alice");
        assert_eq!(u.email.as_str(), "alice@example.com");
        assert_eq!(u.role, Some(Role::Engineers));
        assert_eq!(u.active, None);
        assert_eq!(u.external_id.as_deref(), Some("00u1"));
        assert_eq!(u.display_name.unwrap().as_str(), "Alice");
    }

    #[test]
    fn bad_user_bodies_are_refused_with_the_attribute_named() {
        let cases = [
            (json!({"emails": [{"value": "a@b.c"}]}), "userName"),
            (json!({"userName": "bob"}), "emails"),
            (
                json!({"userName": "bob", "emails": [{"value": "not an address"}]}),
                "emails",
            ),
            (
                json!({"userName": "bob@x.test", "roles": [{"value": "Root"}]}),
                "roles",
            ),
            (
                json!({"userName": "bob@x.test", "roles": [{"value": "Users"}, {"value": "Engineers"}]}),
                "roles",
            ),
            (
                json!({"userName": "bob@x.test", "active": "maybe"}),
                "active",
            ),
            (json!({"userName": "x".repeat(300) + "@x.test"}), "userName"),
            (
                json!({"userName": "bob@x.test", "schemas": ["urn:other"]}),
                "schemas",
            ),
            (json!([1, 2]), "object"),
        ];
        for (body, named) in cases {
            let e = UserInput::from_json(&body).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.detail.contains(named), "{body}: {}", e.detail);
        }
        // A userName that is an address stands in for emails.
        let u = UserInput::from_json(&json!({"userName": "Bob@X.test"})).unwrap();
        assert_eq!(u.email.as_str(), "bob@x.test");
    }

    #[test]
    fn filters_read_one_eq_comparison_and_refuse_the_rest() {
        assert_eq!(
            parse_filter("userName eq \"a@b.c\"").unwrap(),
            Filter::UserName("a@b.c".into())
        );
        assert_eq!(
            parse_filter("urn:ietf:params:scim:schemas:core:2.0:User:userName EQ \"x y\"").unwrap(),
            Filter::UserName("x y".into())
        );
        assert_eq!(
            parse_filter("emails.value eq \"a@b.c\"").unwrap(),
            Filter::Email("a@b.c".into())
        );
        assert_eq!(
            parse_filter("externalId eq \"00u\"").unwrap(),
            Filter::ExternalId("00u".into())
        );
        assert_eq!(parse_filter("id eq \"12\"").unwrap(), Filter::Id(12));
        assert_eq!(parse_filter("id eq \"zz\"").unwrap(), Filter::Nothing);
        assert_eq!(
            parse_filter("active eq false").unwrap(),
            Filter::Active(false)
        );
        for bad in [
            "userName sw \"a\"",
            "userName eq a",
            "title eq \"x\"",
            "userName",
            "",
            "a eq \"b\" and c eq \"d\"",
        ] {
            let e = parse_filter(bad).unwrap_err();
            assert_eq!(e.scim_type, Some("invalidFilter"), "{bad}");
        }
    }

    fn patch(ops: Value) -> Value {
        json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
    }

    #[test]
    fn patches_from_okta_and_entra_land_on_the_attributes() {
        let mut u = alice();
        apply_patch(
            &mut u,
            &patch(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .unwrap();
        assert_eq!(u["active"], json!(false));
        apply_patch(
            &mut u,
            &patch(json!([{"op": "Replace", "path": "active", "value": "True"}])),
        )
        .unwrap();
        assert_eq!(UserInput::from_json(&u).unwrap().active, Some(true));
        apply_patch(
            &mut u,
            &patch(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x.test"}])),
        )
        .unwrap();
        assert_eq!(
            UserInput::from_json(&u).unwrap().email.as_str(),
            "new@x.test"
        );
        apply_patch(
            &mut u,
            &patch(json!([{"op": "add", "path": "roles", "value": [{"value": "Administrators"}]}])),
        )
        .unwrap();
        assert_eq!(
            UserInput::from_json(&u).unwrap().role,
            Some(Role::Administrators)
        );
        apply_patch(&mut u, &patch(json!([{"op": "remove", "path": "roles"}]))).unwrap();
        assert_eq!(UserInput::from_json(&u).unwrap().role, Some(Role::Users));
        apply_patch(&mut u, &patch(json!([{"op": "remove", "path": "displayName"}, {"op": "replace", "path": "name.givenName", "value": "Al"}]))).unwrap();
        assert!(UserInput::from_json(&u).unwrap().display_name.is_none());
    }

    #[test]
    fn malformed_patches_are_refused() {
        let mut u = alice();
        for body in [
            json!({"Operations": [{"op": "remove", "path": "displayName"}]}),
            patch(json!([])),
            patch(json!([{"op": "move", "path": "active"}])),
            patch(json!([{"op": "remove"}])),
            patch(json!([{"op": "add", "path": "active"}])),
            patch(json!([{"op": "add", "value": 3}])),
            patch(json!([{"op": "add", "path": "userName.x", "value": "a"}])),
            patch(json!([{"op": "add", "path": "emails[type eq \"work\".value", "value": "a"}])),
            patch(json!([{"op": "remove", "path": "active"}])),
        ] {
            assert_eq!(
                apply_patch(&mut u, &body).unwrap_err().status,
                400,
                "{body}"
            );
        }
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
