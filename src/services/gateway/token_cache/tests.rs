//! The token cache's rules, each a test.

use super::entry::unix_ceil;
use super::*;
use crate::domain::token::TokenHash;
use time::macros::datetime;

fn row(id: i64) -> TokenForAuth {
    TokenForAuth {
        id,
        account_id: 7,
        issuer_id: 3,
        role: crate::domain::Role::Engineers,
        secret_hash: TokenHash::of(&"a".repeat(64)).0,
        expires_at: None,
        deleted_at: None,
        issuer_removed_at: None,
        issuer_role: crate::domain::Role::Administrators,
        old_secret_hash: None,
        old_secret_until: None,
        allowed_ips: None,
        allowed_routes: None,
        rate_limit: None,
        usage_limit: None,
    }
}

#[test]
fn a_row_loaded_before_a_delete_is_never_cached_after_it() {
    let v = TokenVerifier::default();
    let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
    let presented = PresentedToken::parse(&format!("1_{}", "a".repeat(64))).unwrap();
    let fresh = LoadedRow {
        row: Some(row(1)),
        started: Instant::now(),
    };
    assert!(v.remember(&presented, fresh, now).is_ok());
    assert!(matches!(
        v.check_cached(&presented, now),
        Verdict::Known { verdict: Ok(_), .. }
    ));
    // A background reload starts, then the token is deleted here, then the reload lands.
    let stale = LoadedRow {
        row: Some(row(1)),
        started: Instant::now(),
    };
    v.forget(1);
    v.refreshed(1, stale);
    assert!(
        matches!(v.check_cached(&presented, now), Verdict::Unknown),
        "the stale row was dropped"
    );
    // A row read after the delete is cached again (and says it is deleted).
    let mut deleted = row(1);
    deleted.deleted_at = Some(datetime!(2026-11-28 10:00));
    let after = LoadedRow {
        row: Some(deleted),
        started: Instant::now(),
    };
    assert!(v.remember(&presented, after, now).is_err());
    assert!(matches!(
        v.check_cached(&presented, now),
        Verdict::Known {
            verdict: Err(_),
            ..
        }
    ));
}

#[test]
fn a_wrong_secret_or_an_expired_row_is_refused_from_the_cache() {
    let v = TokenVerifier::default();
    let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
    let mut r = row(2);
    r.expires_at = Some(datetime!(2026-11-28 11:00));
    let good = PresentedToken::parse(&format!("2_{}", "a".repeat(64))).unwrap();
    let bad = PresentedToken::parse(&format!("2_{}", "b".repeat(64))).unwrap();
    assert!(v
        .remember(
            &good,
            LoadedRow {
                row: Some(r),
                started: Instant::now()
            },
            now
        )
        .is_ok());
    assert!(matches!(
        v.check_cached(&bad, now),
        Verdict::Known {
            verdict: Err(_),
            ..
        }
    ));
    let later = datetime!(2026-11-28 11:00 UTC).unix_timestamp();
    // A second before the expiry it still passes.
    assert!(matches!(
        v.check_cached(&good, later - 1),
        Verdict::Known { verdict: Ok(_), .. }
    ));
    assert!(matches!(
        v.check_cached(&good, later),
        Verdict::Known {
            verdict: Err(_),
            ..
        }
    ));
}

fn noted_recently(v: &TokenVerifier, presented: &PresentedToken, now: i64) -> bool {
    match v.check_cached(presented, now) {
        Verdict::Known { noted_recently, .. } => noted_recently,
        Verdict::Unknown => panic!("cached"),
    }
}

#[test]
fn a_cached_hit_skips_the_use_lock_for_a_minute_after_a_noted_use() {
    let v = TokenVerifier::default();
    let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
    let good = PresentedToken::parse(&format!("3_{}", "a".repeat(64))).unwrap();
    let bad = PresentedToken::parse(&format!("3_{}", "b".repeat(64))).unwrap();
    let loaded = LoadedRow::from_parts(Some(row(3)), Instant::now());
    assert!(v.remember(&good, loaded, now).is_ok());
    // A refused secret never marks the entry as used.
    assert!(!noted_recently(&v, &bad, now));
    assert!(
        !noted_recently(&v, &good, now),
        "the first use goes to note_use"
    );
    assert!(noted_recently(&v, &good, now + 59));
    assert!(!noted_recently(&v, &good, now + 60));
    assert!(noted_recently(&v, &good, now + 61));
    // A reloaded entry starts over: its first use asks note_use, whose own map still
    // holds the minute, so last_used_at isn't written more often.
    v.refreshed(3, LoadedRow::from_parts(Some(row(3)), Instant::now()));
    assert!(!noted_recently(&v, &good, now + 62));
}

#[test]
fn on_stale_data_a_recent_token_passes_and_a_deleted_or_unknown_one_does_not() {
    let v = TokenVerifier::new(StdDuration::from_secs(60));
    let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
    let token = |id: i64| PresentedToken::parse(&format!("{id}_{}", "a".repeat(64))).unwrap();
    let loaded = |r: TokenForAuth| LoadedRow {
        row: Some(r),
        started: Instant::now(),
    };
    assert!(v.remember(&token(1), loaded(row(1)), now).is_ok());
    let stale = v.stale(&token(1), now).expect("known").expect("passes");
    assert!(stale.stale, "marked as answered from stale data");
    // Its expiry still holds.
    let mut expiring = row(2);
    expiring.expires_at = Some(datetime!(2026-11-28 10:05));
    assert!(v.remember(&token(2), loaded(expiring), now).is_ok());
    assert!(v.stale(&token(2), now).unwrap().is_ok());
    assert!(v
        .stale(&token(2), datetime!(2026-11-28 10:05 UTC).unix_timestamp())
        .unwrap()
        .is_err());
    // A wrong secret for a known id, a token deleted here, a token never seen.
    let wrong = PresentedToken::parse(&format!("1_{}", "b".repeat(64))).unwrap();
    assert!(v.stale(&wrong, now).unwrap().is_err());
    v.forget(1);
    assert!(v.stale(&token(1), now).unwrap().is_err());
    assert!(v.stale(&token(3), now).is_none());
    // With no grace, nothing passes on stale data, but refusals still stand.
    let off = TokenVerifier::new(StdDuration::ZERO);
    assert!(off.remember(&token(4), loaded(row(4)), now).is_ok());
    assert!(off.stale(&token(4), now).is_none());
    assert!(off.stale(&wrong, now).is_none());
}

#[test]
fn an_expiry_within_a_second_holds_until_that_instant_has_passed() {
    let v = TokenVerifier::default();
    let mut r = row(5);
    r.expires_at = Some(datetime!(2026-11-28 10:00:00.5));
    let good = PresentedToken::parse(&format!("5_{}", "a".repeat(64))).unwrap();
    let ten = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
    // 10:00:00 is before 10:00:00.5; 10:00:01 is after it.
    assert!(v
        .remember(&good, LoadedRow::from_parts(Some(r), Instant::now()), ten)
        .is_ok());
    assert!(matches!(
        v.check_cached(&good, ten + 1),
        Verdict::Known {
            verdict: Err(_),
            ..
        }
    ));
    assert_eq!(unix_ceil(datetime!(2026-11-28 10:00)), ten);
    assert_eq!(unix_ceil(datetime!(2026-11-28 10:00:00.000001)), ten + 1);
}

#[test]
fn uses_counted_on_many_threads_add_up_exactly() {
    let v = std::sync::Arc::new(TokenVerifier::default());
    let now = datetime!(2026-11-28 10:00 UTC).unix_timestamp();
    let good = PresentedToken::parse(&format!("6_{}", "a".repeat(64))).unwrap();
    assert!(v
        .remember(
            &good,
            LoadedRow::from_parts(Some(row(6)), Instant::now()),
            now
        )
        .is_ok());
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let (v, good) = (v.clone(), good.clone());
            std::thread::spawn(move || {
                for _ in 0..500 {
                    assert!(matches!(
                        v.check_cached(&good, now),
                        Verdict::Known { verdict: Ok(_), .. }
                    ));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    v.uses.count_use(7);
    // More threads than shards: some share one, and still nothing is lost.
    let mut counts = v.uses.take_counts();
    counts.sort();
    assert_eq!(counts, vec![(6, 1 + 12 * 500), (7, 1)]);
    assert!(v.uses.take_counts().is_empty());
    v.uses.requeue_counts(&[(6, 3)]);
    assert_eq!(v.uses.take_counts(), vec![(6, 3)]);
}
