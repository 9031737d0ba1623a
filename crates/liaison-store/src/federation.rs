//! Federation persistence (docs/federation.md §8): the node's identity and keys, pinned peers
//! and their key history, the transactional outbox, the inbox (replay table), per-link
//! sequence numbers, the Merkle ledger leaves, signed tree heads and receipts.
//!
//! Invariants:
//! - an outgoing message is written by [`write_fed`] inside the same transaction as the
//!   change that caused it (request insert, transition, comment);
//! - an incoming message is recorded (inbox row, link advance, `received` ledger leaf, the
//!   receipt returned) in the same transaction as its effect; a second copy of the same
//!   `message_id` violates the inbox's unique key and is never applied twice;
//! - the ledger is append-only: leaf indexes are contiguous from 0.

use crate::{Result, Store, StoreError, WriteTx, ms, opt_ts, ts, unique};
use jiff::Timestamp;
use liaison_core::lifecycle::State;
use liaison_core::record::{
    FedIdentity, InboxRow, LeafRow, OutboxRow, OutboxStats, OwnKey, PeerKeyRecord, PeerRecord, ReceiptRow, SthRecord,
};
use std::sync::OnceLock;

pub(crate) const MIGRATION: &str = r#"
CREATE TABLE fed_identity (
    id INTEGER PRIMARY KEY,
    node_id TEXT NOT NULL,
    agency_id TEXT NOT NULL,
    listen TEXT NOT NULL,
    base_url TEXT NOT NULL,
    key_dir TEXT NOT NULL,
    tls_cert_sha256 TEXT NOT NULL,
    descriptor TEXT NOT NULL,
    serial BIGINT NOT NULL
);
CREATE TABLE own_keys (
    key_id TEXT PRIMARY KEY,
    key_path TEXT NOT NULL,
    public_key TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_until BIGINT,
    created_at BIGINT NOT NULL
);
CREATE TABLE peers (
    node_id TEXT PRIMARY KEY,
    agency_id TEXT NOT NULL,
    base_url TEXT NOT NULL,
    tls_cert_sha256 TEXT NOT NULL,
    serial BIGINT NOT NULL,
    pinned TEXT NOT NULL,
    descriptor TEXT NOT NULL,
    added_at BIGINT NOT NULL
);
CREATE TABLE peer_keys (
    node_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_until BIGINT,
    PRIMARY KEY (node_id, key_id)
);
CREATE TABLE links (
    peer TEXT PRIMARY KEY,
    next_seq BIGINT NOT NULL,
    last_applied BIGINT NOT NULL
);
CREATE TABLE outbox (
    message_id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    link_seq BIGINT NOT NULL,
    payload_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt BIGINT NOT NULL,
    last_error TEXT,
    delivered_at BIGINT,
    UNIQUE (recipient, link_seq)
);
CREATE INDEX outbox_pending ON outbox(recipient, delivered_at, link_seq);
CREATE TABLE inbox (
    message_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    link_seq BIGINT NOT NULL,
    envelope_hash TEXT NOT NULL,
    header TEXT NOT NULL,
    payload TEXT NOT NULL,
    receipt TEXT NOT NULL,
    outcome TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    UNIQUE (sender, link_seq)
);
CREATE TABLE receipts (
    message_id TEXT PRIMARY KEY,
    envelope_hash TEXT NOT NULL,
    header TEXT NOT NULL,
    receipt TEXT NOT NULL,
    stored_at BIGINT NOT NULL
);
CREATE TABLE ledger_leaves (
    idx BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    message_id TEXT NOT NULL,
    leaf TEXT NOT NULL,
    leaf_hash TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX ledger_leaves_message ON ledger_leaves(message_id);
CREATE TABLE sths (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    role TEXT NOT NULL,
    tree_size BIGINT NOT NULL,
    root_hash TEXT NOT NULL,
    ts BIGINT NOT NULL,
    sth TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    note TEXT
);
CREATE INDEX sths_node ON sths(node_id, role, tree_size)
"#;

/// A message to send, written in the transaction of the change that caused it. The link
/// sequence number is assigned by the store in that transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub message_id: String,
    pub recipient: String,
    pub payload_type: String,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
}

/// What [`Store::fed_recover_link`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkRecovery {
    /// Messages the peer held that this node had no receipt for (receipts and leaves recorded).
    pub recorded: usize,
    /// Undelivered messages moved to fresh link numbers.
    pub renumbered: usize,
    /// The link's next number now.
    pub next_seq: i64,
}

/// A ledger leaf to append: the JCS bytes of a ledger entry and its leaf hash (hex).
#[derive(Debug, Clone, PartialEq)]
pub struct LeafRecord {
    pub kind: String,
    pub message_id: String,
    pub leaf: String,
    pub leaf_hash: String,
}

/// An accepted incoming envelope, recorded with its effect.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingRecord {
    pub message_id: String,
    pub sender: String,
    pub link_seq: i64,
    pub envelope_hash: String,
    /// The signed header (JSON).
    pub header: String,
    pub payload: String,
    /// The receipt returned to the sender (JSON).
    pub receipt: String,
    /// `applied`, or why the payload could not be applied (it is still received and logged).
    pub outcome: String,
    pub leaf: LeafRecord,
    pub at: Timestamp,
    /// What the message does to the requests, applied in the transaction that records it
    /// (checked by the caller: the sender may do this). `None`: recorded only. If applying
    /// fails for a reason that retrying cannot fix (unknown request, request already
    /// exists, …), the message is still recorded, with `outcome` = `not applied: …`.
    pub effect: Option<Effect>,
}

/// What an accepted incoming message does to the requests, in the store's words (the service
/// maps the wire payload to it). Each is written by the same functions as the local change.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A request the sender submitted: inserted as it is.
    Insert {
        request: Box<liaison_core::request::AssistanceRequest>,
        actor: String,
        /// Its reference on this node (the sender's number when free here).
        reference: crate::requests::RefSpec,
    },
    /// A state change made on the sender's node, checked by the caller against the request's
    /// state here. Applied at the local version (`expected_version` is replaced); if the state
    /// is no longer `from`, the batch fails with `Conflict` and is retried.
    Transition(Box<crate::TransitionRecord>),
    /// A comment the sender wrote.
    Comment {
        request: liaison_core::RequestId,
        at: Timestamp,
        actor: String,
        text: String,
        data: Option<serde_json::Value>,
    },
    /// A marking the requesting agency set on its request (checked by the caller: the sender
    /// serves the requesting agency).
    Marking {
        request: liaison_core::RequestId,
        at: Timestamp,
        actor: String,
        marking: liaison_core::Marking,
    },
    /// (A part of) a clean-up notice issued for an agency this node serves (checked by the
    /// caller); stored with its marking and issuer.
    CleanupNotice(Box<liaison_intel::IncomingNotice>),
    /// A partner's answer about an item this node issued (checked by the caller); recorded,
    /// then applied as feedback by the service.
    CleanupStatus(Box<liaison_intel::RemoteAnswer>),
    /// An evidence file a peer offers (its manifest, checked by the caller): the incoming
    /// transfer is recorded, `receiving` or, when a rule here refuses it, `refused` (then with
    /// the signed result that tells the sender, `result`).
    BulkOffer {
        transfer: Box<crate::BulkIn>,
        result: Option<OutboxItem>,
    },
    /// A peer's verdict on a file this node offered it (checked by the caller: the sender is
    /// the peer it was offered to): stored or refused, with its custody entry.
    BulkResult {
        file_id: String,
        peer: String,
        stored: bool,
        at: Timestamp,
        detail: serde_json::Value,
    },
    /// A change of a joint case (checked by the caller against the case as it is here):
    /// events from the case's home node, or, at the home node, a member node's action.
    Case(Box<crate::CaseWrite>),
}

/// What pinning a peer writes (see [`Store::fed_pin_peer`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerPin {
    /// The peer's jurisdiction, when the directory does not have it yet.
    pub jurisdiction: Option<liaison_core::jurisdiction::Jurisdiction>,
    /// The peer's agency, when the directory does not have it yet.
    pub agency: Option<liaison_core::directory::Agency>,
    pub peer: PeerRecord,
    pub keys: Vec<PeerKeyRecord>,
}

/// What a key rotation writes (see [`Store::fed_rotate_key`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRotationWrites {
    pub keys: Vec<OwnKey>,
    pub identity: FedIdentity,
    pub outbox: Vec<OutboxItem>,
    pub actor: String,
}

/// Federation writes to commit together with a request change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FedWrites {
    pub outbox: Vec<OutboxItem>,
    pub incoming: Option<IncomingRecord>,
}

impl FedWrites {
    pub fn is_empty(&self) -> bool {
        self.outbox.is_empty() && self.incoming.is_none()
    }
}

async fn set_identity_in(w: &mut WriteTx, id: &FedIdentity) -> Result<()> {
    sqlx::query("DELETE FROM fed_identity").execute(w.conn().await?).await?;
    sqlx::query(
        "INSERT INTO fed_identity (id, node_id, agency_id, listen, base_url, key_dir, tls_cert_sha256, descriptor, serial) \
         VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id.node_id)
    .bind(&id.agency_id)
    .bind(&id.listen)
    .bind(&id.base_url)
    .bind(&id.key_dir)
    .bind(&id.tls_cert_sha256)
    .bind(&id.descriptor)
    .bind(id.serial)
    .execute(w.conn().await?)
    .await?;
    Ok(())
}

async fn put_own_key_in(w: &mut WriteTx, k: &OwnKey, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO own_keys (key_id, key_path, public_key, valid_from, valid_until, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (key_id) DO UPDATE SET valid_until = excluded.valid_until",
    )
    .bind(&k.key_id)
    .bind(&k.key_path)
    .bind(&k.public_key)
    .bind(ms(k.valid_from))
    .bind(k.valid_until.map(ms))
    .bind(ms(now))
    .execute(w.conn().await?)
    .await?;
    Ok(())
}

async fn put_peer_in(w: &mut WriteTx, p: &PeerRecord, keys: &[PeerKeyRecord]) -> Result<()> {
    sqlx::query(
        "INSERT INTO peers (node_id, agency_id, base_url, tls_cert_sha256, serial, pinned, descriptor, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (node_id) DO UPDATE SET agency_id = excluded.agency_id, base_url = excluded.base_url, tls_cert_sha256 = excluded.tls_cert_sha256, \
         serial = excluded.serial, pinned = excluded.pinned, descriptor = excluded.descriptor",
    )
    .bind(&p.node_id)
    .bind(&p.agency_id)
    .bind(&p.base_url)
    .bind(&p.tls_cert_sha256)
    .bind(p.serial)
    .bind(&p.pinned)
    .bind(&p.descriptor)
    .bind(ms(p.added_at))
    .execute(w.conn().await?)
    .await?;
    for k in keys {
        sqlx::query(
            "INSERT INTO peer_keys (node_id, key_id, public_key, valid_from, valid_until) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (node_id, key_id) DO UPDATE SET valid_until = excluded.valid_until",
        )
        .bind(&k.node_id)
        .bind(&k.key_id)
        .bind(&k.public_key)
        .bind(ms(k.valid_from))
        .bind(k.valid_until.map(ms))
        .execute(w.conn().await?)
        .await?;
    }
    ensure_link(w, &p.node_id).await?;
    Ok(())
}

/// A test-only crash point. When `LIAISON_FAIL_POINT` names this point, the process aborts here
/// (as a crash or `kill -9` would: no destructor runs and the open transaction is not
/// committed); `NAME:pause` sleeps 30 s instead, so that a test can send SIGKILL at this point.
/// Read only on the rare writes that have crash points (key rotation, pinning a peer).
fn fail_point(name: &str) {
    let Ok(want) = std::env::var("LIAISON_FAIL_POINT") else {
        return;
    };
    if want == name {
        eprintln!("LIAISON_FAIL_POINT: aborting at {name}");
        std::process::abort();
    }
    if want.strip_suffix(":pause") == Some(name) {
        eprintln!("LIAISON_FAIL_POINT: pausing at {name}");
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
}

async fn ensure_link(w: &mut WriteTx, peer: &str) -> Result<()> {
    sqlx::query("INSERT INTO links (peer, next_seq, last_applied) VALUES ($1, 1, 0) ON CONFLICT (peer) DO NOTHING")
        .bind(peer)
        .execute(w.conn().await?)
        .await?;
    Ok(())
}

/// Writes federation rows inside an open transaction (see the module invariants).
pub(crate) async fn write_fed(w: &mut WriteTx, fed: &FedWrites) -> Result<()> {
    if let Some(i) = &fed.incoming {
        write_incoming(w, std::slice::from_ref(i)).await?;
    }
    write_outbox_in(w, &fed.outbox).await
}

/// Writes outgoing messages (their link numbers assigned here) inside an open transaction.
pub(crate) async fn write_outbox_in(w: &mut WriteTx, outbox: &[OutboxItem]) -> Result<()> {
    if !outbox.is_empty() {
        // Wake this process's delivery workers; they wait for this transaction to end
        // ([`Store::fed_write_barrier`]) before they read the outbox.
        outbox_signal().send_modify(|n| *n = n.wrapping_add(1));
    }
    for o in outbox {
        ensure_link(w, &o.recipient).await?;
        let seq: i64 =
            sqlx::query_scalar("UPDATE links SET next_seq = next_seq + 1 WHERE peer = $1 RETURNING next_seq - 1")
                .bind(&o.recipient)
                .fetch_one(w.conn().await?)
                .await?;
        sqlx::query(
            "INSERT INTO outbox (message_id, recipient, link_seq, payload_type, payload, created_at, attempts, next_attempt) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
        )
        .bind(&o.message_id)
        .bind(&o.recipient)
        .bind(seq)
        .bind(&o.payload_type)
        .bind(o.payload.to_string())
        .bind(ms(o.created_at))
        .bind(ms(o.created_at))
        .execute(w.conn().await?)
        .await
        .map_err(|e| unique(e, format!("outbox message {}", o.message_id)))?;
    }
    Ok(())
}

/// Process-wide counter bumped whenever a transaction writes outbox rows.
pub(crate) fn outbox_signal() -> &'static tokio::sync::watch::Sender<u64> {
    static SIGNAL: OnceLock<tokio::sync::watch::Sender<u64>> = OnceLock::new();
    SIGNAL.get_or_init(|| tokio::sync::watch::Sender::new(0))
}

/// Whether a failure to apply an incoming message's effect is final (the message is then
/// recorded as `not applied`) rather than a reason to roll back and let the sender retry.
fn permanent(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::NotFound(_) | StoreError::Duplicate(_) | StoreError::Corrupt(_) | StoreError::BadUrl { .. }
    )
}

/// Records accepted incoming messages (and applies their effects) inside an open
/// transaction: effects in order, then the inbox rows, one link advance per contiguous run
/// of a sender's messages (from `link_seq − 1` only) and the `received` leaves. Returns the
/// recorded outcome of each message.
pub(crate) async fn write_incoming(w: &mut WriteTx, recs: &[IncomingRecord]) -> Result<Vec<String>> {
    let mut outcomes = Vec::with_capacity(recs.len());
    let mut known = std::collections::HashSet::new();
    // Cases of which a message of this batch was not applied: the batch's later messages about
    // them were decided from a state that was never written, so they are not applied either
    // (else their stale version would fail the whole batch on every retry).
    let mut failed_cases = std::collections::HashSet::new();
    for i in recs {
        let mut outcome = i.outcome.clone();
        if let Some(Effect::Case(c)) = i.effect.as_ref().filter(|_| i.outcome == "applied")
            && failed_cases.contains(&c.row.id)
        {
            outcome = format!(
                "not applied: an earlier message about case {} was not applied",
                c.row.id
            );
        }
        if let Some(effect) = i.effect.as_ref().filter(|_| outcome == "applied") {
            // Applying may fail half-way only for a request insert or a clean-up row; keep the
            // rest of the batch intact with a savepoint around it.
            let guarded = matches!(
                effect,
                Effect::Insert { .. }
                    | Effect::CleanupNotice(_)
                    | Effect::CleanupStatus(_)
                    | Effect::BulkOffer { .. }
                    | Effect::BulkResult { .. }
                    | Effect::Case(_)
            );
            if guarded {
                sqlx::query("SAVEPOINT fed_effect").execute(w.conn().await?).await?;
            }
            match apply_effect(w, effect, &mut known).await {
                Ok(()) => {}
                Err(e) if permanent(&e) => {
                    if guarded {
                        sqlx::query("ROLLBACK TO SAVEPOINT fed_effect")
                            .execute(w.conn().await?)
                            .await?;
                    }
                    if let Effect::Case(c) = effect {
                        failed_cases.insert(c.row.id.clone());
                    }
                    outcome = format!("not applied: {e}");
                }
                Err(e) => return Err(e),
            }
            if guarded {
                sqlx::query("RELEASE SAVEPOINT fed_effect")
                    .execute(w.conn().await?)
                    .await?;
            }
        }
        outcomes.push(outcome);
    }
    let mut done = 0;
    for chunk in recs.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO inbox (message_id, sender, link_seq, envelope_hash, header, payload, receipt, outcome, applied_at) VALUES {}",
            placeholders(chunk.len(), 9)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, outcome) in chunk.iter().zip(&outcomes[done..]) {
            q = q
                .bind(&i.message_id)
                .bind(&i.sender)
                .bind(i.link_seq)
                .bind(&i.envelope_hash)
                .bind(&i.header)
                .bind(&i.payload)
                .bind(&i.receipt)
                .bind(outcome)
                .bind(ms(i.at));
        }
        let what = match chunk {
            [one] => format!("message {}", one.message_id),
            _ => format!(
                "message {} or one of the {} after it",
                chunk[0].message_id,
                chunk.len() - 1
            ),
        };
        q.execute(w.conn().await?).await.map_err(|e| unique(e, what))?;
        done += chunk.len();
    }
    let mut start = 0;
    while start < recs.len() {
        let first = &recs[start];
        let mut end = start + 1;
        while end < recs.len() && recs[end].sender == first.sender && recs[end].link_seq == recs[end - 1].link_seq + 1 {
            end += 1;
        }
        let last = &recs[end - 1];
        ensure_link(w, &first.sender).await?;
        let r = sqlx::query("UPDATE links SET last_applied = $1 WHERE peer = $2 AND last_applied = $3")
            .bind(last.link_seq)
            .bind(&first.sender)
            .bind(first.link_seq - 1)
            .execute(w.conn().await?)
            .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "link {} moved on: message {} with link_seq {} is not the next one",
                first.sender, first.message_id, first.link_seq
            )));
        }
        start = end;
    }
    let leaves: Vec<(&LeafRecord, Timestamp)> = recs.iter().map(|i| (&i.leaf, i.at)).collect();
    append_leaves(w, &leaves).await?;
    Ok(outcomes)
}

/// Rows per multi-row INSERT (keeps the bound parameters far below every backend's limit).
const ROWS_PER_INSERT: usize = 100;

/// `($1, $2, …), (…), …`: `rows` tuples of `cols` placeholders.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * cols + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// Appends leaves with consecutive indexes after the last stored one.
/// Takes the ledger's append lock until the transaction ends. Several instances on one
/// PostgreSQL database append leaves (deliveries, receptions, audit anchors) in transactions
/// of their own; each numbers its leaves from the current end, so they must not interleave.
/// (SQLite: one process writes at a time anyway.)
///
/// The lock is the audit head's row lock (the one every write of a node takes, see
/// `WriteTx::audit_head`): one lock order for all writers, so no deadlock between instances.
pub(crate) async fn lock_ledger(w: &mut WriteTx) -> Result<()> {
    if w.backend() == crate::Backend::Postgres {
        w.audit_head().await?;
    }
    Ok(())
}

pub(crate) async fn append_leaves(w: &mut WriteTx, leaves: &[(&LeafRecord, Timestamp)]) -> Result<()> {
    if leaves.is_empty() {
        return Ok(());
    }
    lock_ledger(w).await?;
    let mut idx: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx), -1) + 1 FROM ledger_leaves")
        .fetch_one(w.conn().await?)
        .await?;
    for chunk in leaves.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO ledger_leaves (idx, kind, message_id, leaf, leaf_hash, at) VALUES {}",
            placeholders(chunk.len(), 6)
        );
        let first = idx;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (leaf, at) in chunk {
            q = q
                .bind(idx)
                .bind(&leaf.kind)
                .bind(&leaf.message_id)
                .bind(&leaf.leaf)
                .bind(&leaf.leaf_hash)
                .bind(ms(*at));
            idx += 1;
        }
        q.execute(w.conn().await?)
            .await
            .map_err(|e| unique(e, format!("ledger leaves from {first}")))?;
    }
    Ok(())
}

/// Applies one incoming effect inside the caller's transaction, through the same statements as
/// the local change (`requests::insert_request_in`, `requests::push_transition`,
/// `requests::push_comment`), so that a whole batch of incoming messages commits once.
/// `known`: requests this transaction already found or created (saves a look-up per message).
async fn apply_effect(
    w: &mut WriteTx,
    effect: &Effect,
    known: &mut std::collections::HashSet<liaison_core::RequestId>,
) -> Result<()> {
    match effect {
        Effect::Insert {
            request,
            actor,
            reference,
        } => {
            crate::requests::insert_request_in(w, request, actor, reference, None).await?;
            known.insert(request.id);
        }
        Effect::Transition(t) => {
            let cur: Option<(String, i64)> = sqlx::query_as("SELECT state, version FROM requests WHERE id = $1")
                .bind(t.id.to_string())
                .fetch_optional(w.conn().await?)
                .await?;
            let Some((state, version)) = cur else {
                return Err(StoreError::NotFound(format!("request {}", t.id)));
            };
            known.insert(t.id);
            let from: State = crate::parse(&state, "state")?;
            if from != t.from {
                // The caller checked the change against the state it read; a local change
                // came in between. Not applied now: the whole batch is retried and checked again.
                return Err(StoreError::Conflict(format!(
                    "request {} is {from} here, not {} (changed while the message was checked)",
                    t.id, t.from
                )));
            }
            let mut local = (**t).clone();
            local.expected_version = version;
            crate::requests::transition_in(w, &local).await?;
        }
        Effect::Comment {
            request,
            at,
            actor,
            text,
            data,
        } => {
            if !known.contains(request) {
                let exists: Option<String> = sqlx::query_scalar("SELECT id FROM requests WHERE id = $1")
                    .bind(request.to_string())
                    .fetch_optional(w.conn().await?)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("request {request}")));
                }
                known.insert(*request);
            }
            crate::requests::comment_in(w, *request, actor, text, *at, data.as_ref()).await?;
        }
        Effect::Marking {
            request,
            at,
            actor,
            marking,
        } => {
            crate::requests::marking_in(w, *request, marking, actor, *at).await?;
            known.insert(*request);
        }
        Effect::CleanupNotice(n) => crate::notices::incoming_notice_in(w, n).await?,
        Effect::CleanupStatus(a) => crate::notices::remote_answer_in(w, a).await?,
        Effect::BulkOffer { transfer, result } => crate::bulk::bulk_offer_in(w, transfer, result.as_ref()).await?,
        Effect::BulkResult {
            file_id,
            peer,
            stored,
            at,
            detail,
        } => crate::bulk::bulk_result_in(w, file_id, peer, *stored, *at, detail).await?,
        Effect::Case(c) => crate::cases::case_write_in(w, c).await?,
    }
    Ok(())
}

type OutboxTuple = (
    String,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<i64>,
);
const OUTBOX_COLS: &str = "SELECT message_id, recipient, link_seq, payload_type, payload, created_at, attempts, next_attempt, last_error, delivered_at FROM outbox";

fn outbox_row(r: OutboxTuple) -> Result<OutboxRow> {
    Ok(OutboxRow {
        message_id: r.0,
        recipient: r.1,
        link_seq: r.2,
        payload_type: r.3,
        payload: r.4,
        created_at: ts(r.5)?,
        attempts: r.6,
        next_attempt: ts(r.7)?,
        last_error: r.8,
        delivered_at: opt_ts(r.9)?,
    })
}

type InboxTuple = (String, String, i64, String, String, String, String, String, i64);
const INBOX_COLS: &str =
    "SELECT message_id, sender, link_seq, envelope_hash, header, payload, receipt, outcome, applied_at FROM inbox";

fn inbox_row(r: InboxTuple) -> Result<InboxRow> {
    Ok(InboxRow {
        message_id: r.0,
        sender: r.1,
        link_seq: r.2,
        envelope_hash: r.3,
        header: r.4,
        payload: r.5,
        receipt: r.6,
        outcome: r.7,
        applied_at: ts(r.8)?,
    })
}

type SthTuple = (String, String, i64, String, i64, String, i64, Option<String>);
const STH_COLS: &str = "SELECT node_id, role, tree_size, root_hash, ts, sth, recorded_at, note FROM sths";

fn sth_row(r: SthTuple) -> Result<SthRecord> {
    Ok(SthRecord {
        node_id: r.0,
        role: r.1,
        tree_size: r.2,
        root_hash: r.3,
        timestamp: ts(r.4)?,
        sth: r.5,
        recorded_at: ts(r.6)?,
        note: r.7,
    })
}

impl Store {
    // ---- identity and own keys ----

    /// Stores (or replaces) the node's federation identity.
    pub async fn fed_set_identity(&self, id: &FedIdentity) -> Result<()> {
        let mut w = self.write().await?;
        set_identity_in(&mut w, id).await?;
        w.commit().await
    }

    /// The node's federation identity, if `liaison init` created one.
    pub async fn fed_identity(&self) -> Result<Option<FedIdentity>> {
        type Row = (String, String, String, String, String, String, String, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT node_id, agency_id, listen, base_url, key_dir, tls_cert_sha256, descriptor, serial FROM fed_identity WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| FedIdentity {
            node_id: r.0,
            agency_id: r.1,
            listen: r.2,
            base_url: r.3,
            key_dir: r.4,
            tls_cert_sha256: r.5,
            descriptor: r.6,
            serial: r.7,
        }))
    }

    /// Adds one of the node's own keys, or updates its validity.
    pub async fn fed_put_own_key(&self, k: &OwnKey, now: Timestamp) -> Result<()> {
        let mut w = self.write().await?;
        put_own_key_in(&mut w, k, now).await?;
        w.commit().await
    }

    /// The node's own keys, oldest first.
    pub async fn fed_own_keys(&self) -> Result<Vec<OwnKey>> {
        type Row = (String, String, String, i64, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT key_id, key_path, public_key, valid_from, valid_until FROM own_keys ORDER BY created_at, valid_from",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(OwnKey {
                    key_id: r.0,
                    key_path: r.1,
                    public_key: r.2,
                    valid_from: ts(r.3)?,
                    valid_until: opt_ts(r.4)?,
                })
            })
            .collect()
    }

    // ---- peers ----

    /// Pins a peer (or replaces its pinned view) with its key history, in one transaction.
    pub async fn fed_put_peer(&self, p: &PeerRecord, keys: &[PeerKeyRecord]) -> Result<()> {
        let mut w = self.write().await?;
        put_peer_in(&mut w, p, keys).await?;
        w.commit().await
    }

    /// Pins a peer in one transaction: its jurisdiction if the directory lacks it, its agency if
    /// the directory lacks it (served by the peer), the peer record, its keys and its link.
    pub async fn fed_pin_peer(&self, pin: &PeerPin, actor: &str, now: Timestamp) -> Result<()> {
        let mut w = self.write().await?;
        if let Some(j) = &pin.jurisdiction {
            crate::directory::upsert_jurisdiction_in(&mut w, j).await?;
        }
        fail_point("pin-after-jurisdiction");
        if let Some(a) = &pin.agency {
            crate::directory::insert_agency_in(&mut w, a, Some(&pin.peer.node_id), actor, now).await?;
        }
        fail_point("pin-after-agency");
        put_peer_in(&mut w, &pin.peer, &pin.keys).await?;
        crate::audit::append(
            &mut w,
            now,
            actor,
            "peer.pin",
            &pin.peer.node_id,
            &serde_json::json!({"agency": pin.peer.agency_id, "serial": pin.peer.serial, "tls_cert_sha256": pin.peer.tls_cert_sha256}),
        )
        .await?;
        w.commit().await
    }

    /// Commits a key rotation in one transaction: the own keys (the new one and the old one with
    /// its end of validity), the new descriptor, and the rotation statement to every peer.
    /// Either all of it is stored or none (a crash leaves the old key and no messages).
    pub async fn fed_rotate_key(&self, r: &KeyRotationWrites, now: Timestamp) -> Result<()> {
        let mut w = self.write().await?;
        for k in &r.keys {
            put_own_key_in(&mut w, k, now).await?;
            fail_point("rotate-after-key");
        }
        set_identity_in(&mut w, &r.identity).await?;
        fail_point("rotate-after-descriptor");
        write_fed(
            &mut w,
            &FedWrites {
                outbox: r.outbox.clone(),
                incoming: None,
            },
        )
        .await?;
        fail_point("rotate-after-outbox");
        crate::audit::append(
            &mut w,
            now,
            &r.actor,
            "federation.rotate_key",
            &r.identity.node_id,
            &serde_json::json!({"serial": r.identity.serial, "peers": r.outbox.len()}),
        )
        .await?;
        fail_point("rotate-before-commit");
        w.commit().await
    }

    /// All pinned peers.
    pub async fn fed_peers(&self) -> Result<Vec<PeerRecord>> {
        type Row = (String, String, String, String, i64, String, String, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT node_id, agency_id, base_url, tls_cert_sha256, serial, pinned, descriptor, added_at FROM peers ORDER BY node_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(PeerRecord {
                    node_id: r.0,
                    agency_id: r.1,
                    base_url: r.2,
                    tls_cert_sha256: r.3,
                    serial: r.4,
                    pinned: r.5,
                    descriptor: r.6,
                    added_at: ts(r.7)?,
                })
            })
            .collect()
    }

    /// Unpins a peer: its messages are refused from now on. Keys, ledger and history stay.
    pub async fn fed_remove_peer(&self, node_id: &str) -> Result<()> {
        let mut w = self.write().await?;
        let r = sqlx::query("DELETE FROM peers WHERE node_id = $1")
            .bind(node_id)
            .execute(w.conn().await?)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("peer {node_id}")));
        }
        w.commit().await
    }

    /// A peer's stored keys (full history).
    pub async fn fed_peer_keys(&self, node_id: &str) -> Result<Vec<PeerKeyRecord>> {
        type Row = (String, String, String, i64, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT node_id, key_id, public_key, valid_from, valid_until FROM peer_keys WHERE node_id = $1 ORDER BY valid_from",
        )
        .bind(node_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(PeerKeyRecord {
                    node_id: r.0,
                    key_id: r.1,
                    public_key: r.2,
                    valid_from: ts(r.3)?,
                    valid_until: opt_ts(r.4)?,
                })
            })
            .collect()
    }

    // ---- outbox ----

    /// Writes federation rows in a transaction of their own (messages that change no request).
    pub async fn fed_write(&self, fed: &FedWrites) -> Result<()> {
        let mut w = self.write().await?;
        write_fed(&mut w, fed).await?;
        w.commit().await
    }

    /// Records accepted incoming messages and applies their effects in ONE transaction (a
    /// batch from one link, in link order). Returns each message's recorded outcome
    /// (`applied` or `not applied: …`). Fails as a whole, with nothing written, on a
    /// duplicate message id ([`StoreError::Duplicate`]), a link that moved on
    /// ([`StoreError::Conflict`]) or a database error.
    pub async fn fed_receive(&self, recs: &[IncomingRecord]) -> Result<Vec<String>> {
        let mut w = self.write().await?;
        let outcomes = write_incoming(&mut w, recs).await?;
        w.commit().await?;
        Ok(outcomes)
    }

    /// A receiver of the process-wide outbox signal: it changes whenever a transaction in
    /// this process writes outbox rows. Call [`Store::fed_write_barrier`] after a change
    /// before reading the outbox.
    pub fn fed_outbox_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        outbox_signal().subscribe()
    }

    /// Waits until the write transactions of this process that are running now have ended
    /// (the store's writers take one in-process lock, see `Store::write`).
    pub async fn fed_write_barrier(&self) {
        drop(self.write_lock.lock().await);
    }

    /// Peers with undelivered messages. Every outbox row's recipient has a `links` row, so
    /// this is one index look-up per link, not a scan of the outbox (the worker asks often).
    pub async fn fed_pending_recipients(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT peer FROM links WHERE EXISTS \
             (SELECT 1 FROM outbox WHERE outbox.recipient = links.peer AND outbox.delivered_at IS NULL) ORDER BY peer",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The first `limit` undelivered messages to `recipient`, in link order.
    pub async fn fed_outbox_pending(&self, recipient: &str, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows: Vec<OutboxTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OUTBOX_COLS} WHERE recipient = $1 AND delivered_at IS NULL ORDER BY link_seq LIMIT $2"
        )))
        .bind(recipient)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(outbox_row).collect()
    }

    /// One outbox message by link position (for resending after a gap).
    pub async fn fed_outbox_message(&self, message_id: &str) -> Result<Option<OutboxRow>> {
        let row: Option<OutboxTuple> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{OUTBOX_COLS} WHERE message_id = $1")))
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(outbox_row).transpose()
    }

    /// Every outbox message, in link order per recipient.
    pub async fn fed_outbox_all(&self) -> Result<Vec<OutboxRow>> {
        let rows: Vec<OutboxTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OUTBOX_COLS} ORDER BY recipient, link_seq"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(outbox_row).collect()
    }

    /// The `limit` messages sent last, newest first (the ledger page).
    pub async fn fed_outbox_recent(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows: Vec<OutboxTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OUTBOX_COLS} ORDER BY created_at DESC, message_id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(outbox_row).collect()
    }

    pub async fn fed_outbox_stats(&self) -> Result<OutboxStats> {
        let (pending, delivered): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN delivered_at IS NULL THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN delivered_at IS NULL THEN 0 ELSE 1 END), 0) FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats { pending, delivered })
    }

    /// Records a failed attempt (the message stays in the outbox).
    pub async fn fed_outbox_failed(&self, message_id: &str, error: &str, next_attempt: Timestamp) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt = $2 WHERE message_id = $3",
        )
        .bind(error)
        .bind(ms(next_attempt))
        .bind(message_id)
        .execute(w.conn().await?)
        .await?;
        w.commit().await
    }

    /// Ends delivery of a message: stores the verified receipt and appends the `sent` and
    /// `receipt` ledger leaves, in one transaction. Idempotent: a message already delivered
    /// is left as it is (returns false).
    pub async fn fed_delivered(
        &self,
        receipt: &ReceiptRow,
        sent_leaf: &LeafRecord,
        receipt_leaf: &LeafRecord,
        now: Timestamp,
    ) -> Result<bool> {
        let n = self
            .fed_delivered_batch(&[(receipt.clone(), sent_leaf.clone(), receipt_leaf.clone())], now)
            .await?;
        Ok(n == 1)
    }

    /// Ends delivery of several messages in ONE transaction: for each (receipt, `sent` leaf,
    /// `receipt` leaf), in order, marks the outbox row delivered, stores the receipt and
    /// appends both leaves. Messages already delivered are skipped. Returns how many were
    /// stored.
    pub async fn fed_delivered_batch(
        &self,
        items: &[(ReceiptRow, LeafRecord, LeafRecord)],
        now: Timestamp,
    ) -> Result<usize> {
        let mut w = self.write().await?;
        let mut fresh = std::collections::HashSet::new();
        for chunk in items.chunks(ROWS_PER_INSERT) {
            let list = (0..chunk.len())
                .map(|k| format!("${}", k + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL \
                 WHERE delivered_at IS NULL AND message_id IN ({list}) RETURNING message_id"
            );
            let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(ms(now));
            for (r, _, _) in chunk {
                q = q.bind(&r.message_id);
            }
            fresh.extend(q.fetch_all(w.conn().await?).await?);
        }
        let todo: Vec<&(ReceiptRow, LeafRecord, LeafRecord)> =
            items.iter().filter(|(r, _, _)| fresh.contains(&r.message_id)).collect();
        for chunk in todo.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO receipts (message_id, envelope_hash, header, receipt, stored_at) VALUES {} \
                 ON CONFLICT (message_id) DO NOTHING",
                placeholders(chunk.len(), 5)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (r, _, _) in chunk {
                q = q
                    .bind(&r.message_id)
                    .bind(&r.envelope_hash)
                    .bind(&r.header)
                    .bind(&r.receipt)
                    .bind(ms(r.stored_at));
            }
            q.execute(w.conn().await?)
                .await
                .map_err(|e| unique(e, format!("receipt for {}", chunk[0].0.message_id)))?;
        }
        let leaves: Vec<(&LeafRecord, Timestamp)> = todo
            .iter()
            .flat_map(|(_, sent, rcpt)| [(sent, now), (rcpt, now)])
            .collect();
        append_leaves(&mut w, &leaves).await?;
        w.commit().await?;
        Ok(todo.len())
    }

    /// The receipt stored for a message this node sent.
    pub async fn fed_receipt(&self, message_id: &str) -> Result<Option<ReceiptRow>> {
        type Row = (String, String, String, String, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT message_id, envelope_hash, header, receipt, stored_at FROM receipts WHERE message_id = $1",
        )
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ReceiptRow {
                message_id: r.0,
                envelope_hash: r.1,
                header: r.2,
                receipt: r.3,
                stored_at: ts(r.4)?,
            })
        })
        .transpose()
    }

    // ---- inbox and links ----

    pub async fn fed_inbox(&self, message_id: &str) -> Result<Option<InboxRow>> {
        let row: Option<InboxTuple> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{INBOX_COLS} WHERE message_id = $1")))
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(inbox_row).transpose()
    }

    /// The inbox rows of those of `message_ids` that were accepted.
    pub async fn fed_inbox_many(&self, message_ids: &[String]) -> Result<Vec<InboxRow>> {
        let mut out = Vec::new();
        for chunk in message_ids.chunks(ROWS_PER_INSERT) {
            let list = (1..=chunk.len())
                .map(|k| format!("${k}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut q = sqlx::query_as::<_, InboxTuple>(sqlx::AssertSqlSafe(format!(
                "{INBOX_COLS} WHERE message_id IN ({list})"
            )));
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(inbox_row(row)?);
            }
        }
        Ok(out)
    }

    pub async fn fed_inbox_by_seq(&self, sender: &str, link_seq: i64) -> Result<Option<InboxRow>> {
        let row: Option<InboxTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{INBOX_COLS} WHERE sender = $1 AND link_seq = $2"
        )))
        .bind(sender)
        .bind(link_seq)
        .fetch_optional(&self.pool)
        .await?;
        row.map(inbox_row).transpose()
    }

    /// Every accepted incoming message, in link order per sender.
    pub async fn fed_inbox_all(&self) -> Result<Vec<InboxRow>> {
        let rows: Vec<InboxTuple> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{INBOX_COLS} ORDER BY sender, link_seq")))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(inbox_row).collect()
    }

    /// The `limit` messages received last, newest first; with `not_applied`, only those
    /// recorded as not applied (a conflict with the local state or a local rule).
    pub async fn fed_inbox_recent(&self, limit: i64, not_applied: bool) -> Result<Vec<InboxRow>> {
        let filter = if not_applied {
            "WHERE outcome LIKE 'not applied%'"
        } else {
            ""
        };
        let rows: Vec<InboxTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{INBOX_COLS} {filter} ORDER BY applied_at DESC, message_id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(inbox_row).collect()
    }

    /// The last link_seq applied from `peer` (0 if none).
    pub async fn fed_last_applied(&self, peer: &str) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT last_applied FROM links WHERE peer = $1")
            .bind(peer)
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    // ---- ledger ----

    /// The number of leaves in the ledger.
    pub async fn fed_ledger_size(&self) -> Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM ledger_leaves")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Leaf hashes (hex) from index `from` on, in order.
    pub async fn fed_leaf_hashes_from(&self, from: i64) -> Result<Vec<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT idx, leaf_hash FROM ledger_leaves WHERE idx >= $1 ORDER BY idx")
                .bind(from)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Every leaf, in order.
    pub async fn fed_leaves(&self) -> Result<Vec<LeafRow>> {
        type Row = (i64, String, String, String, String, i64);
        let rows: Vec<Row> =
            sqlx::query_as("SELECT idx, kind, message_id, leaf, leaf_hash, at FROM ledger_leaves ORDER BY idx")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                Ok(LeafRow {
                    idx: r.0,
                    kind: r.1,
                    message_id: r.2,
                    leaf: r.3,
                    leaf_hash: r.4,
                    at: ts(r.5)?,
                })
            })
            .collect()
    }

    /// The leaves that mention a message.
    pub async fn fed_leaves_for(&self, message_id: &str) -> Result<Vec<LeafRow>> {
        type Row = (i64, String, String, String, String, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT idx, kind, message_id, leaf, leaf_hash, at FROM ledger_leaves WHERE message_id = $1 ORDER BY idx",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(LeafRow {
                    idx: r.0,
                    kind: r.1,
                    message_id: r.2,
                    leaf: r.3,
                    leaf_hash: r.4,
                    at: ts(r.5)?,
                })
            })
            .collect()
    }

    // ---- link recovery (a peer restored from a backup; docs/federation.md §7.2) ----

    /// The messages accepted from `sender` with `link_seq` greater than `after`, in link
    /// order, at most `limit`.
    pub async fn fed_inbox_from(&self, sender: &str, after: i64, limit: i64) -> Result<Vec<InboxRow>> {
        let rows: Vec<InboxTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{INBOX_COLS} WHERE sender = $1 AND link_seq > $2 ORDER BY link_seq LIMIT $3"
        )))
        .bind(sender)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(inbox_row).collect()
    }

    /// The highest `link_seq` to `recipient` this node holds a receipt for (0 if none).
    pub async fn fed_last_delivered(&self, recipient: &str) -> Result<i64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(link_seq) FROM outbox WHERE recipient = $1 AND delivered_at IS NOT NULL")
                .bind(recipient)
                .fetch_one(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    /// Sender side of link recovery, in ONE transaction: records what `peer` proved it
    /// accepted from us (receipts and `sent`/`receipt` leaves for the messages this node has no
    /// receipt for, their outbox rows marked delivered), then moves every undelivered message
    /// to `peer` whose `link_seq` the peer already applied (`peer_last_applied`) to fresh
    /// numbers after it, keeping their order, and advances the link's next number past them.
    pub async fn fed_recover_link(
        &self,
        peer: &str,
        peer_last_applied: i64,
        recovered: &[(ReceiptRow, LeafRecord, LeafRecord)],
        now: Timestamp,
    ) -> Result<LinkRecovery> {
        let mut w = self.write().await?;
        let mut out = LinkRecovery::default();
        let mut leaves: Vec<(&LeafRecord, Timestamp)> = Vec::new();
        for item in recovered {
            let (r, sent, rcpt) = item;
            let known: Option<String> = sqlx::query_scalar("SELECT message_id FROM receipts WHERE message_id = $1")
                .bind(&r.message_id)
                .fetch_optional(w.conn().await?)
                .await?;
            sqlx::query(
                "UPDATE outbox SET delivered_at = $1, last_error = NULL WHERE message_id = $2 AND delivered_at IS NULL",
            )
            .bind(ms(now))
            .bind(&r.message_id)
            .execute(w.conn().await?)
            .await?;
            if known.is_some() {
                continue;
            }
            sqlx::query(
                "INSERT INTO receipts (message_id, envelope_hash, header, receipt, stored_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&r.message_id)
            .bind(&r.envelope_hash)
            .bind(&r.header)
            .bind(&r.receipt)
            .bind(ms(r.stored_at))
            .execute(w.conn().await?)
            .await?;
            leaves.push((sent, now));
            leaves.push((rcpt, now));
            out.recorded += 1;
        }
        append_leaves(&mut w, &leaves).await?;
        let pending: Vec<(String, i64)> = sqlx::query_as(
            "SELECT message_id, link_seq FROM outbox WHERE recipient = $1 AND delivered_at IS NULL ORDER BY link_seq",
        )
        .bind(peer)
        .fetch_all(w.conn().await?)
        .await?;
        if pending.first().is_some_and(|(_, seq)| *seq <= peer_last_applied) {
            // Two steps, so that the unique (recipient, link_seq) never sees two rows at once.
            sqlx::query("UPDATE outbox SET link_seq = -link_seq WHERE recipient = $1 AND delivered_at IS NULL")
                .bind(peer)
                .execute(w.conn().await?)
                .await?;
            for (i, (id, _)) in pending.iter().enumerate() {
                sqlx::query("UPDATE outbox SET link_seq = $1, next_attempt = $2 WHERE message_id = $3")
                    .bind(peer_last_applied + 1 + i as i64)
                    .bind(ms(now))
                    .bind(id)
                    .execute(w.conn().await?)
                    .await?;
            }
            out.renumbered = pending.len();
        }
        let high: Option<i64> = sqlx::query_scalar("SELECT MAX(link_seq) FROM outbox WHERE recipient = $1")
            .bind(peer)
            .fetch_one(w.conn().await?)
            .await?;
        let next = high.unwrap_or(0).max(peer_last_applied) + 1;
        sqlx::query(
            "INSERT INTO links (peer, next_seq, last_applied) VALUES ($1, $2, 0) ON CONFLICT (peer) DO NOTHING",
        )
        .bind(peer)
        .bind(next)
        .execute(w.conn().await?)
        .await?;
        sqlx::query("UPDATE links SET next_seq = $1 WHERE peer = $2 AND next_seq < $1")
            .bind(next)
            .bind(peer)
            .execute(w.conn().await?)
            .await?;
        out.next_seq = sqlx::query_scalar("SELECT next_seq FROM links WHERE peer = $1")
            .bind(peer)
            .fetch_one(w.conn().await?)
            .await?;
        w.commit().await?;
        Ok(out)
    }

    /// Receiver of a gap: `recipient` says it expects `from`, below messages this node holds
    /// receipts for (it lost them, restored from a backup). Marks the delivered messages to
    /// it from `from` up to (not including) `below` undelivered again, so the worker sends
    /// them once more in order. Returns how many.
    pub async fn fed_requeue(&self, recipient: &str, from: i64, below: i64, now: Timestamp) -> Result<u64> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE outbox SET delivered_at = NULL, next_attempt = $1, attempts = 0, last_error = 'resent: the peer lost it (restored from a backup?)' \
             WHERE recipient = $2 AND link_seq >= $3 AND link_seq < $4 AND delivered_at IS NOT NULL",
        )
        .bind(ms(now))
        .bind(recipient)
        .bind(from)
        .bind(below)
        .execute(w.conn().await?)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n)
    }

    // ---- signed tree heads ----

    pub async fn fed_put_sth(&self, s: &SthRecord) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO sths (id, node_id, role, tree_size, root_hash, ts, sth, recorded_at, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&s.node_id)
        .bind(&s.role)
        .bind(s.tree_size)
        .bind(&s.root_hash)
        .bind(ms(s.timestamp))
        .bind(&s.sth)
        .bind(ms(s.recorded_at))
        .bind(s.note.clone())
        .execute(w.conn().await?)
        .await?;
        w.commit().await
    }

    /// Stored tree heads of `node_id` with `role`, oldest first.
    pub async fn fed_sths(&self, node_id: &str, role: &str) -> Result<Vec<SthRecord>> {
        let rows: Vec<SthTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{STH_COLS} WHERE node_id = $1 AND role = $2 ORDER BY recorded_at, tree_size"
        )))
        .bind(node_id)
        .bind(role)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(sth_row).collect()
    }

    /// The latest stored tree head of `node_id` with `role`.
    pub async fn fed_latest_sth(&self, node_id: &str, role: &str) -> Result<Option<SthRecord>> {
        let row: Option<SthTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{STH_COLS} WHERE node_id = $1 AND role = $2 ORDER BY tree_size DESC, recorded_at DESC LIMIT 1"
        )))
        .bind(node_id)
        .bind(role)
        .fetch_optional(&self.pool)
        .await?;
        row.map(sth_row).transpose()
    }

    /// Every stored piece of evidence (conflicting tree heads), oldest first.
    pub async fn fed_evidence(&self) -> Result<Vec<SthRecord>> {
        let rows: Vec<SthTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{STH_COLS} WHERE role = 'evidence' ORDER BY recorded_at"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(sth_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransitionRecord;
    use liaison_core::request::AssistanceRequest;

    fn leaf(kind: &str, id: &str) -> LeafRecord {
        LeafRecord {
            kind: kind.into(),
            message_id: id.into(),
            leaf: format!("{{\"kind\":\"{kind}\"}}"),
            leaf_hash: format!("{:064x}", id.len()),
        }
    }

    fn incoming(id: &str, seq: i64) -> IncomingRecord {
        IncomingRecord {
            message_id: id.into(),
            sender: "cn-mps".into(),
            link_seq: seq,
            envelope_hash: "00".into(),
            header: "{}".into(),
            payload: "{}".into(),
            receipt: "{}".into(),
            outcome: "applied".into(),
            leaf: leaf("received", id),
            at: Timestamp::UNIX_EPOCH,
            effect: None,
        }
    }

    /// An outbox comment for the peer `cn-mps`.
    fn comment_to_cn(id: &str, now: Timestamp) -> OutboxItem {
        OutboxItem {
            message_id: id.into(),
            recipient: "cn-mps".into(),
            payload_type: "comment".into(),
            payload: serde_json::json!({"text": id}),
            created_at: now,
        }
    }

    #[tokio::test]
    async fn outbox_inbox_links_and_ledger() {
        for store in crate::testing::all_backends().await {
            let now = Timestamp::UNIX_EPOCH;
            let out = |id: &str| comment_to_cn(id, now);
            store
                .fed_write(&FedWrites {
                    outbox: vec![out("m1"), out("m2")],
                    incoming: None,
                })
                .await
                .unwrap();
            let pending = store.fed_outbox_pending("cn-mps", 10).await.unwrap();
            assert_eq!(pending.iter().map(|r| r.link_seq).collect::<Vec<_>>(), vec![1, 2]);
            // Incoming in order, a duplicate is refused, a gap is refused.
            store
                .fed_write(&FedWrites {
                    outbox: vec![],
                    incoming: Some(incoming("i1", 1)),
                })
                .await
                .unwrap();
            let dup = store
                .fed_write(&FedWrites {
                    outbox: vec![],
                    incoming: Some(incoming("i1", 2)),
                })
                .await;
            assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
            let gap = store
                .fed_write(&FedWrites {
                    outbox: vec![],
                    incoming: Some(incoming("i3", 3)),
                })
                .await;
            assert!(matches!(gap, Err(StoreError::Conflict(_))), "{gap:?}");
            assert_eq!(store.fed_last_applied("cn-mps").await.unwrap(), 1);
            let r = ReceiptRow {
                message_id: "m1".into(),
                envelope_hash: "ab".into(),
                header: "{}".into(),
                receipt: "{}".into(),
                stored_at: now,
            };
            assert!(
                store
                    .fed_delivered(&r, &leaf("sent", "m1"), &leaf("receipt", "m1"), now)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .fed_delivered(&r, &leaf("sent", "m1"), &leaf("receipt", "m1"), now)
                    .await
                    .unwrap()
            );
            let leaves = store.fed_leaves().await.unwrap();
            assert_eq!(leaves.iter().map(|l| l.idx).collect::<Vec<_>>(), vec![0, 1, 2]);
            assert_eq!(store.fed_outbox_stats().await.unwrap().pending, 1);
        }
    }

    async fn seed(store: &Store) -> (liaison_core::AgencyId, liaison_core::AgencyId) {
        use liaison_core::directory::{Agency, AgencyKind};
        use liaison_core::jurisdiction::Jurisdiction;
        use liaison_core::{AgencyId, CountryCode};
        let mut ids = Vec::new();
        for (c, code) in [("US", "FBI"), ("CN", "CN-MPS")] {
            store
                .upsert_jurisdiction(&Jurisdiction {
                    code: CountryCode::parse(c).unwrap(),
                    name_en: c.into(),
                    name_zh: c.into(),
                })
                .await
                .unwrap();
            let a = Agency {
                id: AgencyId::new(),
                code: code.into(),
                name_en: code.into(),
                name_native: code.into(),
                name_zh: String::new(),
                jurisdiction: CountryCode::parse(c).unwrap(),
                kind: AgencyKind::Police,
                time_zone: "UTC".into(),
            };
            store
                .insert_agency(&a, None, "test", Timestamp::UNIX_EPOCH)
                .await
                .unwrap();
            ids.push(a.id);
        }
        (ids[0], ids[1])
    }

    fn submitted(from: liaison_core::AgencyId, to: liaison_core::AgencyId, n: u64) -> AssistanceRequest {
        use liaison_core::request::{RequestDraft, RequestKind, Urgency};
        let at: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        AssistanceRequest {
            id: liaison_core::RequestId::at(at, n),
            draft: RequestDraft {
                kind: RequestKind::SubscriberInformation,
                urgency: Urgency::Routine,
                requesting_agency: from,
                requested_agency: to,
                case_reference: "CASE-1".into(),
                offences: vec!["BC-02".into()],
                summary: "s".into(),
                targets: vec![],
                data_categories: vec![],
                legal_basis: "b".into(),
                related: vec![],
                attachments: vec![],
                amount: None,
                conduct: vec![],
                marking_set: None,
            },
            state: State::Submitted,
            version: 1,
            created_at: at,
            updated_at: at,
            submitted_at: Some(at),
            acknowledged_at: None,
            answered_at: None,
            ack_due: Some(at + jiff::SignedDuration::from_hours(24)),
            answer_due: Some(at + jiff::SignedDuration::from_hours(240)),
            preserved_until: None,
            information_due: None,
        }
    }

    fn with_effect(id: &str, seq: i64, effect: Effect) -> IncomingRecord {
        IncomingRecord {
            effect: Some(effect),
            ..incoming(id, seq)
        }
    }

    /// What a request's history looks like, without ids and with the ids of requests masked.
    async fn history(store: &Store, id: liaison_core::RequestId) -> (String, i64, Vec<String>) {
        let r = store.request(id, None).await.unwrap();
        let events = store
            .events(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                format!(
                    "{} {} {:?} {:?} {:?} {:?} {}",
                    e.event, e.actor, e.from_state, e.to_state, e.reason, e.data, e.at
                )
            })
            .collect();
        (r.request.state.to_string(), r.request.version, events)
    }

    /// A batch applies what the single paths (`insert_request_fed`, `comment_fed`,
    /// `transition`) apply, in one transaction, through the same statements; failures are
    /// per message.
    #[tokio::test]
    async fn batch_effects_match_the_single_paths() {
        for store in crate::testing::all_backends().await {
            let (fbi, mps) = seed(&store).await;
            let at: Timestamp = "2026-11-22T11:00:00Z".parse().unwrap();
            let actor = "us-fbi:officer";
            // Single paths.
            let a = submitted(fbi, mps, 1);
            store
                .insert_request_fed(&a, actor, &FedWrites::default())
                .await
                .unwrap();
            store
                .comment_fed(
                    a.id,
                    actor,
                    "hello",
                    at,
                    Some(&serde_json::json!({"k": 1})),
                    &FedWrites::default(),
                )
                .await
                .unwrap();
            let mut t = TransitionRecord::new(a.id, 1, State::Submitted, State::Received, at, actor);
            t.reason = Some("why".into());
            store.transition(&t).await.unwrap();
            // The same as one batch.
            let b = submitted(fbi, mps, 2);
            // The sender's version is replaced by the local one.
            let mut tp = TransitionRecord::new(b.id, 99, State::Submitted, State::Received, at, actor);
            tp.reason = Some("why".into());
            let comment = |id, text: &str| Effect::Comment {
                request: id,
                at,
                actor: actor.into(),
                text: text.into(),
                data: Some(serde_json::json!({"k": 1})),
            };
            let unknown = submitted(fbi, mps, 3).id;
            let batch = vec![
                with_effect(
                    "b1",
                    1,
                    Effect::Insert {
                        request: Box::new(b.clone()),
                        actor: actor.into(),
                        reference: crate::requests::RefSpec {
                            prefix: "US-FBI-2026".into(),
                            wanted: None,
                        },
                    },
                ),
                with_effect("b2", 2, comment(b.id, "hello")),
                with_effect("b3", 3, comment(unknown, "lost")),
                // The same request again: refused, rolled back to its savepoint, recorded.
                with_effect(
                    "b4",
                    4,
                    Effect::Insert {
                        request: Box::new(b.clone()),
                        actor: actor.into(),
                        reference: crate::requests::RefSpec {
                            prefix: "US-FBI-2026".into(),
                            wanted: None,
                        },
                    },
                ),
                with_effect("b5", 5, Effect::Transition(Box::new(tp))),
            ];
            let outcomes = store.fed_receive(&batch).await.unwrap();
            assert_eq!(outcomes[0], "applied");
            assert_eq!(outcomes[1], "applied");
            assert!(
                outcomes[2].starts_with("not applied: not found: request"),
                "{outcomes:?}"
            );
            assert!(
                outcomes[3].starts_with("not applied: already exists: request"),
                "{outcomes:?}"
            );
            assert_eq!(outcomes[4], "applied");
            let (ha, hb) = (history(&store, a.id).await, history(&store, b.id).await);
            assert_eq!(ha, hb);
            assert_eq!(hb.0, "received");
            assert_eq!(hb.2.len(), 3);
            assert_eq!(store.fed_last_applied("cn-mps").await.unwrap(), 5);
            assert_eq!(store.fed_leaves().await.unwrap().len(), 5);
            let inbox = store.fed_inbox_all().await.unwrap();
            assert_eq!(inbox.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), outcomes);
            assert!(store.verify_audit().await.unwrap().is_intact());
            // A duplicate message id or a gap fails the whole batch; nothing is written.
            let dup = store
                .fed_receive(&[with_effect("b6", 6, comment(b.id, "x")), incoming("b1", 7)])
                .await;
            assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
            let gap = store.fed_receive(&[incoming("b9", 9)]).await;
            assert!(matches!(gap, Err(StoreError::Conflict(_))), "{gap:?}");
            assert_eq!(store.fed_last_applied("cn-mps").await.unwrap(), 5);
            assert_eq!(history(&store, b.id).await.2.len(), 3);
            assert_eq!(store.fed_leaves().await.unwrap().len(), 5);
            // A change checked against a state the request has left since (b is `received`):
            // the whole batch fails with a conflict (it is retried and checked again).
            let moved = TransitionRecord::new(b.id, 1, State::Submitted, State::Received, at, actor);
            let raced = store
                .fed_receive(&[with_effect("b6", 6, Effect::Transition(Box::new(moved)))])
                .await;
            assert!(matches!(raced, Err(StoreError::Conflict(_))), "{raced:?}");
            assert_eq!(store.fed_last_applied("cn-mps").await.unwrap(), 5);
            assert_eq!(history(&store, b.id).await, hb);
        }
    }

    #[tokio::test]
    async fn receipts_of_a_batch_are_stored_in_one_go() {
        for store in crate::testing::all_backends().await {
            let now = Timestamp::UNIX_EPOCH;
            let out = |id: &str| comment_to_cn(id, now);
            store
                .fed_write(&FedWrites {
                    outbox: vec![out("m1"), out("m2"), out("m3")],
                    incoming: None,
                })
                .await
                .unwrap();
            let item = |id: &str| {
                (
                    ReceiptRow {
                        message_id: id.into(),
                        envelope_hash: "ab".into(),
                        header: "{}".into(),
                        receipt: "{}".into(),
                        stored_at: now,
                    },
                    leaf("sent", id),
                    leaf("receipt", id),
                )
            };
            assert_eq!(
                store.fed_delivered_batch(&[item("m1"), item("m2")], now).await.unwrap(),
                2
            );
            // Already delivered ones are skipped.
            assert_eq!(
                store.fed_delivered_batch(&[item("m2"), item("m3")], now).await.unwrap(),
                1
            );
            let leaves = store.fed_leaves().await.unwrap();
            assert_eq!(leaves.iter().map(|l| l.idx).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
            assert_eq!(
                leaves
                    .iter()
                    .map(|l| format!("{} {}", l.kind, l.message_id))
                    .collect::<Vec<_>>(),
                [
                    "sent m1",
                    "receipt m1",
                    "sent m2",
                    "receipt m2",
                    "sent m3",
                    "receipt m3"
                ]
            );
            assert_eq!(store.fed_outbox_stats().await.unwrap().pending, 0);
        }
    }

    #[tokio::test]
    async fn writing_outbox_rows_signals_the_workers() {
        let store = crate::testing::sqlite().await.unwrap();
        let mut rx = store.fed_outbox_watch();
        rx.mark_unchanged();
        store
            .fed_write(&FedWrites {
                outbox: vec![OutboxItem {
                    message_id: "m1".into(),
                    recipient: "cn-mps".into(),
                    payload_type: "comment".into(),
                    payload: serde_json::json!({}),
                    created_at: Timestamp::UNIX_EPOCH,
                }],
                incoming: None,
            })
            .await
            .unwrap();
        assert!(rx.has_changed().unwrap());
        store.fed_write_barrier().await;
        assert_eq!(store.fed_outbox_pending("cn-mps", 10).await.unwrap().len(), 1);
    }
}
