//! Plain timing loops for the federation core (no harness; `cargo bench -p liaison-wire`).
//! Prints one line per measurement: operation, count, elapsed, rate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark aborts on any failure

use jiff::Timestamp;
use liaison_core::{AgencyId, CountryCode};
use liaison_wire::merkle::leaf_hash;
use liaison_wire::*;
use serde_json::json;
use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

fn report(what: &str, n: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!("{what:<44} {n:>9} in {secs:>7.3} s  = {:>12.0} /s", n as f64 / secs);
}

fn main() {
    let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
    let de_key = NodeKey::from_seed([1; 32]);
    let de = NodeId::parse("de-bka").unwrap();
    let cn = NodeId::parse("cn-mps").unwrap();
    let descriptor = DescriptorDraft {
        node_id: de.clone(),
        agency_id: AgencyId::at(now, 1),
        agency_name: "BKA".into(),
        jurisdiction: CountryCode::parse("DE").unwrap(),
        base_url: "https://de.example.invalid".into(),
        tls_cert_sha256: Hash256::digest(b"cert"),
        keys: vec![de_key.published("2026-01-01T00:00:00Z".parse().unwrap(), None)],
        serial: 1,
        issued_at: now,
    }
    .sign(&de_key)
    .unwrap();
    let mut peers = PeerSet::default();
    peers.insert(PinnedPeer::pin(&descriptor).unwrap());
    // A typical request payload: ~1 KiB of JSON.
    let payload = json!({
        "request_id": "0190d2c2-0000-7000-8000-000000000001",
        "kind": "preservation",
        "urgency": "urgent",
        "offence": "computer_intrusion",
        "summary": "Preserve subscriber and traffic data for the accounts below pending an MLA request. ".repeat(6),
        "identifiers": ["user1@example.org", "user2@example.org", "203.0.113.7", "198.51.100.23"],
        "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        "tlp": "amber",
        "items": [1, 2, 3, 4, 5, 6, 7, 8],
    });
    let n_env = 5_000u64;

    let start = Instant::now();
    let mut envelopes = Vec::with_capacity(n_env as usize);
    for seq in 1..=n_env {
        let env = EnvelopeDraft {
            message_id: MessageId::new(),
            sender: de.clone(),
            recipient: cn.clone(),
            link_seq: seq,
            created_at: now,
            payload_type: PayloadType::RequestSubmitted,
            payload: payload.clone(),
        }
        .sign(&de_key)
        .unwrap();
        envelopes.push(env);
    }
    report("envelope sign (1 KiB payload)", n_env, start);

    let wire: Vec<Vec<u8>> = envelopes.iter().map(|e| e.to_bytes().unwrap()).collect();
    let seen = HashSet::new();
    let start = Instant::now();
    for bytes in &wire {
        let env = Envelope::from_slice(bytes).unwrap();
        let ctx = VerifyContext::new(&cn, &peers, now, &seen);
        black_box(env.verify(&ctx).unwrap());
    }
    report("envelope parse + verify", n_env, start);

    let start = Instant::now();
    for seq in 1..=n_env {
        let env = EnvelopeDraft {
            message_id: MessageId::new(),
            sender: de.clone(),
            recipient: cn.clone(),
            link_seq: seq,
            created_at: now,
            payload_type: PayloadType::RequestSubmitted,
            payload: payload.clone(),
        }
        .sign(&de_key)
        .unwrap();
        let bytes = env.to_bytes().unwrap();
        let env = Envelope::from_slice(&bytes).unwrap();
        black_box(env.verify(&VerifyContext::new(&cn, &peers, now, &seen)).unwrap());
    }
    report("envelope sign + serialize + parse + verify", n_env, start);

    let n_leaves = 1_000_000u64;
    let hashes: Vec<Hash256> = (0..n_leaves).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let start = Instant::now();
    let mut log = MerkleLog::new();
    for h in &hashes {
        log.append_hash(*h);
    }
    report("merkle append (leaf hash given)", n_leaves, start);

    let start = Instant::now();
    let mut log2 = MerkleLog::new();
    for h in hashes.iter().take(200_000) {
        log2.append_hash(*h);
        black_box(log2.current_root());
    }
    report("merkle append + root after each", 200_000, start);

    let start = Instant::now();
    let rebuilt = MerkleLog::from_leaf_hashes(hashes.clone());
    report("merkle rebuild from leaf hashes", n_leaves, start);
    assert_eq!(rebuilt.current_root(), log.current_root());

    let n_proofs = 100_000u64;
    let root = log.current_root();
    let start = Instant::now();
    for i in 0..n_proofs {
        let index = (i * 7919) % n_leaves;
        let proof = log.inclusion_proof(index, n_leaves).unwrap();
        verify_inclusion(&hashes[index as usize], index, n_leaves, &proof, &root).unwrap();
    }
    report("inclusion proof + verify (1M leaves)", n_proofs, start);

    let start = Instant::now();
    for i in 1..=n_proofs {
        let old = (i * 7919) % n_leaves + 1;
        let proof = log.consistency_proof(old, n_leaves).unwrap();
        verify_consistency(old, n_leaves, &log.root(old).unwrap(), &root, &proof).unwrap();
    }
    report("consistency proof + verify (1M leaves)", n_proofs, start);
}
