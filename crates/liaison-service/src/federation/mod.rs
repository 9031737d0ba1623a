//! Federation, node side (docs/federation.md, sections marked [node]): the HTTPS endpoints
//! under `/federation/v1/`, the pinned TLS client, the outbox delivery worker, the peer tree
//! head watcher, and the application of incoming envelopes to mirrored requests.
//!
//! Architecture invariants:
//! - every outgoing message is written to the outbox in the transaction of the change that
//!   caused it ([`outgoing_for_transition`], [`outgoing_for_comment`]);
//! - an incoming envelope is verified completely (`Envelope::verify`) before anything is
//!   written; its effect, inbox row, link advance, `received` ledger leaf and receipt commit
//!   together; rejections are logged with their stable code and nothing is applied;
//! - the in-memory Merkle log is only ever extended from the stored leaves ([`Federation::sync_log`]).

pub mod anchor;
mod apply;
pub mod bulk;
pub mod identity;
pub mod ledger;
pub mod peers;
pub mod receive;
pub mod recovery;
pub mod revoke;
pub mod tls;
pub mod transport;
mod watch;
mod worker;

pub use apply::{outgoing_for_comment, outgoing_for_marking, outgoing_for_transition};
pub use identity::{IdentityParams, PeerFile, RotationReport};
pub use ledger::{FederationStatus, LedgerOverview, LedgerReport};
pub use peers::parse_peer_file;

use crate::node::Node;
use jiff::{SignedDuration, Timestamp};
use liaison_core::record::{FedIdentity, SthRecord};
use liaison_store::StoreError;
use liaison_wire::{
    Hash256, KeyId, Keyring, MerkleLog, NodeDescriptor, NodeId, NodeKey, PeerSet, PinnedPeer, PublicKeyBytes,
    PublishedKey, Sth,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What can go wrong in the federation layer.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] liaison_wire::KeyFileError),
    #[error(transparent)]
    Descriptor(#[from] liaison_wire::DescriptorError),
    #[error(transparent)]
    Canon(#[from] liaison_wire::CanonError),
    #[error(transparent)]
    Sign(#[from] liaison_wire::SignError),
    #[error("rejected: {0}")]
    Rejected(#[from] liaison_wire::Rejection),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("peer {peer}: {message}")]
    Peer { peer: String, message: String },
    /// The peer already applied this link number from another message of ours: this node's
    /// counters are behind (restored from a backup); the link must be recovered.
    #[error(
        "peer {peer}: link_seq {link_seq} was already used for another message (link_seq_reused); recovering the link"
    )]
    SeqReused { peer: String, link_seq: u64 },
    /// The peer expects an earlier link number than the messages we are sending.
    #[error("peer {peer}: out of order, it expects link_seq {expected}")]
    OutOfOrder { peer: String, expected: u64 },
    /// This node was restored from a backup and has not yet recovered its links with every
    /// peer (its tree head is not served until then).
    #[error("recovering after a restore from backup: links with {0} not yet recovered")]
    Recovering(String),
}

impl FedError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        FedError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Tunables (environment overrides are for tests and benchmarks).
#[derive(Debug, Clone)]
pub struct FedSettings {
    /// Freshness window for incoming envelopes.
    pub max_skew: SignedDuration,
    /// How often the worker looks for new outbox rows written by other processes.
    pub poll: Duration,
    /// First retry delay; doubles per attempt up to `retry_max`, with ±50 % jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often peers' signed tree heads are fetched and checked.
    pub sth_interval: Duration,
    /// Most envelopes the worker sends in one batch (1: one envelope per request, the
    /// single-envelope endpoint).
    pub batch: usize,
    /// Per instance (several instances may share one database): where this instance's
    /// federation endpoints listen. `None`: the address stored by `liaison init` (a default
    /// for data directories made before it was configurable).
    pub listen: Option<String>,
    /// Per instance: the directory holding this instance's copy of the key files and the TLS
    /// certificate. `None`: the directory stored by `liaison init`.
    pub key_dir: Option<PathBuf>,
}

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

impl FedSettings {
    pub fn from_env() -> Self {
        FedSettings {
            max_skew: SignedDuration::from_secs(
                std::env::var("LIAISON_FED_MAX_SKEW_SECS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(300),
            ),
            poll: env_ms("LIAISON_FED_POLL_MS", 25),
            retry_base: env_ms("LIAISON_FED_RETRY_BASE_MS", 200),
            retry_max: env_ms("LIAISON_FED_RETRY_MAX_MS", 30_000),
            sth_interval: env_ms("LIAISON_FED_STH_MS", 10_000),
            batch: std::env::var("LIAISON_FED_BATCH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(64usize)
                .clamp(1, receive::MAX_BATCH),
            listen: std::env::var("LIAISON_FED_LISTEN").ok().filter(|v| !v.is_empty()),
            key_dir: std::env::var("LIAISON_FED_KEY_DIR")
                .ok()
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }
}

pub(crate) struct Inner {
    pub node: Node,
    pub identity: FedIdentity,
    pub node_id: NodeId,
    pub key: NodeKey,
    pub own_keys: Keyring,
    pub descriptor: NodeDescriptor,
    pub peers: RwLock<PeerSet>,
    pub log: tokio::sync::Mutex<MerkleLog>,
    pub wake: tokio::sync::Notify,
    /// Held while incoming envelopes are checked and committed (one request at a time).
    pub incoming: tokio::sync::Mutex<()>,
    /// Peers whose node answered 404/405 to the batch endpoint: sent one envelope at a time.
    pub single_only: std::sync::Mutex<std::collections::HashSet<String>>,
    pub settings: FedSettings,
    /// How messages reach peers (the server's pinned HTTPS client).
    pub transport: Arc<dyn transport::Transport>,
    /// Rejection logging budget (see `receive::log_rejection`).
    pub rejections: std::sync::Mutex<receive::RejectionBudget>,
    /// The directory of this instance's key files and TLS certificate.
    pub key_dir: PathBuf,
    /// Peers whose link is still to be recovered after a restore from backup (see
    /// [`recovery`]); empty in normal operation.
    pub recovering: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// The ledger size as restored from the backup (kept in the restore marker), which the
    /// link recovery requests declare; `None` when this process did not start from a restore.
    pub restore_point: Option<u64>,
    /// The evidence transfer's state in this process (docs/federation.md §12).
    pub bulk: bulk::BulkState,
}

/// A running federation layer (cheap to clone).
#[derive(Clone)]
pub struct Federation {
    pub(crate) inner: Arc<Inner>,
}

fn lock_err<T>(_: T) -> FedError {
    FedError::Config("a federation lock was poisoned".into())
}

/// Loads a pinned peer from its stored record and key history.
pub(crate) fn pinned_from_store(
    rec: &liaison_core::record::PeerRecord,
    keys: &[liaison_core::record::PeerKeyRecord],
) -> Result<PinnedPeer, FedError> {
    let mut p: PinnedPeer = serde_json::from_str(&rec.pinned)
        .map_err(|e| FedError::Ledger(format!("stored peer {} is corrupt: {e}", rec.node_id)))?;
    for k in keys {
        if p.keys.iter().any(|pk| pk.key_id.as_str() == k.key_id) {
            continue;
        }
        p.keys.push(PublishedKey {
            key_id: KeyId::parse(&k.key_id).map_err(|e| FedError::Ledger(e.to_string()))?,
            public_key: PublicKeyBytes::from_hex(&k.public_key).map_err(|e| FedError::Ledger(e.to_string()))?,
            valid_from: k.valid_from,
            valid_until: k.valid_until,
        });
    }
    Ok(p)
}

/// Reads every pinned peer from the store.
pub(crate) async fn load_peers(node: &Node) -> Result<PeerSet, FedError> {
    let mut set = PeerSet::default();
    for rec in node.store.fed_peers().await? {
        let keys = node.store.fed_peer_keys(&rec.node_id).await?;
        set.insert(pinned_from_store(&rec, &keys)?);
    }
    Ok(set)
}

/// The node's own keys (public halves, with validity) and the key to sign with now.
pub(crate) async fn load_own_keys_store(
    store: &liaison_store::Store,
    now: Timestamp,
) -> Result<(NodeKey, Vec<PublishedKey>), FedError> {
    load_own_keys_in(store, now, None).await
}

/// The same, reading the key files from `key_dir` (this instance's copy) when given: the stored
/// paths name the directory of the instance that wrote them.
pub(crate) async fn load_own_keys_in(
    store: &liaison_store::Store,
    now: Timestamp,
    key_dir: Option<&Path>,
) -> Result<(NodeKey, Vec<PublishedKey>), FedError> {
    let mut current = None;
    let mut published = Vec::new();
    for k in store.fed_own_keys().await? {
        let pk = PublishedKey {
            key_id: KeyId::parse(&k.key_id).map_err(|e| FedError::Ledger(e.to_string()))?,
            public_key: PublicKeyBytes::from_hex(&k.public_key).map_err(|e| FedError::Ledger(e.to_string()))?,
            valid_from: k.valid_from,
            valid_until: k.valid_until,
        };
        if pk.valid_at(now) {
            current = Some(k.key_path.clone());
        }
        published.push(pk);
    }
    let path = PathBuf::from(current.ok_or_else(|| FedError::Config("no signing key is valid now".into()))?);
    let path = match (key_dir, path.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => path,
    };
    Ok((NodeKey::load(&path)?, published))
}

impl Federation {
    /// Loads identity, keys, peers and the ledger of `node`. `None` if the node has no
    /// federation identity.
    pub async fn load(
        node: Node,
        settings: FedSettings,
        transport: Arc<dyn transport::Transport>,
    ) -> Result<Option<Federation>, FedError> {
        let Some(identity) = node.store.fed_identity().await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        let node_id = NodeId::parse(&identity.node_id).map_err(|e| FedError::Config(e.to_string()))?;
        let key_dir = settings
            .key_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(&identity.key_dir));
        let (key, published) = load_own_keys_in(&node.store, now, Some(&key_dir)).await?;
        let mut own_keys = Keyring::default();
        own_keys.0.insert(node_id.clone(), published);
        let descriptor = NodeDescriptor::from_slice(identity.descriptor.as_bytes())?;
        let peers = load_peers(&node).await?;
        let hashes = node
            .store
            .fed_leaf_hashes_from(0)
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, (idx, h))| {
                if idx != i as i64 {
                    return Err(FedError::Ledger(format!("ledger leaf {i} is missing (found {idx})")));
                }
                Hash256::from_hex(&h).map_err(|e| FedError::Ledger(format!("leaf {idx}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let log = MerkleLog::from_leaf_hashes(hashes);
        // After `liaison restore`, every pinned peer's link is recovered before anything else.
        let (recovering, restore_point) = if recovery::restore_pending(&key_dir) {
            (
                peers.0.keys().map(|k| k.to_string()).collect(),
                Some(recovery::restore_point(&key_dir, log.len())?),
            )
        } else {
            (Default::default(), None)
        };
        Ok(Some(Federation {
            inner: Arc::new(Inner {
                node,
                identity,
                node_id,
                key,
                own_keys,
                descriptor,
                peers: RwLock::new(peers),
                log: tokio::sync::Mutex::new(log),
                wake: tokio::sync::Notify::new(),
                incoming: tokio::sync::Mutex::new(()),
                single_only: Default::default(),
                settings,
                transport,
                rejections: Default::default(),
                key_dir,
                recovering: std::sync::Mutex::new(recovering),
                restore_point,
                bulk: Default::default(),
            }),
        }))
    }

    pub fn node_id(&self) -> &NodeId {
        &self.inner.node_id
    }

    pub fn node(&self) -> &Node {
        &self.inner.node
    }

    /// Wakes the delivery worker (new outbox rows written in this process).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub(crate) fn peers(&self) -> Result<PeerSet, FedError> {
        Ok(self.inner.peers.read().map_err(lock_err)?.clone())
    }

    /// Re-reads the pinned peers (they may be changed by `liaison peer` in another process).
    pub async fn reload_peers(&self) -> Result<(), FedError> {
        let set = load_peers(&self.inner.node).await?;
        *self.inner.peers.write().map_err(lock_err)? = set;
        Ok(())
    }

    /// Extends the in-memory log with leaves committed since it was last read.
    pub async fn sync_log(&self) -> Result<u64, FedError> {
        let mut log = self.inner.log.lock().await;
        let rows = self.inner.node.store.fed_leaf_hashes_from(log.len() as i64).await?;
        for (idx, h) in rows {
            if idx as u64 != log.len() {
                return Err(FedError::Ledger(format!(
                    "ledger leaf {} is missing (found {idx})",
                    log.len()
                )));
            }
            log.append_hash(Hash256::from_hex(&h).map_err(|e| FedError::Ledger(format!("leaf {idx}: {e}")))?);
        }
        Ok(log.len())
    }

    /// Signs a tree head over the current log; stores it if the log grew since the last one.
    pub async fn current_sth(&self) -> Result<Sth, FedError> {
        // A restored node's log may be shorter than heads it signed before the restore: no head
        // is served until every peer has been told (recovery request) that this is a restore.
        let pending = self.inner.recovering.lock().map_err(lock_err)?.clone();
        if !pending.is_empty() {
            return Err(FedError::Recovering(pending.into_iter().collect::<Vec<_>>().join(", ")));
        }
        // Every tree head a peer receives covers the audit log as it is now.
        if let Err(e) = anchor::anchor_audit(self).await {
            tracing::warn!(node = %self.inner.node_id, error = %e, "cannot anchor the audit log before signing a tree head");
        }
        self.sync_log().await?;
        let now = Timestamp::now();
        let sth = {
            let log = self.inner.log.lock().await;
            Sth::sign_log(self.inner.node_id.clone(), &log, now, &self.inner.key)?
        };
        let store = &self.inner.node.store;
        let last = store.fed_latest_sth(self.inner.node_id.as_str(), "own").await?;
        if last.is_none_or(|l| l.tree_size != sth.tree_size as i64) {
            store
                .fed_put_sth(&SthRecord {
                    node_id: self.inner.node_id.to_string(),
                    role: "own".into(),
                    tree_size: sth.tree_size as i64,
                    root_hash: sth.root_hash.to_hex(),
                    timestamp: sth.timestamp,
                    sth: String::from_utf8(liaison_wire::to_canonical(&sth)?)
                        .map_err(|e| FedError::Ledger(e.to_string()))?,
                    recorded_at: now,
                    note: None,
                })
                .await?;
        }
        Ok(sth)
    }

    /// A consistency proof between two sizes of the own log.
    pub async fn consistency(&self, from: u64, to: u64) -> Result<Vec<Hash256>, FedError> {
        self.sync_log().await?;
        let log = self.inner.log.lock().await;
        log.consistency_proof(from, to)
            .map_err(|e| FedError::Ledger(e.to_string()))
    }

    /// Checks every pinned peer's signed tree head once (see the watcher). `Ok(false)`: the
    /// peer's history is inconsistent with what it signed before (evidence stored).
    pub async fn check_peers(&self) -> Vec<(NodeId, Result<bool, FedError>)> {
        let peers = match self.peers() {
            Ok(p) => p,
            Err(e) => return vec![(self.inner.node_id.clone(), Err(e))],
        };
        let mut out = Vec::new();
        for peer in peers.0.values() {
            out.push((peer.node_id.clone(), watch::check_peer(self, peer).await));
        }
        out
    }

    /// Own signing key and the public keys of this node (for proofs).
    pub fn own_keyring(&self) -> &Keyring {
        &self.inner.own_keys
    }

    pub fn signing_key(&self) -> &NodeKey {
        &self.inner.key
    }

    /// The signed descriptor this node publishes.
    pub fn descriptor(&self) -> &NodeDescriptor {
        &self.inner.descriptor
    }

    /// Where this instance's federation endpoints listen: the instance's setting
    /// ([`FedSettings::listen`]: `[federation] listen` in liaison.toml or `LIAISON_FED_LISTEN`),
    /// else the address stored by `liaison init` (the default for older data directories).
    pub fn listen_address(&self) -> String {
        self.inner
            .settings
            .listen
            .clone()
            .unwrap_or_else(|| self.inner.identity.listen.clone())
    }

    /// The TLS configuration of the federation endpoints: the node's certificate, which must be
    /// the one its descriptor names.
    pub fn tls_server_config(&self) -> Result<rustls::ServerConfig, FedError> {
        let dir = self.inner.key_dir.clone();
        let (server_cfg, fp) = tls::server_config(&dir)?;
        if fp.to_hex() != self.inner.identity.tls_cert_sha256 {
            return Err(FedError::Tls(format!(
                "the certificate in {} ({fp}) is not the one in the node descriptor ({})",
                dir.display(),
                self.inner.identity.tls_cert_sha256
            )));
        }
        Ok(server_cfg)
    }

    /// Starts the delivery worker and the peer tree head watcher (the endpoints are served by
    /// the caller). The tasks run until aborted.
    pub async fn spawn_background(&self) -> Result<Vec<tokio::task::JoinHandle<()>>, FedError> {
        self.sync_log().await?;
        Ok(vec![
            tokio::spawn(worker::run(self.clone())),
            tokio::spawn(watch::run(self.clone())),
            tokio::spawn(anchor::run(self.clone())),
            tokio::spawn(bulk::run(self.clone())),
        ])
    }
}
