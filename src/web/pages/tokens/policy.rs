//! API tokens → Token policy (Administrators): the account's maximum lifetime and "expiry
//! required", shown to everyone, set by Administrators.

use crate::domain::policy::TokenPolicy;
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::views::{render, see_other, Layout};
use crate::web::{AppState, WebError};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

pub fn policy_words(p: &TokenPolicy) -> String {
    match (p.max_lifetime_days, p.expiry_required) {
        (Some(d), _) => format!("tokens expire within {d} days"),
        (None, true) => "every token has an expiry date".into(),
        (None, false) => "no limits".into(),
    }
}

#[derive(Template)]
#[template(path = "token_policy.html")]
struct PolicyPage {
    layout: Layout,
    max_days: String,
    required: bool,
    routes_required: bool,
    idle_days: String,
    rate_requests: String,
    rate_seconds: String,
    summary: crate::web::views::ErrorSummary,
    /// The field at fault and why.
    error: Option<(&'static str, String)>,
}

fn policy_page(
    me: &SignedIn,
    p: &TokenPolicy,
    error: Option<(&'static str, String)>,
    typed: Option<&PolicyForm>,
) -> PolicyPage {
    PolicyPage {
        layout: me.layout("api-tokens"),
        max_days: typed.map_or_else(
            || {
                p.max_lifetime_days
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            },
            |f| f.max_lifetime_days.chars().take(10).collect(),
        ),
        required: typed.map_or(p.expiry_required, |f| f.expiry_required.is_some()),
        routes_required: typed.map_or(p.routes_required, |f| f.routes_required.is_some()),
        idle_days: typed.map_or_else(
            || p.max_idle_days.map(|d| d.to_string()).unwrap_or_default(),
            |f| f.max_idle_days.chars().take(10).collect(),
        ),
        rate_requests: typed.map_or_else(
            || {
                p.max_rate
                    .map(|r| r.requests.to_string())
                    .unwrap_or_default()
            },
            |f| f.rate_requests.chars().take(10).collect(),
        ),
        rate_seconds: typed.map_or_else(
            || {
                p.max_rate
                    .map(|r| r.per_seconds.to_string())
                    .unwrap_or_default()
            },
            |f| f.rate_seconds.chars().take(10).collect(),
        ),
        summary: match &error {
            Some((field, m)) => {
                crate::web::views::ErrorSummary::one("error-summary-policy", field, m.clone())
            }
            None => crate::web::views::ErrorSummary::new("error-summary-policy"),
        },
        error,
    }
}

#[get("/profile/api-tokens/policy")]
pub async fn policy_form(
    state: web::Data<AppState>,
    me: SignedIn,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let p = state.tokens.token_policy(me.actor()).await?;
    render(StatusCode::OK, &policy_page(&me, &p, None, None))
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct PolicyForm {
    #[serde(default)]
    max_lifetime_days: String,
    expiry_required: Option<String>,
    #[serde(default)]
    max_idle_days: String,
    routes_required: Option<String>,
    #[serde(default)]
    rate_requests: String,
    #[serde(default)]
    rate_seconds: String,
}

#[post("/profile/api-tokens/policy")]
pub async fn save_policy(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<PolicyForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let fields = crate::web::pages::sudo::fields_of(&*form);
    if let Some(ask) =
        crate::web::pages::sudo::unless_recent(&state, &me, "/profile/api-tokens/policy", fields)
            .await?
    {
        return Ok(ask);
    }
    let days = form.max_lifetime_days.trim();
    let parsed = if days.is_empty() {
        Ok(None)
    } else {
        days.parse::<i64>().map(Some).map_err(|_| {
            "Enter a whole number of days, or leave it empty for no limit.".to_string()
        })
    }
    .and_then(|d| TokenPolicy::new(d, form.expiry_required.is_some()))
    .map_err(|m| ("max_lifetime_days", m));
    let idle = form.max_idle_days.trim();
    let parsed = parsed
        .and_then(|p| {
            let idle = if idle.is_empty() {
                Ok(None)
            } else {
                idle.parse::<i64>().map(Some).map_err(|_| {
                    "Enter a whole number of days, or leave it empty to keep idle tokens."
                        .to_string()
                })
            };
            idle.and_then(|d| p.with_idle_days(d))
                .map_err(|m| ("max_idle_days", m))
        })
        .map(|p| p.with_routes_required(form.routes_required.is_some()))
        .and_then(|p| {
            let fields = super::routes::LimitFields {
                rate_requests: form.rate_requests.clone(),
                rate_seconds: form.rate_seconds.clone(),
                ..Default::default()
            };
            fields
                .parse()
                .map(|(rate, _)| p.with_max_rate(rate))
                .map_err(|mut e| ("rate_requests", e.remove(0).1))
        });
    match parsed {
        Ok(p) => {
            state.tokens.set_token_policy(me.actor(), p).await?;
            me.session.set_flash(
                "The token policy was saved. Its limits apply to tokens created or rotated from now on; the idle rule to every token.",
            );
            Ok(see_other("/profile/api-tokens/policy"))
        }
        Err(m) => {
            let current = state.tokens.token_policy(me.actor()).await?;
            render(
                StatusCode::BAD_REQUEST,
                &policy_page(&me, &current, Some(m), Some(&form)),
            )
        }
    }
}
