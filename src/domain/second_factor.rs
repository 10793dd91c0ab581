//! A second factor's rules with no I/O: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one
//! step of clock skew either way, as every authenticator app does), the seed sealed at rest,
//! and recovery codes.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// Seconds per TOTP step.
pub const STEP: i64 = 30;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A TOTP seed (20 random bytes, as RFC 4226 recommends).
pub struct Seed(Vec<u8>);

impl Seed {
    pub fn generate() -> Seed {
        let mut bytes = vec![0u8; 20];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        Seed(bytes)
    }

    fn totp(&self, account: &str) -> TOTP {
        TOTP::new(
            Algorithm::SHA1,
            6,
            1,
            STEP as u64,
            self.0.clone(),
            Some("apitokens".to_string()),
            account.to_string(),
        )
        .expect("a 160-bit seed and a plain account name make a valid TOTP")
    }

    /// The code for time step `step`.
    pub fn code_at_step(&self, step: i64) -> String {
        self.totp("").generate((step.max(0) * STEP) as u64)
    }

    /// The step `code` belongs to, if it is the code of the step of `unix_time` or of the one
    /// before or after (clock skew). Compared in constant time.
    pub fn matching_step(&self, code: &str, unix_time: i64) -> Option<i64> {
        let code = code.trim().replace(' ', "");
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_time.div_euclid(STEP);
        [now - 1, now, now + 1]
            .into_iter()
            .find(|step| bool::from(self.code_at_step(*step).as_bytes().ct_eq(code.as_bytes())))
    }

    /// The seed in base32, for typing into an authenticator app.
    pub fn base32(&self) -> String {
        self.totp("").get_secret_base32()
    }

    /// `otpauth://totp/apitokens:<account>?secret=...&issuer=apitokens`, the QR code's text.
    pub fn uri(&self, account: &str) -> String {
        self.totp(account).get_url()
    }

    /// The seed sealed under `key` (AES-256-GCM, a random nonce), as hex.
    pub fn seal(&self, key: &SealKey) -> String {
        key.seal(&self.0)
    }

    /// The seed back from `seal`; `None` if it was sealed under another key or altered.
    pub fn unseal(sealed: &str, key: &SealKey) -> Option<Seed> {
        key.open(sealed).map(Seed)
    }
}

/// The key that seals TOTP seeds, derived from the installation's secret key (the same on
/// every instance).
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl SealKey {
    pub fn derive(secret_key: &[u8]) -> SealKey {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret_key).expect("HMAC takes any key");
        mac.update(b"apitokens TOTP seed sealing key, v1");
        SealKey(mac.finalize().into_bytes().into())
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.0).expect("a 256-bit key")
    }

    /// A secret that must be read back (a TOTP seed, an SSO client secret) sealed under this
    /// key: AES-256-GCM with a random nonce, as hex.
    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the OS random number generator is available");
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("AES-GCM seals anything this size");
        hex::encode([nonce.as_slice(), sealed.as_slice()].concat())
    }

    /// What `seal` sealed; `None` if it was sealed under another key or altered.
    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let bytes = hex::decode(sealed).ok()?;
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .ok()
    }
}

/// Ten recovery codes like `k7q2m-x9d4a` (50 bits each), to show once.
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            getrandom::fill(&mut bytes).expect("the OS random number generator is available");
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// A recovery code as typed, in the form whose SHA-256 is kept: lower case, no spaces or dashes.
pub fn normal_recovery_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    (code.len() == 10 && code.chars().all(|c| c.is_ascii_alphanumeric())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vectors_for_sha1() {
        // RFC 6238, appendix B: the SHA-1 seed "12345678901234567890", 8-digit codes; our six
        // digits are the last six of theirs.
        let seed = Seed(b"12345678901234567890".to_vec());
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
        ] {
            assert_eq!(seed.code_at_step(time / STEP), eight[2..], "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let seed = Seed::generate();
        let t = 1_800_000_000;
        let code = seed.code_at_step(t / STEP);
        assert_eq!(seed.matching_step(&code, t), Some(t / STEP));
        assert_eq!(seed.matching_step(&code, t + STEP), Some(t / STEP));
        assert_eq!(seed.matching_step(&code, t - STEP), Some(t / STEP));
        assert_eq!(seed.matching_step(&code, t + 2 * STEP), None);
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(seed.matching_step(bad, t), None, "{bad}");
        }
    }

    #[test]
    fn a_sealed_seed_opens_only_with_its_key_and_unaltered() {
        let seed = Seed::generate();
        let key = SealKey::derive(b"one installation's secret key......");
        let sealed = seed.seal(&key);
        assert_ne!(sealed, seed.seal(&key), "a fresh nonce each time");
        assert_eq!(Seed::unseal(&sealed, &key).unwrap().0, seed.0);
        assert!(Seed::unseal(&sealed, &SealKey::derive(b"another")).is_none());
        let mut altered = sealed.clone().into_bytes();
        altered[30] = if altered[30] == b'0' { b'1' } else { b'0' };
        assert!(Seed::unseal(&String::from_utf8(altered).unwrap(), &key).is_none());
        assert!(!sealed.contains(&hex::encode(&seed.0)));
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_read_back_however_typed() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        let code = &codes[0];
        assert_eq!(
            normal_recovery_code(&code.to_uppercase()),
            normal_recovery_code(code)
        );
        assert_eq!(
            normal_recovery_code(&format!(" {} ", code.replace('-', " "))),
            normal_recovery_code(code)
        );
        assert_eq!(normal_recovery_code("short"), None);
    }
}
