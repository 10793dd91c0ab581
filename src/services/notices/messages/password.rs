//! The password mails: the reset link asked for on the sign-in page ("Forgot password?"), or,
//! for an SSO person, where to sign in instead; and the notice that a password was changed.

use lettre::Message;

use crate::email::{compose, render, Envelope, Recipient, Rendered};

/// The answer to "Forgot password?": a one-time link, or (`None`) the news that the person
/// signs in through SSO and has no password here.
#[derive(Debug, Clone)]
pub struct ResetMail {
    pub recipient: Recipient,
    /// The one-time reset link (a credential: it goes nowhere else but this mail).
    pub link: Option<String>,
}

pub struct ResetParts {
    name: String,
    email: String,
    link: Option<String>,
    login: String,
}

crate::template_set!(
    ResetParts,
    "email/password_reset/subject.txt",
    "email/password_reset/body.txt",
    "email/password_reset/body.html"
);

pub fn render_reset(mail: &ResetMail, base_url: &str) -> Result<Rendered, String> {
    render(&ResetParts {
        name: mail.recipient.name.clone(),
        email: mail.recipient.email.clone(),
        link: mail.link.clone(),
        login: format!("{base_url}/login"),
    })
}

pub fn reset_message(from: &str, mail: &ResetMail, base_url: &str) -> Result<Message, String> {
    compose(
        &Envelope::new(from, &mail.recipient, base_url),
        render_reset(mail, base_url)?,
    )
}

/// "Your password was changed": when, and how (in the portal, with a reset link, by an
/// operator), with the way back if it wasn't them.
#[derive(Debug, Clone)]
pub struct ChangedMail {
    pub recipient: Recipient,
    /// "in the portal", "with a reset link", "by an operator (apitokens user set-password)".
    pub how: &'static str,
    /// When, as the portal writes times (UTC).
    pub when: String,
}

pub struct ChangedParts {
    name: String,
    email: String,
    how: &'static str,
    when: String,
    forgot: String,
}

crate::template_set!(
    ChangedParts,
    "email/password_changed/subject.txt",
    "email/password_changed/body.txt",
    "email/password_changed/body.html"
);

pub fn render_changed(mail: &ChangedMail, base_url: &str) -> Result<Rendered, String> {
    render(&ChangedParts {
        name: mail.recipient.name.clone(),
        email: mail.recipient.email.clone(),
        how: mail.how,
        when: mail.when.clone(),
        forgot: format!("{base_url}/forgot-password"),
    })
}

pub fn changed_message(from: &str, mail: &ChangedMail, base_url: &str) -> Result<Message, String> {
    compose(
        &Envelope::new(from, &mail.recipient, base_url),
        render_changed(mail, base_url)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://tokens.acme.example";

    fn recipient() -> Recipient {
        super::super::digest::tests_support::recipient()
    }

    #[test]
    fn a_reset_mail_carries_its_link_and_an_sso_one_none() {
        let link = format!("{BASE}/set-password?token={}", "cd".repeat(32));
        let with = render_reset(
            &ResetMail {
                recipient: recipient(),
                link: Some(link.clone()),
            },
            BASE,
        )
        .unwrap();
        assert!(with.text.contains(&link) && with.html.contains(&link));
        assert!(with.text.contains("one hour"), "{}", with.text);
        let sso = render_reset(
            &ResetMail {
                recipient: recipient(),
                link: None,
            },
            BASE,
        )
        .unwrap();
        assert!(!sso.text.contains("set-password") && !sso.html.contains("set-password"));
        assert!(sso.text.contains("identity provider"), "{}", sso.text);
        assert_ne!(with.subject, sso.subject);
    }

    #[test]
    fn the_changed_mail_says_how_and_where_to_go_if_it_was_not_them() {
        let r = render_changed(
            &ChangedMail {
                recipient: recipient(),
                how: "in the portal",
                when: "2026-12-03 08:00 UTC".into(),
            },
            BASE,
        )
        .unwrap();
        assert!(
            r.text.contains("in the portal at 2026-12-03 08:00 UTC"),
            "{}",
            r.text
        );
        assert!(r.html.contains(&format!("{BASE}/forgot-password")));
    }
}
