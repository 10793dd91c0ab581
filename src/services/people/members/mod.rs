//! The people of an account, managed by its Administrators: list, invite, change role,
//! remove, and delete all of a user's tokens. Every change lands in the account's event log.

pub mod changes;
pub mod invite;
pub mod listing;
pub mod profile;

pub use changes::{change_role, delete_all_tokens, may_stop_being_admin, remove, Changed};
pub use invite::{invite, Invitation, Invited, NewMember};
pub use listing::{list, EventEntry, MemberRow, UsersPage};
pub use profile::{update_user, UserUpdate};
