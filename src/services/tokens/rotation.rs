//! Rotation: a new secret for the same token, the old one working through a grace, inside the
//! lineage rules (only the issuer rotates, a token credential only itself, the expiry capped
//! like a new token's); and the sweep's step that forgets old secrets whose grace ended.

use crate::domain::EventKind;
use diesel::Connection;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::read::{load_view, lock_visible};
use super::view::{Rotation, TokenView};
use crate::db::DbConn;
use crate::domain::token::{from_naive, to_naive, TokenSecret, TokenStatus};
use crate::domain::token_format;
use crate::domain::TokenId;
use crate::error::{ServiceError, ServiceResult};
use crate::repo::{Account, Token};
use crate::services::audit;
use crate::services::vocabulary::{Actor, Via};

/// Gives an active token a new secret (same id, name, role, issuer), keeping the old one
/// working for `rotation.grace`. Both are kept only as SHA-256; a secret from an earlier
/// rotation still in its grace is forgotten now. The expiry stays, or becomes a new one; either
/// must satisfy the account's policy. Returns the token and its new secret (shown once).
///
/// Rotation stays inside the lineage rules (`rotation_rules`): only the token's issuer
/// rotates it, a token credential only itself, and the new expiry is capped like a new
/// token's (at the parent's, and at the calling token's own).
///
/// A token rotating itself (`POST /iam/tokens/self/rotate`) passes the secret it presented:
/// only its current secret may rotate; the previous one, still in its grace, is refused
/// (GitLab once revoked the new token in that case, which locks the rightful holder out).
pub fn rotate(
    conn: &mut DbConn,
    actor: &Actor,
    id: TokenId,
    rotation: &Rotation,
    now: OffsetDateTime,
    presented: Option<&TokenSecret>,
) -> ServiceResult<(TokenView, TokenSecret)> {
    let id = id.get();
    let secret = token_format::generate_secret(id);
    conn.transaction(|conn| {
        let token = lock_visible(conn, actor, id)?;
        may_rotate(actor, &token)?;
        // Under the token's lock: of two rotations racing with one secret, the second finds
        // it replaced.
        if presented.is_some_and(|p| !p.hash().matches(&token.secret_hash)) {
            return Err(ServiceError::Conflict(
                "This secret was replaced by a rotation and only works until its grace ends: rotate with the new secret.".into(),
            ));
        }
        if TokenStatus::of(token.deleted_at, token.expires_at, now) != TokenStatus::Active {
            return Err(ServiceError::invalid(
                "token",
                "Only an active token can be rotated: create a new one instead.",
            ));
        }
        let wanted = match &rotation.expiry {
            Some(e) => e.instant(),
            None => token.expires_at.map(from_naive),
        };
        let policy = Account::find(conn, actor.account_id.get())?
            .map(|a| a.token_policy())
            .unwrap_or_default();
        policy
            .check(wanted, now)
            .map_err(|m| ServiceError::invalid("expiry", m))?;
        let parent_expiry = match token.parent_id {
            Some(parent) => Some(
                Token::find(conn, parent)?
                    .map(|p| p.expires_at)
                    // A parent that is gone: the child went with it (`retire`), so this
                    // can't be reached for an active child; refuse rather than uncap.
                    .ok_or(ServiceError::NotFound)?,
            ),
            None => None,
        };
        let caller_expiry = acting_token(actor).map(|_| token.expires_at);
        let expires_at = cap_expiry(wanted.map(to_naive), [parent_expiry, caller_expiry]);
        // The old secret never outlives the token.
        let until = to_naive(now + rotation.grace);
        let until = expires_at.map_or(until, |at| until.min(at));
        let old = (rotation.grace > time::Duration::ZERO && until > to_naive(now))
            .then_some((token.secret_hash.as_str(), until));
        Token::rotate(conn, id, &secret.hash().0, old, expires_at)?;
        let via = audit::via_words(conn, actor)?;
        let grace = match old {
            Some((_, until)) => {
                let until = from_naive(until);
                format!(
                    "the old secret works until {} {:02}:{:02} UTC",
                    until.date(),
                    until.hour(),
                    until.minute()
                )
            }
            None => "the old secret stopped at once".to_owned(),
        };
        audit::record(
            conn,
            actor,
            now,
            EventKind::TokenRotated,
            &format!("Rotated token \"{}\"{via}: {grace}", token.name),
            Some(id),
        )
    })?;
    Ok((load_view(conn, id, now)?, secret))
}

/// The token credential `actor` acts through, if any (not a JWT, not the portal).
pub fn acting_token(actor: &Actor) -> Option<i64> {
    match actor.origin.via {
        Via::Api(token) => token.map(crate::domain::TokenId::get),
        _ => None,
    }
}

/// Who may rotate a token. A rotation hands out a new secret that acts as the token's issuer,
/// so only the issuer may receive one: an Administrator who could rotate a colleague's token
/// would hold a credential that the gateway reports as that colleague (deleting it is how an
/// Administrator ends someone else's token). And a token credential rotates only itself, so a
/// leaked token can't mint a fresh secret for a sibling that deleting the leaked one would
/// leave working.
pub fn may_rotate(actor: &Actor, token: &Token) -> ServiceResult<()> {
    if token.issuer_id != actor.user_id.get() {
        return Err(ServiceError::Forbidden(
            "Only the person who issued a token can rotate it (a new secret acts as them). To end this token, delete it."
                .into(),
        ));
    }
    if let Some(caller) = acting_token(actor) {
        if caller != token.id {
            return Err(ServiceError::Forbidden(
                "A token can rotate only itself. Sign in to the portal, or use a JWT, to rotate your other tokens."
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `wanted` (`None`: never), no later than any of `caps` (`Some(None)`: a cap that never
/// expires, so no cap; `None`: no such cap).
pub fn cap_expiry(
    wanted: Option<PrimitiveDateTime>,
    caps: impl IntoIterator<Item = Option<Option<PrimitiveDateTime>>>,
) -> Option<PrimitiveDateTime> {
    caps.into_iter()
        .flatten()
        .flatten()
        .fold(wanted, |at, cap| Some(at.map_or(cap, |at| at.min(cap))))
}

/// Forgets the old secrets whose grace has ended (a sweep's step), recording each once; at
/// most `limit` per call. Returns how many.
pub fn end_graces(conn: &mut DbConn, now: OffsetDateTime, limit: i64) -> ServiceResult<usize> {
    let mut ended = 0;
    for token in Token::graces_ended(conn, to_naive(now), limit)? {
        conn.transaction(|conn| {
            // Conditional: of two sweeps at once, one forgets it and records it.
            if Token::forget_old_secret(conn, token.id, to_naive(now))? {
                audit::record_system(
                    conn,
                    token.account_id,
                    now,
                    EventKind::TokenGraceEnded,
                    &format!(
                        "The old secret of token \"{}\" stopped working (its grace ended)",
                        token.name
                    ),
                    Some(token.id),
                )?;
                ended += 1;
            }
            Ok::<_, ServiceError>(())
        })?;
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

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
    fn an_expiry_is_capped_by_every_cap_that_expires_and_by_none_that_doesnt() {
        use time::macros::datetime;
        let (soon, later, latest) = (
            datetime!(2026-12-10 23:59:59),
            datetime!(2027-01-10 23:59:59),
            datetime!(2028-01-01 00:00:00),
        );
        assert_eq!(cap_expiry(None, []), None, "nothing caps never");
        assert_eq!(
            cap_expiry(None, [Some(None)]),
            None,
            "a parent that never expires"
        );
        assert_eq!(cap_expiry(None, [Some(Some(later))]), Some(later));
        assert_eq!(cap_expiry(Some(latest), [Some(Some(later))]), Some(later));
        assert_eq!(cap_expiry(Some(soon), [Some(Some(later))]), Some(soon));
        assert_eq!(
            cap_expiry(Some(latest), [Some(Some(later)), None, Some(Some(soon))]),
            Some(soon),
            "the earliest of parent and calling token"
        );
    }

    #[test]
    fn only_the_issuer_rotates_and_a_token_only_itself() {
        let mut t = token(7, 2);
        t.id = 40;
        let issuer = actor(2, 7, Role::Engineers);
        assert!(may_rotate(&issuer, &t).is_ok(), "the issuer, in the portal");
        let admin = actor(1, 7, Role::Administrators);
        assert!(matches!(
            may_rotate(&admin, &t),
            Err(ServiceError::Forbidden(_))
        ));
        let itself = issuer
            .clone()
            .from(Via::Api(Some(crate::domain::TokenId::new(40))), "");
        assert!(may_rotate(&itself, &t).is_ok());
        let sibling = issuer
            .clone()
            .from(Via::Api(Some(crate::domain::TokenId::new(41))), "");
        assert!(matches!(
            may_rotate(&sibling, &t),
            Err(ServiceError::Forbidden(_))
        ));
        let jwt = issuer.from(Via::Api(None), "");
        assert!(may_rotate(&jwt, &t).is_ok(), "the issuer's JWT");
    }
}
