//! Ids that say what they are: a `TokenId` can't be passed where a `UserId` is meant. Each is
//! parsed once at the edge (a path segment, a query parameter: positive decimal numbers only)
//! and crosses the service boundary as itself; the database layer below stores the number.

use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// An id as stored.
            pub const fn new(id: i64) -> $name {
                $name(id)
            }

            /// The number the database stores.
            pub const fn get(self) -> i64 {
                self.0
            }

            /// What it is the id of, for messages ("token", "user", "account").
            pub const WHAT: &'static str = $what;
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            /// A positive decimal number of at most 18 digits, nothing around it.
            fn from_str(raw: &str) -> Result<$name, InvalidId> {
                parse_positive(raw).map($name).ok_or(InvalidId($what))
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

id_type!(
    /// A webhook endpoint's id (`webhook_endpoints.id`).
    WebhookId,
    "webhook"
);
id_type!(
    /// A webhook message's id in an endpoint's delivery log (`webhook_messages.id`).
    DeliveryId,
    "delivery"
);
id_type!(
    /// A token's id (`tokens.id`), the part before `_` or `$` in its wire form.
    TokenId,
    "token"
);
id_type!(
    /// A person's id (`users.id`).
    UserId,
    "user"
);
id_type!(
    /// An account's id (`accounts.id`; Gcore calls it the client id).
    AccountId,
    "account"
);

id_type!(
    /// An in-app notification's id (`notices.id`).
    NoticeId,
    "notification"
);

id_type!(
    /// A passkey's id (`passkeys.id`).
    PasskeyId,
    "passkey"
);

id_type!(
    /// A service account's id (its `users.id`: a service account is an issuer like a person).
    ServiceAccountId,
    "service account"
);

id_type!(
    /// A workload identity federation trust policy's id (`trust_policies.id`).
    TrustPolicyId,
    "trust policy"
);

/// Text that isn't an id of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidId(pub &'static str);

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a {} id", self.0)
    }
}

impl std::error::Error for InvalidId {}

fn parse_positive(raw: &str) -> Option<i64> {
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_decimal_numbers_and_nothing_else() {
        assert_eq!("42".parse::<TokenId>(), Ok(TokenId::new(42)));
        assert_eq!("000042".parse::<UserId>(), Ok(UserId::new(42)));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1e3",
            "abc",
            "0x10",
            "１",
            &"9".repeat(19),
        ] {
            assert_eq!(
                bad.parse::<AccountId>(),
                Err(InvalidId("account")),
                "{bad:?}"
            );
        }
        assert_eq!(TokenId::new(7).to_string(), "7");
        assert_eq!(i64::from(UserId::new(9)), 9);
        assert_eq!(
            serde_json::to_string(&AccountId::new(3)).unwrap(),
            "3",
            "serialised as the number"
        );
    }
}
