//! A token's own page: details, name and description, rotation with a grace window, and its
//! audit trail; and the account's token policy (Administrators).

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::chart::{chart, Chart};
use super::policy::policy_words;
use super::view::{choice, Choice, Reveal, TokenRow};
use crate::domain::input::{Expiry, TokenDescription, TokenName, HORIZON_DAYS};
use crate::domain::policy::{grace, GRACE_CHOICES};
use crate::domain::token::{wire_form, Separator, TokenStatus};
use crate::domain::TokenId;
use crate::error::ServiceError;
use crate::services::audit::Event;
use crate::services::tokens::{Rotation, TokenDetail};
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::ids::Id;
use crate::web::views::{date, datetime, render, see_other, ErrorSummary, Layout};
use crate::web::{AppState, WebError};

/// A token as its page shows it.
pub struct TokenFacts {
    pub id: TokenId,
    pub name: String,
    pub description: Option<String>,
    pub role: &'static str,
    pub issuer_name: String,
    pub issuer_email: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub status: &'static str,
    pub created_with: Option<String>,
    pub grace_until: Option<String>,
    pub outside_policy: bool,
    /// Not deleted: it can be edited, rotated (if active) and deleted.
    pub editable: bool,
    /// The viewer issued it, so may rotate it (`services::tokens::may_rotate`).
    pub rotatable: bool,
    /// The allowlist, comma-separated ("" = any address).
    pub allowed: String,
}

/// A line of an audit trail, formatted.
pub struct EventLine {
    pub at: String,
    pub who: String,
    pub kind: String,
    pub summary: String,
    pub client: Option<String>,
}

impl EventLine {
    pub fn of(e: Event) -> EventLine {
        EventLine {
            at: datetime(e.at),
            who: e.who.unwrap_or_else(|| "—".into()),
            kind: e.kind,
            summary: e.summary,
            client: e.client_address,
        }
    }
}

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    layout: Layout,
    t: TokenFacts,
    events: Vec<EventLine>,
    policy_text: String,
    edit_name: String,
    edit_description: String,
    edit_error: Option<String>,
    graces: Vec<Choice>,
    rotate_date: String,
    rotate_error: Option<String>,
    min_date: String,
    reveal: Option<Reveal>,
    allow_text: String,
    allow_error: Option<String>,
    /// The allowed routes, one a line (the form's text), and what was wrong with them.
    routes_text: String,
    routes_error: Option<String>,
    /// The rate and quota fields, and the limits in words (rate, quota with what is left).
    limits: super::routes::LimitFields,
    limits_words: (Option<String>, Option<String>),
    rate_cap: Option<String>,
    /// The error summary of whichever form was refused (at most one).
    edit_summary: ErrorSummary,
    allow_summary: ErrorSummary,
    rotate_summary: ErrorSummary,
    /// The rotate form's date: `Some(last allowed day)` when the policy makes it required.
    rotate_required: Option<String>,
    max_date: String,
    /// Asked before acting: a rotation whose old secret stops at once (the form to repeat).
    confirm_rotate: Option<(String, String)>,
    /// Asked before saving an allowlist that leaves out where the token was last used.
    confirm_allow: Option<(String, String)>,
    chart: Chart,
    addresses: Vec<(String, String)>,
    last_agent: Option<String>,
    last_ip: Option<String>,
}

/// What the forms on the page carry back when they come back with an error.
#[derive(Default)]
pub(super) struct Typed {
    name: Option<String>,
    description: Option<String>,
    edit_error: Option<String>,
    grace: Option<i64>,
    rotate_date: String,
    rotate_error: Option<String>,
    allow_text: Option<String>,
    allow_error: Option<String>,
    routes_text: Option<String>,
    routes_error: Option<String>,
    limits: Option<super::routes::LimitFields>,
    /// (grace, date) of a rotation with no grace, to confirm.
    confirm_rotate: Option<(String, String)>,
    /// (the warning, the list typed) of an allowlist leaving out the last address used.
    confirm_allow: Option<(String, String)>,
}

impl Typed {
    /// The routes form, back with what was typed and what is wrong with it.
    pub(super) fn routes(text: String, limits: super::routes::LimitFields, error: String) -> Typed {
        Typed {
            limits: Some(limits),
            routes_text: Some(text),
            routes_error: Some(error),
            ..Typed::default()
        }
    }
}

pub(super) async fn render_token(
    state: &AppState,
    me: &SignedIn,
    id: TokenId,
    typed: Typed,
    reveal: Option<Reveal>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let now = state.clock().now();
    let TokenDetail {
        token,
        events,
        policy,
        usage,
    } = state.tokens.token_page(me.actor(), id).await?;
    let row = TokenRow::new(&token, now);
    let allowed: String = token
        .allowed_ips
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let grace_pick = typed.grace.unwrap_or(86_400);
    let edit_summary = summary("error-summary-edit", "name", &typed.edit_error);
    let allow_summary = summary("error-summary-allowlist", "allowed_ips", &typed.allow_error);
    let rotate_summary = summary(
        "error-summary-rotate",
        "rotate_exp_date",
        &typed.rotate_error,
    );
    let page = TokenPage {
        layout: me.layout("api-tokens"),
        edit_name: typed.name.unwrap_or_else(|| token.name.clone()),
        edit_description: typed
            .description
            .unwrap_or_else(|| token.description.clone().unwrap_or_default()),
        edit_error: typed.edit_error,
        graces: GRACE_CHOICES
            .iter()
            .map(|(secs, label)| choice(secs, label, *secs == grace_pick))
            .collect(),
        rotate_date: typed.rotate_date,
        rotate_error: typed.rotate_error,
        min_date: date(now),
        policy_text: policy_words(&policy),
        rate_cap: policy.max_rate.map(|r| r.to_string()),
        allow_text: typed
            .allow_text
            .unwrap_or_else(|| allowed.replace(", ", "\n")),
        routes_text: typed.routes_text.unwrap_or_else(|| {
            crate::domain::routes::to_stored(&token.allowed_routes).unwrap_or_default()
        }),
        routes_error: typed.routes_error,
        limits: typed
            .limits
            .unwrap_or_else(|| super::routes::LimitFields::of(token.rate_limit, token.usage_limit)),
        limits_words: (
            token.rate_limit.map(|r| format!("At most {r}")),
            token.usage_limit.map(|q| {
                let left = token.remaining_uses.unwrap_or(q.requests);
                format!(
                    "{q}: {left} left{}",
                    match q.next_refill(now) {
                        Some(at) => format!(" until {}", date(at)),
                        None => String::new(),
                    }
                )
            }),
        ),
        edit_summary,
        allow_summary,
        rotate_summary,
        rotate_required: policy
            .check(token.expires_at, now)
            .err()
            .map(|_| policy.latest_expiry(now).map(date).unwrap_or_default()),
        max_date: date(
            policy
                .latest_expiry(now)
                .unwrap_or(now + time::Duration::days(HORIZON_DAYS)),
        ),
        confirm_rotate: typed.confirm_rotate,
        confirm_allow: typed.confirm_allow,
        allow_error: typed.allow_error,
        chart: chart(&usage.days, &usage.refused),
        addresses: usage
            .addresses
            .into_iter()
            .map(|(a, at)| (a, datetime(at)))
            .collect(),
        last_agent: token.last_used_user_agent.clone(),
        last_ip: token.last_used_ip.clone(),
        events: events.into_iter().map(EventLine::of).collect(),
        t: TokenFacts {
            id: token.id,
            editable: token.status != TokenStatus::Deleted,
            rotatable: token.issuer_id == me.user.user.id,
            allowed,
            grace_until: token.old_secret_until.map(datetime),
            outside_policy: token.outside_policy,
            name: row.name,
            description: row.description,
            role: row.role,
            issuer_name: row.issuer_name,
            issuer_email: row.issuer_email,
            created: row.created,
            expires: row.expires,
            last_used: row.last_used,
            status: row.status,
            created_with: row.created_with,
        },
        reveal,
    };
    let mut response = render(status, &page)?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The summary of a refused form on the token page, if it was this one.
fn summary(id: &'static str, field: &'static str, error: &Option<String>) -> ErrorSummary {
    match error {
        Some(m) => ErrorSummary::one(id, field, m.clone()),
        None => ErrorSummary::new(id),
    }
}

#[get("/profile/api-tokens/{tokenId}")]
pub async fn token_page(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<TokenId>,
) -> Result<HttpResponse, WebError> {
    let id = id.get();
    render_token(&state, &me, id, Typed::default(), None, StatusCode::OK).await
}

#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

#[post("/profile/api-tokens/{tokenId}/edit")]
pub async fn edit_token(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<TokenId>,
    form: CsrfForm<EditForm>,
) -> Result<HttpResponse, WebError> {
    let id = id.get();
    let parsed = TokenName::parse(&form.name).and_then(|name| {
        TokenDescription::parse(Some(&form.description)).map(|description| (name, description))
    });
    let failed = |message: String| Typed {
        name: Some(form.name.chars().take(200).collect()),
        description: Some(form.description.chars().take(1000).collect()),
        edit_error: Some(message),
        ..Typed::default()
    };
    let (name, description) = match parsed {
        Ok(p) => p,
        Err(m) => {
            return render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
    };
    match state
        .tokens
        .rename_token(me.actor(), id, name, description)
        .await
    {
        Ok(_) => {
            me.session
                .set_flash("The token's name and description were saved.");
            Ok(see_other(&format!("/profile/api-tokens/{id}")))
        }
        Err(ServiceError::Invalid(mut fields)) => {
            let m = fields.remove(0).1;
            render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace: String,
    #[serde(default)]
    exp_date: String,
    /// "1" once the person confirmed a rotation whose old secret stops at once.
    #[serde(default)]
    confirmed: String,
}

#[post("/profile/api-tokens/{tokenId}/rotate")]
pub async fn rotate_token(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<TokenId>,
    form: CsrfForm<RotateForm>,
) -> Result<HttpResponse, WebError> {
    let id = id.get();
    let now = state.clock().now();
    let seconds = form.grace.trim().parse::<i64>().ok();
    let failed = |message: String| Typed {
        grace: seconds,
        rotate_date: form.exp_date.chars().take(10).collect(),
        rotate_error: Some(message),
        ..Typed::default()
    };
    let grace = match seconds
        .filter(|s| GRACE_CHOICES.iter().any(|(c, _)| c == s))
        .ok_or_else(|| "Choose how long the old secret keeps working.".to_string())
        .and_then(grace)
    {
        Ok(g) => g,
        Err(m) => {
            return render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
    };
    if grace.is_zero() && form.confirmed != "1" {
        // The old secret stops at once: every script still using it fails. Asked first.
        let ask = Typed {
            confirm_rotate: Some((
                form.grace.trim().to_owned(),
                form.exp_date.chars().take(10).collect(),
            )),
            grace: seconds,
            rotate_date: form.exp_date.chars().take(10).collect(),
            ..Typed::default()
        };
        return render_token(&state, &me, id, ask, None, StatusCode::OK).await;
    }
    let expiry = if form.exp_date.trim().is_empty() {
        None
    } else {
        match Expiry::from_form("date", Some(&form.exp_date), now) {
            Ok(e) => Some(e),
            Err(m) => {
                return render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST)
                    .await
            }
        }
    };
    match state
        .tokens
        .rotate_token(me.actor(), id, Rotation { grace, expiry }, None)
        .await
    {
        Ok((token, secret)) => {
            let reveal = Reveal {
                value: wire_form(token.id, Separator::Underscore, &secret),
                name: token.name,
            };
            render_token(
                &state,
                &me,
                id,
                Typed::default(),
                Some(reveal),
                StatusCode::OK,
            )
            .await
        }
        Err(ServiceError::Invalid(mut fields)) => {
            let m = fields.remove(0).1;
            render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
        Err(ServiceError::Forbidden(m)) => {
            render_token(&state, &me, id, failed(m), None, StatusCode::FORBIDDEN).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct AllowForm {
    #[serde(default)]
    allowed_ips: String,
    /// "1" once the person confirmed a list that leaves out the last address used.
    #[serde(default)]
    confirmed: String,
}

#[post("/profile/api-tokens/{tokenId}/allowlist")]
pub async fn set_allowlist(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<TokenId>,
    form: CsrfForm<AllowForm>,
) -> Result<HttpResponse, WebError> {
    let id = id.get();
    let entries: Vec<&str> = form
        .allowed_ips
        .split(['\n', ',', ' ', '\r', '\t'])
        .collect();
    let failed = |message: String| Typed {
        allow_text: Some(form.allowed_ips.chars().take(4000).collect()),
        allow_error: Some(message),
        ..Typed::default()
    };
    let nets = match crate::domain::allowlist::parse(&entries) {
        Ok(nets) => nets,
        Err(m) => {
            return render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
    };
    if form.confirmed != "1" && !nets.is_empty() {
        let token = state.tokens.token(me.actor(), id).await?;
        let last = token
            .last_used_ip
            .as_deref()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
        if let Some(ip) = last.filter(|ip| !crate::domain::allowlist::admits(&nets, *ip)) {
            let when = token.last_used_at.map(datetime).unwrap_or_default();
            let ask = Typed {
                allow_text: Some(form.allowed_ips.chars().take(4000).collect()),
                confirm_allow: Some((
                    format!(
                        "The token was last used from {ip} ({when}), which this list leaves out: requests from there will be refused from now on."
                    ),
                    form.allowed_ips.chars().take(4000).collect(),
                )),
                ..Typed::default()
            };
            return render_token(&state, &me, id, ask, None, StatusCode::OK).await;
        }
    }
    match state.tokens.set_token_allowlist(me.actor(), id, nets).await {
        Ok(t) => {
            me.session.set_flash(if t.allowed_ips.is_empty() {
                "The token can be used from any address."
            } else {
                "The token can be used only from the addresses listed."
            });
            Ok(see_other(&format!("/profile/api-tokens/{id}")))
        }
        Err(ServiceError::Invalid(mut fields)) => {
            let m = fields.remove(0).1;
            render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e.into()),
    }
}
