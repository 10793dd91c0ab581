//! The words of our e-mails, one Fluent catalogue per language (`locales/<lang>/mail.ftl`).
//!
//! Fluent (the Mozilla project's localisation system, `fluent-bundle`) over a key-value crate:
//! its messages carry CLDR plural rules, which Russian needs ("1 токен", "2 токена", "5
//! токенов"), and translators get the whole sentence, not fragments. The catalogues are
//! compiled in; English is the fallback for a language we don't have or a message a
//! catalogue lacks. Ready for the portal to use later.

use std::collections::HashMap;
use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The catalogues we have, English first (the fallback).
const CATALOGUES: [(&str, &str); 3] = [
    ("en", include_str!("../../locales/en/mail.ftl")),
    ("de", include_str!("../../locales/de/mail.ftl")),
    ("ru", include_str!("../../locales/ru/mail.ftl")),
];

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static HashMap<&'static str, Bundle> {
    static BUNDLES: OnceLock<HashMap<&'static str, Bundle>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        CATALOGUES
            .iter()
            .map(|(lang, source)| {
                let id: LanguageIdentifier = lang.parse().expect("a language id");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Plain-text mail: no Unicode isolation marks around arguments.
                bundle.set_use_isolating(false);
                let resource = FluentResource::try_new((*source).to_owned())
                    .unwrap_or_else(|(_, errors)| panic!("locales/{lang}/mail.ftl: {errors:?}"));
                bundle
                    .add_resource(resource)
                    .unwrap_or_else(|errors| panic!("locales/{lang}/mail.ftl: {errors:?}"));
                (*lang, bundle)
            })
            .collect()
    })
}

/// The words in one language (English where it has none).
pub struct Words {
    lang: &'static str,
}

impl Words {
    /// `lang` as stored on the user (`en`, `de`, `ru`, `zh`, `az`, ...).
    pub fn of(lang: &str) -> Words {
        let lang = CATALOGUES
            .iter()
            .map(|(l, _)| *l)
            .find(|l| *l == lang)
            .unwrap_or("en");
        Words { lang }
    }

    /// The language the words are in (for `<html lang>`).
    pub fn lang(&self) -> &'static str {
        self.lang
    }

    /// Message `key` with its arguments.
    pub fn get(&self, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, value.clone());
        }
        let bundles = bundles();
        for lang in [self.lang, "en"] {
            let bundle = &bundles[lang];
            if let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) {
                let mut errors = vec![];
                let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
                if errors.is_empty() {
                    return text.into_owned();
                }
                tracing::warn!(lang, key, ?errors, "a message could not be formatted");
            }
        }
        key.to_owned()
    }

    pub fn text(&self, key: &str) -> String {
        self.get(key, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(source: &str) -> Vec<String> {
        source
            .lines()
            .filter(|l| !l.starts_with(['#', ' ']) && l.contains(" ="))
            .map(|l| l.split(" =").next().unwrap().trim().to_owned())
            .collect()
    }

    #[test]
    fn every_catalogue_has_every_english_message() {
        let english = keys(CATALOGUES[0].1);
        assert!(english.len() > 10);
        for (lang, source) in CATALOGUES {
            let mine = keys(source);
            for key in &english {
                assert!(mine.contains(key), "locales/{lang}/mail.ftl lacks {key}");
            }
            // And every message formats without errors.
            let words = Words::of(lang);
            for key in &english {
                let text = words.get(
                    key,
                    &[
                        ("name", "x".into()),
                        ("when", "y".into()),
                        ("days", 2.into()),
                        ("first", "z".into()),
                        ("count", 3.into()),
                    ],
                );
                assert_ne!(&text, key, "{lang}: {key}");
            }
        }
    }

    #[test]
    fn russian_counts_take_their_plural_forms_and_unknown_languages_fall_back() {
        let ru = Words::of("ru");
        let subject = |n: i64| {
            ru.get(
                "subject-many",
                &[("count", n.into()), ("first", "завтра".into())],
            )
        };
        let when = |d: i64| ru.get("when-days", &[("days", d.into())]);
        assert_eq!(
            (when(1), when(2), when(5), when(21)),
            (
                "завтра".into(),
                "через 2 дня".into(),
                "через 5 дней".into(),
                "через 21 день".into()
            )
        );
        assert!(
            subject(2).starts_with("2 API-токена истекают"),
            "{}",
            subject(2)
        );
        assert!(
            subject(5).starts_with("5 API-токенов истекают"),
            "{}",
            subject(5)
        );
        assert!(
            subject(21).starts_with("21 API-токен истекает"),
            "{}",
            subject(21)
        );
        let zh = Words::of("zh");
        assert_eq!(zh.lang(), "en");
        assert_eq!(zh.get("when-days", &[("days", 1.into())]), "in 1 day");
    }
}
