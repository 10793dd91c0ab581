//! Re-authentication before powerful acts ("sudo mode", as GitHub calls it): making an
//! Administrators token or one that never expires, changing someone's role, removing someone,
//! changing the token policy or the two-factor policy, and making a SCIM token ask for the
//! password (and the second factor) again when the last time was longer ago than
//! `APITOKENS_SUDO_SECS` (15 minutes). What the person typed is carried through the detour:
//! after confirming, one click sends the same form.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Serialize;

use crate::services::vocabulary::SignInError;
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::views::{render, ErrorSummary, Layout};
use crate::web::{AppState, WebError};

/// The forms that may ask for it, and so the only places the confirmed form may go on to.
fn is_sudo_action(action: &str) -> bool {
    let exact = [
        "/profile/api-tokens",
        "/profile/api-tokens/policy",
        "/profile/security/policy",
        "/profile/security/passkeys",
        "/single-sign-on",
        "/single-sign-on/delete",
        "/users/scim-token",
    ];
    if exact.contains(&action) {
        return true;
    }
    if let Some(id) = action
        .strip_prefix("/profile/security/passkeys/")
        .and_then(|rest| rest.strip_suffix("/remove"))
    {
        return !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    }
    let Some(rest) = action.strip_prefix("/users/") else {
        return false;
    };
    let Some((id, what)) = rest.split_once('/') else {
        return false;
    };
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && (what == "role" || what == "remove")
}

#[derive(Template)]
#[template(path = "sudo.html")]
struct SudoPage {
    layout: Layout,
    action: String,
    /// The fields of the form that asked, carried as they were typed.
    fields: Vec<(String, String)>,
    /// The person has an authenticator app: ask for its code too.
    two_factor: bool,
    /// The person has a passkey (and passkeys work here): offer it, which alone will do.
    passkey: bool,
    /// Confirmed: the form goes on with one click.
    confirmed: bool,
    summary: ErrorSummary,
}

/// The form's fields, as its struct has them (`Serialize`), minus the CSRF token.
pub fn fields_of(form: &impl Serialize) -> Vec<(String, String)> {
    serde_urlencoded::to_string(form)
        .ok()
        .and_then(|s| serde_urlencoded::from_str::<Vec<(String, String)>>(&s).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != "csrf_token" && !k.starts_with("carry."))
        .collect()
}

/// Whether the person confirmed who they are recently enough.
pub fn is_recent(state: &AppState, me: &SignedIn) -> bool {
    let now = state.clock().now().unix_timestamp();
    let window = state.settings.sudo_window.as_secs() as i64;
    me.session
        .verified_at()
        .is_some_and(|at| at <= now && now - at < window)
}

/// `None` when the person confirmed who they are recently enough; else the page that asks,
/// carrying `fields` on to `action`.
pub async fn unless_recent(
    state: &AppState,
    me: &SignedIn,
    action: &str,
    fields: Vec<(String, String)>,
) -> Result<Option<HttpResponse>, WebError> {
    if is_recent(state, me) {
        return Ok(None);
    }
    ask(
        state,
        me,
        action,
        fields,
        ErrorSummary::new("error-summary-sudo"),
        StatusCode::OK,
    )
    .await
    .map(Some)
}

async fn ask(
    state: &AppState,
    me: &SignedIn,
    action: &str,
    fields: Vec<(String, String)>,
    summary: ErrorSummary,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let view = state.people.security(me.user.user.id).await?;
    let passkey = state.people.passkeys_off().is_none()
        && state.people.second_factors(me.user.user.id).await?.passkeys;
    render(
        status,
        &SudoPage {
            layout: me.layout(""),
            action: action.to_owned(),
            fields,
            two_factor: view.enabled,
            passkey,
            confirmed: false,
            summary,
        },
    )
}

/// The confirmation: the password (and the code), then the form goes on.
#[post("/sudo")]
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<std::collections::BTreeMap<String, String>>,
) -> Result<HttpResponse, WebError> {
    let pairs = form.into_inner();
    let value = |name: &str| pairs.get(name).cloned().unwrap_or_default();
    let action = value("action");
    if !is_sudo_action(&action) {
        return Err(WebError::BadRequest("Nothing to confirm here.".into()));
    }
    let carried: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("carry.").map(|k| (k.to_owned(), v.clone())))
        .take(50)
        .collect();
    let (password, code) = (value("password"), value("code"));
    let credential = value("credential");
    let address = crate::web::client::client_address(&req, &state.settings.trusted_proxies);
    let refuse = |field: &'static str, m: &str| ErrorSummary::one("error-summary-sudo", field, m);
    let confirmed = if !credential.is_empty() {
        // A passkey (with user verification) alone: something held and something known or been.
        match me.session.take_ceremony("sudo") {
            Some(ceremony) => {
                state
                    .people
                    .reauthenticate_with_passkey(
                        me.actor(),
                        &ceremony,
                        &credential,
                        crate::web::client::client_ip(&req, &state.settings.trusted_proxies),
                    )
                    .await
            }
            None => Err(SignInError::WrongSecondFactor),
        }
    } else {
        if password.is_empty() || password.len() > 1024 {
            let s = refuse("sudo_password", "Enter your password.");
            return ask(&state, &me, &action, carried, s, StatusCode::BAD_REQUEST).await;
        }
        let email = me.user.user.email.clone();
        state
            .people
            .reauthenticate(
                me.actor(),
                &email,
                &password,
                Some(code.as_str()).filter(|c| !c.is_empty()),
                &address,
            )
            .await
    };
    match confirmed {
        Ok(()) => {
            me.session
                .mark_verified(state.clock().now().unix_timestamp())?;
            let view = state.people.security(me.user.user.id).await?;
            render(
                StatusCode::OK,
                &SudoPage {
                    layout: me.layout(""),
                    action,
                    fields: carried,
                    two_factor: view.enabled,
                    passkey: false,
                    confirmed: true,
                    summary: ErrorSummary::new("error-summary-sudo"),
                },
            )
        }
        Err(SignInError::TooManyAttempts(wait)) => {
            let m = format!(
                "Too many wrong attempts. Try again in {}.",
                crate::domain::count(wait.as_secs().div_ceil(60) as i64, "minute", "minutes")
            );
            let s = refuse("sudo_password", &m);
            ask(
                &state,
                &me,
                &action,
                carried,
                s,
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        Err(SignInError::WrongSecondFactor) if !credential.is_empty() => {
            let s = refuse(
                "sudo_passkey",
                "That passkey didn't confirm it's you: use one you added to apitokens, and try again.",
            );
            ask(&state, &me, &action, carried, s, StatusCode::UNAUTHORIZED).await
        }
        Err(SignInError::SecondFactorRequired | SignInError::WrongSecondFactor) => {
            let s = refuse(
                "sudo_code",
                "Enter the code your authenticator app shows now, or a recovery code.",
            );
            ask(&state, &me, &action, carried, s, StatusCode::UNAUTHORIZED).await
        }
        Err(SignInError::UsePasskey) => {
            let s = refuse(
                "sudo_passkey",
                "Your second factor is a passkey: confirm with it (\"Confirm with a passkey\").",
            );
            ask(&state, &me, &action, carried, s, StatusCode::UNAUTHORIZED).await
        }
        Err(SignInError::Service(e)) => Err(e.into()),
        Err(_) => {
            let s = refuse("sudo_password", "That password is wrong.");
            ask(&state, &me, &action, carried, s, StatusCode::UNAUTHORIZED).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_sudo_action;

    #[test]
    fn only_the_powerful_forms_are_continued() {
        for ok in [
            "/profile/api-tokens",
            "/users/12/role",
            "/users/3/remove",
            "/users/scim-token",
            "/profile/security/passkeys",
            "/profile/security/passkeys/7/remove",
        ] {
            assert!(is_sudo_action(ok), "{ok}");
        }
        for bad in [
            "/logout",
            "//evil.example",
            "/users/x/role",
            "/users/1/role/x",
            "https://evil.example/profile/api-tokens",
            "/users//role",
            "/profile/security/passkeys//remove",
            "/profile/security/passkeys/7/x/remove",
        ] {
            assert!(!is_sudo_action(bad), "{bad}");
        }
    }
}
