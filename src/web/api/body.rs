//! Typed request bodies that still answer field by field.
//!
//! Gcore's 400 bodies name each field that is wrong, and tell "missing" from "of the wrong
//! type". A plain `Option<String>` field would fail the whole body on the first wrong type, so
//! DTO fields are `Field<T>`: absent, `null`, a `T`, or some other JSON value. Each DTO then
//! becomes a domain input with `TryFrom`, collecting every problem into `BodyErrors`.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use super::error::ApiError;

/// A JSON object body read into the DTO `T`. Anything but an object is refused with Gcore's
/// `non_field_errors` (serde would otherwise read a struct from an array, by position);
/// unreadable or oversized JSON is answered by the `JsonConfig` of `api::configure`.
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            if !value.is_object() {
                return Err(ApiError::field("non_field_errors", "Expected a JSON object.").into());
            }
            serde_json::from_value(value).map(JsonBody).map_err(|e| {
                ApiError::field(
                    "non_field_errors",
                    format!("The body could not be read: {e}"),
                )
                .into()
            })
        })
    }
}

/// One field of a JSON body, as it was sent.
#[derive(Debug, Default, Clone)]
pub enum Field<T> {
    /// Not in the body (with `#[serde(default)]` on the DTO field).
    #[default]
    Absent,
    Null,
    Value(T),
    /// Present, but not a `T`.
    WrongType(Value),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        if value.is_null() {
            return Ok(Field::Null);
        }
        Ok(match T::deserialize(&value) {
            Ok(v) => Field::Value(v),
            Err(_) => Field::WrongType(value),
        })
    }
}

/// A role as sent: `{"id": 5}`, `{"name": "Engineers"}` or both; an id may be a string.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RoleBody {
    #[serde(default)]
    pub id: Field<Value>,
    #[serde(default)]
    pub name: Field<Value>,
}

impl TryFrom<RoleBody> for crate::domain::Role {
    type Error = String;

    /// An unknown id or name, or an id and a name of two different roles, is
    /// `Invalid role: ...`; neither is "required".
    fn try_from(body: RoleBody) -> Result<Self, String> {
        use crate::domain::Role;
        let by_id = match body.id {
            Field::Absent | Field::Null => None,
            Field::Value(v) | Field::WrongType(v) => {
                let shown = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                let id = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
                Some(
                    id.and_then(|id| i32::try_from(id).ok())
                        .and_then(Role::from_id)
                        .ok_or(format!("Invalid role: {shown}"))?,
                )
            }
        };
        let by_name = match body.name {
            Field::Absent | Field::Null => None,
            Field::Value(Value::String(s)) => {
                Some(Role::from_name(&s).ok_or(format!("Invalid role: {s}"))?)
            }
            Field::Value(v) | Field::WrongType(v) => return Err(format!("Invalid role: {v}")),
        };
        match (by_id, by_name) {
            (Some(a), Some(b)) if a != b => Err(format!(
                "Invalid role: id {} and name {} are different roles",
                a.id(),
                b.name()
            )),
            (Some(r), _) | (None, Some(r)) => Ok(r),
            (None, None) => Err("This field is required.".into()),
        }
    }
}

/// The problems of one body, by field (a path for nested fields such as `client_user.role`).
#[derive(Debug, Default)]
pub struct BodyErrors(Map<String, Value>);

impl BodyErrors {
    pub fn add(&mut self, path: &[&str], message: impl Into<String>) {
        let (last, parents) = path.split_last().expect("a field path");
        let mut map = &mut self.0;
        for key in parents {
            map = map
                .entry(key.to_string())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("nested errors are objects");
        }
        let list = map.entry(last.to_string()).or_insert_with(|| json!([]));
        if let Value::Array(list) = list {
            list.push(Value::String(message.into()));
        }
    }

    /// Keeps the first message of a field, as the old hand-walked parsers did.
    pub fn set(&mut self, field: &str, message: impl Into<String>) {
        self.0.insert(field.into(), json!([message.into()]));
    }

    /// `Ok(value)` when nothing was wrong, else the 400 answer.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(ApiError::Validation(Value::Object(self.0))),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A raw body of at most `max` bytes, read as it arrives: past `max`, 413 with `too_large`
/// before another byte is read (for the endpoints that take more than the JSON limit).
pub async fn read_limited(
    payload: &mut web::Payload,
    max: usize,
    too_large: &str,
) -> Result<web::BytesMut, ApiError> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::Validation(
                serde_json::json!({ "body": [format!("The body could not be read: {e}.")] }),
            )
        })?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::TooLarge(too_large.to_owned()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        name: Field<String>,
    }

    fn probe(body: Value) -> Field<String> {
        serde_json::from_value::<Probe>(body).unwrap().name
    }

    #[test]
    fn fields_tell_absent_null_value_and_wrong_type_apart() {
        assert!(matches!(probe(json!({})), Field::Absent));
        assert!(matches!(probe(json!({"name": null})), Field::Null));
        assert!(matches!(probe(json!({"name": "x"})), Field::Value(v) if v == "x"));
        assert!(matches!(probe(json!({"name": 5})), Field::WrongType(v) if v == json!(5)));
    }

    #[test]
    fn errors_nest_by_path() {
        let mut e = BodyErrors::default();
        e.add(&["client_user", "role"], "Invalid role: 9");
        e.add(&["name"], "Enter a token name.");
        let Err(ApiError::Validation(v)) = e.finish::<()>(None) else {
            panic!("expected a validation error")
        };
        assert_eq!(
            v,
            json!({"client_user": {"role": ["Invalid role: 9"]}, "name": ["Enter a token name."]})
        );
    }
}
