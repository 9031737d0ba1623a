//! Emergency key revocation (docs/federation.md §2.4, docs/threat-model.md).
//!
//! - **Own key compromised:** [`Node::revoke_own_key`] signs a revocation with the compromised
//!   key, makes a new key and a new descriptor (serial + 1) signed by it, closes the old key at
//!   the compromise, and keeps the statement in `<key dir>/revocations/`. The statement is then
//!   announced to every peer ([`Node::announce_revocations`], `POST
//!   /federation/v1/key-revocations`), and it travels in the node's peer file, which the peers'
//!   operators pin after checking the new fingerprint by phone.
//! - **A peer's key compromised:** a peer's statement is applied on arrival
//!   ([`Federation::receive_revocation`]); the peer's operator may also call, and an admin
//!   revokes the key locally ([`Node::revoke_peer_key`]).
//!
//! Either way the key's window ends at the compromise for good: envelopes, receipts and tree
//! heads it signed later are refused, and no descriptor or rotation can list it again.

use super::{FedError, Federation, identity, peers, worker};
use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::record::{FedIdentity, Principal};
use liaison_store::KeyRotationWrites;
use liaison_wire::{DescriptorDraft, KeyId, KeyRevocation, NodeDescriptor, NodeId, NodeKey, PinnedPeer};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Largest revocation statement accepted from a peer.
pub const MAX_REVOCATION_BYTES: usize = 8 * 1024;

/// What revoking the own key did.
#[derive(Debug, Clone, Serialize)]
pub struct RevocationReport {
    pub revoked_key_id: String,
    pub compromised_since: Timestamp,
    pub new_key_id: String,
    pub descriptor_serial: u64,
    /// The new descriptor's fingerprint: read it to each peer's operator by phone.
    pub fingerprint: String,
    /// Where the signed statement is kept (it also travels in the peer file).
    pub statement: PathBuf,
}

/// One peer's answer to an announcement.
#[derive(Debug, Clone, Serialize)]
pub struct Announced {
    pub peer: String,
    pub key_id: String,
    /// `None`: the peer applied (or already had) the revocation.
    pub error: Option<String>,
}

fn revocations_dir(key_dir: &Path) -> PathBuf {
    key_dir.join("revocations")
}

/// The revocations this node has issued for its own keys, oldest first.
pub(crate) fn own_revocations(key_dir: &Path) -> std::result::Result<Vec<KeyRevocation>, FedError> {
    let dir = revocations_dir(key_dir);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(FedError::io(&dir, e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let bytes = std::fs::read(&p).map_err(|e| FedError::io(&p, e))?;
        out.push(KeyRevocation::from_slice(&bytes).map_err(|e| FedError::Config(format!("{}: {e}", p.display())))?);
    }
    Ok(out)
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

impl Node {
    /// Revokes this node's current signing key as compromised since `compromised_since`
    /// (admins only). A running node signs with the new key after a restart; until its peers
    /// pin the new descriptor they refuse what it signs (that is the point).
    pub async fn revoke_own_key(
        &self,
        p: &Principal,
        compromised_since: Timestamp,
        reason: &str,
        now: Timestamp,
    ) -> Result<RevocationReport> {
        require(p.role.may_administer(), "revoking the node's signing key", p)?;
        if compromised_since > now {
            return Err(ServiceError::invalid(
                "since",
                "the compromise cannot start in the future",
            ));
        }
        if reason.trim().is_empty() {
            return Err(ServiceError::invalid(
                "reason",
                "say why the key is revoked (it is sent to every peer)",
            ));
        }
        if reason.len() > liaison_wire::MAX_REVOCATION_REASON {
            return Err(ServiceError::invalid(
                "reason",
                format!("at most {} bytes", liaison_wire::MAX_REVOCATION_REASON),
            ));
        }
        let store = &self.store;
        let id = store
            .fed_identity()
            .await?
            .ok_or_else(|| ServiceError::NotFound("this node's federation identity (run liaison init)".into()))?;
        // This instance's key directory (several instances may keep their copies apart).
        let dir = super::FedSettings::from_env()
            .key_dir
            .unwrap_or_else(|| PathBuf::from(&id.key_dir));
        let (old, mut published) = super::load_own_keys_in(store, now, Some(&dir)).await?;
        let node_id = NodeId::parse(&id.node_id).map_err(internal)?;
        let statement = KeyRevocation::sign(node_id.clone(), &old, compromised_since, now, reason.trim())
            .map_err(|e| ServiceError::invalid("reason", e.to_string()))?;
        let new = NodeKey::generate().map_err(FedError::from)?;
        let new_path = identity::key_path(&dir, &new);
        new.save(&new_path).map_err(FedError::from)?;
        for k in published.iter_mut() {
            if &k.key_id == old.key_id() {
                k.valid_until = Some(k.valid_until.map_or(compromised_since, |u| u.min(compromised_since)));
            }
        }
        published.push(new.published(now, None));
        let old_desc = NodeDescriptor::from_slice(id.descriptor.as_bytes()).map_err(FedError::from)?;
        let descriptor = DescriptorDraft {
            node_id,
            agency_id: old_desc.agency_id,
            agency_name: old_desc.agency_name.clone(),
            jurisdiction: old_desc.jurisdiction,
            base_url: old_desc.base_url.clone(),
            tls_cert_sha256: old_desc.tls_cert_sha256,
            keys: published.clone(),
            serial: old_desc.serial + 1,
            issued_at: now,
        }
        .sign(&new)
        .map_err(FedError::from)?;
        // The statement is written before the commit under a temporary name and takes its
        // final name after it: a crash in between leaves no statement for a key still in use.
        let rdir = revocations_dir(&dir);
        std::fs::create_dir_all(&rdir).map_err(|e| FedError::io(&rdir, e))?;
        let name = format!(
            "{}-{}.json",
            now.as_millisecond(),
            old.key_id().as_str().replace(':', "-")
        );
        let final_path = rdir.join(&name);
        let pending = rdir.join(format!("{name}.pending"));
        std::fs::write(&pending, serde_json::to_vec_pretty(&statement).map_err(internal)?)
            .map_err(|e| FedError::io(&pending, e))?;
        let keys = identity::own_key_rows(&published, &new, &new_path, &store.fed_own_keys().await?);
        store
            .fed_rotate_key(
                &KeyRotationWrites {
                    keys,
                    identity: FedIdentity {
                        descriptor: String::from_utf8(liaison_wire::to_canonical(&descriptor).map_err(internal)?)
                            .map_err(internal)?,
                        serial: descriptor.serial as i64,
                        ..id
                    },
                    // Nothing is queued: envelopes signed by the new key are refused until the
                    // peers pin it, and the old key must not sign anything more.
                    outbox: Vec::new(),
                    actor: p.username.clone(),
                },
                now,
            )
            .await?;
        std::fs::rename(&pending, &final_path).map_err(|e| FedError::io(&final_path, e))?;
        store
            .audit(
                now,
                &p.username,
                "federation.revoke_key",
                &statement.node_id.to_string(),
                &serde_json::json!({
                    "key_id": statement.key_id,
                    "compromised_since": compromised_since,
                    "reason": statement.reason,
                    "new_key_id": new.key_id(),
                    "serial": descriptor.serial,
                }),
            )
            .await?;
        tracing::warn!(key_id = %statement.key_id, since = %compromised_since, "own signing key revoked as compromised");
        Ok(RevocationReport {
            revoked_key_id: statement.key_id.to_string(),
            compromised_since,
            new_key_id: new.key_id().to_string(),
            descriptor_serial: descriptor.serial,
            fingerprint: descriptor.fingerprint().map_err(internal)?.to_hex(),
            statement: final_path,
        })
    }

    /// Sends every revocation this node has issued to every pinned peer (admins only). Safe to
    /// repeat: a peer that has a revocation already answers that nothing changed.
    pub async fn announce_revocations(
        &self,
        p: &Principal,
        transport: std::sync::Arc<dyn super::transport::Transport>,
    ) -> Result<Vec<Announced>> {
        require(p.role.may_administer(), "announcing key revocations", p)?;
        let fed = self.federation_with(transport).await?;
        let statements = own_revocations(&fed.inner.key_dir)?;
        let peers = fed.peers()?;
        let mut out = Vec::new();
        for peer in peers.0.values() {
            for s in &statements {
                let body = serde_json::to_vec(s).map_err(internal)?;
                let error = match fed
                    .inner
                    .transport
                    .post(peer, "/federation/v1/key-revocations", body)
                    .await
                {
                    Ok(a) if a.status == 200 => None,
                    Ok(a) => Some(format!(
                        "HTTP {}: {}",
                        a.status,
                        String::from_utf8_lossy(&a.body).chars().take(300).collect::<String>()
                    )),
                    Err(e) => Some(e),
                };
                out.push(Announced {
                    peer: peer.node_id.to_string(),
                    key_id: s.key_id.to_string(),
                    error,
                });
            }
        }
        Ok(out)
    }

    /// Revokes a pinned peer's key on the operator's own authority, e.g. after the peer's
    /// operator called (admins only).
    pub async fn revoke_peer_key(
        &self,
        p: &Principal,
        node_id: &str,
        key_id: &str,
        since: Timestamp,
        reason: &str,
        now: Timestamp,
    ) -> Result<PinnedPeer> {
        require(p.role.may_administer(), "revoking a peer's key", p)?;
        if reason.trim().is_empty() {
            return Err(ServiceError::invalid(
                "reason",
                "say why (for example who called, and when)",
            ));
        }
        if since > now {
            return Err(ServiceError::invalid(
                "since",
                "the compromise cannot start in the future",
            ));
        }
        let key_id = KeyId::parse(key_id).map_err(|e| ServiceError::invalid("key_id", e.to_string()))?;
        let rec = peers::stored_peer(self, node_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("pinned peer {node_id}")))?;
        let keys = self.store.fed_peer_keys(node_id).await?;
        let mut peer = super::pinned_from_store(&rec, &keys)?;
        if peer.key(&key_id).is_none() {
            return Err(ServiceError::NotFound(format!("key {key_id} of peer {node_id}")));
        }
        peer.revoke(&key_id, since);
        worker::store_peer(self, &peer, None).await?;
        self.store
            .audit(
                now,
                &p.username,
                "peer.key_revoked",
                node_id,
                &serde_json::json!({"key_id": key_id, "compromised_since": since, "reason": reason.trim(), "by": "operator"}),
            )
            .await?;
        Ok(peer)
    }
}

impl Federation {
    /// A peer announces that one of its keys is compromised (`POST
    /// /federation/v1/key-revocations`). Checked against the pinned peer (the revoked key
    /// must have signed it); applied, stored and raised to the operators. `Ok(true)`: applied
    /// now; `Ok(false)`: known already.
    pub async fn receive_revocation(&self, body: &[u8]) -> std::result::Result<bool, FedError> {
        let r = self.apply_revocation_body(body).await;
        if let Err(e) = &r
            && super::receive::rejection_budget(self)
        {
            tracing::warn!(node = %self.node_id(), reason = ?e.to_string(), "key revocation refused");
        }
        r
    }

    async fn apply_revocation_body(&self, body: &[u8]) -> std::result::Result<bool, FedError> {
        if body.len() > MAX_REVOCATION_BYTES {
            return Err(FedError::Config(format!(
                "a key revocation is at most {MAX_REVOCATION_BYTES} bytes"
            )));
        }
        let r = KeyRevocation::from_slice(body)?;
        let mut peer = self.peers()?.0.get(&r.node_id).cloned().ok_or_else(|| FedError::Peer {
            peer: r.node_id.to_string(),
            message: "not a pinned peer".into(),
        })?;
        let changed = peer.apply_revocation(&r)?;
        if changed {
            worker::store_peer(&self.inner.node, &peer, None).await?;
            self.inner
                .node
                .store
                .audit(
                    Timestamp::now(),
                    "system",
                    "peer.key_revoked",
                    r.node_id.as_str(),
                    &serde_json::json!({"key_id": r.key_id, "compromised_since": r.compromised_since, "reason": r.reason, "by": "peer"}),
                )
                .await?;
            self.reload_peers().await?;
            tracing::error!(
                peer = %r.node_id,
                key_id = %r.key_id,
                since = %r.compromised_since,
                reason = %r.reason,
                "a peer revoked its signing key as compromised: what it signed since then is refused; pin its new descriptor after checking the fingerprint by phone"
            );
        }
        Ok(changed)
    }
}
