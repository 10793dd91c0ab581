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
