//! Audit anchors: the head of the node's audit log, signed by the node key and appended to
//! its federation ledger, so the next signed tree head covers it and peers witness it.
//!
//! Written at least every [`ANCHOR_EVERY`] while the audit log grows, and before every tree
//! head this node signs for a peer. An insider who later rewrites audit entries up to an
//! anchored one and recomputes the chain is caught by `liaison audit verify` (the anchor holds
//! the old hash); rewriting the ledger leaf too breaks the consistency of the ledger with the
//! tree heads the peers keep (docs/threat-model.md).

use super::{FedError, Federation};
use jiff::Timestamp;
use liaison_store::LeafRecord;
use liaison_wire::{AuditAnchor, Hash256, LedgerEntry};
use std::time::Duration;

/// The longest an audit entry stays unanchored while the node is active.
pub const ANCHOR_EVERY: Duration = Duration::from_secs(60);

/// Anchors the audit head if it moved since the last anchor. Returns the anchored entry, or
/// `None` when there was nothing new.
pub async fn anchor_audit(fed: &Federation) -> Result<Option<i64>, FedError> {
    let store = &fed.inner.node.store;
    let (seq, hash) = store.audit_head_now().await?;
    if seq == 0 || store.last_audit_anchor().await? >= seq {
        return Ok(None);
    }
    let audit_hash = Hash256::from_hex(&hash).map_err(|e| FedError::Ledger(format!("audit head hash: {e}")))?;
    let now = Timestamp::now();
    let anchor = AuditAnchor::sign(fed.inner.node_id.clone(), seq as u64, audit_hash, now, &fed.inner.key)?;
    let entry = LedgerEntry::AuditAnchor { anchor };
    let leaf = LeafRecord {
        kind: "audit_anchor".into(),
        message_id: entry.record_key(),
        leaf: String::from_utf8(entry.leaf_bytes()?).map_err(|e| FedError::Ledger(e.to_string()))?,
        leaf_hash: entry.leaf_hash()?.to_hex(),
    };
    if store.append_audit_anchor(seq, &leaf, now).await? {
        fed.sync_log().await?;
        Ok(Some(seq))
    } else {
        Ok(None)
    }
}

/// The background task: anchors every [`ANCHOR_EVERY`] when the audit log grew.
pub(crate) async fn run(fed: Federation) {
    let mut every = tokio::time::interval(ANCHOR_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match anchor_audit(&fed).await {
            Ok(Some(seq)) => tracing::debug!(node = %fed.node_id(), seq, "audit log anchored in the ledger"),
            Ok(None) => {}
            Err(e) => tracing::warn!(node = %fed.node_id(), error = %e, "cannot anchor the audit log; will retry"),
        }
    }
}
