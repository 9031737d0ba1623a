//! The outbox delivery worker: one drain task per peer with pending messages, sending in
//! link order, retrying with exponential back-off and jitter, and ending a message's delivery
//! only when a verified receipt is stored (with the `sent` and `receipt` ledger leaves).

use super::http::ACCEPTED_HEADER;
use super::{FedError, Federation};
use crate::service::Node;
use jiff::Timestamp;
use liaison_store::{LeafRecord, OutboxRow, PeerKeyRecord, PeerRecord, ReceiptRow};
use liaison_wire::{EnvelopeDraft, EnvelopeHeader, LedgerEntry, MessageId, NodeId, PayloadType, PinnedPeer, Receipt};
use std::collections::HashMap;
use std::time::Duration;

/// Persists a pinned peer and its keys (the full key list, with validity windows).
pub async fn store_peer(node: &Node, p: &PinnedPeer, descriptor: Option<&str>) -> Result<(), FedError> {
    let existing = node
        .store
        .fed_peers()
        .await?
        .into_iter()
        .find(|r| r.node_id == p.node_id.as_str());
    let descriptor = match (descriptor, &existing) {
        (Some(d), _) => d.to_string(),
        (None, Some(e)) => e.descriptor.clone(),
        (None, None) => String::new(),
    };
    let rec = PeerRecord {
        node_id: p.node_id.to_string(),
        agency_id: p.agency_id.to_string(),
        base_url: p.base_url.clone(),
        tls_cert_sha256: p.tls_cert_sha256.to_hex(),
        serial: p.descriptor_serial as i64,
        pinned: serde_json::to_string(p).map_err(|e| FedError::Config(e.to_string()))?,
        descriptor,
        added_at: existing.map_or_else(Timestamp::now, |e| e.added_at),
    };
    let keys: Vec<PeerKeyRecord> = p
        .keys
        .iter()
        .map(|k| PeerKeyRecord {
            node_id: p.node_id.to_string(),
            key_id: k.key_id.to_string(),
            public_key: k.public_key.to_hex(),
            valid_from: k.valid_from,
            valid_until: k.valid_until,
        })
        .collect();
    node.store.fed_put_peer(&rec, &keys).await?;
    Ok(())
}

pub(crate) async fn run(fed: Federation) {
    let mut drains: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut last_recovery = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        if last_recovery.elapsed() > Duration::from_secs(2) {
            last_recovery = std::time::Instant::now();
            if let Err(e) = fed.reload_peers().await {
                tracing::warn!(node = %fed.node_id(), error = %e, "cannot reload peers");
            }
            if let Err(e) = fed.receive_pending().await {
                tracing::warn!(node = %fed.node_id(), error = %e, "cannot check incoming requests");
            }
        }
        match fed.inner.node.store.fed_pending_recipients().await {
            Ok(peers) => {
                drains.retain(|_, h| !h.is_finished());
                for p in peers {
                    if let std::collections::hash_map::Entry::Vacant(v) = drains.entry(p.clone()) {
                        let f = fed.clone();
                        v.insert(tokio::spawn(async move { drain(f, p).await }));
                    }
                }
            }
            Err(e) => tracing::warn!(node = %fed.node_id(), error = %e, "cannot read the outbox"),
        }
        tokio::select! {
            _ = fed.inner.wake.notified() => {}
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

/// Sends everything pending for `peer`, in order, until the outbox is empty or an attempt fails.
async fn drain(fed: Federation, peer: String) {
    let mut attempts = 0i64;
    loop {
        let rows = match fed.inner.node.store.fed_outbox_pending(&peer, 200).await {
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
        for row in rows {
            match deliver(&fed, &row).await {
                Ok(()) => attempts = 0,
                Err(e) => {
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
                    break;
                }
            }
        }
    }
}

/// One attempt: sign a fresh copy, POST it, verify and store the receipt.
async fn deliver(fed: &Federation, row: &OutboxRow) -> Result<(), FedError> {
    let peer_err = |m: String| FedError::Peer {
        peer: row.recipient.clone(),
        message: m,
    };
    let recipient = NodeId::parse(&row.recipient).map_err(|e| peer_err(e.to_string()))?;
    let peers = fed.peers()?;
    let peer = peers
        .get(&recipient)
        .ok_or_else(|| peer_err("not a pinned peer (liaison peer add)".into()))?
        .clone();
    let payload: serde_json::Value =
        serde_json::from_str(&row.payload).map_err(|e| FedError::Ledger(format!("outbox payload: {e}")))?;
    let payload_type: PayloadType = serde_json::from_value(serde_json::Value::String(row.payload_type.clone()))
        .map_err(|_| FedError::Ledger(format!("outbox payload type {}", row.payload_type)))?;
    let message_id: MessageId = row
        .message_id
        .parse()
        .map_err(|e| FedError::Ledger(format!("outbox message id: {e}")))?;
    let env = EnvelopeDraft {
        message_id,
        sender: fed.inner.node_id.clone(),
        recipient: recipient.clone(),
        link_seq: row.link_seq as u64,
        created_at: Timestamp::now(),
        payload_type,
        payload,
    }
    .sign(&fed.inner.key)?;
    let body = env.to_bytes()?;
    let url = format!("{}/federation/v1/envelopes", peer.base_url.trim_end_matches('/'));
    let client = fed.client(&peer)?;
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| peer_err(format!("POST {url}: {e}")))?;
    let status = resp.status();
    let accepted_header = resp
        .headers()
        .get(ACCEPTED_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| peer_err(format!("reading the answer: {e}")))?;
    if status.as_u16() == 409 {
        return Err(peer_err(format!("out of order: {}", String::from_utf8_lossy(&bytes))));
    }
    if !status.is_success() {
        let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| Some(format!("{}: {}", v.get("title")?.as_str()?, v.get("detail")?.as_str()?)))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        return Err(peer_err(format!("{status}: {detail}")));
    }
    // Fault injection for tests: behave as if the answer was lost after the peer committed.
    if let Some(pct) = std::env::var("LIAISON_FED_FAULT_DROP_RECEIPT_PCT")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        && rand::random_range(0..100) < pct
    {
        return Err(peer_err("fault injection: receipt dropped".into()));
    }
    let receipt = Receipt::from_slice(&bytes)?;
    // A duplicate is answered with the receipt of the copy that was accepted first.
    let acked: EnvelopeHeader = match accepted_header {
        Some(h) => {
            let header: EnvelopeHeader = liaison_wire::types::strict_from_slice("envelope header", h.as_bytes())
                .map_err(|e| peer_err(format!("accepted header: {e}")))?;
            header.verify_signature(&fed.inner.own_keys)?;
            if header.message_id != env.header.message_id
                || header.link_seq != env.header.link_seq
                || header.recipient != env.header.recipient
            {
                return Err(peer_err("the accepted header is for another message".into()));
            }
            header
        }
        None => env.header.clone(),
    };
    receipt.verify(&acked, &peers)?;
    let sent = LedgerEntry::Sent {
        envelope: acked.clone(),
    };
    let rcpt = LedgerEntry::Receipt {
        receipt: receipt.clone(),
    };
    let text = |b: Vec<u8>| String::from_utf8(b).map_err(|e| FedError::Ledger(e.to_string()));
    let now = Timestamp::now();
    let stored = fed
        .inner
        .node
        .store
        .fed_delivered(
            &ReceiptRow {
                message_id: row.message_id.clone(),
                envelope_hash: acked.hash()?.to_hex(),
                header: text(liaison_wire::to_canonical(&acked)?)?,
                receipt: text(liaison_wire::to_canonical(&receipt)?)?,
                stored_at: now,
            },
            &LeafRecord {
                kind: "sent".into(),
                message_id: row.message_id.clone(),
                leaf: text(sent.leaf_bytes()?)?,
                leaf_hash: sent.leaf_hash()?.to_hex(),
            },
            &LeafRecord {
                kind: "receipt".into(),
                message_id: row.message_id.clone(),
                leaf: text(rcpt.leaf_bytes()?)?,
                leaf_hash: rcpt.leaf_hash()?.to_hex(),
            },
            now,
        )
        .await?;
    if stored {
        fed.sync_log().await?;
        tracing::debug!(node = %fed.node_id(), peer = %row.recipient, message_id = %row.message_id, link_seq = row.link_seq, "delivered; receipt stored");
    }
    Ok(())
}
