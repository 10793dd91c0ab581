//! Single sign-on in the portal: "Sign in with SSO" (an e-mail, or an account's own link) to
//! the identity provider and back (OpenID Connect: `/sso/oidc/callback`; SAML: `saml`), the
//! clear page when it fails, and the Administrators' "Single sign-on" page (`admin`).

mod admin;
pub mod saml;

pub use admin::{save, settings, turn_off};
pub use saml::{acs, sp_metadata};

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::AccountId;
use crate::services::people::sso::{SsoFailure, SsoStart};
use crate::services::vocabulary::Person;
use crate::web::auth::safe_next;
use crate::web::session::TypedSession;
use crate::web::views::{render, see_other, ErrorSummary};
use crate::web::{AppState, WebError};

#[derive(Template)]
#[template(path = "sso_start.html")]
struct StartPage {
    email: String,
    next: String,
    summary: ErrorSummary,
    failed: bool,
    error: String,
}

pub(super) fn failed(failure: &SsoFailure) -> Result<HttpResponse, WebError> {
    let status = match failure {
        SsoFailure::NotAPerson(_) | SsoFailure::ApiOnly | SsoFailure::Refused(_) => {
            StatusCode::FORBIDDEN
        }
        SsoFailure::TooMany => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    render(
        status,
        &StartPage {
            email: String::new(),
            next: "/".into(),
            summary: ErrorSummary::new("error-summary-sso"),
            failed: true,
            error: failure.describe(),
        },
    )
}

/// The e-mail form's page: its form leads (through `/sso/start`'s redirect) to the identity
/// provider, and browsers hold a redirect after a form to the page's `form-action`, so this
/// page allows any https origin there (and the http issuers the operator listed), and
/// nothing else beyond the usual policy.
fn start_page(
    state: &AppState,
    status: StatusCode,
    page: &StartPage,
) -> Result<HttpResponse, WebError> {
    let mut response = render(status, page)?;
    let extra: String = state
        .settings
        .insecure_issuers
        .iter()
        .filter_map(|i| openidconnect::url::Url::parse(i).ok())
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .collect();
    let csp = crate::web::CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' https:{extra}"),
    );
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, value);
    }
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
pub struct StartQuery {
    email: Option<String>,
    account: Option<String>,
    next: Option<String>,
}

/// "Sign in with SSO": asks for the e-mail.
#[get("/sso")]
pub async fn ask_email(
    state: web::Data<AppState>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, WebError> {
    start_page(
        &state,
        StatusCode::OK,
        &StartPage {
            email: String::new(),
            next: safe_next(query.next.as_deref()),
            summary: ErrorSummary::new("error-summary-sso"),
            failed: false,
            error: String::new(),
        },
    )
}

/// Begins a sign-in through the SSO of the person with `email`, or of `account` (the
/// account's own link): to the identity provider with state, nonce and PKCE, kept in this
/// browser's sealed cookie.
#[get("/sso/start")]
pub async fn begin(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, WebError> {
    let next = safe_next(query.next.as_deref());
    let email = query
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty() && e.len() <= 254);
    let account = query
        .account
        .as_deref()
        .and_then(|a| a.parse::<AccountId>().ok());
    if email.is_none() && account.is_none() {
        return start_page(
            &state,
            StatusCode::BAD_REQUEST,
            &StartPage {
                email: query
                    .email
                    .clone()
                    .unwrap_or_default()
                    .chars()
                    .take(254)
                    .collect(),
                next,
                summary: ErrorSummary::one("error-summary-sso", "email", "Enter your work e-mail."),
                failed: false,
                error: String::new(),
            },
        );
    }
    let from = crate::web::client::client_ip(&req, &state.settings.trusted_proxies);
    match state.people.begin_sso(email, account, next.clone(), from).await {
        Ok((url, start)) => {
            let kept = serde_json::to_string(&start)
                .map_err(|e| WebError::Internal(anyhow::anyhow!("sso state: {e}")))?;
            session.keep_ceremony("sso", &kept)?;
            Ok(HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, url))
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .finish())
        }
        Err(SsoFailure::NotSetUp) if email.is_some() => start_page(
            &state,
            StatusCode::BAD_REQUEST,
            &StartPage {
                email: email.unwrap_or_default().to_owned(),
                next,
                summary: ErrorSummary::one(
                    "error-summary-sso",
                    "email",
                    "We can't find single sign-on for that address: check it, use your account's sign-in link, or sign in with your password.",
                ),
                failed: false,
                error: String::new(),
            },
        ),
        Err(f) => {
            tracing::info!(reason = %f.describe(), "sso start failed");
            failed(&f)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// The identity provider's answer: checked, then a portal session (the cookie renewed).
#[get("/sso/oidc/callback")]
pub async fn callback(
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, WebError> {
    let query = query.into_inner();
    let begun: Option<SsoStart> = session
        .take_ceremony("sso")
        .and_then(|s| serde_json::from_str(&s).ok());
    let provider_error = query.error.map(|e| match query.error_description {
        Some(d) => format!("{e}: {d}"),
        None => e,
    });
    let outcome = state
        .people
        .finish_sso(begun, &query.state, query.code, provider_error)
        .await;
    finished(&state, &session, outcome).await
}

/// The end of a sign-in through either protocol: a new portal session (the previous one ended,
/// the cookie's id renewed) and on to the local `next`; or the page that says what went wrong.
pub(super) async fn finished(
    state: &AppState,
    session: &TypedSession,
    outcome: Result<(Person, String, String), SsoFailure>,
) -> Result<HttpResponse, WebError> {
    match outcome {
        Ok((user, session_id, next)) => {
            if let Some(previous) = session.session_id() {
                state.people.sign_out(previous).await?;
            }
            session.sign_in(&session_id, state.clock().now().unix_timestamp())?;
            tracing::info!(user_id = %user.id, "signed in with single sign-on");
            Ok(see_other(&safe_next(Some(&next))))
        }
        Err(f) => {
            tracing::info!(reason = %f.describe(), "sso sign-in failed");
            failed(&f)
        }
    }
}
