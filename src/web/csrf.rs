//! CSRF protection for every form: `CsrfForm<T>` is the only way a handler reads a POSTed
//! form, and it checks the hidden `csrf_token` against the session before the handler runs,
//! so no handler can forget to. (`routes::tests` also POSTs every form route without a token.)

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::session::TypedSession;

/// A form whose `csrf_token` matched the session's; derefs to the form's other fields.
pub struct CsrfForm<T>(pub T);

impl<T> CsrfForm<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for CsrfForm<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf_token: String,
    #[serde(flatten)]
    form: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = TypedSession::from_request(req, payload).into_inner();
        let form = web::Form::<WithCsrf<T>>::from_request(req, payload);
        Box::pin(async move {
            let WithCsrf { csrf_token, form } = form.await?.into_inner();
            session?.check_csrf(&csrf_token)?;
            Ok(CsrfForm(form))
        })
    }
}

/// The one form another site posts to: a SAML IdP's response to our ACS (HTTP-POST binding).
/// It can't carry our CSRF token; what makes it trustworthy is the IdP's signature over it and
/// the AuthnRequest this browser started (checked by the SAML service). The layers test allows
/// it in the ACS handler only.
pub struct IdpPost<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for IdpPost<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = web::Form::<T>::from_request(req, payload);
        Box::pin(async move { Ok(IdpPost(form.await?.into_inner())) })
    }
}
