//! Why a use case did not go through.

use liaison_core::lifecycle::State;
use liaison_core::request::FieldError;
use liaison_store::StoreError;

/// Why a use case did not go through. Each maps to one HTTP status and one CLI exit code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// One or more fields are wrong (400).
    #[error("invalid input: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No or bad credentials (401).
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Authenticated but not allowed (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Unknown, or not visible to the caller (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// Illegal transition (409), with the states that are allowed from here.
    #[error("{message}")]
    IllegalTransition { message: String, allowed: Vec<State> },
    /// Stale version or duplicate (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// What should match does not: a fingerprint, a signature, a hash chain (422; CLI exit 7).
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// Someone else is doing this now (409 with `Retry-After`; CLI exit 5): one ingest at a
    /// time per node.
    #[error("busy: {message}")]
    Busy { message: String, retry_after_secs: u64 },
    /// The input was read but cannot be used as a whole (422; CLI exit 3): a feed whose
    /// columns do not match its format, or of which no row was accepted.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// The request lacks what the asked output must contain (422; CLI exit 3): the formal
    /// letter's missing particulars, each named with its field and what to do.
    #[error("missing particulars:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Incomplete(Vec<FieldError>),
    /// The store failed (500). Details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError {
            field: field.to_string(),
            message: message.into(),
        }])
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServiceError::NotFound(m),
            StoreError::Conflict(m) => ServiceError::Conflict(m),
            StoreError::Duplicate(m) => ServiceError::Conflict(format!("{m} already exists")),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
