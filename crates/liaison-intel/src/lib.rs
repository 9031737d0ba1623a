//! # liaison-intel
//!
//! The clean-up pipeline: feed parsers -> MMDB enrichment (country, ASN, AS organisation) ->
//! routing to the responsible partner -> per-partner clean-up notices, partner feedback and
//! statistics; plus STIX 2.1 / MISP mappings and a synthetic demo feed.
//!
//! Architecture invariants:
//! - No network and no storage: inputs are `Read`ers, the aggregation state is a plain struct
//!   ([`aggregate::CleanupState`]) the persistence layer loads and saves. No DNS: domains are
//!   not resolved; only IP literals are enriched.
//! - Parsing never fails as a whole: every source returns its events and a
//!   [`source::SourceReport`] with quarantined rows (file:line and reason).
//! - Constant memory per source: streaming parsers, reused record buffers, bounded channels.
//!   Memory grows only with the number of *distinct* indicators.
//! - Hot paths allocate nothing per row for IP indicators (values are stored inline; words
//!   such as malware names are interned).

pub mod aggregate;
pub mod demo;
pub mod enrich;
pub mod fast_hash;
pub mod ident;
pub mod inbox;
mod json_doc;
pub mod mapping;
pub mod misp;
pub mod mmdb;
pub mod model;
pub mod pattern;
pub mod pipeline;
pub mod route;
pub mod source;
pub mod stats;
pub mod stix;
pub mod stix_in;
pub mod time;

pub use aggregate::{
    CleanupState, FeedbackStatus, Indicator, Interval, ItemStatus, Notice, NoticeId, NoticeItem, StoredNotice,
    notices_to_csv, notices_to_json,
};
pub use demo::{MmdbLayout, generate_feed, generate_mmdb};
pub use enrich::{EnrichConfig, Enricher, PrefixTable};
pub use inbox::{IncomingItem, IncomingNotice, RemoteAnswer};
pub use misp::indicator_to_misp;
pub use model::{Classification, Event, IndicatorKind, IndicatorValue, PartnerId};
pub use pipeline::{Input, IntelConfig, Pipeline, RunSummary};
pub use route::{RouteRule, Router, RoutingConfig};
pub use source::{CsvMapping, FeedFormat, ImportConfig, Limits, Progress, ProgressUpdate, SourceConfig, SourceReport};
pub use stats::{GroupBy, StatsQuery, StatsRow, event_stats, indicator_stats};
pub use stix::indicator_to_stix;
