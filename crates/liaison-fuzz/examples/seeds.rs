//! Writes the hand-made seed inputs of every fuzz corpus into `fuzz/corpus/<target>/seed-*`:
//! valid envelopes, receipts, tree heads, descriptors and peer files signed with the crate's
//! own API, small MMDB files from the writer, and feed samples in each format.
//!
//! `cargo run -p liaison-fuzz --example seeds` (rewrites the seeds, leaves other files alone).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use liaison_intel::mmdb::{MmdbValue, MmdbWriter};
use liaison_wire::{
    DescriptorDraft, EnvelopeDraft, Hash256, KeyRotation, Keyring, MessageId, NodeId, NodeKey, NothingSeen,
    PayloadType, Receipt, Sth, VerifyContext,
};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn put(target: &str, name: &str, data: &[u8]) {
    let dir = root().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn mmdb_seeds() {
    // An IPv6 tree with IPv4 networks and the ::ffff:0:0/96 alias, GeoLite2-like records.
    let mut w = MmdbWriter::new(6, "GeoLite2-Country");
    let de = MmdbValue::map([
        ("country", MmdbValue::map([("iso_code", MmdbValue::str("DE"))])),
        (
            "registered_country",
            MmdbValue::map([("iso_code", MmdbValue::str("DE"))]),
        ),
    ]);
    let fr = MmdbValue::map([("country", MmdbValue::map([("iso_code", MmdbValue::str("FR"))]))]);
    w.insert("192.0.2.0/24".parse().unwrap(), &de);
    w.insert("198.51.100.0/25".parse().unwrap(), &fr);
    w.insert("2001:db8::/32".parse().unwrap(), &fr);
    let mut buf = Vec::new();
    w.write(&mut buf).unwrap();
    put("mmdb", "geolite2-country-v6", &buf);

    // An IPv4 tree with ASN records (numbers of several widths, strings, arrays, doubles).
    let mut w = MmdbWriter::new(4, "GeoLite2-ASN");
    w.insert(
        "203.0.113.0/24".parse().unwrap(),
        &MmdbValue::map([
            ("autonomous_system_number", MmdbValue::Uint32(64500)),
            ("autonomous_system_organization", MmdbValue::str("Example Transit")),
        ]),
    );
    w.insert(
        "10.0.0.0/8".parse().unwrap(),
        &MmdbValue::map([
            ("asn", MmdbValue::str("AS64501")),
            ("as_name", MmdbValue::str("Private")),
            ("country_code", MmdbValue::str("NL")),
            (
                "tags",
                MmdbValue::Array(vec![MmdbValue::Bool(true), MmdbValue::Double(0.5)]),
            ),
            ("big", MmdbValue::Uint(u128::from(u64::MAX) + 1)),
            ("neg", MmdbValue::Int(-1)),
            ("f", MmdbValue::Float(1.5)),
            ("raw", MmdbValue::Bytes(vec![0, 1, 2])),
        ]),
    );
    let mut buf = Vec::new();
    w.write(&mut buf).unwrap();
    put("mmdb", "asn-v4", &buf);

    // IPinfo-like, IPv6 without the alias.
    let mut w = MmdbWriter::new(6, "ipinfo lite").ipv4_aliases(false);
    w.insert(
        "100.64.0.0/10".parse().unwrap(),
        &MmdbValue::map([("country_code", MmdbValue::str("US")), ("asn", MmdbValue::Uint(64502))]),
    );
    let mut buf = Vec::new();
    w.write(&mut buf).unwrap();
    put("mmdb", "ipinfo-v6-no-alias", &buf);
}

fn feed_seeds() {
    // The first byte picks the format (see liaison_fuzz::feed_csv): 0 Feodo, 1 URLhaus,
    // 2 ThreatFox CSV, 3 Shadowserver, 4 Liaison, 5 plain list, 6 generic by column index.
    let feeds: &[(u8, &str, &str)] = &[
        (
            0,
            "feodo",
            "# Feodo Tracker (sample)\n\
             \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
             \"2025-02-03 04:05:06\",\"192.0.2.10\",\"8080\",\"online\",\"2025-02-04\",\"Emotet\"\n\
             \"2025-02-03 04:05:07\",\"2001:db8::10\",\"443\",\"offline\",\"\",\"QakBot\"\n",
        ),
        (
            0,
            "feodo-comment-header",
            "# Firstseen,DstIP,DstPort,LastOnline,Malware\n2025-01-01 00:00:00,198.51.100.3,447,2025-01-02,TrickBot\n",
        ),
        (
            1,
            "urlhaus",
            "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
             \"1\",\"2025-03-01 10:00:00\",\"http://192.0.2.44/a.sh\",\"online\",\"2025-03-01 12:00:00\",\"malware_download\",\"sh\",\"https://urlhaus.example/1/\",\"someone\"\n\
             \"2\",\"2025-03-01 10:00:00\",\"HTTPS://Bad.Example.ORG:8443/x?y=1\",\"offline\",\"\",\"malware_download\",\"exe\",\"https://urlhaus.example/2/\",\"anon\"\n",
        ),
        (
            2,
            "threatfox",
            "# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\
             \"2025-04-01 00:00:00\", \"7\", \"192.0.2.77:4444\", \"ip:port\", \"botnet_cc\", \"win.x\", \"None\", \"X RAT\", \"\", \"90\", \"\", \"\", \"0\", \"me\"\n\
             \"2025-04-01 00:00:00\", \"8\", \"0123456789abcdef0123456789ABCDEF\", \"md5_hash\", \"payload\", \"win.x\", \"None\", \"X\", \"\", \"40\", \"\", \"\", \"0\", \"me\"\n",
        ),
        (
            3,
            "shadowserver-scan",
            "\"timestamp\",\"ip\",\"port\",\"asn\",\"geo\",\"region\",\"hostname\"\n\
             \"2025-05-05 05:05:05\",\"198.51.100.20\",\"23\",\"64496\",\"DE\",\"Berlin\",\"\"\n",
        ),
        (
            3,
            "shadowserver-event",
            "timestamp,src_ip,src_port,src_asn,src_geo,infection,dst_ip\n2025-05-05T05:05:05Z,192.0.2.99,1234,64497,FR,mirai,203.0.113.1\n",
        ),
        (
            4,
            "liaison",
            "time_source,indicator,kind,port,classification,malware,victim_count,victim_country,confidence,tlp\n\
             2025-06-01T00:00:00Z,evil.example,domain,,c2-server,Sality,12,IT,70,amber\n\
             2025-06-01T00:00:00Z,mailto@bad.example,,,phishing,,,,50,green\n",
        ),
        (
            5,
            "list",
            "# a list\n192.0.2.1\nbad.example.  # comment\nhttp://x.example/p\n2001:db8::2\n10.0.0.0/8\nAS64500\nuser@Bad.Example\nd41d8cd98f00b204e9800998ecf8427e\n",
        ),
        (
            6,
            "generic-by-index",
            "198.51.100.99;x\n\"quoted, value\",y\n\"unterminated\n",
        ),
    ];
    for (which, name, body) in feeds {
        let mut data = vec![*which];
        data.extend_from_slice(body.as_bytes());
        put("feed_csv", name, &data);
    }

    let tf: &[(&str, &str)] = &[
        (
            "export",
            r#"{"9001": [{"ioc_value": "192.0.2.5:443", "ioc_type": "ip:port", "threat_type": "botnet_cc", "malware_printable": "Cobalt Strike", "first_seen_utc": "2025-07-01 01:02:03", "last_seen_utc": null, "confidence_level": 80}],
 "9002": [{"ioc_value": "Bad.Example", "ioc_type": "domain", "threat_type": "payload_delivery", "confidence_level": "60"}]}"#,
        ),
        (
            "api",
            r#"{"query_status": "ok", "data": [{"ioc": "http://bad.example/x", "ioc_type": "url", "threat_type": "payload_delivery", "first_seen": "2025-07-01T00:00:00Z"}]}"#,
        ),
        (
            "array",
            r#"[{"ioc_value": "sha256-not-really", "ioc_type": "sha256_hash"}, 3, "x", null]"#,
        ),
    ];
    for (name, body) in tf {
        put("threatfox_json", name, body.as_bytes());
    }
}

fn wire_seeds() {
    let key = liaison_fuzz::sender_key();
    let sender = NodeId::parse(liaison_fuzz::SENDER).unwrap();
    let recipient = NodeId::parse(liaison_fuzz::RECIPIENT).unwrap();
    let now = liaison_fuzz::fuzz_now();
    let env = EnvelopeDraft {
        message_id: MessageId::new(),
        sender: sender.clone(),
        recipient: recipient.clone(),
        link_seq: 1,
        created_at: now,
        payload_type: PayloadType::Comment,
        payload: serde_json::json!({"request": "0190f0f0-0000-7000-8000-000000000001", "text": "Bonjour \u{e9}\u{1F600}", "n": [1, -2, 9_007_199_254_740_991_i64]}),
    }
    .sign(&key)
    .unwrap();
    // The seed must verify against the fuzz target's key ring, or the fuzzer never reaches
    // the checks after the signature.
    let mut ring = Keyring::default();
    ring.0
        .insert(sender.clone(), vec![key.published(ts("2026-01-01T00:00:00Z"), None)]);
    let verified = env
        .verify(&VerifyContext::new(&recipient, &ring, now, &NothingSeen))
        .expect("seed envelope verifies");
    put("envelope", "envelope", &env.to_bytes().unwrap());
    let receiver_key = NodeKey::from_seed([7; 32]);
    let receipt = Receipt::issue(&verified, now, &receiver_key).unwrap();
    put("envelope", "receipt", &serde_json::to_vec(&receipt).unwrap());
    let sth = Sth::sign(sender.clone(), 3, Hash256::digest(b"root"), now, &key).unwrap();
    put("envelope", "sth", &serde_json::to_vec(&sth).unwrap());

    let d = DescriptorDraft {
        node_id: sender.clone(),
        // Any UUID; its type is inferred from the field.
        agency_id: serde_json::from_str("\"0190f0f0-0000-7000-8000-00000000a6e1\"").unwrap(),
        agency_name: "Bundeskriminalamt (fuzz seed)".into(),
        jurisdiction: "DE".parse().unwrap(),
        base_url: "https://liaison.bka.example.invalid".into(),
        tls_cert_sha256: Hash256::digest(b"cert"),
        keys: vec![key.published(ts("2026-01-01T00:00:00Z"), None)],
        serial: 1,
        issued_at: now,
    }
    .sign(&key)
    .unwrap();
    d.verify_self_signed().unwrap();
    let d_bytes = serde_json::to_vec(&d).unwrap();
    put("descriptor", "descriptor", &d_bytes);
    let next = NodeKey::from_seed([43; 32]);
    let rot = KeyRotation::sign(sender, &key, &next, now, None, ts("2026-12-31T00:00:00Z"), now).unwrap();
    put("descriptor", "rotation", &serde_json::to_vec(&rot).unwrap());

    // A peer file as `liaison federation peer-file` writes it, and a bare descriptor.
    put("peer_file", "bare-descriptor", &d_bytes);
    let pf = liaison_service::federation::parse_peer_file(&d_bytes).unwrap();
    put("peer_file", "peer-file", &serde_json::to_vec_pretty(&pf).unwrap());
}

fn jcs_seeds() {
    let docs: &[(&str, &str)] = &[
        (
            "numbers",
            r#"{"a": [0, -0, 1, -1, 0.5, 1e21, 1e-7, 123456789012345680000, 5e-324, 1.7976931348623157e308, 9007199254740991, -9007199254740991, 0.000001, 333333333.3333333]}"#,
        ),
        (
            "strings",
            "{\"esc\": \"\\u0000\\u001f\\b\\t\\n\\f\\r\\\"\\\\/\", \"uni\": \"\u{e9}\u{20ac}\u{1F600}\", \"\u{1F600}\": 1, \"\u{e9}\": 2, \"z\": 3, \"\": 4}",
        ),
        (
            "nested",
            r#"[{"b": {"d": [true, false, null], "c": {}}, "a": []}, [[[]]], "x"]"#,
        ),
        (
            "unsafe-integer",
            r#"{"big": 9007199254740993, "neg": -18446744073709551615}"#,
        ),
        (
            "utf16-order",
            "{\"\u{fb33}\": 1, \"\u{1D11E}\": 2, \"\\u0080\": 3, \"a\": 4, \"A\": 5}",
        ),
    ];
    for (name, body) in docs {
        put("jcs", name, body.as_bytes());
    }
}

fn timestamp_seeds() {
    for (name, s) in [
        ("wire", "2026-11-22T10:37:41.123Z"),
        ("wire-no-fraction", "2026-11-22T10:37:41Z"),
        ("offset", "2021-01-17T09:44:46+02:00"),
        ("space-utc", "2021-01-17 07:44:46 UTC"),
        ("minutes", "2021-01-17 07:44"),
        ("epoch", "1610869486"),
        ("date", "2024-02-29"),
        ("leap-second", "2016-12-31T23:59:60Z"),
        ("fraction", "2021-01-17T07:44:46.123456789Z"),
        ("compact-offset", "2021-01-17T07:44:46-0530"),
    ] {
        put("timestamps", name, s.as_bytes());
    }
}

fn main() {
    mmdb_seeds();
    feed_seeds();
    wire_seeds();
    jcs_seeds();
    timestamp_seeds();
    package_seeds();
    case_seeds();
    println!("seeds written under {}", root().display());
}

/// A minimal valid evidence package signed by the target's trusted key, one with a file, and
/// cut and damaged copies.
fn package_seeds() {
    use liaison_service::evidence_package::{FORMAT, HEAD, Manifest, SIGNING_CONTEXT, SigningKey, fingerprint};
    let key = NodeKey::from_seed(liaison_fuzz::PACKAGE_KEY_SEED);
    let request = "01a248c1-1dd0-7456-a5fb-320333e1aab4";
    let build = |files: &[(&str, &[u8])]| -> Vec<u8> {
        let file_records: Vec<serde_json::Value> = files
            .iter()
            .enumerate()
            .map(|(i, (n, d))| {
                serde_json::json!({"path": n, "id": format!("f{i}"), "sha256": Hash256::digest(d).to_hex(), "size": d.len(), "record": {}})
            })
            .collect();
        let hashes: Vec<serde_json::Value> = files
            .iter()
            .map(|(_, d)| serde_json::json!({"types:hashValue": {"@value": Hash256::digest(d).to_hex()}}))
            .collect();
        let head: Vec<(String, Vec<u8>)> = vec![
            (HEAD[0].into(), b"LIAISON EVIDENCE PACKAGE (seed)\n".to_vec()),
            (
                HEAD[1].into(),
                serde_json::to_vec(&serde_json::json!({"id": request})).unwrap(),
            ),
            (
                HEAD[2].into(),
                serde_json::to_vec(&serde_json::json!([{"request": request}])).unwrap(),
            ),
            (
                HEAD[3].into(),
                serde_json::to_vec(&serde_json::json!({"files": file_records})).unwrap(),
            ),
            (HEAD[4].into(), br#"{"files":[]}"#.to_vec()),
            (HEAD[5].into(), br#"{"node_id":"us-fbi","proofs":[]}"#.to_vec()),
            (
                HEAD[6].into(),
                serde_json::to_vec(&serde_json::json!({"@context": {}, "@graph": hashes})).unwrap(),
            ),
        ];
        let mut entries = head;
        for (n, d) in files {
            entries.push((n.to_string(), d.to_vec()));
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            node_id: "us-fbi".into(),
            request_id: request.into(),
            exported_at: "2026-12-06T00:00:00Z".into(),
            exported_by: "officer".into(),
            signing_key: SigningKey {
                key_id: key.key_id().to_string(),
                public_key: key.public_key().to_hex(),
                fingerprint: fingerprint(&key.public_key()),
            },
            entries: listing(&entries),
        };
        sealed(
            entries,
            liaison_wire::to_canonical(&manifest).unwrap(),
            FORMAT,
            SIGNING_CONTEXT,
        )
    };
    let empty = build(&[]);
    let one = build(&[("files/0001-notes.txt", b"subscriber: example\n")]);
    put("evidence_package", "empty", &empty);
    put("evidence_package", "one-file", &one);
    put("evidence_package", "cut", &one[..one.len() / 2]);
    let mut flipped = one.clone();
    let i = one.len() / 3;
    flipped[i] ^= 0x20;
    put("evidence_package", "flipped", &flipped);
}

/// What a manifest lists of `entries`: path, size, SHA-256.
fn listing(entries: &[(String, Vec<u8>)]) -> Vec<liaison_service::evidence_package::ManifestEntry> {
    entries
        .iter()
        .map(|(n, d)| liaison_service::evidence_package::ManifestEntry {
            path: n.clone(),
            size: d.len() as u64,
            sha256: Hash256::digest(d).to_hex(),
        })
        .collect()
}

/// `entries`, then the manifest and its signature by the target's trusted key (of `format`,
/// over `context` and the manifest), as a canonical ZIP.
fn sealed(mut entries: Vec<(String, Vec<u8>)>, manifest: Vec<u8>, format: &str, context: &[u8]) -> Vec<u8> {
    use liaison_service::evidence_package::{MANIFEST, ManifestSignature, SIGNATURE};
    let key = NodeKey::from_seed(liaison_fuzz::PACKAGE_KEY_SEED);
    let mut msg = context.to_vec();
    msg.extend_from_slice(&manifest);
    let sig = ManifestSignature {
        format: format.into(),
        key_id: key.key_id().to_string(),
        public_key: key.public_key().to_hex(),
        signature: key.sign_bytes(&msg).to_hex(),
    };
    entries.push((MANIFEST.into(), manifest));
    entries.push((SIGNATURE.into(), liaison_wire::to_canonical(&sig).unwrap()));
    zip(&entries)
}

/// The canonical stored ZIP of `entries`, in order.
fn zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    use liaison_service::evidence_package::{central_header, end_records, local_header};
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (n, d) in entries {
        let crc = crc32(d);
        central.extend(central_header(n, crc, d.len() as u64, out.len() as u64));
        out.extend(local_header(n, crc, d.len() as u64));
        out.extend_from_slice(d);
    }
    let cd = out.len() as u64;
    out.extend_from_slice(&central);
    out.extend(end_records(entries.len() as u64, cd, central.len() as u64));
    out
}

/// Joint cases: a case file holding the one-file package, signed by the target's trusted key,
/// with cut and damaged copies; `case_update` and `case_action` payloads.
fn case_seeds() {
    use liaison_service::evidence_package::case_file::{CASE_CONTEXT, CASE_FORMAT, CASE_HEAD, CaseManifest};
    use liaison_service::evidence_package::{SigningKey, fingerprint};
    let key = NodeKey::from_seed(liaison_fuzz::PACKAGE_KEY_SEED);
    let package = std::fs::read(root().join("evidence_package/seed-one-file")).unwrap();
    let request = "01a248c1-1dd0-7456-a5fb-320333e1aab4";
    let case_id = "01a248c1-2000-7456-a5fb-320333e1aab5";
    let path = "packages/0001-FBI-2026-0001";
    let doc = serde_json::json!({
        "case": {"id": case_id, "reference": "JTF-1", "name": "Seed", "lead": "FBI",
                 "links": [{"item": {"kind": "request", "id": request}}]},
        "packages": [{"path": path, "request_id": request, "reference": "FBI-2026-0001",
                      "sha256": Hash256::digest(&package).to_hex(), "size": package.len()}],
        "not_included": []
    });
    let entries: Vec<(String, Vec<u8>)> = vec![
        (CASE_HEAD[0].into(), b"LIAISON CASE FILE (seed)\n".to_vec()),
        (CASE_HEAD[1].into(), serde_json::to_vec(&doc).unwrap()),
        (path.into(), package),
    ];
    let manifest = CaseManifest {
        format: CASE_FORMAT.into(),
        node_id: "us-fbi".into(),
        case_id: case_id.into(),
        exported_at: "2026-12-07T00:00:00Z".into(),
        exported_by: "officer".into(),
        signing_key: SigningKey {
            key_id: key.key_id().to_string(),
            public_key: key.public_key().to_hex(),
            fingerprint: fingerprint(&key.public_key()),
        },
        entries: listing(&entries),
    };
    let file = sealed(
        entries,
        liaison_wire::to_canonical(&manifest).unwrap(),
        CASE_FORMAT,
        CASE_CONTEXT,
    );
    put("case_file", "one-package", &file);
    put("case_file", "cut", &file[..file.len() / 2]);
    let mut flipped = file.clone();
    let i = file.len() / 2;
    flipped[i] ^= 0x20;
    put("case_file", "flipped-inside-package", &flipped);
    put("case_file", "empty", b"");

    let t = "2026-12-07T09:00:00Z";
    let update = serde_json::json!({"case_id": case_id, "events": [
        {"seq": 1, "at": t, "actor": "officer", "agency": "FBI", "change": {"kind": "created", "name": "Seed",
         "reference": "JTF-1", "lead": "FBI", "marking": {"tlp": "TLP:AMBER"}}},
        {"seq": 2, "at": t, "actor": "officer", "agency": "FBI", "change": {"kind": "invited", "agency": "CN-MPS"}},
        {"seq": 3, "at": t, "actor": "cn-mps:officer", "agency": "CN-MPS", "change": {"kind": "joined", "agency": "CN-MPS"}},
        {"seq": 4, "at": t, "actor": "cn-mps:officer", "agency": "CN-MPS", "change": {"kind": "linked", "shared": false,
         "item": {"kind": "request", "id": request, "originator": "FBI", "parties": ["FBI", "CN-MPS"],
                  "tlp": "TLP:AMBER+STRICT", "title": "seed", "at": t}}},
        {"seq": 6, "at": t, "actor": "officer", "agency": "FBI", "change": {"kind": "withheld", "item_kind": "notice"}},
        {"seq": 7, "at": t, "actor": "officer", "agency": "FBI", "change": {"kind": "note", "text": "hello",
         "marking": {"tlp": "TLP:RED", "recipients": ["CN-MPS:li"]}}}
    ], "answers": [{"action": case_id, "applied": false, "reason": "no"}]});
    put("case_payloads", "update", &serde_json::to_vec(&update).unwrap());
    let action = serde_json::json!({"case_id": case_id, "action": case_id, "at": t, "actor": "officer",
        "agency": "CN-MPS", "change": {"kind": "left", "agency": "CN-MPS", "note": "done"}});
    put("case_payloads", "action", &serde_json::to_vec(&action).unwrap());
    let refused = serde_json::json!({"case_id": case_id, "action": case_id, "at": t, "actor": "officer",
        "agency": "CN-MPS", "change": {"kind": "invited", "agency": "DE-BKA"}});
    put(
        "case_payloads",
        "action-not-for-members",
        &serde_json::to_vec(&refused).unwrap(),
    );
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}
