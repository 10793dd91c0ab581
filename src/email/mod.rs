//! Outgoing mail: SMTP when `APITOKENS_SMTP_URL` is set, otherwise `.eml` files in
//! `<data dir>/outbox/` so a first run works offline. Messages are multipart text + HTML
//! from askama templates, and never contain a token's secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use askama::Template;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MessageBuilder, MultiPart, SinglePart};
use lettre::transport::smtp::SmtpTransport;
use lettre::{FileTransport, Message, Transport as _};

use time::OffsetDateTime;

use crate::domain::{NoticeKind, Role};

pub mod i18n;
use i18n::Words;

pub struct Mailer {
    transport: Route,
    /// Signs every message when a DKIM key is configured.
    dkim: Option<DkimConfig>,
}

enum Route {
    Smtp(Box<SmtpTransport>),
    Files(PathBuf),
}

impl Mailer {
    /// `smtp://host:port` (plain; add `?tls=required` for STARTTLS), `smtps://user:pass@host`;
    /// `None` writes files under `<data_dir>/outbox/`.
    pub fn new(smtp_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Mailer> {
        let transport = match smtp_url {
            Some(url) => {
                let transport = SmtpTransport::from_url(url)
                    .context("APITOKENS_SMTP_URL is not a valid smtp:// or smtps:// URL")?
                    .timeout(Some(Duration::from_secs(15)))
                    .build();
                Route::Smtp(Box::new(transport))
            }
            None => {
                let dir = data_dir.join("outbox");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("can't create the mail outbox {}", dir.display()))?;
                crate::config::set_mode(&dir, 0o700).with_context(|| {
                    format!("can't make the mail outbox {} private", dir.display())
                })?;
                Route::Files(dir)
            }
        };
        Ok(Mailer {
            transport,
            dkim: None,
        })
    }

    /// Signs every message from now on.
    pub fn with_dkim(mut self, dkim: Option<DkimConfig>) -> Mailer {
        self.dkim = dkim;
        self
    }

    /// Sends one message; the error is a line for the outbox row and the log.
    pub fn send(&self, message: &Message) -> Result<(), String> {
        let signed;
        let message = match &self.dkim {
            Some(config) => {
                let mut copy = message.clone();
                copy.sign(config);
                signed = copy;
                &signed
            }
            None => message,
        };
        match &self.transport {
            Route::Smtp(smtp) => smtp
                .send(message)
                .map(drop)
                .map_err(|e| format!("SMTP: {e}")),
            Route::Files(dir) => {
                let id = FileTransport::new(dir)
                    .send(message)
                    .map_err(|e| format!("file outbox: {e}"))?;
                // A set-password link travels in these: private like the rest.
                crate::config::set_mode(&dir.join(format!("{id}.eml")), 0o600)
                    .map_err(|e| format!("file outbox: {e}"))
            }
        }
    }
}

/// A DKIM private key as PEM: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
pub enum DkimKey {
    Rsa(rsa::RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl DkimKey {
    pub fn from_pem(pem: &str) -> anyhow::Result<DkimKey> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        if let Ok(key) = rsa::RsaPrivateKey::from_pkcs1_pem(pem) {
            return Ok(DkimKey::Rsa(key));
        }
        if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(DkimKey::Rsa(key));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(DkimKey::Ed25519(key));
        }
        anyhow::bail!("not an RSA or Ed25519 private key in PEM (e.g. `openssl genrsa 2048`, `openssl genpkey -algorithm ed25519`)")
    }

    /// Signs with From, To, Subject, Date and Message-ID, relaxed canonicalisation.
    pub fn config(&self, selector: &str, domain: &str) -> anyhow::Result<DkimConfig> {
        use base64::Engine as _;
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let key = match self {
            DkimKey::Rsa(key) => DkimSigningKey::new(
                &key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)?,
                DkimSigningAlgorithm::Rsa,
            ),
            DkimKey::Ed25519(key) => DkimSigningKey::new(
                &base64::engine::general_purpose::STANDARD.encode(key.to_bytes()),
                DkimSigningAlgorithm::Ed25519,
            ),
        }
        .map_err(|e| anyhow::anyhow!("the DKIM key can't sign: {e}"))?;
        let headers = ["From", "To", "Subject", "Date", "Message-ID"]
            .into_iter()
            .map(HeaderName::new_from_ascii_str)
            .collect();
        Ok(DkimConfig::new(
            selector.to_owned(),
            domain.to_owned(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        ))
    }

    /// The TXT record to publish at `<selector>._domainkey.<domain>`.
    pub fn dns_record(&self) -> anyhow::Result<String> {
        use base64::Engine as _;
        use rsa::pkcs8::EncodePublicKey as _;
        let (k, p) = match self {
            DkimKey::Rsa(key) => (
                "rsa",
                base64::engine::general_purpose::STANDARD
                    .encode(key.to_public_key().to_public_key_der()?.as_bytes()),
            ),
            DkimKey::Ed25519(key) => (
                "ed25519",
                base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes()),
            ),
        };
        Ok(format!("v=DKIM1; k={k}; p={p}"))
    }
}

/// The domain of the sender's address (`apitokens <no-reply@acme.example>` → `acme.example`).
pub fn sender_domain(from: &str) -> anyhow::Result<String> {
    let mailbox: Mailbox = from
        .parse()
        .map_err(|e| anyhow::anyhow!("APITOKENS_MAIL_FROM: {e}"))?;
    Ok(mailbox.email.domain().to_owned())
}

#[derive(Template)]
#[template(path = "email/digest.txt")]
struct DigestText<'a> {
    p: &'a DigestParts,
}

#[derive(Template)]
#[template(path = "email/digest.html")]
struct DigestHtml<'a> {
    p: &'a DigestParts,
}

/// Who an e-mail goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub name: String,
    pub email: String,
}

/// One token of an expiry digest.
#[derive(Debug, Clone)]
pub struct DigestItem {
    pub token_id: i64,
    pub token_name: String,
    pub role: Role,
    pub issuer_name: String,
    pub expires_at: Option<OffsetDateTime>,
    pub kind: NoticeKind,
}

/// The facts of one expiry e-mail: every token due for one person in one sweep.
#[derive(Debug, Clone)]
pub struct DigestMail {
    pub recipient: Recipient,
    /// The recipient's language (`en`, `de`, `ru`, ...; English where we have no words).
    pub lang: String,
    pub items: Vec<DigestItem>,
    /// The one-click link that turns this person's expiry e-mails off.
    pub unsubscribe_link: String,
    /// When it is written ("expires in 5 days" counts from here).
    pub now: OffsetDateTime,
}

/// The facts of an invitation e-mail.
#[derive(Debug, Clone)]
pub struct InvitationMail {
    pub recipient: Recipient,
    pub account: String,
    pub inviter: String,
    /// The one-time set-password link (a credential: it goes nowhere else but this mail).
    pub link: String,
}

struct ItemParts {
    name: String,
    id: i64,
    role: &'static str,
    issuer: String,
    expires: String,
    link: String,
}

/// What an expiry digest says, in the recipient's language, formatted for the templates.
struct DigestParts {
    lang: &'static str,
    single: bool,
    greeting: String,
    intro: String,
    items: Vec<ItemParts>,
    label_token: String,
    label_role: String,
    label_issuer: String,
    label_expires: String,
    label_open: String,
    consequence: String,
    step_create: String,
    step_update: String,
    step_delete: String,
    create_link: String,
    why: String,
    turn_off: String,
    settings_link: String,
    unsubscribe: String,
    unsubscribe_link: String,
}

/// What an e-mail says, before it is wrapped into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `2026-12-31 23:59:59 UTC`: the same unambiguous form in every language.
fn instant(at: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.format(&f).unwrap_or_default()
}

/// "in 5 days", "tomorrow": whole days from `now` to `at`, rounded up.
fn when(words: &Words, at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let seconds = at.map_or(0, |at| (at - now).whole_seconds().max(0));
    let days = (seconds + 86_399) / 86_400;
    words.get("when-days", &[("days", days.into())])
}

/// Subject, text and HTML of an expiry digest: its tokens soonest first; one token alone
/// reads as a mail about that token.
pub fn render_digest(mail: &DigestMail, base_url: &str) -> Result<Rendered, String> {
    let words = Words::of(&mail.lang);
    let mut items = mail.items.clone();
    items.sort_by_key(|i| (i.expires_at, i.token_id));
    let first = items.first().ok_or("a digest without tokens")?;
    let single = items.len() == 1;
    let count = items.len() as i64;
    let first_when = when(&words, first.expires_at, mail.now);
    let name = first.token_name.as_str();
    let (subject, intro) = if single {
        let args = [("name", name.into()), ("when", first_when.as_str().into())];
        (
            words.get("subject-one", &args),
            words.get("intro-one", &args),
        )
    } else {
        let args = [
            ("count", count.into()),
            ("first", first_when.as_str().into()),
        ];
        (
            words.get("subject-many", &args),
            words.get("intro-many", &args),
        )
    };
    let pick = |one: &str, many: &str| {
        if single {
            one.to_owned()
        } else {
            many.to_owned()
        }
    };
    let parts = DigestParts {
        lang: words.lang(),
        single,
        greeting: words.get("greeting", &[("name", mail.recipient.name.as_str().into())]),
        intro,
        items: items
            .iter()
            .map(|i| ItemParts {
                name: i.token_name.clone(),
                id: i.token_id,
                role: i.role.name(),
                issuer: i.issuer_name.clone(),
                expires: i.expires_at.map(instant).unwrap_or_default(),
                link: format!("{base_url}/profile/api-tokens/{}", i.token_id),
            })
            .collect(),
        label_token: words.text("label-token"),
        label_role: words.text("label-role"),
        label_issuer: words.text("label-issuer"),
        label_expires: words.text("label-expires"),
        label_open: words.text("label-open"),
        consequence: words.text(&pick("consequence-one", "consequence-many")),
        step_create: words.text("step-create"),
        step_update: words.get(
            &pick("step-update-one", "step-update-many"),
            &[("name", name.into())],
        ),
        step_delete: words.text(&pick("step-delete-one", "step-delete-many")),
        create_link: format!("{base_url}/profile/api-tokens/new"),
        why: words.text(&pick("why-one", "why-many")),
        turn_off: words.text("turn-off"),
        settings_link: format!("{base_url}/profile/notifications"),
        unsubscribe: words.text("unsubscribe"),
        unsubscribe_link: mail.unsubscribe_link.clone(),
    };
    let text = DigestText { p: &parts }
        .render()
        .map_err(|e| e.to_string())?;
    let html = DigestHtml { p: &parts }
        .render()
        .map_err(|e| e.to_string())?;
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

/// A leak alert: one token, where it was found, and that it was revoked.
#[derive(Debug, Clone)]
pub struct LeakMail {
    pub recipient: Recipient,
    pub lang: String,
    pub token_id: i64,
    pub token_name: String,
    pub found: String,
    /// False when the account only wants to be told: the token still works.
    pub revoked: bool,
    /// Not a leak: the token's issuer was deprovisioned through SCIM and the token deleted
    /// with them (`found` says who); the alert goes to the Administrators.
    pub deprovisioned: bool,
}

struct LeakParts {
    lang: &'static str,
    greeting: String,
    intro: String,
    label_token: String,
    label_found: String,
    name: String,
    id: i64,
    found: String,
    advice: String,
    step_create: String,
    create_link: String,
    why: String,
}

#[derive(Template)]
#[template(path = "email/leak.txt", escape = "none")]
struct LeakText<'a> {
    p: &'a LeakParts,
}

#[derive(Template)]
#[template(path = "email/leak.html")]
struct LeakHtml<'a> {
    p: &'a LeakParts,
}

pub fn render_leak(mail: &LeakMail, base_url: &str) -> Result<Rendered, String> {
    let words = Words::of(&mail.lang);
    let name = [("name", mail.token_name.as_str().into())];
    let key = |leaked: &'static str, kept: &'static str, deprov: &'static str| {
        if mail.deprovisioned {
            deprov
        } else if mail.revoked {
            leaked
        } else {
            kept
        }
    };
    let parts = LeakParts {
        lang: words.lang(),
        greeting: words.get("greeting", &[("name", mail.recipient.name.as_str().into())]),
        intro: words.get(key("leak-intro", "leak-intro-kept", "deprov-intro"), &name),
        label_token: words.text("label-token"),
        label_found: words.text(key("label-found", "label-found", "deprov-label")),
        name: mail.token_name.clone(),
        id: mail.token_id,
        found: mail.found.clone(),
        advice: words.text(key("leak-advice", "leak-advice-kept", "deprov-advice")),
        step_create: words.text("step-create"),
        create_link: format!("{base_url}/profile/api-tokens/new"),
        why: words.text(key("leak-why", "leak-why", "deprov-why")),
    };
    Ok(Rendered {
        subject: words.get(
            key("leak-subject", "leak-subject-kept", "deprov-subject"),
            &name,
        ),
        text: LeakText { p: &parts }.render().map_err(|e| e.to_string())?,
        html: LeakHtml { p: &parts }.render().map_err(|e| e.to_string())?,
    })
}

/// A leak alert as a message: automatic, its `Message-ID` made from the alert's key (a retry
/// is the same message), and no unsubscribe (security alerts can't be turned off).
pub fn leak_message(
    from: &str,
    mail: &LeakMail,
    base_url: &str,
    key: &str,
) -> Result<Message, String> {
    let r = render_leak(mail, base_url)?;
    let builder = headers(from, &mail.recipient, &r.subject)?
        .message_id(Some(format!("<{key}@{}>", domain_of(base_url))))
        .header(AutoSubmitted);
    body(builder, r.text, r.html)
}

/// The expiry digest as a message: automatic (`Auto-Submitted`), unsubscribable in one click
/// (RFC 8058), and its `Message-ID` made from the digest's key, so a retry is the same message.
pub fn digest_message(
    from: &str,
    mail: &DigestMail,
    base_url: &str,
    digest_key: &str,
) -> Result<Message, String> {
    let r = render_digest(mail, base_url)?;
    let mut builder = headers(from, &mail.recipient, &r.subject)?
        .message_id(Some(format!("<{digest_key}@{}>", domain_of(base_url))))
        .header(AutoSubmitted)
        .header(ListUnsubscribePost);
    builder = builder.header(ListUnsubscribe(format!("<{}>", mail.unsubscribe_link)));
    body(builder, r.text, r.html)
}

/// The host of the base URL (`https://tokens.acme.example:8443/x` → `tokens.acme.example`).
pub fn domain_of(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    }
}

macro_rules! text_header {
    ($type:ident, $name:literal) => {
        impl Header for $type {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }
            fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Err("not parsed".into())
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.value())
            }
        }
    };
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no auto-replies, please.
#[derive(Clone)]
struct AutoSubmitted;
impl AutoSubmitted {
    fn value(&self) -> String {
        "auto-generated".into()
    }
}
text_header!(AutoSubmitted, "Auto-Submitted");

/// `List-Unsubscribe: <https://...>` (RFC 2369).
#[derive(Clone)]
struct ListUnsubscribe(String);
impl ListUnsubscribe {
    fn value(&self) -> String {
        self.0.clone()
    }
}
text_header!(ListUnsubscribe, "List-Unsubscribe");

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Clone)]
struct ListUnsubscribePost;
impl ListUnsubscribePost {
    fn value(&self) -> String {
        "List-Unsubscribe=One-Click".into()
    }
}
text_header!(ListUnsubscribePost, "List-Unsubscribe-Post");

#[derive(Template)]
#[template(path = "email/invite.txt")]
struct InviteText<'a> {
    name: &'a str,
    inviter: &'a str,
    account: &'a str,
    link: &'a str,
    login: &'a str,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "email/invite.html")]
struct InviteHtml<'a> {
    name: &'a str,
    inviter: &'a str,
    account: &'a str,
    link: &'a str,
    login: &'a str,
    email: &'a str,
}

/// The invitation of a new user, with their one-time set-password link.
pub fn invitation_message(
    from: &str,
    mail: &InvitationMail,
    base_url: &str,
) -> Result<Message, String> {
    let r = render_invitation(mail, base_url)?;
    multipart(from, &mail.recipient, &r.subject, base_url, r.text, r.html)
}

/// Subject, text and HTML of an invitation.
pub fn render_invitation(mail: &InvitationMail, base_url: &str) -> Result<Rendered, String> {
    let login = format!("{base_url}/login");
    let to = &mail.recipient;
    let text = InviteText {
        name: &to.name,
        inviter: &mail.inviter,
        account: &mail.account,
        link: &mail.link,
        login: &login,
        email: &to.email,
    }
    .render()
    .map_err(|e| e.to_string())?;
    let html = InviteHtml {
        name: &to.name,
        inviter: &mail.inviter,
        account: &mail.account,
        link: &mail.link,
        login: &login,
        email: &to.email,
    }
    .render()
    .map_err(|e| e.to_string())?;
    Ok(Rendered {
        subject: format!("You were added to {} on apitokens", mail.account),
        text,
        html,
    })
}

/// From, To, Subject and Date of a message to `to`.
fn headers(from: &str, to: &Recipient, subject: &str) -> Result<MessageBuilder, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("APITOKENS_MAIL_FROM: {e}"))?;
    let to = Mailbox::new(
        Some(to.name.clone()),
        to.email.parse().map_err(|e| format!("recipient: {e}"))?,
    );
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .date_now())
}

/// The text and HTML alternatives.
fn body(builder: MessageBuilder, text: String, html: String) -> Result<Message, String> {
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| e.to_string())
}

/// A multipart (text + HTML) message to `to`, with Date and a Message-ID on the base URL's
/// domain.
fn multipart(
    from: &str,
    to: &Recipient,
    subject: &str,
    base_url: &str,
    text: String,
    html: String,
) -> Result<Message, String> {
    let id = crate::domain::Secret::generate().expose()[..24].to_owned();
    let builder = headers(from, to, subject)?
        .message_id(Some(format!("<{id}@{}>", domain_of(base_url))))
        .header(AutoSubmitted);
    body(builder, text, html)
}

#[cfg(test)]
mod tests {
    //! Every e-mail's wording is a snapshot: a change of text or markup is a reviewed diff
    //! (`cargo insta review`), and each snapshot is checked for what must never be in a mail.

    use super::*;
    use time::macros::datetime;

    const BASE: &str = "https://tokens.acme.example";

    #[test]
    fn a_leak_alert_says_where_in_the_readers_language_and_escapes_it() {
        let mail = |lang: &str| LeakMail {
            recipient: recipient(),
            lang: lang.into(),
            token_id: 42,
            token_name: "CI <deploys>".into(),
            found: "https://example.com/?a=<b>&c".into(),
            revoked: true,
            deprovisioned: false,
        };
        let en = render_leak(&mail("en"), "https://tokens.example").unwrap();
        assert_eq!(
            en.subject,
            "Security alert: API token \"CI <deploys>\" was found in public and revoked"
        );
        assert!(
            en.text.contains("Found at: https://example.com/?a=<b>&c"),
            "{}",
            en.text
        );
        assert!(
            en.html.contains("https://example.com/?a=&#60;b&#62;&#38;c"),
            "{}",
            en.html
        );
        assert!(!en.html.contains("<deploys>"));
        let de = render_leak(&mail("de"), "https://tokens.example").unwrap();
        assert!(
            de.subject.starts_with("Sicherheitswarnung"),
            "{}",
            de.subject
        );
        let message = leak_message(
            "apitokens <a@tokens.example>",
            &mail("ru"),
            "https://tokens.example",
            "leak-7",
        )
        .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("Message-ID: <leak-7@tokens.example>"), "{raw}");
        assert!(raw.contains("Auto-Submitted: auto-generated"));
        assert!(!raw.contains("List-Unsubscribe"));
    }

    fn recipient() -> Recipient {
        Recipient {
            name: "Alice <Admin> & Co".into(),
            email: "alice@acme.example".into(),
        }
    }

    fn item(id: i64, name: &str, days: i64, kind: NoticeKind) -> DigestItem {
        DigestItem {
            token_id: id,
            token_name: name.into(),
            role: Role::Engineers,
            issuer_name: "Bob".into(),
            expires_at: Some(datetime!(2026-12-24 12:00:00 UTC) + time::Duration::days(days)),
            kind,
        }
    }

    fn digest(lang: &str, items: Vec<DigestItem>) -> DigestMail {
        DigestMail {
            recipient: recipient(),
            lang: lang.into(),
            items,
            unsubscribe_link: format!("{BASE}/unsubscribe?t=7.0123456789abcdef"),
            now: datetime!(2026-12-24 12:00:00 UTC),
        }
    }

    fn snapshot(name: &str, r: &Rendered) {
        insta::assert_snapshot!(format!("{name}.subject"), r.subject);
        insta::assert_snapshot!(format!("{name}.txt"), r.text);
        insta::assert_snapshot!(format!("{name}.html"), r.html);
    }

    fn three() -> Vec<DigestItem> {
        vec![
            item(43, "Nightly backup", 6, NoticeKind::SevenDays),
            item(42, "CI <deploys> & \"prod\"", 1, NoticeKind::OneDay),
            item(44, "Metrics scraper", 3, NoticeKind::SevenDays),
        ]
    }

    #[test]
    fn one_token_alone_reads_as_a_mail_about_it() {
        let r = render_digest(
            &digest(
                "en",
                vec![item(
                    42,
                    "CI <deploys> & \"prod\"",
                    7,
                    NoticeKind::SevenDays,
                )],
            ),
            BASE,
        )
        .unwrap();
        assert_eq!(
            r.subject,
            "API token \"CI <deploys> & \"prod\"\" expires in 7 days"
        );
        let soon = render_digest(
            &digest("en", vec![item(42, "x", 1, NoticeKind::OneDay)]),
            BASE,
        )
        .unwrap();
        assert_eq!(soon.subject, "API token \"x\" expires in 1 day");
        assert!(r.html.contains("CI &#60;deploys&#62;") || r.html.contains("CI &lt;deploys&gt;"));
        assert!(!r.html.contains("<deploys>"), "names are escaped in HTML");
        snapshot("digest_one_en", &r);
    }

    #[test]
    fn a_digest_lists_its_tokens_soonest_first_in_each_language() {
        for lang in ["en", "de", "ru"] {
            let r = render_digest(&digest(lang, three()), BASE).unwrap();
            let at = |needle: &str| {
                r.text
                    .find(needle)
                    .unwrap_or_else(|| panic!("{lang}: {needle}"))
            };
            assert!(
                at("id 42") < at("id 44") && at("id 44") < at("id 43"),
                "{lang}: soonest first"
            );
            assert!(
                r.text.contains("2026-12-25 12:00:00 UTC"),
                "{lang}: dates are unambiguous"
            );
            assert!(r.text.contains("/unsubscribe?t=") && r.html.contains("/unsubscribe?t="));
            snapshot(&format!("digest_three_{lang}"), &r);
        }
        let de = render_digest(&digest("de", three()), BASE).unwrap();
        assert_eq!(
            de.subject,
            "3 API-Tokens laufen innerhalb von 7 Tagen ab, das erste morgen"
        );
        let en = render_digest(&digest("en", three()), BASE).unwrap();
        assert_eq!(
            en.subject,
            "3 API tokens expire within 7 days; the first in 1 day"
        );
        let ru = render_digest(&digest("ru", three()), BASE).unwrap();
        assert!(
            ru.subject.starts_with("3 API-токена истекают"),
            "{}",
            ru.subject
        );
        // A language we have no words for gets English.
        let zh = render_digest(&digest("zh", three()), BASE).unwrap();
        assert!(zh.subject.starts_with("3 API tokens expire within 7 days"));
    }

    #[test]
    fn digest_headers_say_automatic_and_one_click_unsubscribe() {
        let m = digest_message(
            "apitokens <no-reply@acme.example>",
            &digest("en", three()),
            BASE,
            "d-abc123",
        )
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
        assert!(raw.contains(&format!(
            "List-Unsubscribe: <{BASE}/unsubscribe?t=7.0123456789abcdef>\r\n"
        )));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("Message-ID: <d-abc123@tokens.acme.example>\r\n"));
    }

    #[test]
    fn an_ed25519_dkim_key_in_pkcs8_pem_signs_and_publishes() {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let pem = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .to_pkcs8_pem(Default::default())
            .unwrap();
        let key = DkimKey::from_pem(&pem).unwrap();
        let record = key.dns_record().unwrap();
        assert!(record.starts_with("v=DKIM1; k=ed25519; p="), "{record}");
        assert_eq!(record.len(), "v=DKIM1; k=ed25519; p=".len() + 44);
        let config = key.config("s1", "acme.example").unwrap();
        let mut m = digest_message(
            "a <no-reply@acme.example>",
            &digest("en", three()),
            BASE,
            "d-1",
        )
        .unwrap();
        m.sign(&config);
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains("DKIM-Signature: v=1; a=ed25519-sha256;"),
            "{raw}"
        );
        assert!(
            DkimKey::from_pem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")
                .is_err()
        );
    }

    #[test]
    fn the_message_id_domain_is_the_base_urls() {
        assert_eq!(
            domain_of("https://tokens.acme.example"),
            "tokens.acme.example"
        );
        assert_eq!(domain_of("http://127.0.0.1:8080/"), "127.0.0.1");
        assert_eq!(domain_of("https://u@h.example:8443/x?y"), "h.example");
        assert_eq!(domain_of("http://[::1]:80"), "[::1]");
    }

    #[test]
    fn the_invitation_mail() {
        let mail = InvitationMail {
            recipient: recipient(),
            account: "Acme".into(),
            inviter: "Bob".into(),
            link: format!("{BASE}/set-password?token={}", "ab".repeat(32)),
        };
        let r = render_invitation(&mail, BASE).unwrap();
        assert!(r.text.contains(&mail.link) && r.html.contains(&mail.link));
        snapshot("invitation", &r);
    }
}
