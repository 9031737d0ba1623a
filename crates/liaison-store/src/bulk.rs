//! Evidence transfer over federation (schema migration 16, docs/federation.md §12): what this
//! node offered to peers (`bulk_out`, one row per file and peer) and what peers offer it
//! (`bulk_in`, one row per incoming transfer, with the data key of the content being
//! received, wrapped like a stored file's).
//!
//! Invariants:
//! - an offer (its `bulk_out` row, the manifest in the outbox and the custody entry
//!   `evidence.offer`) commits in one transaction;
//! - an incoming manifest's `bulk_in` row is written by the transaction that records the
//!   envelope (an [`crate::Effect::BulkOffer`]);
//! - a received file's row, its first custody entry `evidence.received`, the transfer's end
//!   and the signed result to the sender (outbox) commit in one transaction, after the content
//!   was verified and made durable.

use crate::evidence::{custody_in, insert_file_in};
use crate::federation::{OutboxItem, write_fed, write_outbox_in};
use crate::{FedWrites, Result, Store, StoreError, WriteTx, ms, parse, ts};
use jiff::Timestamp;
use liaison_core::record::EvidenceFile;
use liaison_core::{AgencyId, RequestId, Side};

pub(crate) const MIGRATION_16: &str = r#"
CREATE TABLE bulk_out (
    file_id TEXT NOT NULL,
    peer TEXT NOT NULL,
    state TEXT NOT NULL,
    message_id TEXT,
    detail TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (file_id, peer)
);
CREATE INDEX bulk_out_state ON bulk_out(state, file_id);
CREATE TABLE bulk_in (
    sender TEXT NOT NULL,
    transfer_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    manifest TEXT NOT NULL,
    side TEXT NOT NULL,
    uploader_agency TEXT NOT NULL,
    state TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    refusals BIGINT NOT NULL,
    file_id TEXT,
    detail TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (sender, transfer_id)
);
CREATE INDEX bulk_in_file ON bulk_in(file_id)
"#;

/// A file offered (or not to be offered) to a peer.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOut {
    pub file_id: String,
    /// The peer node (empty for `local`: the request has no party on another node).
    pub peer: String,
    /// `local`, `offered` (manifest queued or delivered, chunks being pushed), `sent` (every
    /// chunk accepted), `stored` (the peer's signed result says verified and stored),
    /// `refused` (the peer refused it).
    pub state: String,
    /// The manifest envelope's message id.
    pub message_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An incoming transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkIn {
    pub sender: String,
    pub transfer_id: String,
    /// The manifest envelope's message id.
    pub message_id: String,
    pub request_id: RequestId,
    /// The manifest (JSON, as received).
    pub manifest: String,
    /// The side the sender acts for on the request.
    pub side: Side,
    pub uploader_agency: AgencyId,
    /// `receiving`, `stored` or `refused`.
    pub state: String,
    /// The content's blob id and data key (wrapped), for the sealed file being written.
    pub storage: crate::EvidenceStorage,
    /// Chunks refused so far.
    pub refusals: i64,
    /// The stored file (when `stored`).
    pub file_id: Option<String>,
    /// Why it was refused (JSON `{"code", "detail"}`).
    pub detail: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

type OutTuple = (String, String, String, Option<String>, Option<String>, i64, i64);

fn out_row(r: OutTuple) -> Result<BulkOut> {
    Ok(BulkOut {
        file_id: r.0,
        peer: r.1,
        state: r.2,
        message_id: r.3,
        detail: r.4,
        created_at: ts(r.5)?,
        updated_at: ts(r.6)?,
    })
}

const OUT_COLS: &str = "SELECT file_id, peer, state, message_id, detail, created_at, updated_at FROM bulk_out";
const IN_COLS: &str = "SELECT sender, transfer_id, message_id, request_id, manifest, side, uploader_agency, state, blob_id, wrapped_key, kek_id, refusals, file_id, detail, created_at, updated_at FROM bulk_in";

fn in_row(r: &sqlx::any::AnyRow) -> Result<BulkIn> {
    use sqlx::Row;
    let side: String = r.try_get(5)?;
    Ok(BulkIn {
        sender: r.try_get(0)?,
        transfer_id: r.try_get(1)?,
        message_id: r.try_get(2)?,
        request_id: parse(&r.try_get::<String, _>(3)?, "request_id")?,
        manifest: r.try_get(4)?,
        side: match side.as_str() {
            "requesting" => Side::Requesting,
            "requested" => Side::Requested,
            other => return Err(StoreError::Corrupt(format!("bulk_in side '{other}'"))),
        },
        uploader_agency: parse(&r.try_get::<String, _>(6)?, "uploader_agency")?,
        state: r.try_get(7)?,
        storage: crate::EvidenceStorage {
            blob_id: r.try_get(8)?,
            wrapped_key: r.try_get(9)?,
            kek_id: r.try_get(10)?,
        },
        refusals: r.try_get(11)?,
        file_id: r.try_get(12)?,
        detail: r.try_get(13)?,
        created_at: ts(r.try_get(14)?)?,
        updated_at: ts(r.try_get(15)?)?,
    })
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Requesting => "requesting",
        Side::Requested => "requested",
    }
}

/// The subject of audit entries about an incoming transfer that has no file (yet).
pub fn transfer_subject(sender: &str, transfer_id: &str) -> String {
    format!("transfer:{sender}/{transfer_id}")
}

/// Inserts an incoming transfer (the effect of an accepted `evidence_manifest`); a refused one
/// gets its audit entry `evidence.transfer_refused` in the same transaction.
pub(crate) async fn bulk_offer_in(w: &mut WriteTx, b: &BulkIn, result: Option<&OutboxItem>) -> Result<()> {
    sqlx::query(
        "INSERT INTO bulk_in (sender, transfer_id, message_id, request_id, manifest, side, uploader_agency, state, blob_id, wrapped_key, kek_id, refusals, file_id, detail, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, NULL, $12, $13, $13)",
    )
    .bind(&b.sender)
    .bind(&b.transfer_id)
    .bind(&b.message_id)
    .bind(b.request_id.to_string())
    .bind(&b.manifest)
    .bind(side_str(b.side))
    .bind(b.uploader_agency.to_string())
    .bind(&b.state)
    .bind(&b.storage.blob_id)
    .bind(&b.storage.wrapped_key)
    .bind(&b.storage.kek_id)
    .bind(b.detail.clone())
    .bind(ms(b.created_at))
    .execute(w.conn().await?)
    .await
    .map_err(|e| crate::unique(e, format!("transfer {} from {}", b.transfer_id, b.sender)))?;
    if b.state == "refused" {
        let detail: serde_json::Value = b
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        crate::audit::append(
            w,
            b.created_at,
            &format!("{}:federation", b.sender),
            "evidence.transfer_refused",
            &transfer_subject(&b.sender, &b.transfer_id),
            &serde_json::json!({"request": b.request_id.to_string(), "reason": detail, "message_id": b.message_id}),
        )
        .await?;
    }
    if let Some(r) = result {
        write_outbox_in(w, std::slice::from_ref(r)).await?;
    }
    Ok(())
}

/// Applies a peer's `evidence_result` to the file it offered: the state and the custody entry
/// (`evidence.delivered` or `evidence.refused`). A result for a file not offered to `peer` is
/// `NotFound` (recorded as not applied).
pub(crate) async fn bulk_result_in(
    w: &mut WriteTx,
    file_id: &str,
    peer: &str,
    stored: bool,
    at: Timestamp,
    detail: &serde_json::Value,
) -> Result<()> {
    let state = if stored { "stored" } else { "refused" };
    // The peer's result can overtake the sender's own record that every chunk was accepted
    // (`evidence.sent`, written after the last chunk's answer): the receiver stores the file
    // and signs its result as soon as the last chunk is in. A stored result proves every chunk
    // arrived, so the missing entry is written first and the custody log keeps its order.
    let was: Option<String> = sqlx::query_scalar("SELECT state FROM bulk_out WHERE file_id = $1 AND peer = $2")
        .bind(file_id)
        .bind(peer)
        .fetch_optional(w.conn().await?)
        .await?;
    let n = sqlx::query(
        "UPDATE bulk_out SET state = $1, detail = $2, updated_at = $3 WHERE file_id = $4 AND peer = $5 AND state IN ('offered', 'sent')",
    )
    .bind(state)
    .bind(detail.to_string())
    .bind(ms(at))
    .bind(file_id)
    .bind(peer)
    .execute(w.conn().await?)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "no transfer of file {file_id} to {peer} is waiting for a result"
        )));
    }
    if stored && was.as_deref() == Some("offered") {
        let confirmed = serde_json::json!({"peer": peer, "confirmed_by": "evidence_result"});
        custody_in(w, file_id, at, "federation", "evidence.sent", &confirmed).await?;
    }
    let action = if stored {
        "evidence.delivered"
    } else {
        "evidence.refused"
    };
    custody_in(w, file_id, at, &format!("{peer}:federation"), action, detail).await?;
    Ok(())
}

impl Store {
    /// Live files after `after` (in id order) with no transfer row yet (never offered, not
    /// received from a peer): (file id, request id).
    pub async fn bulk_unoffered(&self, after: &str, limit: i64) -> Result<Vec<(String, RequestId)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT f.id, f.request_id FROM evidence_files f WHERE f.id > $1 AND f.deleted_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM bulk_out o WHERE o.file_id = f.id) \
             AND NOT EXISTS (SELECT 1 FROM bulk_in i WHERE i.file_id = f.id) ORDER BY f.id LIMIT $2",
        )
        .bind(after)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(f, r)| Ok((f, parse(&r, "request_id")?)))
            .collect()
    }

    /// Records that file `file_id` stays here (its request has no party on another node).
    pub async fn bulk_mark_local(&self, file_id: &str, now: Timestamp) -> Result<()> {
        let file_id = file_id.to_string();
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            sqlx::query(
                "INSERT INTO bulk_out (file_id, peer, state, message_id, detail, created_at, updated_at) VALUES ($1, '', 'local', NULL, NULL, $2, $2) \
                 ON CONFLICT (file_id, peer) DO NOTHING",
            )
            .bind(&file_id)
            .bind(ms(now))
            .execute(w.conn().await?)
            .await?;
            w.commit().await
        })
        .await
    }

    /// Offers file `file_id` to `peer`: its `bulk_out` row, the manifest in the outbox and the
    /// custody entry `evidence.offer`, in one transaction. False if it was offered already.
    pub async fn bulk_offer(
        &self,
        file_id: &str,
        peer: &str,
        manifest: OutboxItem,
        actor: &str,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<bool> {
        let (file_id, peer, actor, detail) = (file_id.to_string(), peer.to_string(), actor.to_string(), detail.clone());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let n = sqlx::query(
                "INSERT INTO bulk_out (file_id, peer, state, message_id, detail, created_at, updated_at) VALUES ($1, $2, 'offered', $3, NULL, $4, $4) \
                 ON CONFLICT (file_id, peer) DO NOTHING",
            )
            .bind(&file_id)
            .bind(&peer)
            .bind(&manifest.message_id)
            .bind(ms(now))
            .execute(w.conn().await?)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            write_fed(
                &mut w,
                &FedWrites {
                    outbox: vec![manifest],
                    incoming: None,
                },
            )
            .await?;
            custody_in(&mut w, &file_id, now, &actor, "evidence.offer", &detail).await?;
            w.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Offers whose chunks are to be pushed: state `offered` and the manifest delivered (its
    /// receipt stored), oldest first.
    pub async fn bulk_out_active(&self, limit: i64) -> Result<Vec<BulkOut>> {
        let rows: Vec<OutTuple> = sqlx::query_as(
            "SELECT b.file_id, b.peer, b.state, b.message_id, b.detail, b.created_at, b.updated_at FROM bulk_out b \
             JOIN outbox o ON o.message_id = b.message_id WHERE b.state = 'offered' AND o.delivered_at IS NOT NULL \
             ORDER BY b.file_id LIMIT $1",
        )
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(out_row).collect()
    }

    /// The transfers of file `file_id` (one per peer; `local` when it stays here).
    pub async fn bulk_out_of(&self, file_id: &str) -> Result<Vec<BulkOut>> {
        let rows: Vec<OutTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OUT_COLS} WHERE file_id = $1 ORDER BY peer"
        )))
        .bind(file_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(out_row).collect()
    }

    /// Moves an offer from state `from` to `to` with a custody entry `action`; false if it was
    /// not in state `from` (another worker moved it).
    #[allow(clippy::too_many_arguments)]
    pub async fn bulk_out_step(
        &self,
        file_id: &str,
        peer: &str,
        from: &str,
        to: &str,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<bool> {
        let (file_id, peer, from, to, actor, action, detail) = (
            file_id.to_string(),
            peer.to_string(),
            from.to_string(),
            to.to_string(),
            actor.to_string(),
            action.to_string(),
            detail.clone(),
        );
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let n = sqlx::query(
                "UPDATE bulk_out SET state = $1, detail = $2, updated_at = $3 WHERE file_id = $4 AND peer = $5 AND state = $6",
            )
            .bind(&to)
            .bind(detail.to_string())
            .bind(ms(now))
            .bind(&file_id)
            .bind(&peer)
            .bind(&from)
            .execute(w.conn().await?)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            custody_in(&mut w, &file_id, now, &actor, &action, &detail).await?;
            w.commit().await?;
            Ok(true)
        })
        .await
    }

    /// An incoming transfer.
    pub async fn bulk_in(&self, sender: &str, transfer_id: &str) -> Result<BulkIn> {
        let r: Option<sqlx::any::AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{IN_COLS} WHERE sender = $1 AND transfer_id = $2"
        )))
        .bind(sender)
        .bind(transfer_id)
        .fetch_optional(&self.pool)
        .await?;
        in_row(&r.ok_or_else(|| StoreError::NotFound(format!("transfer {transfer_id} from {sender}")))?)
    }

    /// Every incoming transfer, newest first (at most 1,000).
    pub async fn bulk_in_all(&self) -> Result<Vec<BulkIn>> {
        let rows: Vec<sqlx::any::AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{IN_COLS} ORDER BY created_at DESC LIMIT 1000"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(in_row).collect()
    }

    /// Records a refused chunk of an incoming transfer (audit entry `evidence.chunk_refused`);
    /// with `refuse` the whole transfer is refused too (`evidence.transfer_refused`, and the
    /// signed result to the sender in `outbox`). False if the transfer was not receiving.
    pub async fn bulk_in_refused(
        &self,
        sender: &str,
        transfer_id: &str,
        chunk: &serde_json::Value,
        refuse: Option<(serde_json::Value, OutboxItem)>,
        now: Timestamp,
    ) -> Result<bool> {
        let (sender, transfer_id, chunk) = (sender.to_string(), transfer_id.to_string(), chunk.clone());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let n = sqlx::query(
                "UPDATE bulk_in SET refusals = refusals + 1, updated_at = $1 WHERE sender = $2 AND transfer_id = $3 AND state = 'receiving'",
            )
            .bind(ms(now))
            .bind(&sender)
            .bind(&transfer_id)
            .execute(w.conn().await?)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            let subject = transfer_subject(&sender, &transfer_id);
            let actor = format!("{sender}:federation");
            crate::audit::append(&mut w, now, &actor, "evidence.chunk_refused", &subject, &chunk).await?;
            if let Some((why, result)) = refuse {
                sqlx::query("UPDATE bulk_in SET state = 'refused', detail = $1 WHERE sender = $2 AND transfer_id = $3")
                    .bind(why.to_string())
                    .bind(&sender)
                    .bind(&transfer_id)
                    .execute(w.conn().await?)
                    .await?;
                crate::audit::append(&mut w, now, &actor, "evidence.transfer_refused", &subject, &why).await?;
                write_fed(
                    &mut w,
                    &FedWrites {
                        outbox: vec![result],
                        incoming: None,
                    },
                )
                .await?;
            }
            w.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Ends an incoming transfer whose content was verified and made durable: the file's row,
    /// its first custody entry `evidence.received` (`detail`), the transfer's state and the
    /// signed result to the sender, in one transaction. `Conflict` if it was not receiving.
    #[allow(clippy::too_many_arguments)]
    pub async fn bulk_in_stored(
        &self,
        sender: &str,
        transfer_id: &str,
        f: &EvidenceFile,
        storage: &crate::EvidenceStorage,
        detail: &serde_json::Value,
        result: OutboxItem,
        now: Timestamp,
    ) -> Result<()> {
        let (sender, transfer_id, f, storage, detail) = (
            sender.to_string(),
            transfer_id.to_string(),
            f.clone(),
            storage.clone(),
            detail.clone(),
        );
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let n = sqlx::query(
                "UPDATE bulk_in SET state = 'stored', file_id = $1, updated_at = $2 WHERE sender = $3 AND transfer_id = $4 AND state = 'receiving'",
            )
            .bind(&f.id)
            .bind(ms(now))
            .bind(&sender)
            .bind(&transfer_id)
            .execute(w.conn().await?)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "transfer {transfer_id} from {sender} is not receiving"
                )));
            }
            insert_file_in(&mut w, &f, &storage).await?;
            custody_in(
                &mut w,
                &f.id,
                f.uploaded_at,
                &format!("{sender}:federation"),
                "evidence.received",
                &detail,
            )
            .await?;
            write_fed(
                &mut w,
                &FedWrites {
                    outbox: vec![result],
                    incoming: None,
                },
            )
            .await?;
            w.commit().await
        })
        .await
    }

    /// Replaces the data key of an incoming transfer (its partial content was written under a
    /// key that is no longer in the key file and is started again).
    pub async fn bulk_in_rekey(&self, sender: &str, transfer_id: &str, storage: &crate::EvidenceStorage) -> Result<()> {
        let (sender, transfer_id, storage) = (sender.to_string(), transfer_id.to_string(), storage.clone());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            sqlx::query(
                "UPDATE bulk_in SET blob_id = $1, wrapped_key = $2, kek_id = $3 WHERE sender = $4 AND transfer_id = $5 AND state = 'receiving'",
            )
            .bind(&storage.blob_id)
            .bind(&storage.wrapped_key)
            .bind(&storage.kek_id)
            .bind(&sender)
            .bind(&transfer_id)
            .execute(w.conn().await?)
            .await?;
            w.commit().await
        })
        .await
    }
}
