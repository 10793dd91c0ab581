//! Trust policies: an account's Administrators say which issuer's JWTs, for which audience and
//! meeting which conditions on their claims, become tokens of which service account, with
//! which role (no higher than the service account's) and for how long (an hour at most).

use std::collections::BTreeMap;

use diesel::Connection;
use time::OffsetDateTime;

use crate::db::DbConn;
use crate::domain::federation::{check_audience, check_conditions, check_issuer, check_lifetime};
use crate::domain::token::{from_naive, to_naive};
use crate::domain::{AuthType, EventKind, Role, ServiceAccountId, TrustPolicyId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::machines::{NewTrustPolicy, TrustPolicyRow};
use crate::repo::{Account, User};
use crate::services::audit;
use crate::services::vocabulary::Actor;

/// At most this many trust policies per account.
pub const MAX_POLICIES: i64 = 50;

/// A trust policy to add.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub issuer: String,
    pub audience: String,
    pub conditions: BTreeMap<String, String>,
    pub service_account: ServiceAccountId,
    pub role: Role,
    pub lifetime_seconds: i64,
    /// The routes its tokens may call; empty: whatever the role allows.
    pub allowed_routes: Vec<crate::domain::routes::Route>,
}

/// A trust policy as the page and the API show it.
#[derive(Debug, Clone)]
pub struct PolicyView {
    pub id: TrustPolicyId,
    pub issuer: String,
    pub audience: String,
    pub conditions: BTreeMap<String, String>,
    pub service_account: ServiceAccountId,
    pub service_account_name: String,
    pub role: Role,
    pub lifetime_seconds: i32,
    pub created_at: OffsetDateTime,
    pub allowed_routes: Vec<crate::domain::routes::Route>,
}

fn view(conn: &mut DbConn, row: TrustPolicyRow) -> ServiceResult<PolicyView> {
    let name = User::find(conn, row.service_account_id)?
        .map(|u| u.name)
        .unwrap_or_default();
    Ok(PolicyView {
        id: TrustPolicyId::new(row.id),
        issuer: row.issuer,
        audience: row.audience,
        conditions: serde_json::from_str(&row.conditions).unwrap_or_default(),
        service_account: ServiceAccountId::new(row.service_account_id),
        service_account_name: name,
        role: row.role,
        lifetime_seconds: row.lifetime_seconds,
        created_at: from_naive(row.created_at),
        allowed_routes: crate::domain::routes::from_stored(row.allowed_routes.as_deref()),
    })
}

/// The account's trust policies (Administrators).
pub fn list(conn: &mut DbConn, actor: &Actor) -> ServiceResult<Vec<PolicyView>> {
    actor.require_admin()?;
    TrustPolicyRow::list(conn, actor.account_id.get())?
        .into_iter()
        .map(|r| view(conn, r))
        .collect()
}

/// One trust policy (Administrators).
pub fn get(conn: &mut DbConn, actor: &Actor, id: TrustPolicyId) -> ServiceResult<PolicyView> {
    actor.require_admin()?;
    let row = TrustPolicyRow::find(conn, actor.account_id.get(), id.get())?
        .ok_or(ServiceError::NotFound)?;
    view(conn, row)
}

/// Adds a trust policy, every field's problem at once. Audited.
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    input: &PolicyInput,
    insecure: &[String],
    now: OffsetDateTime,
) -> ServiceResult<PolicyView> {
    actor.require_admin()?;
    let mut errors: crate::error::FieldErrors = vec![];
    if let Err(m) = check_issuer(&input.issuer, insecure) {
        errors.push(("issuer", m));
    }
    if let Err(m) = check_audience(&input.audience) {
        errors.push(("audience", m));
    }
    if let Err(m) = check_conditions(&input.conditions) {
        errors.push(("conditions", m));
    }
    let lifetime = check_lifetime(input.lifetime_seconds);
    if let Err(m) = &lifetime {
        errors.push(("lifetime_seconds", m.clone()));
    }
    if !actor.role.may_issue(input.role) {
        errors.push(("role", format!("Can't grant role {}", input.role)));
    }
    conn.transaction(|conn| {
        if !Account::lock(conn, actor.account_id.get())? {
            return Err(ServiceError::NotFound);
        }
        let sa = User::find(conn, input.service_account.get())?.filter(|u| {
            u.auth_type == AuthType::Service
                && u.removed_at.is_none()
                && u.account_id == actor.account_id.get()
        });
        match &sa {
            None => errors.push((
                "service_account_id",
                "No service account of this account has that id.".into(),
            )),
            Some(sa) if !sa.role.may_issue(input.role) => errors.push((
                "role",
                format!(
                    "The role can be at most the service account's ({}).",
                    sa.role
                ),
            )),
            Some(_) => {}
        }
        if TrustPolicyRow::count(conn, actor.account_id.get())? >= MAX_POLICIES {
            errors.push((
                "issuer",
                format!("The account already has {MAX_POLICIES} trust policies, the most it can have."),
            ));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(std::mem::take(&mut errors)));
        }
        let (Some(sa), Ok(lifetime)) = (sa, lifetime) else {
            return Err(ServiceError::NotFound);
        };
        let conditions = serde_json::to_string(&input.conditions)
            .map_err(|e| ServiceError::Internal(e.into()))?;
        let row = TrustPolicyRow::insert(
            conn,
            &NewTrustPolicy {
                account_id: actor.account_id.get(),
                issuer: &input.issuer,
                audience: &input.audience,
                conditions: &conditions,
                service_account_id: sa.id,
                role: input.role,
                lifetime_seconds: lifetime,
                created_by: Some(actor.user_id.get()),
                created_at: to_naive(now),
                allowed_routes: crate::domain::routes::to_stored(&input.allowed_routes).as_deref(),
            },
        )?;
        audit::record(
            conn,
            actor,
            now,
            EventKind::TrustPolicyConfigured,
            &format!(
                "Added trust policy {}: JWTs from {} for audience {:?} where {} become {}-minute tokens of service account {} ({})",
                row.id,
                input.issuer,
                input.audience,
                input
                    .conditions
                    .iter()
                    .map(|(k, v)| format!("{k} ~ {v:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                lifetime / 60,
                sa.name,
                input.role
            ),
            None,
        )?;
        view(conn, row)
    })
}

/// Removes a trust policy (tokens it minted run out on their own). Audited.
pub fn delete(
    conn: &mut DbConn,
    actor: &Actor,
    id: TrustPolicyId,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    actor.require_admin()?;
    conn.transaction(|conn| {
        if !TrustPolicyRow::delete(conn, actor.account_id.get(), id.get())? {
            return Err(ServiceError::NotFound);
        }
        audit::record(
            conn,
            actor,
            now,
            EventKind::TrustPolicyConfigured,
            &format!("Removed trust policy {id}"),
            None,
        )?;
        Ok(())
    })
}
