//! Issue 29's machines: service accounts (their tokens survive their creator's SCIM
//! deprovisioning; removing one ends them), and workload identity federation against a real
//! OIDC issuer on loopback (discovery + JWKS over HTTP, RS256 and ES256 keys, JWTs shaped like
//! GitHub Actions' and GitLab CI's): the exchange works, and every attack is refused with
//! nothing written.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use apitokens::domain::Role;

use crate::helpers::{token_id, Acme, Api, TestApp, ACME_ADMIN};

const AUD: &str = "https://apitokens.test";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/federation/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("test key")
}

/// A signing key of the loopback issuer (or of an attacker).
struct Key {
    kid: &'static str,
    alg: Algorithm,
    pem: Vec<u8>,
    encoding: EncodingKey,
}

impl Key {
    fn rsa(file: &str, kid: &'static str) -> Key {
        let pem = fixture(file);
        Key {
            kid,
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(&pem),
            pem,
        }
    }

    fn ec(file: &str, kid: &'static str) -> Key {
        let pem = fixture(file);
        Key {
            kid,
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(&pem),
            pem,
        }
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.into());
        jwk
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.into());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// An OpenID issuer on loopback: a discovery document and a JWKS that a test can change (a key
/// roll), served over real HTTP by a thread.
struct Issuer {
    url: String,
    jwks: Arc<Mutex<JwkSet>>,
}

impl Issuer {
    fn start(keys: &[&Key]) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(JwkSet {
            keys: keys.iter().map(|k| k.jwk()).collect(),
        }));
        let (served, issuer) = (jwks.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("");
                let body = match path {
                    "/.well-known/openid-configuration" => json!({
                        "issuer": issuer,
                        "jwks_uri": format!("{issuer}/jwks"),
                        "subject_types_supported": ["public"],
                        "response_types_supported": ["id_token"],
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    })
                    .to_string(),
                    "/jwks" => serde_json::to_string(&*served.lock().unwrap()).unwrap(),
                    _ => String::new(),
                };
                let status = if body.is_empty() {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let mut out = &stream;
                let _ = write!(
                    out,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Issuer { url, jwks }
    }

    fn publish(&self, keys: &[&Key]) {
        self.jwks.lock().unwrap().keys = keys.iter().map(|k| k.jwk()).collect();
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn jti() -> String {
    apitokens::domain::Secret::generate().expose()[..32].to_owned()
}

/// Claims shaped like a GitHub Actions job's ID token.
fn github(issuer: &str, sub: &str) -> Value {
    let t = now();
    json!({
        "iss": issuer, "aud": AUD, "sub": sub, "jti": jti(),
        "repository": "acme/app", "repository_owner": "acme", "repository_owner_id": "1234",
        "ref": "refs/heads/main", "workflow": "deploy", "run_id": "42", "actor": "octocat",
        "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        "iat": t, "nbf": t - 5, "exp": t + 300,
    })
}

/// Claims shaped like a GitLab CI job's `id_tokens`.
fn gitlab(issuer: &str) -> Value {
    let t = now();
    json!({
        "iss": issuer, "aud": "gitlab-deploys", "jti": jti(),
        "sub": "project_path:acme/app:ref_type:branch:ref:main",
        "project_path": "acme/app", "namespace_path": "acme", "pipeline_id": "99",
        "user_login": "alice", "ref": "main", "ref_type": "branch", "ref_protected": "true",
        "iat": t, "nbf": t - 5, "exp": t + 300,
    })
}

async fn exchange(app: &TestApp, jwt: &str) -> crate::helpers::Reply {
    form(
        app,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", jwt),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ],
    )
    .await
}

async fn form(app: &TestApp, fields: &[(&str, &str)]) -> crate::helpers::Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    // The app's one client: building one per request loads the TLS roots, tens of ms.
    let r = app
        .api("")
        .http
        .post(format!("{}/iam/auth/token-exchange", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let json = serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null);
    crate::helpers::Reply {
        status,
        headers,
        json,
    }
}

/// Acme with an app that trusts `issuer` over plain http (loopback), a service account
/// "deploy bot" (Engineers) and the admin's API.
async fn acme_trusting(issuer: &str) -> (Acme, Api, i64) {
    let issuer = issuer.to_owned();
    let acme =
        Acme::on(TestApp::spawn_with(move |s| s.insecure_issuers = vec![issuer]).await).await;
    let admin = acme.app.api_jwt(ACME_ADMIN).await;
    let sa = admin
        .post(
            &format!("/iam/clients/{}/service-accounts", acme.admin.account_id),
            json!({"name": "deploy bot", "description": "ships main", "role": {"name": "Engineers"}}),
        )
        .await;
    assert_eq!(sa.status, StatusCode::CREATED, "{}", sa.json);
    let sa_id = sa.json["id"].as_i64().unwrap();
    (acme, admin, sa_id)
}

async fn add_policy(admin: &Api, account: i64, body: Value) -> crate::helpers::Reply {
    admin
        .post(&format!("/iam/clients/{account}/trust-policies"), body)
        .await
}

async fn token_count(app: &TestApp) -> i64 {
    app.db(|c| {
        use apitokens::db::schema::tokens;
        use diesel::prelude::*;
        Ok::<_, apitokens::error::ServiceError>(tokens::table.count().get_result::<i64>(c)?)
    })
    .await
    .unwrap()
}

/// What the gateway check says of `token`: 204 when it passes.
async fn gateway(app: &TestApp, token: &str) -> StatusCode {
    app.api(&format!("APIKey {token}"))
        .get("/iam/auth/check")
        .await
        .status
}

const PASSES: StatusCode = StatusCode::NO_CONTENT;

#[tokio::test]
async fn a_ci_jwt_becomes_a_short_lived_token_that_works_until_it_expires() {
    let rsa = Key::rsa("rsa1.der", "gh-1");
    let ec = Key::ec("ec1.der", "gl-1");
    let issuer = Issuer::start(&[&rsa, &ec]);
    let (Acme { app, admin: person }, admin, sa) = acme_trusting(&issuer.url).await;
    let account = person.account_id;
    let policy = add_policy(
        &admin,
        account,
        json!({"issuer": issuer.url, "audience": AUD, "service_account_id": sa,
               "conditions": {"sub": "repo:acme/app:ref:refs/heads/*", "repository_owner_id": "1234"},
               "role": {"name": "Engineers"}}),
    )
    .await;
    assert_eq!(policy.status, StatusCode::CREATED, "{}", policy.json);
    assert_eq!(policy.json["lifetime_seconds"], 900);

    // GitHub Actions shape, RS256.
    let claims = github(&issuer.url, "repo:acme/app:ref:refs/heads/main");
    let r = exchange(&app, &rsa.sign(&claims)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["token_type"], "APIKey");
    assert_eq!(
        r.json["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(r.json["expires_in"], 900);
    assert_eq!(r.headers["cache-control"], "no-store");
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(gateway(&app, &token).await, PASSES);
    // A normal token of the service account, Engineers, expiring in 15 minutes.
    let me = app
        .api(&format!("APIKey {token}"))
        .get("/iam/tokens/self")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.json);
    assert!(me.json.to_string().contains("Engineers"), "{}", me.json);
    assert!(
        me.json["exp_date"].is_string(),
        "nothing long-lived: {}",
        me.json
    );
    // The audit trail has the job's claims, never the JWT.
    let events = app.events_of(account, "token.exchanged").await;
    assert_eq!(events.len(), 1);
    assert!(
        events[0].summary.contains("repository \"acme/app\""),
        "{}",
        events[0].summary
    );
    assert!(
        events[0].summary.contains("deploy bot"),
        "{}",
        events[0].summary
    );
    assert!(!events[0].summary.contains(&rsa.sign(&claims)[..40]));

    // GitLab CI shape, ES256, under its own policy.
    let gl = add_policy(
        &admin,
        account,
        json!({"issuer": issuer.url, "audience": "gitlab-deploys", "service_account_id": sa,
               "conditions": {"project_path": "acme/app", "ref_protected": "true"},
               "role": {"id": 3022}, "lifetime_seconds": 600,
               "allowed_routes": ["POST /cdn/resources/*/purge"]}),
    )
    .await;
    assert_eq!(gl.status, StatusCode::CREATED, "{}", gl.json);
    let r = exchange(&app, &ec.sign(&gitlab(&issuer.url))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["expires_in"], 600);
    let gl_token = r.json["access_token"].as_str().unwrap().to_owned();
    // Its policy limits it to purging: through for that, refused for anything else.
    assert_eq!(
        gl.json["allowed_routes"],
        json!(["POST /cdn/resources/*/purge"])
    );
    let at = |method: &'static str, uri: &'static str| {
        let api = app.api(&format!("APIKey {gl_token}"));
        async move {
            api.send_with(
                reqwest::Method::GET,
                "/iam/auth/check",
                None,
                &[("x-original-method", method), ("x-original-uri", uri)],
            )
            .await
            .status
        }
    };
    assert_eq!(at("POST", "/cdn/resources/7/purge").await, PASSES);
    assert_eq!(
        at("DELETE", "/cdn/resources/7").await,
        StatusCode::FORBIDDEN
    );

    // Past its 15 minutes the token is refused, and the sweep deletes it.
    app.clock().advance(time::Duration::minutes(16));
    assert_eq!(gateway(&app, &token).await, StatusCode::UNAUTHORIZED);
    app.state.sweep(app.clock().now()).await.unwrap();
    let id = token_id(&token);
    let deleted = app
        .db(move |c| {
            Ok::<_, apitokens::error::ServiceError>(
                apitokens::repo::Token::find(c, id)?
                    .and_then(|t| t.deleted_at)
                    .is_some(),
            )
        })
        .await
        .unwrap();
    assert!(deleted, "the minted token is deleted when it expires");
    // A second sweep finds nothing more to do.
    assert_eq!(
        app.state.federation.sweep(app.clock().now()).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn forged_stale_replayed_and_unmatched_jwts_are_refused_and_write_nothing() {
    let rsa = Key::rsa("rsa1.der", "k1");
    let rolled = Key::rsa("rsa2.der", "k2");
    let attacker = Key::rsa("attacker.der", "k1");
    let issuer = Issuer::start(&[&rsa]);
    let (Acme { app, admin: person }, admin, sa) = acme_trusting(&issuer.url).await;
    let policy = add_policy(
        &admin,
        person.account_id,
        json!({"issuer": issuer.url, "audience": AUD, "service_account_id": sa,
               "conditions": {"sub": "repo:acme/app:ref:refs/heads/main"},
               "role": {"name": "Engineers"}, "lifetime_seconds": 300}),
    )
    .await;
    assert_eq!(policy.status, StatusCode::CREATED, "{}", policy.json);
    let good = || github(&issuer.url, "repo:acme/app:ref:refs/heads/main");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = good();
        change(&mut c);
        c
    };
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
        b64(&good())
    );
    // HS256 with the issuer's public key as the secret (the classic key-confusion attack).
    let public_pem = {
        let jwk = rsa.jwk();
        let _ = &rsa.pem;
        serde_json::to_vec(&jwk).unwrap()
    };
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("k1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &good(),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    let unknown_kid = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("nobody".into());
        jsonwebtoken::encode(&header, &good(), &rsa.encoding).unwrap()
    };
    let other_issuer = {
        let mut c = good();
        c["iss"] = json!("https://token.actions.githubusercontent.com");
        rsa.sign(&c)
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "wrong aud",
            rsa.sign(&with(&|c| c["aud"] = json!("https://elsewhere"))),
            "invalid_grant",
            "audience",
        ),
        (
            "wrong sub",
            rsa.sign(&with(&|c| {
                c["sub"] = json!("repo:acme/app:ref:refs/heads/evil")
            })),
            "invalid_grant",
            "\"sub\"",
        ),
        (
            "another repository",
            rsa.sign(&with(&|c| {
                c["sub"] = json!("repo:mallory/app:ref:refs/heads/main")
            })),
            "invalid_grant",
            "\"sub\"",
        ),
        (
            "expired",
            rsa.sign(&with(&|c| c["exp"] = json!(now() - 120))),
            "invalid_grant",
            "expired",
        ),
        (
            "not yet valid",
            rsa.sign(&with(&|c| c["nbf"] = json!(now() + 600))),
            "invalid_grant",
            "not valid yet",
        ),
        (
            "issued in the future",
            rsa.sign(&with(&|c| c["iat"] = json!(now() + 600))),
            "invalid_grant",
            "future",
        ),
        (
            "no jti",
            rsa.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })),
            "invalid_grant",
            "jti",
        ),
        (
            "wrong signature",
            attacker.sign(&good()),
            "invalid_grant",
            "signature",
        ),
        ("alg none", unsigned, "invalid_grant", "alg"),
        ("HS256 with the public key", hs, "invalid_grant", "alg"),
        ("unknown kid", unknown_kid, "invalid_grant", "kid"),
        (
            "untrusted issuer",
            other_issuer,
            "invalid_grant",
            "no trust policy",
        ),
        ("not a JWT", "abc".into(), "invalid_grant", "JWT"),
    ];
    let before = token_count(&app).await;
    for (what, jwt, code, words) in &cases {
        let r = exchange(&app, jwt).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        assert_eq!(r.json["error"], *code, "{what}: {}", r.json);
        let d = r.json["error_description"].as_str().unwrap_or_default();
        assert!(d.contains(words), "{what}: {d}");
    }
    // Malformed requests: the RFC's words for each.
    let jwt = rsa.sign(&good());
    for (what, fields, code) in [
        (
            "grant type",
            vec![
                ("grant_type", "password"),
                ("subject_token", jwt.as_str()),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ],
            "unsupported_grant_type",
        ),
        (
            "no subject",
            vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ],
            "invalid_request",
        ),
        (
            "token type",
            vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", jwt.as_str()),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:saml2",
                ),
            ],
            "invalid_request",
        ),
        (
            "twice",
            vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", jwt.as_str()),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ],
            "invalid_request",
        ),
    ] {
        let r = form(&app, &fields).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        assert_eq!(r.json["error"], code, "{what}: {}", r.json);
    }
    let huge = "a".repeat(20_000);
    let r = exchange(&app, &huge).await;
    assert_eq!(r.json["error"], "invalid_request", "{}", r.json);
    let as_json = app
        .api("")
        .post("/iam/auth/token-exchange", json!({"grant_type": "x"}))
        .await;
    assert_eq!(as_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(as_json.json["error"], "invalid_request");
    assert_eq!(token_count(&app).await, before, "no refusal wrote a token");
    assert!(app
        .events_of(person.account_id, "token.exchanged")
        .await
        .is_empty());

    // Made-up kids cost the issuer one fetch per ten seconds, not one per JWT.
    let fetched = app.state.federation.key_fetches();
    for _ in 0..20 {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(jti());
        let r = exchange(
            &app,
            &jsonwebtoken::encode(&header, &good(), &rsa.encoding).unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    assert!(app.state.federation.key_fetches() - fetched <= 1);

    // A JWT works once, on any instance: the second instance refuses the replay.
    let sibling = app.spawn_sibling().await;
    let once = rsa.sign(&good());
    assert_eq!(exchange(&app, &once).await.status, StatusCode::OK);
    let replay = exchange(&sibling, &once).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.json);
    assert!(replay.json["error_description"]
        .as_str()
        .unwrap()
        .contains("exchanged already"));
    assert_eq!(token_count(&app).await, before + 1);

    // A key roll at the issuer: a JWT with the new kid fetches the keys again and works.
    issuer.publish(&[&rsa, &rolled]);
    let new_key = with(&|_| {});
    let r = exchange(&sibling, &rolled.sign(&new_key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn service_accounts_hold_tokens_that_outlive_their_creator_and_end_with_them() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    // A second Administrator, provisioned by SCIM, makes the deploy bot's token.
    let now = app.clock().now();
    let scim_token = app
        .db(move |c| apitokens::services::people::scim::issue_token(c, account, None, now))
        .await
        .unwrap();
    let scim = app.api(&format!("Bearer {scim_token}"));
    let made = scim
        .post(
            "/scim/v2/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ops@acme.test",
                   "emails": [{"value": "ops@acme.test", "primary": true}],
                   "roles": [{"value": "Administrators"}], "active": true}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    let ops_scim_id = made.json["id"].as_str().unwrap().to_owned();
    let ops = app
        .db(|c| {
            Ok::<_, apitokens::error::ServiceError>(
                apitokens::repo::User::find_by_email(c, "ops@acme.test")?.unwrap(),
            )
        })
        .await
        .unwrap();
    let ops_api = app.api_as(&ops, Role::Administrators).await;
    let sa = ops_api
        .post(
            &format!("/iam/clients/{account}/service-accounts"),
            json!({"name": "deploy bot", "role": {"id": 3009}}),
        )
        .await;
    assert_eq!(sa.status, StatusCode::CREATED, "{}", sa.json);
    let sa_id = sa.json["id"].as_i64().unwrap();
    // Above its ceiling: refused; within it: a token of the service account, made with a token.
    let too_high = ops_api
        .post(
            &format!("/iam/clients/{account}/service-accounts/{sa_id}/tokens"),
            json!({"name": "deploy", "client_user": {"role": {"id": 1}}, "exp_date": null}),
        )
        .await;
    assert_eq!(
        too_high.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_high.json
    );
    let made = ops_api
        .post(
            &format!("/iam/clients/{account}/service-accounts/{sa_id}/tokens"),
            json!({"name": "deploy", "client_user": {"role": {"id": 3009}}, "exp_date": null}),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.json);
    let bot = made.json["token"].as_str().unwrap().to_owned();
    assert_eq!(gateway(&app, &bot).await, PASSES);

    // Not a person: not in Gcore's user list, not a SCIM user, not a user by id.
    let admin_api = app.api_jwt(ACME_ADMIN).await;
    let users = admin_api.get("/iam/users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(
        !users.json.to_string().contains("deploy bot"),
        "{}",
        users.json
    );
    assert_eq!(
        admin_api.get(&format!("/iam/users/{sa_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let scim_users = scim.get("/scim/v2/Users").await;
    assert!(
        !scim_users.json.to_string().contains("service-account"),
        "{}",
        scim_users.json
    );
    // Its stand-in address is no address: nobody can take it.
    let squat = admin_api
        .post(
            "/iam/clients/invite_user",
            json!({"email": "x@service-account.invalid", "user_role": {"id": 2}, "name": "x", "client_id": account}),
        )
        .await;
    assert_eq!(squat.status, StatusCode::BAD_REQUEST, "{}", squat.json);
    assert!(
        squat.json.to_string().contains(".invalid"),
        "{}",
        squat.json
    );

    // The person who made it is deprovisioned: their own tokens end, the bot's doesn't.
    let gone = scim.delete(&format!("/scim/v2/Users/{ops_scim_id}")).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(gateway(&app, &bot).await, PASSES);
    assert_eq!(
        ops_api.get("/iam/tokens/self").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A leaked low-role token can't see or manage service accounts or trust policies.
    let eve = app.acme_member("eve", Role::Users).await;
    let low = app.api_as(&eve, Role::Users).await;
    for (path, body) in [
        (
            format!("/iam/clients/{account}/service-accounts"),
            json!({"name": "x", "role": {"id": 2}}),
        ),
        (
            format!("/iam/clients/{account}/service-accounts/{sa_id}/tokens"),
            json!({"name": "x", "client_user": {"role": {"id": 2}}, "exp_date": null}),
        ),
        (format!("/iam/clients/{account}/trust-policies"), json!({})),
    ] {
        let r = low.post(&path, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.json);
    }
    assert_eq!(
        low.get(&format!("/iam/clients/{account}/service-accounts"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Another account's service account is "not found".
    let other = app
        .add_user("Globex", "boss@globex.test", Role::Administrators)
        .await;
    let globex = app.api_as(&other, Role::Administrators).await;
    assert_eq!(
        globex
            .get(&format!(
                "/iam/clients/{}/service-accounts/{sa_id}",
                other.account_id
            ))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Removing the service account ends its tokens at once, and is audited.
    let removed = admin_api
        .delete(&format!("/iam/clients/{account}/service-accounts/{sa_id}"))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(gateway(&app, &bot).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.events_of(account, "service_account.created")
            .await
            .len(),
        1
    );
    assert_eq!(
        app.events_of(account, "service_account.removed")
            .await
            .len(),
        1
    );
    assert_eq!(
        admin_api
            .delete(&format!("/iam/clients/{account}/service-accounts/{sa_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn trust_policies_are_checked_field_by_field() {
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let api = app.api_jwt(ACME_ADMIN).await;
    let sa = api
        .post(
            &format!("/iam/clients/{account}/service-accounts"),
            json!({"name": "bot", "role": {"id": 3009}}),
        )
        .await;
    let sa_id = sa.json["id"].as_i64().unwrap();
    let path = format!("/iam/clients/{account}/trust-policies");
    for (body, field) in [
        (
            json!({"issuer": "http://example.com", "audience": AUD, "conditions": {"sub": "x"}, "service_account_id": sa_id, "role": {"id": 3022}}),
            "issuer",
        ),
        (
            json!({"issuer": "https://example.com", "audience": AUD, "conditions": {}, "service_account_id": sa_id, "role": {"id": 3022}}),
            "conditions",
        ),
        (
            json!({"issuer": "https://example.com", "audience": AUD, "conditions": {"sub": "**"}, "service_account_id": sa_id, "role": {"id": 3022}}),
            "conditions",
        ),
        (
            json!({"issuer": "https://example.com", "audience": AUD, "conditions": {"sub": "x"}, "service_account_id": sa_id, "role": {"id": 1}}),
            "role",
        ),
        (
            json!({"issuer": "https://example.com", "audience": AUD, "conditions": {"sub": "x"}, "service_account_id": 999_999, "role": {"id": 3022}}),
            "service_account_id",
        ),
        (
            json!({"issuer": "https://example.com", "audience": AUD, "conditions": {"sub": "x"}, "service_account_id": sa_id, "role": {"id": 3022}, "lifetime_seconds": 7200}),
            "lifetime_seconds",
        ),
        (
            json!({"issuer": "https://example.com", "audience": "", "conditions": {"sub": "x"}, "service_account_id": sa_id, "role": {"id": 3022}}),
            "audience",
        ),
    ] {
        let r = api.post(&path, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.json);
        assert!(r.json.to_string().contains(field), "{field}: {}", r.json);
    }
    let ok = api
        .post(
            &path,
            json!({"issuer": "https://token.actions.githubusercontent.com", "audience": AUD,
                   "conditions": {"sub": "repo:acme/app:*"}, "service_account_id": sa_id, "role": {"id": 3022}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.json);
    let id = ok.json["id"].as_i64().unwrap();
    assert_eq!(api.get(&path).await.json.as_array().unwrap().len(), 1);
    assert_eq!(
        api.delete(&format!("{path}/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.events_of(account, "trust_policy.configured")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn the_service_accounts_page_adds_issues_to_and_removes_them() {
    let Acme { app, admin } = Acme::start().await;
    let portal = app.signed_in(ACME_ADMIN).await;
    let empty = portal.get("/service-accounts").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.has("#no-service-accounts"));
    // A bad name is answered on the page, nothing added.
    let bad = portal
        .post_from(
            "/service-accounts",
            "/service-accounts",
            &[("name", ""), ("role", "5")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.has("#error-summary-accounts"), "{}", bad.body);
    let added = portal
        .post_from(
            "/service-accounts",
            "/service-accounts",
            &[
                ("name", "deploy bot"),
                ("description", "ships main"),
                ("role", "5"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let added = portal.get("/service-accounts").await;
    assert!(added.has_text("deploy bot"));
    let sa_id = added.attrs(
        "#service-accounts tr[data-service-account-id]",
        "data-service-account-id",
    )[0]
    .clone();

    // The create form offers it under "Issued to"; the token is the service account's.
    let form = portal.get("/profile/api-tokens/new").await;
    assert!(form.has("select#issued_to"), "{}", form.body);
    let made = portal
        .create_token(&[
            ("name", "deploy"),
            ("role", "5"),
            ("expiration", "never"),
            ("issued_to", sa_id.as_str()),
        ])
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let token = made.text_of("new-token-value").expect("revealed once");
    assert!(made.has_text("service account deploy bot"), "{}", made.body);
    assert!(!made.body.contains("service-account.invalid"));
    assert_eq!(gateway(&app, &token).await, PASSES);
    // Above the service account's ceiling: refused on the form.
    let high = portal
        .create_token(&[
            ("name", "too much"),
            ("role", "1"),
            ("expiration", "never"),
            ("issued_to", sa_id.as_str()),
        ])
        .await;
    assert_eq!(high.status, StatusCode::BAD_REQUEST, "{}", high.body);

    // A trust policy through the page: a malformed line is named, a good one listed.
    let bad_policy = portal
        .post_from(
            "/service-accounts",
            "/service-accounts/trust-policies",
            &[
                ("issuer", "https://gitlab.com"),
                ("audience", "deploys"),
                ("conditions", "project_path acme/app"),
                ("service_account", sa_id.as_str()),
                ("role", "5"),
                ("minutes", "15"),
            ],
        )
        .await;
    assert_eq!(bad_policy.status, StatusCode::BAD_REQUEST);
    assert!(bad_policy.has_text("Line 1"), "{}", bad_policy.body);
    let policy = portal
        .post_from(
            "/service-accounts",
            "/service-accounts/trust-policies",
            &[
                ("issuer", "https://gitlab.com"),
                ("audience", "deploys"),
                ("conditions", "project_path = acme/app"),
                ("service_account", sa_id.as_str()),
                ("role", "5"),
                ("minutes", "15"),
            ],
        )
        .await;
    assert_eq!(policy.status, StatusCode::SEE_OTHER, "{}", policy.body);
    let policy = portal.get("/service-accounts").await;
    assert!(policy.has("#trust-policies"), "{}", policy.body);

    // Not for non-Administrators.
    app.acme_member("eve", Role::Engineers).await;
    let eve = app.signed_in("eve@acme.test").await;
    assert_eq!(
        eve.get("/service-accounts").await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!eve
        .get("/profile/api-tokens/new")
        .await
        .has("select#issued_to"));

    // Removing it ends its token and its policies.
    let removed = portal
        .post_from(
            "/service-accounts",
            &format!("/service-accounts/{sa_id}/remove"),
            &[],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let removed = portal.get("/service-accounts").await;
    assert!(removed.has("#no-service-accounts"), "{}", removed.body);
    assert!(removed.has("#no-trust-policies"));
    assert_eq!(gateway(&app, &token).await, StatusCode::UNAUTHORIZED);
    let _ = admin;
}

/// The exchange's latency (not a test: `scripts/exchange-bench` runs it in release and prints
/// the figures): p50/p99 with the issuer's keys cached (warm) and fetched (cold: a new issuer
/// each time), beside creating a token through the API in the same run (the baseline).
#[tokio::test]
#[ignore = "a benchmark: scripts/exchange-bench"]
async fn bench_exchange() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let rsa = Key::rsa("rsa1.der", "k1");
    // 40 issuers (an account has at most 50 trust policies), one cold exchange each.
    let cold_issuers: Vec<Issuer> = (0..40).map(|_| Issuer::start(&[&rsa])).collect();
    let cold_every = (rounds / 40).max(1);
    let warm = Issuer::start(&[&rsa]);
    let mut listed: Vec<String> = cold_issuers.iter().map(|i| i.url.clone()).collect();
    listed.push(warm.url.clone());
    let acme = Acme::on(TestApp::spawn_with(move |s| s.insecure_issuers = listed).await).await;
    let app = &acme.app;
    let account = acme.admin.account_id;
    let admin = app.api_jwt(ACME_ADMIN).await;
    let sa = admin
        .post(
            &format!("/iam/clients/{account}/service-accounts"),
            json!({"name": "bench", "role": {"id": 5}}),
        )
        .await;
    let sa = sa.json["id"].as_i64().unwrap();
    for issuer in cold_issuers.iter().chain(std::iter::once(&warm)) {
        let r = add_policy(
            &admin,
            account,
            json!({"issuer": issuer.url, "audience": AUD, "service_account_id": sa,
                   "conditions": {"repository_owner_id": "1234"}, "role": {"id": 5}, "lifetime_seconds": 60}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    }
    // Minted tokens expire in a minute: the clock moves and the sweep clears them between
    // batches, so the 50-token cap never interferes.
    let clear = || async {
        app.clock().advance(time::Duration::minutes(2));
        app.state.sweep(app.clock().now()).await.unwrap();
    };
    let time = |start: std::time::Instant| start.elapsed().as_secs_f64() * 1000.0;
    // Claims on the app's clock, which the clearing moves.
    let fresh = |issuer: &str| {
        let mut c = github(issuer, "x");
        let t = app.clock().now().unix_timestamp();
        c["iat"] = json!(t);
        c["nbf"] = json!(t - 5);
        c["exp"] = json!(t + 300);
        c
    };
    let (mut base, mut warm_ms, mut cold_ms) = (vec![], vec![], vec![]);
    exchange(app, &rsa.sign(&github(&warm.url, "x"))).await; // the warm issuer's first fetch
    for i in 0..rounds {
        if i % 15 == 0 {
            clear().await;
            let ids: Vec<i64> = admin
                .get(&format!("/iam/clients/{account}/tokens?status=active"))
                .await
                .json
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|t| t["id"].as_i64())
                .collect();
            for id in ids {
                admin
                    .delete(&format!("/iam/clients/{account}/tokens/{id}"))
                    .await;
            }
        }
        let start = std::time::Instant::now();
        let r = admin
            .post(
                &format!("/iam/clients/{account}/tokens"),
                json!({"name": "baseline", "client_user": {"role": {"id": 5}}, "exp_date": null}),
            )
            .await;
        base.push(time(start));
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let jwt = rsa.sign(&fresh(&warm.url));
        let start = std::time::Instant::now();
        let r = exchange(app, &jwt).await;
        warm_ms.push(time(start));
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        if let Some(cold) = cold_issuers
            .get(i / cold_every)
            .filter(|_| i % cold_every == 0)
        {
            let jwt = rsa.sign(&fresh(&cold.url));
            let start = std::time::Instant::now();
            let r = exchange(app, &jwt).await;
            cold_ms.push(time(start));
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        }
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    };
    let backend = if crate::helpers::postgres_url().is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let (b50, b99) = (pct(&mut base, 0.5), pct(&mut base, 0.99));
    let (w50, w99) = (pct(&mut warm_ms, 0.5), pct(&mut warm_ms, 0.99));
    let (c50, c99) = (pct(&mut cold_ms, 0.5), pct(&mut cold_ms, 0.99));
    println!(
        "exchange bench on {backend}, {rounds} rounds ({} cold):",
        cold_ms.len()
    );
    println!("  baseline: token create through the API  p50 {b50:.2} ms  p99 {b99:.2} ms");
    println!("  exchange, warm keys                     p50 {w50:.2} ms  p99 {w99:.2} ms  ({:.2}x the baseline's p50)", w50 / b50);
    println!(
        "  exchange, cold keys (discovery + JWKS)  p50 {c50:.2} ms  p99 {c99:.2} ms  ({:.2}x)",
        c50 / b50
    );
}

/// An Administrator's trust policy can't make the server fetch keys from its own network: an
/// issuer on a private address (written as an address, or a name resolving to one) that the
/// operator didn't list is refused before any connection.
#[tokio::test]
async fn keys_are_never_fetched_from_a_private_address_the_operator_did_not_list() {
    let rsa = Key::rsa("rsa1.der", "gh-1");
    let listed = Issuer::start(&[&rsa]);
    let (Acme { app, admin: person }, admin, sa) = acme_trusting(&listed.url).await;
    let account = person.account_id;
    // Something listening on loopback that would answer if asked.
    let bait = TcpListener::bind("127.0.0.1:0").unwrap();
    bait.set_nonblocking(true).unwrap();
    let port = bait.local_addr().unwrap().port();
    for issuer in [
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
    ] {
        let policy = add_policy(
            &admin,
            account,
            json!({"issuer": issuer, "audience": AUD, "service_account_id": sa,
                   "conditions": {"sub": "repo:acme/app:ref:refs/heads/*"},
                   "role": {"name": "Engineers"}}),
        )
        .await;
        assert_eq!(policy.status, StatusCode::CREATED, "{}", policy.json);
        let before = token_count(&app).await;
        let r = exchange(
            &app,
            &rsa.sign(&github(&issuer, "repo:acme/app:ref:refs/heads/main")),
        )
        .await;
        assert!(
            r.status.is_client_error() || r.status.is_server_error(),
            "{issuer}: {}",
            r.json
        );
        assert_ne!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.json);
        assert_eq!(token_count(&app).await, before, "nothing minted");
        assert!(
            bait.accept().is_err(),
            "{issuer}: the server connected to a private address"
        );
    }
    // The listed issuer still works.
    add_policy(
        &admin,
        account,
        json!({"issuer": listed.url, "audience": AUD, "service_account_id": sa,
               "conditions": {"sub": "repo:acme/app:ref:refs/heads/*"}, "role": {"name": "Engineers"}}),
    )
    .await;
    let ok = exchange(
        &app,
        &rsa.sign(&github(&listed.url, "repo:acme/app:ref:refs/heads/main")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
}

/// The sweep finds the exchanged tokens due by the partial index, whatever the history of
/// exchanges (a busy CI fleet makes thousands a day).
#[tokio::test]
async fn the_sweep_finds_expired_exchanges_by_index() {
    let app = TestApp::spawn().await;
    let due = app
        .plan(
            "SELECT 1",
            "issuer, jti FROM token_exchanges WHERE NOT ended AND expires_at <= '2026-12-03 00:00:00' ORDER BY expires_at LIMIT 500".into(),
        )
        .await;
    assert!(due.contains("token_exchanges_due"), "{due}");
    let purge = app
        .plan(
            "SELECT 1",
            "issuer FROM token_exchanges WHERE ended AND keep_until < '2026-12-03 00:00:00'".into(),
        )
        .await;
    assert!(purge.contains("token_exchanges_keep"), "{purge}");
}
