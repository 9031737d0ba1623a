//! The ledger: recomputing it from the stored leaves, proof bundles a court or a partner can
//! check offline, signed tree heads, and the evidence kept when a peer rewrites its history.
//! Reading the ledger is for auditors and admins.

use super::transport::{Offline, Transport};
use super::{FedError, FedSettings, Federation};
use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::record::{Principal, SthRecord};
use liaison_wire::{Keyring, LedgerEntry, MerkleLog, ProofBundle, PublicKeyBytes, PublishedKey, Receipt, Sth};
use serde::Serialize;
use std::sync::Arc;

/// The outcome of [`Node::verify_ledger`].
#[derive(Debug, Clone, Serialize)]
pub struct LedgerReport {
    pub node_id: String,
    pub leaves: u64,
    /// Root of the log recomputed from the stored leaves (hex).
    pub root: String,
    pub tree_heads_checked: usize,
    /// Everything that does not match; empty when the ledger verifies.
    pub problems: Vec<String>,
}

impl LedgerReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Identity, peers, outbox and ledger at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct FederationStatus {
    pub node_id: Option<String>,
    pub base_url: Option<String>,
    pub peers: Vec<String>,
    pub outbox_pending: i64,
    pub outbox_delivered: i64,
    pub inbox: usize,
    /// Received messages recorded as not applied (a conflict with the local state, a rule
    /// the sender may not use, …): kept as evidence; `federation messages` lists their reasons.
    pub inbox_not_applied: usize,
    pub ledger_leaves: usize,
    /// Of the ledger's leaves, how many anchor the audit log (docs/federation.md §5.1).
    pub ledger_audit_anchors: usize,
}

/// What the ledger page shows: the node's identity, counts, the latest messages each way, the
/// received messages not applied (conflicts with the local state or rules, kept as evidence)
/// and the tree heads kept as evidence of a peer rewriting its history. Bounded: each list
/// holds at most the `limit` given to [`Node::ledger_overview`].
#[derive(Debug, Clone, Serialize)]
pub struct LedgerOverview {
    pub node_id: Option<String>,
    pub base_url: Option<String>,
    pub peers: usize,
    pub outbox_pending: i64,
    pub outbox_delivered: i64,
    pub ledger_leaves: i64,
    #[serde(skip)]
    pub sent: Vec<liaison_core::record::OutboxRow>,
    #[serde(skip)]
    pub received: Vec<liaison_core::record::InboxRow>,
    #[serde(skip)]
    pub not_applied: Vec<liaison_core::record::InboxRow>,
    #[serde(skip)]
    pub evidence: Vec<SthRecord>,
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

impl Node {
    /// The federation layer of this node, loaded from the store, reaching peers through
    /// `transport` (`NotFound` without an identity).
    pub async fn federation_with(&self, transport: Arc<dyn Transport>) -> Result<Federation> {
        Federation::load(self.clone(), FedSettings::from_env(), transport)
            .await?
            .ok_or_else(|| ServiceError::NotFound("this node's federation identity (run liaison init)".into()))
    }

    /// Recomputes the ledger from the stored leaves and checks every tree head this node signed.
    pub async fn verify_ledger(&self, p: &Principal) -> Result<LedgerReport> {
        require(p.role.may_audit(), "verifying the ledger", p)?;
        let fed = self.federation_with(Arc::new(Offline)).await?;
        let (log, n, problems) = self.rebuild_ledger(&fed).await?;
        Ok(LedgerReport {
            node_id: fed.node_id().to_string(),
            leaves: log.len(),
            root: log.current_root().to_hex(),
            tree_heads_checked: n,
            problems,
        })
    }

    async fn rebuild_ledger(&self, fed: &Federation) -> Result<(MerkleLog, usize, Vec<String>)> {
        let mut problems = Vec::new();
        let leaves = self.store.fed_leaves().await?;
        let mut hashes = Vec::with_capacity(leaves.len());
        for (i, l) in leaves.iter().enumerate() {
            if l.idx != i as i64 {
                problems.push(format!("leaf {i} is missing (found index {})", l.idx));
            }
            let h = liaison_wire::merkle::leaf_hash(l.leaf.as_bytes());
            if h.to_hex() != l.leaf_hash {
                problems.push(format!("leaf {}: stored hash does not match its content", l.idx));
            }
            match serde_json::from_str::<LedgerEntry>(&l.leaf) {
                Ok(e) if e.record_key() == l.message_id => {}
                Ok(_) => problems.push(format!("leaf {}: message id does not match", l.idx)),
                Err(e) => problems.push(format!("leaf {}: not a ledger entry: {e}", l.idx)),
            }
            hashes.push(h);
        }
        let log = MerkleLog::from_leaf_hashes(hashes);
        let sths = self.store.fed_sths(fed.node_id().as_str(), "own").await?;
        // Tree heads this node signed with one of its keys after revoking it (the node ran on
        // until restarted) are no evidence, but no damage to the ledger either: their roots
        // are still checked below.
        let revoked = super::revoke::own_revocations(&fed.inner.key_dir)?;
        for s in &sths {
            let sth = match Sth::from_slice(s.sth.as_bytes()) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("stored tree head: {e}"));
                    continue;
                }
            };
            if let Err(e) = sth.verify(fed.own_keyring()) {
                let after_revocation = revoked
                    .iter()
                    .any(|r| r.key_id == sth.key_id && sth.timestamp >= r.compromised_since);
                if after_revocation {
                    tracing::warn!(size = sth.tree_size, key_id = %sth.key_id, "a tree head was signed with a revoked key (before the restart): not evidence");
                } else {
                    problems.push(format!("tree head of size {}: {e}", sth.tree_size));
                }
            }
            match log.root(sth.tree_size) {
                Ok(root) if root == sth.root_hash => {}
                Ok(root) => problems.push(format!(
                    "tree head of size {} signed root {} but the stored leaves give {root}",
                    sth.tree_size, sth.root_hash
                )),
                Err(e) => problems.push(format!("tree head of size {}: {e}", sth.tree_size)),
            }
        }
        Ok((log, sths.len(), problems))
    }

    /// A proof bundle that message `message_id` was exchanged and logged: the ledger entry, its
    /// inclusion proof under a tree head signed now, the receipt if this node sent it, the keys
    /// needed to check it, and the payload if `disclose` (otherwise only its hash).
    pub async fn prove_message(&self, p: &Principal, message_id: &str, disclose: bool) -> Result<ProofBundle> {
        require(p.role.may_audit(), "proving ledger entries", p)?;
        let fed = self.federation_with(Arc::new(Offline)).await?;
        // A proof carries a tree head signed now; a node restored from a backup signs none
        // until every peer has been told that its log restarts there (docs/federation.md §7.2),
        // as `Federation::current_sth` refuses to.
        let pending: Vec<String> = fed.inner.recovering.lock().map_err(internal)?.iter().cloned().collect();
        if !pending.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "this node was restored from a backup and has not yet told {} so; no tree head is signed until then: start the node (liaison serve) and try again once the links are recovered",
                pending.join(", ")
            )));
        }
        let (log, _, problems) = self.rebuild_ledger(&fed).await?;
        if !problems.is_empty() {
            return Err(ServiceError::Integrity(format!(
                "the ledger does not verify: {}",
                problems.join("; ")
            )));
        }
        let leaves = self.store.fed_leaves_for(message_id).await?;
        let leaf = leaves
            .iter()
            .find(|l| l.kind == "sent")
            .or_else(|| leaves.iter().find(|l| l.kind == "received"))
            .ok_or_else(|| ServiceError::NotFound(format!("message {message_id} in this node's ledger")))?;
        let entry: LedgerEntry = serde_json::from_str(&leaf.leaf).map_err(internal)?;
        let now = Timestamp::now();
        let sth = Sth::sign_log(fed.node_id().clone(), &log, now, fed.signing_key()).map_err(internal)?;
        self.store
            .fed_put_sth(&SthRecord {
                node_id: fed.node_id().to_string(),
                role: "own".into(),
                tree_size: sth.tree_size as i64,
                root_hash: sth.root_hash.to_hex(),
                timestamp: sth.timestamp,
                sth: String::from_utf8(liaison_wire::to_canonical(&sth).map_err(internal)?).map_err(internal)?,
                recorded_at: now,
                note: Some("proof".into()),
            })
            .await?;
        let (receipt, payload) = if leaf.kind == "sent" {
            let r = match self.store.fed_receipt(message_id).await? {
                Some(r) => Some(Receipt::from_slice(r.receipt.as_bytes()).map_err(internal)?),
                None => None,
            };
            let p = match (disclose, self.store.fed_outbox_message(message_id).await?) {
                (true, Some(o)) => Some(serde_json::from_str(&o.payload).map_err(internal)?),
                _ => None,
            };
            (r, p)
        } else {
            let p = match (disclose, self.store.fed_inbox(message_id).await?) {
                (true, Some(i)) => Some(serde_json::from_str(&i.payload).map_err(internal)?),
                _ => None,
            };
            (None, p)
        };
        let mut keys = Keyring::default();
        for (n, k) in &fed.own_keyring().0 {
            keys.0.insert(n.clone(), k.clone());
        }
        let other = match &entry {
            LedgerEntry::Sent { envelope } => envelope.recipient.clone(),
            LedgerEntry::Received { envelope } => envelope.sender.clone(),
            LedgerEntry::Receipt { receipt } => receipt.receiver.clone(),
            LedgerEntry::AuditAnchor { .. } => {
                return Err(ServiceError::NotFound(format!(
                    "{message_id} is an audit anchor, not a message"
                )));
            }
        };
        let pk = self.store.fed_peer_keys(other.as_str()).await?;
        if !pk.is_empty() {
            let published = pk
                .iter()
                .map(|k| {
                    Ok(PublishedKey {
                        key_id: liaison_wire::KeyId::parse(&k.key_id).map_err(internal)?,
                        public_key: PublicKeyBytes::from_hex(&k.public_key).map_err(internal)?,
                        valid_from: k.valid_from,
                        valid_until: k.valid_until,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            keys.0.insert(other, published);
        }
        ProofBundle::build(&log, entry, leaf.idx as u64, sth, payload, receipt, keys).map_err(internal)
    }

    /// Signs (and keeps, if the log grew) a tree head over the current ledger.
    pub async fn sign_tree_head(&self, p: &Principal) -> Result<Sth> {
        require(p.role.may_audit(), "signing tree heads", p)?;
        Ok(self.federation_with(Arc::new(Offline)).await?.current_sth().await?)
    }

    /// Fetches every peer's tree head now and checks it extends the one accepted before.
    /// `false`: the peer rewrote its history (evidence stored).
    pub async fn check_peers(
        &self,
        p: &Principal,
        transport: Arc<dyn Transport>,
    ) -> Result<Vec<(String, std::result::Result<bool, String>)>> {
        require(p.role.may_audit(), "checking peers' ledgers", p)?;
        let fed = self.federation_with(transport).await?;
        Ok(fed
            .check_peers()
            .await
            .into_iter()
            .map(|(n, r)| (n.to_string(), r.map_err(|e: FedError| e.to_string())))
            .collect())
    }

    /// Tree heads kept as evidence of a peer rewriting its history.
    pub async fn ledger_evidence(&self, p: &Principal) -> Result<Vec<SthRecord>> {
        require(p.role.may_audit(), "reading ledger evidence", p)?;
        Ok(self.store.fed_evidence().await?)
    }

    /// Identity, peers, outbox and ledger at a glance (admins and auditors).
    pub async fn federation_status(&self, p: &Principal) -> Result<FederationStatus> {
        require(p.role.may_audit(), "reading the federation status", p)?;
        let id = self.store.fed_identity().await?;
        let stats = self.store.fed_outbox_stats().await?;
        let leaves = self.store.fed_leaves().await?;
        let inbox = self.store.fed_inbox_all().await?;
        Ok(FederationStatus {
            node_id: id.as_ref().map(|i| i.node_id.clone()),
            base_url: id.as_ref().map(|i| i.base_url.clone()),
            peers: self.store.fed_peers().await?.into_iter().map(|p| p.node_id).collect(),
            outbox_pending: stats.pending,
            outbox_delivered: stats.delivered,
            inbox: inbox.len(),
            inbox_not_applied: inbox.iter().filter(|i| i.outcome.starts_with("not applied")).count(),
            ledger_leaves: leaves.len(),
            ledger_audit_anchors: leaves.iter().filter(|l| l.kind == "audit_anchor").count(),
        })
    }

    /// Messages sent (outbox) and received (inbox), oldest first (admins and auditors).
    pub async fn federation_messages(
        &self,
        p: &Principal,
    ) -> Result<(
        Vec<liaison_core::record::OutboxRow>,
        Vec<liaison_core::record::InboxRow>,
    )> {
        require(p.role.may_audit(), "reading federation messages", p)?;
        Ok((self.store.fed_outbox_all().await?, self.store.fed_inbox_all().await?))
    }

    /// The ledger page's figures and lists (auditors and admins), each list at most `limit`
    /// long (1–500), newest first.
    pub async fn ledger_overview(&self, p: &Principal, limit: i64) -> Result<LedgerOverview> {
        require(p.role.may_audit(), "reading the ledger", p)?;
        let limit = limit.clamp(1, 500);
        let id = self.store.fed_identity().await?;
        let stats = self.store.fed_outbox_stats().await?;
        Ok(LedgerOverview {
            node_id: id.as_ref().map(|i| i.node_id.clone()),
            base_url: id.as_ref().map(|i| i.base_url.clone()),
            peers: self.store.fed_peers().await?.len(),
            outbox_pending: stats.pending,
            outbox_delivered: stats.delivered,
            ledger_leaves: self.store.fed_ledger_size().await?,
            sent: self.store.fed_outbox_recent(limit).await?,
            received: self.store.fed_inbox_recent(limit, false).await?,
            not_applied: self.store.fed_inbox_recent(limit, true).await?,
            evidence: self.store.fed_evidence().await?,
        })
    }

    /// Peers with messages not yet delivered (one index look-up per link; admins and auditors).
    pub async fn undelivered_recipients(&self, p: &Principal) -> Result<Vec<String>> {
        require(p.role.may_audit(), "reading the outbox", p)?;
        Ok(self.store.fed_pending_recipients().await?)
    }
}
