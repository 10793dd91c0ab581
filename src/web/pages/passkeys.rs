//! Passkeys in the portal: adding and removing them under Profile → Security, signing in with
//! one (the whole sign-in, or the step after the password), and confirming "sudo mode".
//!
//! Each ceremony has two requests: `.../options` answers what `navigator.credentials.create`
//! or `.get` needs (JSON, kept as the ceremony's state in the sealed session cookie), and the
//! page's form then posts the browser's answer in its `credential` field. `static/app.js`
//! drives the browser's part; without script the forms stay hidden.

use actix_web::http::{header, StatusCode};
use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::domain::PasskeyId;
use crate::error::ServiceError;
use crate::services::people::passkeys::Started;
use crate::services::vocabulary::SignInError;
use crate::web::auth::{safe_next, SignedIn};
use crate::web::csrf::CsrfForm;
use crate::web::ids::Id;
use crate::web::pages::login::NoFields;
use crate::web::pages::security::SECOND_STEP_SECS;
use crate::web::session::TypedSession;
use crate::web::views::{see_other, ErrorSummary};
use crate::web::{AppState, WebError};

fn options(
    session: &TypedSession,
    purpose: &'static str,
    started: Result<Started, ServiceError>,
) -> Result<HttpResponse, WebError> {
    match started {
        Ok(s) => {
            session.keep_ceremony(purpose, &s.ceremony)?;
            Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(s.options))
        }
        Err(ServiceError::Invalid(mut f)) => Ok(refusal(StatusCode::BAD_REQUEST, f.remove(0).1)),
        Err(e) => Err(e.into()),
    }
}

/// A JSON refusal the page's script shows beside the button.
fn refusal(status: StatusCode, message: String) -> HttpResponse {
    #[derive(Serialize)]
    struct Refusal {
        message: String,
    }
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Refusal { message })
}

/// What `navigator.credentials.create` needs to make a passkey for the signed-in person.
/// A stale confirmation is asked for first (adding a factor is changing two-factor settings):
/// the script then sends the form as it is, which makes the detour through "sudo mode".
#[post("/profile/security/passkeys/options")]
pub async fn registration_options(
    state: web::Data<AppState>,
    me: SignedIn,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    if !super::sudo::is_recent(&state, &me) {
        return Ok(refusal(
            StatusCode::UNAUTHORIZED,
            "Confirm it's you first.".into(),
        ));
    }
    let started = state.people.begin_passkey_registration(me.actor()).await;
    options(&me.session, "register", started)
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    credential: String,
}

#[post("/profile/security/passkeys")]
pub async fn add(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<AddForm>,
) -> Result<HttpResponse, WebError> {
    // Carried through the detour: the name only (an answer to a challenge is no use later).
    let fields = vec![("name".to_owned(), form.name.clone())];
    if let Some(ask) =
        super::sudo::unless_recent(&state, &me, "/profile/security/passkeys", fields).await?
    {
        return Ok(ask);
    }
    let name: String = form.name.chars().take(1000).collect();
    let Some(ceremony) = me
        .session
        .take_ceremony("register")
        .filter(|_| !form.credential.is_empty())
    else {
        let summary = ErrorSummary::one(
            "error-summary-security",
            "passkey_name",
            "Choose \"Add a passkey\" and follow your browser: it makes the passkey with your device.",
        );
        return super::security::page_with(&state, &me, summary, name, StatusCode::BAD_REQUEST)
            .await;
    };
    match state
        .people
        .finish_passkey_registration(me.actor(), &ceremony, &name, &form.credential)
        .await
    {
        Ok(()) => {
            me.session.set_flash(&format!(
                "Passkey \"{}\" added: sign in with it, or use it after your password.",
                name.trim()
            ));
            Ok(see_other("/profile/security#passkeys"))
        }
        Err(ServiceError::Invalid(mut f)) => {
            let (field, m) = f.remove(0);
            let summary = ErrorSummary::one("error-summary-security", field, m);
            super::security::page_with(&state, &me, summary, name, StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/profile/security/passkeys/{passkeyId}/remove")]
pub async fn remove(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<PasskeyId>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let id = id.get();
    let action = format!("/profile/security/passkeys/{id}/remove");
    if let Some(ask) = super::sudo::unless_recent(&state, &me, &action, vec![]).await? {
        return Ok(ask);
    }
    match state.people.remove_passkey(me.actor(), id).await {
        Ok(()) => {
            me.session
                .set_flash("Passkey removed: it no longer signs you in.");
            Ok(see_other("/profile/security#passkeys"))
        }
        Err(ServiceError::Invalid(mut f)) => {
            let (field, m) = f.remove(0);
            let summary = ErrorSummary::one("error-summary-security", field, m);
            super::security::page_with(&state, &me, summary, String::new(), StatusCode::BAD_REQUEST)
                .await
        }
        Err(e) => Err(e.into()),
    }
}

/// What `navigator.credentials.get` needs to sign in: anyone's passkey on the sign-in page,
/// the person's own after their password.
#[post("/login/passkey/options")]
pub async fn sign_in_options(
    state: web::Data<AppState>,
    session: TypedSession,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let now = state.clock().now().unix_timestamp();
    let pending = session.pending_second_factor(now, SECOND_STEP_SECS);
    let started = state.people.begin_passkey_sign_in(pending);
    options(&session, "sign_in", started)
}

#[derive(Debug, Default, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    credential: String,
    #[serde(default)]
    next: String,
}

#[post("/login/passkey")]
pub async fn sign_in(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    form: CsrfForm<SignInForm>,
) -> Result<HttpResponse, WebError> {
    let now = state.clock().now().unix_timestamp();
    let next = safe_next(Some(&form.next));
    let pending = session.pending_second_factor(now, SECOND_STEP_SECS);
    let ceremony = session.take_ceremony("sign_in");
    let result = match ceremony.filter(|_| !form.credential.is_empty()) {
        Some(c) => {
            state
                .people
                .sign_in_with_passkey(
                    &c,
                    &form.credential,
                    pending,
                    crate::web::client::client_ip(&req, &state.settings.trusted_proxies),
                )
                .await
        }
        None => Err(SignInError::WrongSecondFactor),
    };
    let message = match result {
        Ok((user, session_id)) => {
            if let Some(previous) = session.session_id() {
                state.people.sign_out(previous).await?;
            }
            session.sign_in(&session_id, now)?;
            tracing::info!(user_id = %user.id, "signed in with a passkey");
            return Ok(see_other(&next));
        }
        Err(SignInError::ApiOnly) => "Your role works through the API only: it can't sign in to the portal.",
        Err(SignInError::Service(e)) => return Err(e.into()),
        Err(_) => "That passkey didn't sign you in: it isn't registered here, or the sign-in took too long. Try again.",
    };
    session.set_flash(message);
    let back = if pending.is_some() {
        "/login/two-factor"
    } else {
        "/login"
    };
    Ok(see_other(&format!(
        "{back}?{}",
        serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
    )))
}

/// What `navigator.credentials.get` needs to confirm "sudo mode" with the person's passkey.
#[post("/sudo/passkey/options")]
pub async fn sudo_options(
    state: web::Data<AppState>,
    me: SignedIn,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let started = state.people.begin_passkey_sign_in(Some(me.user.user.id));
    options(&me.session, "sudo", started)
}
