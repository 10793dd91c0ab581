//! The usage quota's mail: a token has used 80 % of its quota this period (to its issuer, or
//! a service account's Administrators, under the expiry-e-mail preference).

use lettre::Message;

use crate::email::{compose, render, Envelope, Recipient, Rendered};

#[derive(Debug, Clone)]
pub struct QuotaMail {
    pub recipient: Recipient,
    pub token_id: i64,
    pub token_name: String,
    /// "800 of 1000 requests a month used; refilled on 2027-01-01".
    pub detail: String,
}

pub struct QuotaParts {
    name: String,
    token_id: i64,
    token_name: String,
    detail: String,
    link: String,
    settings: String,
}

crate::template_set!(
    QuotaParts,
    "email/quota_notice/subject.txt",
    "email/quota_notice/body.txt",
    "email/quota_notice/body.html"
);

pub fn render_quota(mail: &QuotaMail, base_url: &str) -> Result<Rendered, String> {
    render(&QuotaParts {
        name: mail.recipient.name.clone(),
        token_id: mail.token_id,
        token_name: mail.token_name.clone(),
        detail: mail.detail.clone(),
        link: format!("{base_url}/profile/api-tokens/{}", mail.token_id),
        settings: format!("{base_url}/profile/notifications"),
    })
}

/// The message, its Message-ID from `key` (a retry is the same message).
pub fn quota_message(
    from: &str,
    mail: &QuotaMail,
    base_url: &str,
    key: &str,
) -> Result<Message, String> {
    let envelope = Envelope::new(from, &mail.recipient, base_url).keyed(key);
    compose(&envelope, render_quota(mail, base_url)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_says_how_much_and_links_the_token() {
        let r = render_quota(
            &QuotaMail {
                recipient: super::super::digest::tests_support::recipient(),
                token_id: 42,
                token_name: "deploy".into(),
                detail: "800 of 1000 requests a month used; refilled on 2027-01-01".into(),
            },
            "https://t.example",
        )
        .unwrap();
        assert!(r.subject.contains("deploy") && r.subject.contains("80 %"));
        for part in [&r.text, &r.html] {
            assert!(part.contains("800 of 1000 requests a month"), "{part}");
            assert!(
                part.contains("https://t.example/profile/api-tokens/42"),
                "{part}"
            );
            assert!(part.contains("/profile/notifications"), "{part}");
        }
    }
}
