//! "Forgot password?": a one-time, one-hour link by e-mail. The page says the same whether
//! or not anyone has the address (the service makes the work the same too).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::input::Email;
use crate::web::csrf::CsrfForm;
use crate::web::session::TypedSession;
use crate::web::views::{render, ErrorSummary};
use crate::web::{AppState, WebError};

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage {
    csrf_token: String,
    email: String,
    sent: bool,
    summary: ErrorSummary,
}

#[get("/forgot-password")]
pub async fn show(session: TypedSession) -> Result<HttpResponse, WebError> {
    render(
        StatusCode::OK,
        &ForgotPage {
            csrf_token: session.csrf_token(),
            email: String::new(),
            sent: false,
            summary: ErrorSummary::default(),
        },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

#[post("/forgot-password")]
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    form: CsrfForm<ForgotForm>,
) -> Result<HttpResponse, WebError> {
    let typed: String = form.email.trim().chars().take(254).collect();
    let refuse = |message: &str| {
        render(
            StatusCode::BAD_REQUEST,
            &ForgotPage {
                csrf_token: session.csrf_token(),
                email: typed.clone(),
                sent: false,
                summary: ErrorSummary::one("error-summary-forgot", "email", message),
            },
        )
    };
    if typed.is_empty() {
        return refuse("Enter the e-mail address you sign in with.");
    }
    let email = match Email::parse(&form.email) {
        Ok(email) if form.email.len() <= 254 => email,
        _ => return refuse("Enter an e-mail address like name@example.com."),
    };
    let address = crate::web::client::client_address(&req, &state.settings.trusted_proxies);
    state
        .people
        .request_password_reset(email.as_str(), &address)
        .await?;
    render(
        StatusCode::OK,
        &ForgotPage {
            csrf_token: session.csrf_token(),
            email: email.as_str().to_owned(),
            sent: true,
            summary: ErrorSummary::default(),
        },
    )
}
