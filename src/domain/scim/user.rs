//! A SCIM `User` body read into what is stored: `userName`, `displayName`, one e-mail, one
//! role, `active`, `externalId`; everything else named is refused or ignored as RFC 7644 allows.

use serde_json::{Map, Value};

use super::*;
use crate::domain::input::{Email, PersonName};
use crate::domain::Role;

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

pub(crate) fn string_field(
    obj: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ScimProblem> {
    match obj
        .iter()
        .find(|(k, _)| attribute_name(k) == name.to_ascii_lowercase())
    {
        None | Some((_, Value::Null)) => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.clone())),
        Some((k, _)) => Err(ScimProblem::invalid_value(format!("{k} must be a string."))),
    }
}

pub(crate) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| attribute_name(k) == name.to_ascii_lowercase())
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// A boolean as identity providers send it: `true`, or the string `"True"` (Entra ID).
pub(crate) fn boolean(value: &Value, what: &str) -> Result<bool, ScimProblem> {
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
pub(crate) fn one_value(value: &Value, what: &str) -> Result<Option<String>, ScimProblem> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn alice() -> Value {
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
}
