//! Clean-up notices over federation (migration 11, docs/federation.md §11):
//! - `intel_notice.issuer`: the agency (code) that issued a notice, for scoping;
//! - `intel_inbox_notice` / `intel_inbox_item`: notices other nodes issued for agencies this
//!   node serves, kept with their marking and issuer, and this node's answers per item;
//! - `intel_remote_answer`: answers partners' nodes sent about items this node issued,
//!   recorded in the transaction that receives them and applied as feedback afterwards (the
//!   clean-up state is written in a transaction of its own, [`IntelTx`]).
//!
//! Outgoing envelopes are written to the outbox in the transaction of the change that causes
//! them: the notice run ([`IntelTx::queue_outbox`]) or the answer ([`Store::intel_inbox_answer`]).

use crate::intel::Arg;
use crate::{FedWrites, IntelTx, OutboxItem, Result, Store, StoreError, WriteTx};
use liaison_core::{Pap, Tlp};
use liaison_intel::time::UnixTime;
use liaison_intel::{FeedbackStatus, IncomingItem, IncomingNotice, Interval, NoticeId, PartnerId, RemoteAnswer};
use sqlx::Row;
use uuid::Uuid;

pub(crate) const MIGRATION_11: &str = r#"
ALTER TABLE intel_notice ADD COLUMN issuer TEXT;
CREATE TABLE intel_inbox_notice (
    sender TEXT NOT NULL,
    id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    partner TEXT NOT NULL,
    interval_start BIGINT NOT NULL,
    interval_end BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    tlp TEXT NOT NULL,
    parts BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    CONSTRAINT intel_inbox_notice_pk PRIMARY KEY (sender, id)
);
CREATE INDEX intel_inbox_notice_by_partner ON intel_inbox_notice (partner, issued_at);
CREATE TABLE intel_inbox_item (
    sender TEXT NOT NULL,
    id TEXT NOT NULL,
    notice_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    status TEXT NOT NULL,
    classification TEXT NOT NULL,
    tlp TEXT NOT NULL,
    detail TEXT NOT NULL,
    answer TEXT,
    note TEXT,
    answered_at BIGINT,
    answered_by TEXT,
    CONSTRAINT intel_inbox_item_pk PRIMARY KEY (sender, id),
    CONSTRAINT intel_inbox_item_notice_fk FOREIGN KEY (sender, notice_id) REFERENCES intel_inbox_notice (sender, id)
);
CREATE INDEX intel_inbox_item_by_notice ON intel_inbox_item (sender, notice_id);
CREATE INDEX intel_inbox_item_by_id ON intel_inbox_item (id);
CREATE TABLE intel_remote_answer (
    message_id TEXT CONSTRAINT intel_remote_answer_pk PRIMARY KEY,
    sender TEXT NOT NULL,
    item_id TEXT NOT NULL,
    partner TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL,
    applied_at BIGINT,
    outcome TEXT
);
CREATE INDEX intel_remote_answer_pending ON intel_remote_answer (applied_at)
"#;

fn ms(t: UnixTime) -> i64 {
    t.saturating_mul(1000)
}

fn secs(ms: i64) -> UnixTime {
    ms.div_euclid(1000)
}

fn answer_str(s: FeedbackStatus) -> &'static str {
    match s {
        FeedbackStatus::Remediated => "remediated",
        FeedbackStatus::NotFound => "not-found",
        FeedbackStatus::Disputed => "disputed",
        FeedbackStatus::FalsePositive => "false-positive",
    }
}

/// Stores (a part of) an incoming notice inside the receiving transaction. A part of a notice
/// already stored adds its items; the notice's marking only ever becomes stricter; an item
/// received again (the same notice re-issued) keeps this node's answer.
pub(crate) async fn incoming_notice_in(w: &mut WriteTx, n: &IncomingNotice) -> Result<()> {
    let old: Option<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT tlp, issuer, partner, pap FROM intel_inbox_notice WHERE sender = $1 AND id = $2")
            .bind(&n.sender)
            .bind(n.id.to_string())
            .fetch_optional(w.conn().await?)
            .await?;
    match old {
        Some((_, issuer, partner, _)) if issuer != n.issuer || partner != n.partner => {
            // A part of the same notice cannot move it to another issuer or agency.
            return Err(StoreError::Duplicate(format!(
                "notice {} from {} (issued by {issuer} for {partner})",
                n.id, n.sender
            )));
        }
        Some((old, _, _, old_pap)) => {
            let old: Tlp = crate::parse(&old, "TLP")?;
            // The stricter PAP of the two, as with the marking; a part without one (an older
            // sender) keeps what is known.
            let old_pap: Option<Pap> = old_pap.as_deref().map(|p| crate::parse(p, "PAP")).transpose()?;
            let pap = match (old_pap, n.pap) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            sqlx::query(
                "UPDATE intel_inbox_notice SET tlp = $1, issued_at = $2, parts = $3, pap = $6 WHERE sender = $4 AND id = $5",
            )
            .bind(old.max(n.tlp).as_str())
            .bind(ms(n.issued_at))
            .bind(i64::from(n.parts))
            .bind(&n.sender)
            .bind(n.id.to_string())
            .bind(pap.map(Pap::as_str))
            .execute(w.conn().await?)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO intel_inbox_notice (sender, id, issuer, partner, interval_start, interval_end, issued_at, tlp, parts, received_at, pap) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&n.sender)
            .bind(n.id.to_string())
            .bind(&n.issuer)
            .bind(&n.partner)
            .bind(ms(n.interval.start))
            .bind(ms(n.interval.end))
            .bind(ms(n.issued_at))
            .bind(n.tlp.as_str())
            .bind(i64::from(n.parts))
            .bind(ms(n.received_at))
            .bind(n.pap.map(Pap::as_str))
            .execute(w.conn().await?)
            .await?;
        }
    }
    for it in &n.items {
        sqlx::query(
            "INSERT INTO intel_inbox_item (sender, id, notice_id, kind, value, status, classification, tlp, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (sender, id) DO UPDATE SET status = excluded.status, tlp = excluded.tlp, detail = excluded.detail",
        )
        .bind(&n.sender)
        .bind(it.item_id.to_string())
        .bind(n.id.to_string())
        .bind(&it.kind)
        .bind(&it.value)
        .bind(&it.status)
        .bind(&it.classification)
        .bind(it.tlp.as_str())
        .bind(it.detail.to_string())
        .execute(w.conn().await?)
        .await?;
    }
    Ok(())
}

/// Records a partner's answer inside the receiving transaction (applied later, see the
/// module docs).
pub(crate) async fn remote_answer_in(w: &mut WriteTx, a: &RemoteAnswer) -> Result<()> {
    sqlx::query(
        "INSERT INTO intel_remote_answer (message_id, sender, item_id, partner, status, note, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&a.message_id)
    .bind(&a.sender)
    .bind(a.item_id.to_string())
    .bind(a.partner.as_str())
    .bind(answer_str(a.status))
    .bind(a.note.clone())
    .bind(&a.actor)
    .bind(ms(a.at))
    .execute(w.conn().await?)
    .await
    .map_err(|e| crate::unique(e, format!("answer in message {}", a.message_id)))?;
    Ok(())
}

/// An incoming item as found for an answer: where it is and what it was addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItemRef {
    pub sender: String,
    pub notice_id: Uuid,
    pub item_id: Uuid,
    pub partner: String,
    pub issuer: String,
}

type NoticeRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
    i64,
    Option<String>,
);
type ItemRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

impl Store {
    /// Incoming notices with their items, newest first; only those addressed to `partner`
    /// (an agency code) when given.
    pub async fn intel_inbox(&self, partner: Option<&str>) -> Result<Vec<IncomingNotice>> {
        let sql = format!(
            "SELECT sender, id, issuer, partner, interval_start, interval_end, issued_at, tlp, parts, received_at, pap \
             FROM intel_inbox_notice {} ORDER BY issued_at DESC, interval_start DESC, sender, id",
            if partner.is_some() { "WHERE partner = $1" } else { "" }
        );
        let mut q = sqlx::query_as::<_, NoticeRow>(sqlx::AssertSqlSafe(sql));
        if let Some(p) = partner {
            q = q.bind(p.to_string());
        }
        let notices = q.fetch_all(&self.pool).await?;
        let item_sql = format!(
            "SELECT i.sender, i.notice_id, i.id, i.kind, i.value, i.status, i.classification, i.tlp, i.detail, \
             i.answer, i.note, i.answered_at, i.answered_by FROM intel_inbox_item i \
             JOIN intel_inbox_notice n ON n.sender = i.sender AND n.id = i.notice_id {} \
             ORDER BY i.sender, i.notice_id, i.kind, i.value",
            if partner.is_some() { "WHERE n.partner = $1" } else { "" }
        );
        let mut q = sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(item_sql));
        if let Some(p) = partner {
            q = q.bind(p.to_string());
        }
        let items = q.fetch_all(&self.pool).await?;
        let mut by_notice: std::collections::HashMap<(String, String), Vec<IncomingItem>> = Default::default();
        for r in items {
            let item = IncomingItem {
                item_id: crate::parse(&r.2, "notice item id")?,
                kind: r.3,
                value: r.4,
                status: r.5,
                classification: r.6,
                tlp: crate::parse(&r.7, "TLP")?,
                detail: serde_json::from_str(&r.8).map_err(|e| StoreError::Corrupt(format!("item detail: {e}")))?,
                answer: r.9.as_deref().map(|a| crate::parse(a, "answer")).transpose()?,
                note: r.10,
                answered_at: r.11.map(secs),
                answered_by: r.12,
            };
            by_notice.entry((r.0, r.1)).or_default().push(item);
        }
        let mut out = Vec::with_capacity(notices.len());
        for r in notices {
            let items = by_notice.remove(&(r.0.clone(), r.1.clone())).unwrap_or_default();
            out.push(IncomingNotice {
                id: crate::parse(&r.1, "notice id")?,
                sender: r.0,
                issuer: r.2,
                partner: r.3,
                interval: Interval {
                    start: secs(r.4),
                    end: secs(r.5),
                },
                issued_at: secs(r.6),
                tlp: crate::parse(&r.7, "TLP")?,
                pap: r.10.as_deref().map(|p| crate::parse(p, "PAP")).transpose()?,
                parts: u32::try_from(r.8).unwrap_or(u32::MAX),
                received_at: secs(r.9),
                items,
            });
        }
        Ok(out)
    }

    /// Stores an incoming notice in a transaction of its own, as receiving it would (for test
    /// and demo data; received notices are stored with their envelope by [`Store::fed_receive`]).
    pub async fn intel_inbox_record(&self, n: &IncomingNotice) -> Result<()> {
        let mut w = self.write().await?;
        incoming_notice_in(&mut w, n).await?;
        w.commit().await
    }

    /// The incoming items with this id (normally one; item ids are chosen by the issuing
    /// nodes, so two nodes could send the same one).
    pub async fn intel_inbox_item(&self, item: Uuid) -> Result<Vec<InboxItemRef>> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT i.sender, i.notice_id, n.partner, n.issuer FROM intel_inbox_item i \
             JOIN intel_inbox_notice n ON n.sender = i.sender AND n.id = i.notice_id WHERE i.id = $1 ORDER BY i.sender",
        )
        .bind(item.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(sender, notice, partner, issuer)| {
                Ok(InboxItemRef {
                    sender,
                    notice_id: crate::parse(&notice, "notice id")?,
                    item_id: item,
                    partner,
                    issuer,
                })
            })
            .collect()
    }

    /// Records this node's answer about an incoming item and the `cleanup_status` message that
    /// carries it to the issuing node, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn intel_inbox_answer(
        &self,
        item: &InboxItemRef,
        answer: FeedbackStatus,
        note: Option<&str>,
        by: &str,
        at: UnixTime,
        outbox: OutboxItem,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE intel_inbox_item SET answer = $1, note = $2, answered_at = $3, answered_by = $4 WHERE sender = $5 AND id = $6",
        )
        .bind(answer_str(answer))
        .bind(note.map(str::to_string))
        .bind(ms(at))
        .bind(by.to_string())
        .bind(&item.sender)
        .bind(item.item_id.to_string())
        .execute(w.conn().await?)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("incoming notice item {}", item.item_id)));
        }
        crate::federation::write_fed(
            &mut w,
            &FedWrites {
                outbox: vec![outbox],
                incoming: None,
            },
        )
        .await?;
        w.commit().await
    }

    /// Answers received from partners' nodes and not applied yet, oldest first.
    pub async fn intel_remote_pending(&self, limit: i64) -> Result<Vec<RemoteAnswer>> {
        let rows = sqlx::query(
            "SELECT message_id, sender, item_id, partner, status, note, actor, at FROM intel_remote_answer \
             WHERE applied_at IS NULL ORDER BY at, message_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(RemoteAnswer {
                message_id: r.try_get(0)?,
                sender: r.try_get(1)?,
                item_id: crate::parse(&r.try_get::<String, _>(2)?, "notice item id")?,
                partner: PartnerId::new(&r.try_get::<String, _>(3)?),
                status: crate::parse(&r.try_get::<String, _>(4)?, "answer")?,
                note: r.try_get(5)?,
                actor: r.try_get(6)?,
                at: secs(r.try_get(7)?),
            });
        }
        Ok(out)
    }

    /// Every answer received from partners' nodes with what became of it (`None`: pending).
    pub async fn intel_remote_answers(&self) -> Result<Vec<(RemoteAnswer, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT message_id, sender, item_id, partner, status, note, actor, at, outcome FROM intel_remote_answer ORDER BY at, message_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((
                RemoteAnswer {
                    message_id: r.try_get(0)?,
                    sender: r.try_get(1)?,
                    item_id: crate::parse(&r.try_get::<String, _>(2)?, "notice item id")?,
                    partner: PartnerId::new(&r.try_get::<String, _>(3)?),
                    status: crate::parse(&r.try_get::<String, _>(4)?, "answer")?,
                    note: r.try_get(5)?,
                    actor: r.try_get(6)?,
                    at: secs(r.try_get(7)?),
                },
                r.try_get(8)?,
            ));
        }
        Ok(out)
    }

    /// The latest answer to each answered item of an issued notice: item id → (status, at
    /// (Unix seconds), note).
    pub async fn intel_notice_answers(
        &self,
        notice: NoticeId,
    ) -> Result<std::collections::HashMap<Uuid, (String, i64, Option<String>)>> {
        let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT f.item_id, f.status, f.at, f.note FROM intel_feedback f \
             JOIN intel_notice_item i ON i.id = f.item_id WHERE i.notice_id = $1 ORDER BY f.at, f.id",
        )
        .bind(notice.0.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = std::collections::HashMap::new();
        for (item, status, at, note) in rows {
            // Stored in milliseconds, like every instant of the clean-up tables.
            out.insert(
                crate::parse(&item, "notice item id")?,
                (status, at.div_euclid(1000), note),
            );
        }
        Ok(out)
    }

    /// The agency (code) that issued a notice, if recorded.
    pub async fn intel_notice_issuer(&self, notice: NoticeId) -> Result<Option<String>> {
        let v: Option<Option<String>> = sqlx::query_scalar("SELECT issuer FROM intel_notice WHERE id = $1")
            .bind(notice.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.flatten())
    }

    /// The partners (codes) of the notices agency `issuer` issued.
    pub async fn intel_partners_of_issuer(&self, issuer: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT partner FROM intel_notice WHERE issuer = $1 ORDER BY partner")
                .bind(issuer.to_string())
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

impl IntelTx {
    /// Records who issued `notices` (an agency code).
    pub async fn set_issuer(&mut self, notices: &[NoticeId], issuer: &str) -> Result<()> {
        for n in notices {
            self.exec_args(
                "UPDATE intel_notice SET issuer = $1 WHERE id = $2",
                &[Arg::Text(Some(issuer.to_string())), Arg::Text(Some(n.to_string()))],
            )
            .await?;
        }
        Ok(())
    }

    /// Writes messages to the outbox in this transaction (their link numbers assigned here),
    /// as [`Store::fed_write`] does for a request change.
    pub async fn queue_outbox(&mut self, items: &[OutboxItem]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        crate::federation::outbox_signal().send_modify(|n| *n = n.wrapping_add(1));
        for o in items {
            self.exec_args(
                "INSERT INTO links (peer, next_seq, last_applied) VALUES ($1, 1, 0) ON CONFLICT (peer) DO NOTHING",
                &[Arg::Text(Some(o.recipient.clone()))],
            )
            .await?;
            let seq = self
                .scalar(
                    "UPDATE links SET next_seq = next_seq + 1 WHERE peer = $1 RETURNING next_seq - 1",
                    &[Arg::Text(Some(o.recipient.clone()))],
                )
                .await?;
            let at = crate::ms(o.created_at);
            self.exec_args(
                "INSERT INTO outbox (message_id, recipient, link_seq, payload_type, payload, created_at, attempts, next_attempt) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
                &[
                    Arg::Text(Some(o.message_id.clone())),
                    Arg::Text(Some(o.recipient.clone())),
                    Arg::Int(Some(seq)),
                    Arg::Text(Some(o.payload_type.clone())),
                    Arg::Text(Some(o.payload.to_string())),
                    Arg::Int(Some(at)),
                    Arg::Int(Some(at)),
                ],
            )
            .await?;
        }
        Ok(())
    }

    /// Claims a received answer for applying in this transaction: false if it was applied (or
    /// claimed) already.
    pub async fn claim_remote_answer(&mut self, message_id: &str) -> Result<bool> {
        let n = self
            .exec_args(
                "UPDATE intel_remote_answer SET outcome = 'applying' WHERE message_id = $1 AND applied_at IS NULL AND outcome IS NULL",
                &[Arg::Text(Some(message_id.to_string()))],
            )
            .await?;
        Ok(n == 1)
    }

    /// Marks a received answer as applied (or why it was not), in the transaction that
    /// applied it.
    pub async fn mark_remote_answer(&mut self, message_id: &str, outcome: &str, at: UnixTime) -> Result<()> {
        self.exec_args(
            "UPDATE intel_remote_answer SET applied_at = $1, outcome = $2 WHERE message_id = $3",
            &[
                Arg::Int(Some(ms(at))),
                Arg::Text(Some(outcome.to_string())),
                Arg::Text(Some(message_id.to_string())),
            ],
        )
        .await?;
        Ok(())
    }
}
