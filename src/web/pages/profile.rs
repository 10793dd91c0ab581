//! Profile → General: who the person is, their password, and "Sign out everywhere".

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::input::NewPassword;
use crate::services::vocabulary::SignInError;
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::views::{datetime, render, see_other, ErrorSummary, Layout};
use crate::web::{AppState, WebError};

use super::login::NoFields;

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    layout: Layout,
    name: String,
    email: String,
    role: &'static str,
    account: String,
    sign_in_type: &'static str,
    member_since: String,
    sso: bool,
    summary: ErrorSummary,
}

fn page(
    me: &SignedIn,
    summary: ErrorSummary,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let user = &me.user.user;
    let page = ProfilePage {
        layout: me.layout("general"),
        name: user.display_name().to_owned(),
        email: user.email.clone(),
        role: me.user.role.name(),
        account: me.user.account.name.clone(),
        sign_in_type: user.auth_type.label(),
        member_since: datetime(user.created_at),
        sso: user.auth_type.is_sso(),
        summary,
    };
    render(status, &page)
}

#[get("/profile")]
pub async fn general(me: SignedIn) -> Result<HttpResponse, WebError> {
    page(&me, ErrorSummary::default(), StatusCode::OK)
}

#[derive(Debug, Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// Changes the person's password: the current one, the new one twice. Every other session
/// and JWT ends; this browser gets a new session.
#[post("/profile/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let refuse = |field: &'static str, message: String, status: StatusCode| {
        page(
            &me,
            ErrorSummary::one("error-summary-password", field, message),
            status,
        )
    };
    if me.user.user.auth_type.is_sso() {
        return refuse(
            "",
            "You sign in through SSO: there is no password to change here.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    if form.current_password.is_empty() {
        return refuse(
            "current_password",
            "Enter your current password.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    if form.current_password.len() > 1024 {
        return refuse(
            "current_password",
            "Your current password is wrong.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    let new = match NewPassword::parse(&form.new_password) {
        Ok(p) => p,
        Err(message) => return refuse("new_password", message, StatusCode::BAD_REQUEST),
    };
    if form.new_password != form.confirm_password {
        return refuse(
            "confirm_password",
            "The two new passwords are different.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    if form.new_password == form.current_password {
        return refuse(
            "new_password",
            "The new password is the one you have: choose another.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    let email = me.user.user.email.clone();
    match state
        .people
        .change_password(me.actor(), &email, &form.current_password, new, &me.client)
        .await
    {
        Ok(session_id) => {
            me.session
                .sign_in(&session_id, state.clock().now().unix_timestamp())?;
            me.session.set_flash(
                "Your password is changed. Every other session and JWT of yours has ended; we e-mailed you about it.",
            );
            Ok(see_other("/profile"))
        }
        Err(SignInError::WrongCredentials) => refuse(
            "current_password",
            "Your current password is wrong.".into(),
            StatusCode::BAD_REQUEST,
        ),
        Err(SignInError::TooManyAttempts(wait)) => refuse(
            "current_password",
            format!(
                "Too many wrong passwords. Try again in {}.",
                crate::domain::count(wait.as_secs().div_ceil(60) as i64, "minute", "minutes")
            ),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(SignInError::ApiOnly) => Err(WebError::Forbidden(
            "This role can't use the portal.".into(),
        )),
        Err(
            SignInError::SecondFactorRequired
            | SignInError::WrongSecondFactor
            | SignInError::UsePasskey
            | SignInError::SsoRequired
            | SignInError::SecondFactorNotSetUp,
        ) => refuse(
            "current_password",
            "Your current password is wrong.".into(),
            StatusCode::BAD_REQUEST,
        ),
        Err(SignInError::Service(e)) => Err(e.into()),
    }
}

/// Ends all of the user's portal sessions (this one too) and every JWT issued to them.
#[post("/profile/sign-out-everywhere")]
pub async fn sign_out_everywhere(
    state: web::Data<AppState>,
    me: SignedIn,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    state.people.sign_out_everywhere(me.user.user.id).await?;
    me.session.sign_out();
    Ok(see_other("/login"))
}
