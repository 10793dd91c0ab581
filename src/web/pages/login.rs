use actix_web::{get, http::StatusCode, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::services::people::SignInStep;
use crate::services::vocabulary::SignInError;
use crate::web::auth::safe_next;
use crate::web::csrf::CsrfForm;
use crate::web::session::TypedSession;
use crate::web::views::{render, see_other};
use crate::web::{AppState, WebError};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf_token: String,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
    /// Passkeys work on this installation: the page offers "Sign in with a passkey".
    passkeys: bool,
    /// Why the last passkey sign-in didn't work (or the second step ran out of time).
    passkey_error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
    password_set: Option<String>,
}

#[get("/")]
pub async fn home() -> HttpResponse {
    see_other("/profile/api-tokens")
}

#[get("/login")]
pub async fn login_page(
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, WebError> {
    // A refused passkey (or a second step that took too long) comes back here with why.
    let passkey_error = session.take_flash();
    let page = LoginPage {
        csrf_token: session.csrf_token(),
        email: String::new(),
        next: safe_next(query.next.as_deref()),
        passkeys: state.people.passkeys_off().is_none(),
        passkey_error,
        error: None,
        notice: if query.password_set.is_some() {
            Some("Your password is set. Sign in with it.".to_string())
        } else {
            query
                .signed_out
                .is_some()
                .then(|| "You have signed out.".to_string())
        },
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

#[post("/login")]
pub async fn login_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    form: CsrfForm<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let address = crate::web::client::client_address(&req, &state.settings.trusted_proxies);
    let again = |status: StatusCode, error: String| {
        let page = LoginPage {
            csrf_token: session.csrf_token(),
            email: form.email.chars().take(254).collect(),
            next: next.clone(),
            error: Some(error),
            notice: None,
            passkeys: state.people.passkeys_off().is_none(),
            passkey_error: None,
        };
        render(status, &page)
    };
    if form.email.trim().is_empty() || form.password.is_empty() {
        return again(
            StatusCode::BAD_REQUEST,
            "Enter your e-mail and password.".into(),
        );
    }
    if form.email.len() > 254 || form.password.len() > 1024 {
        return again(StatusCode::UNAUTHORIZED, "Wrong e-mail or password.".into());
    }
    match state.people.sign_in(&form.email, &form.password, &address).await {
        Ok(SignInStep::SecondFactor(user_id)) => {
            if let Some(previous) = session.session_id() {
                state.people.sign_out(previous).await?;
            }
            session.begin_second_factor(user_id, state.clock().now().unix_timestamp())?;
            Ok(see_other(&format!(
                "/login/two-factor?{}",
                serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
            )))
        }
        Ok(SignInStep::Signed(user, session_id)) => {
            // The browser's previous session (another user's, or an old one) ends here.
            if let Some(previous) = session.session_id() {
                state.people.sign_out(previous).await?;
            }
            session.sign_in(&session_id, state.clock().now().unix_timestamp())?;
            tracing::info!(user_id = %user.id, "signed in");
            Ok(see_other(&next))
        }
        Err(SignInError::SsoRequired) => again(
            StatusCode::FORBIDDEN,
            "Your account signs you in with single sign-on: choose \"Sign in with SSO\" below.".into(),
        ),
        Err(SignInError::WrongCredentials) => {
            again(StatusCode::UNAUTHORIZED, "Wrong e-mail or password.".into())
        }
        Err(SignInError::TooManyAttempts(wait)) => {
            let minutes = wait.as_secs().div_ceil(60);
            again(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed sign-in attempts. Try again in {}.", crate::domain::count(minutes as i64, "minute", "minutes")),
            )
        }
        Err(SignInError::ApiOnly) => again(
            StatusCode::FORBIDDEN,
            "Your role, Purge and Prefetch only (API), works through the API only: it can't sign in to the portal. \
             Use an API token (Authorization: APIKey <token>) or POST /iam/auth/jwt/login."
                .into(),
        ),
        Err(
            SignInError::SecondFactorRequired
            | SignInError::WrongSecondFactor
            | SignInError::UsePasskey
            | SignInError::SecondFactorNotSetUp,
        ) => {
            again(StatusCode::UNAUTHORIZED, "Wrong e-mail or password.".into())
        }
        Err(SignInError::Service(e)) => Err(e.into()),
    }
}

/// A form with no fields of its own (only the CSRF token).
#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}

#[post("/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    session: TypedSession,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    if let Some(session_id) = session.session_id() {
        state.people.sign_out(session_id).await?;
    }
    session.sign_out();
    Ok(see_other("/login?signed_out=1"))
}
