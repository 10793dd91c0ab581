//! SAML in the portal: our SP metadata for an account (`/sso/saml/{clientId}/metadata`) and
//! its Assertion Consumer Service (`/sso/saml/{clientId}/acs`), where the IdP's page posts the
//! response (HTTP-POST binding).
//!
//! That post comes from the IdP's site, so the browser holds back our `SameSite=Lax` session
//! cookie, which carries the AuthnRequest this browser started. The ACS then answers with a
//! page of ours that posts the same fields back to itself (by script, or its button): a post
//! from our own page is same-site, so the cookie comes with it. Only then is the response
//! checked. No cookie is loosened to `SameSite=None` for it.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::failed;
use crate::domain::AccountId;
use crate::services::people::sso::{SsoFailure, SsoStart};
use crate::services::people::sso_sign_in::SamlPost;
use crate::web::auth::safe_next;
use crate::web::csrf::IdpPost;
use crate::web::ids::Id;
use crate::web::session::TypedSession;
use crate::web::views::render;
use crate::web::{AppState, WebError};

/// Our service provider metadata for the account (public: the IdP needs it before SSO is set
/// up here; it holds only our URLs).
#[get("/sso/saml/{clientId}/metadata")]
pub async fn sp_metadata(
    state: web::Data<AppState>,
    account: Id<AccountId>,
) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/samlmetadata+xml; charset=utf-8"))
        .body(state.people.saml_sp_metadata(account.get().get())))
}

#[derive(Debug, Default, Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse", default)]
    saml_response: String,
    #[serde(rename = "RelayState", default)]
    relay_state: Option<String>,
    #[serde(default)]
    continued: Option<String>,
}

#[derive(Template)]
#[template(path = "sso_continue.html")]
struct ContinuePage {
    action: String,
    response: String,
    relay_state: String,
}

/// The IdP's answer. Without this browser's sign-in in the request (a cross-site post), it is
/// posted on once from our own page; then checked (see `People::finish_saml`), and on success
/// the session id is renewed and the person goes where they were going.
#[post("/sso/saml/{clientId}/acs")]
pub async fn acs(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    account: Id<AccountId>,
    form: IdpPost<AcsForm>,
) -> Result<HttpResponse, WebError> {
    let account = account.get().get();
    let form = form.0;
    if form.saml_response.trim().is_empty() {
        return failed(&SsoFailure::Invalid("no SAMLResponse was posted".into()));
    }
    let started_here = session.has_ceremony("sso");
    if !started_here && form.continued.is_none() {
        let page = ContinuePage {
            action: format!("/sso/saml/{account}/acs"),
            response: form.saml_response,
            relay_state: form.relay_state.unwrap_or_default(),
        };
        let mut response = render(StatusCode::OK, &page)?;
        response
            .headers_mut()
            .insert(CACHE_CONTROL, "no-store".parse().expect("a header value"));
        return Ok(response);
    }
    let begun: Option<SsoStart> = session
        .take_ceremony("sso")
        .and_then(|s| serde_json::from_str(&s).ok());
    let relay = form.relay_state.as_deref().filter(|r| !r.is_empty());
    let relay_state_local = relay.is_none_or(|r| safe_next(Some(r)) == r);
    let post = SamlPost {
        account_id: account,
        response: form.saml_response,
        relay_state_local,
        next: safe_next(relay),
    };
    let from = crate::web::client::client_ip(&req, &state.settings.trusted_proxies);
    let outcome = state.people.finish_saml(begun, post, from).await;
    super::finished(&state, &session, outcome).await
}
