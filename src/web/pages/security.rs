//! Profile → Security: two-factor authentication with an authenticator app (TOTP), its
//! recovery codes, and the sign-in's second step (`/login/two-factor`).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::error::ServiceError;
use crate::services::vocabulary::SignInError;
use crate::web::auth::{safe_next, SignedIn};
use crate::web::csrf::CsrfForm;
use crate::web::session::TypedSession;
use crate::web::views::{render, see_other, ErrorSummary, Layout};
use crate::web::{AppState, WebError};

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    layout: Layout,
    enabled: bool,
    sso: bool,
    /// The enrolment under way: the QR code (SVG drawn here), the URI and the seed as text.
    qr_svg: Option<String>,
    uri: String,
    base32: String,
    recovery_left: i64,
    /// The recovery codes, right after confirming (the only time they are shown).
    new_codes: Vec<String>,
    summary: ErrorSummary,
    /// The account requires a second factor (and whether this person must still set one up).
    account_required: bool,
    must_enrol: bool,
    is_admin: bool,
    passkeys: Vec<PasskeyLine>,
    /// Why passkeys can't be used here (the base URL), if they can't.
    passkeys_off: Option<String>,
    /// The new passkey's name as typed (kept when it is refused).
    passkey_name: String,
}

struct PasskeyLine {
    id: crate::domain::PasskeyId,
    name: String,
    added: String,
    last_used: String,
}

fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

async fn page(
    state: &AppState,
    me: &SignedIn,
    new_codes: Vec<String>,
    summary: ErrorSummary,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    full_page(state, me, new_codes, summary, String::new(), status).await
}

/// The page with a refusal about passkeys, keeping the name typed.
pub async fn page_with(
    state: &AppState,
    me: &SignedIn,
    summary: ErrorSummary,
    passkey_name: String,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    full_page(state, me, vec![], summary, passkey_name, status).await
}

async fn full_page(
    state: &AppState,
    me: &SignedIn,
    new_codes: Vec<String>,
    summary: ErrorSummary,
    passkey_name: String,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let view = state.people.security(me.user.user.id).await?;
    let passkeys = state
        .people
        .passkeys(me.user.user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyLine {
            id: p.id,
            name: p.name,
            added: crate::web::views::date(p.created_at),
            last_used: p
                .last_used_at
                .map(crate::web::views::datetime)
                .unwrap_or_else(|| "Never".into()),
        })
        .collect();
    let (qr, uri, base32) = match view.pending {
        Some(e) => (qr_svg(&e.uri), e.uri, e.base32),
        None => (None, String::new(), String::new()),
    };
    render(
        status,
        &SecurityPage {
            layout: me.layout("security"),
            enabled: view.enabled,
            sso: view.sso,
            qr_svg: qr,
            uri,
            base32,
            recovery_left: view.recovery_codes_left,
            new_codes,
            summary,
            account_required: me.user.account.mfa_required,
            must_enrol: me.user.must_enrol,
            is_admin: me.user.role.is_admin(),
            passkeys,
            passkeys_off: state.people.passkeys_off(),
            passkey_name,
        },
    )
}

#[get("/profile/security")]
pub async fn show(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, WebError> {
    page(
        &state,
        &me,
        vec![],
        ErrorSummary::new("error-summary-security"),
        StatusCode::OK,
    )
    .await
}

#[post("/profile/security/totp")]
pub async fn start(
    state: web::Data<AppState>,
    me: SignedIn,
    _form: CsrfForm<super::login::NoFields>,
) -> Result<HttpResponse, WebError> {
    match state.people.start_two_factor(me.actor()).await {
        Ok(()) => Ok(see_other("/profile/security#confirm")),
        Err(ServiceError::Invalid(mut f)) => {
            let m = f.remove(0).1;
            page(
                &state,
                &me,
                vec![],
                ErrorSummary::one("error-summary-security", "", m),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

#[post("/profile/security/totp/confirm")]
pub async fn confirm(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<CodeForm>,
) -> Result<HttpResponse, WebError> {
    let code: String = form.code.chars().take(64).collect();
    match state.people.confirm_two_factor(me.actor(), code).await {
        // Shown once: `render` marks every page no-store.
        Ok(codes) => {
            page(
                &state,
                &me,
                codes,
                ErrorSummary::new("error-summary-security"),
                StatusCode::OK,
            )
            .await
        }
        Err(ServiceError::Invalid(mut f)) => {
            let m = f.remove(0).1;
            page(
                &state,
                &me,
                vec![],
                ErrorSummary::one("error-summary-security", "code", m),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/profile/security/totp/disable")]
pub async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<CodeForm>,
) -> Result<HttpResponse, WebError> {
    let address = crate::web::client::client_address(&req, &state.settings.trusted_proxies);
    let refuse = |m: String| ErrorSummary::one("error-summary-security", "disable_code", m);
    match state
        .people
        .disable_two_factor(me.actor(), &form.code, &address)
        .await
    {
        Ok(()) => {
            me.session
                .set_flash("Two-factor authentication is off: your password alone signs you in.");
            Ok(see_other("/profile/security"))
        }
        Err(SignInError::WrongSecondFactor | SignInError::WrongCredentials) => {
            let s = refuse("That code is wrong or was used already: enter the app's current code or an unused recovery code.".into());
            page(&state, &me, vec![], s, StatusCode::BAD_REQUEST).await
        }
        Err(SignInError::TooManyAttempts(wait)) => {
            let s = refuse(format!(
                "Too many wrong codes. Try again in {}.",
                crate::domain::count(wait.as_secs().div_ceil(60) as i64, "minute", "minutes")
            ));
            page(&state, &me, vec![], s, StatusCode::TOO_MANY_REQUESTS).await
        }
        Err(SignInError::Service(e)) => Err(e.into()),
        Err(_) => Err(WebError::BadRequest("That didn't work.".into())),
    }
}

#[derive(Template)]
#[template(path = "two_factor.html")]
struct SecondStepPage {
    csrf_token: String,
    next: String,
    summary: ErrorSummary,
    /// Which factors the person has: the code's form, the passkey's button, or both.
    totp: bool,
    passkey: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// How long the password step stays good for the code to be entered.
pub const SECOND_STEP_SECS: i64 = 300;

#[get("/login/two-factor")]
pub async fn second_step(
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, WebError> {
    let now = state.clock().now().unix_timestamp();
    let Some(user_id) = session.pending_second_factor(now, SECOND_STEP_SECS) else {
        return Ok(see_other("/login"));
    };
    let factors = state.people.second_factors(user_id).await?;
    // A refused passkey comes back here with why.
    let (summary, status) = match session.take_flash() {
        Some(m) => (
            ErrorSummary::one("error-summary-two-factor", "passkey", m),
            StatusCode::UNAUTHORIZED,
        ),
        None => (
            ErrorSummary::new("error-summary-two-factor"),
            StatusCode::OK,
        ),
    };
    render(
        status,
        &SecondStepPage {
            csrf_token: session.csrf_token(),
            next: safe_next(query.next.as_deref()),
            summary,
            totp: factors.totp,
            passkey: factors.passkeys && state.people.passkeys_off().is_none(),
        },
    )
}

#[post("/login/two-factor")]
pub async fn second_step_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    form: CsrfForm<CodeForm>,
) -> Result<HttpResponse, WebError> {
    let now = state.clock().now().unix_timestamp();
    let Some(user_id) = session.pending_second_factor(now, SECOND_STEP_SECS) else {
        session.set_flash("The sign-in took too long: sign in again.");
        return Ok(see_other("/login"));
    };
    let next = safe_next(Some(&form.next));
    let address = crate::web::client::client_address(&req, &state.settings.trusted_proxies);
    let factors = state.people.second_factors(user_id).await?;
    let again = |m: String, status: StatusCode| {
        render(
            status,
            &SecondStepPage {
                csrf_token: session.csrf_token(),
                next: next.clone(),
                summary: ErrorSummary::one("error-summary-two-factor", "code", m),
                totp: factors.totp,
                passkey: factors.passkeys && state.people.passkeys_off().is_none(),
            },
        )
    };
    if form.code.trim().is_empty() {
        return again(
            "Enter the code from your authenticator app.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    match state.people.finish_sign_in(user_id, &form.code, &address).await {
        Ok((_, session_id)) => {
            session.sign_in(&session_id, now)?;
            Ok(see_other(&next))
        }
        Err(SignInError::WrongSecondFactor | SignInError::WrongCredentials | SignInError::UsePasskey | SignInError::SsoRequired) => again(
            "That code is wrong or was used already. Enter the code your app shows now, or a recovery code.".into(),
            StatusCode::UNAUTHORIZED,
        ),
        Err(SignInError::TooManyAttempts(wait)) => again(
            format!("Too many wrong codes. Try again in {}.", crate::domain::count(wait.as_secs().div_ceil(60) as i64, "minute", "minutes")),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(SignInError::ApiOnly) => again("Your role works through the API only.".into(), StatusCode::FORBIDDEN),
        Err(SignInError::SecondFactorRequired | SignInError::SecondFactorNotSetUp) => again("Enter the code from your authenticator app.".into(), StatusCode::BAD_REQUEST),
        Err(SignInError::Service(e)) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct PolicyForm {
    mfa_required: Option<String>,
}

/// The account's "two factors required" (Administrators with a second factor of their own).
#[post("/profile/security/policy")]
pub async fn set_policy(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<PolicyForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let fields = crate::web::pages::sudo::fields_of(&*form);
    if let Some(ask) =
        crate::web::pages::sudo::unless_recent(&state, &me, "/profile/security/policy", fields)
            .await?
    {
        return Ok(ask);
    }
    let required = form.mfa_required.is_some();
    match state.people.set_mfa_required(me.actor(), required).await {
        Ok(_) => {
            me.session.set_flash(if required {
                "Everyone who signs in with a password now needs a second factor; those without one are asked to set it up at their next page."
            } else {
                "A second factor is no longer required."
            });
            Ok(see_other("/profile/security"))
        }
        Err(ServiceError::Invalid(mut f)) => {
            let m = f.remove(0).1;
            page(
                &state,
                &me,
                vec![],
                ErrorSummary::one("error-summary-security", "mfa_required", m),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
