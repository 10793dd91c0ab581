//! Random secrets and the one hash that is stored instead of them.
//!
//! Every secret the app makes — token secrets, session ids, CSRF tokens, set-password links,
//! JWT ids, form ids — is 32 bytes from the OS CSPRNG as 64 lowercase hex characters, and
//! every secret that is kept is kept as its SHA-256 (`sha256_hex`), never as itself.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of a secret on the wire: 32 random bytes as lowercase hex.
pub const SECRET_HEX_LEN: usize = 64;

/// SHA-256 of `text` as lowercase hex: the only form in which secrets are stored.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// 32 random bytes as hex. Its `Debug` never prints it. Kept inline (no allocation), since a
/// presented token's secret is parsed into one on every check.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; SECRET_HEX_LEN]);

impl Secret {
    /// 32 bytes from the OS CSPRNG.
    pub fn generate() -> Secret {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        let mut hex = [0u8; SECRET_HEX_LEN];
        hex::encode_to_slice(bytes, &mut hex).expect("64 hex digits for 32 bytes");
        Secret(hex)
    }

    /// Takes a presented secret that is already known to be 64 lowercase hex characters.
    pub(crate) fn from_hex(hex: &str) -> Secret {
        debug_assert!(is_secret_hex(hex));
        let mut bytes = [0u8; SECRET_HEX_LEN];
        bytes.copy_from_slice(&hex.as_bytes()[..SECRET_HEX_LEN]);
        Secret(bytes)
    }

    pub fn expose(&self) -> &str {
        // Only ever lowercase hex digits (ASCII), from `generate` or a checked `from_hex`.
        std::str::from_utf8(&self.0).expect("a secret is ASCII hex")
    }

    pub fn into_exposed(self) -> String {
        self.expose().to_owned()
    }

    /// The only form of the secret that is ever stored.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(self.expose())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// SHA-256 of a secret, as stored (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHash(pub String);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(sha256_hex(secret))
    }

    /// Constant-time comparison with a stored hash.
    pub fn matches(&self, stored: &str) -> bool {
        self.0.as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

/// A stored hash as its 32 bytes, for checks that compare many times against one stored
/// value (the token cache): the presented secret's digest is compared as bytes, with no hex
/// string made per check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest32([u8; 32]);

impl Digest32 {
    /// The stored hex hash as bytes; `None` if it isn't 64 hex characters (such a row can't
    /// match anything).
    pub fn from_stored(stored: &str) -> Option<Digest32> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(stored, &mut bytes).ok()?;
        Some(Digest32(bytes))
    }

    /// Constant-time: is this the SHA-256 of `secret`?
    pub fn is_hash_of(&self, secret: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        digest.ct_eq(&self.0).into()
    }
}

/// True for exactly 64 lowercase hex characters, the form of every secret we hand out.
pub fn is_secret_hex(text: &str) -> bool {
    text.len() == SECRET_HEX_LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_64_lowercase_hex_chars_and_differ() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert!(is_secret_hex(a.expose()));
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn hash_is_sha256_of_the_secret_and_compares() {
        let hash = SecretHash::of("abc");
        assert_eq!(
            hash.0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex("abc"), hash.0);
        assert!(hash.matches(&hash.0));
        assert!(!hash.matches(&SecretHash::of("abd").0));
        assert!(!hash.matches(""));
    }

    #[test]
    fn a_stored_digest_matches_its_secret_only() {
        let stored = SecretHash::of("abc").0;
        let digest = Digest32::from_stored(&stored).unwrap();
        assert!(digest.is_hash_of("abc"));
        assert!(!digest.is_hash_of("abd"));
        assert!(!digest.is_hash_of(""));
        assert_eq!(Digest32::from_stored("zz"), None);
        assert_eq!(Digest32::from_stored(&stored[..62]), None);
        assert_eq!(Digest32::from_stored(&"g".repeat(64)), None);
    }

    #[test]
    fn only_64_lowercase_hex_characters_are_secret_shaped() {
        assert!(is_secret_hex(&"a".repeat(64)));
        assert!(!is_secret_hex(&"A".repeat(64)));
        assert!(!is_secret_hex(&"a".repeat(63)));
        assert!(!is_secret_hex(&"g".repeat(64)));
    }
}
