//! What an account does when one of its tokens is reported leaked (an account setting).

/// Revoke at once (the default), or only tell the issuer and the Administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum LeakResponse {
    #[default]
    Revoke,
    /// For accounts that must not lose a token without a person deciding: it keeps working,
    /// and the alert says so.
    NotifyOnly,
}

impl LeakResponse {
    /// As stored, and as the settings form sends it.
    pub fn code(self) -> &'static str {
        match self {
            LeakResponse::Revoke => "revoke",
            LeakResponse::NotifyOnly => "notify",
        }
    }

    pub fn parse(code: &str) -> Option<LeakResponse> {
        match code {
            "revoke" => Some(LeakResponse::Revoke),
            "notify" => Some(LeakResponse::NotifyOnly),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_nothing_else_parses() {
        for r in [LeakResponse::Revoke, LeakResponse::NotifyOnly] {
            assert_eq!(LeakResponse::parse(r.code()), Some(r));
        }
        assert_eq!(LeakResponse::parse("Revoke"), None);
        assert_eq!(LeakResponse::parse(""), None);
    }
}
