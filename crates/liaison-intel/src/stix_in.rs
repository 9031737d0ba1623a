//! STIX 2.1 import as a feed format (docs/intel-formats.md, "Importing STIX").
//!
//! A bundle (`{"type": "bundle", "objects": […]}`), a TAXII envelope (`{"objects": […],
//! "more": …}`) or a bare array of objects is streamed object by object; a document longer
//! than [`crate::source::Limits::max_document_bytes`] (default 100 MiB) is refused as a whole
//! with an error that names the cap. What becomes an indicator:
//! - an `indicator` with `pattern_type` `stix`: each value its pattern names
//!   ([`crate::pattern`]), with `valid_from` as first seen, `modified` as last seen,
//!   `confidence`, and the classification and malware family read from `labels` (the way
//!   Liaison's export writes them), else from an `indicates` relationship to a `malware`;
//! - a cyber-observable (`ipv4-addr`, `ipv6-addr`, `domain-name`, `url`, `email-addr`,
//!   `file` with hashes, `autonomous-system`), classification `other`;
//! - `sighting`s of an indicator and `observed-data` about an observable add their counts
//!   and first and last seen.
//!
//! The marking of each indicator is the strictest TLP among its `object_marking_refs`: the
//! TLP 2.0 and TLP 1.0 marking definitions are known by their fixed ids, and a TLP 2.0
//! marking definition with another id by its `tlp_2_0` extension. An object with no TLP
//! marking, or only markings Liaison cannot read, gets the source's default
//! ([`ImportConfig::default_tlp`], `TLP:RED` unless configured): never a wider one.
//!
//! The objects are read first and converted at the end of the document, so references may
//! point forwards (a marking definition or a relationship after the indicator); what is kept
//! meanwhile is a few small records per indicator, within the document cap.

use crate::mapping::{self, Direction};
use crate::model::{Classification, Event, IndicatorKind, IndicatorValue};
use crate::pattern;
use crate::source::{Convert, QuarantineReason};
use crate::time::UnixTime;
use liaison_core::Tlp;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One object of the document that may become indicators.
struct Pending {
    entry: u64,
    id: String,
    values: Vec<(IndicatorValue, Option<u16>, Direction)>,
    labels: Vec<String>,
    markings: Vec<String>,
    first: Option<UnixTime>,
    last: Option<UnixTime>,
    confidence: Option<u8>,
}

/// What the whole document says around its indicators.
#[derive(Default)]
pub(crate) struct StixDoc {
    pending: Vec<Pending>,
    /// marking-definition id -> TLP level, for definitions in the document.
    markings: HashMap<String, Tlp>,
    /// malware id -> family name.
    malware: HashMap<String, String>,
    /// indicator id -> malware ids it indicates.
    indicates: HashMap<String, Vec<String>>,
    /// object id -> (count, first, last) from sightings and observed data.
    seen: HashMap<String, (u64, Option<UnixTime>, Option<UnixTime>)>,
    /// Objects of other types, counted only.
    pub(crate) ignored: u64,
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn time(v: &Value, k: &str) -> Result<Option<UnixTime>, QuarantineReason> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => QuarantineReason::timestamp(k, t).map(Some),
        Some(other) => Err(wrong_type(k, "a timestamp string", other)),
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> QuarantineReason {
    let what = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    QuarantineReason::Malformed {
        message: format!("field '{field}' must be {expected}, found {what}"),
    }
}

fn strings(v: &Value, k: &str) -> Result<Vec<String>, QuarantineReason> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| wrong_type(k, "a list of strings", x))
            })
            .collect(),
        Some(other) => Err(wrong_type(k, "a list of strings", other)),
    }
}

/// An address literal: IPv4, IPv6 or a network.
fn address(lit: &str) -> Result<IndicatorValue, QuarantineReason> {
    let v = IndicatorValue::detect(lit)?;
    match v.kind() {
        IndicatorKind::Ipv4 | IndicatorKind::Ipv6 | IndicatorKind::Cidr => Ok(v),
        _ => Err(QuarantineReason::BadIndicator {
            message: format!(
                "'{}' is not an IP address or network",
                lit.chars().take(120).collect::<String>()
            ),
        }),
    }
}

/// The value a comparison names, if Liaison keeps its kind.
fn named_value(
    c: &pattern::Comparison,
    max_field: usize,
) -> Result<Option<(IndicatorValue, Direction)>, QuarantineReason> {
    QuarantineReason::check_len(&format!("{}:{}", c.object, c.path), &c.literal, max_field)?;
    let Some((kind, dir)) = mapping::from_stix_path(&c.object, &c.path) else {
        return Ok(None);
    };
    let v = match kind {
        None => address(&c.literal)?,
        Some(k) => IndicatorValue::parse(k, &c.literal)?,
    };
    Ok(Some((v, dir)))
}

/// The value of a cyber-observable object.
fn observable_value(ty: &str, v: &Value, max_field: usize) -> Result<Option<IndicatorValue>, QuarantineReason> {
    if let Some(text) = v.get("value").and_then(Value::as_str) {
        QuarantineReason::check_len("value", text, max_field)?;
    }
    Ok(Some(match ty {
        "ipv4-addr" | "ipv6-addr" => address(s(v, "value").ok_or(QuarantineReason::Malformed {
            message: format!("{ty} without a value"),
        })?)?,
        "domain-name" | "url" | "email-addr" => {
            let kind = match ty {
                "domain-name" => IndicatorKind::Domain,
                "url" => IndicatorKind::Url,
                _ => IndicatorKind::Email,
            };
            let raw = s(v, "value").ok_or(QuarantineReason::Malformed {
                message: format!("{ty} without a value"),
            })?;
            IndicatorValue::parse(kind, raw)?
        }
        "autonomous-system" => match v.get("number") {
            Some(Value::Number(n)) => {
                let n =
                    n.as_u64()
                        .filter(|n| *n <= u64::from(u32::MAX))
                        .ok_or_else(|| QuarantineReason::BadIndicator {
                            message: format!("'{n}' is not an AS number"),
                        })?;
                IndicatorValue::Asn(n as u32)
            }
            Some(other) => return Err(wrong_type("number", "an integer", other)),
            None => {
                return Err(QuarantineReason::Malformed {
                    message: "autonomous-system without a number".into(),
                });
            }
        },
        "file" => {
            let Some(hashes) = v.get("hashes").and_then(Value::as_object) else {
                return Ok(None);
            };
            // The strongest hash the file names.
            let mut best: Option<(u8, &str)> = None;
            for (k, h) in hashes {
                let rank = match mapping::HashAlgorithm::from_stix(k) {
                    Some(mapping::HashAlgorithm::Sha256) => 3,
                    Some(mapping::HashAlgorithm::Sha1) => 2,
                    Some(mapping::HashAlgorithm::Md5) => 1,
                    None => continue,
                };
                if let Some(h) = h.as_str()
                    && best.is_none_or(|(r, _)| rank > r)
                {
                    best = Some((rank, h));
                }
            }
            match best {
                Some((_, h)) => IndicatorValue::parse(IndicatorKind::FileHash, h)?,
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    }))
}

const OBSERVABLES: [&str; 7] = [
    "ipv4-addr",
    "ipv6-addr",
    "domain-name",
    "url",
    "email-addr",
    "file",
    "autonomous-system",
];

impl StixDoc {
    /// Reads one object. `Ok(false)`: not an object that could become an indicator.
    pub(crate) fn object(&mut self, entry: u64, v: &Value, max_field: usize) -> Result<bool, QuarantineReason> {
        let Some(obj) = v.as_object() else {
            return Err(QuarantineReason::Malformed {
                message: "object is not a JSON object".into(),
            });
        };
        let ty = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => return Err(wrong_type("type", "a string", other)),
            None => {
                return Err(QuarantineReason::Malformed {
                    message: "object without a 'type'".into(),
                });
            }
        };
        let id = match obj.get("id") {
            Some(Value::String(t)) => t.clone(),
            Some(other) => return Err(wrong_type("id", "a string", other)),
            None if OBSERVABLES.contains(&ty) || ty == "indicator" => {
                return Err(QuarantineReason::Malformed {
                    message: format!("{ty} without an 'id'"),
                });
            }
            None => String::new(),
        };
        match ty {
            "marking-definition" => {
                if let Some(t) = marking_tlp(v) {
                    self.markings.insert(id, t);
                }
                Ok(false)
            }
            "malware" => {
                if let Some(name) = s(v, "name") {
                    self.malware.insert(id, name.chars().take(max_field).collect());
                }
                Ok(false)
            }
            "relationship" => {
                if s(v, "relationship_type") == Some("indicates")
                    && let (Some(src), Some(dst)) = (s(v, "source_ref"), s(v, "target_ref"))
                    && src.starts_with("indicator--")
                    && dst.starts_with("malware--")
                {
                    let list = self.indicates.entry(src.to_string()).or_default();
                    if list.len() < 16 {
                        list.push(dst.to_string());
                    }
                }
                Ok(false)
            }
            "sighting" => {
                if let Some(of) = s(v, "sighting_of_ref") {
                    let count = v.get("count").and_then(Value::as_u64).unwrap_or(1);
                    self.add_seen(of, count, time(v, "first_seen")?, time(v, "last_seen")?);
                }
                Ok(false)
            }
            "observed-data" => {
                let count = v.get("number_observed").and_then(Value::as_u64).unwrap_or(1);
                let (first, last) = (time(v, "first_observed")?, time(v, "last_observed")?);
                for r in strings(v, "object_refs")? {
                    self.add_seen(&r, count, first, last);
                }
                Ok(false)
            }
            "indicator" => {
                let pt = s(v, "pattern_type").unwrap_or("stix");
                if !pt.eq_ignore_ascii_case("stix") {
                    return Err(QuarantineReason::Malformed {
                        message: format!("{id}: pattern_type '{pt}' is not imported (only 'stix')"),
                    });
                }
                let pat = match v.get("pattern") {
                    Some(Value::String(p)) => p,
                    Some(other) => return Err(wrong_type("pattern", "a string", other)),
                    None => {
                        return Err(QuarantineReason::Malformed {
                            message: format!("{id}: indicator without a pattern"),
                        });
                    }
                };
                let named = pattern::parse(pat).map_err(|e| QuarantineReason::Malformed {
                    message: format!("{id}: {e}"),
                })?;
                let mut values = Vec::new();
                for n in &named {
                    if let Some((val, dir)) = named_value(&n.comparison, max_field)? {
                        values.push((val, n.port, dir));
                    }
                }
                if values.is_empty() {
                    return Err(QuarantineReason::Malformed {
                        message: format!(
                            "{id}: the pattern names no value of a kind Liaison keeps: {}",
                            clip(pat)
                        ),
                    });
                }
                let confidence = match v.get("confidence") {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) => Some(n.as_u64().map_or(0, |c| c.min(100)) as u8),
                    Some(other) => return Err(wrong_type("confidence", "an integer 0-100", other)),
                };
                let first = time(v, "valid_from")?.or(time(v, "created")?);
                let last = time(v, "modified")?.or(first);
                self.pending.push(Pending {
                    entry,
                    id,
                    values,
                    labels: strings(v, "labels")?,
                    markings: strings(v, "object_marking_refs")?,
                    first,
                    last,
                    confidence,
                });
                Ok(true)
            }
            t if OBSERVABLES.contains(&t) => {
                let Some(val) = observable_value(t, v, max_field)? else {
                    return Ok(false);
                };
                self.pending.push(Pending {
                    entry,
                    id,
                    values: vec![(val, None, Direction::None)],
                    labels: Vec::new(),
                    markings: strings(v, "object_marking_refs")?,
                    first: None,
                    last: None,
                    confidence: None,
                });
                Ok(true)
            }
            _ => {
                self.ignored += 1;
                Ok(false)
            }
        }
    }

    fn add_seen(&mut self, id: &str, count: u64, first: Option<UnixTime>, last: Option<UnixTime>) {
        let e = self.seen.entry(id.to_string()).or_insert((0, None, None));
        e.0 = e.0.saturating_add(count);
        e.1 = match (e.1, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        e.2 = match (e.2, last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Converts what was read into events, in document order; answers how many.
    pub(crate) fn finish(self, to: &Convert<'_>, emit: &mut dyn FnMut(Event)) -> u64 {
        let mut accepted = 0;
        for p in self.pending {
            let tlp = p
                .markings
                .iter()
                .filter_map(|m| crate::stix::tlp_of_marking_ref(m).or_else(|| self.markings.get(m).copied()))
                .max()
                .unwrap_or(to.import.default_tlp);
            let mut classification = None;
            let mut malware = None;
            for l in &p.labels {
                match Classification::parse_lenient(l) {
                    Some(c) if classification.is_none() && c != Classification::Other => classification = Some(c),
                    Some(_) => {}
                    None if malware.is_none() && is_family_label(l) => malware = Some(l.clone()),
                    None => {}
                }
            }
            if let Some(ms) = self.indicates.get(&p.id)
                && let Some(name) = ms.iter().find_map(|m| self.malware.get(m))
            {
                malware = Some(name.clone());
            }
            let seen = self.seen.get(&p.id);
            // A direction alone does not say what a machine is: it does not name a class.
            for (value, port, _direction) in p.values {
                let mut ev = to.event(value, p.entry);
                ev.port = port;
                ev.classification = classification.unwrap_or(mapping::UNNAMED);
                ev.malware = malware.as_deref().map(Arc::from);
                ev.tlp = tlp;
                ev.confidence = p.confidence.unwrap_or(to.import.default_confidence);
                ev.first_seen = seen.and_then(|s| s.1).or(p.first);
                ev.last_seen = seen.and_then(|s| s.2).or(p.last);
                ev.time_source = ev.first_seen;
                // The sightings a `sighting` or `observed-data` counted.
                ev.count = seen.map_or(1, |s| s.0.clamp(1, u64::from(u32::MAX)) as u32);
                accepted += 1;
                emit(ev);
            }
        }
        accepted
    }
}

/// A label that may name a malware family: not a vocabulary word of STIX.
fn is_family_label(l: &str) -> bool {
    !matches!(
        l,
        "malicious-activity" | "anomalous-activity" | "attribution" | "benign" | "compromised" | "unknown"
    ) && !l.contains(':')
        && l.len() <= 64
}

fn clip(s: &str) -> String {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The TLP level a marking-definition object states: the TLP 2.0 extension, or TLP 1.0's
/// `definition_type: tlp`.
pub fn marking_tlp(v: &Value) -> Option<Tlp> {
    if let Some(t) = v
        .get("id")
        .and_then(Value::as_str)
        .and_then(crate::stix::tlp_of_marking_ref)
    {
        return Some(t);
    }
    if let Some(word) = v
        .get("extensions")
        .and_then(|e| e.get(crate::stix::TLP2_EXTENSION))
        .and_then(|x| x.get("tlp_2_0"))
        .and_then(Value::as_str)
    {
        return word.parse().ok();
    }
    if s(v, "definition_type") == Some("tlp") {
        return v
            .get("definition")
            .and_then(|d| d.get("tlp"))
            .and_then(Value::as_str)
            .and_then(|w| w.parse().ok());
    }
    None
}
