//! Workload identity federation (issue 29): trust policies, and the RFC 8693 exchange that
//! turns a CI job's OIDC JWT into a short-lived token of a service account, so no long-lived
//! secret has to live in CI. Depends on `tokens` (the insert, the cap, retiring) and the
//! gateway (forgetting expired minted tokens); nothing depends on it but the web layer.

pub mod exchange;
pub mod keys;
pub mod policies;

use std::sync::Arc;

use crate::config::Settings;
use crate::domain::TrustPolicyId;
use crate::error::ServiceResult;
use crate::services::gateway::Gateway;
use crate::services::runtime::Runtime;
use crate::services::vocabulary::Actor;

pub use exchange::{ExchangeRequest, Minted, Refusal};
pub use policies::{PolicyInput, PolicyView};

/// The federation room's entry points.
#[derive(Clone)]
pub struct Federation {
    rt: Runtime,
    gateway: Gateway,
    keys: Arc<keys::Keys>,
}

impl Federation {
    pub fn new(rt: Runtime, gateway: Gateway, settings: &Settings) -> Federation {
        Federation {
            rt,
            gateway,
            keys: Arc::new(keys::Keys::new(
                settings
                    .insecure_issuers
                    .iter()
                    .map(|i| i.trim().trim_end_matches('/').to_owned())
                    .filter(|i| !i.is_empty())
                    .collect(),
            )),
        }
    }

    /// How many times issuers' key sets were fetched by this instance.
    pub fn key_fetches(&self) -> u64 {
        self.keys.fetches()
    }

    pub async fn policies(&self, actor: Actor) -> ServiceResult<Vec<PolicyView>> {
        self.rt
            .db
            .run(move |conn| policies::list(conn, &actor))
            .await
    }

    pub async fn policy(&self, actor: Actor, id: TrustPolicyId) -> ServiceResult<PolicyView> {
        self.rt
            .db
            .run(move |conn| policies::get(conn, &actor, id))
            .await
    }

    #[tracing::instrument(skip(self, input), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn create_policy(
        &self,
        actor: Actor,
        input: PolicyInput,
    ) -> ServiceResult<PolicyView> {
        let now = self.rt.clock.now();
        let insecure = self.keys.insecure().to_vec();
        self.rt
            .db
            .run(move |conn| policies::create(conn, &actor, &input, &insecure, now))
            .await
    }

    #[tracing::instrument(skip(self), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn delete_policy(&self, actor: Actor, id: TrustPolicyId) -> ServiceResult<()> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| policies::delete(conn, &actor, id, now))
            .await
    }

    /// RFC 8693: checks the CI job's JWT against the trust policies naming its issuer and
    /// mints a token of the policy's service account.
    pub async fn exchange(&self, request: ExchangeRequest) -> Result<Minted, Refusal> {
        let presented = exchange::presented(request)?;
        let issuer = presented.issuer.clone();
        let found = self
            .rt
            .db
            .run(move |conn| Ok(exchange::policies(conn, &issuer)))
            .await??;
        let key = self
            .keys
            .key(&presented.issuer, presented.kid.as_deref())
            .await
            .map_err(exchange::key_refusal)?;
        let now = self.rt.clock.now();
        let claims = exchange::verified(&presented, &key, now)?;
        if claims.get("iss").and_then(|v| v.as_str()) != Some(presented.issuer.as_str()) {
            return Err(Refusal::Grant("the JWT's iss changed".into()));
        }
        let policy = exchange::choose(found, &claims)?;
        let issuer = presented.issuer;
        let minted = self
            .rt
            .db
            .run(move |conn| Ok(exchange::mint(conn, &policy, &issuer, &claims, now)))
            .await??;
        tracing::info!(token_id = %minted.token_id, "token minted by an exchange");
        Ok(minted)
    }

    /// Deletes minted tokens that expired (the sweep) and forgets them in this instance's
    /// cache; how many.
    pub async fn sweep(&self, now: time::OffsetDateTime) -> ServiceResult<usize> {
        let deleted = self
            .rt
            .db
            .run(move |conn| exchange::sweep(conn, now))
            .await?;
        self.gateway.forget_tokens(&deleted);
        Ok(deleted.len())
    }
}
