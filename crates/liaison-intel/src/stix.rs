//! STIX 2.1 export of indicators and notices (docs/intel-formats.md).
//!
//! Every object has a deterministic id (UUIDv5 of what it is about), so exporting the same
//! indicator twice gives the same object, and a newer sighting a newer version (`modified`).
//! A bundle carries the TLP 2.0 marking-definition objects its objects reference: the fixed
//! objects OASIS publishes (`cti-stix-common-objects`, `extension-definition-specifications/
//! tlp-2.0`, as recorded in shared/intel-formats.md §3.2), written the same way here.
//!
//! Around an indicator: its malware family (`malware`, `is_family: true`, and an `indicates`
//! relationship), its sightings (one `sighting` with the count and first and last seen), the
//! producing agency (`identity`, `created_by_ref`). A clean-up notice is a `report` whose
//! `object_refs` are its items' indicators.

use crate::aggregate::{Indicator, LIAISON_NAMESPACE, StoredNotice};
use crate::mapping::{Direction, stix_pattern};
use crate::model::{Classification, IndicatorValue};
use crate::time::{UnixTime, format_rfc3339};
use liaison_core::Tlp;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{self, Write};
use uuid::Uuid;

/// The id of the STIX extension definition that carries TLP 2.0 levels.
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// When OASIS created the TLP 2.0 marking definitions (their `created`).
const TLP2_CREATED: &str = "2022-10-01T00:00:00.000Z";

/// The `created` of objects Liaison defines once, whatever the export (the producer's
/// identity, a malware family): the day this mapping was written, so that every export
/// gives them the same content.
pub const MAPPING_EPOCH: UnixTime = 1_764_547_200; // 2025-12-01T00:00:00Z

/// The STIX 2.1 id of the TLP 2.0 marking definition for a label.
pub fn tlp_marking_ref(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
    }
}

/// The TLP 1.0 marking-definition ids (STIX 2.1 §7.2.1.4), read by imports: WHITE is CLEAR.
pub const TLP1_MARKINGS: [(&str, Tlp); 4] = [
    ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", Tlp::Clear),
    ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", Tlp::Green),
    ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", Tlp::Amber),
    ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", Tlp::Red),
];

/// The TLP level of a well-known marking-definition id (TLP 2.0 or TLP 1.0).
pub fn tlp_of_marking_ref(id: &str) -> Option<Tlp> {
    Tlp::ALL
        .into_iter()
        .find(|t| tlp_marking_ref(*t) == id)
        .or_else(|| TLP1_MARKINGS.iter().find(|(m, _)| *m == id).map(|(_, t)| *t))
}

/// The word of a level in the TLP 2.0 extension (`amber+strict`).
pub fn tlp2_word(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "clear",
        Tlp::Green => "green",
        Tlp::Amber => "amber",
        Tlp::AmberStrict => "amber+strict",
        Tlp::Red => "red",
    }
}

/// The TLP 2.0 marking-definition object of a level, as OASIS defines it.
pub fn marking_definition(tlp: Tlp) -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp_marking_ref(tlp),
        "created": TLP2_CREATED,
        "name": tlp.as_str(),
        "extensions": {
            TLP2_EXTENSION: {
                "extension_type": "property-extension",
                "tlp_2_0": tlp2_word(tlp),
            }
        }
    })
}

/// Namespace for STIX ids derived from indicator values.
const STIX_NAMESPACE: Uuid = Uuid::from_u128(LIAISON_NAMESPACE.as_u128() ^ 0x5717);

fn v5(name: &str) -> Uuid {
    Uuid::new_v5(&STIX_NAMESPACE, name.as_bytes())
}

/// The producing agency: `created_by_ref` of every object an export writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    /// The agency's code (`DE-BKA`): the identity's id is derived from it.
    pub code: String,
    /// Its name as the identity shows it.
    pub name: String,
}

impl Producer {
    /// The identity's STIX id.
    pub fn stix_id(&self) -> String {
        format!("identity--{}", v5(&format!("agency|{}", self.code)))
    }

    /// The `identity` object.
    pub fn identity(&self) -> Value {
        let t = format_rfc3339(MAPPING_EPOCH);
        json!({
            "type": "identity",
            "spec_version": "2.1",
            "id": self.stix_id(),
            "created": t,
            "modified": t,
            "name": self.name,
            "identity_class": "organization",
            "sectors": ["government-public-services"],
            "object_marking_refs": [tlp_marking_ref(Tlp::Clear)],
        })
    }
}

/// Sets `created_by_ref` of an object to the producer's identity, when there is one.
fn created_by(obj: &mut Value, producer: Option<&Producer>) {
    if let (Some(p), Some(map)) = (producer, obj.as_object_mut()) {
        map.insert("created_by_ref".into(), Value::from(p.stix_id()));
    }
}

/// The deterministic STIX id (`indicator--<UUIDv5>`) of an indicator.
pub fn stix_id(ind: &Indicator) -> String {
    value_stix_id(&ind.value)
}

/// [`stix_id`] from the value alone.
pub fn value_stix_id(value: &IndicatorValue) -> String {
    let name = format!("{}|{}", value.kind().as_str(), value);
    format!("indicator--{}", v5(&name))
}

/// The id of a malware family's `malware` object (by its name, case-insensitive).
pub fn malware_id(family: &str) -> String {
    format!("malware--{}", v5(&format!("malware|{}", family.to_lowercase())))
}

fn indicator_types(c: Classification) -> &'static [&'static str] {
    match c {
        Classification::InfectedSystem | Classification::VulnerableSystem => &["compromised"],
        Classification::Scanner => &["anomalous-activity"],
        _ => &["malicious-activity"],
    }
}

/// The `indicator` object of an indicator. Its `labels` are the classification and, when
/// known, the malware family (lower case), which an import reads back.
pub fn indicator_to_stix(ind: &Indicator, producer: Option<&Producer>) -> Value {
    let mut labels = vec![Value::from(ind.classification.as_str())];
    if let Some(m) = &ind.malware {
        labels.push(Value::from(m.to_lowercase()));
    }
    let mut desc = format!(
        "{} ({}) reported by {}",
        ind.classification,
        ind.classification.taxonomy(),
        ind.feed
    );
    if let Some(cc) = ind.source_country {
        desc.push_str(&format!("; hosted in {cc}"));
    }
    if let Some(asn) = ind.source_asn {
        desc.push_str(&format!("; AS{asn}"));
    }
    if ind.victims() > 0 {
        desc.push_str(&format!("; {} victims", ind.victims()));
    }
    let mut obj = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id(ind),
        "created": format_rfc3339(ind.first_seen),
        "modified": format_rfc3339(ind.last_seen.max(ind.first_seen)),
        "name": format!("{} {}", ind.classification, ind.value),
        "description": desc,
        "indicator_types": indicator_types(ind.classification),
        "pattern": stix_pattern(&ind.value, Direction::of(ind.classification)),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": format_rfc3339(ind.first_seen),
        "confidence": ind.confidence.min(100),
        "labels": labels,
        "object_marking_refs": [tlp_marking_ref(ind.tlp)],
    });
    created_by(&mut obj, producer);
    obj
}

/// The `malware` object of a family (public knowledge: TLP:CLEAR).
pub fn malware_to_stix(family: &str, producer: Option<&Producer>) -> Value {
    let t = format_rfc3339(MAPPING_EPOCH);
    let mut obj = json!({
        "type": "malware",
        "spec_version": "2.1",
        "id": malware_id(family),
        "created": t,
        "modified": t,
        "name": family,
        "is_family": true,
        "object_marking_refs": [tlp_marking_ref(Tlp::Clear)],
    });
    created_by(&mut obj, producer);
    obj
}

/// The objects around an indicator: `indicates` to its malware family and its `sighting`
/// (the family's `malware` object itself is written once per bundle by [`BundleWriter`]).
pub fn related_to_stix(ind: &Indicator, producer: Option<&Producer>) -> Vec<Value> {
    let id = stix_id(ind);
    let created = format_rfc3339(ind.first_seen);
    let marking = [tlp_marking_ref(ind.tlp)];
    let mut out = Vec::with_capacity(2);
    if let Some(m) = &ind.malware {
        let target = malware_id(m);
        out.push(json!({
            "type": "relationship",
            "spec_version": "2.1",
            "id": format!("relationship--{}", v5(&format!("indicates|{id}|{target}"))),
            "created": created,
            "modified": created,
            "relationship_type": "indicates",
            "source_ref": id,
            "target_ref": target,
            "object_marking_refs": marking,
        }));
    }
    for o in &mut out {
        created_by(o, producer);
    }
    out.push(sighting_to_stix(ind, producer));
    out
}

/// The `sighting` of an indicator: how often and between when its feed saw it.
pub fn sighting_to_stix(ind: &Indicator, producer: Option<&Producer>) -> Value {
    let id = stix_id(ind);
    let created = format_rfc3339(ind.first_seen);
    let modified = format_rfc3339(ind.last_seen.max(ind.first_seen));
    let mut obj = json!({
        "type": "sighting",
        "spec_version": "2.1",
        "id": format!("sighting--{}", v5(&format!("sighting|{id}"))),
        "created": created,
        "modified": modified,
        "sighting_of_ref": id,
        "count": ind.sightings.min(999_999_999),
        "first_seen": created,
        "last_seen": modified,
        "description": format!("Seen {} times in feed {}", ind.sightings, ind.feed),
        "object_marking_refs": [tlp_marking_ref(ind.tlp)],
    });
    created_by(&mut obj, producer);
    obj
}

/// A clean-up notice as a `report` whose `object_refs` are its items' indicators; its
/// marking is the notice's (the strictest of its items, never lower), its PAP a label.
pub fn notice_to_stix(n: &StoredNotice, producer: Option<&Producer>) -> Value {
    let notice = &n.notice;
    let refs: Vec<Value> = notice
        .items
        .iter()
        .filter_map(|i| IndicatorValue::parse(i.kind, &i.value).ok())
        .map(|v| Value::from(value_stix_id(&v)))
        .collect();
    let published = format_rfc3339(n.issued_at);
    let mut obj = json!({
        "type": "report",
        "spec_version": "2.1",
        "id": format!("report--{}", notice.id.0),
        "created": published,
        "modified": published,
        "name": format!(
            "Clean-up notice for {} ({} to {})",
            notice.partner,
            format_rfc3339(notice.interval.start),
            format_rfc3339(notice.interval.end)
        ),
        "description": format!(
            "{} machines in {}'s networks to clean up; {}",
            notice.items.len(),
            notice.partner,
            notice.pap.as_str()
        ),
        "report_types": ["indicator"],
        "published": published,
        "object_refs": refs,
        "labels": [notice.pap.as_str().to_ascii_lowercase()],
        "object_marking_refs": [tlp_marking_ref(notice.tlp)],
    });
    created_by(&mut obj, producer);
    obj
}

/// Writes a STIX 2.1 bundle object by object (never the whole bundle in memory), adding each
/// marking definition and malware family the first time an object needs it.
pub struct BundleWriter<W: Write> {
    out: W,
    producer: Option<Producer>,
    markings: [bool; 5],
    malware: HashSet<String>,
    first: bool,
    objects: u64,
}

impl<W: Write> BundleWriter<W> {
    /// Starts the bundle `bundle--<id>` (and writes the producer's identity).
    pub fn begin(mut out: W, id: Uuid, producer: Option<Producer>) -> io::Result<BundleWriter<W>> {
        write!(out, "{{\"type\":\"bundle\",\"id\":\"bundle--{id}\",\"objects\":[")?;
        let mut w = BundleWriter {
            out,
            producer,
            markings: [false; 5],
            malware: HashSet::new(),
            first: true,
            objects: 0,
        };
        if let Some(p) = w.producer.clone() {
            w.object(&p.identity())?;
        }
        Ok(w)
    }

    /// Objects written so far.
    pub fn objects(&self) -> u64 {
        self.objects
    }

    fn raw(&mut self, v: &Value) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, v)?;
        self.objects += 1;
        Ok(())
    }

    /// Writes one object, after the marking definitions it references.
    pub fn object(&mut self, v: &Value) -> io::Result<()> {
        if let Some(refs) = v.get("object_marking_refs").and_then(Value::as_array) {
            for r in refs {
                if let Some(t) = r.as_str().and_then(tlp_of_marking_ref) {
                    let i = t as usize;
                    if !self.markings[i] {
                        self.markings[i] = true;
                        self.raw(&marking_definition(t))?;
                    }
                }
            }
        }
        self.raw(v)
    }

    /// An indicator with its malware family, `indicates` relationship and sighting.
    pub fn indicator(&mut self, ind: &Indicator) -> io::Result<()> {
        let p = self.producer.clone();
        if let Some(m) = &ind.malware
            && self.malware.insert(m.to_lowercase())
        {
            self.object(&malware_to_stix(m, p.as_ref()))?;
        }
        self.object(&indicator_to_stix(ind, p.as_ref()))?;
        for o in related_to_stix(ind, p.as_ref()) {
            self.object(&o)?;
        }
        Ok(())
    }

    /// A notice as a `report` (its indicators are written with [`BundleWriter::indicator`]).
    pub fn notice(&mut self, n: &StoredNotice) -> io::Result<()> {
        let p = self.producer.clone();
        self.object(&notice_to_stix(n, p.as_ref()))
    }

    /// Closes the bundle and hands the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"]}")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The indicator a notice item describes (for exporting a notice's items as indicators).
pub fn item_indicator(item: &crate::aggregate::NoticeItem, feed: &str) -> Option<Indicator> {
    let value = IndicatorValue::parse(item.kind, &item.value).ok()?;
    let mut ev = crate::model::Event::new(value, std::sync::Arc::from(feed), item.last_seen);
    ev.classification = item.classification;
    ev.malware = item.malware.clone();
    ev.first_seen = Some(item.first_seen);
    ev.last_seen = Some(item.last_seen);
    ev.tlp = item.tlp;
    ev.port = item.port;
    ev.source_country = item.source_country;
    ev.source_asn = item.source_asn;
    ev.as_org = item.as_org.clone();
    ev.victim_count = item.victim_count;
    let mut ind = Indicator::from_event(&ev);
    ind.sightings = item.sightings.max(1);
    Some(ind)
}
