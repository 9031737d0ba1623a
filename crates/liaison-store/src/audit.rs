//! The append-only, hash-chained audit log.
//!
//! Entry `n` stores `hash_n = SHA-256(hash_{n-1} | n | at | actor | action | subject | detail)`
//! (fields separated by a 0x1f unit separator, `hash_0` = 64 zeros). Changing, removing or
//! reordering any entry breaks every later hash; `audit_head` holds the latest hash so that
//! truncating the tail is detected too.

use crate::writer::Batch;
use crate::{Result, Store, StoreError, WriteTx, ms, ts};
use liaison_core::record::{AuditEntry, AuditReport};

use sha2::{Digest, Sha256};

pub(crate) fn chain_hash(
    prev: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for (i, part) in [
        prev,
        &seq.to_string(),
        &at_ms.to_string(),
        actor,
        action,
        subject,
        detail,
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends an entry inside the caller's transaction.
pub(crate) async fn append(
    w: &mut WriteTx,
    at: jiff::Timestamp,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &serde_json::Value,
) -> Result<i64> {
    // The first append of a transaction reads the head with an UPDATE, which takes the row
    // lock on PostgreSQL so concurrent instances serialise here; the head row itself is
    // written once per transaction, just before the commit (see `WriteTx::audit_head`).
    let mut head = w.audit_head().await?;
    let mut b = Batch::default();
    let seq = push(&mut b, &mut head, at, actor, action, subject, detail);
    w.run(b).await?;
    w.set_audit_head(head.0, head.1);
    Ok(seq)
}

/// Adds the statement that appends an entry after `head` to `b`, and moves `head` to that
/// entry. Once the batch has run, give the new head to [`WriteTx::set_audit_head`].
pub(crate) fn push(
    b: &mut Batch,
    head: &mut (i64, String),
    at: jiff::Timestamp,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &serde_json::Value,
) -> i64 {
    let seq = head.0 + 1;
    let detail = detail.to_string();
    let at_ms = ms(at);
    let hash = chain_hash(&head.1, seq, at_ms, actor, action, subject, &detail);
    b.push(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            seq.into(),
            at_ms.into(),
            actor.into(),
            action.into(),
            subject.into(),
            detail.into(),
            std::mem::take(&mut head.1).into(),
            hash.clone().into(),
        ],
    );
    *head = (seq, hash);
    seq
}

pub(crate) type Row = (i64, i64, String, String, String, String, String, String);

pub(crate) fn entry(r: Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.0,
        at: ts(r.1)?,
        actor: r.2,
        action: r.3,
        subject: r.4,
        detail: r.5,
        prev_hash: r.6,
        hash: r.7,
    })
}

impl Store {
    /// Recomputes the whole chain, checks it against the audit anchors in the ledger, and
    /// checks every request's content, state and version and every comment's text against
    /// the digests their latest audit entries recorded. Reads one snapshot of the database
    /// (one read transaction), so writes running meanwhile cannot look like a truncation.
    pub async fn verify_audit(&self) -> Result<AuditReport> {
        let mut tx = self.pool.begin().await?;
        if self.backend == crate::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let (head_seq, head_hash): (i64, String) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let mut v = Verification::new(head_seq, head_hash);
        // Anchors: (audit seq → hash) from the ledger's audit_anchor leaves.
        let leaves: Vec<(i64, String)> =
            sqlx::query_as("SELECT idx, leaf FROM ledger_leaves WHERE kind = 'audit_anchor' ORDER BY idx")
                .fetch_all(&mut *tx)
                .await?;
        let mut anchors: std::collections::BTreeMap<i64, String> = Default::default();
        for (idx, leaf) in leaves {
            let parsed: serde_json::Value = serde_json::from_str(&leaf).unwrap_or_default();
            let a = &parsed["anchor"];
            match (a["audit_seq"].as_i64(), a["audit_hash"].as_str()) {
                (Some(seq), Some(hash)) => {
                    anchors.insert(seq, hash.to_string());
                }
                _ => v.problem(0, format!("ledger leaf {idx} is not a readable audit anchor")),
            }
        }
        let mut prev = "0".repeat(64);
        let mut expected_seq = 1i64;
        let mut after = 0i64;
        let mut chain_ok = true;
        'pages: loop {
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 5000",
            )
            .bind(after)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let e = entry(r)?;
                after = e.seq;
                if e.seq != expected_seq {
                    v.problem(
                        e.seq,
                        format!("entry {expected_seq} is missing (next stored entry is {})", e.seq),
                    );
                    chain_ok = false;
                    break 'pages;
                }
                if e.prev_hash != prev {
                    v.problem(e.seq, "prev_hash does not match the previous entry's hash".into());
                    chain_ok = false;
                    break 'pages;
                }
                let h = chain_hash(&prev, e.seq, ms(e.at), &e.actor, &e.action, &e.subject, &e.detail);
                if h != e.hash {
                    v.problem(e.seq, "content does not match its hash (entry altered)".into());
                    chain_ok = false;
                    break 'pages;
                }
                if let Some(anchored) = anchors.get(&e.seq) {
                    v.report.anchors_checked += 1;
                    v.report.last_anchored_seq = Some(e.seq);
                    if anchored != &h {
                        v.problem(
                            e.seq,
                            "the log up to this entry was rewritten: the ledger's audit anchor (witnessed by peers through tree heads) records another hash".into(),
                        );
                    }
                }
                v.note(&e);
                prev = h;
                expected_seq += 1;
            }
        }
        let last = expected_seq - 1;
        if chain_ok && (last != v.report.entries || prev != v.report.head_hash) {
            v.problem(
                last + 1,
                format!(
                    "the log ends at entry {last} but the head records {} entries (log truncated)",
                    v.report.entries
                ),
            );
        }
        if chain_ok {
            if let Some((&seq, _)) = anchors.iter().find(|(s, _)| **s > last) {
                v.problem(
                    seq,
                    format!("the ledger anchors entry {seq}, but the log ends at {last} (log truncated)"),
                );
            }
            v.check_content(&mut tx).await?;
        }
        tx.rollback().await?;
        Ok(v.report)
    }

    /// Audit entries after `after_seq`, oldest first.
    pub async fn audit_entries(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(entry).collect()
    }

    /// Records an administrative action (user created, token issued, …) on its own.
    pub async fn audit(
        &self,
        at: jiff::Timestamp,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> Result<i64> {
        let mut w = self.write().await?;
        let seq = append(&mut w, at, actor, action, subject, detail).await?;
        w.commit().await?;
        Ok(seq)
    }

    /// Test and forensics helper: overwrites an entry's detail without fixing the chain.
    #[doc(hidden)]
    pub async fn tamper_audit_for_test(&self, seq: i64, detail: &str) -> Result<()> {
        let r = sqlx::query("UPDATE audit_log SET detail = $1 WHERE seq = $2")
            .bind(detail)
            .bind(seq)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("audit entry {seq}")));
        }
        Ok(())
    }
}

/// SHA-256 of `text`, hex: the digest audit entries record of request content and comments.
pub(crate) fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What the audit entries vouch for, gathered while the chain is walked.
struct Verification {
    report: AuditReport,
    /// Request id → (entry seq, content digest) of its latest create or edit.
    content: std::collections::HashMap<String, (i64, Option<String>)>,
    /// Request id → (entry seq, state, version) after its latest create, edit or transition.
    state: std::collections::HashMap<String, (i64, Option<String>, i64)>,
    /// Comment event id → (entry seq, request id, text digest).
    comments: std::collections::HashMap<String, (i64, String, Option<String>)>,
    /// Evidence file id → (entry seq, its `evidence.upload` detail).
    evidence: std::collections::HashMap<String, (i64, serde_json::Value)>,
}

impl Verification {
    fn new(entries: i64, head_hash: String) -> Self {
        Verification {
            report: AuditReport {
                entries,
                head_hash,
                first_bad: None,
                problems: 0,
                anchors_checked: 0,
                last_anchored_seq: None,
                requests_checked: 0,
                comments_checked: 0,
                evidence_checked: 0,
                unchecked_legacy: 0,
            },
            content: Default::default(),
            state: Default::default(),
            comments: Default::default(),
            evidence: Default::default(),
        }
    }

    fn problem(&mut self, seq: i64, why: String) {
        self.report.problems += 1;
        if self.report.first_bad.is_none() {
            self.report.first_bad = Some((seq, why));
        }
    }

    /// Takes what an entry says about a request or comment.
    fn note(&mut self, e: &AuditEntry) {
        if e.action == "evidence.upload" || e.action == "evidence.received" {
            let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
            self.evidence.insert(e.subject.clone(), (e.seq, d));
            return;
        }
        if !e.action.starts_with("request.") {
            return;
        }
        let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let text = |k: &str| d[k].as_str().map(str::to_string);
        match e.action.as_str() {
            // A marking change rewrites the body only: state and version stay as they were.
            "request.marking" => {
                self.content.insert(e.subject.clone(), (e.seq, text("content_sha256")));
            }
            "request.create" | "request.edit" => {
                self.content.insert(e.subject.clone(), (e.seq, text("content_sha256")));
                let prior_state = self.state.get(&e.subject).and_then(|s| s.1.clone());
                let state = text("state").or(prior_state);
                let version = d["version"].as_i64().unwrap_or(-1);
                self.state.insert(e.subject.clone(), (e.seq, state, version));
            }
            "request.transition" => {
                let version = d["version"].as_i64().unwrap_or(-1);
                self.state.insert(e.subject.clone(), (e.seq, text("to"), version));
            }
            "request.comment" => {
                if let Some(ev) = text("event") {
                    self.comments
                        .insert(ev, (e.seq, e.subject.clone(), text("text_sha256")));
                }
            }
            _ => {}
        }
    }

    /// Compares the stored requests and comments with what their audit entries vouch for.
    async fn check_content(&mut self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
        let mut after = String::new();
        loop {
            let rows: Vec<(String, String, String, i64, String, Option<String>)> = sqlx::query_as(
                "SELECT id, body, state, version, tlp, named FROM requests WHERE id > $1 ORDER BY id LIMIT 2000",
            )
            .bind(&after)
            .fetch_all(&mut **tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for (id, body, state, version, tlp, named) in rows {
                after = id.clone();
                // The marking columns are what reads enforce: they must say what the body
                // (vouched for by its digest below) says.
                if !marking_matches(&body, &tlp, named.as_deref()) {
                    let seq = self.content.get(&id).map(|c| c.0).unwrap_or(0);
                    self.problem(
                        seq,
                        format!("request {id}: its marking ({tlp}) was changed outside the node"),
                    );
                }
                let Some((seq, vouched)) = self.content.remove(&id) else {
                    self.problem(
                        0,
                        format!("request {id} has no audit entry (inserted outside the node)"),
                    );
                    continue;
                };
                let Some(vouched) = vouched else {
                    self.report.unchecked_legacy += 1;
                    continue;
                };
                self.report.requests_checked += 1;
                if digest(&body) != vouched {
                    self.problem(seq, format!("request {id}: its content was changed outside the node"));
                }
                if let Some((seq, s, v)) = self.state.get(&id) {
                    let state_ok = s.as_deref().is_none_or(|s| s == state);
                    if !state_ok || *v != version {
                        self.problem(
                            *seq,
                            format!(
                                "request {id}: stored as {state} version {version}, but its audit entries end at {} version {v}",
                                s.as_deref().unwrap_or("?")
                            ),
                        );
                    }
                }
            }
        }
        for (id, (seq, _)) in std::mem::take(&mut self.content) {
            self.problem(
                seq,
                format!("request {id} is in the audit log but no longer stored (deleted)"),
            );
        }
        let mut after = String::new();
        loop {
            let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT id, request_id, reason FROM request_events WHERE event = 'comment' AND id > $1 ORDER BY id LIMIT 5000",
            )
            .bind(&after)
            .fetch_all(&mut **tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for (id, request, text) in rows {
                after = id.clone();
                let Some((seq, subject, vouched)) = self.comments.remove(&id) else {
                    self.problem(
                        0,
                        format!("comment {id} has no audit entry (inserted outside the node)"),
                    );
                    continue;
                };
                let Some(vouched) = vouched else {
                    self.report.unchecked_legacy += 1;
                    continue;
                };
                self.report.comments_checked += 1;
                if subject != request || digest(text.as_deref().unwrap_or("")) != vouched {
                    self.problem(
                        seq,
                        format!("comment {id} on request {request} was changed outside the node"),
                    );
                }
            }
        }
        for (id, (seq, request, _)) in std::mem::take(&mut self.comments) {
            self.problem(
                seq,
                format!("comment {id} on request {request} is in the audit log but no longer stored (deleted)"),
            );
        }
        self.check_evidence(tx).await
    }

    /// Evidence rows against their `evidence.upload` entries: the digest (the content's
    /// address), size, request and marking a file was stored with (docs/evidence.md).
    async fn check_evidence(&mut self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
        let mut after = String::new();
        loop {
            let rows: Vec<(String, String, String, i64, String)> = sqlx::query_as(
                "SELECT id, request_id, sha256, size, tlp FROM evidence_files WHERE id > $1 ORDER BY id LIMIT 5000",
            )
            .bind(&after)
            .fetch_all(&mut **tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for (id, request, sha256, size, tlp) in rows {
                after = id.clone();
                let Some((seq, d)) = self.evidence.remove(&id) else {
                    self.problem(
                        0,
                        format!("evidence file {id} has no audit entry (inserted outside the node)"),
                    );
                    continue;
                };
                self.report.evidence_checked += 1;
                let same = d["request"].as_str() == Some(request.as_str())
                    && d["sha256"].as_str() == Some(sha256.as_str())
                    && d["size"].as_i64() == Some(size)
                    && d["marking"]["tlp"].as_str() == Some(tlp.as_str());
                if !same {
                    self.problem(
                        seq,
                        format!("evidence file {id} on request {request}: its record was changed outside the node"),
                    );
                }
            }
        }
        for (id, (seq, _)) in std::mem::take(&mut self.evidence) {
            self.problem(
                seq,
                format!("evidence file {id} is in the audit log but no longer stored (deleted)"),
            );
        }
        Ok(())
    }
}

impl Store {
    /// The audit chain's head as committed: (entries, hash of the last).
    pub async fn audit_head_now(&self) -> Result<(i64, String)> {
        Ok(sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The audit entry the newest anchor in the ledger covers (0: none yet).
    pub async fn last_audit_anchor(&self) -> Result<i64> {
        let leaf: Option<String> =
            sqlx::query_scalar("SELECT leaf FROM ledger_leaves WHERE kind = 'audit_anchor' ORDER BY idx DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(leaf
            .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .and_then(|v| v["anchor"]["audit_seq"].as_i64())
            .unwrap_or(0))
    }

    /// Appends an audit anchor leaf to the ledger, unless an anchor of entry `seq` or a later
    /// one is there already (two instances anchoring at once). `Ok(false)`: nothing appended.
    pub async fn append_audit_anchor(&self, seq: i64, leaf: &crate::LeafRecord, at: jiff::Timestamp) -> Result<bool> {
        let mut w = self.write().await?;
        crate::federation::lock_ledger(&mut w).await?;
        let leaves: Vec<String> =
            sqlx::query_scalar("SELECT leaf FROM ledger_leaves WHERE kind = 'audit_anchor' ORDER BY idx DESC LIMIT 1")
                .fetch_all(w.conn().await?)
                .await?;
        let last = leaves
            .first()
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["anchor"]["audit_seq"].as_i64())
            .unwrap_or(0);
        if last >= seq {
            return Ok(false);
        }
        crate::federation::append_leaves(&mut w, &[(leaf, at)]).await?;
        w.commit().await?;
        Ok(true)
    }
}

impl Store {
    /// Test and forensics helper: runs one SQL statement as an insider with database access
    /// would (no audit entry, no checks). Never called by the node.
    #[doc(hidden)]
    pub async fn raw_sql_for_test(&self, sql: &str) -> Result<u64> {
        let r = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Test helper: what an insider who rewrites entry `seq` and recomputes every later hash
    /// and the head would leave behind (the chain alone then verifies).
    #[doc(hidden)]
    pub async fn rewrite_and_rechain_for_test(&self, seq: i64, detail: &str) -> Result<()> {
        self.tamper_audit_for_test(seq, detail).await?;
        let mut prev: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(seq - 1)
            .fetch_optional(&self.pool)
            .await?
            .unwrap_or_else(|| "0".repeat(64));
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log WHERE seq >= $1 ORDER BY seq",
        )
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let e = entry(r)?;
            let h = chain_hash(&prev, e.seq, ms(e.at), &e.actor, &e.action, &e.subject, &e.detail);
            sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
                .bind(&prev)
                .bind(&h)
                .bind(e.seq)
                .execute(&self.pool)
                .await?;
            sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1 AND seq = $2")
                .bind(&h)
                .bind(e.seq)
                .execute(&self.pool)
                .await?;
            prev = h;
        }
        Ok(())
    }
}

/// Whether a request's `tlp`/`named` columns say what its body's marking says (a body written
/// before markings has none: the columns then hold the upgrade default).
fn marking_matches(body: &str, tlp: &str, named: Option<&str>) -> bool {
    #[derive(serde::Deserialize)]
    struct MarkingOnly {
        #[serde(default)]
        marking: Option<liaison_core::Marking>,
    }
    let Ok(b) = serde_json::from_str::<MarkingOnly>(body) else {
        return false;
    };
    let m = b.marking.unwrap_or_default();
    let names: Vec<String> = match named {
        Some(n) => match serde_json::from_str(n) {
            Ok(v) => v,
            Err(_) => return false,
        },
        None => Vec::new(),
    };
    m.tlp.as_str() == tlp && m.recipients == names
}
