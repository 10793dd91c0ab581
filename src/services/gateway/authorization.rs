//! The `Authorization` header: `APIKey <token>` or `Bearer <jwt>`, the scheme word in any
//! case; anything else, or anything too long or not ASCII, is no credential at all.

use crate::domain::token::PresentedToken;
use crate::services::vocabulary::Unauthorized;

/// Longest `Authorization` value we read; anything longer is refused unread.
pub const MAX_AUTHORIZATION: usize = 8192;

/// `APIKey <token>` or `Bearer <jwt>`; the scheme word is case-insensitive.
pub enum Presented<'a> {
    ApiKey(PresentedToken),
    Bearer(&'a str),
}

pub fn parse_authorization(raw: &str) -> Result<Presented<'_>, Unauthorized> {
    // Every credential of ours is ASCII; so is the rest of the work here.
    if raw.len() > MAX_AUTHORIZATION || !raw.is_ascii() {
        return Err(Unauthorized);
    }
    let raw = raw.trim_ascii();
    let at = raw
        .bytes()
        .position(|b| b.is_ascii_whitespace())
        .ok_or(Unauthorized)?;
    let (scheme, value) = (&raw[..at], &raw[at + 1..]);
    if scheme.eq_ignore_ascii_case("apikey") {
        PresentedToken::parse(value)
            .map(Presented::ApiKey)
            .ok_or(Unauthorized)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Presented::Bearer(value.trim_ascii()))
    } else {
        Err(Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_values_parse_by_scheme_and_refuse_the_rest() {
        let token = format!("7_{}", "a".repeat(64));
        assert!(matches!(
            parse_authorization(&format!("  apikey {token} ")),
            Ok(Presented::ApiKey(t)) if t.id == 7
        ));
        assert!(matches!(
            parse_authorization("APIKey\t  7$aaaa".replace("aaaa", &"b".repeat(64)).as_str()),
            Ok(Presented::ApiKey(t)) if t.id == 7
        ));
        assert!(matches!(
            parse_authorization("Bearer abc.def.ghi"),
            Ok(Presented::Bearer("abc.def.ghi"))
        ));
        for bad in [
            "",
            "APIKey",
            "Basic dXNlcjpwYXNz",
            &format!("APIKey{token}"),
            &format!("APIKey {}", "x".repeat(MAX_AUTHORIZATION)),
            &format!("APIKey\u{a0}{token}"),
            &format!("APIKey {token}\u{a0}"),
            "Bearer abc.déf.ghi",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad:?}");
        }
    }
}
