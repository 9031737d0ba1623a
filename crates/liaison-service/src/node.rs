//! The node: what every use case works on. Its store is private to this crate, so the only
//! way to read or change a node's data is through a use case, which checks the caller's role
//! and agency first.

use crate::error::{Result, ServiceError};
use crate::legal::Legal;
use jiff::Timestamp;
use liaison_core::lifecycle::Side;
use liaison_core::record::Principal;
use liaison_core::request::AssistanceRequest;
use liaison_core::sla::SlaPolicy;
use liaison_store::Store;
use std::sync::Arc;

/// Where a request's deadlines and the requested side's clock come from.
#[derive(Clone)]
pub struct Node {
    pub(crate) store: Store,
    pub sla: Arc<SlaPolicy>,
    pub legal: Legal,
    /// How long channels actually took, fed back into assessments.
    pub experience: Arc<crate::experience::Experience>,
    /// [intel] Enrichment databases and routes ([`Node::with_intel_config`]).
    pub(crate) intel: Arc<liaison_intel::IntelConfig>,
}

pub(crate) fn side_of(p: &Principal, r: &AssistanceRequest) -> Option<Side> {
    if p.agency == r.draft.requesting_agency {
        Some(Side::Requesting)
    } else if p.agency == r.draft.requested_agency {
        Some(Side::Requested)
    } else {
        None
    }
}

pub(crate) fn require(ok: bool, what: &str, p: &Principal) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "{what} is not allowed for role {} (user {})",
            p.role, p.username
        )))
    }
}

impl Node {
    pub fn new(store: Store, sla: SlaPolicy, legal: Legal) -> Self {
        Node {
            store,
            sla: Arc::new(sla),
            legal,
            experience: Default::default(),
            intel: Default::default(),
        }
    }

    /// Whether the database answers (the health check).
    pub async fn health(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Resolves a bearer token to a principal.
    pub async fn authenticate(&self, token: &str, now: Timestamp) -> Result<Principal> {
        self.store
            .authenticate(token, now)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("the token is unknown, expired or revoked".into()))
    }
}
