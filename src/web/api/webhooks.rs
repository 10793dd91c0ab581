//! An account's webhook endpoints through the API (ours; Administrators):
//! `GET`/`POST /iam/clients/{clientId}/webhooks`, `GET`/`PATCH`/`DELETE .../{webhookId}`, the
//! secret's rotation, a test event, the delivery log and a redelivery.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::body::{BodyErrors, Field, JsonBody};
use super::error::ApiError;
use crate::domain::webhook::WebhookType;
use crate::domain::{AccountId, DeliveryId, WebhookId};
use crate::services::webhooks::{DeliveryView, EndpointChange, EndpointView};
use crate::web::ids::Id;
use crate::web::AppState;

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiWebhook {
    pub id: i64,
    pub url: String,
    pub description: String,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why the service turned it off (3 days of failed deliveries), if it did.
    pub disabled_reason: Option<String>,
    /// Every attempt has failed since then.
    pub failing_since: Option<String>,
    /// After a rotation, the old secret signs beside the new one until then.
    pub previous_secret_until: Option<String>,
    pub created_at: String,
}

impl From<EndpointView> for ApiWebhook {
    fn from(v: EndpointView) -> ApiWebhook {
        ApiWebhook {
            id: v.id.get(),
            url: v.url,
            description: v.description,
            events: v.events.iter().map(|t| t.as_str().to_owned()).collect(),
            enabled: v.enabled,
            disabled_reason: v.disabled_reason,
            failing_since: v.failing_since.map(rfc3339),
            previous_secret_until: v.previous_secret_until.map(rfc3339),
            created_at: rfc3339(v.created_at),
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiWebhookWithSecret {
    #[serde(flatten)]
    pub webhook: ApiWebhook,
    /// `whsec_<base64>`: verify each delivery's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

/// A line of an endpoint's delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiDelivery {
    pub id: i64,
    /// The `webhook-id` header, the same on every attempt.
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    pub next_attempt_at: Option<String>,
    /// The receiver's HTTP status at the last attempt.
    pub response_code: Option<i32>,
    pub latency_ms: Option<i32>,
    pub error: Option<String>,
}

impl From<DeliveryView> for ApiDelivery {
    fn from(d: DeliveryView) -> ApiDelivery {
        ApiDelivery {
            id: d.id.get(),
            webhook_id: d.msg_id,
            event_type: d.event_type,
            status: d.state,
            attempts: d.attempts,
            created_at: rfc3339(d.created_at),
            last_attempt_at: d.last_attempt_at.map(rfc3339),
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            response_code: d.last_status,
            latency_ms: d.last_latency_ms,
            error: d.last_error,
        }
    }
}

/// An endpoint to add, or what to change of one.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WebhookBody {
    /// `https://…` (plain http only to hosts the operator lists).
    #[serde(default)]
    #[schema(value_type = String)]
    url: Field<String>,
    /// Event types (`token.revoked`, …); empty or absent: every type.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    events: Field<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    description: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    enabled: Field<bool>,
}

impl WebhookBody {
    /// The change it asks for, every field's problem at once.
    fn change(self, creating: bool) -> Result<EndpointChange, ApiError> {
        let mut errors = BodyErrors::default();
        let mut change = EndpointChange::default();
        match self.url {
            Field::Value(u) => change.url = Some(u),
            Field::Absent | Field::Null if !creating => {}
            _ => errors.set(
                "url",
                "This field is required: the https:// URL that receives the events.",
            ),
        }
        match self.events {
            Field::Value(names) => {
                let mut types = vec![];
                for name in &names {
                    match WebhookType::parse(name) {
                        None => errors.set(
                            "events",
                            format!(
                                "Unknown event type {:?}: one of {}.",
                                name.chars().take(60).collect::<String>(),
                                WebhookType::ALL
                                    .iter()
                                    .map(|t| t.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ),
                        Some(t) => types.push(t),
                    }
                }
                change.events = Some(types);
            }
            Field::Null => change.events = Some(vec![]),
            Field::Absent => {}
            Field::WrongType(_) => errors.set("events", "A list of event types."),
        }
        match self.description {
            Field::Value(d) => change.description = Some(d),
            Field::Null => change.description = Some(String::new()),
            Field::Absent => {}
            Field::WrongType(_) => errors.set("description", "A string."),
        }
        match self.enabled {
            Field::Value(b) => change.enabled = Some(b),
            Field::Absent | Field::Null => {}
            Field::WrongType(_) => errors.set("enabled", "true or false."),
        }
        errors.finish(Some(change))
    }
}

/// The account's webhook endpoints (ours; Administrators).
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path)),
    responses((status = 200, body = [ApiWebhook]), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/webhooks")]
pub async fn list(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let list = state.webhooks.list(caller.0.actor).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(ApiWebhook::from).collect::<Vec<_>>()))
}

/// Add a webhook endpoint (ours; Administrators). The answer has its signing secret, once.
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path)), request_body = WebhookBody,
    responses((status = 201, body = ApiWebhookWithSecret), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/{clientId}/webhooks")]
pub async fn create(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    body: JsonBody<WebhookBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    caller.0.actor.require_admin()?;
    let change = body.into_inner().change(true)?;
    let (view, secret) = state.webhooks.create(caller.0.actor, change).await?;
    Ok(HttpResponse::Created().json(ApiWebhookWithSecret {
        webhook: view.into(),
        secret,
    }))
}

/// One webhook endpoint (ours; Administrators).
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path), ("webhookId" = i64, Path)),
    responses((status = 200, body = ApiWebhook), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/webhooks/{webhookId}")]
pub async fn one(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let view = state.webhooks.get(caller.0.actor, id.get()).await?;
    Ok(HttpResponse::Ok().json(ApiWebhook::from(view)))
}

/// Change a webhook endpoint: its URL, events, description, or `enabled` (ours;
/// Administrators). Turning it on again clears its failing streak. Audited.
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path), ("webhookId" = i64, Path)), request_body = WebhookBody,
    responses((status = 200, body = ApiWebhook), (status = 400), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[patch("/iam/clients/{clientId}/webhooks/{webhookId}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<WebhookId>,
    body: JsonBody<WebhookBody>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    caller.0.actor.require_admin()?;
    let change = body.into_inner().change(false)?;
    let view = state
        .webhooks
        .update(caller.0.actor, id.get(), change)
        .await?;
    Ok(HttpResponse::Ok().json(ApiWebhook::from(view)))
}

/// Remove a webhook endpoint and its delivery log (ours; Administrators). Audited.
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path), ("webhookId" = i64, Path)),
    responses((status = 204), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[delete("/iam/clients/{clientId}/webhooks/{webhookId}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    state.webhooks.delete(caller.0.actor, id.get()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, shown once; the old one keeps signing beside it for 24 hours
/// (ours; Administrators). Audited.
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path), ("webhookId" = i64, Path)),
    responses((status = 200, body = ApiWebhookWithSecret), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/{clientId}/webhooks/{webhookId}/rotate-secret")]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let (view, secret) = state
        .webhooks
        .rotate_secret(caller.0.actor, id.get())
        .await?;
    Ok(HttpResponse::Ok().json(ApiWebhookWithSecret {
        webhook: view.into(),
        secret,
    }))
}

/// The id of a queued test event.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiQueued {
    pub webhook_id: String,
}

/// Send a `ping` to the endpoint (ours; Administrators): 202 with its `webhook-id`.
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path), ("webhookId" = i64, Path)),
    responses((status = 202, body = ApiQueued), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/{clientId}/webhooks/{webhookId}/test")]
pub async fn test(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let webhook_id = state.webhooks.ping(caller.0.actor, id.get()).await?;
    Ok(HttpResponse::Accepted().json(ApiQueued { webhook_id }))
}

/// The endpoint's delivery log, newest first, the last 100 (ours; Administrators).
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path), ("webhookId" = i64, Path)),
    responses((status = 200, body = [ApiDelivery]), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[get("/iam/clients/{clientId}/webhooks/{webhookId}/deliveries")]
pub async fn deliveries(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    let log = state.webhooks.log(caller.0.actor, id.get()).await?;
    Ok(HttpResponse::Ok().json(log.into_iter().map(ApiDelivery::from).collect::<Vec<_>>()))
}

/// Send a delivered or failed message again, with the same `webhook-id` and body (ours;
/// Administrators).
#[utoipa::path(tag = "webhooks", params(("clientId" = i64, Path), ("webhookId" = i64, Path), ("deliveryId" = i64, Path)),
    responses((status = 202), (status = 401, body = super::model::Message),
              (status = 403, body = super::model::Message), (status = 404, body = super::model::Message)),
    security(("APIKey" = []), ("Bearer" = [])))]
#[post("/iam/clients/{clientId}/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver")]
pub async fn redeliver(
    state: web::Data<AppState>,
    caller: ApiCaller,
    account: Id<AccountId>,
    id: Id<WebhookId>,
    delivery: Id<DeliveryId>,
) -> Result<HttpResponse, ApiError> {
    caller.own_account(account)?;
    state
        .webhooks
        .redeliver(caller.0.actor, id.get(), delivery.get())
        .await?;
    Ok(HttpResponse::Accepted().finish())
}
