//! The token page's "Limits" form (issue 28): the routes a token may call, its rate limit and
//! its usage quota, changed together (one transaction) and audited as narrowed or widened;
//! errors name the line or the field. The create form shares the rate and quota fields.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use serde::Deserialize;

use super::detail::{render_token, Typed};
use crate::domain::quota::UsageLimit;
use crate::domain::rate::RateLimit;
use crate::domain::TokenId;
use crate::error::ServiceError;
use crate::services::tokens::limits::{CallerLimits, LimitsChange};
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::ids::Id;
use crate::web::views::see_other;
use crate::web::{AppState, WebError};

/// A rate limit and a quota as the fields give them (`None`: none).
pub type TypedLimits = (Option<RateLimit>, Option<UsageLimit>);

/// The rate and quota fields as typed (both forms).
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
pub struct LimitFields {
    #[serde(default)]
    pub rate_requests: String,
    #[serde(default)]
    pub rate_seconds: String,
    #[serde(default)]
    pub quota_requests: String,
    /// "never", "daily" or "monthly".
    #[serde(default)]
    pub quota_refill: String,
}

impl LimitFields {
    /// The fields showing a token's limits.
    pub fn of(rate: Option<RateLimit>, quota: Option<UsageLimit>) -> LimitFields {
        LimitFields {
            rate_requests: rate.map(|r| r.requests.to_string()).unwrap_or_default(),
            rate_seconds: rate.map(|r| r.per_seconds.to_string()).unwrap_or_default(),
            quota_requests: quota.map(|q| q.requests.to_string()).unwrap_or_default(),
            quota_refill: quota
                .and_then(|q| q.refill.as_str())
                .unwrap_or("never")
                .to_owned(),
        }
    }

    /// What was typed, cut to a sane length (for a form that comes back).
    pub fn kept(&self) -> LimitFields {
        let cut = |s: &str| s.trim().chars().take(20).collect::<String>();
        LimitFields {
            rate_requests: cut(&self.rate_requests),
            rate_seconds: cut(&self.rate_seconds),
            quota_requests: cut(&self.quota_requests),
            quota_refill: cut(&self.quota_refill),
        }
    }

    /// The rate limit and quota typed (empty: none), or each field's problem.
    pub fn parse(&self) -> Result<TypedLimits, Vec<(&'static str, String)>> {
        let mut errors = vec![];
        let number = |s: &str| s.trim().parse::<i64>().ok();
        let (n, s) = (self.rate_requests.trim(), self.rate_seconds.trim());
        let rate = match (n.is_empty(), s.is_empty()) {
            (true, true) => None,
            _ => match (number(n), number(s)) {
                (Some(n), Some(s)) => RateLimit::new(n, s)
                    .map_err(|_| {
                        errors.push((
                            "rate_limit",
                            format!(
                                "A rate limit is 1 to {} requests per 1 to {} seconds, like 100 per 60.",
                                crate::domain::rate::MAX_REQUESTS,
                                crate::domain::rate::MAX_PER_SECONDS
                            ),
                        ))
                    })
                    .ok(),
                _ => {
                    errors.push((
                        "rate_limit",
                        "Give both numbers of the rate limit (requests, and per how many seconds), or neither.".into(),
                    ));
                    None
                }
            },
        };
        let q = self.quota_requests.trim();
        let refill = match self.quota_refill.trim() {
            "" | "never" => None,
            r => Some(r),
        };
        let quota = if q.is_empty() {
            None
        } else {
            match number(q) {
                Some(n) => UsageLimit::new(n, refill)
                    .map_err(|m| errors.push(("usage_limit", m)))
                    .ok(),
                None => {
                    errors.push((
                        "usage_limit",
                        "The usage quota is a whole number of requests, or empty for none.".into(),
                    ));
                    None
                }
            }
        };
        if errors.is_empty() {
            Ok((rate, quota))
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RoutesForm {
    #[serde(default)]
    allowed_routes: String,
    #[serde(flatten)]
    limits: LimitFields,
}

#[post("/profile/api-tokens/{tokenId}/routes")]
pub async fn set_routes(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<TokenId>,
    form: CsrfForm<RoutesForm>,
) -> Result<HttpResponse, WebError> {
    let id = id.get();
    let failed = |message: String| {
        Typed::routes(
            form.allowed_routes.chars().take(25_000).collect(),
            form.limits.kept(),
            message,
        )
    };
    let routes = crate::domain::routes::parse_lines(form.allowed_routes.lines());
    let limits = form.limits.parse();
    let (routes, (rate, quota)) = match (routes, limits) {
        (Ok(routes), Ok(limits)) => (routes, limits),
        (Err(m), _) => {
            return render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
        (_, Err(mut e)) => {
            let m = e.remove(0).1;
            return render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await;
        }
    };
    let change = LimitsChange {
        routes: Some(routes),
        rate: Some(rate),
        quota: Some(quota),
    };
    match state
        .tokens
        .set_token_limits(me.actor(), id, change, CallerLimits::default())
        .await
    {
        Ok(t) => {
            me.session.set_flash(
                if t.allowed_routes.is_empty() && t.rate_limit.is_none() && t.usage_limit.is_none()
                {
                    "The token can call every route its role allows, as often as it likes."
                } else {
                    "The token's limits are saved."
                },
            );
            Ok(see_other(&format!("/profile/api-tokens/{id}")))
        }
        Err(ServiceError::Invalid(mut fields)) => {
            let m = fields.remove(0).1;
            render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e.into()),
    }
}
