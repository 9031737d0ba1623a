//! The node's use cases, shared by the HTTP API and the command line.
//!
//! Every method takes the acting [`Principal`] and enforces the role matrix and agency
//! scope here, server-side, before anything is written. Handlers and CLI commands stay thin.

use crate::legal::Legal;
use jiff::Timestamp;
use liaison_core::directory::{Agency, ContactPoint, LocalStatus, time_zone};
use liaison_core::lifecycle::{self, Actor, Side, State, TransitionError, TransitionInput};
use liaison_core::request::{AssistanceRequest, FieldError, RequestDraft};
use liaison_core::sla::SlaPolicy;
use liaison_core::stats::{PairStats, cooperation};
use liaison_core::{AgencyId, RequestId, Role};
use liaison_store::{
    AuditReport, EventRecord, Page, Principal, RequestFilter, RequestSummary, Store, StoreError, StoredRequest,
    TransitionRecord,
};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a use case did not go through. Each maps to one HTTP status and one CLI exit code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// One or more fields are wrong (400).
    #[error("invalid input: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No or bad credentials (401).
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Authenticated but not allowed (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Unknown, or not visible to the caller (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// Illegal transition (409), with the states that are allowed from here.
    #[error("{message}")]
    IllegalTransition { message: String, allowed: Vec<State> },
    /// Stale version or duplicate (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed (500). Details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError {
            field: field.to_string(),
            message: message.into(),
        }])
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServiceError::NotFound(m),
            StoreError::Conflict(m) => ServiceError::Conflict(m),
            StoreError::Duplicate(m) => ServiceError::Conflict(format!("{m} already exists")),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Where a request's deadlines and the requested side's clock come from.
#[derive(Clone)]
pub struct Node {
    pub store: Store,
    pub sla: Arc<SlaPolicy>,
    pub legal: Legal,
    /// How long channels actually took, fed back into assessments.
    pub experience: Arc<crate::experience::Experience>,
}

/// A contact point with its local time and office status now.
#[derive(Debug, Clone, Serialize)]
pub struct ContactView {
    #[serde(flatten)]
    pub contact: ContactPoint,
    #[serde(flatten)]
    pub status: LocalStatus,
}

/// An agency with its contact points.
#[derive(Debug, Clone, Serialize)]
pub struct AgencyView {
    #[serde(flatten)]
    pub agency: Agency,
    /// The peer node serving this agency, if it is not on this node.
    pub node_id: Option<String>,
    pub contacts: Vec<ContactView>,
}

/// How to group cooperation statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Agency,
    Jurisdiction,
}

impl std::str::FromStr for GroupBy {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "agency" => Ok(GroupBy::Agency),
            "jurisdiction" => Ok(GroupBy::Jurisdiction),
            _ => Err(ServiceError::invalid(
                "by",
                format!("'{s}' is not agency or jurisdiction"),
            )),
        }
    }
}

/// A cooperation report for a period.
#[derive(Debug, Clone, Serialize)]
pub struct CooperationReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub by: &'static str,
    pub pairs: Vec<PairStats>,
}

fn side_of(p: &Principal, r: &AssistanceRequest) -> Option<Side> {
    if p.agency == r.draft.requesting_agency {
        Some(Side::Requesting)
    } else if p.agency == r.draft.requested_agency {
        Some(Side::Requested)
    } else {
        None
    }
}

fn require(ok: bool, what: &str, p: &Principal) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "{what} is not allowed for role {} (user {})",
            p.role, p.username
        )))
    }
}

impl Node {
    pub fn new(store: Store, sla: SlaPolicy, legal: Legal) -> Self {
        Node {
            store,
            sla: Arc::new(sla),
            legal,
            experience: Default::default(),
        }
    }

    /// Resolves a bearer token to a principal.
    pub async fn authenticate(&self, token: &str, now: Timestamp) -> Result<Principal> {
        self.store
            .authenticate(token, now)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("the token is unknown, expired or revoked".into()))
    }

    /// Loads a request the principal may see (404 otherwise, so ids of other agencies' cases do not leak).
    async fn visible(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<(StoredRequest, Side)> {
        require(p.role.may_read_requests(), "reading requests", p)?;
        let r = self.store.request(id, Some(now)).await?;
        match side_of(p, &r.request) {
            // A draft is the requesting side's own business until it is submitted.
            Some(Side::Requested) if r.request.state == State::Draft => {
                Err(ServiceError::NotFound(format!("request {id}")))
            }
            Some(side) => Ok((r, side)),
            None => Err(ServiceError::NotFound(format!("request {id}"))),
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
    pub async fn create_request(&self, p: &Principal, draft: RequestDraft, now: Timestamp) -> Result<StoredRequest> {
        require(p.role.may_draft(), "drafting requests", p)?;
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
        };
        self.store.insert_request(&r, &p.username).await?;
        // A draft has no deadline running and no assessment yet: what was stored is the answer.
        Ok(StoredRequest {
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
        draft: RequestDraft,
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
        self.check_draft(p, &draft).await?;
        self.store.update_draft(id, version, &draft, &p.username, now).await?;
        Ok(self.store.request(id, Some(now)).await?)
    }

    pub async fn request(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<StoredRequest> {
        Ok(self.visible(p, id, now).await?.0)
    }

    pub async fn events(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<Vec<EventRecord>> {
        self.visible(p, id, now).await?;
        Ok(self.store.events(id).await?)
    }

    /// Lists requests the principal's agency sends or receives, in summary form.
    pub async fn list(&self, p: &Principal, f: RequestFilter, now: Timestamp) -> Result<Page<RequestSummary>> {
        let f = self.visible_filter(p, f)?;
        if matches_nothing(&f) {
            return Ok(Page {
                items: vec![],
                next: None,
            });
        }
        Ok(self.store.request_summaries(&f, now).await?)
    }

    /// Like [`Node::list`], with each request in full (body and assessment).
    pub async fn list_full(&self, p: &Principal, f: RequestFilter, now: Timestamp) -> Result<Page<StoredRequest>> {
        let f = self.visible_filter(p, f)?;
        if matches_nothing(&f) {
            return Ok(Page {
                items: vec![],
                next: None,
            });
        }
        Ok(self.store.requests(&f, now).await?)
    }

    fn visible_filter(&self, p: &Principal, mut f: RequestFilter) -> Result<RequestFilter> {
        require(p.role.may_read_requests(), "reading requests", p)?;
        f.visible_to = Some(p.agency);
        Ok(f)
    }

    /// The target states this principal may move the request to now.
    pub async fn allowed(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<Vec<State>> {
        let (r, side) = self.visible(p, id, now).await?;
        Ok(lifecycle::allowed_for(
            r.request.state,
            r.request.draft.kind,
            Actor::User { role: p.role, side },
        ))
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
        let (cur, side) = self.visible(p, id, now).await?;
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
        let requested = self.store.agency(r.draft.requested_agency).await?;
        let zone = time_zone(&requested.time_zone).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut t = TransitionRecord::new(r.id, version, r.state, to, now, actor_name);
        t.reason = input.reason.clone();
        let mut data = serde_json::Map::new();
        if let Some(code) = input.refusal_reason {
            data.insert("refusal_reason".into(), serde_json::json!(code));
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
        t.fed = crate::federation::outgoing_for_transition(self, r, &t).await?;
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

    /// Adds a comment.
    pub async fn comment(&self, p: &Principal, id: RequestId, text: &str, now: Timestamp) -> Result<EventRecord> {
        require(p.role.may_comment(), "commenting", p)?;
        let (cur, _) = self.visible(p, id, now).await?;
        let t = text.trim();
        if t.is_empty() {
            return Err(ServiceError::invalid("text", "must not be empty"));
        }
        if t.len() > 20_000 {
            return Err(ServiceError::invalid("text", "must be at most 20000 bytes"));
        }
        // [federation] mirror the comment to the peer node, in the same transaction.
        let fed = crate::federation::outgoing_for_comment(self, &cur.request, &p.username, t, None, now).await?;
        Ok(self.store.comment_fed(id, &p.username, t, now, None, &fed).await?)
    }

    /// The directory with each contact's local time and office status at `now`.
    pub async fn directory(&self, p: &Principal, now: Timestamp) -> Result<Vec<AgencyView>> {
        let _ = p;
        let agencies = self.store.agencies(&Default::default()).await?;
        let contacts = self.store.contacts(None).await?;
        let mut by_agency: HashMap<AgencyId, Vec<ContactView>> = HashMap::new();
        for c in contacts {
            let status = c.status_at(now).map_err(|e| ServiceError::Internal(e.to_string()))?;
            by_agency
                .entry(c.agency)
                .or_default()
                .push(ContactView { contact: c, status });
        }
        Ok(agencies
            .into_iter()
            .map(|(a, node_id)| {
                let contacts = by_agency.remove(&a.id).unwrap_or_default();
                AgencyView {
                    agency: a,
                    node_id,
                    contacts,
                }
            })
            .collect())
    }

    /// Cooperation statistics for requests submitted in `[from, to)`.
    pub async fn cooperation(
        &self,
        p: &Principal,
        from: Timestamp,
        to: Timestamp,
        by: GroupBy,
        now: Timestamp,
    ) -> Result<CooperationReport> {
        require(p.role.may_read_statistics(), "reading statistics", p)?;
        if to <= from {
            return Err(ServiceError::invalid("to", "must be after from"));
        }
        let mut rows = self.store.stats_rows(from, to).await?;
        if p.role != Role::Admin {
            rows.retain(|r| r.requesting == p.agency || r.requested == p.agency);
        }
        let agencies: HashMap<AgencyId, Agency> = self
            .store
            .agencies(&Default::default())
            .await?
            .into_iter()
            .map(|(a, _)| (a.id, a))
            .collect();
        let key = |id: AgencyId| match agencies.get(&id) {
            Some(a) => match by {
                GroupBy::Agency => a.code.clone(),
                GroupBy::Jurisdiction => a.jurisdiction.to_string(),
            },
            None => id.to_string(),
        };
        let pairs = cooperation(&rows, now, key);
        Ok(CooperationReport {
            from,
            to,
            by: if by == GroupBy::Agency {
                "agency"
            } else {
                "jurisdiction"
            },
            pairs,
        })
    }

    /// Recomputes the audit chain.
    pub async fn verify_audit(&self, p: &Principal) -> Result<AuditReport> {
        require(p.role.may_audit(), "verifying the audit log", p)?;
        Ok(self.store.verify_audit().await?)
    }

    /// One pass of the deadline watcher: records escalations for passed deadlines and expires
    /// preservations whose period ended. Returns how many escalations were recorded.
    pub async fn tick(&self, now: Timestamp) -> Result<usize> {
        let mut n = 0;
        loop {
            let batch = self.store.record_escalations(now, 500).await?;
            for e in &batch {
                tracing::debug!(request = %e.request, deadline = e.deadline.as_str(), due = %e.due_at, "deadline passed: escalation recorded");
            }
            n += batch.len();
            if batch.len() < 500 {
                break;
            }
        }
        Ok(n)
    }
}

/// Administration and assessment use cases.
impl Node {
    /// Assesses a draft, a stored request, or an explicit input, without storing anything.
    pub async fn assess(
        &self,
        p: &Principal,
        draft: Option<RequestDraft>,
        request: Option<RequestId>,
        input: Option<liaison_law::AssessmentInput>,
        now: Timestamp,
    ) -> Result<liaison_law::Assessment> {
        // A what-if assessment reveals no case data: any authenticated user may run one.
        // Assessing a stored request needs the right to read it (checked by `visible`).
        let input = match (draft, request, input) {
            (Some(d), None, None) => {
                let a = self.store.agency(d.requesting_agency).await.map_err(|_| {
                    ServiceError::invalid(
                        "draft.requesting_agency",
                        format!("unknown agency {}", d.requesting_agency),
                    )
                })?;
                let b = self.store.agency(d.requested_agency).await.map_err(|_| {
                    ServiceError::invalid(
                        "draft.requested_agency",
                        format!("unknown agency {}", d.requested_agency),
                    )
                })?;
                liaison_law::AssessmentInput::from_draft(&d, a.jurisdiction, b.jurisdiction, now)
            }
            (None, Some(id), None) => {
                let (r, _) = self.visible(p, id, now).await?;
                let a = self.store.agency(r.request.draft.requesting_agency).await?;
                let b = self.store.agency(r.request.draft.requested_agency).await?;
                liaison_law::AssessmentInput::from_draft(&r.request.draft, a.jurisdiction, b.jurisdiction, now)
            }
            (None, None, Some(i)) => i,
            _ => {
                return Err(ServiceError::invalid(
                    "body",
                    "give exactly one of draft, request or input",
                ));
            }
        };
        let mut input = input;
        if input.observed_durations.is_empty() {
            input.observed_durations = self.experience.for_state(&self.store, input.requested, now).await;
        }
        self.legal.assess_input(&input)
    }

    pub async fn users(&self, p: &Principal) -> Result<Vec<liaison_store::User>> {
        require(p.role.may_administer(), "listing users", p)?;
        Ok(self.store.users().await?)
    }

    pub async fn create_user(
        &self,
        p: &Principal,
        username: &str,
        display_name: &str,
        agency: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<liaison_store::User> {
        require(p.role.may_administer(), "creating users", p)?;
        let name = username.trim();
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(ServiceError::invalid(
                "username",
                format!("'{username}' must be 1-64 letters, digits, '.', '_' or '-'"),
            ));
        }
        let a = self
            .store
            .agency_by_code(agency)
            .await
            .map_err(|_| ServiceError::invalid("agency", format!("unknown agency '{agency}'")))?;
        Ok(self
            .store
            .create_user(name, display_name, a.id, role, &p.username, now)
            .await?)
    }

    /// Issues a token for a user (admins for anyone; others only for themselves).
    pub async fn create_token(
        &self,
        p: &Principal,
        username: &str,
        label: &str,
        days: u32,
        now: Timestamp,
    ) -> Result<(String, liaison_store::TokenInfo)> {
        if username != p.username {
            require(p.role.may_administer(), "issuing tokens for other users", p)?;
        }
        if !(1..=366).contains(&days) {
            return Err(ServiceError::invalid(
                "days",
                format!("{days} is not between 1 and 366"),
            ));
        }
        let u = self
            .store
            .user_by_name(username)
            .await
            .map_err(|_| ServiceError::invalid("username", format!("unknown user '{username}'")))?;
        let expires = now
            .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(self.store.create_token(u.id, label, expires, &p.username, now).await?)
    }
}

/// Directory maintenance (admins).
impl Node {
    /// Adds a jurisdiction with its names (needed before agencies of that state).
    pub async fn add_jurisdiction(&self, p: &Principal, j: liaison_core::jurisdiction::Jurisdiction) -> Result<()> {
        require(p.role.may_administer(), "maintaining the directory", p)?;
        let errs: Vec<FieldError> = [("name_en", &j.name_en, "English"), ("name_zh", &j.name_zh, "Chinese")]
            .into_iter()
            .filter(|(_, name, _)| name.trim().is_empty())
            .map(|(field, _, lang)| FieldError {
                field: field.into(),
                message: format!("give the jurisdiction's name in {lang}"),
            })
            .collect();
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        Ok(self.store.upsert_jurisdiction(&j).await?)
    }

    /// Adds an agency served by this node.
    pub async fn add_agency(&self, p: &Principal, a: Agency, now: Timestamp) -> Result<Agency> {
        require(p.role.may_administer(), "maintaining the directory", p)?;
        let mut errs = Vec::new();
        if a.code.trim().is_empty()
            || a.code.len() > 32
            || !a
                .code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errs.push(FieldError {
                field: "code".into(),
                message: format!("'{}' must be 1-32 letters, digits, '-' or '_'", a.code),
            });
        }
        if a.name_en.trim().is_empty() {
            errs.push(FieldError {
                field: "name_en".into(),
                message: "must not be empty".into(),
            });
        }
        if let Err(e) = time_zone(&a.time_zone) {
            errs.push(FieldError {
                field: "time_zone".into(),
                message: e.to_string(),
            });
        }
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        self.store
            .insert_agency(&a, None, &p.username, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(m) => ServiceError::invalid("jurisdiction", m),
                other => other.into(),
            })?;
        Ok(a)
    }

    /// Adds a contact point to an agency.
    pub async fn add_contact(&self, p: &Principal, c: ContactPoint, now: Timestamp) -> Result<ContactPoint> {
        require(p.role.may_administer(), "maintaining the directory", p)?;
        let mut errs = Vec::new();
        if let Err(e) = time_zone(&c.time_zone) {
            errs.push(FieldError {
                field: "time_zone".into(),
                message: e.to_string(),
            });
        }
        if !c.email.contains('@') {
            errs.push(FieldError {
                field: "email".into(),
                message: format!("'{}' is not an e-mail address", c.email),
            });
        }
        if c.name.trim().is_empty() {
            errs.push(FieldError {
                field: "name".into(),
                message: "must not be empty".into(),
            });
        }
        // Stored comma-separated: a tag with a comma (or an empty one) would not read back.
        for (i, l) in c.languages.iter().enumerate() {
            if !is_language_tag(l) {
                errs.push(FieldError {
                    field: format!("languages[{i}]"),
                    message: format!("'{l}' is not a BCP 47 language tag such as en or zh-Hans"),
                });
            }
        }
        if !errs.is_empty() {
            return Err(ServiceError::Invalid(errs));
        }
        self.store
            .insert_contact(&c, &p.username, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(m) => ServiceError::invalid("agency", m),
                other => other.into(),
            })?;
        Ok(c)
    }
}

/// Whether a listing scoped to an agency cannot match: every request it sees is sent or
/// received by it, and none is sent to itself. (The store would query for nothing, and on
/// PostgreSQL that query failed with a 500.)
fn matches_nothing(f: &RequestFilter) -> bool {
    match (f.visible_to, f.requesting, f.requested) {
        (Some(a), Some(from), Some(to)) => (from != a && to != a) || (from == a && to == a),
        _ => false,
    }
}

/// A BCP 47 language tag in the simple form `xx(-yyyy)*`: 2-8 letters, then subtags of 1-8
/// letters or digits.
fn is_language_tag(t: &str) -> bool {
    let mut parts = t.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=8).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}
