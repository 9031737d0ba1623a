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
    /// Marking defaults and declared clients ([`Node::with_markings`], docs/markings.md).
    pub(crate) markings: Arc<liaison_core::marking::MarkingConfig>,
    /// [intel] The intel guard, ingest jobs and spool directory ([`crate::intel_ingest`]).
    pub(crate) intel_rt: Arc<crate::intel_ingest::IntelRuntime>,
    /// Evidence directory, key file and retention ([`Node::with_evidence`]).
    pub(crate) evidence: Arc<crate::evidence::EvidenceRuntime>,
    /// `[letter]`: the formal letter's font and source language ([`Node::with_letter_config`]).
    pub(crate) letter: Arc<crate::letter::LetterConfig>,
    pub(crate) letter_font: Arc<crate::letter::FontCache>,
    /// `[taxii]`: collections and page sizes ([`Node::with_taxii_config`]).
    pub(crate) taxii: Arc<crate::taxii::TaxiiConfig>,
    /// TAXII status resources of this process.
    pub(crate) taxii_rt: Arc<crate::taxii::TaxiiRuntime>,
    /// `[pull.*]`: partners' TAXII collections and MISP feeds, and the data directory
    /// ([`Node::with_pull_sources`]).
    pub(crate) pull: Arc<(crate::intel_pull::PullSources, std::path::PathBuf)>,
    /// `[work]`: reminder lead times and the digest hour ([`Node::with_work_config`]).
    pub(crate) work: Arc<crate::work::WorkConfig>,
    /// `[notify]`: the SMTP relay and webhooks ([`Node::with_notify`]).
    pub(crate) notify: Arc<crate::deliver::NotifyRuntime>,
    /// `[sign_in]`: passwords, second factors, locks and sessions ([`Node::with_sign_in`]).
    pub(crate) sign_in: Arc<crate::sign_in::SignInConfig>,
    /// The key of `[sign_in] key_file`, read on first use (`sign_in_seal`).
    pub(crate) factor_key: Arc<std::sync::OnceLock<std::result::Result<Option<[u8; 32]>, String>>>,
    /// `[approval]`: four eyes before sending ([`Node::with_approval`]).
    pub(crate) approval: Arc<liaison_core::approval::ApprovalPolicy>,
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
            markings: Default::default(),
            intel_rt: Default::default(),
            evidence: Default::default(),
            letter: Default::default(),
            letter_font: Default::default(),
            taxii: Default::default(),
            taxii_rt: Default::default(),
            pull: Default::default(),
            work: Default::default(),
            notify: Default::default(),
            sign_in: Default::default(),
            factor_key: Default::default(),
            approval: Default::default(),
        }
    }

    /// Sets `[work]` (reminder lead times, the digest hour).
    pub fn with_work_config(mut self, c: crate::work::WorkConfig) -> Self {
        self.work = Arc::new(c);
        self
    }

    /// Whether the database answers (the health check).
    pub async fn health(&self) -> Health {
        let db = self.store.health().await;
        let min_free = min_free_bytes();
        let mut problems = Vec::new();
        if let Some(e) = &db.unreachable {
            problems.push(format!("the database does not answer: {e}"));
        }
        if let liaison_core::record::Integrity::Corrupt { detail, .. } = &db.integrity {
            problems.push(format!(
                "the database is damaged ({detail}); stop the node and restore the last backup (liaison restore)"
            ));
        }
        if let Some(free) = db.free_bytes
            && free < min_free
        {
            problems.push(format!(
                "the disk holding the database is nearly full: {} MiB free, below the minimum of {} MiB (LIAISON_MIN_FREE_MB); free space before writes fail",
                free / (1024 * 1024),
                min_free / (1024 * 1024)
            ));
        }
        Health {
            ok: problems.is_empty(),
            database: if db.unreachable.is_some() {
                "unreachable"
            } else if matches!(db.integrity, liaison_core::record::Integrity::Corrupt { .. }) {
                "corrupt"
            } else if db.free_bytes.is_some_and(|f| f < min_free) {
                "disk_full"
            } else {
                "ok"
            },
            integrity: db.integrity,
            disk_free_bytes: db.free_bytes,
            problems,
        }
    }

    /// Resolves a bearer token to a principal.
    pub async fn authenticate(&self, token: &str, now: Timestamp) -> Result<Principal> {
        self.store
            .authenticate(token, now)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("the token is unknown, expired or revoked".into()))
    }
}

/// What `/health` answers: `ok` is false when any problem is listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    pub ok: bool,
    /// `ok`, `unreachable`, `corrupt` or `disk_full`.
    pub database: &'static str,
    pub integrity: liaison_core::record::Integrity,
    /// SQLite: bytes free on the database's file system.
    pub disk_free_bytes: Option<u64>,
    /// Each problem in words, with what to do.
    pub problems: Vec<String>,
}

/// The free space below which the node reports itself unhealthy: `LIAISON_MIN_FREE_MB`
/// (default 100 MiB), so operators learn of a filling disk before writes fail.
fn min_free_bytes() -> u64 {
    std::env::var("LIAISON_MIN_FREE_MB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(100)
        .saturating_mul(1024 * 1024)
}
