//! The token page's "Allowed routes" form (issue 28): narrowing or widening the routes a token
//! may call, audited; errors name the line.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use serde::Deserialize;

use super::detail::{render_token, Typed};
use crate::domain::TokenId;
use crate::error::ServiceError;
use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::ids::Id;
use crate::web::views::see_other;
use crate::web::{AppState, WebError};

#[derive(Debug, Default, Deserialize)]
pub struct RoutesForm {
    #[serde(default)]
    allowed_routes: String,
}

#[post("/profile/api-tokens/{tokenId}/routes")]
pub async fn set_routes(
    state: web::Data<AppState>,
    me: SignedIn,
    id: Id<TokenId>,
    form: CsrfForm<RoutesForm>,
) -> Result<HttpResponse, WebError> {
    let id = id.get();
    let failed = |message: String| {
        Typed::routes(form.allowed_routes.chars().take(25_000).collect(), message)
    };
    let routes = match crate::domain::routes::parse_lines(form.allowed_routes.lines()) {
        Ok(routes) => routes,
        Err(m) => {
            return render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
    };
    match state
        .tokens
        .set_token_routes(me.actor(), id, routes, None)
        .await
    {
        Ok(t) => {
            me.session.set_flash(if t.allowed_routes.is_empty() {
                "The token can call every route its role allows."
            } else {
                "The token can call only the routes listed."
            });
            Ok(see_other(&format!("/profile/api-tokens/{id}")))
        }
        Err(ServiceError::Invalid(mut fields)) => {
            let m = fields.remove(0).1;
            render_token(&state, &me, id, failed(m), None, StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e.into()),
    }
}
