//! Events out: an account's webhook endpoints (`endpoints`), the outbox written with the
//! events they tell (`outbox`, which `audit::write` feeds), and the worker that delivers it,
//! signed as the Standard Webhooks specification says (`delivery`).

pub mod delivery;
pub mod endpoints;
pub mod outbox;

use std::sync::Arc;

use time::Duration;

use crate::config::Settings;
use crate::domain::second_factor::SealKey;
use crate::domain::token::to_naive;
use crate::domain::webhook::{check_url, forbidden_address, host_allowed};
use crate::domain::{DeliveryId, WebhookId};
use crate::error::{ServiceError, ServiceResult};
use crate::services::runtime::Runtime;
use crate::services::vocabulary::Actor;

pub use delivery::Delivered;
pub use endpoints::{DeliveryView, EndpointChange, EndpointView};

/// How long the delivery log keeps finished messages.
pub const KEEP_LOG: Duration = Duration::days(30);

/// The webhooks room.
#[derive(Clone)]
pub struct Webhooks {
    rt: Runtime,
    seal: SealKey,
    allow_hosts: Arc<Vec<String>>,
    deliverer: delivery::Deliverer,
}

impl Webhooks {
    pub fn new(
        rt: Runtime,
        settings: &Settings,
        mail: Arc<crate::services::notices::Mail>,
    ) -> anyhow::Result<Webhooks> {
        let seal = SealKey::derive(settings.secret_key.bytes());
        let allow_hosts = Arc::new(settings.webhook_allow_hosts.clone());
        Ok(Webhooks {
            deliverer: delivery::Deliverer {
                rt: rt.clone(),
                mail,
                client: delivery::client(allow_hosts.clone())?,
                allow_hosts: allow_hosts.clone(),
                seal: seal.clone(),
            },
            rt,
            seal,
            allow_hosts,
        })
    }

    /// Checks a URL as an endpoint's: the offline rules, then what its host resolves to now
    /// (every attempt checks again).
    async fn checked_url(&self, raw: &str) -> ServiceResult<String> {
        let url = check_url(raw, &self.allow_hosts).map_err(|m| ServiceError::invalid("url", m))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        if url.domain().is_some() && !host_allowed(&host, &self.allow_hosts) {
            let port = url.port_or_known_default().unwrap_or(443);
            let lookup = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio::net::lookup_host((host.clone(), port)),
            )
            .await;
            if let Ok(Ok(found)) = lookup {
                let found: Vec<_> = found.collect();
                if !found.is_empty() && found.iter().all(|a| forbidden_address(a.ip())) {
                    return Err(ServiceError::invalid(
                        "url",
                        format!(
                            "{host} resolves to a private, loopback, link-local or metadata address: webhooks go to public addresses."
                        ),
                    ));
                }
            }
        }
        Ok(url.to_string())
    }

    pub async fn list(&self, actor: Actor) -> ServiceResult<Vec<EndpointView>> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| endpoints::list(conn, &actor, now))
            .await
    }

    pub async fn get(&self, actor: Actor, id: WebhookId) -> ServiceResult<EndpointView> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| endpoints::get(conn, &actor, id, now))
            .await
    }

    /// Adds an endpoint; its view and the signing secret, shown once.
    pub async fn create(
        &self,
        actor: Actor,
        mut new: EndpointChange,
    ) -> ServiceResult<(EndpointView, String)> {
        actor.require_admin()?;
        new.url = Some(self.checked_url(new.url.as_deref().unwrap_or("")).await?);
        let seal = self.seal.clone();
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| endpoints::create(conn, &actor, new, &seal, now))
            .await
    }

    pub async fn update(
        &self,
        actor: Actor,
        id: WebhookId,
        mut change: EndpointChange,
    ) -> ServiceResult<EndpointView> {
        actor.require_admin()?;
        if let Some(url) = &change.url {
            change.url = Some(self.checked_url(url).await?);
        }
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| endpoints::update(conn, &actor, id, change, now))
            .await
    }

    pub async fn rotate_secret(
        &self,
        actor: Actor,
        id: WebhookId,
    ) -> ServiceResult<(EndpointView, String)> {
        let seal = self.seal.clone();
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| endpoints::rotate_secret(conn, &actor, id, &seal, now))
            .await
    }

    pub async fn delete(&self, actor: Actor, id: WebhookId) -> ServiceResult<()> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| endpoints::delete(conn, &actor, id, now))
            .await
    }

    /// Sends a `ping` ("Send test event"); its `webhook-id`.
    pub async fn ping(&self, actor: Actor, id: WebhookId) -> ServiceResult<String> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| endpoints::ping(conn, &actor, id, now))
            .await
    }

    pub async fn log(&self, actor: Actor, id: WebhookId) -> ServiceResult<Vec<DeliveryView>> {
        self.rt
            .db
            .run(move |conn| endpoints::log(conn, &actor, id))
            .await
    }

    pub async fn redeliver(
        &self,
        actor: Actor,
        id: WebhookId,
        delivery: DeliveryId,
    ) -> ServiceResult<()> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| endpoints::redeliver(conn, &actor, id, delivery, now))
            .await
    }

    /// Delivers what is due now (the worker's pass).
    pub async fn deliver_due(&self) -> ServiceResult<Delivered> {
        self.deliverer.deliver_due().await
    }

    /// The sweep's part: `token.expiring` and `token.expired` queued, old log rows forgotten.
    pub async fn sweep(&self, now: time::OffsetDateTime) -> ServiceResult<usize> {
        self.rt
            .db
            .run(move |conn| {
                // No transaction: what it queues is keyed (once per token and endpoint), so a
                // sweep cut short is finished by the next; and on SQLite a read turning into a
                // write inside one can't wait for the delivery worker's writes.
                let queued = outbox::enqueue_sweep(conn, now)?;
                crate::repo::webhooks::Message::purge(conn, to_naive(now - KEEP_LOG))?;
                Ok(queued)
            })
            .await
    }
}
