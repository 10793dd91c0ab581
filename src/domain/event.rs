//! What can happen in an account, as its audit trail names it: one `EventKind` per event,
//! stored as its stable string (`token.created`, `user.removed`, ...) that filters and
//! `GET .../events` rely on.

/// Every kind of event the audit trail records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    TokenCreated,
    TokenRenamed,
    TokenRotated,
    TokenGraceEnded,
    TokenAllowlistChanged,
    TokenDeleted,
    TokenRevoked,
    /// Revoked by the sweep: unused for the account's `max_idle_days`.
    TokenRevokedIdle,
    TokenLeaked,
    TokenNewAddress,
    TokenNoticeSent,
    /// Several tokens of one person deleted at once (with a role change, a removal, or
    /// "delete all tokens").
    TokensDeleted,
    UserAdded,
    UserUpdated,
    UserEmailChanged,
    UserRoleChanged,
    UserRemoved,
    UserDeprovisioned,
    UserReactivated,
    UserExpiryEmailsOff,
    /// A password changed by its person (Profile → General) or an operator (the CLI).
    UserPasswordChanged,
    /// A password set with a reset link ("Forgot password?").
    UserPasswordReset,
    UserTwoFactorOn,
    UserTwoFactorOff,
    UserRecoveryCodeUsed,
    /// An Administrator removed someone's second factor.
    UserTwoFactorReset,
    AccountTwoFactorPolicy,
    UserPasskeyAdded,
    UserPasskeyRemoved,
    /// Gave the password again before a powerful act ("sudo mode").
    UserReauthenticated,
    AccountLeakResponse,
    AccountTokenPolicy,
    ScimTokenCreated,
    /// Single sign-on set, changed or turned off.
    SsoConfigured,
    SsoSignIn,
    SsoFailed,
    /// An Administrator signed in with a password while SSO is required (break-glass).
    SsoBreakGlass,
    /// A webhook endpoint added, changed, its secret rotated, or removed.
    WebhookConfigured,
    /// A webhook endpoint turned off after 3 days of failed deliveries.
    WebhookDisabled,
    ServiceAccountCreated,
    ServiceAccountRemoved,
    /// A workload identity federation trust policy added or removed.
    TrustPolicyConfigured,
    /// A CI job's JWT exchanged for a short-lived token (RFC 8693).
    TokenExchanged,
    /// A token's allowed routes narrowed, widened or changed (issue 28).
    TokenRoutesChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 44] = [
        EventKind::TokenCreated,
        EventKind::TokenRenamed,
        EventKind::TokenRotated,
        EventKind::TokenGraceEnded,
        EventKind::TokenAllowlistChanged,
        EventKind::TokenDeleted,
        EventKind::TokenRevoked,
        EventKind::TokenRevokedIdle,
        EventKind::TokenLeaked,
        EventKind::TokenNewAddress,
        EventKind::TokenNoticeSent,
        EventKind::TokensDeleted,
        EventKind::UserAdded,
        EventKind::UserUpdated,
        EventKind::UserEmailChanged,
        EventKind::UserRoleChanged,
        EventKind::UserRemoved,
        EventKind::UserDeprovisioned,
        EventKind::UserReactivated,
        EventKind::UserExpiryEmailsOff,
        EventKind::UserPasswordChanged,
        EventKind::UserPasswordReset,
        EventKind::UserTwoFactorOn,
        EventKind::UserTwoFactorOff,
        EventKind::UserRecoveryCodeUsed,
        EventKind::UserTwoFactorReset,
        EventKind::AccountTwoFactorPolicy,
        EventKind::UserPasskeyAdded,
        EventKind::UserPasskeyRemoved,
        EventKind::UserReauthenticated,
        EventKind::AccountLeakResponse,
        EventKind::AccountTokenPolicy,
        EventKind::ScimTokenCreated,
        EventKind::SsoConfigured,
        EventKind::SsoSignIn,
        EventKind::SsoFailed,
        EventKind::SsoBreakGlass,
        EventKind::WebhookConfigured,
        EventKind::WebhookDisabled,
        EventKind::ServiceAccountCreated,
        EventKind::ServiceAccountRemoved,
        EventKind::TrustPolicyConfigured,
        EventKind::TokenExchanged,
        EventKind::TokenRoutesChanged,
    ];

    /// The stored, stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::TokenCreated => "token.created",
            EventKind::TokenRenamed => "token.renamed",
            EventKind::TokenRotated => "token.rotated",
            EventKind::TokenGraceEnded => "token.grace_ended",
            EventKind::TokenAllowlistChanged => "token.allowlist_changed",
            EventKind::TokenDeleted => "token.deleted",
            EventKind::TokenRevoked => "token.revoked",
            EventKind::TokenRevokedIdle => "token.revoked_idle",
            EventKind::TokenLeaked => "token.leaked",
            EventKind::TokenNewAddress => "token.new_address",
            EventKind::TokenNoticeSent => "token.notice_sent",
            EventKind::TokensDeleted => "tokens.deleted",
            EventKind::UserAdded => "user.added",
            EventKind::UserUpdated => "user.updated",
            EventKind::UserEmailChanged => "user.email_changed",
            EventKind::UserRoleChanged => "user.role_changed",
            EventKind::UserRemoved => "user.removed",
            EventKind::UserDeprovisioned => "user.deprovisioned",
            EventKind::UserReactivated => "user.reactivated",
            EventKind::UserExpiryEmailsOff => "user.expiry_emails_off",
            EventKind::UserPasswordChanged => "user.password_changed",
            EventKind::UserPasswordReset => "user.password_reset",
            EventKind::UserTwoFactorOn => "user.two_factor_enabled",
            EventKind::UserTwoFactorOff => "user.two_factor_disabled",
            EventKind::UserRecoveryCodeUsed => "user.recovery_code_used",
            EventKind::UserTwoFactorReset => "user.two_factor_reset",
            EventKind::AccountTwoFactorPolicy => "account.two_factor_policy",
            EventKind::UserPasskeyAdded => "user.passkey_added",
            EventKind::UserPasskeyRemoved => "user.passkey_removed",
            EventKind::UserReauthenticated => "user.reauthenticated",
            EventKind::AccountLeakResponse => "account.leak_response",
            EventKind::AccountTokenPolicy => "account.token_policy",
            EventKind::ScimTokenCreated => "scim.token_created",
            EventKind::SsoConfigured => "sso.configured",
            EventKind::SsoSignIn => "sso.sign_in",
            EventKind::SsoFailed => "sso.failed",
            EventKind::SsoBreakGlass => "sso.break_glass",
            EventKind::WebhookConfigured => "webhook.configured",
            EventKind::WebhookDisabled => "webhook.disabled",
            EventKind::ServiceAccountCreated => "service_account.created",
            EventKind::ServiceAccountRemoved => "service_account.removed",
            EventKind::TrustPolicyConfigured => "trust_policy.configured",
            EventKind::TokenExchanged => "token.exchanged",
            EventKind::TokenRoutesChanged => "token.routes_changed",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(stored: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == stored)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_stable_name_that_reads_back() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let (family, _) = kind.as_str().split_once('.').unwrap();
            assert!([
                "token",
                "tokens",
                "user",
                "account",
                "scim",
                "sso",
                "webhook",
                "service_account",
                "trust_policy"
            ]
            .contains(&family));
        }
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            EventKind::ALL.len(),
            "no two kinds share a name"
        );
        assert_eq!(EventKind::parse("token.made_up"), None);
    }
}
