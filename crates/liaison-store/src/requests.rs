//! Assistance requests, their history and escalations.

use crate::writer::Batch;
use crate::{Result, Store, StoreError, audit, ms, opt_ts, parse, ts};
use liaison_core::lifecycle::State;
use liaison_core::record::{EventRecord, Page, RawJson, RequestFilter, RequestSummary, StoredRequest};
use liaison_core::request::{AssistanceRequest, RequestDraft};
use liaison_core::sla::{DeadlineKind, running_deadline};
use liaison_core::{AgencyId, EventId, Marking, RequestId};
use serde::Serialize;

/// An item of a page: its id is the next page's cursor.
pub trait Listed {
    fn list_id(&self) -> RequestId;
    /// The running deadline in ms (the key of a listing sorted by due date).
    fn list_due(&self) -> Option<i64>;
}

impl Listed for StoredRequest {
    fn list_id(&self) -> RequestId {
        self.request.id
    }
    fn list_due(&self) -> Option<i64> {
        let r = &self.request;
        running_due(r.state, r.ack_due, r.answer_due, r.preserved_until, r.information_due).map(|(_, d)| ms(d))
    }
}

impl Listed for RequestSummary {
    fn list_id(&self) -> RequestId {
        self.id
    }
    fn list_due(&self) -> Option<i64> {
        running_due(
            self.state,
            self.ack_due,
            self.answer_due,
            self.preserved_until,
            self.information_due,
        )
        .map(|(_, d)| ms(d))
    }
}

/// A state change to commit, checked by the caller against the lifecycle table.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionRecord {
    pub id: RequestId,
    pub expected_version: i64,
    pub from: State,
    pub to: State,
    pub at: jiff::Timestamp,
    pub actor: String,
    pub reason: Option<String>,
    pub data: Option<serde_json::Value>,
    pub submitted_at: Option<jiff::Timestamp>,
    pub acknowledged_at: Option<jiff::Timestamp>,
    pub answered_at: Option<jiff::Timestamp>,
    pub ack_due: Option<jiff::Timestamp>,
    pub answer_due: Option<jiff::Timestamp>,
    pub preserved_until: Option<jiff::Timestamp>,
    /// Entering `needs_information`: when the information is due.
    pub information_due: Option<jiff::Timestamp>,
    pub assessment: Option<(RawJson, String)>,
    /// [federation] Outgoing messages and the incoming message record committed in the same transaction.
    pub fed: crate::federation::FedWrites,
}

impl TransitionRecord {
    pub fn new(id: RequestId, expected_version: i64, from: State, to: State, at: jiff::Timestamp, actor: &str) -> Self {
        TransitionRecord {
            id,
            expected_version,
            from,
            to,
            at,
            actor: actor.to_string(),
            reason: None,
            data: None,
            submitted_at: None,
            acknowledged_at: None,
            answered_at: None,
            ack_due: None,
            answer_due: None,
            preserved_until: None,
            information_due: None,
            assessment: None,
            fed: Default::default(),
        }
    }
}

/// An escalation recorded by the deadline watcher.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub request: RequestId,
    pub deadline: DeadlineKind,
    pub due_at: jiff::Timestamp,
    pub state: State,
    pub requesting: AgencyId,
    pub requested: AgencyId,
}

pub use liaison_core::stats::StatsRow;

/// A request's columns with its assessment, if any (stored apart: see schema migration 8).
const REQ_COLS: &str = "SELECT id, state, version, created_at, updated_at, submitted_at, acknowledged_at, answered_at, ack_due, answer_due, preserved_until, body, \
     (SELECT assessment FROM request_assessments WHERE request_id = id), rule_pack_version, tlp, named, ref_prefix, ref_seq, info_due FROM requests";

/// A request's columns, in the order of [`REQ_COLS`] (more than sqlx reads into a tuple).
struct ReqRow {
    id: String,
    state: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    submitted_at: Option<i64>,
    acknowledged_at: Option<i64>,
    answered_at: Option<i64>,
    ack_due: Option<i64>,
    answer_due: Option<i64>,
    preserved_until: Option<i64>,
    body: String,
    assessment: Option<String>,
    rule_pack_version: Option<String>,
    tlp: String,
    named: Option<String>,
    ref_prefix: Option<String>,
    ref_seq: Option<i64>,
    info_due: Option<i64>,
}

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for ReqRow {
    fn from_row(row: &'r sqlx::any::AnyRow) -> std::result::Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(ReqRow {
            id: row.try_get(0)?,
            state: row.try_get(1)?,
            version: row.try_get(2)?,
            created_at: row.try_get(3)?,
            updated_at: row.try_get(4)?,
            submitted_at: row.try_get(5)?,
            acknowledged_at: row.try_get(6)?,
            answered_at: row.try_get(7)?,
            ack_due: row.try_get(8)?,
            answer_due: row.try_get(9)?,
            preserved_until: row.try_get(10)?,
            body: row.try_get(11)?,
            assessment: row.try_get(12)?,
            rule_pack_version: row.try_get(13)?,
            tlp: row.try_get(14)?,
            named: row.try_get(15)?,
            ref_prefix: row.try_get(16)?,
            ref_seq: row.try_get(17)?,
            info_due: row.try_get(18)?,
        })
    }
}

/// A request's reference as shown: `PREFIX-NNNN` (at least four digits), or the id for a
/// row without one (none after schema migration 22, which gives every row its reference).
pub fn reference_text(prefix: Option<&str>, seq: Option<i64>, id: &str) -> String {
    match (prefix, seq) {
        (Some(p), Some(n)) => liaison_core::record::format_reference(p, n),
        _ => id.to_string(),
    }
}

/// How a new request gets its reference: the prefix (`AGENCY-YEAR`) and, for a request
/// arriving from a peer, the number the sender gave it, kept when free on this node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefSpec {
    pub prefix: String,
    pub wanted: Option<i64>,
}

impl RefSpec {
    /// Splits a reference into prefix and number ([`liaison_core::record::parse_reference`]).
    pub fn parse(reference: &str) -> Option<(String, i64)> {
        liaison_core::record::parse_reference(reference)
    }
}

/// The next number of `prefix` inside the caller's transaction (which sees what the same
/// group of writers inserted before), or `wanted` when it is free. Numbers are unique per
/// prefix (index `requests_reference`).
async fn allocate_reference(w: &mut crate::WriteTx, spec: &RefSpec) -> Result<i64> {
    let (max, taken): (Option<i64>, i64) = sqlx::query_as(
        "SELECT MAX(ref_seq), COUNT(CASE WHEN ref_seq = $2 THEN 1 END) FROM requests WHERE ref_prefix = $1",
    )
    .bind(&spec.prefix)
    .bind(spec.wanted.unwrap_or(-1))
    .fetch_one(w.conn().await?)
    .await?;
    Ok(match spec.wanted {
        Some(n) if n > 0 && taken == 0 => n,
        _ => max.unwrap_or(0) + 1,
    })
}

/// The deadline that runs in `state` and, of the three due dates, the one it falls due at.
fn running_due<T>(
    state: State,
    ack_due: Option<T>,
    answer_due: Option<T>,
    preserved_until: Option<T>,
    information_due: Option<T>,
) -> Option<(DeadlineKind, T)> {
    let kind = running_deadline(state)?;
    let due = match kind {
        DeadlineKind::Acknowledge => ack_due,
        DeadlineKind::Answer => answer_due,
        DeadlineKind::PreservationExpiry => preserved_until,
        DeadlineKind::Information => information_due,
    }?;
    Some((kind, due))
}

/// The instant the running deadline of a request in `state` falls due.
pub(crate) fn next_due(
    state: State,
    ack_due: Option<i64>,
    answer_due: Option<i64>,
    preserved_until: Option<i64>,
    information_due: Option<i64>,
) -> Option<i64> {
    running_due(state, ack_due, answer_due, preserved_until, information_due).map(|(_, due)| due)
}

fn overdue_kind(r: &AssistanceRequest, now: jiff::Timestamp) -> Option<DeadlineKind> {
    overdue_in(
        r.state,
        r.ack_due,
        r.answer_due,
        r.preserved_until,
        r.information_due,
        now,
    )
}

/// The running deadline of a request in `state`, if it has passed at `now`.
fn overdue_in(
    state: State,
    ack_due: Option<jiff::Timestamp>,
    answer_due: Option<jiff::Timestamp>,
    preserved_until: Option<jiff::Timestamp>,
    information_due: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Option<DeadlineKind> {
    let (kind, due) = running_due(state, ack_due, answer_due, preserved_until, information_due)?;
    (due < now).then_some(kind)
}

/// The due key a queue sorts by: the running deadline, a request without one after every
/// request with one. Spelled exactly as in the indexes of schema migration 23 (both backends
/// match an expression index by its text); `request_work.due` holds a copy.
pub(crate) const DUE_KEY: &str = "COALESCE(next_due, 9223372036854775807)";

/// Copies a request's due key to its rows of `request_work` (`$1`: the request's id). Every
/// statement that changes `requests.next_due` runs it in the same transaction; the store test
/// `work_rows_keep_the_due_key` checks the copy after each kind of change.
pub(crate) const SYNC_WORK_DUE: &str = "UPDATE request_work SET due = COALESCE((SELECT next_due FROM requests WHERE id = $1), 9223372036854775807) WHERE request_id = $1";

const SUMMARY_COLS: &str = "SELECT id, kind, urgency, state, version, requesting_agency, requested_agency, case_reference, \
     created_at, updated_at, submitted_at, acknowledged_at, answered_at, ack_due, answer_due, preserved_until, tlp, named, ref_prefix, ref_seq, info_due FROM requests";

/// The `tlp` and `named` columns of a marking.
fn marking_cols(m: &Marking) -> (&'static str, Option<String>) {
    let named = (!m.recipients.is_empty()).then(|| serde_json::to_string(&m.recipients).unwrap_or_default());
    (m.tlp.as_str(), named)
}

fn marking_of(tlp: &str, named: Option<&str>) -> Result<Marking> {
    Ok(Marking {
        tlp: parse(tlp, "marking")?,
        recipients: match named {
            Some(n) => serde_json::from_str(n).map_err(StoreError::corrupt)?,
            None => Vec::new(),
        },
    })
}

/// A summary's columns (more than sqlx reads into a tuple, hence read by position).
struct SummaryRow(
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for SummaryRow {
    fn from_row(row: &'r sqlx::any::AnyRow) -> std::result::Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(SummaryRow(
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
            row.try_get(7)?,
            row.try_get(8)?,
            row.try_get(9)?,
            row.try_get(10)?,
            row.try_get(11)?,
            row.try_get(12)?,
            row.try_get(13)?,
            row.try_get(14)?,
            row.try_get(15)?,
            row.try_get(16)?,
            row.try_get(17)?,
            row.try_get(18)?,
            row.try_get(19)?,
            row.try_get(20)?,
        ))
    }
}

fn summary(r: SummaryRow, now: jiff::Timestamp) -> Result<RequestSummary> {
    let state = parse(&r.3, "state")?;
    let (ack_due, answer_due, preserved_until) = (opt_ts(r.13)?, opt_ts(r.14)?, opt_ts(r.15)?);
    let information_due = opt_ts(r.20)?;
    Ok(RequestSummary {
        reference: reference_text(r.18.as_deref(), r.19, &r.0),
        id: parse(&r.0, "request id")?,
        kind: parse(&r.1, "kind")?,
        urgency: parse(&r.2, "urgency")?,
        state,
        version: r.4,
        requesting_agency: parse(&r.5, "requesting agency")?,
        requested_agency: parse(&r.6, "requested agency")?,
        case_reference: r.7,
        created_at: ts(r.8)?,
        updated_at: ts(r.9)?,
        submitted_at: opt_ts(r.10)?,
        acknowledged_at: opt_ts(r.11)?,
        answered_at: opt_ts(r.12)?,
        ack_due,
        answer_due,
        preserved_until,
        information_due,
        overdue: overdue_in(state, ack_due, answer_due, preserved_until, information_due, now),
        marking: marking_of(&r.16, r.17.as_deref())?,
    })
}

/// Stores a new request with its `created` event and audit entry, inside the caller's
/// transaction (local drafts and requests mirrored from a peer alike), in one batch.
pub(crate) async fn insert_request_in(
    w: &mut crate::WriteTx,
    r: &AssistanceRequest,
    actor: &str,
    reference: &RefSpec,
    owner: Option<liaison_core::UserId>,
) -> Result<String> {
    let body = serde_json::to_string(&r.draft).map_err(StoreError::corrupt)?;
    let content_sha256 = audit::digest(&body);
    let nd = next_due(
        r.state,
        r.ack_due.map(ms),
        r.answer_due.map(ms),
        r.preserved_until.map(ms),
        r.information_due.map(ms),
    );
    let seq = allocate_reference(w, reference).await?;
    let country = crate::search::country_for(w, &r.draft).await?;
    let (tlp, named) = marking_cols(&r.draft.marking());
    let mut head = w.audit_head().await?;
    let mut b = Batch::default();
    b.push(
        "INSERT INTO requests (id, kind, urgency, state, requesting_agency, requested_agency, case_reference, body, version, created_at, updated_at, \
         submitted_at, acknowledged_at, answered_at, ack_due, answer_due, preserved_until, next_due, tlp, named, ref_prefix, ref_seq, info_due) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
        vec![
            r.id.to_string().into(),
            r.draft.kind.as_str().into(),
            r.draft.urgency.as_str().into(),
            r.state.as_str().into(),
            r.draft.requesting_agency.to_string().into(),
            r.draft.requested_agency.to_string().into(),
            r.draft.case_reference.as_str().into(),
            body.into(),
            r.version.into(),
            ms(r.created_at).into(),
            ms(r.updated_at).into(),
            r.submitted_at.map(ms).into(),
            r.acknowledged_at.map(ms).into(),
            r.answered_at.map(ms).into(),
            r.ack_due.map(ms).into(),
            r.answer_due.map(ms).into(),
            r.preserved_until.map(ms).into(),
            nd.into(),
            tlp.into(),
            named.into(),
            reference.prefix.clone().into(),
            seq.into(),
            r.information_due.map(ms).into(),
        ],
    );
    if let Some(o) = owner {
        // Who works it for the requesting agency (local only: docs/queues.md).
        b.push(
            "INSERT INTO request_work (request_id, agency_id, owner_id, unit_id, updated_at, due) VALUES ($1, $2, $3, NULL, $4, $5)",
            vec![
                r.id.to_string().into(),
                r.draft.requesting_agency.to_string().into(),
                o.to_string().into(),
                ms(r.created_at).into(),
                nd.unwrap_or(i64::MAX).into(),
            ],
        );
    }
    push_event(
        &mut b,
        r.id,
        r.created_at,
        actor,
        "created",
        None,
        Some(r.state),
        None,
        None,
    );
    audit::push(
        &mut b,
        &mut head,
        r.created_at,
        actor,
        "request.create",
        &r.id.to_string(),
        &serde_json::json!({
            "kind": r.draft.kind,
            "state": r.state,
            "version": r.version,
            "case_reference": r.draft.case_reference,
            "reference": reference_text(Some(&reference.prefix), Some(seq), ""),
            "content_sha256": content_sha256,
        }),
    );
    // Its search document and target keys (docs/search.md).
    let backend = w.backend();
    crate::search::push_request_doc(
        &mut b,
        backend,
        r,
        &reference_text(Some(&reference.prefix), Some(seq), ""),
    );
    crate::search::push_targets(&mut b, r.id, &crate::search::target_keys(&r.draft, country.as_deref()));
    // The request row is the batch's first statement: its constraints are what can fail.
    w.run(b).await.map_err(|e| match e {
        StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            StoreError::NotFound("requesting or requested agency".into())
        }
        StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            if db.message().contains("ref_seq") || db.constraint() == Some("requests_reference") {
                StoreError::Conflict(format!(
                    "reference {} was taken by another instance at the same moment; try again",
                    reference_text(Some(&reference.prefix), Some(seq), "")
                ))
            } else {
                StoreError::Duplicate(format!("request {}", r.id))
            }
        }
        e => e,
    })?;
    w.set_audit_head(head.0, head.1);
    Ok(reference_text(Some(&reference.prefix), Some(seq), ""))
}

/// What `push_transition`'s `UPDATE` does to the row, done to a request in memory (instants
/// kept to the millisecond, as stored).
fn applied(r: &mut StoredRequest, t: &TransitionRecord) -> Result<()> {
    let stored = |x: jiff::Timestamp| ts(ms(x));
    let q = &mut r.request;
    q.state = t.to;
    q.version += 1;
    q.updated_at = stored(t.at)?;
    for (new, old) in [
        (t.submitted_at, &mut q.submitted_at),
        (t.acknowledged_at, &mut q.acknowledged_at),
        (t.answered_at, &mut q.answered_at),
        (t.ack_due, &mut q.ack_due),
        (t.answer_due, &mut q.answer_due),
        (t.preserved_until, &mut q.preserved_until),
        (t.information_due, &mut q.information_due),
    ] {
        if let Some(v) = new {
            *old = Some(stored(v)?);
        }
    }
    if let Some((a, v)) = &t.assessment {
        r.assessment = Some(a.clone());
        r.rule_pack_version = Some(v.clone());
    }
    Ok(())
}

/// Adds one state change (the request row, its assessment if it has one, its event, its audit
/// entry) to a batch; returns the index of the `UPDATE`, which changes no row if the request
/// is not at `t.expected_version` in state `t.from` (see [`Store::transitions`]).
fn push_transition(b: &mut Batch, head: &mut (i64, String), t: &TransitionRecord) -> usize {
    let rpv = t.assessment.as_ref().map(|(_, v)| v.clone());
    // The deadline that runs in the new state, from the new or the stored due dates (the
    // right-hand sides of an UPDATE see the row as it was): see `next_due`.
    let running: i64 = match running_deadline(t.to) {
        None => 0,
        Some(DeadlineKind::Acknowledge) => 1,
        Some(DeadlineKind::Answer) => 2,
        Some(DeadlineKind::PreservationExpiry) => 3,
        Some(DeadlineKind::Information) => 4,
    };
    let update = b.push(
        "UPDATE requests SET state = $1, version = version + 1, updated_at = $2, \
         submitted_at = COALESCE($3, submitted_at), acknowledged_at = COALESCE($4, acknowledged_at), answered_at = COALESCE($5, answered_at), \
         ack_due = COALESCE($6, ack_due), answer_due = COALESCE($7, answer_due), preserved_until = COALESCE($8, preserved_until), \
         next_due = CASE $9 WHEN 1 THEN COALESCE($6, ack_due) WHEN 2 THEN COALESCE($7, answer_due) WHEN 3 THEN COALESCE($8, preserved_until) \
         WHEN 4 THEN COALESCE($14, info_due) ELSE NULL END, \
         rule_pack_version = COALESCE($10, rule_pack_version), info_due = COALESCE($14, info_due) \
         WHERE id = $11 AND version = $12 AND state = $13",
        vec![
            t.to.as_str().into(),
            ms(t.at).into(),
            t.submitted_at.map(ms).into(),
            t.acknowledged_at.map(ms).into(),
            t.answered_at.map(ms).into(),
            t.ack_due.map(ms).into(),
            t.answer_due.map(ms).into(),
            t.preserved_until.map(ms).into(),
            running.into(),
            rpv.into(),
            t.id.to_string().into(),
            t.expected_version.into(),
            t.from.as_str().into(),
            t.information_due.map(ms).into(),
        ],
    );
    // The copy of the due key the owners' and units' queues walk (schema migration 23).
    b.push(SYNC_WORK_DUE, vec![t.id.to_string().into()]);
    if t.from == State::Draft {
        // A sent draft's call for approval is over (the send's event names the approver).
        b.push(
            "DELETE FROM approvals WHERE request_id = $1",
            vec![t.id.to_string().into()],
        );
    }
    if let Some((a, _)) = &t.assessment {
        // Apart from the row, which every later state change rewrites (schema migration 8).
        b.push(
            "INSERT INTO request_assessments (request_id, assessment) VALUES ($1, $2) \
             ON CONFLICT (request_id) DO UPDATE SET assessment = excluded.assessment",
            vec![t.id.to_string().into(), a.get().to_string().into()],
        );
    }
    push_event(
        b,
        t.id,
        t.at,
        &t.actor,
        "transition",
        Some(t.from),
        Some(t.to),
        t.reason.as_deref(),
        t.data.as_ref(),
    );
    audit::push(
        b,
        head,
        t.at,
        &t.actor,
        "request.transition",
        &t.id.to_string(),
        &serde_json::json!({"from": t.from, "to": t.to, "version": t.expected_version + 1, "reason": t.reason}),
    );
    update
}

fn request(r: ReqRow, now: Option<jiff::Timestamp>) -> Result<StoredRequest> {
    let mut draft: RequestDraft =
        serde_json::from_str(&r.body).map_err(|e| StoreError::Corrupt(format!("request {} body: {e}", r.id)))?;
    // The columns are the marking of record (a body written before markings has none).
    draft.marking_set = Some(marking_of(&r.tlp, r.named.as_deref())?);
    let request = AssistanceRequest {
        id: parse(&r.id, "request id")?,
        draft,
        state: parse(&r.state, "state")?,
        version: r.version,
        created_at: ts(r.created_at)?,
        updated_at: ts(r.updated_at)?,
        submitted_at: opt_ts(r.submitted_at)?,
        acknowledged_at: opt_ts(r.acknowledged_at)?,
        answered_at: opt_ts(r.answered_at)?,
        ack_due: opt_ts(r.ack_due)?,
        answer_due: opt_ts(r.answer_due)?,
        preserved_until: opt_ts(r.preserved_until)?,
        information_due: opt_ts(r.info_due)?,
    };
    let assessment = r
        .assessment
        .map(RawJson::from_text)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("request {} assessment: {e}", r.id)))?;
    let overdue = now.and_then(|n| overdue_kind(&request, n));
    Ok(StoredRequest {
        reference: reference_text(r.ref_prefix.as_deref(), r.ref_seq, &r.id),
        request,
        assessment,
        rule_pack_version: r.rule_pack_version,
        overdue,
    })
}

impl Store {
    /// Stores a new request (usually a draft) with its `created` event and audit entry; its
    /// reference is the requesting agency's next (see [`Store::reference_prefix`]). Returns
    /// the reference.
    pub async fn insert_request(&self, r: &AssistanceRequest, actor: &str) -> Result<String> {
        self.insert_request_fed(r, actor, &Default::default()).await
    }

    /// Like [`Store::insert_request`] for a new draft, which `owner` (its author) owns.
    pub async fn insert_draft(
        &self,
        r: &AssistanceRequest,
        actor: &str,
        owner: liaison_core::UserId,
    ) -> Result<String> {
        self.insert_owned(r, actor, &Default::default(), Some(owner)).await
    }

    /// The prefix of the references of requests `agency` sends, made at `at`: its code and
    /// the year in its time zone (`FBI-2026`).
    pub async fn reference_prefix(&self, agency: AgencyId, at: jiff::Timestamp) -> Result<String> {
        let a = self.agency(agency).await?;
        let zone = liaison_core::directory::time_zone(&a.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        Ok(format!(
            "{}-{:04}",
            a.code.to_ascii_uppercase(),
            at.to_zoned(zone).year()
        ))
    }

    /// The request a reference names (`FBI-2026-0042`, any case), if any.
    pub async fn request_by_reference(&self, reference: &str) -> Result<Option<RequestId>> {
        let Some((prefix, seq)) = RefSpec::parse(&reference.trim().to_ascii_uppercase()) else {
            return Ok(None);
        };
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM requests WHERE ref_prefix = $1 AND ref_seq = $2")
            .bind(prefix)
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?;
        id.map(|i| parse(&i, "request id")).transpose()
    }

    /// [federation] Like [`Store::insert_request`], committing `fed` in the same transaction.
    /// Two instances on one PostgreSQL database that number a reference at the same moment:
    /// the second tries again (three times).
    pub async fn insert_request_fed(
        &self,
        r: &AssistanceRequest,
        actor: &str,
        fed: &crate::federation::FedWrites,
    ) -> Result<String> {
        self.insert_owned(r, actor, fed, None).await
    }

    async fn insert_owned(
        &self,
        r: &AssistanceRequest,
        actor: &str,
        fed: &crate::federation::FedWrites,
        owner: Option<liaison_core::UserId>,
    ) -> Result<String> {
        let spec = RefSpec {
            prefix: self.reference_prefix(r.draft.requesting_agency, r.created_at).await?,
            wanted: None,
        };
        let mut attempt = 0;
        loop {
            let (r, actor, fed, spec) = (r.clone(), actor.to_string(), fed.clone(), spec.clone());
            let out = self
                .writing(move |s| async move {
                    let mut w = s.write().await?;
                    let reference = insert_request_in(&mut w, &r, &actor, &spec, owner).await?;
                    crate::federation::write_fed(&mut w, &fed).await?; // [federation]
                    w.commit().await?;
                    Ok(reference)
                })
                .await;
            match out {
                Err(StoreError::Conflict(m)) if m.starts_with("reference ") && attempt < 3 => attempt += 1,
                other => return other,
            }
        }
    }

    /// Replaces a draft's content (only while it is a draft; optimistic version check).
    pub async fn update_draft(
        &self,
        id: RequestId,
        expected_version: i64,
        draft: &RequestDraft,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<i64> {
        let body = serde_json::to_string(draft).map_err(StoreError::corrupt)?;
        let content_sha256 = audit::digest(&body);
        let (tlp, named) = marking_cols(&draft.marking());
        let mut w = self.write().await?;
        let r = sqlx::query(
            "UPDATE requests SET body = $1, kind = $2, urgency = $3, requesting_agency = $4, requested_agency = $5, case_reference = $6, version = version + 1, updated_at = $7, \
             tlp = $10, named = $11 WHERE id = $8 AND version = $9 AND state = 'draft'",
        )
        .bind(body)
        .bind(draft.kind.as_str())
        .bind(draft.urgency.as_str())
        .bind(draft.requesting_agency.to_string())
        .bind(draft.requested_agency.to_string())
        .bind(&draft.case_reference)
        .bind(ms(now))
        .bind(id.to_string())
        .bind(expected_version)
        .bind(tlp)
        .bind(named)
        .execute(w.conn().await?)
        .await?;
        if r.rows_affected() == 0 {
            drop(w);
            let cur = self.request(id, None).await?;
            return Err(StoreError::Conflict(format!(
                "request {id} is at version {} in state {} (you sent version {expected_version}; only drafts can be edited)",
                cur.request.version, cur.request.state
            )));
        }
        insert_event(&mut w, id, now, actor, "edited", None, None, None, None).await?;
        // What was asked to be approved is no longer what the draft says.
        crate::approval::close_in(&mut w, id, "voided", actor, now).await?;
        crate::search::reindex_draft_in(&mut w, id, draft, now).await?;
        audit::append(
            &mut w,
            now,
            actor,
            "request.edit",
            &id.to_string(),
            &serde_json::json!({"version": expected_version + 1, "content_sha256": content_sha256}),
        )
        .await?;
        w.commit().await?;
        Ok(expected_version + 1)
    }

    /// Reads one request; `now` (if given) fills in whether it is overdue.
    pub async fn request(&self, id: RequestId, now: Option<jiff::Timestamp>) -> Result<StoredRequest> {
        let row: Option<ReqRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{REQ_COLS} WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        request(row.ok_or_else(|| StoreError::NotFound(format!("request {id}")))?, now)
    }

    /// Lists requests, newest first, one page at a time.
    pub async fn requests(&self, f: &RequestFilter, now: jiff::Timestamp) -> Result<Page<StoredRequest>> {
        self.listing(f, REQ_COLS, |r: ReqRow| request(r, Some(now))).await
    }

    /// Like [`Store::requests`], each request as a [`RequestSummary`] (no body is read).
    pub async fn request_summaries(&self, f: &RequestFilter, now: jiff::Timestamp) -> Result<Page<RequestSummary>> {
        self.listing(f, SUMMARY_COLS, |r: SummaryRow| summary(r, now)).await
    }

    /// The summaries of the given requests (those that exist), in no particular order.
    pub async fn request_summaries_by_id(
        &self,
        ids: &[RequestId],
        now: jiff::Timestamp,
    ) -> Result<Vec<RequestSummary>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ps: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let mut q = sqlx::query_as::<_, SummaryRow>(sqlx::AssertSqlSafe(format!(
            "{SUMMARY_COLS} WHERE id IN ({})",
            ps.join(", ")
        )));
        for id in ids {
            q = q.bind(id.to_string());
        }
        q.fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| summary(r, now))
            .collect()
    }

    /// The SQL and bound values a listing of summaries runs for `f` (the very text the store
    /// executes, for EXPLAIN and timing in benchmarks).
    pub async fn listing_sql(&self, f: &RequestFilter) -> Result<(String, Vec<Arg>)> {
        let (ids, page, args, _) = self.page_ids(f).await?;
        Ok((format!("{SUMMARY_COLS} WHERE id IN ({ids}) {page}"), args))
    }

    /// One page of `f`: the page's ids chosen by [`Store::page_ids`], their rows read with
    /// `cols` (a `SELECT … FROM requests`) and turned into items by `item`.
    async fn listing<R, T: Listed>(
        &self,
        f: &RequestFilter,
        cols: &str,
        item: impl Fn(R) -> Result<T>,
    ) -> Result<Page<T>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let (ids, page, args, limit) = self.page_ids(f).await?;
        let q = bind_args(
            sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(format!("{cols} WHERE id IN ({ids}) {page}"))),
            args,
        );
        let rows = q.fetch_all(&self.pool).await?;
        paged(rows, limit, f.sort, item)
    }

    /// The query choosing a page's ids (with one row more than the page, to tell whether
    /// another page follows), its `ORDER BY … LIMIT`, its arguments and the page size.
    async fn page_ids(&self, f: &RequestFilter) -> Result<(String, String, Vec<Arg>, u32)> {
        self.page_ids_taking(f, None, true).await
    }

    /// [`Store::page_ids`] taking `take` rows instead of one page and one more; unordered
    /// (`ordered == false`, for counts) it takes any `take` matching rows, in whatever order
    /// the indexes give them.
    ///
    /// Three shapes (docs/queues.md, "How the queues are read"; bench/queues/README.md):
    /// - an agency's view is two walks, one per side, each along an index that starts with the
    ///   side's agency column and continues with the sort key (`id`, or the due key
    ///   `COALESCE(next_due, MAX), id` of schema migration 23), each stopping after one page;
    /// - a queue of an owner or of units is walked along `request_work` (owner or unit, agency,
    ///   then `request_id` or the copy of the due key kept in `request_work.due`), joining the
    ///   request's row only when a condition needs it; several units are one walk each;
    /// - without an agency (administrators' exports), one walk over `requests`.
    async fn page_ids_taking(
        &self,
        f: &RequestFilter,
        take: Option<u64>,
        ordered: bool,
    ) -> Result<(String, String, Vec<Arg>, u32)> {
        use liaison_core::record::Sort;
        // Filters other than visibility and the page's cursor, each a condition on one row.
        let mut conds = String::new();
        let mut args: Vec<Arg> = Vec::new();
        let mut n = 0;
        let mut next = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            n += 1;
            format!("${n}")
        };
        // The visible agency's placeholder comes first: the work filters name it too.
        let agency_p = f.visible_to.map(|a| next(&mut args, Arg::S(a.to_string())));
        let in_list = |args: &mut Vec<Arg>, next: &mut dyn FnMut(&mut Vec<Arg>, Arg) -> String, states: &[State]| {
            let ps: Vec<String> = states
                .iter()
                .map(|s| next(args, Arg::S(s.as_str().to_string())))
                .collect();
            if ps.is_empty() {
                " AND 1 = 0".to_string()
            } else {
                format!(" AND requests.state IN ({})", ps.join(", "))
            }
        };
        // By due date, an agency's side is one walk per state it can hold, each along the index
        // (agency, state, due key, id) of migration 23, each stopping after one page: a walk
        // over all states in due order steps over every request with a deadline in another
        // state (the open ones) before it finds, say, the drafts and answered requests of
        // "waiting on us" (75–170 ms at 1,000,000 requests). Each walk names its one state; the
        // state filters are then left out (PostgreSQL, given both, misjudged how many rows a
        // state holds and read and sorted all of them). Not for a watcher's queue: the few
        // watched requests are found through the watcher's index and sorted (a walk per state
        // would step over every request in the state to find them). Not for the walks along
        // `request_work` (below), which have their own order.
        let split = ordered
            && f.sort == Sort::Due
            && f.watcher.is_none()
            && f.visible_to.is_some()
            && f.owner.is_none()
            && f.units.is_empty();
        if !f.states.is_empty() && !split {
            conds += &in_list(&mut args, &mut next, &f.states);
        }
        if let Some(k) = f.kind {
            conds += &format!(" AND kind = {}", next(&mut args, Arg::S(k.as_str().to_string())));
        }
        if let Some(a) = f.requesting {
            conds += &format!(" AND requesting_agency = {}", next(&mut args, Arg::S(a.to_string())));
        }
        if let Some(a) = f.requested {
            conds += &format!(" AND requested_agency = {}", next(&mut args, Arg::S(a.to_string())));
        }
        // Search (docs/search.md): the case reference as written, target keys, and words.
        if let Some(c) = &f.case_reference {
            conds += &format!(
                " AND requests.case_reference = {}",
                next(&mut args, Arg::S(c.trim().to_string()))
            );
        }
        if !f.target_keys.is_empty() {
            let ors: Vec<String> = f
                .target_keys
                .iter()
                .map(|(lo, hi)| {
                    if lo == hi {
                        format!("t.ident = {}", next(&mut args, Arg::S(lo.clone())))
                    } else {
                        let l = next(&mut args, Arg::S(lo.clone()));
                        format!("t.ident BETWEEN {l} AND {}", next(&mut args, Arg::S(hi.clone())))
                    }
                })
                .collect();
            conds += &format!(
                " AND requests.id IN (SELECT t.request_id FROM search_targets t WHERE {})",
                ors.join(" OR ")
            );
        }
        if let Some(q) = &f.text {
            // Few matching texts: start from them. Many: walk the listing's own order and test
            // each request's texts (a page fills quickly).
            let p = self.prepare(q).await?;
            if p.empty {
                conds += " AND 1 = 0";
            }
            let few = self.text_matches_few(&p, f.visible_to).await?;
            let backend = self.backend();
            let mut agencies: Vec<liaison_core::AgencyId> = f.visible_to.into_iter().collect();
            agencies.extend(f.counterpart.filter(|_| f.visible_to.is_some()));
            let agencies = self.narrowing(&agencies).await?;
            let qp = next(&mut args, Arg::S(crate::search::render(backend, &p, &agencies, None)));
            let vis = match &agency_p {
                Some(a) => {
                    let pat = next(
                        &mut args,
                        Arg::S(crate::search::named_pattern(f.reader.as_deref().unwrap_or(""))),
                    );
                    crate::search::doc_visible(a, &pat)
                }
                None => "1 = 1".to_string(),
            };
            let pats: Vec<(String, bool)> = if backend == crate::Backend::Sqlite && !few {
                crate::search::like_patterns(q)
                    .into_iter()
                    .map(|(p, n)| (next(&mut args, Arg::S(p)), n))
                    .collect()
            } else {
                Vec::new()
            };
            conds += &if few {
                let matched = match backend {
                    crate::Backend::Sqlite => format!(
                        "search_fts f JOIN search_docs d ON d.doc = f.rowid JOIN requests r ON r.id = d.request_id WHERE search_fts MATCH {qp}"
                    ),
                    crate::Backend::Postgres => format!(
                        "search_docs d JOIN requests r ON r.id = d.request_id WHERE d.tsv @@ to_tsquery('simple', {qp})"
                    ),
                };
                format!(" AND requests.id IN (SELECT d.request_id FROM {matched} AND {vis})")
            } else {
                let test = format!(
                    "SELECT 1 FROM search_docs d JOIN requests r ON r.id = d.request_id \
                     WHERE d.request_id = requests.id AND {} AND {vis}",
                    crate::search::doc_matches(backend, &qp, &pats)
                );
                match backend {
                    crate::Backend::Sqlite => format!(" AND EXISTS ({test})"),
                    // As a scalar sub-query: PostgreSQL turns an `EXISTS` into a semi-join and
                    // may then read every matching text of the reader's agency first (30,000
                    // for a common word: 400 ms); this form is tested request by request, in
                    // the walk's order, through `search_docs(request_id, doc)`.
                    crate::Backend::Postgres => format!(" AND ({test} LIMIT 1) IS NOT NULL"),
                }
            };
        }
        // next_due is the running deadline of the current state (NULL when none runs). For the
        // walks by due date, one per state, written on the due key (NULL is the largest value,
        // never before an instant): a range of the indexes of migration 23. Otherwise on the
        // column, which the newest-first walks and the covering index of migration 5 carry.
        // (Both at once made PostgreSQL count the condition twice, expect almost no rows, and
        // read and sort whole states.)
        let due_col = if split { DUE_KEY } else { "next_due" };
        for at in [f.overdue_at, f.due_before].into_iter().flatten() {
            conds += &format!(" AND {due_col} < {}", next(&mut args, Arg::I(ms(at))));
        }
        if let Some(at) = f.created_from {
            conds += &format!(" AND created_at >= {}", next(&mut args, Arg::I(ms(at))));
        }
        if let Some(at) = f.created_to {
            conds += &format!(" AND created_at < {}", next(&mut args, Arg::I(ms(at))));
        }
        if let Some(since) = f.updated_since {
            // SQLite would otherwise read and sort every row of a wide window to return one page;
            // when the window is large, walking the primary key newest-first is far cheaper
            // ("+" keeps SQLite off the updated_at index). A capped, index-only count decides.
            let wide = self.wide_window("updated_at >= $1", ms(since)).await?;
            let col = if wide {
                "+requests.updated_at"
            } else {
                "requests.updated_at"
            };
            conds += &format!(" AND {col} >= {}", next(&mut args, Arg::I(ms(since))));
        }
        // Who works it (local rows of `request_work`, for the visible agency's side): the
        // owner and units drive the walk (below); "nobody owns it" is a probe of the partial
        // index `request_work_owned`.
        let (owner_p, unit_ps) = match &agency_p {
            Some(a) => {
                let owner_p: Vec<String> = f
                    .owner
                    .iter()
                    .chain(if f.owner.is_some() {
                        f.also_owners.iter()
                    } else {
                        [].iter()
                    })
                    .map(|u| next(&mut args, Arg::S(u.to_string())))
                    .collect();
                let unit_ps: Vec<String> = f.units.iter().map(|u| next(&mut args, Arg::S(u.to_string()))).collect();
                if f.unowned {
                    conds += &format!(
                        " AND NOT EXISTS (SELECT 1 FROM request_work o WHERE o.request_id = requests.id \
                         AND o.agency_id = {a} AND o.owner_id IS NOT NULL)"
                    );
                }
                (owner_p, unit_ps)
            }
            None => (Vec::new(), Vec::new()),
        };
        if let Some(u) = f.watcher {
            let up = next(&mut args, Arg::S(u.to_string()));
            conds += &format!(" AND requests.id IN (SELECT request_id FROM request_watchers WHERE user_id = {up})");
        }
        // Conditions of one side only: the other party, and whose move it waits for.
        let (mut sent_only, mut received_only) = (String::new(), String::new());
        if let Some(x) = f.counterpart {
            let xp = next(&mut args, Arg::S(x.to_string()));
            match f.visible_to {
                Some(_) => {
                    sent_only += &format!(" AND requested_agency = {xp}");
                    received_only += &format!(" AND requesting_agency = {xp}");
                }
                None => conds += &format!(" AND (requesting_agency = {xp} OR requested_agency = {xp})"),
            }
        }
        // The states each side's arm can hold: every state, less the filter's and whose move.
        let of_filter = |s: &State| f.states.is_empty() || f.states.contains(s);
        let mut sent_states: Vec<State> = State::ALL.iter().copied().filter(of_filter).collect();
        let mut received_states: Vec<State> = sent_states.iter().copied().filter(|s| *s != State::Draft).collect();
        if let (Some(w), Some(_)) = (f.awaiting, f.visible_to) {
            use liaison_core::lifecycle::Side;
            use liaison_core::record::Awaiting;
            let (sent_side, received_side) = match w {
                Awaiting::Us => (Side::Requesting, Side::Requested),
                Awaiting::Partner => (Side::Requested, Side::Requesting),
            };
            let (sent_waiting, received_waiting) = (State::awaiting(sent_side), State::awaiting(received_side));
            if !split {
                sent_only += &in_list(&mut args, &mut next, &sent_waiting);
                received_only += &in_list(&mut args, &mut next, &received_waiting);
            }
            sent_states.retain(|s| sent_waiting.contains(s));
            received_states.retain(|s| received_waiting.contains(s));
        }
        // The page's cursor, on the sort key's columns (`key_id`, `key_due`) of the walk.
        let mut cursor = |key_id: &str, key_due: &str, args: &mut Vec<Arg>| -> String {
            if !ordered {
                return String::new();
            }
            match f.sort {
                Sort::Newest => f
                    .before
                    .map(|b| format!(" AND {key_id} < {}", next(args, Arg::S(b.to_string()))))
                    .unwrap_or_default(),
                Sort::Oldest => f
                    .after
                    .map(|b| format!(" AND {key_id} > {}", next(args, Arg::S(b.to_string()))))
                    .unwrap_or_default(),
                // A row value: both backends read it as a range of the index on (…, due, id).
                Sort::Due => f
                    .after_due
                    .map(|(due, id)| {
                        let dp = next(args, Arg::I(due));
                        let ip = next(args, Arg::S(id.to_string()));
                        format!(" AND ({key_due}, {key_id}) > ({dp}, {ip})")
                    })
                    .unwrap_or_default(),
            }
        };
        let limit = f.limit.clamp(1, 500);
        let take = take.unwrap_or(u64::from(limit) + 1);
        // The order of a walk over the sort key's columns.
        let order = |key_id: &str, key_due: &str| match (ordered, f.sort) {
            (false, _) => format!("LIMIT {take}"),
            (true, Sort::Newest) => format!("ORDER BY {key_id} DESC LIMIT {take}"),
            (true, Sort::Oldest) => format!("ORDER BY {key_id} LIMIT {take}"),
            (true, Sort::Due) => format!("ORDER BY {key_due}, {key_id} LIMIT {take}"),
        };
        // The order of the page as a whole (over the rows of `requests`).
        let page = order("id", DUE_KEY);
        let union = |arms: Vec<String>| -> String {
            arms.iter()
                .enumerate()
                .map(|(i, a)| format!("SELECT id FROM ({a}) AS arm{i}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        };
        // The page's ids are chosen first, reading indexes where possible, and only those rows
        // are read in full.
        let ids = match (f.visible_to, &agency_p) {
            (Some(_), Some(p)) if !owner_p.is_empty() || !unit_ps.is_empty() => {
                // Walks along `request_work`: one per owner (the owner and the colleagues away
                // who named the owner their delegate; the units, if any, a condition on the
                // same row), else one per unit. A row of `request_work` exists only for
                // a party to the request (the author of a draft, or a side that received it):
                // with no other condition, the request's row is not read at all.
                let cur = cursor("w.request_id", "w.due", &mut args);
                let joined = !conds.is_empty() || !sent_only.is_empty() || !received_only.is_empty();
                let (from, side) = if joined {
                    (
                        "request_work w JOIN requests ON requests.id = w.request_id".to_string(),
                        format!(
                            " AND ((requesting_agency = {p}{sent_only}) OR (requested_agency = {p} \
                             AND requesting_agency <> {p} AND requests.state <> 'draft'{received_only}))"
                        ),
                    )
                } else {
                    ("request_work w".to_string(), String::new())
                };
                let walk = order("w.request_id", "w.due");
                let arm = |driver: String| {
                    format!(
                        "SELECT w.request_id AS id FROM {from} WHERE {driver} AND w.agency_id = {p}{cur}{conds}{side} {walk}"
                    )
                };
                if owner_p.is_empty() {
                    union(unit_ps.iter().map(|u| arm(format!("w.unit_id = {u}"))).collect())
                } else {
                    let units = if unit_ps.is_empty() {
                        String::new()
                    } else {
                        format!(" AND w.unit_id IN ({})", unit_ps.join(", "))
                    };
                    match owner_p.as_slice() {
                        [o] => arm(format!("w.owner_id = {o}{units}")),
                        several => union(
                            several
                                .iter()
                                .map(|o| arm(format!("w.owner_id = {o}{units}")))
                                .collect(),
                        ),
                    }
                }
            }
            (Some(a), Some(p)) => {
                // An agency sees what it sends and what it receives (but not the other side's
                // drafts): two ordered walks, one per side, each stopping after one page,
                // rather than one OR that SQLite may answer by reading and sorting all of the
                // agency's requests (bench/api/README.md). An agency never requests from itself
                // (`RequestDraft::validate`), so a filter on one side can rule an arm out; an
                // arm that cannot match is left out, not walked.
                let sent_arm = f.requesting.is_none_or(|x| x == a) && f.requested != Some(a);
                let received_arm = f.requested.is_none_or(|x| x == a) && f.requesting != Some(a);
                // Each arm walks the index that starts with its agency column. PostgreSQL, given
                // `col = $p … ORDER BY id DESC`, may instead walk the primary key newest-first
                // and filter: it assumes the agency's rows are spread evenly over the ids. They
                // are not when the newest rows are another agency's drafts (the receiving side
                // of a busy partner): a page then read every draft since the last received
                // request, 60–200 ms at 80,000 rows and growing (bench/intel/README.md). Written
                // as a range and ordered by the agency column first, the order can only come
                // from an index on (agency, id). SQLite walks that index for the plain form, and
                // both walk the due-key indexes for the plain form.
                let pg = self.backend() == crate::Backend::Postgres && ordered && f.sort == Sort::Newest;
                let cur = cursor("id", DUE_KEY, &mut args);
                let arm = |col: &str| match pg {
                    true => format!("{col} >= {p} AND {col} <= {p}"),
                    false => format!("{col} = {p}"),
                };
                let walk = |col: &str| match pg {
                    true => format!("ORDER BY {col} DESC, id DESC LIMIT {take}"),
                    false => order("id", DUE_KEY),
                };
                // By due date: one walk per state (see `split` above).
                let mut state_p: std::collections::HashMap<State, String> = Default::default();
                let mut side = |args: &mut Vec<Arg>, base: String, states: &[State], col: &str| -> String {
                    if !split {
                        return format!("SELECT id FROM requests WHERE {base} {}", walk(col));
                    }
                    if states.is_empty() {
                        return format!("SELECT id FROM requests WHERE {base} AND 1 = 0 {}", walk(col));
                    }
                    let arms = states
                        .iter()
                        .map(|st| {
                            let sp = state_p
                                .entry(*st)
                                .or_insert_with(|| next(args, Arg::S(st.as_str().to_string())))
                                .clone();
                            format!(
                                "SELECT id FROM requests WHERE {base} AND requests.state = {sp} {}",
                                walk(col)
                            )
                        })
                        .collect();
                    union(arms)
                };
                // (Only the arms walked are written: a state's placeholder is made when a walk
                // names it, so the statement binds no value it does not use.)
                let sent = sent_arm.then(|| {
                    side(
                        &mut args,
                        format!("{}{cur}{conds}{sent_only}", arm("requesting_agency")),
                        &sent_states,
                        "requesting_agency",
                    )
                });
                let received = received_arm.then(|| {
                    side(
                        &mut args,
                        format!(
                            "{} AND requesting_agency <> {p} AND state <> 'draft'{cur}{conds}{received_only}",
                            arm("requested_agency")
                        ),
                        &received_states,
                        "requested_agency",
                    )
                });
                match (sent, received) {
                    (Some(sent), Some(received)) => union(vec![sent, received]),
                    (Some(sent), None) => sent,
                    (None, Some(received)) => received,
                    // Nothing can match; the query still uses every bound value (PostgreSQL
                    // refuses a statement with a parameter it cannot type).
                    (None, None) => format!(
                        "SELECT id FROM requests WHERE requesting_agency = {p}{cur}{conds}{sent_only}{received_only} AND 1 = 0 {page}"
                    ),
                }
            }
            _ => {
                let cur = cursor("id", DUE_KEY, &mut args);
                format!("SELECT id FROM requests WHERE 1 = 1{cur}{conds} {page}")
            }
        };
        Ok((ids, page, args, limit))
    }

    /// How many requests `f` matches, counting at most `cap` (index walks that stop there, in
    /// no particular order).
    pub async fn count_matching(&self, f: &RequestFilter, cap: u64) -> Result<u64> {
        let (ids, _, args, _) = self.page_ids_taking(f, Some(cap), false).await?;
        let q = bind_args(
            sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM ({ids}) AS c"))),
            args,
        );
        let (n,) = q.fetch_one(&self.pool).await?;
        Ok(u64::try_from(n).unwrap_or(0).min(cap))
    }

    /// The SQL and bound values of [`Store::count_matching`] (for EXPLAIN in benchmarks).
    pub async fn count_sql(&self, f: &RequestFilter, cap: u64) -> Result<(String, Vec<Arg>)> {
        let (ids, _, args, _) = self.page_ids_taking(f, Some(cap), false).await?;
        Ok((format!("SELECT COUNT(*) FROM ({ids}) AS c"), args))
    }

    /// SQLite only: whether at least 2,000 rows match a range condition (an index-only, capped
    /// count). For such wide windows the listing walks the primary key newest-first ("+col" keeps
    /// SQLite off the column's index) instead of reading and sorting the whole window; narrow
    /// windows keep the index. PostgreSQL plans both well on its own (bench/api/README.md).
    async fn wide_window(&self, condition: &'static str, bound: i64) -> Result<bool> {
        if self.backend() != crate::Backend::Sqlite {
            return Ok(false);
        }
        let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM requests WHERE {condition} LIMIT 2000) AS w");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(bound)
            .fetch_one(&self.pool)
            .await?;
        Ok(n >= 2000)
    }

    /// Commits a state change with its event and audit entry. Fails with `Conflict` if the
    /// request moved on since the caller read it.
    pub async fn transition(&self, t: &TransitionRecord) -> Result<StoredRequest> {
        self.transitions(std::slice::from_ref(t)).await
    }

    /// Like [`Store::transitions`] for a caller that has just read the request (`cur`): the
    /// answer is `cur` with the changes applied as the database applied them, without reading
    /// it again. The version check in the `UPDATE` guarantees `cur` was what they changed.
    pub async fn transitions_from(&self, mut cur: StoredRequest, ts: &[TransitionRecord]) -> Result<StoredRequest> {
        let Some(last) = ts.last() else {
            return Err(StoreError::Conflict("no state change to commit".into()));
        };
        if ts[0].id != cur.request.id || ts[0].expected_version != cur.request.version {
            return Err(StoreError::Conflict(format!(
                "request {} was read at version {}, not the version {} the change is for",
                cur.request.id, cur.request.version, ts[0].expected_version
            )));
        }
        let at = last.at;
        let owned = ts.to_vec();
        self.writing(move |s| async move { s.transitions_now(&owned).await })
            .await?;
        for t in ts {
            applied(&mut cur, t)?;
        }
        cur.overdue = overdue_kind(&cur.request, at);
        Ok(cur)
    }

    /// Commits consecutive state changes of one request in one transaction (e.g. submitted,
    /// then received when the requested agency is served by this node): all or none.
    pub async fn transitions(&self, ts: &[TransitionRecord]) -> Result<StoredRequest> {
        let Some(last) = ts.last() else {
            return Err(StoreError::Conflict("no state change to commit".into()));
        };
        let (id, at) = (last.id, last.at);
        let ts = ts.to_vec();
        self.writing(move |s| async move { s.transitions_now(&ts).await })
            .await?;
        self.request(id, Some(at)).await
    }

    async fn transitions_now(&self, ts: &[TransitionRecord]) -> Result<()> {
        let mut w = self.write().await?;
        let mut head = w.audit_head().await?;
        let mut b = Batch::default();
        let updates: Vec<usize> = ts.iter().map(|t| push_transition(&mut b, &mut head, t)).collect();
        let changed = match w.run(b).await {
            Ok(changed) => changed,
            // An event of a request that does not exist.
            Err(StoreError::Database(sqlx::Error::Database(db))) if db.is_foreign_key_violation() => {
                drop(w);
                return Err(self.stale(&ts[0]).await);
            }
            Err(e) => return Err(e),
        };
        if let Some((t, _)) = ts.iter().zip(&updates).find(|(_, i)| changed.get(**i) != Some(&1)) {
            // Not where the caller saw it: undo the batch, then say what it is now.
            drop(w);
            return Err(self.stale(t).await);
        }
        w.set_audit_head(head.0, head.1);
        for t in ts {
            crate::federation::write_fed(&mut w, &t.fed).await?; // [federation]
        }
        w.commit().await
    }

    /// Why a state change found its request elsewhere than expected.
    async fn stale(&self, t: &TransitionRecord) -> StoreError {
        let cur: Result<Option<(String, i64)>> = sqlx::query_as("SELECT state, version FROM requests WHERE id = $1")
            .bind(t.id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from);
        match cur {
            Ok(Some((state, version))) => StoreError::Conflict(format!(
                "request {} is now at version {version} in state {state}; you acted on version {} in state {}. Reload and try again.",
                t.id, t.expected_version, t.from
            )),
            Ok(None) => StoreError::NotFound(format!("request {}", t.id)),
            Err(e) => e,
        }
    }

    /// Adds a comment to a request's history.
    pub async fn comment(&self, id: RequestId, actor: &str, text: &str, at: jiff::Timestamp) -> Result<EventRecord> {
        self.comment_fed(id, actor, text, at, None, &Default::default()).await
    }

    /// [federation] Like [`Store::comment`], with event data (attachment metadata) and `fed`
    /// committed in the same transaction.
    pub async fn comment_fed(
        &self,
        id: RequestId,
        actor: &str,
        text: &str,
        at: jiff::Timestamp,
        data: Option<&serde_json::Value>,
        fed: &crate::federation::FedWrites,
    ) -> Result<EventRecord> {
        let (actor, text, data, fed) = (actor.to_string(), text.to_string(), data.cloned(), fed.clone());
        self.writing(move |s| async move { s.comment_now(id, &actor, &text, at, data.as_ref(), &fed).await })
            .await
    }

    async fn comment_now(
        &self,
        id: RequestId,
        actor: &str,
        text: &str,
        at: jiff::Timestamp,
        data: Option<&serde_json::Value>,
        fed: &crate::federation::FedWrites,
    ) -> Result<EventRecord> {
        let mut w = self.write().await?;
        let ev = comment_in(&mut w, id, actor, text, at, data).await?;
        crate::federation::write_fed(&mut w, fed).await?; // [federation]
        w.commit().await?;
        Ok(ev)
    }

    /// Changes a request's marking ([`marking_in`]) with `fed` (the message to the peer node)
    /// in the same transaction.
    pub async fn set_marking_fed(
        &self,
        id: RequestId,
        marking: &Marking,
        actor: &str,
        at: jiff::Timestamp,
        fed: &crate::federation::FedWrites,
    ) -> Result<EventRecord> {
        let (marking, actor, fed) = (marking.clone(), actor.to_string(), fed.clone());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let ev = marking_in(&mut w, id, &marking, &actor, at).await?;
            crate::federation::write_fed(&mut w, &fed).await?; // [federation]
            w.commit().await?;
            Ok(ev)
        })
        .await
    }

    /// Replaces a submitted request's legal assessment (a re-assessment under newer rule
    /// packs), with an `assessment` event and an audit entry, in one transaction. The request's
    /// version does not change: nothing the two sides agreed on moves.
    pub async fn replace_assessment(
        &self,
        id: RequestId,
        assessment: RawJson,
        rule_pack_version: String,
        actor: &str,
        at: jiff::Timestamp,
    ) -> Result<EventRecord> {
        let actor = actor.to_string();
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let mut head = w.audit_head().await?;
            let mut b = Batch::default();
            let old: Option<(Option<String>,)> =
                sqlx::query_as("SELECT rule_pack_version FROM requests WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(w.conn().await?)
                    .await?;
            let Some((old,)) = old else {
                return Err(StoreError::NotFound(format!("request {id}")));
            };
            let update = b.push(
                "UPDATE requests SET rule_pack_version = $1 WHERE id = $2 AND submitted_at IS NOT NULL",
                vec![rule_pack_version.clone().into(), id.to_string().into()],
            );
            b.push(
                "INSERT INTO request_assessments (request_id, assessment) VALUES ($1, $2) \
                 ON CONFLICT (request_id) DO UPDATE SET assessment = excluded.assessment",
                vec![id.to_string().into(), assessment.get().to_string().into()],
            );
            let data = serde_json::json!({"rule_pack_version": rule_pack_version, "previous_rule_pack_version": old});
            let ev = push_event(
                &mut b,
                id,
                at,
                &actor,
                "assessment",
                None,
                None,
                Some("re-assessed under the current rule packs"),
                Some(&data),
            );
            audit::push(
                &mut b,
                &mut head,
                at,
                &actor,
                "request.reassess",
                &id.to_string(),
                &serde_json::json!({"event": ev.id, "rule_pack_version": rule_pack_version, "assessment_sha256": audit::digest(assessment.get())}),
            );
            let changed = w.run(b).await?;
            if changed.get(update) != Some(&1) {
                return Err(StoreError::Conflict(format!(
                    "request {id} has not been submitted: it has no assessment to renew"
                )));
            }
            w.set_audit_head(head.0, head.1);
            w.commit().await?;
            Ok(ev)
        })
        .await
    }

    /// A request's history, oldest first.
    pub async fn events(&self, id: RequestId) -> Result<Vec<EventRecord>> {
        let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{EVENT_COLS} WHERE request_id = $1 ORDER BY at, id"
        )))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(event_record).collect()
    }

    /// Records an escalation for every request whose running deadline passed before `now` and
    /// has not been escalated yet. Idempotent: a deadline is escalated once.
    pub async fn record_escalations(&self, now: jiff::Timestamp, batch: i64) -> Result<Vec<Escalation>> {
        type Row = (
            String,
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let mut w = self.write().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, state, requesting_agency, requested_agency, ack_due, answer_due, preserved_until, info_due FROM requests \
             WHERE next_due IS NOT NULL AND next_due < $1 AND (escalated_due IS NULL OR escalated_due <> next_due) ORDER BY next_due LIMIT $2",
        )
        .bind(ms(now))
        .bind(batch)
        .fetch_all(w.conn().await?)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let state: State = parse(&r.1, "state")?;
            let id: RequestId = parse(&r.0, "request id")?;
            let Some((kind, due)) = running_due(state, r.4, r.5, r.6, r.7) else {
                sqlx::query("UPDATE requests SET next_due = NULL WHERE id = $1")
                    .bind(&r.0)
                    .execute(w.conn().await?)
                    .await?;
                sqlx::query(SYNC_WORK_DUE).bind(&r.0).execute(w.conn().await?).await?;
                continue;
            };
            let ins = sqlx::query("INSERT INTO escalations (request_id, deadline, due_at, recorded_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(&r.0)
                .bind(kind.as_str())
                .bind(due)
                .bind(ms(now))
                .execute(w.conn().await?)
                .await?;
            // The deadline is handled: stop selecting this row until a transition sets a new one.
            sqlx::query("UPDATE requests SET escalated_due = $1 WHERE id = $2")
                .bind(due)
                .bind(&r.0)
                .execute(w.conn().await?)
                .await?;
            if ins.rows_affected() == 0 {
                continue;
            }
            let due_ts = ts(due)?;
            let data = serde_json::json!({"deadline": kind, "due_at": due_ts});
            insert_event(
                &mut w,
                id,
                now,
                "system",
                "escalation",
                None,
                None,
                Some(&format!("{} deadline passed at {due_ts}", kind.as_str())),
                Some(&data),
            )
            .await?;
            audit::append(&mut w, now, "system", "request.escalate", &r.0, &data).await?;
            out.push(Escalation {
                request: id,
                deadline: kind,
                due_at: due_ts,
                state,
                requesting: parse(&r.2, "agency")?,
                requested: parse(&r.3, "agency")?,
            });
        }
        w.commit().await?;
        Ok(out)
    }

    /// Rows for cooperation statistics: requests submitted in `[from, to)`.
    pub async fn stats_rows(&self, from: jiff::Timestamp, to: jiff::Timestamp) -> Result<Vec<StatsRow>> {
        type Row = (
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT requesting_agency, requested_agency, state, submitted_at, acknowledged_at, answered_at, ack_due, answer_due FROM requests \
             WHERE submitted_at IS NOT NULL AND submitted_at >= $1 AND submitted_at < $2",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StatsRow {
                    requesting: parse(&r.0, "agency")?,
                    requested: parse(&r.1, "agency")?,
                    state: parse(&r.2, "state")?,
                    submitted_at: ts(r.3)?,
                    acknowledged_at: opt_ts(r.4)?,
                    answered_at: opt_ts(r.5)?,
                    ack_due: opt_ts(r.6)?,
                    answer_due: opt_ts(r.7)?,
                })
            })
            .collect()
    }

    /// Number of stored requests.
    pub async fn count_requests(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM requests")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// A bound value of a listing query (see [`Store::listing_sql`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    S(String),
    I(i64),
}

/// Binds listing arguments to a plain query.
pub(crate) fn bind_any<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Arg::S(s) => q.bind(s),
            Arg::I(i) => q.bind(i),
        };
    }
    q
}

fn bind_args<'q, O>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    args: Vec<Arg>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Arg::S(s) => q.bind(s),
            Arg::I(i) => q.bind(i),
        };
    }
    q
}

/// A page of `limit` items from rows fetched with one extra (which says another page follows).
fn paged<R, T: Listed>(
    rows: Vec<R>,
    limit: u32,
    sort: liaison_core::record::Sort,
    item: impl Fn(R) -> Result<T>,
) -> Result<Page<T>> {
    let more = rows.len() > limit as usize;
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(item)
        .collect::<Result<Vec<_>>>()?;
    let next = if more {
        items.last().map(|r| match sort {
            liaison_core::record::Sort::Due => liaison_core::record::due_cursor(r.list_due(), r.list_id()),
            _ => r.list_id().to_string(),
        })
    } else {
        None
    };
    Ok(Page { items, next })
}

/// Writes a comment (its event and audit entry) inside an open transaction: the one write path
/// of a comment, local or mirrored from a peer.
pub(crate) async fn comment_in(
    w: &mut crate::WriteTx,
    id: RequestId,
    actor: &str,
    text: &str,
    at: jiff::Timestamp,
    data: Option<&serde_json::Value>,
) -> Result<EventRecord> {
    let mut head = w.audit_head().await?;
    let mut b = Batch::default();
    let ev = push_event(&mut b, id, at, actor, "comment", None, None, Some(text), data);
    let (side, tlp, named) = crate::search::comment_cols(data);
    crate::search::push_doc(
        &mut b,
        w.backend(),
        id,
        liaison_core::record::SearchSource::Comment,
        &ev.id.to_string(),
        at,
        &side,
        &tlp,
        named,
        text,
    );
    audit::push(
        &mut b,
        &mut head,
        at,
        actor,
        "request.comment",
        &id.to_string(),
        &serde_json::json!({"event": ev.id, "length": text.len(), "text_sha256": audit::digest(text)}),
    );
    w.run(b).await.map_err(|e| match e {
        // The event's reference to its request.
        StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            StoreError::NotFound(format!("request {id}"))
        }
        e => e,
    })?;
    w.set_audit_head(head.0, head.1);
    Ok(ev)
}

/// Sets a request's marking (its columns and the marking in its body), with a `marking`
/// event and a `request.marking` audit entry carrying the digest of the new body, inside an
/// open transaction: the one write path of a marking change, local or mirrored from a peer.
/// The request's version does not move: a marking is not a step of the lifecycle.
pub(crate) async fn marking_in(
    w: &mut crate::WriteTx,
    id: RequestId,
    marking: &Marking,
    actor: &str,
    at: jiff::Timestamp,
) -> Result<EventRecord> {
    let row: Option<(String, String)> = sqlx::query_as("SELECT body, tlp FROM requests WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(w.conn().await?)
        .await?;
    let Some((body, old)) = row else {
        return Err(StoreError::NotFound(format!("request {id}")));
    };
    let mut draft: RequestDraft = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
    draft.marking_set = Some(marking.clone());
    let body = serde_json::to_string(&draft).map_err(StoreError::corrupt)?;
    let (tlp, named) = marking_cols(marking);
    let mut head = w.audit_head().await?;
    let mut b = Batch::default();
    b.push(
        "UPDATE requests SET body = $1, tlp = $2, named = $3 WHERE id = $4",
        vec![body.as_str().into(), tlp.into(), named.into(), id.to_string().into()],
    );
    let data = serde_json::json!({"marking": marking, "previous": old});
    let ev = push_event(&mut b, id, at, actor, "marking", None, None, None, Some(&data));
    audit::push(
        &mut b,
        &mut head,
        at,
        actor,
        "request.marking",
        &id.to_string(),
        &serde_json::json!({"event": ev.id, "marking": marking, "previous": old, "content_sha256": audit::digest(&body)}),
    );
    w.run(b).await?;
    w.set_audit_head(head.0, head.1);
    Ok(ev)
}

/// Writes one state change inside an open transaction (the statements of
/// [`push_transition`]); a request not at `t.expected_version` in `t.from` is a conflict.
pub(crate) async fn transition_in(w: &mut crate::WriteTx, t: &TransitionRecord) -> Result<()> {
    let mut head = w.audit_head().await?;
    let mut b = Batch::default();
    let update = push_transition(&mut b, &mut head, t);
    let changed = w.run(b).await?;
    if changed.get(update) != Some(&1) {
        return Err(StoreError::Conflict(format!(
            "request {} moved on while the change was applied",
            t.id
        )));
    }
    w.set_audit_head(head.0, head.1);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_event(
    w: &mut crate::WriteTx,
    request: RequestId,
    at: jiff::Timestamp,
    actor: &str,
    event: &str,
    from: Option<State>,
    to: Option<State>,
    reason: Option<&str>,
    data: Option<&serde_json::Value>,
) -> Result<EventRecord> {
    let mut b = Batch::default();
    let ev = push_event(&mut b, request, at, actor, event, from, to, reason, data);
    w.run(b).await?;
    Ok(ev)
}

/// Adds the statement that records an event in a request's history to a batch.
/// The columns of a history line.
pub(crate) const EVENT_COLS: &str =
    "SELECT id, request_id, at, actor, event, from_state, to_state, reason, data FROM request_events";

pub(crate) type EventRow = (
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub(crate) fn event_record(r: EventRow) -> Result<EventRecord> {
    Ok(EventRecord {
        id: parse(&r.0, "event id")?,
        request: parse(&r.1, "request id")?,
        at: ts(r.2)?,
        actor: r.3,
        event: r.4,
        from_state: r.5.map(|s| parse(&s, "state")).transpose()?,
        to_state: r.6.map(|s| parse(&s, "state")).transpose()?,
        reason: r.7,
        data: r
            .8
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(StoreError::corrupt)?,
    })
}

#[allow(clippy::too_many_arguments)]
fn push_event(
    b: &mut Batch,
    request: RequestId,
    at: jiff::Timestamp,
    actor: &str,
    event: &str,
    from: Option<State>,
    to: Option<State>,
    reason: Option<&str>,
    data: Option<&serde_json::Value>,
) -> EventRecord {
    let id = EventId::new();
    b.push(
        "INSERT INTO request_events (id, request_id, at, actor, event, from_state, to_state, reason, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            id.to_string().into(),
            request.to_string().into(),
            ms(at).into(),
            actor.into(),
            event.into(),
            from.map(State::as_str).into(),
            to.map(State::as_str).into(),
            reason.into(),
            data.map(|d| d.to_string()).into(),
        ],
    );
    EventRecord {
        id,
        request,
        at,
        actor: actor.to_string(),
        event: event.to_string(),
        from_state: from,
        to_state: to,
        reason: reason.map(str::to_string),
        data: data.cloned(),
    }
}
