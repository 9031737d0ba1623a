//! STIX 2.1 and MISP mappings of an [`Indicator`].
//!
//! TLP 2.0 marking-definition ids are the fixed ones from OASIS
//! `cti-stix-common-objects/extension-definition-specifications/tlp-2.0/marking-definition.json`
//! (as recorded in shared/intel-formats.md §3.2).

use crate::aggregate::{Indicator, LIAISON_NAMESPACE};
use crate::model::{Classification, IndicatorKind, IndicatorValue};
use crate::time::format_rfc3339;
use liaison_core::Tlp;
use serde_json::{Value, json};
use uuid::Uuid;

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

/// Namespace for STIX ids derived from indicator values.
const STIX_NAMESPACE: Uuid = Uuid::from_u128(LIAISON_NAMESPACE.as_u128() ^ 0x5717);

/// Escapes a string for a STIX pattern literal (backslash and single quote).
fn pattern_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The STIX patterning expression for an indicator value.
pub fn stix_pattern(value: &IndicatorValue) -> String {
    match value {
        IndicatorValue::Ipv4(a) => format!("[ipv4-addr:value = '{a}']"),
        IndicatorValue::Ipv6(a) => format!("[ipv6-addr:value = '{a}']"),
        IndicatorValue::Cidr(ipnet::IpNet::V4(n)) => format!("[ipv4-addr:value = '{n}']"),
        IndicatorValue::Cidr(ipnet::IpNet::V6(n)) => format!("[ipv6-addr:value = '{n}']"),
        IndicatorValue::Asn(a) => format!("[autonomous-system:number = {a}]"),
        IndicatorValue::Text(kind, s) => {
            let lit = pattern_literal(s);
            match kind {
                IndicatorKind::Domain => format!("[domain-name:value = '{lit}']"),
                IndicatorKind::Url => format!("[url:value = '{lit}']"),
                IndicatorKind::Email => format!("[email-addr:value = '{lit}']"),
                IndicatorKind::FileHash => {
                    let algo = match s.len() {
                        32 => "MD5",
                        40 => "SHA-1",
                        _ => "SHA-256",
                    };
                    format!("[file:hashes.'{algo}' = '{lit}']")
                }
                _ => format!("[x-liaison-indicator:value = '{lit}']"),
            }
        }
    }
}

fn indicator_types(c: Classification) -> &'static [&'static str] {
    match c {
        Classification::InfectedSystem | Classification::VulnerableSystem => &["compromised"],
        Classification::Scanner => &["anomalous-activity"],
        _ => &["malicious-activity"],
    }
}

/// The deterministic STIX id (`indicator--<UUIDv5>`) of an indicator.
pub fn stix_id(ind: &Indicator) -> String {
    let name = format!("{}|{}", ind.kind.as_str(), ind.value);
    format!("indicator--{}", Uuid::new_v5(&STIX_NAMESPACE, name.as_bytes()))
}

/// A STIX 2.1 `indicator` SDO for `ind`.
pub fn indicator_to_stix(ind: &Indicator) -> Value {
    let mut labels = vec![Value::from(ind.classification.as_str())];
    if let Some(m) = &ind.malware {
        labels.push(Value::from(m.to_lowercase()));
    }
    let mut obj = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id(ind),
        "created": format_rfc3339(ind.first_seen),
        "modified": format_rfc3339(ind.last_seen.max(ind.first_seen)),
        "name": format!("{} {}", ind.classification, ind.value),
        "indicator_types": indicator_types(ind.classification),
        "pattern": stix_pattern(&ind.value),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": format_rfc3339(ind.first_seen),
        "confidence": ind.confidence.min(100),
        "labels": labels,
        "object_marking_refs": [tlp_marking_ref(ind.tlp)],
    });
    if let Some(map) = obj.as_object_mut() {
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
        map.insert("description".into(), Value::from(desc));
    }
    obj
}

/// The MISP attribute `type` for an indicator.
pub fn misp_type(ind: &Indicator) -> &'static str {
    let dst = matches!(
        ind.classification,
        Classification::C2Server
            | Classification::Phishing
            | Classification::MalwareDistribution
            | Classification::Ransomware
            | Classification::Carding
            | Classification::DarknetMarket
    );
    match &ind.value {
        IndicatorValue::Ipv4(_) | IndicatorValue::Ipv6(_) | IndicatorValue::Cidr(_) => {
            if dst {
                "ip-dst"
            } else {
                "ip-src"
            }
        }
        IndicatorValue::Asn(_) => "AS",
        IndicatorValue::Text(IndicatorKind::Domain, _) => "domain",
        IndicatorValue::Text(IndicatorKind::Url, _) => "url",
        IndicatorValue::Text(IndicatorKind::Email, _) => "email-src",
        IndicatorValue::Text(IndicatorKind::FileHash, h) => match h.len() {
            32 => "md5",
            40 => "sha1",
            _ => "sha256",
        },
        IndicatorValue::Text(..) => "text",
    }
}

/// A MISP attribute (core format) for an indicator, with a `tlp:` taxonomy tag.
pub fn indicator_to_misp(ind: &Indicator) -> Value {
    let ty = misp_type(ind);
    let category = match ty {
        "md5" | "sha1" | "sha256" => "Payload delivery",
        _ => "Network activity",
    };
    let tlp_tag = ind.tlp.as_str().to_ascii_lowercase();
    let name = format!("{}|{}", ind.kind.as_str(), ind.value);
    json!({
        "uuid": Uuid::new_v5(&STIX_NAMESPACE, name.as_bytes()).to_string(),
        "type": ty,
        "category": category,
        "value": ind.value.to_string(),
        "to_ids": true,
        "distribution": "5",
        "comment": format!("{} from {}", ind.classification, ind.feed),
        "first_seen": format_rfc3339(ind.first_seen),
        "last_seen": format_rfc3339(ind.last_seen),
        "Tag": [{"name": tlp_tag}],
    })
}
