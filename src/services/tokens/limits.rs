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
fn set_allowed_routes(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    routes: &[Route],
    caller_routes: Option<&[Route]>,
    now: OffsetDateTime,
) -> ServiceResult<()> {
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
    })
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
fn set_rate_limit(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    rate: Option<RateLimit>,
    caller_rate: Option<RateLimit>,
    now: OffsetDateTime,
) -> ServiceResult<()> {
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
    })
}

/// Sets a token's usage quota (`None`: none): no larger than the token it was created with,
/// nor than the calling token's own. A changed quota starts its count afresh. Audited with
/// the same kind as routes.
fn set_usage_limit(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    quota: Option<UsageLimit>,
    caller_quota: Option<UsageLimit>,
    now: OffsetDateTime,
) -> ServiceResult<()> {
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
    })
}

/// After `root`'s limits changed: the live tokens made with it, at any depth (parents first),
/// stay within their parent's, as they were made. A child's routes, rate and quota are kept
/// when within its parent's, else they become the parent's (never wider than the parent; the
/// child's own narrower intent can't be kept when the parent no longer holds it). Each change
/// is audited; the gateway's caches take it within their second.
fn narrow_children(
    conn: &mut DbConn,
    actor: &Actor,
    root: i64,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    for id in Token::descendants(conn, root, true)? {
        let Some(child) = Token::find(conn, id)? else {
            continue;
        };
        let Some(parent) = child
            .parent_id
            .map(|p| Token::find(conn, p))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        let parent_routes = from_stored(parent.allowed_routes.as_deref());
        let child_routes = from_stored(child.allowed_routes.as_deref());
        let routes = if within(&child_routes, &parent_routes) {
            child_routes
        } else {
            parent_routes
        };
        fn kept<T: Copy>(
            child: Option<T>,
            parent: Option<T>,
            within: fn(T, T) -> bool,
        ) -> Option<T> {
            match (child, parent) {
                (Some(c), Some(p)) if within(c, p) => Some(c),
                (_, Some(p)) => Some(p),
                (c, None) => c,
            }
        }
        let rate = kept(
            RateLimit::from_stored(child.rate_limit.as_deref()),
            RateLimit::from_stored(parent.rate_limit.as_deref()),
            RateLimit::within,
        );
        let quota = kept(
            UsageLimit::from_stored(child.usage_limit.as_deref()),
            UsageLimit::from_stored(parent.usage_limit.as_deref()),
            UsageLimit::within,
        );
        let (routes, rate, quota) = (
            to_stored(&routes),
            rate.map(RateLimit::to_stored),
            quota.map(UsageLimit::to_stored),
        );
        if (&routes, &rate, &quota)
            == (&child.allowed_routes, &child.rate_limit, &child.usage_limit)
        {
            continue;
        }
        Token::set_allowed_routes(conn, id, routes.as_deref())?;
        Token::set_rate_limit(conn, id, rate.as_deref())?;
        if quota != child.usage_limit {
            Token::set_usage_limit(conn, id, quota.as_deref())?;
            QuotaCounter::reset(conn, id)?;
        }
        audit::record(
            conn,
            actor,
            now,
            EventKind::TokenRoutesChanged,
            &format!(
                "Narrowed token \"{}\" with the token it was made with, \"{}\": its limits are now within that token's",
                child.name, parent.name
            ),
            Some(id),
        )?;
    }
    Ok(())
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
                    // Once, after all three: the tokens made with it stay within it.
                    narrow_children(conn, &actor, id.get(), now)?;
                    load_view(conn, id.get(), now)
                })
            })
            .await?;
        self.gateway.forget_tokens(&[id.get()]);
        self.gateway.forget_quota(id.get());
        Ok(view)
    }
}
