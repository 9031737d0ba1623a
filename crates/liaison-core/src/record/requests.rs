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
}

/// A request as listed: what the columns hold, without the body (facts, targets, offences)
/// or the assessment. Field names are those of the full request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestSummary {
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
