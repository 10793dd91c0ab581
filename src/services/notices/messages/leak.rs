//! The security alert: a token found where it shouldn't be (revoked, or still working when
//! the account only wants to be told), or deleted with a deprovisioned person. Sent whatever
//! the expiry-e-mail preference; no unsubscribe.

use lettre::Message;

use crate::email::i18n::Words;
use crate::email::{compose, render, Envelope, Recipient, Rendered};

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

pub struct LeakParts {
    subject: String,
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

crate::template_set!(
    LeakParts,
    "email/leak/subject.txt",
    "email/leak/body.txt",
    "email/leak/body.html"
);

/// Subject, text and HTML of a leak alert.
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
        subject: words.get(
            key("leak-subject", "leak-subject-kept", "deprov-subject"),
            &name,
        ),
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
    render(&parts)
}

/// A leak alert as a message: automatic, its `Message-ID` made from the alert's key (a retry
/// is the same message), and no unsubscribe (security alerts can't be turned off).
pub fn leak_message(
    from: &str,
    mail: &LeakMail,
    base_url: &str,
    key: &str,
) -> Result<Message, String> {
    let envelope = Envelope::new(from, &mail.recipient, base_url).keyed(key);
    compose(&envelope, render_leak(mail, base_url)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leak_alert_says_where_in_the_readers_language_and_escapes_it() {
        let mail = |lang: &str| LeakMail {
            recipient: super::super::digest::tests_support::recipient(),
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
}
