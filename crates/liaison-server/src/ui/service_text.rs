//! The messages the node's service writes (in English: the API and the CLI show them as they
//! are), in the reader's language for the pages: the details of a refusal, a conflict, an
//! illegal move and each invalid field. The Chinese is in `web/i18n/service.zh-CN.toml`, as
//! patterns with typed holes (see that file); a message no pattern matches is shown in English,
//! introduced as the node's own words, so nothing is hidden.

use super::i18n::Lang;
use liaison_core::{Role, State};
use std::collections::HashMap;
use std::sync::LazyLock;

const ZH_SRC: &str = include_str!("../../../../web/i18n/service.zh-CN.toml");

/// A hole of a pattern: what it may hold, and how it is shown in Chinese.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hole {
    /// Any value, shown as it is.
    Any,
    State,
    /// A comma-separated list of states.
    States,
    Role,
    /// An action of the `[actions]` table.
    What,
    /// A language of letters (`en`, `zh-CN`), from `[words]` (`lang.…`).
    Lang,
    /// A free text of a letter (`summary`, `purpose`, `necessity`), from `[words]` (`text.…`).
    Text,
}

#[derive(Debug)]
struct Pattern {
    /// The literal text around the holes: `pieces.len() == holes.len() + 1`.
    pieces: Vec<String>,
    holes: Vec<Hole>,
    zh: String,
}

#[derive(Debug, Default)]
struct Catalog {
    actions: HashMap<String, String>,
    words: HashMap<String, String>,
    patterns: Vec<Pattern>,
}

#[derive(serde::Deserialize)]
struct Src {
    actions: HashMap<String, String>,
    #[serde(default)]
    words: HashMap<String, String>,
    messages: toml::Table,
}

fn pattern(key: &str, zh: &str) -> Pattern {
    let mut pieces = vec![String::new()];
    let mut holes = Vec::new();
    let mut rest = key;
    while let Some(at) = rest.find('{') {
        let Some(len) = rest[at..].find('}') else { break };
        let hole = match &rest[at + 1..at + len] {
            "" => Some(Hole::Any),
            "state" => Some(Hole::State),
            "states" => Some(Hole::States),
            "role" => Some(Hole::Role),
            "what" => Some(Hole::What),
            "lang" => Some(Hole::Lang),
            "text" => Some(Hole::Text),
            _ => None,
        };
        let last = pieces.len() - 1;
        match hole {
            Some(h) => {
                pieces[last].push_str(&rest[..at]);
                holes.push(h);
                pieces.push(String::new());
            }
            None => pieces[last].push_str(&rest[..at + len + 1]),
        }
        rest = &rest[at + len + 1..];
    }
    let last = pieces.len() - 1;
    pieces[last].push_str(rest);
    Pattern {
        pieces,
        holes,
        zh: zh.to_string(),
    }
}

fn parse(src: &str) -> Catalog {
    match toml::from_str::<Src>(src) {
        Ok(s) => {
            let mut patterns: Vec<Pattern> = s
                .messages
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|zh| pattern(k, zh)))
                .collect();
            // The most specific first: the pattern with the most literal text ("request {} is
            // at version {} …" before "request {}"), so that a short one never takes a long
            // message whose own pattern exists.
            patterns.sort_by_key(|p| std::cmp::Reverse(p.pieces.iter().map(String::len).sum::<usize>()));
            Catalog {
                actions: s.actions,
                words: s.words,
                patterns,
            }
        }
        Err(e) => {
            // A unit test parses the catalog, so this only happens after a bad edit.
            tracing::error!(error = %e, "service message catalog does not parse; messages stay in English");
            Catalog::default()
        }
    }
}

static ZH: LazyLock<Catalog> = LazyLock::new(|| parse(ZH_SRC));

/// Whether `v` may fill hole `h`.
fn fits(c: &Catalog, h: Hole, v: &str) -> bool {
    match h {
        Hole::Any => true,
        Hole::State => v.parse::<State>().is_ok(),
        Hole::States => v.split(", ").all(|s| s.parse::<State>().is_ok()),
        Hole::Role => v.parse::<Role>().is_ok(),
        Hole::What => c.actions.contains_key(v),
        Hole::Lang => c.words.contains_key(&format!("lang.{v}")),
        Hole::Text => c.words.contains_key(&format!("text.{v}")),
    }
}

/// Matches `m` against the pattern from hole `i` on (the text before it already matched),
/// trying every place the next literal piece occurs; the values of the holes, in order.
fn fill<'m>(c: &Catalog, p: &Pattern, i: usize, m: &'m str, out: &mut Vec<&'m str>) -> bool {
    if i == p.holes.len() {
        return m.is_empty();
    }
    let next = &p.pieces[i + 1];
    let last = i + 1 == p.holes.len();
    let mut from = 0;
    while from <= m.len() {
        let at = if last {
            // The last hole takes everything up to the final piece, which ends the message.
            if !m.ends_with(next.as_str()) || m.len() < next.len() {
                return false;
            }
            m.len() - next.len()
        } else {
            match m[from..].find(next.as_str()) {
                Some(k) => from + k,
                None => return false,
            }
        };
        let value = &m[..at];
        if !value.is_empty() && fits(c, p.holes[i], value) {
            out.push(value);
            if fill(c, p, i + 1, &m[at + next.len()..], out) {
                return true;
            }
            out.pop();
        }
        if last {
            return false;
        }
        // Try the next occurrence (a value may contain the literal that follows it).
        from = at + m[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn show(l: Lang, c: &Catalog, h: Hole, v: &str) -> String {
    match h {
        Hole::Any => v.to_string(),
        Hole::State => l.word("state", v),
        Hole::States => v.split(", ").map(|s| l.word("state", s)).collect::<Vec<_>>().join("、"),
        Hole::Role => l.word("role", v),
        Hole::What => c.actions.get(v).cloned().unwrap_or_else(|| v.to_string()),
        Hole::Lang => c
            .words
            .get(&format!("lang.{v}"))
            .cloned()
            .unwrap_or_else(|| v.to_string()),
        Hole::Text => c
            .words
            .get(&format!("text.{v}"))
            .cloned()
            .unwrap_or_else(|| v.to_string()),
    }
}

fn translate(l: Lang, c: &Catalog, m: &str) -> Option<String> {
    for p in &c.patterns {
        let Some(rest) = m.strip_prefix(p.pieces[0].as_str()) else {
            continue;
        };
        let mut values = Vec::new();
        if fill(c, p, 0, rest, &mut values) {
            let mut out = p.zh.clone();
            // Highest first, so that {1} does not replace the start of {12}.
            for (i, (v, h)) in values.iter().zip(&p.holes).enumerate().rev() {
                out = out.replace(&format!("{{{}}}", i + 1), &show(l, c, *h, v));
            }
            return Some(out);
        }
    }
    None
}

/// A message of the node's service in `lang`: as it is in English; in Chinese from the
/// catalog, else in English after a Chinese lead saying it is the node's own text.
pub(crate) fn in_lang(lang: Lang, m: &str) -> String {
    match lang {
        Lang::En => m.to_string(),
        // A message the page wrote itself in Chinese (the draft form's own checks) stays so.
        Lang::Zh if m.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) => m.to_string(),
        Lang::Zh => translate(lang, &ZH, m).unwrap_or_else(|| format!("{}{m}", lang.t("err.node_words"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_catalog_parses_and_numbers_its_holes() {
        let c = parse(ZH_SRC);
        assert!(
            c.actions.len() >= 60 && c.patterns.len() >= 50,
            "{} {}",
            c.actions.len(),
            c.patterns.len()
        );
        for p in &c.patterns {
            for i in 1..=p.holes.len() {
                assert!(
                    p.zh.contains(&format!("{{{i}}}")),
                    "{:?} does not show hole {i}",
                    p.pieces
                );
            }
            assert!(!p.zh.contains(&format!("{{{}}}", p.holes.len() + 1)), "{:?}", p.pieces);
            assert!(
                p.zh.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)),
                "{}",
                p.zh
            );
        }
    }

    /// Every action the service may refuse (`require(…, "what", …)`) has its Chinese: read
    /// from the service's source, so a refusal added later without one fails here.
    #[test]
    fn every_refused_action_is_translated() {
        let c = parse(ZH_SRC);
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../liaison-service/src");
        let mut missing = Vec::new();
        let mut seen = 0;
        let mut dirs = vec![std::path::PathBuf::from(root)];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|x| x != "rs") {
                    continue;
                }
                let src = std::fs::read_to_string(&path).unwrap();
                for (at, _) in src.match_indices("require(") {
                    // The call's arguments up to the principal: its string literals are the action.
                    let call = &src[at..(at + 400).min(src.len())];
                    let call = call.split(", p)").next().unwrap_or(call);
                    let call = call.split(",\n            p,").next().unwrap_or(call);
                    let call = call.split(",\n        p,").next().unwrap_or(call);
                    for lit in call.split('"').skip(1).step_by(2) {
                        if lit.contains('{') || !lit.contains(' ') && lit.len() < 4 {
                            continue;
                        }
                        seen += 1;
                        if !c.actions.contains_key(lit) {
                            missing.push(format!("{}: {lit}", path.display()));
                        }
                    }
                }
            }
        }
        assert!(
            seen >= 60,
            "found only {seen} refused actions: is the scan still right?"
        );
        assert!(
            missing.is_empty(),
            "actions without Chinese in web/i18n/service.zh-CN.toml:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn messages_are_translated_with_their_values() {
        let zh = |m: &str| in_lang(Lang::Zh, m);
        assert_eq!(
            zh("reading requests is not allowed for role admin (user fbi.admin)"),
            "角色“系统管理员”无权查看请求（用户 fbi.admin）。"
        );
        assert_eq!(
            zh("cannot go from answered to submitted; allowed from answered: closed, withdrawn"),
            format!(
                "不能从“{}”转为“{}”；从“{}”只能转为：{}、{}。",
                Lang::Zh.word("state", "answered"),
                Lang::Zh.word("state", "submitted"),
                Lang::Zh.word("state", "answered"),
                Lang::Zh.word("state", "closed"),
                Lang::Zh.word("state", "withdrawn")
            )
        );
        assert_eq!(
            zh("'10.0.0.300' is not an IPv4 or IPv6 address"),
            "“10.0.0.300”不是 IPv4 或 IPv6 地址"
        );
        assert_eq!(
            zh("'a b' must be 1-64 letters, digits, '.', '_' or '-'"),
            "“a b”须为 1 至 64 个字母、数字、“.”、“_”或“-”"
        );
        // A value holding the literal that follows it still matches.
        assert_eq!(zh("unknown user 'it's'"), "没有用户“it's”");
        // The most specific pattern wins over a shorter one that would also match.
        assert_eq!(
            zh("request FBI-2026-0042 is at version 3 (you sent 2); reload it and try again"),
            "请求 FBI-2026-0042 现为第 3 版（您提交的是第 2 版）；请重新加载后再试。"
        );
        assert_eq!(zh("request FBI-2026-0042"), "请求 FBI-2026-0042");
        // Unknown: English, introduced in Chinese; English pages are unchanged.
        let odd = "the moon is made of cheese";
        assert!(zh(odd).ends_with(odd) && zh(odd).len() > odd.len());
        assert_eq!(in_lang(Lang::En, odd), odd);
        // A typed hole does not take a value of another kind.
        assert!(zh("cannot go from nowhere to submitted; allowed from nowhere: closed").ends_with("closed"));
    }
}
