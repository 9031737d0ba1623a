//! Receiving envelopes (docs/federation.md §3, §7): each envelope verified completely before
//! anything is written; the accepted ones applied and recorded with their receipts in one
//! transaction. The HTTP endpoints that carry them are the server's.

use super::Federation;
use super::apply::{ApplyError, Planner};
use jiff::Timestamp;
use liaison_core::record::InboxRow;
use liaison_store::{Effect, IncomingRecord, LeafRecord};
use liaison_wire::{
    Envelope, LedgerEntry, LinkOrder, NodeId, PayloadType, PeerSet, Receipt, Rejection, VerifyContext, link_order,
};
use std::collections::HashSet;

/// Response header carrying the header of the accepted copy when a duplicate is answered
/// with the stored receipt (the copy the receipt acknowledges; see §3.3).
pub const ACCEPTED_HEADER: &str = "liaison-accepted-envelope";

/// The HTTP status a rejection is answered with.
pub fn rejection_status(r: &Rejection) -> u16 {
    match r {
        Rejection::Malformed { .. } | Rejection::UnsupportedVersion(_) | Rejection::StaleOrFuture { .. } => 400,
        Rejection::UnknownSender(_)
        | Rejection::UnknownKey { .. }
        | Rejection::KeyNotValidAt { .. }
        | Rejection::BadSignature { .. } => 401,
        Rejection::WrongRecipient { .. } => 421,
        Rejection::PayloadHashMismatch => 422,
        Rejection::Replay(_) | Rejection::ReceiptMismatch { .. } => 409,
    }
}

/// Why a request of envelopes was not taken now; nothing of it was applied (the sender retries).
#[derive(Debug, thiserror::Error)]
pub enum NotNow {
    /// The database was busy or another request raced this one.
    #[error("busy")]
    Busy,
    /// Something on this node failed (logged).
    #[error("internal: {0}")]
    Internal(String),
}

/// Most rejections logged per window; the rest are counted and reported when the window ends.
const REJECTIONS_LOGGED: u32 = 20;
const REJECTION_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// How many rejections were logged in the current window, and how many were not.
#[derive(Debug)]
pub(crate) struct RejectionBudget {
    window: std::time::Instant,
    logged: u32,
    suppressed: u64,
}

impl Default for RejectionBudget {
    fn default() -> Self {
        RejectionBudget {
            window: std::time::Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }
}

/// Logs a rejected envelope, as structured fields whose text is escaped (a peer's or an
/// attacker's words cannot start a log line of their own), at most [`REJECTIONS_LOGGED`] per
/// [`REJECTION_WINDOW`]: anyone who reaches the port can send rejections as fast as the
/// network allows, and the log must not fill the disk.
fn log_rejection(fed: &Federation, rej: &Rejection, sender: Option<&str>, message_id: Option<&str>) {
    if rejection_budget(fed) {
        tracing::warn!(node = %fed.node_id(), code = rej.code(), sender = ?sender, message_id = ?message_id, reason = ?rej.to_string(), "envelope rejected");
    }
}

/// Whether one more rejection may be logged now (at most [`REJECTIONS_LOGGED`] per
/// [`REJECTION_WINDOW`], for envelopes and every other refused federation input alike); the
/// number left out is reported once per window.
pub(crate) fn rejection_budget(fed: &Federation) -> bool {
    let (log, suppressed) = match fed.inner.rejections.lock() {
        Ok(mut b) => {
            let mut reported = 0;
            if b.window.elapsed() >= REJECTION_WINDOW {
                reported = std::mem::take(&mut b.suppressed);
                b.window = std::time::Instant::now();
                b.logged = 0;
            }
            if b.logged < REJECTIONS_LOGGED {
                b.logged += 1;
                (true, reported)
            } else {
                b.suppressed += 1;
                (false, reported)
            }
        }
        Err(_) => (true, 0),
    };
    if suppressed > 0 {
        tracing::warn!(node = %fed.node_id(), suppressed, window_secs = REJECTION_WINDOW.as_secs(), "envelope rejections not logged (too many)");
    }
    log
}

fn internal(fed: &Federation, e: impl std::fmt::Display) -> NotNow {
    tracing::error!(node = %fed.node_id(), error = %e, "receiving envelopes failed");
    NotNow::Internal(e.to_string())
}

/// Most envelopes one batch may carry (docs/federation.md §7.1).
pub const MAX_BATCH: usize = 256;
/// Largest batch request body.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// What became of one envelope of a request (single or batch).
pub enum Outcome {
    /// Accepted now: the receipt just issued and committed.
    Accepted { receipt: String },
    /// Accepted before (same `message_id`, or its `link_seq` was already applied): the
    /// stored receipt and the header of the copy it acknowledges.
    Duplicate { receipt: String, accepted_header: String },
    /// Refused; nothing of it was applied.
    Rejected {
        status: u16,
        code: &'static str,
        detail: String,
    },
    /// `link_seq` is beyond the next one expected on the link.
    OutOfOrder { expected: u64 },
    /// Not looked at, because an earlier envelope of the batch was refused or was a key
    /// rotation.
    Skipped,
}

impl Outcome {
    fn rejected(r: &Rejection) -> Self {
        Outcome::Rejected {
            status: rejection_status(r),
            code: r.code(),
            detail: r.to_string(),
        }
    }

    fn duplicate(row: &InboxRow) -> Self {
        Outcome::Duplicate {
            receipt: row.receipt.clone(),
            accepted_header: row.header.clone(),
        }
    }
}

/// Verifies, in order, each envelope of one request, applies the accepted ones and records
/// them with their receipts in ONE transaction, and says what became of each. Processing
/// stops at the first envelope that is neither accepted nor a duplicate (and after a key
/// rotation): the rest are `Skipped`. `Err`: nothing was applied (try again later).
pub async fn receive(fed: &Federation, items: Vec<Result<Envelope, Rejection>>) -> Result<Vec<Outcome>, NotNow> {
    // One request at a time: link order and replay checks see every earlier commit.
    let _turn = fed.inner.incoming.lock().await;
    let now = Timestamp::now();
    let store = &fed.inner.node.store;
    let mut peers = fed.peers().map_err(|e| internal(fed, e))?;
    let mut reloaded = false;
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(items.len());
    let mut accepted: Vec<(usize, IncomingRecord)> = Vec::new();
    let mut batch_sender: Option<NodeId> = None;
    let mut next_seq: Option<u64> = None;
    let mut planner = Planner::default();
    let mut stop = false;
    // Which of the batch's messages were accepted before (one look-up for the batch).
    let ids: Vec<String> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|e| e.header.message_id.to_string())
        .collect();
    let mut seen_before: std::collections::HashMap<String, InboxRow> = store
        .fed_inbox_many(&ids)
        .await
        .map_err(|e| internal(fed, e))?
        .into_iter()
        .map(|r| (r.message_id.clone(), r))
        .collect();
    for item in items {
        if stop {
            outcomes.push(Outcome::Skipped);
            continue;
        }
        let env = match item {
            Ok(e) => e,
            Err(rej) => {
                log_rejection(fed, &rej, None, None);
                outcomes.push(Outcome::rejected(&rej));
                stop = true;
                continue;
            }
        };
        let mid = env.header.message_id.to_string();
        let seen = seen_before.remove(&mid);
        let mut replay = HashSet::new();
        if seen.is_some() || accepted.iter().any(|(_, r)| r.message_id == mid) {
            replay.insert(env.header.message_id);
        }
        let verify = |peers: &PeerSet| {
            env.verify(
                &VerifyContext::new(&fed.inner.node_id, peers, now, &replay).with_max_skew(fed.inner.settings.max_skew),
            )
        };
        let mut result = verify(&peers);
        if !reloaded && matches!(result, Err(Rejection::UnknownSender(_) | Rejection::UnknownKey { .. })) {
            // The peer may have been pinned (or updated) by `liaison peer add` since we loaded.
            reloaded = true;
            if fed.reload_peers().await.is_ok()
                && let Ok(p) = fed.peers()
            {
                peers = p;
                result = verify(&peers);
            }
        }
        let verified = match result {
            Ok(v) => v,
            Err(Rejection::Replay(_)) => {
                match seen {
                    Some(row) => {
                        tracing::warn!(node = %fed.node_id(), code = "replay", message_id = %mid, sender = %env.header.sender, "duplicate envelope not applied again; answered with the stored receipt");
                        outcomes.push(Outcome::duplicate(&row));
                    }
                    None => {
                        // The same message twice in one batch.
                        let rej = Rejection::Malformed {
                            field: "envelopes",
                            reason: format!("message {mid} appears twice in the batch"),
                        };
                        outcomes.push(Outcome::rejected(&rej));
                        stop = true;
                    }
                }
                continue;
            }
            Err(rej) => {
                log_rejection(fed, &rej, Some(env.header.sender.as_str()), Some(&mid));
                outcomes.push(Outcome::rejected(&rej));
                stop = true;
                continue;
            }
        };
        match &batch_sender {
            None => batch_sender = Some(verified.sender.clone()),
            Some(s) if *s != verified.sender => {
                let rej = Rejection::Malformed {
                    field: "envelopes",
                    reason: format!("a batch carries one link; {} is not {s}", verified.sender),
                };
                log_rejection(fed, &rej, None, Some(&mid));
                outcomes.push(Outcome::rejected(&rej));
                stop = true;
                continue;
            }
            Some(_) => {}
        }
        let sender = verified.sender.to_string();
        let expected = match next_seq {
            Some(n) => n,
            None => store.fed_last_applied(&sender).await.map_err(|e| internal(fed, e))? as u64 + 1,
        };
        next_seq = Some(expected);
        match link_order(expected - 1, verified.link_seq) {
            LinkOrder::Next => {}
            LinkOrder::AlreadyApplied => {
                match store.fed_inbox_by_seq(&sender, verified.link_seq as i64).await {
                    Ok(Some(row)) if row.message_id != mid => {
                        // The sender used this number for another message: its counters are
                        // behind (restored from a backup). Never applied, never overwritten:
                        // refused with a code the sender answers by recovering the link.
                        tracing::error!(node = %fed.node_id(), code = super::worker::SEQ_REUSED, sender = %sender,
                            link_seq = verified.link_seq, message_id = %mid, applied_message_id = %row.message_id,
                            "LINK SEQUENCE REUSED: the peer sent another message under a link number already applied (restored from a backup?); refused, the peer must recover the link");
                        outcomes.push(Outcome::Rejected {
                            status: 409,
                            code: super::worker::SEQ_REUSED,
                            detail: format!(
                                "link_seq {} was applied for message {}, not {mid}; recover the link ({})",
                                verified.link_seq,
                                row.message_id,
                                super::recovery::PATH
                            ),
                        });
                        stop = true;
                    }
                    Ok(Some(row)) => {
                        tracing::warn!(node = %fed.node_id(), code = "replay", message_id = %mid, sender = %sender, link_seq = verified.link_seq, "duplicate envelope not applied again; answered with the stored receipt");
                        outcomes.push(Outcome::duplicate(&row));
                    }
                    Ok(None) => return Err(internal(fed, "applied link_seq without inbox row")),
                    Err(e) => return Err(internal(fed, e)),
                }
                continue;
            }
            LinkOrder::Gap { expected } => {
                tracing::info!(node = %fed.node_id(), sender = %sender, got = verified.link_seq, expected, "envelope out of order");
                outcomes.push(Outcome::OutOfOrder { expected });
                stop = true;
                continue;
            }
        }
        let receipt = Receipt::issue(&verified, now, &fed.inner.key).map_err(|e| internal(fed, e))?;
        let mut record = incoming_record(&env, &receipt, now).map_err(|e| internal(fed, e))?;
        match planner.plan(fed, &env).await {
            Ok(effect) => record.effect = effect,
            Err(ApplyError::Transient(e)) => {
                tracing::info!(node = %fed.node_id(), message_id = %mid, error = %e, "envelope not applied yet (busy); the sender will retry");
                return Err(NotNow::Busy);
            }
            Err(ApplyError::Permanent(reason)) => record.outcome = format!("not applied: {reason}"),
        }
        next_seq = Some(expected + 1);
        if env.header.payload_type == PayloadType::KeyRotation {
            // Later envelopes may be signed with the new key: the sender resends them.
            stop = true;
        }
        outcomes.push(Outcome::Accepted {
            receipt: record.receipt.clone(),
        });
        accepted.push((outcomes.len() - 1, record));
    }
    if accepted.is_empty() {
        return Ok(outcomes);
    }
    let records: Vec<IncomingRecord> = accepted.iter().map(|(_, r)| r.clone()).collect();
    let recorded = match store.fed_receive(&records).await {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(node = %fed.node_id(), error = %e, "envelopes not applied yet (busy or raced); the sender will retry");
            return Err(NotNow::Busy);
        }
    };
    if let Err(e) = fed.sync_log().await {
        tracing::error!(node = %fed.node_id(), error = %e, "ledger sync failed");
    }
    let mut created = Vec::new();
    let mut answers = false;
    for (rec, outcome) in records.iter().zip(&recorded) {
        answers |= outcome == "applied" && matches!(rec.effect, Some(Effect::CleanupStatus(_)));
        if outcome == "applied" {
            tracing::debug!(node = %fed.node_id(), message_id = %rec.message_id, sender = %rec.sender, link_seq = rec.link_seq, "envelope applied");
            if let Some(Effect::Insert { request, .. }) = &rec.effect {
                created.push(request.id);
            }
        } else {
            tracing::warn!(node = %fed.node_id(), message_id = %rec.message_id, sender = %rec.sender, reason = ?outcome, "envelope accepted but its content cannot be applied; recorded as received");
        }
    }
    drop(_turn);
    if answers {
        // Partners' answers are applied as feedback in the clean-up state's own transaction
        // (they are recorded; the delivery worker retries any left over).
        if let Err(e) = fed.inner.node.intel_apply_remote_answers().await {
            tracing::warn!(node = %fed.node_id(), error = %e, "cannot apply partners' answers yet; will retry");
        }
    }
    for id in created {
        fed.mark_received(id).await;
    }
    Ok(outcomes)
}

pub(crate) fn incoming_record(
    env: &Envelope,
    receipt: &Receipt,
    now: Timestamp,
) -> Result<IncomingRecord, super::FedError> {
    let entry = LedgerEntry::Received {
        envelope: env.header.clone(),
    };
    let leaf = entry.leaf_bytes()?;
    Ok(IncomingRecord {
        message_id: env.header.message_id.to_string(),
        sender: env.header.sender.to_string(),
        link_seq: env.header.link_seq as i64,
        envelope_hash: env.header.hash()?.to_hex(),
        header: String::from_utf8(liaison_wire::to_canonical(&env.header)?)
            .map_err(|e| super::FedError::Ledger(e.to_string()))?,
        payload: String::from_utf8(liaison_wire::canonicalize(&env.payload)?)
            .map_err(|e| super::FedError::Ledger(e.to_string()))?,
        receipt: String::from_utf8(liaison_wire::to_canonical(receipt)?)
            .map_err(|e| super::FedError::Ledger(e.to_string()))?,
        outcome: "applied".into(),
        leaf: LeafRecord {
            kind: "received".into(),
            message_id: env.header.message_id.to_string(),
            leaf_hash: entry.leaf_hash()?.to_hex(),
            leaf: String::from_utf8(leaf).map_err(|e| super::FedError::Ledger(e.to_string()))?,
        },
        at: now,
        effect: None,
    })
}
