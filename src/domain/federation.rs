//! Workload identity federation's rules (issue 29): what a trust policy may say, and whether a
//! CI job's verified claims meet its conditions. Pure: the JWT's signature and times are
//! checked by the service with `jsonwebtoken` before any claim gets here.

use std::collections::BTreeMap;

use serde_json::Value;

/// A minted token lives this long unless the policy says otherwise.
pub const DEFAULT_LIFETIME_SECONDS: i32 = 15 * 60;
/// And never longer.
pub const MAX_LIFETIME_SECONDS: i32 = 60 * 60;
/// Nor shorter (a minute is already less than most CI steps).
pub const MIN_LIFETIME_SECONDS: i32 = 60;
/// Conditions a policy may carry, and how long a claim name or pattern may be.
pub const MAX_CONDITIONS: usize = 16;
pub const MAX_PATTERN_LEN: usize = 512;
/// A subject token larger than this isn't a CI job's JWT (GitHub's are ~1.5 KB).
pub const MAX_SUBJECT_TOKEN_LEN: usize = 16 * 1024;
/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 60;

/// The RFC 8693 words the exchange speaks.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const SUBJECT_TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const SUBJECT_TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const ISSUED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A claim's pattern: `*` matches any run of characters except `:` (one part of GitHub's
/// `repo:owner/name:ref:refs/heads/main`, slashes included), `**` any run at all; everything
/// else is itself. Case matters, as it does in the claims.
pub fn glob_matches(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match p.first() {
            None => v.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=v.len()).any(|i| go(rest, &v[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=v.len() {
                    if go(rest, &v[i..]) {
                        return true;
                    }
                    if v.get(i) == Some(&b':') {
                        break;
                    }
                }
                false
            }
            Some(&c) => v.first() == Some(&c) && go(&p[1..], &v[1..]),
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// A claim as a condition compares it: strings as they are, numbers and booleans as their JSON
/// text (`repository_owner_id: "1234"` matches `1234`); anything else never matches.
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first condition the claims fail, by name, or `None` when all hold.
pub fn first_unmet<'a>(
    conditions: &'a BTreeMap<String, String>,
    claims: &serde_json::Map<String, Value>,
) -> Option<&'a str> {
    conditions.iter().find_map(|(claim, pattern)| {
        let ok = claims
            .get(claim)
            .and_then(claim_text)
            .is_some_and(|v| glob_matches(pattern, &v));
        (!ok).then_some(claim.as_str())
    })
}

/// Checks a policy's conditions: at least one, and at least one that pins something (a
/// pattern that is only wildcards would let every job of a shared issuer like GitHub's in).
pub fn check_conditions(conditions: &BTreeMap<String, String>) -> Result<(), String> {
    if conditions.is_empty() {
        return Err(
            "Give at least one condition, like {\"sub\": \"repo:acme/app:ref:refs/heads/main\"}: \
             an issuer such as GitHub Actions signs every repository's jobs."
                .into(),
        );
    }
    if conditions.len() > MAX_CONDITIONS {
        return Err(format!("At most {MAX_CONDITIONS} conditions."));
    }
    for (claim, pattern) in conditions {
        if claim.is_empty() || claim.len() > 100 || claim.chars().any(char::is_control) {
            return Err(format!(
                "{:?} is not a claim name.",
                claim.chars().take(40).collect::<String>()
            ));
        }
        if pattern.is_empty()
            || pattern.len() > MAX_PATTERN_LEN
            || pattern.chars().any(char::is_control)
        {
            return Err(format!(
                "The condition on {claim:?} needs a value or pattern of 1 to {MAX_PATTERN_LEN} characters."
            ));
        }
    }
    if conditions
        .values()
        .all(|p| p.chars().all(|c| c == '*' || c == ':'))
    {
        return Err(
            "At least one condition must name something (a repository, an owner): a pattern of only * matches every job."
                .into(),
        );
    }
    Ok(())
}

/// Checks an issuer URL's shape: `https://host[/path]` (or `http://` when the operator lists it
/// as insecure, for tests), no query, no fragment, no credentials, no trailing slash.
pub fn check_issuer(issuer: &str, insecure_allowed: &[String]) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|_| {
        "The issuer is a URL like https://token.actions.githubusercontent.com.".to_string()
    })?;
    let listed = insecure_allowed.iter().any(|i| i == issuer);
    if url.scheme() != "https" && !listed {
        return Err("The issuer must be an https:// URL.".into());
    }
    if url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || issuer.ends_with('/')
        || issuer.len() > 512
    {
        return Err(
            "The issuer is the exact `iss` of the tokens: https://host or https://host/path, without a trailing slash, query or fragment."
                .into(),
        );
    }
    Ok(())
}

/// Checks a policy's audience (the `aud` the CI job asks its issuer for).
pub fn check_audience(audience: &str) -> Result<(), String> {
    if audience.trim().is_empty() || audience.len() > 512 || audience.chars().any(char::is_control)
    {
        return Err("Give the audience the job requests its token for (1 to 512 characters), like https://apitokens.example.com.".into());
    }
    Ok(())
}

/// Checks a policy's lifetime.
pub fn check_lifetime(seconds: i64) -> Result<i32, String> {
    if (i64::from(MIN_LIFETIME_SECONDS)..=i64::from(MAX_LIFETIME_SECONDS)).contains(&seconds) {
        Ok(seconds as i32)
    } else {
        Err(format!(
            "lifetime_seconds is from {MIN_LIFETIME_SECONDS} to {MAX_LIFETIME_SECONDS} (an hour); {DEFAULT_LIFETIME_SECONDS} when left out."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_one_part_or_everything() {
        let cases = [
            (
                "repo:acme/app:ref:refs/heads/*",
                "repo:acme/app:ref:refs/heads/main",
                true,
            ),
            (
                "repo:acme/app:ref:refs/heads/*",
                "repo:acme/app:ref:refs/heads/feature/x",
                true,
            ),
            (
                "repo:acme/app:ref:refs/heads/*",
                "repo:acme/app:ref:refs/tags/v1",
                false,
            ),
            (
                "repo:acme/*:ref:refs/heads/main",
                "repo:acme/app:ref:refs/heads/main",
                true,
            ),
            // `*` can't reach across a `:` into another part.
            ("repo:acme/*", "repo:acme/app:ref:refs/heads/main", false),
            ("repo:acme/**", "repo:acme/app:ref:refs/heads/main", true),
            ("repo:acme/*", "repo:acme-evil/app", false),
            ("repo:acme/app", "repo:acme/app", true),
            ("repo:acme/app", "repo:Acme/app", false),
            ("repo:acme/app", "repo:acme/app2", false),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (pattern, value, expected) in cases {
            assert_eq!(
                glob_matches(pattern, value),
                expected,
                "{pattern} ~ {value}"
            );
        }
    }

    #[test]
    fn conditions_compare_strings_numbers_and_booleans_and_nothing_else() {
        let claims: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"sub":"repo:acme/app:ref:refs/heads/main","repository_owner_id":1234,"protected":true,"groups":["a"]}"#,
        )
        .unwrap();
        let mut c = BTreeMap::new();
        c.insert("sub".into(), "repo:acme/app:ref:*".into());
        c.insert("repository_owner_id".into(), "1234".into());
        c.insert("protected".into(), "true".into());
        assert_eq!(first_unmet(&c, &claims), None);
        c.insert("groups".into(), "*".into());
        assert_eq!(first_unmet(&c, &claims), Some("groups"));
        c.remove("groups");
        c.insert("environment".into(), "production".into());
        assert_eq!(first_unmet(&c, &claims), Some("environment"));
    }

    #[test]
    fn a_policy_must_pin_something() {
        let mut c = BTreeMap::new();
        assert!(check_conditions(&c).is_err());
        c.insert("sub".into(), "**".into());
        assert!(check_conditions(&c).is_err());
        c.insert("repository_owner".into(), "acme".into());
        assert!(check_conditions(&c).is_ok());
        c.insert("x".into(), String::new());
        assert!(check_conditions(&c).is_err());
    }

    #[test]
    fn issuers_are_https_unless_listed() {
        assert!(check_issuer("https://token.actions.githubusercontent.com", &[]).is_ok());
        assert!(check_issuer("https://gitlab.com", &[]).is_ok());
        assert!(check_issuer("http://127.0.0.1:9000", &[]).is_err());
        assert!(check_issuer("http://127.0.0.1:9000", &["http://127.0.0.1:9000".into()]).is_ok());
        assert!(check_issuer("https://gitlab.com/", &[]).is_err());
        assert!(check_issuer("https://u:p@gitlab.com", &[]).is_err());
        assert!(check_issuer("https://gitlab.com?x=1", &[]).is_err());
        assert!(check_issuer("gitlab.com", &[]).is_err());
        assert_eq!(check_lifetime(900), Ok(900));
        assert!(check_lifetime(3601).is_err());
        assert!(check_lifetime(59).is_err());
    }
}
