//! The filters `GET /Users` accepts: one `eq` on `userName`, `emails.value`, `externalId`,
//! `id` or `active`; anything else is refused with a message naming it.

use serde_json::Value;

use super::*;

/// The filters `GET /Users` takes: one comparison `<attribute> eq <value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Any case (userName is not case-exact).
    UserName(String),
    /// Any case.
    Email(String),
    /// Exact.
    ExternalId(String),
    Id(i64),
    Active(bool),
    /// Matches nothing (an id that isn't a number).
    Nothing,
}

/// Parses `userName eq "alice@example.com"` and its kin (`externalId`, `emails`/
/// `emails.value`, `id`, `active`). Anything else is refused as RFC 7644's `invalidFilter`.
pub fn parse_filter(raw: &str) -> Result<Filter, ScimProblem> {
    let bad = |why: &str| {
        ScimProblem::new(
            400,
            Some("invalidFilter"),
            format!(
                "{why} Filters here are one comparison with eq: userName, externalId, emails.value, id or active, e.g. userName eq \"alice@example.com\"."
            ),
        )
    };
    let raw = raw.trim();
    let mut parts = raw.splitn(3, char::is_whitespace);
    let (Some(attr), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("The filter could not be read."));
    };
    if !op.eq_ignore_ascii_case("eq") {
        return Err(bad(&format!("The operator \"{op}\" isn't supported.")));
    }
    let value: Value = serde_json::from_str(value.trim())
        .map_err(|_| bad("The value must be a JSON string in double quotes, true or false."))?;
    let text = || {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad("The value must be a string in double quotes."))
    };
    match attribute_name(attr).as_str() {
        "username" => Ok(Filter::UserName(text()?)),
        "emails" | "emails.value" => Ok(Filter::Email(text()?)),
        "externalid" => Ok(Filter::ExternalId(text()?)),
        "id" => Ok(text()?.parse().map(Filter::Id).unwrap_or(Filter::Nothing)),
        "active" => match value {
            Value::Bool(b) => Ok(Filter::Active(b)),
            _ => Err(bad("active compares with true or false.")),
        },
        _ => Err(bad(&format!(
            "The attribute \"{attr}\" can't be filtered on."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_one_eq_comparison_and_refuse_the_rest() {
        assert_eq!(
            parse_filter("userName eq \"a@b.c\"").unwrap(),
            Filter::UserName("a@b.c".into())
        );
        assert_eq!(
            parse_filter("urn:ietf:params:scim:schemas:core:2.0:User:userName EQ \"x y\"").unwrap(),
            Filter::UserName("x y".into())
        );
        assert_eq!(
            parse_filter("emails.value eq \"a@b.c\"").unwrap(),
            Filter::Email("a@b.c".into())
        );
        assert_eq!(
            parse_filter("externalId eq \"00u\"").unwrap(),
            Filter::ExternalId("00u".into())
        );
        assert_eq!(parse_filter("id eq \"12\"").unwrap(), Filter::Id(12));
        assert_eq!(parse_filter("id eq \"zz\"").unwrap(), Filter::Nothing);
        assert_eq!(
            parse_filter("active eq false").unwrap(),
            Filter::Active(false)
        );
        for bad in [
            "userName sw \"a\"",
            "userName eq a",
            "title eq \"x\"",
            "userName",
            "",
            "a eq \"b\" and c eq \"d\"",
        ] {
            let e = parse_filter(bad).unwrap_err();
            assert_eq!(e.scim_type, Some("invalidFilter"), "{bad}");
        }
    }
}
