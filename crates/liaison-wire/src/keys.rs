//! Node signing keys: Ed25519 keys, key ids, the key file, and the signing input rule.

use crate::jcs::{CanonError, to_canonical};
use crate::types::{Hash256, PublicKeyBytes, SignatureBytes, ms_time};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};

/// A key id: `ed25519:` followed by the first 8 bytes of SHA-256(public key) in lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

/// A string that is not a key id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a key id (expected 'ed25519:' and 16 lower-case hex digits)")]
pub struct KeyIdError(pub String);

impl KeyId {
    /// The key id of a public key.
    pub fn of(public_key: &PublicKeyBytes) -> Self {
        let h = Hash256::digest(&public_key.0);
        KeyId(format!("ed25519:{}", hex::encode(&h.0[..8])))
    }

    /// Parses a key id.
    pub fn parse(s: &str) -> Result<Self, KeyIdError> {
        let hex_part = s.strip_prefix("ed25519:").ok_or_else(|| KeyIdError(s.to_string()))?;
        if hex_part.len() == 16
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(KeyId(s.to_string()))
        } else {
            Err(KeyIdError(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The kinds of signed object; each has its own signing-input prefix so that a signature made
/// for one kind can never be accepted as a signature on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedKind {
    Envelope,
    Receipt,
    Sth,
    Descriptor,
    KeyRotation,
    AuditAnchor,
    KeyRevocation,
    BulkChunk,
}

impl SignedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignedKind::Envelope => "envelope",
            SignedKind::Receipt => "receipt",
            SignedKind::Sth => "sth",
            SignedKind::Descriptor => "descriptor",
            SignedKind::KeyRotation => "key_rotation",
            SignedKind::AuditAnchor => "audit_anchor",
            SignedKind::KeyRevocation => "key_revocation",
            SignedKind::BulkChunk => "bulk_chunk",
        }
    }
}

/// The bytes that are signed: `liaison-wire/1/<kind>` and a line feed, then the JCS form of
/// the object with its `signature` member (and any other member the kind excludes) removed.
pub fn signing_input(kind: SignedKind, object: &serde_json::Value, exclude: &[&str]) -> Result<Vec<u8>, CanonError> {
    let mut object = object.clone();
    if let serde_json::Value::Object(map) = &mut object {
        map.remove("signature");
        for field in exclude {
            map.remove(*field);
        }
    }
    let mut out = format!("liaison-wire/1/{}\n", kind.as_str()).into_bytes();
    out.extend_from_slice(&crate::jcs::canonicalize(&object)?);
    Ok(out)
}

/// This node's private signing key, with its key id. Debug output never shows the secret;
/// the secret is wiped from memory on drop.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
    key_id: KeyId,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A key file that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot generate a key: the operating system's random source failed: {0}")]
    Random(String),
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} already exists; refusing to overwrite a signing key (move it away first)")]
    Exists { path: PathBuf },
    #[error(
        "key file {path} is readable or writable by group or others (mode {mode:03o}); \
         run `chmod 600 {path}` and check who may have copied it"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("key file {path} is not a Liaison node key: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    key_id: KeyId,
    public_key: PublicKeyBytes,
    secret_key: String,
}

const KEY_FILE_FORMAT: &str = "liaison-node-key/1";

impl NodeKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyFileError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyFileError::Random(e.to_string()))?;
        let key = NodeKey::from_seed(seed);
        seed.fill(0);
        Ok(key)
    }

    /// A key from a 32-byte Ed25519 seed (tests and fixtures use fixed seeds).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let key_id = KeyId::of(&PublicKeyBytes(signing.verifying_key().to_bytes()));
        NodeKey { signing, key_id }
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    pub fn public_key(&self) -> PublicKeyBytes {
        PublicKeyBytes(self.signing.verifying_key().to_bytes())
    }

    /// The public half as a published key with a validity window.
    pub fn published(&self, valid_from: Timestamp, valid_until: Option<Timestamp>) -> PublishedKey {
        PublishedKey {
            key_id: self.key_id.clone(),
            public_key: self.public_key(),
            valid_from: ms_time::truncate(valid_from),
            valid_until: valid_until.map(ms_time::truncate),
        }
    }

    /// Signs raw bytes (normally a [`signing_input`]).
    pub fn sign_bytes(&self, message: &[u8]) -> SignatureBytes {
        SignatureBytes(self.signing.sign(message).to_bytes())
    }

    /// Writes the key to a new file created with mode 0600. Refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        use std::io::Write;
        let file = KeyFile {
            format: KEY_FILE_FORMAT.to_string(),
            key_id: self.key_id.clone(),
            public_key: self.public_key(),
            secret_key: hex::encode(self.signing.to_bytes()),
        };
        let mut text = serde_json::to_string_pretty(&file).map_err(|e| KeyFileError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                KeyFileError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let io = |e| KeyFileError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        // Wipe the hex copy of the secret.
        let mut bytes = text.into_bytes();
        bytes.fill(0);
        Ok(())
    }

    /// Reads a key file. On Unix the file must not be accessible by group or others.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let io = |e| KeyFileError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut text = std::fs::read(path).map_err(io)?;
        let invalid = |reason: String| KeyFileError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let parsed: Result<KeyFile, _> = serde_json::from_slice(&text);
        text.fill(0);
        let file = parsed.map_err(|e| invalid(e.to_string()))?;
        if file.format != KEY_FILE_FORMAT {
            return Err(invalid(format!(
                "format is '{}', expected '{KEY_FILE_FORMAT}'",
                file.format
            )));
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&file.secret_key, &mut seed)
            .map_err(|_| invalid("secret_key is not 64 hex digits".to_string()))?;
        let key = NodeKey::from_seed(seed);
        seed.fill(0);
        if key.public_key() != file.public_key || key.key_id != file.key_id {
            return Err(invalid(
                "public_key or key_id does not match the secret key".to_string(),
            ));
        }
        Ok(key)
    }
}

/// A public key as published in a node descriptor, with the window in which signatures made
/// by it are accepted: `valid_from <= t` and, if set, `t < valid_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedKey {
    pub key_id: KeyId,
    pub public_key: PublicKeyBytes,
    #[serde(with = "ms_time")]
    pub valid_from: Timestamp,
    #[serde(with = "ms_time::option")]
    pub valid_until: Option<Timestamp>,
}

/// Why a signature could not be checked or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key {0} is not a valid Ed25519 point")]
    BadPublicKey(KeyId),
    #[error("signature does not verify under key {0}")]
    Mismatch(KeyId),
}

impl PublishedKey {
    /// Whether `at` lies in the validity window.
    pub fn valid_at(&self, at: Timestamp) -> bool {
        self.valid_from <= at && self.valid_until.is_none_or(|until| at < until)
    }

    /// Whether the key id is the one derived from the public key.
    pub fn id_matches(&self) -> bool {
        KeyId::of(&self.public_key) == self.key_id
    }

    /// Verifies a signature over `message` (strict Ed25519: rejects small-order keys and
    /// non-canonical signatures).
    pub fn verify(&self, message: &[u8], signature: &SignatureBytes) -> Result<(), SignatureError> {
        let vk = VerifyingKey::from_bytes(&self.public_key.0)
            .map_err(|_| SignatureError::BadPublicKey(self.key_id.clone()))?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        vk.verify_strict(message, &sig)
            .map_err(|_| SignatureError::Mismatch(self.key_id.clone()))
    }
}

/// Serializes `value` and returns the signing input for `kind` (helper for the signed types).
pub(crate) fn signing_input_of<T: Serialize>(
    kind: SignedKind,
    value: &T,
    exclude: &[&str],
) -> Result<Vec<u8>, CanonError> {
    let v = serde_json::to_value(value).map_err(|e| CanonError::Serialize(e.to_string()))?;
    signing_input(kind, &v, exclude)
}

/// SHA-256 of the JCS form of a value.
pub fn canonical_hash<T: Serialize + ?Sized>(value: &T) -> Result<Hash256, CanonError> {
    Ok(Hash256::digest(&to_canonical(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_format() {
        let k = NodeKey::from_seed([7; 32]);
        let id = k.key_id().as_str();
        assert!(id.starts_with("ed25519:") && id.len() == 8 + 16, "{id}");
        assert!(KeyId::parse(id).is_ok());
        assert!(KeyId::parse("ed25519:ABCDEF0123456789").is_err());
        assert!(KeyId::parse("rsa:0123456789abcdef").is_err());
        assert!(format!("{k:?}").contains("key_id") && !format!("{k:?}").contains("signing"));
    }

    #[test]
    fn sign_and_verify_bytes() {
        let k = NodeKey::from_seed([1; 32]);
        let p = k.published("2026-01-01T00:00:00Z".parse().unwrap(), None);
        let sig = k.sign_bytes(b"hello");
        assert!(p.verify(b"hello", &sig).is_ok());
        assert!(p.verify(b"hellO", &sig).is_err());
        assert!(p.id_matches());
    }

    #[test]
    fn validity_window_is_half_open() {
        let k = NodeKey::from_seed([2; 32]);
        let from: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let until: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
        let p = k.published(from, Some(until));
        assert!(p.valid_at(from));
        assert!(!p.valid_at(until));
        assert!(!p.valid_at("2025-12-31T23:59:59Z".parse().unwrap()));
    }
}
