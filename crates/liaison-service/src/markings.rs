//! Markings on requests and comments (docs/markings.md): the node's defaults, who may read a
//! marked request or comment, and who may change a request's marking.
//!
//! A request reaches its two agencies only (the visibility rule of `requests.rs`); its
//! marking narrows that: a `TLP:RED` request naming users reaches, at the requested agency,
//! only them. A comment is read through its request and then through its own marking, whose
//! originator is the author's agency and whose recipient is the other agency.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::marking::{Circle, Marking, MarkingConfig, MarkingError, Parties, Relation, relation};
use liaison_core::record::{EventRecord, Principal, StoredRequest};
use liaison_core::request::AssistanceRequest;
use liaison_core::{AgencyId, RequestId, Side, Tlp};
use std::sync::Arc;

/// The members of a comment's event data that hold its marking and its author's side.
pub const COMMENT_MARKING: &str = "marking";
pub const COMMENT_SIDE: &str = "side";

/// No clients and no community: a request and its comments reach their two agencies only.
struct TwoParties;

impl Circle for TwoParties {
    fn is_client(&self, _: &str, _: &str) -> bool {
        false
    }
    fn in_community(&self, _: &str) -> bool {
        false
    }
}

/// The relation of `p` to an object `originator` sent to `recipient`, naming `named`.
pub(crate) fn relation_to(p: &Principal, originator: AgencyId, recipient: AgencyId, named: &[String]) -> Relation {
    let parties = Parties {
        originator: &originator.to_string(),
        recipient: Some(&recipient.to_string()),
        named,
    };
    relation(&p.agency.to_string(), &p.username, parties, &TwoParties)
}

/// Whether the marking `m` of a request between `requesting` and `requested` admits `p`.
pub(crate) fn admits_request(p: &Principal, requesting: AgencyId, requested: AgencyId, m: &Marking) -> bool {
    m.admits(relation_to(p, requesting, requested, &m.recipients))
}

/// A comment's marking as stored in its event data (one written before markings existed:
/// the upgrade default).
pub fn comment_marking(ev: &EventRecord) -> Marking {
    ev.data
        .as_ref()
        .and_then(|d| d.get(COMMENT_MARKING))
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default()
}

/// The side whose user wrote a comment, as stored in its event data.
fn comment_side(ev: &EventRecord) -> Option<Side> {
    ev.data
        .as_ref()
        .and_then(|d| d.get(COMMENT_SIDE))
        .and_then(|s| serde_json::from_value(s.clone()).ok())
}

/// Whether `p`, who may read request `r`, may read the comment `ev` on it: the comment's
/// level is never below the request's; its originator is its author's agency.
pub(crate) fn admits_comment(p: &Principal, r: &AssistanceRequest, ev: &EventRecord) -> bool {
    let own = comment_marking(ev);
    let m = Marking {
        tlp: own.tlp.stricter(r.draft.marking().tlp),
        recipients: own.recipients,
    };
    if m.tlp != Tlp::Red {
        // Below RED both agencies of a request are its recipient organisation or originator.
        return true;
    }
    let (from, to) = match comment_side(ev) {
        Some(Side::Requested) => (r.draft.requested_agency, r.draft.requesting_agency),
        // A comment without a side was written before markings (read as AMBER+STRICT, never
        // RED) or by the requesting side.
        _ => (r.draft.requesting_agency, r.draft.requested_agency),
    };
    m.admits(relation_to(p, from, to, &m.recipients))
}

/// A marking error as the faces show it: a change by someone else is refused (403); a bad
/// marking names the field (422).
fn refused(e: MarkingError) -> ServiceError {
    match e {
        MarkingError::NotOriginator => ServiceError::Forbidden(e.to_string()),
        e => ServiceError::invalid("marking", e.to_string()),
    }
}

impl Node {
    /// The node with its marking defaults and declared clients (`[markings]`); refuses a
    /// configuration that would publish requests or comments by default.
    pub fn with_markings(mut self, config: MarkingConfig) -> Result<Self> {
        config.validate().map_err(|e| ServiceError::invalid("markings", e))?;
        self.markings = Arc::new(config);
        Ok(self)
    }

    /// The marking defaults and declared clients the node runs with.
    pub fn markings(&self) -> Arc<MarkingConfig> {
        self.markings.clone()
    }

    /// The marking a new request gets when its draft names none.
    pub(crate) fn default_request_marking(&self) -> Marking {
        Marking::new(self.markings.request)
    }

    /// The marking of a new comment on `r`: the one asked for (checked) or the configured
    /// default, never below the request's own level; with the author's side.
    pub(crate) fn comment_data(
        &self,
        r: &AssistanceRequest,
        side: Side,
        asked: Option<Marking>,
    ) -> Result<serde_json::Value> {
        let mut m = asked.unwrap_or_else(|| Marking::new(self.markings.comment));
        m.validate().map_err(refused)?;
        m.tlp = m.tlp.stricter(r.draft.marking().tlp);
        if m.tlp != Tlp::Red {
            m.recipients.clear();
        }
        Ok(serde_json::json!({ COMMENT_MARKING: m, COMMENT_SIDE: side }))
    }

    /// Changes the marking of a request: only users of the requesting agency (the
    /// originator) who may draft, on a request they can read. The change is recorded (event,
    /// audit) and mirrored to the peer node serving the requested agency.
    pub async fn set_marking(
        &self,
        p: &Principal,
        id: RequestId,
        marking: Marking,
        now: Timestamp,
    ) -> Result<StoredRequest> {
        let cur = self.request(p, id, now).await?;
        let r = &cur.request;
        let current = r.draft.marking();
        let rel = relation_to(
            p,
            r.draft.requesting_agency,
            r.draft.requested_agency,
            &current.recipients,
        );
        // Who may, before which role: the requested side hears that it is not theirs to change.
        current.check_change(&marking, rel).map_err(refused)?;
        require(p.role.may_draft(), "changing the marking of requests", p)?;
        if marking == current {
            return Ok(cur);
        }
        let fed = crate::federation::outgoing_for_marking(self, r, &p.username, &marking, now).await?;
        self.store.set_marking_fed(id, &marking, &p.username, now, &fed).await?;
        Ok(self.store.request(id, Some(now)).await?)
    }
}
