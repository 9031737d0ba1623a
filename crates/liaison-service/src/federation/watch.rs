//! The peer tree head watcher (docs/federation.md §5.3): fetches each peer's signed tree
//! head and a consistency proof from the last accepted one; a peer whose new head does not
//! extend the old one rewrote its history: both heads are kept as evidence and the operators
//! are alerted (error log), and the accepted head is not replaced.
//!
//! A restored peer (docs/federation.md §7.2) tells this node, in a signed link recovery
//! request, that its log was rolled back to size `k` (a restore notice, stored with role
//! `restore`). A later head that does not extend the previous one is then accepted, with a
//! warning instead of the alarm, if it extends the last head this node accepted at or below
//! `k` (a consistency proof checks it): what the peer signed up to the restore point is still
//! in its log; what came after is in this node's own ledger (the envelopes and receipts).

use super::{FedError, Federation};
use jiff::Timestamp;
use liaison_core::record::SthRecord;
use liaison_wire::{Hash256, PinnedPeer, Sth, check_peer_sth};

pub(crate) async fn run(fed: Federation) {
    loop {
        tokio::time::sleep(fed.inner.settings.sth_interval).await;
        let peers = match fed.peers() {
            Ok(p) => p,
            Err(_) => continue,
        };
        for peer in peers.0.values() {
            if let Err(e) = check_peer(&fed, peer).await {
                tracing::info!(node = %fed.node_id(), peer = %peer.node_id, error = %e, "peer tree head not checked this round");
            }
        }
    }
}

fn text(b: Vec<u8>) -> Result<String, FedError> {
    String::from_utf8(b).map_err(|e| FedError::Ledger(e.to_string()))
}

/// One check of one peer's tree head. Returns whether the peer is consistent.
pub async fn check_peer(fed: &Federation, peer: &PinnedPeer) -> Result<bool, FedError> {
    let perr = |m: String| FedError::Peer {
        peer: peer.node_id.to_string(),
        message: m,
    };
    let get = |path: String| async move {
        let a = fed.inner.transport.get(peer, &path).await.map_err(perr)?;
        if !a.is_success() {
            return Err(perr(format!("GET {path}: status {}", a.status)));
        }
        Ok::<Vec<u8>, FedError>(a.body)
    };
    let bytes = get("/federation/v1/sth".to_string()).await?;
    let new = Sth::from_slice(&bytes).map_err(|e| perr(format!("tree head: {e}")))?;
    if new.node_id != peer.node_id {
        return Err(perr(format!("tree head is for node {}", new.node_id)));
    }
    new.verify(peer)?;
    let store = &fed.inner.node.store;
    let now = Timestamp::now();
    let record = |sth: &Sth, role: &str, note: Option<String>| -> Result<SthRecord, FedError> {
        Ok(SthRecord {
            node_id: sth.node_id.to_string(),
            role: role.into(),
            tree_size: sth.tree_size as i64,
            root_hash: sth.root_hash.to_hex(),
            timestamp: sth.timestamp,
            sth: text(liaison_wire::to_canonical(sth)?)?,
            recorded_at: now,
            note,
        })
    };
    let Some(prev_rec) = store.fed_latest_sth(peer.node_id.as_str(), "peer").await? else {
        store.fed_put_sth(&record(&new, "peer", None)?).await?;
        return Ok(true);
    };
    let prev = Sth::from_slice(prev_rec.sth.as_bytes()).map_err(|e| FedError::Ledger(e.to_string()))?;
    if prev.tree_size == new.tree_size && prev.root_hash == new.root_hash {
        return Ok(true);
    }
    let proof: Vec<Hash256> = if new.tree_size >= prev.tree_size {
        let body = get(format!(
            "/federation/v1/consistency?from={}&to={}",
            prev.tree_size, new.tree_size
        ))
        .await?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| perr(format!("consistency answer: {e}")))?;
        v.get("proof")
            .and_then(|p| p.as_array())
            .ok_or_else(|| perr("consistency answer has no proof".into()))?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|s| Hash256::from_hex(s).ok())
                    .ok_or_else(|| perr("bad hash in consistency proof".into()))
            })
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    match check_peer_sth(&prev, &new, &proof) {
        Ok(()) => {
            store.fed_put_sth(&record(&new, "peer", None)?).await?;
            Ok(true)
        }
        Err(inc) if after_restore(fed, peer, &prev_rec, &new, &get).await? => {
            tracing::warn!(node = %fed.node_id(), peer = %peer.node_id, reason = %inc,
                previous_size = prev.tree_size, new_size = new.tree_size,
                "peer was restored from a backup (signed restore notice): its new tree head extends what it signed up to the restore point; accepted");
            store
                .fed_put_sth(&record(
                    &new,
                    "peer",
                    Some(format!(
                        "after a restore from backup (was size {}: {inc})",
                        prev.tree_size
                    )),
                )?)
                .await?;
            Ok(true)
        }
        Err(inc) => {
            let known = store
                .fed_evidence()
                .await?
                .into_iter()
                .any(|e| e.node_id == peer.node_id.as_str() && e.root_hash == new.root_hash.to_hex());
            tracing::error!(node = %fed.node_id(), peer = %peer.node_id, reason = %inc,
                previous_size = prev.tree_size, new_size = new.tree_size,
                "LEDGER INCONSISTENCY: peer's signed tree head does not extend the one it signed before (history rewritten); both heads kept as evidence");
            if !known {
                store
                    .fed_put_sth(&record(&new, "evidence", Some(inc.to_string()))?)
                    .await?;
            }
            Ok(false)
        }
    }
}

/// Whether `new` is the head of a peer restored from a backup that this node may accept: a
/// restore notice from the peer recorded after the previous head, for a size `k` at most
/// `new`'s, and a consistency proof from the last accepted head of size at most `k` to `new`.
async fn after_restore<F, Fut>(
    fed: &Federation,
    peer: &PinnedPeer,
    prev: &SthRecord,
    new: &Sth,
    get: &F,
) -> Result<bool, FedError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, FedError>>,
{
    let store = &fed.inner.node.store;
    let Some(notice) = store
        .fed_sths(peer.node_id.as_str(), "restore")
        .await?
        .into_iter()
        .rfind(|n| n.recorded_at >= prev.recorded_at)
    else {
        return Ok(false);
    };
    if notice.tree_size < 0 || notice.tree_size as u64 > new.tree_size {
        return Ok(false);
    }
    let base = store
        .fed_sths(peer.node_id.as_str(), "peer")
        .await?
        .into_iter()
        .filter(|h| h.tree_size <= notice.tree_size)
        .max_by_key(|h| (h.tree_size, h.recorded_at));
    let Some(base) = base else {
        // Nothing witnessed at or below the restore point.
        return Ok(true);
    };
    let base_root = Hash256::from_hex(&base.root_hash).map_err(|e| FedError::Ledger(e.to_string()))?;
    let body = get(format!(
        "/federation/v1/consistency?from={}&to={}",
        base.tree_size, new.tree_size
    ))
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| FedError::Peer {
        peer: peer.node_id.to_string(),
        message: format!("consistency answer: {e}"),
    })?;
    let proof: Vec<Hash256> = v
        .get("proof")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|h| h.as_str().and_then(|s| Hash256::from_hex(s).ok()))
                .collect()
        })
        .unwrap_or_default();
    Ok(
        liaison_wire::verify_consistency(base.tree_size as u64, new.tree_size, &base_root, &new.root_hash, &proof)
            .is_ok(),
    )
}
