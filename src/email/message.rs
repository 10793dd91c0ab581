//! A rendered e-mail wrapped into a message: From, To, Subject, Date, a `Message-ID` on the
//! base URL's domain (a retry can reuse its key, so mail systems see one message), the
//! automatic-mail headers, one-click unsubscribe when there is a link, and the text and HTML
//! alternatives.

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MessageBuilder, MultiPart, SinglePart};
use lettre::Message;

use super::render::Rendered;

/// Who an e-mail goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub name: String,
    pub email: String,
}

/// Where a message goes and how it is marked.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub from: &'a str,
    pub to: &'a Recipient,
    /// `Message-ID: <key@domain>`: a key of the message's own (a retry is the same message),
    /// or a random one.
    pub key: Option<&'a str>,
    /// The base URL, whose host is the Message-ID's domain.
    pub base_url: &'a str,
    /// `List-Unsubscribe` (RFC 2369 and RFC 8058's one click), when the mail can be turned off.
    pub unsubscribe: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    pub fn new(from: &'a str, to: &'a Recipient, base_url: &'a str) -> Envelope<'a> {
        Envelope {
            from,
            to,
            key: None,
            base_url,
            unsubscribe: None,
        }
    }

    /// The same, with its Message-ID from `key` (a retry is the same message).
    pub fn keyed(self, key: &'a str) -> Envelope<'a> {
        Envelope {
            key: Some(key),
            ..self
        }
    }
}

/// The message: automatic (`Auto-Submitted`), with its Message-ID and, if any, one-click
/// unsubscribe.
pub fn compose(envelope: &Envelope, rendered: Rendered) -> Result<Message, String> {
    let key = match envelope.key {
        Some(key) => key.to_owned(),
        None => crate::domain::Secret::generate().expose()[..24].to_owned(),
    };
    let mut builder = headers(envelope.from, envelope.to, &rendered.subject)?
        .message_id(Some(format!("<{key}@{}>", domain_of(envelope.base_url))))
        .header(AutoSubmitted);
    if let Some(link) = envelope.unsubscribe {
        builder = builder
            .header(ListUnsubscribePost)
            .header(ListUnsubscribe(format!("<{link}>")));
    }
    body(builder, rendered.text, rendered.html)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
