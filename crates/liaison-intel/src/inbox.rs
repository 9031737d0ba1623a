//! Clean-up notices over federation, in plain words: a notice another node issued for an
//! agency this node serves ([`IncomingNotice`], kept with its marking and issuer), and an
//! answer a partner's node sent back about an item this node issued ([`RemoteAnswer`]).

use crate::aggregate::{FeedbackStatus, Interval};
use crate::model::PartnerId;
use crate::time::UnixTime;
use liaison_core::{Pap, Tlp};
use serde::Serialize;
use uuid::Uuid;

/// A notice received from the node of the issuing agency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncomingNotice {
    /// The node it came from.
    pub sender: String,
    pub id: Uuid,
    /// The issuing agency (code).
    pub issuer: String,
    /// The addressed agency (code), served by this node.
    pub partner: String,
    pub interval: Interval,
    pub issued_at: UnixTime,
    /// The notice's marking as received (the strictest of its items); never lowered here.
    pub tlp: Tlp,
    /// What this agency may do about the items (docs/markings.md), as received; `None` when
    /// the sending node speaks a protocol older than 5, which carries no PAP. Never lowered here.
    pub pap: Option<Pap>,
    /// Parts the notice was sent in.
    pub parts: u32,
    pub received_at: UnixTime,
    pub items: Vec<IncomingItem>,
}

/// One item of an incoming notice, with this node's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncomingItem {
    pub item_id: Uuid,
    pub kind: String,
    pub value: String,
    /// `new`, `still-active` or `reappeared`.
    pub status: String,
    pub classification: String,
    pub tlp: Tlp,
    /// The other fields as received (first/last seen, sightings, network, previous item, …).
    pub detail: serde_json::Value,
    pub answer: Option<FeedbackStatus>,
    pub note: Option<String>,
    pub answered_at: Option<UnixTime>,
    pub answered_by: Option<String>,
}

impl IncomingItem {
    /// Seen again after the partner answered "remediated".
    pub fn is_reappearance(&self) -> bool {
        self.status == "reappeared"
    }
}

/// An answer received from a partner's node about an item this node issued.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteAnswer {
    /// The envelope that carried it.
    pub message_id: String,
    pub sender: String,
    pub item_id: Uuid,
    pub partner: PartnerId,
    pub status: FeedbackStatus,
    pub note: Option<String>,
    /// `NODE:user` of the answering user.
    pub actor: String,
    pub at: UnixTime,
}
