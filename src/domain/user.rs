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

/// How a user signs in to the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum AuthType {
    /// E-mail and password (set through an invitation's link).
    Password,
    /// SAML single sign-on: no password here; their tokens outlive an IdP revocation until
    /// an Administrator deletes them, which the tokens page warns about.
    Sso,
}

impl AuthType {
    /// As stored, and as Gcore's `auth_types` lists it.
    pub fn code(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::Sso => "sso",
        }
    }

    pub fn parse(code: &str) -> Option<AuthType> {
        match code {
            "password" => Some(AuthType::Password),
            "sso" => Some(AuthType::Sso),
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
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
