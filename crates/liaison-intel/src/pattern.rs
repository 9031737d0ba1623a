//! The part of STIX 2.1 patterning (STIX 2.1 §9) that names indicator values: an
//! observation expression whose comparisons are `object-path = 'literal'` (or `IN (…)`),
//! joined by `OR`, or by `AND` where the other comparisons only say an address's type or a
//! port (`network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = …`).
//! Observations may be joined by `OR`; qualifiers (`WITHIN`, `REPEATS`, `START … STOP`) are
//! read and ignored: they limit when a match counts, not what the value is.
//!
//! Anything else (`MATCHES`, `LIKE`, `!=`, observations joined by `AND` or `FOLLOWEDBY`,
//! binary or hex literals) is refused with a message that says what was found, so the
//! importer quarantines the object instead of guessing.

use std::fmt;

/// A value comparison a pattern makes: `object:path = literal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The object type (`ipv4-addr`, `network-traffic`, `file`).
    pub object: String,
    /// The property path (`value`, `dst_ref.value`, `hashes.'SHA-256'`), quotes kept.
    pub path: String,
    /// The literal, unescaped.
    pub literal: String,
}

/// One value a pattern names, with the port when the same observation gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub comparison: Comparison,
    pub port: Option<u16>,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern {0}")]
pub struct PatternError(pub String);

fn err<T>(msg: impl fmt::Display) -> Result<T, PatternError> {
    Err(PatternError(msg.to_string()))
}

/// Longest pattern read (a longer one is refused before parsing).
pub const MAX_PATTERN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    LParen,
    RParen,
    Comma,
    Op(String),
    Word(String),
    Str(String),
    Num(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, PatternError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'[' | b']' | b'(' | b')' | b',' => {
                out.push(match c {
                    b'[' => Tok::Open,
                    b']' => Tok::Close,
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    _ => Tok::Comma,
                });
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let mut j = i + 1;
                if j < b.len() && b[j] == b'=' {
                    j += 1;
                }
                out.push(Tok::Op(s[i..j].to_string()));
                i = j;
            }
            b'\'' => {
                let mut lit = String::new();
                let mut j = i + 1;
                loop {
                    let Some(&d) = b.get(j) else {
                        return err("has an unterminated string literal");
                    };
                    match d {
                        b'\\' => {
                            match b.get(j + 1) {
                                Some(b'\\') => lit.push('\\'),
                                Some(b'\'') => lit.push('\''),
                                _ => return err("has an invalid escape in a string literal"),
                            }
                            j += 2;
                        }
                        b'\'' => break,
                        _ => {
                            // Copy one UTF-8 character.
                            let ch_len = s[j..].chars().next().map_or(1, char::len_utf8);
                            lit.push_str(&s[j..j + ch_len]);
                            j += ch_len;
                        }
                    }
                }
                out.push(Tok::Str(lit));
                i = j + 1;
            }
            b'0'..=b'9' | b'-' if c != b'-' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                    j += 1;
                }
                out.push(Tok::Num(s[i..j].to_string()));
                i = j;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                // A word or an object path: letters, digits, - _ : . and quoted or [*] steps.
                let mut j = i;
                while j < b.len() {
                    let d = b[j];
                    if d.is_ascii_alphanumeric() || matches!(d, b'-' | b'_' | b':' | b'.') {
                        j += 1;
                    } else if d == b'\'' && j > i && b[j - 1] == b'.' {
                        // hashes.'SHA-256'
                        let Some(end) = s[j + 1..].find('\'') else {
                            return err("has an unterminated quoted path step");
                        };
                        j += end + 2;
                    } else if d == b'[' && b.get(j + 1).is_some_and(|x| *x == b'*' || x.is_ascii_digit()) {
                        let Some(end) = s[j..].find(']') else {
                            return err("has an unterminated list index");
                        };
                        j += end + 1;
                    } else {
                        break;
                    }
                }
                let w = &s[i..j];
                // h'..', b'..', t'..' literals.
                if matches!(w, "h" | "b" | "t") && b.get(j) == Some(&b'\'') {
                    if w == "t" {
                        // A timestamp literal (in START/STOP qualifiers): read it as a string.
                        let Some(end) = s[j + 1..].find('\'') else {
                            return err("has an unterminated timestamp literal");
                        };
                        out.push(Tok::Str(s[j + 1..j + 1 + end].to_string()));
                        i = j + end + 2;
                        continue;
                    }
                    return err(format!("uses a {w}'…' literal, which Liaison does not import"));
                }
                out.push(Tok::Word(w.to_string()));
                i = j;
            }
            _ => return err(format!("has an unexpected character '{}'", c as char)),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn word_is(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    /// `path op literal` or `path IN (literals)`.
    fn comparison(&mut self) -> Result<Vec<(String, String, String)>, PatternError> {
        let Some(Tok::Word(path)) = self.next() else {
            return err("expected an object path inside [ ]");
        };
        let Some((object, prop)) = path.split_once(':').filter(|(o, p)| !o.is_empty() && !p.is_empty()) else {
            return err(format!("has an object path that is not TYPE:PROPERTY: '{path}'"));
        };
        if self.word_is("NOT") {
            return err(format!("negates a comparison on {path}"));
        }
        match self.next() {
            Some(Tok::Op(op)) if op == "=" => match self.next() {
                Some(Tok::Str(l)) | Some(Tok::Num(l)) => Ok(vec![(object.to_string(), prop.to_string(), l)]),
                _ => err(format!("compares {path} with something that is not a literal")),
            },
            Some(Tok::Op(op)) => err(format!("compares {path} with '{op}'; only '=' names a value")),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => {
                if self.next() != Some(Tok::LParen) {
                    return err("expected '(' after IN");
                }
                let mut out = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::Str(l)) | Some(Tok::Num(l)) => out.push((object.to_string(), prop.to_string(), l)),
                        _ => return err("has a non-literal in an IN list"),
                    }
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RParen) => break,
                        _ => return err("has an unterminated IN list"),
                    }
                }
                Ok(out)
            }
            Some(Tok::Word(w)) => err(format!("compares {path} with {w}; only '=' and IN name values")),
            _ => err(format!("has no comparison operator after {path}")),
        }
    }

    /// `[ comparison ((AND|OR) comparison)* ]`
    fn observation(&mut self) -> Result<Vec<Named>, PatternError> {
        if self.next() != Some(Tok::Open) {
            return err("must start an observation with '['");
        }
        if self.peek() == Some(&Tok::LParen) {
            return err("groups comparisons in parentheses, which Liaison does not import");
        }
        let mut comps = self.comparison()?;
        let mut joins = Vec::new();
        loop {
            match self.next() {
                Some(Tok::Close) => break,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("AND") || w.eq_ignore_ascii_case("OR") => {
                    joins.push(w.to_ascii_uppercase());
                    comps.extend(self.comparison()?);
                }
                _ => return err("has an unterminated observation (no ']')"),
            }
        }
        let all_or = joins.iter().all(|j| j == "OR");
        let is_aux = |(o, p, _): &(String, String, String)| {
            (o == "network-traffic"
                && (p.ends_with("_ref.type") || p == "dst_port" || p == "src_port" || p.starts_with("protocols[")))
                || (o == "email-message" && p.ends_with("_ref.type"))
        };
        if all_or {
            // Every comparison names a value of its own (type comparisons name none).
            return Ok(comps
                .into_iter()
                .filter(|c| !is_aux(c))
                .map(|(object, path, literal)| Named {
                    comparison: Comparison { object, path, literal },
                    port: None,
                })
                .collect());
        }
        if joins.iter().any(|j| j == "OR") {
            return err("mixes AND and OR in one observation");
        }
        // AND: one value, the rest types and ports.
        let port = comps
            .iter()
            .find(|(o, p, _)| o == "network-traffic" && (p == "dst_port" || p == "src_port"))
            .and_then(|(_, _, l)| l.parse::<u16>().ok());
        let values: Vec<_> = comps.iter().filter(|c| !is_aux(c)).collect();
        match values.as_slice() {
            [(o, p, l)] => Ok(vec![Named {
                comparison: Comparison {
                    object: o.clone(),
                    path: p.clone(),
                    literal: l.clone(),
                },
                port,
            }]),
            [] => err("names no value (only types or ports)"),
            _ => err("requires several values at once (AND), which is not one indicator"),
        }
    }

    /// Skips a qualifier: `WITHIN n SECONDS`, `REPEATS n TIMES`, `START t'…' STOP t'…'`.
    fn qualifiers(&mut self) -> Result<(), PatternError> {
        loop {
            if self.word_is("WITHIN") || self.word_is("REPEATS") {
                self.at += 3;
            } else if self.word_is("START") {
                self.at += 4;
            } else {
                return Ok(());
            }
            if self.at > self.toks.len() {
                return err("ends inside a qualifier");
            }
        }
    }
}

/// The values a STIX pattern names (see the module documentation).
pub fn parse(pattern: &str) -> Result<Vec<Named>, PatternError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return err(format!(
            "is {} bytes, over the limit of {MAX_PATTERN_BYTES}",
            pattern.len()
        ));
    }
    let mut p = Parser {
        toks: lex(pattern)?,
        at: 0,
    };
    let mut out = Vec::new();
    loop {
        if p.peek() == Some(&Tok::LParen) {
            return err("groups observations in parentheses, which Liaison does not import");
        }
        out.extend(p.observation()?);
        p.qualifiers()?;
        match p.next() {
            None => break,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("OR") => continue,
            Some(Tok::Word(w)) => return err(format!("joins observations with {w}; only OR names separate values")),
            Some(_) => return err("has text after an observation"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(p: &str) -> Vec<(String, String, String, Option<u16>)> {
        parse(p)
            .unwrap()
            .into_iter()
            .map(|n| (n.comparison.object, n.comparison.path, n.comparison.literal, n.port))
            .collect()
    }

    #[test]
    fn reads_the_forms_exports_write() {
        assert_eq!(
            values("[ipv4-addr:value = '203.0.113.7']"),
            [("ipv4-addr".into(), "value".into(), "203.0.113.7".into(), None)]
        );
        assert_eq!(
            values(
                "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '1.2.3.4' AND network-traffic:protocols[*] = 'ipv4']"
            ),
            [("network-traffic".into(), "dst_ref.value".into(), "1.2.3.4".into(), None)]
        );
        assert_eq!(
            values("[file:hashes.'SHA-256' = 'ab'] OR [file:hashes.MD5 = 'cd']")
                .iter()
                .map(|v| v.1.as_str())
                .collect::<Vec<_>>(),
            ["hashes.'SHA-256'", "hashes.MD5"]
        );
        assert_eq!(values("[url:value = 'http://x/it\\'s']")[0].2, "http://x/it's");
        assert_eq!(values("[autonomous-system:number = 64500]")[0].2, "64500");
        assert_eq!(values("[domain-name:value IN ('a.example', 'b.example')]").len(), 2);
        assert_eq!(
            values("[network-traffic:dst_ref.value = '1.2.3.4' AND network-traffic:dst_port = 443] WITHIN 300 SECONDS")
                [0]
            .3,
            Some(443)
        );
        assert_eq!(
            values("[ipv4-addr:value = '1.2.3.4'] START t'2026-01-01T00:00:00Z' STOP t'2026-02-01T00:00:00Z'").len(),
            1
        );
    }

    #[test]
    fn refuses_what_is_not_one_value() {
        for (p, why) in [
            ("[url:value MATCHES '^http']", "MATCHES"),
            ("[ipv4-addr:value != '1.2.3.4']", "'!='"),
            ("[ipv4-addr:value = '1.2.3.4'] AND [url:value = 'x']", "AND"),
            ("[ipv4-addr:value = '1.2.3.4' AND url:value = 'x']", "several values"),
            ("[file:hashes.MD5 = h'00ff']", "h'"),
            ("[ipv4-addr:value = '1.2.3.4'", "unterminated"),
            ("[ipv4-addr:value = '1.2", "unterminated"),
            ("ipv4-addr:value = '1.2.3.4'", "'['"),
            ("[ipv4-addraluve: = '1.2.3.4']", "TYPE:PROPERTY"),
            ("[:value = '1.2.3.4']", "unexpected character ':'"),
        ] {
            let e = parse(p).unwrap_err().to_string();
            assert!(e.contains(why), "{p}: {e}");
        }
        assert!(parse(&"[".repeat(MAX_PATTERN_BYTES + 1)).is_err());
    }
}
