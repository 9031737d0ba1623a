#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use liaison_wire::ledger::BUNDLE_FORMAT;
use liaison_wire::*;
use serde_json::json;
use std::collections::BTreeMap;

/// One exchange end to end: `de` sends five envelopes to `cn`; `cn` verifies, logs
/// `received` and returns receipts; `de` logs `sent` and `receipt`. Returns the sender's
/// log, its entries, the envelopes and receipts.
struct World {
    de: Node,
    cn: Node,
    de_log: MerkleLog,
    de_entries: Vec<LedgerEntry>,
    cn_log: MerkleLog,
    envelopes: Vec<Envelope>,
    receipts: Vec<Receipt>,
}

fn world() -> World {
    let (de, cn) = (de(), cn());
    let cn_peers = peers_with(&de);
    let de_peers = peers_with(&cn);
    let (mut de_log, mut cn_log) = (MerkleLog::new(), MerkleLog::new());
    let mut de_entries = Vec::new();
    let (mut envelopes, mut receipts) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for seq in 1..=5 {
        let env = draft(&de, &cn, seq).sign(&de.key).unwrap();
        // receiver
        let received = Envelope::from_slice(&env.to_bytes().unwrap()).unwrap();
        let v = received
            .verify(&VerifyContext::new(&cn.id, &cn_peers, ts(NOW), &seen))
            .unwrap();
        seen.insert(v.message_id);
        cn_log.append_hash(
            LedgerEntry::Received {
                envelope: received.header.clone(),
            }
            .leaf_hash()
            .unwrap(),
        );
        let receipt = Receipt::issue(&v, ts(NOW), &cn.key).unwrap();
        // sender
        receipt.verify(&env.header, &de_peers).unwrap();
        for entry in [
            LedgerEntry::Sent {
                envelope: env.header.clone(),
            },
            LedgerEntry::Receipt {
                receipt: receipt.clone(),
            },
        ] {
            de_log.append_hash(entry.leaf_hash().unwrap());
            de_entries.push(entry);
        }
        envelopes.push(env);
        receipts.push(receipt);
    }
    World {
        de,
        cn,
        de_log,
        de_entries,
        cn_log,
        envelopes,
        receipts,
    }
}

fn keyring(w: &World) -> Keyring {
    let mut m = BTreeMap::new();
    m.insert(w.de.id.clone(), w.de.descriptor.keys.clone());
    m.insert(w.cn.id.clone(), w.cn.descriptor.keys.clone());
    Keyring(m)
}

fn bundle(w: &World) -> ProofBundle {
    // The third message's `sent` entry, with payload and receipt.
    let sth = Sth::sign_log(w.de.id.clone(), &w.de_log, ts(NOW), &w.de.key).unwrap();
    ProofBundle::build(
        &w.de_log,
        w.de_entries[4].clone(),
        4,
        sth,
        Some(w.envelopes[2].payload.clone()),
        Some(w.receipts[2].clone()),
        keyring(w),
    )
    .unwrap()
}

#[test]
fn leaf_encoding_is_the_jcs_of_the_entry() {
    let w = world();
    let entry = &w.de_entries[0];
    let bytes = String::from_utf8(entry.leaf_bytes().unwrap()).unwrap();
    assert!(
        bytes.starts_with("{\"envelope\":{\"created_at\":\"2026-11-22T10:00:00.000Z\""),
        "{bytes}"
    );
    assert!(bytes.ends_with(",\"kind\":\"sent\"}"), "{bytes}");
    assert!(!bytes.contains("payload\":{"), "payload is not logged");
    let receipt_leaf = String::from_utf8(w.de_entries[1].leaf_bytes().unwrap()).unwrap();
    assert!(
        receipt_leaf.starts_with("{\"kind\":\"receipt\",\"receipt\":{"),
        "{receipt_leaf}"
    );
    let parsed: LedgerEntry = serde_json::from_str(&bytes).unwrap();
    assert_eq!(&parsed, entry);
    assert_eq!(w.cn_log.len(), 5);
}

#[test]
fn sth_signature_and_peer_consistency() {
    let w = world();
    let keys = keyring(&w);
    let mut log = w.de_log.clone();
    let old = Sth::sign_log(w.de.id.clone(), &log, ts(NOW), &w.de.key).unwrap();
    old.verify(&keys).unwrap();
    let parsed = Sth::from_slice(&serde_json::to_vec(&old).unwrap()).unwrap();
    assert_eq!(parsed, old);
    let mut forged = old.clone();
    forged.tree_size += 1;
    assert!(matches!(forged.verify(&keys), Err(Rejection::BadSignature { .. })));

    for i in 0..7u8 {
        log.append(&[i]);
    }
    let new = Sth::sign_log(w.de.id.clone(), &log, ts("2026-11-22T10:01:00Z"), &w.de.key).unwrap();
    let proof = log.consistency_proof(old.tree_size, new.tree_size).unwrap();
    check_peer_sth(&old, &new, &proof).unwrap();
    check_peer_sth(&old, &old, &[]).unwrap();

    assert!(matches!(
        check_peer_sth(&new, &old, &proof),
        Err(Inconsistent::Shrunk { .. })
    ));
    let earlier = Sth::sign_log(w.de.id.clone(), &log, ts("2026-11-22T09:00:00Z"), &w.de.key).unwrap();
    assert!(matches!(
        check_peer_sth(&old, &earlier, &proof),
        Err(Inconsistent::TimeWentBackwards { .. })
    ));
    let cn_sth = Sth::sign_log(w.cn.id.clone(), &w.cn_log, ts(NOW), &w.cn.key).unwrap();
    assert!(matches!(
        check_peer_sth(&old, &cn_sth, &[]),
        Err(Inconsistent::DifferentNode { .. })
    ));

    // The peer rewrites its second leaf and signs a new head: detected.
    let mut leaves = log.leaf_hashes().to_vec();
    leaves[1] = merkle::leaf_hash(b"a receipt that never was");
    let rewritten = MerkleLog::from_leaf_hashes(leaves);
    let lying = Sth::sign_log(w.de.id.clone(), &rewritten, ts("2026-11-22T10:02:00Z"), &w.de.key).unwrap();
    let lying_proof = rewritten.consistency_proof(old.tree_size, lying.tree_size).unwrap();
    assert!(matches!(
        check_peer_sth(&old, &lying, &lying_proof),
        Err(Inconsistent::Fork(_))
    ));
    // Same size, different root: a fork too.
    let same_size = Sth::sign(
        w.de.id.clone(),
        old.tree_size,
        Hash256::digest(b"x"),
        ts(NOW),
        &w.de.key,
    )
    .unwrap();
    assert!(matches!(
        check_peer_sth(&old, &same_size, &[]),
        Err(Inconsistent::Fork(_))
    ));
}

#[test]
fn bundle_verifies_offline_after_a_file_round_trip() {
    let w = world();
    let b = bundle(&w);
    let text = b.to_json_pretty().unwrap();
    let parsed = ProofBundle::from_slice(text.as_bytes()).unwrap();
    assert_eq!(parsed, b);
    let report = verify_bundle(&parsed).unwrap();
    assert_eq!(report.kind, EntryKind::Sent);
    assert_eq!(report.message_id, w.envelopes[2].header.message_id);
    assert_eq!(report.sender, w.de.id);
    assert_eq!(report.recipient, w.cn.id);
    assert!(report.payload_disclosed && report.receipt_verified);
    assert_eq!(report.tree_size, 10);
    assert_eq!(report.leaf_index, 4);
    assert_eq!(report.keys_used.len(), 2);
    assert_eq!(report.envelope_hash, w.envelopes[2].hash().unwrap());
}

#[test]
fn redacted_bundle_and_receipt_entries_verify() {
    let w = world();
    let mut b = bundle(&w);
    b.payload = None;
    b.receipt = None;
    let report = verify_bundle(&b).unwrap();
    assert!(!report.payload_disclosed && !report.receipt_verified);

    // A `receipt` entry of the sender's log.
    let sth = Sth::sign_log(w.de.id.clone(), &w.de_log, ts(NOW), &w.de.key).unwrap();
    let rb = ProofBundle::build(&w.de_log, w.de_entries[9].clone(), 9, sth, None, None, keyring(&w)).unwrap();
    let report = verify_bundle(&rb).unwrap();
    assert_eq!(report.kind, EntryKind::Receipt);
    assert_eq!(report.payload_type, None);

    // A `received` entry of the receiver's log, proven against an older head.
    let sth = Sth::sign(w.cn.id.clone(), 4, w.cn_log.root(4).unwrap(), ts(NOW), &w.cn.key).unwrap();
    let entry = LedgerEntry::Received {
        envelope: w.envelopes[1].header.clone(),
    };
    let cb = ProofBundle::build(&w.cn_log, entry, 1, sth, None, None, keyring(&w)).unwrap();
    assert_eq!(verify_bundle(&cb).unwrap().log_node, w.cn.id);
}

type Tamper = Box<dyn Fn(&mut ProofBundle)>;

#[test]
fn bundle_fails_after_any_tampering() {
    let w = world();
    let good = bundle(&w);
    let other_env = w.envelopes[3].clone();
    let first_receipt = w.receipts[0].clone();
    let tamperings: Vec<(&str, Tamper)> = vec![
        ("format", Box::new(|b| b.format = "liaison-proof/0".into())),
        (
            "payload",
            Box::new(|b| b.payload = Some(json!({"kind": "nothing to see"}))),
        ),
        (
            "payload number",
            Box::new(|b| b.payload.as_mut().unwrap()["items"][0] = json!(7)),
        ),
        (
            "envelope field",
            Box::new(|b| {
                if let LedgerEntry::Sent { envelope } = &mut b.entry {
                    envelope.link_seq = 9;
                }
            }),
        ),
        (
            "envelope swapped",
            Box::new(move |b| {
                b.entry = LedgerEntry::Sent {
                    envelope: other_env.header.clone(),
                }
            }),
        ),
        (
            "kind",
            Box::new(|b| {
                if let LedgerEntry::Sent { envelope } = &b.entry {
                    b.entry = LedgerEntry::Received {
                        envelope: envelope.clone(),
                    };
                }
            }),
        ),
        (
            "receipt time",
            Box::new(|b| b.receipt.as_mut().unwrap().received_at = ts("2026-11-22T11:00:00Z")),
        ),
        (
            "receipt swapped",
            Box::new(move |b| b.receipt = Some(first_receipt.clone())),
        ),
        ("leaf index", Box::new(|b| b.leaf_index = 2)),
        ("leaf index past end", Box::new(|b| b.leaf_index = 10)),
        ("tree size", Box::new(|b| b.tree_size = 9)),
        ("proof hash", Box::new(|b| b.inclusion_proof[0].0[5] ^= 0x40)),
        (
            "proof dropped",
            Box::new(|b| {
                b.inclusion_proof.pop();
            }),
        ),
        (
            "proof extra",
            Box::new(|b| b.inclusion_proof.push(Hash256::digest(b""))),
        ),
        ("sth root", Box::new(|b| b.sth.root_hash.0[0] ^= 1)),
        (
            "sth size",
            Box::new(|b| {
                b.sth.tree_size = 9;
                b.tree_size = 9;
            }),
        ),
        ("sth time", Box::new(|b| b.sth.timestamp = ts("2026-11-22T10:00:01Z"))),
        ("sth signature", Box::new(|b| b.sth.signature.0[63] ^= 1)),
        (
            "sth node",
            Box::new(|b| b.sth.node_id = NodeId::parse("cn-mps").unwrap()),
        ),
        (
            "keys missing",
            Box::new(|b| {
                b.keys.0.remove(&NodeId::parse("cn-mps").unwrap());
            }),
        ),
        (
            "key replaced",
            Box::new(|b| {
                let k = NodeKey::from_seed([77; 32]).published(ts("2026-01-01T00:00:00Z"), None);
                b.keys.0.insert(NodeId::parse("de-bka").unwrap(), vec![k]);
            }),
        ),
        (
            "key expired",
            Box::new(|b| {
                for k in b.keys.0.get_mut(&NodeId::parse("de-bka").unwrap()).unwrap() {
                    k.valid_until = Some(ts("2026-06-01T00:00:00Z"));
                }
            }),
        ),
    ];
    for (what, tamper) in tamperings {
        let mut b = good.clone();
        tamper(&mut b);
        assert!(verify_bundle(&b).is_err(), "tampering with {what} went unnoticed");
    }
    assert!(verify_bundle(&good).is_ok());
}

#[test]
fn bundle_with_unknown_fields_is_refused() {
    let w = world();
    let mut v = serde_json::to_value(bundle(&w)).unwrap();
    v["note"] = json!("trust me");
    assert!(ProofBundle::from_slice(&serde_json::to_vec(&v).unwrap()).is_err());
    assert_eq!(BUNDLE_FORMAT, "liaison-proof/1");
}
