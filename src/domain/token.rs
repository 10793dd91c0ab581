//! The token secret, its wire form and hash, its status and its expiry.

use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use super::secret::is_secret_hex;
pub use super::secret::{Secret as TokenSecret, SecretHash as TokenHash};

/// At most this many tokens may be active in one account at once.
pub const MAX_ACTIVE_TOKENS_PER_ACCOUNT: i64 = 50;

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
pub fn wire_form(id: impl Into<i64>, separator: Separator, secret: &TokenSecret) -> String {
    format!("{}{}{}", id.into(), separator.as_char(), secret.expose())
}

/// A token as presented by a client, parsed but not yet verified.
#[derive(Clone, PartialEq, Eq)]
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
    /// Byte by byte, with no allocation: it runs on every gateway check.
    pub fn parse(raw: &str) -> Option<PresentedToken> {
        let raw = if raw.is_ascii() {
            raw.trim_ascii()
        } else {
            raw.trim()
        };
        let bytes = raw.as_bytes();
        let at = bytes
            .iter()
            .take(MAX_ID_DIGITS + 1)
            .position(|&b| b == b'_' || b == b'$')?;
        if at == 0 || at > MAX_ID_DIGITS {
            return None;
        }
        let mut id: i64 = 0;
        for &b in &bytes[..at] {
            if !b.is_ascii_digit() {
                return None;
            }
            // At most 18 digits: no overflow.
            id = id * 10 + i64::from(b - b'0');
        }
        let separator = if bytes[at] == b'_' {
            Separator::Underscore
        } else {
            Separator::Dollar
        };
        // `at` is an ASCII byte's position, so a character boundary.
        let secret = &raw[at + 1..];
        if id <= 0 || !is_secret_hex(secret) {
            return None;
        }
        Some(PresentedToken {
            id,
            secret: TokenSecret::from_hex(secret),
            separator,
        })
    }
}

/// Longest id a presented token may carry (18 decimal digits always fit an `i64`).
const MAX_ID_DIGITS: usize = 18;

/// A token this close to its expiry is "expiring soon": highlighted, behind the badge, and
/// the span of the first expiry notice.
pub const EXPIRING_SOON: time::Duration = time::Duration::days(7);

/// Active and expiring within `EXPIRING_SOON` at `now` (`repo::tokens` says the same in SQL
/// through `TokenFilter::expiring_soon`).
pub fn is_expiring_soon(
    status: TokenStatus,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    status == TokenStatus::Active && expires_at.is_some_and(|at| at <= now + EXPIRING_SOON)
}

/// A token's status, derived from its row; never stored. The SQL twin of `of` is
/// `repo::tokens::status_is`, the one place queries derive it.
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
            let secret = TokenSecret::from_hex(&hex::encode(bytes));
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
