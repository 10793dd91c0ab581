//! Password hashing: Argon2id with the crate's recommended parameters for new hashes, and a
//! verification that reuses its working memory per thread. Run under `PasswordWork`'s budget.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::Argon2;

use crate::error::{ServiceError, ServiceResult};

/// Argon2id with the crate's recommended parameters and a random salt.
pub fn hash_password(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("password hashing failed: {e}")))
}

thread_local! {
    /// Argon2's working memory (19 MiB), allocated once per thread that verifies and reused:
    /// letting the crate allocate it per call leaves every freed copy in the allocator of
    /// whichever thread ran it, and a sign-in flood then grew the process by hundreds of MB.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks a password against a stored hash (PHC string, any Argon2 variant and parameters);
/// a damaged hash never matches. Compares in constant time.
pub fn verify_password(stored: &str, password: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        argon2::Algorithm::try_from(parsed.algorithm),
        argon2::Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let hashed = ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon.hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut memory[..blocks],
        )
    });
    hashed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A hash to verify against when the e-mail is unknown, so a wrong address takes as long
/// as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password").expect("hashing works"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("garbage", "correct horse battery"));
        // Hashes made with other parameters and variants (an older install, another tool)
        // verify too: the working memory follows the hash's own parameters.
        for (algorithm, m) in [
            (argon2::Algorithm::Argon2i, 8192),
            (argon2::Algorithm::Argon2id, 65536),
        ] {
            let params = argon2::Params::new(m, 2, 1, None).unwrap();
            let other = Argon2::new(algorithm, argon2::Version::V0x13, params)
                .hash_password(b"other tool", &SaltString::generate(&mut OsRng))
                .unwrap()
                .to_string();
            assert!(verify_password(&other, "other tool"), "{other}");
            assert!(!verify_password(&other, "other toot"));
        }
        // A tampered digest never matches.
        let mut tampered = hash.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!verify_password(&tampered, "correct horse battery"));
    }
}
