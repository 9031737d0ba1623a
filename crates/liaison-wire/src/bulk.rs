//! Evidence transfer over federation (docs/federation.md §12, protocol version 5): the signed
//! manifest that opens a transfer in the ordered envelope stream, the result the receiver
//! sends back once the file is verified and durable (or refused), and the signature that
//! authenticates each chunk pushed on the bulk channel.
//!
//! Pure: the checks here look only at the objects themselves; what the receiver checks
//! against its own state (request, parties, marking, size limit) is the node's.

use crate::keys::KeyId;
use crate::keys::{NodeKey, PublishedKey, SignedKind, signing_input};
use crate::types::{Hash256, NodeId, SignatureBytes};
use liaison_core::record::EvidenceKind;
use liaison_core::{Marking, RequestId};
use serde::{Deserialize, Serialize};

/// Smallest transfer chunk (1 MiB, the storage chunk size).
pub const MIN_CHUNK: u64 = 1 << 20;
/// Largest transfer chunk (16 MiB): a receiver holds one chunk in memory per request.
pub const MAX_CHUNK: u64 = 16 << 20;
/// Most chunks a manifest may list (its hash list stays under 600 KB of JSON).
pub const MAX_CHUNKS: u64 = 8192;
/// Longest file name and media type in a manifest (bytes).
pub const MAX_NAME: usize = 255;

/// The chunk size a sender uses for a file of `size` bytes: 4 MiB, doubled while the file
/// would need more than [`MAX_CHUNKS`] chunks (at most [`MAX_CHUNK`]).
pub fn chunk_size_for(size: u64) -> u64 {
    let mut c = 4 << 20;
    while c < MAX_CHUNK && size.div_ceil(c) > MAX_CHUNKS {
        c *= 2;
    }
    c
}

/// How many chunks a file of `size` bytes has at `chunk_size` (an empty file: one empty chunk).
pub fn chunk_count(size: u64, chunk_size: u64) -> u64 {
    size.div_ceil(chunk_size.max(1)).max(1)
}

/// Payload of `evidence_manifest`: a file the sender offers on a mirrored request. Its
/// content follows on the bulk channel, chunk `i` being bytes `i*chunk_size ..` of the file,
/// each matching `chunks[i]`, the whole matching `sha256` and `size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceManifest {
    /// The sender's id of the file (a UUID): names the transfer on the bulk channel.
    pub transfer_id: String,
    pub request_id: RequestId,
    pub kind: EvidenceKind,
    /// For `comment` files: the comment's event id on the sender's node.
    pub attached_to: Option<String>,
    pub file_name: String,
    pub media_type_claimed: Option<String>,
    pub media_type_sniffed: Option<String>,
    pub marking: Marking,
    /// Who stored the file at the sender (its user name there) and when.
    pub uploader: String,
    pub uploaded_at: jiff::Timestamp,
    /// SHA-256 of the whole content, hex.
    pub sha256: Hash256,
    pub size: u64,
    pub chunk_size: u64,
    /// SHA-256 of each chunk, in order.
    pub chunks: Vec<Hash256>,
}

/// A manifest that cannot be right, whatever the receiver holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest {field}: {message}")]
pub struct ManifestError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> ManifestError {
    ManifestError {
        field,
        message: message.into(),
    }
}

impl EvidenceManifest {
    /// Shape checks: a UUID transfer id, a power-of-two chunk size in bounds, as many chunk
    /// hashes as the size needs (at most [`MAX_CHUNKS`]), names without control characters.
    pub fn check(&self) -> Result<(), ManifestError> {
        uuid::Uuid::parse_str(&self.transfer_id).map_err(|_| bad("transfer_id", "not a UUID"))?;
        if !self.chunk_size.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&self.chunk_size) {
            return Err(bad(
                "chunk_size",
                format!(
                    "{} is not a power of two from {MIN_CHUNK} to {MAX_CHUNK}",
                    self.chunk_size
                ),
            ));
        }
        let n = chunk_count(self.size, self.chunk_size);
        if n > MAX_CHUNKS {
            return Err(bad(
                "size",
                format!("{} bytes need {n} chunks (at most {MAX_CHUNKS})", self.size),
            ));
        }
        if self.chunks.len() as u64 != n {
            return Err(bad(
                "chunks",
                format!(
                    "{} hashes for {n} chunks of {} bytes",
                    self.chunks.len(),
                    self.chunk_size
                ),
            ));
        }
        let text_ok = |s: &str| !s.is_empty() && s.len() <= MAX_NAME && !s.chars().any(char::is_control);
        if !text_ok(&self.file_name) {
            return Err(bad("file_name", "empty, too long or with control characters"));
        }
        for (f, v) in [
            ("media_type_claimed", &self.media_type_claimed),
            ("media_type_sniffed", &self.media_type_sniffed),
            ("attached_to", &self.attached_to),
        ] {
            if v.as_deref().is_some_and(|s| !text_ok(s)) {
                return Err(bad(f, "empty, too long or with control characters"));
            }
        }
        if !text_ok(&self.uploader) {
            return Err(bad("uploader", "empty, too long or with control characters"));
        }
        self.marking.validate().map_err(|e| bad("marking", e.to_string()))?;
        Ok(())
    }

    /// Plaintext length of chunk `index`.
    pub fn chunk_len(&self, index: u64) -> u64 {
        let start = index.saturating_mul(self.chunk_size);
        self.size.saturating_sub(start).min(self.chunk_size)
    }

    pub fn chunk_count(&self) -> u64 {
        chunk_count(self.size, self.chunk_size)
    }
}

/// What became of a transfer at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferOutcome {
    /// Every chunk and the whole file verified; stored encrypted and durable.
    Stored,
    /// Refused (the manifest broke a rule here, or the bytes did not match it).
    Refused,
}

/// Payload of `evidence_result`, sent by the receiver to the sender in the ordered stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceResult {
    pub transfer_id: String,
    pub request_id: RequestId,
    pub outcome: TransferOutcome,
    /// The content as stored (for `stored`): digest and size the receiver computed.
    pub sha256: Option<Hash256>,
    pub size: Option<u64>,
    /// The receiver's id of the stored file.
    pub file_id: Option<String>,
    /// Why it was refused, with a stable code (docs/federation.md §12.5).
    pub code: Option<String>,
    pub detail: Option<String>,
}

/// The authentication of one chunk on the bulk channel (the `liaison-chunk-auth` header, JCS
/// JSON): the sending node signs which transfer, which chunk and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkAuth {
    pub sender: NodeId,
    pub recipient: NodeId,
    pub transfer_id: String,
    pub index: u64,
    pub sha256: Hash256,
    pub key_id: KeyId,
    pub signature: SignatureBytes,
}

/// Why a chunk's authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkAuthError {
    #[error("chunk authentication is malformed: {0}")]
    Malformed(String),
    #[error("chunk authentication: {0}")]
    Mismatch(String),
}

impl ChunkAuth {
    fn input(&self) -> Result<Vec<u8>, ChunkAuthError> {
        let v = serde_json::to_value(self).map_err(|e| ChunkAuthError::Malformed(e.to_string()))?;
        signing_input(SignedKind::BulkChunk, &v, &[]).map_err(|e| ChunkAuthError::Malformed(e.to_string()))
    }

    /// Signs chunk `index` of `transfer_id` with digest `sha256`.
    pub fn sign(
        key: &NodeKey,
        sender: NodeId,
        recipient: NodeId,
        transfer_id: &str,
        index: u64,
        sha256: Hash256,
    ) -> Result<ChunkAuth, ChunkAuthError> {
        let mut a = ChunkAuth {
            sender,
            recipient,
            transfer_id: transfer_id.to_string(),
            index,
            sha256,
            key_id: key.key_id().clone(),
            signature: SignatureBytes([0; 64]),
        };
        a.signature = key.sign_bytes(&a.input()?);
        Ok(a)
    }

    /// The header form (JCS JSON).
    pub fn to_header(&self) -> Result<String, ChunkAuthError> {
        let b = crate::jcs::to_canonical(self).map_err(|e| ChunkAuthError::Malformed(e.to_string()))?;
        String::from_utf8(b).map_err(|e| ChunkAuthError::Malformed(e.to_string()))
    }

    pub fn from_header(s: &str) -> Result<ChunkAuth, ChunkAuthError> {
        if s.len() > 1024 {
            return Err(ChunkAuthError::Malformed("longer than 1024 bytes".into()));
        }
        serde_json::from_str(s).map_err(|e| ChunkAuthError::Malformed(e.to_string()))
    }

    /// Checks the signature against the sender's pinned keys (`keys`, valid at `now`) and that
    /// it names this recipient, transfer, chunk and digest.
    pub fn verify(
        &self,
        keys: &[PublishedKey],
        recipient: &NodeId,
        transfer_id: &str,
        index: u64,
        sha256: &Hash256,
        now: jiff::Timestamp,
    ) -> Result<(), ChunkAuthError> {
        if &self.recipient != recipient || self.transfer_id != transfer_id || self.index != index {
            return Err(ChunkAuthError::Mismatch(
                "signed for another recipient, transfer or chunk".into(),
            ));
        }
        if &self.sha256 != sha256 {
            return Err(ChunkAuthError::Mismatch("the body is not the one signed".into()));
        }
        let key = keys
            .iter()
            .find(|k| k.key_id == self.key_id && k.valid_at(now))
            .ok_or_else(|| ChunkAuthError::Mismatch(format!("key {} is not valid now", self.key_id)))?;
        key.verify(&self.input()?, &self.signature)
            .map_err(|e| ChunkAuthError::Mismatch(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(size: u64) -> EvidenceManifest {
        let cs = chunk_size_for(size);
        EvidenceManifest {
            transfer_id: uuid::Uuid::now_v7().to_string(),
            request_id: RequestId::new(),
            kind: EvidenceKind::Answer,
            attached_to: None,
            file_name: "a.bin".into(),
            media_type_claimed: None,
            media_type_sniffed: None,
            marking: Marking::default(),
            uploader: "alice".into(),
            uploaded_at: jiff::Timestamp::UNIX_EPOCH,
            sha256: Hash256([0; 32]),
            size,
            chunk_size: cs,
            chunks: vec![Hash256([0; 32]); chunk_count(size, cs) as usize],
        }
    }

    #[test]
    fn chunk_sizes_keep_the_hash_list_bounded() {
        assert_eq!(chunk_size_for(0), 4 << 20);
        assert_eq!(chunk_size_for(10 << 30), 4 << 20);
        assert_eq!(chunk_size_for(64 << 30), 8 << 20);
        assert_eq!(chunk_count(0, 4 << 20), 1);
        assert_eq!(chunk_count((4 << 20) + 1, 4 << 20), 2);
        for size in [0, 1, 4 << 20, (4 << 20) + 1, 10 << 30] {
            manifest(size).check().unwrap();
        }
        let mut m = manifest(100);
        m.chunks.push(Hash256([1; 32]));
        assert_eq!(m.check().unwrap_err().field, "chunks");
        let mut m = manifest(100);
        m.chunk_size = 3 << 20;
        assert_eq!(m.check().unwrap_err().field, "chunk_size");
        let mut m = manifest(100);
        m.file_name = "a\nb".into();
        assert_eq!(m.check().unwrap_err().field, "file_name");
        let m = manifest((4 << 20) + 5);
        assert_eq!(m.chunk_len(0), 4 << 20);
        assert_eq!(m.chunk_len(1), 5);
    }

    #[test]
    fn chunk_auth_binds_transfer_index_and_digest() {
        let now: jiff::Timestamp = "2026-12-06T00:00:00Z".parse().unwrap();
        let key = NodeKey::from_seed([7; 32]);
        let (a, b) = (NodeId::parse("de-bka").unwrap(), NodeId::parse("cn-mps").unwrap());
        let h = Hash256([3; 32]);
        let auth = ChunkAuth::sign(&key, a, b.clone(), "t1", 4, h).unwrap();
        let back = ChunkAuth::from_header(&auth.to_header().unwrap()).unwrap();
        let keys = vec![key.published(now, None)];
        back.verify(&keys, &b, "t1", 4, &h, now).unwrap();
        assert!(back.verify(&keys, &b, "t1", 5, &h, now).is_err());
        assert!(back.verify(&keys, &b, "t2", 4, &h, now).is_err());
        assert!(back.verify(&keys, &b, "t1", 4, &Hash256([4; 32]), now).is_err());
        let other = NodeKey::from_seed([8; 32]);
        assert!(
            back.verify(&[other.published(now, None)], &b, "t1", 4, &h, now)
                .is_err()
        );
    }
}
