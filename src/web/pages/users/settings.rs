//! The Users page's account settings (Administrators): what a leaked token does, and the
//! SCIM token an identity provider provisions with.

use super::{render_users, Extra};
use crate::domain::leak_response::LeakResponse;
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::pages::login::NoFields;
use crate::web::views::see_other;
use crate::web::{AppState, WebError};
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct LeakForm {
    #[serde(default)]
    leak_response: String,
}

/// What the account does with a token reported leaked (Administrators).
#[post("/users/leak-response")]
pub async fn set_leak_response(
    state: web::Data<AppState>,
    me: SignedIn,
    form: CsrfForm<LeakForm>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    let response = LeakResponse::parse(form.leak_response.trim()).ok_or_else(|| {
        WebError::BadRequest("Choose \"revoke\" or \"notify\" for leaked tokens.".into())
    })?;
    state.tokens.set_leak_response(me.actor(), response).await?;
    Ok(see_other("/users#leaks"))
}

/// A new SCIM token for the account (Administrators), shown this once on the page; the old
/// one stops working.
#[post("/users/scim-token")]
pub async fn new_scim_token(
    state: web::Data<AppState>,
    me: SignedIn,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    me.require_admin()?;
    if let Some(ask) =
        crate::web::pages::sudo::unless_recent(&state, &me, "/users/scim-token", vec![]).await?
    {
        return Ok(ask);
    }
    let token = state.scim.issue_token(me.actor()).await?;
    render_users(
        &state,
        &me,
        None,
        StatusCode::OK,
        Extra {
            scim_token: Some(token),
            ..Extra::default()
        },
    )
    .await
}
