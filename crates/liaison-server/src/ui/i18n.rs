//! Message catalogs (`web/i18n/*.toml`, embedded at build time) and the choice of language:
//! the `lang` cookie, else the browser's Accept-Language, else English.

use std::collections::HashMap;
use std::sync::LazyLock;

const EN_SRC: &str = include_str!("../../../../web/i18n/en.toml");
const ZH_SRC: &str = include_str!("../../../../web/i18n/zh-CN.toml");

fn parse(name: &str, src: &str) -> HashMap<String, String> {
    match toml::from_str::<HashMap<String, String>>(src) {
        Ok(m) => m,
        Err(e) => {
            // A unit test parses both catalogs, so this only happens after a bad edit.
            tracing::error!(catalog = name, error = %e, "UI message catalog does not parse; showing keys");
            HashMap::new()
        }
    }
}

static EN: LazyLock<HashMap<String, String>> = LazyLock::new(|| parse("en", EN_SRC));
static ZH: LazyLock<HashMap<String, String>> = LazyLock::new(|| parse("zh-CN", ZH_SRC));

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl From<liaison_law::Lang> for Lang {
    fn from(l: liaison_law::Lang) -> Lang {
        match l {
            liaison_law::Lang::En => Lang::En,
            liaison_law::Lang::Zh => Lang::Zh,
        }
    }
}

impl Lang {
    /// The BCP 47 tag used in the `lang` cookie and the `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }

    /// Reads a tag such as `zh-CN`, `zh`, `zh-Hans`, `en-GB`.
    pub fn parse(tag: &str) -> Option<Lang> {
        liaison_law::Lang::parse(tag).map(Lang::from)
    }

    /// The same language for the legal assessment's words.
    pub fn law(self) -> liaison_law::Lang {
        match self {
            Lang::En => liaison_law::Lang::En,
            Lang::Zh => liaison_law::Lang::Zh,
        }
    }

    /// The best of our languages for an Accept-Language header (highest q wins; ties: first).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut it = part.split(';');
            let Some(lang) = it.next().and_then(Lang::parse) else {
                continue;
            };
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.trim().parse::<f32>().ok()))
                .unwrap_or(1.0);
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    fn catalog(self) -> &'static HashMap<String, String> {
        match self {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        }
    }

    /// The message for `key`; English if this catalog lacks it; the key itself as a last resort.
    pub fn t(self, key: &str) -> &str {
        self.catalog()
            .get(key)
            .or_else(|| EN.get(key))
            .map(String::as_str)
            .unwrap_or(key)
    }

    /// The message for `key` with `{}` replaced by `arg`.
    pub fn t1(self, key: &str, arg: &str) -> String {
        self.t(key).replacen("{}", arg, 1)
    }

    /// The label of an enumerated value (`state.draft`, `kind.takedown`, …), or the raw value.
    pub fn word(self, group: &str, value: &str) -> String {
        let key = format!("{group}.{value}");
        match self.catalog().get(&key).or_else(|| EN.get(&key)) {
            Some(s) => s.clone(),
            None => value.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_core::lifecycle::RefusalReason;
    use liaison_core::{DataCategory, RequestKind, Role, State, Urgency};

    #[test]
    fn catalogs_parse_and_have_the_same_keys() {
        let en = toml::from_str::<HashMap<String, String>>(EN_SRC).expect("en.toml parses");
        let zh = toml::from_str::<HashMap<String, String>>(ZH_SRC).expect("zh-CN.toml parses");
        let mut missing: Vec<_> = en.keys().filter(|k| !zh.contains_key(*k)).collect();
        missing.extend(zh.keys().filter(|k| !en.contains_key(*k)));
        assert!(missing.is_empty(), "keys in one catalog only: {missing:?}");
        for (k, v) in &zh {
            assert!(!v.trim().is_empty(), "empty zh-CN message {k}");
        }
    }

    /// No English left in the Chinese catalog: an entry equal to its English one, or without a
    /// single Chinese character, is an untranslated one, unless it is a code (all capitals,
    /// digits and signs, such as `TLP`) or the switch back to English.
    #[test]
    fn every_chinese_message_is_chinese() {
        let en = toml::from_str::<HashMap<String, String>>(EN_SRC).expect("en.toml parses");
        let zh = toml::from_str::<HashMap<String, String>>(ZH_SRC).expect("zh-CN.toml parses");
        let is_code = |v: &str| {
            v.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || " +:-_./".contains(c))
        };
        let is_cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3000}'..='\u{303f}').contains(&c);
        let mut untranslated: Vec<String> = zh
            .iter()
            .filter(|(k, v)| k.as_str() != "lang.other" && !is_code(v))
            .filter(|(k, v)| en.get(*k) == Some(*v) || !v.chars().any(is_cjk))
            .map(|(k, v)| format!("{k} = {v:?}"))
            .collect();
        untranslated.sort();
        assert!(untranslated.is_empty(), "untranslated in zh-CN.toml: {untranslated:#?}");
    }

    #[test]
    fn every_enumerated_value_has_a_label_in_both_languages() {
        let mut keys = Vec::new();
        keys.extend(State::ALL.iter().map(|s| format!("state.{s}")));
        keys.extend(RequestKind::ALL.iter().map(|s| format!("kind.{s}")));
        keys.extend(Role::ALL.iter().map(|s| format!("role.{s}")));
        keys.extend(Urgency::ALL.iter().map(|s| format!("urgency.{s}")));
        keys.extend(RefusalReason::ALL.iter().map(|s| format!("refusal.{s}")));
        keys.extend(DataCategory::ALL.iter().map(|s| format!("category.{s}")));
        keys.extend(
            liaison_core::directory::AgencyKind::ALL
                .iter()
                .map(|s| format!("agency_kind.{s}")),
        );
        for k in keys {
            assert!(EN.contains_key(&k), "en.toml lacks {k}");
            assert!(ZH.contains_key(&k), "zh-CN.toml lacks {k}");
        }
    }

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Some(Lang::Zh));
        assert_eq!(Lang::from_accept_language("fr-FR, en;q=0.5, zh;q=0.4"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de"), None);
        assert_eq!(Lang::Zh.t("state.draft"), "草稿");
        assert_eq!(Lang::En.t("no.such.key"), "no.such.key");
    }
}
