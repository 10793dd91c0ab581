//! The webhooks' mail: an endpoint failed for 3 days and was turned off (to each
//! Administrator).

use lettre::Message;

use crate::email::{compose, render, Envelope, Recipient, Rendered};

#[derive(Debug, Clone)]
pub struct WebhookDisabledMail {
    pub recipient: Recipient,
    pub account: String,
    /// The endpoint as the audit trail shows it (scheme and host).
    pub url: String,
    /// Failing since, and turned off at, as the portal writes times.
    pub since: String,
    pub when: String,
    pub endpoint_id: i64,
}

pub struct WebhookDisabledParts {
    name: String,
    account: String,
    url: String,
    since: String,
    when: String,
    page: String,
}

crate::template_set!(
    WebhookDisabledParts,
    "email/webhook_disabled/subject.txt",
    "email/webhook_disabled/body.txt",
    "email/webhook_disabled/body.html"
);

pub fn render_webhook_disabled(
    mail: &WebhookDisabledMail,
    base_url: &str,
) -> Result<Rendered, String> {
    render(&WebhookDisabledParts {
        name: mail.recipient.name.clone(),
        account: mail.account.clone(),
        url: mail.url.clone(),
        since: mail.since.clone(),
        when: mail.when.clone(),
        page: format!("{base_url}/webhooks/{}", mail.endpoint_id),
    })
}

pub fn webhook_disabled_message(
    from: &str,
    mail: &WebhookDisabledMail,
    base_url: &str,
) -> Result<Message, String> {
    compose(
        &Envelope::new(from, &mail.recipient, base_url),
        render_webhook_disabled(mail, base_url)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_names_the_endpoint_by_host_the_account_and_links_its_page() {
        let r = render_webhook_disabled(
            &WebhookDisabledMail {
                recipient: super::super::digest::tests_support::recipient(),
                account: "Acme".into(),
                url: "https://hooks.example.com/…".into(),
                since: "2026-11-30 09:00 UTC".into(),
                when: "2026-12-03 09:00 UTC".into(),
                endpoint_id: 7,
            },
            "https://t.example",
        )
        .unwrap();
        assert!(
            r.subject.contains("Acme") && r.subject.contains("turned off"),
            "{}",
            r.subject
        );
        for part in [&r.text, &r.html] {
            assert!(part.contains("https://hooks.example.com/…"), "{part}");
            assert!(part.contains("2026-11-30 09:00 UTC"), "{part}");
            assert!(part.contains("https://t.example/webhooks/7"), "{part}");
        }
    }
}
