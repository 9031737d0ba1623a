//! # liaison-core
//!
//! The words and rules of cross-border assistance, with no I/O: identifiers, jurisdictions,
//! the directory, assistance requests, their lifecycle, deadlines, and TLP markings.
//!
//! Architecture invariant: this crate knows nothing about storage, HTTP, the network or the
//! clock (callers pass `now`). Every other crate depends on it; it depends on none of them.

pub mod directory;
pub mod ids;
pub mod jurisdiction;
pub mod lifecycle;
pub mod request;
pub mod sla;
pub mod stats;
pub mod tlp;

pub use ids::{AgencyId, ContactId, EventId, RequestId, UserId};
pub use jurisdiction::CountryCode;
pub use lifecycle::{Actor, Role, Side, State};
pub use request::{DataCategory, RequestKind, Urgency};
pub use tlp::Tlp;

/// A word that is not one of the values a field accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}'; expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}
