//! The federation ledger: what a leaf is, signed tree heads, the check of a peer's new tree
//! head against its previous one, and self-contained proof bundles.

use crate::descriptor::{KeySource, Keyring};
use crate::envelope::{EnvelopeHeader, PayloadType, Receipt, Rejection, check_payload, find_key};
use crate::jcs::{CanonError, to_canonical};
use crate::keys::{KeyId, NodeKey, SignedKind, signing_input_of};
use crate::merkle::{self, MerkleLog, ProofError, VerifyProofError, verify_consistency, verify_inclusion};
use crate::types::{Hash256, MessageId, NodeId, PROTOCOL_VERSION, ParseError, SignatureBytes, ms_time};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of a ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// An envelope this node sent and the peer acknowledged.
    Sent,
    /// An envelope this node accepted and applied.
    Received,
    /// A receipt this node obtained from a peer.
    Receipt,
    /// The head of this node's audit log, signed (protocol version 2).
    AuditAnchor,
}

/// One leaf of a node's ledger. The leaf bytes are the JCS form of this object:
/// `{"envelope":{…header…},"kind":"sent"}`, `{"envelope":{…},"kind":"received"}` or
/// `{"kind":"receipt","receipt":{…}}`. Envelopes are logged without their payload (the
/// header commits to it through `payload_hash`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LedgerEntry {
    Sent { envelope: EnvelopeHeader },
    Received { envelope: EnvelopeHeader },
    Receipt { receipt: Receipt },
    AuditAnchor { anchor: AuditAnchor },
}

/// "My audit log had `audit_seq` entries ending in `audit_hash` at `anchored_at`", signed by
/// the node. Appended to the node's ledger, it is covered by the next signed tree head, which
/// peers keep: rewriting the audit log before `audit_seq` afterwards changes that hash, and
/// rewriting the ledger to match breaks consistency with what the peers hold
/// (docs/federation.md §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditAnchor {
    pub version: u32,
    pub node_id: NodeId,
    pub audit_seq: u64,
    /// The audit entry's chain hash (64 lowercase hex digits).
    pub audit_hash: Hash256,
    #[serde(with = "ms_time")]
    pub anchored_at: Timestamp,
    pub key_id: KeyId,
    pub signature: SignatureBytes,
}

impl AuditAnchor {
    /// Signs an anchor of the audit head (`audit_seq`, `audit_hash`).
    pub fn sign(
        node_id: NodeId,
        audit_seq: u64,
        audit_hash: Hash256,
        anchored_at: Timestamp,
        key: &NodeKey,
    ) -> Result<Self, CanonError> {
        let mut a = AuditAnchor {
            version: PROTOCOL_VERSION,
            node_id,
            audit_seq,
            audit_hash,
            anchored_at: ms_time::truncate(anchored_at),
            key_id: key.key_id().clone(),
            signature: SignatureBytes([0; 64]),
        };
        a.signature = key.sign_bytes(&signing_input_of(SignedKind::AuditAnchor, &a, &[])?);
        Ok(a)
    }

    /// Checks the signature by the node's key valid at `anchored_at`.
    pub fn verify(&self, keys: &dyn KeySource) -> Result<(), Rejection> {
        if self.version < crate::types::MIN_PROTOCOL_VERSION {
            return Err(Rejection::UnsupportedVersion(self.version));
        }
        let key = find_key(keys, &self.node_id, &self.key_id, self.anchored_at)?;
        let input = signing_input_of(SignedKind::AuditAnchor, self, &[]).map_err(|e| Rejection::Malformed {
            field: "audit_anchor",
            reason: e.to_string(),
        })?;
        key.verify(&input, &self.signature)
            .map_err(|_| Rejection::BadSignature {
                key_id: self.key_id.clone(),
            })
    }
}

impl LedgerEntry {
    pub fn kind(&self) -> EntryKind {
        match self {
            LedgerEntry::Sent { .. } => EntryKind::Sent,
            LedgerEntry::Received { .. } => EntryKind::Received,
            LedgerEntry::Receipt { .. } => EntryKind::Receipt,
            LedgerEntry::AuditAnchor { .. } => EntryKind::AuditAnchor,
        }
    }

    /// The message this entry is about (`None` for an audit anchor).
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            LedgerEntry::Sent { envelope } | LedgerEntry::Received { envelope } => Some(envelope.message_id),
            LedgerEntry::Receipt { receipt } => Some(receipt.message_id),
            LedgerEntry::AuditAnchor { .. } => None,
        }
    }

    /// The key a node stores the leaf under: the message id, or `audit-<seq>` for an anchor.
    pub fn record_key(&self) -> String {
        match self.message_id() {
            Some(m) => m.to_string(),
            None => match self {
                LedgerEntry::AuditAnchor { anchor } => format!("audit-{}", anchor.audit_seq),
                _ => String::new(),
            },
        }
    }

    /// The node whose ledger holds this entry: the sender for `sent` and `receipt`, the
    /// recipient for `received`.
    pub fn log_owner(&self) -> &NodeId {
        match self {
            LedgerEntry::Sent { envelope } => &envelope.sender,
            LedgerEntry::Received { envelope } => &envelope.recipient,
            LedgerEntry::Receipt { receipt } => &receipt.sender,
            LedgerEntry::AuditAnchor { anchor } => &anchor.node_id,
        }
    }

    /// The leaf bytes (JCS form).
    pub fn leaf_bytes(&self) -> Result<Vec<u8>, CanonError> {
        to_canonical(self)
    }

    /// `SHA-256(0x00 ‖ leaf bytes)`.
    pub fn leaf_hash(&self) -> Result<Hash256, CanonError> {
        Ok(merkle::leaf_hash(&self.leaf_bytes()?))
    }
}

/// A signed tree head: "my ledger had `tree_size` leaves with root `root_hash` at
/// `timestamp`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sth {
    pub version: u32,
    pub node_id: NodeId,
    pub tree_size: u64,
    pub root_hash: Hash256,
    #[serde(with = "ms_time")]
    pub timestamp: Timestamp,
    pub key_id: KeyId,
    pub signature: SignatureBytes,
}

impl Sth {
    /// Signs a tree head.
    pub fn sign(
        node_id: NodeId,
        tree_size: u64,
        root_hash: Hash256,
        timestamp: Timestamp,
        key: &NodeKey,
    ) -> Result<Self, CanonError> {
        let mut sth = Sth {
            version: PROTOCOL_VERSION,
            node_id,
            tree_size,
            root_hash,
            timestamp: ms_time::truncate(timestamp),
            key_id: key.key_id().clone(),
            signature: SignatureBytes([0; 64]),
        };
        sth.signature = key.sign_bytes(&signing_input_of(SignedKind::Sth, &sth, &[])?);
        Ok(sth)
    }

    /// Signs the current head of `log`.
    pub fn sign_log(node_id: NodeId, log: &MerkleLog, timestamp: Timestamp, key: &NodeKey) -> Result<Self, CanonError> {
        Sth::sign(node_id, log.len(), log.current_root(), timestamp, key)
    }

    /// Parses a received tree head strictly.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        crate::types::strict_from_slice("sth", bytes)
    }

    /// Checks the signature by the node's key valid at `timestamp`.
    pub fn verify(&self, keys: &dyn KeySource) -> Result<(), Rejection> {
        // A tree head carries its signer's newest version; read any from the oldest accepted.
        if self.version < crate::types::MIN_PROTOCOL_VERSION {
            return Err(Rejection::UnsupportedVersion(self.version));
        }
        let key = find_key(keys, &self.node_id, &self.key_id, self.timestamp)?;
        let input = signing_input_of(SignedKind::Sth, self, &[]).map_err(|e| Rejection::Malformed {
            field: "sth",
            reason: e.to_string(),
        })?;
        key.verify(&input, &self.signature)
            .map_err(|_| Rejection::BadSignature {
                key_id: self.key_id.clone(),
            })
    }
}

/// Evidence that a peer's ledger is not an append-only extension of what it showed before.
/// Keep both signed tree heads: together they prove the misbehaviour to anyone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistent {
    #[error("tree heads are from different nodes ('{previous}' and '{new}')")]
    DifferentNode { previous: NodeId, new: NodeId },
    #[error("tree shrank from {previous} to {new} leaves")]
    Shrunk { previous: u64, new: u64 },
    #[error("tree head timestamp went backwards ({previous} then {new})")]
    TimeWentBackwards { previous: Timestamp, new: Timestamp },
    #[error("the new tree does not extend the previous one: {0}")]
    Fork(VerifyProofError),
}

/// Checks that `new` extends `previous` (both already signature-checked with
/// [`Sth::verify`]), using the peer's consistency proof from `previous.tree_size` to
/// `new.tree_size`.
pub fn check_peer_sth(previous: &Sth, new: &Sth, proof: &[Hash256]) -> Result<(), Inconsistent> {
    if previous.node_id != new.node_id {
        return Err(Inconsistent::DifferentNode {
            previous: previous.node_id.clone(),
            new: new.node_id.clone(),
        });
    }
    if new.tree_size < previous.tree_size {
        return Err(Inconsistent::Shrunk {
            previous: previous.tree_size,
            new: new.tree_size,
        });
    }
    if new.timestamp < previous.timestamp {
        return Err(Inconsistent::TimeWentBackwards {
            previous: previous.timestamp,
            new: new.timestamp,
        });
    }
    verify_consistency(
        previous.tree_size,
        new.tree_size,
        &previous.root_hash,
        &new.root_hash,
        proof,
    )
    .map_err(Inconsistent::Fork)
}

/// The `format` value of proof bundles.
pub const BUNDLE_FORMAT: &str = "liaison-proof/1";

/// Everything a third party needs to check, offline, that a message was exchanged and
/// logged: the ledger entry, optionally the payload and the peer's receipt, the inclusion
/// proof against a signed tree head, and the public keys involved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    pub format: String,
    pub entry: LedgerEntry,
    /// The envelope's payload, when the exporter chooses to disclose it.
    pub payload: Option<Value>,
    /// For a `sent` entry: the recipient's receipt for the envelope.
    pub receipt: Option<Receipt>,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub inclusion_proof: Vec<Hash256>,
    pub sth: Sth,
    /// Public keys of every node that signed something in the bundle.
    pub keys: Keyring,
}

/// A bundle that does not verify.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BundleError {
    #[error("not a proof bundle: {0}")]
    Format(String),
    #[error("envelope: {0}")]
    Envelope(Rejection),
    #[error("payload: {0}")]
    Payload(Rejection),
    #[error("receipt: {0}")]
    Receipt(Rejection),
    #[error("signed tree head: {0}")]
    Sth(Rejection),
    #[error("the tree head is from '{got}', but this entry belongs in the ledger of '{expected}'")]
    WrongLog { expected: NodeId, got: NodeId },
    #[error("bundle tree_size {bundle} differs from the tree head's {sth}")]
    SizeMismatch { bundle: u64, sth: u64 },
    #[error("the entry is not in the tree: {0}")]
    Inclusion(VerifyProofError),
    #[error("a {what} is not allowed with a '{kind:?}' entry")]
    Unexpected { what: &'static str, kind: EntryKind },
    #[error(transparent)]
    Canon(#[from] CanonError),
}

/// What a verified bundle proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    pub kind: EntryKind,
    pub message_id: MessageId,
    pub sender: NodeId,
    pub recipient: NodeId,
    pub payload_type: Option<PayloadType>,
    pub envelope_hash: Hash256,
    pub payload_disclosed: bool,
    pub receipt_verified: bool,
    pub log_node: NodeId,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub root_hash: Hash256,
    pub sth_timestamp: Timestamp,
    /// (node, key id, public key) of every key that verified a signature: compare these
    /// with the keys you trust (for example the pinned descriptors) before relying on the
    /// report.
    pub keys_used: Vec<(NodeId, KeyId, crate::types::PublicKeyBytes)>,
}

impl ProofBundle {
    /// Builds a bundle for the entry at `leaf_index`, proven against `sth` (whose tree size
    /// must not exceed the log).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        log: &MerkleLog,
        entry: LedgerEntry,
        leaf_index: u64,
        sth: Sth,
        payload: Option<Value>,
        receipt: Option<Receipt>,
        keys: Keyring,
    ) -> Result<Self, ProofError> {
        let inclusion_proof = log.inclusion_proof(leaf_index, sth.tree_size)?;
        Ok(ProofBundle {
            format: BUNDLE_FORMAT.to_string(),
            entry,
            payload,
            receipt,
            leaf_index,
            tree_size: sth.tree_size,
            inclusion_proof,
            sth,
            keys,
        })
    }

    /// Parses a bundle file.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, BundleError> {
        serde_json::from_slice(bytes).map_err(|e| BundleError::Format(e.to_string()))
    }

    /// Pretty JSON for the file.
    pub fn to_json_pretty(&self) -> Result<String, BundleError> {
        serde_json::to_string_pretty(self).map_err(|e| BundleError::Format(e.to_string()))
    }
}

fn key_used(keys: &Keyring, node: &NodeId, key_id: &KeyId) -> Option<(NodeId, KeyId, crate::types::PublicKeyBytes)> {
    keys.node_keys(node)?
        .iter()
        .find(|k| &k.key_id == key_id)
        .map(|k| (node.clone(), key_id.clone(), k.public_key))
}

/// Verifies a proof bundle offline: every signature against the bundle's keys, the payload
/// against its hash, the receipt against the envelope, and the entry's inclusion in the
/// signed tree head. The report lists the keys used; trusting them is the reader's call.
pub fn verify_bundle(bundle: &ProofBundle) -> Result<BundleReport, BundleError> {
    if bundle.format != BUNDLE_FORMAT {
        return Err(BundleError::Format(format!(
            "format is '{}', expected '{BUNDLE_FORMAT}'",
            bundle.format
        )));
    }
    let keys = &bundle.keys;
    let kind = bundle.entry.kind();
    let mut keys_used = Vec::new();
    let report_base = match &bundle.entry {
        LedgerEntry::Sent { envelope } | LedgerEntry::Received { envelope } => {
            envelope.verify_signature(keys).map_err(BundleError::Envelope)?;
            keys_used.extend(key_used(keys, &envelope.sender, &envelope.key_id));
            if let Some(payload) = &bundle.payload {
                check_payload(payload, &envelope.payload_hash).map_err(BundleError::Payload)?;
            }
            if let Some(receipt) = &bundle.receipt {
                if kind != EntryKind::Sent {
                    return Err(BundleError::Unexpected { what: "receipt", kind });
                }
                receipt.verify(envelope, keys).map_err(BundleError::Receipt)?;
                keys_used.extend(key_used(keys, &receipt.receiver, &receipt.key_id));
            }
            (
                envelope.message_id,
                envelope.sender.clone(),
                envelope.recipient.clone(),
                Some(envelope.payload_type),
                envelope.hash()?,
            )
        }
        LedgerEntry::Receipt { receipt } => {
            if bundle.payload.is_some() {
                return Err(BundleError::Unexpected { what: "payload", kind });
            }
            if bundle.receipt.is_some() {
                return Err(BundleError::Unexpected { what: "receipt", kind });
            }
            receipt.verify_signature(keys).map_err(BundleError::Receipt)?;
            keys_used.extend(key_used(keys, &receipt.receiver, &receipt.key_id));
            (
                receipt.message_id,
                receipt.sender.clone(),
                receipt.receiver.clone(),
                None,
                receipt.envelope_hash,
            )
        }
        // Proof bundles prove messages; an audit anchor is checked by `liaison audit verify`.
        LedgerEntry::AuditAnchor { .. } => {
            return Err(BundleError::Unexpected {
                what: "audit anchor",
                kind,
            });
        }
    };
    let owner = bundle.entry.log_owner();
    if owner != &bundle.sth.node_id {
        return Err(BundleError::WrongLog {
            expected: owner.clone(),
            got: bundle.sth.node_id.clone(),
        });
    }
    bundle.sth.verify(keys).map_err(BundleError::Sth)?;
    keys_used.extend(key_used(keys, &bundle.sth.node_id, &bundle.sth.key_id));
    if bundle.tree_size != bundle.sth.tree_size {
        return Err(BundleError::SizeMismatch {
            bundle: bundle.tree_size,
            sth: bundle.sth.tree_size,
        });
    }
    verify_inclusion(
        &bundle.entry.leaf_hash()?,
        bundle.leaf_index,
        bundle.tree_size,
        &bundle.inclusion_proof,
        &bundle.sth.root_hash,
    )
    .map_err(BundleError::Inclusion)?;
    keys_used.sort();
    keys_used.dedup();
    let (message_id, sender, recipient, payload_type, envelope_hash) = report_base;
    Ok(BundleReport {
        kind,
        message_id,
        sender,
        recipient,
        payload_type,
        envelope_hash,
        payload_disclosed: bundle.payload.is_some(),
        receipt_verified: bundle.receipt.is_some(),
        log_node: bundle.sth.node_id.clone(),
        leaf_index: bundle.leaf_index,
        tree_size: bundle.tree_size,
        root_hash: bundle.sth.root_hash,
        sth_timestamp: bundle.sth.timestamp,
        keys_used,
    })
}
