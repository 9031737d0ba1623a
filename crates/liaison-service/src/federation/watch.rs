//! The peer tree head watcher (docs/federation.md §5.3): fetches each peer's signed tree
//! head and a consistency proof from the last accepted one; a peer whose new head does not
//! extend the old one rewrote its history: both heads are kept as evidence and the operators
//! are alerted (error log), and the accepted head is not replaced.

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
