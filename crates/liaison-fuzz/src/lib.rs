//! The bodies of Liaison's fuzz targets.
//!
//! Each function takes the raw bytes libFuzzer produces, runs them through the real parser and
//! panics if an invariant breaks (a round trip that does not hold, two implementations that
//! disagree, a report whose counts do not add up). The cargo-fuzz crate in `/fuzz` calls them
//! from one-line targets; `tests/replay.rs` runs every committed corpus file through them on
//! stable, so a finding once fixed stays fixed. See `bench/fuzz/README.md`.
//!
//! Every function must accept any input without panicking unless an invariant breaks: errors
//! from the parsers are the expected outcome for most inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed invariant is meant to panic

use jiff::Timestamp;
use liaison_intel::enrich::PrefixTable;
use liaison_intel::mmdb::{Database, DecodeLimits, MmdbError, TreeLeaf};
use liaison_intel::model::{Event, IndicatorValue};
use liaison_intel::source::{CsvMapping, FeedFormat, Limits, ListConfig, SourceConfig, SourceReport, parse_to_vec};
use liaison_intel::time::{UnixTime, format_rfc3339, parse_timestamp};
use liaison_wire::jcs::{CanonError, canonicalize, check_protocol_numbers};
use liaison_wire::types::ms_time;
use liaison_wire::{
    Envelope, KeyRotation, Keyring, NodeDescriptor, NodeId, NodeKey, NothingSeen, PinnedPeer, Receipt, Sth,
    VerifyContext,
};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A target body: raw input in, panic on a broken invariant.
pub type Target = fn(&[u8]);

/// The targets, by the name of their corpus directory (`fuzz/corpus/<name>`).
pub const TARGETS: &[(&str, Target)] = &[
    ("mmdb", mmdb),
    ("feed_csv", feed_csv),
    ("threatfox_json", threatfox_json),
    ("stix_bundle", stix_bundle),
    ("stix_pattern", stix_pattern),
    ("misp_events", misp_events),
    ("envelope", envelope),
    ("jcs", jcs),
    ("timestamps", timestamps),
    ("descriptor", descriptor),
    ("cleanup_payloads", cleanup_payloads),
    ("bulk_payloads", bulk_payloads),
    ("work_inputs", work_inputs),
    ("search_inputs", search_inputs),
    #[cfg(feature = "service")]
    ("peer_file", peer_file),
    ("case_payloads", case_payloads),
    #[cfg(feature = "service")]
    ("evidence_package", evidence_package),
    #[cfg(feature = "service")]
    ("case_file", case_file),
    #[cfg(feature = "service")]
    ("taxii_query", taxii_query),
];

// ---------------------------------------------------------------------------------------------
// MMDB

/// Opens `data` as an MMDB file, walks its tree, decodes every record, then compiles it as
/// enrichment does and looks up a few addresses.
///
/// Invariants: the walk yields networks in strictly increasing, non-overlapping address order;
/// decoding never spends more than the file's budget; a budget error names a limit that was
/// really reached; a database the table compiler accepts opens and walks on its own; an
/// IPv4-mapped IPv6 address looks up like the IPv4 address.
pub fn mmdb(data: &[u8]) {
    let limits = DecodeLimits::for_file(data.len());
    if let Ok(db) = Database::open(data) {
        let mut leaves: Vec<TreeLeaf> = Vec::new();
        if db.walk(|l| leaves.push(l)).is_ok() {
            let bits = db.bits();
            let mut next: Option<u128> = Some(0);
            for l in &leaves {
                let start_min = next.expect("a network after one that ends at the top of the address space");
                assert!(l.start >= start_min, "networks out of order: {leaves:?}");
                assert!(l.prefix_len >= 1 && u32::from(l.prefix_len) <= bits);
                let host_bits = bits - u32::from(l.prefix_len);
                let size_minus_one = if host_bits == 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                assert_eq!(l.start & size_minus_one, 0, "network start not aligned: {l:?}");
                next = (l.start | size_minus_one).checked_add(1);
            }
            let mut seen = std::collections::HashSet::new();
            for l in &leaves {
                if !seen.insert(l.data_offset) {
                    continue;
                }
                match db.decode(l.data_offset) {
                    Ok(_) => {}
                    Err(MmdbError::Budget { .. }) => break,
                    Err(_) => {}
                }
            }
        }
        let spent = db.spent();
        assert!(spent.values <= limits.max_values_per_file, "{spent:?} over {limits:?}");
        assert!(spent.bytes <= limits.max_bytes_per_file, "{spent:?} over {limits:?}");
    }
    if let Ok(table) = PrefixTable::from_bytes(data) {
        assert!(
            Database::open(data).is_ok(),
            "the table compiled a file that does not open"
        );
        let mut probes: Vec<IpAddr> = vec![
            Ipv4Addr::new(0, 0, 0, 0).into(),
            Ipv4Addr::new(1, 2, 3, 4).into(),
            Ipv4Addr::new(255, 255, 255, 255).into(),
            Ipv6Addr::UNSPECIFIED.into(),
            "2001:db8::1".parse::<Ipv6Addr>().unwrap().into(),
            Ipv6Addr::from(u128::MAX).into(),
        ];
        for chunk in data.chunks_exact(16).take(8) {
            let b: [u8; 16] = chunk.try_into().unwrap();
            probes.push(Ipv6Addr::from(b).into());
            probes.push(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into());
        }
        for ip in probes {
            let info = table.lookup(ip).copied();
            if let Some(org) = info.and_then(|i| i.org) {
                assert!(table.org(org).is_some(), "lookup gave an org index with no org");
            }
            if let IpAddr::V4(v4) = ip {
                assert_eq!(table.lookup(IpAddr::V6(v4.to_ipv6_mapped())).copied(), info);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Feeds

fn feed_formats() -> Vec<FeedFormat> {
    let mut by_index = CsvMapping::new(liaison_intel::source::Column::Index(0));
    by_index.has_header = false;
    vec![
        FeedFormat::Feodo,
        FeedFormat::Urlhaus,
        FeedFormat::ThreatfoxCsv,
        FeedFormat::Shadowserver,
        FeedFormat::Liaison,
        FeedFormat::List(ListConfig::default()),
        FeedFormat::Generic(Box::new(by_index)),
    ]
}

/// Small limits so short inputs reach the overflow paths (the reader's floor for a record is
/// 1 KiB).
const FUZZ_LIMITS: Limits = Limits {
    max_field_bytes: 64,
    max_quarantine_kept: 4,
    max_record_bytes: 1024,
    max_document_bytes: 16 * 1024,
};

const OBSERVED_AT: UnixTime = 1_780_000_000;

/// Invariants of any source report: every row counted once, at most the kept number of
/// quarantined rows with details, accepted events all emitted with a well-formed value.
fn check_report(input: &[u8], events: &[Event], report: &SourceReport, limits: &Limits) {
    assert_eq!(report.rows, report.accepted + report.quarantined, "{report:?}");
    assert!(report.bytes <= input.len() as u64);
    let lines = input.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    for q in &report.quarantine {
        // CSV lines are lines of the file; JSON "lines" are entry numbers (fewer than bytes).
        assert!(q.line <= lines.max(input.len() as u64), "{q:?}");
    }
    check_events(events, report, limits);
}

/// What every parser's report and events must satisfy: every event counted as accepted, at
/// most the kept number of quarantined entries with details (excerpts clipped), values that
/// normalize to themselves.
fn check_events(events: &[Event], report: &SourceReport, limits: &Limits) {
    assert_eq!(report.accepted as usize, events.len(), "{report:?}");
    assert!(report.quarantine.len() <= limits.max_quarantine_kept);
    assert!(report.quarantine.len() as u64 <= report.quarantined);
    for q in &report.quarantine {
        assert!(q.excerpt.chars().count() <= 160, "excerpt too long: {q:?}");
        assert!(q.line >= 1, "{q:?}");
    }
    for ev in events {
        assert!(ev.confidence <= 100, "{ev:?}");
        assert!(ev.count >= 1, "{ev:?}");
        assert_eq!(ev.time_observation, OBSERVED_AT);
        // A normalized value parses back to itself.
        let again = IndicatorValue::parse(ev.value.kind(), &ev.value.to_string());
        assert_eq!(
            again.as_ref(),
            Ok(&ev.value),
            "normalization is not idempotent for {:?}",
            ev.value
        );
    }
}

/// Runs the rest of the input through one feed format chosen by the first byte: the bounded
/// CSV reader and the Feodo, URLhaus, ThreatFox CSV, Shadowserver, Liaison and generic row
/// parsers, and plain lists.
pub fn feed_csv(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    let formats = feed_formats();
    let format = formats[usize::from(which) % formats.len()].clone();
    let config = SourceConfig {
        feed: "fuzz".into(),
        format,
        limits: FUZZ_LIMITS,
    };
    let (events, report) = parse_to_vec(input, &config, "fuzz.csv", OBSERVED_AT);
    check_report(input, &events, &report, &config.limits);
}

/// The ThreatFox JSON export parser (object of arrays, API shape or bare array).
pub fn threatfox_json(data: &[u8]) {
    let config = SourceConfig {
        feed: "threatfox".into(),
        format: FeedFormat::ThreatfoxJson,
        limits: FUZZ_LIMITS,
    };
    let (events, report) = parse_to_vec(data, &config, "threatfox.json", OBSERVED_AT);
    check_report(data, &events, &report, &config.limits);
}

/// Invariants of a STIX or MISP import: those of every parser, and nothing at all from a
/// document over the size cap.
fn check_document(input: &[u8], events: &[Event], report: &SourceReport, limits: &Limits) {
    if matches!(report.error, Some(liaison_intel::source::SourceError::TooLarge { .. })) {
        assert!(input.len() as u64 > limits.max_document_bytes, "{report:?}");
    }
    check_events(events, report, limits);
}

/// The STIX 2.1 import (bundles, TAXII envelopes, lists, single objects), the first byte
/// choosing the default marking. Also: a document the importer accepts imports the same
/// after a JSON round trip (the reader does not depend on formatting).
pub fn stix_bundle(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    let import = liaison_intel::ImportConfig {
        default_tlp: liaison_core::Tlp::ALL[usize::from(which) % 5],
        default_confidence: 50,
    };
    let config = SourceConfig {
        feed: "stix".into(),
        format: FeedFormat::Stix(import),
        limits: FUZZ_LIMITS,
    };
    let (events, report) = parse_to_vec(input, &config, "bundle.json", OBSERVED_AT);
    check_document(input, &events, &report, &config.limits);
    for ev in &events {
        // An unmarked object never gets a wider level than the default; a marked one keeps
        // its own (any level), so only the default case is checked here.
        assert!(liaison_core::Tlp::ALL.contains(&ev.tlp));
    }
    if report.error.is_none()
        && let Ok(v) = serde_json::from_slice::<Value>(input)
        && let Ok(again) = serde_json::to_vec_pretty(&v)
        && again.len() as u64 <= config.limits.max_document_bytes
    {
        let (events2, report2) = parse_to_vec(&again[..], &config, "bundle.json", OBSERVED_AT);
        assert_eq!(events2.len(), events.len(), "{report:?} vs {report2:?}");
        for (a, b) in events.iter().zip(&events2) {
            assert_eq!((&a.value, a.tlp, a.classification), (&b.value, b.tlp, b.classification));
        }
    }
}

/// The STIX pattern reader: never panics; what it names has an object type and a path, and a
/// pattern written by the exports' mapping reads back as the value it was written for.
pub fn stix_pattern(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(named) = liaison_intel::pattern::parse(text) {
        for n in &named {
            assert!(
                !n.comparison.object.is_empty() && !n.comparison.path.is_empty(),
                "{n:?}"
            );
        }
    }
    // Any text as a URL literal: the pattern the export writes reads back to the same text.
    if let Ok(value) = IndicatorValue::parse(liaison_intel::IndicatorKind::Url, text) {
        let p = liaison_intel::mapping::stix_pattern(&value, liaison_intel::mapping::Direction::None);
        let named = liaison_intel::pattern::parse(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(named.len(), 1, "{p}");
        assert_eq!(named[0].comparison.literal, value.to_string(), "{p}");
    }
}

/// The MISP import (events, restSearch answers, lists, attributes inside objects).
pub fn misp_events(data: &[u8]) {
    let config = SourceConfig {
        feed: "misp".into(),
        format: FeedFormat::Misp(liaison_intel::ImportConfig::default()),
        limits: FUZZ_LIMITS,
    };
    let (events, report) = parse_to_vec(data, &config, "events.json", OBSERVED_AT);
    check_document(data, &events, &report, &config.limits);
    assert!(report.rows >= report.accepted, "{report:?}");
}

// ---------------------------------------------------------------------------------------------
// Wire

/// The node id envelopes in the corpus are sent from, and its key (a fixed seed).
pub const SENDER: &str = "de-bka";
/// The node id envelopes in the corpus are addressed to.
pub const RECIPIENT: &str = "fr-pn";

pub fn sender_key() -> NodeKey {
    NodeKey::from_seed([42; 32])
}

/// "Now" for verification: the corpus envelopes are created at this instant.
pub fn fuzz_now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn keyring() -> Keyring {
    let mut k = Keyring::default();
    let valid_from = "2026-01-01T00:00:00Z".parse().unwrap();
    k.0.insert(
        NodeId::parse(SENDER).unwrap(),
        vec![sender_key().published(valid_from, None)],
    );
    k
}

/// Envelope, receipt and tree-head parsing and verification.
///
/// Invariants: what parses re-encodes (JCS) to bytes that parse to the same header and to
/// themselves again, with the same hash; verification never panics, and an envelope verifies
/// after the round trip exactly when it did before. An envelope that cannot be re-encoded (an
/// integer beyond ±(2^53 − 1) with no exact double) must not verify.
pub fn envelope(data: &[u8]) {
    if let Ok(env) = Envelope::from_slice(data) {
        let own = NodeId::parse(RECIPIENT).unwrap();
        let keys = keyring();
        let ctx = VerifyContext::new(&own, &keys, fuzz_now(), &NothingSeen);
        let first = env.verify(&ctx);
        let _ = env.header.verify_signature(&keys);
        match env.to_bytes() {
            Ok(bytes) => {
                let again = Envelope::from_slice(&bytes).expect("a re-encoded envelope parses");
                // The header comes back equal. The payload comes back with the same canonical
                // bytes, not always the same `Value`: JCS numbers are doubles, so a decimal
                // such as 9009007199254772058.8 is written 9009007199254772000 and reads
                // back as an integer.
                assert_eq!(again.header, env.header);
                assert_eq!(again.to_bytes().as_ref(), Ok(&bytes), "canonical form not stable");
                assert_eq!(again.hash().ok(), env.hash().ok());
                assert_eq!(again.verify(&ctx).is_ok(), first.is_ok());
            }
            // Parsing takes any u64 (`link_seq`) and any JSON number in the payload; one that
            // has no canonical form cannot be signed, so such an envelope must not verify.
            Err(CanonError::UnsafeInteger(_)) => assert!(first.is_err(), "an envelope with no canonical form verified"),
            Err(e) => panic!("a parsed envelope does not re-encode: {e}"),
        }
    }
    if let Ok(r) = Receipt::from_slice(data) {
        let bytes = serde_json::to_vec(&r).unwrap();
        assert_eq!(Receipt::from_slice(&bytes).as_ref(), Ok(&r));
        let _ = r.verify_signature(&keyring());
    }
    if let Ok(sth) = Sth::from_slice(data) {
        let bytes = serde_json::to_vec(&sth).unwrap();
        assert_eq!(Sth::from_slice(&bytes).as_ref(), Ok(&sth));
        let _ = sth.verify(&keyring());
    }
}

/// The clean-up payloads a peer sends (`cleanup_notice`, `cleanup_status`, docs/federation.md
/// §11), parsed strictly and checked as the receiver does before it looks anything up.
///
/// Invariants: a payload that passes its check stays within the protocol's bounds (1 to 250
/// items, parts in order, no item stricter than the notice, distinct item ids); it round-trips
/// through JSON to an equal payload that passes again; a notice needs protocol 5 exactly when
/// it states a PAP, else 4, and an answer 4.
pub fn cleanup_payloads(data: &[u8]) {
    use liaison_wire::cleanup::{MAX_NOTICE_ITEMS, MAX_NOTICE_PARTS};
    use liaison_wire::{CleanupNoticePayload, CleanupStatusPayload, PayloadType, payload_min_version};
    if let Ok(n) = serde_json::from_slice::<CleanupNoticePayload>(data) {
        let value = serde_json::to_value(&n).unwrap();
        let needs = payload_min_version(PayloadType::CleanupNotice, &value);
        assert_eq!(needs, if n.pap.is_some() { 5 } else { 4 }, "{value}");
        if n.check().is_ok() {
            assert!(!n.items.is_empty() && n.items.len() <= MAX_NOTICE_ITEMS);
            assert!(1 <= n.part && n.part <= n.parts && n.parts <= MAX_NOTICE_PARTS);
            assert!(
                n.items.iter().all(|i| i.tlp <= n.tlp),
                "an item stricter than its notice passed"
            );
            let mut ids: Vec<_> = n.items.iter().map(|i| i.item_id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), n.items.len(), "an item id twice passed");
            let again: CleanupNoticePayload = serde_json::from_value(value).unwrap();
            assert_eq!(again, n);
            assert!(again.check().is_ok());
        }
    }
    if let Ok(a) = serde_json::from_slice::<CleanupStatusPayload>(data) {
        let value = serde_json::to_value(&a).unwrap();
        assert_eq!(payload_min_version(PayloadType::CleanupStatus, &value), 4);
        if a.check().is_ok() {
            let again: CleanupStatusPayload = serde_json::from_value(value).unwrap();
            assert_eq!(again, a);
            assert!(again.check().is_ok());
        }
    }
}

/// Joint cases from a peer (docs/federation.md §13): `case_update` and `case_action` payloads,
/// and a case's log replayed through its rules (`liaison_core::case::Case`).
///
/// Invariants: both payloads need protocol 7; a payload that passes its check round-trips
/// through JSON to an equal payload that passes again; an action that passes names a change a
/// member node may ask for; events in an update that passes are in increasing `seq`; a log
/// that replays has its last event's `seq` as `last_seq`, never shows a stranger anything,
/// and replays again to the same case; what an agency is sent of an event is the event, its
/// kind only (for a link), or nothing.
pub fn case_payloads(data: &[u8]) {
    use liaison_core::case::{Case, CaseChange, EventView};
    use liaison_wire::{CaseActionPayload, CaseUpdatePayload, PayloadType, payload_min_version};
    if let Ok(u) = serde_json::from_slice::<CaseUpdatePayload>(data) {
        let value = serde_json::to_value(&u).unwrap();
        assert_eq!(payload_min_version(PayloadType::CaseUpdate, &value), 7);
        if u.check().is_ok() {
            assert!(u.events.windows(2).all(|w| w[0].seq < w[1].seq));
            let again: CaseUpdatePayload = serde_json::from_value(value).unwrap();
            assert_eq!(again, u);
            assert!(again.check().is_ok());
            if let Ok(case) = Case::replay(&u.events) {
                assert_eq!(case.last_seq, u.events.last().map(|e| e.seq).unwrap_or(0));
                assert_eq!(Case::replay(&u.events).unwrap(), case);
                for ev in &u.events {
                    assert_eq!(case.event_view(ev, "ZZ-NOBODY", None), EventView::Hidden);
                    for m in &case.members {
                        match case.event_for(ev, &m.agency, None) {
                            None => assert_eq!(case.event_view(ev, &m.agency, None), EventView::Hidden),
                            Some(e) if e == *ev => {}
                            Some(e) => assert!(matches!(e.change, CaseChange::Withheld { .. }), "{e:?}"),
                        }
                    }
                }
                assert!(!case.visible_to("ZZ-NOBODY", "anyone"));
            }
        }
    }
    if let Ok(a) = serde_json::from_slice::<CaseActionPayload>(data) {
        let value = serde_json::to_value(&a).unwrap();
        assert_eq!(payload_min_version(PayloadType::CaseAction, &value), 7);
        if a.check().is_ok() {
            assert!(matches!(
                a.change,
                CaseChange::Joined { .. }
                    | CaseChange::Declined { .. }
                    | CaseChange::Left { .. }
                    | CaseChange::Linked { .. }
                    | CaseChange::Shared { .. }
                    | CaseChange::Note { .. }
            ));
            let again: CaseActionPayload = serde_json::from_value(value).unwrap();
            assert_eq!(again, a);
        }
    }
}

/// The evidence transfer's inputs from a peer (docs/federation.md §12): the `evidence_manifest`
/// and `evidence_result` payloads, and the signed `Liaison-Chunk` header of a chunk.
///
/// Invariants: a manifest that passes its check has one hash per chunk, chunk lengths that
/// are each at most the chunk size, all but the last full, and add up to the file's size; it
/// round-trips through JSON and passes again; results round-trip; a header that parses prints
/// to a header that parses to the same value, and checking it against a key ring that does not
/// hold its key never succeeds.
pub fn bulk_payloads(data: &[u8]) {
    use liaison_wire::{ChunkAuth, EvidenceManifest, EvidenceResult};
    if let Ok(m) = serde_json::from_slice::<EvidenceManifest>(data)
        && m.check().is_ok()
    {
        let n = m.chunk_count();
        assert_eq!(m.chunks.len() as u64, n);
        let mut total = 0u64;
        for i in 0..n {
            let len = m.chunk_len(i);
            assert!(len <= m.chunk_size);
            assert!(i + 1 == n || len == m.chunk_size, "a short chunk before the last");
            total += len;
        }
        assert_eq!(total, m.size, "chunks do not add up to the size");
        assert_eq!(m.chunk_len(n), 0);
        let again: EvidenceManifest = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(again, m);
        assert!(again.check().is_ok());
    }
    if let Ok(r) = serde_json::from_slice::<EvidenceResult>(data) {
        let again: EvidenceResult = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(a) = ChunkAuth::from_header(text)
    {
        if let Ok(h) = a.to_header() {
            assert_eq!(ChunkAuth::from_header(&h).ok().as_ref(), Some(&a));
        }
        let own = NodeId::parse(RECIPIENT).unwrap();
        assert!(
            a.verify(&[], &own, &a.transfer_id, a.index, &a.sha256, fuzz_now())
                .is_err(),
            "a chunk verified against no key"
        );
    }
}

/// Canonical JSON, differentially against `serde_json_canonicalizer` (a second RFC 8785
/// implementation).
///
/// Both canonicalize the same parsed `serde_json::Value`, so JSON parsing (and its float
/// precision) is shared and only canonicalization is compared. What must agree: when ours
/// succeeds, theirs succeeds with identical bytes. The intentional difference: an integer
/// beyond ±(2^53 − 1) whose digits a double does not hold exactly is refused by ours
/// (`CanonError::UnsafeInteger`) and rounded by theirs; then only ours is checked. Ours must
/// also be idempotent: canonical bytes parse and canonicalize to themselves.
pub fn jcs(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = check_protocol_numbers(&value);
    let theirs = serde_json_canonicalizer::to_vec(&value);
    match canonicalize(&value) {
        Ok(ours) => {
            let theirs = theirs.expect("serde_json_canonicalizer refused what we canonicalized");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "canonical forms differ"
            );
            let reparsed: Value = serde_json::from_slice(&ours).expect("canonical bytes are JSON");
            assert_eq!(canonicalize(&reparsed).as_deref(), Ok(&ours[..]), "not idempotent");
        }
        Err(CanonError::UnsafeInteger(_)) => {}
        Err(e) => panic!("a parsed JSON value has no canonical form: {e}"),
    }
}

/// Timestamps: the feed timestamp parser (`liaison_intel::time`) and the wire's
/// millisecond RFC 3339 form (`ms_time`).
///
/// Invariants: a feed time in years 1970..=9999 formats and parses back to itself; `ms_time`
/// accepts exactly the strings it prints, and whatever jiff parses prints to a string
/// `ms_time` accepts.
pub fn timestamps(data: &[u8]) {
    if let Some(t) = parse_timestamp(data)
        && (0..=253_402_300_799).contains(&t)
    {
        let s = format_rfc3339(t);
        assert_eq!(parse_timestamp(s.as_bytes()), Some(t), "{s}");
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ts) = ms_time::parse(s) {
        assert_eq!(ms_time::format(&ts), s);
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        let wire = ms_time::format(&ts);
        assert_eq!(ms_time::parse(&wire), Ok(ms_time::truncate(ts)), "{wire}");
    }
}

/// Node descriptors and key rotation statements.
///
/// Invariants: what parses re-encodes to bytes that parse to the same value; the fingerprint
/// is computable; checking and pinning never panic, and a pinned peer can apply its own
/// descriptor only as stale (same serial).
pub fn descriptor(data: &[u8]) {
    if let Ok(d) = NodeDescriptor::from_slice(data) {
        let bytes = serde_json::to_vec(&d).unwrap();
        assert_eq!(NodeDescriptor::from_slice(&bytes).as_ref(), Ok(&d));
        d.fingerprint().expect("a parsed descriptor has a fingerprint");
        if let Ok(mut pinned) = PinnedPeer::pin(&d) {
            assert!(d.verify_self_signed().is_ok());
            assert!(
                pinned.apply_descriptor(&d, fuzz_now()).is_err(),
                "same serial accepted twice"
            );
        }
    }
    if let Ok(r) = KeyRotation::from_slice(data) {
        let bytes = serde_json::to_vec(&r).unwrap();
        assert_eq!(KeyRotation::from_slice(&bytes).as_ref(), Ok(&r));
    }
}

/// Peer files (a descriptor with its agency entry, or a bare descriptor), as `liaison
/// federation pin` and the admin API read them.
///
/// Invariants: what parses re-encodes to JSON that parses to the same JSON; the descriptor
/// inside has a fingerprint.
#[cfg(feature = "service")]
pub fn peer_file(data: &[u8]) {
    use liaison_service::federation::parse_peer_file;
    if let Ok(pf) = parse_peer_file(data) {
        let bytes = serde_json::to_vec(&pf).unwrap();
        let again = parse_peer_file(&bytes).expect("a re-encoded peer file parses");
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&pf).unwrap()
        );
        pf.descriptor.fingerprint().expect("fingerprint");
    }
}

/// TAXII query strings as the `/taxii2/` routes read them
/// (`liaison_service::taxii::ObjectQuery::parse`), and their `next` against the filters.
///
/// Invariants: never panics; a query read without paging has no `limit` and no `next`; what
/// reads with `added_after` reads the same again from its own re-encoding.
#[cfg(feature = "service")]
pub fn taxii_query(data: &[u8]) {
    use liaison_service::taxii::{ObjectQuery, taxii_time};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for paging in [true, false] {
        if let Ok(q) = ObjectQuery::parse(s, paging) {
            let _ = q.check_next(uuid::Uuid::nil());
            if !paging {
                assert!(q.limit.is_none() && q.next.is_none());
            }
            if let Some(t) = q.added_after
                && (0..=253_402_300_799_999).contains(&t)
            {
                let again = ObjectQuery::parse(&format!("added_after={}", taxii_time(t)), paging)
                    .expect("a TAXII timestamp reads back");
                assert_eq!(again.added_after, Some(t));
            }
        }
    }
}

/// The seed of the key that signs the `evidence_package` seeds; its fingerprint is the one the
/// target trusts.
pub const PACKAGE_KEY_SEED: [u8; 32] = [7; 32];

/// A reader that gives its bytes one at a time (readers must not depend on how reads are cut).
#[cfg(feature = "service")]
struct Trickle<'a>(&'a [u8]);

#[cfg(feature = "service")]
impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((b, rest)), Some(slot)) => {
                *slot = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Verifies `data` as an evidence package (`liaison_service::evidence_package::verify_package`,
/// the offline reader of `liaison evidence verify`) trusting the seed key.
///
/// Invariants: never panics on any bytes; `valid` exactly when no problem is listed; a valid
/// package was signed by the trusted key and lists every entry with its digest; the report is
/// the same when the input arrives in pieces of one byte (the reader does not depend on how
/// reads are cut).
#[cfg(feature = "service")]
pub fn evidence_package(data: &[u8]) {
    use liaison_service::evidence_package::{fingerprint, verify_package};
    let trust = vec![fingerprint(&NodeKey::from_seed(PACKAGE_KEY_SEED).public_key())];
    let r = verify_package(data, &trust);
    assert_eq!(r.valid, r.problems.is_empty(), "{r:?}");
    if r.valid {
        assert!(
            r.signer
                .as_ref()
                .is_some_and(|s| s.trusted && s.fingerprint == trust[0])
        );
        assert_eq!(r.bytes, data.len() as u64);
        assert!(r.entries >= 9, "head, manifest and signature at least: {r:?}");
    }
    if data.len() <= 1 << 16 {
        assert_eq!(verify_package(Trickle(data), &trust), r);
    }
}

/// Verifies `data` as a case file (`liaison_service::evidence_package::case_file::
/// verify_case_file`, the offline reader of `liaison case verify`) trusting the seed key.
///
/// Invariants: never panics on any bytes; `valid` exactly when no problem is listed; a valid
/// case file was signed by the trusted key, its size is the input's, and every package in it
/// verified; the report is the same when the input arrives one byte at a time.
#[cfg(feature = "service")]
pub fn case_file(data: &[u8]) {
    use liaison_service::evidence_package::case_file::verify_case_file;
    use liaison_service::evidence_package::fingerprint;
    let trust = vec![fingerprint(&NodeKey::from_seed(PACKAGE_KEY_SEED).public_key())];
    let r = verify_case_file(data, &trust);
    assert_eq!(r.valid, r.problems.is_empty(), "{r:?}");
    if r.valid {
        assert!(
            r.signer
                .as_ref()
                .is_some_and(|s| s.trusted && s.fingerprint == trust[0])
        );
        assert_eq!(r.bytes, data.len() as u64);
        assert!(r.packages.iter().all(|p| p.report.valid));
    }
    if data.len() <= 1 << 16 {
        let again = verify_case_file(Trickle(data), &trust);
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&r).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// Working the requests (docs/queues.md)

/// What users and peers type where a request or a page is named: a request's reference (from
/// a path, a CLI argument, or a peer's `request_submitted`), a listing's cursor sorted by due
/// date, a queue and an order.
///
/// Invariants: never panics; an accepted reference has a prefix of at most 40 characters of
/// `A-Z 0-9 - _` ending in a four-digit year and a number from 1 to 999,999,999, and reads back
/// the same from its own formatting; an accepted due cursor formats back to itself.
pub fn work_inputs(data: &[u8]) {
    use liaison_core::record::{Awaiting, Sort, due_cursor, format_reference, parse_due_cursor, parse_reference};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for candidate in [s, s.trim(), &s.to_ascii_uppercase()] {
        if let Some((prefix, n)) = parse_reference(candidate) {
            assert!(prefix.len() <= 40 && (1..=999_999_999).contains(&n));
            assert!(
                prefix
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            );
            let year = prefix.rsplit('-').next().unwrap_or_default();
            assert!(year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()));
            let again = format_reference(&prefix, n);
            assert_eq!(parse_reference(&again), Some((prefix, n)));
        }
    }
    if let Some((due, id)) = parse_due_cursor(s) {
        let c = due_cursor(Some(due), id);
        assert_eq!(parse_due_cursor(&c), Some((due, id)));
    }
    let _ = s.parse::<Sort>();
    let _ = s.parse::<Awaiting>();
}

// ---------------------------------------------------------------------------------------------
// Search (docs/search.md)

/// What a user types into search: words (the query language), a text to index and snippet, and
/// a target identifier to look up. The input's first line is the query and the identifier; the
/// rest is the text.
///
/// Invariants: never panics; an accepted query has 1 to 16 terms, at least one not excluded,
/// each with tokens; its FTS5 and `tsquery` forms contain no quote or backslash inside a token
/// (tokens are letters and digits only); indexed terms are tokens separated by single spaces;
/// a snippet's marks are sorted, disjoint, on char boundaries and inside its text; an accepted
/// identifier gives keys that are non-empty, with ranges ordered, and indicator probes that
/// read back through the clean-up module's own parser as themselves.
pub fn search_inputs(data: &[u8]) {
    use liaison_core::search::{index_terms, parse_query, snippet};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (first, text) = s.split_once('\n').unwrap_or((s, s));
    for t in index_terms(text).split(' ').filter(|t| !t.is_empty()) {
        assert!(t.chars().all(char::is_alphanumeric), "indexed token {t:?}");
    }
    if let Ok(q) = parse_query(first) {
        assert!(!q.terms.is_empty() && q.terms.len() <= 16);
        assert!(q.terms.iter().any(|t| !t.negated));
        for t in &q.terms {
            assert!(!t.tokens.is_empty());
            for tok in &t.tokens {
                assert!(tok.chars().all(char::is_alphanumeric), "query token {tok:?}");
            }
        }
        let _ = (q.to_fts5(), q.to_tsquery());
        // Every prefix replaced by the indexed tokens of the text it starts (as a store would).
        let indexed = index_terms(text);
        let words: liaison_core::search::Expansions = q
            .prefixes()
            .into_iter()
            .map(|p| {
                let mut w: Vec<String> = indexed
                    .split(' ')
                    .filter(|t| t.starts_with(p))
                    .map(str::to_string)
                    .collect();
                w.sort();
                w.dedup();
                (p.to_string(), w)
            })
            .collect();
        let (fts5, tsq) = (q.to_fts5_with(&words), q.to_tsquery_with(&words));
        assert!(!fts5.is_empty() && !tsq.is_empty());
        let sn = snippet(text, &q, 160);
        let mut last = 0;
        for &(a, b) in &sn.marks {
            assert!(
                a >= last && a < b && b <= sn.text.len(),
                "marks {:?} in {:?}",
                sn.marks,
                sn.text
            );
            assert!(sn.text.is_char_boundary(a) && sn.text.is_char_boundary(b));
            last = b;
        }
    }
    for kind in [
        None,
        Some(liaison_intel::ident::IdentKind::Account),
        Some(liaison_intel::ident::IdentKind::Phone),
    ] {
        if let Ok(l) = liaison_intel::ident::lookup(first, kind, Some("CN")) {
            assert!(!l.keys.is_empty());
            for k in &l.keys {
                match k {
                    liaison_intel::ident::KeyMatch::Exact(k) => assert!(!k.is_empty()),
                    liaison_intel::ident::KeyMatch::Range { lo, hi } => assert!(lo <= hi),
                }
            }
            for (k, v) in &l.indicators {
                let back = liaison_intel::IndicatorValue::parse(*k, v).map(|x| x.to_string());
                assert_eq!(back.as_deref(), Ok(v.as_str()), "probe {k} {v}");
            }
        }
    }
}
