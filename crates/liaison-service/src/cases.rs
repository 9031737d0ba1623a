//! Joint task-force cases (issue #19, docs/cases.md): a case with a lead agency and member
//! agencies on this node and on peers' nodes, items linked to it under their markings and the
//! rule of speciality, a timeline and statistics.
//!
//! The rules of a case are `liaison_core::case` (one function decides a change, one decides
//! what a reader gets). This room is who may ask for what, where the change is decided, and
//! what travels:
//! - a case is **kept by its home node**, the node serving its lead agency: a change asked for
//!   there is checked against the case and appended to its log at once, in one transaction with
//!   the `case_update` envelopes for every member agency's node (each node is sent exactly the
//!   events its agencies may see; an agency that joins is sent the log again, as it may now see
//!   it);
//! - on a member agency's node, a change is an **action**: a `case_action` envelope to the home
//!   node, recorded here as waiting until the home node's answer arrives (applied, with the
//!   event that names it, or refused with the reason);
//! - a node that receives a `case_update` checks it as if its own users had made every event
//!   (the whole log is replayed through the same rules), and refuses an event that says one of
//!   its own agencies acted unless it answers an action this node sent.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::case::{
    Case, CaseChange, CaseError, CaseEvent, CaseState, EventView, ItemKind, ItemSnapshot, Link, Member, MemberStatus,
    check_reference, check_text,
};
use liaison_core::record::Principal;
use liaison_core::{Marking, RequestId, Tlp};
use liaison_store::{CaseAction, CaseLinkRow, CaseRow, CaseWrite, OutboxItem};
use liaison_wire::case::MAX_UPDATE_EVENTS;
use liaison_wire::{CaseActionPayload, CaseAnswer, CaseUpdatePayload, MessageId, PayloadType};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// A case rule as the faces show it.
fn refused(e: CaseError) -> ServiceError {
    match e {
        CaseError::Invalid { field, message } => ServiceError::invalid(&field, message),
        CaseError::NotAllowed(m) => ServiceError::Forbidden(m),
        CaseError::Conflict(m) => ServiceError::Conflict(m),
    }
}

/// A case in a listing, as its reader may see it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub id: String,
    pub reference: String,
    pub name: String,
    pub lead: String,
    pub state: CaseState,
    pub tlp: String,
    /// The reader's agency's place in the case.
    pub status: MemberStatus,
    /// The node that keeps the case (`None`: this one).
    pub home: Option<String>,
    pub updated_at: Timestamp,
}

/// What a request linked to a case is now, where the reader may see it on this node.
#[derive(Debug, Clone, Serialize)]
pub struct LiveRequest {
    pub state: String,
    pub reference: String,
    pub submitted_at: Option<Timestamp>,
    pub answered_at: Option<Timestamp>,
    /// The deadline running now and when it falls.
    pub deadline: Option<String>,
    pub due: Option<Timestamp>,
    /// Whether what the requested side answers may be used in this case (the request was made
    /// for it, or its requested agency consented: docs/markings.md, speciality).
    pub usable_in_case: bool,
}

/// A link as its reader sees it.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    #[serde(flatten)]
    pub link: Link,
    /// `lead` for a spontaneous-information request, else the item's kind.
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveRequest>,
}

/// An action this node's users asked of a case kept elsewhere.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    pub id: String,
    pub agency: String,
    pub actor: String,
    pub kind: String,
    pub at: Timestamp,
    /// `waiting` until the home node answers; then `applied` or `refused: …`.
    pub outcome: String,
}

/// A case as its reader may see it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    pub id: String,
    pub reference: String,
    pub name: String,
    pub lead: String,
    pub marking: Marking,
    pub state: CaseState,
    pub created_at: Timestamp,
    pub created_by: String,
    pub home: Option<String>,
    pub status: MemberStatus,
    pub members: Vec<Member>,
    pub links: Vec<LinkView>,
    /// The log, oldest first, as the reader may see it.
    pub timeline: Vec<CaseEvent>,
    /// The reader's agency's actions (cases kept by another node).
    pub actions: Vec<ActionView>,
}

/// A linked request with a running deadline.
#[derive(Debug, Clone, Serialize)]
pub struct OpenDeadline {
    pub request: String,
    pub reference: String,
    pub deadline: String,
    pub due: Timestamp,
    pub overdue: bool,
}

/// Counts and durations over a case's links, as the reader may see them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseStats {
    pub members: u64,
    pub requests: u64,
    pub leads: u64,
    pub notices: u64,
    pub evidence: u64,
    /// Links the reader may not see (their kind only).
    pub withheld: u64,
    /// Requests by state: now where the reader sees the request on this node, else as it was
    /// when it was linked or shared.
    pub requests_by_state: BTreeMap<String, u64>,
    /// Submission to answer of the answered requests the reader sees here (seconds).
    pub answered: u64,
    pub median_answer_secs: Option<i64>,
    pub max_answer_secs: Option<i64>,
    /// Running deadlines, earliest first.
    pub open_deadlines: Vec<OpenDeadline>,
}

/// What a user asks to link or share.
#[derive(Debug, Clone)]
pub struct ItemRef {
    pub kind: ItemKind,
    pub id: String,
}

/// Agencies by code (upper case): the peer node serving each (`None`: this node).
type AgencyNodes = HashMap<String, Option<String>>;

async fn agency_nodes(node: &Node) -> Result<AgencyNodes> {
    Ok(node
        .store
        .agencies(&Default::default())
        .await?
        .into_iter()
        .map(|(a, n)| (a.code.to_ascii_uppercase(), n))
        .collect())
}

fn node_of<'a>(nodes: &'a AgencyNodes, code: &str) -> Option<&'a Option<String>> {
    nodes.get(&code.to_ascii_uppercase())
}

fn may_read(p: &Principal) -> Result<()> {
    require(p.role.may_read_requests(), "reading joint cases", p)
}

fn may_lead(p: &Principal) -> Result<()> {
    require(p.role.may_draft(), "opening and leading joint cases", p)
}

fn may_work(p: &Principal) -> Result<()> {
    require(p.role.may_comment(), "working on joint cases", p)
}

/// Whether `role` may ask for `change` (the lead's own changes need a drafting role; answers,
/// links, shares and notes any role that comments; leaving needs a drafting role too).
fn check_role(p: &Principal, change: &CaseChange) -> Result<()> {
    match change {
        CaseChange::Invited { .. } | CaseChange::Marking { .. } | CaseChange::Closed { .. } | CaseChange::Reopened => {
            may_lead(p)
        }
        CaseChange::Joined { .. } | CaseChange::Declined { .. } | CaseChange::Left { .. } => require(
            p.role.may_draft(),
            "accepting, declining or leaving a joint case for the agency",
            p,
        ),
        _ => may_work(p),
    }
}

fn members_rows(c: &Case) -> Vec<(String, String, Timestamp)> {
    c.members
        .iter()
        .map(|m| (m.agency.to_ascii_uppercase(), m.status.as_str().to_string(), m.since))
        .collect()
}

fn link_rows(c: &Case) -> Vec<CaseLinkRow> {
    c.links
        .iter()
        .map(|((k, id), l)| CaseLinkRow {
            item_kind: k.as_str().to_string(),
            item_id: id.clone(),
            linked_seq: l.linked_seq,
            shared: l.shared_seq.is_some(),
        })
        .collect()
}

fn row_of(id: &str, c: &Case, home: Option<String>) -> CaseRow {
    CaseRow {
        id: id.to_string(),
        reference: c.reference.clone(),
        name: c.name.clone(),
        lead: c.lead.clone(),
        home,
        tlp: c.marking.tlp.as_str().to_string(),
        state: c.state,
        last_seq: c.last_seq,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

fn outbox(recipient: &str, t: PayloadType, payload: serde_json::Value, at: Timestamp) -> Result<OutboxItem> {
    liaison_wire::jcs::check_protocol_numbers(&payload).map_err(internal)?;
    Ok(OutboxItem {
        message_id: MessageId::new().to_string(),
        recipient: recipient.to_string(),
        payload_type: t.as_str().to_string(),
        payload,
        created_at: at,
    })
}

/// The `case_update` envelopes the home node sends after `new` events were appended to
/// `log` (`case` is the case after them): to each peer node serving a member agency, the new
/// events as its agencies may see them (the best view among them: the node enforces each
/// agency's view again when its users read); to the node of an agency that joined, the whole
/// log again; and `answers` to the nodes whose actions they answer.
fn fan_out(
    case_id: Uuid,
    case: &Case,
    log: &[CaseEvent],
    new_from: u64,
    nodes: &AgencyNodes,
    mut answers: BTreeMap<String, Vec<CaseAnswer>>,
    at: Timestamp,
) -> Result<Vec<OutboxItem>> {
    // A share makes a link whole for members that had only its kind: its `linked` event is
    // sent again with it, to replace the withheld form.
    let relinked: BTreeSet<u64> = log
        .iter()
        .filter(|e| e.seq >= new_from)
        .filter_map(|e| match &e.change {
            CaseChange::Shared { item } => case.links.get(&(item.kind, item.id.clone())).map(|l| l.linked_seq),
            _ => None,
        })
        .collect();
    // Peer node → its member agencies.
    let mut peers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &case.members {
        if let Some(Some(peer)) = node_of(nodes, &m.agency) {
            peers.entry(peer.clone()).or_default().push(m.agency.clone());
        }
    }
    let mut out = Vec::new();
    for (peer, agencies) in &peers {
        // An agency of this node was invited or joined in the new events: what it may see
        // grew, so it is sent the log again (a node that never held the case needs it whole).
        let rejoined = log.iter().any(|e| {
            e.seq >= new_from
                && matches!(&e.change,
                    CaseChange::Joined { agency } | CaseChange::Invited { agency }
                        if agencies.iter().any(|a| a.eq_ignore_ascii_case(agency)))
        });
        let mut events = Vec::new();
        for e in log
            .iter()
            .filter(|e| rejoined || e.seq >= new_from || relinked.contains(&e.seq))
        {
            let mut best: Option<CaseEvent> = None;
            for a in agencies {
                match (case.event_view(e, a, None), &best) {
                    (EventView::Full, _) => {
                        best = Some(e.clone());
                        break;
                    }
                    (EventView::Withheld, None) => best = case.event_for(e, a, None),
                    _ => {}
                }
            }
            if let Some(mut e) = best {
                // Another node's action id means nothing here.
                if !answers.contains_key(peer) {
                    e.action = None;
                } else if let Some(id) = &e.action
                    && !answers[peer].iter().any(|a| a.action.to_string() == *id)
                {
                    e.action = None;
                }
                events.push(e);
            }
        }
        let mut answers_here = answers.remove(peer).unwrap_or_default();
        if events.is_empty() && answers_here.is_empty() {
            continue;
        }
        let mut chunks: Vec<Vec<CaseEvent>> = events.chunks(MAX_UPDATE_EVENTS).map(<[CaseEvent]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let p = CaseUpdatePayload {
                case_id,
                events: chunk,
                answers: if i == last {
                    std::mem::take(&mut answers_here)
                } else {
                    Vec::new()
                },
            };
            out.push(outbox(
                peer,
                PayloadType::CaseUpdate,
                serde_json::to_value(p).map_err(internal)?,
                at,
            )?);
        }
    }
    // Answers to a node that no longer serves a member (it left): sent alone.
    for (peer, a) in answers {
        if a.is_empty() {
            continue;
        }
        let p = CaseUpdatePayload {
            case_id,
            events: Vec::new(),
            answers: a,
        };
        out.push(outbox(
            &peer,
            PayloadType::CaseUpdate,
            serde_json::to_value(p).map_err(internal)?,
            at,
        )?);
    }
    Ok(out)
}

/// A case as an incoming batch leaves it so far: what the store holds, with the effects of the
/// batch's earlier messages about it (see `federation::apply::Planner`).
#[derive(Debug, Clone, Default)]
pub(crate) struct CaseBase {
    pub row: Option<CaseRow>,
    pub log: Vec<CaseEvent>,
    /// This node's actions on the case, by id.
    pub actions: BTreeMap<String, ActionRef>,
}

/// What an event that answers one of this node's actions must match.
#[derive(Debug, Clone)]
pub(crate) struct ActionRef {
    pub agency: String,
    pub change_sha256: String,
    /// Answered already (an event or a refusal named it).
    pub decided: bool,
}

impl CaseBase {
    /// The case after `w` is written.
    pub(crate) fn after(mut self, w: &CaseWrite) -> CaseBase {
        let seqs: BTreeSet<u64> = w.events.iter().map(|e| e.seq).collect();
        self.log.retain(|e| !seqs.contains(&e.seq));
        self.log.extend(w.events.iter().cloned());
        self.log.sort_by_key(|e| e.seq);
        self.row = Some(w.row.clone());
        for a in &w.actions {
            self.actions.insert(a.id.clone(), ActionRef::of(a));
        }
        for (id, _) in &w.decided {
            if let Some(a) = self.actions.get_mut(id) {
                a.decided = true;
            }
        }
        self
    }
}

impl ActionRef {
    fn of(a: &CaseAction) -> ActionRef {
        ActionRef {
            agency: a.agency.clone(),
            change_sha256: a.change_sha256.clone(),
            decided: a.outcome.is_some(),
        }
    }
}

/// SHA-256 of a change's JCS form: what binds an event to the action that asked for it.
fn change_digest(c: &CaseChange) -> Result<String> {
    let bytes = liaison_wire::to_canonical(c).map_err(internal)?;
    Ok(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)))
}

/// The case as `agency` saw it: as it was when the agency left or declined, else as it is.
fn as_seen(case: Case, log: &[CaseEvent], agency: &str) -> Case {
    match case.member(agency) {
        Some(m) if matches!(m.status, MemberStatus::Left | MemberStatus::Declined) => {
            let since = m.since_seq;
            Case::replay(log.iter().filter(|e| e.seq <= since)).unwrap_or(case)
        }
        _ => case,
    }
}

fn parse_case_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id.trim()).map_err(|_| ServiceError::NotFound(format!("case {id}")))
}

impl Node {
    /// What the store holds of case `id` (`row` `None`: not known here).
    pub(crate) async fn case_base(&self, id: &str) -> Result<CaseBase> {
        let row = match self.store.case_row(id).await {
            Ok(r) => r,
            Err(liaison_store::StoreError::NotFound(_)) => return Ok(CaseBase::default()),
            Err(e) => return Err(e.into()),
        };
        Ok(CaseBase {
            log: self.store.case_events(id).await?,
            actions: self
                .store
                .case_actions(id)
                .await?
                .iter()
                .map(|a| (a.id.clone(), ActionRef::of(a)))
                .collect(),
            row: Some(row),
        })
    }

    /// The case `id` and its log, for a reader of agency `code`: "not found" unless the
    /// agency was ever invited and the case's marking admits the user.
    async fn case_for(&self, p: &Principal, id: &str) -> Result<(CaseRow, Case, Vec<CaseEvent>, String)> {
        let code = self.agency_code_of(p).await?;
        let row = match self.store.case_row(id).await {
            Ok(r) => r,
            Err(liaison_store::StoreError::NotFound(_)) => return Err(ServiceError::NotFound(format!("case {id}"))),
            Err(e) => return Err(e.into()),
        };
        let log = self.store.case_events(id).await?;
        let case = Case::replay(&log).map_err(|e| internal(format!("case {id}: {e}")))?;
        if !case.visible_to(&code, &p.username) {
            return Err(ServiceError::NotFound(format!("case {id}")));
        }
        Ok((row, case, log, code))
    }

    /// Opens a joint case led by the caller's agency, inviting `invite` (agency codes of this
    /// node or of pinned peers' nodes). Officers and supervisors.
    pub async fn case_create(
        &self,
        p: &Principal,
        name: &str,
        reference: &str,
        marking: Option<Marking>,
        invite: &[String],
        now: Timestamp,
    ) -> Result<CaseView> {
        may_lead(p)?;
        let lead = self.agency_code_of(p).await?;
        let name = name.trim();
        check_text("name", name, liaison_core::case::MAX_NAME_CHARS, false).map_err(refused)?;
        let reference = reference.trim();
        check_reference(reference).map_err(refused)?;
        if self.store.case_by_reference(&lead, reference).await?.is_some() {
            return Err(ServiceError::Conflict(format!("{lead} already has a case {reference}")));
        }
        let marking = marking.unwrap_or_else(|| Marking::new(self.markings.request));
        if marking.tlp == Tlp::Clear {
            return Err(ServiceError::invalid(
                "marking",
                "a case is never TLP:CLEAR: it names who works on what",
            ));
        }
        let id = Uuid::now_v7();
        let mut log = vec![CaseEvent {
            seq: 1,
            at: now,
            actor: p.username.clone(),
            agency: lead.clone(),
            change: CaseChange::Created {
                name: name.to_string(),
                reference: reference.to_string(),
                lead: lead.clone(),
                marking,
            },
            action: None,
        }];
        let mut case = Case::start(&log[0]).map_err(refused)?;
        let nodes = agency_nodes(self).await?;
        for code in invite {
            let ev = self.invitation(&nodes, &case, code, p, now, log.len() as u64 + 1)?;
            case.apply(&ev).map_err(refused)?;
            log.push(ev);
        }
        let outbox = fan_out(id, &case, &log, 1, &nodes, BTreeMap::new(), now)?;
        self.store
            .case_write(CaseWrite {
                row: row_of(&id.to_string(), &case, None),
                expected_last_seq: None,
                events: log,
                members: members_rows(&case),
                links: link_rows(&case),
                actions: Vec::new(),
                decided: Vec::new(),
                outbox,
                actor: p.username.clone(),
                at: now,
            })
            .await?;
        self.case(p, &id.to_string(), now).await
    }

    /// The `invited` event for `code`, which must be an agency of this node or of a pinned
    /// peer's node (the case travels there).
    fn invitation(
        &self,
        nodes: &AgencyNodes,
        case: &Case,
        code: &str,
        p: &Principal,
        now: Timestamp,
        seq: u64,
    ) -> Result<CaseEvent> {
        let code = code.trim().to_ascii_uppercase();
        if node_of(nodes, &code).is_none() {
            return Err(ServiceError::invalid(
                "invite",
                format!("'{code}' is not an agency in this node's directory"),
            ));
        }
        if code.eq_ignore_ascii_case(&case.lead) {
            return Err(ServiceError::invalid("invite", format!("{code} leads the case")));
        }
        Ok(CaseEvent {
            seq,
            at: now,
            actor: p.username.clone(),
            agency: case.lead.clone(),
            change: CaseChange::Invited { agency: code },
            action: None,
        })
    }

    /// The cases the caller's agency was ever invited to that the user may see, newest change
    /// first.
    pub async fn cases(&self, p: &Principal) -> Result<Vec<CaseSummary>> {
        may_read(p)?;
        let code = self.agency_code_of(p).await?;
        let mut out = Vec::new();
        for (mut row, status) in self.store.cases_of_agency(&code.to_ascii_uppercase()).await? {
            let status: MemberStatus = status.parse().map_err(internal)?;
            // A RED case naming users, and a case the agency left or declined (shown as it was
            // then): read the log (rare).
            let gone = matches!(status, MemberStatus::Left | MemberStatus::Declined);
            if row.tlp == Tlp::Red.as_str() || gone {
                let log = self.store.case_events(&row.id).await?;
                let case = Case::replay(&log).map_err(|e| internal(format!("case {}: {e}", row.id)))?;
                if !case.visible_to(&code, &p.username) {
                    continue;
                }
                let then = as_seen(case, &log, &code);
                row.name = then.name;
                row.state = then.state;
                row.tlp = then.marking.tlp.as_str().to_string();
                row.updated_at = then.updated_at;
            }
            out.push(CaseSummary {
                status,
                id: row.id,
                reference: row.reference,
                name: row.name,
                lead: row.lead,
                state: row.state,
                tlp: row.tlp,
                home: row.home,
                updated_at: row.updated_at,
            });
        }
        Ok(out)
    }

    /// The cases request `id` is linked to, as the caller may see them: cases the caller's
    /// agency is in whose link to this request it may see (a party, or shared with the case).
    pub async fn cases_of_request(&self, p: &Principal, id: RequestId) -> Result<Vec<CaseSummary>> {
        may_read(p)?;
        let linked: BTreeSet<String> = self
            .store
            .cases_of_item(ItemKind::Request.as_str(), &id.to_string())
            .await?
            .into_iter()
            .collect();
        if linked.is_empty() {
            return Ok(Vec::new());
        }
        let code = self.agency_code_of(p).await?;
        let rid = id.to_string();
        let mut out = Vec::new();
        for c in self.cases(p).await? {
            if !linked.contains(&c.id) {
                continue;
            }
            let (_, case, _, _) = self.case_for(p, &c.id).await?;
            let sees = case.links_for(&code, Some(&p.username)).iter().any(|l| {
                l.item
                    .as_ref()
                    .is_some_and(|i| i.kind == ItemKind::Request && i.id == rid)
            });
            if sees {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// A case as the caller may see it: its members, its links (an item the caller may not
    /// see shows only its kind), its timeline and the caller's agency's waiting actions.
    pub async fn case(&self, p: &Principal, id: &str, now: Timestamp) -> Result<CaseView> {
        may_read(p)?;
        let id = parse_case_id(id)?.to_string();
        let (row, case, log, code) = self.case_for(p, &id).await?;
        let timeline: Vec<CaseEvent> = log
            .iter()
            .filter_map(|e| case.event_for(e, &code, Some(&p.username)))
            .collect();
        let mut links = Vec::new();
        for l in case.links_for(&code, Some(&p.username)) {
            let label = match &l.item {
                Some(i) if i.subtype.as_deref() == Some("spontaneous_information") => "lead".to_string(),
                _ => l.item_kind.as_str().to_string(),
            };
            let live = match &l.item {
                Some(i) if i.kind == ItemKind::Request => self.live_request(p, &i.id, &case.reference, now).await?,
                _ => None,
            };
            links.push(LinkView { link: l, label, live });
        }
        let actions = self
            .store
            .case_actions(&id)
            .await?
            .into_iter()
            .filter(|a| a.agency.eq_ignore_ascii_case(&code))
            .map(|a| ActionView {
                outcome: a.outcome.unwrap_or_else(|| "waiting".into()),
                id: a.id,
                agency: a.agency,
                actor: a.actor,
                kind: a.kind,
                at: a.at,
            })
            .collect();
        let status = case.status(&code).unwrap_or(MemberStatus::Invited);
        // An agency that left or declined sees the case as it was then.
        let case = as_seen(case, &log, &code);
        Ok(CaseView {
            id,
            reference: case.reference,
            name: case.name,
            lead: case.lead,
            marking: case.marking,
            state: case.state,
            created_at: case.created_at,
            created_by: case.created_by,
            home: row.home,
            status,
            members: case.members,
            links,
            timeline,
            actions,
        })
    }

    /// What a linked request is now, if `p` may see it on this node.
    async fn live_request(
        &self,
        p: &Principal,
        id: &str,
        case_ref: &str,
        now: Timestamp,
    ) -> Result<Option<LiveRequest>> {
        let Ok(rid) = id.parse::<RequestId>() else {
            return Ok(None);
        };
        let r = match self.request(p, rid, now).await {
            Ok(r) => r,
            Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let q = &r.request;
        let deadline = liaison_core::sla::running_deadline(q.state);
        let due = deadline.and_then(|d| match d {
            liaison_core::sla::DeadlineKind::Acknowledge => q.ack_due,
            liaison_core::sla::DeadlineKind::Answer => q.answer_due,
            liaison_core::sla::DeadlineKind::PreservationExpiry => q.preserved_until,
            liaison_core::sla::DeadlineKind::Information => q.information_due,
        });
        let usable = q.draft.case_reference == case_ref
            || self
                .permitted_uses(p, rid, now)
                .await
                .map(|u| u.iter().any(|c| c == case_ref))
                .unwrap_or(false);
        Ok(Some(LiveRequest {
            state: q.state.as_str().to_string(),
            reference: r.reference.clone(),
            submitted_at: q.submitted_at,
            answered_at: q.answered_at,
            deadline: deadline.map(|d| d.as_str().to_string()),
            due,
            usable_in_case: usable,
        }))
    }

    /// Counts and durations over the case's links as the caller may see them.
    pub async fn case_stats(&self, p: &Principal, id: &str, now: Timestamp) -> Result<CaseStats> {
        let view = self.case(p, id, now).await?;
        let mut s = CaseStats {
            members: view.members.iter().filter(|m| m.status == MemberStatus::Active).count() as u64,
            ..Default::default()
        };
        let mut answer_secs = Vec::new();
        for l in &view.links {
            let Some(item) = &l.link.item else {
                s.withheld += 1;
                continue;
            };
            match item.kind {
                ItemKind::Notice => s.notices += 1,
                ItemKind::Evidence => s.evidence += 1,
                ItemKind::Request => {
                    if l.label == "lead" {
                        s.leads += 1;
                    } else {
                        s.requests += 1;
                    }
                    let state = match &l.live {
                        Some(live) => live.state.clone(),
                        None => item.state.clone().unwrap_or_else(|| "unknown".into()),
                    };
                    *s.requests_by_state.entry(state).or_default() += 1;
                    if let Some(live) = &l.live {
                        if let (Some(a), Some(b)) = (live.submitted_at, live.answered_at) {
                            answer_secs.push(b.as_second() - a.as_second());
                        }
                        if let (Some(d), Some(due)) = (&live.deadline, live.due) {
                            s.open_deadlines.push(OpenDeadline {
                                request: item.id.clone(),
                                reference: live.reference.clone(),
                                deadline: d.clone(),
                                due,
                                overdue: due < now,
                            });
                        }
                    }
                }
            }
        }
        s.open_deadlines.sort_by_key(|d| d.due);
        answer_secs.sort_unstable();
        s.answered = answer_secs.len() as u64;
        s.median_answer_secs = answer_secs.get(answer_secs.len() / 2).copied();
        s.max_answer_secs = answer_secs.last().copied();
        Ok(s)
    }

    /// The lead invites an agency (of this node or of a pinned peer's node).
    pub async fn case_invite(&self, p: &Principal, id: &str, agency: &str, now: Timestamp) -> Result<CaseView> {
        may_lead(p)?;
        let nodes = agency_nodes(self).await?;
        let id = parse_case_id(id)?.to_string();
        let (_, case, _, _) = self.case_for(p, &id).await?;
        let ev = self.invitation(&nodes, &case, agency, p, now, case.last_seq + 1)?;
        self.case_change(p, &id, ev.change, now).await
    }

    /// The caller's agency accepts or declines its invitation.
    pub async fn case_answer(
        &self,
        p: &Principal,
        id: &str,
        accept: bool,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<CaseView> {
        let agency = self.agency_code_of(p).await?;
        let change = if accept {
            CaseChange::Joined { agency }
        } else {
            CaseChange::Declined {
                agency,
                note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
            }
        };
        self.case_change(p, id, change, now).await
    }

    /// The caller's agency leaves the case: nothing more is shared with it.
    pub async fn case_leave(&self, p: &Principal, id: &str, note: Option<String>, now: Timestamp) -> Result<CaseView> {
        let agency = self.agency_code_of(p).await?;
        let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        self.case_change(p, id, CaseChange::Left { agency, note }, now).await
    }

    /// Links an item the caller may see here and its agency is a party to; `share`: the
    /// caller's agency is the item's originator and shares it with every member at once.
    pub async fn case_link(
        &self,
        p: &Principal,
        id: &str,
        item: &ItemRef,
        share: bool,
        now: Timestamp,
    ) -> Result<CaseView> {
        let snapshot = self.item_snapshot(p, item, now).await?;
        self.case_change(
            p,
            id,
            CaseChange::Linked {
                item: snapshot,
                shared: share,
            },
            now,
        )
        .await
    }

    /// The item's originator shares a linked item with every member (its consent, recorded).
    pub async fn case_share(&self, p: &Principal, id: &str, item: &ItemRef, now: Timestamp) -> Result<CaseView> {
        let snapshot = self.item_snapshot(p, item, now).await?;
        self.case_change(p, id, CaseChange::Shared { item: snapshot }, now)
            .await
    }

    /// A note to the case's members, under its own marking (by default the case's level).
    pub async fn case_note(
        &self,
        p: &Principal,
        id: &str,
        text: &str,
        marking: Option<Marking>,
        now: Timestamp,
    ) -> Result<CaseView> {
        // By default the case's level naming nobody: the case's own marking (and the users a
        // RED case names) still decides who sees the case at all.
        let marking = match marking {
            Some(m) => m,
            None => {
                let (_, case, _, _) = self.case_for(p, &parse_case_id(id)?.to_string()).await?;
                Marking::new(case.marking.tlp)
            }
        };
        let change = CaseChange::Note {
            text: text.trim().to_string(),
            marking,
        };
        self.case_change(p, id, change, now).await
    }

    /// The lead closes (`open` false) or reopens the case.
    pub async fn case_close(
        &self,
        p: &Principal,
        id: &str,
        open: bool,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<CaseView> {
        let change = if open {
            CaseChange::Reopened
        } else {
            CaseChange::Closed {
                note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
            }
        };
        self.case_change(p, id, change, now).await
    }

    /// The lead changes the case's marking.
    pub async fn case_set_marking(
        &self,
        p: &Principal,
        id: &str,
        marking: Marking,
        now: Timestamp,
    ) -> Result<CaseView> {
        if marking.tlp == Tlp::Clear {
            return Err(ServiceError::invalid("marking", "a case is never TLP:CLEAR"));
        }
        self.case_change(p, id, CaseChange::Marking { marking }, now).await
    }

    /// What the caller's agency may link of `item`: something the user may see on this node,
    /// its agency a party to it, never `TLP:RED`.
    async fn item_snapshot(&self, p: &Principal, item: &ItemRef, now: Timestamp) -> Result<ItemSnapshot> {
        let code_of = |id| async move { self.store.agency(id).await.map(|a| a.code) };
        let snap = match item.kind {
            ItemKind::Request => {
                let rid = self.resolve(p, &item.id, now).await?;
                let r = self.request(p, rid, now).await?;
                let d = &r.request.draft;
                let from = code_of(d.requesting_agency).await?;
                let to = code_of(d.requested_agency).await?;
                ItemSnapshot {
                    kind: ItemKind::Request,
                    id: r.request.id.to_string(),
                    originator: from.clone(),
                    parties: vec![from, to],
                    tlp: d.marking().tlp,
                    title: d.summary.chars().take(liaison_core::case::MAX_TITLE_CHARS).collect(),
                    reference: Some(r.reference.clone()),
                    subtype: Some(d.kind.as_str().to_string()),
                    state: Some(r.request.state.as_str().to_string()),
                    at: r.request.submitted_at.unwrap_or(r.request.created_at),
                }
            }
            ItemKind::Evidence => {
                let f = self.evidence_meta(p, None, &item.id, now).await?;
                let r = self.request(p, f.request_id, now).await?;
                let d = &r.request.draft;
                let from = code_of(f.uploader_agency).await?;
                let parties = vec![code_of(d.requesting_agency).await?, code_of(d.requested_agency).await?];
                ItemSnapshot {
                    kind: ItemKind::Evidence,
                    id: f.id.clone(),
                    originator: from,
                    parties,
                    tlp: f.marking.tlp,
                    title: f.file_name.chars().take(liaison_core::case::MAX_TITLE_CHARS).collect(),
                    reference: Some(r.reference.clone()),
                    subtype: Some(f.kind.as_str().to_string()),
                    state: None,
                    at: f.uploaded_at,
                }
            }
            ItemKind::Notice => {
                let own = self.agency_code_of(p).await?;
                let want = item.id.trim();
                let issued = if p.role.may_read_statistics() || crate::intel::may_operate(p.role) {
                    self.intel_notices(p, None).await?
                } else {
                    Vec::new()
                };
                if let Some(n) = issued.into_iter().find(|n| n.notice.id.0.to_string() == want) {
                    let issuer = n.issuer.clone().unwrap_or_else(|| own.clone());
                    ItemSnapshot {
                        kind: ItemKind::Notice,
                        id: want.to_string(),
                        originator: issuer.clone(),
                        parties: vec![issuer, n.notice.partner.as_str().to_string()],
                        tlp: n.notice.tlp,
                        title: format!("{} items for {}", n.notice.items.len(), n.notice.partner),
                        reference: None,
                        subtype: None,
                        state: None,
                        at: Timestamp::from_second(n.issued_at).map_err(internal)?,
                    }
                } else if let Some(n) = self
                    .intel_inbox(p)
                    .await?
                    .into_iter()
                    .find(|n| n.id.to_string() == want)
                {
                    ItemSnapshot {
                        kind: ItemKind::Notice,
                        id: want.to_string(),
                        originator: n.issuer.clone(),
                        parties: vec![n.issuer.clone(), n.partner.clone()],
                        tlp: n.tlp,
                        title: format!("{} items from {}", n.items.len(), n.issuer),
                        reference: None,
                        subtype: None,
                        state: None,
                        at: Timestamp::from_second(n.issued_at).map_err(internal)?,
                    }
                } else {
                    return Err(ServiceError::NotFound(format!("notice {want}")));
                }
            }
        };
        snap.check().map_err(refused)?;
        Ok(snap)
    }

    /// A change asked for by `p`: decided here when this node keeps the case, else sent to the
    /// home node as an action.
    async fn case_change(&self, p: &Principal, id: &str, change: CaseChange, now: Timestamp) -> Result<CaseView> {
        may_read(p)?;
        check_role(p, &change)?;
        let id = parse_case_id(id)?.to_string();
        // Decided from the case as read; a change that came in between (another user, a
        // peer's update) makes the write a conflict, and it is decided again from the new state.
        let mut attempt = 0;
        loop {
            let write = self.case_change_write(p, &id, change.clone(), now).await?;
            match self.store.case_write(write).await {
                Ok(()) => break,
                Err(liaison_store::StoreError::Conflict(_)) if attempt < 3 => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        }
        self.case(p, &id, now).await
    }

    /// What `change` by `p` writes: the event and its envelopes when this node keeps the case,
    /// else the action sent to the home node.
    async fn case_change_write(
        &self,
        p: &Principal,
        id: &str,
        change: CaseChange,
        now: Timestamp,
    ) -> Result<CaseWrite> {
        let (row, mut case, mut log, code) = self.case_for(p, id).await?;
        let Some(home) = &row.home else {
            let ev = CaseEvent {
                seq: case.last_seq + 1,
                at: now.max(case.updated_at),
                actor: p.username.clone(),
                agency: code,
                change,
                action: None,
            };
            return self
                .append_write(id, &mut case, &mut log, vec![ev], BTreeMap::new(), &p.username, now)
                .await;
        };
        // Checked here first, so that the user hears at once what the home node would say;
        // the home node checks it again.
        let mut probe = case.clone();
        probe
            .apply(&CaseEvent {
                seq: case.last_seq + 1,
                at: now,
                actor: p.username.clone(),
                agency: code.clone(),
                change: change.clone(),
                action: None,
            })
            .map_err(refused)?;
        let action = Uuid::now_v7();
        let payload = CaseActionPayload {
            case_id: parse_case_id(id)?,
            action,
            at: now,
            actor: p.username.clone(),
            agency: code.clone(),
            change: change.clone(),
        };
        payload.check().map_err(|e| ServiceError::invalid("change", e))?;
        let item = outbox(
            home,
            PayloadType::CaseAction,
            serde_json::to_value(payload).map_err(internal)?,
            now,
        )?;
        Ok(CaseWrite {
            expected_last_seq: Some(row.last_seq),
            events: Vec::new(),
            members: members_rows(&case),
            links: link_rows(&case),
            actions: vec![CaseAction {
                id: action.to_string(),
                case_id: id.to_string(),
                agency: code,
                actor: p.username.clone(),
                kind: change.kind().to_string(),
                change_sha256: change_digest(&change)?,
                at: now,
                outcome: None,
                decided_at: None,
            }],
            decided: Vec::new(),
            outbox: vec![item],
            actor: p.username.clone(),
            at: now,
            row,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn append_write(
        &self,
        id: &str,
        case: &mut Case,
        log: &mut Vec<CaseEvent>,
        new: Vec<CaseEvent>,
        answers: BTreeMap<String, Vec<CaseAnswer>>,
        actor: &str,
        now: Timestamp,
    ) -> Result<CaseWrite> {
        let expected = case.last_seq;
        let new_from = expected + 1;
        for ev in &new {
            case.apply(ev).map_err(refused)?;
        }
        log.extend(new.iter().cloned());
        let nodes = agency_nodes(self).await?;
        let outbox = fan_out(parse_case_id(id)?, case, log, new_from, &nodes, answers, now)?;
        Ok(CaseWrite {
            row: row_of(id, case, None),
            expected_last_seq: Some(expected),
            events: new,
            members: members_rows(case),
            links: link_rows(case),
            actions: Vec::new(),
            decided: Vec::new(),
            outbox,
            actor: actor.to_string(),
            at: now,
        })
    }

    /// Checks a `case_action` from `sender` for a case this node keeps and decides it: the
    /// event appended with the update to every member node (the answer to the sender in it),
    /// or, when the case's rules refuse it, only the refusal to the sender. `Err`: not applied
    /// (the case is unknown here or kept elsewhere, or the sender does not serve the agency).
    pub(crate) async fn plan_case_action(
        &self,
        sender: &str,
        p: CaseActionPayload,
        now: Timestamp,
        base: CaseBase,
    ) -> Result<CaseWrite> {
        p.check().map_err(|e| ServiceError::invalid("payload", e))?;
        let id = p.case_id.to_string();
        let Some(row) = base.row else {
            return Err(ServiceError::NotFound(format!("case {id}")));
        };
        if row.home.is_some() {
            return Err(ServiceError::Forbidden(format!("case {id} is not kept by this node")));
        }
        let nodes = agency_nodes(self).await?;
        if node_of(&nodes, &p.agency).cloned().flatten().as_deref() != Some(sender) {
            return Err(ServiceError::Forbidden(format!(
                "the acting agency '{}' is not served by {sender}",
                p.agency
            )));
        }
        let mut log = base.log;
        let mut case = Case::replay(&log).map_err(|e| internal(format!("case {id}: {e}")))?;
        let agency = case
            .member(&p.agency)
            .map(|m| m.agency.clone())
            .unwrap_or_else(|| p.agency.clone());
        let ev = CaseEvent {
            seq: case.last_seq + 1,
            // A peer does not choose a time in this node's future, nor one before the log's end.
            at: p.at.min(now).max(case.updated_at),
            actor: format!("{sender}:{}", p.actor),
            agency,
            change: p.change,
            action: Some(p.action.to_string()),
        };
        let mut probe = case.clone();
        let verdict = match self.snapshot_differs_here(&ev.change).await? {
            Some(why) => Err(CaseError::NotAllowed(why)),
            None => probe.apply(&ev),
        };
        match verdict {
            Ok(()) => {
                let answers = BTreeMap::from([(
                    sender.to_string(),
                    vec![CaseAnswer {
                        action: p.action,
                        applied: true,
                        reason: None,
                    }],
                )]);
                let actor = ev.actor.clone();
                self.append_write(&id, &mut case, &mut log, vec![ev], answers, &actor, now)
                    .await
            }
            Err(e) => {
                tracing::info!(case = %id, sender, action = %p.action, error = %e, "a member node's case action was refused");
                let reason: String = e
                    .to_string()
                    .chars()
                    .take(liaison_wire::case::MAX_REASON_CHARS)
                    .collect();
                let payload = CaseUpdatePayload {
                    case_id: p.case_id,
                    events: Vec::new(),
                    answers: vec![CaseAnswer {
                        action: p.action,
                        applied: false,
                        reason: Some(reason),
                    }],
                };
                Ok(CaseWrite {
                    row: row.clone(),
                    expected_last_seq: Some(row.last_seq),
                    events: Vec::new(),
                    members: members_rows(&case),
                    links: link_rows(&case),
                    actions: Vec::new(),
                    decided: Vec::new(),
                    outbox: vec![outbox(
                        sender,
                        PayloadType::CaseUpdate,
                        serde_json::to_value(payload).map_err(internal)?,
                        now,
                    )?],
                    actor: format!("{sender}:{}", p.actor),
                    at: now,
                })
            }
        }
    }

    /// When a member node links or shares a request this node also holds (a request between
    /// the lead and that member), whether its snapshot names other parties than the request
    /// here: the reason to refuse it, or `None`. A request not held here is taken as sent.
    async fn snapshot_differs_here(&self, change: &CaseChange) -> Result<Option<String>> {
        let (CaseChange::Linked { item, .. } | CaseChange::Shared { item }) = change else {
            return Ok(None);
        };
        if item.kind != ItemKind::Request {
            return Ok(None);
        }
        let Ok(rid) = item.id.parse::<RequestId>() else {
            return Ok(Some(format!("'{}' is not a request id", item.id)));
        };
        let r = match self.store.request(rid, None).await {
            Ok(r) => r,
            Err(liaison_store::StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let d = &r.request.draft;
        let from = self.store.agency(d.requesting_agency).await?.code;
        let to = self.store.agency(d.requested_agency).await?.code;
        let same_parties = item.parties.len() == 2 && item.has_party(&from) && item.has_party(&to);
        if !item.originator.eq_ignore_ascii_case(&from) || !same_parties || item.tlp < d.marking().tlp {
            return Ok(Some(format!(
                "request {} is between {from} (its originator) and {to}, marked {}, here; the item sent names {} ({}), marked {}",
                item.id,
                d.marking().tlp,
                item.originator,
                item.parties.join(", "),
                item.tlp
            )));
        }
        Ok(None)
    }

    /// Checks a `case_update` from `sender`: the sender keeps the case (it serves the lead
    /// agency), the whole log with the new events passes the case's rules, and every new event
    /// in which an agency of this node acted answers an action this node sent. `Err`: not
    /// applied.
    pub(crate) async fn plan_case_update(
        &self,
        sender: &str,
        p: CaseUpdatePayload,
        base: CaseBase,
    ) -> Result<CaseWrite> {
        p.check().map_err(|e| ServiceError::invalid("payload", e))?;
        let id = p.case_id.to_string();
        let nodes = agency_nodes(self).await?;
        let CaseBase {
            row,
            mut log,
            actions: mut ours,
        } = base;
        if let Some(r) = &row
            && r.home.as_deref() != Some(sender)
        {
            return Err(ServiceError::Forbidden(format!("case {id} is not kept by {sender}")));
        }
        let held: BTreeSet<u64> = log
            .iter()
            .filter(|e| !matches!(e.change, CaseChange::Withheld { .. }))
            .map(|e| e.seq)
            .collect();
        let mut new = Vec::new();
        let mut decided = Vec::new();
        for ev in p.events {
            if held.contains(&ev.seq) {
                continue;
            }
            // An event in which an agency of this node acted is one this node asked for: it
            // names an action of that agency not answered before, and carries exactly its change.
            if matches!(node_of(&nodes, &ev.agency), Some(None)) {
                let claim = || {
                    ServiceError::Forbidden(format!(
                        "event {} of case {id} says {} acted ({}), but this node asked for no such change",
                        ev.seq,
                        ev.agency,
                        ev.change.kind()
                    ))
                };
                let Some(aid) = ev.action.clone() else {
                    return Err(claim());
                };
                let digest = change_digest(&ev.change)?;
                match ours.get_mut(&aid) {
                    Some(a) if !a.decided && a.agency.eq_ignore_ascii_case(&ev.agency) && a.change_sha256 == digest => {
                        a.decided = true;
                        decided.push((aid, "applied".to_string()));
                    }
                    _ => return Err(claim()),
                }
            }
            new.push(ev);
        }
        // The log as it will be: new full events replace withheld ones.
        let new_seqs: BTreeSet<u64> = new.iter().map(|e| e.seq).collect();
        log.retain(|e| !new_seqs.contains(&e.seq));
        log.extend(new.iter().cloned());
        log.sort_by_key(|e| e.seq);
        let case = match Case::replay(&log) {
            Ok(c) => c,
            Err(e) => return Err(ServiceError::Forbidden(format!("case {id}: {e}"))),
        };
        if row.is_none()
            && let Some(other) = self.store.case_by_reference(&case.lead, &case.reference).await?
            && other.id != id
        {
            return Err(ServiceError::Conflict(format!(
                "{} already has a case {} here ({})",
                case.lead, case.reference, other.id
            )));
        }
        if node_of(&nodes, &case.lead).cloned().flatten().as_deref() != Some(sender) {
            return Err(ServiceError::Forbidden(format!(
                "the lead agency {} of case {id} is not served by {sender}",
                case.lead
            )));
        }
        if !case
            .members
            .iter()
            .any(|m| matches!(node_of(&nodes, &m.agency), Some(None)))
        {
            return Err(ServiceError::Forbidden(format!(
                "case {id} names no agency of this node"
            )));
        }
        for a in &p.answers {
            let aid = a.action.to_string();
            if decided.iter().any(|(d, _)| *d == aid) {
                continue; // answered by its event in this update
            }
            match ours.get_mut(&aid) {
                Some(r) if !r.decided => r.decided = true,
                _ => {
                    return Err(ServiceError::Forbidden(format!(
                        "answer to action {aid}, which this node did not send or which was answered before"
                    )));
                }
            }
            let outcome = if a.applied {
                "applied".to_string()
            } else {
                format!("refused: {}", a.reason.as_deref().unwrap_or("no reason given"))
            };
            decided.push((aid, outcome));
        }
        let now = Timestamp::now();
        Ok(CaseWrite {
            row: row_of(&id, &case, Some(sender.to_string())),
            expected_last_seq: row.as_ref().map(|r| r.last_seq),
            events: new,
            members: members_rows(&case),
            links: link_rows(&case),
            actions: Vec::new(),
            decided,
            outbox: Vec::new(),
            actor: format!("{sender}:system"),
            at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_core::Role;

    #[test]
    fn the_leads_changes_need_a_drafting_role() {
        let p = |role| Principal {
            user: liaison_core::UserId::new(),
            username: "u".into(),
            agency: liaison_core::AgencyId::new(),
            role,
            token: None,
        };
        let invite = CaseChange::Invited { agency: "X".into() };
        let note = CaseChange::Note {
            text: "t".into(),
            marking: Marking::new(Tlp::Amber),
        };
        assert!(check_role(&p(Role::Officer), &invite).is_ok());
        assert!(check_role(&p(Role::Desk), &invite).is_err());
        assert!(check_role(&p(Role::Desk), &note).is_ok());
        assert!(check_role(&p(Role::Analyst), &note).is_err());
        assert!(check_role(&p(Role::Auditor), &note).is_err());
    }
}
