//! Mirrored requests: what a local change sends to the peer serving the other agency, and how
//! an incoming envelope is applied (as the node, after the sender's side was checked against
//! the lifecycle table).

use super::{FedError, Federation};
use crate::service::{Node, ServiceError};
use jiff::Timestamp;
use liaison_core::lifecycle::{RULES, Side, State, TransitionInput};
use liaison_core::request::AssistanceRequest;
use liaison_core::{AgencyId, RequestId};
use liaison_store::{FedWrites, IncomingRecord, OutboxItem, StoreError, TransitionRecord};
use liaison_wire::{Envelope, MessageId, PayloadType};
use serde::{Deserialize, Serialize};

/// The peer node serving `agency`, if it is not this node.
async fn node_of(node: &Node, agency: AgencyId) -> Result<Option<String>, ServiceError> {
    let all = node.store.agencies(&Default::default()).await?;
    Ok(all.into_iter().find(|(a, _)| a.id == agency).and_then(|(_, n)| n))
}

/// The peer to mirror a request to: the node serving the agency on the other side.
async fn counterpart(node: &Node, r: &AssistanceRequest) -> Result<Option<String>, ServiceError> {
    if let Some(n) = node_of(node, r.draft.requested_agency).await? {
        return Ok(Some(n));
    }
    node_of(node, r.draft.requesting_agency).await
}

/// A transition as mirrored to the peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentPayload {
    pub request_id: RequestId,
    pub at: Timestamp,
    pub actor: String,
    pub text: String,
    pub data: Option<serde_json::Value>,
}

/// A submitted request as sent to the requested agency's node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmittedPayload {
    pub request: AssistanceRequest,
    pub actor: String,
}

fn item(recipient: String, t: PayloadType, payload: serde_json::Value, now: Timestamp) -> OutboxItem {
    OutboxItem {
        message_id: MessageId::new().to_string(),
        recipient,
        payload_type: t.as_str().to_string(),
        payload,
        created_at: now,
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// The outbox message a local transition of `r` causes (none if both agencies are local, or
/// for a draft that never left this node).
pub async fn outgoing_for_transition(
    node: &Node,
    r: &AssistanceRequest,
    t: &TransitionRecord,
) -> Result<FedWrites, ServiceError> {
    if t.from == State::Draft && t.to != State::Submitted {
        return Ok(FedWrites::default());
    }
    let Some(peer) = counterpart(node, r).await? else {
        return Ok(FedWrites::default());
    };
    let (kind, payload) = if t.from == State::Draft {
        let mut sent = r.clone();
        sent.state = State::Submitted;
        sent.updated_at = t.at;
        sent.submitted_at = t.submitted_at;
        sent.ack_due = t.ack_due;
        sent.answer_due = t.answer_due;
        let p = SubmittedPayload {
            request: sent,
            actor: t.actor.clone(),
        };
        (
            PayloadType::RequestSubmitted,
            serde_json::to_value(p).map_err(internal)?,
        )
    } else {
        let p = TransitionPayload {
            request_id: r.id,
            from: t.from,
            to: t.to,
            at: t.at,
            actor: t.actor.clone(),
            reason: t.reason.clone(),
            data: t.data.clone(),
            acknowledged_at: t.acknowledged_at,
            answered_at: t.answered_at,
            preserved_until: t.preserved_until,
        };
        (PayloadType::Transition, serde_json::to_value(p).map_err(internal)?)
    };
    liaison_wire::jcs::check_protocol_numbers(&payload).map_err(internal)?;
    Ok(FedWrites {
        outbox: vec![item(peer, kind, payload, t.at)],
        incoming: None,
    })
}

/// The outbox message a local comment on `r` causes.
pub async fn outgoing_for_comment(
    node: &Node,
    r: &AssistanceRequest,
    actor: &str,
    text: &str,
    data: Option<&serde_json::Value>,
    at: Timestamp,
) -> Result<FedWrites, ServiceError> {
    if r.state == State::Draft {
        return Ok(FedWrites::default());
    }
    let Some(peer) = counterpart(node, r).await? else {
        return Ok(FedWrites::default());
    };
    let p = CommentPayload {
        request_id: r.id,
        at,
        actor: actor.to_string(),
        text: text.to_string(),
        data: data.cloned(),
    };
    let payload = serde_json::to_value(p).map_err(internal)?;
    liaison_wire::jcs::check_protocol_numbers(&payload).map_err(internal)?;
    Ok(FedWrites {
        outbox: vec![item(peer, PayloadType::Comment, payload, at)],
        incoming: None,
    })
}

/// Why an accepted envelope could not be applied.
#[derive(Debug)]
pub(crate) enum ApplyError {
    /// Try again later (the sender retries): the database was busy, a local change raced.
    Transient(String),
    /// The message id is already in the inbox (a concurrent copy won).
    Duplicate,
    /// The content cannot be applied here; it is still received, logged and acknowledged.
    Permanent(String),
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApplyError::Transient(m),
            StoreError::Database(e) => ApplyError::Transient(e.to_string()),
            StoreError::Duplicate(m) if m.starts_with("message ") => ApplyError::Duplicate,
            other => ApplyError::Permanent(other.to_string()),
        }
    }
}

impl From<ServiceError> for ApplyError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Conflict(m) | ServiceError::Internal(m) => ApplyError::Transient(m),
            other => ApplyError::Permanent(other.to_string()),
        }
    }
}

fn perm(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Permanent(e.to_string())
}

impl Federation {
    /// Which side of `r` the sending peer acts for (its agency must be a party).
    async fn sender_side(&self, sender: &str, r: &AssistanceRequest) -> Result<Side, ApplyError> {
        let node = &self.inner.node;
        let requesting = node_of(node, r.draft.requesting_agency).await?;
        let requested = node_of(node, r.draft.requested_agency).await?;
        if requesting.as_deref() == Some(sender) {
            Ok(Side::Requesting)
        } else if requested.as_deref() == Some(sender) {
            Ok(Side::Requested)
        } else {
            Err(perm(format!("node {sender} serves neither agency of request {}", r.id)))
        }
    }

    /// Applies the payload of a verified envelope together with its inbox record.
    pub(crate) async fn apply_payload(
        &self,
        env: &Envelope,
        rec: IncomingRecord,
    ) -> Result<Option<RequestId>, ApplyError> {
        let node = &self.inner.node;
        let sender = env.header.sender.to_string();
        let fed = FedWrites {
            outbox: vec![],
            incoming: Some(rec),
        };
        match env.header.payload_type {
            PayloadType::RequestSubmitted => {
                let p: SubmittedPayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let mut r = p.request;
                if r.state != State::Submitted {
                    return Err(perm(format!(
                        "request {} arrived in state {}, not submitted",
                        r.id, r.state
                    )));
                }
                if node_of(node, r.draft.requested_agency).await?.is_some()
                    || node.store.agency(r.draft.requested_agency).await.is_err()
                {
                    return Err(perm(format!(
                        "the requested agency {} is not served by this node",
                        r.draft.requested_agency
                    )));
                }
                if node_of(node, r.draft.requesting_agency).await?.as_deref() != Some(sender.as_str()) {
                    return Err(perm(format!(
                        "the requesting agency {} is not served by {sender}",
                        r.draft.requesting_agency
                    )));
                }
                r.version = 1;
                let actor = format!("{sender}:{}", p.actor);
                node.store.insert_request_fed(&r, &actor, &fed).await?;
                Ok(Some(r.id))
            }
            PayloadType::Transition => {
                let p: TransitionPayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let cur = node.store.request(p.request_id, None).await?;
                let side = self.sender_side(&sender, &cur.request).await?;
                let kind = cur.request.draft.kind;
                let legal = RULES
                    .iter()
                    .any(|rule| rule.from == p.from && rule.to == p.to && (rule.side == side || rule.system));
                if !legal {
                    return Err(perm(format!(
                        "{sender} may not move request {} from {} to {} ({kind:?})",
                        p.request_id, p.from, p.to
                    )));
                }
                if cur.request.state != p.from {
                    tracing::warn!(request = %p.request_id, local = %cur.request.state, remote = %p.from,
                        "mirrored transition starts from a different state here; applying it from the local state");
                }
                let mut t = TransitionRecord::new(
                    p.request_id,
                    cur.request.version,
                    cur.request.state,
                    p.to,
                    p.at,
                    &format!("{sender}:{}", p.actor),
                );
                t.reason = p.reason;
                t.data = p.data;
                t.acknowledged_at = p.acknowledged_at;
                t.answered_at = p.answered_at;
                t.preserved_until = p.preserved_until;
                t.fed = fed;
                node.store.transition(&t).await?;
                Ok(None)
            }
            PayloadType::Comment => {
                let p: CommentPayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let cur = node.store.request(p.request_id, None).await?;
                self.sender_side(&sender, &cur.request).await?;
                let actor = format!("{sender}:{}", p.actor);
                node.store
                    .comment_fed(p.request_id, &actor, &p.text, p.at, p.data.as_ref(), &fed)
                    .await?;
                Ok(None)
            }
            PayloadType::KeyRotation => {
                let rot = liaison_wire::KeyRotation::from_slice(&serde_json::to_vec(&env.payload).map_err(perm)?)
                    .map_err(perm)?;
                let mut peers = self.peers().map_err(|e| ApplyError::Transient(e.to_string()))?;
                let peer = peers
                    .get_mut(&env.header.sender)
                    .ok_or_else(|| perm("sender is no longer pinned"))?;
                peer.apply_rotation(&rot).map_err(perm)?;
                super::worker::store_peer(node, peer, None)
                    .await
                    .map_err(|e| ApplyError::Transient(e.to_string()))?;
                node.store.fed_write(&fed).await?;
                self.reload_peers()
                    .await
                    .map_err(|e| ApplyError::Transient(e.to_string()))?;
                Ok(None)
            }
            other => Err(perm(format!(
                "payload type {} is not applied by this node",
                other.as_str()
            ))),
        }
    }

    /// Moves incoming requests that were stored but not yet marked received (a crash between
    /// the two steps) to `received`.
    pub(crate) async fn receive_pending(&self) -> Result<usize, FedError> {
        let node = &self.inner.node;
        let remote: std::collections::HashSet<AgencyId> = node
            .store
            .agencies(&Default::default())
            .await?
            .into_iter()
            .filter(|(_, n)| n.is_some())
            .map(|(a, _)| a.id)
            .collect();
        if remote.is_empty() {
            return Ok(0);
        }
        let f = liaison_store::RequestFilter {
            states: vec![State::Submitted],
            limit: 500,
            ..Default::default()
        };
        let page = node.store.requests(&f, Timestamp::now()).await?;
        let mut n = 0;
        for r in page.items {
            let d = &r.request.draft;
            if remote.contains(&d.requesting_agency) && !remote.contains(&d.requested_agency) {
                self.mark_received(r.request.id).await;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The requested side's node receives the request as the system (this is mirrored back).
    pub(crate) async fn mark_received(&self, id: RequestId) {
        let input = TransitionInput {
            to: Some(State::Received),
            ..Default::default()
        };
        match self.inner.node.system_transition(id, input, Timestamp::now()).await {
            Ok(_) => self.wake(),
            Err(e) => {
                tracing::warn!(node = %self.inner.node_id, request = %id, error = %e, "could not mark an incoming request received; will retry")
            }
        }
    }
}
