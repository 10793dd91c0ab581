//! Expiry digests over a real SMTP conversation: one e-mail per person per sweep, in their
//! language, marked automatic, unsubscribable in one click, and DKIM-signed.

use apitokens::domain::Role;
use apitokens::repo::User;
use reqwest::StatusCode;
use time::Duration;

use crate::helpers::{Acme, TestApp};
use crate::smtp::{Received, SmtpServer};

async fn app_with_smtp(smtp: &SmtpServer) -> Acme {
    let url = smtp.url();
    Acme::on(
        TestApp::spawn_with(move |s| {
            s.smtp_url = Some(url);
            s.base_url = "https://tokens.example".into();
            s.mail_from = "apitokens <no-reply@tokens.example>".into();
        })
        .await,
    )
    .await
}

async fn token(app: &TestApp, issuer: &User, name: &str, after: Duration) -> i64 {
    app.expiring_token(issuer, name, after).await.0
}

async fn sweep(app: &TestApp) -> (usize, apitokens::services::notices::delivery::Delivery) {
    app.state.sweep(app.clock().now()).await.expect("sweep")
}

fn header<'a>(m: &'a Received, name: &str) -> Option<&'a str> {
    m.data
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

async fn expiry_email_on(app: &TestApp, id: i64) -> bool {
    app.db(move |c| User::find(c, id).unwrap().unwrap().token_expiry_email)
        .await
}

/// Three tokens expiring the same week: one e-mail, soonest first, with the headers that say
/// "automatic" and "unsubscribable"; the next sweep sends nothing.
#[tokio::test]
async fn three_due_tokens_make_one_email_soonest_first() {
    let smtp = SmtpServer::start();
    let Acme { app, admin } = app_with_smtp(&smtp).await;
    let later = token(&app, &admin, "Later", Duration::days(10)).await;
    let soonest = token(&app, &admin, "Soonest", Duration::days(8)).await;
    let middle = token(&app, &admin, "Middle", Duration::days(9)).await;
    app.clock()
        .advance(Duration::days(3) + Duration::seconds(1));
    let (recorded, d) = sweep(&app).await;
    assert_eq!((recorded, d.sent, d.emails), (3, 3, 1));
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.to, vec![admin.email.clone()]);
    assert_eq!(
        header(m, "Subject"),
        Some("3 API tokens expire within 7 days; the first in 5 days")
    );
    let text = m.text();
    let at = |id: i64| text.find(&format!("(id {id})")).unwrap();
    assert!(at(soonest) < at(middle) && at(middle) < at(later), "{text}");
    assert_eq!(header(m, "Auto-Submitted"), Some("auto-generated"));
    assert_eq!(
        header(m, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let unsubscribe = header(m, "List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with("<https://tokens.example/unsubscribe?t="),
        "{unsubscribe}"
    );
    let id = header(m, "Message-ID").unwrap();
    assert!(
        id.starts_with("<digest-") && id.ends_with("@tokens.example>"),
        "{id}"
    );
    assert_eq!(sweep(&app).await.1, Default::default(), "nothing twice");
    assert_eq!(smtp.received().len(), 1);
}

fn unsubscribe_url(m: &Received) -> String {
    let value = header(m, "List-Unsubscribe").unwrap();
    value
        .trim_matches(['<', '>'])
        .replace("https://tokens.example", "")
}

/// The header's link: GET only shows a button; the one-click POST turns the e-mails off with
/// no session and no CSRF token, once, recorded; a forged or another person's value does
/// nothing.
#[tokio::test]
async fn one_click_unsubscribe_works_without_a_session_and_only_for_its_person() {
    let smtp = SmtpServer::start();
    let Acme { app, admin } = app_with_smtp(&smtp).await;
    let colleague = app.acme_member("colleague", Role::Administrators).await;
    token(&app, &admin, "Deploys", Duration::days(8)).await;
    app.clock()
        .advance(Duration::days(1) + Duration::seconds(1));
    sweep(&app).await;
    let mine = smtp
        .received()
        .into_iter()
        .find(|m| m.to[0] == admin.email)
        .unwrap();
    let path = unsubscribe_url(&mine);
    let anon = reqwest::Client::new();
    let url = format!("{}{path}", app.base);

    // A link scanner's GET changes nothing.
    let page = anon.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Stop expiry e-mails"));
    assert!(expiry_email_on(&app, admin.id).await);

    // Forged values: another person's id with this MAC, a changed MAC, junk, a huge one.
    let (id_part, mac) = path.split_once("t=").unwrap().1.split_once('.').unwrap();
    let mut flipped = mac.to_string();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    for forged in [
        format!("{}.{mac}", colleague.id),
        format!("{id_part}.{flipped}"),
        "nonsense".to_string(),
        "9".repeat(5000),
    ] {
        let r = anon
            .post(format!("{}/unsubscribe?t={forged}", app.base))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "{}",
            &forged[..forged.len().min(40)]
        );
    }
    assert!(expiry_email_on(&app, admin.id).await);
    assert!(expiry_email_on(&app, colleague.id).await);

    // The mail program's one-click POST (RFC 8058): no cookie, no CSRF token; a burst of
    // them (a user clicking twice, a mail system retrying) changes it once.
    let clicks = (0..16).map(|_| {
        anon.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
    });
    for r in futures_util::future::join_all(clicks).await {
        assert_eq!(r.unwrap().status(), StatusCode::OK);
    }
    assert!(!expiry_email_on(&app, admin.id).await);
    assert!(expiry_email_on(&app, colleague.id).await, "only its person");
    assert_eq!(
        app.events_of(admin.account_id, "user.expiry_emails_off")
            .await
            .len(),
        1
    );
    // And the next notice is not e-mailed to them.
    token(&app, &admin, "Backups", Duration::days(8)).await;
    app.clock().advance(Duration::days(1));
    let before = smtp.received().len();
    let (_, d) = sweep(&app).await;
    assert!(d.skipped >= 1);
    assert!(smtp.received()[before..]
        .iter()
        .all(|m| m.to[0] != admin.email));
}

/// A person whose language is German reads German; the subject and the body.
#[tokio::test]
async fn a_german_user_gets_the_email_in_german() {
    let smtp = SmtpServer::start();
    let Acme { app, admin } = app_with_smtp(&smtp).await;
    let id = admin.id;
    app.db(move |c| {
        use apitokens::db::schema::users;
        use diesel::prelude::*;
        diesel::update(users::table.find(id))
            .set(users::lang.eq("de"))
            .execute(c)
            .unwrap();
    })
    .await;
    token(&app, &admin, "Nachtlauf", Duration::days(8)).await;
    token(&app, &admin, "Backups", Duration::days(9)).await;
    app.clock().advance(Duration::days(3));
    sweep(&app).await;
    let m = &smtp.received()[0];
    let mail = m.text();
    assert_eq!(
        header(m, "Subject"),
        Some("2 API-Tokens laufen innerhalb von 7 Tagen ab, das erste in 5 Tagen")
    );
    assert!(
        mail.contains("2 API-Tokens, die Sie ausgestellt haben oder verwalten"),
        "{mail}"
    );
    assert!(mail.contains("Hallo admin,") && mail.contains("Ausgestellt von: admin"));
    assert!(mail.contains("<html lang=\"de\">"));
}

/// A digest that failed goes out again whole, with the same Message-ID, and a notice that
/// became due meanwhile goes in a digest of its own: no notice is ever in two digests.
#[tokio::test]
async fn a_failed_digest_is_resent_whole_never_regrouped() {
    let mut smtp = SmtpServer::start();
    let Acme { app, admin } = app_with_smtp(&smtp).await;
    let first = token(&app, &admin, "First", Duration::days(8)).await;
    app.clock()
        .advance(Duration::days(1) + Duration::seconds(1));
    smtp.stop();
    let (_, d) = sweep(&app).await;
    assert_eq!((d.failed, d.emails), (1, 0));
    let key = app
        .db(move |c| {
            apitokens::repo::notices::Notice::all(c)
                .unwrap()
                .into_iter()
                .find(|n| n.token_id == first)
                .unwrap()
                .digest_key
                .unwrap()
        })
        .await;
    smtp.restart();
    let second = token(&app, &admin, "Second", Duration::days(8)).await;
    // A day later the retry is due, and so is the new token's notice.
    app.clock()
        .advance(Duration::days(1) + Duration::seconds(1));
    let (_, d) = sweep(&app).await;
    assert_eq!((d.sent, d.emails), (2, 2), "{d:?}");
    let mails = smtp.received();
    let resent = mails
        .iter()
        .find(|m| header(m, "Message-ID") == Some(&format!("<{key}@tokens.example>")))
        .expect("the same digest, the same Message-ID");
    assert!(resent.text().contains(&format!("(id {first})")));
    assert!(
        !resent.text().contains(&format!("(id {second})")),
        "not regrouped"
    );
}

/// Every mail is DKIM-signed when a key is set, and the signature verifies with dkimpy (an
/// independent implementation) against the record `apitokens dkim-record` prints; a changed
/// subject doesn't verify.
#[tokio::test]
async fn dkim_signatures_verify_independently() {
    let python = match std::env::var("DKIM_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI must verify DKIM: set DKIM_PYTHON (tests/dkim/run-setup)")
        }
        Err(_) => {
            eprintln!("SKIPPED DKIM verification: DKIM_PYTHON=$(tests/dkim/run-setup) to run it");
            return;
        }
    };
    let keys = tempfile::tempdir().unwrap();
    let key_path = keys.path().join("dkim.pem");
    std::fs::write(&key_path, &crate::helpers::test_jwt_keys().current_pem).unwrap();
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let path = key_path.clone();
    let Acme { app, admin } = Acme::on(
        TestApp::spawn_with(move |s| {
            s.smtp_url = Some(url);
            s.base_url = "https://tokens.example".into();
            s.mail_from = "apitokens <no-reply@tokens.example>".into();
            s.dkim = Some((path, "apitokens".into()));
        })
        .await,
    )
    .await;
    token(&app, &admin, "Signed", Duration::days(8)).await;
    app.clock()
        .advance(Duration::days(1) + Duration::seconds(1));
    sweep(&app).await;
    let m = &smtp.received()[0];
    assert!(header(m, "DKIM-Signature").is_some(), "{}", m.data);

    // The record, as the command line prints it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apitokens"))
        .arg("dkim-record")
        .env("APITOKENS_DATA_DIR", keys.path())
        .env("APITOKENS_DKIM_KEY", &key_path)
        .env("APITOKENS_DKIM_SELECTOR", "apitokens")
        .env("APITOKENS_MAIL_FROM", "apitokens <no-reply@tokens.example>")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let prefix = "apitokens._domainkey.tokens.example. IN TXT \"";
    assert!(line.starts_with(prefix), "{line}");
    let record = line
        .trim()
        .strip_prefix(prefix)
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    assert!(record.starts_with("v=DKIM1; k=rsa; p="));

    let verify = |raw: &str| {
        let file = keys.path().join("message.eml");
        std::fs::write(&file, raw).unwrap();
        std::process::Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dkim/verify.py"))
            .arg(&file)
            .arg(&record)
            .output()
            .unwrap()
    };
    let ok = verify(&m.data);
    let said = String::from_utf8_lossy(&ok.stdout).to_lowercase();
    assert!(
        ok.status.success(),
        "{}{}",
        said,
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(said.contains("d=tokens.example s=apitokens"), "{said}");
    // The signed headers (the h= tag, possibly folded over lines).
    let signature = m
        .data
        .split("DKIM-Signature:")
        .nth(1)
        .unwrap()
        .split("\r\n\r\n")
        .next()
        .unwrap();
    let unfolded: String = signature.split_whitespace().collect();
    let h = unfolded
        .split(';')
        .find_map(|t| t.strip_prefix("h="))
        .unwrap()
        .to_lowercase();
    for name in ["from", "to", "subject", "date", "message-id"] {
        assert!(h.split(':').any(|x| x == name), "{name} is signed: h={h}");
    }
    let tampered = m.data.replacen("Subject: ", "Subject: Re: ", 1);
    assert!(
        !verify(&tampered).status.success(),
        "a changed subject fails"
    );
}

/// Administrators see, under Profile → Notifications, exactly what the next sweep sends them.
#[tokio::test]
async fn the_preview_shows_what_the_next_sweep_sends() {
    let smtp = SmtpServer::start();
    let Acme { app, admin } = app_with_smtp(&smtp).await;
    let eng = app.acme_member("eng", Role::Engineers).await;
    token(&app, &eng, "Deploys", Duration::days(8)).await;
    token(&app, &admin, "Backups", Duration::days(9)).await;
    app.clock().advance(Duration::days(3));
    let browser = app.signed_in(&admin.email).await;
    let page = browser.get("/profile/notifications").await;
    let subject = page.text_of("preview-subject").expect("a preview");
    assert_eq!(
        subject,
        "2 API tokens expire within 7 days; the first in 5 days"
    );
    assert!(page.text_of("preview-text").unwrap().contains("Deploys"));
    // Nothing was recorded or sent by looking.
    assert_eq!(smtp.received().len(), 0);
    sweep(&app).await;
    let sent = smtp
        .received()
        .into_iter()
        .find(|m| m.to[0] == admin.email)
        .unwrap();
    assert_eq!(header(&sent, "Subject"), Some(subject.as_str()));
    // Afterwards nothing is due; an Engineer has no preview.
    let page = browser.get("/profile/notifications").await;
    assert!(page.has("#preview-empty"));
    let eng_page = app
        .signed_in(&eng.email)
        .await
        .get("/profile/notifications")
        .await;
    assert!(!eng_page.has("#digest-preview"));
}

/// A sweep goes on past its first batch of recipients until nothing is ready: 260 people
/// with a due token each get their digest in one sweep, each exactly once, over one SMTP
/// connection pool.
#[tokio::test]
async fn one_sweep_sends_every_due_digest_past_a_batch() {
    use apitokens::domain::AuthType;
    use apitokens::repo::{NewToken, NewUser, Token};
    let smtp = SmtpServer::start();
    let Acme { app, admin } = app_with_smtp(&smtp).await;
    let base = apitokens::domain::token::to_naive(app.clock().now());
    let account = admin.account_id;
    let people = 260;
    app.db(move |c| {
        for i in 0..people {
            let email = format!("eng{i}@acme.test");
            let user = apitokens::repo::User::insert(
                c,
                &NewUser {
                    account_id: account,
                    email: &email,
                    name: "",
                    password_hash: None,
                    role: Role::Engineers,
                    auth_type: AuthType::Password,
                    created_at: base,
                },
            )
            .unwrap();
            let hash = format!("{i:064x}");
            Token::insert(
                c,
                &NewToken {
                    account_id: account,
                    issuer_id: user.id,
                    name: "nightly",
                    description: None,
                    role: Role::Users,
                    secret_hash: &hash,
                    created_at: base,
                    expires_at: Some(base + Duration::days(8)),
                    form_id: None,
                    parent_id: None,
                    allowed_ips: None,
                    allowed_routes: None,
                    rate_limit: None,
                    usage_limit: None,
                },
            )
            .unwrap();
        }
    })
    .await;
    app.clock()
        .advance(Duration::days(1) + Duration::seconds(1));
    let (recorded, d) = sweep(&app).await;
    // Each token: its issuer and the one Administrator.
    assert_eq!((recorded, d.sent), (2 * people, 2 * people));
    assert_eq!(d.emails, people + 1, "one digest per person");
    let mails = smtp.received();
    let mut to: Vec<_> = mails.iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), mails.len(), "nobody twice");
    assert_eq!(mails.len(), people + 1);
    let admins = mails.iter().find(|m| m.to[0] == admin.email).unwrap();
    assert!(admins
        .text()
        .contains(&format!("{people} API tokens expire within 7 days")));
}
