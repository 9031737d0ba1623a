//! What the node keeps, as plain data: the rows the store reads and writes and the use cases
//! hand to the CLI, the API and the web UI. No I/O here; the store maps these to SQL and the
//! service decides who may see them.

mod audit;
mod evidence;
mod federation;
mod requests;
mod search;
mod users;
mod work;

pub use audit::{AuditEntry, AuditReport, Integrity};
pub use evidence::{EvidenceFile, EvidenceKind, EvidenceUpload, LegalHold};
pub use federation::{
    FedIdentity, InboxRow, LeafRow, OutboxRow, OutboxStats, OwnKey, PeerKeyRecord, PeerRecord, ReceiptRow, SthRecord,
};
pub use requests::{
    AgencyFilter, EventRecord, Page, RawJson, RequestFilter, RequestSummary, StoredRequest, due_cursor,
    format_reference, parse_due_cursor, parse_reference,
};
pub use search::{IncomingMatch, IndicatorMatch, SavedSearch, SearchHit, SearchPage, SearchSource, TargetLookup};
pub use users::{Principal, TokenInfo, User};
pub use work::{Assignment, Awaiting, Notification, QueueCounts, Sort, Unit, UserPrefs, WorkState};
