//! Peers: pinning a peer from its peer file after the operator compared its fingerprint out of
//! band, listing and unpinning peers, and this node's own peer file.

use super::identity::{PEER_FILE_FORMAT, PeerFile};
use super::{FedError, pinned_from_store};
use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::directory::{Agency, AgencyKind};
use liaison_core::jurisdiction::Jurisdiction;
use liaison_core::record::{PeerKeyRecord, PeerRecord, Principal};
use liaison_store::PeerPin;
use liaison_wire::{NodeDescriptor, PinnedPeer};

impl From<FedError> for ServiceError {
    fn from(e: FedError) -> Self {
        match e {
            FedError::Store(s) => s.into(),
            FedError::Config(m) => ServiceError::Invalid(vec![liaison_core::request::FieldError {
                field: "federation".into(),
                message: m,
            }]),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// Reads a peer file, or a bare signed descriptor (the agency entry is then made from it).
pub fn parse_peer_file(bytes: &[u8]) -> Result<PeerFile> {
    if let Ok(pf) = serde_json::from_slice::<PeerFile>(bytes) {
        return Ok(pf);
    }
    let d = NodeDescriptor::from_slice(bytes)
        .map_err(|e| ServiceError::invalid("peer_file", format!("neither a peer file nor a descriptor: {e}")))?;
    let agency = Agency {
        id: d.agency_id,
        code: d.node_id.as_str().to_ascii_uppercase(),
        name_en: d.agency_name.clone(),
        name_native: d.agency_name.clone(),
        name_zh: String::new(),
        jurisdiction: d.jurisdiction,
        kind: AgencyKind::Police,
        time_zone: "UTC".into(),
    };
    Ok(PeerFile {
        format: PEER_FILE_FORMAT.into(),
        descriptor: d,
        agency,
        revocations: Vec::new(),
    })
}

/// The stored record of a pinned peer, if it is pinned.
pub(crate) async fn stored_peer(node: &Node, node_id: &str) -> Result<Option<PeerRecord>> {
    Ok(node.store.fed_peers().await?.into_iter().find(|r| r.node_id == node_id))
}

/// The stored form of a pinned peer and its key history.
pub(crate) fn peer_rows(
    p: &PinnedPeer,
    descriptor: String,
    added_at: Timestamp,
) -> Result<(PeerRecord, Vec<PeerKeyRecord>)> {
    let rec = PeerRecord {
        node_id: p.node_id.to_string(),
        agency_id: p.agency_id.to_string(),
        base_url: p.base_url.clone(),
        tls_cert_sha256: p.tls_cert_sha256.to_hex(),
        serial: p.descriptor_serial as i64,
        pinned: serde_json::to_string(p).map_err(|e| ServiceError::Internal(e.to_string()))?,
        descriptor,
        added_at,
    };
    let keys = p
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
    Ok((rec, keys))
}

impl Node {
    /// Pins the peer of `pf` if its descriptor fingerprint is `fingerprint` (what the peer's
    /// operator read out, hex, colons allowed), and registers its agency and jurisdiction when
    /// the directory lacks them, all in one transaction. Admins only.
    pub async fn pin_peer(
        &self,
        p: &Principal,
        pf: &PeerFile,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<PinnedPeer> {
        require(p.role.may_administer(), "pinning peers", p)?;
        let want = fingerprint.replace(':', "").trim().to_ascii_lowercase();
        let got = pf
            .descriptor
            .fingerprint()
            .map_err(|e| ServiceError::Integrity(format!("descriptor: {e}")))?
            .to_hex();
        if want != got {
            return Err(ServiceError::Integrity(format!(
                "descriptor fingerprint is {got}, but you expected {want}: do not pin this peer"
            )));
        }
        let pinned =
            PinnedPeer::pin(&pf.descriptor).map_err(|e| ServiceError::Integrity(format!("descriptor: {e}")))?;
        if let Some(own) = self.store.fed_identity().await?
            && own.node_id == pinned.node_id.as_str()
        {
            return Err(ServiceError::invalid("peer_file", "that is this node's own descriptor"));
        }
        if pf.agency.id != pf.descriptor.agency_id || pf.agency.jurisdiction != pf.descriptor.jurisdiction {
            return Err(ServiceError::Integrity(
                "the agency entry does not match the signed descriptor (id or jurisdiction)".into(),
            ));
        }
        if pf.format != PEER_FILE_FORMAT {
            return Err(ServiceError::invalid(
                "format",
                format!("'{}' is not {PEER_FILE_FORMAT}", pf.format),
            ));
        }
        // The peer names its own agency: held to the rules of a local directory entry (a code
        // like "=HYPERLINK(…)" would otherwise reach reports and CSV exports).
        let errs = crate::directory::check_agency(&pf.agency, "agency.");
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        let jurisdiction = if self
            .store
            .jurisdictions()
            .await?
            .iter()
            .any(|j| j.code == pf.agency.jurisdiction)
        {
            None
        } else {
            Some(Jurisdiction {
                code: pf.agency.jurisdiction,
                name_en: pf.agency.jurisdiction.to_string(),
                name_zh: pf.agency.jurisdiction.to_string(),
            })
        };
        let agency = match self.store.agency(pf.agency.id).await {
            Ok(_) => None,
            // The name Chinese pages show is set by this node's administrator, never by a peer.
            Err(liaison_store::StoreError::NotFound(_)) => Some(Agency {
                name_zh: String::new(),
                ..pf.agency.clone()
            }),
            Err(e) => return Err(e.into()),
        };
        let existing = stored_peer(self, pinned.node_id.as_str()).await?;
        // Pinning a known peer again (its operator sent a new descriptor, for example after
        // revoking a compromised key): every key pinned before stays (closed), revoked keys stay
        // revoked, and the revocations the file carries are applied.
        let mut pinned = match &existing {
            Some(rec) => {
                let keys = self.store.fed_peer_keys(&rec.node_id).await?;
                let before = super::pinned_from_store(rec, &keys)?;
                let mut merged = before
                    .repin(&pf.descriptor)
                    .map_err(|e| ServiceError::Integrity(format!("descriptor: {e}")))?;
                merged.revoked_keys = before.revoked_keys.clone();
                merged
            }
            None => pinned,
        };
        for r in &pf.revocations {
            pinned
                .apply_revocation(r)
                .map_err(|e| ServiceError::Integrity(format!("revocation of key {}: {e}", r.key_id)))?;
        }
        let descriptor = String::from_utf8(
            liaison_wire::to_canonical(&pf.descriptor).map_err(|e| ServiceError::Internal(e.to_string()))?,
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let (peer, keys) = peer_rows(&pinned, descriptor, existing.map_or(now, |e| e.added_at))?;
        self.store
            .fed_pin_peer(
                &PeerPin {
                    jurisdiction,
                    agency,
                    peer,
                    keys,
                },
                &p.username,
                now,
            )
            .await
            .map_err(|e| match e {
                liaison_store::StoreError::Duplicate(m) => ServiceError::Conflict(format!(
                    "{m} already exists (choose another agency code for the peer's agency)"
                )),
                other => other.into(),
            })?;
        Ok(pinned)
    }

    /// Every pinned peer (admins and auditors).
    pub async fn peers(&self, p: &Principal) -> Result<Vec<PeerRecord>> {
        require(p.role.may_audit(), "listing peers", p)?;
        Ok(self.store.fed_peers().await?)
    }

    /// A pinned peer as it is trusted now: its descriptor's view with every key it ever used.
    pub async fn pinned_peer(&self, p: &Principal, node_id: &str) -> Result<PinnedPeer> {
        require(p.role.may_audit(), "reading peers", p)?;
        let rec = stored_peer(self, node_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("peer {node_id}")))?;
        let keys = self.store.fed_peer_keys(node_id).await?;
        Ok(pinned_from_store(&rec, &keys)?)
    }

    /// Unpins a peer: its messages are refused from now on; history and ledger stay. Admins only.
    pub async fn remove_peer(&self, p: &Principal, node_id: &str) -> Result<()> {
        require(p.role.may_administer(), "unpinning peers", p)?;
        Ok(self.store.fed_remove_peer(node_id).await?)
    }

    /// This node's peer file, for other operators. Not secret: any user may read it.
    pub async fn own_peer_file(&self) -> Result<PeerFile> {
        super::identity::own_peer_file(&self.store)
            .await?
            .ok_or_else(|| ServiceError::NotFound("this node's federation identity (run liaison init)".into()))
    }
}
