//! The audit log as read back.

use serde::Serialize;

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: jiff::Timestamp,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The outcome of [`Store::verify_audit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub entries: i64,
    pub head_hash: String,
    /// The first problem found, with the audit entry it concerns; `None` if intact. Problems
    /// are: an entry whose hash does not match (altered, missing, reordered, log truncated),
    /// an anchor in the ledger that the chain no longer matches (rewritten and rechained), and
    /// a request or comment whose stored content no longer matches the digest its latest
    /// audit entry recorded (changed outside the node).
    pub first_bad: Option<(i64, String)>,
    /// How many problems were found in all.
    pub problems: u64,
    /// Audit anchors in the ledger that were checked against the chain.
    pub anchors_checked: u64,
    /// The last anchored entry: rewriting the log up to here is detected even if the chain is
    /// recomputed (the anchor is in the ledger, whose tree heads peers keep).
    pub last_anchored_seq: Option<i64>,
    /// Requests whose content, state and version were checked against their audit entries.
    pub requests_checked: u64,
    /// Comments whose text was checked against their audit entries.
    pub comments_checked: u64,
    /// Evidence files whose digest, size and request were checked against their
    /// `evidence.upload` entries (docs/evidence.md).
    pub evidence_checked: u64,
    /// Requests and comments written before audit entries carried digests (not checked).
    pub unchecked_legacy: u64,
}

impl AuditReport {
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// The result of a node's last database integrity check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Integrity {
    /// Not checked yet (a check is running or about to).
    Pending,
    /// Checked, no problem found.
    Ok { checked_at: jiff::Timestamp },
    /// Checked: the database is damaged. `detail` is what the check printed first.
    Corrupt {
        checked_at: jiff::Timestamp,
        detail: String,
    },
    /// The backend checks itself (PostgreSQL).
    NotApplicable,
}
