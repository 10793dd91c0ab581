//! The signed-in user of a page, taken from the session (never from the request body).

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::session::TypedSession;
use super::views::Layout;
use super::{AppState, WebError};
use crate::services::people::sign_in::{NavCounts, PortalUser};
use crate::services::{Actor, Via};

pub struct SignedIn {
    pub user: PortalUser,
    pub session: TypedSession,
    pub counts: NavCounts,
    /// The client address (through trusted proxies), for the audit trail.
    pub client: String,
}

impl SignedIn {
    pub fn actor(&self) -> Actor {
        self.user.actor().from(Via::Portal, &self.client)
    }

    /// The frame of every page: header, navigation, flash message.
    pub fn layout(&self, nav: &'static str) -> Layout {
        Layout {
            account_name: self.user.account.name.clone(),
            user_name: self.user.user.name.clone(),
            user_email: self.user.user.email.clone(),
            role_name: self.user.role.name(),
            is_admin: self.user.role.is_admin(),
            csrf_token: self.session.csrf_token(),
            nav,
            flash: self.session.take_flash(),
            unread: self.counts.unread,
            expiring_soon: self.counts.expiring_soon,
            webhooks_off: self.counts.webhooks_off,
        }
    }

    /// The page is for Administrators only.
    pub fn require_admin(&self) -> Result<(), WebError> {
        Ok(self.actor().require_admin()?)
    }
}

impl FromRequest for SignedIn {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<SignedIn, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        // Only a page the person looked at is worth returning to after signing in.
        let next = (req.method() == Method::GET).then(|| req.uri().to_string());
        // Under a "two factors required" policy, what a person without one may still reach.
        let enrolment = req.path().starts_with("/profile/security");
        let session = TypedSession::from_request(req, payload).into_inner();
        let client = state
            .as_ref()
            .map(|s| super::client::client_address(req, &s.settings.trusted_proxies))
            .unwrap_or_default();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| WebError::Internal(anyhow::anyhow!("app state missing")))?;
            let session = session?;
            let Some(session_id) = session.session_id() else {
                return Err(WebError::SignInRequired { next });
            };
            match state.people.signed_in(session_id).await? {
                Some((user, _)) if user.must_enrol && !enrolment => Err(WebError::MustEnrol),
                Some((user, counts)) => Ok(SignedIn {
                    user,
                    session,
                    counts,
                    client,
                }),
                None => {
                    session.sign_out();
                    Err(WebError::SignInRequired { next })
                }
            }
        })
    }
}

/// A same-site path to return to after sign-in; anything else becomes `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\')
                && n.len() <= 2000 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_same_site_paths_are_followed() {
        assert_eq!(
            safe_next(Some("/profile/api-tokens?status=active")),
            "/profile/api-tokens?status=active"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
