//! Evidence transfer over federation (docs/federation.md §12, protocol version 5): a file on a
//! mirrored request goes to the peer serving the other agency on a **bulk channel** of its
//! own, so that a large file never delays the ordered envelope stream.
//!
//! - **Offer** (sender): the bulk worker finds files not yet offered, reads each once to hash
//!   its chunks, and commits the `bulk_out` row, the signed `evidence_manifest` (outbox, ordered
//!   stream) and the custody entry `evidence.offer` together.
//! - **Accept** (receiver): the manifest is checked against the rules and state here when its
//!   envelope is applied ([`plan_manifest`]); the incoming transfer is recorded `receiving` (with a
//!   fresh data key, wrapped like a file's) or `refused` (with the signed result telling the
//!   sender).
//! - **Push** (sender): once the manifest is delivered, chunks go by
//!   `PUT /federation/v1/evidence/{transfer}/chunks/{n}`, each signed ([`ChunkAuth`]), in order,
//!   from where the receiver's status says it stands (resume), read from sealed storage with
//!   one chunk read ahead.
//! - **Receive** (receiver, [`Federation::bulk_chunk`]): each chunk is checked against the
//!   manifest before anything is written and sealed into the normal evidence format (synced
//!   in the background every [`SYNC_EVERY`] bytes; the chunks on disk are checked again after
//!   a restart);
//!   after the last, the whole file's SHA-256 and size are checked, the content renamed into
//!   place (content-addressed) and, in one transaction, the file row, its custody entry
//!   `evidence.received` and the signed `evidence_result` to the sender are committed. Bytes
//!   that do not match are refused and recorded (`evidence.chunk_refused`); the third refusal
//!   refuses the transfer (`evidence.transfer_refused`, result `refused`).
//! - **Result** (sender, [`plan_result`]): the peer's signed result moves the offer to `stored`
//!   or `refused`, with the custody entry `evidence.delivered` or `evidence.refused`.
//!
//! Memory: the sender holds two chunks (one in flight, one read ahead), the receiver one per
//! request being served (at most [`RECEIVE_SLOTS`] at once), whatever the file's size.

use super::apply::{ApplyError, Planner};
use super::{FedError, Federation};
use crate::error::ServiceError;
use crate::evidence::{
    CHUNK, FRAME_HEADER, HEADER, SealReader, SealWriter, TAG, blob_bytes, blob_path, check_media_type, ensure_dir,
    sanitize_file_name, seal_frame, unwrap_key, wrap,
};
use chacha20poly1305::KeyInit;
use jiff::Timestamp;
use liaison_core::Side;
use liaison_core::lifecycle::State;
use liaison_core::record::{EvidenceFile, EvidenceKind};
use liaison_store::{BulkIn, BulkOut, Effect, EvidenceStorage, OutboxItem, StoreError};
use liaison_wire::bulk::{MAX_CHUNK, chunk_size_for};
use liaison_wire::{
    ChunkAuth, Envelope, EvidenceManifest, EvidenceResult, Hash256, MessageId, PayloadType, TransferOutcome,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The header carrying a chunk's [`ChunkAuth`].
pub const CHUNK_AUTH_HEADER: &str = "liaison-chunk-auth";
/// Largest chunk request body accepted.
pub const MAX_CHUNK_BODY: usize = MAX_CHUNK as usize;
/// Chunk requests a node serves at once (more are answered 503 `busy`); separate from the
/// envelope endpoints, which never wait for them.
pub const RECEIVE_SLOTS: usize = 4;
/// Refused chunks after which the whole transfer is refused.
pub const MAX_REFUSALS: i64 = 3;
/// Transfers a node pushes at once.
const SENDING: usize = 2;

/// The bulk channel's state in this process.
pub(crate) struct BulkState {
    /// Incoming transfers being written here: chunks written and the running digest.
    recv: Mutex<HashMap<String, Running>>,
    /// Incoming transfers a chunk is being written to now (in this process).
    busy: Mutex<std::collections::HashSet<String>>,
    slots: Arc<tokio::sync::Semaphore>,
    /// Wakes the bulk worker before its next poll (a manifest was delivered in this process).
    wake: tokio::sync::Notify,
}

impl Default for BulkState {
    fn default() -> Self {
        BulkState {
            recv: Default::default(),
            busy: Default::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(RECEIVE_SLOTS)),
            wake: tokio::sync::Notify::new(),
        }
    }
}

/// The digest of the chunks written so far (so that the last chunk does not re-read the file),
/// and the writeback of the partial file running behind the chunks.
struct Running {
    chunks: u64,
    hash: Sha256,
    sniff: Vec<u8>,
    /// Bytes appended since the last writeback began.
    unsynced: u64,
    /// The writeback (`fdatasync`) begun last, if it may still run.
    syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Bytes a receiver appends to a partial file before it begins a writeback in the background.
const SYNC_EVERY: u64 = 32 << 20;

impl Running {
    fn new(chunks: u64) -> Running {
        Running {
            chunks,
            hash: Sha256::new(),
            sniff: Vec::new(),
            unsynced: 0,
            syncing: None,
        }
    }

    /// Waits for the writeback begun last (if any).
    async fn synced(&mut self) -> Result<(), ServiceError> {
        if let Some(h) = self.syncing.take() {
            h.await.map_err(internal)?.map_err(internal)?;
        }
        Ok(())
    }

    /// After `n` bytes were appended to `path`: once [`SYNC_EVERY`] bytes are waiting, waits
    /// for the previous writeback (so at most two are on their way to the disk) and begins
    /// the next one, which runs while the next chunks arrive. Nothing waits for a chunk's own
    /// sync: after a restart, the chunks on disk are read back and checked against the
    /// manifest before the transfer goes on, and the file is synced whole before it is kept.
    async fn appended(&mut self, path: &Path, n: u64) -> Result<(), ServiceError> {
        self.unsynced += n;
        if self.unsynced < SYNC_EVERY {
            return Ok(());
        }
        self.synced().await?;
        self.unsynced = 0;
        let path = path.to_path_buf();
        self.syncing = Some(tokio::task::spawn_blocking(move || {
            std::fs::File::open(&path)?.sync_data()
        }));
        Ok(())
    }
}

/// An answer of the bulk endpoints: HTTP status and JSON body.
#[derive(Debug, Clone)]
pub struct BulkReply {
    pub status: u16,
    pub body: serde_json::Value,
}

fn reply(status: u16, body: serde_json::Value) -> BulkReply {
    BulkReply { status, body }
}

fn problem(status: u16, code: &str, detail: impl Into<String>) -> BulkReply {
    reply(status, json!({"code": code, "detail": detail.into()}))
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

fn perm(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Permanent(e.to_string())
}

fn outbox_item(recipient: &str, t: PayloadType, payload: serde_json::Value, now: Timestamp) -> OutboxItem {
    OutboxItem {
        message_id: MessageId::new().to_string(),
        recipient: recipient.to_string(),
        payload_type: t.as_str().to_string(),
        payload,
        created_at: now,
    }
}

fn side_of_kind_ok(kind: EvidenceKind, side: Side) -> bool {
    !matches!(
        (kind, side),
        (EvidenceKind::Supporting, Side::Requested) | (EvidenceKind::Answer, Side::Requesting)
    )
}

/// Storage frames per transfer chunk.
fn frames_per_chunk(m: &EvidenceManifest) -> u64 {
    (m.chunk_size / CHUNK as u64).max(1)
}

/// Storage frames of the whole file (an empty file: one empty frame).
fn total_frames(m: &EvidenceManifest) -> u64 {
    m.size.div_ceil(CHUNK as u64).max(1)
}

/// Sealed length of the whole file: full frames, then the last (shorter or empty) one.
fn sealed_total(m: &EvidenceManifest) -> u64 {
    let per = (FRAME_HEADER + TAG) as u64;
    let full = m.size / CHUNK as u64;
    let rest = m.size % CHUNK as u64;
    let mut t = HEADER as u64 + full * (per + CHUNK as u64);
    if rest > 0 || m.size == 0 {
        t += per + rest;
    }
    t
}

/// Sealed bytes of `frames` full frames after the header.
fn sealed_len(frames: u64) -> u64 {
    HEADER as u64 + frames * (FRAME_HEADER + CHUNK + TAG) as u64
}

// ---------------------------------------------------------------------------------------
// Receiver: the manifest and the result, applied with their envelopes
// ---------------------------------------------------------------------------------------

/// Checks an incoming `evidence_manifest` against the rules and state here and returns its
/// effect: the transfer recorded `receiving`, or `refused` with the signed result for the
/// sender. A payload that is not a manifest at all is not applied.
pub(crate) async fn plan_manifest(
    planner: &mut Planner,
    fed: &Federation,
    env: &Envelope,
) -> Result<Option<Effect>, ApplyError> {
    let node = &fed.inner.node;
    let sender = env.header.sender.to_string();
    let now = Timestamp::now();
    let m: EvidenceManifest =
        serde_json::from_value(env.payload.clone()).map_err(|e| perm(format!("evidence manifest: {e}")))?;
    let verdict = judge(planner, fed, &sender, &m).await?;
    let (state, detail, side, agency, storage, result) = match verdict {
        Ok((side, agency)) => {
            let keys = node.key_file().and_then(|k| k.load())?;
            let blob_id = uuid::Uuid::now_v7().to_string();
            let dk: [u8; 32] = rand::random();
            let storage = wrap(&keys[0], &blob_id, &dk)?;
            ("receiving", None, side, agency, storage, None)
        }
        Err((code, why)) => {
            tracing::warn!(node = %fed.node_id(), sender = %sender, transfer = %m.transfer_id, code, detail = %why, "evidence transfer refused");
            let result = EvidenceResult {
                transfer_id: m.transfer_id.clone(),
                request_id: m.request_id,
                outcome: TransferOutcome::Refused,
                sha256: None,
                size: None,
                file_id: None,
                code: Some(code.to_string()),
                detail: Some(why.clone()),
            };
            let payload = serde_json::to_value(result).map_err(perm)?;
            (
                "refused",
                Some(json!({"code": code, "detail": why}).to_string()),
                Side::Requesting,
                liaison_core::AgencyId::new(),
                EvidenceStorage {
                    blob_id: String::new(),
                    wrapped_key: String::new(),
                    kek_id: String::new(),
                },
                Some(outbox_item(&sender, PayloadType::EvidenceResult, payload, now)),
            )
        }
    };
    let transfer = BulkIn {
        sender: sender.clone(),
        transfer_id: m.transfer_id.clone(),
        message_id: env.header.message_id.to_string(),
        request_id: m.request_id,
        manifest: env.payload.to_string(),
        side,
        uploader_agency: agency,
        state: state.into(),
        storage,
        refusals: 0,
        file_id: None,
        detail,
        created_at: now,
        updated_at: now,
    };
    Ok(Some(Effect::BulkOffer {
        transfer: Box::new(transfer),
        result,
    }))
}

type Verdict = Result<(Side, liaison_core::AgencyId), (&'static str, String)>;

/// The rules an offered file must meet here, in order (docs/federation.md §12.3).
async fn judge(
    planner: &mut Planner,
    fed: &Federation,
    sender: &str,
    m: &EvidenceManifest,
) -> Result<Verdict, ApplyError> {
    let node = &fed.inner.node;
    if let Err(e) = m.check() {
        return Ok(Err(("bad_manifest", e.to_string())));
    }
    if let Some(t) = &m.media_type_claimed
        && check_media_type(t).is_err()
    {
        return Ok(Err((
            "bad_manifest",
            format!("media_type_claimed '{t}' is not a media type"),
        )));
    }
    if !node.evidence_enabled() {
        return Ok(Err(("evidence_disabled", "this node keeps no evidence files".into())));
    }
    let limit = node.evidence_config()?.limit();
    if m.size > limit {
        return Ok(Err((
            "too_large",
            format!(
                "{} bytes; this node accepts at most {limit} ([evidence] max_file_bytes)",
                m.size
            ),
        )));
    }
    let side = match planner.sender_side(node, sender, m.request_id).await {
        Ok(s) => s,
        Err(ApplyError::Permanent(e)) => return Ok(Err(("not_a_party", e))),
        Err(e) => return Err(e),
    };
    if !side_of_kind_ok(m.kind, side) {
        return Ok(Err((
            "wrong_side",
            format!(
                "a {} file cannot come from the {} side",
                m.kind,
                match side {
                    Side::Requesting => "requesting",
                    Side::Requested => "requested",
                }
            ),
        )));
    }
    let r = node
        .store
        .request(m.request_id, None)
        .await
        .map_err(ApplyError::from)?
        .request;
    if r.state == State::Draft {
        return Ok(Err(("not_a_party", format!("request {} is a draft here", r.id))));
    }
    let floor = r.draft.marking().tlp;
    if m.marking.tlp.stricter(floor) != m.marking.tlp {
        return Ok(Err((
            "marking_below_request",
            format!(
                "the file is {} but request {} is {}",
                m.marking.tlp.as_str(),
                r.id,
                floor.as_str()
            ),
        )));
    }
    let agency = match side {
        Side::Requesting => r.draft.requesting_agency,
        Side::Requested => r.draft.requested_agency,
    };
    Ok(Ok((side, agency)))
}

/// Checks an incoming `evidence_result`: it must come from the peer the file was offered to
/// and, when stored, name the file's digest and size. Its effect: the offer's end and custody.
pub(crate) async fn plan_result(fed: &Federation, env: &Envelope) -> Result<Option<Effect>, ApplyError> {
    let node = &fed.inner.node;
    let sender = env.header.sender.to_string();
    let p: EvidenceResult =
        serde_json::from_value(env.payload.clone()).map_err(|e| perm(format!("evidence result: {e}")))?;
    let outs = node.store.bulk_out_of(&p.transfer_id).await?;
    if !outs
        .iter()
        .any(|o| o.peer == sender && (o.state == "offered" || o.state == "sent"))
    {
        return Err(perm(format!(
            "file {} was not offered to {sender} (or its transfer has ended)",
            p.transfer_id
        )));
    }
    let (f, _) = node.store.evidence_file(&p.transfer_id).await?;
    let stored = p.outcome == TransferOutcome::Stored;
    if stored && (p.sha256.map(|h| h.to_hex()).as_deref() != Some(f.sha256.as_str()) || p.size != Some(f.size)) {
        return Err(perm(format!(
            "the result for file {} names another digest or size than the file's",
            p.transfer_id
        )));
    }
    let detail = json!({
        "peer": sender,
        "request": f.request_id.to_string(),
        "outcome": p.outcome,
        "sha256": p.sha256.map(|h| h.to_hex()),
        "size": p.size,
        "peer_file_id": p.file_id,
        "code": p.code,
        "detail": p.detail,
        "result_message_id": env.header.message_id.to_string(),
        "result_envelope_hash": env.header.hash().map_err(perm)?.to_hex(),
    });
    Ok(Some(Effect::BulkResult {
        file_id: p.transfer_id,
        peer: sender,
        stored,
        at: Timestamp::now(),
        detail,
    }))
}

// ---------------------------------------------------------------------------------------
// Receiver: the bulk endpoints
// ---------------------------------------------------------------------------------------

fn transfer_key(sender: &str, transfer: &str) -> String {
    format!("{sender}/{transfer}")
}

/// Marks an incoming transfer as being written by this process.
struct Busy<'a> {
    fed: &'a Federation,
    key: String,
}

impl<'a> Busy<'a> {
    fn claim(fed: &'a Federation, key: String) -> Option<Busy<'a>> {
        let mut b = fed.inner.bulk.busy.lock().ok()?;
        if !b.insert(key.clone()) {
            return None;
        }
        Some(Busy { fed, key })
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.fed.inner.bulk.busy.lock() {
            b.remove(&self.key);
        }
    }
}

impl Federation {
    fn partial_path(&self, b: &BulkIn) -> Result<PathBuf, ServiceError> {
        uuid::Uuid::parse_str(&b.storage.blob_id).map_err(|_| internal("transfer blob id is not a UUID"))?;
        Ok(self
            .inner
            .node
            .evidence_dir()?
            .join("tmp")
            .join(format!("in-{}", b.storage.blob_id)))
    }

    /// Chunks of an incoming transfer on disk (whole chunks only), with its frames
    /// and sealed length, from the partial file's length alone (no read: every frame before
    /// the last chunk's is a full one, and frames are written only after their chunk was
    /// verified, so only a crash's cut-off tail can be incomplete).
    async fn chunks_on_disk(&self, b: &BulkIn, m: &EvidenceManifest) -> Result<(u64, u64, u64), ServiceError> {
        let path = self.partial_path(b)?;
        let len = match tokio::fs::metadata(&path).await {
            Ok(md) => md.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0, 0)),
            Err(e) => return Err(internal(e)),
        };
        if len == sealed_total(m) {
            return Ok((m.chunk_count(), total_frames(m), len));
        }
        let frames = len.saturating_sub(HEADER as u64) / (FRAME_HEADER + CHUNK + TAG) as u64;
        let done = (frames / frames_per_chunk(m)).min(m.chunk_count().saturating_sub(1));
        Ok((done, frames, len))
    }

    /// `GET /federation/v1/evidence/{transfer}/status?sender=NODE`: where an incoming transfer
    /// stands (`next_chunk`: the first chunk not yet verified and written).
    pub async fn bulk_status(&self, sender: &str, transfer: &str) -> BulkReply {
        match self.bulk_status_inner(sender, transfer).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(node = %self.node_id(), error = %e, "bulk status failed");
                problem(503, "unavailable", "try again later")
            }
        }
    }

    /// An incoming transfer and its manifest, or the 404 answer naming it.
    async fn incoming(
        &self,
        sender: &str,
        transfer: &str,
    ) -> Result<Result<(BulkIn, EvidenceManifest), BulkReply>, ServiceError> {
        let b = match self.inner.node.store.bulk_in(sender, transfer).await {
            Ok(b) => b,
            Err(StoreError::NotFound(_)) => {
                return Ok(Err(problem(
                    404,
                    "unknown_transfer",
                    format!("no transfer {transfer} from {sender}"),
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let m: EvidenceManifest = serde_json::from_str(&b.manifest).map_err(internal)?;
        Ok(Ok((b, m)))
    }

    async fn bulk_status_inner(&self, sender: &str, transfer: &str) -> Result<BulkReply, ServiceError> {
        let (b, m) = match self.incoming(sender, transfer).await? {
            Ok(found) => found,
            Err(reply) => return Ok(reply),
        };
        let next = match b.state.as_str() {
            "receiving" => self
                .chunks_on_disk(&b, &m)
                .await?
                .0
                .min(m.chunk_count().saturating_sub(1)),
            _ => m.chunk_count(),
        };
        let detail: Option<serde_json::Value> = b.detail.as_deref().and_then(|d| serde_json::from_str(d).ok());
        Ok(reply(
            200,
            json!({"state": b.state, "next_chunk": next, "chunks": m.chunk_count(), "file_id": b.file_id, "refusals": b.refusals, "detail": detail}),
        ))
    }

    /// `PUT /federation/v1/evidence/{transfer}/chunks/{index}`: one chunk of an incoming
    /// transfer, authenticated by `auth` (the [`CHUNK_AUTH_HEADER`]).
    /// `digest`: the body's SHA-256 when the caller took it as the body arrived.
    pub async fn bulk_chunk(
        &self,
        transfer: &str,
        index: u64,
        auth: Option<&str>,
        body: bytes::Bytes,
        digest: Option<Hash256>,
    ) -> BulkReply {
        let Ok(_slot) = self.inner.bulk.slots.clone().try_acquire_owned() else {
            return problem(
                503,
                "busy",
                format!("{RECEIVE_SLOTS} chunks are being received; try again"),
            );
        };
        if body.len() > MAX_CHUNK_BODY {
            return problem(413, "too_large", format!("a chunk is at most {MAX_CHUNK_BODY} bytes"));
        }
        let digest = digest.unwrap_or_else(|| Hash256::digest(&body));
        match self.bulk_chunk_inner(transfer, index, auth, body, digest).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(node = %self.node_id(), transfer, index, error = %e, "receiving a chunk failed");
                problem(503, "unavailable", "try again later")
            }
        }
    }

    async fn bulk_chunk_inner(
        &self,
        transfer: &str,
        index: u64,
        auth: Option<&str>,
        body: bytes::Bytes,
        digest: Hash256,
    ) -> Result<BulkReply, ServiceError> {
        let now = Timestamp::now();
        let Some(auth) = auth else {
            return Ok(problem(
                401,
                "bad_auth",
                format!("the {CHUNK_AUTH_HEADER} header is missing"),
            ));
        };
        let auth = match ChunkAuth::from_header(auth) {
            Ok(a) => a,
            Err(e) => return Ok(problem(401, "bad_auth", e.to_string())),
        };
        let peers = self.peers().map_err(internal)?;
        let Some(peer) = peers.0.get(&auth.sender) else {
            return Ok(problem(
                401,
                "unknown_sender",
                format!("{} is not a pinned peer", auth.sender),
            ));
        };
        if let Err(e) = auth.verify(&peer.keys, &self.inner.node_id, transfer, index, &digest, now) {
            return Ok(problem(401, "bad_auth", e.to_string()));
        }
        let sender = auth.sender.to_string();
        let node = &self.inner.node;
        let (mut b, m) = match self.incoming(&sender, transfer).await? {
            Ok(found) => found,
            Err(reply) => return Ok(reply),
        };
        match b.state.as_str() {
            "refused" => {
                let detail: serde_json::Value = b
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or_default();
                return Ok(reply(410, json!({"code": "transfer_refused", "detail": detail})));
            }
            "stored" => {
                return Ok(reply(
                    200,
                    json!({"state": "stored", "file_id": b.file_id, "next_chunk": m.chunk_count()}),
                ));
            }
            _ => {}
        }
        let count = m.chunk_count();
        if index >= count {
            return Ok(problem(
                400,
                "bad_index",
                format!("chunk {index} of a file of {count} chunks"),
            ));
        }
        let key = transfer_key(&sender, transfer);
        let Some(_busy) = Busy::claim(self, key.clone()) else {
            return Ok(problem(503, "busy", "a chunk of this transfer is being received"));
        };
        let dir = node.evidence_dir()?;
        let tmp_dir = dir.join("tmp");
        ensure_dir(&dir)?;
        ensure_dir(&tmp_dir)?;
        let path = self.partial_path(&b)?;
        let keys = node.key_file()?.load()?;
        let dk = match unwrap_key(&keys, &b.storage) {
            Ok(k) => k,
            Err(ServiceError::Integrity(e)) => {
                // A key rotation removed the key the partial content was written under: it
                // cannot be read back, so it is received again from chunk 0 under a new key.
                tracing::warn!(node = %self.node_id(), sender = %sender, transfer, error = %e, "the partial content of a transfer cannot be opened any more; receiving it again from chunk 0");
                let dk: [u8; 32] = rand::random();
                let fresh = wrap(&keys[0], &b.storage.blob_id, &dk)?;
                node.store.bulk_in_rekey(&sender, transfer, &fresh).await?;
                let _ = std::fs::remove_file(&path);
                if let Ok(mut r) = self.inner.bulk.recv.lock() {
                    r.remove(&key);
                }
                b.storage = fresh;
                dk
            }
            Err(e) => return Err(e),
        };
        if !path.exists() {
            SealWriter::create(&path, &b.storage.blob_id, &dk).await?.sync().await?;
        }
        // Another instance writing the same transfer is kept out by the file's lock.
        let lock = std::fs::File::open(&path).map_err(internal)?;
        if lock.try_lock().is_err() {
            return Ok(problem(
                503,
                "busy",
                "a chunk of this transfer is being received (another instance)",
            ));
        }
        let (done, frames, sealed) = self.chunks_on_disk(&b, &m).await?;
        let fpc = frames_per_chunk(&m);
        if done < count {
            // Frames of a chunk cut short by a crash are not durable: cut them off.
            let keep = sealed_len(done * fpc);
            if sealed > keep || frames > done * fpc {
                let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(internal)?;
                f.set_len(keep).map_err(internal)?;
                f.sync_all().map_err(internal)?;
            }
        }
        if index > done || (index < done && done < count) {
            if index < done {
                return Ok(reply(
                    200,
                    json!({"state": "receiving", "next_chunk": done, "already": true}),
                ));
            }
            return Ok(reply(409, json!({"code": "out_of_order", "next_chunk": done})));
        }
        // The running digest of what is on disk (read back after a restart).
        let cached = self
            .inner
            .bulk
            .recv
            .lock()
            .map_err(|_| internal("bulk state poisoned"))?
            .remove(&key)
            .filter(|r| r.chunks == done);
        let mut run = match cached {
            Some(r) => r,
            None => match self.read_back(&path, &b, &m, &dk, done).await? {
                Ok(r) => r,
                Err(bad) => {
                    let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(internal)?;
                    f.set_len(sealed_len(bad * fpc)).map_err(internal)?;
                    f.sync_all().map_err(internal)?;
                    return Ok(reply(409, json!({"code": "out_of_order", "next_chunk": bad})));
                }
            },
        };
        if done < count {
            // `index == done`: the next chunk. Checked against the manifest before any byte
            // of it is written.
            let want_len = m.chunk_len(index);
            let want = m.chunks[index as usize];
            if body.len() as u64 != want_len || digest != want {
                let refuse = b.refusals + 1 >= MAX_REFUSALS;
                let chunk = json!({
                    "request": b.request_id.to_string(), "transfer_id": transfer, "sender": sender, "chunk": index,
                    "expected_sha256": want.to_hex(), "received_sha256": digest.to_hex(),
                    "expected_bytes": want_len, "received_bytes": body.len(),
                });
                tracing::warn!(node = %self.node_id(), sender = %sender, transfer, index, "chunk does not match the manifest: refused");
                let refusal = if refuse {
                    let why = json!({"code": "chunk_mismatch", "detail": format!("{MAX_REFUSALS} chunks did not match the manifest (last: chunk {index})"), "request": b.request_id.to_string()});
                    Some((
                        why,
                        self.result_refused(
                            &b,
                            &m,
                            "chunk_mismatch",
                            &format!("{MAX_REFUSALS} chunks did not match the manifest"),
                        )?,
                    ))
                } else {
                    None
                };
                node.store
                    .bulk_in_refused(&sender, transfer, &chunk, refusal, now)
                    .await?;
                if refuse {
                    let _ = std::fs::remove_file(&path);
                    self.wake();
                }
                self.keep(&key, run);
                return Ok(reply(
                    422,
                    json!({"code": "chunk_mismatch", "detail": format!("chunk {index} does not match the manifest (SHA-256 {})", digest.to_hex()), "refused": refuse, "next_chunk": done}),
                ));
            }
            let last_chunk = index + 1 == count;
            if last_chunk {
                run.synced().await?;
            }
            // Two blocking tasks side by side: one adds the chunk to the whole file's digest,
            // the other seals it into storage frames and appends them (synced if it is the last).
            let hashing = {
                let (body, mut h) = (body.clone(), run.hash.clone());
                tokio::task::spawn_blocking(move || {
                    h.update(&body);
                    h
                })
            };
            let writing = {
                let (body, path) = (body.clone(), path.clone());
                let cipher = chacha20poly1305::XChaCha20Poly1305::new((&dk).into());
                let blob = blob_bytes(&b.storage.blob_id)?;
                let first = done * fpc;
                tokio::task::spawn_blocking(move || -> Result<(), ServiceError> {
                    let pieces = body.len().div_ceil(CHUNK).max(1);
                    let mut f = std::fs::OpenOptions::new().append(true).open(&path).map_err(internal)?;
                    let mut out = Vec::with_capacity(FRAME_HEADER + CHUNK + TAG);
                    let mut write = |out: &mut Vec<u8>| {
                        let r = std::io::Write::write_all(&mut f, out).map_err(internal);
                        out.clear();
                        r
                    };
                    if body.is_empty() {
                        seal_frame(&cipher, &blob, first, &[], true, &mut out)?;
                        write(&mut out)?;
                    }
                    for (i, piece) in body.chunks(CHUNK).enumerate() {
                        let last = last_chunk && i + 1 == pieces;
                        seal_frame(&cipher, &blob, first + i as u64, piece, last, &mut out)?;
                        write(&mut out)?;
                    }
                    if last_chunk {
                        f.sync_data().map_err(internal)?;
                    }
                    Ok(())
                })
            };
            let (hashed, written) = (hashing.await, writing.await);
            written.map_err(internal)??;
            run.hash = hashed.map_err(internal)?;
            if !last_chunk {
                run.appended(&path, body.len() as u64).await?;
            }
            if run.sniff.len() < 8192 {
                let take = body.len().min(8192 - run.sniff.len());
                run.sniff.extend_from_slice(&body[..take]);
            }
            run.chunks = index + 1;
            if !last_chunk {
                self.keep(&key, run);
                return Ok(reply(200, json!({"state": "receiving", "next_chunk": index + 1})));
            }
        }
        drop(lock);
        self.finish_transfer(&b, &m, run, &path, now).await
    }

    fn keep(&self, key: &str, run: Running) {
        if let Ok(mut r) = self.inner.bulk.recv.lock() {
            r.insert(key.to_string(), run);
        }
    }

    /// Reads the first `done` chunks back (after a restart): their digest, checking each
    /// against the manifest. `Err(k)`: chunk `k` on disk does not match (cut off there).
    async fn read_back(
        &self,
        path: &Path,
        b: &BulkIn,
        m: &EvidenceManifest,
        dk: &[u8; 32],
        done: u64,
    ) -> Result<Result<Running, u64>, ServiceError> {
        let mut run = Running::new(done);
        if done == 0 {
            return Ok(Ok(run));
        }
        let mut r = SealReader::open(path, &b.storage.blob_id, dk).await?;
        for k in 0..done {
            let mut h = Sha256::new();
            let mut got = 0u64;
            let want = m.chunk_len(k);
            while got < want || (want == 0 && got == 0 && k + 1 == m.chunk_count()) {
                let Some((p, _)) = r.next_frame(false).await? else {
                    break;
                };
                h.update(&p);
                run.hash.update(&p);
                if run.sniff.len() < 8192 {
                    let take = p.len().min(8192 - run.sniff.len());
                    run.sniff.extend_from_slice(&p[..take]);
                }
                got += p.len() as u64;
                if want == 0 {
                    break;
                }
            }
            if got != want || Hash256(h.finalize().into()) != m.chunks[k as usize] {
                return Ok(Err(k));
            }
        }
        Ok(Ok(run))
    }

    fn result_refused(
        &self,
        b: &BulkIn,
        m: &EvidenceManifest,
        code: &str,
        detail: &str,
    ) -> Result<OutboxItem, ServiceError> {
        let p = EvidenceResult {
            transfer_id: b.transfer_id.clone(),
            request_id: m.request_id,
            outcome: TransferOutcome::Refused,
            sha256: None,
            size: None,
            file_id: None,
            code: Some(code.into()),
            detail: Some(detail.into()),
        };
        Ok(outbox_item(
            &b.sender,
            PayloadType::EvidenceResult,
            serde_json::to_value(p).map_err(internal)?,
            Timestamp::now(),
        ))
    }

    /// Every chunk is durable: checks the whole file, moves it into place and commits the file,
    /// its custody entry and the signed result.
    async fn finish_transfer(
        &self,
        b: &BulkIn,
        m: &EvidenceManifest,
        run: Running,
        path: &Path,
        now: Timestamp,
    ) -> Result<BulkReply, ServiceError> {
        let node = &self.inner.node;
        let sha = Hash256(run.hash.finalize().into());
        let size: u64 = (0..m.chunk_count()).map(|k| m.chunk_len(k)).sum();
        if sha != m.sha256 || size != m.size {
            let why = json!({"code": "file_mismatch", "detail": format!("the chunks make a file with SHA-256 {}, the manifest says {}", sha.to_hex(), m.sha256.to_hex()), "request": b.request_id.to_string()});
            let result = self.result_refused(
                b,
                m,
                "file_mismatch",
                "the whole file does not match the manifest's SHA-256",
            )?;
            let chunk = json!({"request": b.request_id.to_string(), "transfer_id": b.transfer_id, "sender": b.sender, "whole_file": true, "expected_sha256": m.sha256.to_hex(), "received_sha256": sha.to_hex()});
            node.store
                .bulk_in_refused(&b.sender, &b.transfer_id, &chunk, Some((why, result)), now)
                .await?;
            let _ = std::fs::remove_file(path);
            self.wake();
            return Ok(reply(422, json!({"code": "file_mismatch", "refused": true})));
        }
        let sha_hex = sha.to_hex();
        let dir = node.evidence_dir()?;
        let target = blob_path(&dir, &sha_hex);
        ensure_dir(target.parent().unwrap_or(&dir))?;
        let storage = match node.store.evidence_by_sha256(&sha_hex).await? {
            Some(existing) if target.exists() => {
                let _ = std::fs::remove_file(path);
                existing
            }
            _ => {
                std::fs::rename(path, &target).map_err(|e| internal(format!("storing {}: {e}", target.display())))?;
                if let Some(parent) = target.parent() {
                    std::fs::File::open(parent)
                        .and_then(|d| d.sync_all())
                        .map_err(internal)?;
                }
                b.storage.clone()
            }
        };
        let f = EvidenceFile {
            id: b.storage.blob_id.clone(),
            request_id: m.request_id,
            kind: m.kind,
            attached_to: m.attached_to.clone(),
            sha256: sha_hex.clone(),
            size,
            media_type_sniffed: infer::get(&run.sniff).map(|t| t.mime_type().to_string()),
            media_type_claimed: m.media_type_claimed.as_deref().and_then(|t| check_media_type(t).ok()),
            file_name: sanitize_file_name(&m.file_name),
            uploader: format!("{}:{}", b.sender, m.uploader),
            uploader_agency: b.uploader_agency,
            side: b.side,
            uploaded_at: now,
            marking: m.marking.clone(),
            legal_hold: false,
            deleted_at: None,
        };
        let transfer = json!({
            "from": b.sender,
            "transfer_id": b.transfer_id,
            "manifest_message_id": b.message_id,
            "chunks": m.chunk_count(),
            "chunk_size": m.chunk_size,
            "sender_uploaded_at": m.uploaded_at,
            "verified": "every chunk and the whole file against the signed manifest",
        });
        let mut detail = liaison_store::evidence_file_detail(&f);
        if let (Some(d), serde_json::Value::Object(t)) = (detail.as_object_mut(), transfer) {
            d.extend(t);
        }
        let result = EvidenceResult {
            transfer_id: b.transfer_id.clone(),
            request_id: m.request_id,
            outcome: TransferOutcome::Stored,
            sha256: Some(sha),
            size: Some(size),
            file_id: Some(f.id.clone()),
            code: None,
            detail: None,
        };
        let item = outbox_item(
            &b.sender,
            PayloadType::EvidenceResult,
            serde_json::to_value(result).map_err(internal)?,
            now,
        );
        match node
            .store
            .bulk_in_stored(&b.sender, &b.transfer_id, &f, &storage, &detail, item, now)
            .await
        {
            Ok(()) => node.record_chunk_hashes(&f, m.chunk_size, &m.chunks).await,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.wake();
        tracing::info!(node = %self.node_id(), sender = %b.sender, transfer = %b.transfer_id, size, "evidence file received, verified and stored");
        Ok(reply(
            200,
            json!({"state": "stored", "file_id": f.id, "next_chunk": m.chunk_count()}),
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Sender: offers and the push worker
// ---------------------------------------------------------------------------------------

impl Federation {
    /// Messages of these types were delivered: an `evidence_manifest` among them lets the bulk
    /// worker push its chunks now rather than at its next poll.
    pub(crate) fn delivered_types<'a>(&self, mut types: impl Iterator<Item = &'a str>) {
        if types.any(|t| t == PayloadType::EvidenceManifest.as_str()) {
            self.inner.bulk.wake.notify_one();
        }
    }
}

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

/// The bulk worker: offers new files, pushes the chunks of delivered offers (at most
/// [`SENDING`] at once), until aborted.
pub(crate) async fn run(fed: Federation) {
    let poll = env_ms("LIAISON_BULK_POLL_MS", 250);
    let mut tasks: HashMap<String, tokio::task::JoinHandle<Duration>> = HashMap::new();
    let mut parked: HashMap<String, Instant> = HashMap::new();
    loop {
        if let Err(e) = offer_new(&fed).await {
            tracing::warn!(node = %fed.node_id(), error = %e, "cannot offer evidence files to peers");
        }
        let mut ended = Vec::new();
        for (k, h) in &tasks {
            if h.is_finished() {
                ended.push(k.clone());
            }
        }
        for k in ended {
            if let Some(h) = tasks.remove(&k) {
                let wait = h.await.unwrap_or(Duration::from_secs(5));
                parked.insert(k, Instant::now() + wait);
            }
        }
        match fed.inner.node.store.bulk_out_active(64).await {
            Ok(rows) => {
                for o in rows {
                    let k = format!("{}/{}", o.file_id, o.peer);
                    if tasks.contains_key(&k) || tasks.len() >= SENDING {
                        continue;
                    }
                    if parked.get(&k).is_some_and(|t| *t > Instant::now()) {
                        continue;
                    }
                    let f = fed.clone();
                    tasks.insert(k, tokio::spawn(async move { push(f, o).await }));
                }
            }
            Err(e) => tracing::warn!(node = %fed.node_id(), error = %e, "cannot read the evidence transfers"),
        }
        parked.retain(|_, t| *t > Instant::now());
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = fed.inner.bulk.wake.notified() => {}
            _ = fed.inner.node.evidence.stored.notified() => {}
        }
    }
}

/// Offers files not yet offered whose request is mirrored to a peer that speaks version 5.
async fn offer_new(fed: &Federation) -> Result<(), FedError> {
    let node = &fed.inner.node;
    if !node.evidence_enabled() {
        return Ok(());
    }
    let now = Timestamp::now();
    // Every file not offered yet (drafts' files stay so and are passed over each time).
    let mut after = String::new();
    loop {
        let page = node.store.bulk_unoffered(&after, 100).await?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        offer_page(fed, page, now).await?;
    }
    Ok(())
}

async fn offer_page(
    fed: &Federation,
    page: Vec<(String, liaison_core::RequestId)>,
    now: Timestamp,
) -> Result<(), FedError> {
    let node = &fed.inner.node;
    for (file_id, request) in page {
        let r = node.store.request(request, None).await?.request;
        if r.state == State::Draft {
            continue; // offered once submitted
        }
        let Some(peer) = super::apply::counterpart_of(node, &r)
            .await
            .map_err(|e| FedError::Config(e.to_string()))?
        else {
            node.store.bulk_mark_local(&file_id, now).await?;
            continue;
        };
        let peers = fed.peers()?;
        let Some(pinned) = liaison_wire::NodeId::parse(&peer)
            .ok()
            .and_then(|id| peers.get(&id).cloned())
        else {
            continue;
        };
        if pinned.negotiated_version().unwrap_or(0) < 5 {
            continue; // waits until the peer's node speaks protocol version 5
        }
        match offer(fed, &file_id, &peer, now).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(node = %fed.node_id(), file = %file_id, peer = %peer, error = %e, "cannot offer an evidence file")
            }
        }
    }
    Ok(())
}

/// Reads the file once (hashing each transfer chunk) and commits the offer.
async fn offer(fed: &Federation, file_id: &str, peer: &str, now: Timestamp) -> Result<(), ServiceError> {
    let node = &fed.inner.node;
    let (f, s) = node.store.evidence_file(file_id).await?;
    if f.deleted_at.is_some() {
        return Ok(());
    }
    let chunk_size = chunk_size_for(f.size);
    let recorded = node
        .store
        .evidence_chunks(&f.sha256)
        .await?
        .filter(|(size, _)| *size == chunk_size)
        .and_then(|(_, hex)| hashes_from_hex(&hex))
        .filter(|c| c.len() as u64 == liaison_wire::bulk::chunk_count(f.size, chunk_size));
    let chunks = match recorded {
        // Taken when the content was stored; the push reads the content through its AEAD,
        // which fails on any byte that is not what was stored.
        Some(c) => c,
        None => {
            let c = hash_stored(node, &f, &s, chunk_size).await?;
            node.record_chunk_hashes(&f, chunk_size, &c).await;
            c
        }
    };
    let sha = Hash256::from_hex(&f.sha256).map_err(|e| internal(format!("evidence file {file_id}: {e}")))?;
    let m = EvidenceManifest {
        transfer_id: f.id.clone(),
        request_id: f.request_id,
        kind: f.kind,
        attached_to: f.attached_to.clone(),
        file_name: f.file_name.clone(),
        media_type_claimed: f.media_type_claimed.clone(),
        media_type_sniffed: f.media_type_sniffed.clone(),
        marking: f.marking.clone(),
        uploader: f.uploader.clone(),
        uploaded_at: f.uploaded_at,
        sha256: sha,
        size: f.size,
        chunk_size,
        chunks,
    };
    m.check().map_err(|e| internal(e.to_string()))?;
    let payload = serde_json::to_value(&m).map_err(internal)?;
    liaison_wire::jcs::check_protocol_numbers(&payload).map_err(internal)?;
    let item = outbox_item(peer, PayloadType::EvidenceManifest, payload, now);
    let detail = json!({
        "peer": peer, "request": f.request_id.to_string(), "transfer_id": f.id, "manifest_message_id": item.message_id,
        "sha256": f.sha256, "size": f.size, "chunk_size": chunk_size, "chunks": m.chunks.len(),
    });
    if node
        .store
        .bulk_offer(&f.id, peer, item, "federation", &detail, now)
        .await?
    {
        fed.wake();
        tracing::info!(node = %fed.node_id(), file = %f.id, peer, size = f.size, "evidence file offered (manifest queued)");
    }
    Ok(())
}

/// Reads a stored file once to hash its transfer chunks (a file stored before chunk hashes were
/// recorded, or of a size with other chunks), checking the whole against its record.
async fn hash_stored(
    node: &crate::Node,
    f: &EvidenceFile,
    s: &EvidenceStorage,
    chunk_size: u64,
) -> Result<Vec<Hash256>, ServiceError> {
    let keys = node.key_file()?.load()?;
    let dk = unwrap_key(&keys, s)?;
    let path = blob_path(&node.evidence_dir()?, &f.sha256);
    let mut reader = SealReader::open(&path, &s.blob_id, &dk).await?;
    let mut chunks = ChunkHasher::new(chunk_size);
    let mut whole = Sha256::new();
    let mut total = 0u64;
    while let Some(p) = reader.next_chunk().await? {
        chunks.update(&p);
        whole.update(&p);
        total += p.len() as u64;
    }
    if hex::encode(whole.finalize()) != f.sha256 || total != f.size {
        return Err(ServiceError::Integrity(format!(
            "evidence file {}: its content does not match its record; not offered",
            f.id
        )));
    }
    Ok(chunks.finish())
}

/// Cuts a byte stream into transfer chunks of a size and hashes each (SHA-256).
pub(crate) struct ChunkHasher {
    size: u64,
    in_chunk: u64,
    h: Sha256,
    chunks: Vec<Hash256>,
}

impl ChunkHasher {
    pub(crate) fn new(size: u64) -> ChunkHasher {
        ChunkHasher {
            size: size.max(1),
            in_chunk: 0,
            h: Sha256::new(),
            chunks: Vec::new(),
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = usize::try_from(self.size - self.in_chunk)
                .unwrap_or(usize::MAX)
                .min(data.len());
            self.h.update(&data[..take]);
            self.in_chunk += take as u64;
            data = &data[take..];
            if self.in_chunk == self.size {
                self.chunks.push(Hash256(std::mem::take(&mut self.h).finalize().into()));
                self.in_chunk = 0;
            }
        }
    }

    /// The hashes (an empty stream: one chunk, empty).
    pub(crate) fn finish(mut self) -> Vec<Hash256> {
        if self.in_chunk > 0 || self.chunks.is_empty() {
            self.chunks.push(Hash256(self.h.finalize().into()));
        }
        self.chunks
    }
}

/// Chunk hashes as the store keeps them: hex, one after another.
pub(crate) fn hashes_hex(h: &[Hash256]) -> String {
    h.iter().map(|h| h.to_hex()).collect()
}

fn hashes_from_hex(s: &str) -> Option<Vec<Hash256>> {
    if !s.len().is_multiple_of(64) {
        return None;
    }
    s.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).ok().and_then(|c| Hash256::from_hex(c).ok()))
        .collect()
}

/// Pushes one offer's chunks from where the receiver stands. Answers how long to wait before
/// this offer is looked at again.
async fn push(fed: Federation, o: BulkOut) -> Duration {
    match push_once(&fed, &o).await {
        Ok(wait) => wait,
        Err(e) => {
            tracing::warn!(node = %fed.node_id(), file = %o.file_id, peer = %o.peer, error = %e, "evidence transfer interrupted; will resume");
            env_ms("LIAISON_BULK_RETRY_MS", 1000)
        }
    }
}

fn fault_tamper(index: u64) -> bool {
    std::env::var("LIAISON_BULK_FAULT_TAMPER_CHUNK")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n == index)
}

/// Reads transfer chunks from sealed storage, starting at `from`, one ahead of the sender.
fn read_ahead(
    path: PathBuf,
    blob_id: String,
    dk: [u8; 32],
    m: Arc<EvidenceManifest>,
    from: u64,
) -> tokio::sync::mpsc::Receiver<Result<(u64, Vec<u8>), ServiceError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let fpc = frames_per_chunk(&m);
        let mut r = match SealReader::open_at(&path, &blob_id, &dk, from * fpc).await {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        for k in from..m.chunk_count() {
            let want = m.chunk_len(k) as usize;
            let mut buf = Vec::with_capacity(want);
            while buf.len() < want {
                match r.next_frame(true).await {
                    Ok(Some((p, _))) => buf.extend_from_slice(&p),
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            if buf.len() != want {
                let _ = tx
                    .send(Err(ServiceError::Integrity(format!(
                        "chunk {k} is cut short in storage"
                    ))))
                    .await;
                return;
            }
            if tx.send(Ok((k, buf))).await.is_err() {
                return;
            }
        }
    });
    rx
}

async fn push_once(fed: &Federation, o: &BulkOut) -> Result<Duration, FedError> {
    let node = &fed.inner.node;
    let cfg = |e: ServiceError| FedError::Config(e.to_string());
    let peers = fed.peers()?;
    let peer_id = liaison_wire::NodeId::parse(&o.peer).map_err(|e| FedError::Config(e.to_string()))?;
    let peer = peers.get(&peer_id).cloned().ok_or_else(|| FedError::Peer {
        peer: o.peer.clone(),
        message: "not a pinned peer".into(),
    })?;
    let mid = o.message_id.clone().unwrap_or_default();
    let row = node
        .store
        .fed_outbox_message(&mid)
        .await?
        .ok_or_else(|| FedError::Ledger(format!("the manifest {mid} is not in the outbox")))?;
    let m: EvidenceManifest =
        serde_json::from_str(&row.payload).map_err(|e| FedError::Ledger(format!("manifest {mid}: {e}")))?;
    let m = Arc::new(m);
    let (f, s) = node.store.evidence_file(&o.file_id).await?;
    if f.deleted_at.is_some() {
        return Ok(Duration::from_secs(3600));
    }
    let peer_err = |message: String| FedError::Peer {
        peer: o.peer.clone(),
        message,
    };
    let transport = &fed.inner.transport;
    let status_path = format!(
        "/federation/v1/evidence/{}/status?sender={}",
        m.transfer_id,
        fed.node_id()
    );
    let st = transport.get(&peer, &status_path).await.map_err(peer_err)?;
    let body: serde_json::Value = serde_json::from_slice(&st.body).unwrap_or_default();
    if st.status == 404 {
        // The manifest was received but not applied there (e.g. the request is unknown).
        node.store
            .bulk_out_step(
                &o.file_id,
                &o.peer,
                "offered",
                "refused",
                "federation",
                "evidence.refused",
                &json!({"peer": o.peer, "request": f.request_id.to_string(), "code": "unknown_transfer", "detail": body.get("detail")}),
                Timestamp::now(),
            )
            .await?;
        return Ok(Duration::from_secs(3600));
    }
    if !st.is_success() {
        return Err(peer_err(format!("status: {}: {body}", st.status)));
    }
    let state = body.get("state").and_then(|v| v.as_str()).unwrap_or("");
    match state {
        "refused" => return Ok(Duration::from_secs(60)), // its signed result follows in the ordered stream
        "stored" => {
            sent(fed, o, &f, &m).await?;
            return Ok(Duration::from_secs(60));
        }
        "receiving" => {}
        other => return Err(peer_err(format!("status: unknown state '{other}'"))),
    }
    let mut next = body.get("next_chunk").and_then(|v| v.as_u64()).unwrap_or(0);
    tracing::info!(node = %fed.node_id(), file = %o.file_id, peer = %o.peer, from_chunk = next, chunks = m.chunk_count(), "pushing evidence chunks");
    let keys = node.key_file().and_then(|k| k.load()).map_err(cfg)?;
    let dk = unwrap_key(&keys, &s).map_err(cfg)?;
    let path = blob_path(&node.evidence_dir().map_err(cfg)?, &f.sha256);
    let throttle = env_ms("LIAISON_BULK_THROTTLE_MS", 0);
    let chunk_path = |k: u64| format!("/federation/v1/evidence/{}/chunks/{k}", m.transfer_id);
    let mut rx = read_ahead(path.clone(), s.blob_id.clone(), dk, m.clone(), next);
    let mut busy = 0u32;
    loop {
        let Some(item) = rx.recv().await else {
            return Err(peer_err("the chunk reader stopped".into()));
        };
        let (k, mut bytes) = item.map_err(cfg)?;
        // Storage is authenticated frame by frame (AEAD bound to the file, the frame's index
        // and the last-frame flag), and the manifest's hashes were taken from it: the chunk
        // read is the chunk hashed, without hashing it again.
        let Some(&digest) = m.chunks.get(k as usize) else {
            return Err(FedError::Ledger(format!(
                "chunk {k} is not in the manifest of file {}",
                o.file_id
            )));
        };
        let digest = if fault_tamper(k) && !bytes.is_empty() {
            tracing::warn!(node = %fed.node_id(), chunk = k, "fault injection: sending a tampered chunk");
            bytes[0] ^= 0xff;
            Hash256(Sha256::digest(&bytes).into())
        } else {
            digest
        };
        if !throttle.is_zero() {
            tokio::time::sleep(throttle).await;
        }
        let auth = ChunkAuth::sign(
            &fed.inner.key,
            fed.node_id().clone(),
            peer_id.clone(),
            &m.transfer_id,
            k,
            digest,
        )
        .and_then(|a| a.to_header())
        .map_err(|e| FedError::Config(e.to_string()))?;
        let a = transport
            .put(&peer, &chunk_path(k), vec![(CHUNK_AUTH_HEADER, auth)], bytes)
            .await
            .map_err(peer_err)?;
        let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
        let want_next = body.get("next_chunk").and_then(|v| v.as_u64());
        match a.status {
            200 if body.get("state").and_then(|v| v.as_str()) == Some("stored") => {
                sent(fed, o, &f, &m).await?;
                return Ok(Duration::from_secs(60));
            }
            200 => {
                next = want_next.unwrap_or(k + 1);
                if next != k + 1 {
                    rx = read_ahead(path.clone(), s.blob_id.clone(), dk, m.clone(), next);
                }
            }
            409 => {
                next = want_next.unwrap_or(0);
                rx = read_ahead(path.clone(), s.blob_id.clone(), dk, m.clone(), next);
            }
            422 if body.get("refused").and_then(|v| v.as_bool()) == Some(true) => {
                tracing::warn!(node = %fed.node_id(), file = %o.file_id, peer = %o.peer, "the peer refused the transfer (chunks did not match)");
                return Ok(Duration::from_secs(60));
            }
            422 => {
                tracing::warn!(node = %fed.node_id(), file = %o.file_id, peer = %o.peer, chunk = k, "the peer refused a chunk; sending it again");
                tokio::time::sleep(env_ms("LIAISON_BULK_RETRY_MS", 1000)).await;
                rx = read_ahead(path.clone(), s.blob_id.clone(), dk, m.clone(), k);
            }
            410 => return Ok(Duration::from_secs(60)),
            503 if busy < 50 => {
                busy += 1;
                tokio::time::sleep(Duration::from_millis(100 * u64::from(busy.min(10)))).await;
                rx = read_ahead(path.clone(), s.blob_id.clone(), dk, m.clone(), k);
            }
            status => return Err(peer_err(format!("chunk {k}: {status}: {body}"))),
        }
    }
}

/// Every chunk accepted: the custody entry `evidence.sent` (once). The peer's signed result
/// may arrive first; applying it writes the entry then (`bulk_result_in`), and this finds the
/// transfer no longer `offered` and writes nothing.
async fn sent(fed: &Federation, o: &BulkOut, f: &EvidenceFile, m: &EvidenceManifest) -> Result<(), FedError> {
    // Test knob: a pause here lets the peer's result overtake this step.
    let pause = env_ms("LIAISON_BULK_SENT_DELAY_MS", 0);
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    let moved = fed
        .inner
        .node
        .store
        .bulk_out_step(
            &o.file_id,
            &o.peer,
            "offered",
            "sent",
            "federation",
            "evidence.sent",
            &json!({"peer": o.peer, "request": f.request_id.to_string(), "sha256": f.sha256, "size": f.size, "chunks": m.chunk_count()}),
            Timestamp::now(),
        )
        .await?;
    if moved {
        tracing::info!(node = %fed.node_id(), file = %o.file_id, peer = %o.peer, "evidence file sent (every chunk accepted)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_hashes_do_not_depend_on_how_the_bytes_arrive() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want: Vec<Hash256> = data.chunks(1024).map(Hash256::digest).collect();
        for piece in [1, 7, 1000, 1024, 1025, 4096, 10_000] {
            let mut h = ChunkHasher::new(1024);
            for p in data.chunks(piece) {
                h.update(p);
            }
            assert_eq!(h.finish(), want, "pieces of {piece}");
        }
        // An empty stream is one empty chunk (as the manifest of an empty file says).
        assert_eq!(ChunkHasher::new(1024).finish(), vec![Hash256::digest(b"")]);
    }

    #[test]
    fn recorded_hashes_read_back_and_bad_ones_are_ignored() {
        let h = vec![Hash256::digest(b"a"), Hash256::digest(b"b")];
        assert_eq!(hashes_from_hex(&hashes_hex(&h)), Some(h));
        assert_eq!(hashes_from_hex(""), Some(vec![]));
        assert_eq!(hashes_from_hex("abc"), None);
        assert_eq!(hashes_from_hex(&"G".repeat(64)), None);
    }
}
