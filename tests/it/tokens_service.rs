//! The token rules at the service level, against a real database.

use apitokens::domain::input::{Expiry, TokenDescription, TokenName};
use apitokens::domain::token::{TokenStatus, MAX_ACTIVE_TOKENS_PER_ACCOUNT};
use apitokens::domain::{Role, TokenId, UserId};
use apitokens::error::ServiceError;
use apitokens::repo::Token;
use apitokens::services::tokens::{self, CreateOutcome, DeleteOutcome, ListQuery, NewTokenRequest};
use apitokens::services::Actor;
use time::{Duration, OffsetDateTime};

use crate::helpers::TestApp;

fn request(name: &str, role: Role, expiry: Expiry) -> NewTokenRequest {
    NewTokenRequest {
        name: TokenName::parse(name).unwrap(),
        description: TokenDescription::parse(None).unwrap(),
        role,
        expiry,
        form_id: None,
        parent: None,
        allowed_ips: vec![],
        allowed_routes: vec![],
        rate_limit: None,
        usage_limit: None,
    }
}

async fn actor(app: &TestApp, account: &str, email: &str, role: Role) -> Actor {
    Actor::of_user(&app.add_user(account, email, role).await)
}

async fn create(
    app: &TestApp,
    actor: &Actor,
    req: NewTokenRequest,
    now: OffsetDateTime,
) -> Result<TokenId, ServiceError> {
    let actor = actor.clone();
    app.db(move |c| tokens::create(c, &actor, &req, now))
        .await
        .map(|o| match o {
            CreateOutcome::Created { token, .. } => token.id,
            CreateOutcome::AlreadyCreated { .. } => panic!("no form id was given"),
        })
}

async fn list(app: &TestApp, actor: &Actor, query: ListQuery, now: OffsetDateTime) -> Vec<TokenId> {
    let actor = actor.clone();
    let page = app
        .db(move |c| tokens::list(c, &actor, &query, now))
        .await
        .unwrap();
    page.tokens.iter().map(|t| t.id).collect()
}

#[tokio::test]
async fn user_cannot_issue_a_token_above_own_role_for_every_pair() {
    let app = TestApp::spawn().await;
    let now = app.clock().now();
    for (i, issuer_role) in Role::ALL.into_iter().enumerate() {
        let issuer = actor(&app, "Acme", &format!("u{i}@acme.test"), issuer_role).await;
        for token_role in Role::ALL {
            let result = create(&app, &issuer, request("t", token_role, Expiry::NEVER), now).await;
            match result {
                Ok(_) => assert!(
                    issuer_role.may_issue(token_role),
                    "{issuer_role} issued {token_role}"
                ),
                Err(ServiceError::Invalid(fields)) => {
                    assert!(
                        !issuer_role.may_issue(token_role),
                        "{issuer_role} refused {token_role}"
                    );
                    assert_eq!(
                        fields,
                        vec![("role", format!("Can't create token with role {token_role}"))]
                    );
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}

#[tokio::test]
async fn fifty_active_tokens_at_most_even_under_concurrent_creates() {
    let app = TestApp::spawn().await;
    let now = app.clock().now();
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    for i in 0..48 {
        create(
            &app,
            &admin,
            request(&format!("t{i}"), Role::Users, Expiry::NEVER),
            now,
        )
        .await
        .unwrap();
    }
    // Ten creates at once at 48: exactly two may succeed.
    let mut tasks = vec![];
    for i in 0..10 {
        let state = app.state.clone();
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let req = request(&format!("race{i}"), Role::Users, Expiry::NEVER);
            state.tokens.create_token(admin, req).await
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(ServiceError::Invalid(f)) if f[0].0 == "limit" => refused += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!((created, refused), (2, 8));
    let account = admin.account_id;
    let active = app
        .db(move |c| tokens::active_count(c, account, now))
        .await
        .unwrap();
    assert_eq!(active, MAX_ACTIVE_TOKENS_PER_ACCOUNT);

    // A deleted token frees a place; an expired one does too.
    let err = create(
        &app,
        &admin,
        request("51st", Role::Users, Expiry::NEVER),
        now,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(ref f) if f[0].0 == "limit"));
    let first = list(&app, &admin, ListQuery::default(), now).await[0];
    let a = admin.clone();
    app.db(move |c| tokens::delete(c, &a, first, now))
        .await
        .unwrap();
    create(
        &app,
        &admin,
        request("replacement", Role::Users, Expiry::NEVER),
        now,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn expired_tokens_do_not_count_toward_the_limit() {
    let app = TestApp::spawn().await;
    let now = app.clock().now();
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    let soon = Expiry::at(now + Duration::hours(1), now).unwrap();
    for i in 0..50 {
        create(
            &app,
            &admin,
            request(&format!("t{i}"), Role::Users, soon),
            now,
        )
        .await
        .unwrap();
    }
    assert!(
        create(&app, &admin, request("x", Role::Users, Expiry::NEVER), now)
            .await
            .is_err()
    );
    let later = now + Duration::hours(1);
    create(
        &app,
        &admin,
        request("x", Role::Users, Expiry::NEVER),
        later,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn admin_sees_every_token_of_the_account_others_only_their_own() {
    let app = TestApp::spawn().await;
    let now = app.clock().now();
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    let eng = actor(&app, "Acme", "eng@acme.test", Role::Engineers).await;
    let user = actor(&app, "Acme", "user@acme.test", Role::Users).await;
    let outsider = actor(&app, "Other", "admin@other.test", Role::Administrators).await;
    let a = create(&app, &admin, request("a", Role::Users, Expiry::NEVER), now)
        .await
        .unwrap();
    let e = create(
        &app,
        &eng,
        request("e", Role::Engineers, Expiry::NEVER),
        now,
    )
    .await
    .unwrap();
    let u = create(&app, &user, request("u", Role::Users, Expiry::NEVER), now)
        .await
        .unwrap();
    let o = create(
        &app,
        &outsider,
        request("o", Role::Users, Expiry::NEVER),
        now,
    )
    .await
    .unwrap();

    assert_eq!(
        list(&app, &admin, ListQuery::default(), now).await,
        vec![u, e, a]
    );
    assert_eq!(list(&app, &eng, ListQuery::default(), now).await, vec![e]);
    assert_eq!(list(&app, &user, ListQuery::default(), now).await, vec![u]);
    assert_eq!(
        list(&app, &outsider, ListQuery::default(), now).await,
        vec![o]
    );
    // Asking for someone else's tokens gives nothing, not theirs.
    let q = ListQuery {
        issued_by: Some(admin.user_id),
        ..Default::default()
    };
    assert!(list(&app, &user, q, now).await.is_empty());
    let q = ListQuery {
        issued_by: Some(admin.user_id),
        ..Default::default()
    };
    assert!(list(&app, &outsider, q, now).await.is_empty());

    for (who, id, visible) in [
        (&user, e, false),
        (&user, u, true),
        (&admin, e, true),
        (&outsider, a, false),
        (&eng, e, true),
    ] {
        let who = who.clone();
        let got = app.db(move |c| tokens::get(c, &who, id, now)).await;
        assert_eq!(got.is_ok(), visible, "token {id}");
        if !visible {
            assert!(matches!(got, Err(ServiceError::NotFound)));
        }
    }
}

#[tokio::test]
async fn filters_work_alone_and_combined() {
    let app = TestApp::spawn().await;
    let now = app.clock().now();
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    let eng = actor(&app, "Acme", "eng@acme.test", Role::Engineers).await;
    let soon = Expiry::at(now + Duration::hours(1), now).unwrap();
    let a_users = create(&app, &admin, request("a1", Role::Users, Expiry::NEVER), now)
        .await
        .unwrap();
    let a_eng_exp = create(&app, &admin, request("a2", Role::Engineers, soon), now)
        .await
        .unwrap();
    let e_eng = create(
        &app,
        &eng,
        request("e1", Role::Engineers, Expiry::NEVER),
        now,
    )
    .await
    .unwrap();
    let e_users_del = create(&app, &eng, request("e2", Role::Users, Expiry::NEVER), now)
        .await
        .unwrap();
    let e2 = eng.clone();
    app.db(move |c| tokens::delete(c, &e2, e_users_del, now))
        .await
        .unwrap();
    let later = now + Duration::hours(2);

    let q =
        |issued_by: Option<UserId>, role: Option<Role>, status: Option<TokenStatus>| ListQuery {
            issued_by,
            role,
            status,
            ..Default::default()
        };
    assert_eq!(
        list(&app, &admin, q(None, None, None), later).await,
        vec![e_users_del, e_eng, a_eng_exp, a_users]
    );
    assert_eq!(
        list(&app, &admin, q(Some(eng.user_id), None, None), later).await,
        vec![e_users_del, e_eng]
    );
    assert_eq!(
        list(&app, &admin, q(None, Some(Role::Engineers), None), later).await,
        vec![e_eng, a_eng_exp]
    );
    assert_eq!(
        list(
            &app,
            &admin,
            q(None, None, Some(TokenStatus::Active)),
            later
        )
        .await,
        vec![e_eng, a_users]
    );
    assert_eq!(
        list(
            &app,
            &admin,
            q(None, None, Some(TokenStatus::Expired)),
            later
        )
        .await,
        vec![a_eng_exp]
    );
    assert_eq!(
        list(
            &app,
            &admin,
            q(None, None, Some(TokenStatus::Deleted)),
            later
        )
        .await,
        vec![e_users_del]
    );
    assert_eq!(
        list(
            &app,
            &admin,
            q(
                Some(admin.user_id),
                Some(Role::Engineers),
                Some(TokenStatus::Expired)
            ),
            later
        )
        .await,
        vec![a_eng_exp]
    );
    assert_eq!(
        list(
            &app,
            &admin,
            q(
                Some(eng.user_id),
                Some(Role::Users),
                Some(TokenStatus::Active)
            ),
            later
        )
        .await,
        Vec::<TokenId>::new()
    );
    assert_eq!(
        list(
            &app,
            &admin,
            q(
                Some(eng.user_id),
                Some(Role::Users),
                Some(TokenStatus::Deleted)
            ),
            later
        )
        .await,
        vec![e_users_del]
    );
    // Before it expired, the same token was active.
    assert_eq!(
        list(&app, &admin, q(None, None, Some(TokenStatus::Expired)), now).await,
        Vec::<TokenId>::new()
    );
}

#[tokio::test]
async fn status_turns_expired_exactly_at_the_expiry_instant() {
    let app = TestApp::spawn().await;
    let now = app.clock().now();
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    let at = now + Duration::days(3);
    let id = create(
        &app,
        &admin,
        request("t", Role::Users, Expiry::at(at, now).unwrap()),
        now,
    )
    .await
    .unwrap();
    for (when, expected) in [
        (at - Duration::seconds(1), TokenStatus::Active),
        (at, TokenStatus::Expired),
    ] {
        let a = admin.clone();
        let view = app.db(move |c| tokens::get(c, &a, id, when)).await.unwrap();
        assert_eq!(view.status, expected);
        let q = ListQuery {
            status: Some(expected),
            ..Default::default()
        };
        assert_eq!(
            list(&app, &admin, q, when).await,
            vec![id],
            "SQL filter agrees at {when}"
        );
    }
}

#[tokio::test]
async fn delete_is_soft_and_allowed_to_admins_and_owners_only() {
    let app = TestApp::spawn().await;
    let now = app.clock().now();
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    let eng = actor(&app, "Acme", "eng@acme.test", Role::Engineers).await;
    let other_eng = actor(&app, "Acme", "eng2@acme.test", Role::Engineers).await;
    let outsider = actor(&app, "Other", "admin@other.test", Role::Administrators).await;
    let t = create(&app, &eng, request("t", Role::Users, Expiry::NEVER), now)
        .await
        .unwrap();

    for who in [&other_eng, &outsider] {
        let who = who.clone();
        let result = app.db(move |c| tokens::delete(c, &who, t, now)).await;
        assert!(matches!(result, Err(ServiceError::NotFound)));
    }
    let a = admin.clone();
    let deleted = app
        .db(move |c| tokens::delete(c, &a, t, now))
        .await
        .unwrap();
    assert!(
        matches!(deleted, DeleteOutcome::Deleted(ref v, _) if v.status == TokenStatus::Deleted)
    );
    // The row stays, marked with who deleted it and when.
    let row = app
        .db(move |c| Token::find(c, t.get()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.deleted_by, Some(admin.user_id.get()));
    assert!(row.deleted_at.is_some());
    // A second delete changes nothing and says so.
    let e = eng.clone();
    let again = app
        .db(move |c| tokens::delete(c, &e, t, now))
        .await
        .unwrap();
    assert!(matches!(again, DeleteOutcome::AlreadyDeleted(_)));
    let row2 = app
        .db(move |c| Token::find(c, t.get()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row2.deleted_by, Some(admin.user_id.get()));
    // Its owner can delete their own.
    let mine = create(&app, &eng, request("mine", Role::Users, Expiry::NEVER), now)
        .await
        .unwrap();
    let e = eng.clone();
    assert!(matches!(
        app.db(move |c| tokens::delete(c, &e, mine, now))
            .await
            .unwrap(),
        DeleteOutcome::Deleted(_, _)
    ));
}

#[tokio::test]
async fn the_same_form_id_creates_one_token() {
    let app = TestApp::spawn().await;
    let now = app.clock().now();
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    let mut req = request("once", Role::Users, Expiry::NEVER);
    req.form_id = Some("f".repeat(64));
    let (a, r) = (admin.clone(), req.clone());
    let first = app
        .db(move |c| tokens::create(c, &a, &r, now))
        .await
        .unwrap();
    let (a, r) = (admin.clone(), req.clone());
    let second = app
        .db(move |c| tokens::create(c, &a, &r, now))
        .await
        .unwrap();
    let first_id = match first {
        CreateOutcome::Created { token, .. } => token.id,
        _ => panic!("first create must create"),
    };
    match second {
        CreateOutcome::AlreadyCreated { token } => assert_eq!(token.id, first_id),
        _ => panic!("second create must not create"),
    }
    assert_eq!(
        list(&app, &admin, ListQuery::default(), now).await,
        vec![first_id]
    );
}

/// Last-use times are written in batches (one statement per batch on PostgreSQL, a few on
/// SQLite) from every instance: whatever order two instances' batches land in, each token
/// ends with its latest time, and an older batch never moves a time back.
#[tokio::test]
async fn batched_use_writes_keep_the_latest_time_from_any_instance() {
    use apitokens::repo::{NewToken, TokenForAuth};
    let app = TestApp::spawn().await;
    let admin = app
        .add_user("Acme", "admin@acme.test", Role::Administrators)
        .await;
    let base = apitokens::domain::token::to_naive(app.clock().now());
    // More tokens than one SQLite statement takes (500), past the 50-token limit on purpose:
    // this is about the write, so rows go in directly.
    let (account, issuer) = (admin.account_id, admin.id);
    let ids: Vec<i64> = app
        .db(move |c| {
            (0..1200)
                .map(|i| {
                    let name = format!("t{i}");
                    let hash = format!("{i:064x}");
                    Token::insert(
                        c,
                        &NewToken {
                            account_id: account,
                            issuer_id: issuer,
                            name: &name,
                            description: None,
                            role: Role::Users,
                            secret_hash: &hash,
                            created_at: base,
                            expires_at: None,
                            form_id: None,
                            parent_id: None,
                            allowed_ips: None,
                            allowed_routes: None,
                            rate_limit: None,
                            usage_limit: None,
                        },
                    )
                    .unwrap()
                    .id
                })
                .collect()
        })
        .await;
    let at = |s: i64| base + Duration::seconds(s);
    // Instance A saw every token at i seconds, instance B at 1200 - i: the later one wins.
    let a: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, at(i as i64)))
        .collect();
    let b: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, at(1200 - i as i64)))
        .collect();
    let (ra, rb) = tokio::join!(
        app.db(move |c| TokenForAuth::record_uses(c, &a)),
        app.db(move |c| TokenForAuth::record_uses(c, &b)),
    );
    ra.unwrap();
    rb.unwrap();
    // A late batch with older times changes nothing.
    let old: Vec<_> = ids.iter().map(|id| (*id, at(-5))).collect();
    app.db(move |c| TokenForAuth::record_uses(c, &old))
        .await
        .unwrap();
    let check = ids.clone();
    let stored = app
        .db(move |c| {
            check
                .iter()
                .map(|id| Token::find(c, *id).unwrap().unwrap().last_used_at)
                .collect::<Vec<_>>()
        })
        .await;
    for (i, last) in stored.into_iter().enumerate() {
        let i = i as i64;
        assert_eq!(last, Some(at(i.max(1200 - i))), "token #{i}");
    }
}

async fn create_with_secret(
    app: &TestApp,
    actor: &Actor,
    req: NewTokenRequest,
) -> (i64, apitokens::domain::token::TokenSecret) {
    let actor = actor.clone();
    let now = app.clock().now();
    match app
        .db(move |c| tokens::create(c, &actor, &req, now))
        .await
        .unwrap()
    {
        CreateOutcome::Created { token, secret } => (token.id.get(), secret),
        CreateOutcome::AlreadyCreated { .. } => panic!("no form id was given"),
    }
}

#[tokio::test]
async fn new_tokens_carry_the_checksum_of_their_id() {
    use apitokens::domain::token_format::{checksum_ok, find_tokens};
    let app = TestApp::spawn().await;
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    for _ in 0..3 {
        let (id, secret) =
            create_with_secret(&app, &admin, request("t", Role::Engineers, Expiry::NEVER)).await;
        assert!(checksum_ok(id, secret.expose()));
        assert!(!checksum_ok(id + 1, secret.expose()));
        let wire = apitokens::domain::token::wire_form(
            id,
            apitokens::domain::token::Separator::Dollar,
            &secret,
        );
        assert_eq!(find_tokens(&wire).len(), 1, "the v1 form is recognised too");
        // Only the hash of the final secret is stored.
        let row = app.db(move |c| Token::find(c, id)).await.unwrap().unwrap();
        assert_eq!(row.secret_hash, secret.hash().0);
    }
}

#[tokio::test]
async fn a_token_made_before_the_checksum_still_authenticates() {
    use apitokens::domain::token::{to_naive, wire_form, Separator, TokenSecret};
    use apitokens::domain::token_format::checksum_ok;
    let crate::helpers::Acme { app, admin } = crate::helpers::Acme::start().await;
    let secret = TokenSecret::generate(); // 64 random hex digits, as before this wave
    let hash = secret.hash().0;
    let (account_id, issuer_id) = (admin.account_id, admin.id);
    let now = to_naive(app.clock().now());
    let id = app
        .db(move |c| {
            apitokens::repo::Token::insert(
                c,
                &apitokens::repo::NewToken {
                    account_id,
                    issuer_id,
                    name: "old",
                    description: None,
                    role: Role::Engineers,
                    secret_hash: &hash,
                    created_at: now,
                    expires_at: None,
                    form_id: None,
                    parent_id: None,
                    allowed_ips: None,
                    allowed_routes: None,
                    rate_limit: None,
                    usage_limit: None,
                },
            )
        })
        .await
        .unwrap()
        .id;
    assert!(!checksum_ok(id, secret.expose()), "almost surely");
    let wire = wire_form(id, Separator::Underscore, &secret);
    let check = app
        .api(&format!("APIKey {wire}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(check.status, reqwest::StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_found_token_is_revoked_once_with_what_it_created_and_recorded() {
    use apitokens::domain::token::{wire_form, PresentedToken, Separator};
    use apitokens::services::tokens::{revoke_found, FoundToken};
    let app = TestApp::spawn().await;
    let admin = actor(&app, "Acme", "admin@acme.test", Role::Administrators).await;
    let (id, secret) = create_with_secret(
        &app,
        &admin,
        request("leaky", Role::Engineers, Expiry::NEVER),
    )
    .await;
    let mut child_req = request("child", Role::Engineers, Expiry::NEVER);
    child_req.parent = Some(TokenId::new(id));
    let (child, _) = create_with_secret(&app, &admin, child_req).await;
    let presented = PresentedToken::parse(&wire_form(id, Separator::Underscore, &secret)).unwrap();
    let now = app.clock().now();

    // A wrong secret for a real id: unknown, nothing changes.
    let wrong = PresentedToken::parse(&format!("{id}_{}", "ab".repeat(32))).unwrap();
    let (outcome, ids) = app
        .db(move |c| revoke_found(c, &wrong, "x", now, false))
        .await
        .unwrap();
    assert_eq!((outcome, ids), (FoundToken::Unknown, vec![]));

    // Two at once (a scan and a leak report): one revokes, the other finds it dead.
    let (a, b) = (presented.clone(), presented.clone());
    let (ra, rb) = tokio::join!(
        app.db(move |c| revoke_found(c, &a, "https://example.com/leak.txt", now, false)),
        app.db(move |c| revoke_found(c, &b, "src/main.rs:3", now, false)),
    );
    let mut outcomes = [ra.unwrap(), rb.unwrap()];
    outcomes.sort_by_key(|(o, _)| *o == FoundToken::Revoked);
    assert_eq!(outcomes[0].0, FoundToken::AlreadyDead(TokenStatus::Deleted));
    assert_eq!(outcomes[1].0, FoundToken::Revoked);
    let mut revoked = outcomes[1].1.clone();
    revoked.sort();
    assert_eq!(revoked, vec![id, child], "the token and what it created");
    for t in [id, child] {
        let row = app.db(move |c| Token::find(c, t)).await.unwrap().unwrap();
        assert!(row.deleted_at.is_some());
        assert_eq!(row.deleted_by, None, "no person deleted it");
    }
    let recorded = app.events_of(admin.account_id.get(), "token.revoked").await;
    assert_eq!(recorded.len(), 1, "recorded once");
    assert_eq!(recorded[0].actor_id, None);
    assert!(recorded[0]
        .summary
        .contains(&format!("Token {id} \"leaky\" revoked: found in ")));
}

/// The page and the list walk an account's tokens newest first: from an index on
/// (account_id, id), not backwards along the primary key past every newer token of every
/// other account (what PostgreSQL chose for an old account among a million rows: 190 ms) and
/// not by sorting all of the account's tokens.
#[tokio::test]
async fn an_accounts_newest_tokens_come_from_its_own_index() {
    let app = TestApp::spawn().await;
    let old = app
        .add_user("Old", "old@old.test", Role::Administrators)
        .await;
    let busy = app
        .add_user("Busy", "busy@busy.test", Role::Administrators)
        .await;
    // 60 tokens of the old account, then 3,000 newer ones of another.
    for (user, n) in [(&old, 60), (&busy, 3000)] {
        let (account, issuer) = (user.account_id, user.id);
        app.db(move |conn| {
            use diesel::connection::SimpleConnection;
            let sql = format!(
                "INSERT INTO tokens (account_id, issuer_id, name, role, secret_hash, created_at) \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                 SELECT {account}, {issuer}, 'bulk', 5, 'x', '2026-01-01 00:00:00' FROM n"
            );
            match conn {
                apitokens::db::DbConn::Sqlite(c) => c.batch_execute(&sql).unwrap(),
                apitokens::db::DbConn::Postgres(c) => c.batch_execute(&sql).unwrap(),
            }
        })
        .await;
    }
    let plan = app
        .plan(
            "ANALYZE",
            format!(
                "id FROM tokens WHERE account_id = {} ORDER BY id DESC LIMIT 51",
                old.account_id
            ),
        )
        .await;
    assert!(plan.contains("tokens_account_id"), "{plan}");
    assert!(
        !plan.contains("TEMP B-TREE"),
        "no sort of the whole account: {plan}"
    );
}
