//! Allowed routes (issue 28): lines of `METHOD /path/pattern` a token is limited to. The method
//! is a word (`GET`, `POST`, …) or `*`; in the pattern `*` is one path segment and `**` (last
//! only) the rest. A request's path is normalised before it is matched, and a path that can't be
//! read one way only is matched by nothing, so an encoded or dotted path can't slip past a rule.

use std::fmt;

/// At most this many lines per token, each at most this long.
pub const MAX_RULES: usize = 50;
pub const MAX_RULE_LEN: usize = 512;
/// A request path longer than this is matched by nothing.
const MAX_PATH_LEN: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: the rest (zero or more segments), last only.
    Rest,
}

/// One allowed route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `None`: any method (`*`).
    method: Option<String>,
    segs: Vec<Seg>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method.as_deref().unwrap_or("*"))?;
        f.write_str(" ")?;
        if self.segs.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segs {
            f.write_str("/")?;
            match s {
                Seg::Lit(l) => f.write_str(l)?,
                Seg::One => f.write_str("*")?,
                Seg::Rest => f.write_str("**")?,
            }
        }
        Ok(())
    }
}

impl Route {
    /// Parses `METHOD /pattern`.
    pub fn parse(line: &str) -> Result<Route, String> {
        let line = line.trim();
        if line.len() > MAX_RULE_LEN {
            return Err(format!("longer than {MAX_RULE_LEN} characters"));
        }
        let Some((method, pattern)) = line.split_once(char::is_whitespace) else {
            return Err(
                "write it as METHOD /path, like GET /dns/** or POST /cdn/resources/123/purge"
                    .into(),
            );
        };
        let method = method.trim();
        let method = if method == "*" {
            None
        } else if !method.is_empty()
            && method.len() <= 16
            && method.bytes().all(|b| b.is_ascii_alphabetic())
        {
            Some(method.to_ascii_uppercase())
        } else {
            return Err(format!(
                "{:?} is not a method: use GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or *",
                method.chars().take(20).collect::<String>()
            ));
        };
        let pattern = pattern.trim();
        if !pattern.starts_with('/') {
            return Err("the path must start with /".into());
        }
        let mut segs = vec![];
        let parts: Vec<&str> = pattern[1..].split('/').collect();
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() && i == last && i == 0 {
                break; // "/": the root only
            }
            let seg = match *part {
                "" => return Err("empty path segment (//, or a trailing /)".into()),
                "." | ".." => return Err("no . or .. segments in a pattern".into()),
                "**" if i == last => Seg::Rest,
                "**" => return Err("** may only end a pattern".into()),
                "*" => Seg::One,
                p if p.contains('*') => {
                    return Err(format!(
                        "* stands for a whole segment: {p:?} mixes it with text"
                    ))
                }
                p if p.contains(['%', '?', '#', '\\'])
                    || p.chars().any(|c| c.is_control() || c.is_whitespace()) =>
                {
                    return Err(format!(
                        "{:?} has a character a pattern can't hold (%, ?, #, \\, spaces)",
                        p.chars().take(40).collect::<String>()
                    ))
                }
                p => Seg::Lit(p.to_owned()),
            };
            segs.push(seg);
        }
        Ok(Route { method, segs })
    }

    fn admits(&self, method: &str, path: &[String]) -> bool {
        if self
            .method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(method))
        {
            return false;
        }
        let mut i = 0;
        for seg in &self.segs {
            match seg {
                Seg::Rest => return true,
                Seg::One if i < path.len() => {}
                Seg::Lit(l) if path.get(i) == Some(l) => {}
                _ => return false,
            }
            i += 1;
        }
        i == path.len()
    }

    /// Whether every request this route admits, `wider` admits too.
    fn within(&self, wider: &Route) -> bool {
        if wider.method.is_some() && wider.method != self.method {
            return false;
        }
        for (i, w) in wider.segs.iter().enumerate() {
            match (w, self.segs.get(i)) {
                (Seg::Rest, _) => return true,
                (Seg::One, Some(Seg::Lit(_) | Seg::One)) => {}
                (Seg::Lit(a), Some(Seg::Lit(b))) if a == b => {}
                _ => return false,
            }
        }
        self.segs.len() == wider.segs.len()
    }
}

/// Parses a token's lines, naming the line that is wrong; blank lines are skipped, duplicates
/// dropped.
pub fn parse_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Vec<Route>, String> {
    let mut routes: Vec<Route> = vec![];
    for (n, line) in lines.into_iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let route = Route::parse(line).map_err(|m| {
            format!(
                "Line {} ({:?}): {m}.",
                n + 1,
                line.trim().chars().take(60).collect::<String>()
            )
        })?;
        if !routes.contains(&route) {
            routes.push(route);
        }
    }
    if routes.len() > MAX_RULES {
        return Err(format!("At most {MAX_RULES} routes."));
    }
    Ok(routes)
}

/// As stored (one line each; `None` for no limit).
pub fn to_stored(routes: &[Route]) -> Option<String> {
    (!routes.is_empty()).then(|| {
        routes
            .iter()
            .map(Route::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// From storage; a line that no longer parses is dropped (it matches nothing either way).
pub fn from_stored(stored: Option<&str>) -> Vec<Route> {
    stored
        .map(|s| s.lines().filter_map(|l| Route::parse(l).ok()).collect())
        .unwrap_or_default()
}

/// Whether every route of `child` is within some route of `parent` (an empty `parent`: no
/// limit, so anything is within it; an empty `child` is within only an empty `parent`).
pub fn within(child: &[Route], parent: &[Route]) -> bool {
    if parent.is_empty() {
        return true;
    }
    !child.is_empty() && child.iter().all(|c| parent.iter().any(|p| c.within(p)))
}

/// A request target (`/path?query`) as segments, or `None` when it can't be read one way only:
/// the query and fragment are dropped; `%XX` escapes are decoded once (an escape that decodes
/// to `/`, `\`, `%`, `?`, `#`, a control character or isn't valid UTF-8 makes it unreadable:
/// the backend might read it another way); empty segments (`//`) and `.` are dropped, `..`
/// removes the one before it (above the root: unreadable).
pub fn normalize(target: &str) -> Option<Vec<String>> {
    if target.len() > MAX_PATH_LEN || !target.starts_with('/') || target.contains('\\') {
        return None;
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let mut out: Vec<String> = vec![];
    for raw in path.split('/') {
        let seg = decode(raw)?;
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            _ => out.push(seg),
        }
    }
    Some(out)
}

fn decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return (!raw.chars().any(char::is_control)).then(|| raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            let b = u8::from_str_radix(hex, 16).ok()?;
            if matches!(b, b'/' | b'\\' | b'%' | b'?' | b'#') || b.is_ascii_control() {
                return None;
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.chars().any(char::is_control)).then_some(s)
}

/// Whether `routes` admit `method` on `target` (a request's path and query, as sent).
pub fn admits(routes: &[Route], method: &str, target: &str) -> bool {
    match normalize(target) {
        Some(path) => routes.iter().any(|r| r.admits(method, &path)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(lines: &[&str]) -> Vec<Route> {
        parse_lines(lines.iter().copied()).unwrap()
    }

    #[test]
    fn routes_admit_what_they_say_and_nothing_else() {
        let r = rules(&[
            "POST /cdn/resources/123/purge",
            "GET /dns/**",
            "* /status/*",
        ]);
        let cases = [
            ("POST", "/cdn/resources/123/purge", true),
            ("post", "/cdn/resources/123/purge?x=1", true),
            ("GET", "/cdn/resources/123/purge", false),
            ("POST", "/cdn/resources/124/purge", false),
            ("POST", "/cdn/resources/123/purge/extra", false),
            ("POST", "/cdn/resources/123/../124/purge", false),
            ("POST", "/cdn/resources/124/../123/purge", true),
            ("POST", "/cdn/resources/123/%2e%2e/124/purge", false),
            ("POST", "/cdn/resources/123%2F..%2F124/purge", false),
            ("POST", "/cdn/resources/123/%252e%252e/124/purge", false),
            ("POST", "//cdn//resources/123/./purge", true),
            ("POST", "/cdn/resources/123/purge%00", false),
            ("POST", "/cdn\\resources/123/purge", false),
            ("POST", "/../cdn/resources/123/purge", false),
            ("GET", "/dns", true),
            ("GET", "/dns/zones/example.com/records", true),
            ("GET", "/dnsx/zones", false),
            ("GET", "/dns/../iam/users", false),
            ("GET", "/dns/%2e%2e/iam/users", false),
            ("DELETE", "/status/ok", true),
            ("GET", "/status", false),
            ("GET", "/status/a/b", false),
            ("GET", "/%64ns/zones", true),
        ];
        for (method, path, expected) in cases {
            assert_eq!(admits(&r, method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        for (line, words) in [
            ("/dns", "METHOD /path"),
            ("GET dns", "start with /"),
            ("G3T /dns", "not a method"),
            ("GET /dns/**/x", "** may only end"),
            ("GET /dns/a*", "whole segment"),
            ("GET /dns/../iam", ". or .."),
            ("GET /dns//x", "empty path segment"),
            ("GET /dns/%2e", "can't hold"),
        ] {
            let e = parse_lines([line]).unwrap_err();
            assert!(e.contains("Line 1") && e.contains(words), "{line}: {e}");
        }
        let many: Vec<String> = (0..51).map(|i| format!("GET /r/{i}")).collect();
        assert!(parse_lines(many.iter().map(String::as_str)).is_err());
        let stored = to_stored(&rules(&["get /a/*/b", "* /"])).unwrap();
        assert_eq!(stored, "GET /a/*/b\n* /");
        assert_eq!(from_stored(Some(&stored)), rules(&["GET /a/*/b", "* /"]));
    }

    #[test]
    fn a_child_is_within_its_parent_only_when_narrower() {
        let parent = rules(&["GET /dns/**", "POST /cdn/resources/*/purge"]);
        assert!(within(&rules(&["GET /dns/zones/*"]), &parent));
        assert!(within(&rules(&["POST /cdn/resources/123/purge"]), &parent));
        assert!(!within(&rules(&["* /dns/zones"]), &parent));
        // No list is everything: never within a parent that has one.
        assert!(!within(&[], &parent));
        assert!(!within(&rules(&["POST /cdn/resources/**"]), &parent));
        assert!(!within(&rules(&["GET /iam/users"]), &parent));
        assert!(within(&rules(&["GET /iam/users"]), &[]));
    }

    proptest! {
        // Normalising never widens: a path is admitted exactly when its normal form (written
        // back as a plain path) is, normalising twice changes nothing, and whatever the
        // normal form, it holds no segment a later reading could turn into another path.
        #[test]
        fn normalisation_never_widens_a_match(
            segs in proptest::collection::vec(
                prop_oneof![
                    Just("dns".to_string()), Just("iam".to_string()), Just("..".to_string()),
                    Just(".".to_string()), Just("".to_string()), Just("%2e%2e".to_string()),
                    Just("%2F".to_string()), Just("%252e".to_string()), Just("zones".to_string()),
                    "[a-z0-9%.]{0,4}",
                ],
                0..8,
            ),
            query in "[a-z=&/.]{0,6}",
        ) {
            let target = format!("/{}?{query}", segs.join("/"));
            let r = rules(&["GET /dns/**", "GET /dns/zones/*"]);
            if let Some(path) = normalize(&target) {
                let plain = format!("/{}", path.join("/"));
                prop_assert_eq!(normalize(&plain), Some(path.clone()));
                prop_assert_eq!(admits(&r, "GET", &target), admits(&r, "GET", &plain));
                for s in &path {
                    prop_assert!(s != "." && s != ".." && !s.is_empty() && !s.contains('/'));
                }
                // Admitted means the first segment really is dns.
                if admits(&r, "GET", &target) {
                    prop_assert_eq!(path.first().map(String::as_str), Some("dns"));
                }
            } else {
                prop_assert!(!admits(&r, "GET", &target));
            }
        }
    }
}
