//! What `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` publish (RFC 7643 §5–7).
//! The `User` schema lists exactly what `domain::scim` reads and writes; the three schemas
//! that describe the discovery resources themselves follow RFC 7643 §8.7.2.

use serde_json::{json, Value};

use crate::domain::scim::{MAX_RESULTS, USER_SCHEMA};
use crate::domain::Role;

pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// An attribute definition; `extra` adds or overrides fields (required, mutability, ...).
fn attr(name: &str, kind: &str, description: &str, extra: Value) -> Value {
    let mut a = json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": false,
        "caseExact": false,
        "mutability": "readOnly",
        "returned": "default",
        "uniqueness": "none",
    });
    if let (Some(a), Value::Object(extra)) = (a.as_object_mut(), extra) {
        a.extend(extra);
    }
    a
}

fn schema(id: &str, name: &str, description: &str, attributes: Vec<Value>, base: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/scim/v2/Schemas/{id}")},
    })
}

pub fn user_schema(base: &str) -> Value {
    let rw = |extra: Value| {
        let mut e = json!({"mutability": "readWrite"});
        if let (Some(e), Value::Object(extra)) = (e.as_object_mut(), extra) {
            e.extend(extra);
        }
        e
    };
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
    schema(
        USER_SCHEMA,
        "User",
        "A person of the account",
        vec![
            attr("userName", "string", "The identity provider's unique name for the person; the e-mail address if it doesn't say otherwise.",
                 rw(json!({"required": true, "uniqueness": "server"}))),
            attr("displayName", "string", "The name shown in the portal (at most 100 characters).", rw(json!({}))),
            attr("emails", "complex", "The person's one e-mail address: sign-in and notices go there.",
                 rw(json!({"multiValued": true, "required": true, "subAttributes": [
                     attr("value", "string", "The e-mail address.", rw(json!({"required": true}))),
                 ]}))),
            attr("active", "boolean", "false deprovisions the person: removed from the account, every token they issued deleted; true gives access back (never the tokens). Always set (true when not given).", rw(json!({"required": true}))),
            attr("roles", "complex", "The person's one apitokens role, by name; Users when not given.",
                 rw(json!({"multiValued": true, "required": true, "subAttributes": [
                     attr("value", "string", "The role's name.", rw(json!({"required": true, "canonicalValues": roles}))),
                 ]}))),
        ],
        base,
    )
}

fn meta_schemas(base: &str) -> Vec<Value> {
    let sub = |name: &str, kind: &str, d: &str| attr(name, kind, d, json!({}));
    let multi = |name: &str, kind: &str, d: &str, extra: Value| {
        let mut e = json!({"multiValued": true});
        if let (Some(e), Value::Object(extra)) = (e.as_object_mut(), extra) {
            e.extend(extra);
        }
        attr(name, kind, d, e)
    };
    let supported = |name: &str, d: &str, more: Vec<Value>| {
        let mut subs = vec![attr(
            "supported",
            "boolean",
            "Whether it is supported.",
            json!({"required": true}),
        )];
        subs.extend(more);
        attr(
            name,
            "complex",
            d,
            json!({"required": true, "subAttributes": subs}),
        )
    };
    let attribute_subs = |nested: bool| {
        let mut subs = vec![
            attr(
                "name",
                "string",
                "The attribute's name.",
                json!({"required": true, "caseExact": true}),
            ),
            attr(
                "type",
                "string",
                "The attribute's data type.",
                json!({"required": true, "canonicalValues": ["string", "complex", "boolean", "decimal", "integer", "dateTime", "reference", "binary"]}),
            ),
            sub("multiValued", "boolean", "Whether it has several values."),
            sub("description", "string", "What it is."),
            sub("required", "boolean", "Whether it must be given."),
            multi("canonicalValues", "string", "Suggested values.", json!({})),
            sub("caseExact", "boolean", "Whether case matters."),
            sub(
                "mutability",
                "string",
                "Whether and when it can be written.",
            ),
            sub("returned", "string", "When it is returned."),
            sub("uniqueness", "string", "How unique it is."),
            multi(
                "referenceTypes",
                "string",
                "What a reference may point to.",
                json!({}),
            ),
        ];
        if nested {
            subs.push(multi("subAttributes", "complex", "The sub-attributes of a complex attribute.", json!({"subAttributes": [
                attr("name", "string", "The attribute's name.", json!({"required": true, "caseExact": true})),
                attr("type", "string", "The attribute's data type.", json!({"required": true})),
                sub("multiValued", "boolean", "Whether it has several values."),
                sub("description", "string", "What it is."),
                sub("required", "boolean", "Whether it must be given."),
                multi("canonicalValues", "string", "Suggested values.", json!({})),
                sub("caseExact", "boolean", "Whether case matters."),
                sub("mutability", "string", "Whether and when it can be written."),
                sub("returned", "string", "When it is returned."),
                sub("uniqueness", "string", "How unique it is."),
                multi("referenceTypes", "string", "What a reference may point to.", json!({})),
            ]})));
        }
        subs
    };
    vec![
        schema(
            SPC_SCHEMA,
            "ServiceProviderConfig",
            "The SCIM features this server supports",
            vec![
                attr(
                    "documentationUri",
                    "reference",
                    "Where the documentation is.",
                    json!({"referenceTypes": ["external"]}),
                ),
                supported("patch", "PATCH support.", vec![]),
                supported(
                    "bulk",
                    "Bulk support.",
                    vec![
                        attr(
                            "maxOperations",
                            "integer",
                            "Most operations in a bulk request.",
                            json!({"required": true}),
                        ),
                        attr(
                            "maxPayloadSize",
                            "integer",
                            "Largest bulk payload.",
                            json!({"required": true}),
                        ),
                    ],
                ),
                supported(
                    "filter",
                    "Filter support.",
                    vec![attr(
                        "maxResults",
                        "integer",
                        "Most resources in one answer.",
                        json!({"required": true}),
                    )],
                ),
                supported("changePassword", "Password change support.", vec![]),
                supported("sort", "Sort support.", vec![]),
                supported("etag", "ETag support.", vec![]),
                multi(
                    "authenticationSchemes",
                    "complex",
                    "How clients authenticate.",
                    json!({"required": true, "subAttributes": [
                        attr("type", "string", "The scheme's type.", json!({"required": true})),
                        attr("name", "string", "The scheme's name.", json!({"required": true})),
                        attr("description", "string", "What it is.", json!({"required": true})),
                        attr("specUri", "reference", "Its specification.", json!({"referenceTypes": ["external"]})),
                        attr("documentationUri", "reference", "Its documentation.", json!({"referenceTypes": ["external"]})),
                        sub("primary", "boolean", "Whether it is the primary scheme."),
                    ]}),
                ),
            ],
            base,
        ),
        schema(
            RESOURCE_TYPE_SCHEMA,
            "ResourceType",
            "A type of resource this server serves",
            vec![
                sub("id", "string", "The resource type's id."),
                attr(
                    "name",
                    "string",
                    "The resource type's name.",
                    json!({"required": true}),
                ),
                sub("description", "string", "What it is."),
                attr(
                    "endpoint",
                    "reference",
                    "Where its resources are.",
                    json!({"required": true, "referenceTypes": ["uri"]}),
                ),
                attr(
                    "schema",
                    "reference",
                    "Its core schema.",
                    json!({"required": true, "caseExact": true, "referenceTypes": ["uri"]}),
                ),
                multi(
                    "schemaExtensions",
                    "complex",
                    "Its schema extensions.",
                    json!({"subAttributes": [
                        attr("schema", "reference", "The extension's schema.", json!({"required": true, "caseExact": true, "referenceTypes": ["uri"]})),
                        attr("required", "boolean", "Whether the extension is required.", json!({"required": true})),
                    ]}),
                ),
            ],
            base,
        ),
        schema(
            SCHEMA_SCHEMA,
            "Schema",
            "A schema of this server",
            vec![
                attr(
                    "id",
                    "string",
                    "The schema's URI.",
                    json!({"required": true, "caseExact": true}),
                ),
                sub("name", "string", "The schema's name."),
                sub("description", "string", "What it is."),
                multi(
                    "attributes",
                    "complex",
                    "The schema's attributes.",
                    json!({"required": true, "subAttributes": attribute_subs(true)}),
                ),
            ],
            base,
        ),
    ]
}

/// Every schema: the User schema first.
pub fn schemas(base: &str) -> Vec<Value> {
    let mut all = vec![user_schema(base)];
    all.extend(meta_schemas(base));
    all
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "The people of the account",
        "schema": USER_SCHEMA,
        "schemaExtensions": [],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/scim/v2/ResourceTypes/User")},
    })]
}

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": format!("{base}/scim/v2/Schemas"),
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "SCIM token",
            "description": "The account's SCIM token (Users page or `apitokens scim-token`), sent as `Authorization: Bearer <token>`.",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/scim/v2/ServiceProviderConfig")},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_and_resource_type_names_itself_and_where_it_lives() {
        let all = schemas("https://t.example");
        let names: Vec<&str> = all.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["User", "ServiceProviderConfig", "ResourceType", "Schema"]
        );
        for s in &all {
            let id = s["id"].as_str().unwrap();
            assert!(s["meta"]["location"].as_str().unwrap().ends_with(id));
            for a in s["attributes"].as_array().unwrap() {
                assert!(a["name"].is_string() && a["type"].is_string(), "{a}");
            }
        }
        assert_eq!(resource_types("x")[0]["schema"], USER_SCHEMA);
    }

    #[test]
    fn the_user_schema_offers_every_role_by_name() {
        let user = user_schema("x");
        let roles = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "roles")
            .unwrap();
        let values = &roles["subAttributes"][0]["canonicalValues"];
        assert_eq!(values.as_array().unwrap().len(), Role::ALL.len());
    }
}
