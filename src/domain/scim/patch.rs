//! SCIM PATCH (`add`, `remove`, `replace`) applied to a user's JSON, in the shapes Okta and
//! Entra ID send, refused operation by operation when malformed.

use serde_json::{json, Map, Value};

use super::*;
use crate::domain::Role;

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
pub(crate) fn set_path(
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
    use crate::domain::scim::user::tests::alice;
    use serde_json::json;

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
}
