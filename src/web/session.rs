//! A typed view of the cookie session: the session id, the CSRF token and a flash message.

use std::future::{ready, Ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use super::WebError;
use crate::domain::Secret;

pub struct TypedSession(Session);

const SESSION_ID: &str = "sid";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
/// The password step of a sign-in that waits for its second factor: "<user id>:<unix time>".
/// The cookie is sealed by the session middleware, so it can't be made up or altered.
const PENDING: &str = "second";
/// When the password (and second factor) was last given in this browser (unix time).
const VERIFIED: &str = "verified";
/// A ceremony under way, by purpose: a WebAuthn challenge, or a single sign-on begun (its
/// state, nonce and PKCE verifier), so only this browser can finish it.
const CEREMONY: &str = "ceremony.";

impl TypedSession {
    pub fn session_id(&self) -> Option<String> {
        self.0.get::<String>(SESSION_ID).ok().flatten()
    }

    /// A fresh cookie for a fresh sign-in (no fixation), with a new CSRF token.
    pub fn sign_in(&self, session_id: &str, at: i64) -> Result<(), WebError> {
        self.0.renew();
        self.0.remove(FLASH);
        self.0.remove(PENDING);
        self.insert(SESSION_ID, session_id)?;
        self.insert(VERIFIED, &at.to_string())?;
        self.insert(CSRF, Secret::generate().expose())
    }

    /// The password was right: the second step may follow, for a while.
    pub fn begin_second_factor(
        &self,
        user: crate::domain::UserId,
        at: i64,
    ) -> Result<(), WebError> {
        self.0.renew();
        self.0.remove(SESSION_ID);
        self.insert(PENDING, &format!("{}:{at}", user.get()))
    }

    /// Whose second step this browser is at, if its password step is at most `ttl` seconds old.
    pub fn pending_second_factor(&self, now: i64, ttl: i64) -> Option<crate::domain::UserId> {
        let value = self.0.get::<String>(PENDING).ok().flatten()?;
        let (user, at) = value.split_once(':')?;
        let at: i64 = at.parse().ok()?;
        (now >= at && now - at <= ttl).then_some(())?;
        user.parse().ok()
    }

    /// When the password was last given here (unix time), for "sudo mode".
    pub fn verified_at(&self) -> Option<i64> {
        self.0.get::<String>(VERIFIED).ok().flatten()?.parse().ok()
    }

    pub fn mark_verified(&self, at: i64) -> Result<(), WebError> {
        self.insert(VERIFIED, &at.to_string())
    }

    /// Keeps a ceremony's state until the browser answers (`purpose`: "register", "sign_in",
    /// "sudo" for passkeys, "sso": one of each at a time, so a detour through one doesn't end
    /// another).
    pub fn keep_ceremony(&self, purpose: &'static str, state: &str) -> Result<(), WebError> {
        self.insert(&format!("{CEREMONY}{purpose}"), state)
    }

    /// Whether a ceremony for `purpose` is kept (without ending it).
    pub fn has_ceremony(&self, purpose: &'static str) -> bool {
        self.0
            .get::<String>(&format!("{CEREMONY}{purpose}"))
            .ok()
            .flatten()
            .is_some()
    }

    /// The ceremony kept for `purpose`, which ends here (each is answered once).
    pub fn take_ceremony(&self, purpose: &'static str) -> Option<String> {
        self.0
            .remove_as::<String>(&format!("{CEREMONY}{purpose}"))
            .and_then(Result::ok)
    }

    pub fn sign_out(&self) {
        self.0.purge();
    }

    /// The token every POST form carries; made on first use.
    pub fn csrf_token(&self) -> String {
        if let Some(token) = self.0.get::<String>(CSRF).ok().flatten() {
            return token;
        }
        let token = Secret::generate().into_exposed();
        let _ = self.0.insert(CSRF, &token);
        token
    }

    /// 403 unless `submitted` is this session's CSRF token.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), WebError> {
        let expected = self
            .0
            .get::<String>(CSRF)
            .ok()
            .flatten()
            .unwrap_or_default();
        if !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes())) {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "This form has expired or was not sent from this site. Go back, reload the page and try again.".into(),
            ))
        }
    }

    /// A one-line message for the next page (after a redirect).
    pub fn set_flash(&self, message: &str) {
        let _ = self.0.insert(FLASH, message);
    }

    pub fn take_flash(&self) -> Option<String> {
        self.0.remove_as::<String>(FLASH).and_then(Result::ok)
    }

    fn insert(&self, key: &str, value: &str) -> Result<(), WebError> {
        self.0
            .insert(key, value)
            .map_err(|e| WebError::Internal(anyhow::anyhow!("session write failed: {e}")))
    }
}

impl FromRequest for TypedSession {
    type Error = WebError;
    type Future = Ready<Result<TypedSession, WebError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(TypedSession(req.get_session())))
    }
}
