//! Clean-up notices over federation (issue #14 part 3, docs/federation.md §11) and the scoping
//! of notices and remediation statistics (part 2).
//!
//! - A notice run ([`Node::intel_issue`]) writes one or more `cleanup_notice` envelopes for
//!   every notice whose partner agency is served by a pinned peer, in the transaction that
//!   records the notice ([`outgoing_for_notices`]).
//! - The receiving node checks each one ([`check_incoming_notice`]) and keeps it, with its
//!   marking and issuer, for the addressed agency only ([`Node::intel_inbox`]).
//! - That agency's users (not auditors) answer per item ([`Node::intel_inbox_answer`]); each
//!   answer travels back as a `cleanup_status` envelope, which the issuing node checks
//!   ([`check_remote_answer`]), records, and applies exactly as local feedback
//!   ([`Node::intel_apply_remote_answers`]).
//! - Time-to-remediation per partner and classification ([`Node::intel_remediation`]).
//!
//! Scope: a user sees the notices its agency issued (operators, statistics readers) and the
//! notices addressed to its agency; a third agency's users on the same node see an empty list.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::record::Principal;
use liaison_core::{CountryCode, Pap, Role, Tlp};
use liaison_intel::model::{Classification, IndicatorKind, IndicatorValue};
use liaison_intel::time::UnixTime;
use liaison_intel::{
    CleanupState, FeedbackStatus, IncomingNotice, Interval, ItemStatus, Notice, PartnerId, RemoteAnswer,
};
use liaison_store::OutboxItem;
use liaison_wire::cleanup::{MAX_NOTE_CHARS, MAX_NOTICE_ITEMS, MAX_PART_ITEM_BYTES, MAX_WORD_BYTES, fit_word};
use liaison_wire::{CleanupItem, CleanupNoticePayload, CleanupStatusPayload, MessageId, PayloadType};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

fn instant(field: &str, t: UnixTime) -> Result<Timestamp> {
    Timestamp::from_second(t).map_err(|e| ServiceError::invalid(field, format!("{t}: {e}")))
}

fn item_status(s: ItemStatus) -> &'static str {
    match s {
        ItemStatus::New => "new",
        ItemStatus::StillActive => "still-active",
        ItemStatus::Reappeared => "reappeared",
    }
}

/// The word of an answer, as it travels.
pub fn answer_word(s: FeedbackStatus) -> &'static str {
    match s {
        FeedbackStatus::Remediated => "remediated",
        FeedbackStatus::NotFound => "not-found",
        FeedbackStatus::Disputed => "disputed",
        FeedbackStatus::FalsePositive => "false-positive",
    }
}

/// The peer node serving the agency with `code`, if the directory knows it and it is not
/// served here (`None`: local, or a partner without a node, which gets CSV/JSON exports).
async fn peer_of_code(node: &Node, code: &str) -> Result<Option<String>> {
    match node.store.agency_by_code(code).await {
        Ok(a) if a.code.eq_ignore_ascii_case(code) => Ok(node.store.agency_node(a.id).await?),
        Ok(_) | Err(liaison_store::StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The protocol version negotiated with the pinned peer `node_id`, if it is pinned and one
/// can be negotiated. A notice for a partner whose node speaks less than 4 is not queued: an
/// envelope it cannot read would hold up every later message on the link (docs/federation.md
/// §3.4) until that node is upgraded; the partner gets the CSV/JSON export meanwhile. A node
/// that speaks 4 reads notices but not their PAP (added in 5): it gets a notice that lets it
/// act (`PAP:GREEN`, `PAP:CLEAR`) without the field, which tells it nothing it would not
/// assume; a stricter PAP cannot be dropped, so such a notice is exported instead.
async fn peer_version(node: &Node, node_id: &str) -> Result<Option<u32>> {
    for p in node.store.fed_peers().await? {
        if p.node_id == node_id {
            let pinned: liaison_wire::PinnedPeer = serde_json::from_str(&p.pinned).map_err(internal)?;
            return Ok(pinned.negotiated_version().ok());
        }
    }
    Ok(None)
}

/// How a notice's PAP travels to a peer speaking `version` (at least 4): `Some(Some(pap))`
/// from version 5; `Some(None)`, left out, for a version-4 peer when the PAP lets the partner
/// act (what such a node assumes of every notice); `None` when it cannot travel (a stricter
/// PAP to a version-4 peer: the notice is exported instead).
fn pap_for_peer(pap: Pap, version: u32) -> Option<Option<Pap>> {
    let pap_from =
        liaison_wire::payload_min_version(PayloadType::CleanupNotice, &serde_json::json!({ "pap": pap.as_str() }));
    if version >= pap_from {
        Some(Some(pap))
    } else if pap.allows_active() {
        Some(None)
    } else {
        None
    }
}

/// The `cleanup_notice` messages for `notices` issued by `issuer`: each notice whose partner
/// is served by a peer node, in parts of at most [`MAX_NOTICE_ITEMS`] items and
/// [`MAX_PART_ITEM_BYTES`] bytes of items. Descriptive texts are fitted to the protocol's
/// bounds; an item whose value cannot travel (longer than 8 KiB) is left out, logged, and stays
/// in the issuing node's CSV/JSON export.
pub(crate) async fn outgoing_for_notices(
    node: &Node,
    state: &CleanupState,
    notices: &[Notice],
    issuer: &str,
    at: UnixTime,
) -> Result<Vec<OutboxItem>> {
    let mut out = Vec::new();
    // The item a partner last answered "remediated", per indicator (for reappearances).
    let mut remediated: HashMap<u32, Uuid> = HashMap::new();
    for f in &state.feedback {
        if f.status == FeedbackStatus::Remediated {
            remediated.insert(f.indicator, f.item_id);
        }
    }
    let issued_at = instant("issued_at", at)?;
    for n in notices {
        let Some(peer) = peer_of_code(node, n.partner.as_str()).await? else {
            continue;
        };
        let notices_from = liaison_wire::payload_min_version(PayloadType::CleanupNotice, &serde_json::Value::Null);
        let version = peer_version(node, &peer).await?.unwrap_or(0);
        if version < notices_from {
            tracing::warn!(notice = %n.id, partner = %n.partner, peer = %peer, "the partner's node speaks a protocol older than 4 (or is not pinned): the notice is not sent; export it as CSV or JSON");
            continue;
        }
        let Some(pap) = pap_for_peer(n.pap, version) else {
            tracing::warn!(notice = %n.id, partner = %n.partner, peer = %peer, pap = %n.pap, "the partner's node speaks protocol 4, which cannot carry this notice's PAP: the notice is not sent; export it as CSV or JSON");
            continue;
        };
        let mut items = Vec::with_capacity(n.items.len());
        for it in &n.items {
            if !CleanupItem::value_fits(&it.value) {
                tracing::warn!(notice = %n.id, item = %it.item_id, bytes = it.value.len(), "a notice item's value is too long to send; it stays in the exports");
                continue;
            }
            let reappeared = it.status == ItemStatus::Reappeared;
            let ind = state.indicators.get(it.indicator as usize);
            items.push(CleanupItem {
                item_id: it.item_id,
                kind: it.kind.as_str().to_string(),
                value: it.value.clone(),
                status: item_status(it.status).to_string(),
                classification: it.classification.as_str().to_string(),
                malware: it
                    .malware
                    .as_deref()
                    .map(|m| fit_word(m, MAX_WORD_BYTES))
                    .filter(|m| !m.is_empty()),
                first_seen: instant("first_seen", it.first_seen)?,
                last_seen: instant("last_seen", it.last_seen)?,
                sightings: it.sightings.min(liaison_wire::jcs::MAX_SAFE_INTEGER),
                port: it.port,
                source_country: it.source_country.map(|c| c.as_str().to_string()),
                source_asn: it.source_asn,
                as_org: it
                    .as_org
                    .as_deref()
                    .map(|m| fit_word(m, MAX_WORD_BYTES))
                    .filter(|m| !m.is_empty()),
                victim_count: it.victim_count,
                tlp: it.tlp,
                previous_item: if reappeared {
                    remediated.get(&it.indicator).copied()
                } else {
                    None
                },
                remediated_at: match (reappeared, ind.and_then(|i| i.remediated_at)) {
                    (true, Some(t)) => Some(instant("remediated_at", t)?),
                    _ => None,
                },
            });
        }
        if items.is_empty() {
            continue;
        }
        let tlp = items.iter().map(|i| i.tlp).max().unwrap_or(Tlp::Clear).max(n.tlp);
        let chunks = split_parts(items)?;
        let parts = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let p = CleanupNoticePayload {
                notice_id: n.id.0,
                issuer: issuer.to_string(),
                partner: n.partner.as_str().to_string(),
                interval_start: instant("interval_start", n.interval.start)?,
                interval_end: instant("interval_end", n.interval.end)?,
                issued_at,
                tlp,
                pap,
                part: (i + 1) as u32,
                parts: parts as u32,
                items: chunk,
            };
            let payload = serde_json::to_value(p).map_err(internal)?;
            liaison_wire::jcs::check_protocol_numbers(&payload).map_err(internal)?;
            out.push(OutboxItem {
                message_id: MessageId::new().to_string(),
                recipient: peer.clone(),
                payload_type: PayloadType::CleanupNotice.as_str().to_string(),
                payload,
                created_at: issued_at,
            });
        }
    }
    Ok(out)
}

/// Items in parts of at most [`MAX_NOTICE_ITEMS`] items and [`MAX_PART_ITEM_BYTES`] bytes of
/// item JSON, in order.
pub fn split_parts(items: Vec<CleanupItem>) -> Result<Vec<Vec<CleanupItem>>> {
    let mut chunks: Vec<Vec<CleanupItem>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = serde_json::to_vec(&item).map_err(internal)?.len() + 1;
        match chunks.last_mut() {
            Some(c) if c.len() < MAX_NOTICE_ITEMS && bytes + size <= MAX_PART_ITEM_BYTES => {
                bytes += size;
                c.push(item);
            }
            _ => {
                bytes = size;
                chunks.push(vec![item]);
            }
        }
    }
    Ok(chunks)
}

/// Checks a received `cleanup_notice` (every field hostile): the addressed agency is served
/// here, the issuer is served by the sending node, sizes and words are valid. `Err`: the
/// envelope is recorded as not applied.
pub(crate) async fn check_incoming_notice(
    node: &Node,
    sender: &str,
    p: CleanupNoticePayload,
    now: Timestamp,
) -> Result<IncomingNotice> {
    p.check().map_err(|e| ServiceError::invalid("payload", e))?;
    let partner = match node.store.agency_by_code(&p.partner).await {
        Ok(a) if a.code.eq_ignore_ascii_case(&p.partner) => a,
        Ok(_) | Err(liaison_store::StoreError::NotFound(_)) => {
            return Err(ServiceError::Forbidden(format!(
                "the addressed agency '{}' is not known here",
                p.partner
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if !node.store.agency_is_local(partner.id).await? {
        return Err(ServiceError::Forbidden(format!(
            "the addressed agency {} is not served by this node",
            partner.code
        )));
    }
    if peer_of_code(node, &p.issuer).await?.as_deref() != Some(sender) {
        return Err(ServiceError::Forbidden(format!(
            "the issuing agency '{}' is not served by {sender}",
            p.issuer
        )));
    }
    let mut items = Vec::with_capacity(p.items.len());
    for (i, it) in p.items.into_iter().enumerate() {
        let f = |name: &str| format!("items/{i}/{name}");
        let kind: IndicatorKind = it
            .kind
            .parse()
            .map_err(|e: liaison_intel::model::UnknownWord| ServiceError::invalid(&f("kind"), e.to_string()))?;
        IndicatorValue::parse(kind, &it.value)
            .map_err(|e| ServiceError::invalid(&f("value"), format!("not a {kind}: {e}")))?;
        let class: Classification = it
            .classification
            .parse()
            .map_err(|e: liaison_intel::model::UnknownWord| {
                ServiceError::invalid(&f("classification"), e.to_string())
            })?;
        if let Some(c) = &it.source_country {
            CountryCode::parse(c)
                .map_err(|_| ServiceError::invalid(&f("source_country"), format!("'{c}' is not an ISO 3166 code")))?;
        }
        let detail = serde_json::json!({
            "malware": it.malware,
            "first_seen": it.first_seen,
            "last_seen": it.last_seen,
            "sightings": it.sightings,
            "port": it.port,
            "source_country": it.source_country,
            "source_asn": it.source_asn,
            "as_org": it.as_org,
            "victim_count": it.victim_count,
            "previous_item": it.previous_item,
            "remediated_at": it.remediated_at,
        });
        items.push(liaison_intel::IncomingItem {
            item_id: it.item_id,
            kind: kind.as_str().to_string(),
            value: it.value,
            status: it.status,
            classification: class.as_str().to_string(),
            tlp: it.tlp,
            detail,
            answer: None,
            note: None,
            answered_at: None,
            answered_by: None,
        });
    }
    Ok(IncomingNotice {
        sender: sender.to_string(),
        id: p.notice_id,
        issuer: p.issuer,
        partner: partner.code,
        interval: Interval {
            start: p.interval_start.as_second(),
            end: p.interval_end.as_second(),
        },
        issued_at: p.issued_at.as_second(),
        tlp: p.tlp,
        pap: p.pap,
        parts: p.parts,
        received_at: now.as_second(),
        items,
    })
}

/// Checks a received `cleanup_status`: the item is on a notice this node issued, for the
/// answering agency, and that agency is served by the sending node. `Err`: the envelope is
/// recorded as not applied and nothing changes.
pub(crate) async fn check_remote_answer(
    node: &Node,
    sender: &str,
    message_id: &str,
    p: CleanupStatusPayload,
    now: Timestamp,
) -> Result<RemoteAnswer> {
    p.check().map_err(|e| ServiceError::invalid("payload", e))?;
    let owner = match node.store.intel_item_owner(p.item_id).await {
        Ok(o) => o,
        Err(liaison_store::StoreError::NotFound(_)) => {
            return Err(ServiceError::Forbidden(format!(
                "notice item {} was not issued by this node",
                p.item_id
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if owner.notice.0 != p.notice_id || !owner.partner.as_str().eq_ignore_ascii_case(&p.partner) {
        return Err(ServiceError::Forbidden(format!(
            "notice item {} is not on notice {} for {}",
            p.item_id, p.notice_id, p.partner
        )));
    }
    if peer_of_code(node, owner.partner.as_str()).await?.as_deref() != Some(sender) {
        return Err(ServiceError::Forbidden(format!(
            "notice item {} was sent to {}, which {sender} does not serve",
            p.item_id, owner.partner
        )));
    }
    let status: FeedbackStatus = p
        .status
        .parse()
        .map_err(|e: liaison_intel::model::UnknownWord| ServiceError::invalid("status", e.to_string()))?;
    Ok(RemoteAnswer {
        message_id: message_id.to_string(),
        sender: sender.to_string(),
        item_id: p.item_id,
        partner: owner.partner,
        status,
        note: p.note,
        actor: format!("{sender}:{}", p.actor),
        // A peer does not choose a time in this node's future.
        at: p.at.min(now).as_second(),
    })
}

/// What an answer did.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerReport {
    pub item_id: Uuid,
    pub notice_id: Uuid,
    pub status: FeedbackStatus,
    /// The issuing agency and the node the answer travels to.
    pub issuer: String,
    pub sent_to: String,
}

/// Time-to-remediation and answers for one partner and classification.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RemediationRow {
    pub partner: String,
    pub classification: String,
    /// Indicators notified to the partner.
    pub notified: u64,
    /// Indicators the partner reported remediated (and not seen again since).
    pub remediated: u64,
    pub reappeared: u64,
    pub not_found: u64,
    pub disputed: u64,
    pub false_positive: u64,
    /// Seconds from first notice to "remediated": median, mean and the slowest.
    pub median_ttr_secs: Option<i64>,
    pub mean_ttr_secs: Option<f64>,
    pub max_ttr_secs: Option<i64>,
}

/// Time-to-remediation as one user may see it.
#[derive(Debug, Clone, Serialize)]
pub struct RemediationReport {
    /// The partners (agency codes) in the caller's scope.
    pub partners: Vec<String>,
    pub rows: Vec<RemediationRow>,
}

/// Rows per (partner, classification) over the indicators of `partners`.
pub fn remediation_rows(state: &CleanupState, partners: &[String]) -> Vec<RemediationRow> {
    let wanted = |p: &PartnerId| partners.iter().any(|w| w.eq_ignore_ascii_case(p.as_str()));
    let mut out: BTreeMap<(String, String), (RemediationRow, Vec<i64>)> = BTreeMap::new();
    let key = |p: &PartnerId, c: Classification| (p.as_str().to_string(), c.as_str().to_string());
    let blank = |(p, c): &(String, String)| RemediationRow {
        partner: p.clone(),
        classification: c.clone(),
        ..Default::default()
    };
    for ind in &state.indicators {
        let (Some(p), Some(first)) = (&ind.partner, ind.first_notified) else {
            continue;
        };
        if !wanted(p) {
            continue;
        }
        let k = key(p, ind.classification);
        let e = out.entry(k.clone()).or_insert_with(|| (blank(&k), Vec::new()));
        e.0.notified += 1;
        if ind.reappearances > 0 {
            e.0.reappeared += 1;
        }
        if let Some(r) = ind.remediated_at {
            e.0.remediated += 1;
            e.1.push((r - first).max(0));
        }
    }
    for f in &state.feedback {
        if !wanted(&f.partner) {
            continue;
        }
        let Some(ind) = state.indicators.get(f.indicator as usize) else {
            continue;
        };
        let k = key(&f.partner, ind.classification);
        let e = out.entry(k.clone()).or_insert_with(|| (blank(&k), Vec::new()));
        match f.status {
            FeedbackStatus::Remediated => {}
            FeedbackStatus::NotFound => e.0.not_found += 1,
            FeedbackStatus::Disputed => e.0.disputed += 1,
            FeedbackStatus::FalsePositive => e.0.false_positive += 1,
        }
    }
    out.into_values()
        .map(|(mut r, mut ttr)| {
            if let Some(s) = liaison_intel::aggregate::TtrSummary::of(&mut ttr) {
                r.median_ttr_secs = Some(s.median);
                r.mean_ttr_secs = Some(s.mean);
                r.max_ttr_secs = Some(s.max);
            }
            r
        })
        .collect()
}

/// Operators and statistics readers: see what their agency issued.
fn reads_issued(role: Role) -> bool {
    crate::intel::may_operate(role) || role.may_read_statistics()
}

/// A notice the caller's agency issued, with the partner's latest answer per answered item
/// ([`Node::intel_issued`]).
#[derive(Debug, Clone)]
pub struct IssuedNotice {
    pub notice: liaison_intel::StoredNotice,
    /// Item id → the latest answer: its status word (`remediated`, `not-found`, …), when it
    /// was given (Unix seconds) and its note.
    pub answers: std::collections::HashMap<Uuid, (String, i64, Option<String>)>,
}

impl Node {
    /// Notices the caller's agency issued, newest first, at most `limit`, each with its
    /// partner's answers (analysts, supervisors, auditors and admins: those who read what
    /// their agency issued). Notices issued by trusted tooling without an issuer are not the
    /// agency's and are left out.
    pub async fn intel_issued(&self, p: &Principal, limit: usize) -> Result<Vec<IssuedNotice>> {
        require(reads_issued(p.role), "reading the notices your agency issued", p)?;
        let own = self.agency_code_of(p).await?;
        let mut issued: Vec<liaison_intel::StoredNotice> = self
            .store
            .intel_notices_visible(None, Some(&own))
            .await?
            .into_iter()
            .filter(|n| n.issuer.as_deref().is_some_and(|i| i.eq_ignore_ascii_case(&own)))
            .collect();
        issued.sort_by_key(|n| std::cmp::Reverse(n.issued_at));
        issued.truncate(limit);
        let mut out = Vec::with_capacity(issued.len());
        for notice in issued {
            let answers = self.store.intel_notice_answers(notice.notice.id).await?;
            out.push(IssuedNotice { notice, answers });
        }
        Ok(out)
    }

    /// The agency code of the principal.
    pub(crate) async fn agency_code_of(&self, p: &Principal) -> Result<String> {
        Ok(self.store.agency(p.agency).await?.code)
    }

    /// Notices addressed to the caller's agency by other nodes, newest first. Any role that
    /// reads requests; other agencies' notices are never listed (a user of an agency that was
    /// sent nothing gets an empty list).
    pub async fn intel_inbox(&self, p: &Principal) -> Result<Vec<IncomingNotice>> {
        require(p.role.may_read_requests(), "reading incoming clean-up notices", p)?;
        let own = self.agency_code_of(p).await?;
        Ok(self.store.intel_inbox(Some(&own)).await?)
    }

    /// The caller's agency answers one item of a notice it received; the answer travels back
    /// to the issuing node as a `cleanup_status` envelope (written in the same transaction).
    /// Auditors read but do not answer.
    pub async fn intel_inbox_answer(
        &self,
        p: &Principal,
        item: Uuid,
        status: FeedbackStatus,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<AnswerReport> {
        require(
            p.role.may_read_requests() && p.role != Role::Auditor,
            "answering clean-up notices",
            p,
        )?;
        let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        if let Some(n) = &note {
            let chars = n.chars().count();
            if chars > MAX_NOTE_CHARS {
                return Err(ServiceError::invalid(
                    "note",
                    format!("{chars} characters; at most {MAX_NOTE_CHARS}"),
                ));
            }
            if n.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(ServiceError::invalid("note", "control characters are not allowed"));
            }
        }
        let own = self.agency_code_of(p).await?;
        let refs: Vec<_> = self
            .store
            .intel_inbox_item(item)
            .await?
            .into_iter()
            .filter(|r| r.partner.eq_ignore_ascii_case(&own))
            .collect();
        let r = match refs.as_slice() {
            [] => return Err(ServiceError::NotFound(format!("incoming notice item {item}"))),
            [r] => r.clone(),
            _ => {
                return Err(ServiceError::Conflict(format!(
                    "item {item} was sent by {} nodes; answer it through each notice's issuer",
                    refs.len()
                )));
            }
        };
        let payload = CleanupStatusPayload {
            notice_id: r.notice_id,
            item_id: item,
            partner: own.clone(),
            status: answer_word(status).to_string(),
            note: note.clone(),
            at: now,
            actor: p.username.clone(),
        };
        payload.check().map_err(|e| ServiceError::invalid("answer", e))?;
        let payload = serde_json::to_value(payload).map_err(internal)?;
        let out = OutboxItem {
            message_id: MessageId::new().to_string(),
            recipient: r.sender.clone(),
            payload_type: PayloadType::CleanupStatus.as_str().to_string(),
            payload,
            created_at: now,
        };
        self.store
            .intel_inbox_answer(&r, status, note.as_deref(), &p.username, now.as_second(), out)
            .await?;
        Ok(AnswerReport {
            item_id: item,
            notice_id: r.notice_id,
            status,
            issuer: r.issuer,
            sent_to: r.sender,
        })
    }

    /// Applies the answers partners' nodes sent (recorded when they were received) as
    /// feedback, exactly as [`Node::intel_feedback_trusted`] does; each is applied once.
    /// Returns how many were applied.
    /// Holds the intel guard ([`crate::intel_ingest`]): never interleaves with an ingest.
    pub async fn intel_apply_remote_answers(&self) -> Result<usize> {
        let pending = self.store.intel_remote_pending(500).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let guard = self.intel_guard_wait().await?;
        let out = self.intel_apply_remote_guarded(pending).await;
        guard.release().await;
        out
    }

    async fn intel_apply_remote_guarded(&self, pending: Vec<liaison_intel::RemoteAnswer>) -> Result<usize> {
        let now = Timestamp::now().as_second();
        let mut tx = self.store.intel_begin().await?;
        let mut state = tx.load().await?;
        let mut applied = 0;
        for a in pending {
            // Claimed inside the write transaction: another process applying the same answer
            // waits for this one and then finds it claimed.
            let claimed = tx.claim_remote_answer(&a.message_id).await?;
            if !claimed {
                continue;
            }
            let note = Some(match &a.note {
                Some(n) => format!("{} ({})", n, a.actor),
                None => format!("({})", a.actor),
            });
            match crate::intel::apply(&mut state, &a.partner, a.item_id, a.status, note, a.at) {
                Ok(()) => {
                    let first = state.feedback.len() - 1;
                    let rec = state.feedback[first].clone();
                    tx.save_indicators(&state, &[rec.indicator]).await?;
                    tx.save_feedback(first, std::slice::from_ref(&rec)).await?;
                    tx.mark_remote_answer(&a.message_id, "applied", now).await?;
                    applied += 1;
                }
                Err(e) => {
                    tracing::warn!(message_id = %a.message_id, sender = %a.sender, error = %e, "a partner's answer could not be applied");
                    tx.mark_remote_answer(&a.message_id, &format!("not applied: {e}"), now)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Time-to-remediation per partner and classification, for the partners in the caller's
    /// scope: its agency's own notices (as a partner), and — for analysts, supervisors,
    /// auditors and admins — the partners of the notices its agency issued. A third agency's
    /// users get an empty report.
    pub async fn intel_remediation(&self, p: &Principal) -> Result<RemediationReport> {
        require(
            p.role.may_read_statistics() || p.role.may_read_requests(),
            "reading time-to-remediation",
            p,
        )?;
        let own = self.agency_code_of(p).await?;
        let mut partners = vec![own.clone()];
        if reads_issued(p.role) {
            partners.extend(self.store.intel_partners_of_issuer(&own).await?);
        }
        partners.sort();
        partners.dedup();
        // A partner's users see only their own row, and only if they were sent something.
        let state = self.store.intel_load().await?;
        let visible = self.store.intel_notices_visible(None, Some(&own)).await?;
        partners.retain(|x| {
            visible
                .iter()
                .any(|n| n.notice.partner.as_str().eq_ignore_ascii_case(x))
        });
        Ok(RemediationReport {
            rows: remediation_rows(&state, &partners),
            partners,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_strict_pap_never_travels_without_its_field() {
        for pap in Pap::ALL {
            assert_eq!(pap_for_peer(pap, 5), Some(Some(pap)), "{pap}");
        }
        assert_eq!(pap_for_peer(Pap::Green, 4), Some(None));
        assert_eq!(pap_for_peer(Pap::Clear, 4), Some(None));
        assert_eq!(pap_for_peer(Pap::Amber, 4), None);
        assert_eq!(pap_for_peer(Pap::Red, 4), None);
    }

    fn item(i: u128, value_len: usize) -> CleanupItem {
        let t = Timestamp::from_second(1_790_208_000).unwrap();
        CleanupItem {
            item_id: Uuid::from_u128(i),
            kind: "url".into(),
            value: format!("http://example.org/{}", "a".repeat(value_len)),
            status: "new".into(),
            classification: "phishing".into(),
            malware: None,
            first_seen: t,
            last_seen: t,
            sightings: 1,
            port: None,
            source_country: None,
            source_asn: None,
            as_org: None,
            victim_count: None,
            tlp: Tlp::Green,
            previous_item: None,
            remediated_at: None,
        }
    }

    /// A notice is split by item count and by bytes, in order, and every part fits the body
    /// limit of one envelope.
    #[test]
    fn large_notices_are_split_into_bounded_parts() {
        let small: Vec<_> = (0..600).map(|i| item(i, 10)).collect();
        let parts = split_parts(small).unwrap();
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [250, 250, 100]);
        assert_eq!(parts[1][0].item_id, Uuid::from_u128(250));

        let big: Vec<_> = (0..200).map(|i| item(i, 8000)).collect();
        let parts = split_parts(big).unwrap();
        assert!(parts.len() >= 4, "{}", parts.len());
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 200);
        for p in &parts {
            let bytes = serde_json::to_vec(p).unwrap().len();
            assert!(bytes <= MAX_PART_ITEM_BYTES + p.len(), "{bytes}");
            assert!(bytes < 1 << 20);
        }
    }
}
