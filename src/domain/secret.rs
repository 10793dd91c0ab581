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

    /// The secret's 64 ASCII bytes (for hashing, with no UTF-8 check).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
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

    /// Constant-time: is this the SHA-256 of `secret`? The digests are compared as four
    /// 64-bit words folded into one, with one `subtle` comparison at the end (its byte-wise
    /// slice comparison cost as much as the hash itself on the gateway check).
    pub fn is_hash_of(&self, secret: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(secret).into();
        let word = |bytes: &[u8; 32], i: usize| {
            u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
        };
        let differ = (0..4).fold(0u64, |acc, i| acc | (word(&digest, i) ^ word(&self.0, i)));
        differ.ct_eq(&0).into()
    }
}

/// True for exactly 64 lowercase hex characters, the form of every secret we hand out.
/// (Every byte is looked at, with no early exit, so the loop vectorises.)
pub fn is_secret_hex(text: &str) -> bool {
    text.len() == SECRET_HEX_LEN
        && text
            .bytes()
            .fold(true, |ok, b| ok & matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
        assert!(digest.is_hash_of(b"abc"));
        assert!(!digest.is_hash_of(b"abd"));
        assert!(!digest.is_hash_of(b""));
        // A difference in any byte of the digest is a mismatch (the word-wise fold).
        for i in 0..32 {
            let mut other = digest;
            other.0[i] ^= 1;
            assert!(!other.is_hash_of(b"abc"), "byte {i}");
        }
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
