//! Requests, their history and listings.

use crate::lifecycle::State;
use crate::request::{AssistanceRequest, RequestKind, Urgency};
use crate::sla::DeadlineKind;
use crate::{AgencyId, CountryCode, EventId, RequestId};
use serde::Serialize;

/// A JSON document kept as its text: read from the database and written into an answer
/// without being taken apart and put together again (a legal assessment is about 10 KB, and
/// every read of a submitted request carries it). [`RawJson::value`] parses it when needed.
#[derive(Debug, Clone)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// Checks that `text` is one JSON value and keeps it as it is.
    pub fn from_text(text: String) -> std::result::Result<RawJson, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(RawJson)
    }

    /// Serialises `value` once.
    pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> std::result::Result<RawJson, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(RawJson)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses the text into `T` (a [`serde_json::Value`], or a typed document).
    pub fn value<T: serde::de::DeserializeOwned>(&self) -> std::result::Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A request with what the node stored beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRequest {
    /// The node's human-readable reference (`FBI-2026-0042`), unique on the node; accepted
    /// wherever a request id is.
    pub reference: String,
    #[serde(flatten)]
    pub request: AssistanceRequest,
    /// The legal assessment made when the request was submitted (JSON of a
    /// `liaison_law::Assessment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment: Option<RawJson>,
    /// Content hash of the rule packs that produced the assessment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_pack_version: Option<String>,
    /// The deadline currently running and whether it has passed (computed at read time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overdue: Option<DeadlineKind>,
}

/// A line of a request's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    pub id: EventId,
    pub request: RequestId,
    pub at: jiff::Timestamp,
    pub actor: String,
    /// created, transition, comment, escalation, assessment
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_state: Option<State>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_state: Option<State>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// Filters for listing requests. All given filters must match.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// Only requests this agency sends or receives (the caller's scope).
    pub visible_to: Option<AgencyId>,
    pub states: Vec<State>,
    pub kind: Option<crate::RequestKind>,
    pub requesting: Option<AgencyId>,
    pub requested: Option<AgencyId>,
    /// Only requests whose running deadline passed before `overdue_at`.
    pub overdue_at: Option<jiff::Timestamp>,
    pub updated_since: Option<jiff::Timestamp>,
    /// Cursor: only ids strictly older than this one.
    pub before: Option<RequestId>,
    pub limit: u32,
    /// The other party, whichever way the request goes (with `visible_to`).
    pub counterpart: Option<AgencyId>,
    /// Whose move it waits for, seen from `visible_to` (needs it).
    pub awaiting: Option<super::Awaiting>,
    /// Owned by this user (for `visible_to`'s side).
    pub owner: Option<crate::UserId>,
    /// With `owner`: also owned by these users (colleagues away who named the owner their
    /// delegate; `Queue::Mine`).
    pub also_owners: Vec<crate::UserId>,
    /// Only requests nobody owns yet (for `visible_to`'s side).
    pub unowned: bool,
    /// Assigned to one of these units.
    pub units: Vec<crate::UnitId>,
    /// Watched by this user.
    pub watcher: Option<crate::UserId>,
    /// Only requests whose running deadline falls before this instant (passed ones included).
    pub due_before: Option<jiff::Timestamp>,
    /// Created in this window.
    pub created_from: Option<jiff::Timestamp>,
    pub created_to: Option<jiff::Timestamp>,
    /// The order; with [`super::Sort::Due`] the cursor is `after_due`.
    pub sort: super::Sort,
    /// Cursor of a listing sorted by due date: (due instant in ms or `i64::MAX`, id) of the
    /// last item of the previous page.
    pub after_due: Option<(i64, RequestId)>,
    /// Cursor of a listing oldest first: only ids strictly newer than this one.
    pub after: Option<RequestId>,
    /// Only requests whose own text, comments or file names match these words (as the
    /// reader `reader` may see them; docs/search.md).
    pub text: Option<crate::search::Query>,
    /// The reader's user name (with `visible_to`): markings that name users.
    pub reader: Option<String>,
    /// Only requests with this case reference (exactly as written, spaces at the ends aside).
    pub case_reference: Option<String>,
    /// Only requests with a target under one of these normalized identifier keys, each an
    /// inclusive range (`lo == hi` for one key; docs/search.md).
    pub target_keys: Vec<(String, String)>,
}

/// A request as listed: what the columns hold, without the body (facts, targets, offences)
/// or the assessment. Field names are those of the full request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestSummary {
    /// The node's human-readable reference (`FBI-2026-0042`).
    pub reference: String,
    pub id: RequestId,
    pub kind: RequestKind,
    pub urgency: Urgency,
    pub state: State,
    pub version: i64,
    pub requesting_agency: AgencyId,
    pub requested_agency: AgencyId,
    pub case_reference: String,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_due: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_due: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserved_until: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub information_due: Option<jiff::Timestamp>,
    /// The deadline currently running and whether it has passed (computed at read time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overdue: Option<DeadlineKind>,
    /// How far the request may travel (docs/markings.md).
    pub marking: crate::marking::Marking,
}

/// One page of a listing; pass `next` as `before` for the following page.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Narrows an agency listing.
#[derive(Debug, Clone, Default)]
pub struct AgencyFilter {
    pub jurisdiction: Option<CountryCode>,
}

/// The cursor of a listing sorted by due date after the item due at `due` (ms; `None`: no
/// deadline, sorted last) with id `id`: `d<ms>.<id>`.
pub fn due_cursor(due: Option<i64>, id: RequestId) -> String {
    format!("d{}.{id}", due.unwrap_or(i64::MAX))
}

/// Reads a cursor made by [`due_cursor`].
pub fn parse_due_cursor(c: &str) -> Option<(i64, RequestId)> {
    let (d, id) = c.strip_prefix('d')?.split_once('.')?;
    Some((d.parse().ok()?, id.parse().ok()?))
}

/// A request's reference as shown: `PREFIX-NNNN` (the number with at least four digits).
pub fn format_reference(prefix: &str, seq: i64) -> String {
    format!("{prefix}-{seq:04}")
}

/// Splits a reference (`CN-MPS-2026-0042`, upper case) into its prefix and number; `None`
/// unless it ends in `-YYYY-N…` with 1–9 digits (N > 0) and the prefix is at most 40
/// characters of `A-Z 0-9 - _`. The input comes from users and from peers: it is never trusted
/// further than this.
pub fn parse_reference(reference: &str) -> Option<(String, i64)> {
    let r = reference.trim();
    let (prefix, num) = r.rsplit_once('-')?;
    let (_, year) = prefix.rsplit_once('-')?;
    let ok_num = !num.is_empty() && num.len() <= 9 && num.bytes().all(|b| b.is_ascii_digit());
    let ok_year = year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit());
    let ok_prefix = prefix.len() <= 40
        && prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !(ok_num && ok_year && ok_prefix) {
        return None;
    }
    let n: i64 = num.parse().ok()?;
    (n > 0).then(|| (prefix.to_string(), n))
}
