//! Roles with Gcore's ids and names, ordered by rank.

use std::fmt;

/// A user's (and a token's) role. Ids and names are Gcore's, so API clients can send either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Integer)]
pub enum Role {
    Administrators,
    Engineers,
    PurgeAndPrefetchApiWeb,
    PurgeAndPrefetchApi,
    Users,
}

impl Role {
    /// Every role, highest rank first.
    pub const ALL: [Role; 5] = [
        Role::Administrators,
        Role::Engineers,
        Role::PurgeAndPrefetchApiWeb,
        Role::PurgeAndPrefetchApi,
        Role::Users,
    ];

    pub fn id(self) -> i32 {
        *self.id_ref()
    }

    /// The id in decimal, as a `'static` string (a header value with no allocation).
    pub fn id_str(self) -> &'static str {
        match self {
            Role::Administrators => "1",
            Role::Engineers => "5",
            Role::PurgeAndPrefetchApiWeb => "3009",
            Role::PurgeAndPrefetchApi => "3022",
            Role::Users => "2",
        }
    }

    /// The id as a `'static` reference (what Diesel's `ToSql` binds).
    pub fn id_ref(self) -> &'static i32 {
        match self {
            Role::Administrators => &1,
            Role::Engineers => &5,
            Role::PurgeAndPrefetchApiWeb => &3009,
            Role::PurgeAndPrefetchApi => &3022,
            Role::Users => &2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Administrators => "Administrators",
            Role::Engineers => "Engineers",
            Role::PurgeAndPrefetchApiWeb => "Purge and Prefetch only (API+Web)",
            Role::PurgeAndPrefetchApi => "Purge and Prefetch only (API)",
            Role::Users => "Users",
        }
    }

    /// What the role may do, in a line (the forms show it beside the name).
    pub fn description(self) -> &'static str {
        match self {
            Role::Administrators => {
                "everything, including the account's users, all its tokens and its settings"
            }
            Role::Engineers => "the account's services and their settings, but not its users",
            Role::PurgeAndPrefetchApiWeb => {
                "only purging and prefetching CDN content, in the API and the portal"
            }
            Role::PurgeAndPrefetchApi => {
                "only purging and prefetching CDN content, through the API alone"
            }
            Role::Users => "reading the account's services and statistics, changing nothing",
        }
    }

    /// "Engineers: the account's services ..." for a list where the choice is made.
    pub fn label_with_description(self) -> String {
        format!("{}: {}", self.name(), self.description())
    }

    /// 5 is the highest; "equal to or lower" compares ranks.
    pub fn rank(self) -> u8 {
        match self {
            Role::Administrators => 5,
            Role::Engineers => 4,
            Role::PurgeAndPrefetchApiWeb => 3,
            Role::PurgeAndPrefetchApi => 2,
            Role::Users => 1,
        }
    }

    pub fn from_id(id: i32) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.id() == id)
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Accepts a role id (`"5"`) or a name (`"Engineers"`), as the command line and API do.
    pub fn parse(value: &str) -> Option<Role> {
        let value = value.trim();
        match value.parse::<i32>() {
            Ok(id) => Role::from_id(id),
            Err(_) => Role::from_name(value),
        }
    }

    /// A user may give a token a role equal to or lower than their own.
    /// The lower of the two: what a token may do when its issuer's own role is lower now.
    pub fn capped_by(self, other: Role) -> Role {
        if other.rank() < self.rank() {
            other
        } else {
            self
        }
    }

    /// The roles no higher than `self`.
    pub fn at_most(self) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|r| r.rank() <= self.rank())
            .collect()
    }

    pub fn may_issue(self, token_role: Role) -> bool {
        token_role.rank() <= self.rank()
    }

    /// The roles `self` may give a token, lowest first (least privilege first in forms).
    pub fn issuable(self) -> Vec<Role> {
        // Highest first, as every list of roles is ordered (filters, the Users page).
        Role::ALL
            .into_iter()
            .filter(|r| self.may_issue(*r))
            .collect()
    }

    /// "Purge and Prefetch only (API)" works through the API only.
    pub fn may_use_portal(self) -> bool {
        self != Role::PurgeAndPrefetchApi
    }

    pub fn is_admin(self) -> bool {
        self == Role::Administrators
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_id(role.id()), Some(role));
            assert_eq!(Role::from_name(role.name()), Some(role));
            assert_eq!(Role::parse(&role.id().to_string()), Some(role));
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("engineers"), Some(Role::Engineers));
        assert_eq!(Role::parse("4"), None);
        assert_eq!(Role::parse("Root"), None);
        assert_eq!(Role::parse(""), None);
    }

    #[test]
    fn may_issue_holds_for_exactly_the_pairs_of_equal_or_lower_rank() {
        use Role::*;
        // (issuer, token role, allowed) for all 25 pairs, written out so a change to the
        // rank table can't silently change the rule.
        let table = [
            (Administrators, Administrators, true),
            (Administrators, Engineers, true),
            (Administrators, PurgeAndPrefetchApiWeb, true),
            (Administrators, PurgeAndPrefetchApi, true),
            (Administrators, Users, true),
            (Engineers, Administrators, false),
            (Engineers, Engineers, true),
            (Engineers, PurgeAndPrefetchApiWeb, true),
            (Engineers, PurgeAndPrefetchApi, true),
            (Engineers, Users, true),
            (PurgeAndPrefetchApiWeb, Administrators, false),
            (PurgeAndPrefetchApiWeb, Engineers, false),
            (PurgeAndPrefetchApiWeb, PurgeAndPrefetchApiWeb, true),
            (PurgeAndPrefetchApiWeb, PurgeAndPrefetchApi, true),
            (PurgeAndPrefetchApiWeb, Users, true),
            (PurgeAndPrefetchApi, Administrators, false),
            (PurgeAndPrefetchApi, Engineers, false),
            (PurgeAndPrefetchApi, PurgeAndPrefetchApiWeb, false),
            (PurgeAndPrefetchApi, PurgeAndPrefetchApi, true),
            (PurgeAndPrefetchApi, Users, true),
            (Users, Administrators, false),
            (Users, Engineers, false),
            (Users, PurgeAndPrefetchApiWeb, false),
            (Users, PurgeAndPrefetchApi, false),
            (Users, Users, true),
        ];
        assert_eq!(table.len(), 25);
        for (issuer, token, allowed) in table {
            assert_eq!(issuer.may_issue(token), allowed, "{issuer} issuing {token}");
        }
    }

    #[test]
    fn issuable_lists_the_roles_at_or_below_in_the_one_order_highest_first() {
        assert_eq!(Role::Users.issuable(), vec![Role::Users]);
        assert_eq!(
            Role::Engineers.issuable(),
            vec![
                Role::Engineers,
                Role::PurgeAndPrefetchApiWeb,
                Role::PurgeAndPrefetchApi,
                Role::Users,
            ]
        );
        assert_eq!(Role::Administrators.issuable(), Role::ALL.to_vec());
    }

    #[test]
    fn only_the_api_only_role_is_kept_out_of_the_portal() {
        for role in Role::ALL {
            assert_eq!(role.may_use_portal(), role != Role::PurgeAndPrefetchApi);
        }
    }
}
