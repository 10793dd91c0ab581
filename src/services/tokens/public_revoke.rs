//! Public credential revocation (`POST /iam/credentials/revoke`, as GitHub's
//! `/credentials/revoke`): anyone who finds a token can kill it, with no sign-in. Each string
//! is checked offline first (the wire format and its CRC-32 checksum): junk costs no database
//! work. What passes is a *candidate*, which costs an indexed read; the checksum isn't secret,
//! so candidates are what is limited, per address and per instance. A live token found is
//! revoked at once (with the tokens it created), whatever the account chose for scanners'
//! reports, its issuer and the Administrators are told (the leak notice and e-mail, naming "a
//! public report"), and it is audited. The caller learns nothing of what was found.

use std::collections::HashSet;

use time::OffsetDateTime;

use super::leaks::revoke_found;
use super::view::FoundToken;
use crate::db::DbConn;
use crate::domain::token::PresentedToken;
use crate::domain::token_format::checksum_ok;
use crate::error::ServiceResult;
use crate::services::runtime::flood_gate::FloodGate;

/// Most credentials one request may carry.
pub const MAX_CREDENTIALS: usize = 1000;
/// Where a revoked token's notice and audit entry say it was found.
pub const WHERE: &str = crate::services::webhooks::outbox::PUBLIC_REPORT;

/// Candidates per address: 100 a second after a burst of one full batch; per instance: 2,000
/// a second after 5,000.
pub fn gate() -> FloodGate {
    FloodGate::new(100, MAX_CREDENTIALS as u32, 2000, 5000)
}

/// The strings that could be live tokens: the wire format with its checksum, each once.
pub fn candidates(credentials: &[String]) -> Vec<PresentedToken> {
    let mut seen = HashSet::new();
    credentials
        .iter()
        .filter(|c| c.len() <= 200)
        .filter_map(|c| PresentedToken::parse(c))
        .filter(|p| checksum_ok(p.id, p.secret.expose()))
        .filter(|p| seen.insert((p.id, p.secret.expose().to_owned())))
        .collect()
}

/// Revokes every live token among `found` (each at once, in its own transaction): the ids
/// revoked (with the tokens they created), and whether anyone is to be alerted.
pub fn revoke_candidates(
    conn: &mut DbConn,
    found: &[PresentedToken],
    now: OffsetDateTime,
) -> ServiceResult<(Vec<i64>, bool)> {
    let mut revoked = vec![];
    let mut alerted = false;
    for presented in found {
        let (outcome, ids) = revoke_found(conn, presented, WHERE, now, true)?;
        alerted |= outcome == FoundToken::Revoked;
        revoked.extend(ids);
    }
    Ok((revoked, alerted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::{wire_form, Separator};
    use crate::domain::token_format::generate_secret;

    #[test]
    fn only_checksummed_tokens_are_candidates_and_each_once() {
        let real = wire_form(42, Separator::Underscore, &generate_secret(42));
        let dollar = real.replace('_', "$");
        let mut flipped = real.clone();
        flipped.replace_range(
            real.len() - 1..,
            if real.ends_with('0') { "1" } else { "0" },
        );
        let found = candidates(&[
            real.clone(),
            real.clone(),
            dollar,
            flipped,
            "42_".to_owned() + &"a".repeat(64),
            "not a token".into(),
            "x".repeat(10_000),
        ]);
        assert_eq!(found.len(), 1, "the same token three ways is one candidate");
        assert_eq!(found[0].id, 42);
    }
}
