//! Expiry notices: when one is due, and the states of its e-mail.

use time::{Duration, OffsetDateTime};

use super::token::EXPIRING_SOON;

/// Which of the two notices before a token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum NoticeKind {
    SevenDays,
    OneDay,
    /// A leak alert: the token was found where it shouldn't be and revoked. Sent on its own,
    /// at once, whatever the expiry-e-mail preference (a security alert).
    Leaked,
    /// The token's issuer was deprovisioned by the identity provider (SCIM) and the token
    /// deleted with them: the Administrators are told, at once, like a leak alert.
    Deprovisioned,
    /// The token is unused and the account's idle rule revokes it in 7 days (`detail`: the
    /// date). An alert of its own, under the expiry-e-mail preference.
    Idle,
    /// The token has used 80 % of its usage quota this period (`detail`: how much of what).
    /// An alert of its own, under the expiry-e-mail preference (as `Idle`).
    Quota,
}

impl NoticeKind {
    /// As stored.
    pub fn code(self) -> &'static str {
        match self {
            NoticeKind::SevenDays => "7d",
            NoticeKind::OneDay => "1d",
            NoticeKind::Leaked => "leak",
            NoticeKind::Deprovisioned => "deprov",
            NoticeKind::Idle => "idle",
            NoticeKind::Quota => "quota",
        }
    }

    pub fn parse(code: &str) -> Option<NoticeKind> {
        match code {
            "7d" => Some(NoticeKind::SevenDays),
            "1d" => Some(NoticeKind::OneDay),
            "leak" => Some(NoticeKind::Leaked),
            "deprov" => Some(NoticeKind::Deprovisioned),
            "idle" => Some(NoticeKind::Idle),
            "quota" => Some(NoticeKind::Quota),
            _ => None,
        }
    }

    /// How long before expiry the notice's window opens.
    pub fn lead(self) -> Duration {
        match self {
            NoticeKind::SevenDays => EXPIRING_SOON,
            NoticeKind::OneDay => Duration::days(1),
            NoticeKind::Leaked
            | NoticeKind::Deprovisioned
            | NoticeKind::Idle
            | NoticeKind::Quota => Duration::ZERO,
        }
    }

    /// "in 7 days" / "tomorrow".
    pub fn when(self) -> &'static str {
        match self {
            NoticeKind::SevenDays => "in 7 days",
            NoticeKind::OneDay => "tomorrow",
            NoticeKind::Leaked
            | NoticeKind::Deprovisioned
            | NoticeKind::Idle
            | NoticeKind::Quota => "now",
        }
    }
}

/// Where a notice's e-mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum EmailStatus {
    /// Not sent yet (maybe after failed attempts).
    Pending,
    Sent,
    /// The recipient turned expiry e-mails off.
    Skipped,
    /// The token was deleted or the recipient removed before it went out.
    Cancelled,
}

impl EmailStatus {
    pub const ALL: [EmailStatus; 4] = [
        EmailStatus::Pending,
        EmailStatus::Sent,
        EmailStatus::Skipped,
        EmailStatus::Cancelled,
    ];

    /// As stored.
    pub fn code(self) -> &'static str {
        match self {
            EmailStatus::Pending => "pending",
            EmailStatus::Sent => "sent",
            EmailStatus::Skipped => "skipped",
            EmailStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(code: &str) -> Option<EmailStatus> {
        EmailStatus::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// The notice due for a token at `now`, if any. A window opens `lead` before expiry; one that
/// was already open when the token was created is skipped (its issuer just chose that date);
/// when both are open, only the 1-day notice is due.
pub fn due_notice(
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    deleted: bool,
    now: OffsetDateTime,
) -> Option<NoticeKind> {
    let expires_at = expires_at?;
    if deleted || expires_at <= now {
        return None;
    }
    let due = |kind: NoticeKind| {
        let opens = expires_at - kind.lead();
        opens <= now && created_at < opens
    };
    [NoticeKind::OneDay, NoticeKind::SevenDays]
        .into_iter()
        .find(|k| due(*k))
}

/// Wait before retry `attempt` (0-based): 1, 2, 4 ... minutes, at most 6 hours.
pub fn backoff(attempt: i32) -> Duration {
    Duration::minutes(1i64 << attempt.clamp(0, 9)).min(Duration::hours(6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const EXP: OffsetDateTime = datetime!(2026-12-31 23:59:59 UTC);
    const LONG_AGO: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    #[test]
    fn the_seven_day_notice_is_due_exactly_at_t_minus_7d() {
        let opens = EXP - Duration::days(7);
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens - Duration::seconds(1)),
            None
        );
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens),
            Some(NoticeKind::SevenDays)
        );
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens + Duration::days(5)),
            Some(NoticeKind::SevenDays)
        );
    }

    #[test]
    fn the_one_day_notice_is_due_exactly_at_t_minus_1d_and_wins_when_both_are() {
        let opens = EXP - Duration::days(1);
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens - Duration::seconds(1)),
            Some(NoticeKind::SevenDays)
        );
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, opens),
            Some(NoticeKind::OneDay)
        );
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), false, EXP - Duration::seconds(1)),
            Some(NoticeKind::OneDay)
        );
    }

    #[test]
    fn a_window_open_at_creation_is_skipped() {
        let created_in_7d_window = EXP - Duration::days(3);
        assert_eq!(
            due_notice(
                created_in_7d_window,
                Some(EXP),
                false,
                EXP - Duration::days(2)
            ),
            None
        );
        assert_eq!(
            due_notice(
                created_in_7d_window,
                Some(EXP),
                false,
                EXP - Duration::days(1)
            ),
            Some(NoticeKind::OneDay)
        );
        let created_in_1d_window = EXP - Duration::hours(12);
        assert_eq!(
            due_notice(
                created_in_1d_window,
                Some(EXP),
                false,
                EXP - Duration::hours(1)
            ),
            None
        );
    }

    #[test]
    fn expired_deleted_and_never_expiring_tokens_get_nothing() {
        assert_eq!(due_notice(LONG_AGO, Some(EXP), false, EXP), None);
        assert_eq!(
            due_notice(LONG_AGO, Some(EXP), true, EXP - Duration::hours(1)),
            None
        );
        assert_eq!(due_notice(LONG_AGO, None, false, EXP), None);
    }

    #[test]
    fn the_first_notice_opens_exactly_when_a_token_starts_expiring_soon() {
        assert_eq!(NoticeKind::SevenDays.lead(), EXPIRING_SOON);
    }

    #[test]
    fn codes_round_trip() {
        for k in [NoticeKind::SevenDays, NoticeKind::OneDay] {
            assert_eq!(NoticeKind::parse(k.code()), Some(k));
        }
        for s in EmailStatus::ALL {
            assert_eq!(EmailStatus::parse(s.code()), Some(s));
        }
        assert_eq!(NoticeKind::parse("2d"), None);
        assert_eq!(EmailStatus::parse("lost"), None);
    }

    #[test]
    fn retries_back_off_up_to_six_hours() {
        assert_eq!(backoff(0), Duration::minutes(1));
        assert_eq!(backoff(3), Duration::minutes(8));
        assert_eq!(backoff(30), Duration::hours(6));
    }
}
