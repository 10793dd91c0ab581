//! Service accounts (issue 29): a machine's identity in the account. A name, a description and
//! a role ceiling; no e-mail, no password, no sign-in. It is a row of `users` with
//! `auth_type = service`, so its tokens are an issuer's tokens like anyone's (roles capped by
//! it, the gateway, lineage, the 50-token cap), and every query that means *people* leaves it
//! out. Removing or deprovisioning a person never touches it; removing it ends its tokens and
//! the trust policies that mint them.

use diesel::Connection;
use time::OffsetDateTime;

use super::members::changes::{retire_all, Changed};
use crate::db::DbConn;
use crate::domain::input::PersonName;
use crate::domain::token::{from_naive, to_naive};
use crate::domain::{AuthType, EventKind, Role, ServiceAccountId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::machines::{ServiceAccountRow, TrustPolicyRow};
use crate::repo::{Account, NewUser, Token, User};
use crate::services::audit;
use crate::services::vocabulary::Actor;

/// At most this many live service accounts per account.
pub const MAX_SERVICE_ACCOUNTS: i64 = 100;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 500;

/// A service account as the page and the API show it.
#[derive(Debug, Clone)]
pub struct ServiceAccountView {
    pub id: ServiceAccountId,
    pub name: String,
    pub description: String,
    pub role: Role,
    pub created_at: OffsetDateTime,
    pub removed_at: Option<OffsetDateTime>,
}

impl ServiceAccountView {
    fn of(row: &ServiceAccountRow, user: &User) -> ServiceAccountView {
        ServiceAccountView {
            id: ServiceAccountId::new(user.id),
            name: user.name.clone(),
            description: row.description.clone(),
            role: user.role,
            created_at: from_naive(row.created_at),
            removed_at: user.removed_at.map(from_naive),
        }
    }
}

/// What a new service account is.
#[derive(Debug, Clone)]
pub struct NewServiceAccount {
    pub name: PersonName,
    pub description: String,
    pub role: Role,
}

/// Checks a description: at most 500 characters, no control characters but line breaks.
pub fn check_description(raw: &str) -> Result<String, String> {
    let d = raw.trim();
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(format!("At most {MAX_DESCRIPTION} characters."));
    }
    if d.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("The description contains a control character.".into());
    }
    Ok(d.to_owned())
}

/// The account's live service accounts (Administrators).
pub fn list(conn: &mut DbConn, actor: &Actor) -> ServiceResult<Vec<ServiceAccountView>> {
    actor.require_admin()?;
    Ok(ServiceAccountRow::list(conn, actor.account_id.get())?
        .iter()
        .map(|(row, user)| ServiceAccountView::of(row, user))
        .collect())
}

/// One service account of the actor's account (Administrators; removed ones too).
pub fn get(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceAccountId,
) -> ServiceResult<ServiceAccountView> {
    actor.require_admin()?;
    let (row, user) = ServiceAccountRow::find(conn, actor.account_id.get(), id.get())?
        .ok_or(ServiceError::NotFound)?;
    Ok(ServiceAccountView::of(&row, &user))
}

/// Adds a service account with a role no higher than the acting Administrator's. Audited.
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    new: &NewServiceAccount,
    now: OffsetDateTime,
) -> ServiceResult<ServiceAccountView> {
    actor.require_admin()?;
    if !actor.role.may_issue(new.role) {
        return Err(ServiceError::invalid(
            "role",
            format!("Can't create a service account with role {}", new.role),
        ));
    }
    let naive_now = to_naive(now);
    conn.transaction(|conn| {
        if !Account::lock(conn, actor.account_id.get())? {
            return Err(ServiceError::NotFound);
        }
        if ServiceAccountRow::count(conn, actor.account_id.get())? >= MAX_SERVICE_ACCOUNTS {
            return Err(ServiceError::invalid(
                "name",
                format!("The account already has {MAX_SERVICE_ACCOUNTS} service accounts, the most it can have."),
            ));
        }
        // `users.email` is unique and required; a service account's stands in for one that
        // can never be delivered to (RFC 2606's `.invalid`, which `Email::parse` refuses).
        let stand_in = format!(
            "sa-{}{}",
            &crate::domain::secret::Secret::generate().expose()[..24],
            crate::domain::user::SERVICE_ACCOUNT_DOMAIN
        );
        let user = User::insert(
            conn,
            &NewUser {
                account_id: actor.account_id.get(),
                email: &stand_in,
                name: new.name.as_str(),
                password_hash: None,
                role: new.role,
                auth_type: AuthType::Service,
                created_at: naive_now,
            },
        )?;
        let row = ServiceAccountRow {
            user_id: user.id,
            account_id: actor.account_id.get(),
            description: new.description.clone(),
            created_by: Some(actor.user_id.get()),
            created_at: naive_now,
        };
        ServiceAccountRow::insert(conn, &row)?;
        audit::record(
            conn,
            actor,
            now,
            EventKind::ServiceAccountCreated,
            &format!(
                "Created service account \"{}\" ({})",
                new.name.as_str(),
                new.role
            ),
            None,
        )?;
        Ok(ServiceAccountView::of(&row, &user))
    })
}

/// Removes a service account: its active tokens end (with what they created) and the trust
/// policies that mint its tokens go, in one transaction. Audited.
pub fn remove(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceAccountId,
    now: OffsetDateTime,
) -> ServiceResult<Changed> {
    actor.require_admin()?;
    conn.transaction(|conn| {
        if !Account::lock(conn, actor.account_id.get())? {
            return Err(ServiceError::NotFound);
        }
        let (_, user) = ServiceAccountRow::find(conn, actor.account_id.get(), id.get())?
            .filter(|(_, u)| u.removed_at.is_none())
            .ok_or(ServiceError::NotFound)?;
        let active = Token::active_of_issuer(conn, user.id, to_naive(now))?;
        let changed = retire_all(
            conn,
            actor,
            &user,
            &active,
            now,
            " (service account removed)",
            audit::Retired::IssuerRemoved,
        )?;
        let policies = TrustPolicyRow::delete_for_service_account(conn, user.id)?;
        User::mark_removed(conn, user.id, to_naive(now))?;
        audit::record(
            conn,
            actor,
            now,
            EventKind::ServiceAccountRemoved,
            &format!(
                "Removed service account \"{}\" ({} ended, {} removed)",
                user.name,
                crate::domain::count(active.len() as i64, "token", "tokens"),
                crate::domain::count(policies as i64, "trust policy", "trust policies"),
            ),
            None,
        )?;
        Ok(changed)
    })
}

impl super::People {
    /// The account's service accounts (Administrators).
    pub async fn service_accounts(&self, actor: Actor) -> ServiceResult<Vec<ServiceAccountView>> {
        self.rt.db.run(move |conn| list(conn, &actor)).await
    }

    /// One service account (Administrators).
    pub async fn service_account(
        &self,
        actor: Actor,
        id: ServiceAccountId,
    ) -> ServiceResult<ServiceAccountView> {
        self.rt.db.run(move |conn| get(conn, &actor, id)).await
    }

    /// Adds a service account (Administrators).
    #[tracing::instrument(skip(self, new), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn create_service_account(
        &self,
        actor: Actor,
        new: NewServiceAccount,
    ) -> ServiceResult<ServiceAccountView> {
        let now = self.rt.clock.now();
        self.rt
            .db
            .run(move |conn| create(conn, &actor, &new, now))
            .await
    }

    /// Removes a service account; its tokens are forgotten by the cache at once.
    #[tracing::instrument(skip(self), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn remove_service_account(
        &self,
        actor: Actor,
        id: ServiceAccountId,
    ) -> ServiceResult<Changed> {
        self.change_user(crate::domain::UserId::new(id.get()), move |conn, now| {
            remove(conn, &actor, id, now)
        })
        .await
    }
}
