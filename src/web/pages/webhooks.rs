//! The Webhooks page (Administrators): the account's endpoints, adding one (its signing
//! secret shown once), and an endpoint's page with its delivery log, "Send test event",
//! "Redeliver", the secret's rotation, turning it off and on, and removing it. Adding an
//! endpoint, rotating its secret and removing it are sudo acts.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

use crate::domain::webhook::WebhookType;
use crate::domain::{DeliveryId, WebhookId};
use crate::error::ServiceError;
use crate::services::webhooks::{DeliveryView, EndpointChange, EndpointView};
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::ids::Id;
use crate::web::pages::login::NoFields;
use crate::web::views::{render, see_other, ErrorSummary, Layout};
use crate::web::{AppState, WebError};

fn when(at: time::OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ))
    .unwrap_or_default()
}

/// An endpoint as a row.
struct Row {
    id: i64,
    url: String,
    description: String,
    events: String,
    status: &'static str,
    note: String,
}

impl Row {
    fn of(e: &EndpointView) -> Row {
        Row {
            id: e.id.get(),
            url: e.url.clone(),
            description: e.description.clone(),
            events: if e.events.is_empty() {
                "Every event".into()
            } else {
                e.events
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            status: match (e.enabled, e.failing_since) {
                (false, _) => "Off",
                (true, Some(_)) => "Failing",
                (true, None) => "On",
            },
            note: match (&e.disabled_reason, e.failing_since) {
                (Some(r), _) => r.clone(),
                (None, Some(since)) => format!("Every delivery has failed since {}.", when(since)),
                _ => String::new(),
            },
        }
    }
}

struct TypeChoice {
    name: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    url: String,
    description: String,
    types: Vec<TypeChoice>,
    summary: ErrorSummary,
    /// The new endpoint's secret, shown once.
    secret: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct EndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    /// `event:<type>` checkboxes.
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

impl EndpointForm {
    fn events(&self) -> Vec<WebhookType> {
        self.rest
            .keys()
            .filter_map(|k| k.strip_prefix("event:"))
            .filter_map(WebhookType::parse)
            .collect()
    }
}

fn types(chosen: &[WebhookType]) -> Vec<TypeChoice> {
    WebhookType::ALL
        .iter()
        .filter(|t| **t != WebhookType::Ping)
        .map(|t| TypeChoice {
            name: t.as_str(),
            checked: chosen.contains(t),
        })
        .collect()
}

async fn list_page(
    state: &AppState,
    me: &SignedIn,
    typed: Option<&EndpointForm>,
    summary: ErrorSummary,
    secret: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let endpoints = state.webhooks.list(me.actor()).await?;
    render(
        status,
        &ListPage {
            layout: me.layout("webhooks"),
            rows: endpoints.iter().map(Row::of).collect(),
            url: typed.map(|t| t.url.clone()).unwrap_or_default(),
            description: typed.map(|t| t.description.clone()).unwrap_or_default(),
            types: types(&typed.map(EndpointForm::events).unwrap_or_default()),
            summary,
            secret,
        },
    )
}

#[get("/webhooks")]
pub async fn list(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    list_page(
        &state,
        &me,
        None,
        ErrorSummary::new("error-summary-webhooks"),
        None,
        StatusCode::OK,
    )
    .await
}

#[post("/webhooks")]
pub async fn add(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<EndpointForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let fields = super::sudo::fields_of(&*form);
    if let Some(ask) = super::sudo::unless_recent(&state, &me, "/webhooks", fields).await? {
        return Ok(ask);
    }
    let change = EndpointChange {
        url: Some(form.url.clone()),
        description: Some(form.description.clone()),
        events: Some(form.events()),
        enabled: Some(true),
    };
    match state.webhooks.create(me.actor(), change).await {
        Ok((_, secret)) => {
            let s = ErrorSummary::new("error-summary-webhooks");
            list_page(&state, &me, None, s, Some(secret), StatusCode::OK).await
        }
        Err(ServiceError::Invalid(problems)) => {
            let mut s = ErrorSummary::new("error-summary-webhooks");
            for (field, m) in problems {
                s.add(field, m);
            }
            list_page(&state, &me, Some(&form), s, None, StatusCode::BAD_REQUEST).await
        }
        Err(ServiceError::Conflict(m)) => {
            let s = ErrorSummary::one("error-summary-webhooks", "url", &m);
            list_page(&state, &me, Some(&form), s, None, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A delivery as a row of the log.
struct LogRow {
    id: i64,
    msg_id: String,
    event_type: String,
    state: String,
    attempts: i32,
    created: String,
    last: String,
    next: String,
    code: String,
    latency: String,
    error: String,
}

impl LogRow {
    fn of(d: DeliveryView) -> LogRow {
        LogRow {
            id: d.id.get(),
            msg_id: d.msg_id,
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            created: when(d.created_at),
            last: d.last_attempt_at.map(when).unwrap_or_default(),
            next: d.next_attempt_at.map(when).unwrap_or_default(),
            code: d.last_status.map(|c| c.to_string()).unwrap_or_default(),
            latency: d
                .last_latency_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
            error: d.last_error.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct EndpointPage {
    layout: Layout,
    row: Row,
    enabled: bool,
    previous_secret_until: String,
    log: Vec<LogRow>,
    secret: Option<String>,
}

async fn endpoint_page(
    state: &AppState,
    me: &SignedIn,
    id: WebhookId,
    secret: Option<String>,
) -> Result<HttpResponse, WebError> {
    let e = state.webhooks.get(me.actor(), id).await?;
    let log = state.webhooks.log(me.actor(), id).await?;
    render(
        StatusCode::OK,
        &EndpointPage {
            layout: me.layout("webhooks"),
            row: Row::of(&e),
            enabled: e.enabled,
            previous_secret_until: e.previous_secret_until.map(when).unwrap_or_default(),
            log: log.into_iter().map(LogRow::of).collect(),
            secret,
        },
    )
}

#[get("/webhooks/{webhookId}")]
pub async fn show(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<WebhookId>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    endpoint_page(&state, &me, id.get(), None).await
}

#[post("/webhooks/{webhookId}/test")]
pub async fn test(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<WebhookId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let msg = state.webhooks.ping(me.actor(), id.get()).await?;
    me.session.set_flash(&format!(
        "Test event {msg} queued: its delivery shows below."
    ));
    Ok(see_other(&format!("/webhooks/{}", id.get())))
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct EnabledForm {
    #[serde(default)]
    enabled: String,
}

#[post("/webhooks/{webhookId}/enabled")]
pub async fn set_enabled(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<WebhookId>,
    form: CsrfForm<EnabledForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let on = form.enabled == "1";
    let change = EndpointChange {
        enabled: Some(on),
        ..EndpointChange::default()
    };
    state.webhooks.update(me.actor(), id.get(), change).await?;
    me.session.set_flash(if on {
        "Endpoint on: new events go to it."
    } else {
        "Endpoint off: nothing is sent to it until you turn it on."
    });
    Ok(see_other(&format!("/webhooks/{}", id.get())))
}

#[post("/webhooks/{webhookId}/rotate-secret")]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<WebhookId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let action = format!("/webhooks/{}/rotate-secret", id.get());
    if let Some(ask) = super::sudo::unless_recent(&state, &me, &action, vec![]).await? {
        return Ok(ask);
    }
    let (_, secret) = state.webhooks.rotate_secret(me.actor(), id.get()).await?;
    endpoint_page(&state, &me, id.get(), Some(secret)).await
}

#[post("/webhooks/{webhookId}/delete")]
pub async fn remove(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<WebhookId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let action = format!("/webhooks/{}/delete", id.get());
    if let Some(ask) = super::sudo::unless_recent(&state, &me, &action, vec![]).await? {
        return Ok(ask);
    }
    state.webhooks.delete(me.actor(), id.get()).await?;
    me.session
        .set_flash("Endpoint removed, with its delivery log.");
    Ok(see_other("/webhooks"))
}

#[post("/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver")]
pub async fn redeliver(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<WebhookId>,
    delivery: Id<DeliveryId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    state
        .webhooks
        .redeliver(me.actor(), id.get(), delivery.get())
        .await?;
    me.session
        .set_flash("Sent again, with the same webhook-id: its new attempt shows below.");
    Ok(see_other(&format!("/webhooks/{}", id.get())))
}
