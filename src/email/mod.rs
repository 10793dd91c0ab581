//! Outgoing mail: SMTP when `APITOKENS_SMTP_URL` is set, otherwise `.eml` files in
//! `<data dir>/outbox/` so a first run works offline. Messages are multipart text + HTML
//! from askama templates, and never contain a token's secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use askama::Template;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::SmtpTransport;
use lettre::{FileTransport, Message, Transport};

use time::OffsetDateTime;

use crate::domain::{NoticeKind, Role};

pub enum Mailer {
    Smtp(Box<SmtpTransport>),
    Files(PathBuf),
}

impl Mailer {
    /// `smtp://host:port` (plain; add `?tls=required` for STARTTLS), `smtps://user:pass@host`;
    /// `None` writes files under `<data_dir>/outbox/`.
    pub fn new(smtp_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Mailer> {
        match smtp_url {
            Some(url) => {
                let transport = SmtpTransport::from_url(url)
                    .context("APITOKENS_SMTP_URL is not a valid smtp:// or smtps:// URL")?
                    .timeout(Some(Duration::from_secs(15)))
                    .build();
                Ok(Mailer::Smtp(Box::new(transport)))
            }
            None => {
                let dir = data_dir.join("outbox");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("can't create the mail outbox {}", dir.display()))?;
                crate::config::set_mode(&dir, 0o700).with_context(|| {
                    format!("can't make the mail outbox {} private", dir.display())
                })?;
                Ok(Mailer::Files(dir))
            }
        }
    }

    /// Sends one message; the error is a line for the outbox row and the log.
    pub fn send(&self, message: &Message) -> Result<(), String> {
        match self {
            Mailer::Smtp(smtp) => smtp
                .send(message)
                .map(drop)
                .map_err(|e| format!("SMTP: {e}")),
            Mailer::Files(dir) => {
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

#[derive(Template)]
#[template(path = "email/expiry.txt")]
struct ExpiryText<'a> {
    p: &'a ExpiryParts,
}

#[derive(Template)]
#[template(path = "email/expiry.html")]
struct ExpiryHtml<'a> {
    p: &'a ExpiryParts,
}

/// Who an e-mail goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub name: String,
    pub email: String,
}

/// The facts of an expiry e-mail, as the notifier knows them.
#[derive(Debug, Clone)]
pub struct ExpiryMail {
    pub recipient: Recipient,
    pub token_id: i64,
    pub token_name: String,
    pub role: Role,
    pub issuer_name: String,
    pub expires_at: Option<OffsetDateTime>,
    pub kind: NoticeKind,
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

/// What an expiry e-mail says, formatted for the templates.
struct ExpiryParts {
    pub recipient_name: String,
    pub token_name: String,
    pub token_id: i64,
    pub role: &'static str,
    pub issuer_name: String,
    pub expires_at: String,
    pub when: &'static str,
    pub token_link: String,
    pub create_link: String,
    pub settings_link: String,
}

/// What an e-mail says, before it is wrapped into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The e-mail about a token expiring.
pub fn expiry_message(from: &str, mail: &ExpiryMail, base_url: &str) -> Result<Message, String> {
    let r = render_expiry(mail, base_url)?;
    multipart(from, &mail.recipient, &r.subject, r.text, r.html)
}

/// Subject, text and HTML of the e-mail about a token expiring.
pub fn render_expiry(mail: &ExpiryMail, base_url: &str) -> Result<Rendered, String> {
    let expires = mail.expires_at.map(|at| {
        let f =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
        at.format(&f).unwrap_or_default()
    });
    let parts = ExpiryParts {
        recipient_name: mail.recipient.name.clone(),
        token_name: mail.token_name.clone(),
        token_id: mail.token_id,
        role: mail.role.name(),
        issuer_name: mail.issuer_name.clone(),
        expires_at: expires.unwrap_or_default(),
        when: mail.kind.when(),
        token_link: format!("{base_url}/profile/api-tokens?token={}", mail.token_id),
        create_link: format!("{base_url}/profile/api-tokens/new"),
        settings_link: format!("{base_url}/profile/notifications"),
    };
    let text = ExpiryText { p: &parts }
        .render()
        .map_err(|e| e.to_string())?;
    let html = ExpiryHtml { p: &parts }
        .render()
        .map_err(|e| e.to_string())?;
    let subject = format!(
        "API token \"{}\" expires {}",
        mail.token_name,
        mail.kind.when()
    );
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

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
    multipart(from, &mail.recipient, &r.subject, r.text, r.html)
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

/// A multipart (text + HTML) message to `to`, with Date and Message-ID.
fn multipart(
    from: &str,
    to: &Recipient,
    subject: &str,
    text: String,
    html: String,
) -> Result<Message, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("APITOKENS_MAIL_FROM: {e}"))?;
    let to = Mailbox::new(
        Some(to.name.clone()),
        to.email.parse().map_err(|e| format!("recipient: {e}"))?,
    );
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .date_now()
        .message_id(None)
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

#[cfg(test)]
mod tests {
    //! Every e-mail's wording is a snapshot: a change of text or markup is a reviewed diff
    //! (`cargo insta review`), and each snapshot is checked for what must never be in a mail.

    use super::*;
    use time::macros::datetime;

    const BASE: &str = "https://tokens.acme.example";

    fn recipient() -> Recipient {
        Recipient {
            name: "Alice <Admin> & Co".into(),
            email: "alice@acme.example".into(),
        }
    }

    fn expiry(kind: NoticeKind) -> ExpiryMail {
        ExpiryMail {
            recipient: recipient(),
            token_id: 42,
            token_name: "CI <deploys> & \"prod\"".into(),
            role: Role::Engineers,
            issuer_name: "Bob".into(),
            expires_at: Some(datetime!(2026-12-31 23:59:59 UTC)),
            kind,
        }
    }

    fn snapshot(name: &str, r: &Rendered) {
        insta::assert_snapshot!(format!("{name}.subject"), r.subject);
        insta::assert_snapshot!(format!("{name}.txt"), r.text);
        insta::assert_snapshot!(format!("{name}.html"), r.html);
    }

    #[test]
    fn the_seven_day_expiry_mail() {
        let r = render_expiry(&expiry(NoticeKind::SevenDays), BASE).unwrap();
        assert!(r.html.contains("CI &#60;deploys&#62;") || r.html.contains("CI &lt;deploys&gt;"));
        assert!(!r.html.contains("<deploys>"), "names are escaped in HTML");
        snapshot("expiry_7d", &r);
    }

    #[test]
    fn the_one_day_expiry_mail() {
        let r = render_expiry(&expiry(NoticeKind::OneDay), BASE).unwrap();
        snapshot("expiry_1d", &r);
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
