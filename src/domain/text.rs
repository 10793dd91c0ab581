//! Text from outside shown where a control character could do harm: a terminal (`apitokens
//! scan` prints file names), the audit trail (a found token's path or URL). Control
//! characters and the invisible ones that reorder or hide text are shown escaped, so a file
//! named with a newline and a terminal escape can't forge an output line or colour a terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that draw nothing but change what is shown: bidirectional overrides and
/// isolates ("Trojan Source"), zero-width characters, word joiners, the byte-order mark and
/// other format characters, soft hyphen, Hangul fillers and variation selectors.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Whether `c` must be shown escaped: a control character (C0, DEL, C1) or an invisible one.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// `text` with every character of `needs_escape` written as an escape (`\n`, `\t`, `\r`,
/// `\x1b`, `\u{202e}`); borrowed when there is none.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `2026-12-31 09:30 UTC`: a time as people read it in the portal and in e-mails.
pub fn utc_minute(at: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched_and_borrowed() {
        let plain = "src/config/ключи.env:12 https://example.com/a?b=c";
        assert!(matches!(escape_controls(plain), Cow::Borrowed(_)));
        assert_eq!(escape_controls(plain), plain);
    }

    #[test]
    fn controls_and_invisibles_are_escaped() {
        assert_eq!(
            escape_controls("a\nfake.env:1: token id 9 (deleted)\x1b[31mred\x1b[0m"),
            "a\\nfake.env:1: token id 9 (deleted)\\x1b[31mred\\x1b[0m"
        );
        assert_eq!(escape_controls("x\ty\r\u{7f}\u{85}"), "x\\ty\\r\\x7f\\x85");
        assert_eq!(
            escape_controls("evil\u{202e}vne.txt\u{200b}"),
            "evil\\u{202e}vne.txt\\u{200b}"
        );
        for c in ['\u{200b}', '\u{feff}', '\u{2066}', '\u{00ad}', '\u{e0041}'] {
            assert!(is_invisible(c), "{c:?}");
        }
        for c in ['a', 'é', 'ж', ' ', '-', '\u{0301}'] {
            assert!(!needs_escape(c), "{c:?}");
        }
    }
}
