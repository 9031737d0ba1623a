//! Node identity: signing key file (0600), self-signed TLS certificate, signed descriptor;
//! the "peer file" operators exchange; key rotation.

use super::{FedError, tls};
use crate::error::Result as ServiceResult;
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::directory::Agency;
use liaison_core::record::{FedIdentity, OwnKey, Principal};
use liaison_store::{KeyRotationWrites, OutboxItem, Store};
use liaison_wire::{DescriptorDraft, KeyRotation, NodeDescriptor, NodeId, NodeKey, PublishedKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `liaison init` knows about the node's federation identity.
#[derive(Debug, Clone)]
pub struct IdentityParams {
    pub node_id: NodeId,
    /// Address the federation endpoints listen on (`127.0.0.1:8641`).
    pub listen: String,
    /// The HTTPS base URL peers use (`https://127.0.0.1:8641`).
    pub base_url: String,
    /// Where the key files and TLS material go (created, mode 0700).
    pub key_dir: PathBuf,
}

/// What one operator sends another: the signed descriptor and the directory entry of the
/// agency behind it (code, names, kind, time zone). The descriptor fingerprint is what is
/// compared out of band; the agency entry must agree with the descriptor (id, jurisdiction).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFile {
    pub format: String,
    pub descriptor: NodeDescriptor,
    pub agency: Agency,
    /// Revocations of the node's compromised keys (docs/federation.md §2.4): applied when
    /// the file is pinned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocations: Vec<liaison_wire::KeyRevocation>,
}

pub const PEER_FILE_FORMAT: &str = "liaison-peer/1";

pub(crate) fn key_path(dir: &Path, key: &NodeKey) -> PathBuf {
    let id = key.key_id().as_str().replace(':', "-");
    dir.join(format!("node-key-{id}.json"))
}

/// Creates the node's signing key, TLS certificate and first descriptor, and stores them.
pub(crate) async fn create_identity(
    store: &Store,
    agency: &Agency,
    p: &IdentityParams,
    now: Timestamp,
) -> Result<NodeDescriptor, FedError> {
    std::fs::create_dir_all(&p.key_dir).map_err(|e| FedError::io(&p.key_dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p.key_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| FedError::io(&p.key_dir, e))?;
    }
    let key = NodeKey::generate()?;
    let path = key_path(&p.key_dir, &key);
    key.save(&path)?;
    let fp = tls::generate_cert(&p.key_dir, vec!["localhost".into(), p.node_id.to_string()])?;
    let published = key.published(now, None);
    let descriptor = DescriptorDraft {
        node_id: p.node_id.clone(),
        agency_id: agency.id,
        agency_name: agency.name_en.clone(),
        jurisdiction: agency.jurisdiction,
        base_url: p.base_url.clone(),
        tls_cert_sha256: fp,
        keys: vec![published.clone()],
        serial: 1,
        issued_at: now,
    }
    .sign(&key)?;
    store
        .fed_put_own_key(
            &OwnKey {
                key_id: key.key_id().to_string(),
                key_path: path.display().to_string(),
                public_key: published.public_key.to_hex(),
                valid_from: published.valid_from,
                valid_until: None,
            },
            now,
        )
        .await?;
    store
        .fed_set_identity(&FedIdentity {
            node_id: p.node_id.to_string(),
            agency_id: agency.id.to_string(),
            listen: p.listen.clone(),
            base_url: p.base_url.clone(),
            key_dir: p.key_dir.display().to_string(),
            tls_cert_sha256: fp.to_hex(),
            descriptor: String::from_utf8(liaison_wire::to_canonical(&descriptor)?)
                .map_err(|e| FedError::Config(e.to_string()))?,
            serial: 1,
        })
        .await?;
    Ok(descriptor)
}

/// The peer file of this node (to send to other operators).
/// `None` when the node has no federation identity.
pub(crate) async fn own_peer_file(store: &Store) -> Result<Option<PeerFile>, FedError> {
    let Some(id) = store.fed_identity().await? else {
        return Ok(None);
    };
    let descriptor = NodeDescriptor::from_slice(id.descriptor.as_bytes())?;
    let mut agency = store.agency(descriptor.agency_id).await?;
    // The name Chinese pages show is this node's own; the peer file carries the agency's names
    // as the protocol has them (an older node would refuse the field).
    agency.name_zh.clear();
    let revocations = super::revoke::own_revocations(Path::new(&id.key_dir))?;
    Ok(Some(PeerFile {
        format: PEER_FILE_FORMAT.into(),
        descriptor,
        agency,
        revocations,
    }))
}

/// Rotates the signing key: a new key file (written and synced first), a rotation statement
/// signed by both keys, a new descriptor (serial + 1) listing both keys (the old one until
/// `old_valid_until`), and the statement queued for every peer. The keys, the descriptor and
/// the messages commit in one transaction: after a crash the node has either the old key and no
/// rotation messages (the new key file is then unused), or the new key and all of them.
/// Returns the statement and the new descriptor.
async fn rotate_key(
    store: &Store,
    actor: &str,
    old_valid_until: Timestamp,
    now: Timestamp,
) -> Result<(KeyRotation, NodeDescriptor, usize), FedError> {
    let id = store
        .fed_identity()
        .await?
        .ok_or_else(|| FedError::Config("this node has no federation identity".into()))?;
    let (old, mut published) = super::load_own_keys_store(store, now).await?;
    let dir = PathBuf::from(&id.key_dir);
    let new = NodeKey::generate()?;
    let path = key_path(&dir, &new);
    new.save(&path)?;
    let node_id = NodeId::parse(&id.node_id).map_err(|e| FedError::Config(e.to_string()))?;
    let rotation = KeyRotation::sign(node_id.clone(), &old, &new, now, None, old_valid_until, now)?;
    for k in published.iter_mut() {
        if &k.key_id == old.key_id() {
            k.valid_until = Some(k.valid_until.map_or(old_valid_until, |u| u.min(old_valid_until)));
        }
    }
    let new_pub: PublishedKey = new.published(now, None);
    published.push(new_pub.clone());
    let old_desc = NodeDescriptor::from_slice(id.descriptor.as_bytes())?;
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
    .sign(&new)?;
    let keys = own_key_rows(&published, &new, &path, &store.fed_own_keys().await?);
    let payload = serde_json::to_value(&rotation).map_err(|e| FedError::Config(e.to_string()))?;
    let outbox: Vec<OutboxItem> = store
        .fed_peers()
        .await?
        .into_iter()
        .map(|p| OutboxItem {
            message_id: liaison_wire::MessageId::new().to_string(),
            recipient: p.node_id,
            payload_type: liaison_wire::PayloadType::KeyRotation.as_str().into(),
            payload: payload.clone(),
            created_at: now,
        })
        .collect();
    let peers = outbox.len();
    store
        .fed_rotate_key(
            &KeyRotationWrites {
                keys,
                identity: FedIdentity {
                    descriptor: String::from_utf8(liaison_wire::to_canonical(&descriptor)?)
                        .map_err(|e| FedError::Config(e.to_string()))?,
                    serial: descriptor.serial as i64,
                    ..id
                },
                outbox,
                actor: actor.to_string(),
            },
            now,
        )
        .await?;
    Ok((rotation, descriptor, peers))
}

/// The stored rows of the own keys after a new key `new` (kept at `new_path`) joined
/// `published`: the other keys keep the paths they were stored with.
pub(crate) fn own_key_rows(
    published: &[PublishedKey],
    new: &NodeKey,
    new_path: &Path,
    stored: &[OwnKey],
) -> Vec<OwnKey> {
    published
        .iter()
        .map(|k| OwnKey {
            key_id: k.key_id.to_string(),
            key_path: if &k.key_id == new.key_id() {
                new_path.display().to_string()
            } else {
                stored
                    .iter()
                    .find(|o| o.key_id == k.key_id.as_str())
                    .map(|o| o.key_path.clone())
                    .unwrap_or_default()
            },
            public_key: k.public_key.to_hex(),
            valid_from: k.valid_from,
            valid_until: k.valid_until,
        })
        .collect()
}

/// What a key rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    pub new_key_id: String,
    pub old_key_id: String,
    pub old_valid_until: Timestamp,
    pub descriptor_serial: u64,
    /// How many peers the rotation statement was queued for.
    pub peers_told: usize,
}

impl Node {
    /// Creates the node's signing key (file mode 0600), TLS certificate and first signed
    /// descriptor. Part of creating a node (see `setup`); no principal exists yet.
    pub async fn create_identity(
        &self,
        agency: &Agency,
        p: &IdentityParams,
        now: Timestamp,
    ) -> ServiceResult<NodeDescriptor> {
        Ok(create_identity(&self.store, agency, p, now).await?)
    }

    /// Replaces the signing key (admins only); the old key stays valid until
    /// `old_valid_until` and every peer is told in the same transaction. A running node signs
    /// with the new key after a restart.
    pub async fn rotate_key(
        &self,
        p: &Principal,
        old_valid_until: Timestamp,
        now: Timestamp,
    ) -> ServiceResult<RotationReport> {
        require(p.role.may_administer(), "rotating the node's signing key", p)?;
        if old_valid_until < now {
            return Err(crate::ServiceError::invalid(
                "overlap",
                "the old key must stay valid until now or later",
            ));
        }
        let (rot, d, peers_told) = rotate_key(&self.store, &p.username, old_valid_until, now).await?;
        Ok(RotationReport {
            new_key_id: rot.new_key.key_id.to_string(),
            old_key_id: rot.old_key_id.to_string(),
            old_valid_until,
            descriptor_serial: d.serial,
            peers_told,
        })
    }
}
