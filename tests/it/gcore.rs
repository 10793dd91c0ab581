//! The corrected Gcore contract (`GCORE_IAM_API.md`), call by call: statuses and bodies the
//! official SDKs rely on, and JWTs any service can verify with the published keys alone.

use apitokens::domain::Role;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{token_id, Acme, ACME_ADMIN, PASSWORD};

#[tokio::test]
async fn users_list_is_an_array_without_limit_and_a_page_with_it() {
    let Acme { app, admin } = Acme::start().await;
    for name in ["b", "c", "d", "e"] {
        app.acme_member(name, Role::Engineers).await;
    }
    let api = app.api_as(&admin, Role::Administrators).await;
    let all = api.get("/iam/users").await;
    assert_eq!(all.status, StatusCode::OK);
    let all = all.json.as_array().expect("an array without limit").clone();
    assert_eq!(all.len(), 5);
    // Pages of two, by offset, until `count` users are seen: each exactly once.
    let mut seen = vec![];
    let mut offset = 0;
    loop {
        let page = api
            .get(&format!("/iam/users?limit=2&offset={offset}"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.json["count"], 5);
        let results = page.json["results"].as_array().unwrap();
        if results.is_empty() {
            break;
        }
        assert!(results.len() <= 2);
        seen.extend(results.iter().map(|u| u["id"].as_i64().unwrap()));
        offset += 2;
    }
    let mut expected: Vec<i64> = all.iter().map(|u| u["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, expected, "the pages follow the array's order");
    expected.dedup();
    assert_eq!(expected.len(), 5);
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "offset=-1",
        "limit=2&offset=y",
    ] {
        let r = api.get(&format!("/iam/users?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json["errors"].is_object(), "{bad}: {}", r.json);
    }
}

#[tokio::test]
async fn a_user_object_has_client_and_roles_and_a_null_name_when_there_is_none() {
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let me = api.get("/iam/users/me").await.json;
    assert_eq!(
        me["client_and_roles"],
        json!([{"client_id": admin.account_id, "client_company_name": "Acme",
                "user_id": admin.id, "user_roles": ["Administrators"]}])
    );
    // Invited without a name: `null` in the API, the e-mail in the portal.
    let invited = api
        .post(
            "/iam/clients/invite_user",
            json!({"client_id": admin.account_id, "email": "Nameless@Acme.test",
                   "user_role": {"id": 5}, "lang": "az"}),
        )
        .await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.json);
    assert_eq!(invited.json["status"], "sent");
    let id = invited.json["user_id"].as_i64().unwrap();
    let user = api.get(&format!("/iam/users/{id}")).await.json;
    assert_eq!(user["name"], Value::Null);
    assert_eq!(user["email"], "nameless@acme.test");
    assert_eq!(user["lang"], "az");
    assert_eq!(user["groups"], json!([{"id": 5, "name": "Engineers"}]));
    let page = app.signed_in(ACME_ADMIN).await.get("/users").await;
    assert!(page.has_text("nameless@acme.test"));
    // A language outside Gcore's list is refused by name.
    let es = api
        .post(
            "/iam/clients/invite_user",
            json!({"client_id": admin.account_id, "email": "es@acme.test",
                   "user_role": {"id": 5}, "lang": "es"}),
        )
        .await;
    assert_eq!(es.status, StatusCode::BAD_REQUEST);
    assert!(es.json["errors"]["lang"].is_array(), "{}", es.json);
}

#[tokio::test]
async fn patch_applies_every_field_or_refuses_it_by_name() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let path = format!("/iam/users/{}", eng.id);

    let r = api
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"name": null, "phone": null, "lang": "az",
                        "email": "  New.Address@ACME.test ", "auth_types": ["password"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["name"], Value::Null);
    assert_eq!(r.json["phone"], Value::Null);
    assert_eq!(r.json["lang"], "az");
    assert_eq!(r.json["email"], "new.address@acme.test");
    assert_eq!(r.json["auth_types"], json!(["password"]));
    let events = app
        .db(|c| {
            use apitokens::db::schema::account_events::dsl::*;
            use diesel::prelude::*;
            account_events.select(summary).load::<String>(c).unwrap()
        })
        .await;
    assert!(
        events
            .iter()
            .any(|e| e.contains("eng@acme.test") && e.contains("new.address@acme.test")),
        "{events:?}"
    );

    let patch = |body: Value| api.send(reqwest::Method::PATCH, &path, Some(body));
    for (body, field) in [
        (json!({"email": ACME_ADMIN}), "email"),
        (json!({"email": "not an address"}), "email"),
        (json!({"email": null}), "email"),
        (json!({"auth_types": ["sso"]}), "auth_types"),
        (json!({"auth_types": ["github"]}), "auth_types"),
        (json!({"auth_types": []}), "auth_types"),
        (json!({"lang": "es"}), "lang"),
        (json!({"name": 7}), "name"),
    ] {
        let r = patch(body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
        assert!(r.json["errors"][field].is_array(), "{body}: {}", r.json);
    }
    // A refused field changes nothing, not even the fields beside it.
    let r = patch(json!({"name": "Kept?", "auth_types": ["sso"]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(api.get(&path).await.json["name"], Value::Null);

    // Someone who isn't an Administrator may edit their own profile, but not their e-mail.
    let own = app.api_as(&eng, Role::Engineers).await;
    let r = own
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"name": "Eng Again"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["name"], "Eng Again");
    let r = own
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"email": "mine@acme.test"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
}

#[tokio::test]
async fn a_users_role_is_read_and_changed_under_the_token_rule() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let path = format!("/iam/clients/{}/client-users/{}", admin.account_id, eng.id);

    let r = api.get(&path).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"user_role": {"id": 5, "name": "Engineers"}}));

    let put = |body: Value| api.send(reqwest::Method::PUT, &path, Some(body));
    let r = put(json!({"user_role": {"id": 3009}})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    assert_eq!(api.get(&path).await.json["user_role"]["id"], 3009);

    let r = put(json!({"user_role": {"id": 77}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json,
        json!({"errors": {"user_role": ["Invalid role: {\"id\":77}"]}})
    );

    // An Engineers token of theirs stands in the way of lowering them to Users.
    put(json!({"user_role": {"name": "Engineers"}})).await;
    app.token_for(&eng, Role::Engineers).await;
    let r = put(json!({"user_role": {"id": 2, "name": "Users"}})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json,
        json!({"message": "The specified user has issued a token with a higher role. Try using another role."})
    );
    assert_eq!(api.get(&path).await.json["user_role"]["id"], 5);

    // Not an Administrator: may read their own role, may change none.
    let own = app.api_as(&eng, Role::Engineers).await;
    assert_eq!(own.get(&path).await.status, StatusCode::OK);
    let admin_path = format!(
        "/iam/clients/{}/client-users/{}",
        admin.account_id, admin.id
    );
    assert_eq!(own.get(&admin_path).await.status, StatusCode::FORBIDDEN);
    let r = own
        .send(
            reqwest::Method::PUT,
            &path,
            Some(json!({"user_role": {"id": 1}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another account's id is not confirmed.
    let other = format!(
        "/iam/clients/{}/client-users/{}",
        admin.account_id + 1,
        eng.id
    );
    assert_eq!(api.get(&other).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn removing_a_user_answers_as_gcore_does() {
    let Acme { app, admin } = Acme::start().await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let path = format!("/iam/clients/{}/client-users/{}", admin.account_id, eng.id);

    let weak = app.api_as(&admin, Role::Engineers).await;
    let r = weak.delete(&path).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json,
        json!({"message": "You do not have permission to perform this action."})
    );

    let token = app.token_for(&eng, Role::Engineers).await;
    let r = api.delete(&path).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json,
        json!({"message": "You can't remove the user as they have active tokens"})
    );
    let tokens = format!(
        "/iam/clients/{}/tokens/{}",
        admin.account_id,
        token_id(&token)
    );
    assert_eq!(api.delete(&tokens).await.status, StatusCode::NO_CONTENT);
    let r = api.delete(&path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let gone = api.get(&format!("/iam/users/{}", eng.id)).await.json;
    assert_eq!(
        (&gone["deleted"], &gone["is_active"]),
        (&json!(true), &json!(false))
    );
    let stranger = format!("/iam/clients/{}/client-users/99999", admin.account_id);
    assert_eq!(api.delete(&stranger).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_wrong_jwt_login_is_gcores_400() {
    let Acme { app, .. } = Acme::start().await;
    for body in [
        json!({"username": ACME_ADMIN, "password": "wrong"}),
        json!({"username": "nobody@acme.test", "password": PASSWORD}),
        json!({"username": ACME_ADMIN, "password": "x".repeat(5000)}),
    ] {
        let r = app.api("").post("/iam/auth/jwt/login", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.json,
            json!({"errors": {"errors": ["No active account found with the given credentials."]}})
        );
    }
}

#[tokio::test]
async fn tokens_take_an_empty_client_user_and_every_exp_date_form() {
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let tokens = format!("/iam/v2/clients/{}/tokens", admin.account_id);
    let r = api
        .post(
            &tokens,
            json!({"name": "least", "exp_date": null, "client_user": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["client_user"]["role"],
        json!({"id": 2, "name": "Users"})
    );

    let next_year = app.clock().now().year() + 1;
    for (sent, stored) in [
        (
            format!("{next_year}-06-30T12:00:00.000000Z"),
            format!("{next_year}-06-30T12:00:00Z"),
        ),
        (
            format!("{next_year}-06-30T12:00:00+0000"),
            format!("{next_year}-06-30T12:00:00Z"),
        ),
        (
            format!("{next_year}-06-30T14:00:00+0200"),
            format!("{next_year}-06-30T12:00:00Z"),
        ),
    ] {
        let r = api
            .post(
                &tokens,
                json!({"name": "dated", "exp_date": sent, "client_user": {"role": {"id": 2}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{sent}: {}", r.json);
        assert_eq!(r.json["exp_date"], json!(stored), "{sent}");
    }
}

#[tokio::test]
async fn jwts_verify_offline_with_the_published_keys_only() {
    let Acme { app, admin } = Acme::start().await;
    let login = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": ACME_ADMIN, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let access = login.json["access"].as_str().unwrap();

    let jwks = reqwest::get(format!("{}/iam/.well-known/jwks.json", app.base))
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
    let jwks: Value = jwks.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (&key["kty"], &key["alg"], &key["use"]),
        (&json!("RSA"), &json!("RS256"), &json!("sig"))
    );
    assert!(
        !key.as_object().unwrap().contains_key("d"),
        "no private part"
    );

    // What another service does: pick the key by `kid`, verify RS256, read the claims.
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    let claims =
        jsonwebtoken::decode::<Value>(access, &decoding, &Validation::new(Algorithm::RS256))
            .expect("verified with the published key alone")
            .claims;
    for claim in [
        "token_type",
        "exp",
        "jti",
        "user_id",
        "user_type",
        "user_groups",
        "client_id",
        "email",
        "username",
        "sso_entity",
        "is_admin",
        "client_name",
        "exchangeable",
        "rjti",
    ] {
        assert!(
            claims.get(claim).is_some(),
            "claim {claim} missing: {claims}"
        );
    }
    assert_eq!(claims["user_id"], admin.id);
    assert_eq!(claims["client_name"], "Acme");
    assert_eq!(claims["user_groups"], json!(["Administrators"]));

    // The same claims signed by a key the server doesn't publish (even under its kid) fail.
    let forged_key = apitokens::config::generate_rsa_pem().unwrap();
    let mut forged_header = jsonwebtoken::Header::new(Algorithm::RS256);
    forged_header.kid = header.kid.clone();
    let forged = jsonwebtoken::encode(
        &forged_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1_der(&forged_key)),
    )
    .unwrap();
    let check = app
        .api(&format!("Bearer {forged}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(check.status, StatusCode::UNAUTHORIZED);
    let check = app
        .api(&format!("Bearer {access}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(check.status, StatusCode::NO_CONTENT);
}

fn pkcs1_der(pem: &str) -> Vec<u8> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}
