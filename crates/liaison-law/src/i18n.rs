//! Words for assessments: the engine returns [`Message`]s (a code and parameters); the catalogue
//! (`messages/en.toml`, `messages/zh-CN.toml`) renders them in the reader's language at display
//! time. A stored assessment therefore reads in whichever language its reader chooses.
//!
//! A template names its parameters in braces (`{channel}`). A parameter whose value starts with
//! `@` names another catalogue entry (`@kind.stored_content`), which is rendered in the same
//! language; any other value is shown as it is (pack texts, names, dates and numbers). In
//! Chinese, a parameter `x_zh` stands in for `x` where the engine gives both (channel and
//! offence names).

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

const EN_SRC: &str = include_str!("../messages/en.toml");
const ZH_SRC: &str = include_str!("../messages/zh-CN.toml");

/// A language the catalogue renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    Zh,
}

impl Lang {
    /// Reads `en`, `en-GB`, `zh`, `zh-CN`, `zh-Hans` (any case); `None` for anything else.
    pub fn parse(tag: &str) -> Option<Lang> {
        let t = tag.trim().to_ascii_lowercase();
        if t == "en" || t.starts_with("en-") {
            Some(Lang::En)
        } else if t == "zh" || t.starts_with("zh-") {
            Some(Lang::Zh)
        } else {
            None
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
}

/// A parameter's value. The engine makes many messages per assessment, so values share what
/// they can (pack texts are `Arc`s, catalogue terms two static strings) instead of copying.
#[derive(Debug, Clone)]
pub enum Val {
    Static(&'static str),
    Shared(Arc<str>),
    Owned(String),
    /// A catalogue entry `<group>.<key>`, written `@<group>.<key>` in JSON.
    Term(&'static str, &'static str),
}

impl Val {
    /// The value as stored (`@group.key` for a term).
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Val::Static(s) => Cow::Borrowed(s),
            Val::Shared(s) => Cow::Borrowed(s),
            Val::Owned(s) => Cow::Borrowed(s),
            Val::Term(g, k) => Cow::Owned(format!("@{g}.{k}")),
        }
    }

    fn eq_text(&self, other: &str) -> bool {
        match self {
            Val::Term(g, k) => {
                other
                    .strip_prefix('@')
                    .and_then(|o| o.strip_prefix(g))
                    .and_then(|o| o.strip_prefix('.'))
                    == Some(k)
            }
            v => v.as_text() == other,
        }
    }
}

impl PartialEq for Val {
    fn eq(&self, other: &Val) -> bool {
        self.eq_text(&other.as_text())
    }
}

impl Eq for Val {}

impl From<&'static str> for Val {
    fn from(s: &'static str) -> Val {
        Val::Static(s)
    }
}

impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Owned(s)
    }
}

impl From<Arc<str>> for Val {
    fn from(s: Arc<str>) -> Val {
        Val::Shared(s)
    }
}

impl From<&Arc<str>> for Val {
    fn from(s: &Arc<str>) -> Val {
        Val::Shared(s.clone())
    }
}

/// The parameters of a message, in order.
pub type Params = Vec<(Cow<'static, str>, Val)>;

/// A sentence the catalogue renders: a code (`plan.preserve`) and named parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub code: Cow<'static, str>,
    pub params: Params,
}

impl Message {
    pub fn new(code: &'static str) -> Self {
        Message {
            code: Cow::Borrowed(code),
            params: Vec::new(),
        }
    }

    /// Adds a parameter shown as it is.
    pub fn with(mut self, name: &'static str, value: impl Into<Val>) -> Self {
        self.params.push((Cow::Borrowed(name), value.into()));
        self
    }

    /// Adds a parameter copied from a borrowed string.
    pub fn with_str(self, name: &'static str, value: &str) -> Self {
        self.with(name, Val::Owned(value.to_string()))
    }

    /// Adds a parameter that names the catalogue entry `<group>.<key>`
    /// (`term("kind", "kind", "stored_content")`).
    pub fn term(mut self, name: &'static str, group: &'static str, key: &'static str) -> Self {
        self.params.push((Cow::Borrowed(name), Val::Term(group, key)));
        self
    }

    /// A parameter's value as stored (`@group.key` for a term).
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_text())
    }

    /// The sentence in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        render(&self.code, &self.params, lang)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct P<'a>(&'a Params);
        impl Serialize for P<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, &v.as_text())?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("code", &self.code)?;
        m.serialize_entry("params", &P(&self.params))?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            code: String,
            #[serde(default, deserialize_with = "ordered_map")]
            params: Params,
        }
        let r = Raw::deserialize(d)?;
        Ok(Message {
            code: Cow::Owned(r.code),
            params: r.params,
        })
    }
}

/// Reads a JSON object keeping its order (so a stored message renders as it was made).
fn ordered_map<'de, D: Deserializer<'de>>(d: D) -> Result<Params, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Params;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Params, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = m.next_entry::<String, String>()? {
                out.push((Cow::Owned(k), Val::Owned(v)));
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}

fn parse(name: &str, src: &str) -> HashMap<String, String> {
    // The catalogues are compiled in and checked by the tests below; a broken one renders codes.
    toml::from_str::<HashMap<String, String>>(src).unwrap_or_else(|e| {
        eprintln!("liaison-law: message catalogue {name} does not parse: {e}");
        HashMap::new()
    })
}

static EN: LazyLock<HashMap<String, String>> = LazyLock::new(|| parse("en", EN_SRC));
static ZH: LazyLock<HashMap<String, String>> = LazyLock::new(|| parse("zh-CN", ZH_SRC));

fn catalogue(lang: Lang) -> &'static HashMap<String, String> {
    match lang {
        Lang::En => &EN,
        Lang::Zh => &ZH,
    }
}

/// The catalogue entry `key` in `lang` (English when the language lacks it; the key itself
/// when neither has it, so a missing entry is visible rather than blank).
pub fn term(key: &str, lang: Lang) -> &str {
    catalogue(lang)
        .get(key)
        .or_else(|| EN.get(key))
        .map(String::as_str)
        .unwrap_or(key)
}

/// Whether the catalogue (English) has `key`.
pub fn has_term(key: &str) -> bool {
    EN.contains_key(key)
}

fn render(code: &str, params: &Params, lang: Lang) -> String {
    let template = term(code, lang);
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                // In Chinese, `{channel}` shows `channel_zh` where the engine gave one.
                let localised = match lang {
                    Lang::Zh => params
                        .iter()
                        .find(|(k, _)| k.strip_suffix("_zh").is_some_and(|b| b == name)),
                    Lang::En => None,
                };
                match localised.or_else(|| params.iter().find(|(k, _)| k == name)) {
                    Some((_, v)) => {
                        let v = v.as_text();
                        match v.strip_prefix('@') {
                            Some(key) if catalogue(lang).contains_key(key) || EN.contains_key(key) => {
                                out.push_str(term(key, lang))
                            }
                            _ => out.push_str(&v),
                        }
                    }
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every catalogue key with its placeholders, per language (for the consistency test and
/// `liaison rules check`).
pub fn catalogue_problems() -> Vec<String> {
    fn placeholders(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        let mut rest = t;
        while let Some(o) = rest.find('{') {
            let after = &rest[o + 1..];
            let Some(c) = after.find('}') else { break };
            v.push(&after[..c]);
            rest = &after[c + 1..];
        }
        v.sort_unstable();
        v.dedup();
        v
    }
    let en = parse("en", EN_SRC);
    let zh = parse("zh-CN", ZH_SRC);
    let mut out = Vec::new();
    if en.is_empty() || zh.is_empty() {
        out.push("a message catalogue is empty or does not parse".to_string());
    }
    let mut keys: Vec<&String> = en.keys().chain(zh.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        match (en.get(k), zh.get(k)) {
            (Some(e), Some(z)) => {
                if placeholders(e) != placeholders(z) {
                    out.push(format!(
                        "{k}: en has {{{}}}, zh-CN has {{{}}}",
                        placeholders(e).join("}, {"),
                        placeholders(z).join("}, {")
                    ));
                }
            }
            (Some(_), None) => out.push(format!("{k}: missing in zh-CN")),
            (None, Some(_)) => out.push(format!("{k}: missing in en")),
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_agree() {
        let p = catalogue_problems();
        assert!(p.is_empty(), "{p:#?}");
    }

    #[test]
    fn renders_parameters_and_terms() {
        let m = Message::new("plan.send")
            .term("kind", "kind", "stored_content")
            .with("channel", "US-PRC MLAA")
            .with("days", "300")
            .with("within", "");
        let en = m.render(Lang::En);
        assert!(en.contains("stored content"), "{en}");
        assert!(en.contains("US-PRC MLAA"), "{en}");
        let zh = m.render(Lang::Zh);
        assert!(zh.contains("存储内容"), "{zh}");
        assert!(!zh.contains("kind.stored_content"), "{zh}");
    }

    #[test]
    fn an_unknown_code_shows_itself_and_a_missing_parameter_its_name() {
        assert_eq!(Message::new("no.such.code").render(Lang::Zh), "no.such.code");
        assert!(Message::new("plan.send").render(Lang::En).contains("{channel}"));
    }

    #[test]
    fn messages_round_trip_in_json() {
        let m = Message::new("plan.send").with("b", "2").with("a", "1");
        let j = serde_json::to_string(&m).unwrap_or_default();
        assert_eq!(j, r#"{"code":"plan.send","params":{"b":"2","a":"1"}}"#);
        let back: Message = serde_json::from_str(&j).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, m);
    }

    #[test]
    fn language_tags() {
        assert_eq!(Lang::parse("zh-Hans"), Some(Lang::Zh));
        assert_eq!(Lang::parse("EN-gb"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
    }
}
