//! Rendering a message from its template set: each message is three askama templates over one
//! set of facts, `templates/email/<name>/subject.txt`, `body.txt` and `body.html` (escaped),
//! declared with `template_set!`. What a message says (its facts, its Fluent words) is its
//! own business; this only renders.

/// What an e-mail says, before it is wrapped into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A message's facts, renderable by its three templates.
pub trait TemplateSet {
    fn subject(&self) -> askama::Result<String>;
    fn text(&self) -> askama::Result<String>;
    fn html(&self) -> askama::Result<String>;
}

/// Subject (one line, trimmed), text and HTML of `set`.
pub fn render(set: &impl TemplateSet) -> Result<Rendered, String> {
    let subject = set.subject().map_err(|e| e.to_string())?;
    Ok(Rendered {
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        text: set.text().map_err(|e| e.to_string())?,
        html: set.html().map_err(|e| e.to_string())?,
    })
}

/// `template_set!(Parts, "email/digest/subject.txt", "email/digest/body.txt",
/// "email/digest/body.html")`: `Parts` is rendered by those three templates (under
/// `templates/`), each reading it as `p`; the HTML one escapes.
#[macro_export]
macro_rules! template_set {
    ($parts:ty, $subject:literal, $text:literal, $html:literal) => {
        const _: () = {
            #[derive(askama::Template)]
            #[template(path = $subject, escape = "none")]
            struct Subject<'a> {
                p: &'a $parts,
            }
            #[derive(askama::Template)]
            #[template(path = $text, escape = "none")]
            struct Text<'a> {
                p: &'a $parts,
            }
            #[derive(askama::Template)]
            #[template(path = $html)]
            struct Html<'a> {
                p: &'a $parts,
            }
            impl $crate::email::render::TemplateSet for $parts {
                fn subject(&self) -> askama::Result<String> {
                    askama::Template::render(&Subject { p: self })
                }
                fn text(&self) -> askama::Result<String> {
                    askama::Template::render(&Text { p: self })
                }
                fn html(&self) -> askama::Result<String> {
                    askama::Template::render(&Html { p: self })
                }
            }
        };
    };
}
