//! The wire format of every JSON endpoint as a snapshot (`tests/it/snapshots/`), so a change
//! of a field, a type or a message is a reviewed diff (`cargo insta review`). Times, JWTs and
//! token secrets differ per run and are replaced by placeholders; everything else is exact,
//! and the same snapshots hold on SQLite and PostgreSQL.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::Duration;

use apitokens::domain::Role;

use crate::helpers::{token_id, Acme, Reply, PASSWORD};

/// Placeholders for what changes from run to run.
fn stable(value: &Value) -> Value {
    match value {
        Value::String(s) => {
            let is_time = s.len() >= 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T';
            let is_jwt = s.starts_with("eyJ") && s.matches('.').count() == 2;
            let secret = s.split_once(['_', '$']).filter(|(id, secret)| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && secret.len() == 64
            });
            if is_time {
                json!("[time]")
            } else if is_jwt {
                json!("[jwt]")
            } else if let Some((id, _)) = secret {
                let sep = &s[id.len()..id.len() + 1];
                json!(format!("{id}{sep}[secret]"))
            } else {
                value.clone()
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(stable).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), stable(v))).collect())
        }
        other => other.clone(),
    }
}

/// One answer as a snapshot: its status and its body.
fn snap(name: &str, reply: &Reply) {
    let shown = json!({ "status": reply.status.as_u16(), "body": stable(&reply.json) });
    insta::assert_json_snapshot!(name, shown);
}

#[tokio::test]
async fn token_endpoints() {
    let Acme { app, admin } = Acme::start().await;
    let user = app.acme_member("user", Role::Users).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let acme = admin.account_id;
    let exp = apitokens::web::api::model::rfc3339(app.clock().now() + Duration::days(30));
    for (version, prefix) in [("v1", "/iam/clients"), ("v2", "/iam/v2/clients")] {
        let created = api
            .post(
                &format!("{prefix}/{acme}/tokens"),
                json!({"name": format!("CI {version}"), "description": "GitLab runner",
                       "exp_date": exp, "client_user": {"role": {"id": 5}}}),
            )
            .await;
        snap(&format!("tokens_create_{version}"), &created);
        let id = created.json["id"].as_i64().unwrap();
        snap(
            &format!("tokens_get_{version}"),
            &api.get(&format!("{prefix}/{acme}/tokens/{id}")).await,
        );
    }
    app.token_for(&user, Role::Users).await;
    snap(
        "tokens_list",
        &api.get(&format!("/iam/v2/clients/{acme}/tokens")).await,
    );
    snap(
        "tokens_list_filtered",
        &api.get(&format!(
            "/iam/v2/clients/{acme}/tokens?role=Users&status=active"
        ))
        .await,
    );
    snap(
        "tokens_list_bad_filters",
        &api.get(&format!(
            "/iam/v2/clients/{acme}/tokens?issued_by=abc&status=gone&role=Root"
        ))
        .await,
    );
    snap(
        "tokens_create_invalid",
        &api.post(
            &format!("/iam/v2/clients/{acme}/tokens"),
            json!({"name": "", "description": 5, "exp_date": "next week", "client_user": {"role": {"id": 999}}}),
        )
        .await,
    );
    snap(
        "tokens_create_not_an_object",
        &api.post(&format!("/iam/v2/clients/{acme}/tokens"), json!([1, 2]))
            .await,
    );
    let low = app.api_as(&user, Role::Users).await;
    snap(
        "tokens_create_above_own_role",
        &low.post(
            &format!("/iam/v2/clients/{acme}/tokens"),
            json!({"name": "x", "exp_date": null, "client_user": {"role": {"id": 1}}}),
        )
        .await,
    );
    let victim = app.token_for(&admin, Role::Users).await;
    let path = format!("/iam/v2/clients/{acme}/tokens/{}", token_id(&victim));
    snap("tokens_delete", &api.delete(&path).await);
    snap(
        "tokens_get_other_account",
        &api.get(&format!("/iam/v2/clients/{}/tokens/1", acme + 1))
            .await,
    );
    snap("unauthorized", &app.api("APIKey nope").get(&path).await);
    snap("not_found_under_iam", &api.get("/iam/nothing/here").await);
}

#[tokio::test]
async fn user_and_account_endpoints() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let acme = admin.account_id;
    snap("users_me", &api.get("/iam/users/me").await);
    snap(
        "users_one",
        &api.get(&format!("/iam/users/{}", eng.id)).await,
    );
    snap("users_list", &api.get("/iam/users").await);
    snap(
        "users_list_page",
        &api.get("/iam/users?limit=1&offset=1").await,
    );
    snap("clients_me", &api.get("/iam/clients/me").await);
    let eng_path = format!("/iam/users/{}", eng.id);
    let patch = |body: Value| api.send(Method::PATCH, &eng_path, Some(body));
    snap(
        "users_update",
        &patch(
            json!({"name": "Eng Renamed", "phone": "+1 555", "lang": "de", "groups": [{"id": 2}]}),
        )
        .await,
    );
    snap(
        "users_update_invalid",
        &patch(json!({"name": 5, "phone": "call me", "lang": "xx", "groups": [{"id": 4}]})).await,
    );
    snap(
        "users_update_last_admin",
        &api.send(
            Method::PATCH,
            &format!("/iam/users/{}", admin.id),
            Some(json!({"groups": [{"id": 5}]})),
        )
        .await,
    );
    snap(
        "users_invite",
        &api.post(
            "/iam/clients/invite_user",
            json!({"client_id": acme, "email": "new@acme.test", "name": "New", "user_role": {"id": 5}}),
        )
        .await,
    );
    snap(
        "users_invite_invalid",
        &api.post(
            "/iam/clients/invite_user",
            json!({"client_id": acme, "email": "nope", "user_role": {"id": 4}}),
        )
        .await,
    );
    let holder = app.acme_member("holder", Role::Engineers).await;
    app.token_for(&holder, Role::Engineers).await;
    let holder_path = format!("/iam/clients/{acme}/client-users/{}", holder.id);
    let eng_path = format!("/iam/clients/{acme}/client-users/{}", eng.id);
    snap("client_user_role", &api.get(&eng_path).await);
    snap(
        "client_user_role_set",
        &api.send(
            Method::PUT,
            &eng_path,
            Some(json!({"user_role": {"id": 3009}})),
        )
        .await,
    );
    snap(
        "client_user_role_blocked",
        &api.send(
            Method::PUT,
            &holder_path,
            Some(json!({"user_role": {"id": 2}})),
        )
        .await,
    );
    snap(
        "users_remove_with_tokens",
        &api.send(Method::DELETE, &holder_path, None).await,
    );
    snap(
        "users_remove",
        &api.send(Method::DELETE, &eng_path, None).await,
    );
    let low = app.api_as(&holder, Role::Engineers).await;
    snap("users_list_forbidden", &low.get("/iam/users").await);
}

#[tokio::test]
async fn auth_endpoints() {
    let Acme { app, .. } = Acme::start().await;
    let anon = app.api("");
    let login = anon
        .post(
            "/iam/auth/jwt/login",
            json!({"username": "admin@acme.test", "password": PASSWORD}),
        )
        .await;
    snap("jwt_login", &login);
    snap(
        "jwt_login_wrong",
        &anon
            .post(
                "/iam/auth/jwt/login",
                json!({"username": "admin@acme.test", "password": "wrong password"}),
            )
            .await,
    );
    snap(
        "jwt_login_missing",
        &anon.post("/iam/auth/jwt/login", json!({})).await,
    );
    let refresh = login.json["refresh"].as_str().unwrap();
    snap(
        "jwt_refresh",
        &anon
            .post("/iam/auth/jwt/refresh", json!({"refresh": refresh}))
            .await,
    );
    snap(
        "jwt_refresh_again",
        &anon
            .post("/iam/auth/jwt/refresh", json!({"refresh": refresh}))
            .await,
    );
    let bearer = app.api(&format!(
        "Bearer {}",
        login.json["access"].as_str().unwrap()
    ));
    let check = bearer.get("/iam/auth/check").await;
    assert_eq!(check.status, StatusCode::NO_CONTENT);
    let mut headers: Vec<(String, String)> = check
        .headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-auth-"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    headers.sort();
    insta::assert_json_snapshot!("auth_check_headers", headers);
    snap(
        "auth_check_min_role",
        &app.api_as(&app.acme_member("user", Role::Users).await, Role::Users)
            .await
            .get("/iam/auth/check?min_role=Engineers")
            .await,
    );
}

/// The OpenAPI document itself, in content (keys sorted): how its routes are registered may
/// change, what it says may not without a reviewed diff.
#[tokio::test]
async fn openapi_document() {
    let app = crate::helpers::TestApp::spawn().await;
    let doc = app.api("").get("/iam/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    insta::assert_json_snapshot!("openapi_document", sorted(&doc.json));
}

/// `value` with every object's keys in order, whatever order the document was built in.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// A wrong method on an API route is a 404 (routes are registered with their method as a
/// guard), answered in the API's error shape, and it reaches no handler: a PUT on the token
/// list creates nothing.
#[actix_web::test]
async fn wrong_method_is_not_found() {
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_jwt(&admin.email).await;
    let list = format!("/iam/v2/clients/{}/tokens", admin.account_id);
    let wrong = api
        .send(
            Method::PUT,
            &list,
            Some(json!({"name": "x", "client_user": {"role": {"id": 5}}})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND, "{:?}", wrong.json);
    assert!(
        wrong.json.get("message").is_some() || wrong.json.get("detail").is_some(),
        "{:?}",
        wrong.json
    );
    let listed = api.get(&list).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.json.as_array().map(Vec::len),
        Some(0),
        "{:?}",
        listed.json
    );
    let patched = api.send(Method::PATCH, "/iam/auth/check", None).await;
    assert_eq!(patched.status, StatusCode::NOT_FOUND);
}
