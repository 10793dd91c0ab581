//! An account's token policy and a rotation's grace window: rules with no I/O.

use time::{Duration, OffsetDateTime};

/// The longest `max_lifetime_days` may be (ten years).
pub const MAX_LIFETIME_DAYS: i32 = 3650;
/// The shortest `max_idle_days`: the notice goes 7 days before, so a week more than that.
pub const MIN_IDLE_DAYS: i32 = 14;
/// How long before its idle revocation a token's issuer and Administrators are told.
pub const IDLE_NOTICE_LEAD: Duration = Duration::days(7);
/// The longest grace a rotation may give the old secret.
pub const MAX_GRACE: Duration = Duration::days(7);

/// What an Administrator may require of new tokens (creation and rotation). Existing tokens
/// are not touched; the table marks those outside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenPolicy {
    /// The longest a new token may live, in days from its creation (or rotation).
    pub max_lifetime_days: Option<i32>,
    /// Every new token must have an expiry date.
    pub expiry_required: bool,
    /// Tokens nobody used for this many days (never-used ones: since creation) are revoked by
    /// the sweep, their issuer and the Administrators told 7 days before. Applies to every
    /// live token, existing ones too.
    pub max_idle_days: Option<i32>,
    /// Every new token must be limited to allowed routes (issue 28).
    pub routes_required: bool,
    /// Every new token must have a rate limit no faster than this (one asked without gets
    /// this one).
    pub max_rate: Option<crate::domain::rate::RateLimit>,
}

impl TokenPolicy {
    /// A policy as given: a lifetime of 1–3650 days or none.
    pub fn new(
        max_lifetime_days: Option<i64>,
        expiry_required: bool,
    ) -> Result<TokenPolicy, String> {
        let max_lifetime_days = match max_lifetime_days {
            None => None,
            Some(d) if (1..=MAX_LIFETIME_DAYS as i64).contains(&d) => Some(d as i32),
            Some(_) => {
                return Err(format!(
                "The maximum lifetime is a number of days from 1 to {MAX_LIFETIME_DAYS}, or none."
            ))
            }
        };
        Ok(TokenPolicy {
            max_lifetime_days,
            expiry_required,
            max_idle_days: None,
            routes_required: false,
            max_rate: None,
        })
    }

    /// The same policy retiring tokens idle for `days` (14 to 3650), or none.
    pub fn with_idle_days(self, days: Option<i64>) -> Result<TokenPolicy, String> {
        let max_idle_days = match days {
            None => None,
            Some(d) if (MIN_IDLE_DAYS as i64..=MAX_LIFETIME_DAYS as i64).contains(&d) => {
                Some(d as i32)
            }
            Some(_) => {
                return Err(format!(
                    "Idle tokens are revoked after {MIN_IDLE_DAYS} to {MAX_LIFETIME_DAYS} days unused, or never."
                ))
            }
        };
        Ok(TokenPolicy {
            max_idle_days,
            ..self
        })
    }

    /// The same policy capping new tokens' rate limits (or not).
    pub fn with_max_rate(self, max_rate: Option<crate::domain::rate::RateLimit>) -> TokenPolicy {
        TokenPolicy { max_rate, ..self }
    }

    /// The same policy requiring (or not) allowed routes on every new token.
    pub fn with_routes_required(self, routes_required: bool) -> TokenPolicy {
        TokenPolicy {
            routes_required,
            ..self
        }
    }

    /// Whether a policy for new tokens is in force (the idle rule is apart: it touches
    /// existing tokens, not creation).
    pub fn is_set(&self) -> bool {
        self.max_lifetime_days.is_some() || self.expiry_required || self.routes_required
    }

    /// The latest expiry a token made at `now` may have: the end of the last allowed day
    /// (UTC), so the date the form's picker offers last, and the message names, is allowed.
    pub fn latest_expiry(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.max_lifetime_days
            .map(|d| super::token::end_of_day((now + Duration::days(d as i64)).date()))
    }

    /// Refuses an expiry (`None`: never) for a token made or rotated at `now`, saying why and
    /// what would do.
    pub fn check(
        &self,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), String> {
        match (expires_at, self.latest_expiry(now)) {
            (None, Some(latest)) => Err(format!(
                "This account's policy: API tokens must expire within {} days. Choose a date no later than {}.",
                self.max_lifetime_days.unwrap_or_default(),
                latest.date()
            )),
            (None, None) if self.expiry_required => Err(
                "This account's policy: every API token must have an expiry date. Choose a date.".into(),
            ),
            (Some(at), Some(latest)) if at > latest => Err(format!(
                "This account's policy: API tokens must expire within {} days. Choose a date no later than {}.",
                self.max_lifetime_days.unwrap_or_default(),
                latest.date()
            )),
            _ => Ok(()),
        }
    }

    /// Whether an existing token (made at `created_at`) would not be allowed today.
    pub fn excludes(&self, created_at: OffsetDateTime, expires_at: Option<OffsetDateTime>) -> bool {
        self.check(expires_at, created_at).is_err()
    }
}

/// A rotation's grace for the old secret, in seconds: 0 (it stops at once) to 7 days.
pub fn grace(seconds: i64) -> Result<Duration, String> {
    if (0..=MAX_GRACE.whole_seconds()).contains(&seconds) {
        Ok(Duration::seconds(seconds))
    } else {
        Err(format!(
            "The grace period is 0 to {} seconds (7 days).",
            MAX_GRACE.whole_seconds()
        ))
    }
}

/// The graces the portal offers: none, 1 hour, 24 hours, 7 days.
pub const GRACE_CHOICES: [(i64, &str); 4] = [
    (0, "None: the old secret stops now"),
    (3600, "1 hour"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-28 10:00 UTC);

    #[test]
    fn no_policy_allows_anything() {
        let p = TokenPolicy::default();
        assert!(!p.is_set());
        assert!(p.check(None, NOW).is_ok());
        assert!(p.check(Some(NOW + Duration::days(5000)), NOW).is_ok());
    }

    #[test]
    fn a_lifetime_refuses_never_and_later_dates_and_says_the_last_allowed_day() {
        let p = TokenPolicy::new(Some(90), false).unwrap();
        assert!(p.check(Some(NOW + Duration::days(90)), NOW).is_ok());
        let late = p.check(Some(NOW + Duration::days(91)), NOW).unwrap_err();
        assert!(
            late.contains("within 90 days") && late.contains("2027-02-26"),
            "{late}"
        );
        assert!(p.check(None, NOW).unwrap_err().contains("within 90 days"));
        assert!(p.excludes(NOW, None));
        assert!(!p.excludes(NOW, Some(NOW + Duration::days(30))));
    }

    #[test]
    fn expiry_required_refuses_only_never() {
        let p = TokenPolicy::new(None, true).unwrap();
        assert!(p.check(Some(NOW + Duration::days(4000)), NOW).is_ok());
        assert!(p
            .check(None, NOW)
            .unwrap_err()
            .contains("must have an expiry date"));
    }

    #[test]
    fn lifetimes_and_graces_outside_their_range_are_refused() {
        for bad in [0, -1, 3651] {
            assert!(TokenPolicy::new(Some(bad), false).is_err(), "{bad}");
        }
        assert_eq!(
            TokenPolicy::new(Some(3650), true)
                .unwrap()
                .max_lifetime_days,
            Some(3650)
        );
        assert!(grace(-1).is_err() && grace(604_801).is_err());
        assert_eq!(grace(3600).unwrap(), Duration::hours(1));
    }
}
