//! Node descriptors (who a node is and which keys it signs with), key rotation statements,
//! and the pinned view of a peer that a node keeps after first contact.

use crate::jcs::CanonError;
use crate::keys::{KeyId, NodeKey, PublishedKey, SignedKind, signing_input_of};
use crate::types::{Hash256, NodeId, PROTOCOL_VERSION, ParseError, SignatureBytes, ms_time, strict_from_slice};
use jiff::Timestamp;
use liaison_core::{AgencyId, CountryCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a node publishes about itself at `GET /federation/v1/descriptor`, signed by one of the
/// keys it lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDescriptor {
    pub version: u32,
    pub node_id: NodeId,
    pub agency_id: AgencyId,
    pub agency_name: String,
    pub jurisdiction: CountryCode,
    /// HTTPS base URL; the federation endpoints live under `{base_url}/federation/v1/`.
    pub base_url: String,
    /// SHA-256 of the DER encoding of the node's TLS server certificate (pinned by peers).
    pub tls_cert_sha256: Hash256,
    pub keys: Vec<PublishedKey>,
    /// Increases with every new descriptor the node issues; peers ignore older serials.
    pub serial: u64,
    #[serde(with = "ms_time")]
    pub issued_at: Timestamp,
    pub key_id: KeyId,
    pub signature: SignatureBytes,
}

/// The unsigned content of a descriptor.
#[derive(Debug, Clone)]
pub struct DescriptorDraft {
    pub node_id: NodeId,
    pub agency_id: AgencyId,
    pub agency_name: String,
    pub jurisdiction: CountryCode,
    pub base_url: String,
    pub tls_cert_sha256: Hash256,
    pub keys: Vec<PublishedKey>,
    pub serial: u64,
    pub issued_at: Timestamp,
}

/// A descriptor, rotation statement or update that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Canon(#[from] CanonError),
    #[error(
        "protocol version {0} is not supported: this node speaks versions {min} to {max}",
        min = crate::types::MIN_PROTOCOL_VERSION,
        max = crate::types::PROTOCOL_VERSION
    )]
    UnsupportedVersion(u32),
    #[error("the signing key {0} is not listed in the descriptor")]
    SignerNotListed(KeyId),
    #[error("key id {0} does not match its public key")]
    KeyIdMismatch(KeyId),
    #[error("key id {0} is listed twice")]
    DuplicateKey(KeyId),
    #[error("key {key_id} was not valid at {at}")]
    KeyNotValidAt { key_id: KeyId, at: Timestamp },
    #[error("key {0} is not pinned for this peer")]
    UnknownKey(KeyId),
    #[error("signature by {0} does not verify")]
    BadSignature(KeyId),
    #[error("descriptor is for node '{got}', but the pinned peer is '{expected}'")]
    WrongNode { expected: NodeId, got: NodeId },
    #[error("descriptor serial {got} is not newer than the pinned serial {pinned}")]
    StaleSerial { pinned: u64, got: u64 },
    #[error("the descriptor lists no key valid at its own issue time")]
    NoCurrentKey,
    #[error("rotation to a key that is already pinned with a different public key ({0})")]
    ConflictingKey(KeyId),
    #[error("key {0} was revoked (compromised); no descriptor or rotation can list it again")]
    RevokedKey(KeyId),
    #[error("key revocation: {0}")]
    Revocation(String),
    #[error("the new key in a rotation must differ from the old key")]
    SameKey,
}

impl DescriptorDraft {
    /// Signs the descriptor with `key`, which must be one of the listed keys.
    pub fn sign(self, key: &NodeKey) -> Result<NodeDescriptor, DescriptorError> {
        let mut d = NodeDescriptor {
            version: PROTOCOL_VERSION,
            node_id: self.node_id,
            agency_id: self.agency_id,
            agency_name: self.agency_name,
            jurisdiction: self.jurisdiction,
            base_url: self.base_url,
            tls_cert_sha256: self.tls_cert_sha256,
            keys: self.keys,
            serial: self.serial,
            issued_at: ms_time::truncate(self.issued_at),
            key_id: key.key_id().clone(),
            signature: SignatureBytes([0; 64]),
        };
        if !d.keys.iter().any(|k| &k.key_id == key.key_id()) {
            return Err(DescriptorError::SignerNotListed(key.key_id().clone()));
        }
        d.signature = key.sign_bytes(&signing_input_of(SignedKind::Descriptor, &d, &[])?);
        Ok(d)
    }
}

impl NodeDescriptor {
    /// Parses a received descriptor strictly.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let v: Self = strict_from_slice("descriptor", bytes)?;
        // What is signed is the canonical (JCS) form: a value without one (an integer beyond
        // ±(2^53 − 1), which I-JSON forbids) could be neither checked nor fingerprinted.
        crate::jcs::to_canonical(&v)?;
        Ok(v)
    }

    /// SHA-256 of the JCS form of the whole signed descriptor: the value operators compare
    /// out of band (phone, letter, liaison officer) before pinning a new peer.
    pub fn fingerprint(&self) -> Result<Hash256, DescriptorError> {
        Ok(crate::keys::canonical_hash(self)?)
    }

    fn check_shape(&self) -> Result<(), DescriptorError> {
        // A descriptor says the newest version its node speaks: any version from the oldest
        // this node accepts up is read (strictly: a newer one with unknown fields is refused).
        if self.version < crate::types::MIN_PROTOCOL_VERSION {
            return Err(DescriptorError::UnsupportedVersion(self.version));
        }
        let mut seen = std::collections::BTreeSet::new();
        for k in &self.keys {
            if !k.id_matches() {
                return Err(DescriptorError::KeyIdMismatch(k.key_id.clone()));
            }
            if !seen.insert(&k.key_id) {
                return Err(DescriptorError::DuplicateKey(k.key_id.clone()));
            }
        }
        Ok(())
    }

    fn verify_with(&self, signer: &PublishedKey) -> Result<(), DescriptorError> {
        let input = signing_input_of(SignedKind::Descriptor, self, &[])?;
        signer
            .verify(&input, &self.signature)
            .map_err(|_| DescriptorError::BadSignature(self.key_id.clone()))
    }

    /// Checks a descriptor on its own (first contact): well-formed keys, and signed by one of
    /// its own keys that was valid at `issued_at`. This proves possession of the key, not
    /// identity: the operator must still compare [`NodeDescriptor::fingerprint`] out of band.
    pub fn verify_self_signed(&self) -> Result<(), DescriptorError> {
        self.check_shape()?;
        let signer = self
            .keys
            .iter()
            .find(|k| k.key_id == self.key_id)
            .ok_or_else(|| DescriptorError::SignerNotListed(self.key_id.clone()))?;
        if !signer.valid_at(self.issued_at) {
            return Err(DescriptorError::KeyNotValidAt {
                key_id: self.key_id.clone(),
                at: self.issued_at,
            });
        }
        self.verify_with(signer)
    }
}

/// "Node N replaces key OLD with key NEW": signed by the old key and by the new key.
/// Verified against the pinned peer, it adds NEW (valid from `new_key.valid_from`) and ends
/// OLD at `old_valid_until`. Applying a statement twice changes nothing, and a statement can
/// only shorten the old key's window, never extend it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    pub version: u32,
    pub node_id: NodeId,
    pub old_key_id: KeyId,
    pub new_key: PublishedKey,
    #[serde(with = "ms_time")]
    pub old_valid_until: Timestamp,
    #[serde(with = "ms_time")]
    pub issued_at: Timestamp,
    pub old_signature: SignatureBytes,
    pub new_signature: SignatureBytes,
}

const ROTATION_EXCLUDE: &[&str] = &["old_signature", "new_signature"];

impl KeyRotation {
    /// Builds and signs a rotation from `old` to `new`.
    pub fn sign(
        node_id: NodeId,
        old: &NodeKey,
        new: &NodeKey,
        new_valid_from: Timestamp,
        new_valid_until: Option<Timestamp>,
        old_valid_until: Timestamp,
        issued_at: Timestamp,
    ) -> Result<Self, DescriptorError> {
        if old.key_id() == new.key_id() {
            return Err(DescriptorError::SameKey);
        }
        let mut r = KeyRotation {
            version: PROTOCOL_VERSION,
            node_id,
            old_key_id: old.key_id().clone(),
            new_key: new.published(new_valid_from, new_valid_until),
            old_valid_until: ms_time::truncate(old_valid_until),
            issued_at: ms_time::truncate(issued_at),
            old_signature: SignatureBytes([0; 64]),
            new_signature: SignatureBytes([0; 64]),
        };
        let input = signing_input_of(SignedKind::KeyRotation, &r, ROTATION_EXCLUDE)?;
        r.old_signature = old.sign_bytes(&input);
        r.new_signature = new.sign_bytes(&input);
        Ok(r)
    }

    /// Parses a received rotation statement strictly.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let v: Self = strict_from_slice("key rotation", bytes)?;
        // What is signed is the canonical (JCS) form: a value without one (an integer beyond
        // ±(2^53 − 1), which I-JSON forbids) could be neither checked nor fingerprinted.
        crate::jcs::to_canonical(&v)?;
        Ok(v)
    }
}

/// Where verification finds a node's keys. Implemented by [`Keyring`] and [`PeerSet`]; the
/// node may implement it over its database.
pub trait KeySource {
    /// Every key ever pinned for `node` (expired ones included: old messages still verify
    /// against the window they were signed in), or `None` if the node is unknown.
    fn node_keys(&self, node: &NodeId) -> Option<&[PublishedKey]>;
}

/// A plain map from node id to keys (what a proof bundle carries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Keyring(pub BTreeMap<NodeId, Vec<PublishedKey>>);

impl KeySource for Keyring {
    fn node_keys(&self, node: &NodeId) -> Option<&[PublishedKey]> {
        self.0.get(node).map(Vec::as_slice)
    }
}

/// What a node remembers about a peer after pinning its descriptor. Persist it (peers and
/// peer_keys tables); update it only through [`PinnedPeer::apply_descriptor`] and
/// [`PinnedPeer::apply_rotation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedPeer {
    pub node_id: NodeId,
    pub agency_id: AgencyId,
    pub agency_name: String,
    pub jurisdiction: CountryCode,
    pub base_url: String,
    pub tls_cert_sha256: Hash256,
    pub keys: Vec<PublishedKey>,
    pub descriptor_serial: u64,
    /// The newest protocol version the peer's descriptor says it speaks (peers pinned before
    /// version 2 existed spoke version 1).
    #[serde(default = "first_version")]
    pub protocol_version: u32,
    /// Keys revoked as compromised (their window closed at the compromise, for good).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_keys: Vec<KeyId>,
}

fn first_version() -> u32 {
    1
}

impl PinnedPeer {
    /// The protocol version to use with this peer (the lower of the two newest), or the
    /// error to show when the peer is too old for this node.
    pub fn negotiated_version(&self) -> Result<u32, DescriptorError> {
        crate::types::negotiate(self.protocol_version).ok_or(DescriptorError::UnsupportedVersion(self.protocol_version))
    }
}

/// The pinned peers of a node, by node id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSet(pub BTreeMap<NodeId, PinnedPeer>);

impl PeerSet {
    pub fn insert(&mut self, peer: PinnedPeer) {
        self.0.insert(peer.node_id.clone(), peer);
    }
    pub fn get(&self, node: &NodeId) -> Option<&PinnedPeer> {
        self.0.get(node)
    }
    pub fn get_mut(&mut self, node: &NodeId) -> Option<&mut PinnedPeer> {
        self.0.get_mut(node)
    }
}

impl KeySource for PeerSet {
    fn node_keys(&self, node: &NodeId) -> Option<&[PublishedKey]> {
        self.0.get(node).map(|p| p.keys.as_slice())
    }
}

impl KeySource for PinnedPeer {
    fn node_keys(&self, node: &NodeId) -> Option<&[PublishedKey]> {
        (node == &self.node_id).then_some(self.keys.as_slice())
    }
}

impl PinnedPeer {
    /// First contact: pins a self-signed descriptor. Call only after the operator has
    /// confirmed [`NodeDescriptor::fingerprint`] (or the key ids) out of band.
    pub fn pin(descriptor: &NodeDescriptor) -> Result<Self, DescriptorError> {
        descriptor.verify_self_signed()?;
        Ok(PinnedPeer {
            node_id: descriptor.node_id.clone(),
            agency_id: descriptor.agency_id,
            agency_name: descriptor.agency_name.clone(),
            jurisdiction: descriptor.jurisdiction,
            base_url: descriptor.base_url.clone(),
            tls_cert_sha256: descriptor.tls_cert_sha256,
            keys: descriptor.keys.clone(),
            descriptor_serial: descriptor.serial,
            protocol_version: descriptor.version,
            revoked_keys: Vec::new(),
        })
    }

    /// The pinned key `key_id`, if any.
    pub fn key(&self, key_id: &KeyId) -> Option<&PublishedKey> {
        self.keys.iter().find(|k| &k.key_id == key_id)
    }

    /// A newer descriptor from an already pinned peer (new URL, certificate, name or keys).
    /// It must be signed by a key pinned now and valid both at its `issued_at` and at `now`,
    /// and carry a higher serial. Keys it lists replace the pinned set, except that a key
    /// pinned before keeps its public key (a changed public key under the same id is refused).
    pub fn apply_descriptor(&mut self, new: &NodeDescriptor, now: Timestamp) -> Result<(), DescriptorError> {
        new.check_shape()?;
        if new.node_id != self.node_id {
            return Err(DescriptorError::WrongNode {
                expected: self.node_id.clone(),
                got: new.node_id.clone(),
            });
        }
        if new.serial <= self.descriptor_serial {
            return Err(DescriptorError::StaleSerial {
                pinned: self.descriptor_serial,
                got: new.serial,
            });
        }
        let signer = self
            .key(&new.key_id)
            .ok_or_else(|| DescriptorError::UnknownKey(new.key_id.clone()))?;
        for at in [new.issued_at, now] {
            if !signer.valid_at(at) {
                return Err(DescriptorError::KeyNotValidAt {
                    key_id: new.key_id.clone(),
                    at,
                });
            }
        }
        new.verify_with(signer)?;
        for k in &new.keys {
            if self.reopens_revoked(k) {
                return Err(DescriptorError::RevokedKey(k.key_id.clone()));
            }
            if let Some(old) = self.key(&k.key_id)
                && old.public_key != k.public_key
            {
                return Err(DescriptorError::ConflictingKey(k.key_id.clone()));
            }
        }
        self.agency_id = new.agency_id;
        self.agency_name = new.agency_name.clone();
        self.jurisdiction = new.jurisdiction;
        self.base_url = new.base_url.clone();
        self.tls_cert_sha256 = new.tls_cert_sha256;
        // Keep keys that the new descriptor dropped, closed at `now` at the latest, so that
        // messages signed earlier still verify.
        let mut keys = new.keys.clone();
        // No descriptor lengthens the window of a key pinned before (it can only shorten it).
        for k in keys.iter_mut() {
            if let Some(old) = self.key(&k.key_id) {
                k.valid_from = k.valid_from.max(old.valid_from);
                k.valid_until = match (k.valid_until, old.valid_until) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        for old in &self.keys {
            if !keys.iter().any(|k| k.key_id == old.key_id) {
                let mut closed = old.clone();
                closed.valid_until = Some(closed.valid_until.map_or(now, |u| u.min(now)));
                keys.push(closed);
            }
        }
        self.keys = keys;
        self.descriptor_serial = new.serial;
        self.protocol_version = new.version;
        Ok(())
    }

    /// Applies a key rotation statement. The old key must be pinned and valid at the
    /// statement's `issued_at`; both signatures must verify. Idempotent.
    pub fn apply_rotation(&mut self, rotation: &KeyRotation) -> Result<(), DescriptorError> {
        if rotation.version < crate::types::MIN_PROTOCOL_VERSION {
            return Err(DescriptorError::UnsupportedVersion(rotation.version));
        }
        if rotation.node_id != self.node_id {
            return Err(DescriptorError::WrongNode {
                expected: self.node_id.clone(),
                got: rotation.node_id.clone(),
            });
        }
        if !rotation.new_key.id_matches() {
            return Err(DescriptorError::KeyIdMismatch(rotation.new_key.key_id.clone()));
        }
        if rotation.new_key.key_id == rotation.old_key_id {
            return Err(DescriptorError::SameKey);
        }
        let old = self
            .key(&rotation.old_key_id)
            .ok_or_else(|| DescriptorError::UnknownKey(rotation.old_key_id.clone()))?;
        if !old.valid_at(rotation.issued_at) {
            return Err(DescriptorError::KeyNotValidAt {
                key_id: rotation.old_key_id.clone(),
                at: rotation.issued_at,
            });
        }
        let input = signing_input_of(SignedKind::KeyRotation, rotation, ROTATION_EXCLUDE)?;
        old.verify(&input, &rotation.old_signature)
            .map_err(|_| DescriptorError::BadSignature(rotation.old_key_id.clone()))?;
        rotation
            .new_key
            .verify(&input, &rotation.new_signature)
            .map_err(|_| DescriptorError::BadSignature(rotation.new_key.key_id.clone()))?;
        if self.revoked_keys.contains(&rotation.new_key.key_id) {
            return Err(DescriptorError::RevokedKey(rotation.new_key.key_id.clone()));
        }
        if let Some(existing) = self.key(&rotation.new_key.key_id)
            && existing.public_key != rotation.new_key.public_key
        {
            return Err(DescriptorError::ConflictingKey(rotation.new_key.key_id.clone()));
        }
        for k in &mut self.keys {
            if k.key_id == rotation.old_key_id {
                k.valid_until = Some(
                    k.valid_until
                        .map_or(rotation.old_valid_until, |u| u.min(rotation.old_valid_until)),
                );
            }
        }
        if self.key(&rotation.new_key.key_id).is_none() {
            self.keys.push(rotation.new_key.clone());
        }
        Ok(())
    }
}

/// An emergency revocation of a compromised node key: "key `key_id` of node `node_id` may
/// have been in other hands since `compromised_since`". Signed with the revoked key itself:
/// whoever holds it can kill it, and nobody can bring it back (docs/federation.md §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRevocation {
    pub version: u32,
    pub node_id: NodeId,
    pub key_id: KeyId,
    #[serde(with = "ms_time")]
    pub compromised_since: Timestamp,
    #[serde(with = "ms_time")]
    pub issued_at: Timestamp,
    /// Why, in the operator's words (at most [`MAX_REVOCATION_REASON`] bytes).
    pub reason: String,
    pub signature: SignatureBytes,
}

/// Longest reason a revocation may carry, in bytes.
pub const MAX_REVOCATION_REASON: usize = 500;

impl KeyRevocation {
    /// Signs a revocation of `key` (the compromised key signs its own end).
    pub fn sign(
        node_id: NodeId,
        key: &NodeKey,
        compromised_since: Timestamp,
        issued_at: Timestamp,
        reason: &str,
    ) -> Result<Self, DescriptorError> {
        if reason.len() > MAX_REVOCATION_REASON {
            return Err(DescriptorError::Revocation(format!(
                "the reason is longer than {MAX_REVOCATION_REASON} bytes"
            )));
        }
        let mut r = KeyRevocation {
            version: PROTOCOL_VERSION,
            node_id,
            key_id: key.key_id().clone(),
            compromised_since: ms_time::truncate(compromised_since),
            issued_at: ms_time::truncate(issued_at),
            reason: reason.to_string(),
            signature: SignatureBytes([0; 64]),
        };
        r.signature = key.sign_bytes(&signing_input_of(SignedKind::KeyRevocation, &r, &[])?);
        Ok(r)
    }

    /// Parses a received revocation strictly.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let v: Self = strict_from_slice("key revocation", bytes)?;
        // What is signed is the canonical (JCS) form: a value without one (an integer beyond
        // ±(2^53 − 1), which I-JSON forbids) could be neither checked nor fingerprinted.
        crate::jcs::to_canonical(&v)?;
        Ok(v)
    }
}

impl PinnedPeer {
    /// Applies a revocation statement of one of this peer's keys: the key must be pinned
    /// (in any window: an expired key can still be revoked) and have signed the statement.
    /// Its window then ends at `compromised_since` for good. Returns whether anything changed
    /// (applying a statement again changes nothing).
    pub fn apply_revocation(&mut self, r: &KeyRevocation) -> Result<bool, DescriptorError> {
        if r.version < crate::types::MIN_PROTOCOL_VERSION {
            return Err(DescriptorError::UnsupportedVersion(r.version));
        }
        if r.node_id != self.node_id {
            return Err(DescriptorError::WrongNode {
                expected: self.node_id.clone(),
                got: r.node_id.clone(),
            });
        }
        if r.reason.len() > MAX_REVOCATION_REASON {
            return Err(DescriptorError::Revocation(format!(
                "the reason is longer than {MAX_REVOCATION_REASON} bytes"
            )));
        }
        if r.compromised_since > r.issued_at {
            return Err(DescriptorError::Revocation(
                "compromised_since is after the statement was issued".into(),
            ));
        }
        let key = self
            .key(&r.key_id)
            .ok_or_else(|| DescriptorError::UnknownKey(r.key_id.clone()))?;
        let input = signing_input_of(SignedKind::KeyRevocation, r, &[])?;
        key.verify(&input, &r.signature)
            .map_err(|_| DescriptorError::BadSignature(r.key_id.clone()))?;
        Ok(self.revoke(&r.key_id, r.compromised_since))
    }

    /// Whether listing `k` would open a revoked key again: a revoked key may be listed only
    /// with a window that ends no later than the one it was closed to.
    fn reopens_revoked(&self, k: &PublishedKey) -> bool {
        if !self.revoked_keys.contains(&k.key_id) {
            return false;
        }
        let closed = self.key(&k.key_id).and_then(|p| p.valid_until);
        match (k.valid_until, closed) {
            (Some(listed), Some(closed)) => listed > closed,
            _ => true,
        }
    }

    /// Revokes a pinned key as of `since` on the operator's own authority (the peer's operator
    /// called: no statement). Returns whether anything changed.
    pub fn revoke(&mut self, key_id: &KeyId, since: Timestamp) -> bool {
        let mut changed = false;
        for k in self.keys.iter_mut().filter(|k| &k.key_id == key_id) {
            let until = k.valid_until.map_or(since, |u| u.min(since));
            if k.valid_until != Some(until) {
                k.valid_until = Some(until);
                changed = true;
            }
        }
        if !self.revoked_keys.contains(key_id) {
            self.revoked_keys.push(key_id.clone());
            changed = true;
        }
        changed
    }

    /// The operator pins a new descriptor of a known peer after checking its fingerprint out
    /// of band (as at first contact), e.g. after the peer revoked its key. Keeps every key
    /// pinned before (closed at the new descriptor's issue time at the latest, so old messages
    /// still verify) and the revoked ones revoked; refuses a descriptor listing a revoked key.
    pub fn repin(&self, descriptor: &NodeDescriptor) -> Result<PinnedPeer, DescriptorError> {
        let mut fresh = PinnedPeer::pin(descriptor)?;
        if fresh.node_id != self.node_id {
            return Err(DescriptorError::WrongNode {
                expected: self.node_id.clone(),
                got: fresh.node_id.clone(),
            });
        }
        if descriptor.serial <= self.descriptor_serial {
            return Err(DescriptorError::StaleSerial {
                pinned: self.descriptor_serial,
                got: descriptor.serial,
            });
        }
        for k in &fresh.keys {
            if self.reopens_revoked(k) {
                return Err(DescriptorError::RevokedKey(k.key_id.clone()));
            }
        }
        for old in &self.keys {
            match fresh.keys.iter_mut().find(|k| k.key_id == old.key_id) {
                Some(k) => {
                    if k.public_key != old.public_key {
                        return Err(DescriptorError::ConflictingKey(k.key_id.clone()));
                    }
                    k.valid_from = k.valid_from.max(old.valid_from);
                    k.valid_until = match (k.valid_until, old.valid_until) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => {
                    let mut closed = old.clone();
                    let at = descriptor.issued_at;
                    closed.valid_until = Some(closed.valid_until.map_or(at, |u| u.min(at)));
                    fresh.keys.push(closed);
                }
            }
        }
        fresh.revoked_keys = self.revoked_keys.clone();
        Ok(fresh)
    }
}
