//! API authentication (`APIKey` and `Bearer`), JWT login and refresh, and the gateway check.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use utoipa::ToSchema;

use super::body::JsonBody;
use super::error::ApiError;
use super::model::{JwtPair, Message};
use crate::domain::{AccountId, Role};
use crate::metrics::CheckOutcome;
use crate::services::gateway::jwt::TokenPair;
use crate::services::gateway::quota::QuotaRefusal;
use crate::services::gateway::Refusal;
use crate::services::people::jwt_pairs::RefreshError;
use crate::services::vocabulary::{AuthError, ClientFacts, Credential, SignInError};
use crate::web::ids::Id;
use crate::web::AppState;

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => ApiError::Unauthorized,
            AuthError::NotFromHere(ip) => ApiError::Forbidden(match ip {
                Some(ip) => format!(
                    "This token can't be used from {ip}: it is limited to the addresses on its allowlist."
                ),
                None => "This token is limited to the addresses on its allowlist, and the client's address is unknown.".into(),
            }),
            AuthError::Service(e) => e.into(),
        }
    }
}

/// The caller's address and user agent, for a token's allowlist and usage.
fn client_facts(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> ClientFacts {
    ClientFacts {
        ip: crate::web::client::client_ip(req, trusted),
        agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// The request's `Authorization` value; one that is not text is no credential at all.
/// The `Authorization` header as text ("" if absent or not UTF-8). Not `to_str`, which
/// looks at the value byte by byte on every request: UTF-8 validation checks ASCII a word at
/// a time, and what parses it (`parse_authorization`) accepts only ASCII words anyway.
fn authorization(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .unwrap_or("")
}

/// The authenticated caller of a management endpoint (see `Services::api_caller`).
pub struct ApiCaller(pub Credential);

impl ApiCaller {
    /// A path's `clientId` must be the caller's own account; another is "not found" (so
    /// other accounts' ids are not confirmed).
    pub fn own_account(&self, client: Id<AccountId>) -> Result<(), ApiError> {
        if client.get() == self.0.actor.account_id {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<ApiCaller, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("app state missing")))?;
            let trusted = &state.settings.trusted_proxies;
            let mut credential = state
                .gateway
                .api_caller(authorization(&req), || client_facts(&req, trusted))
                .await?;
            let refused = |why| {
                if let Some(id) = credential.token_id {
                    state.gateway.count_refusal(id, why);
                }
            };
            if let Some(routes) = &credential.routes {
                let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
                if !crate::domain::routes::admits(routes, req.method().as_str(), target) {
                    refused(Refusal::Route);
                    return Err(ApiError::Forbidden(format!(
                        "This token is limited to its allowed routes, and {} {} isn't one of them.",
                        req.method(),
                        req.uri().path()
                    )));
                }
            }
            if let (Some(rate), Some(id)) = (credential.rate, credential.token_id) {
                if let Err(wait) = state.gateway.take_rate(id, rate).await {
                    refused(Refusal::Rate);
                    return Err(ApiError::RateLimited(rate, wait));
                }
            }
            if let (Some(quota), Some(id)) = (credential.quota, credential.token_id) {
                match state.gateway.take_quota(id, quota).await {
                    Ok(()) => {}
                    Err(QuotaRefusal::Spent(refill)) => {
                        refused(Refusal::Quota);
                        return Err(ApiError::QuotaSpent(
                            refill.map(|at| until(at, state.clock().now())),
                        ));
                    }
                    Err(QuotaRefusal::Unavailable) => {
                        return Err(ApiError::Unavailable("quota lease".into()))
                    }
                }
            }
            let client = crate::web::client::client_address(&req, &state.settings.trusted_proxies);
            credential.actor = credential
                .actor
                .from(crate::services::Via::Api(credential.token_id), &client);
            Ok(ApiCaller(credential))
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// The user's e-mail.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The code of the user's authenticator app (or a recovery code): required for a user
    /// with two-factor authentication, ignored otherwise.
    pub one_time_password: Option<String>,
}

/// Log in for a 1-hour access JWT and a 24-hour refresh JWT.
#[utoipa::path(tag = "auth", request_body = LoginBody,
    responses((status = 200, body = JwtPair),
              (status = 400, description = "missing fields, or wrong e-mail or password: {\"errors\": {\"errors\": [\"No active account found with the given credentials.\"]}}"),
              (status = 429, body = Message)))]
#[post("/iam/auth/jwt/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (Some(email), Some(password)) = (
        body.username.filter(|u| !u.trim().is_empty()),
        body.password.filter(|p| !p.is_empty()),
    ) else {
        return Err(ApiError::Validation(serde_json::json!({
            "username": ["This field is required."], "password": ["This field is required."]
        })));
    };
    // Gcore's status and body for wrong credentials: 400, not 401.
    let no_account = || {
        ApiError::Validation(serde_json::json!({
            "errors": ["No active account found with the given credentials."]
        }))
    };
    if email.len() > 254 || password.len() > 1024 {
        return Err(no_account());
    }
    let address = crate::web::client::client_address(&req, &state.settings.trusted_proxies);
    let otp = body.one_time_password.filter(|c| c.len() <= 64);
    match state
        .people
        .jwt_login(&email, &password, &address, otp.as_deref())
        .await
    {
        Ok(pair) => Ok(pair_response(pair)),
        Err(SignInError::SecondFactorRequired) => Err(ApiError::field(
            "one_time_password",
            "This field is required: two-factor authentication is on for this user.",
        )),
        Err(SignInError::SecondFactorNotSetUp) => Err(ApiError::field(
            "one_time_password",
            "This account requires two-factor authentication: set it up under Profile → Security in the portal, then log in with one_time_password.",
        )),
        Err(SignInError::SsoRequired) => Err(ApiError::field(
            "password",
            "This account signs its people in with single sign-on only: a password can't log in here. Use an API token (Authorization: APIKey <token>) for scripts.",
        )),
        Err(SignInError::UsePasskey) => Err(ApiError::field(
            "one_time_password",
            "This user's second factor is a passkey, which only a browser can answer: sign in to the portal with it, and give scripts an API token (Authorization: APIKey <token>).",
        )),
        Err(SignInError::WrongSecondFactor) => Err(ApiError::field(
            "one_time_password",
            "Wrong or already used code.",
        )),
        Err(SignInError::WrongCredentials | SignInError::ApiOnly) => Err(no_account()),
        Err(SignInError::TooManyAttempts(wait)) => Err(ApiError::TooManyRequests(
            format!(
                "Too many failed login attempts. Try again in {}.",
                crate::domain::count(wait.as_secs().div_ceil(60) as i64, "minute", "minutes")
            ),
            wait,
        )),
        Err(SignInError::Service(e)) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    pub refresh: Option<String>,
}

/// Trade a refresh JWT (once) for a new pair.
#[utoipa::path(tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = JwtPair), (status = 400, description = "no refresh token, or not JSON"), (status = 401, body = Message)))]
#[post("/iam/auth/jwt/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: JsonBody<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = body.into_inner().refresh.filter(|t| !t.is_empty()) else {
        return Err(ApiError::field("refresh", "This field is required."));
    };
    match state.people.jwt_refresh(token).await {
        Ok(pair) => Ok(pair_response(pair)),
        Err(RefreshError::Unauthorized) => Err(ApiError::Unauthorized),
        Err(RefreshError::Service(e)) => Err(e.into()),
    }
}

fn pair_response(pair: TokenPair) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(JwtPair {
            access: pair.access,
            refresh: pair.refresh,
        })
}

/// The public keys that verify this server's JWTs (RS256), for services that check JWTs
/// offline. During a key rotation it lists the previous key too.
#[utoipa::path(tag = "auth",
    responses((status = 200, description = "a JWK Set: {\"keys\": [{\"kty\": \"RSA\", \"kid\", \"n\", \"e\", \"alg\": \"RS256\", \"use\": \"sig\"}]}")))]
#[get("/iam/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.gateway.jwks())
}

/// For API gateways (nginx `auth_request`): 204 with the caller's identity in headers, or 401.
/// `min_role` (id or name) answers 403 when the credential's role ranks lower.
#[utoipa::path(tag = "auth",
    params(("min_role" = Option<String>, Query, description = "role id or name the credential must reach")),
    responses((status = 204, description = "headers X-Auth-Account-Id, X-Auth-User-Id, X-Auth-Role, X-Auth-Token-Id"),
              (status = 400, description = "unknown min_role"), (status = 401, body = Message), (status = 403, body = Message),
              (status = 503, description = "the database is unreachable and this instance has not verified the token recently; Retry-After says when to try again", body = Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/auth/check")]
pub async fn check(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    // Borrowed from the request, not extracted: extracting clones an `Arc`, a cache line that
    // two busy workers would pass back and forth on every check.
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "the application state is not registered"
        )));
    };
    let answer = gateway_answer(&req, state).await;
    let status = match &answer {
        Ok(response) => response.status(),
        Err(e) => actix_web::ResponseError::status_code(e),
    };
    let outcome = match status.as_u16() {
        204 => Some(CheckOutcome::ok),
        401 => Some(CheckOutcome::unauthorized),
        403 => Some(CheckOutcome::forbidden),
        503 => Some(CheckOutcome::unavailable),
        _ => None,
    };
    if let Some(outcome) = outcome {
        state.metrics().check(outcome);
    }
    answer
}

const X_AUTH_ACCOUNT_ID: HeaderName = HeaderName::from_static("x-auth-account-id");
const X_AUTH_USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
const X_AUTH_ROLE: HeaderName = HeaderName::from_static("x-auth-role");
const X_AUTH_TOKEN_ID: HeaderName = HeaderName::from_static("x-auth-token-id");
const X_AUTH_STALE: HeaderName = HeaderName::from_static("x-auth-stale");

async fn gateway_answer(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    let credential = state
        .gateway
        .authenticate_from(authorization(req), || {
            client_facts(req, &state.settings.trusted_proxies)
        })
        .await?;
    if let Some(wanted) = min_role(req.query_string())? {
        if credential.actor.role.rank() < wanted.rank() {
            return Err(ApiError::Forbidden(format!(
                "This needs the role {wanted} or higher."
            )));
        }
    }
    if let Some(routes) = &credential.routes {
        if let Some(refusal) = route_refusal(req, routes) {
            if let Some(id) = credential.token_id {
                state.gateway.count_refusal(id, Refusal::Route);
            }
            return Ok(refusal);
        }
    }
    if let (Some(rate), Some(id)) = (credential.rate, credential.token_id) {
        if let Err(wait) = state.gateway.take_rate(id, rate).await {
            state.gateway.count_refusal(id, Refusal::Rate);
            // 403 for nginx's auth_request, which passes only 401 and 403 on; its recipe
            // turns this one into a 429 for the client (`X-Auth-Reason`).
            let mut refused = HttpResponse::Forbidden();
            refused.insert_header((X_AUTH_REASON, HeaderValue::from_static("rate-limited")));
            super::error::rate_headers(&mut refused, rate, wait);
            return Ok(refused.json(Message {
                message: super::error::rate_message(rate),
            }));
        }
    }
    if let (Some(quota), Some(id)) = (credential.quota, credential.token_id) {
        match state.gateway.take_quota(id, quota).await {
            Ok(()) => {}
            Err(QuotaRefusal::Spent(refill)) => {
                state.gateway.count_refusal(id, Refusal::Quota);
                let mut refused = HttpResponse::Forbidden();
                refused.insert_header((X_AUTH_REASON, HeaderValue::from_static("quota")));
                if let Some(at) = refill {
                    let secs = until(at, state.clock().now()).as_secs().max(1);
                    refused.insert_header((actix_web::http::header::RETRY_AFTER, secs));
                }
                return Ok(refused.json(Message {
                    message: super::error::quota_message(refill.is_some()),
                }));
            }
            Err(QuotaRefusal::Unavailable) => {
                return Err(ApiError::Unavailable("quota lease".into()))
            }
        }
    }
    let actor = &credential.actor;
    let mut response = HttpResponse::NoContent().finish();
    let headers = response.headers_mut();
    headers.insert(X_AUTH_ACCOUNT_ID, int_header(actor.account_id.get()));
    headers.insert(X_AUTH_USER_ID, int_header(actor.user_id.get()));
    headers.insert(X_AUTH_ROLE, HeaderValue::from_static(actor.role.id_str()));
    if let Some(id) = credential.token_id {
        headers.insert(X_AUTH_TOKEN_ID, int_header(id.get()));
    }
    if credential.stale {
        // The database is unreachable: this answer comes from what the instance last knew.
        headers.insert(X_AUTH_STALE, HeaderValue::from_static("1"));
    }
    Ok(response)
}

const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_AUTH_REASON: HeaderName = HeaderName::from_static("x-auth-reason");

/// A token with allowed routes passes the gateway only for a request they admit, read from
/// `X-Original-Method` and `X-Original-URI` (the nginx recipe sets them); without them it is
/// refused (fail closed). `None`: admitted.
fn route_refusal(
    req: &HttpRequest,
    routes: &[crate::domain::routes::Route],
) -> Option<HttpResponse> {
    let header = |name: &HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    let message = match (header(&X_ORIGINAL_METHOD), header(&X_ORIGINAL_URI)) {
        (Some(method), Some(uri)) if crate::domain::routes::admits(routes, method, uri) => {
            return None
        }
        (Some(_), Some(_)) => "This token is limited to its allowed routes, and this request isn't one of them.",
        _ => "This token is limited to allowed routes: the gateway must send X-Original-Method and X-Original-URI.",
    };
    Some(
        HttpResponse::Forbidden()
            .insert_header((X_AUTH_REASON, HeaderValue::from_static("route")))
            .json(Message {
                message: message.into(),
            }),
    )
}

/// From `now` until `at` (zero if past).
fn until(at: time::OffsetDateTime, now: time::OffsetDateTime) -> std::time::Duration {
    std::time::Duration::try_from(at - now).unwrap_or_default()
}

/// An id as a header value, in one allocation (`HeaderValue::from(i64)` makes two: a buffer
/// that grows, then its shared form).
fn int_header(n: i64) -> HeaderValue {
    HeaderValue::from_bytes(itoa::Buffer::new().format(n).as_bytes())
        .expect("decimal digits are a header value")
}

fn min_role(query: &str) -> Result<Option<Role>, ApiError> {
    if query.is_empty() {
        return Ok(None);
    }
    for (key, value) in url_pairs(query)? {
        if key == "min_role" {
            return Role::parse(&value)
                .map(Some)
                .ok_or_else(|| ApiError::field("min_role", format!("Invalid role: {value}")));
        }
    }
    Ok(None)
}

/// The query string's pairs; one that can't be decoded is a 400, not an empty filter.
pub fn url_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map_err(|_| ApiError::field("non_field_errors", "The query string could not be decoded."))
}
