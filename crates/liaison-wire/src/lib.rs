//! # liaison-wire
//!
//! The pure core of Liaison federation: canonical JSON (RFC 8785), node identity and keys,
//! signed envelopes and receipts with their verification rules, and an RFC 9162-style
//! Merkle ledger with signed tree heads and proofs that a third party verifies offline.
//! The protocol is specified in `docs/federation.md`.
//!
//! Architecture invariant: this crate does no I/O except reading and writing the node's key
//! file, and reads no clock except through `MessageId::new`: callers pass `now`. HTTP
//! delivery, retries, persistence and the replay table live in the node (server and store
//! crates) and reach this crate through [`VerifyContext`], [`ReplayCheck`] and
//! [`KeySource`].
//!
//! ## One message, end to end
//!
//! ```
//! use liaison_wire::*;
//! use serde_json::json;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now: jiff::Timestamp = "2026-11-22T10:00:00Z".parse()?;
//! let (de, cn) = (NodeId::parse("de-bka")?, NodeId::parse("cn-mps")?);
//! let (de_key, cn_key) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
//!
//! // Each side pins the other's keys (normally from a verified descriptor).
//! let mut at_cn = Keyring::default();
//! at_cn.0.insert(de.clone(), vec![de_key.published(now, None)]);
//! let mut at_de = Keyring::default();
//! at_de.0.insert(cn.clone(), vec![cn_key.published(now, None)]);
//!
//! // Sender: sign.
//! let envelope = EnvelopeDraft {
//!     message_id: MessageId::new(),
//!     sender: de.clone(),
//!     recipient: cn.clone(),
//!     link_seq: 1,
//!     created_at: now,
//!     payload_type: PayloadType::Comment,
//!     payload: json!({"request_id": "…", "text": "Data preserved."}),
//! }
//! .sign(&de_key)?;
//! let body = envelope.to_bytes()?;
//!
//! // Receiver: parse, verify, (commit), log, answer with a receipt.
//! let received = Envelope::from_slice(&body)?;
//! let verified = received.verify(&VerifyContext::new(&cn, &at_cn, now, &NothingSeen))?;
//! let mut cn_log = MerkleLog::new();
//! cn_log.append_hash(LedgerEntry::Received { envelope: received.header.clone() }.leaf_hash()?);
//! let receipt = Receipt::issue(&verified, now, &cn_key)?;
//!
//! // Sender: check the receipt; log `sent` and `receipt`.
//! receipt.verify(&envelope.header, &at_de)?;
//! let mut de_log = MerkleLog::new();
//! let sent = LedgerEntry::Sent { envelope: envelope.header.clone() };
//! let index = de_log.append_hash(sent.leaf_hash()?);
//! de_log.append_hash(LedgerEntry::Receipt { receipt: receipt.clone() }.leaf_hash()?);
//!
//! // Later: a proof anyone can check offline.
//! let sth = Sth::sign_log(de.clone(), &de_log, now, &de_key)?;
//! let mut keys = at_de.clone();
//! keys.0.insert(de.clone(), vec![de_key.published(now, None)]);
//! let bundle = ProofBundle::build(&de_log, sent, index, sth, None, Some(receipt), keys)?;
//! let report = verify_bundle(&ProofBundle::from_slice(bundle.to_json_pretty()?.as_bytes())?)?;
//! assert_eq!(report.message_id, envelope.header.message_id);
//! # Ok(())
//! # }
//! ```

pub mod bulk;
pub mod case;
pub mod cleanup;
pub mod descriptor;
pub mod envelope;
pub mod jcs;
pub mod keys;
pub mod ledger;
pub mod merkle;
pub mod payloads;
pub mod types;

pub use bulk::{ChunkAuth, ChunkAuthError, EvidenceManifest, EvidenceResult, ManifestError, TransferOutcome};
pub use case::{CaseActionPayload, CaseAnswer, CaseUpdatePayload};
pub use cleanup::{CleanupItem, CleanupNoticePayload, CleanupStatusPayload};
pub use descriptor::{
    DescriptorDraft, DescriptorError, KeyRevocation, KeyRotation, KeySource, Keyring, MAX_REVOCATION_REASON,
    NodeDescriptor, PeerSet, PinnedPeer,
};
pub use envelope::{
    DEFAULT_MAX_SKEW, Envelope, EnvelopeDraft, EnvelopeHeader, LinkOrder, NothingSeen, PayloadType, Receipt, Rejection,
    ReplayCheck, SignError, Verified, VerifyContext, fit_payload, link_order, payload_min_version,
};
pub use jcs::{CanonError, canonicalize, to_canonical};
pub use keys::{KeyFileError, KeyId, NodeKey, PublishedKey};
pub use ledger::{
    AuditAnchor, BundleError, BundleReport, EntryKind, Inconsistent, LedgerEntry, ProofBundle, Sth, check_peer_sth,
    verify_bundle,
};
pub use merkle::{MerkleLog, ProofError, VerifyProofError, verify_consistency, verify_inclusion};
pub use payloads::{CommentPayload, MarkingPayload, Mirrored, SubmittedPayload, TransitionPayload};
pub use types::{
    Hash256, MIN_PROTOCOL_VERSION, MessageId, NodeId, PROTOCOL_VERSION, PublicKeyBytes, SignatureBytes, negotiate,
    version_supported,
};
