//! What the domain knows about a person besides their role.

use std::fmt;

/// What to call a person: their name, or their e-mail when they have none (an invitation
/// through the API may leave the name out, and `PATCH` may clear it).
pub fn display_name<'a>(name: &'a str, email: &'a str) -> &'a str {
    if name.trim().is_empty() {
        email
    } else {
        name
    }
}

/// The domain of a service account's stand-in address (`users.email` is required and unique):
/// RFC 2606's `.invalid`, which no mail reaches and `Email::parse` refuses for anyone else.
pub const SERVICE_ACCOUNT_DOMAIN: &str = "@service-account.invalid";

/// Whether a stored address is a service account's stand-in.
pub fn is_service_account_address(email: &str) -> bool {
    email.ends_with(SERVICE_ACCOUNT_DOMAIN)
}

/// How a user signs in to the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum AuthType {
    /// E-mail and password (set through an invitation's link).
    Password,
    /// SAML single sign-on: no password here; their tokens outlive an IdP revocation until
    /// an Administrator deletes them, which the tokens page warns about.
    Sso,
    /// A service account (issue 29): a machine's identity that holds tokens. No e-mail it can
    /// receive, no password, no sign-in; never listed as a person.
    Service,
}

impl AuthType {
    /// As stored, and as Gcore's `auth_types` lists it.
    pub fn code(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::Sso => "sso",
            AuthType::Service => "service",
        }
    }

    pub fn parse(code: &str) -> Option<AuthType> {
        match code {
            "password" => Some(AuthType::Password),
            "sso" => Some(AuthType::Sso),
            "service" => Some(AuthType::Service),
            _ => None,
        }
    }

    pub fn is_sso(self) -> bool {
        self == AuthType::Sso
    }

    /// How the profile page describes it.
    pub fn label(self) -> &'static str {
        match self {
            AuthType::Password => "E-mail and password",
            AuthType::Sso => "Single sign-on (SAML SSO)",
            AuthType::Service => "Service account (no sign-in)",
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
