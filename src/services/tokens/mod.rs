//! Tokens: their lifecycle (create, read, edit, delete with what they created), rotation
//! inside the lineage rules, the account's token policy, leaks (reports and scans) and usage.
//! Every rule lives here once; the portal and the API both call `Tokens`.

pub mod create;
pub mod edit;
pub mod idle;
pub mod leaks;
pub mod limits;
pub mod page;
pub mod policy;
pub mod public_revoke;
pub mod read;
pub mod retire;
pub mod rotation;
pub mod usage;
pub mod view;

use crate::domain::EventKind;
use std::sync::Arc;

use diesel::Connection;
use ipnet::IpNet;

use crate::domain::input::{TokenDescription, TokenName};
use crate::domain::leak_response::LeakResponse;
use crate::domain::policy::TokenPolicy;
use crate::domain::token::TokenSecret;
use crate::domain::{AccountId, TokenId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, User};
use crate::services::gateway::Gateway;
use crate::services::notices::Notices;
use crate::services::runtime::report_gate::{Refusal, ReportGate, Ticket};
use crate::services::runtime::Runtime;
use crate::services::vocabulary::{Actor, Person};

use crate::domain::sha256_hex;
use crate::domain::token::PresentedToken;
pub use create::{create, create_as, limit_reached};
pub use edit::{rename, set_allowed_ips};
use leaks::where_found;
use leaks::Labelled;
pub use leaks::{revoke_found, status_of_presented, BadSignature, LeakReport, ScanningKeys};
pub use page::token_page;
pub use policy::{policy, set_policy};
pub use read::{active_count, get, list};
pub use retire::{delete, retire};
pub use rotation::{cap_expiry, end_graces, may_rotate, rotate};
use usage::of_token;
pub use view::*;

/// The tokens' room: the rules above, with the gateway (told at once what ended) and the
/// notices (alerts) beside them.
#[derive(Clone)]
pub struct Tokens {
    rt: Runtime,
    gateway: Gateway,
    notices: Notices,
    /// The keys leak reports must be signed with; `None`: reports aren't taken.
    scanning_keys: Option<Arc<ScanningKeys>>,
    /// Leak-report signature checks: one at a time, in a bounded queue with per-address
    /// limits (`runtime::report_gate`).
    report_gate: Arc<ReportGate>,
    /// Public revocation's bound on candidates (`public_revoke`).
    revocation_gate: Arc<crate::services::runtime::flood_gate::FloodGate>,
}

impl Tokens {
    pub fn new(
        rt: Runtime,
        gateway: Gateway,
        notices: Notices,
        scanning_keys: Option<ScanningKeys>,
    ) -> Tokens {
        Tokens {
            rt,
            gateway,
            notices,
            scanning_keys: scanning_keys.map(Arc::new),
            report_gate: Arc::default(),
            revocation_gate: Arc::new(public_revoke::gate()),
        }
    }

    /// The sweep's housekeeping for tokens: forget old secrets whose grace ended (recording
    /// each once), usage counts past their days, and idle tokens told, then revoked (this
    /// instance's cache forgets them at once, the others' within its second).
    pub async fn housekeeping(&self, now: time::OffsetDateTime) -> ServiceResult<()> {
        let idle = self
            .rt
            .db
            .run(move |conn| {
                end_graces(conn, now, 1000)?;
                usage::prune(conn, now)?;
                idle::retire_idle(conn, now)
            })
            .await?;
        self.gateway.forget_tokens(&idle.revoked);
        Ok(())
    }

    /// The keys leak reports are checked with, if any are configured.
    pub fn scanning_keys(&self) -> Option<&ScanningKeys> {
        self.scanning_keys.as_deref()
    }

    /// A place in the queue of leak-report signature checks for a report from `from`, or why
    /// not: asked before the report's body is read.
    pub fn admit_leak_report(&self, from: Option<std::net::IpAddr>) -> Result<Ticket, Refusal> {
        self.report_gate.admit(from)
    }

    /// Checks a leak report's signature on the blocking pool when its turn comes; `None` when
    /// no keys are configured.
    pub async fn verify_leak_report(
        &self,
        ticket: Ticket,
        key_id: String,
        signature: String,
        body: Vec<u8>,
    ) -> Option<(Result<(), BadSignature>, Vec<u8>)> {
        let keys = self.scanning_keys.clone()?;
        self.report_gate
            .run(ticket, move || {
                (keys.verify(&key_id, &signature, &body), body)
            })
            .await
    }

    /// A token's page (see `token_page`).
    pub async fn token_page(&self, actor: Actor, id: TokenId) -> ServiceResult<TokenDetail> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| token_page(conn, &actor, id, now))
            .await
    }

    /// Sets a token's address allowlist; this instance's cache forgets the token at once (the
    /// others within their second).
    #[tracing::instrument(skip(self, nets), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn set_token_allowlist(
        &self,
        actor: Actor,
        id: TokenId,
        nets: Vec<IpNet>,
    ) -> ServiceResult<TokenView> {
        let now = self.rt.clock.now();
        let view = self
            .rt
            .db
            .run(move |conn| set_allowed_ips(conn, &actor, id, &nets, now))
            .await?;
        self.gateway.forget_tokens(&[id.get()]);
        Ok(view)
    }

    /// Renames a token (see `rename`).
    #[tracing::instrument(skip(self, name, description), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn rename_token(
        &self,
        actor: Actor,
        id: TokenId,
        name: TokenName,
        description: TokenDescription,
    ) -> ServiceResult<TokenView> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| rename(conn, &actor, id, &name, &description, now))
            .await
    }

    /// Rotates a token (see `rotate`; `presented`: the secret a token rotating itself came
    /// with); this instance's cache forgets it at once, the others reload it within their
    /// second.
    #[tracing::instrument(skip(self, rotation, presented), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn rotate_token(
        &self,
        actor: Actor,
        id: TokenId,
        rotation: Rotation,
        presented: Option<TokenSecret>,
    ) -> ServiceResult<(TokenView, TokenSecret)> {
        let now = self.rt.clock.now();
        let rotated = self
            .rt
            .db
            .run(move |conn| rotate(conn, &actor, id, &rotation, now, presented.as_ref()))
            .await?;
        self.gateway.forget_tokens(&[id.get()]);
        tracing::info!(token_id = %id, "token rotated");
        Ok(rotated)
    }

    /// The account's token policy.
    pub async fn token_policy(&self, actor: Actor) -> ServiceResult<TokenPolicy> {
        self.rt
            .db
            .run(move |conn| policy(conn, actor.account_id.get()))
            .await
    }

    /// Sets the account's token policy (Administrators only).
    pub async fn set_token_policy(
        &self,
        actor: Actor,
        wanted: TokenPolicy,
    ) -> ServiceResult<TokenPolicy> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| set_policy(conn, &actor, wanted, now))
            .await
    }

    /// What the account does with a token reported leaked (Administrators only).
    pub async fn leak_response(&self, actor: Actor) -> ServiceResult<LeakResponse> {
        actor.require_admin()?;
        self.rt
            .db
            .run(move |conn| {
                Ok(Account::find(conn, actor.account_id.get())?
                    .ok_or(ServiceError::NotFound)?
                    .leak_response)
            })
            .await
    }

    /// Sets it (Administrators only), recorded in the account's event log.
    pub async fn set_leak_response(
        &self,
        actor: Actor,
        response: LeakResponse,
    ) -> ServiceResult<()> {
        actor.require_admin()?;
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if !Account::set_leak_response(conn, actor.account_id.get(), response)? {
                        return Err(ServiceError::NotFound);
                    }
                    let summary = match response {
                        LeakResponse::Revoke => "Tokens reported leaked are revoked at once",
                        LeakResponse::NotifyOnly => {
                            "Tokens reported leaked are only reported, not revoked"
                        }
                    };
                    crate::services::audit::record(
                        conn,
                        &actor,
                        now,
                        EventKind::AccountLeakResponse,
                        summary,
                        None,
                    )?;
                    Ok(())
                })
            })
            .await
    }

    /// The tokens section: one page of what `actor` may see, the account's active count, the
    /// issuers to filter by, and the token a delete confirmation is about (404 if not visible).
    pub async fn token_section(
        &self,
        actor: Actor,
        query: ListQuery,
        confirm: Option<TokenId>,
    ) -> ServiceResult<TokenSection> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| {
                let page = list(conn, &actor, &query, now)?;
                let active_count = active_count(conn, actor.account_id, now)?;
                let issuers = if actor.role.is_admin() {
                    User::list_in_account(conn, actor.account_id.get())?
                        .iter()
                        .map(Person::from)
                        .collect()
                } else {
                    vec![]
                };
                let confirm = confirm.map(|id| get(conn, &actor, id, now)).transpose()?;
                Ok(TokenSection {
                    page,
                    active_count,
                    issuers,
                    confirm,
                })
            })
            .await
    }

    /// The tokens `actor` may see that match `query`.
    pub async fn list_tokens(&self, actor: Actor, query: ListQuery) -> ServiceResult<TokenPage> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| list(conn, &actor, &query, now))
            .await
    }

    /// One token, if `actor` may see it.
    pub async fn token(&self, actor: Actor, id: TokenId) -> ServiceResult<TokenView> {
        let now = self.rt.clock.now();
        self.rt.db.run(move |conn| get(conn, &actor, id, now)).await
    }

    /// How many active tokens the account has (the 50 limit counts these).
    pub async fn active_token_count(&self, account_id: AccountId) -> ServiceResult<i64> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| active_count(conn, account_id, now))
            .await
    }

    #[tracing::instrument(skip(self, request), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get(), role = %request.role))]
    pub async fn create_token(
        &self,
        actor: Actor,
        request: NewTokenRequest,
    ) -> ServiceResult<CreateOutcome> {
        self.create_for(actor, None, request).await
    }

    /// Creates a token issued to a service account of the actor's account (Administrators).
    pub async fn create_service_account_token(
        &self,
        actor: Actor,
        service_account: crate::domain::ServiceAccountId,
        request: NewTokenRequest,
    ) -> ServiceResult<CreateOutcome> {
        self.create_for(actor, Some(service_account), request).await
    }

    /// Both creates: the actor's own token, or (Administrators) a service account's.
    async fn create_for(
        &self,
        actor: Actor,
        service_account: Option<crate::domain::ServiceAccountId>,
        request: NewTokenRequest,
    ) -> ServiceResult<CreateOutcome> {
        let now = self.rt.clock.now();
        let outcome = self
            .rt
            .db
            .run(move |conn| create_as(conn, &actor, service_account, &request, now))
            .await?;
        if let CreateOutcome::Created { token, .. } = &outcome {
            tracing::info!(token_id = %token.id, service_account = ?service_account, "token created");
        }
        Ok(outcome)
    }

    /// Deletes a token (web page and API alike) and forgets it in this instance's cache, so
    /// it is refused from the very next request.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn delete_token(
        &self,
        actor: Actor,
        token_id: TokenId,
    ) -> ServiceResult<DeleteOutcome> {
        let now = self.rt.clock.now();
        let outcome = self
            .rt
            .db
            .run(move |conn| delete(conn, &actor, token_id, now))
            .await?;
        self.gateway.forget_tokens(&[token_id.get()]);
        if let DeleteOutcome::Deleted(_, ids) = &outcome {
            self.gateway.forget_tokens(ids);
            tracing::info!(with_created = ids.len().saturating_sub(1), "token deleted");
        }
        Ok(outcome)
    }
    /// Revokes every active token among `reports` (recorded with where it was found) and
    /// labels each: `true_positive` for a real token of ours, active or not, else
    /// `false_positive`. Returns the labels and how many tokens were revoked now.
    pub async fn handle_leak_reports(
        &self,
        reports: Vec<LeakReport>,
    ) -> ServiceResult<(Vec<Labelled>, usize)> {
        let now = self.rt.clock.now();
        let (labels, revoked, alerted) = self
            .rt
            .db
            .run(move |conn| {
                let mut labels = Vec::with_capacity(reports.len());
                let mut revoked = vec![];
                let mut alerted = false;
                for report in &reports {
                    let found = match PresentedToken::parse(&report.token) {
                        Some(presented) => {
                            let place = where_found(report);
                            let (found, ids) = revoke_found(conn, &presented, &place, now, false)?;
                            revoked.extend(ids);
                            alerted |= matches!(found, FoundToken::Revoked | FoundToken::Reported);
                            found
                        }
                        None => FoundToken::Unknown,
                    };
                    labels.push(Labelled {
                        token_hash: sha256_hex(&report.token),
                        token_type: report.kind.clone().unwrap_or_default(),
                        label: if found == FoundToken::Unknown {
                            "false_positive"
                        } else {
                            "true_positive"
                        },
                    });
                }
                Ok((labels, revoked, alerted))
            })
            .await?;
        self.gateway.forget_tokens(&revoked);
        let n = revoked.len();
        if alerted {
            // The alerts go out now, not with the next periodic sweep.
            self.notices.sweep_soon("leak alerts");
        }
        Ok((labels, n))
    }
    /// Public revocation (`public_revoke`): revokes every live token among `credentials`
    /// from `from`; how many were revoked (for the log, never the answer), or how long to wait
    /// when past the limits. Junk never reaches the database.
    pub async fn revoke_public(
        &self,
        credentials: Vec<String>,
        from: Option<std::net::IpAddr>,
    ) -> ServiceResult<Result<usize, std::time::Duration>> {
        let found = public_revoke::candidates(&credentials);
        if found.is_empty() {
            return Ok(Ok(0));
        }
        if let Err(wait) = self.revocation_gate.admit_n(from, found.len()) {
            return Ok(Err(wait));
        }
        let now = self.rt.clock.now();
        let (revoked, alerted) = self
            .rt
            .db
            .run(move |conn| public_revoke::revoke_candidates(conn, &found, now))
            .await?;
        self.gateway.forget_tokens(&revoked);
        if alerted {
            self.notices.sweep_soon("public revocation");
        }
        Ok(Ok(revoked.len()))
    }

    /// A token's usage (see `of_token`).
    pub async fn token_usage(&self, actor: Actor, id: TokenId) -> ServiceResult<Usage> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| of_token(conn, &actor, id, now))
            .await
    }
}
