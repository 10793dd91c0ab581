//! The idle rule's mail: a token nobody has used will be revoked in 7 days (to its issuer and
//! the Administrators, under the expiry-e-mail preference).

use lettre::Message;

use crate::email::{compose, render, Envelope, Recipient, Rendered};

#[derive(Debug, Clone)]
pub struct IdleMail {
    pub recipient: Recipient,
    pub account: String,
    pub token_id: i64,
    pub token_name: String,
    /// "since its creation on 2026-11-01" or "since 2026-11-01".
    pub since: String,
    pub days: i32,
    /// The date it will be revoked.
    pub revoke_on: String,
}

pub struct IdleParts {
    name: String,
    account: String,
    token_id: i64,
    token_name: String,
    since: String,
    days: i32,
    revoke_on: String,
    link: String,
    settings: String,
}

crate::template_set!(
    IdleParts,
    "email/idle_notice/subject.txt",
    "email/idle_notice/body.txt",
    "email/idle_notice/body.html"
);

pub fn render_idle(mail: &IdleMail, base_url: &str) -> Result<Rendered, String> {
    render(&IdleParts {
        name: mail.recipient.name.clone(),
        account: mail.account.clone(),
        token_id: mail.token_id,
        token_name: mail.token_name.clone(),
        since: mail.since.clone(),
        days: mail.days,
        revoke_on: mail.revoke_on.clone(),
        link: format!("{base_url}/profile/api-tokens/{}", mail.token_id),
        settings: format!("{base_url}/profile/notifications"),
    })
}

/// The message, its Message-ID from `key` (a retry is the same message).
pub fn idle_message(
    from: &str,
    mail: &IdleMail,
    base_url: &str,
    key: &str,
) -> Result<Message, String> {
    let envelope = Envelope::new(from, &mail.recipient, base_url).keyed(key);
    compose(&envelope, render_idle(mail, base_url)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_says_when_and_why_and_links_the_token() {
        let r = render_idle(
            &IdleMail {
                recipient: super::super::digest::tests_support::recipient(),
                account: "Acme".into(),
                token_id: 42,
                token_name: "deploy".into(),
                since: "since 2026-09-01".into(),
                days: 90,
                revoke_on: "2026-12-10".into(),
            },
            "https://t.example",
        )
        .unwrap();
        assert!(r.subject.contains("deploy") && r.subject.contains("2026-12-10"));
        for part in [&r.text, &r.html] {
            assert!(part.contains("90 days"), "{part}");
            assert!(part.contains("since 2026-09-01"), "{part}");
            assert!(
                part.contains("https://t.example/profile/api-tokens/42"),
                "{part}"
            );
        }
    }
}
