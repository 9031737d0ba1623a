//! Payloads of mirrored requests (docs/federation.md §10.3): what a `request_submitted`,
//! `transition` or `comment` envelope carries. The sender builds them from a local change;
//! the receiver decodes them into [`Mirrored`] and, after its own checks, hands them to its
//! store, which applies them in the transaction that records the envelope.

use jiff::Timestamp;
use liaison_core::RequestId;
use liaison_core::lifecycle::State;
use liaison_core::request::AssistanceRequest;
use serde::{Deserialize, Serialize};

/// A transition as mirrored to the peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionPayload {
    pub request_id: RequestId,
    pub from: State,
    pub to: State,
    pub at: Timestamp,
    pub actor: String,
    pub reason: Option<String>,
    pub data: Option<serde_json::Value>,
    pub acknowledged_at: Option<Timestamp>,
    pub answered_at: Option<Timestamp>,
    pub preserved_until: Option<Timestamp>,
}

/// A comment as mirrored to the peer (attachments travel as metadata in `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentPayload {
    pub request_id: RequestId,
    pub at: Timestamp,
    pub actor: String,
    pub text: String,
    pub data: Option<serde_json::Value>,
}

/// A change of a request's marking, sent by the requesting agency's node (the originator:
/// docs/markings.md). Needs protocol version 4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkingPayload {
    pub request_id: RequestId,
    pub at: Timestamp,
    pub actor: String,
    pub marking: liaison_core::Marking,
}

/// A submitted request as sent to the requested agency's node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmittedPayload {
    pub request: AssistanceRequest,
    pub actor: String,
    /// The sender's reference of the request (`FBI-2026-0042`), which the receiver keeps
    /// when it is well-formed, starts with the requesting agency's code and is free there.
    /// Protocol version 6; left out for older peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A decoded mirrored-request payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Mirrored {
    Submitted(Box<SubmittedPayload>),
    Transition(TransitionPayload),
    Comment(CommentPayload),
    Marking(MarkingPayload),
}

impl Mirrored {
    /// The request the payload is about.
    pub fn request_id(&self) -> RequestId {
        match self {
            Mirrored::Submitted(p) => p.request.id,
            Mirrored::Transition(p) => p.request_id,
            Mirrored::Comment(p) => p.request_id,
            Mirrored::Marking(p) => p.request_id,
        }
    }

    /// Prefixes the acting user with the sending node (`NODE:user`), as the receiver records it.
    pub fn qualify_actor(&mut self, sender: &str) {
        let actor = match self {
            Mirrored::Submitted(p) => &mut p.actor,
            Mirrored::Transition(p) => &mut p.actor,
            Mirrored::Comment(p) => &mut p.actor,
            Mirrored::Marking(p) => &mut p.actor,
        };
        *actor = format!("{sender}:{actor}");
    }
}
