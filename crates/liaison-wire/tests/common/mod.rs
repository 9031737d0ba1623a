#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
//! Shared fixtures: two nodes (`de-bka`, `cn-mps`) with fixed keys and a fixed clock.

use jiff::Timestamp;
use liaison_core::{AgencyId, CountryCode};
use liaison_wire::*;
use serde_json::json;

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub const NOW: &str = "2026-11-22T10:00:00Z";

pub struct Node {
    pub id: NodeId,
    pub key: NodeKey,
    pub descriptor: NodeDescriptor,
}

pub fn node(name: &str, seed: u8, country: &str) -> Node {
    let id = NodeId::parse(name).unwrap();
    let key = NodeKey::from_seed([seed; 32]);
    let descriptor = DescriptorDraft {
        node_id: id.clone(),
        agency_id: AgencyId::at(ts("2026-01-01T00:00:00Z"), seed as u64),
        agency_name: format!("Agency {name}"),
        jurisdiction: CountryCode::parse(country).unwrap(),
        base_url: format!("https://{name}.example.invalid"),
        tls_cert_sha256: Hash256::digest(name.as_bytes()),
        keys: vec![key.published(ts("2026-01-01T00:00:00Z"), None)],
        serial: 1,
        issued_at: ts("2026-01-01T00:00:00Z"),
    }
    .sign(&key)
    .unwrap();
    Node { id, key, descriptor }
}

pub fn de() -> Node {
    node("de-bka", 1, "DE")
}

pub fn cn() -> Node {
    node("cn-mps", 2, "CN")
}

/// The receiver's view: `sender` pinned.
pub fn peers_with(sender: &Node) -> PeerSet {
    let mut peers = PeerSet::default();
    peers.insert(PinnedPeer::pin(&sender.descriptor).unwrap());
    peers
}

pub fn message_id(n: u64) -> MessageId {
    MessageId(liaison_core::RequestId::at(ts(NOW), n).0)
}

pub fn draft(from: &Node, to: &Node, seq: u64) -> EnvelopeDraft {
    EnvelopeDraft {
        message_id: message_id(seq),
        sender: from.id.clone(),
        recipient: to.id.clone(),
        link_seq: seq,
        created_at: ts(NOW),
        payload_type: PayloadType::RequestSubmitted,
        payload: json!({
            "request_id": "0190d2c2-0000-7000-8000-000000000001",
            "kind": "preservation",
            "summary": "Preserve subscriber data for account ü@example.org",
            "items": [1, 2, 3]
        }),
    }
}
