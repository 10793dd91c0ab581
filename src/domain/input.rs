//! Parse, don't validate: raw strings become these types at the edge, with a message a
//! person can act on when they can't.

use time::{Date, OffsetDateTime};

use super::token::end_of_day;

pub const NAME_MAX: usize = 100;
const DESCRIPTION_MAX: usize = 500;

/// A token's name: 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(raw: &str) -> Result<TokenName, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Enter a token name.".into());
        }
        if name.chars().count() > NAME_MAX {
            return Err(format!(
                "The token name can be at most {NAME_MAX} characters."
            ));
        }
        if name.chars().any(char::is_control) {
            return Err("The token name can't contain control characters.".into());
        }
        Ok(TokenName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An optional description of at most 500 characters; blank means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDescription(Option<String>);

impl TokenDescription {
    pub fn parse(raw: Option<&str>) -> Result<TokenDescription, String> {
        let text = raw.map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Ok(TokenDescription(None));
        }
        if text.chars().count() > DESCRIPTION_MAX {
            return Err(format!(
                "The description can be at most {DESCRIPTION_MAX} characters."
            ));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err("The description can't contain control characters.".into());
        }
        Ok(TokenDescription(Some(text.to_owned())))
    }

    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

/// How far ahead an expiry date may be (10 years, as the longest policy): a date like
/// 9999-12-31 is a typo or a way of saying "never", which has its own choice.
pub const HORIZON_DAYS: i64 = 3650;

/// When a token stops working: never, or at an instant that must be in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry(Option<OffsetDateTime>);

impl Expiry {
    pub const NEVER: Expiry = Expiry(None);

    /// From the web form: `expiration` is `never`, `date` (with `exp_date` as `YYYY-MM-DD`)
    /// or a preset of days, `<n>d` (`30d`); the token lives until the end of that day (UTC).
    pub fn from_form(
        expiration: &str,
        exp_date: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Expiry, String> {
        if let Some(days) = expiration
            .strip_suffix('d')
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| (1..=HORIZON_DAYS).contains(n))
        {
            return Expiry::at(end_of_day((now + time::Duration::days(days)).date()), now);
        }
        match expiration {
            "never" => Ok(Expiry::NEVER),
            "date" => {
                let raw = exp_date.map(str::trim).unwrap_or("");
                if raw.is_empty() {
                    return Err("Choose the expiration date.".into());
                }
                let format = time::macros::format_description!("[year]-[month]-[day]");
                let date = Date::parse(raw, &format)
                    .map_err(|_| "Enter the date as YYYY-MM-DD.".to_string())?;
                Expiry::at(end_of_day(date), now)
            }
            _ => Err("Choose \"Never expire\" or \"Set expiration date\".".into()),
        }
    }

    /// From the API: an instant, or `None` for never.
    pub fn at(at: OffsetDateTime, now: OffsetDateTime) -> Result<Expiry, String> {
        if at <= now {
            return Err("The expiration date must be in the future.".into());
        }
        let horizon = end_of_day((now + time::Duration::days(HORIZON_DAYS)).date());
        if at > horizon {
            return Err(format!(
                "The expiration date can be at most 10 years away: {} at the latest. For a token that should not expire, choose \"Never expire\".",
                horizon.date()
            ));
        }
        Ok(Expiry(Some(at)))
    }

    pub fn instant(self) -> Option<OffsetDateTime> {
        self.0
    }
}

/// An e-mail address in its one stored form: trimmed, Unicode NFC (a decomposed and a
/// precomposed `résumé@` are the same person), lower-cased; control and invisible characters
/// (zero-width spaces, bidi overrides, ...) refused, so two people can't look identical.
/// A light check otherwise (the mailer is the real judge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let trimmed = raw.trim();
        if trimmed.chars().any(super::text::needs_escape) {
            return Err(
                "The e-mail address contains an invisible or control character: type it again."
                    .into(),
            );
        }
        let email = Email::normal_form(trimmed);
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            })
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c == '<' || c == '>');
        if valid && email.ends_with(".invalid") {
            // RFC 2606 reserves it; service accounts' stand-in addresses use it.
            Err("An address under .invalid can't receive mail: enter a real one.".into())
        } else if valid {
            Ok(Email(email))
        } else {
            Err("Enter an e-mail address like name@example.com.".into())
        }
    }

    /// What an address typed at sign-in is looked up as: the same normal form, without the
    /// refusals (an address that can't be valid simply finds nobody).
    pub fn normal_form(raw: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        raw.trim().nfc().collect::<String>().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's display name: 1–100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<PersonName, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Enter a name.".into());
        }
        if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
            return Err(format!(
                "A name is at most {NAME_MAX} characters, without control characters."
            ));
        }
        Ok(PersonName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The languages a user may have (Gcore's list).
pub const LANGUAGES: [&str; 5] = ["en", "de", "ru", "zh", "az"];

/// A user's language, one of `LANGUAGES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language(String);

impl Language {
    pub fn parse(raw: &str) -> Result<Language, String> {
        LANGUAGES
            .contains(&raw)
            .then(|| Language(raw.to_owned()))
            .ok_or_else(|| format!("Must be one of: {}.", LANGUAGES.join(", ")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 10–1024 characters (long enough to matter, short enough to hash).
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<NewPassword, String> {
        let n = raw.chars().count();
        if n < 10 {
            return Err("A password needs at least 10 characters.".into());
        }
        if raw.len() > 1024 {
            return Err("A password can be at most 1024 bytes.".into());
        }
        Ok(NewPassword(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn token_names_are_trimmed_and_bounded() {
        assert_eq!(
            TokenName::parse("  CI deploys ").unwrap().as_str(),
            "CI deploys"
        );
        assert!(TokenName::parse("   ").is_err());
        assert!(TokenName::parse(&"x".repeat(100)).is_ok());
        assert!(TokenName::parse(&"x".repeat(101)).is_err());
        assert!(TokenName::parse(&"é".repeat(100)).is_ok());
        assert!(TokenName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn descriptions_are_optional_and_bounded() {
        assert_eq!(TokenDescription::parse(None).unwrap().into_inner(), None);
        assert_eq!(
            TokenDescription::parse(Some("  ")).unwrap().into_inner(),
            None
        );
        assert!(TokenDescription::parse(Some(&"x".repeat(500))).is_ok());
        assert!(TokenDescription::parse(Some(&"x".repeat(501))).is_err());
    }

    #[test]
    fn form_expiry_is_never_or_the_end_of_a_future_day() {
        let now = datetime!(2026-11-28 10:00 UTC);
        assert_eq!(Expiry::from_form("never", None, now), Ok(Expiry::NEVER));
        assert_eq!(
            Expiry::from_form("date", Some("2026-12-31"), now)
                .unwrap()
                .instant(),
            Some(datetime!(2026-12-31 23:59:59 UTC))
        );
        // Today is still in the future until 23:59:59.
        assert!(Expiry::from_form("date", Some("2026-11-28"), now).is_ok());
        assert!(Expiry::from_form("date", Some("2026-11-27"), now).is_err());
        assert!(Expiry::from_form("date", Some(""), now).is_err());
        assert!(Expiry::from_form("date", Some("31/12/2026"), now).is_err());
        assert!(Expiry::from_form("date", Some("2026-02-30"), now).is_err());
        assert!(Expiry::from_form("soon", None, now).is_err());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            Email::parse(" Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in ["", "alice", "@x", "a@", "a b@x", "a@b@c", "<a@b>"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_one_normal_form_and_invisible_characters_are_refused() {
        let precomposed = Email::parse("r\u{e9}sum\u{e9}@Example.com").unwrap();
        let decomposed = Email::parse("re\u{301}sume\u{301}@example.com").unwrap();
        assert_eq!(precomposed, decomposed);
        assert_eq!(precomposed.as_str(), "r\u{e9}sum\u{e9}@example.com");
        assert_eq!(
            Email::normal_form(" RE\u{301}SUME\u{301}@example.com"),
            precomposed.as_str()
        );
        for sneaky in [
            "eng@demo.example\u{200b}",
            "\u{feff}eng@demo.example",
            "en\u{200d}g@demo.example",
            "eng@demo\u{202e}.example",
            "eng@demo.exam\u{00ad}ple",
            "eng\u{7}@demo.example",
        ] {
            let e = Email::parse(sneaky).unwrap_err();
            assert!(e.contains("invisible"), "{sneaky:?}: {e}");
        }
    }

    #[test]
    fn passwords_need_ten_characters() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("long enough pw").is_ok());
        assert!(NewPassword::parse(&"x".repeat(2000)).is_err());
    }
}
