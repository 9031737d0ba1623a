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

type Row = (i64, i64, String, String, String, String, String, String);

fn entry(r: Row) -> Result<AuditEntry> {
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
    /// Recomputes the whole chain in pages and reports the first broken link.
    pub async fn verify_audit(&self) -> Result<AuditReport> {
        let (head_seq, head_hash): (i64, String) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let mut prev = "0".repeat(64);
        let mut expected_seq = 1i64;
        let mut after = 0i64;
        loop {
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 5000",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let e = entry(r)?;
                after = e.seq;
                let bad = |why: String| {
                    Ok(AuditReport {
                        entries: head_seq,
                        head_hash: head_hash.clone(),
                        first_bad: Some((e.seq, why)),
                    })
                };
                if e.seq != expected_seq {
                    return bad(format!(
                        "entry {expected_seq} is missing (next stored entry is {})",
                        e.seq
                    ));
                }
                if e.prev_hash != prev {
                    return bad("prev_hash does not match the previous entry's hash".into());
                }
                let h = chain_hash(&prev, e.seq, ms(e.at), &e.actor, &e.action, &e.subject, &e.detail);
                if h != e.hash {
                    return bad("content does not match its hash (entry altered)".into());
                }
                prev = h;
                expected_seq += 1;
            }
        }
        let last = expected_seq - 1;
        if last != head_seq || prev != head_hash {
            return Ok(AuditReport {
                entries: head_seq,
                head_hash: head_hash.clone(),
                first_bad: Some((
                    last + 1,
                    format!("the log ends at entry {last} but the head records {head_seq} entries (log truncated)"),
                )),
            });
        }
        Ok(AuditReport {
            entries: head_seq,
            head_hash,
            first_bad: None,
        })
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
