//! Passkeys' fixed parts: the WebAuthn relying party this installation is (from its base
//! URL, or why there is none), the opaque user handle of a person, and the key a credential
//! is stored under. The ceremonies are in `services::people::passkeys`.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::Duration;
use webauthn_rs::prelude::{Url, Uuid, Webauthn, WebauthnBuilder};

/// How long a ceremony may take, from its options to the browser's answer.
pub const CEREMONY: Duration = Duration::minutes(5);

/// The relying party, or why there is none.
pub enum RelyingParty {
    On(Box<Webauthn>),
    Off(String),
}

impl RelyingParty {
    pub fn from_base_url(base_url: &str) -> RelyingParty {
        let Ok(origin) = Url::parse(base_url) else {
            return RelyingParty::Off(format!("APITOKENS_BASE_URL ({base_url}) is not a URL."));
        };
        let Some(host) = origin.domain().map(str::to_owned) else {
            return RelyingParty::Off(format!(
                "Passkeys need the portal at a host name, and APITOKENS_BASE_URL is {base_url}: browsers \
                 refuse an IP address. Set APITOKENS_BASE_URL to the name people open (on this machine, \
                 http://localhost:{}).",
                origin.port_or_known_default().unwrap_or(80)
            ));
        };
        match WebauthnBuilder::new(&host, &origin).and_then(|b| {
            b.rp_name("apitokens")
                .timeout(CEREMONY.unsigned_abs())
                .build()
        }) {
            Ok(w) => RelyingParty::On(Box::new(w)),
            Err(e) => RelyingParty::Off(format!("Passkeys are off: {e}")),
        }
    }
}

/// Shared by every clone of the people's room.
pub type SharedRelyingParty = Arc<RelyingParty>;

/// The person's WebAuthn user handle: stable, opaque (an HMAC of their id under the
/// installation's secret), so a passkey neither shows nor lets anyone guess row ids.
#[derive(Clone)]
pub struct HandleKey([u8; 32]);

impl HandleKey {
    pub fn derive(secret_key: &[u8]) -> HandleKey {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret_key).expect("HMAC takes any key");
        mac.update(b"apitokens WebAuthn user handle, v1");
        HandleKey(mac.finalize().into_bytes().into())
    }

    pub fn handle(&self, user_id: i64) -> Uuid {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(&user_id.to_be_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[..16]);
        Uuid::from_bytes(id)
    }
}

/// A credential id as stored (base64url, no padding).
pub fn credential_key(id: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_base_urls_host_name_never_an_ip_address() {
        for on in ["http://localhost:8080", "https://tokens.example.com"] {
            assert!(
                matches!(RelyingParty::from_base_url(on), RelyingParty::On(_)),
                "{on}"
            );
        }
        for (off, says) in [
            ("http://127.0.0.1:8080", "http://localhost:8080"),
            ("http://[::1]:9000", "http://localhost:9000"),
            ("not a url", "not a URL"),
        ] {
            match RelyingParty::from_base_url(off) {
                RelyingParty::Off(why) => assert!(why.contains(says), "{off}: {why}"),
                RelyingParty::On(_) => panic!("{off} can't be a relying party"),
            }
        }
    }

    #[test]
    fn a_user_handle_is_stable_per_person_and_installation_and_tells_nothing() {
        let key = HandleKey::derive(b"one installation's secret key....");
        assert_eq!(key.handle(7), key.handle(7));
        assert_ne!(key.handle(7), key.handle(8));
        assert_ne!(
            key.handle(7),
            HandleKey::derive(b"another installation's key......").handle(7)
        );
        assert_ne!(key.handle(7), Uuid::from_u128(7), "not the id itself");
    }
}
