//! Requests: drafts, state changes, comments, history, listings and the deadline watcher.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require, side_of};
use jiff::Timestamp;
use liaison_core::directory::{Agency, time_zone};
use liaison_core::lifecycle::{self, Actor, Side, State, TransitionError, TransitionInput};
use liaison_core::record::{EventRecord, Page, Principal, RequestFilter, RequestSummary, StoredRequest};
use liaison_core::request::{AssistanceRequest, RequestDraft};
use liaison_core::{AgencyId, RequestId};
use liaison_store::TransitionRecord;

impl Node {
    /// Loads a request the principal may see (404 otherwise, so ids of other agencies' cases do not leak).
    pub(crate) async fn visible(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<(StoredRequest, Side)> {
        self.visible_for(p, id, now, "reading requests").await
    }

    /// [`Node::visible`] for a use case named `what` in the refusal ("changing the state of
    /// requests", …), so that the refusal says what the caller tried.
    pub(crate) async fn visible_for(
        &self,
        p: &Principal,
        id: RequestId,
        now: Timestamp,
        what: &str,
    ) -> Result<(StoredRequest, Side)> {
        require(p.role.may_read_requests(), what, p)?;
        let r = self.store.request(id, Some(now)).await?;
        match side_of(p, &r.request) {
            // A draft is the requesting side's own business until it is submitted.
            Some(Side::Requested) if r.request.state == State::Draft => {
                Err(ServiceError::NotFound(format!("request {id}")))
            }
            // A marking that does not admit the reader (TLP:RED naming others) hides it as
            // if it did not exist (docs/markings.md).
            Some(side)
                if crate::markings::admits_request(
                    p,
                    r.request.draft.requesting_agency,
                    r.request.draft.requested_agency,
                    &r.request.draft.marking(),
                ) =>
            {
                Ok((r, side))
            }
            _ => Err(ServiceError::NotFound(format!("request {id}"))),
        }
    }

    async fn check_draft(&self, p: &Principal, d: &RequestDraft) -> Result<(Agency, Agency)> {
        let mut errs = d.validate();
        errs.extend(self.legal.check_offences(&d.offences));
        if p.agency != d.requesting_agency {
            return Err(ServiceError::Forbidden(format!(
                "{} may only draft requests for its own agency ({})",
                p.username, p.agency
            )));
        }
        let requesting =
            self.store.agency(d.requesting_agency).await.map_err(|_| {
                ServiceError::invalid("requesting_agency", format!("unknown agency {}", d.requesting_agency))
            });
        let requested =
            self.store.agency(d.requested_agency).await.map_err(|_| {
                ServiceError::invalid("requested_agency", format!("unknown agency {}", d.requested_agency))
            });
        match (requesting, requested) {
            (Ok(a), Ok(b)) if errs.is_empty() => Ok((a, b)),
            (a, b) => {
                for e in [a.err(), b.err()].into_iter().flatten() {
                    if let ServiceError::Invalid(v) = e {
                        errs.extend(v);
                    }
                }
                Err(ServiceError::Invalid(errs))
            }
        }
    }

    /// Creates a draft request.
    pub async fn create_request(
        &self,
        p: &Principal,
        mut draft: RequestDraft,
        now: Timestamp,
    ) -> Result<StoredRequest> {
        require(p.role.may_draft(), "drafting requests", p)?;
        if draft.marking_set.is_none() {
            draft.marking_set = Some(self.default_request_marking());
        }
        self.check_draft(p, &draft).await?;
        // Instants are stored to the millisecond: answer with what a later read returns.
        let now = Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
        let r = AssistanceRequest {
            id: RequestId::new(),
            draft,
            state: State::Draft,
            version: 1,
            created_at: now,
            updated_at: now,
            submitted_at: None,
            acknowledged_at: None,
            answered_at: None,
            ack_due: None,
            answer_due: None,
            preserved_until: None,
            information_due: None,
        };
        // Its author owns it (the draft, and the request once sent: "mine").
        let reference = self.store.insert_draft(&r, &p.username, p.user).await?;
        // A draft has no deadline running and no assessment yet: what was stored is the answer.
        Ok(StoredRequest {
            reference,
            request: r,
            assessment: None,
            rule_pack_version: None,
            overdue: None,
        })
    }

    /// Replaces a draft's content.
    pub async fn update_draft(
        &self,
        p: &Principal,
        id: RequestId,
        version: i64,
        mut draft: RequestDraft,
        now: Timestamp,
    ) -> Result<StoredRequest> {
        require(p.role.may_draft(), "editing drafts", p)?;
        let (cur, side) = self.visible(p, id, now).await?;
        if side != Side::Requesting || cur.request.state != State::Draft {
            return Err(ServiceError::Conflict(format!(
                "request {id} is {} and can no longer be edited",
                cur.request.state
            )));
        }
        if draft.marking_set.is_none() {
            draft.marking_set = Some(cur.request.draft.marking());
        }
        self.check_draft(p, &draft).await?;
        self.store.update_draft(id, version, &draft, &p.username, now).await?;
        Ok(self.store.request(id, Some(now)).await?)
    }

    pub async fn request(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<StoredRequest> {
        Ok(self.visible(p, id, now).await?.0)
    }

    /// A request's history; comments whose marking does not admit the reader are left out.
    pub async fn events(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<Vec<EventRecord>> {
        let (r, _) = self.visible(p, id, now).await?;
        let mut events = self.store.events(id).await?;
        events.retain(|e| e.event != "comment" || crate::markings::admits_comment(p, &r.request, e));
        Ok(events)
    }

    /// Lists requests the principal's agency sends or receives, in summary form.
    pub async fn list(&self, p: &Principal, f: RequestFilter, now: Timestamp) -> Result<Page<RequestSummary>> {
        let f = self.visible_filter(p, f)?;
        let mut page = self.store.request_summaries(&f, now).await?;
        // A page may come out shorter than asked: `next` still leads on.
        page.items
            .retain(|s| crate::markings::admits_request(p, s.requesting_agency, s.requested_agency, &s.marking));
        Ok(page)
    }

    /// Like [`Node::list`], with each request in full (body and assessment).
    pub async fn list_full(&self, p: &Principal, f: RequestFilter, now: Timestamp) -> Result<Page<StoredRequest>> {
        let f = self.visible_filter(p, f)?;
        let mut page = self.store.requests(&f, now).await?;
        page.items.retain(|r| {
            let d = &r.request.draft;
            crate::markings::admits_request(p, d.requesting_agency, d.requested_agency, &d.marking())
        });
        Ok(page)
    }

    fn visible_filter(&self, p: &Principal, mut f: RequestFilter) -> Result<RequestFilter> {
        require(p.role.may_read_requests(), "reading requests", p)?;
        f.visible_to = Some(p.agency);
        Ok(f)
    }

    /// The target states this principal may move the request to now.
    pub async fn allowed(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<Vec<State>> {
        let (r, side) = self.visible(p, id, now).await?;
        let actor = Actor::User { role: p.role, side };
        let mut to = lifecycle::allowed_for(r.request.state, r.request.draft.kind, actor);
        // Sending a draft is also a matter of four eyes.
        if to.contains(&State::Submitted) && self.check_send(&r, actor, &p.username).await.is_err() {
            to.retain(|s| *s != State::Submitted);
        }
        Ok(to)
    }

    /// Moves a request to another state, with everything the move implies (deadlines,
    /// assessment on submission, preservation period), in one transaction.
    pub async fn transition(
        &self,
        p: &Principal,
        id: RequestId,
        version: i64,
        input: TransitionInput,
        now: Timestamp,
    ) -> Result<StoredRequest> {
        let (cur, side) = self.visible_for(p, id, now, "changing the state of requests").await?;
        self.apply(
            cur,
            Actor::User { role: p.role, side },
            &p.username,
            version,
            input,
            now,
        )
        .await
    }

    /// What a face needs to prepare a state change typed by a person: the request's current
    /// version and the requested agency's time zone (dates such as a preservation's end are
    /// read there). Refused as "changing the state of requests" for roles that may not.
    pub async fn change_context(
        &self,
        p: &Principal,
        id: RequestId,
        now: Timestamp,
    ) -> Result<(i64, jiff::tz::TimeZone)> {
        let (cur, _) = self.visible_for(p, id, now, "changing the state of requests").await?;
        let agency = self.store.agency(cur.request.draft.requested_agency).await?;
        let zone = time_zone(&agency.time_zone).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((cur.request.version, zone))
    }

    /// Applies a transition as the node itself (delivery, expiry).
    pub async fn system_transition(
        &self,
        id: RequestId,
        input: TransitionInput,
        now: Timestamp,
    ) -> Result<StoredRequest> {
        let cur = self.store.request(id, Some(now)).await?;
        let v = cur.request.version;
        self.apply(cur, Actor::System, "system", v, input, now).await
    }

    async fn apply(
        &self,
        cur: StoredRequest,
        actor: Actor,
        actor_name: &str,
        version: i64,
        input: TransitionInput,
        now: Timestamp,
    ) -> Result<StoredRequest> {
        let r = &cur.request;
        if version != r.version {
            return Err(ServiceError::Conflict(format!(
                "request {} is at version {} (you sent {version}); reload it and try again",
                r.id, r.version
            )));
        }
        let rule = lifecycle::check(r.state, r.draft.kind, actor, &input).map_err(|e| match e {
            TransitionError::Illegal { ref allowed, .. } => ServiceError::IllegalTransition {
                message: e.to_string(),
                allowed: allowed.clone(),
            },
            TransitionError::Forbidden { .. } => ServiceError::Forbidden(e.to_string()),
            TransitionError::Missing { field, message } => ServiceError::invalid(field, message),
        })?;
        let to = rule.to;
        // Four eyes: a draft waiting for approval goes out only by a second person's hand.
        let approved_for = match (r.state, to, actor) {
            (State::Draft, State::Submitted, Actor::User { .. }) => self.check_send(&cur, actor, actor_name).await?,
            _ => None,
        };
        let requested = self.store.agency(r.draft.requested_agency).await?;
        let zone = time_zone(&requested.time_zone).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut t = TransitionRecord::new(r.id, version, r.state, to, now, actor_name);
        t.reason = input.reason.clone();
        let mut data = serde_json::Map::new();
        if let Some(code) = input.refusal_reason {
            data.insert("refusal_reason".into(), serde_json::json!(code));
        }
        if let Some(asker) = approved_for {
            data.insert("approved_by".into(), serde_json::json!(actor_name));
            data.insert("asked_by".into(), serde_json::json!(asker));
        }
        match to {
            State::Submitted => {
                let d = self
                    .sla
                    .deadlines(
                        r.draft.urgency,
                        r.draft.kind,
                        now,
                        &zone,
                        requested.kind == liaison_core::directory::AgencyKind::PointOfContact247,
                    )
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                t.submitted_at = Some(now);
                t.ack_due = Some(d.acknowledge_by);
                t.answer_due = Some(d.answer_by);
                let requesting = self.store.agency(r.draft.requesting_agency).await?;
                let observed = self
                    .experience
                    .for_state(&self.store, requested.jurisdiction, now)
                    .await;
                if let Some(a) =
                    self.legal
                        .assess(&r.draft, requesting.jurisdiction, requested.jurisdiction, now, observed)
                {
                    t.assessment = Some(a.map_err(|e| ServiceError::invalid("offences", e))?);
                }
            }
            State::Acknowledged => t.acknowledged_at = Some(now),
            State::NeedsInformation => {
                let due = self
                    .sla
                    .information_due(now, &zone)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                t.information_due = Some(due);
                // Mirrored with the transition, so the requesting side sees the same date.
                data.insert("information_due".into(), serde_json::json!(due));
            }
            State::Answered | State::AnsweredPartial if r.answered_at.is_none() => t.answered_at = Some(now),
            State::Preserved | State::Extended => {
                let base = if to == State::Extended {
                    r.preserved_until.unwrap_or(now).max(now)
                } else {
                    now
                };
                let until = match input.preserved_until {
                    Some(u) => u,
                    None => self
                        .sla
                        .preserve_until(base, &zone)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?,
                };
                let min = self
                    .sla
                    .preserve_at_least(now, &zone)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                if until < min {
                    return Err(ServiceError::invalid(
                        "preserved_until",
                        format!(
                            "{until} is less than {} days from now (Budapest Art 29(7)): use {min} or later",
                            self.sla.preservation_min_days
                        ),
                    ));
                }
                if r.answered_at.is_none() {
                    t.answered_at = Some(now);
                }
                t.preserved_until = Some(until);
                data.insert("preserved_until".into(), serde_json::json!(until));
            }
            State::Converted => {
                let fid = input
                    .follow_up
                    .ok_or_else(|| ServiceError::invalid("follow_up", "name the follow-up request"))?;
                let f = self
                    .store
                    .request(fid, None)
                    .await
                    .map_err(|_| ServiceError::invalid("follow_up", format!("unknown request {fid}")))?;
                if f.request.draft.requesting_agency != r.draft.requesting_agency
                    || f.request.draft.requested_agency != r.draft.requested_agency
                {
                    return Err(ServiceError::invalid(
                        "follow_up",
                        "the follow-up must be between the same two agencies",
                    ));
                }
                if !f.request.draft.related.contains(&r.id) {
                    return Err(ServiceError::invalid(
                        "follow_up",
                        format!("the follow-up request must list {} in its related requests", r.id),
                    ));
                }
                data.insert("follow_up".into(), serde_json::json!(fid));
            }
            _ => {}
        }
        if !data.is_empty() {
            t.data = Some(serde_json::Value::Object(data));
        }
        // [federation] mirror the change to the peer node serving the other agency (same transaction).
        t.fed = crate::federation::outgoing_for_transition(self, r, &cur.reference, &t).await?;
        let mut chain = vec![t];
        // A request to an agency hosted on this node is delivered the moment it is submitted,
        // in the same transaction.
        if to == State::Submitted && self.is_local(r.draft.requested_agency).await? {
            let recv = TransitionInput {
                to: Some(State::Received),
                ..Default::default()
            };
            let rule = lifecycle::check(to, r.draft.kind, Actor::System, &recv)
                .map_err(|e| ServiceError::Internal(format!("local delivery: {e}")))?;
            chain.push(TransitionRecord::new(r.id, version + 1, to, rule.to, now, "system"));
        }
        Ok(self.store.transitions_from(cur, &chain).await?)
    }

    async fn is_local(&self, agency: AgencyId) -> Result<bool> {
        Ok(self.store.agency_is_local(agency).await?)
    }

    /// Adds a comment with `marking` (default: the node's `[markings] comment`, never below
    /// the request's level).
    pub async fn comment(
        &self,
        p: &Principal,
        id: RequestId,
        text: &str,
        marking: Option<liaison_core::Marking>,
        now: Timestamp,
    ) -> Result<EventRecord> {
        require(p.role.may_comment(), "commenting", p)?;
        let (cur, side) = self.visible_for(p, id, now, "commenting on requests").await?;
        let t = text.trim();
        if t.is_empty() {
            return Err(ServiceError::invalid("text", "must not be empty"));
        }
        if t.len() > 20_000 {
            return Err(ServiceError::invalid("text", "must be at most 20000 bytes"));
        }
        let data = self.comment_data(&cur.request, side, marking)?;
        // [federation] mirror the comment to the peer node, in the same transaction.
        let fed = crate::federation::outgoing_for_comment(self, &cur.request, &p.username, t, Some(&data), now).await?;
        Ok(self
            .store
            .comment_fed(id, &p.username, t, now, Some(&data), &fed)
            .await?)
    }

    /// One pass of the deadline watcher: expires what this node's side lets lapse (a
    /// preservation whose period ended, a request whose information was not supplied in
    /// time), records escalations for passed deadlines and reminders for approaching ones
    /// (each once), then tells people (the notification pass).
    pub async fn tick(&self, now: Timestamp) -> Result<TickReport> {
        let mut report = TickReport::default();
        // Expiries first: an expired request has no deadline left to escalate.
        let mut failed = std::collections::HashSet::new();
        loop {
            let lapsed = self.store.lapsed(now, 200).await?;
            let todo: Vec<_> = lapsed.iter().filter(|l| !failed.contains(&l.request)).collect();
            if todo.is_empty() {
                break;
            }
            for l in todo {
                let reason = match l.deadline {
                    liaison_core::sla::DeadlineKind::Information => {
                        format!("the information asked for was not supplied by {}", l.due_at)
                    }
                    _ => format!("the preservation period ended at {}", l.due_at),
                };
                let input = TransitionInput {
                    to: Some(State::Expired),
                    reason: Some(reason),
                    ..Default::default()
                };
                match self.system_transition(l.request, input, now).await {
                    Ok(_) => report.expired += 1,
                    Err(e) => {
                        tracing::warn!(request = %l.request, error = %e, "could not expire a lapsed request; will try again next pass");
                        failed.insert(l.request);
                    }
                }
            }
            if lapsed.len() < 200 {
                break;
            }
        }
        loop {
            let batch = self.store.record_escalations(now, 500).await?;
            for e in &batch {
                tracing::debug!(request = %e.request, deadline = e.deadline.as_str(), due = %e.due_at, "deadline passed: escalation recorded");
            }
            report.escalations += batch.len();
            if batch.len() < 500 {
                break;
            }
        }
        for &kind in liaison_core::sla::DeadlineKind::ALL {
            loop {
                let batch = self
                    .store
                    .record_reminders(now, kind, self.work.lead(kind), 500)
                    .await?;
                report.reminders += batch.len();
                if batch.len() < 500 {
                    break;
                }
            }
        }
        let n = self.notify_pass(now).await?;
        report.notifications = n.notifications;
        report.queued = n.deliveries;
        Ok(report)
    }

    /// Converts a preservation: creates the follow-up draft (`kind`, the same two agencies,
    /// urgency, case reference, offences, targets and marking, the preservation among its
    /// related requests) and moves the preservation to `converted`, naming it. The caller
    /// completes the draft and sends it. If the move fails (the preservation moved on), the
    /// draft stays, and the error says so.
    pub async fn convert_preservation(
        &self,
        p: &Principal,
        id: RequestId,
        kind: liaison_core::RequestKind,
        now: Timestamp,
    ) -> Result<(StoredRequest, StoredRequest)> {
        let (cur, side) = self.visible_for(p, id, now, "converting preservations").await?;
        let r = &cur.request;
        if side != Side::Requesting || !matches!(r.state, State::Preserved | State::Extended) {
            return Err(ServiceError::Conflict(format!(
                "{} is {}: only the requesting agency converts a preservation that is preserved or extended",
                cur.reference, r.state
            )));
        }
        if kind.is_preservation() || kind == liaison_core::RequestKind::SpontaneousInformation {
            return Err(ServiceError::invalid(
                "kind",
                format!("a follow-up asks for the data itself: {kind} is not such a request"),
            ));
        }
        let mut d = r.draft.clone();
        d.kind = kind;
        d.related = vec![r.id];
        d.summary = format!("Follow-up to preservation {}. {}", cur.reference, r.draft.summary);
        d.summary = d.summary.chars().take(4000).collect();
        d.attachments = Vec::new();
        let follow = self.create_request(p, d, now).await?;
        let input = TransitionInput {
            to: Some(State::Converted),
            follow_up: Some(follow.request.id),
            ..Default::default()
        };
        match self.transition(p, id, r.version, input, now).await {
            Ok(converted) => Ok((follow, converted)),
            Err(e) => Err(ServiceError::Conflict(format!(
                "the follow-up draft {} was created, but {} could not be marked converted: {e}",
                follow.reference, cur.reference
            ))),
        }
    }
}

/// What one pass of the deadline watcher did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    pub expired: usize,
    pub escalations: usize,
    pub reminders: usize,
    pub notifications: usize,
    /// E-mails and webhook calls queued, sent, to be retried and given up (the last three
    /// by the watcher's delivery pass, [`Node::deliver_pass`]).
    pub queued: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub given_up: usize,
}
