//! Checking API credentials: permanent tokens (`APIKey`, through the token cache) and access
//! JWTs (`Bearer`, by signature). The gateway check and every API call start here.

use time::OffsetDateTime;

use std::time::Instant;

use super::id_horizon::Sight;
use super::token_cache::UseFacts;
use super::token_cache::{LoadedRow, TokenVerifier, Verdict};
use super::user_cache::UserState;
use super::{Actor, Services};
use crate::domain::token::PresentedToken;
use crate::error::{ServiceError, ServiceResult};
use crate::metrics::CacheResult;
use crate::repo::{TokenForAuth, User};

/// How often the cache's half-life reloads are done, in one batch.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Tokens reloaded per read.
const REFRESH_BATCH: usize = 2000;

/// Longest `Authorization` value we read; anything longer is refused unread.
pub const MAX_AUTHORIZATION: usize = 8192;

/// A credential that checked out: who acts, in which account, with which role.
#[derive(Debug, Clone)]
pub struct Credential {
    pub actor: Actor,
    /// The permanent token used, if any (absent for a JWT).
    pub token_id: Option<i64>,
    /// Answered from what this instance last knew, because the database can't be reached.
    pub stale: bool,
    /// The networks the permanent token may be used from (`None`: any address).
    pub allowed: Option<std::sync::Arc<[ipnet::IpNet]>>,
}

/// What the web layer can tell about the caller, asked for only when needed.
#[derive(Debug, Clone, Default)]
pub struct ClientFacts {
    /// The client address under the trusted proxies.
    pub ip: Option<std::net::IpAddr>,
    pub agent: Option<String>,
}

/// Every failure looks the same from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

/// Why a credential was not accepted: refused (401), or the database failed us.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unauthorized")]
    Unauthorized,
    /// A good token used from outside its address allowlist (the address, if known).
    #[error("not from an allowed address")]
    NotFromHere(Option<std::net::IpAddr>),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<Unauthorized> for AuthError {
    fn from(_: Unauthorized) -> Self {
        AuthError::Unauthorized
    }
}

/// `APIKey <token>` or `Bearer <jwt>`; the scheme word is case-insensitive.
enum Presented<'a> {
    ApiKey(PresentedToken),
    Bearer(&'a str),
}

fn parse_authorization(raw: &str) -> Result<Presented<'_>, Unauthorized> {
    // Every credential of ours is ASCII; so is the rest of the work here.
    if raw.len() > MAX_AUTHORIZATION || !raw.is_ascii() {
        return Err(Unauthorized);
    }
    let raw = raw.trim_ascii();
    let at = raw
        .bytes()
        .position(|b| b.is_ascii_whitespace())
        .ok_or(Unauthorized)?;
    let (scheme, value) = (&raw[..at], &raw[at + 1..]);
    if scheme.eq_ignore_ascii_case("apikey") {
        PresentedToken::parse(value)
            .map(Presented::ApiKey)
            .ok_or(Unauthorized)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Presented::Bearer(value.trim_ascii()))
    } else {
        Err(Unauthorized)
    }
}

impl Services {
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
                self.verify_token(token, self.clock.unix_now(), client)
                    .await
            }
            Presented::Bearer(jwt) => {
                let claims = self.jwt.decode(jwt, "access", self.clock.now())?;
                self.jwt_credential(claims).await
            }
        }
    }

    /// A JWT with a good signature passes while its user is live and hasn't had their JWTs
    /// ended since it was issued; it acts with the user's current role. The user's state
    /// comes from the one-second cache (`UserStates`), or, in an outage, what this instance
    /// knew within the grace.
    async fn jwt_credential(&self, claims: super::jwt::Claims) -> Result<Credential, AuthError> {
        let id = claims.user_id;
        let (state, stale) = match self.user_states.fresh(id) {
            Some(state) => (state, false),
            None => {
                let started = std::time::Instant::now();
                let read = self
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
                        user_id: id,
                        account_id: s.account_id,
                        role: s.role,
                        origin: Default::default(),
                    },
                    token_id: None,
                    stale,
                    allowed: None,
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
                self.metrics.cache(CacheResult::hit);
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
            self.verifier.count_use(id);
        }
        // Written by the batched flush (`flush_uses`), never on the request path.
        if !noted {
            let now =
                OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            self.verifier.note_use_from(id, now, || {
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
        self.metrics.cache(CacheResult::miss);
        match self.horizon.sight(id) {
            Sight::Never => return Ok(None),
            Sight::Within => {}
            Sight::Beyond => {
                let arrived = self.horizon.arrival();
                let max = self
                    .horizon
                    .max_since(arrived, || {
                        self.db.run_gateway(|conn| {
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
        let loaded = self.misses.load(&self.db, id).await?;
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
        let uses = self.verifier.take_uses();
        let counts = self.verifier.take_counts();
        if uses.is_empty() && counts.is_empty() {
            return Ok(0);
        }
        let facts = self.verifier.take_facts();
        let count = uses.len();
        let (batch, facts_batch, counts_batch) = (uses.clone(), facts.clone(), counts.clone());
        let now = self.clock.now();
        match self
            .db
            .run_bookkeeping(move |conn| {
                TokenVerifier::record_uses(conn, &batch)?;
                super::usage::record(conn, &batch, &facts_batch, &counts_batch, now)
            })
            .await
        {
            Ok(()) => Ok(count),
            Err(e) => {
                self.verifier.requeue_uses(uses);
                self.verifier.requeue_facts(facts);
                self.verifier.requeue_counts(&counts);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_values_parse_by_scheme_and_refuse_the_rest() {
        let token = format!("7_{}", "a".repeat(64));
        assert!(matches!(
            parse_authorization(&format!("  apikey {token} ")),
            Ok(Presented::ApiKey(t)) if t.id == 7
        ));
        assert!(matches!(
            parse_authorization("APIKey\t  7$aaaa".replace("aaaa", &"b".repeat(64)).as_str()),
            Ok(Presented::ApiKey(t)) if t.id == 7
        ));
        assert!(matches!(
            parse_authorization("Bearer abc.def.ghi"),
            Ok(Presented::Bearer("abc.def.ghi"))
        ));
        for bad in [
            "",
            "APIKey",
            "Basic dXNlcjpwYXNz",
            &format!("APIKey{token}"),
            &format!("APIKey {}", "x".repeat(MAX_AUTHORIZATION)),
            &format!("APIKey\u{a0}{token}"),
            &format!("APIKey {token}\u{a0}"),
            "Bearer abc.déf.ghi",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad:?}");
        }
    }
}
