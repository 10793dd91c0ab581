//! A token's usage quota (issue 28): at most `requests` allowed requests, for ever or per UTC
//! day or calendar month. Shared by every instance through leases (`gateway::quota`): what an
//! instance leases is counted as used when it is leased, so across instances no more than
//! `requests` ever pass; what a lease didn't spend is given back.

use std::fmt;

use time::{Date, Duration, Month, OffsetDateTime, Time};

pub const MAX_REQUESTS: u64 = 1_000_000_000;

/// When a spent quota is whole again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refill {
    /// Never: the token stops for good once its quota is spent.
    Never,
    /// At the start of each calendar month (UTC).
    Monthly,
    /// At midnight UTC.
    Daily,
}

impl Refill {
    pub fn parse(s: &str) -> Option<Refill> {
        match s {
            "never" | "" => Some(Refill::Never),
            "monthly" => Some(Refill::Monthly),
            "daily" => Some(Refill::Daily),
            _ => None,
        }
    }

    /// As the API writes it: `None` for never.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Refill::Never => None,
            Refill::Monthly => Some("monthly"),
            Refill::Daily => Some("daily"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageLimit {
    pub requests: u64,
    pub refill: Refill,
}

impl fmt::Display for UsageLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = crate::domain::count(self.requests as i64, "request", "requests");
        match self.refill {
            Refill::Never => write!(f, "{n} in all"),
            Refill::Monthly => write!(f, "{n} a month"),
            Refill::Daily => write!(f, "{n} a day"),
        }
    }
}

impl UsageLimit {
    /// A quota as given: 1 to 1,000,000,000 requests, refilled never, daily or monthly.
    pub fn new(requests: i64, refill: Option<&str>) -> Result<UsageLimit, String> {
        let refill = Refill::parse(refill.unwrap_or("never")).ok_or_else(|| {
            "A quota's refill is null (never), \"daily\" or \"monthly\".".to_string()
        })?;
        if !(1..=MAX_REQUESTS as i64).contains(&requests) {
            return Err(format!(
                "A usage quota is 1 to {MAX_REQUESTS} requests, like {{\"requests\": 10000, \"refill\": \"monthly\"}}."
            ));
        }
        Ok(UsageLimit {
            requests: requests as u64,
            refill,
        })
    }

    /// As stored: "N", "N/daily" or "N/monthly".
    pub fn to_stored(self) -> String {
        match self.refill.as_str() {
            None => self.requests.to_string(),
            Some(r) => format!("{}/{r}", self.requests),
        }
    }

    pub fn from_stored(stored: Option<&str>) -> Option<UsageLimit> {
        let stored = stored?;
        let (n, refill) = stored.split_once('/').unwrap_or((stored, "never"));
        UsageLimit::new(n.parse().ok()?, Some(refill)).ok()
    }

    /// The period `at` falls in: what a counter row is keyed by, so a new period starts
    /// from nothing ("" for a quota that never refills).
    pub fn period(self, at: OffsetDateTime) -> String {
        let d = at.date();
        match self.refill {
            Refill::Never => String::new(),
            Refill::Monthly => format!("{:04}-{:02}", d.year(), d.month() as u8),
            Refill::Daily => d.to_string(),
        }
    }

    /// When the period `at` falls in ends (`None`: never).
    pub fn next_refill(self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let d = at.date();
        let next = match self.refill {
            Refill::Never => return None,
            Refill::Daily => d + Duration::days(1),
            Refill::Monthly => {
                let (y, m) = match d.month() {
                    Month::December => (d.year() + 1, Month::January),
                    m => (d.year(), m.next()),
                };
                Date::from_calendar_date(y, m, 1).ok()?
            }
        };
        Some(next.with_time(Time::MIDNIGHT).assume_utc())
    }

    /// How many an instance leases at once: a hundredth of the quota (at least one), so a
    /// quota costs at most about a hundred short writes per period however busy the token,
    /// and a lease lost with an instance is at most 1 % of it.
    pub fn chunk(self) -> u64 {
        (self.requests / 100).max(1)
    }

    /// Used requests at which the issuer is told (80 %).
    pub fn notice_at(self) -> u64 {
        (self.requests * 4).div_ceil(5)
    }

    /// Whether `self` is no larger than `parent`: no more requests, refilled no more often.
    pub fn within(self, parent: UsageLimit) -> bool {
        self.requests <= parent.requests && self.refill <= parent.refill
    }
}

/// One lease from a quota's counter (`used` of the period `stored_period`) at `period`: a new
/// period starts from nothing; what is given back (from a lease of `back_period`) is no longer
/// used; then at most `want` is taken. Returns (granted, used after).
pub fn lease(
    limit: UsageLimit,
    stored_period: &str,
    used: u64,
    period: &str,
    give_back: u64,
    back_period: &str,
    want: u64,
) -> (u64, u64) {
    let mut used = if stored_period == period { used } else { 0 };
    if back_period == period {
        used = used.saturating_sub(give_back);
    }
    let granted = want.min(limit.requests.saturating_sub(used));
    (granted, used + granted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn quotas_are_checked_stored_and_compared() {
        assert!(UsageLimit::new(0, None).is_err());
        assert!(UsageLimit::new(10, Some("weekly")).is_err());
        assert!(UsageLimit::new(1_000_000_001, None).is_err());
        for q in [
            UsageLimit::new(10, None).unwrap(),
            UsageLimit::new(1000, Some("daily")).unwrap(),
            UsageLimit::new(5, Some("monthly")).unwrap(),
        ] {
            assert_eq!(UsageLimit::from_stored(Some(&q.to_stored())), Some(q));
        }
        assert_eq!(UsageLimit::from_stored(Some("x")), None);
        let monthly = UsageLimit::new(1000, Some("monthly")).unwrap();
        assert!(UsageLimit::new(1000, None).unwrap().within(monthly));
        assert!(UsageLimit::new(10, Some("monthly"))
            .unwrap()
            .within(monthly));
        assert!(!UsageLimit::new(10, Some("daily")).unwrap().within(monthly));
        assert!(!UsageLimit::new(1001, None).unwrap().within(monthly));
        assert_eq!(monthly.chunk(), 10);
        assert_eq!(UsageLimit::new(50, None).unwrap().chunk(), 1);
        assert_eq!(UsageLimit::new(10, None).unwrap().notice_at(), 8);
        assert_eq!(UsageLimit::new(11, None).unwrap().notice_at(), 9);
        assert_eq!(monthly.to_string(), "1000 requests a month");
    }

    #[test]
    fn periods_and_refills_are_utc_days_and_calendar_months() {
        let at = datetime!(2026-12-31 23:59:59 UTC);
        let daily = UsageLimit::new(1, Some("daily")).unwrap();
        let monthly = UsageLimit::new(1, Some("monthly")).unwrap();
        let never = UsageLimit::new(1, None).unwrap();
        assert_eq!(daily.period(at), "2026-12-31");
        assert_eq!(monthly.period(at), "2026-12");
        assert_eq!(never.period(at), "");
        assert_eq!(daily.next_refill(at), Some(datetime!(2027-01-01 0:00 UTC)));
        assert_eq!(
            monthly.next_refill(at),
            Some(datetime!(2027-01-01 0:00 UTC))
        );
        assert_eq!(
            monthly.next_refill(datetime!(2026-02-10 12:00 UTC)),
            Some(datetime!(2026-03-01 0:00 UTC))
        );
        assert_eq!(never.next_refill(at), None);
    }

    #[test]
    fn leases_never_grant_past_the_quota_and_a_new_period_starts_empty() {
        let q = UsageLimit::new(25, None).unwrap();
        let (mut used, mut passed) = (0, 0);
        // Three instances leasing 10 at a time, never giving back: 25 in all.
        for _ in 0..10 {
            let (g, u) = lease(q, "", used, "", 0, "", 10);
            used = u;
            passed += g;
        }
        assert_eq!((passed, used), (25, 25));
        // Given back (same period): usable again.
        assert_eq!(lease(q, "", 25, "", 5, "", 10), (5, 25));
        let daily = UsageLimit::new(25, Some("daily")).unwrap();
        // A new day: from nothing; a give-back from yesterday's lease counts for nothing.
        assert_eq!(
            lease(daily, "2026-12-03", 25, "2026-12-04", 5, "2026-12-03", 10),
            (10, 10)
        );
    }
}
