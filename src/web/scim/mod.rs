//! SCIM 2.0 at `/scim/v2` (RFC 7644): discovery and `Users`, for an identity provider holding
//! the account's SCIM token. Every answer, errors included, is `application/scim+json`. The
//! account comes from the token alone; the rules are in `services::scim`.

mod discovery;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::domain::scim::UserView;
use crate::domain::scim::{
    parse_filter, Projection, ScimProblem, UserInput, DEFAULT_COUNT, LIST_SCHEMA, MAX_RESULTS,
};
use crate::domain::UserId;
use crate::error::ServiceError;
use crate::services::people::scim::ScimError;
use crate::services::vocabulary::AccountInfo;
use crate::web::error::{BUSY_MESSAGE, RETRY_AFTER_SECS, UNAVAILABLE_MESSAGE};
use crate::web::ids::Id;
use crate::web::AppState;

const CONTENT_TYPE: &str = "application/scim+json";
/// Largest body read (a User is well under 4 KB; a PATCH of 100 operations too).
const MAX_BODY: usize = 64 * 1024;

/// An answer that went wrong, as RFC 7644 §3.12 shapes it.
#[derive(Debug)]
pub struct ScimHttpError(ScimProblem);

impl std::fmt::Display for ScimHttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0.status, self.0.detail)
    }
}

impl From<ScimProblem> for ScimHttpError {
    fn from(p: ScimProblem) -> Self {
        ScimHttpError(p)
    }
}

impl From<ServiceError> for ScimHttpError {
    fn from(e: ServiceError) -> Self {
        ScimHttpError(match e {
            ServiceError::NotFound => ScimProblem::new(404, None, "Not found."),
            ServiceError::Forbidden(m) => ScimProblem::new(403, None, m),
            ServiceError::Invalid(fields) => ScimProblem::invalid_value(
                fields
                    .into_iter()
                    .map(|(f, m)| format!("{f}: {m}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ServiceError::Conflict(m) => ScimProblem::new(409, Some("uniqueness"), m),
            ServiceError::TokensInTheWay { .. } => {
                ScimProblem::new(409, None, "The user's tokens stand in the way.")
            }
            ServiceError::Unavailable(why) => {
                tracing::debug!(error = %why, "SCIM answered 503");
                ScimProblem::new(503, None, UNAVAILABLE_MESSAGE)
            }
            ServiceError::Busy => ScimProblem::new(503, None, BUSY_MESSAGE),
            ServiceError::Database(e) => internal(&e),
            ServiceError::Internal(e) => internal(&e),
        })
    }
}

fn internal(e: &dyn std::fmt::Display) -> ScimProblem {
    tracing::error!(error = %e, "internal error in SCIM");
    ScimProblem::new(500, None, "Internal server error.")
}

impl From<ScimError> for ScimHttpError {
    fn from(e: ScimError) -> Self {
        match e {
            ScimError::Problem(p) => ScimHttpError(p),
            ScimError::Service(s) => s.into(),
        }
    }
}

impl ResponseError for ScimHttpError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(CONTENT_TYPE);
        match self.0.status {
            401 => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"SCIM\""));
            }
            503 => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            _ => {}
        }
        response.body(self.0.to_json().to_string())
    }
}

type Answer = Result<HttpResponse, ScimHttpError>;

fn scim_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(CONTENT_TYPE)
        .body(body.to_string())
}

/// The account whose SCIM token the request carries (`Authorization: Bearer <token>`).
async fn account(req: &HttpRequest, state: &AppState) -> Result<AccountInfo, ScimHttpError> {
    let unauthorized = || {
        ScimHttpError(ScimProblem::new(
            401,
            None,
            "Send the account's SCIM token as Authorization: Bearer <token>. An Administrator makes one on the Users page.",
        ))
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .ok_or_else(unauthorized)?;
    state
        .scim
        .account_of(presented)
        .await?
        .ok_or_else(unauthorized)
}

/// The query's parameters, names in any case (`startIndex`, `startindex`).
struct Params(Vec<(String, String)>);

impl Params {
    fn of(req: &HttpRequest) -> Result<Params, ScimHttpError> {
        serde_urlencoded::from_str(req.query_string())
            .map(Params)
            .map_err(|_| ScimProblem::invalid_syntax("The query string could not be read.").into())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, name: &str, default: i64) -> Result<i64, ScimHttpError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse::<i64>().map_err(|_| {
                ScimProblem::invalid_value(format!("{name} must be a whole number.")).into()
            }),
        }
    }

    fn projection(&self) -> Projection {
        Projection::parse(self.get("attributes"), self.get("excludedAttributes"))
    }
}

/// Reads a JSON body of at most 64 KB.
async fn body(mut payload: web::Payload) -> Result<Value, ScimHttpError> {
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ScimProblem::invalid_syntax(format!("The body could not be read: {e}."))
        })?;
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(ScimProblem::new(413, None, "The body is larger than 64 KB.").into());
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ScimProblem::invalid_syntax(format!("The body is not valid JSON: {e}.")).into()
    })
}

/// SCIM's "not found", for an id that isn't one (`web::ids`).
pub fn no_such_user() -> ScimHttpError {
    ScimProblem::new(404, None, "There is no such user in this account.").into()
}

fn user_json(user: &UserView, params: &Params) -> Value {
    params.projection().apply(user.to_json())
}

fn list_response(resources: Vec<Value>, total: i64, start: i64) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

async fn list_users(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let account = account(&req, &state).await?;
    let params = Params::of(&req)?;
    let filter = params.get("filter").map(parse_filter).transpose()?;
    // RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count is 0.
    let start = params.number("startIndex", 1)?.max(1);
    let count = params.number("count", DEFAULT_COUNT)?.clamp(0, MAX_RESULTS);
    let (total, users) = state.scim.list(account.id, filter, start, count).await?;
    let resources = users.iter().map(|u| user_json(u, &params)).collect();
    Ok(scim_json(
        StatusCode::OK,
        &list_response(resources, total, start),
    ))
}

async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Answer {
    let account = account(&req, &state).await?;
    let params = Params::of(&req)?;
    let input = UserInput::from_json(&body(payload).await?)?;
    let user = state.scim.create(account.id, input).await?;
    let location = user.location.clone();
    let mut response = scim_json(StatusCode::CREATED, &user_json(&user, &params));
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn get_user(req: HttpRequest, state: web::Data<AppState>, id: Id<UserId>) -> Answer {
    let account = account(&req, &state).await?;
    let params = Params::of(&req)?;
    let id = id.get();
    let user = state.scim.get(account.id, id).await?;
    Ok(scim_json(StatusCode::OK, &user_json(&user, &params)))
}

async fn replace_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: Id<UserId>,
    payload: web::Payload,
) -> Answer {
    let account = account(&req, &state).await?;
    let params = Params::of(&req)?;
    let id = id.get();
    let input = UserInput::from_json(&body(payload).await?)?;
    let user = state.scim.replace(account.id, id, input).await?;
    Ok(scim_json(StatusCode::OK, &user_json(&user, &params)))
}

async fn patch_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: Id<UserId>,
    payload: web::Payload,
) -> Answer {
    let account = account(&req, &state).await?;
    let params = Params::of(&req)?;
    let id = id.get();
    let ops = body(payload).await?;
    let user = state.scim.patch(account.id, id, ops).await?;
    Ok(scim_json(StatusCode::OK, &user_json(&user, &params)))
}

async fn delete_user(req: HttpRequest, state: web::Data<AppState>, id: Id<UserId>) -> Answer {
    let account = account(&req, &state).await?;
    let id = id.get();
    state.scim.delete(account.id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn service_provider_config(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    account(&req, &state).await?;
    Ok(scim_json(
        StatusCode::OK,
        &discovery::service_provider_config(state.scim.base_url()),
    ))
}

/// A list of discovery resources, or one by id (`/Schemas/{id}`, `/ResourceTypes/{id}`).
fn one_or_all(all: Vec<Value>, id: Option<&str>) -> Answer {
    match id {
        None => {
            let n = all.len() as i64;
            Ok(scim_json(StatusCode::OK, &list_response(all, n, 1)))
        }
        Some(id) => all
            .into_iter()
            .find(|r| r["id"] == id)
            .map(|r| scim_json(StatusCode::OK, &r))
            .ok_or_else(|| ScimProblem::new(404, None, format!("There is no {id} here.")).into()),
    }
}

async fn resource_types(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    account(&req, &state).await?;
    one_or_all(
        discovery::resource_types(state.scim.base_url()),
        req.match_info().get("id"),
    )
}

async fn schemas(req: HttpRequest, state: web::Data<AppState>) -> Answer {
    account(&req, &state).await?;
    one_or_all(
        discovery::schemas(state.scim.base_url()),
        req.match_info().get("id"),
    )
}

async fn method_not_allowed() -> Answer {
    Err(ScimProblem::new(405, None, "This method isn't allowed here.").into())
}

/// `POST /.search` across resource types: not offered (RFC 7644 §3.4.3 lets a server say 501).
async fn search_all() -> Answer {
    Err(ScimProblem::new(
        501,
        None,
        "Searching across resource types isn't supported; query /Users.",
    )
    .into())
}

async fn not_found() -> Answer {
    Err(ScimProblem::new(404, None, "There is no such SCIM endpoint here.").into())
}

/// A discovery endpoint: GET only, 405 for the rest.
fn only_get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(method_not_allowed))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scim/v2")
            .service(
                web::resource("/Users")
                    .route(web::get().to(list_users))
                    .route(web::post().to(create_user))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/Users/{userId}")
                    .route(web::get().to(get_user))
                    .route(web::put().to(replace_user))
                    .route(web::patch().to(patch_user))
                    .route(web::delete().to(delete_user))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(only_get("/ServiceProviderConfig", service_provider_config))
            .service(only_get("/ResourceTypes", resource_types))
            .service(only_get("/ResourceTypes/{id}", resource_types))
            .service(only_get("/Schemas", schemas))
            .service(only_get("/Schemas/{id}", schemas))
            .service(web::resource("/.search").route(web::post().to(search_all)))
            .default_service(web::to(not_found)),
    );
}
