//! The invitation: who added the person to which account, and their one-time set-password
//! link (a credential: it goes nowhere else but this mail).

use lettre::Message;

use crate::email::{compose, render, Envelope, Recipient, Rendered};

/// The facts of an invitation e-mail.
#[derive(Debug, Clone)]
pub struct InvitationMail {
    pub recipient: Recipient,
    pub account: String,
    pub inviter: String,
    /// The one-time set-password link (a credential: it goes nowhere else but this mail).
    pub link: String,
}

/// What an invitation says, for its templates.
pub struct InviteParts {
    name: String,
    email: String,
    inviter: String,
    account: String,
    link: String,
    login: String,
}

crate::template_set!(
    InviteParts,
    "email/invitation/subject.txt",
    "email/invitation/body.txt",
    "email/invitation/body.html"
);

/// Subject, text and HTML of an invitation.
pub fn render_invitation(mail: &InvitationMail, base_url: &str) -> Result<Rendered, String> {
    render(&InviteParts {
        name: mail.recipient.name.clone(),
        email: mail.recipient.email.clone(),
        inviter: mail.inviter.clone(),
        account: mail.account.clone(),
        link: mail.link.clone(),
        login: format!("{base_url}/login"),
    })
}

/// The invitation of a new user, with their one-time set-password link.
pub fn invitation_message(
    from: &str,
    mail: &InvitationMail,
    base_url: &str,
) -> Result<Message, String> {
    compose(
        &Envelope::new(from, &mail.recipient, base_url),
        render_invitation(mail, base_url)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://tokens.acme.example";

    #[test]
    fn the_invitation_mail() {
        let mail = InvitationMail {
            recipient: super::super::digest::tests_support::recipient(),
            account: "Acme".into(),
            inviter: "Bob".into(),
            link: format!("{BASE}/set-password?token={}", "ab".repeat(32)),
        };
        let r = render_invitation(&mail, BASE).unwrap();
        assert!(r.text.contains(&mail.link) && r.html.contains(&mail.link));
        super::super::digest::tests_support::snapshot("invitation", &r);
    }
}
