//! The Administrators' "Single sign-on" page: OpenID Connect or SAML, what the identity
//! provider needs from us, and turning it off (each a sudo act).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

use crate::domain::Role;
use crate::error::ServiceError;
use crate::services::people::sso_flow::{SsoChange, SsoProtocol, SsoSetting};
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::pages::login::NoFields;
use crate::web::views::{render, see_other, ErrorSummary, Layout};
use crate::web::{AppState, WebError};

#[derive(Template)]
#[template(path = "sso_settings.html")]
struct SettingsPage {
    layout: Layout,
    enabled: bool,
    /// "oidc" or "saml": the protocol on (or chosen in the form sent back).
    protocol: String,
    issuer: String,
    client_id: String,
    idp_metadata: String,
    idp_initiated: bool,
    /// SAML, as read from the stored metadata.
    idp_entity_id: String,
    idp_sso_url: String,
    sp_entity_id: String,
    acs_url: String,
    metadata_url: String,
    required: bool,
    jit_role: String,
    roles: Vec<(String, String)>,
    redirect_uri: String,
    sign_in_url: String,
    summary: ErrorSummary,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SettingsForm {
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    idp_metadata: String,
    #[serde(default)]
    idp_initiated: Option<String>,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    required: Option<String>,
    #[serde(default)]
    jit_role: String,
}

async fn settings_page(
    state: &AppState,
    me: &SignedIn,
    typed: Option<&SettingsForm>,
    summary: ErrorSummary,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let view = state.people.sso_config(me.actor()).await?;
    let roles = me
        .user
        .role
        .at_most()
        .into_iter()
        .filter(|r| r.may_use_portal())
        .map(|r| (r.name().to_owned(), r.name().to_owned()))
        .collect();
    render(
        status,
        &SettingsPage {
            layout: me.layout("sso"),
            enabled: view.enabled,
            protocol: typed.map_or(
                view.protocol.unwrap_or(SsoProtocol::Oidc).name().to_owned(),
                |t| if t.protocol == "saml" { "saml" } else { "oidc" }.to_owned(),
            ),
            issuer: typed.map_or(
                if view.protocol == Some(SsoProtocol::Oidc) {
                    view.issuer.clone()
                } else {
                    String::new()
                },
                |t| t.issuer.clone(),
            ),
            client_id: typed.map_or(view.client_id, |t| t.client_id.clone()),
            idp_metadata: typed.map_or(view.idp_metadata, |t| t.idp_metadata.clone()),
            idp_initiated: typed.map_or(view.idp_initiated, |t| t.idp_initiated.is_some()),
            idp_entity_id: if view.protocol == Some(SsoProtocol::Saml) {
                view.issuer
            } else {
                String::new()
            },
            idp_sso_url: view.idp_sso_url,
            sp_entity_id: view.sp.entity_id,
            acs_url: view.sp.acs_url,
            metadata_url: view.sp.metadata_url,
            required: typed.map_or(view.required, |t| t.required.is_some()),
            jit_role: typed.map_or(
                view.jit_role
                    .map(|r| r.name().to_owned())
                    .unwrap_or_default(),
                |t| t.jit_role.clone(),
            ),
            roles,
            redirect_uri: view.redirect_uri,
            sign_in_url: view.sign_in_url,
            summary,
        },
    )
}

#[get("/single-sign-on")]
pub async fn settings(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    settings_page(
        &state,
        &me,
        None,
        ErrorSummary::new("error-summary-sso"),
        StatusCode::OK,
    )
    .await
}

#[post("/single-sign-on")]
pub async fn save(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<SettingsForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let mut fields = crate::web::pages::sudo::fields_of(&*form);
    // The secret isn't carried through the confirmation page's hidden fields.
    fields.retain(|(k, _)| k != "client_secret");
    if let Some(ask) =
        crate::web::pages::sudo::unless_recent(&state, &me, "/single-sign-on", fields).await?
    {
        return Ok(ask);
    }
    let jit_role = match form.jit_role.trim() {
        "" => None,
        r => match Role::from_name(r) {
            Some(role) => Some(role),
            None => {
                let s = ErrorSummary::one(
                    "error-summary-sso",
                    "jit_role",
                    "Choose a role from the list.",
                );
                return settings_page(&state, &me, Some(&form), s, StatusCode::BAD_REQUEST).await;
            }
        },
    };
    let protocol = match form.protocol.as_str() {
        "saml" => SsoSetting::Saml {
            idp_metadata: form.idp_metadata.clone(),
            idp_initiated: form.idp_initiated.is_some(),
        },
        _ => SsoSetting::Oidc {
            issuer: form.issuer.clone(),
            client_id: form.client_id.clone(),
            client_secret: Some(form.client_secret.clone()).filter(|s| !s.is_empty()),
        },
    };
    let change = SsoChange {
        protocol,
        required: form.required.is_some(),
        jit_role,
    };
    match state.people.set_sso(me.actor(), change).await {
        Ok(_) => {
            me.session
                .set_flash("Single sign-on saved: its sign-in link works now.");
            Ok(see_other("/single-sign-on"))
        }
        Err(ServiceError::Invalid(problems)) => {
            let mut s = ErrorSummary::new("error-summary-sso");
            for (field, m) in problems {
                s.add(field, m);
            }
            settings_page(&state, &me, Some(&form), s, StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/single-sign-on/delete")]
pub async fn turn_off(
    state: web::Data<AppState>,
    me: SignedIn,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    if let Some(ask) =
        crate::web::pages::sudo::unless_recent(&state, &me, "/single-sign-on/delete", vec![])
            .await?
    {
        return Ok(ask);
    }
    state.people.delete_sso(me.actor()).await?;
    me.session
        .set_flash("Single sign-on is off: people sign in with their passwords.");
    Ok(see_other("/single-sign-on"))
}
