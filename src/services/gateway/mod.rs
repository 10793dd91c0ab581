//! The gateway: checking credentials on the hot path (`/iam/auth/check` and every API call).
//! Permanent tokens come from an in-memory cache (`token_cache`) read from the database only
//! on a miss (`miss_batch`, `id_horizon`), JWTs by their signature and a one-second cache of
//! their user's state (`user_cache`); uses are counted in memory and written once a second
//! (`usage_flush`). Nothing here decides a product rule beyond "this credential is good".

pub mod authorization;
pub mod id_horizon;
pub mod jwt;
pub mod lease;
pub mod miss_batch;
pub mod quota;
pub mod rate;
pub mod token_cache;
pub mod usage_flush;
pub mod user_cache;

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use crate::config::Settings;
use crate::domain::token::PresentedToken;
use crate::domain::{AccountId, UserId};
use crate::error::{ServiceError, ServiceResult};
use crate::metrics::CacheResult;
use crate::repo::{TokenForAuth, User};
use crate::services::runtime::Runtime;
use crate::services::vocabulary::{Actor, AuthError, ClientFacts, Credential, Unauthorized};

use authorization::{parse_authorization, Presented};
use id_horizon::{IdHorizon, Sight};
use jwt::JwtKeys;
use miss_batch::MissBatcher;
pub use token_cache::Refusal;
use token_cache::{LoadedRow, TokenVerifier, UseFacts, Verdict};
use user_cache::{UserState, UserStates};

/// How often the cache's half-life reloads are done, in one batch.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Tokens reloaded per read.
const REFRESH_BATCH: usize = 2000;

/// The gateway's state: the caches, the id horizon, the miss batcher and the JWT keys.
#[derive(Clone)]
pub struct Gateway {
    rt: Runtime,
    verifier: Arc<TokenVerifier>,
    horizon: Arc<IdHorizon>,
    misses: Arc<MissBatcher>,
    user_states: Arc<UserStates>,
    jwt: Arc<JwtKeys>,
    rates: Arc<rate::RateLeases>,
    quotas: Arc<quota::QuotaLeases>,
}

impl Gateway {
    pub fn new(rt: Runtime, settings: &Settings) -> anyhow::Result<Gateway> {
        Ok(Gateway {
            rt,
            verifier: Arc::new(TokenVerifier::new(settings.outage_grace)),
            horizon: Arc::default(),
            misses: Arc::default(),
            user_states: Arc::new(UserStates::new(settings.outage_grace)),
            jwt: Arc::new(JwtKeys::new(&settings.jwt_keys)?),
            rates: Arc::default(),
            quotas: Arc::default(),
        })
    }

    /// The keys that sign and verify JWTs (people's sign-in issues pairs with them).
    pub fn jwt_keys(&self) -> &Arc<JwtKeys> {
        &self.jwt
    }

    /// The public keys that verify our JWTs, as a JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        self.jwt.jwks(self.rt.clock.now())
    }

    /// Forgets tokens in this instance's cache (deleted, rotated, changed), so the very next
    /// request reads them again (other instances within the cache's second).
    pub fn forget_tokens(&self, ids: &[i64]) {
        for id in ids {
            self.verifier.forget(*id);
        }
    }

    /// Forgets a token's quota lease on this instance (its quota was changed).
    pub fn forget_quota(&self, id: i64) {
        self.quotas.forget(id);
    }

    /// Forgets a user's state (removed, role changed, signed out everywhere): their JWTs are
    /// checked against the database from the next request.
    pub fn forget_user(&self, id: crate::domain::UserId) {
        self.user_states.forget(id.get());
    }

    /// One request of a rate-limited token (`rate`): `Ok`, or how long until one would pass.
    pub async fn take_rate(
        &self,
        token: crate::domain::TokenId,
        limit: crate::domain::rate::RateLimit,
    ) -> Result<(), std::time::Duration> {
        self.rates.take(&self.rt, token, limit).await
    }

    /// One request of a token with a usage quota: `Ok`, or why not.
    pub async fn take_quota(
        &self,
        token: crate::domain::TokenId,
        limit: crate::domain::quota::UsageLimit,
    ) -> Result<(), quota::QuotaRefusal> {
        self.quotas.take(&self.rt, token, limit).await
    }

    /// Leases of usage quotas this instance took from the database.
    pub fn quota_leases(&self) -> u64 {
        self.quotas.leases()
    }

    /// Counts a request the gateway refused after the token was good (the usage chart's
    /// refusals), written with the next flush.
    pub fn count_refusal(&self, token: crate::domain::TokenId, why: Refusal) {
        self.verifier.uses.count_refusal(token.get(), why);
    }

    /// Leases of rate budgets this instance took from the database.
    pub fn rate_leases(&self) -> u64 {
        self.rates.leases()
    }

    /// Reads this instance made on the gateway's connections (token and user loads).
    pub fn reads(&self) -> u64 {
        self.rt.db.gateway_runs()
    }

    // ---- from gateway/authorization.rs
    /// The hot path (`/iam/auth/check`): a permanent token from the cache (the database only
    /// on a miss), a JWT by its signature alone.
    #[tracing::instrument(level = "debug", name = "authenticate", skip_all)]
    pub async fn authenticate(&self, authorization: &str) -> Result<Credential, AuthError> {
        self.authenticate_from(authorization, ClientFacts::default)
            .await
    }

    /// `authenticate`, for a request from `client` (the address under the trusted proxies),
    /// asked for only when the token has an address allowlist.
    pub async fn authenticate_from(
        &self,
        authorization: &str,
        client: impl FnOnce() -> ClientFacts,
    ) -> Result<Credential, AuthError> {
        match parse_authorization(authorization)? {
            Presented::ApiKey(token) => {
                self.verify_token(token, self.rt.clock.unix_now(), client)
                    .await
            }
            Presented::Bearer(jwt) => {
                let claims = self.jwt.decode(jwt, "access", self.rt.clock.now())?;
                self.jwt_credential(claims).await
            }
        }
    }

    /// A JWT with a good signature passes while its user is live and hasn't had their JWTs
    /// ended since it was issued; it acts with the user's current role. The user's state
    /// comes from the one-second cache (`UserStates`), or, in an outage, what this instance
    /// knew within the grace.
    async fn jwt_credential(&self, claims: jwt::Claims) -> Result<Credential, AuthError> {
        let id = claims.user_id;
        let (state, stale) = match self.user_states.fresh(id) {
            Some(state) => (state, false),
            None => {
                let started = std::time::Instant::now();
                let read = self
                    .rt
                    .db
                    .run_gateway(move |conn| Ok(User::find(conn, id)?.map(|u| UserState::of(&u))))
                    .await;
                match read {
                    Ok(state) => {
                        self.user_states.remember(id, state, started);
                        (state, false)
                    }
                    Err(ServiceError::Unavailable(why)) => match self.user_states.stale(id) {
                        Some(state) => (state, true),
                        None => return Err(ServiceError::Unavailable(why).into()),
                    },
                    Err(e) => return Err(e.into()),
                }
            }
        };
        match state {
            Some(s)
                if !s.removed && s.generation == claims.gen && s.account_id == claims.client_id =>
            {
                Ok(Credential {
                    actor: Actor {
                        user_id: UserId::new(id),
                        account_id: AccountId::new(s.account_id),
                        role: s.role,
                        origin: Default::default(),
                    },
                    token_id: None,
                    stale,
                    allowed: None,
                    routes: None,
                    rate: None,
                    quota: None,
                })
            }
            _ => Err(AuthError::Unauthorized),
        }
    }

    /// The caller of a management endpoint: the same check as the gateway's (a JWT acts with
    /// its user's current role, and stops when the user is removed or signed out everywhere).
    pub async fn api_caller(
        &self,
        authorization: &str,
        client: impl FnOnce() -> ClientFacts,
    ) -> Result<Credential, AuthError> {
        self.authenticate_from(authorization, client).await
    }

    /// `now`: the Unix second (`Clock::unix_now`).
    async fn verify_token(
        &self,
        presented: PresentedToken,
        now: i64,
        client: impl FnOnce() -> ClientFacts,
    ) -> Result<Credential, AuthError> {
        let id = presented.id;
        let mut noted = false;
        let verdict = match self.verifier.check_cached(&presented, now) {
            Verdict::Known {
                verdict,
                refresh,
                noted_recently,
            } => {
                self.rt.metrics.cache(CacheResult::hit);
                if refresh {
                    // Reloaded with the next batch (`refresh_tokens`), well within its life.
                    self.verifier.queue_refresh(id);
                }
                noted = noted_recently;
                verdict
            }
            Verdict::Unknown => match self.token_row(id).await {
                Ok(Some(row)) => self.verifier.remember(&presented, row, now),
                Ok(None) => Err(Unauthorized),
                // Stale-if-error: what this instance knew, or "unavailable" if it knew nothing.
                Err(ServiceError::Unavailable(why)) => self
                    .verifier
                    .stale(&presented, now)
                    .ok_or(ServiceError::Unavailable(why))?,
                Err(e) => return Err(e.into()),
            },
        };
        let credential = verdict?;
        // Who is calling: asked for at most once, and only when needed (an allowlist, or a
        // use to note).
        let mut client = Some(client);
        let mut facts: Option<ClientFacts> = None;
        let mut ask = || -> ClientFacts {
            if let Some(f) = client.take() {
                facts = Some(f());
            }
            facts.clone().unwrap_or_default()
        };
        if let Some(nets) = &credential.allowed {
            // Refused before it counts as a use.
            let from = ask().ip;
            if !from.is_some_and(|ip| crate::domain::allowlist::admits(nets, ip)) {
                return Err(AuthError::NotFromHere(from));
            }
            self.verifier.uses.count_use(id);
        }
        // Written by the batched flush (`flush_uses`), never on the request path.
        if !noted {
            let now =
                OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            self.verifier.uses.note_use_from(id, now, || {
                let f = ask();
                UseFacts {
                    ip: f.ip.map(|ip| ip.to_string()),
                    agent: f.agent.map(|a| a.chars().take(300).collect()),
                }
            });
        }
        Ok(credential)
    }

    /// Reads a token's row on a cache miss. `None`: no such id, told by the id horizon where
    /// it can (an id above every committed one costs a share of one `max(id)` read, a settled
    /// gap nothing), so a flood of made-up ids can't cost a read each.
    async fn token_row(&self, id: i64) -> ServiceResult<Option<LoadedRow>> {
        self.rt.metrics.cache(CacheResult::miss);
        match self.horizon.sight(id) {
            Sight::Never => return Ok(None),
            Sight::Within => {}
            Sight::Beyond => {
                let arrived = self.horizon.arrival();
                let max = self
                    .horizon
                    .max_since(arrived, || {
                        self.rt.db.run_gateway(|conn| {
                            let max = TokenForAuth::max_id(conn)?;
                            Ok((max, Instant::now()))
                        })
                    })
                    .await?;
                if id > max {
                    return Ok(None);
                }
            }
        }
        // Read together with the other misses waiting now (`MissBatcher`).
        let loaded = self.misses.load(&self.rt.db, id).await?;
        if loaded.exists() {
            self.horizon.saw(id, Instant::now());
            Ok(Some(loaded))
        } else {
            self.horizon.missing(id);
            Ok(None)
        }
    }

    /// Reloads the cached tokens past half their life, many per read on the gateway's
    /// connections; returns how many. Run every `REFRESH_EVERY` by the server, so an entry
    /// is reloaded before its one second is up.
    pub async fn refresh_tokens(&self) -> ServiceResult<usize> {
        let mut done = 0;
        loop {
            let ids = self.verifier.take_refreshes(REFRESH_BATCH);
            if ids.is_empty() {
                return Ok(done);
            }
            done += ids.len();
            let batch = ids.clone();
            match self
                .rt
                .db
                .run_gateway(move |conn| TokenVerifier::load_many(conn, &batch))
                .await
            {
                Ok((rows, started)) => self.verifier.refreshed_many(&ids, rows, started),
                // Left as they are: they expire on their own, and stale-if-error covers them.
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the token uses noted since the last flush, in one transaction. On failure they
    /// stay queued for the next flush (merged with newer uses), so none is lost.
    pub async fn flush_uses(&self) -> ServiceResult<usize> {
        self.quotas.give_back(&self.rt, false).await?;
        self.flush_counts().await
    }

    /// `flush_uses` at shutdown: every quota lease's unspent part goes back too.
    pub async fn flush_at_shutdown(&self) -> ServiceResult<usize> {
        self.quotas.give_back(&self.rt, true).await?;
        self.flush_counts().await
    }

    async fn flush_counts(&self) -> ServiceResult<usize> {
        let uses = self.verifier.uses.take_uses();
        let counts = self.verifier.uses.take_counts();
        let refusals = self.verifier.uses.take_refusals();
        if uses.is_empty() && counts.is_empty() && refusals.is_empty() {
            return Ok(0);
        }
        let facts = self.verifier.uses.take_facts();
        let count = uses.len();
        let (batch, facts_batch, counts_batch) = (uses.clone(), facts.clone(), counts.clone());
        let refusals_batch = refusals.clone();
        let now = self.rt.clock.now();
        match self
            .rt
            .db
            .run_bookkeeping(move |conn| {
                token_cache::Uses::record_uses(conn, &batch)?;
                usage_flush::record(
                    conn,
                    &batch,
                    &facts_batch,
                    &counts_batch,
                    &refusals_batch,
                    now,
                )
            })
            .await
        {
            Ok(()) => Ok(count),
            Err(e) => {
                self.verifier.uses.requeue_uses(uses);
                self.verifier.uses.requeue_facts(facts);
                self.verifier.uses.requeue_counts(&counts);
                self.verifier.uses.requeue_refusals(&refusals);
                Err(e)
            }
        }
    }
}
