//! The expiry digest: every token due for one person in one sweep, soonest first, in their
//! language; one token alone reads as a mail about that token. Automatic, unsubscribable in
//! one click, its Message-ID the digest's key (a retry is the same message).

use lettre::Message;
use time::OffsetDateTime;

use crate::domain::{NoticeKind, Role};
use crate::email::i18n::Words;
use crate::email::{compose, render, Envelope, Recipient, Rendered};

/// One token of an expiry digest.
#[derive(Debug, Clone)]
pub struct DigestItem {
    pub token_id: i64,
    pub token_name: String,
    pub role: Role,
    pub issuer_name: String,
    pub expires_at: Option<OffsetDateTime>,
    pub kind: NoticeKind,
}

/// The facts of one expiry e-mail: every token due for one person in one sweep.
#[derive(Debug, Clone)]
pub struct DigestMail {
    pub recipient: Recipient,
    /// The recipient's language (`en`, `de`, `ru`, ...; English where we have no words).
    pub lang: String,
    pub items: Vec<DigestItem>,
    /// The one-click link that turns this person's expiry e-mails off.
    pub unsubscribe_link: String,
    /// When it is written ("expires in 5 days" counts from here).
    pub now: OffsetDateTime,
}

struct ItemParts {
    name: String,
    id: i64,
    role: &'static str,
    issuer: String,
    expires: String,
    link: String,
}

/// What an expiry digest says, in the recipient's language, formatted for the templates.
pub struct DigestParts {
    subject: String,
    lang: &'static str,
    single: bool,
    greeting: String,
    intro: String,
    items: Vec<ItemParts>,
    label_token: String,
    label_role: String,
    label_issuer: String,
    label_expires: String,
    label_open: String,
    consequence: String,
    step_rotate: String,
    step_update: String,
    why: String,
    turn_off: String,
    settings_link: String,
    unsubscribe: String,
    unsubscribe_link: String,
}

crate::template_set!(
    DigestParts,
    "email/digest/subject.txt",
    "email/digest/body.txt",
    "email/digest/body.html"
);

/// `2026-12-31 23:59:59 UTC`: the same unambiguous form in every language.
fn instant(at: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.format(&f).unwrap_or_default()
}

/// "in 5 days", "tomorrow": whole days from `now` to `at`, rounded up.
fn when(words: &Words, at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let seconds = at.map_or(0, |at| (at - now).whole_seconds().max(0));
    let days = (seconds + 86_399) / 86_400;
    words.get("when-days", &[("days", days.into())])
}

/// Subject, text and HTML of an expiry digest: its tokens soonest first; one token alone
/// reads as a mail about that token.
pub fn render_digest(mail: &DigestMail, base_url: &str) -> Result<Rendered, String> {
    let words = Words::of(&mail.lang);
    let mut items = mail.items.clone();
    items.sort_by_key(|i| (i.expires_at, i.token_id));
    let first = items.first().ok_or("a digest without tokens")?;
    let single = items.len() == 1;
    let count = items.len() as i64;
    let first_when = when(&words, first.expires_at, mail.now);
    let name = first.token_name.as_str();
    let (subject, intro) = if single {
        let args = [("name", name.into()), ("when", first_when.as_str().into())];
        (
            words.get("subject-one", &args),
            words.get("intro-one", &args),
        )
    } else {
        let args = [
            ("count", count.into()),
            ("first", first_when.as_str().into()),
        ];
        (
            words.get("subject-many", &args),
            words.get("intro-many", &args),
        )
    };
    let pick = |one: &str, many: &str| {
        if single {
            one.to_owned()
        } else {
            many.to_owned()
        }
    };
    let parts = DigestParts {
        subject,
        lang: words.lang(),
        single,
        greeting: words.get("greeting", &[("name", mail.recipient.name.as_str().into())]),
        intro,
        items: items
            .iter()
            .map(|i| ItemParts {
                name: i.token_name.clone(),
                id: i.token_id,
                role: i.role.name(),
                issuer: i.issuer_name.clone(),
                expires: i.expires_at.map(instant).unwrap_or_default(),
                link: format!("{base_url}/profile/api-tokens/{}", i.token_id),
            })
            .collect(),
        label_token: words.text("label-token"),
        label_role: words.text("label-role"),
        label_issuer: words.text("label-issuer"),
        label_expires: words.text("label-expires"),
        label_open: words.text("label-open"),
        consequence: words.text(&pick("consequence-one", "consequence-many")),
        step_rotate: words.text(&pick("step-rotate-one", "step-rotate-many")),
        step_update: words.get(
            &pick("step-update-one", "step-update-many"),
            &[("name", name.into())],
        ),
        why: words.text(&pick("why-one", "why-many")),
        turn_off: words.text("turn-off"),
        settings_link: format!("{base_url}/profile/notifications"),
        unsubscribe: words.text("unsubscribe"),
        unsubscribe_link: mail.unsubscribe_link.clone(),
    };
    render(&parts)
}

/// The expiry digest as a message: automatic (`Auto-Submitted`), unsubscribable in one click
/// (RFC 8058), and its `Message-ID` made from the digest's key, so a retry is the same message.
pub fn digest_message(
    from: &str,
    mail: &DigestMail,
    base_url: &str,
    digest_key: &str,
) -> Result<Message, String> {
    let envelope = Envelope {
        key: Some(digest_key),
        unsubscribe: Some(&mail.unsubscribe_link),
        ..Envelope::new(from, &mail.recipient, base_url)
    };
    compose(&envelope, render_digest(mail, base_url)?)
}

/// What the messages' tests share: a recipient whose name needs escaping, and the snapshot
/// of a rendered mail.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::email::{Recipient, Rendered};

    pub fn recipient() -> Recipient {
        Recipient {
            name: "Alice <Admin> & Co".into(),
            email: "alice@acme.example".into(),
        }
    }

    pub fn snapshot(name: &str, r: &Rendered) {
        insta::assert_snapshot!(format!("{name}.subject"), r.subject);
        insta::assert_snapshot!(format!("{name}.txt"), r.text);
        insta::assert_snapshot!(format!("{name}.html"), r.html);
    }
}

#[cfg(test)]
mod tests {
    //! Every e-mail's wording is a snapshot: a change of text or markup is a reviewed diff
    //! (`cargo insta review`).

    use super::tests_support::{recipient, snapshot};
    use super::*;
    use time::macros::datetime;

    const BASE: &str = "https://tokens.acme.example";

    fn item(id: i64, name: &str, days: i64, kind: NoticeKind) -> DigestItem {
        DigestItem {
            token_id: id,
            token_name: name.into(),
            role: Role::Engineers,
            issuer_name: "Bob".into(),
            expires_at: Some(datetime!(2026-12-24 12:00:00 UTC) + time::Duration::days(days)),
            kind,
        }
    }

    fn digest(lang: &str, items: Vec<DigestItem>) -> DigestMail {
        DigestMail {
            recipient: recipient(),
            lang: lang.into(),
            items,
            unsubscribe_link: format!("{BASE}/unsubscribe?t=7.0123456789abcdef"),
            now: datetime!(2026-12-24 12:00:00 UTC),
        }
    }

    fn three() -> Vec<DigestItem> {
        vec![
            item(43, "Nightly backup", 6, NoticeKind::SevenDays),
            item(42, "CI <deploys> & \"prod\"", 1, NoticeKind::OneDay),
            item(44, "Metrics scraper", 3, NoticeKind::SevenDays),
        ]
    }

    #[test]
    fn one_token_alone_reads_as_a_mail_about_it() {
        let r = render_digest(
            &digest(
                "en",
                vec![item(
                    42,
                    "CI <deploys> & \"prod\"",
                    7,
                    NoticeKind::SevenDays,
                )],
            ),
            BASE,
        )
        .unwrap();
        assert_eq!(
            r.subject,
            "API token \"CI <deploys> & \"prod\"\" expires in 7 days"
        );
        let soon = render_digest(
            &digest("en", vec![item(42, "x", 1, NoticeKind::OneDay)]),
            BASE,
        )
        .unwrap();
        assert_eq!(soon.subject, "API token \"x\" expires in 1 day");
        assert!(r.html.contains("CI &#60;deploys&#62;") || r.html.contains("CI &lt;deploys&gt;"));
        assert!(!r.html.contains("<deploys>"), "names are escaped in HTML");
        snapshot("digest_one_en", &r);
    }

    #[test]
    fn a_digest_lists_its_tokens_soonest_first_in_each_language() {
        for lang in ["en", "de", "ru"] {
            let r = render_digest(&digest(lang, three()), BASE).unwrap();
            let at = |needle: &str| {
                r.text
                    .find(needle)
                    .unwrap_or_else(|| panic!("{lang}: {needle}"))
            };
            assert!(
                at("id 42") < at("id 44") && at("id 44") < at("id 43"),
                "{lang}: soonest first"
            );
            assert!(
                r.text.contains("2026-12-25 12:00:00 UTC"),
                "{lang}: dates are unambiguous"
            );
            assert!(r.text.contains("/unsubscribe?t=") && r.html.contains("/unsubscribe?t="));
            snapshot(&format!("digest_three_{lang}"), &r);
        }
        let de = render_digest(&digest("de", three()), BASE).unwrap();
        assert_eq!(
            de.subject,
            "3 API-Tokens laufen innerhalb von 7 Tagen ab, das erste morgen"
        );
        let en = render_digest(&digest("en", three()), BASE).unwrap();
        assert_eq!(
            en.subject,
            "3 API tokens expire within 7 days; the first in 1 day"
        );
        let ru = render_digest(&digest("ru", three()), BASE).unwrap();
        assert!(
            ru.subject.starts_with("3 API-токена истекают"),
            "{}",
            ru.subject
        );
        // A language we have no words for gets English.
        let zh = render_digest(&digest("zh", three()), BASE).unwrap();
        assert!(zh.subject.starts_with("3 API tokens expire within 7 days"));
    }

    #[test]
    fn digest_headers_say_automatic_and_one_click_unsubscribe() {
        let m = digest_message(
            "apitokens <no-reply@acme.example>",
            &digest("en", three()),
            BASE,
            "d-abc123",
        )
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
        assert!(raw.contains(&format!(
            "List-Unsubscribe: <{BASE}/unsubscribe?t=7.0123456789abcdef>\r\n"
        )));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("Message-ID: <d-abc123@tokens.acme.example>\r\n"));
    }
}
