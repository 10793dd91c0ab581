//! How the domain's enums are stored: a role as its Gcore id (`Integer`), the rest as short
//! codes (`Text`). Written once, generic over the backend, so the same impls serve SQLite,
//! PostgreSQL and the `MultiConnection` over both. A stored value no code writes is a
//! deserialisation error, not a silent default.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Integer, Text};

use crate::domain::leak_response::LeakResponse;
use crate::domain::{AuthType, EmailStatus, NoticeKind, Role};

impl<DB: Backend> ToSql<Integer, DB> for Role
where
    i32: ToSql<Integer, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.id_ref().to_sql(out)
    }
}

impl<DB: Backend> FromSql<Integer, DB> for Role
where
    i32: FromSql<Integer, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let id = i32::from_sql(bytes)?;
        Role::from_id(id).ok_or_else(|| format!("unknown role id {id}").into())
    }
}

/// `ToSql`/`FromSql` as `Text` for an enum with `code() -> &'static str` and `parse`.
macro_rules! text_enum {
    ($ty:ty, $what:literal) => {
        impl<DB: Backend> ToSql<Text, DB> for $ty
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.code().to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $ty
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let code = String::from_sql(bytes)?;
                <$ty>::parse(&code)
                    .ok_or_else(|| format!(concat!("unknown ", $what, " {:?}"), code).into())
            }
        }
    };
}

text_enum!(AuthType, "auth type");
text_enum!(NoticeKind, "notice kind");
text_enum!(EmailStatus, "e-mail status");
text_enum!(LeakResponse, "leak response");
