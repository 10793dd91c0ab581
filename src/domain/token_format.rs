//! The token's wire format, recognisable offline.
//!
//! A token is `<id>_<64 hex>` (`<id>$<64 hex>` from `/iam` v1), as Gcore's. Since this wave
//! the last 8 hex digits are a checksum: CRC-32 (IEEE, as zlib's `crc32`) of
//! `<id>_<the first 56 hex>`, as 8 lowercase hex digits. The `$` form is checked as its `_`
//! twin, so a client that swaps the separator still holds a recognisable token. A scanner
//! (ours, `apitokens scan`, or a secret-scanning service) can then tell a real apitokens token
//! from 64 random hex digits with no database: a random string passes with odds of 1 in 2^32.
//! Tokens made before the checksum still authenticate; they just aren't recognisable.
//!
//! The secret keeps its 256 bits of entropy minus the 32 the checksum takes: 224 random bits.

use super::secret::{is_secret_hex, Secret, SECRET_HEX_LEN};

/// The random part of a secret; the rest is the checksum.
const RANDOM_HEX: usize = SECRET_HEX_LEN - 8;

/// Longest id a token can carry (an `i64` in decimal).
const MAX_ID_DIGITS: usize = 18;

fn checksum(id: i64, random: &str) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(id.to_string().as_bytes());
    crc.update(b"_");
    crc.update(random.as_bytes());
    crc.finalize()
}

/// A new secret for token `id`: 56 random hex digits and their checksum.
pub fn generate_secret(id: i64) -> Secret {
    let random = Secret::generate();
    let random = &random.expose()[..RANDOM_HEX];
    Secret::from_hex(&format!("{random}{:08x}", checksum(id, random)))
}

/// Does this secret carry the checksum of a token with this id?
pub fn checksum_ok(id: i64, secret: &str) -> bool {
    is_secret_hex(secret)
        && u32::from_str_radix(&secret[RANDOM_HEX..], 16)
            .is_ok_and(|sum| sum == checksum(id, &secret[..RANDOM_HEX]))
}

/// A checksum-valid token found in some text: where it starts (byte offset), its id, and the
/// whole token as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub offset: usize,
    pub id: i64,
    pub token: &'a str,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// Every checksum-valid token in `text`, standing alone (not inside a longer run of letters,
/// digits, `_` or `$`). Linear in the text; no regular expression needed.
pub fn find_tokens(text: &str) -> Vec<Found<'_>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (b == b'_' || b == b'$') && i > 0 && bytes[i - 1].is_ascii_digit() {
            // The id: the digits right before the separator, not preceded by a word byte.
            let mut start = i;
            while start > 0 && bytes[start - 1].is_ascii_digit() && i - start < MAX_ID_DIGITS + 1 {
                start -= 1;
            }
            let end = i + 1 + SECRET_HEX_LEN;
            let alone_before = start == 0 || !is_word(bytes[start - 1]);
            let alone_after = end == bytes.len() || (end < bytes.len() && !is_word(bytes[end]));
            let hex = end <= bytes.len()
                && bytes[i + 1..end]
                    .iter()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            // All ASCII from `start` to `end`, so both are character boundaries.
            if hex && alone_before && alone_after && bytes[start] != b'0' {
                let secret = &text[i + 1..end];
                if let Ok(id) = text[start..i].parse::<i64>() {
                    if checksum_ok(id, secret) {
                        found.push(Found {
                            offset: start,
                            id,
                            token: &text[start..end],
                        });
                        i = end;
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::{wire_form, PresentedToken, Separator};

    #[test]
    fn a_known_token_has_the_documented_checksum() {
        // zlib.crc32(b"42_" + b"a" * 56) == 0x... (the Python rule in docs/security.md computes the same).
        let random = "a".repeat(56);
        let sum = checksum(42, &random);
        let expected = {
            let mut h = crc32fast::Hasher::new();
            h.update(format!("42_{random}").as_bytes());
            h.finalize()
        };
        assert_eq!(sum, expected);
        assert!(checksum_ok(42, &format!("{random}{sum:08x}")));
        assert!(!checksum_ok(43, &format!("{random}{sum:08x}")));
        assert!(!checksum_ok(42, &format!("{random}{:08x}", sum ^ 1)));
        assert!(!checksum_ok(42, &format!("{random}{:08X}", sum)));
    }

    #[test]
    fn tokens_are_found_only_standing_alone() {
        let secret = generate_secret(77);
        let token = wire_form(77, Separator::Underscore, &secret);
        let v1 = wire_form(77, Separator::Dollar, &secret);
        let text = format!(
            "key = \"{token}\"\nurl: https://x/?t={v1}&a=1\nin_a_word_x{token}\n{token}0\n"
        );
        let found = find_tokens(&text);
        assert_eq!(
            found.iter().map(|f| f.token).collect::<Vec<_>>(),
            vec![token.as_str(), v1.as_str()]
        );
        assert!(found.iter().all(|f| f.id == 77));
        assert_eq!(found[0].offset, text.find(&token).unwrap());
        // Random hex of the right shape is not taken for a token.
        let fake = format!("77_{}", "ab".repeat(32));
        assert!(find_tokens(&fake).is_empty());
        assert!(find_tokens("").is_empty());
        assert!(find_tokens("_$_1_").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn generated_tokens_always_validate_and_parse(id in 1i64..=999_999_999_999_999_999) {
            let secret = generate_secret(id);
            proptest::prop_assert!(checksum_ok(id, secret.expose()));
            let wire = wire_form(id, Separator::Underscore, &secret);
            proptest::prop_assert_eq!(PresentedToken::parse(&wire).map(|p| p.id), Some(id));
            proptest::prop_assert_eq!(find_tokens(&wire).len(), 1);
        }

        #[test]
        fn any_single_digit_change_fails_the_checksum(
            id in 1i64..=999_999_999_999,
            at in 0usize..64,
            delta in 1u8..16,
        ) {
            let secret = generate_secret(id);
            let mut digits: Vec<u8> = secret.expose().bytes().collect();
            let value = u8::from_str_radix(std::str::from_utf8(&digits[at..=at]).unwrap(), 16).unwrap();
            digits[at] = b"0123456789abcdef"[usize::from((value + delta) % 16)];
            let changed = String::from_utf8(digits).unwrap();
            proptest::prop_assert!(!checksum_ok(id, &changed));
            // A change in the id fails too.
            proptest::prop_assert!(!checksum_ok(id + i64::from(delta), secret.expose()));
        }

        #[test]
        fn finding_never_panics(text in "(?s).{0,300}") {
            let _ = find_tokens(&text);
        }
    }
}
