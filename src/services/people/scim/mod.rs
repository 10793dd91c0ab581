//! SCIM 2.0 provisioning: an identity provider adds, changes, deactivates and deletes the
//! people of one account, authenticated by that account's SCIM bearer token.
//!
//! The rules: the account comes from the token, never from the request; SCIM-created users
//! sign in with SSO; their role comes from `roles` (Users when not given). **Deprovisioning**
//! (`active: false` or DELETE) removes the user from the account and deletes every token they
//! issued, in one transaction with the event and the Administrators' alerts; their sessions end
//! and their JWTs stop (the generation bump every removal makes). A deactivated user is still a
//! SCIM resource and may be reactivated, which gives access back but never the tokens; a
//! deleted one is gone (`404`), and creating the same userName again later revives the row.

pub mod bearer;
pub mod error;
pub mod lifecycle;
pub mod read;
pub mod write;

use serde_json::Value;
use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::scim::UserView;
use crate::domain::scim::{Filter, UserInput};
use crate::domain::{AccountId, UserId};
use crate::error::ServiceResult;
use crate::repo::User;
use crate::services::gateway::Gateway;
use crate::services::notices::Notices;
use crate::services::people::members::changes::Changed;
use crate::services::runtime::Runtime;
use crate::services::vocabulary::{AccountInfo, Actor};

pub use bearer::{account_of_token, has_token, issue_token};
pub use error::{ScimError, ScimResult};
pub use read::{get, list, user_name, view};
pub use write::{create, delete, patch, replace};

/// Provisioning's room: SCIM for an identity provider, with the gateway (a deprovisioned
/// person's tokens and JWTs refused from the next request) and the notices (the
/// Administrators' alerts) beside it.
#[derive(Clone)]
pub struct Provisioning {
    rt: Runtime,
    gateway: Gateway,
    notices: Notices,
}

impl Provisioning {
    pub fn new(rt: Runtime, gateway: Gateway, notices: Notices) -> Provisioning {
        Provisioning {
            rt,
            gateway,
            notices,
        }
    }

    /// Runs SCIM work on the blocking pool; the cache forgets the tokens it deleted and the
    /// user's state, so a deprovisioned user's tokens and JWTs are refused from the next
    /// request, and the Administrators' alerts go out at once.
    async fn work<T: Send + 'static>(
        &self,
        user: Option<i64>,
        work: impl FnOnce(&mut DbConn, OffsetDateTime) -> ScimResult<(T, Changed)> + Send + 'static,
    ) -> ScimResult<T> {
        let now = self.rt.clock.now();
        let (out, changed) = self.rt.db.run(move |conn| Ok(work(conn, now))).await??;
        self.gateway.forget_tokens(&changed.deleted_tokens);
        if let Some(id) = user {
            self.gateway.forget_user(crate::domain::UserId::new(id));
        }
        if !changed.deleted_tokens.is_empty() {
            self.notices.sweep_soon("deprovisioning alerts");
        }
        Ok(out)
    }

    /// A user as SCIM shows them, with `meta.location` under this server's base URL.
    fn shown(&self, user: &User) -> UserView {
        view(user, self.base_url())
    }

    /// `GET /Users`: one page of the account's users matching `filter`, and how many match
    /// in all.
    pub async fn list(
        &self,
        account_id: AccountId,
        filter: Option<Filter>,
        start_index: i64,
        count: i64,
    ) -> ScimResult<(i64, Vec<UserView>)> {
        let account_id = account_id.get();
        let (total, users) = self
            .work(None, move |conn, _| {
                let page = list(conn, account_id, filter.as_ref(), start_index, count)?;
                Ok((page, Changed::default()))
            })
            .await?;
        Ok((total, users.iter().map(|u| self.shown(u)).collect()))
    }

    /// `GET /Users/{id}`.
    pub async fn get(&self, account_id: AccountId, id: UserId) -> ScimResult<UserView> {
        let account_id = account_id.get();
        let id = id.get();
        let user = self
            .work(None, move |conn, _| {
                Ok((get(conn, account_id, id)?, Changed::default()))
            })
            .await?;
        Ok(self.shown(&user))
    }

    /// `POST /Users`.
    pub async fn create(&self, account_id: AccountId, input: UserInput) -> ScimResult<UserView> {
        let account_id = account_id.get();
        let user = self
            .work(None, move |conn, now| {
                Ok((create(conn, account_id, &input, now)?, Changed::default()))
            })
            .await?;
        Ok(self.shown(&user))
    }

    /// `PUT /Users/{id}` (`active: false` deprovisions).
    pub async fn replace(
        &self,
        account_id: AccountId,
        id: UserId,
        input: UserInput,
    ) -> ScimResult<UserView> {
        let account_id = account_id.get();
        let id = id.get();
        let user = self
            .work(Some(id), move |conn, now| {
                replace(conn, account_id, id, &input, now)
            })
            .await?;
        Ok(self.shown(&user))
    }

    /// `PATCH /Users/{id}` with the operations of `ops`.
    pub async fn patch(
        &self,
        account_id: AccountId,
        id: UserId,
        ops: Value,
    ) -> ScimResult<UserView> {
        let account_id = account_id.get();
        let id = id.get();
        let base = self.base_url().to_owned();
        let user = self
            .work(Some(id), move |conn, now| {
                patch(conn, account_id, id, &ops, &base, now)
            })
            .await?;
        Ok(self.shown(&user))
    }

    /// `DELETE /Users/{id}`: deprovisioned, then gone.
    pub async fn delete(&self, account_id: AccountId, id: UserId) -> ScimResult<()> {
        let account_id = account_id.get();
        let id = id.get();
        self.work(Some(id), move |conn, now| {
            Ok(((), delete(conn, account_id, id, now)?))
        })
        .await
    }

    /// The account a SCIM bearer token belongs to.
    pub async fn account_of(&self, presented: String) -> ServiceResult<Option<AccountInfo>> {
        if !crate::domain::scim::token_shape_ok(&presented) {
            return Ok(None);
        }
        self.rt
            .db
            .run(move |conn| account_of_token(conn, &presented))
            .await
            .map(|account| account.map(AccountInfo::from))
    }

    /// A new SCIM token for the actor's account (Administrators only), shown once.
    pub async fn issue_token(&self, actor: Actor) -> ServiceResult<String> {
        actor.require_admin()?;
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| issue_token(conn, actor.account_id.get(), Some(&actor), now))
            .await
    }

    /// Whether the actor's account has a SCIM token (Administrators only).
    pub async fn has_token(&self, actor: Actor) -> ServiceResult<bool> {
        actor.require_admin()?;
        self.rt
            .db
            .run(move |conn| has_token(conn, actor.account_id.get()))
            .await
    }

    /// The public address of the app (`APITOKENS_BASE_URL`): SCIM's `meta.location`.
    pub fn base_url(&self) -> &str {
        &self.notices.mail().base_url
    }
}
