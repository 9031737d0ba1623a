//! Mirrored requests: what a local change sends to the peer serving the other agency, and how
//! an incoming envelope is applied (as the node, after the sender's side was checked against
//! the lifecycle table).

use super::{FedError, Federation};
use crate::error::ServiceError;
use crate::node::Node;
use jiff::Timestamp;
use liaison_core::lifecycle::{RULES, Side, State, TransitionInput};
use liaison_core::request::AssistanceRequest;
use liaison_core::{AgencyId, RequestId};
use liaison_store::{Effect, FedWrites, OutboxItem, StoreError, TransitionRecord};
use liaison_wire::{Envelope, MessageId, Mirrored, PayloadType};
use std::collections::HashMap;

/// The peer node serving `agency`, if it is not this node.
async fn node_of(node: &Node, agency: AgencyId) -> Result<Option<String>, ServiceError> {
    // Agency rows never change once written: the store answers from its in-process cache.
    match node.store.agency_node(agency).await {
        Ok(n) => Ok(n),
        Err(liaison_store::StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The peer a request is mirrored to (for the evidence transfer, `super::bulk`).
pub(crate) async fn counterpart_of(node: &Node, r: &AssistanceRequest) -> Result<Option<String>, ServiceError> {
    counterpart(node, r).await
}

/// The peer to mirror a request to: the node serving the agency on the other side.
async fn counterpart(node: &Node, r: &AssistanceRequest) -> Result<Option<String>, ServiceError> {
    if let Some(n) = node_of(node, r.draft.requested_agency).await? {
        return Ok(Some(n));
    }
    node_of(node, r.draft.requesting_agency).await
}

pub use liaison_wire::{CommentPayload, SubmittedPayload, TransitionPayload};

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
    reference: &str,
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
            reference: Some(reference.to_string()),
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

/// The outbox message a change of `r`'s marking causes (the requesting agency's node tells
/// the requested agency's; nothing for a draft or when both agencies are local).
pub async fn outgoing_for_marking(
    node: &Node,
    r: &AssistanceRequest,
    actor: &str,
    marking: &liaison_core::Marking,
    at: Timestamp,
) -> Result<FedWrites, ServiceError> {
    if r.state == State::Draft {
        return Ok(FedWrites::default());
    }
    let Some(peer) = counterpart(node, r).await? else {
        return Ok(FedWrites::default());
    };
    let p = liaison_wire::MarkingPayload {
        request_id: r.id,
        at,
        actor: actor.to_string(),
        marking: marking.clone(),
    };
    let payload = serde_json::to_value(p).map_err(internal)?;
    Ok(FedWrites {
        outbox: vec![item(peer, PayloadType::Marking, payload, at)],
        incoming: None,
    })
}

/// Why an accepted envelope could not be applied.
#[derive(Debug)]
pub(crate) enum ApplyError {
    /// Try again later (the sender retries): the database was busy, a local change raced.
    Transient(String),
    /// The content cannot be applied here; it is still received, logged and acknowledged.
    Permanent(String),
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApplyError::Transient(m),
            StoreError::Database(e) => ApplyError::Transient(e.to_string()),
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

/// Decides, for the accepted envelopes of one incoming batch (in link order), what each one
/// does, before the batch commits in one transaction. Requests and agencies are read once per
/// batch; a request submitted earlier in the same batch is known to later messages.
#[derive(Default)]
pub(crate) struct Planner {
    /// agency → the peer node serving it (`None`: served here). Absent: unknown agency.
    agencies: Option<HashMap<AgencyId, Option<String>>>,
    /// request → its parties and its state and kind here, as the batch leaves them so far.
    requests: HashMap<RequestId, Known>,
    /// Joint cases as the batch leaves them so far.
    cases: HashMap<String, crate::cases::CaseBase>,
}

/// What the planner knows of a request: its parties, and its state and kind on this node
/// (updated by the batch's earlier messages).
#[derive(Debug, Clone, Copy)]
struct Known {
    requesting: AgencyId,
    requested: AgencyId,
    state: State,
    kind: liaison_core::RequestKind,
}

impl Planner {
    async fn agencies(&mut self, node: &Node) -> Result<&HashMap<AgencyId, Option<String>>, ApplyError> {
        if self.agencies.is_none() {
            let all = node.store.agencies(&Default::default()).await?;
            self.agencies = Some(all.into_iter().map(|(a, n)| (a.id, n)).collect());
        }
        Ok(self.agencies.get_or_insert_with(HashMap::new))
    }

    /// A joint case as the batch leaves it so far.
    async fn case_base(&mut self, node: &Node, id: uuid::Uuid) -> Result<crate::cases::CaseBase, ApplyError> {
        let id = id.to_string();
        if let Some(b) = self.cases.get(&id) {
            return Ok(b.clone());
        }
        Ok(node.case_base(&id).await?)
    }

    /// The peer node serving `agency`, if it is not this node.
    async fn node_of(&mut self, node: &Node, agency: AgencyId) -> Result<Option<String>, ApplyError> {
        Ok(self.agencies(node).await?.get(&agency).cloned().flatten())
    }

    async fn known(&mut self, node: &Node, id: RequestId) -> Result<Known, ApplyError> {
        if let Some(k) = self.requests.get(&id) {
            return Ok(*k);
        }
        let cur = node.store.request(id, None).await?;
        let d = &cur.request.draft;
        let k = Known {
            requesting: d.requesting_agency,
            requested: d.requested_agency,
            state: cur.request.state,
            kind: d.kind,
        };
        self.requests.insert(id, k);
        Ok(k)
    }

    /// Whether the requested side's move `p` crossed a move this node made for the
    /// requesting side: the request's last event here is a transition from `p.from` to its
    /// current state, made on this node (the peer's moves arrive as mirrored events with the
    /// peer's `data.origin`). Returns the state of the move that gives way. Only a single
    /// crossing step is resolved; deeper divergence is recorded as a conflict.
    async fn crossed(
        &mut self,
        node: &Node,
        p: &liaison_wire::TransitionPayload,
        known: &Known,
        side: Side,
    ) -> Result<Option<State>, ApplyError> {
        if side != Side::Requested {
            return Ok(None);
        }
        let events = node.store.events(p.request_id).await?;
        let Some(last) = events.iter().rev().find(|e| e.event == "transition") else {
            return Ok(None);
        };
        if last.from_state != Some(p.from) || last.to_state != Some(known.state) {
            return Ok(None);
        }
        // The crossing move must be one of the requesting side's own (not one of the peer's).
        let by_requesting = RULES.iter().any(|r| {
            r.from == p.from && r.to == known.state && r.side == Side::Requesting && r.kinds.matches(known.kind)
        });
        Ok(by_requesting.then_some(known.state))
    }

    /// Which side of request `id` the sending peer acts for (its agency must be a party).
    pub(super) async fn sender_side(&mut self, node: &Node, sender: &str, id: RequestId) -> Result<Side, ApplyError> {
        let Known {
            requesting, requested, ..
        } = self.known(node, id).await?;
        if self.node_of(node, requesting).await?.as_deref() == Some(sender) {
            Ok(Side::Requesting)
        } else if self.node_of(node, requested).await?.as_deref() == Some(sender) {
            Ok(Side::Requested)
        } else {
            Err(perm(format!("node {sender} serves neither agency of request {id}")))
        }
    }

    /// Checks a verified envelope's content and returns its effect on the requests (`None`:
    /// recorded only, e.g. a key rotation, which is applied to the pinned peer here).
    /// `Permanent`: the envelope is recorded as `not applied: …`.
    pub(crate) async fn plan(&mut self, fed: &Federation, env: &Envelope) -> Result<Option<Effect>, ApplyError> {
        let node = &fed.inner.node;
        let sender = env.header.sender.to_string();
        let mut effect = match env.header.payload_type {
            PayloadType::RequestSubmitted => {
                let p: SubmittedPayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let r = &p.request;
                if r.state != State::Submitted {
                    return Err(perm(format!(
                        "request {} arrived in state {}, not submitted",
                        r.id, r.state
                    )));
                }
                let (requesting, requested) = (r.draft.requesting_agency, r.draft.requested_agency);
                let agencies = self.agencies(node).await?;
                if !matches!(agencies.get(&requested), Some(None)) {
                    return Err(perm(format!(
                        "the requested agency {requested} is not served by this node"
                    )));
                }
                if agencies.get(&requesting).cloned().flatten().as_deref() != Some(sender.as_str()) {
                    return Err(perm(format!(
                        "the requesting agency {requesting} is not served by {sender}"
                    )));
                }
                let mut p = p;
                check_incoming(node, &mut p.request).await?;
                p.request.version = 1;
                self.requests.insert(
                    p.request.id,
                    Known {
                        requesting,
                        requested,
                        state: State::Submitted,
                        kind: p.request.draft.kind,
                    },
                );
                Mirrored::Submitted(Box::new(p))
            }
            PayloadType::Transition => {
                let p: TransitionPayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let side = self.sender_side(node, &sender, p.request_id).await?;
                let known = self.known(node, p.request_id).await?;
                // Checked against the request as it is HERE, with the lifecycle table local
                // users are held to: a rule of the sender's side (its users' rules, or the node
                // rules that side's node runs), for this kind of request.
                let mut p = p;
                // What the peer may say about a conflict is not taken from it.
                if let Some(o) = p.data.as_mut().and_then(|d| d.as_object_mut()) {
                    o.remove("conflict");
                }
                let mut checked_from = known.state;
                if p.from != known.state {
                    // Both sides moved the request at once (docs/federation.md §10.5): the
                    // requested side's move stands. Here (the requesting side's node) the
                    // local move that crossed it gives way; there, this node's move is
                    // recorded as not applied. Both end in the requested side's state.
                    match self.crossed(node, &p, &known, side).await? {
                        Some(lost) => {
                            let note = format!(
                                "Conflict: your move to {lost} crossed the partner's move to {} (both from {}); the requested side's move stands. Act again if your move is still needed.",
                                p.to, p.from
                            );
                            let mut data = p.data.take().unwrap_or_else(|| serde_json::json!({}));
                            if let Some(o) = data.as_object_mut() {
                                o.insert(
                                    "conflict".into(),
                                    serde_json::json!({"lost": lost, "won": p.to, "from": p.from, "partner_at": p.at, "rule": "requested_side_wins"}),
                                );
                            }
                            p.data = Some(data);
                            p.reason = Some(match p.reason.take() {
                                Some(r) if !r.is_empty() => format!("{r} — {note}"),
                                _ => note,
                            });
                            tracing::warn!(request = %p.request_id, lost = %lost, won = %p.to, "crossing moves: the requested side's move stands");
                            checked_from = p.from;
                            p.from = known.state;
                            // In the history after the move that gave way (the partner's own
                            // time is kept in `data.conflict.partner_at`).
                            p.at = p.at.max(Timestamp::now());
                        }
                        None => {
                            return Err(perm(format!(
                                "conflict: {sender} moved request {} from {} to {}, but it is {} here (when both sides move at once, the requested side's move stands: docs/federation.md §10.5)",
                                p.request_id, p.from, p.to, known.state
                            )));
                        }
                    }
                }
                // A crossing move is checked from the state both sides started from.
                let legal = RULES.iter().any(|rule| {
                    rule.from == checked_from && rule.to == p.to && rule.side == side && rule.kinds.matches(known.kind)
                });
                if !legal {
                    return Err(perm(format!(
                        "conflict: the {} side may not move a {} request from {} to {}",
                        match side {
                            Side::Requesting => "requesting",
                            Side::Requested => "requested",
                        },
                        known.kind,
                        known.state,
                        p.to
                    )));
                }
                if let Some(k) = self.requests.get_mut(&p.request_id) {
                    k.state = p.to;
                }
                Mirrored::Transition(p)
            }
            PayloadType::Comment => {
                let mut p: CommentPayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let side = self.sender_side(node, &sender, p.request_id).await?;
                // The author's side is the sender's, whatever the payload says; a marking it
                // carries must be one (docs/markings.md).
                let mut data = match p.data.take() {
                    Some(serde_json::Value::Object(o)) => o,
                    None => serde_json::Map::new(),
                    Some(_) => return Err(perm("comment data is not an object")),
                };
                if let Some(m) = data.get(crate::markings::COMMENT_MARKING) {
                    let m: liaison_core::Marking =
                        serde_json::from_value(m.clone()).map_err(|e| perm(format!("comment marking: {e}")))?;
                    m.validate().map_err(|e| perm(format!("comment marking: {e}")))?;
                }
                data.insert(
                    crate::markings::COMMENT_SIDE.into(),
                    serde_json::to_value(side).map_err(perm)?,
                );
                p.data = Some(serde_json::Value::Object(data));
                Mirrored::Comment(p)
            }
            PayloadType::CleanupNotice => {
                let p: liaison_wire::CleanupNoticePayload =
                    serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let n = crate::notices::check_incoming_notice(node, &sender, p, Timestamp::now()).await?;
                return Ok(Some(Effect::CleanupNotice(Box::new(n))));
            }
            PayloadType::CleanupStatus => {
                let p: liaison_wire::CleanupStatusPayload =
                    serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let mid = env.header.message_id.to_string();
                let a = crate::notices::check_remote_answer(node, &sender, &mid, p, Timestamp::now()).await?;
                return Ok(Some(Effect::CleanupStatus(Box::new(a))));
            }
            PayloadType::Marking => {
                let p: liaison_wire::MarkingPayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let side = self.sender_side(node, &sender, p.request_id).await?;
                // Only the originator changes a marking: the requesting agency's node.
                if side != Side::Requesting {
                    return Err(perm(format!(
                        "only the requesting agency may change the marking of request {}; {sender} serves the requested agency",
                        p.request_id
                    )));
                }
                p.marking.validate().map_err(|e| perm(format!("marking: {e}")))?;
                Mirrored::Marking(p)
            }
            PayloadType::CaseAction => {
                let p: liaison_wire::CaseActionPayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let base = self.case_base(node, p.case_id).await?;
                let w = node
                    .plan_case_action(&sender, p, Timestamp::now(), base.clone())
                    .await?;
                self.cases.insert(w.row.id.clone(), base.after(&w));
                return Ok(Some(Effect::Case(Box::new(w))));
            }
            PayloadType::CaseUpdate => {
                let p: liaison_wire::CaseUpdatePayload = serde_json::from_value(env.payload.clone()).map_err(perm)?;
                let base = self.case_base(node, p.case_id).await?;
                let w = node.plan_case_update(&sender, p, base.clone()).await?;
                self.cases.insert(w.row.id.clone(), base.after(&w));
                return Ok(Some(Effect::Case(Box::new(w))));
            }
            PayloadType::EvidenceManifest => return super::bulk::plan_manifest(self, fed, env).await,
            PayloadType::EvidenceResult => return super::bulk::plan_result(fed, env).await,
            PayloadType::KeyRotation => {
                let rot = liaison_wire::KeyRotation::from_slice(&serde_json::to_vec(&env.payload).map_err(perm)?)
                    .map_err(perm)?;
                let mut peers = fed.peers().map_err(|e| ApplyError::Transient(e.to_string()))?;
                let peer = peers
                    .get_mut(&env.header.sender)
                    .ok_or_else(|| perm("sender is no longer pinned"))?;
                peer.apply_rotation(&rot).map_err(perm)?;
                // Applying a statement again changes nothing, so this may commit before the
                // envelope is recorded.
                super::worker::store_peer(node, peer, None)
                    .await
                    .map_err(|e| ApplyError::Transient(e.to_string()))?;
                fed.reload_peers()
                    .await
                    .map_err(|e| ApplyError::Transient(e.to_string()))?;
                return Ok(None);
            }
            other => {
                return Err(perm(format!(
                    "payload type {} is not applied by this node",
                    other.as_str()
                )));
            }
        };
        effect.qualify_actor(&sender);
        let reference = match &effect {
            Mirrored::Submitted(p) => {
                let prefix = node
                    .store
                    .reference_prefix(p.request.draft.requesting_agency, p.request.created_at)
                    .await
                    .map_err(|e| ApplyError::Transient(e.to_string()))?;
                incoming_reference(p.reference.as_deref(), prefix)
            }
            _ => Default::default(),
        };
        Ok(Some(effect_of(effect, reference)))
    }
}

/// Checks a request a peer submitted as a local draft is checked (every field, the offences
/// this node's rule packs know) and sets its deadlines from THIS node's SLA policy, in the
/// requested agency's zone, from when it was submitted (not later than now): a peer does not
/// choose how long this node has to answer.
async fn check_incoming(node: &Node, r: &mut AssistanceRequest) -> Result<(), ApplyError> {
    let mut errs = r.draft.validate();
    errs.extend(node.legal.check_offences(&r.draft.offences));
    if !errs.is_empty() {
        let what: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(perm(format!("invalid request: {}", what.join("; "))));
    }
    let requested = node.store.agency(r.draft.requested_agency).await?;
    let zone = liaison_core::directory::time_zone(&requested.time_zone).map_err(perm)?;
    let now = Timestamp::now();
    let submitted = r.submitted_at.unwrap_or(now).min(now);
    let d = node
        .sla
        .deadlines(
            r.draft.urgency,
            r.draft.kind,
            submitted,
            &zone,
            requested.kind == liaison_core::directory::AgencyKind::PointOfContact247,
        )
        .map_err(perm)?;
    r.submitted_at = Some(submitted);
    r.ack_due = Some(d.acknowledge_by);
    r.answer_due = Some(d.answer_by);
    r.acknowledged_at = None;
    r.answered_at = None;
    r.preserved_until = None;
    Ok(())
}

/// The reference an incoming request gets here: the sender's number when its reference is
/// well-formed, carries this node's prefix for the requesting agency (its code and the year
/// of creation) and the number is free; otherwise the next number of that prefix here.
fn incoming_reference(sent: Option<&str>, prefix: String) -> liaison_store::RefSpec {
    let wanted = sent
        .and_then(liaison_store::RefSpec::parse)
        .filter(|(p, _)| *p == prefix)
        .map(|(_, n)| n);
    liaison_store::RefSpec { prefix, wanted }
}

/// The store's words for what a mirrored payload does: the same rows a local change writes.
fn effect_of(m: Mirrored, reference: liaison_store::RefSpec) -> Effect {
    match m {
        Mirrored::Submitted(p) => Effect::Insert {
            request: Box::new(p.request),
            actor: p.actor,
            reference,
        },
        Mirrored::Transition(p) => {
            let mut t = TransitionRecord::new(p.request_id, 0, p.from, p.to, p.at, &p.actor);
            t.reason = p.reason;
            // Entering `needs_information`: the date the requested side set (only shown here;
            // the requested side's node expires the request).
            if p.to == State::NeedsInformation {
                t.information_due = p
                    .data
                    .as_ref()
                    .and_then(|d| d.get("information_due"))
                    .and_then(|v| v.as_str())
                    .and_then(|v| v.parse::<jiff::Timestamp>().ok());
            }
            t.data = p.data;
            t.acknowledged_at = p.acknowledged_at;
            t.answered_at = p.answered_at;
            t.preserved_until = p.preserved_until;
            Effect::Transition(Box::new(t))
        }
        Mirrored::Comment(p) => Effect::Comment {
            request: p.request_id,
            at: p.at,
            actor: p.actor,
            text: p.text,
            data: p.data,
        },
        Mirrored::Marking(p) => Effect::Marking {
            request: p.request_id,
            at: p.at,
            actor: p.actor,
            marking: p.marking,
        },
    }
}

impl Federation {
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
