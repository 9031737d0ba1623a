//! Evidence files (docs/evidence.md): supporting documents of a request, parts of an answer
//! and attachments of comments, stored content-addressed and encrypted in the evidence
//! directory, with a chain of custody in the audit log, retention and legal holds.
//!
//! Storage: the content of a file is cut into chunks of [`CHUNK`] bytes, each sealed with
//! XChaCha20-Poly1305 under the file's own data key; each chunk's associated data binds the
//! blob id, the chunk's index and whether it is the last, so chunks cannot be swapped,
//! reordered, dropped or cut off undetected. The data key is wrapped by a key-encryption key
//! (KEK) from the key file ([`KeyFile`], outside the database); the wrapped key is in the
//! file's row. Rotation writes a new KEK and re-wraps every data key; the content stays.
//!
//! Uploads are resumable: a session's pieces are sealed as they arrive into a session file
//! (same format, under a key of the session's own), whose sealed length is the offset the
//! next piece starts at; finishing it re-reads the session file, checks the expected SHA-256
//! and writes the content-addressed blob in fixed chunks. Memory stays at a chunk or two for
//! any size.

use crate::error::{Result, ServiceError};
use crate::federation::bulk::{ChunkHasher, hashes_hex};
use crate::markings::relation_to;
use crate::node::{Node, require, side_of};
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jiff::Timestamp;
use liaison_core::record::{AuditEntry, EvidenceFile, EvidenceKind, EvidenceUpload, LegalHold, Principal};
use liaison_core::request::AssistanceRequest;
use liaison_core::{Marking, RequestId, Side, Tlp};
use liaison_store::{EvidenceStorage, WrappedKey};
use liaison_wire::Hash256;
use liaison_wire::bulk::chunk_size_for;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Plaintext bytes per chunk of a stored file.
pub const CHUNK: usize = 1 << 20;
/// What a stored blob and an upload session file start with.
pub(crate) const MAGIC: &[u8; 8] = b"LIAEVD01";
/// Header: magic, 16-byte blob id, chunk size (u32 BE).
pub(crate) const HEADER: usize = 8 + 16 + 4;
/// Frame header: plaintext length (u32 BE), last-chunk flag, 24-byte nonce.
pub(crate) const FRAME_HEADER: usize = 4 + 1 + 24;
pub(crate) const TAG: usize = 16;
/// Longest file name kept (bytes, after sanitising).
const MAX_FILE_NAME: usize = 200;
/// Longest media type accepted as claimed.
const MAX_MEDIA_TYPE: usize = 127;
/// Default `[evidence] max_file_bytes`: 16 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 << 30;

pub(crate) fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// `[evidence]`: where the content and the key file are, how large a file may be, and how
/// long files are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// The evidence directory (default `DATA_DIR/evidence`); instances may share one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The key file holding the key-encryption keys (default `DATA_DIR/evidence.key`); never
    /// in the database; instances sharing a directory share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Largest file accepted (bytes; default 16 GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
    /// How long files are kept, per kind and marking; the first matching rule wins, no rule:
    /// kept for ever.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retention: Vec<RetentionRule>,
    /// Unfinished uploads one user may have open at once (default 16): each holds disk space
    /// until it is finished, abandoned or expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_uploads: Option<u32>,
    /// Hours after which an unfinished upload that received nothing in that time is removed
    /// by the sweep (default 168, a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_expiry_hours: Option<u32>,
}

/// Default of [`EvidenceConfig::max_open_uploads`].
pub const DEFAULT_MAX_OPEN_UPLOADS: u32 = 16;
/// Default of [`EvidenceConfig::upload_expiry_hours`].
pub const DEFAULT_UPLOAD_EXPIRY_HOURS: u32 = 168;

/// One retention rule: files of `kind` (any when absent) marked `tlp` (any when absent)
/// are deleted `days` after their upload unless held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EvidenceKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlp: Option<Tlp>,
    pub days: u32,
}

impl EvidenceConfig {
    /// The settings with their defaults filled in for the data directory `data_dir`.
    pub fn resolved(&self, data_dir: &Path) -> EvidenceConfig {
        let mut c = self.clone();
        c.dir = Some(c.dir.unwrap_or_else(|| data_dir.join("evidence")));
        c.key_file = Some(c.key_file.unwrap_or_else(|| data_dir.join("evidence.key")));
        c
    }

    /// Refuses a limit of 0 or a rule of 0 days (a typo that would delete at once).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.max_file_bytes == Some(0) {
            return Err("evidence.max_file_bytes = 0: must be at least 1".into());
        }
        if self.max_open_uploads == Some(0) {
            return Err("evidence.max_open_uploads = 0: must be at least 1".into());
        }
        if self.upload_expiry_hours == Some(0) {
            return Err("evidence.upload_expiry_hours = 0: must be at least 1".into());
        }
        for (i, r) in self.retention.iter().enumerate() {
            if r.days == 0 || r.days > 36_500 {
                return Err(format!("evidence.retention[{i}].days = {}: must be 1 to 36500", r.days));
            }
        }
        Ok(())
    }

    pub fn limit(&self) -> u64 {
        self.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES)
    }

    pub fn open_uploads_limit(&self) -> u32 {
        self.max_open_uploads.unwrap_or(DEFAULT_MAX_OPEN_UPLOADS)
    }

    pub fn upload_expiry(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            u64::from(self.upload_expiry_hours.unwrap_or(DEFAULT_UPLOAD_EXPIRY_HOURS)) * 3600,
        )
    }

    /// Days a file of `kind` marked `tlp` is kept (`None`: for ever).
    pub fn retention_days(&self, kind: EvidenceKind, tlp: Tlp) -> Option<u32> {
        self.retention
            .iter()
            .find(|r| r.kind.is_none_or(|k| k == kind) && r.tlp.is_none_or(|t| t == tlp))
            .map(|r| r.days)
    }
}

/// The node's evidence settings and the locks of the uploads running in this process.
#[derive(Default)]
pub(crate) struct EvidenceRuntime {
    config: Option<EvidenceConfig>,
    /// Upload sessions being written by this process (another process is kept out by the
    /// session file's lock).
    busy: Mutex<HashMap<String, ()>>,
    /// Woken when a file is stored in this process (the bulk worker offers it to the peer now
    /// rather than at its next poll).
    pub(crate) stored: tokio::sync::Notify,
}

impl Node {
    /// The node with its evidence directory and key file (`config` resolved: both set).
    pub fn with_evidence(mut self, config: EvidenceConfig) -> Result<Self> {
        config.validate().map_err(|e| ServiceError::invalid("evidence", e))?;
        if config.dir.is_none() || config.key_file.is_none() {
            return Err(ServiceError::invalid("evidence", "dir and key_file must be set"));
        }
        self.evidence = Arc::new(EvidenceRuntime {
            config: Some(config),
            busy: Default::default(),
            stored: Default::default(),
        });
        Ok(self)
    }

    /// Whether this node keeps evidence files (has an evidence directory configured).
    pub fn evidence_enabled(&self) -> bool {
        self.evidence.config.is_some()
    }

    pub(crate) fn evidence_config(&self) -> Result<&EvidenceConfig> {
        self.evidence
            .config
            .as_ref()
            .ok_or_else(|| internal("this node has no evidence directory configured ([evidence])"))
    }

    pub(crate) fn evidence_dir(&self) -> Result<PathBuf> {
        let c = self.evidence_config()?;
        c.dir.clone().ok_or_else(|| internal("[evidence] dir is not set"))
    }

    pub(crate) fn key_file(&self) -> Result<KeyFile> {
        let c = self.evidence_config()?;
        let path = c
            .key_file
            .clone()
            .ok_or_else(|| internal("[evidence] key_file is not set"))?;
        Ok(KeyFile { path })
    }
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// The key file: key-encryption keys, one a line (`kek ID HEX`), the first wrapping new data
/// keys; mode 0600, outside the database.
pub struct KeyFile {
    path: PathBuf,
}

#[derive(Clone)]
pub(crate) struct Kek {
    id: String,
    key: [u8; 32],
}

fn kek_id(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

impl KeyFile {
    /// The keys, creating the file with one new key if there is none.
    pub(crate) fn load(&self) -> Result<Vec<Kek>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => self.parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                let keys = vec![Kek { id: kek_id(&key), key }];
                match self.write_new(&keys) {
                    Ok(()) => Ok(keys),
                    // Another instance created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
                        self.parse(&text)
                    }
                    Err(e) => Err(self.io(e)),
                }
            }
            Err(e) => Err(self.io(e)),
        }
    }

    fn io(&self, e: std::io::Error) -> ServiceError {
        internal(format!("evidence key file {}: {e}", self.path.display()))
    }

    fn parse(&self, text: &str) -> Result<Vec<Kek>> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || {
                internal(format!(
                    "evidence key file {}:{}: not 'kek ID HEX'",
                    self.path.display(),
                    i + 1
                ))
            };
            let mut parts = line.split_whitespace();
            let (Some("kek"), Some(id), Some(hexkey), None) = (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let bytes = hex::decode(hexkey).map_err(|_| bad())?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
            if kek_id(&key) != id {
                return Err(internal(format!(
                    "evidence key file {}:{}: key id {id} does not match its key",
                    self.path.display(),
                    i + 1
                )));
            }
            keys.push(Kek {
                id: id.to_string(),
                key,
            });
        }
        if keys.is_empty() {
            return Err(internal(format!(
                "evidence key file {} holds no key",
                self.path.display()
            )));
        }
        Ok(keys)
    }

    fn text(keys: &[Kek]) -> String {
        let mut s = String::from(
            "# Liaison evidence key-encryption keys (docs/evidence.md). Secret: keep mode 0600 and back it up;\n# without it no evidence file can be read. The first key wraps new data keys.\n",
        );
        for k in keys {
            s.push_str(&format!("kek {} {}\n", k.id, hex::encode(k.key)));
        }
        s
    }

    fn write_new(&self, keys: &[Kek]) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)?;
        std::io::Write::write_all(&mut f, Self::text(keys).as_bytes())?;
        f.sync_all()
    }

    /// Replaces the file atomically (a new file beside it, synced, renamed over it).
    fn replace(&self, keys: &[Kek]) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.path.with_extension(format!("tmp-{}", uuid::Uuid::now_v7()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            std::io::Write::write_all(&mut f, Self::text(keys).as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(parent) = self.path.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.io(e)
        })
    }
}

fn xnonce(b: &[u8]) -> XNonce {
    let mut n = XNonce::default();
    n.copy_from_slice(b);
    n
}

fn wrap_aad(blob_id: &str) -> Vec<u8> {
    let mut aad = b"liaison-evidence-key\x1f".to_vec();
    aad.extend_from_slice(blob_id.as_bytes());
    aad
}

/// Wraps a data key for blob `blob_id` under the current KEK.
pub(crate) fn wrap(kek: &Kek, blob_id: &str, key: &[u8; 32]) -> Result<EvidenceStorage> {
    let cipher = XChaCha20Poly1305::new((&kek.key).into());
    let nonce: [u8; 24] = rand::random();
    let aad = wrap_aad(blob_id);
    let ct = cipher
        .encrypt(&xnonce(&nonce), Payload { msg: key, aad: &aad })
        .map_err(|_| internal("wrapping a data key failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(EvidenceStorage {
        blob_id: blob_id.to_string(),
        wrapped_key: hex::encode(out),
        kek_id: kek.id.clone(),
    })
}

pub(crate) fn unwrap_key(keys: &[Kek], s: &EvidenceStorage) -> Result<[u8; 32]> {
    let kek = keys.iter().find(|k| k.id == s.kek_id).ok_or_else(|| {
        ServiceError::Integrity(format!(
            "the key-encryption key {} of this file is not in the key file (was the key file replaced?)",
            s.kek_id
        ))
    })?;
    let bytes =
        hex::decode(&s.wrapped_key).map_err(|_| ServiceError::Integrity("a wrapped data key is not hex".into()))?;
    if bytes.len() != 24 + 32 + TAG {
        return Err(ServiceError::Integrity(
            "a wrapped data key has the wrong length".into(),
        ));
    }
    let cipher = XChaCha20Poly1305::new((&kek.key).into());
    let aad = wrap_aad(&s.blob_id);
    let key = cipher
        .decrypt(
            &xnonce(&bytes[..24]),
            Payload {
                msg: &bytes[24..],
                aad: &aad,
            },
        )
        .map_err(|_| ServiceError::Integrity("a wrapped data key does not open under its key-encryption key".into()))?;
    key.try_into()
        .map_err(|_| ServiceError::Integrity("a data key has the wrong length".into()))
}

// ---------------------------------------------------------------------------------------
// Sealed files
// ---------------------------------------------------------------------------------------

pub(crate) fn blob_bytes(blob_id: &str) -> Result<[u8; 16]> {
    uuid::Uuid::parse_str(blob_id)
        .map(|u| *u.as_bytes())
        .map_err(|_| ServiceError::Integrity(format!("blob id '{blob_id}' is not a UUID")))
}

fn chunk_aad(blob: &[u8; 16], index: u64, last: bool) -> Vec<u8> {
    let mut aad = b"liaison-evidence-chunk\x1f".to_vec();
    aad.extend_from_slice(blob);
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

/// Appends frame `index` of blob `blob` holding `plain` to `out`: its header (length, last
/// flag, nonce), the ciphertext and the tag (docs/evidence.md). No I/O.
pub(crate) fn seal_frame(
    cipher: &XChaCha20Poly1305,
    blob: &[u8; 16],
    index: u64,
    plain: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    let nonce: [u8; 24] = rand::random();
    let aad = chunk_aad(blob, index, last);
    let len = u32::try_from(plain.len()).map_err(internal)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.push(u8::from(last));
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plain);
    let tag = cipher
        .encrypt_in_place_detached(&xnonce(&nonce), &aad, &mut out[start..])
        .map_err(|_| internal("sealing a chunk failed"))?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// Writes sealed frames after a header.
pub(crate) struct SealWriter {
    pub(crate) file: tokio::fs::File,
    pub(crate) cipher: XChaCha20Poly1305,
    pub(crate) blob: [u8; 16],
    pub(crate) index: u64,
}

impl SealWriter {
    pub(crate) async fn create(path: &Path, blob_id: &str, key: &[u8; 32]) -> Result<SealWriter> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .await
            .map_err(|e| internal(format!("creating {}: {e}", path.display())))?;
        let blob = blob_bytes(blob_id)?;
        let mut w = SealWriter {
            file,
            cipher: XChaCha20Poly1305::new(key.into()),
            blob,
            index: 0,
        };
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&blob);
        header.extend_from_slice(&(CHUNK as u32).to_be_bytes());
        w.file.write_all(&header).await.map_err(internal)?;
        Ok(w)
    }

    pub(crate) async fn frame(&mut self, plain: &[u8], last: bool) -> Result<()> {
        let mut out = Vec::with_capacity(FRAME_HEADER + plain.len() + TAG);
        seal_frame(&self.cipher, &self.blob, self.index, plain, last, &mut out)?;
        self.file.write_all(&out).await.map_err(internal)?;
        self.index += 1;
        Ok(())
    }

    pub(crate) async fn sync(&mut self) -> Result<()> {
        self.file.flush().await.map_err(internal)?;
        self.file.sync_all().await.map_err(internal)
    }
}

/// Reads and opens sealed frames, checking each against its index and the blob id.
pub struct SealReader {
    file: tokio::io::BufReader<tokio::fs::File>,
    cipher: XChaCha20Poly1305,
    blob: [u8; 16],
    index: u64,
    done: bool,
    /// Sealed bytes read so far (header included).
    pos: u64,
    /// For a stored file: its size, checked at the end.
    expect_size: Option<u64>,
    plain: u64,
}

impl SealReader {
    pub(crate) async fn open(path: &Path, blob_id: &str, key: &[u8; 32]) -> Result<SealReader> {
        let file = tokio::fs::File::open(path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ServiceError::Integrity(format!(
                    "the content {} is missing from the evidence directory",
                    path.display()
                ))
            } else {
                internal(format!("opening {}: {e}", path.display()))
            }
        })?;
        let mut file = tokio::io::BufReader::with_capacity(CHUNK + FRAME_HEADER + TAG, file);
        let mut header = [0u8; HEADER];
        file.read_exact(&mut header)
            .await
            .map_err(|_| ServiceError::Integrity(format!("{} is too short to be sealed evidence", path.display())))?;
        let blob = blob_bytes(blob_id)?;
        if &header[..8] != MAGIC || header[8..24] != blob {
            return Err(ServiceError::Integrity(format!(
                "{} is not the sealed content of blob {blob_id}",
                path.display()
            )));
        }
        Ok(SealReader {
            file,
            cipher: XChaCha20Poly1305::new(key.into()),
            blob,
            index: 0,
            done: false,
            pos: HEADER as u64,
            expect_size: None,
            plain: 0,
        })
    }

    /// Opens sealed content at frame `frame` (every frame before it a full [`CHUNK`], as in a
    /// stored file): what the evidence transfer reads a chunk from (federation::bulk).
    pub(crate) async fn open_at(path: &Path, blob_id: &str, key: &[u8; 32], frame: u64) -> Result<SealReader> {
        use tokio::io::AsyncSeekExt;
        let mut r = SealReader::open(path, blob_id, key).await?;
        let pos = HEADER as u64 + frame * (FRAME_HEADER + CHUNK + TAG) as u64;
        r.file.seek(std::io::SeekFrom::Start(pos)).await.map_err(internal)?;
        r.index = frame;
        r.pos = pos;
        Ok(r)
    }

    /// The next chunk's plaintext; `None` after the last. A stored file must end with a
    /// frame flagged last (`need_last`); an upload session may end anywhere.
    pub(crate) async fn next_frame(&mut self, need_last: bool) -> Result<Option<(Vec<u8>, bool)>> {
        if self.done {
            return Ok(None);
        }
        let mut head = [0u8; FRAME_HEADER];
        let n = read_full(&mut self.file, &mut head).await?;
        if n == 0 {
            self.done = true;
            if need_last {
                return Err(ServiceError::Integrity(format!(
                    "the content ends after chunk {} without its last chunk (truncated)",
                    self.index
                )));
            }
            return Ok(None);
        }
        if n < FRAME_HEADER {
            return Err(ServiceError::Integrity(format!("chunk {} is cut off", self.index)));
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let last = match head[4] {
            0 => false,
            1 => true,
            _ => {
                return Err(ServiceError::Integrity(format!(
                    "chunk {} has a bad header",
                    self.index
                )));
            }
        };
        if len > CHUNK {
            return Err(ServiceError::Integrity(format!(
                "chunk {} claims {len} bytes",
                self.index
            )));
        }
        let mut ct = vec![0u8; len + TAG];
        let got = read_full(&mut self.file, &mut ct).await?;
        if got < ct.len() {
            return Err(ServiceError::Integrity(format!("chunk {} is cut off", self.index)));
        }
        let aad = chunk_aad(&self.blob, self.index, last);
        // Opened in place: the buffer read becomes the plaintext (no second copy).
        let (body, tag_bytes) = ct.split_at_mut(len);
        let mut tag = chacha20poly1305::Tag::default();
        tag.copy_from_slice(tag_bytes);
        self.cipher
            .decrypt_in_place_detached(&xnonce(&head[5..29]), &aad, body, &tag)
            .map_err(|_| {
                ServiceError::Integrity(format!(
                    "chunk {} does not authenticate: the stored content was altered, reordered or replaced",
                    self.index
                ))
            })?;
        ct.truncate(len);
        let plain = ct;
        self.pos += (FRAME_HEADER + len + TAG) as u64;
        self.index += 1;
        self.plain += plain.len() as u64;
        if last {
            self.done = true;
            let mut probe = [0u8; 1];
            if read_full(&mut self.file, &mut probe).await? != 0 {
                return Err(ServiceError::Integrity("bytes follow the last chunk".into()));
            }
            if let Some(size) = self.expect_size
                && size != self.plain
            {
                return Err(ServiceError::Integrity(format!(
                    "the content holds {} bytes, its record says {size}",
                    self.plain
                )));
            }
        }
        Ok(Some((plain, last)))
    }

    /// The next piece of a stored file's content; `None` at its (verified) end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.next_frame(true).await?.map(|(p, _)| p))
    }
}

async fn read_full(r: &mut (impl tokio::io::AsyncRead + Unpin), buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..]).await.map_err(internal)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Where content with this digest lives: `DIR/ab/abcdef…`.
pub(crate) fn blob_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(&sha256[..2]).join(sha256)
}

pub(crate) fn ensure_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| internal(format!("creating {}: {e}", path.display())))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| internal(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

/// What an uploader says about a new file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvidence {
    pub kind: Option<EvidenceKind>,
    /// For `comment` files: the comment's event id.
    #[serde(default)]
    pub attached_to: Option<String>,
    pub file_name: String,
    #[serde(default)]
    pub media_type: Option<String>,
    /// The file's marking (default: the request's); never below the request's.
    #[serde(default)]
    pub marking: Option<Marking>,
}

/// A file name as kept: the last path component, control characters, separators and quotes
/// replaced by `_`, leading dots removed, at most [`MAX_FILE_NAME`] bytes; never empty.
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::new();
    for c in base.chars() {
        let c = if c.is_control()
            || matches!(
                c,
                '"' | '\'' | ';' | ':' | '<' | '>' | '|' | '*' | '?' | '`' | '\u{202e}' | '\u{202d}' | '\u{2066}'
                    ..='\u{2069}'
            ) {
            '_'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_FILE_NAME {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim().trim_start_matches('.').trim().to_string();
    if trimmed.is_empty() { "file".into() } else { trimmed }
}

pub(crate) fn check_media_type(m: &str) -> Result<String> {
    let m = m.trim();
    let ok = !m.is_empty()
        && m.len() <= MAX_MEDIA_TYPE
        && m.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && m.chars().all(|c| c.is_ascii_alphanumeric() || "/+-.;= _".contains(c));
    if ok {
        Ok(m.to_ascii_lowercase())
    } else {
        Err(ServiceError::invalid(
            "media_type",
            format!(
                "'{}' is not a media type such as application/pdf",
                m.chars().take(60).collect::<String>()
            ),
        ))
    }
}

/// Whether `p` (who may read request `r`) may see file `f`: as for comments
/// (docs/markings.md), the file's level never below the request's, its originator the
/// uploader's agency, its recipient the other agency.
pub(crate) fn admits_file(p: &Principal, r: &AssistanceRequest, marking: &Marking, side: Side) -> bool {
    let m = Marking {
        tlp: marking.tlp.stricter(r.draft.marking().tlp),
        recipients: marking.recipients.clone(),
    };
    if m.tlp != Tlp::Red {
        return true;
    }
    let (from, to) = match side {
        Side::Requested => (r.draft.requested_agency, r.draft.requesting_agency),
        Side::Requesting => (r.draft.requesting_agency, r.draft.requested_agency),
    };
    m.admits(relation_to(p, from, to, &m.recipients))
}

/// The outcome of a retention sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Files whose content and key were deleted now.
    pub deleted: Vec<String>,
    /// Expired files kept because they or their request are on legal hold.
    pub held: Vec<String>,
    /// Live files examined.
    pub examined: u64,
    /// Unfinished uploads removed because nothing arrived for `upload_expiry_hours`.
    pub uploads_expired: Vec<String>,
}

/// A download: the file's metadata and its content, opened chunk by chunk.
pub struct EvidenceDownload {
    pub file: EvidenceFile,
    pub content: SealReader,
}

struct BusyGuard<'a> {
    node: &'a Node,
    id: String,
}

impl<'a> BusyGuard<'a> {
    /// Marks `upload` as being written by this process; `Conflict` if it already is (`what`
    /// names what it is receiving, for the message).
    fn claim(node: &'a Node, upload: &str, what: &str) -> Result<BusyGuard<'a>> {
        let mut busy = node
            .evidence
            .busy
            .lock()
            .map_err(|_| internal("upload table poisoned"))?;
        if busy.contains_key(upload) {
            return Err(ServiceError::Conflict(format!(
                "upload {upload} is receiving {what} now"
            )));
        }
        busy.insert(upload.to_string(), ());
        Ok(BusyGuard {
            node,
            id: upload.to_string(),
        })
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.node.evidence.busy.lock() {
            b.remove(&self.id);
        }
    }
}

/// An open piece of an upload: write bytes with [`UploadWriter::write`], then
/// [`UploadWriter::finish`] (what was written before a failure or a dropped connection stays,
/// up to the last whole frame; the next piece resumes at the offset the session reports).
pub struct UploadWriter<'a> {
    _busy: BusyGuard<'a>,
    _lock: std::fs::File,
    seal: SealWriter,
    buf: Vec<u8>,
    received: u64,
    limit: u64,
}

impl UploadWriter<'_> {
    /// Bytes of the session stored or buffered so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The largest file accepted (`[evidence] max_file_bytes`).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        if self.received + bytes.len() as u64 > self.limit {
            // Keep what came before, so that a client can see the offset.
            self.flush().await?;
            return Err(ServiceError::invalid(
                "body",
                format!(
                    "the file is larger than this node accepts ({} bytes, [evidence] max_file_bytes)",
                    self.limit
                ),
            ));
        }
        while !bytes.is_empty() {
            let take = (CHUNK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.received += take as u64;
            if self.buf.len() == CHUNK {
                let chunk = std::mem::take(&mut self.buf);
                self.seal.frame(&chunk, false).await?;
                self.buf = chunk;
                self.buf.clear();
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.seal.frame(&chunk, false).await?;
        }
        self.seal.sync().await
    }

    /// Seals what is buffered and makes it durable; answers the session's offset.
    pub async fn finish(mut self) -> Result<u64> {
        self.flush().await?;
        Ok(self.received)
    }
}

// ---------------------------------------------------------------------------------------
// Use cases
// ---------------------------------------------------------------------------------------

impl Node {
    fn uploads_dir(&self) -> Result<PathBuf> {
        Ok(self.evidence_dir()?.join("uploads"))
    }

    fn session_path(&self, id: &str) -> Result<PathBuf> {
        uuid::Uuid::parse_str(id).map_err(|_| ServiceError::NotFound(format!("upload {id}")))?;
        Ok(self.uploads_dir()?.join(id))
    }

    /// The request `id` as `p` may add files to it: a party that may comment.
    async fn evidence_request(
        &self,
        p: &Principal,
        id: RequestId,
        now: Timestamp,
        what: &str,
    ) -> Result<(AssistanceRequest, Side)> {
        let (r, side) = self.visible(p, id, now).await.map_err(|e| match e {
            ServiceError::Forbidden(_) => ServiceError::Forbidden(format!(
                "{what} is not allowed for role {} (user {})",
                p.role, p.username
            )),
            e => e,
        })?;
        Ok((r.request, side))
    }

    /// Opens a resumable upload of a file to request `id`. Parties to the request who may
    /// comment; a supporting document comes from the requesting side, an answer from the
    /// requested side, a comment's file names a comment on the request that `p` can read.
    pub async fn evidence_upload_begin(
        &self,
        p: &Principal,
        id: RequestId,
        new: NewEvidence,
        now: Timestamp,
    ) -> Result<EvidenceUpload> {
        self.evidence_config()?;
        let (r, side) = self.evidence_request(p, id, now, "adding evidence").await?;
        require(p.role.may_comment(), "adding evidence", p)?;
        let kind = new.kind.unwrap_or(match side {
            Side::Requesting => EvidenceKind::Supporting,
            Side::Requested => EvidenceKind::Answer,
        });
        match (kind, side) {
            (EvidenceKind::Supporting, Side::Requested) => {
                return Err(ServiceError::invalid(
                    "kind",
                    "supporting documents come from the requesting agency; the requested agency adds 'answer' files",
                ));
            }
            (EvidenceKind::Answer, Side::Requesting) => {
                return Err(ServiceError::invalid(
                    "kind",
                    "answer files come from the requested agency; the requesting agency adds 'supporting' files",
                ));
            }
            _ => {}
        }
        let attached_to = match (kind, new.attached_to.as_deref().map(str::trim)) {
            (EvidenceKind::Comment, Some(ev)) if !ev.is_empty() => {
                let events = self.events(p, id, now).await?;
                if !events.iter().any(|e| e.event == "comment" && e.id.to_string() == ev) {
                    return Err(ServiceError::invalid(
                        "attached_to",
                        format!(
                            "'{}' is not a comment on request {id}",
                            ev.chars().take(80).collect::<String>()
                        ),
                    ));
                }
                Some(ev.to_string())
            }
            (EvidenceKind::Comment, _) => {
                return Err(ServiceError::invalid(
                    "attached_to",
                    "a comment's file names the comment (its event id)",
                ));
            }
            (_, Some(a)) if !a.is_empty() => {
                return Err(ServiceError::invalid(
                    "attached_to",
                    "only 'comment' files are attached to a comment",
                ));
            }
            _ => None,
        };
        let open = self.store.evidence_uploads_open(&p.username).await?;
        let most = self.evidence_config()?.open_uploads_limit();
        if open >= i64::from(most) {
            return Err(ServiceError::Conflict(format!(
                "{} has {open} unfinished uploads (at most {most}, [evidence] max_open_uploads): finish or abandon one first (liaison evidence add resumes; DELETE …/evidence/uploads/ID abandons)",
                p.username
            )));
        }
        let file_name = sanitize_file_name(&new.file_name);
        let media = new.media_type.as_deref().map(check_media_type).transpose()?;
        let mut marking = new.marking.unwrap_or_else(|| r.draft.marking());
        marking
            .validate()
            .map_err(|e| ServiceError::invalid("marking", e.to_string()))?;
        marking.tlp = marking.tlp.stricter(r.draft.marking().tlp);
        if marking.tlp != Tlp::Red {
            marking.recipients.clear();
        }
        let upload = EvidenceUpload {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: id,
            kind,
            attached_to,
            file_name,
            media_type_claimed: media,
            uploader: p.username.clone(),
            uploader_agency: p.agency,
            side,
            marking,
            created_at: now,
            received: 0,
            receiving: false,
        };
        let keys = self.key_file()?.load()?;
        let key: [u8; 32] = rand::random();
        let wrapped = wrap(&keys[0], &upload.id, &key)?;
        let dir = self.uploads_dir()?;
        ensure_dir(&self.evidence_dir()?)?;
        ensure_dir(&dir)?;
        let path = dir.join(&upload.id);
        SealWriter::create(&path, &upload.id, &key).await?.sync().await?;
        if let Err(e) = self.store.evidence_upload_begin(&upload, &wrapped).await {
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
        Ok(upload)
    }

    /// An upload session of `p`'s, with the bytes received so far.
    async fn own_upload(&self, p: &Principal, upload: &str) -> Result<(EvidenceUpload, EvidenceStorage)> {
        let (mut u, key) = self.store.evidence_upload(upload).await?;
        if u.uploader != p.username || u.uploader_agency != p.agency {
            return Err(ServiceError::NotFound(format!("upload {upload}")));
        }
        u.received = self.session_received(&u.id, &key).await?;
        Ok((u, key))
    }

    /// The session's received offset: the plaintext length of its whole frames. A frame cut
    /// off by a crash is removed (the client sends those bytes again).
    async fn session_received(&self, id: &str, key: &EvidenceStorage) -> Result<u64> {
        let path = self.session_path(id)?;
        // Only the holder of the session's lock may cut a partial frame off: a frame being
        // written by a piece arriving now is not partial, only unfinished.
        let lock = std::fs::File::open(&path).map_err(|e| internal(format!("upload session file: {e}")))?;
        if lock.try_lock().is_ok() {
            Ok(self.trim_session(&path, key).await?.1)
        } else {
            Ok(self.scan_session(&path, key).await?.1.0)
        }
    }

    /// With the session's lock held: cuts off a frame a crash left partial; answers (frames,
    /// plaintext bytes) of the whole ones.
    async fn trim_session(&self, path: &Path, key: &EvidenceStorage) -> Result<(u64, u64)> {
        let (frames, (plain, sealed)) = self.scan_session(path, key).await?;
        let on_disk = tokio::fs::metadata(path).await.map_err(internal)?.len();
        if on_disk > sealed {
            let f = std::fs::OpenOptions::new().write(true).open(path).map_err(internal)?;
            f.set_len(sealed).map_err(internal)?;
            f.sync_all().map_err(internal)?;
        }
        Ok((frames, plain))
    }

    /// Reads a session file's frame headers: (plaintext bytes, sealed bytes) of whole frames,
    /// and the number of frames.
    async fn scan_session(&self, path: &Path, _key: &EvidenceStorage) -> Result<(u64, (u64, u64))> {
        let mut f = tokio::io::BufReader::new(
            tokio::fs::File::open(path)
                .await
                .map_err(|e| internal(format!("upload session file: {e}")))?,
        );
        let mut header = [0u8; HEADER];
        if read_full(&mut f, &mut header).await? < HEADER || &header[..8] != MAGIC {
            return Err(ServiceError::Integrity("the upload session file is damaged".into()));
        }
        let mut sealed = HEADER as u64;
        let mut plain = 0u64;
        let mut frames = 0u64;
        loop {
            let mut head = [0u8; FRAME_HEADER];
            if read_full(&mut f, &mut head).await? < FRAME_HEADER {
                break;
            }
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
            if len as usize > CHUNK {
                break;
            }
            let mut skip = (&mut f).take(len + TAG as u64);
            let n = tokio::io::copy(&mut skip, &mut tokio::io::sink())
                .await
                .map_err(internal)?;
            if n < len + TAG as u64 {
                break;
            }
            sealed += FRAME_HEADER as u64 + len + TAG as u64;
            plain += len;
            frames += 1;
        }
        Ok((frames, (plain, sealed)))
    }

    /// An upload session and how much of it arrived.
    pub async fn evidence_upload_status(&self, p: &Principal, upload: &str) -> Result<EvidenceUpload> {
        let mut u = self.own_upload(p, upload).await?.0;
        u.receiving = self
            .evidence
            .busy
            .lock()
            .map(|b| b.contains_key(upload))
            .unwrap_or(false);
        Ok(u)
    }

    /// Whether upload session `upload` of `p`'s belongs to request `request` (else "not
    /// found", as for another user's session).
    pub async fn evidence_upload_on(&self, p: &Principal, request: RequestId, upload: &str) -> Result<()> {
        let (u, _) = self.store.evidence_upload(upload).await?;
        if u.request_id != request || u.uploader != p.username || u.uploader_agency != p.agency {
            return Err(ServiceError::NotFound(format!("upload {upload}")));
        }
        Ok(())
    }

    /// Opens the next piece of an upload, which must start at `offset`, the session's
    /// received offset (else `Conflict`, naming it). One piece at a time per session.
    pub async fn evidence_upload_piece(&self, p: &Principal, upload: &str, offset: u64) -> Result<UploadWriter<'_>> {
        let limit = self.evidence_config()?.limit();
        let guard = BusyGuard::claim(self, upload, "another piece")?;
        let (u, key) = self.store.evidence_upload(upload).await?;
        if u.uploader != p.username || u.uploader_agency != p.agency {
            return Err(ServiceError::NotFound(format!("upload {upload}")));
        }
        let path = self.session_path(upload)?;
        let lock = std::fs::OpenOptions::new().read(true).open(&path).map_err(internal)?;
        lock.try_lock().map_err(|_| {
            ServiceError::Conflict(format!(
                "upload {upload} is receiving another piece now (another instance)"
            ))
        })?;
        let (frames, received) = self.trim_session(&path, &key).await?;
        if offset != received {
            return Err(ServiceError::Conflict(format!(
                "upload {upload} has received {received} bytes: send the piece that starts at offset {received}"
            )));
        }
        let keys = self.key_file()?.load()?;
        let dk = unwrap_key(&keys, &key)?;
        let file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(internal)?;
        let seal = SealWriter {
            file,
            cipher: XChaCha20Poly1305::new((&dk).into()),
            blob: blob_bytes(upload)?,
            index: frames,
        };
        Ok(UploadWriter {
            _busy: guard,
            _lock: lock,
            seal,
            buf: Vec::with_capacity(CHUNK),
            received,
            limit,
        })
    }

    /// Abandons an upload: its session and partial content are removed.
    pub async fn evidence_upload_abort(&self, p: &Principal, upload: &str) -> Result<()> {
        let (u, _) = self.own_upload(p, upload).await?;
        self.store.evidence_upload_drop(&u.id).await?;
        let _ = std::fs::remove_file(self.session_path(&u.id)?);
        Ok(())
    }

    /// Finishes an upload: reads the session back, checks the content's SHA-256 against
    /// `expected` (when given; a mismatch is refused and the session removed), stores it
    /// content-addressed in fixed chunks under a new data key, and records the file with its
    /// custody entry `evidence.upload`.
    pub async fn evidence_upload_finish(
        &self,
        p: &Principal,
        upload: &str,
        expected: Option<&str>,
        now: Timestamp,
    ) -> Result<EvidenceFile> {
        let expected = expected
            .map(|e| {
                let e = e.trim().to_ascii_lowercase();
                if e.len() == 64 && e.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(e)
                } else {
                    Err(ServiceError::invalid("sha256", "must be 64 hexadecimal digits"))
                }
            })
            .transpose()?;
        let _guard = BusyGuard::claim(self, upload, "a piece")?;
        let (u, session_key) = self.own_upload(p, upload).await?;
        let lock = std::fs::File::open(self.session_path(&u.id)?).map_err(internal)?;
        lock.try_lock().map_err(|_| {
            ServiceError::Conflict(format!("upload {upload} is receiving a piece now (another instance)"))
        })?;
        // Still a party that may see the request?
        self.evidence_request(p, u.request_id, now, "adding evidence").await?;
        let keys = self.key_file()?.load()?;
        let sk = unwrap_key(&keys, &session_key)?;
        let dir = self.evidence_dir()?;
        let session = self.session_path(&u.id)?;
        let file_id = uuid::Uuid::now_v7().to_string();
        let dk: [u8; 32] = rand::random();
        let tmp_dir = dir.join("tmp");
        ensure_dir(&tmp_dir)?;
        let tmp = tmp_dir.join(&file_id);
        let result = async {
            let mut reader = SealReader::open(&session, &u.id, &sk).await?;
            let mut writer = SealWriter::create(&tmp, &file_id, &dk).await?;
            let mut hash = Sha256::new();
            // The transfer chunks' hashes at the usual chunk size, taken in this pass so that
            // offering the file to a peer reads nothing (docs/federation.md §12).
            let mut chunks = ChunkHasher::new(chunk_size_for(0));
            let mut size = 0u64;
            let mut sniff: Vec<u8> = Vec::new();
            let mut pending: Vec<u8> = Vec::with_capacity(CHUNK);
            while let Some((piece, _)) = reader.next_frame(false).await? {
                hash.update(&piece);
                chunks.update(&piece);
                size += piece.len() as u64;
                if sniff.len() < 8192 {
                    sniff.extend_from_slice(&piece[..piece.len().min(8192 - sniff.len())]);
                }
                let mut rest = &piece[..];
                while !rest.is_empty() {
                    if pending.len() == CHUNK {
                        writer.frame(&pending, false).await?;
                        pending.clear();
                    }
                    let take = (CHUNK - pending.len()).min(rest.len());
                    pending.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                }
            }
            writer.frame(&pending, true).await?;
            writer.sync().await?;
            Ok::<_, ServiceError>((hex::encode(hash.finalize()), size, sniff, chunks.finish()))
        }
        .await;
        let (sha256, size, sniff, chunks) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Some(exp) = &expected
            && exp != &sha256
        {
            let _ = std::fs::remove_file(&tmp);
            self.store.evidence_upload_drop(&u.id).await?;
            let _ = std::fs::remove_file(&session);
            return Err(ServiceError::Integrity(format!(
                "the uploaded content has SHA-256 {sha256}, not the expected {exp}; the upload was discarded: upload the file again"
            )));
        }
        let target = blob_path(&dir, &sha256);
        ensure_dir(target.parent().unwrap_or(&dir))?;
        // The same content stored before (and not deleted): share it, with its key.
        let storage = match self.store.evidence_by_sha256(&sha256).await? {
            Some(existing) if target.exists() => {
                let _ = std::fs::remove_file(&tmp);
                existing
            }
            _ => {
                std::fs::rename(&tmp, &target).map_err(|e| internal(format!("storing {}: {e}", target.display())))?;
                if let Some(parent) = target.parent() {
                    let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
                }
                // The key file as it is now: a rotation may have run while the content was
                // being read back.
                let keys = self.key_file()?.load()?;
                wrap(&keys[0], &file_id, &dk)?
            }
        };
        drop(lock);
        let f = EvidenceFile {
            id: file_id,
            request_id: u.request_id,
            kind: u.kind,
            attached_to: u.attached_to,
            sha256,
            size,
            media_type_sniffed: infer::get(&sniff).map(|t| t.mime_type().to_string()),
            media_type_claimed: u.media_type_claimed,
            file_name: u.file_name,
            uploader: u.uploader,
            uploader_agency: u.uploader_agency,
            side: u.side,
            uploaded_at: now,
            marking: u.marking,
            legal_hold: false,
            deleted_at: None,
        };
        self.store.evidence_insert(&f, &storage, Some(&u.id)).await?;
        self.evidence.stored.notify_one();
        if chunk_size_for(size) == chunk_size_for(0) {
            self.record_chunk_hashes(&f, chunk_size_for(0), &chunks).await;
        }
        // A rotation that finished between our wrap and our insert removed the key we wrapped
        // under: wrap again under the current one (we still hold the data key).
        if storage.blob_id == f.id {
            let keys = self.key_file()?.load()?;
            if !keys.iter().any(|k| k.id == storage.kek_id) {
                let w = wrap(&keys[0], &f.id, &dk)?;
                let old = WrappedKey {
                    id: f.id.clone(),
                    upload: false,
                    wrapped_key: storage.wrapped_key.clone(),
                    kek_id: storage.kek_id.clone(),
                };
                let new = WrappedKey {
                    id: f.id.clone(),
                    upload: false,
                    wrapped_key: w.wrapped_key,
                    kek_id: w.kek_id,
                };
                self.store.evidence_rewrap(&[old], &[new], &f.uploader, now).await?;
            }
        }
        let _ = std::fs::remove_file(&session);
        Ok(f)
    }

    /// Records the transfer chunk hashes of a file's content. A failure is logged only: the
    /// hashes are not needed for the file, and an offer to a peer takes them again.
    pub(crate) async fn record_chunk_hashes(&self, f: &EvidenceFile, chunk_size: u64, chunks: &[Hash256]) {
        if let Err(e) = self
            .store
            .evidence_chunks_put(&f.sha256, chunk_size, &hashes_hex(chunks))
            .await
        {
            tracing::warn!(file = %f.id, error = %e, "cannot record the chunk hashes of an evidence file");
        }
    }

    /// A file as `p` may see it: a party to its request admitted by the file's marking;
    /// anything else is "not found".
    async fn visible_file(&self, p: &Principal, file: &str, now: Timestamp) -> Result<(EvidenceFile, EvidenceStorage)> {
        self.visible_file_of(p, None, file, now).await
    }

    /// [`Node::visible_file`], and on request `request` when one is named.
    async fn visible_file_of(
        &self,
        p: &Principal,
        request: Option<RequestId>,
        file: &str,
        now: Timestamp,
    ) -> Result<(EvidenceFile, EvidenceStorage)> {
        let (f, s) = self.store.evidence_file(file).await.map_err(|e| match e {
            liaison_store::StoreError::NotFound(_) => ServiceError::NotFound(format!("evidence file {file}")),
            e => e.into(),
        })?;
        if request.is_some_and(|r| r != f.request_id) {
            return Err(ServiceError::NotFound(format!("evidence file {file}")));
        }
        let (r, _) = self
            .evidence_request(p, f.request_id, now, "reading evidence")
            .await
            .map_err(|e| match e {
                ServiceError::NotFound(_) => ServiceError::NotFound(format!("evidence file {file}")),
                e => e,
            })?;
        if side_of(p, &r).is_none() || !admits_file(p, &r, &f.marking, f.side) {
            return Err(ServiceError::NotFound(format!("evidence file {file}")));
        }
        Ok((f, s))
    }

    /// The files of request `id` that `p` may see.
    pub async fn evidence_list(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<Vec<EvidenceFile>> {
        let (r, _) = self.evidence_request(p, id, now, "reading evidence").await?;
        let mut files = self.store.evidence_files(id).await?;
        files.retain(|f| admits_file(p, &r, &f.marking, f.side));
        Ok(files)
    }

    /// One file's metadata.
    pub async fn evidence_meta(
        &self,
        p: &Principal,
        request: Option<RequestId>,
        file: &str,
        now: Timestamp,
    ) -> Result<EvidenceFile> {
        Ok(self.visible_file_of(p, request, file, now).await?.0)
    }

    /// Opens a file's content for `p`, recording the custody step `evidence.download` first.
    /// The content is checked chunk by chunk as it is read: an altered chunk fails there.
    pub async fn evidence_download(
        &self,
        p: &Principal,
        request: Option<RequestId>,
        file: &str,
        now: Timestamp,
    ) -> Result<EvidenceDownload> {
        let (f, s) = self.visible_file_of(p, request, file, now).await?;
        if f.deleted_at.is_some() {
            return Err(ServiceError::NotFound(format!(
                "the content of evidence file {file} was deleted under retention (its record and custody remain)"
            )));
        }
        let keys = self.key_file()?.load()?;
        let dk = unwrap_key(&keys, &s)?;
        let path = blob_path(&self.evidence_dir()?, &f.sha256);
        let mut content = SealReader::open(&path, &s.blob_id, &dk).await?;
        content.expect_size = Some(f.size);
        self.store
            .evidence_custody_step(
                &f.id,
                now,
                &p.username,
                "evidence.download",
                &serde_json::json!({ "request": f.request_id.to_string(), "agency": p.agency.to_string(), "sha256": f.sha256 }),
            )
            .await?;
        Ok(EvidenceDownload { file: f, content })
    }

    /// Opens the content of a file `p` may see (listed by [`Node::evidence_list`]) without a
    /// custody step: the evidence package records its own (`evidence.export`, with the
    /// package's digest) once the package is written.
    pub(crate) async fn evidence_open_for_export(
        &self,
        p: &Principal,
        f: &EvidenceFile,
        now: Timestamp,
    ) -> Result<SealReader> {
        let (f, s) = self.visible_file_of(p, Some(f.request_id), &f.id, now).await?;
        if f.deleted_at.is_some() {
            return Err(ServiceError::NotFound(format!(
                "the content of evidence file {} was deleted under retention",
                f.id
            )));
        }
        let keys = self.key_file()?.load()?;
        let dk = unwrap_key(&keys, &s)?;
        let path = blob_path(&self.evidence_dir()?, &f.sha256);
        let mut content = SealReader::open(&path, &s.blob_id, &dk).await?;
        content.expect_size = Some(f.size);
        Ok(content)
    }

    /// The directory where a file being written is kept until complete (`DIR/tmp`).
    pub(crate) fn evidence_tmp_dir(&self) -> Result<PathBuf> {
        let dir = self.evidence_dir()?.join("tmp");
        ensure_dir(&dir)?;
        Ok(dir)
    }

    /// A file's chain of custody: every audit entry about it, oldest first.
    pub async fn evidence_custody(
        &self,
        p: &Principal,
        request: Option<RequestId>,
        file: &str,
        now: Timestamp,
    ) -> Result<Vec<AuditEntry>> {
        let (f, _) = self.visible_file_of(p, request, file, now).await?;
        Ok(self.store.evidence_custody(&f.id).await?)
    }

    /// Rotates the key-encryption key: a new key goes first in the key file (the old ones
    /// stay there), every data key is re-wrapped under it (the content is not rewritten), then
    /// the old keys are removed from the file. Interrupted, it leaves every file readable and
    /// running it again completes it. Administrators only. Answers the keys re-wrapped.
    pub async fn evidence_rotate_key(&self, p: &Principal, now: Timestamp) -> Result<u64> {
        require(p.role.may_administer(), "rotating the evidence key", p)?;
        let kf = self.key_file()?;
        // One rotation at a time, across the instances sharing the key file.
        let lock_path = kf.path.with_extension("lock");
        let lock = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&lock_path)
                .map_err(|e| internal(format!("{}: {e}", lock_path.display())))?
        };
        lock.try_lock()
            .map_err(|_| ServiceError::Conflict("another evidence key rotation is running".into()))?;
        let mut keys = kf.load()?;
        let key: [u8; 32] = rand::random();
        let new = Kek { id: kek_id(&key), key };
        keys.insert(0, new.clone());
        kf.replace(&keys)?;
        let mut total = 0u64;
        // Two passes: the second re-wraps what an upload finishing meanwhile wrapped under the
        // old key (it read the key file just before the first pass wrote it).
        for pass in 0..2 {
            if pass == 1 {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            loop {
                let batch = self.store.evidence_keys_not_under(&new.id, 500).await?;
                if batch.is_empty() {
                    break;
                }
                let mut rewrapped = Vec::with_capacity(batch.len());
                for k in &batch {
                    let blob_id = if k.upload {
                        k.id.clone()
                    } else {
                        self.store.evidence_file(&k.id).await?.1.blob_id
                    };
                    let s = EvidenceStorage {
                        blob_id: blob_id.clone(),
                        wrapped_key: k.wrapped_key.clone(),
                        kek_id: k.kek_id.clone(),
                    };
                    let dk = unwrap_key(&keys, &s)?;
                    let w = wrap(&new, &blob_id, &dk)?;
                    rewrapped.push(WrappedKey {
                        id: k.id.clone(),
                        upload: k.upload,
                        wrapped_key: w.wrapped_key,
                        kek_id: w.kek_id,
                    });
                }
                let n = self.store.evidence_rewrap(&batch, &rewrapped, &p.username, now).await?;
                if n == 0 {
                    // Every row of the batch changed under us (another writer): read again.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                total += n;
            }
        }
        kf.replace(&[new])?;
        drop(lock);
        Ok(total)
    }

    /// Places a legal hold on request `id`'s files, or on one of its files: held files are
    /// never deleted under retention. Legal reviewers and supervisors of either party.
    pub async fn evidence_hold(
        &self,
        p: &Principal,
        id: RequestId,
        file: Option<&str>,
        reason: &str,
        now: Timestamp,
    ) -> Result<()> {
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 2000 || reason.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                "reason",
                "must be 1 to 2000 bytes without control characters",
            ));
        }
        self.evidence_request(p, id, now, "placing a legal hold").await?;
        require(
            matches!(
                p.role,
                liaison_core::Role::LegalReviewer | liaison_core::Role::Supervisor
            ),
            "placing a legal hold",
            p,
        )?;
        let subject = match file {
            Some(f) => {
                let (ef, _) = self.visible_file(p, f, now).await?;
                if ef.request_id != id {
                    return Err(ServiceError::NotFound(format!("evidence file {f} on request {id}")));
                }
                ef.id
            }
            None => id.to_string(),
        };
        self.store
            .evidence_hold(id, &subject, file.is_some(), &p.username, reason, now)
            .await?;
        Ok(())
    }

    /// Lifts a legal hold placed by [`Node::evidence_hold`].
    pub async fn evidence_release(
        &self,
        p: &Principal,
        id: RequestId,
        file: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        self.evidence_request(p, id, now, "lifting a legal hold").await?;
        require(
            matches!(
                p.role,
                liaison_core::Role::LegalReviewer | liaison_core::Role::Supervisor
            ),
            "lifting a legal hold",
            p,
        )?;
        let subject = match file {
            Some(f) => self.visible_file(p, f, now).await?.0.id,
            None => id.to_string(),
        };
        self.store
            .evidence_release(&subject, file.is_some(), &p.username, now)
            .await?;
        Ok(())
    }

    /// The legal holds on request `id` and its files.
    pub async fn evidence_holds(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<Vec<LegalHold>> {
        self.evidence_request(p, id, now, "reading evidence").await?;
        Ok(self.store.evidence_holds(id).await?)
    }

    /// The retention sweep: every live file older than its rule's days (`[evidence]
    /// retention`, by kind and marking) and not held loses its content and data key; its row
    /// stays, with the custody entry `evidence.delete` "deleted under retention". Run by
    /// administrators (`liaison evidence sweep`) and by `liaison serve` hourly (as
    /// `retention`).
    pub async fn evidence_sweep(&self, p: Option<&Principal>, now: Timestamp) -> Result<SweepReport> {
        if let Some(p) = p {
            require(p.role.may_administer(), "running the retention sweep", p)?;
        }
        let actor = p.map(|p| p.username.clone()).unwrap_or_else(|| "retention".into());
        let config = self.evidence_config()?.clone();
        let dir = self.evidence_dir()?;
        let mut report = SweepReport::default();
        let mut after = String::new();
        loop {
            let files = self.store.evidence_live(&after, 500).await?;
            let Some(last) = files.last() else { break };
            after = last.id.clone();
            for f in files {
                report.examined += 1;
                let Some(days) = config.retention_days(f.kind, f.marking.tlp) else {
                    continue;
                };
                let expires = f
                    .uploaded_at
                    .checked_add(jiff::SignedDuration::from_hours(i64::from(days) * 24))
                    .map_err(internal)?;
                if expires > now {
                    continue;
                }
                if f.legal_hold {
                    report.held.push(f.id);
                    continue;
                }
                let (deleted, shared) = self
                    .store
                    .evidence_delete(
                        &f.id,
                        &actor,
                        &format!(
                            "deleted under retention ({} days for {} files marked {})",
                            days,
                            f.kind,
                            f.marking.tlp.as_str()
                        ),
                        now,
                    )
                    .await?;
                if !deleted {
                    report.held.push(f.id);
                    continue;
                }
                if !shared {
                    let path = blob_path(&dir, &f.sha256);
                    if let Err(e) = std::fs::remove_file(&path)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(path = %path.display(), error = %e, "could not remove deleted evidence content");
                    }
                }
                report.deleted.push(f.id);
            }
        }
        self.expire_uploads(&config, now, &mut report).await?;
        Ok(report)
    }

    /// Removes unfinished uploads begun more than `upload_expiry_hours` ago whose session
    /// file received nothing in that time either (a slow upload that is still moving is kept),
    /// and which no piece is being written to now (the session's lock is free).
    async fn expire_uploads(&self, config: &EvidenceConfig, now: Timestamp, report: &mut SweepReport) -> Result<()> {
        let expiry = config.upload_expiry();
        let before = now
            .checked_sub(jiff::SignedDuration::try_from(expiry).map_err(internal)?)
            .map_err(internal)?;
        let quiet_since = std::time::SystemTime::now()
            .checked_sub(expiry)
            .unwrap_or(std::time::UNIX_EPOCH);
        for id in self.store.evidence_uploads_begun_before(before, 1000).await? {
            let path = self.session_path(&id)?;
            match std::fs::File::open(&path) {
                Ok(f) => {
                    let moved = f.metadata().and_then(|m| m.modified()).map_err(internal)?;
                    if moved > quiet_since || f.try_lock().is_err() {
                        continue;
                    }
                    self.store.evidence_upload_drop(&id).await?;
                    if let Err(e) = std::fs::remove_file(&path)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(path = %path.display(), error = %e, "could not remove an expired upload session");
                    }
                }
                // No session file (removed by hand, or a crash before it was made): the row goes.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.store.evidence_upload_drop(&id).await?;
                }
                Err(e) => return Err(internal(format!("upload session file: {e}"))),
            }
            report.uploads_expired.push(id);
        }
        Ok(())
    }
}

/// Test helper: the path of a file's sealed content, so a test can alter it as an intruder
/// with disk access would.
#[doc(hidden)]
pub fn content_path_for_test(node: &Node, sha256: &str) -> Option<PathBuf> {
    node.evidence_dir().ok().map(|d| blob_path(&d, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("C:\\x\\evil\".exe"), "evil_.exe");
        assert_eq!(sanitize_file_name("..."), "file");
        assert_eq!(sanitize_file_name("a\u{202e}gpj.exe"), "a_gpj.exe");
        assert_eq!(sanitize_file_name("报告.pdf"), "报告.pdf");
        assert!(sanitize_file_name(&"x".repeat(1000)).len() <= MAX_FILE_NAME);
    }

    #[test]
    fn retention_rules_match_in_order() {
        let c = EvidenceConfig {
            retention: vec![
                RetentionRule {
                    kind: Some(EvidenceKind::Answer),
                    tlp: Some(Tlp::Red),
                    days: 30,
                },
                RetentionRule {
                    kind: None,
                    tlp: None,
                    days: 365,
                },
            ],
            ..Default::default()
        };
        assert_eq!(c.retention_days(EvidenceKind::Answer, Tlp::Red), Some(30));
        assert_eq!(c.retention_days(EvidenceKind::Answer, Tlp::Amber), Some(365));
        assert!(
            EvidenceConfig {
                retention: vec![RetentionRule {
                    kind: None,
                    tlp: None,
                    days: 0
                }],
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
