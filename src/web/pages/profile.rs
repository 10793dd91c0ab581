use actix_web::{get, HttpResponse};
use askama::Template;

use crate::web::auth::SignedIn;
use crate::web::views::{datetime, ok, Layout};
use crate::web::WebError;

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
        member_since: datetime(user.created_at.assume_utc()),
    };
    ok(&page)
}
