//! Writing an evidence package (`Node::evidence_export`): what the exporting user may read of
//! a request, its files decrypted and streamed into the ZIP (never whole in memory), the
//! ledger's proofs against a tree head signed now, the manifest signed by the node's key, and
//! the custody step `evidence.export` of every file with the package's digest.

use super::case::{CaseInput, document};
use super::{
    CustodyDoc, CustodyEntry, FORMAT, FileCustody, FileRecord, FilesDoc, HEAD, LedgerDoc, MANIFEST, MAX_FILES,
    Manifest, ManifestEntry, ManifestSignature, SIGNATURE, SIGNING_CONTEXT, SigningKey, central_header, end_records,
    file_entry_name, fingerprint, grouped, local_header,
};
use crate::error::{Result, ServiceError};
use crate::federation::transport::Offline;
use crate::node::Node;
use jiff::Timestamp;
use liaison_core::EventId;
use liaison_core::RequestId;
use liaison_core::record::{EventRecord, EvidenceFile, Principal};
use liaison_core::request::AssistanceRequest;
use liaison_wire::{Keyring, LedgerEntry, MerkleLog, ProofBundle, PublicKeyBytes, PublishedKey, Receipt, Sth};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Most messages about one request (sent and received, each) that a package proves; a
/// request with more is refused rather than exported incomplete.
const MAX_MESSAGES: usize = 10_000;

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PackageExport {
    pub request_id: String,
    /// SHA-256 of the whole package (recorded in each file's custody).
    pub sha256: String,
    pub size: u64,
    pub files: usize,
    pub proofs: usize,
    pub node_id: String,
    pub key_id: String,
    /// The signing key's fingerprint: what `liaison evidence verify --trust` takes.
    pub fingerprint: String,
}

pub(super) fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// `manifest.sig` of a format: the node's signature over `context` and the manifest's bytes,
/// as canonical JSON.
pub(super) fn sign_manifest(
    key: &liaison_wire::NodeKey,
    format: &str,
    context: &[u8],
    manifest_bytes: &[u8],
) -> Result<Vec<u8>> {
    let mut msg = context.to_vec();
    msg.extend_from_slice(manifest_bytes);
    let sig = ManifestSignature {
        format: format.into(),
        key_id: key.key_id().to_string(),
        public_key: key.public_key().to_hex(),
        signature: key.sign_bytes(&msg).to_hex(),
    };
    liaison_wire::to_canonical(&sig).map_err(internal)
}

/// The SHA-256 of a file's content, lower-case hex.
pub(super) async fn file_sha256(path: &Path) -> Result<String> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| internal(format!("reading {}: {e}", path.display())))?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await.map_err(internal)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    Ok(hex::encode(sha.finalize()))
}

pub(super) fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(v).map_err(internal)?;
    b.push(b'\n');
    Ok(b)
}

/// Where an entry's content comes from: an evidence file opened from sealed storage (checked
/// chunk by chunk), or a plain file (a package written for a case file).
enum Chunks<'a> {
    Sealed(&'a mut crate::evidence::SealReader),
    Plain(tokio::fs::File, Vec<u8>),
}

impl Chunks<'_> {
    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        match self {
            Chunks::Sealed(r) => r.next_chunk().await,
            Chunks::Plain(f, buf) => {
                let n = f.read(buf).await.map_err(internal)?;
                Ok((n > 0).then(|| buf[..n].to_vec()))
            }
        }
    }
}

/// The ZIP being written: local headers and content, then the central directory.
pub(super) struct ZipOut {
    file: tokio::fs::File,
    path: PathBuf,
    pos: u64,
    central: Vec<u8>,
    count: u64,
    pub(super) listed: Vec<ManifestEntry>,
}

impl ZipOut {
    /// A new file at `out` (it must not exist), readable by its owner only.
    pub(super) fn create(out: &Path) -> Result<ZipOut> {
        use std::os::unix::fs::OpenOptionsExt;
        let std_file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(|e| internal(format!("creating {}: {e}", out.display())))?;
        Ok(ZipOut {
            file: tokio::fs::File::from_std(std_file),
            path: out.to_path_buf(),
            pos: 0,
            central: Vec::new(),
            count: 0,
            listed: Vec::new(),
        })
    }

    fn io(&self, e: std::io::Error) -> ServiceError {
        internal(format!("writing {}: {e}", self.path.display()))
    }

    pub(super) async fn put(&mut self, name: &str, bytes: &[u8], listed: bool) -> Result<()> {
        let crc = crc32fast::hash(bytes);
        let header = local_header(name, crc, bytes.len() as u64);
        self.file.write_all(&header).await.map_err(|e| self.io(e))?;
        self.file.write_all(bytes).await.map_err(|e| self.io(e))?;
        self.central
            .extend_from_slice(&central_header(name, crc, bytes.len() as u64, self.pos));
        self.pos += (header.len() + bytes.len()) as u64;
        self.count += 1;
        if listed {
            self.listed.push(ManifestEntry {
                path: name.to_string(),
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            });
        }
        Ok(())
    }

    /// Streams a file's content (checked chunk by chunk as it is opened) into an entry; the
    /// header is written with the CRC and size once they are known.
    async fn put_stream(&mut self, name: &str, content: &mut crate::evidence::SealReader) -> Result<String> {
        self.put_chunks(name, Chunks::Sealed(content)).await
    }

    /// Streams a plain file's content into a listed entry; returns its SHA-256.
    pub(super) async fn put_file(&mut self, name: &str, path: &Path) -> Result<String> {
        let f = tokio::fs::File::open(path)
            .await
            .map_err(|e| internal(format!("reading {}: {e}", path.display())))?;
        self.put_chunks(name, Chunks::Plain(f, vec![0u8; 1 << 20])).await
    }

    /// Writes the chunks of `content` as one listed entry; the header is written with the CRC
    /// and size once they are known.
    async fn put_chunks(&mut self, name: &str, mut content: Chunks<'_>) -> Result<String> {
        let offset = self.pos;
        let placeholder = local_header(name, 0, 0);
        self.file.write_all(&placeholder).await.map_err(|e| self.io(e))?;
        let mut crc = crc32fast::Hasher::new();
        let mut sha = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = content.next().await? {
            crc.update(&chunk);
            sha.update(&chunk);
            size += chunk.len() as u64;
            self.file.write_all(&chunk).await.map_err(|e| self.io(e))?;
        }
        let crc = crc.finalize();
        let end = offset + placeholder.len() as u64 + size;
        self.file.flush().await.map_err(|e| self.io(e))?;
        self.file
            .seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| self.io(e))?;
        self.file
            .write_all(&local_header(name, crc, size))
            .await
            .map_err(|e| self.io(e))?;
        self.file.flush().await.map_err(|e| self.io(e))?;
        self.file
            .seek(std::io::SeekFrom::Start(end))
            .await
            .map_err(|e| self.io(e))?;
        self.central.extend_from_slice(&central_header(name, crc, size, offset));
        self.pos = end;
        self.count += 1;
        let sha256 = hex::encode(sha.finalize());
        self.listed.push(ManifestEntry {
            path: name.to_string(),
            size,
            sha256: sha256.clone(),
        });
        Ok(sha256)
    }

    /// Writes `manifest` (its JCS form) and its signature by `key` (of `format`, over
    /// `context` and the manifest's bytes): the last two entries, not listed.
    pub(super) async fn seal<M: Serialize>(
        &mut self,
        manifest: &M,
        key: &liaison_wire::NodeKey,
        (format, context): (&str, &[u8]),
    ) -> Result<()> {
        let bytes = liaison_wire::to_canonical(manifest).map_err(internal)?;
        let sig = sign_manifest(key, format, context, &bytes)?;
        self.put(MANIFEST, &bytes, false).await?;
        self.put(SIGNATURE, &sig, false).await
    }

    pub(super) async fn finish(mut self) -> Result<u64> {
        let cd_offset = self.pos;
        let central = std::mem::take(&mut self.central);
        self.file.write_all(&central).await.map_err(|e| self.io(e))?;
        let end = end_records(self.count, cd_offset, central.len() as u64);
        self.file.write_all(&end).await.map_err(|e| self.io(e))?;
        self.file.flush().await.map_err(|e| self.io(e))?;
        self.file.sync_all().await.map_err(|e| self.io(e))?;
        Ok(cd_offset + central.len() as u64 + end.len() as u64)
    }
}

/// The request a mirrored payload is about (`request_id`, or `request.id` for a submission).
fn payload_request(v: &Value) -> Option<&str> {
    v.get("request_id")
        .and_then(Value::as_str)
        .or_else(|| v.get("request").and_then(|r| r.get("id")).and_then(Value::as_str))
}

/// Whether `p` may read what a message about request `r` carries: a comment as its marking
/// says, a message naming an evidence file only if `p` may see that file, anything else as
/// the request.
fn payload_visible(
    p: &Principal,
    r: &AssistanceRequest,
    payload_type: &str,
    v: &Value,
    files: &[EvidenceFile],
) -> bool {
    if payload_type == "comment" {
        let ev = EventRecord {
            id: EventId(uuid::Uuid::nil()),
            request: r.id,
            at: Timestamp::UNIX_EPOCH,
            actor: String::new(),
            event: "comment".into(),
            from_state: None,
            to_state: None,
            reason: None,
            data: v.get("data").cloned(),
        };
        return crate::markings::admits_comment(p, r, &ev);
    }
    for key in ["file_id", "evidence_id", "file"] {
        if let Some(f) = v.get(key).and_then(Value::as_str) {
            return files.iter().any(|x| x.id == f);
        }
    }
    true
}

fn published(k: &liaison_core::record::PeerKeyRecord) -> Result<PublishedKey> {
    Ok(PublishedKey {
        key_id: liaison_wire::KeyId::parse(&k.key_id).map_err(internal)?,
        public_key: PublicKeyBytes::from_hex(&k.public_key).map_err(internal)?,
        valid_from: k.valid_from,
        valid_until: k.valid_until,
    })
}

impl Node {
    /// Writes the evidence package of request `id` as `p` may read it to `out` (created new,
    /// mode 0600). Every party to the request who may read it may export; each exported
    /// file's custody records `evidence.export` with the package's SHA-256.
    pub async fn evidence_export(
        &self,
        p: &Principal,
        id: RequestId,
        out: &Path,
        now: Timestamp,
    ) -> Result<PackageExport> {
        let now = Timestamp::from_millisecond(now.as_millisecond()).map_err(internal)?;
        let (r, _) = self.visible(p, id, now).await?;
        let request = r.request.clone();
        let events = self.events(p, id, now).await?;
        let listed = if self.evidence_enabled() {
            self.evidence_list(p, id, now).await?
        } else {
            Vec::new()
        };
        let (files, deleted): (Vec<EvidenceFile>, Vec<EvidenceFile>) =
            listed.iter().cloned().partition(|f| f.deleted_at.is_none());
        if files.len() > MAX_FILES {
            return Err(ServiceError::Unprocessable(format!(
                "request {id} has {} files; a package holds at most {MAX_FILES}",
                files.len()
            )));
        }
        let fed = self.federation_with(Arc::new(Offline)).await.map_err(|e| match e {
            ServiceError::NotFound(_) => ServiceError::Unprocessable(
                "this node has no federation signing key (liaison init creates one): a package cannot be signed".into(),
            ),
            e => e,
        })?;
        let node_id = fed.node_id().to_string();
        let key = fed.signing_key();
        let pk = key.public_key();
        let fp = fingerprint(&pk);
        let exported_at = now.to_string();

        // --- Ledger: every leaf about a message on this request that p may read. ---
        let id_str = id.to_string();
        let mut messages = Vec::new();
        let candidates = self
            .store
            .package_messages_mentioning(&id_str, MAX_MESSAGES as i64 + 1)
            .await?;
        for direction in ["sent", "received"] {
            if candidates.iter().filter(|m| m.direction == direction).count() > MAX_MESSAGES {
                return Err(ServiceError::Unprocessable(format!(
                    "request {id} has more than {MAX_MESSAGES} messages {direction}: too many for one package"
                )));
            }
        }
        for m in candidates {
            let Ok(v) = serde_json::from_str::<Value>(&m.payload) else {
                continue;
            };
            if payload_request(&v) != Some(id_str.as_str())
                || !payload_visible(p, &request, &m.payload_type, &v, &listed)
            {
                continue;
            }
            messages.push((m, v));
        }
        // The tree head as the node serves it (refused while a restored node has not told its
        // peers; it anchors the audit log first, so the head also covers the custody entries),
        // then the log rebuilt from the stored leaves up to its size, which must give its root.
        let sth = fed.current_sth().await.map_err(|e| match e {
            crate::federation::FedError::Recovering(peers) => ServiceError::Conflict(format!(
                "this node was restored from a backup and has not yet told {peers} (link recovery): no tree head is signed until then; export again afterwards"
            )),
            e => e.into(),
        })?;
        let hashes = self.store.fed_leaf_hashes_from(0).await?;
        let mut leaf_hashes = Vec::with_capacity(hashes.len());
        for (i, (idx, h)) in hashes.iter().enumerate().take(sth.tree_size as usize) {
            if *idx != i as i64 {
                return Err(ServiceError::Integrity(format!(
                    "the ledger misses leaf {i} (found {idx}): run liaison ledger verify"
                )));
            }
            leaf_hashes.push(liaison_wire::Hash256::from_hex(h).map_err(internal)?);
        }
        let log = MerkleLog::from_leaf_hashes(leaf_hashes);
        if log.len() != sth.tree_size || log.current_root() != sth.root_hash {
            return Err(ServiceError::Integrity(format!(
                "the stored ledger ({} leaves) does not give the root of the tree head just signed (size {}): run liaison ledger verify",
                log.len(),
                sth.tree_size
            )));
        }
        let mut peer_keys: BTreeMap<String, Vec<PublishedKey>> = BTreeMap::new();
        let mut proofs = Vec::new();
        for (m, payload) in &messages {
            for leaf in self.store.fed_leaves_for(&m.message_id).await? {
                if leaf.idx as u64 >= log.len() {
                    continue; // appended after the tree head was signed
                }
                if liaison_wire::merkle::leaf_hash(leaf.leaf.as_bytes()).to_hex() != leaf.leaf_hash {
                    return Err(ServiceError::Integrity(format!(
                        "ledger leaf {}: stored hash does not match its content (run liaison ledger verify)",
                        leaf.idx
                    )));
                }
                let entry: LedgerEntry = serde_json::from_str(&leaf.leaf).map_err(internal)?;
                let other = match &entry {
                    LedgerEntry::Sent { envelope } => envelope.recipient.clone(),
                    LedgerEntry::Received { envelope } => envelope.sender.clone(),
                    LedgerEntry::Receipt { receipt } => receipt.receiver.clone(),
                    LedgerEntry::AuditAnchor { .. } => continue,
                };
                let mut keys = Keyring::default();
                for (n, k) in &fed.own_keyring().0 {
                    keys.0.insert(n.clone(), k.clone());
                }
                if !peer_keys.contains_key(other.as_str()) {
                    let pk = self
                        .store
                        .fed_peer_keys(other.as_str())
                        .await?
                        .iter()
                        .map(published)
                        .collect::<Result<Vec<_>>>()?;
                    peer_keys.insert(other.to_string(), pk);
                }
                if let Some(k) = peer_keys.get(other.as_str())
                    && !k.is_empty()
                {
                    keys.0.insert(other.clone(), k.clone());
                }
                let (payload, receipt) = match &entry {
                    LedgerEntry::Sent { .. } => {
                        let r = match self.store.fed_receipt(&m.message_id).await? {
                            Some(r) => Some(Receipt::from_slice(r.receipt.as_bytes()).map_err(internal)?),
                            None => None,
                        };
                        (Some(payload.clone()), r)
                    }
                    LedgerEntry::Received { .. } => (Some(payload.clone()), None),
                    _ => (None, None),
                };
                let mut bundle = ProofBundle::build(&log, entry, leaf.idx as u64, sth.clone(), payload, receipt, keys)
                    .map_err(internal)?;
                // A payload kept in another form than it was signed is left out (its hash
                // stays in the signed header).
                if let Err(liaison_wire::BundleError::Payload(_)) = liaison_wire::verify_bundle(&bundle) {
                    bundle.payload = None;
                }
                liaison_wire::verify_bundle(&bundle).map_err(|e| {
                    ServiceError::Integrity(format!("the proof of ledger leaf {} does not verify: {e}", leaf.idx))
                })?;
                proofs.push(bundle);
            }
        }
        proofs.sort_by_key(|b| b.leaf_index);

        // --- Files and their custody. ---
        let mut records: Vec<(FileRecord, Vec<CustodyEntry>)> = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let custody = self
                .store
                .evidence_custody(&f.id)
                .await?
                .into_iter()
                .map(|a| CustodyEntry {
                    seq: a.seq,
                    at: a.at.to_string(),
                    at_ms: a.at.as_millisecond(),
                    actor: a.actor,
                    action: a.action,
                    subject: a.subject,
                    detail: a.detail,
                    prev_hash: a.prev_hash,
                    hash: a.hash,
                })
                .collect();
            records.push((
                FileRecord {
                    path: file_entry_name(i + 1, &f.file_name),
                    id: f.id.clone(),
                    sha256: f.sha256.clone(),
                    size: f.size,
                    record: serde_json::to_value(f).map_err(internal)?,
                },
                custody,
            ));
        }
        let files_doc = FilesDoc {
            files: records.iter().map(|(f, _)| f.clone()).collect(),
            deleted: deleted
                .iter()
                .map(|f| serde_json::to_value(f).map_err(internal))
                .collect::<Result<_>>()?,
        };
        let custody_doc = CustodyDoc {
            files: records
                .iter()
                .map(|(f, c)| FileCustody {
                    file: f.id.clone(),
                    entries: c.clone(),
                })
                .collect(),
        };
        let ledger_doc = LedgerDoc {
            node_id: node_id.clone(),
            proofs,
        };
        let case = document(&CaseInput {
            request_id: &id_str,
            node_id: &node_id,
            exported_at: &exported_at,
            exported_by: &p.username,
            files: &records,
        });
        let own_keys = self.store.fed_own_keys().await?;
        let cover = cover_page(&CoverInput {
            request: &request,
            node_id: &node_id,
            exported_at: &exported_at,
            exporter: p,
            files: &records,
            deleted: deleted.len(),
            ledger: &ledger_doc,
            sth: &sth,
            key_id: key.key_id().as_str(),
            fingerprint: &fp,
            own_keys: &own_keys,
        });

        // --- The ZIP. ---
        let mut zip = ZipOut::create(out)?;
        let request_json = to_json(&r)?;
        let head: [(&str, Vec<u8>); 7] = [
            (HEAD[0], cover.into_bytes()),
            (HEAD[1], request_json),
            (HEAD[2], to_json(&events)?),
            (HEAD[3], to_json(&files_doc)?),
            (HEAD[4], to_json(&custody_doc)?),
            (HEAD[5], to_json(&ledger_doc)?),
            (HEAD[6], to_json(&case)?),
        ];
        for (name, bytes) in &head {
            zip.put(name, bytes, true).await?;
        }
        for (f, (rec, _)) in files.iter().zip(&records) {
            let mut content = self.evidence_open_for_export(p, f, now).await?;
            let sha = zip.put_stream(&rec.path, &mut content).await?;
            if sha != f.sha256 {
                return Err(ServiceError::Integrity(format!(
                    "evidence file {}: content has SHA-256 {sha}, its record says {}",
                    f.id, f.sha256
                )));
            }
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            node_id: node_id.clone(),
            request_id: id_str.clone(),
            exported_at: exported_at.clone(),
            exported_by: p.username.clone(),
            signing_key: SigningKey {
                key_id: key.key_id().to_string(),
                public_key: pk.to_hex(),
                fingerprint: fp.clone(),
            },
            entries: zip.listed.clone(),
        };
        zip.seal(&manifest, key, (FORMAT, SIGNING_CONTEXT)).await?;
        let proofs = ledger_doc.proofs.len();
        let size = zip.finish().await?;

        // --- The package's digest, then the custody steps. ---
        let sha256 = file_sha256(out).await?;
        for f in &files {
            self.store
                .evidence_custody_step(
                    &f.id,
                    now,
                    &p.username,
                    "evidence.export",
                    &json!({
                        "request": id_str,
                        "agency": p.agency.to_string(),
                        "sha256": f.sha256,
                        "package_sha256": sha256,
                        "package_size": size,
                    }),
                )
                .await?;
        }
        self.store
            .audit(
                now,
                &p.username,
                "evidence.package",
                &id_str,
                &json!({"package_sha256": sha256, "package_size": size, "files": files.len(), "proofs": proofs, "key_id": key.key_id().to_string()}),
            )
            .await?;
        Ok(PackageExport {
            request_id: id_str,
            sha256,
            size,
            files: files.len(),
            proofs,
            node_id,
            key_id: key.key_id().to_string(),
            fingerprint: fp,
        })
    }

    /// [`Node::evidence_export`] into a new file in the evidence directory's `tmp/` (for the
    /// API, which streams it and removes it).
    pub async fn evidence_export_temp(
        &self,
        p: &Principal,
        id: RequestId,
        now: Timestamp,
    ) -> Result<(PackageExport, PathBuf)> {
        let path = self.export_temp_path("package")?;
        match self.evidence_export(p, id, &path, now).await {
            Ok(e) => Ok((e, path)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// A new path for a file written to be streamed and removed: in the evidence directory's
    /// `tmp/` (beside the files it holds), else the system's temporary directory.
    pub(super) fn export_temp_path(&self, stem: &str) -> Result<PathBuf> {
        let dir = if self.evidence_enabled() {
            self.evidence_tmp_dir()?
        } else {
            std::env::temp_dir()
        };
        Ok(dir.join(format!("{stem}-{}.zip", uuid::Uuid::now_v7())))
    }
}

struct CoverInput<'a> {
    request: &'a AssistanceRequest,
    node_id: &'a str,
    exported_at: &'a str,
    exporter: &'a Principal,
    files: &'a [(FileRecord, Vec<CustodyEntry>)],
    deleted: usize,
    ledger: &'a LedgerDoc,
    sth: &'a Sth,
    key_id: &'a str,
    fingerprint: &'a str,
    own_keys: &'a [liaison_core::record::OwnKey],
}

/// The human-readable cover page (`cover.txt`).
fn cover_page(c: &CoverInput<'_>) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!("LIAISON EVIDENCE PACKAGE ({FORMAT})"));
    line(String::new());
    line(format!("Request:        {}", c.request.id));
    line(format!("State:          {}", c.request.state));
    line(format!("Marking:        {}", c.request.draft.marking().tlp.as_str()));
    line(format!("Exported by:    {} at node {}", c.exporter.username, c.node_id));
    line(format!("Exported at:    {}", c.exported_at));
    line(String::new());
    line(format!("Evidence files: {}", c.files.len()));
    for (f, custody) in c.files {
        let name = f.record.get("file_name").and_then(Value::as_str).unwrap_or("");
        line(format!("  {}  ({} bytes)  {name}", f.path, f.size));
        line(format!("      SHA-256 {}", f.sha256));
        line(format!("      custody: {} audit entries", custody.len()));
    }
    if c.deleted > 0 {
        line(format!(
            "  {} more file(s) deleted under retention: listed in files.json, content not included",
            c.deleted
        ));
    }
    line(String::new());
    line(format!(
        "Ledger: {} proof(s) of messages about this request (signed receipts and Merkle inclusion proofs)",
        c.ledger.proofs.len()
    ));
    line(format!(
        "  against the tree head of {} signed {}: size {}, root {}",
        c.node_id, c.sth.timestamp, c.sth.tree_size, c.sth.root_hash
    ));
    line(String::new());
    line("CHECK OUT OF BAND: the manifest (manifest.json, covering every other entry) is signed by".into());
    line(format!("  node {}  key {}", c.node_id, c.key_id));
    line(format!("  SHA-256 {}", grouped(c.fingerprint)));
    line("Compare this fingerprint with one obtained from the node's operators by another channel".into());
    line("(the formal letter prints it). This page is inside the package: it proves nothing by itself.".into());
    if c.own_keys.len() > 1 {
        line("All signing keys of this node:".into());
        for k in c.own_keys {
            let fp = PublicKeyBytes::from_hex(&k.public_key)
                .map(|pk| fingerprint(&pk))
                .unwrap_or_default();
            let until = k.valid_until.map(|u| u.to_string()).unwrap_or_else(|| "-".into());
            line(format!(
                "  {}  SHA-256 {}  ({} .. {until})",
                k.key_id,
                grouped(&fp),
                k.valid_from
            ));
        }
    }
    line(String::new());
    line("Verify offline, on any machine:".into());
    line(format!(
        "  liaison evidence verify PACKAGE.zip --trust {}",
        c.fingerprint
    ));
    line("The format is documented in docs/evidence.md (Evidence package).".into());
    s
}
