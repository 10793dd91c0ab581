//! The second factor's mails: an Administrator reset it, or few recovery codes are left.

use lettre::Message;

use crate::email::{compose, render, Envelope, Recipient, Rendered};

#[derive(Debug, Clone)]
pub struct TwoFactorMail {
    pub recipient: Recipient,
    /// The Administrator who reset it; `None`: a recovery code was used and few are left.
    pub reset_by: Option<String>,
    pub left: i64,
    /// Too many wrong codes: someone who has the password is guessing them.
    pub locked: bool,
    /// When, as the portal writes times.
    pub when: String,
}

pub struct TwoFactorParts {
    name: String,
    email: String,
    reset_by: Option<String>,
    left: i64,
    locked: bool,
    when: String,
    security: String,
    forgot: String,
}

crate::template_set!(
    TwoFactorParts,
    "email/two_factor_notice/subject.txt",
    "email/two_factor_notice/body.txt",
    "email/two_factor_notice/body.html"
);

pub fn render_two_factor(mail: &TwoFactorMail, base_url: &str) -> Result<Rendered, String> {
    render(&TwoFactorParts {
        name: mail.recipient.name.clone(),
        email: mail.recipient.email.clone(),
        reset_by: mail.reset_by.clone(),
        left: mail.left,
        locked: mail.locked,
        when: mail.when.clone(),
        security: format!("{base_url}/profile/security"),
        forgot: format!("{base_url}/forgot-password"),
    })
}

pub fn two_factor_message(
    from: &str,
    mail: &TwoFactorMail,
    base_url: &str,
) -> Result<Message, String> {
    compose(
        &Envelope::new(from, &mail.recipient, base_url),
        render_two_factor(mail, base_url)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_names_the_administrator_and_few_codes_say_how_many() {
        let recipient = super::super::digest::tests_support::recipient();
        let reset = render_two_factor(
            &TwoFactorMail {
                recipient: recipient.clone(),
                reset_by: Some("Bob".into()),
                left: 0,
                locked: false,
                when: "2026-12-03 09:00 UTC".into(),
            },
            "https://t.example",
        )
        .unwrap();
        assert!(
            reset.text.contains("Bob, an Administrator"),
            "{}",
            reset.text
        );
        assert!(reset.html.contains("https://t.example/profile/security"));
        let low = render_two_factor(
            &TwoFactorMail {
                recipient,
                reset_by: None,
                left: 2,
                locked: false,
                when: "2026-12-03 09:00 UTC".into(),
            },
            "https://t.example",
        )
        .unwrap();
        assert_eq!(low.subject, "2 apitokens recovery codes left");
        assert!(low.text.contains("2 of your ten are left"), "{}", low.text);
        let locked = render_two_factor(
            &TwoFactorMail {
                recipient: super::super::digest::tests_support::recipient(),
                reset_by: None,
                left: 0,
                locked: true,
                when: "2026-12-03 09:00 UTC".into(),
            },
            "https://t.example",
        )
        .unwrap();
        assert!(
            locked.text.contains("knows your password"),
            "{}",
            locked.text
        );
        assert!(locked.html.contains("https://t.example/forgot-password"));
    }
}
