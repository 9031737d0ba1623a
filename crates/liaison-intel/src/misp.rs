//! MISP export (events, and a feed a MISP instance can subscribe to) and import (events and
//! feeds) of indicators (docs/intel-formats.md, "MISP").
//!
//! **Export.** Indicators are grouped into one event per feed and TLP level; the event's
//! `tlp:` tag and `distribution` state the level ([`distribution_of`]), each attribute
//! carries the classification as an RSIT (or `liaison:`) tag and, when known, the malware
//! family as `liaison:malware="…"`. Type and category come from [`crate::mapping`], the one
//! mapping the STIX export uses too. Ids are deterministic (UUIDv5).
//!
//! **Import.** A MISP event (`{"Event": {…}}`), a restSearch answer (`{"response": [{"Event":
//! …}, …]}`) or a list of events is streamed attribute by attribute (also inside `Object`s).
//! An attribute's marking is the strictest `tlp:` tag of the attribute and its event; without
//! any, its `distribution` (or the event's, for 5 "inherit") by [`tlp_of_distribution`];
//! without either, the source's default. Attributes of types Liaison does not keep, deleted
//! ones and those not meant for detection (`to_ids` false) are skipped and counted.

use crate::aggregate::{Indicator, LIAISON_NAMESPACE};
use crate::mapping::{self, Direction};
use crate::model::{Classification, Event, IndicatorValue};
use crate::source::{Convert, QuarantineReason};
use crate::time::{UnixTime, format_day, format_rfc3339};
use liaison_core::Tlp;
use serde_json::{Value, json};
use std::io::{self, Write};
use std::sync::Arc;
use uuid::Uuid;

const MISP_NAMESPACE: Uuid = Uuid::from_u128(LIAISON_NAMESPACE.as_u128() ^ 0x3159);

fn v5(name: &str) -> Uuid {
    Uuid::new_v5(&MISP_NAMESPACE, name.as_bytes())
}

/// The MISP `distribution` an export gives a TLP level: CLEAR "All communities" (3), GREEN
/// "This community only" (1), AMBER and stricter "Your organisation only" (0).
pub fn distribution_of(tlp: Tlp) -> u8 {
    match tlp {
        Tlp::Clear => 3,
        Tlp::Green => 1,
        Tlp::Amber | Tlp::AmberStrict | Tlp::Red => 0,
    }
}

/// The TLP level an import reads from a MISP `distribution` when no `tlp:` tag says one:
/// 0 "Your organisation only" is AMBER+STRICT, 1 "This community only" and 2 "Connected
/// communities" GREEN, 3 "All communities" CLEAR, 4 "Sharing group" AMBER+STRICT (a named
/// group, which TLP cannot name). `None` for 5 "Inherit event" and unknown values.
pub fn tlp_of_distribution(d: u8) -> Option<Tlp> {
    match d {
        0 | 4 => Some(Tlp::AmberStrict),
        1 | 2 => Some(Tlp::Green),
        3 => Some(Tlp::Clear),
        _ => None,
    }
}

/// The producing organisation (`Orgc` of every event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub code: String,
    pub name: String,
}

impl Org {
    fn json(&self) -> Value {
        json!({"name": self.name, "uuid": v5(&format!("org|{}", self.code)).to_string()})
    }
}

/// The key an indicator's event is chosen by: its feed and TLP level.
pub fn event_key(ind: &Indicator) -> (Arc<str>, Tlp) {
    (ind.feed.clone(), ind.tlp)
}

/// The id of the event for one feed and level.
pub fn event_uuid(org: &Org, feed: &str, tlp: Tlp) -> Uuid {
    v5(&format!("event|{}|{feed}|{}", org.code, tlp.as_str()))
}

/// The header of the event for one feed and level. `updated` is its newest sighting: the
/// event's `timestamp`, so a subscribing MISP fetches it again only when it changed.
pub fn event_header(org: &Org, feed: &str, tlp: Tlp, updated: UnixTime) -> Value {
    let now = updated;
    let uuid = event_uuid(org, feed, tlp);
    json!({
        "uuid": uuid.to_string(),
        "info": format!("{feed}: indicators from {} ({})", org.name, tlp.as_str()),
        "date": format_day(now),
        "timestamp": now.to_string(),
        "publish_timestamp": now.to_string(),
        "published": true,
        "analysis": "2",
        "threat_level_id": "2",
        "distribution": distribution_of(tlp).to_string(),
        "sharing_group_id": "0",
        "Orgc": org.json(),
        "Org": org.json(),
        "Tag": [{"name": mapping::tlp_tag(tlp)}],
    })
}

/// The MISP attribute of an indicator (its event states the TLP level).
pub fn indicator_to_misp(ind: &Indicator) -> Value {
    let (ty, category) = mapping::misp_type(&ind.value, Direction::of(ind.classification));
    let name = format!("{}|{}", ind.kind.as_str(), ind.value);
    let mut tags = vec![json!({"name": mapping::classification_tag(ind.classification)})];
    if let Some(m) = &ind.malware {
        tags.push(json!({"name": format!("liaison:malware=\"{}\"", m.to_lowercase().replace('"', ""))}));
    }
    tags.push(json!({"name": mapping::tlp_tag(ind.tlp)}));
    json!({
        "uuid": v5(&format!("attribute|{name}")).to_string(),
        "type": ty,
        "category": category,
        "value": ind.value.to_string(),
        "to_ids": true,
        "distribution": "5",
        "timestamp": ind.last_seen.to_string(),
        "first_seen": format_rfc3339(ind.first_seen),
        "last_seen": format_rfc3339(ind.last_seen.max(ind.first_seen)),
        "comment": format!("{} from {}; seen {} times", ind.classification, ind.feed, ind.sightings),
        "Tag": tags,
    })
}

/// The manifest entry of an event (a MISP feed's `manifest.json`).
pub fn manifest_entry(header: &Value) -> Value {
    let mut m = serde_json::Map::new();
    for k in [
        "info",
        "Orgc",
        "Tag",
        "analysis",
        "threat_level_id",
        "timestamp",
        "date",
        "publish_timestamp",
    ] {
        if let Some(v) = header.get(k) {
            m.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(m)
}

/// Writes one event (`{"Event": {…, "Attribute": […]}}`) attribute by attribute.
pub struct EventWriter<W: Write> {
    out: W,
    first: bool,
    pub attributes: u64,
}

impl<W: Write> EventWriter<W> {
    /// Writes the header; attributes follow.
    pub fn begin(mut out: W, header: &Value) -> io::Result<EventWriter<W>> {
        let mut head = serde_json::to_vec(header)?;
        // `{…}` -> `{"Event":{…,"Attribute":[`
        head.pop();
        out.write_all(b"{\"Event\":")?;
        out.write_all(&head)?;
        out.write_all(b",\"Attribute\":[")?;
        Ok(EventWriter {
            out,
            first: true,
            attributes: 0,
        })
    }

    pub fn attribute(&mut self, ind: &Indicator) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, &indicator_to_misp(ind))?;
        self.attributes += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"]}}")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

// ----- import ----------------------------------------------------------------------------------

struct PendingAttr {
    entry: u64,
    value: IndicatorValue,
    tlp: Option<Tlp>,
    distribution: Option<u8>,
    classification: Option<Classification>,
    malware: Option<String>,
    first: Option<UnixTime>,
    last: Option<UnixTime>,
}

/// One event being read: its own tags and distribution, and its attributes.
#[derive(Default)]
pub(crate) struct MispEvent {
    tlp: Option<Tlp>,
    classification: Option<Classification>,
    distribution: Option<u8>,
    timestamp: Option<UnixTime>,
    attrs: Vec<PendingAttr>,
    /// Attributes skipped: types Liaison does not keep, deleted, or not for detection.
    pub(crate) skipped: u64,
}

/// What tags say: the strictest TLP, a classification, a malware family.
type Tagged = (Option<Tlp>, Option<Classification>, Option<String>);

fn read_tags(v: &Value) -> Result<Tagged, QuarantineReason> {
    let mut tlp: Option<Tlp> = None;
    let mut class = None;
    let mut malware = None;
    let Some(tags) = v.get("Tag") else {
        return Ok((None, None, None));
    };
    let Some(tags) = tags.as_array() else {
        return Err(QuarantineReason::Malformed {
            message: "field 'Tag' must be a list".into(),
        });
    };
    for t in tags {
        let name = match t {
            Value::Object(o) => o.get("name").and_then(Value::as_str),
            Value::String(s) => Some(s.as_str()),
            _ => None,
        };
        let Some(name) = name.map(str::trim) else {
            continue;
        };
        if let Some(level) = name.strip_prefix("tlp:").or_else(|| name.strip_prefix("TLP:")) {
            if let Ok(t) = level.parse::<Tlp>() {
                tlp = stricter(tlp, Some(t));
            }
        } else if let Some(c) = mapping::classification_from_tag(name) {
            class.get_or_insert(c);
        } else if let Some(m) = name.strip_prefix("liaison:malware=") {
            malware.get_or_insert_with(|| m.trim_matches('"').chars().take(64).collect());
        }
    }
    Ok((tlp, class, malware))
}

/// The stricter of two levels, either of which may be missing.
fn stricter(a: Option<Tlp>, b: Option<Tlp>) -> Option<Tlp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.stricter(y)),
        (x, y) => x.or(y),
    }
}

fn distribution(v: &Value) -> Option<u8> {
    match v.get("distribution")? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        _ => None,
    }
}

fn instant(v: &Value, k: &str) -> Result<Option<UnixTime>, QuarantineReason> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) if t.trim().is_empty() => Ok(None),
        Some(Value::String(t)) => QuarantineReason::timestamp(k, t).map(Some),
        Some(Value::Number(n)) => Ok(n.as_i64()),
        Some(_) => Err(QuarantineReason::Malformed {
            message: format!("field '{k}' must be a timestamp"),
        }),
    }
}

impl MispEvent {
    /// Reads the event's own fields (everything but attributes and objects).
    pub(crate) fn header(&mut self, key: &str, v: &Value) -> Result<(), QuarantineReason> {
        match key {
            "Tag" => {
                let (tlp, class, _) = read_tags(&json!({"Tag": v}))?;
                self.tlp = stricter(self.tlp, tlp);
                self.classification = self.classification.or(class);
            }
            "distribution" => self.distribution = distribution(&json!({"distribution": v})),
            "timestamp" => self.timestamp = instant(&json!({"timestamp": v}), "timestamp")?,
            _ => {}
        }
        Ok(())
    }

    /// Reads one attribute. `Ok(false)`: skipped (counted in `skipped`).
    pub(crate) fn attribute(&mut self, entry: u64, v: &Value, max_field: usize) -> Result<bool, QuarantineReason> {
        if !v.is_object() {
            return Err(QuarantineReason::Malformed {
                message: "attribute is not a JSON object".into(),
            });
        }
        let ty = match v.get("type") {
            Some(Value::String(t)) => t.as_str(),
            _ => {
                return Err(QuarantineReason::Malformed {
                    message: "attribute without a string 'type'".into(),
                });
            }
        };
        let raw = match v.get("value") {
            Some(Value::String(t)) => t.trim(),
            _ => {
                return Err(QuarantineReason::Malformed {
                    message: format!("{ty} attribute without a string 'value'"),
                });
            }
        };
        let flag = |k: &str| match v.get(k) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => Some(matches!(s.as_str(), "1" | "true")),
            Some(Value::Number(n)) => Some(n.as_u64() == Some(1)),
            _ => None,
        };
        // The direction is in the type; the stored indicator keeps it through its
        // classification only (docs/intel-formats.md).
        QuarantineReason::check_len("value", raw, max_field)?;
        let Some((kind, _direction)) = mapping::from_misp_type(ty) else {
            self.skipped += 1;
            return Ok(false);
        };
        if flag("deleted") == Some(true) || flag("to_ids") == Some(false) {
            self.skipped += 1;
            return Ok(false);
        }
        let value = match kind {
            Some(k) => IndicatorValue::parse(k, raw)?,
            None => {
                let val = IndicatorValue::detect(raw)?;
                if !matches!(
                    val.kind(),
                    crate::model::IndicatorKind::Ipv4
                        | crate::model::IndicatorKind::Ipv6
                        | crate::model::IndicatorKind::Cidr
                ) {
                    return Err(QuarantineReason::BadIndicator {
                        message: format!("{ty} value '{}' is not an IP address or network", clip(raw)),
                    });
                }
                val
            }
        };
        let (tlp, classification, malware) = read_tags(v)?;
        let first = instant(v, "first_seen")?;
        let last = instant(v, "last_seen")?.or(instant(v, "timestamp")?);
        self.attrs.push(PendingAttr {
            entry,
            value,
            tlp,
            distribution: distribution(v),
            classification,
            malware,
            first,
            last,
        });
        Ok(true)
    }

    /// Converts the event's attributes into events; answers how many.
    pub(crate) fn finish(self, to: &Convert<'_>, emit: &mut dyn FnMut(Event)) -> u64 {
        let mut n = 0;
        for a in self.attrs {
            let tagged = stricter(a.tlp, self.tlp);
            let by_distribution = a
                .distribution
                .and_then(tlp_of_distribution)
                .or_else(|| self.distribution.and_then(tlp_of_distribution));
            let tlp = tagged.or(by_distribution).unwrap_or(to.import.default_tlp);
            let mut ev = to.event(a.value, a.entry);
            ev.classification = a.classification.or(self.classification).unwrap_or(mapping::UNNAMED);
            ev.malware = a.malware.as_deref().map(Arc::from);
            ev.tlp = tlp;
            ev.first_seen = a.first;
            ev.last_seen = a.last.or(self.timestamp);
            ev.time_source = a.first.or(ev.last_seen);
            n += 1;
            emit(ev);
        }
        n
    }
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

/// The largest `manifest.json` read (a feed of a million events has a manifest of a few
/// hundred MB at most; this refuses anything far beyond the feeds MISP instances publish).
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// The event ids a MISP feed's `manifest.json` lists, in the manifest's order. Every key
/// must be a UUID (a feed's event files are named `<uuid>.json`: a key that is not a UUID
/// could name another file).
pub fn read_manifest(reader: impl std::io::Read) -> Result<Vec<Uuid>, String> {
    let mut text = Vec::new();
    use std::io::Read as _;
    reader
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot read the manifest: {e}"))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes"));
    }
    let v: serde_json::Map<String, Value> = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "line {} column {}: not a MISP feed manifest (an object of event uuid to event header): {e}",
            e.line(),
            e.column()
        )
    })?;
    v.keys()
        .map(|k| {
            Uuid::parse_str(k).map_err(|_| format!("the manifest names an event '{}', which is not a UUID", clip(k)))
        })
        .collect()
}
