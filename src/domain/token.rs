//! The token secret, its wire form and hash, its status and its expiry.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// Length of the secret on the wire: 32 random bytes as lowercase hex.
pub const SECRET_HEX_LEN: usize = 64;
/// At most this many tokens may be active in one account at once.
pub const MAX_ACTIVE_TOKENS_PER_ACCOUNT: i64 = 50;

/// The secret half of a token. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// 32 bytes from the OS CSPRNG.
    pub fn generate() -> TokenSecret {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator is available");
        TokenSecret(hex::encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The only form of the secret that is ever stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// SHA-256 of the secret, as stored (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn of(secret: &str) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// Constant-time comparison with a stored hash.
    pub fn matches(&self, stored: &str) -> bool {
        self.0.as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

/// `_` for the web UI and `/iam/v2`, `$` for `/iam` v1. Both authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    Underscore,
    Dollar,
}

impl Separator {
    pub fn as_char(self) -> char {
        match self {
            Separator::Underscore => '_',
            Separator::Dollar => '$',
        }
    }
}

/// `<id><sep><secret>`, as shown once and as sent by clients.
pub fn wire_form(id: i64, separator: Separator, secret: &TokenSecret) -> String {
    format!("{id}{}{}", separator.as_char(), secret.expose())
}

/// A token as presented by a client, parsed but not yet verified.
#[derive(PartialEq, Eq)]
pub struct PresentedToken {
    pub id: i64,
    pub secret: TokenSecret,
    pub separator: Separator,
}

impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedToken({})", self.id)
    }
}

impl PresentedToken {
    /// Parses `<id>_<secret>` or `<id>$<secret>`; `None` for anything else. Never panics.
    pub fn parse(raw: &str) -> Option<PresentedToken> {
        let raw = raw.trim();
        let at = raw.find(['_', '$'])?;
        let (id, rest) = raw.split_at(at);
        let separator = if rest.starts_with('_') {
            Separator::Underscore
        } else {
            Separator::Dollar
        };
        let secret = &rest[1..];
        if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if secret.len() != SECRET_HEX_LEN
            || !secret
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let id: i64 = id.parse().ok()?;
        if id <= 0 {
            return None;
        }
        Some(PresentedToken {
            id,
            secret: TokenSecret(secret.to_owned()),
            separator,
        })
    }
}

/// A token's status, derived from its row; never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Active,
    Expired,
    Deleted,
}

impl TokenStatus {
    pub fn of(
        deleted_at: Option<PrimitiveDateTime>,
        expires_at: Option<PrimitiveDateTime>,
        now: OffsetDateTime,
    ) -> TokenStatus {
        if deleted_at.is_some() {
            TokenStatus::Deleted
        } else if expires_at.is_some_and(|at| at <= to_naive(now)) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Deleted => "deleted",
        }
    }

    pub fn parse(value: &str) -> Option<TokenStatus> {
        match value {
            "active" => Some(TokenStatus::Active),
            "expired" => Some(TokenStatus::Expired),
            "deleted" => Some(TokenStatus::Deleted),
            _ => None,
        }
    }
}

/// Naive UTC, as the databases store it.
pub fn to_naive(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

pub fn from_naive(at: PrimitiveDateTime) -> OffsetDateTime {
    at.assume_utc()
}

/// A token chosen in the web form to expire on `date` lives until the end of that day, UTC.
pub fn end_of_day(date: Date) -> OffsetDateTime {
    PrimitiveDateTime::new(date, Time::from_hms(23, 59, 59).expect("valid time")).assume_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn generated_secrets_are_64_hex_chars_and_differ() {
        let a = TokenSecret::generate();
        let b = TokenSecret::generate();
        assert_eq!(a.expose().len(), SECRET_HEX_LEN);
        assert!(a
            .expose()
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn hash_is_sha256_of_the_secret_and_compares() {
        let hash = TokenHash::of("abc");
        assert_eq!(
            hash.0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hash.matches(&hash.0));
        assert!(!hash.matches(&TokenHash::of("abd").0));
        assert!(!hash.matches(""));
    }

    #[test]
    fn both_wire_forms_parse_back() {
        let secret = TokenSecret::generate();
        for sep in [Separator::Underscore, Separator::Dollar] {
            let wire = wire_form(42, sep, &secret);
            let parsed = PresentedToken::parse(&format!("  {wire} ")).expect("parses");
            assert_eq!(parsed.id, 42);
            assert_eq!(parsed.separator, sep);
            assert_eq!(parsed.secret, secret);
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = "a".repeat(64);
        for bad in [
            String::new(),
            "42".into(),
            format!("_{good}"),
            format!("x_{good}"),
            format!("-1_{good}"),
            format!("0_{good}"),
            format!("42_{}", &good[1..]),
            format!("42_{good}a"),
            format!("42_{}", "A".repeat(64)),
            format!("42 {good}"),
            format!("99999999999999999999_{good}"),
            format!("4é_{good}"),
            format!("42_{}é", &good[2..]),
        ] {
            assert!(PresentedToken::parse(&bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn status_turns_expired_at_the_expiry_instant() {
        let exp = Some(datetime!(2026-12-01 23:59:59));
        assert_eq!(
            TokenStatus::of(None, exp, datetime!(2026-12-01 23:59:58 UTC)),
            TokenStatus::Active
        );
        assert_eq!(
            TokenStatus::of(None, exp, datetime!(2026-12-01 23:59:59 UTC)),
            TokenStatus::Expired
        );
        assert_eq!(
            TokenStatus::of(None, None, datetime!(2126-12-01 0:00 UTC)),
            TokenStatus::Active
        );
        assert_eq!(
            TokenStatus::of(
                Some(datetime!(2026-11-01 0:00)),
                exp,
                datetime!(2026-11-02 0:00 UTC)
            ),
            TokenStatus::Deleted
        );
        assert_eq!(
            TokenStatus::of(
                Some(datetime!(2026-11-01 0:00)),
                exp,
                datetime!(2027-11-02 0:00 UTC)
            ),
            TokenStatus::Deleted
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_on_any_input(raw in ".{0,200}") {
            let _ = PresentedToken::parse(&raw);
        }

        #[test]
        fn parsing_never_panics_on_near_misses(id in "[0-9a-z-]{0,22}", sep in "[_$ x]", secret in "[0-9a-fA-Fé]{0,70}") {
            let _ = PresentedToken::parse(&format!("{id}{sep}{secret}"));
        }

        #[test]
        fn every_wire_form_round_trips(id in 1i64..=999_999_999_999_999_999, dollar: bool, bytes: [u8; 32]) {
            let secret = TokenSecret(hex::encode(bytes));
            let sep = if dollar { Separator::Dollar } else { Separator::Underscore };
            let parsed = PresentedToken::parse(&wire_form(id, sep, &secret)).expect("a wire form parses");
            proptest::prop_assert_eq!(parsed, PresentedToken { id, secret, separator: sep });
        }
    }

    #[test]
    fn a_chosen_date_ends_at_23_59_59_utc() {
        assert_eq!(
            end_of_day(time::macros::date!(2026 - 12 - 31)),
            datetime!(2026-12-31 23:59:59 UTC)
        );
    }
}
