//! Link recovery (docs/federation.md §7.2): a node restored from a backup has link counters
//! and a ledger behind what its peers already hold. Before it sends again it asks each peer
//! what that peer accepted from it (`POST /federation/v1/link-recovery`, a request signed by
//! the node's key): the last `link_seq` applied and the headers and receipts of the messages
//! after the node's own last receipt. It verifies them (its own signature on each header, the
//! peer's on each receipt), records them in its ledger, and moves its undelivered messages to
//! fresh numbers after what the peer applied, so no number is ever used for two messages.
//!
//! The request also carries the size and root of the node's ledger **as restored** (the
//! restore point, which `liaison restore` writes into the restore marker): a peer that holds a tree head of this node for a larger log keeps
//! the signed request as a restore notice, and its watcher then accepts the shorter log if it
//! extends what the peer saw up to the restore point (no fork alarm; the rollback is logged,
//! and the node's signature on it is kept). Declaring the ledger's size at the time of the
//! request instead would be wrong: the restored node records envelopes its peers send it
//! before its own links are recovered, so its log may already be longer than the restore
//! point, and a peer that had witnessed an old head between the two sizes would then check
//! the new log against a head from the discarded history and raise a false fork alarm. The other direction needs no request: a peer whose messages the restored node lost
//! is told so by the restored node's `out_of_order` answer and sends them again (see the
//! delivery worker).

use super::{FedError, Federation, lock_err};
use jiff::Timestamp;
use liaison_core::record::SthRecord;
use liaison_store::LinkRecovery;
use liaison_wire::types::ms_time;
use liaison_wire::{EnvelopeHeader, Hash256, KeyId, NodeId, Receipt, SignatureBytes};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The endpoint (added in protocol version N+1; see docs/federation.md §7.2).
pub const PATH: &str = "/federation/v1/link-recovery";
/// The file `liaison restore` leaves in the key directory: until every peer's link is
/// recovered, the node serves no tree head and recovers each link before sending.
pub const MARKER: &str = "restored-from-backup.json";
/// The signing-input prefix of a recovery request (same scheme as docs/federation.md §1.4).
const SIGNING_PREFIX: &[u8] = b"liaison-wire/1/link_recovery\n";
/// Most entries per answer; the requester asks again from the last one.
pub const MAX_ENTRIES: i64 = 256;
/// Largest request body.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Whether `liaison restore` left its marker in `key_dir`.
pub fn restore_pending(key_dir: &Path) -> bool {
    key_dir.join(MARKER).exists()
}

/// The ledger size as restored (`ledger_size` in the restore marker in `key_dir`, written by
/// `liaison restore` from the restored database, before anything was appended). A marker
/// without it (written by an older version) gives `current`, the best this node knows.
pub(crate) fn restore_point(key_dir: &Path, current: u64) -> Result<u64, FedError> {
    let marker = key_dir.join(MARKER);
    let text = std::fs::read_to_string(&marker).map_err(|e| FedError::io(&marker, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| FedError::Config(format!("{}: not JSON: {e}", marker.display())))?;
    let Some(size) = v.get("ledger_size") else {
        tracing::warn!(marker = %marker.display(), "the restore marker names no ledger size; the ledger's size now is declared as the restore point");
        return Ok(current);
    };
    let size = size.as_u64().ok_or_else(|| {
        FedError::Config(format!(
            "{}: ledger_size is not a whole number: {size}",
            marker.display()
        ))
    })?;
    if size > current {
        return Err(FedError::Config(format!(
            "{}: the restore point (ledger size {size}) is beyond the ledger ({current} leaves)",
            marker.display()
        )));
    }
    Ok(size)
}

/// The signed request. Strictly parsed: unknown members are refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    pub version: u32,
    /// The node asking (the sender of the link to recover).
    pub requester: NodeId,
    /// The node asked.
    pub peer: NodeId,
    /// Entries are returned for `link_seq` greater than this (the requester's last receipt).
    pub after_link_seq: u64,
    /// The last `link_seq` the requester applied on the other link (peer → requester): the
    /// peer sends again what it delivered after that (the requester lost it).
    pub applied_from_peer: u64,
    /// The requester's ledger now.
    pub log_size: u64,
    pub log_root: Hash256,
    #[serde(with = "ms_time")]
    pub created_at: Timestamp,
    pub key_id: KeyId,
    pub signature: SignatureBytes,
}

fn signing_input(req: &RecoveryRequest) -> Result<Vec<u8>, FedError> {
    let mut v = serde_json::to_value(req).map_err(|e| FedError::Config(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("signature");
    }
    let mut out = SIGNING_PREFIX.to_vec();
    out.extend_from_slice(&liaison_wire::canonicalize(&v)?);
    Ok(out)
}

/// One message the peer accepted from the requester.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveredEntry {
    /// The header of the accepted copy (signed by the requester).
    pub header: serde_json::Value,
    /// The receipt the peer issued for it (signed by the peer).
    pub receipt: serde_json::Value,
}

/// The answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryAnswer {
    pub version: u32,
    /// The last `link_seq` the peer applied from the requester (0: none).
    pub last_applied: u64,
    /// Accepted messages after `after_link_seq`, in link order, at most [`MAX_ENTRIES`].
    pub entries: Vec<RecoveredEntry>,
    /// More entries follow: ask again after the last one.
    pub more: bool,
}

/// Why a recovery request was refused.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
}

fn refuse(status: u16, code: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        detail: detail.into(),
    }
}

/// Answers a peer's recovery request (the endpoint's use case): verify it completely, then
/// read what was accepted from the requester; keep the request as a restore notice when the
/// requester's log is shorter than a head it signed before.
pub async fn answer(fed: &Federation, body: &[u8]) -> Result<Vec<u8>, Refusal> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(refuse(
            413,
            "malformed",
            format!("a recovery request is at most {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    let req: RecoveryRequest = liaison_wire::types::strict_from_slice("link recovery request", body)
        .map_err(|e| refuse(400, "malformed", e.to_string()))?;
    if req.version != 1 {
        return Err(refuse(400, "unsupported_version", format!("version {}", req.version)));
    }
    if &req.peer != fed.node_id() {
        return Err(refuse(
            421,
            "wrong_recipient",
            format!("this is {}, not {}", fed.node_id(), req.peer),
        ));
    }
    let mut peers = fed.peers().map_err(|e| refuse(503, "unavailable", e.to_string()))?;
    if peers.get(&req.requester).is_none() {
        let _ = fed.reload_peers().await;
        peers = fed.peers().map_err(|e| refuse(503, "unavailable", e.to_string()))?;
    }
    let Some(pinned) = peers.get(&req.requester) else {
        return Err(refuse(401, "unknown_sender", req.requester.to_string()));
    };
    let Some(key) = pinned.keys.iter().find(|k| k.key_id == req.key_id) else {
        return Err(refuse(401, "unknown_key", req.key_id.to_string()));
    };
    if !key.valid_at(req.created_at) {
        return Err(refuse(
            401,
            "key_not_valid_at",
            format!("{} at {}", req.key_id, req.created_at),
        ));
    }
    let input = signing_input(&req).map_err(|e| refuse(400, "malformed", e.to_string()))?;
    key.verify(&input, &req.signature)
        .map_err(|e| refuse(401, "bad_signature", e.to_string()))?;
    let now = Timestamp::now();
    let skew = now.duration_since(req.created_at).abs();
    if skew > fed.inner.settings.max_skew {
        return Err(refuse(
            400,
            "stale_or_future",
            format!("created_at is {skew:#} away from this node's clock"),
        ));
    }
    let store = &fed.inner.node.store;
    let unavailable = |e: liaison_store::StoreError| {
        tracing::error!(node = %fed.node_id(), error = %e, "link recovery failed");
        refuse(503, "unavailable", "try again later")
    };
    let requester = req.requester.as_str();
    // A shorter log than a head the requester signed before: a restore. The signed request is
    // what the watcher accepts the rollback on (and the evidence that the requester declared it).
    if let Some(head) = store.fed_latest_sth(requester, "peer").await.map_err(unavailable)?
        && head.tree_size > req.log_size as i64
    {
        let text = String::from_utf8_lossy(body).into_owned();
        tracing::warn!(node = %fed.node_id(), peer = %requester, witnessed_size = head.tree_size, restored_size = req.log_size,
            "peer reports a ledger shorter than the head it signed before: restored from a backup; its signed recovery request is kept as a restore notice");
        store
            .fed_put_sth(&SthRecord {
                node_id: requester.to_string(),
                role: "restore".into(),
                tree_size: req.log_size as i64,
                root_hash: req.log_root.to_hex(),
                timestamp: req.created_at,
                sth: text,
                recorded_at: now,
                note: Some(format!(
                    "signed link recovery request: log restored to size {} (a head of size {} was witnessed before)",
                    req.log_size, head.tree_size
                )),
            })
            .await
            .map_err(unavailable)?;
    }
    let last_applied = store.fed_last_applied(requester).await.map_err(unavailable)?;
    // The other direction: what we delivered to the requester after what it says it applied
    // is sent again, in order (it lost it).
    let resent = store
        .fed_requeue(
            requester,
            req.applied_from_peer.min(i64::MAX as u64 - 1) as i64 + 1,
            i64::MAX,
            now,
        )
        .await
        .map_err(unavailable)?;
    if resent > 0 {
        tracing::warn!(node = %fed.node_id(), peer = %requester, applied_from_peer = req.applied_from_peer, resent,
            "the peer lost messages it acknowledged before (restored from a backup); sending them again");
        fed.wake();
    }
    let rows = store
        .fed_inbox_from(
            requester,
            req.after_link_seq.min(i64::MAX as u64) as i64,
            MAX_ENTRIES + 1,
        )
        .await
        .map_err(unavailable)?;
    let more = rows.len() as i64 > MAX_ENTRIES;
    let entries = rows
        .into_iter()
        .take(MAX_ENTRIES as usize)
        .map(|r| {
            Ok(RecoveredEntry {
                header: serde_json::from_str(&r.header)?,
                receipt: serde_json::from_str(&r.receipt)?,
            })
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(|e| {
            tracing::error!(node = %fed.node_id(), error = %e, "stored inbox row is corrupt");
            refuse(503, "unavailable", "try again later")
        })?;
    tracing::info!(node = %fed.node_id(), peer = %requester, last_applied, after = req.after_link_seq, entries = entries.len(), "link recovery request answered");
    serde_json::to_vec(&RecoveryAnswer {
        version: 1,
        last_applied: last_applied.max(0) as u64,
        entries,
        more,
    })
    .map_err(|e| refuse(503, "unavailable", e.to_string()))
}

/// Recovers the link to `peer` (sender side): asks what the peer accepted from this node,
/// verifies it, records it and renumbers undelivered messages past it.
pub(crate) async fn recover_link(fed: &Federation, peer: &str) -> Result<LinkRecovery, FedError> {
    let perr = |m: String| FedError::Peer {
        peer: peer.to_string(),
        message: m,
    };
    let peers = fed.peers()?;
    let peer_id = NodeId::parse(peer).map_err(|e| perr(e.to_string()))?;
    let pinned = peers
        .get(&peer_id)
        .ok_or_else(|| perr("not a pinned peer".into()))?
        .clone();
    let store = &fed.inner.node.store;
    let mut after = store.fed_last_delivered(peer).await?.max(0) as u64;
    let applied_from_peer = store.fed_last_applied(peer).await?.max(0) as u64;
    let mut recovered = Vec::new();
    let mut last_applied;
    let now = Timestamp::now();
    // Bounded: at most 4,096 pages of 256 entries.
    let mut pages = 0;
    loop {
        pages += 1;
        if pages > 4096 {
            return Err(perr("link recovery: too many pages".into()));
        }
        let (size, root) = {
            fed.sync_log().await?;
            let log = fed.inner.log.lock().await;
            // The restore point when this process started from a restore; otherwise (a link
            // found reused without a marker) the ledger as it is.
            let size = fed.inner.restore_point.unwrap_or(log.len()).min(log.len());
            (size, log.root(size).map_err(|e| FedError::Ledger(e.to_string()))?)
        };
        let mut req = RecoveryRequest {
            version: 1,
            requester: fed.node_id().clone(),
            peer: peer_id.clone(),
            after_link_seq: after,
            applied_from_peer,
            log_size: size,
            log_root: root,
            created_at: ms_time::truncate(Timestamp::now()),
            key_id: fed.inner.key.key_id().clone(),
            signature: SignatureBytes([0u8; 64]),
        };
        req.signature = fed.inner.key.sign_bytes(&signing_input(&req)?);
        let body = serde_json::to_vec(&req).map_err(|e| perr(e.to_string()))?;
        let resp = fed.inner.transport.post(&pinned, PATH, body).await.map_err(perr)?;
        if !(200..300).contains(&resp.status) {
            return Err(perr(format!(
                "link recovery: {}: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
                    .chars()
                    .take(400)
                    .collect::<String>()
            )));
        }
        let ans: RecoveryAnswer =
            serde_json::from_slice(&resp.body).map_err(|e| perr(format!("link recovery answer: {e}")))?;
        last_applied = ans.last_applied;
        for e in ans.entries {
            let hb = serde_json::to_vec(&e.header).map_err(|e| perr(e.to_string()))?;
            let header: EnvelopeHeader = liaison_wire::types::strict_from_slice("envelope header", &hb)
                .map_err(|e| perr(format!("recovered header: {e}")))?;
            header.verify_signature(&fed.inner.own_keys)?;
            if &header.sender != fed.node_id() || header.recipient != peer_id || header.link_seq <= after {
                return Err(perr(format!(
                    "recovered header {} is not ours to {peer} after link_seq {after}",
                    header.message_id
                )));
            }
            let rb = serde_json::to_vec(&e.receipt).map_err(|e| perr(e.to_string()))?;
            let receipt = Receipt::from_slice(&rb)?;
            receipt.verify(&header, &peers)?;
            after = header.link_seq;
            recovered.push(super::worker::delivered_rows(
                &header.message_id.to_string(),
                &header,
                &receipt,
                now,
            )?);
        }
        if !ans.more {
            break;
        }
    }
    let out = store
        .fed_recover_link(peer, last_applied.min(i64::MAX as u64) as i64, &recovered, now)
        .await?;
    fed.sync_log().await?;
    if out.recorded > 0 || out.renumbered > 0 {
        tracing::warn!(node = %fed.node_id(), peer, peer_last_applied = last_applied, recorded = out.recorded,
            renumbered = out.renumbered, next_seq = out.next_seq,
            "link recovered: the peer held messages this node had lost (restored from a backup?); recorded them and renumbered undelivered messages");
    } else {
        tracing::info!(node = %fed.node_id(), peer, peer_last_applied = last_applied, next_seq = out.next_seq, "link recovery: nothing to recover");
    }
    Ok(out)
}

/// Marks `peer`'s link recovered; when none is left, removes the restore marker.
pub(crate) fn finished(fed: &Federation, peer: &str) -> Result<(), FedError> {
    let mut set = fed.inner.recovering.lock().map_err(lock_err)?;
    if set.remove(peer) && set.is_empty() {
        let marker = fed.inner.key_dir.join(MARKER);
        if let Err(e) = std::fs::remove_file(&marker)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(FedError::io(&marker, e));
        }
        tracing::info!(node = %fed.node_id(), "every link recovered after the restore; serving tree heads again");
    }
    Ok(())
}

/// Whether `peer`'s link waits for recovery after a restore.
pub(crate) fn pending(fed: &Federation, peer: &str) -> bool {
    fed.inner.recovering.lock().map(|s| s.contains(peer)).unwrap_or(false)
}

/// Peers whose links wait for recovery.
pub(crate) fn pending_peers(fed: &Federation) -> Vec<String> {
    fed.inner
        .recovering
        .lock()
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default()
}
