//! Federation state as stored: identity, keys, peers, outbox, inbox, ledger leaves, tree heads.

use jiff::Timestamp;

/// The node's own federation identity.
#[derive(Debug, Clone, PartialEq)]
pub struct FedIdentity {
    pub node_id: String,
    pub agency_id: String,
    pub listen: String,
    pub base_url: String,
    /// Directory holding the key files and the TLS certificate and key.
    pub key_dir: String,
    pub tls_cert_sha256: String,
    /// The current signed descriptor (JSON).
    pub descriptor: String,
    pub serial: i64,
}

/// One of the node's signing keys (the secret stays in the key file).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnKey {
    pub key_id: String,
    pub key_path: String,
    pub public_key: String,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
}

/// A pinned peer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRecord {
    pub node_id: String,
    pub agency_id: String,
    pub base_url: String,
    pub tls_cert_sha256: String,
    pub serial: i64,
    /// `PinnedPeer` JSON (includes the key list with validity windows).
    pub pinned: String,
    pub descriptor: String,
    pub added_at: Timestamp,
}

/// A stored peer key.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerKeyRecord {
    pub node_id: String,
    pub key_id: String,
    pub public_key: String,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub message_id: String,
    pub recipient: String,
    pub link_seq: i64,
    pub payload_type: String,
    pub payload: String,
    pub created_at: Timestamp,
    pub attempts: i64,
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// An inbox row (what was accepted and the receipt returned for it).
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    pub message_id: String,
    pub sender: String,
    pub link_seq: i64,
    pub envelope_hash: String,
    pub header: String,
    pub payload: String,
    pub receipt: String,
    pub outcome: String,
    pub applied_at: Timestamp,
}

/// A ledger leaf as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafRow {
    pub idx: i64,
    pub kind: String,
    pub message_id: String,
    pub leaf: String,
    pub leaf_hash: String,
    pub at: Timestamp,
}

/// A stored signed tree head. `role`: `own` (issued by this node), `peer` (a peer's, accepted
/// after a consistency check) or `evidence` (a peer's head that contradicts an accepted one).
#[derive(Debug, Clone, PartialEq)]
pub struct SthRecord {
    pub node_id: String,
    pub role: String,
    pub tree_size: i64,
    pub root_hash: String,
    pub timestamp: Timestamp,
    pub sth: String,
    pub recorded_at: Timestamp,
    pub note: Option<String>,
}

/// A stored receipt for a message this node sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptRow {
    pub message_id: String,
    pub envelope_hash: String,
    pub header: String,
    pub receipt: String,
    pub stored_at: Timestamp,
}

/// Outbox counts for status displays.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OutboxStats {
    pub pending: i64,
    pub delivered: i64,
}
