//! Creating a token: a name, an optional description, a role no higher than the creator's
//! own, an expiry within the account's policy (and no later than the token it was created
//! with), at most 50 active per account, counted and inserted under the account's lock.

use crate::domain::EventKind;
use diesel::Connection;
use time::OffsetDateTime;

use super::read::load_view;
use super::rotation::cap_expiry;
use super::view::{CreateOutcome, NewTokenRequest};
use crate::db::DbConn;
use crate::domain::token::{from_naive, to_naive, MAX_ACTIVE_TOKENS_PER_ACCOUNT};
use crate::domain::token_format;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, NewToken, Token, User};
use crate::services::audit;
use crate::services::vocabulary::Actor;

/// Creates a token for `actor`, at most 50 active per account, with a role no higher than
/// the actor's own.
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    request: &NewTokenRequest,
    now: OffsetDateTime,
) -> ServiceResult<CreateOutcome> {
    create_as(conn, actor, None, request, now)
}

/// Creates a token issued to service account `service_account` (an Administrator acting),
/// or, with `None`, to `actor` (`create`). A service account's token has no parent: it
/// belongs to the service account, so it outlives the person and the token that made it.
pub fn create_as(
    conn: &mut DbConn,
    actor: &Actor,
    service_account: Option<crate::domain::ServiceAccountId>,
    request: &NewTokenRequest,
    now: OffsetDateTime,
) -> ServiceResult<CreateOutcome> {
    let naive_now = to_naive(now);
    let issuer_id = service_account.map_or(actor.user_id.get(), |s| s.get());
    if service_account.is_some() {
        actor.require_admin()?;
    }
    let description = request.description.clone().into_inner();
    let row = conn.transaction(|conn| {
        // Serialises creates per account, so the count below can't go stale before the insert.
        if !Account::lock(conn, actor.account_id.get())? {
            return Err(ServiceError::NotFound);
        }
        // The role ceiling, in one place: the acting role (a token's own), capped by the
        // issuer's role as it is now, read under the lock a role change also takes, so a
        // demotion racing this create can't leave a token above its issuer.
        let issuer = User::find(conn, issuer_id)?
            .filter(|u| u.removed_at.is_none() && u.account_id == actor.account_id.get())
            .filter(|u| {
                service_account.is_none() || u.auth_type == crate::domain::AuthType::Service
            })
            .ok_or(ServiceError::NotFound)?;
        if !actor.role.capped_by(issuer.role).may_issue(request.role) {
            return Err(ServiceError::invalid(
                "role",
                format!("Can't create token with role {}", request.role),
            ));
        }
        if let Some(form_id) = request.form_id.as_deref() {
            if let Some(existing) = Token::find_by_form(conn, issuer_id, form_id)? {
                return Ok(Err(existing.id));
            }
        }
        ensure_room(conn, actor.account_id.get(), naive_now)?;
        let account = Account::find(conn, actor.account_id.get())?.ok_or(ServiceError::NotFound)?;
        account
            .token_policy()
            .check(request.expiry.instant(), now)
            .map_err(|m| ServiceError::invalid("expiry", m))?;
        // A token made with a token lives no longer than it: "never" only if it never expires.
        let parent = request.parent.filter(|_| service_account.is_none());
        let parent_row = match parent.map(crate::domain::TokenId::get) {
            Some(parent_id) => Some(
                Token::find(conn, parent_id)?
                    .filter(|p| p.account_id == actor.account_id.get() && p.deleted_at.is_none())
                    .ok_or(ServiceError::NotFound)?,
            ),
            None => None,
        };
        let parent_expiry = parent_row.as_ref().map(|p| p.expires_at);
        let routes = allowed_routes(
            request,
            parent_row
                .as_ref()
                .and_then(|p| p.allowed_routes.as_deref()),
            account.token_policy().routes_required,
        )?;
        let rate = rate_limit(
            request,
            parent_row.as_ref().and_then(|p| p.rate_limit.as_deref()),
            account.token_policy().max_rate,
        )?;
        let quota = usage_limit(
            request,
            parent_row.as_ref().and_then(|p| p.usage_limit.as_deref()),
        )?;
        let expires_at = cap_expiry(request.expiry.instant().map(to_naive), [parent_expiry]);
        let allowed = crate::domain::allowlist::to_stored(&request.allowed_ips);
        let (id, secret) = insert(
            conn,
            &NewToken {
                account_id: actor.account_id.get(),
                issuer_id,
                name: request.name.as_str(),
                description: description.as_deref(),
                role: request.role,
                secret_hash: PENDING_HASH,
                created_at: naive_now,
                expires_at,
                form_id: request.form_id.as_deref(),
                parent_id: parent.map(crate::domain::TokenId::get),
                allowed_ips: allowed.as_deref(),
                allowed_routes: crate::domain::routes::to_stored(&routes).as_deref(),
                rate_limit: rate.map(|r| r.to_stored()).as_deref(),
                usage_limit: quota.map(|q| q.to_stored()).as_deref(),
            },
        )?;
        let mut via = audit::via_words(conn, actor)?;
        if service_account.is_some() {
            via = format!(" for service account {}{via}", issuer.name);
        }
        let mut expiry = expires_at.map_or("never expires".to_owned(), |at| {
            format!("expires {}", from_naive(at).date())
        });
        if let Some(list) = &allowed {
            expiry.push_str(&format!(", only from {}", list.replace(',', ", ")));
        }
        if let Some(r) = rate {
            expiry.push_str(&format!(", at most {r}"));
        }
        if let Some(q) = quota {
            expiry.push_str(&format!(", quota {q}"));
        }
        if !routes.is_empty() {
            expiry.push_str(&format!(
                ", only {}",
                routes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        audit::record(
            conn,
            actor,
            now,
            EventKind::TokenCreated,
            &format!(
                "Created token \"{}\" ({}, {expiry}){via}",
                request.name.as_str(),
                request.role
            ),
            Some(id),
        )?;
        Ok(Ok((id, secret)))
    })?;
    match row {
        Ok((id, secret)) => Ok(CreateOutcome::Created {
            token: load_view(conn, id, now)?,
            secret,
        }),
        Err(id) => Ok(CreateOutcome::AlreadyCreated {
            token: load_view(conn, id, now)?,
        }),
    }
}

/// The routes a new token gets: those asked for, which must be within its parent's when the
/// parent has some (none asked for: the parent's); required by the account's policy.
fn allowed_routes(
    request: &NewTokenRequest,
    parent: Option<&str>,
    required: bool,
) -> ServiceResult<Vec<crate::domain::routes::Route>> {
    use crate::domain::routes::{from_stored, within};
    let parent = from_stored(parent);
    let routes = if request.allowed_routes.is_empty() {
        parent.clone()
    } else {
        request.allowed_routes.clone()
    };
    if !within(&routes, &parent) {
        return Err(ServiceError::invalid(
            "allowed_routes",
            "A token made with a token can't reach further than it: every route must be within one of the token's own allowed routes.",
        ));
    }
    if required && routes.is_empty() {
        return Err(ServiceError::invalid(
            "allowed_routes",
            "The account's token policy requires every new token to be limited to allowed routes: add at least one, like GET /dns/**.",
        ));
    }
    Ok(routes)
}

/// The rate limit a new token gets: the one asked for, no larger than its parent's when the
/// parent has one (none asked for: the parent's), nor than the account policy's cap (none
/// asked for and no parent's: the cap).
fn rate_limit(
    request: &NewTokenRequest,
    parent: Option<&str>,
    cap: Option<crate::domain::rate::RateLimit>,
) -> ServiceResult<Option<crate::domain::rate::RateLimit>> {
    let parent = crate::domain::rate::RateLimit::from_stored(parent);
    let rate = match (request.rate_limit, parent) {
        (Some(mine), Some(p)) if !mine.within(p) => {
            return Err(ServiceError::invalid(
                "rate_limit",
                format!("A token made with a token can't be faster than it: at most {p}."),
            ))
        }
        (Some(mine), _) => Some(mine),
        (None, p) => p.or(cap),
    };
    match (rate, cap) {
        (Some(r), Some(cap)) if !r.within(cap) => Err(ServiceError::invalid(
            "rate_limit",
            format!("The account's token policy allows at most {cap}."),
        )),
        _ => Ok(rate),
    }
}

/// The usage quota a new token gets: the one asked for, no larger than its parent's when the
/// parent has one (none asked for: the parent's).
fn usage_limit(
    request: &NewTokenRequest,
    parent: Option<&str>,
) -> ServiceResult<Option<crate::domain::quota::UsageLimit>> {
    let parent = crate::domain::quota::UsageLimit::from_stored(parent);
    match (request.usage_limit, parent) {
        (Some(mine), Some(p)) if !mine.within(p) => Err(ServiceError::invalid(
            "usage_limit",
            format!("A token made with a token can't have a larger quota than it: at most {p}."),
        )),
        (Some(mine), _) => Ok(Some(mine)),
        (None, p) => Ok(p),
    }
}

/// Refuses a new token when the account has its 50 active already (under the account's lock).
pub(crate) fn ensure_room(
    conn: &mut DbConn,
    account_id: i64,
    now: time::PrimitiveDateTime,
) -> ServiceResult<()> {
    if Token::count_active(conn, account_id, now)? >= MAX_ACTIVE_TOKENS_PER_ACCOUNT {
        return Err(limit_reached());
    }
    Ok(())
}

/// Inserts a token row and gives it its secret (the secret's checksum covers the id the insert
/// assigns, so the hash is set right after, in the caller's transaction). `new.secret_hash` is
/// ignored.
pub(crate) fn insert(
    conn: &mut DbConn,
    new: &NewToken,
) -> ServiceResult<(i64, crate::domain::secret::Secret)> {
    let new = NewToken {
        secret_hash: PENDING_HASH,
        ..*new
    };
    let id = Token::insert(conn, &new)?.id;
    let secret = token_format::generate_secret(id);
    Token::set_secret_hash(conn, id, &secret.hash().0)?;
    Ok((id, secret))
}

/// What a new row holds for the one statement between its insert and its real hash (in one
/// transaction, so nobody sees it): not hex, so no secret could ever match it.
const PENDING_HASH: &str = "pending";

pub fn limit_reached() -> ServiceError {
    ServiceError::invalid(
        "limit",
        format!(
            "The account already has {MAX_ACTIVE_TOKENS_PER_ACCOUNT} active API tokens, the most it can have. Delete a token you no longer need, then create the new one."
        ),
    )
}
