//! The outbox delivery worker: one drain task per peer with pending messages, sending in
//! link order, retrying with exponential back-off and jitter, and ending a message's delivery
//! only when a verified receipt is stored (with the `sent` and `receipt` ledger leaves).
//!
//! Several instances may share one PostgreSQL database: each link is delivered by exactly one
//! of them, the one holding the link's lease (`Store::try_lease("deliver:PEER")`, a session
//! advisory lock on a connection of its own). An instance keeps a lease once it has it; the
//! others try again every [`LEASE_RETRY`] and take over when the holder dies (its connection
//! ends and PostgreSQL releases the lock). On SQLite the lease is always granted.

use super::{FedError, Federation};
use crate::node::Node;
use jiff::Timestamp;
use liaison_core::record::{OutboxRow, ReceiptRow};
use liaison_store::LeafRecord;
use liaison_wire::{
    Envelope, EnvelopeDraft, EnvelopeHeader, LedgerEntry, MessageId, NodeId, PayloadType, PeerSet, PinnedPeer, Receipt,
};
use std::collections::HashMap;
use std::time::Duration;

/// Persists a pinned peer and its keys (the full key list, with validity windows).
/// Stores a pinned peer's current view (after it rotated a key): record and key history.
pub(crate) async fn store_peer(node: &Node, p: &PinnedPeer, descriptor: Option<&str>) -> Result<(), FedError> {
    let existing = super::peers::stored_peer(node, p.node_id.as_str())
        .await
        .map_err(|e| FedError::Config(e.to_string()))?;
    let descriptor = match (descriptor, &existing) {
        (Some(d), _) => d.to_string(),
        (None, Some(e)) => e.descriptor.clone(),
        (None, None) => String::new(),
    };
    let added_at = existing.map_or_else(Timestamp::now, |e| e.added_at);
    let (rec, keys) = super::peers::peer_rows(p, descriptor, added_at).map_err(|e| FedError::Config(e.to_string()))?;
    node.store.fed_put_peer(&rec, &keys).await?;
    Ok(())
}

/// How often an instance tries to take the lease of a link another instance delivers, and
/// checks that the leases it holds are still alive.
pub const LEASE_RETRY: Duration = Duration::from_secs(1);

/// The lease name of the delivery worker of the link to `peer`.
fn lease_name(peer: &str) -> String {
    format!("deliver:{peer}")
}

pub(crate) async fn run(fed: Federation) {
    let mut drains: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut leases: HashMap<String, liaison_store::locks::Lease> = HashMap::new();
    let mut lease_tried: HashMap<String, std::time::Instant> = HashMap::new();
    let mut leases_checked = std::time::Instant::now();
    let mut outbox = fed.inner.node.store.fed_outbox_watch();
    let mut last_recovery = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        if leases_checked.elapsed() >= LEASE_RETRY {
            leases_checked = std::time::Instant::now();
            let mut lost = Vec::new();
            for (peer, lease) in leases.iter_mut() {
                if !lease.alive().await {
                    lost.push(peer.clone());
                }
            }
            for peer in lost {
                tracing::warn!(node = %fed.node_id(), peer = %peer, "lost the delivery lease of this link (database connection ended); stopping its delivery here");
                leases.remove(&peer);
                if let Some(h) = drains.remove(&peer) {
                    h.abort();
                }
            }
        }
        if last_recovery.elapsed() > Duration::from_secs(2) {
            last_recovery = std::time::Instant::now();
            if let Err(e) = fed.reload_peers().await {
                tracing::warn!(node = %fed.node_id(), error = %e, "cannot reload peers");
            }
            if let Err(e) = fed.receive_pending().await {
                tracing::warn!(node = %fed.node_id(), error = %e, "cannot check incoming requests");
            }
            if let Err(e) = fed.inner.node.intel_apply_remote_answers().await {
                tracing::warn!(node = %fed.node_id(), error = %e, "cannot apply partners' clean-up answers");
            }
        }
        match fed.inner.node.store.fed_pending_recipients().await {
            Ok(mut peers) => {
                // Links waiting for recovery after a restore are worked on even when empty.
                let pinned = fed.peers().map(|s| s.0).unwrap_or_default();
                for p in super::recovery::pending_peers(&fed) {
                    if !pinned.keys().any(|k| k.as_str() == p) {
                        // Unpinned since the restore: nothing to recover with it.
                        if let Err(e) = super::recovery::finished(&fed, &p) {
                            tracing::warn!(node = %fed.node_id(), peer = %p, error = %e, "cannot clear the restore marker");
                        }
                    } else if !peers.contains(&p) {
                        peers.push(p);
                    }
                }
                drains.retain(|_, h| !h.is_finished());
                for p in peers {
                    if drains.contains_key(&p) {
                        continue;
                    }
                    if !leases.contains_key(&p) {
                        if lease_tried.get(&p).is_some_and(|t| t.elapsed() < LEASE_RETRY) {
                            continue;
                        }
                        lease_tried.insert(p.clone(), std::time::Instant::now());
                        match fed.inner.node.store.try_lease(&lease_name(&p)).await {
                            Ok(Some(l)) => {
                                tracing::info!(node = %fed.node_id(), peer = %p, "this instance delivers the link");
                                leases.insert(p.clone(), l);
                            }
                            Ok(None) => continue, // another instance delivers this link
                            Err(e) => {
                                tracing::warn!(node = %fed.node_id(), peer = %p, error = %e, "cannot take the delivery lease");
                                continue;
                            }
                        }
                    }
                    let f = fed.clone();
                    let peer = p.clone();
                    drains.insert(p, tokio::spawn(async move { drain(f, peer).await }));
                }
            }
            Err(e) => tracing::warn!(node = %fed.node_id(), error = %e, "cannot read the outbox"),
        }
        // Rows written by this process wake the worker at once (after their transaction
        // ended); rows written by other processes (the CLI) are found by the poll.
        tokio::select! {
            _ = fed.inner.wake.notified() => {}
            changed = outbox.changed() => {
                if changed.is_ok() {
                    fed.inner.node.store.fed_write_barrier().await;
                }
            }
            _ = tokio::time::sleep(fed.inner.settings.poll) => {}
        }
    }
}

fn backoff(fed: &Federation, attempts: i64) -> Duration {
    let s = &fed.inner.settings;
    let exp = s
        .retry_base
        .saturating_mul(1u32 << attempts.clamp(0, 16) as u32)
        .min(s.retry_max);
    let jitter: f64 = rand::random_range(0.5..1.5);
    exp.mul_f64(jitter).min(s.retry_max)
}

/// How many of `rows` (from the front) go into the next request: at most the batch size,
/// at most [`MAX_BODY`] bytes of payload, and a key rotation ends a batch (the receiver
/// skips what follows it, see docs/federation.md §7.1).
fn batch_len(rows: &[OutboxRow], max: usize) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for row in rows.iter().take(max.max(1)) {
        bytes += row.payload.len() + 1024;
        if n > 0 && bytes > MAX_BODY {
            break;
        }
        n += 1;
        if row.payload_type == PayloadType::KeyRotation.as_str() {
            break;
        }
    }
    n.max(1)
}

/// The rejection code of an envelope whose `link_seq` the receiver already applied for another
/// message (docs/federation.md §3.3).
pub const SEQ_REUSED: &str = "link_seq_reused";

/// The request body a sender keeps a batch under (the receiver accepts up to 4 MiB).
const MAX_BODY: usize = 1 << 20;

/// Sends everything pending for `peer`, in order, until the outbox is empty or an attempt fails.
/// After a restore from backup, recovers the link first (see [`super::recovery`]).
async fn drain(fed: Federation, peer: String) {
    let mut attempts = 0i64;
    // Recoveries in a row without a delivery in between (bounded, then back off).
    let mut recoveries = 0u32;
    if super::recovery::pending(&fed, &peer) {
        match super::recovery::recover_link(&fed, &peer).await {
            Ok(_) => {
                if let Err(e) = super::recovery::finished(&fed, &peer) {
                    tracing::warn!(node = %fed.node_id(), peer = %peer, error = %e, "cannot clear the restore marker");
                }
            }
            Err(e) => {
                let wait = backoff(&fed, 3);
                tracing::warn!(node = %fed.node_id(), peer = %peer, error = %e, retry_in_ms = wait.as_millis() as u64, "link recovery after the restore failed; will retry");
                tokio::time::sleep(wait).await;
                return;
            }
        }
    }
    loop {
        let rows = match fed.inner.node.store.fed_outbox_pending(&peer, 512).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(node = %fed.node_id(), error = %e, "cannot read the outbox");
                return;
            }
        };
        if rows.is_empty() {
            return;
        }
        let now = Timestamp::now();
        if let Some(first) = rows.first()
            && first.next_attempt > now
        {
            let wait = now.duration_until(first.next_attempt).unsigned_abs();
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
        }
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            let single = fed.inner.single_only.lock().map(|s| s.contains(&peer)).unwrap_or(true);
            let n = if single {
                1
            } else {
                batch_len(rest, fed.inner.settings.batch)
            };
            let (done, failure) = if n == 1 && single {
                match deliver(&fed, &rest[0]).await {
                    Ok(()) => (1, None),
                    Err(e) => (0, Some(e)),
                }
            } else {
                deliver_batch(&fed, &rest[..n]).await
            };
            rest = &rest[done.min(rest.len())..];
            if done > 0 {
                attempts = 0;
                recoveries = 0;
            }
            let Some(e) = failure else {
                continue;
            };
            let Some(row) = rest.first() else {
                break;
            };
            if recoveries < 3 && repair(&fed, &peer, row, &e).await {
                // Counters fixed: read the outbox again and send at once.
                recoveries += 1;
                break;
            }
            attempts = attempts.max(row.attempts) + 1;
            let wait = backoff(&fed, attempts - 1);
            tracing::warn!(node = %fed.node_id(), peer = %peer, message_id = %row.message_id, link_seq = row.link_seq,
                attempt = attempts, retry_in_ms = wait.as_millis() as u64, error = %e, "delivery failed; will retry");
            let next = Timestamp::now()
                .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or_default())
                .unwrap_or_else(|_| Timestamp::now());
            if let Err(e) = fed
                .inner
                .node
                .store
                .fed_outbox_failed(&row.message_id, &e.to_string(), next)
                .await
            {
                tracing::warn!(node = %fed.node_id(), error = %e, "cannot record a failed attempt");
            }
            tokio::time::sleep(wait).await;
            recoveries = 0;
            break;
        }
    }
}

/// Repairs a link after an answer that says the two sides' counters disagree. Returns true
/// if something was repaired (then the outbox is read again).
/// - `link_seq_reused`: this node reused a number the peer applied for another message (it was
///   restored from a backup): recover the link (learn what the peer holds, renumber).
/// - `out_of_order` with an expected number below messages this node holds receipts for: the
///   peer lost them (it was restored from a backup): send them again.
async fn repair(fed: &Federation, peer: &str, first: &OutboxRow, e: &FedError) -> bool {
    match e {
        FedError::SeqReused { link_seq, .. } => {
            tracing::error!(node = %fed.node_id(), peer, link_seq, message_id = %first.message_id,
                "LINK SEQUENCE REUSED: the peer applied this link number for another message of ours (this node was restored from a backup?); recovering the link");
            match super::recovery::recover_link(fed, peer).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(node = %fed.node_id(), peer, error = %e, "link recovery failed; will retry");
                    false
                }
            }
        }
        FedError::OutOfOrder { expected, .. } if (*expected as i64) < first.link_seq => {
            match fed
                .inner
                .node
                .store
                .fed_requeue(peer, *expected as i64, first.link_seq, Timestamp::now())
                .await
            {
                Ok(0) => false,
                Ok(n) => {
                    tracing::warn!(node = %fed.node_id(), peer, expected, resent = n,
                        "the peer expects messages it acknowledged before (restored from a backup?); sending them again");
                    true
                }
                Err(e) => {
                    tracing::warn!(node = %fed.node_id(), peer, error = %e, "cannot requeue messages for the peer");
                    false
                }
            }
        }
        _ => false,
    }
}

/// Signs a fresh copy of an outbox message (`created_at` = now).
fn sign_row(fed: &Federation, row: &OutboxRow, recipient: &NodeId, peer: &PinnedPeer) -> Result<Envelope, FedError> {
    let version = peer.negotiated_version().map_err(|e| FedError::Peer {
        peer: recipient.to_string(),
        message: e.to_string(),
    })?;
    let mut payload: serde_json::Value =
        serde_json::from_str(&row.payload).map_err(|e| FedError::Ledger(format!("outbox payload: {e}")))?;
    let payload_type: PayloadType = serde_json::from_value(serde_json::Value::String(row.payload_type.clone()))
        .map_err(|_| FedError::Ledger(format!("outbox payload type {}", row.payload_type)))?;
    // What an older peer cannot read and would not enforce anyway is left out for it.
    liaison_wire::fit_payload(payload_type, &mut payload, version);
    let message_id: MessageId = row
        .message_id
        .parse()
        .map_err(|e| FedError::Ledger(format!("outbox message id: {e}")))?;
    Ok(EnvelopeDraft {
        message_id,
        sender: fed.inner.node_id.clone(),
        recipient: recipient.clone(),
        link_seq: row.link_seq as u64,
        created_at: Timestamp::now(),
        payload_type,
        payload,
    }
    .sign_version(&fed.inner.key, version)?)
}

/// Checks the header of the copy a duplicate's receipt acknowledges: signed by this node,
/// same message, link position and recipient as what we sent.
fn accepted_copy(fed: &Federation, sent: &EnvelopeHeader, header: EnvelopeHeader) -> Result<EnvelopeHeader, FedError> {
    header.verify_signature(&fed.inner.own_keys)?;
    if header.message_id != sent.message_id && header.link_seq == sent.link_seq && header.recipient == sent.recipient {
        // A peer without the `link_seq_reused` code answers a reused number as a duplicate
        // of the message it applied there.
        return Err(FedError::SeqReused {
            peer: sent.recipient.to_string(),
            link_seq: sent.link_seq,
        });
    }
    if header.message_id != sent.message_id || header.link_seq != sent.link_seq || header.recipient != sent.recipient {
        return Err(FedError::Peer {
            peer: sent.recipient.to_string(),
            message: "the accepted header is for another message".into(),
        });
    }
    Ok(header)
}

/// What the sender stores for a delivered message: the receipt row and the `sent` and
/// `receipt` leaves.
pub(crate) fn delivered_rows(
    message_id: &str,
    acked: &EnvelopeHeader,
    receipt: &Receipt,
    now: Timestamp,
) -> Result<(ReceiptRow, LeafRecord, LeafRecord), FedError> {
    let text = |b: Vec<u8>| String::from_utf8(b).map_err(|e| FedError::Ledger(e.to_string()));
    let sent = LedgerEntry::Sent {
        envelope: acked.clone(),
    };
    let rcpt = LedgerEntry::Receipt {
        receipt: receipt.clone(),
    };
    Ok((
        ReceiptRow {
            message_id: message_id.to_string(),
            envelope_hash: acked.hash()?.to_hex(),
            header: text(liaison_wire::to_canonical(acked)?)?,
            receipt: text(liaison_wire::to_canonical(receipt)?)?,
            stored_at: now,
        },
        LeafRecord {
            kind: "sent".into(),
            message_id: message_id.to_string(),
            leaf: text(sent.leaf_bytes()?)?,
            leaf_hash: sent.leaf_hash()?.to_hex(),
        },
        LeafRecord {
            kind: "receipt".into(),
            message_id: message_id.to_string(),
            leaf: text(rcpt.leaf_bytes()?)?,
            leaf_hash: rcpt.leaf_hash()?.to_hex(),
        },
    ))
}

/// Fault injection for tests: behave as if the answer was lost after the peer committed.
fn drop_answer() -> bool {
    std::env::var("LIAISON_FED_FAULT_DROP_RECEIPT_PCT")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|pct| rand::random_range(0..100) < pct)
}

/// One attempt for consecutive messages of one link: sign fresh copies, POST them as one
/// batch, verify each result in order and store the receipts of the delivered prefix in
/// one transaction. Returns how many (from the front) were delivered and, if fewer than all,
/// why the next one was not.
/// A peer's refusal in words: the title and detail of its problem+json answer, else its body.
fn refusal(status: u16, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| Some(format!("{}: {}", v.get("title")?.as_str()?, v.get("detail")?.as_str()?)))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    format!("{status}: {detail}")
}

fn peer_error(peer: &str, message: String) -> FedError {
    FedError::Peer {
        peer: peer.to_string(),
        message,
    }
}

/// The pinned peer an outbox row is addressed to.
fn pinned(peers: &PeerSet, recipient: &str) -> Result<(NodeId, PinnedPeer), FedError> {
    let id = NodeId::parse(recipient).map_err(|e| peer_error(recipient, e.to_string()))?;
    let peer = peers
        .get(&id)
        .ok_or_else(|| peer_error(recipient, "not a pinned peer (liaison peer add)".into()))?
        .clone();
    Ok((id, peer))
}

/// POSTs a JSON body to a pinned peer through the node's transport.
async fn post(
    fed: &Federation,
    peer: &PinnedPeer,
    recipient: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<super::transport::Answer, FedError> {
    fed.inner
        .transport
        .post(peer, path, body)
        .await
        .map_err(|e| peer_error(recipient, e))
}

async fn deliver_batch(fed: &Federation, rows: &[OutboxRow]) -> (usize, Option<FedError>) {
    match try_deliver_batch(fed, rows).await {
        Ok(r) => r,
        Err(e) => (0, Some(e)),
    }
}

async fn try_deliver_batch(fed: &Federation, rows: &[OutboxRow]) -> Result<(usize, Option<FedError>), FedError> {
    let Some(first) = rows.first() else {
        return Ok((0, None));
    };
    let peer_err = |m: String| peer_error(&first.recipient, m);
    let peers = fed.peers()?;
    let (recipient, peer) = pinned(&peers, &first.recipient)?;
    let mut envs = Vec::with_capacity(rows.len());
    let mut body = b"{\"envelopes\":[".to_vec();
    for (i, row) in rows.iter().enumerate() {
        let env = sign_row(fed, row, &recipient, &peer)?;
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&env.to_bytes()?);
        envs.push(env);
    }
    body.extend_from_slice(b"]}");
    let resp = post(fed, &peer, &first.recipient, "/federation/v1/envelope-batches", body).await?;
    let (status, bytes) = (resp.status, resp.body);
    if status == 404 || status == 405 {
        // A node without the batch endpoint: one envelope per request from now on.
        tracing::info!(node = %fed.node_id(), peer = %first.recipient, "peer has no batch endpoint; sending one envelope at a time");
        if let Ok(mut s) = fed.inner.single_only.lock() {
            s.insert(first.recipient.clone());
        }
        return Ok(match deliver(fed, first).await {
            Ok(()) => (1, None),
            Err(e) => (0, Some(e)),
        });
    }
    if !(200..300).contains(&status) {
        return Err(peer_err(refusal(status, &bytes)));
    }
    if drop_answer() {
        return Err(peer_err("fault injection: receipts dropped".into()));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        results: Vec<serde_json::Value>,
    }
    let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| peer_err(format!("batch answer: {e}")))?;
    if answer.results.len() != rows.len() {
        return Err(peer_err(format!(
            "batch answer has {} results for {} envelopes",
            answer.results.len(),
            rows.len()
        )));
    }
    let now = Timestamp::now();
    let mut delivered = Vec::with_capacity(rows.len());
    let mut failure = None;
    for ((row, env), result) in rows.iter().zip(&envs).zip(answer.results) {
        match verify_result(fed, &peers, env, result) {
            Ok((acked, receipt)) => delivered.push(delivered_rows(&row.message_id, &acked, &receipt, now)?),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let n = delivered.len();
    if n > 0 {
        let stored = fed.inner.node.store.fed_delivered_batch(&delivered, now).await?;
        if stored > 0 {
            fed.sync_log().await?;
        }
        fed.delivered_types(rows[..n].iter().map(|r| r.payload_type.as_str()));
        tracing::debug!(node = %fed.node_id(), peer = %first.recipient, from = first.link_seq, delivered = n, "batch delivered; receipts stored");
    }
    Ok((n, failure))
}

/// Checks one result of a batch answer against the envelope sent at its position; returns
/// the header the receipt acknowledges and the verified receipt.
fn verify_result(
    fed: &Federation,
    peers: &liaison_wire::PeerSet,
    env: &Envelope,
    result: serde_json::Value,
) -> Result<(EnvelopeHeader, Receipt), FedError> {
    let peer_err = |m: String| FedError::Peer {
        peer: env.header.recipient.to_string(),
        message: m,
    };
    let field = |name: &str| result.get(name).cloned().unwrap_or(serde_json::Value::Null);
    let status = result.get("status").and_then(|s| s.as_str()).unwrap_or("");
    let receipt_of = |v: serde_json::Value| -> Result<Receipt, FedError> {
        let bytes = serde_json::to_vec(&v).map_err(|e| peer_err(e.to_string()))?;
        Ok(Receipt::from_slice(&bytes)?)
    };
    let (acked, receipt) = match status {
        "accepted" => (env.header.clone(), receipt_of(field("receipt"))?),
        "duplicate" => {
            let bytes = serde_json::to_vec(&field("accepted_envelope")).map_err(|e| peer_err(e.to_string()))?;
            let header: EnvelopeHeader = liaison_wire::types::strict_from_slice("envelope header", &bytes)
                .map_err(|e| peer_err(format!("accepted header: {e}")))?;
            (accepted_copy(fed, &env.header, header)?, receipt_of(field("receipt"))?)
        }
        "rejected" if result.get("code").and_then(|v| v.as_str()) == Some(SEQ_REUSED) => {
            return Err(FedError::SeqReused {
                peer: env.header.recipient.to_string(),
                link_seq: env.header.link_seq,
            });
        }
        "rejected" => {
            return Err(peer_err(format!(
                "rejected: {}: {}",
                result.get("code").and_then(|v| v.as_str()).unwrap_or("?"),
                result.get("detail").and_then(|v| v.as_str()).unwrap_or("")
            )));
        }
        "out_of_order" => {
            return Err(match result.get("expected_link_seq").and_then(|v| v.as_u64()) {
                Some(expected) => FedError::OutOfOrder {
                    peer: env.header.recipient.to_string(),
                    expected,
                },
                None => peer_err(format!("out of order: {result}")),
            });
        }
        "skipped" => return Err(peer_err("skipped after an earlier envelope of the batch".into())),
        other => return Err(peer_err(format!("unknown result status '{other}'"))),
    };
    receipt.verify(&acked, peers)?;
    Ok((acked, receipt))
}

/// One attempt with the single-envelope endpoint: sign a fresh copy, POST it, verify and
/// store the receipt.
async fn deliver(fed: &Federation, row: &OutboxRow) -> Result<(), FedError> {
    let peer_err = |m: String| peer_error(&row.recipient, m);
    let peers = fed.peers()?;
    let (recipient, peer) = pinned(&peers, &row.recipient)?;
    let env = sign_row(fed, row, &recipient, &peer)?;
    let resp = post(fed, &peer, &row.recipient, "/federation/v1/envelopes", env.to_bytes()?).await?;
    let status = resp.status;
    let accepted_header = resp.accepted_envelope;
    let bytes = resp.body;
    if status == 409 {
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(expected) = v.get("expected_link_seq").and_then(|x| x.as_u64()) {
            return Err(FedError::OutOfOrder {
                peer: row.recipient.clone(),
                expected,
            });
        }
        if v.get("title").and_then(|x| x.as_str()) == Some(SEQ_REUSED) {
            return Err(FedError::SeqReused {
                peer: row.recipient.clone(),
                link_seq: row.link_seq as u64,
            });
        }
        return Err(peer_err(format!("out of order: {}", String::from_utf8_lossy(&bytes))));
    }
    if !(200..300).contains(&status) {
        return Err(peer_err(refusal(status, &bytes)));
    }
    if drop_answer() {
        return Err(peer_err("fault injection: receipt dropped".into()));
    }
    let receipt = Receipt::from_slice(&bytes)?;
    // A duplicate is answered with the receipt of the copy that was accepted first.
    let acked: EnvelopeHeader = match accepted_header {
        Some(h) => {
            let header: EnvelopeHeader = liaison_wire::types::strict_from_slice("envelope header", h.as_bytes())
                .map_err(|e| peer_err(format!("accepted header: {e}")))?;
            accepted_copy(fed, &env.header, header)?
        }
        None => env.header.clone(),
    };
    receipt.verify(&acked, &peers)?;
    let now = Timestamp::now();
    let item = delivered_rows(&row.message_id, &acked, &receipt, now)?;
    let stored = fed.inner.node.store.fed_delivered_batch(&[item], now).await?;
    fed.delivered_types(std::iter::once(row.payload_type.as_str()));
    if stored > 0 {
        fed.sync_log().await?;
        tracing::debug!(node = %fed.node_id(), peer = %row.recipient, message_id = %row.message_id, link_seq = row.link_seq, "delivered; receipt stored");
    }
    Ok(())
}
