use actix_web::{get, post, web, HttpResponse};
use askama::Template;

use crate::web::auth::SignedIn;
use crate::web::csrf::CsrfForm;
use crate::web::views::{datetime, ok, see_other, Layout};
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
}

#[get("/profile")]
pub async fn general(me: SignedIn) -> Result<HttpResponse, WebError> {
    let user = &me.user.user;
    let page = ProfilePage {
        layout: me.layout("general"),
        name: user.display_name().to_owned(),
        email: user.email.clone(),
        role: me.user.role.name(),
        account: me.user.account.name.clone(),
        sign_in_type: user.auth_type.label(),
        member_since: datetime(user.created_at),
    };
    ok(&page)
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
