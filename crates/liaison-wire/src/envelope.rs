//! Signed envelopes, their verification rules, and receipts.

use crate::descriptor::KeySource;
use crate::jcs::{CanonError, canonicalize, check_protocol_numbers};
use crate::keys::{KeyId, NodeKey, PublishedKey, SignedKind, signing_input_of};
use crate::types::{
    Hash256, MIN_PROTOCOL_VERSION, MessageId, NodeId, PROTOCOL_VERSION, ParseError, SignatureBytes, ms_time,
    strict_from_value,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What an envelope carries. The node interprets the payload; this crate only signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadType {
    /// A new assistance request.
    RequestSubmitted,
    /// A lifecycle transition of a request.
    Transition,
    /// A comment on a request.
    Comment,
    /// An attachment's metadata and content hash (content travels separately).
    Attachment,
    /// A receipt sent asynchronously (normally receipts are the HTTP response).
    Receipt,
    /// A signed tree head, gossiped to a peer.
    Sth,
    /// A clean-up notice (indicators routed to the partner).
    CleanupNotice,
    /// The partner's remediation status for notice items.
    CleanupStatus,
    /// A new node descriptor.
    DescriptorUpdate,
    /// A key rotation statement.
    KeyRotation,
    /// A change of a request's marking by its originator (protocol version 4).
    Marking,
    /// An evidence file offered on a mirrored request: the signed manifest of its chunks
    /// (protocol version 5; the content follows on the bulk channel, docs/federation.md §12).
    EvidenceManifest,
    /// The receiver's verdict on a transferred file: stored (verified, durable) or refused
    /// (protocol version 5).
    EvidenceResult,
    /// Events of a joint case from its home node, and answers to a member node's actions
    /// (protocol version 7).
    CaseUpdate,
    /// A change a member agency's node asks of a joint case's home node (protocol version 7).
    CaseAction,
}

impl PayloadType {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadType::RequestSubmitted => "request_submitted",
            PayloadType::Transition => "transition",
            PayloadType::Comment => "comment",
            PayloadType::Attachment => "attachment",
            PayloadType::Receipt => "receipt",
            PayloadType::Sth => "sth",
            PayloadType::CleanupNotice => "cleanup_notice",
            PayloadType::CleanupStatus => "cleanup_status",
            PayloadType::DescriptorUpdate => "descriptor_update",
            PayloadType::KeyRotation => "key_rotation",
            PayloadType::Marking => "marking",
            PayloadType::EvidenceManifest => "evidence_manifest",
            PayloadType::EvidenceResult => "evidence_result",
            PayloadType::CaseUpdate => "case_update",
            PayloadType::CaseAction => "case_action",
        }
    }
}

/// Every envelope field except the payload. This is what is signed (the payload is bound
/// through `payload_hash`), what a receipt acknowledges and what the ledger records, so a
/// proof can show that a message was exchanged without disclosing its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeHeader {
    pub version: u32,
    pub message_id: MessageId,
    pub sender: NodeId,
    pub recipient: NodeId,
    /// 1, 2, 3, … for each (sender, recipient) link, in the order the sender created them.
    pub link_seq: u64,
    #[serde(with = "ms_time")]
    pub created_at: Timestamp,
    pub payload_type: PayloadType,
    /// SHA-256 of the JCS form of the payload.
    pub payload_hash: Hash256,
    pub key_id: KeyId,
    pub signature: SignatureBytes,
}

impl EnvelopeHeader {
    /// The envelope hash: SHA-256 of the JCS form of the header, signature included.
    /// Receipts and ledger entries refer to envelopes by this hash.
    pub fn hash(&self) -> Result<Hash256, CanonError> {
        crate::keys::canonical_hash(self)
    }

    /// The bytes the sender signed.
    pub fn signing_input(&self) -> Result<Vec<u8>, CanonError> {
        signing_input_of(SignedKind::Envelope, self, &[])
    }
}

/// A federation message as sent on the wire: the header fields and `payload` in one JSON
/// object.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub header: EnvelopeHeader,
    pub payload: Value,
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.header).map_err(serde::ser::Error::custom)?;
        if let Value::Object(map) = &mut v {
            map.insert("payload".to_string(), self.payload.clone());
        }
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Envelope::from_value(v).map_err(serde::de::Error::custom)
    }
}

/// The content of an envelope before signing.
#[derive(Debug, Clone)]
pub struct EnvelopeDraft {
    pub message_id: MessageId,
    pub sender: NodeId,
    pub recipient: NodeId,
    pub link_seq: u64,
    pub created_at: Timestamp,
    pub payload_type: PayloadType,
    pub payload: Value,
}

/// An envelope that cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Canon(#[from] CanonError),
    #[error("payload breaks the protocol's number rule: {0}")]
    PayloadNumbers(String),
    #[error("message id {0} is not a UUIDv7")]
    NotV7(MessageId),
    #[error("link_seq starts at 1")]
    ZeroLinkSeq,
    #[error("protocol version {0} is not one this node speaks ({MIN_PROTOCOL_VERSION}–{PROTOCOL_VERSION})")]
    Version(u32),
    #[error(
        "the recipient's node speaks protocol version {peer}, but this message needs version {needs} (see docs/federation.md §3.4); it waits in the outbox until the peer's node is upgraded"
    )]
    PeerTooOld { needs: u32, peer: u32 },
}

/// The oldest protocol version that can carry a payload: an amount in `request_submitted`
/// needs version 2 (version 1 had no exact form for it); one whose targets name a provider
/// needs version 3 (older nodes refuse unknown target fields); `cleanup_notice` and
/// `cleanup_status` need version 4 (older nodes do not apply them); a `cleanup_notice` that
/// states a PAP needs version 5 (version 4 refuses the unknown field); `case_update` and
/// `case_action` need version 7. Every later payload type or
/// field adds its line here and in docs/federation.md §3.4.
fn has_provider(payload: &Value) -> bool {
    payload
        .pointer("/request/targets")
        .and_then(Value::as_array)
        .is_some_and(|ts| ts.iter().any(|t| t.get("provider").is_some_and(|p| !p.is_null())))
}

/// The TLP level a payload's marking names (`/request/marking` of a submitted request,
/// `/data/marking` of a comment, `/marking` of a marking change), if it names one.
fn marking_tlp(payload_type: PayloadType, payload: &Value) -> Option<&str> {
    let at = match payload_type {
        PayloadType::RequestSubmitted => "/request/marking/tlp",
        PayloadType::Comment => "/data/marking/tlp",
        PayloadType::Marking => "/marking/tlp",
        _ => return None,
    };
    payload.pointer(at).and_then(Value::as_str)
}

/// Makes a payload fit an older protocol `version` where that loses nothing the older node
/// would not enforce anyway: before version 4 a submitted request's marking is left out
/// unless it is `TLP:RED` (an older node shows a request to its two agencies only, which is
/// what every other level allows; a RED marking must wait for an upgraded peer). Comments
/// keep their marking in free-form `data`, which older nodes store without reading.
pub fn fit_payload(payload_type: PayloadType, payload: &mut Value, version: u32) {
    if version < 4
        && payload_type == PayloadType::RequestSubmitted
        && marking_tlp(payload_type, payload).is_some_and(|t| t != "TLP:RED")
        && let Some(r) = payload.get_mut("request").and_then(Value::as_object_mut)
    {
        r.remove("marking");
    }
    if version < 6
        && payload_type == PayloadType::RequestSubmitted
        && let Some(o) = payload.as_object_mut()
    {
        o.remove("reference");
    }
}

pub fn payload_min_version(payload_type: PayloadType, payload: &Value) -> u32 {
    match payload_type {
        PayloadType::CaseUpdate | PayloadType::CaseAction => 7,
        PayloadType::EvidenceManifest | PayloadType::EvidenceResult => 5,
        PayloadType::Marking => 4,
        PayloadType::RequestSubmitted if payload.pointer("/request/marking").is_some_and(|m| !m.is_null()) => 4,
        PayloadType::Comment if marking_tlp(payload_type, payload) == Some("TLP:RED") => 4,
        PayloadType::CleanupNotice if payload.get("pap").is_some_and(|p| !p.is_null()) => 5,
        PayloadType::CleanupNotice | PayloadType::CleanupStatus => 4,
        PayloadType::RequestSubmitted if has_provider(payload) => 3,
        PayloadType::RequestSubmitted if payload.pointer("/request/amount").is_some_and(|a| !a.is_null()) => 2,
        _ => 1,
    }
}

impl EnvelopeDraft {
    /// Computes the payload hash and signs the header with `key`. `created_at` is truncated
    /// to milliseconds. Retries of the same message are re-signed with a fresh `created_at`
    /// but keep `message_id` and `link_seq`.
    pub fn sign(self, key: &NodeKey) -> Result<Envelope, SignError> {
        self.sign_version(key, PROTOCOL_VERSION)
    }

    /// Signs in protocol `version` (the one negotiated with the recipient, see
    /// [`crate::PinnedPeer::negotiated_version`]). Refuses a version this implementation does
    /// not speak, and a payload that needs a newer version than `version`
    /// ([`payload_min_version`]).
    pub fn sign_version(self, key: &NodeKey, version: u32) -> Result<Envelope, SignError> {
        if !crate::types::version_supported(version) {
            return Err(SignError::Version(version));
        }
        let needs = payload_min_version(self.payload_type, &self.payload);
        if needs > version {
            return Err(SignError::PeerTooOld { needs, peer: version });
        }
        if !self.message_id.is_v7() {
            return Err(SignError::NotV7(self.message_id));
        }
        if self.link_seq == 0 {
            return Err(SignError::ZeroLinkSeq);
        }
        check_protocol_numbers(&self.payload).map_err(SignError::PayloadNumbers)?;
        let payload_hash = Hash256::digest(&canonicalize(&self.payload)?);
        let mut header = EnvelopeHeader {
            version,
            message_id: self.message_id,
            sender: self.sender,
            recipient: self.recipient,
            link_seq: self.link_seq,
            created_at: ms_time::truncate(self.created_at),
            payload_type: self.payload_type,
            payload_hash,
            key_id: key.key_id().clone(),
            signature: SignatureBytes([0; 64]),
        };
        header.signature = key.sign_bytes(&header.signing_input()?);
        Ok(Envelope {
            header,
            payload: self.payload,
        })
    }
}

/// The receiver's record of which message ids it has already accepted. The node implements
/// it over its inbox table; the check must be repeated (as a unique key) in the transaction
/// that applies the message, so that two concurrent deliveries cannot both apply.
pub trait ReplayCheck {
    fn seen(&self, message_id: &MessageId) -> bool;
}

/// A replay checker that has seen nothing (tests, or a node that dedups only in its
/// transaction).
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingSeen;

impl ReplayCheck for NothingSeen {
    fn seen(&self, _: &MessageId) -> bool {
        false
    }
}

impl ReplayCheck for std::collections::HashSet<MessageId> {
    fn seen(&self, message_id: &MessageId) -> bool {
        self.contains(message_id)
    }
}

/// Default freshness window: `created_at` may differ from the receiver's clock by 5 minutes.
pub const DEFAULT_MAX_SKEW: SignedDuration = SignedDuration::from_secs(300);

/// What the receiver knows when it checks an envelope.
pub struct VerifyContext<'a> {
    pub own_node: &'a NodeId,
    pub keys: &'a dyn KeySource,
    pub now: Timestamp,
    pub max_skew: SignedDuration,
    pub replay: &'a dyn ReplayCheck,
}

impl<'a> VerifyContext<'a> {
    /// A context with the default freshness window.
    pub fn new(own_node: &'a NodeId, keys: &'a dyn KeySource, now: Timestamp, replay: &'a dyn ReplayCheck) -> Self {
        VerifyContext {
            own_node,
            keys,
            now,
            max_skew: DEFAULT_MAX_SKEW,
            replay,
        }
    }

    /// Replaces the freshness window.
    pub fn with_max_skew(mut self, max_skew: SignedDuration) -> Self {
        self.max_skew = max_skew.abs();
        self
    }
}

/// Why an envelope or receipt was refused. Each variant has a stable [`Rejection::code`] for
/// logs and for the `type` of the problem+json the node returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed {field}: {reason}")]
    Malformed { field: &'static str, reason: String },
    #[error("unsupported protocol version {0}: this node speaks versions {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}")]
    UnsupportedVersion(u32),
    #[error("addressed to node '{got}', but this node is '{expected}'")]
    WrongRecipient { expected: NodeId, got: NodeId },
    #[error("node '{0}' is not a pinned peer")]
    UnknownSender(NodeId),
    #[error("key {key_id} is not pinned for node '{node}'")]
    UnknownKey { node: NodeId, key_id: KeyId },
    #[error("key {key_id} was not valid at {at}")]
    KeyNotValidAt { key_id: KeyId, at: Timestamp },
    #[error("signature by {key_id} does not verify")]
    BadSignature { key_id: KeyId },
    #[error("payload does not match payload_hash")]
    PayloadHashMismatch,
    #[error("created_at is {skew_ms} ms away from this node's clock (allowed ±{max_ms} ms)")]
    StaleOrFuture { skew_ms: i64, max_ms: i64 },
    #[error("message {0} was already accepted")]
    Replay(MessageId),
    #[error("receipt does not match the envelope: {field} differs")]
    ReceiptMismatch { field: &'static str },
}

impl Rejection {
    /// A stable, lower-case identifier (`bad_signature`, `replay`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed { .. } => "malformed",
            Rejection::UnsupportedVersion(_) => "unsupported_version",
            Rejection::WrongRecipient { .. } => "wrong_recipient",
            Rejection::UnknownSender(_) => "unknown_sender",
            Rejection::UnknownKey { .. } => "unknown_key",
            Rejection::KeyNotValidAt { .. } => "key_not_valid_at",
            Rejection::BadSignature { .. } => "bad_signature",
            Rejection::PayloadHashMismatch => "payload_hash_mismatch",
            Rejection::StaleOrFuture { .. } => "stale_or_future",
            Rejection::Replay(_) => "replay",
            Rejection::ReceiptMismatch { .. } => "receipt_mismatch",
        }
    }
}

impl From<ParseError> for Rejection {
    fn from(e: ParseError) -> Self {
        Rejection::Malformed {
            field: e.what,
            reason: e.reason,
        }
    }
}

fn canon_malformed(field: &'static str) -> impl Fn(CanonError) -> Rejection {
    move |e| Rejection::Malformed {
        field,
        reason: e.to_string(),
    }
}

/// Finds `key_id` among `signer`'s pinned keys and checks it was valid at `at`.
pub(crate) fn find_key<'k>(
    keys: &'k dyn KeySource,
    signer: &NodeId,
    key_id: &KeyId,
    at: Timestamp,
) -> Result<&'k PublishedKey, Rejection> {
    let node_keys = keys
        .node_keys(signer)
        .ok_or_else(|| Rejection::UnknownSender(signer.clone()))?;
    let key = node_keys
        .iter()
        .find(|k| &k.key_id == key_id)
        .ok_or_else(|| Rejection::UnknownKey {
            node: signer.clone(),
            key_id: key_id.clone(),
        })?;
    if !key.valid_at(at) {
        return Err(Rejection::KeyNotValidAt {
            key_id: key_id.clone(),
            at,
        });
    }
    Ok(key)
}

/// The facts about an accepted envelope that the node needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The envelope's protocol version (its receipt is issued in the same version).
    pub version: u32,
    pub message_id: MessageId,
    pub sender: NodeId,
    pub recipient: NodeId,
    pub link_seq: u64,
    pub payload_type: PayloadType,
    pub envelope_hash: Hash256,
    pub key_id: KeyId,
    /// `now − created_at`, in milliseconds (positive: the envelope is from the past).
    pub skew_ms: i64,
}

impl EnvelopeHeader {
    /// Checks the header's signature and key against `keys` (no recipient, freshness or
    /// replay rule: those belong to live delivery, not to a later audit).
    pub fn verify_signature(&self, keys: &dyn KeySource) -> Result<(), Rejection> {
        if !crate::types::version_supported(self.version) {
            return Err(Rejection::UnsupportedVersion(self.version));
        }
        if !self.message_id.is_v7() {
            return Err(Rejection::Malformed {
                field: "message_id",
                reason: "not a UUIDv7".to_string(),
            });
        }
        if self.link_seq == 0 {
            return Err(Rejection::Malformed {
                field: "link_seq",
                reason: "link_seq starts at 1".to_string(),
            });
        }
        let key = find_key(keys, &self.sender, &self.key_id, self.created_at)?;
        let input = self.signing_input().map_err(canon_malformed("envelope"))?;
        key.verify(&input, &self.signature)
            .map_err(|_| Rejection::BadSignature {
                key_id: self.key_id.clone(),
            })
    }
}

/// Checks that `payload` is allowed by the protocol and hashes to `expected`.
pub fn check_payload(payload: &Value, expected: &Hash256) -> Result<(), Rejection> {
    check_protocol_numbers(payload).map_err(|reason| Rejection::Malformed {
        field: "payload",
        reason,
    })?;
    let bytes = canonicalize(payload).map_err(canon_malformed("payload"))?;
    if &Hash256::digest(&bytes) != expected {
        return Err(Rejection::PayloadHashMismatch);
    }
    Ok(())
}

impl Envelope {
    /// Parses a received envelope strictly (unknown fields and non-canonical spellings are
    /// `Malformed`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Rejection> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| Rejection::Malformed {
            field: "envelope",
            reason: e.to_string(),
        })?;
        Envelope::from_value(v)
    }

    /// [`Envelope::from_slice`] from a parsed JSON value.
    pub fn from_value(v: Value) -> Result<Self, Rejection> {
        let Value::Object(mut map) = v else {
            return Err(Rejection::Malformed {
                field: "envelope",
                reason: "not a JSON object".to_string(),
            });
        };
        let payload = map.remove("payload").ok_or_else(|| Rejection::Malformed {
            field: "payload",
            reason: "missing".to_string(),
        })?;
        let header = strict_from_value("envelope", Value::Object(map))?;
        Ok(Envelope { header, payload })
    }

    /// The JSON bytes to send (JCS form, so logs and hashes of the body are stable).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CanonError> {
        crate::jcs::to_canonical(self)
    }

    /// The envelope hash (see [`EnvelopeHeader::hash`]).
    pub fn hash(&self) -> Result<Hash256, CanonError> {
        self.header.hash()
    }

    /// Verifies a received envelope. Checks, in this order: version, message id form,
    /// recipient, sender pinned, key pinned, key valid at `created_at`, signature, payload
    /// number rule and hash, freshness, replay. The first failure is returned.
    pub fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Verified, Rejection> {
        let h = &self.header;
        if !crate::types::version_supported(h.version) {
            return Err(Rejection::UnsupportedVersion(h.version));
        }
        if &h.recipient != ctx.own_node {
            return Err(Rejection::WrongRecipient {
                expected: ctx.own_node.clone(),
                got: h.recipient.clone(),
            });
        }
        h.verify_signature(ctx.keys)?;
        check_payload(&self.payload, &h.payload_hash)?;
        if payload_min_version(h.payload_type, &self.payload) > h.version {
            return Err(Rejection::Malformed {
                field: "version",
                reason: format!(
                    "this {} payload needs protocol version {} or later",
                    h.payload_type.as_str(),
                    payload_min_version(h.payload_type, &self.payload)
                ),
            });
        }
        let skew = ctx.now.duration_since(h.created_at);
        let max = ctx.max_skew.abs();
        if skew.abs() > max {
            return Err(Rejection::StaleOrFuture {
                skew_ms: skew.as_millis() as i64,
                max_ms: max.as_millis() as i64,
            });
        }
        if ctx.replay.seen(&h.message_id) {
            return Err(Rejection::Replay(h.message_id));
        }
        Ok(Verified {
            version: h.version,
            message_id: h.message_id,
            sender: h.sender.clone(),
            recipient: h.recipient.clone(),
            link_seq: h.link_seq,
            payload_type: h.payload_type,
            envelope_hash: h.hash().map_err(canon_malformed("envelope"))?,
            key_id: h.key_id.clone(),
            skew_ms: skew.as_millis() as i64,
        })
    }
}

/// Where a link sequence number stands relative to the last one applied on that link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOrder {
    /// `last_applied + 1`: apply it.
    Next,
    /// At or below `last_applied`: already applied under this sequence number.
    AlreadyApplied,
    /// Above `last_applied + 1`: earlier messages are missing; `expected` is the next one.
    Gap { expected: u64 },
}

/// Compares a received `link_seq` with the last one applied on its link (0 if none).
pub fn link_order(last_applied: u64, link_seq: u64) -> LinkOrder {
    match link_seq.cmp(&last_applied.saturating_add(1)) {
        std::cmp::Ordering::Equal => LinkOrder::Next,
        std::cmp::Ordering::Less => LinkOrder::AlreadyApplied,
        std::cmp::Ordering::Greater => LinkOrder::Gap {
            expected: last_applied.saturating_add(1),
        },
    }
}

/// The receiver's signed acknowledgement of one envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub version: u32,
    pub message_id: MessageId,
    /// Hash of the acknowledged envelope (see [`EnvelopeHeader::hash`]).
    pub envelope_hash: Hash256,
    pub sender: NodeId,
    pub receiver: NodeId,
    pub link_seq: u64,
    #[serde(with = "ms_time")]
    pub received_at: Timestamp,
    pub key_id: KeyId,
    pub signature: SignatureBytes,
}

impl Receipt {
    /// Signs a receipt for an envelope this node verified and committed.
    pub fn issue(verified: &Verified, received_at: Timestamp, key: &NodeKey) -> Result<Self, CanonError> {
        let mut r = Receipt {
            version: verified.version,
            message_id: verified.message_id,
            envelope_hash: verified.envelope_hash,
            sender: verified.sender.clone(),
            receiver: verified.recipient.clone(),
            link_seq: verified.link_seq,
            received_at: ms_time::truncate(received_at),
            key_id: key.key_id().clone(),
            signature: SignatureBytes([0; 64]),
        };
        r.signature = key.sign_bytes(&signing_input_of(SignedKind::Receipt, &r, &[])?);
        Ok(r)
    }

    /// Parses a received receipt strictly.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Rejection> {
        Ok(crate::types::strict_from_slice("receipt", bytes)?)
    }

    /// Checks only the receipt's own signature, by the receiver's key valid at `received_at`.
    pub fn verify_signature(&self, keys: &dyn KeySource) -> Result<(), Rejection> {
        if !crate::types::version_supported(self.version) {
            return Err(Rejection::UnsupportedVersion(self.version));
        }
        let key = find_key(keys, &self.receiver, &self.key_id, self.received_at)?;
        let input = signing_input_of(SignedKind::Receipt, self, &[]).map_err(canon_malformed("receipt"))?;
        key.verify(&input, &self.signature)
            .map_err(|_| Rejection::BadSignature {
                key_id: self.key_id.clone(),
            })
    }

    /// The sender's check of a receipt for `envelope`: it names this envelope (id, hash,
    /// sender, recipient, link_seq) and is signed by the recipient.
    pub fn verify(&self, envelope: &EnvelopeHeader, keys: &dyn KeySource) -> Result<(), Rejection> {
        let mismatch = |field| Err(Rejection::ReceiptMismatch { field });
        if self.message_id != envelope.message_id {
            return mismatch("message_id");
        }
        let hash = envelope.hash().map_err(canon_malformed("envelope"))?;
        if self.envelope_hash != hash {
            return mismatch("envelope_hash");
        }
        if self.sender != envelope.sender {
            return mismatch("sender");
        }
        if self.receiver != envelope.recipient {
            return mismatch("receiver");
        }
        if self.link_seq != envelope.link_seq {
            return mismatch("link_seq");
        }
        self.verify_signature(keys)
    }
}
