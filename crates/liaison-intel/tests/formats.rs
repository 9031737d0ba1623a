//! STIX 2.1 and MISP: what an export writes, that an import reads it back (kind, value,
//! direction, classification, malware, marking), and that hostile documents are refused
//! with an error that names what is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use liaison_core::Tlp;
use liaison_intel::misp::{EventWriter, Org, event_header};
use liaison_intel::source::{SourceError, parse_to_vec};
use liaison_intel::stix::{BundleWriter, Producer, tlp_marking_ref};
use liaison_intel::{Classification, CleanupState, Event, FeedFormat, ImportConfig, IndicatorValue, SourceConfig};
use serde_json::Value;
use std::sync::Arc;

const T0: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z

fn state() -> CleanupState {
    let mut s = CleanupState::new();
    let rows: [(&str, Classification, Option<&str>, Tlp); 9] = [
        (
            "198.51.100.1",
            Classification::C2Server,
            Some("QakBot"),
            Tlp::AmberStrict,
        ),
        ("203.0.113.9", Classification::InfectedSystem, None, Tlp::Green),
        ("2001:db8::7", Classification::Scanner, None, Tlp::Clear),
        ("192.0.2.0/24", Classification::Other, None, Tlp::Amber),
        ("evil.example", Classification::Phishing, None, Tlp::Red),
        (
            "http://evil.example/it's",
            Classification::MalwareDistribution,
            Some("Emotet"),
            Tlp::Amber,
        ),
        ("spam@evil.example", Classification::Spam, None, Tlp::Green),
        (
            "d41d8cd98f00b204e9800998ecf8427e",
            Classification::MalwareDistribution,
            None,
            Tlp::Amber,
        ),
        ("AS64500", Classification::Other, None, Tlp::Clear),
    ];
    for (i, (value, c, m, tlp)) in rows.into_iter().enumerate() {
        let mut e = Event::new(IndicatorValue::detect(value).unwrap(), Arc::from("feed-a"), T0);
        e.classification = c;
        e.malware = m.map(Arc::from);
        e.tlp = tlp;
        e.confidence = 80;
        e.first_seen = Some(T0 - 86_400 * (i as i64 + 1));
        e.last_seen = Some(T0 - 3600);
        s.observe(&e);
        e.last_seen = Some(T0);
        s.observe(&e);
    }
    s
}

fn producer() -> Producer {
    Producer {
        code: "DE-BKA".into(),
        name: "Bundeskriminalamt".into(),
    }
}

fn stix_bundle(s: &CleanupState) -> Vec<u8> {
    let mut w = BundleWriter::begin(Vec::new(), uuid::Uuid::nil(), Some(producer())).unwrap();
    for ind in &s.indicators {
        w.indicator(ind).unwrap();
    }
    w.finish().unwrap()
}

fn import(fmt: FeedFormat, bytes: &[u8]) -> (Vec<Event>, liaison_intel::SourceReport) {
    parse_to_vec(bytes, &SourceConfig::new("in", fmt), "in.json", T0 + 100)
}

fn stix() -> FeedFormat {
    FeedFormat::Stix(ImportConfig::default())
}

fn misp() -> FeedFormat {
    FeedFormat::Misp(ImportConfig::default())
}

type Seen = Vec<(String, Classification, Option<String>, Tlp, u64)>;

fn folded(events: &[Event]) -> Seen {
    let mut s = CleanupState::new();
    for e in events {
        s.observe(e);
    }
    folded_state(&s)
}

#[test]
fn a_stix_bundle_carries_its_markings_and_reads_back_the_same() {
    let s = state();
    let bytes = stix_bundle(&s);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let objects = doc["objects"].as_array().unwrap();
    // Every marking referenced is in the bundle, once, with the OASIS TLP 2.0 content.
    let ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    for o in objects {
        for r in o["object_marking_refs"].as_array().unwrap_or(&Vec::new()) {
            assert!(
                ids.contains(&r.as_str().unwrap()),
                "{r} referenced but not in the bundle"
            );
        }
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no object twice");
    let strict = objects
        .iter()
        .find(|o| o["id"] == tlp_marking_ref(Tlp::AmberStrict))
        .unwrap();
    assert_eq!(strict["name"], "TLP:AMBER+STRICT");
    assert_eq!(strict["created"], "2022-10-01T00:00:00.000Z");
    assert_eq!(
        strict["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]["tlp_2_0"],
        "amber+strict"
    );
    let count = |t: &str| objects.iter().filter(|o| o["type"] == t).count();
    assert_eq!(count("indicator"), 9);
    assert_eq!(count("sighting"), 9);
    assert_eq!(count("malware"), 2);
    assert_eq!(count("relationship"), 2);
    assert_eq!(count("identity"), 1);
    assert_eq!(count("marking-definition"), 5);
    let sighting = objects.iter().find(|o| o["type"] == "sighting").unwrap();
    assert_eq!(sighting["count"], 2);
    // Deterministic: the same state gives the same bytes.
    assert_eq!(stix_bundle(&s), bytes);

    let (events, rep) = import(stix(), &bytes);
    assert_eq!(rep.error, None);
    assert_eq!((rep.rows, rep.accepted, rep.quarantined), (9, 9, 0), "{rep:?}");
    let want = folded_state(&s);
    assert_eq!(folded(&events), want);
}

fn folded_state(s: &CleanupState) -> Seen {
    let mut out: Seen = s
        .indicators
        .iter()
        .map(|i| {
            (
                i.value.to_string(),
                i.classification,
                i.malware.as_deref().map(str::to_lowercase),
                i.tlp,
                i.sightings,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn misp_doc(s: &CleanupState) -> Vec<u8> {
    let org = Org {
        code: "DE-BKA".into(),
        name: "Bundeskriminalamt".into(),
    };
    let mut out = b"{\"response\":[".to_vec();
    let mut first = true;
    for tlp in Tlp::ALL {
        let group: Vec<_> = s.indicators.iter().filter(|i| i.tlp == tlp).collect();
        if group.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        let mut w = EventWriter::begin(out, &event_header(&org, "feed-a", tlp, T0)).unwrap();
        for i in group {
            w.attribute(i).unwrap();
        }
        out = w.finish().unwrap();
    }
    out.extend_from_slice(b"]}");
    out
}

#[test]
fn misp_events_read_back_with_kind_direction_and_marking() {
    let s = state();
    let bytes = misp_doc(&s);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let events = doc["response"].as_array().unwrap();
    assert_eq!(events.len(), 5, "one event per TLP level");
    let attrs: Vec<&Value> = events
        .iter()
        .flat_map(|e| e["Event"]["Attribute"].as_array().unwrap())
        .collect();
    let ty = |v: &str| {
        attrs
            .iter()
            .find(|a| a["value"] == v)
            .map(|a| a["type"].as_str().unwrap().to_string())
    };
    assert_eq!(
        ty("198.51.100.1").as_deref(),
        Some("ip-dst"),
        "a C2 server is a destination"
    );
    assert_eq!(
        ty("203.0.113.9").as_deref(),
        Some("ip-src"),
        "an infected machine a source"
    );
    assert_eq!(ty("spam@evil.example").as_deref(), Some("email-src"));
    assert_eq!(ty("AS64500").as_deref(), Some("AS"));
    let strict = events
        .iter()
        .find(|e| e["Event"]["Tag"][0]["name"] == "tlp:amber+strict")
        .unwrap();
    assert_eq!(strict["Event"]["distribution"], "0");

    // The AS is written as MISP writes it ("AS64500") and read back the same.
    let (got, rep) = import(misp(), &bytes);
    assert_eq!(rep.error, None);
    assert_eq!((rep.accepted, rep.quarantined), (9, 0), "{rep:?}");
    let mut want = folded_state(&s);
    // MISP has no sighting count: each attribute is one sighting.
    for w in &mut want {
        w.4 = 1;
    }
    assert_eq!(folded(&got), want);
}

#[test]
fn unmarked_objects_take_the_strictest_default_and_unknown_markings_never_widen() {
    let bundle = r#"{"type":"bundle","id":"bundle--0b8e0c5c-0000-4000-8000-000000000001","objects":[
      {"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000001",
       "created":"2026-11-01T00:00:00Z","modified":"2026-11-02T00:00:00Z","valid_from":"2026-11-01T00:00:00Z",
       "pattern":"[ipv4-addr:value = '192.0.2.1']","pattern_type":"stix","labels":["c2-server"]},
      {"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000002",
       "created":"2026-11-01T00:00:00Z","modified":"2026-11-01T00:00:00Z","valid_from":"2026-11-01T00:00:00Z",
       "pattern":"[domain-name:value = 'a.example']","pattern_type":"stix",
       "object_marking_refs":["marking-definition--00000000-0000-4000-8000-0000000000aa"]},
      {"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000003",
       "created":"2026-11-01T00:00:00Z","modified":"2026-11-01T00:00:00Z","valid_from":"2026-11-01T00:00:00Z",
       "pattern":"[url:value = 'http://b.example/']","pattern_type":"stix",
       "object_marking_refs":["marking-definition--00000000-0000-4000-8000-0000000000bb",
                              "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]},
      {"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-0000000000bb",
       "created":"2022-10-01T00:00:00.000Z","name":"our amber",
       "extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"amber"}}},
      {"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--00000000-0000-4000-8000-000000000004","value":"198.51.100.9",
       "object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]},
      {"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000005",
       "created":"2026-11-01T00:00:00Z","modified":"2026-11-01T00:00:00Z","valid_from":"2026-11-01T00:00:00Z",
       "pattern":"[process:name = 'evil.exe']","pattern_type":"stix"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000006",
       "created":"2026-11-01T00:00:00Z","modified":"2026-11-01T00:00:00Z","valid_from":"2026-11-01T00:00:00Z",
       "pattern":"alert tcp any any","pattern_type":"snort"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000007",
       "pattern":["not","a","string"]},
      {"type":"campaign","spec_version":"2.1","id":"campaign--00000000-0000-4000-8000-000000000008","name":"x"}
    ]}"#;
    let (events, rep) = import(stix(), bundle.as_bytes());
    assert_eq!(rep.error, None);
    let tlp = |v: &str| events.iter().find(|e| e.value.to_string() == v).map(|e| e.tlp);
    assert_eq!(tlp("192.0.2.1"), Some(Tlp::Red), "no marking: the default");
    assert_eq!(tlp("a.example"), Some(Tlp::Red), "an unknown marking: the default");
    assert_eq!(
        tlp("http://b.example/"),
        Some(Tlp::Amber),
        "the strictest of a TLP 2.0 definition and TLP 1 WHITE"
    );
    assert_eq!(tlp("198.51.100.9"), Some(Tlp::Green), "an observable with its marking");
    assert_eq!(
        events
            .iter()
            .find(|e| e.value.to_string() == "192.0.2.1")
            .unwrap()
            .classification,
        Classification::C2Server
    );
    assert_eq!(rep.accepted, 4);
    assert_eq!(rep.quarantined, 3, "{:#?}", rep.quarantine);
    let msgs: Vec<String> = rep.quarantine.iter().map(|q| q.to_string()).collect();
    assert!(
        msgs[0].contains("indicator--00000000-0000-4000-8000-000000000005") && msgs[0].contains("names no value"),
        "{msgs:?}"
    );
    assert!(msgs[1].contains("pattern_type 'snort'"), "{msgs:?}");
    assert!(
        msgs[2].contains("field 'pattern' must be a string, found an array"),
        "{msgs:?}"
    );
    assert!(msgs.iter().all(|m| m.starts_with("in.json:")), "{msgs:?}");
    assert_eq!(rep.skipped, 1, "the campaign");

    // A configured default applies instead.
    let cfg = ImportConfig {
        default_tlp: Tlp::Amber,
        default_confidence: 50,
    };
    let (events, _) = import(FeedFormat::Stix(cfg), bundle.as_bytes());
    assert_eq!(
        events.iter().find(|e| e.value.to_string() == "192.0.2.1").unwrap().tlp,
        Tlp::Amber
    );
}

#[test]
fn hostile_documents_are_refused_with_a_clear_error() {
    // Over the cap: refused as a whole, nothing imported.
    let s = state();
    let bytes = stix_bundle(&s);
    let mut cfg = SourceConfig::new("in", stix());
    cfg.limits.max_document_bytes = 1000;
    let (events, rep) = parse_to_vec(&bytes[..], &cfg, "big.json", T0);
    assert!(events.is_empty());
    assert_eq!(
        rep.error,
        Some(SourceError::TooLarge {
            file: "big.json".into(),
            limit: 1000
        })
    );
    assert!(
        rep.error
            .unwrap()
            .to_string()
            .contains("larger than the limit of 1000 bytes")
    );

    // Deeply nested: serde_json's depth limit, reported with the position.
    let deep = format!(
        "{{\"type\":\"bundle\",\"objects\":[{}{}]}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (events, rep) = import(stix(), deep.as_bytes());
    assert!(events.is_empty());
    match rep.error {
        Some(SourceError::Json { message, .. }) => assert!(message.contains("recursion limit"), "{message}"),
        other => panic!("{other:?}"),
    }

    // Wrong types: objects that are not objects are quarantined one by one.
    let (events, rep) = import(stix(), br#"{"type":"bundle","objects":[1,"x",{"type":7},{"id":"x"}]}"#);
    assert!(events.is_empty());
    assert_eq!(rep.quarantined, 4, "{rep:?}");
    // A document that is not STIX at all.
    let (_, rep) = import(stix(), br#"{"hello":"world"}"#);
    assert!(
        matches!(rep.error, Some(SourceError::Json { ref message, .. }) if message.contains("not a STIX document")),
        "{rep:?}"
    );
    let (_, rep) = import(stix(), b"[{\"type\":\"indicator\"");
    assert!(matches!(rep.error, Some(SourceError::Json { .. })), "{rep:?}");

    // MISP: a bad attribute does not stop the event; a truncated document keeps the events before.
    let doc = br#"[{"Event":{"uuid":"u1","Tag":[{"name":"tlp:green"}],"Attribute":[
        {"type":"ip-src","value":"not-an-ip"},
        {"type":"ip-src","value":"192.0.2.5"},
        {"type":"comment","value":"context"},
        {"type":"domain","value":"x.example","to_ids":false},
        {"type":"url","value":7}]}},
      {"Event":{"uuid":"u2","Attribute":[{"type":"ip-dst","value":"192.0.2.6"}"#;
    let (events, rep) = import(misp(), doc);
    assert_eq!(events.len(), 1, "{rep:?}");
    assert_eq!(events[0].tlp, Tlp::Green);
    assert_eq!(rep.quarantined, 2, "{rep:?}");
    assert_eq!(rep.skipped, 2);
    assert!(matches!(rep.error, Some(SourceError::Json { .. })));
}

#[test]
fn misp_markings_follow_the_documented_table() {
    let doc = br#"{"response":[
      {"Event":{"uuid":"a","distribution":"3","Attribute":[{"type":"ip-dst","value":"192.0.2.1"}]}},
      {"Event":{"uuid":"b","distribution":"0","Attribute":[{"type":"ip-dst","value":"192.0.2.2"}]}},
      {"Event":{"uuid":"c","distribution":"4","Attribute":[{"type":"ip-dst","value":"192.0.2.3","distribution":"1"}]}},
      {"Event":{"uuid":"d","Attribute":[{"type":"ip-dst","value":"192.0.2.4"}]}},
      {"Event":{"uuid":"e","distribution":"3","Tag":[{"name":"tlp:amber+strict"}],"Attribute":[
         {"type":"ip-dst","value":"192.0.2.5","Tag":[{"name":"tlp:clear"}]}]}},
      {"Event":{"uuid":"f","Tag":[{"name":"tlp:white"}],"Attribute":[{"type":"ip-dst","value":"192.0.2.6"}],
        "Object":[{"name":"domain-ip","Attribute":[{"type":"domain","value":"obj.example","Tag":[{"name":"tlp:red"}]}]}]}}
    ]}"#;
    let (events, rep) = import(misp(), doc);
    assert_eq!(rep.error, None);
    let tlp = |v: &str| events.iter().find(|e| e.value.to_string() == v).map(|e| e.tlp);
    assert_eq!(tlp("192.0.2.1"), Some(Tlp::Clear), "3 all communities");
    assert_eq!(tlp("192.0.2.2"), Some(Tlp::AmberStrict), "0 your organisation only");
    assert_eq!(tlp("192.0.2.3"), Some(Tlp::Green), "the attribute's own distribution 1");
    assert_eq!(tlp("192.0.2.4"), Some(Tlp::Red), "nothing stated: the default");
    assert_eq!(
        tlp("192.0.2.5"),
        Some(Tlp::AmberStrict),
        "the strictest tag, never the wider distribution"
    );
    assert_eq!(tlp("192.0.2.6"), Some(Tlp::Clear), "TLP 1 white is CLEAR");
    assert_eq!(tlp("obj.example"), Some(Tlp::Red), "attributes inside objects");
}

#[test]
fn a_configured_source_sets_the_default_marking_and_the_cap() {
    let c: SourceConfig = serde_json::from_value(serde_json::json!({
        "feed": "partner-taxii",
        "format": "stix",
        "default_tlp": "TLP:AMBER",
        "limits": {"max_document_bytes": 1024}
    }))
    .unwrap();
    assert_eq!(
        c.format,
        FeedFormat::Stix(ImportConfig {
            default_tlp: Tlp::Amber,
            default_confidence: 50
        })
    );
    assert_eq!(c.limits.max_document_bytes, 1024);
    let m: SourceConfig = serde_json::from_value(serde_json::json!({"feed": "f", "format": "misp"})).unwrap();
    assert_eq!(m.format, FeedFormat::Misp(ImportConfig::default()));
    assert_eq!(ImportConfig::default().default_tlp, Tlp::Red);
    assert!(
        serde_json::from_value::<SourceConfig>(
            serde_json::json!({"feed": "f", "format": "stix", "default_tlp": "PURPLE"})
        )
        .is_err()
    );
}

#[test]
fn a_value_over_the_field_limit_is_quarantined_not_stored() {
    let long = format!("http://evil.example/{}", "a".repeat(9000));
    let misp_doc = serde_json::json!({"Event": {"uuid": "u", "Tag": [{"name": "tlp:green"}], "Attribute": [
        {"type": "url", "value": long},
        {"type": "url", "value": "http://evil.example/short"}
    ]}});
    let (events, rep) = import(misp(), misp_doc.to_string().as_bytes());
    assert_eq!((events.len(), rep.quarantined), (1, 1), "{rep:?}");
    assert!(
        rep.quarantine[0]
            .to_string()
            .contains("field 'value' is 9020 bytes, over the limit of 8192"),
        "{}",
        rep.quarantine[0]
    );
    let bundle = serde_json::json!({"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "id": "indicator--1", "pattern": format!("[url:value = '{long}']"), "pattern_type": "stix"},
        {"type": "url", "id": "url--2", "value": long}
    ]});
    let (events, rep) = import(stix(), bundle.to_string().as_bytes());
    assert_eq!((events.len(), rep.quarantined), (0, 2), "{rep:?}");
    assert!(
        rep.quarantine[0]
            .to_string()
            .contains("field 'url:value' is 9020 bytes"),
        "{}",
        rep.quarantine[0]
    );
}
