//! Working the requests: units, owners, watchers, queues, notifications and users' preferences.
//! All of it is local to the node: none of it travels to peers.

use crate::{AgencyId, NotificationId, RequestId, UnitId, UserId};
use serde::{Deserialize, Serialize};

/// A unit (team) within an agency: a desk shift, a squad, the legal office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub id: UnitId,
    pub agency: AgencyId,
    /// Short name, unique in the agency (`desk`, `cyber-2`).
    pub code: String,
    pub name: String,
    /// User names of its members.
    pub members: Vec<String>,
}

/// Who works a request for one of its agencies on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Assignment {
    /// The agency this assignment is for (a node hosting both agencies keeps one each).
    pub agency: Option<AgencyId>,
    /// User name of the owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Code of the unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// User names of the watchers (of this agency).
    pub watchers: Vec<String>,
}

/// A request's work state for the reader: its assignment, whose move it waits for, and the
/// running deadline in words a person reads ("answer due in 3 days", "acknowledgement 5 h late").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkState {
    pub assignment: Assignment,
    /// `us` or `partner`, from the reader's agency's side; absent when the request is closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<Awaiting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<crate::sla::DeadlineKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<jiff::Timestamp>,
    /// Milliseconds until the deadline (negative: late by that much).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_in_ms: Option<i64>,
}

/// Whose move a request waits for, seen from one of its agencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Awaiting {
    Us,
    Partner,
}

impl std::str::FromStr for Awaiting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "us" => Ok(Awaiting::Us),
            "partner" => Ok(Awaiting::Partner),
            _ => Err(format!("'{s}' is not us or partner")),
        }
    }
}

/// The order of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Newest first (the default).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// The running deadline, soonest (or latest) first; requests without one come last.
    Due,
}

impl std::str::FromStr for Sort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "newest" => Ok(Sort::Newest),
            "oldest" => Ok(Sort::Oldest),
            "due" => Ok(Sort::Due),
            _ => Err(format!("'{s}' is not newest, oldest or due")),
        }
    }
}

/// How many requests each queue of a user holds (each count stops at `cap`: a count equal to
/// `cap` means "at least that many").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct QueueCounts {
    /// Where every count below stops ([`QueueCounts::CAP`]).
    pub cap: u64,
    pub mine: u64,
    pub my_units: u64,
    pub waiting_on_us: u64,
    pub waiting_on_partner: u64,
    pub overdue: u64,
    pub unassigned_incoming: u64,
    pub unread_notifications: u64,
}

impl QueueCounts {
    /// Counts stop here ("1000+"): a queue that long needs a person, not a number (the
    /// cooperation report has the totals). Counting further costs more than the rest of a home
    /// page (bench/queues/README.md: up to 200 ms for 10,000 unassigned requests at 1,000,000).
    pub const CAP: u64 = 1_000;

    /// A count as shown: the number, or "1000+" when it reached the cap.
    pub fn shown(&self, v: u64) -> String {
        if self.cap > 0 && v >= self.cap {
            format!("{}+", self.cap)
        } else {
            v.to_string()
        }
    }
}

/// A line of a user's inbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub id: NotificationId,
    pub at: jiff::Timestamp,
    /// incoming, partner_answer, partner_change, partner_comment, comment, change,
    /// deadline_approaching, deadline_passed, escalated, assigned, expired, digest
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestId>,
    /// What the line says, as data (state, deadline, due instant, actor …); the faces word it.
    pub data: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_at: Option<jiff::Timestamp>,
}

/// A user's own settings for working and being told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UserPrefs {
    /// `en` or `zh-CN` (default: the node's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// IANA zone for times shown and "due before" (default: the agency's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Where e-mail notifications go (none: no e-mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Kinds of notification also sent by e-mail (default: incoming, partner_answer,
    /// deadline_approaching, deadline_passed, escalated, expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_kinds: Option<Vec<String>>,
    /// A daily digest (supervisors: on unless turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<bool>,
    /// While away: who acts for this user (a user name of the same agency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<String>,
    /// Away until this instant (the delegate is told what the owner would be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away_until: Option<jiff::Timestamp>,
    /// The user's id (filled in by the store; not settable).
    #[serde(skip)]
    pub user: Option<UserId>,
}
