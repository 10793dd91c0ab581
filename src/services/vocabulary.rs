//! The words every room of the services shares: who acts (`Actor`, through which `Via`), who
//! may see which tokens (`Visibility`), what a checked credential is (`Credential`) and the
//! ways a credential or a sign-in is refused. A leaf: it imports nothing from the rooms, so
//! no two rooms need each other to speak.

use time::OffsetDateTime;

use crate::domain::leak_response::LeakResponse;
use crate::domain::policy::TokenPolicy;
use crate::domain::token::from_naive;
use crate::domain::{AccountId, AuthType, Role, TokenId, UserId};
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, Token, User};

/// Who is acting, and with which role. Through the portal the role is the user's; through
/// an API token it is the token's role, which caps what the token can do.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: UserId,
    pub account_id: AccountId,
    pub role: Role,
    /// Where the action came from, for the account's audit trail.
    pub origin: Origin,
}

/// How an action reached us and from which client address (the audit trail's "by what").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub via: Via,
    pub client: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Via {
    /// The command line, a background task, a test.
    #[default]
    System,
    Portal,
    /// The JSON API, with a JWT (`None`) or a permanent token (its id).
    Api(Option<TokenId>),
}

impl Actor {
    /// A person acting as themselves.
    pub fn of_person(person: &Person) -> Actor {
        Actor {
            user_id: person.id,
            account_id: person.account_id,
            role: person.role,
            origin: Origin::default(),
        }
    }

    pub fn of_user(user: &User) -> Actor {
        Actor {
            user_id: UserId::new(user.id),
            account_id: AccountId::new(user.account_id),
            role: user.role,
            origin: Origin::default(),
        }
    }

    /// The same actor, reached through `via` from `client`.
    pub fn from(mut self, via: Via, client: &str) -> Actor {
        self.origin = Origin {
            via,
            client: (!client.is_empty()).then(|| client.to_owned()),
        };
        self
    }

    /// The one "Administrators only" check, with the one message for it.
    pub fn require_admin(&self) -> ServiceResult<()> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(ADMINS_ONLY.into()))
        }
    }
}

/// What a non-Administrator is told when they reach for something only Administrators do.
pub const ADMINS_ONLY: &str =
    "Only Administrators can see and manage the other users of the account. Ask one of them.";

/// A credential that checked out: who acts, in which account, with which role.
#[derive(Debug, Clone)]
pub struct Credential {
    pub actor: Actor,
    /// The permanent token used, if any (absent for a JWT).
    pub token_id: Option<TokenId>,
    /// Answered from what this instance last knew, because the database can't be reached.
    pub stale: bool,
    /// The networks the permanent token may be used from (`None`: any address).
    pub allowed: Option<std::sync::Arc<[ipnet::IpNet]>>,
    /// The routes the permanent token may call (`None`: whatever its role allows).
    pub routes: Option<std::sync::Arc<[crate::domain::routes::Route]>>,
    /// The permanent token's rate limit, if it has one.
    pub rate: Option<crate::domain::rate::RateLimit>,
    /// The permanent token's usage quota, if it has one.
    pub quota: Option<crate::domain::quota::UsageLimit>,
}

/// What the web layer can tell about the caller, asked for only when needed.
#[derive(Debug, Clone, Default)]
pub struct ClientFacts {
    /// The client address under the trusted proxies.
    pub ip: Option<std::net::IpAddr>,
    pub agent: Option<String>,
}

/// Every failure looks the same from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

/// Why a credential was not accepted: refused (401), or the database failed us.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unauthorized")]
    Unauthorized,
    /// A good token used from outside its address allowlist (the address, if known).
    #[error("not from an allowed address")]
    NotFromHere(Option<std::net::IpAddr>),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<Unauthorized> for AuthError {
    fn from(_: Unauthorized) -> Self {
        AuthError::Unauthorized
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown e-mail, wrong password, removed user, or no password (SSO): one answer for all.
    #[error("wrong e-mail or password")]
    WrongCredentials,
    /// The password was right, but the role works through the API only.
    #[error("this role uses the API only")]
    ApiOnly,
    /// The password was right; the person has a second factor and none was given (the JWT
    /// login's `one_time_password`).
    #[error("a second factor is required")]
    SecondFactorRequired,
    /// The account requires a second factor and the person has none yet: they must set one
    /// up in the portal first.
    #[error("the account requires a second factor")]
    SecondFactorNotSetUp,
    /// The password was right, but the account signs its people in through single sign-on
    /// only (Administrators excepted: their break-glass sign-in is audited).
    #[error("this account signs in with single sign-on")]
    SsoRequired,
    /// The password was right; the person's second factor is a passkey, which only a browser
    /// can answer (the JWT login, or a password-and-code confirmation, can't take it).
    #[error("the second factor is a passkey")]
    UsePasskey,
    /// The second factor was wrong, or a code already used.
    #[error("wrong second factor")]
    WrongSecondFactor,
    /// Too many failed attempts for this e-mail or address: try again after the wait.
    #[error("too many failed attempts")]
    TooManyAttempts(std::time::Duration),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        SignInError::Service(e.into())
    }
}

/// Who may see (and so manage) which tokens: Administrators every token of their account,
/// everyone else the tokens they issued.
#[derive(Debug, Clone, Copy)]
pub struct Visibility {
    pub account_id: i64,
    pub only_issuer: Option<i64>,
    /// Tokens above this role are not visible (so not deletable): a token acting with the
    /// Users role can't see or delete its issuer's Administrators tokens.
    pub max_role: Role,
}

impl Visibility {
    pub fn of(actor: &Actor) -> Visibility {
        Visibility {
            account_id: actor.account_id.get(),
            only_issuer: (!actor.role.is_admin()).then_some(actor.user_id.get()),
            max_role: actor.role,
        }
    }

    pub fn admits(&self, token: &Token) -> bool {
        token.account_id == self.account_id
            && self.only_issuer.is_none_or(|id| token.issuer_id == id)
            && token.role.rank() <= self.max_role.rank()
    }

    /// The same limit for a list query: `None` when every role is visible.
    pub fn roles(&self) -> Option<Vec<Role>> {
        (!self.max_role.is_admin()).then(|| self.max_role.at_most())
    }
}

/// A person of an account as the portal and the API show them: no password hash, no JWT
/// generation, nothing the web layer has no business reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: UserId,
    pub account_id: AccountId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub auth_type: AuthType,
    pub created_at: OffsetDateTime,
    pub last_login_at: Option<OffsetDateTime>,
    pub removed_at: Option<OffsetDateTime>,
    pub token_expiry_email: bool,
    pub phone: Option<String>,
    pub lang: String,
    /// SCIM's `userName` when the identity provider's isn't the e-mail.
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub deactivated: bool,
}

impl Person {
    /// The name, or the e-mail for someone without one.
    pub fn display_name(&self) -> &str {
        crate::domain::user::display_name(&self.name, &self.email)
    }
}

impl From<&User> for Person {
    fn from(u: &User) -> Person {
        Person {
            id: UserId::new(u.id),
            account_id: AccountId::new(u.account_id),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            auth_type: u.auth_type,
            created_at: from_naive(u.created_at),
            last_login_at: u.last_login_at.map(from_naive),
            removed_at: u.removed_at.map(from_naive),
            token_expiry_email: u.token_expiry_email,
            phone: u.phone.clone(),
            lang: u.lang.clone(),
            user_name: u.user_name.clone(),
            external_id: u.external_id.clone(),
            deactivated: u.deactivated,
        }
    }
}

impl From<User> for Person {
    fn from(u: User) -> Person {
        Person::from(&u)
    }
}

/// An account as the portal and the API show it (its SCIM token only as "has one").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub id: AccountId,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub leak_response: LeakResponse,
    pub token_policy: TokenPolicy,
    pub has_scim_token: bool,
    /// Everyone who signs in with a password must have a second factor.
    pub mfa_required: bool,
}

impl From<&Account> for AccountInfo {
    fn from(a: &Account) -> AccountInfo {
        AccountInfo {
            id: AccountId::new(a.id),
            name: a.name.clone(),
            created_at: from_naive(a.created_at),
            leak_response: a.leak_response,
            token_policy: a.token_policy(),
            has_scim_token: a.scim_token_hash.is_some(),
            mfa_required: a.mfa_required,
        }
    }
}

impl From<Account> for AccountInfo {
    fn from(a: Account) -> AccountInfo {
        AccountInfo::from(&a)
    }
}

/// A token named in a list of someone's tokens: its id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    pub id: TokenId,
    pub name: String,
}

impl From<&Token> for TokenRef {
    fn from(t: &Token) -> TokenRef {
        TokenRef {
            id: TokenId::new(t.id),
            name: t.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(user_id: i64, account_id: i64, role: Role) -> Actor {
        Actor {
            user_id: crate::domain::UserId::new(user_id),
            account_id: crate::domain::AccountId::new(account_id),
            role,
            origin: Default::default(),
        }
    }

    fn token(account_id: i64, issuer_id: i64) -> Token {
        Token::fixture(account_id, issuer_id)
    }

    #[test]
    fn administrators_see_every_token_of_their_account_and_no_other() {
        let admin = Visibility::of(&actor(1, 7, Role::Administrators));
        assert_eq!(admin.only_issuer, None);
        assert!(admin.admits(&token(7, 1)));
        assert!(admin.admits(&token(7, 2)), "a colleague's token");
        assert!(!admin.admits(&token(8, 1)), "another account's token");
    }

    #[test]
    fn everyone_else_sees_only_the_tokens_they_issued() {
        for role in Role::ALL.into_iter().filter(|r| !r.is_admin()) {
            let v = Visibility::of(&actor(2, 7, role));
            assert_eq!(v.only_issuer, Some(2), "{role}");
            assert!(v.admits(&token(7, 2)), "{role}: own token");
            assert!(!v.admits(&token(7, 1)), "{role}: a colleague's token");
            assert!(!v.admits(&token(8, 2)), "{role}: another account");
        }
    }
}
