//! Least privilege (issue 28): changing the routes a token may call and its rate limit,
//! audited as narrowed or widened. A token can't be made to reach further than the token it was created with, nor
//! than the token that changes it.

use diesel::Connection;
use time::OffsetDateTime;

use super::read::{load_view, lock_changeable};
use super::view::TokenView;
use super::Tokens;
use crate::db::DbConn;
use crate::domain::quota::UsageLimit;
use crate::domain::rate::RateLimit;
use crate::domain::routes::{from_stored, to_stored, within, Route};
use crate::domain::{EventKind, TokenId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::token_limits::QuotaCounter;
use crate::repo::{Account, Token};
use crate::services::audit;
use crate::services::vocabulary::Actor;

fn listed(routes: &[Route]) -> String {
    if routes.is_empty() {
        "any route".into()
    } else {
        routes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sets the routes a token may call (empty: whatever its role allows). `caller_routes`: the
/// routes of the token that asks, if it has some.
pub fn set_allowed_routes(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    routes: &[Route],
    caller_routes: Option<&[Route]>,
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    let id = id.get();
    conn.transaction(|conn| {
        let token = lock_changeable(conn, actor, id, "allowed_routes")?;
        let old = from_stored(token.allowed_routes.as_deref());
        let parent = match token.parent_id {
            Some(p) => Token::find(conn, p)?
                .map(|p| from_stored(p.allowed_routes.as_deref()))
                .unwrap_or_default(),
            None => vec![],
        };
        if !within(routes, &parent) {
            return Err(ServiceError::invalid(
                "allowed_routes",
                "This token was made with a token that is limited to routes: it can reach no further than that token.",
            ));
        }
        if caller_routes.is_some_and(|mine| !within(routes, mine)) {
            return Err(ServiceError::invalid(
                "allowed_routes",
                "A token limited to routes can't give another token routes beyond its own.",
            ));
        }
        let required = Account::find(conn, token.account_id)?
            .is_some_and(|a| a.token_policy().routes_required);
        if required && routes.is_empty() {
            return Err(ServiceError::invalid(
                "allowed_routes",
                "The account's token policy requires allowed routes on every token.",
            ));
        }
        let stored = to_stored(routes);
        if stored == token.allowed_routes {
            return Ok(());
        }
        Token::set_allowed_routes(conn, id, stored.as_deref())?;
        let how = if within(routes, &old) {
            "Narrowed"
        } else if within(&old, routes) {
            "Widened"
        } else {
            "Changed"
        };
        audit::record(
            conn,
            actor,
            now,
            EventKind::TokenRoutesChanged,
            &format!(
                "{how} the routes of token \"{}\": from {} to {}",
                token.name,
                listed(&old),
                listed(routes)
            ),
            Some(id),
        )
    })?;
    load_view(conn, id, now)
}

/// Refuses `value` (`None`: no limit at all) past either ceiling: the parent's limit, then the
/// calling token's.
fn under_ceilings<T: Copy + std::fmt::Display>(
    (field, what): (&'static str, &str),
    value: Option<T>,
    [parent, caller]: [Option<T>; 2],
    within: fn(T, T) -> bool,
) -> ServiceResult<()> {
    for (ceiling, whose) in [
        (parent, "the token it was made with"),
        (caller, "the token asking"),
    ] {
        if let Some(ceiling) = ceiling {
            if !value.is_some_and(|v| within(v, ceiling)) {
                return Err(ServiceError::invalid(
                    field,
                    format!("{what} can be at most {ceiling}, that of {whose}."),
                ));
            }
        }
    }
    Ok(())
}

/// How a limit changed, for the audit trail (`None`: no limit).
fn how_changed<T: Copy>(old: Option<T>, new: Option<T>, within: fn(T, T) -> bool) -> &'static str {
    match (old, new) {
        (Some(o), Some(n)) if within(n, o) => "Narrowed",
        (None, Some(_)) => "Narrowed",
        (Some(o), Some(n)) if within(o, n) => "Widened",
        (Some(_), None) => "Widened",
        _ => "Changed",
    }
}

/// Sets a token's rate limit (`None`: none): no larger than the token it was created with, nor
/// than the calling token's own. Audited with the same kind as routes.
pub fn set_rate_limit(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    rate: Option<RateLimit>,
    caller_rate: Option<RateLimit>,
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    let id = id.get();
    conn.transaction(|conn| {
        let token = lock_changeable(conn, actor, id, "rate_limit")?;
        let parent = match token.parent_id {
            Some(p) => {
                Token::find(conn, p)?.and_then(|p| RateLimit::from_stored(p.rate_limit.as_deref()))
            }
            None => None,
        };
        under_ceilings(
            ("rate_limit", "The rate limit"),
            rate,
            [parent, caller_rate],
            RateLimit::within,
        )?;
        let old = RateLimit::from_stored(token.rate_limit.as_deref());
        if old == rate {
            return Ok(());
        }
        // A change must meet the policy's cap (a token older than the cap keeps its own).
        let cap = Account::find(conn, token.account_id)?.and_then(|a| a.token_policy().max_rate);
        if let Some(cap) = cap.filter(|cap| !rate.is_some_and(|r| r.within(*cap))) {
            return Err(ServiceError::invalid(
                "rate_limit",
                format!("The account's token policy allows rate limits of at most {cap}."),
            ));
        }
        Token::set_rate_limit(conn, id, rate.map(RateLimit::to_stored).as_deref())?;
        let words = |r: Option<RateLimit>| r.map_or("no limit".to_string(), |r| r.to_string());
        let how = how_changed(old, rate, RateLimit::within);
        audit::record(
            conn,
            actor,
            now,
            EventKind::TokenRoutesChanged,
            &format!(
                "{how} the rate limit of token \"{}\": from {} to {}",
                token.name,
                words(old),
                words(rate)
            ),
            Some(id),
        )
    })?;
    load_view(conn, id, now)
}

/// Sets a token's usage quota (`None`: none): no larger than the token it was created with,
/// nor than the calling token's own. A changed quota starts its count afresh. Audited with
/// the same kind as routes.
pub fn set_usage_limit(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    quota: Option<UsageLimit>,
    caller_quota: Option<UsageLimit>,
    now: OffsetDateTime,
) -> ServiceResult<TokenView> {
    let id = id.get();
    conn.transaction(|conn| {
        let token = lock_changeable(conn, actor, id, "usage_limit")?;
        let parent = match token.parent_id {
            Some(p) => Token::find(conn, p)?
                .and_then(|p| UsageLimit::from_stored(p.usage_limit.as_deref())),
            None => None,
        };
        under_ceilings(
            ("usage_limit", "The usage quota"),
            quota,
            [parent, caller_quota],
            UsageLimit::within,
        )?;
        let old = UsageLimit::from_stored(token.usage_limit.as_deref());
        if old == quota {
            return Ok(());
        }
        Token::set_usage_limit(conn, id, quota.map(UsageLimit::to_stored).as_deref())?;
        QuotaCounter::reset(conn, id)?;
        let words = |q: Option<UsageLimit>| q.map_or("no quota".to_string(), |q| q.to_string());
        let how = how_changed(old, quota, UsageLimit::within);
        audit::record(
            conn,
            actor,
            now,
            EventKind::TokenRoutesChanged,
            &format!(
                "{how} the usage quota of token \"{}\": from {} to {}",
                token.name,
                words(old),
                words(quota)
            ),
            Some(id),
        )
    })?;
    load_view(conn, id, now)
}

/// What a `PATCH` changes of a token's limits (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct LimitsChange {
    pub routes: Option<Vec<Route>>,
    pub rate: Option<Option<RateLimit>>,
    pub quota: Option<Option<UsageLimit>>,
}

/// The limits of the token that asks for a change (none for a person's JWT or the portal).
#[derive(Debug, Clone, Default)]
pub struct CallerLimits {
    pub routes: Option<std::sync::Arc<[Route]>>,
    pub rate: Option<RateLimit>,
    pub quota: Option<UsageLimit>,
}

impl Tokens {
    /// Changes a token's routes, rate and quota together, all or nothing (one transaction);
    /// this instance's cache and quota lease forget it at once, the others within their
    /// second (quota leases: within a lease).
    #[tracing::instrument(skip_all, fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn set_token_limits(
        &self,
        actor: Actor,
        id: TokenId,
        change: LimitsChange,
        caller: CallerLimits,
    ) -> ServiceResult<TokenView> {
        let now = self.rt.clock.now();
        let view = self
            .rt
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if let Some(routes) = &change.routes {
                        set_allowed_routes(
                            conn,
                            &actor,
                            id,
                            routes,
                            caller.routes.as_deref(),
                            now,
                        )?;
                    }
                    if let Some(rate) = change.rate {
                        set_rate_limit(conn, &actor, id, rate, caller.rate, now)?;
                    }
                    if let Some(quota) = change.quota {
                        set_usage_limit(conn, &actor, id, quota, caller.quota, now)?;
                    }
                    load_view(conn, id.get(), now)
                })
            })
            .await?;
        self.gateway.forget_tokens(&[id.get()]);
        self.gateway.forget_quota(id.get());
        Ok(view)
    }

    /// Sets a token's allowed routes (see `set_allowed_routes`); this instance's cache forgets
    /// it at once, the others within their second.
    #[tracing::instrument(skip(self, routes, caller_routes), fields(account_id = actor.account_id.get(), user_id = actor.user_id.get()))]
    pub async fn set_token_routes(
        &self,
        actor: Actor,
        id: TokenId,
        routes: Vec<Route>,
        caller_routes: Option<std::sync::Arc<[Route]>>,
    ) -> ServiceResult<TokenView> {
        let now = self.rt.clock.now();
        let view = self
            .rt
            .db
            .run(move |conn| {
                set_allowed_routes(conn, &actor, id, &routes, caller_routes.as_deref(), now)
            })
            .await?;
        self.gateway.forget_tokens(&[id.get()]);
        Ok(view)
    }
}
