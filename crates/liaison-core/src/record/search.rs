//! Search (docs/search.md): what a search finds and what a user saves.

use crate::UserId;
use crate::request::string_enum;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

string_enum! {
    /// Where a found text is: a request's own text (its reference, case reference and
    /// summary), a comment on it, or the name of an evidence file.
    SearchSource {
        Request = "request",
        Comment = "comment",
        File = "file",
    }
}

/// A search a user saved under a name: the search's parameters as a query string
/// (`q=phishing&state=received`), which the API, the CLI and the web pages all read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedSearch {
    pub id: String,
    #[serde(skip)]
    pub user: UserId,
    pub name: String,
    pub query: String,
    pub created_at: jiff::Timestamp,
}

/// One found text with the request it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub source: SearchSource,
    /// The comment's event id or the file's id (the request's id for its own text).
    pub item_id: String,
    /// When the text was written.
    pub at: jiff::Timestamp,
    /// The request, as listed.
    pub request: super::RequestSummary,
    /// Where in the request's own text the words were found: `summary`, `case_reference` or
    /// `reference` (for the other sources, the source's name).
    pub field: String,
    /// An excerpt with the places that match.
    pub snippet: crate::search::Snippet,
}

/// One page of a search: the hits, the cursor of the next page, and how many texts match in
/// all (counting stops at [`SearchPage::CAP`]; `count_capped` then says "at least").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub count: u64,
    pub count_capped: bool,
}

impl SearchPage {
    /// Where counting stops.
    pub const CAP: u64 = 1_000;
}

/// A clean-up indicator found by an identifier look-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndicatorMatch {
    pub kind: String,
    pub value: String,
    pub classification: String,
    pub status: String,
    /// The partner whose network holds it, if routed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    pub last_seen: jiff::Timestamp,
    pub tlp: String,
    /// Notices that listed it (issued by the reader's agency or addressed to it).
    pub notices: Vec<String>,
}

/// An item of a notice another node sent the reader's agency, found by a look-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncomingMatch {
    pub sender: String,
    pub notice: String,
    pub kind: String,
    pub value: String,
    pub status: String,
    pub tlp: String,
}

/// What an identifier look-up found (docs/search.md): "this address appears in 3 requests and
/// 1 notice".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetLookup {
    /// The kind the identifier was read as (`ip`, `network`, `domain`, `phone`, …).
    pub kind: String,
    /// The identifier as normalized (`192.0.2.1`, `+8613800138000`, `xn--bcher-kva.example`).
    pub identifier: String,
    /// How many requests the reader may see have it among their targets (counting stops at
    /// [`SearchPage::CAP`]).
    pub request_count: u64,
    pub request_count_capped: bool,
    /// The newest of them (at most 50).
    pub requests: Vec<super::RequestSummary>,
    /// Clean-up indicators of the reader's agency under it (for roles that work clean-up).
    pub indicators: Vec<IndicatorMatch>,
    /// Notices that listed it: issued by or to the reader's agency, and received from other
    /// nodes.
    pub notice_count: u64,
    pub incoming: Vec<IncomingMatch>,
}
