//! Evidence files (schema migration 13, docs/evidence.md): their metadata, the wrapped data key
//! of each, resumable upload sessions, legal holds and each file's chain of custody.
//!
//! The content itself is never in the database: it lives encrypted in the evidence directory
//! (the service's `evidence` room). A file's custody is the audit entries about it: every
//! write here that concerns a file appends its audit entry and an `evidence_custody` row
//! (file id → audit seq) in the same transaction, so the custody log is a lookup, not a scan.

use crate::{Result, Store, StoreError, WriteTx, ms, opt_ts, parse, ts, unique};
use liaison_core::record::{AuditEntry, EvidenceFile, EvidenceKind, EvidenceUpload, LegalHold};
use liaison_core::{Marking, RequestId, Side, Tlp};

/// Migration 19 (`evidence-chunks`): the SHA-256 of each transfer chunk of a stored content
/// (docs/federation.md §12), taken when the content is stored, so that offering a file to a
/// peer reads nothing of it. Keyed by the content's SHA-256, like the content itself.
pub(crate) const MIGRATION_19: &str = r#"
CREATE TABLE evidence_chunks (
    sha256 TEXT PRIMARY KEY,
    chunk_size BIGINT NOT NULL,
    hashes TEXT NOT NULL
)
"#;

pub(crate) const MIGRATION_13: &str = r#"
CREATE TABLE evidence_files (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests(id),
    kind TEXT NOT NULL,
    attached_to TEXT,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    media_sniffed TEXT,
    media_claimed TEXT,
    file_name TEXT NOT NULL,
    uploader TEXT NOT NULL,
    uploader_agency TEXT NOT NULL,
    side TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    tlp TEXT NOT NULL,
    named TEXT,
    blob_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX evidence_files_request ON evidence_files(request_id, id);
CREATE INDEX evidence_files_sha256 ON evidence_files(sha256);
CREATE TABLE evidence_uploads (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests(id),
    kind TEXT NOT NULL,
    attached_to TEXT,
    file_name TEXT NOT NULL,
    media_claimed TEXT,
    uploader TEXT NOT NULL,
    uploader_agency TEXT NOT NULL,
    side TEXT NOT NULL,
    tlp TEXT NOT NULL,
    named TEXT,
    created_at BIGINT NOT NULL,
    wrapped_key TEXT NOT NULL,
    kek_id TEXT NOT NULL
);
CREATE TABLE evidence_holds (
    subject TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests(id),
    by_user TEXT NOT NULL,
    at BIGINT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE evidence_custody (
    file_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (file_id, seq)
)
"#;

/// Where a file's content is and the key that opens it (never shown to the faces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceStorage {
    /// The id bound into every chunk's associated data (docs/evidence.md).
    pub blob_id: String,
    /// The file's data key wrapped by the key-encryption key `kek_id`, hex.
    pub wrapped_key: String,
    pub kek_id: String,
}

/// A wrapped data key to re-wrap: a file's (`upload = false`) or an upload session's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub id: String,
    pub upload: bool,
    pub wrapped_key: String,
    pub kek_id: String,
}

const FILE_COLS: &str = "f.id, f.request_id, f.kind, f.attached_to, f.sha256, f.size, f.media_sniffed, f.media_claimed, \
    f.file_name, f.uploader, f.uploader_agency, f.side, f.uploaded_at, f.tlp, f.named, f.deleted_at, \
    (SELECT COUNT(*) FROM evidence_holds h WHERE h.subject = f.id OR h.subject = f.request_id), \
    f.blob_id, f.wrapped_key, f.kek_id";

fn side(s: &str) -> Result<Side> {
    match s {
        "requesting" => Ok(Side::Requesting),
        "requested" => Ok(Side::Requested),
        other => Err(StoreError::Corrupt(format!("evidence side '{other}'"))),
    }
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Requesting => "requesting",
        Side::Requested => "requested",
    }
}

fn kind(s: &str) -> Result<EvidenceKind> {
    EvidenceKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("evidence kind '{s}'")))
}

fn marking(tlp: &str, named: Option<&str>) -> Result<Marking> {
    let tlp: Tlp = parse(tlp, "evidence marking")?;
    let recipients = match named {
        Some(n) => serde_json::from_str(n).map_err(StoreError::corrupt)?,
        None => Vec::new(),
    };
    Ok(Marking { tlp, recipients })
}

fn named(m: &Marking) -> Option<String> {
    if m.recipients.is_empty() {
        None
    } else {
        serde_json::to_string(&m.recipients).ok()
    }
}

fn file(r: &sqlx::any::AnyRow) -> Result<(EvidenceFile, EvidenceStorage)> {
    use sqlx::Row;
    let g = |i: usize| -> Result<String> { Ok(r.try_get::<String, _>(i)?) };
    let o = |i: usize| -> Result<Option<String>> { Ok(r.try_get::<Option<String>, _>(i)?) };
    let n = |i: usize| -> Result<i64> { Ok(r.try_get::<i64, _>(i)?) };
    Ok((
        EvidenceFile {
            id: g(0)?,
            request_id: parse(&g(1)?, "request id")?,
            kind: kind(&g(2)?)?,
            attached_to: o(3)?,
            sha256: g(4)?,
            size: u64::try_from(n(5)?).map_err(StoreError::corrupt)?,
            media_type_sniffed: o(6)?,
            media_type_claimed: o(7)?,
            file_name: g(8)?,
            uploader: g(9)?,
            uploader_agency: parse(&g(10)?, "agency id")?,
            side: side(&g(11)?)?,
            uploaded_at: ts(n(12)?)?,
            marking: marking(&g(13)?, o(14)?.as_deref())?,
            deleted_at: opt_ts(r.try_get::<Option<i64>, _>(15)?)?,
            legal_hold: n(16)? > 0,
        },
        EvidenceStorage {
            blob_id: g(17)?,
            wrapped_key: g(18)?,
            kek_id: g(19)?,
        },
    ))
}

/// Appends the audit entry `action` about file `file_id` and its custody row.
/// What the custody entry that brings a file to this node records of it (`evidence.upload`,
/// and `evidence.received` for a file from the peer node, which adds its transfer's facts).
pub fn file_detail(f: &EvidenceFile) -> serde_json::Value {
    serde_json::json!({
        "request": f.request_id.to_string(),
        "sha256": f.sha256,
        "size": f.size,
        "kind": f.kind,
        "file_name": f.file_name,
        "media_type_sniffed": f.media_type_sniffed,
        "media_type_claimed": f.media_type_claimed,
        "marking": f.marking,
    })
}

pub(crate) async fn custody_in(
    w: &mut WriteTx,
    file_id: &str,
    at: jiff::Timestamp,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
) -> Result<i64> {
    let seq = crate::audit::append(w, at, actor, action, file_id, detail).await?;
    sqlx::query("INSERT INTO evidence_custody (file_id, seq) VALUES ($1, $2)")
        .bind(file_id)
        .bind(seq)
        .execute(w.conn().await?)
        .await?;
    Ok(seq)
}

/// Inserts a file's row (the caller writes its first custody entry in the same transaction).
pub(crate) async fn insert_file_in(w: &mut WriteTx, f: &EvidenceFile, key: &EvidenceStorage) -> Result<()> {
    sqlx::query(
        "INSERT INTO evidence_files (id, request_id, kind, attached_to, sha256, size, media_sniffed, media_claimed, file_name, uploader, uploader_agency, side, uploaded_at, tlp, named, blob_id, wrapped_key, kek_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&f.id)
    .bind(f.request_id.to_string())
    .bind(f.kind.as_str())
    .bind(f.attached_to.clone())
    .bind(&f.sha256)
    .bind(i64::try_from(f.size).map_err(StoreError::corrupt)?)
    .bind(f.media_type_sniffed.clone())
    .bind(f.media_type_claimed.clone())
    .bind(&f.file_name)
    .bind(&f.uploader)
    .bind(f.uploader_agency.to_string())
    .bind(side_str(f.side))
    .bind(ms(f.uploaded_at))
    .bind(f.marking.tlp.as_str())
    .bind(named(&f.marking))
    .bind(&key.blob_id)
    .bind(&key.wrapped_key)
    .bind(&key.kek_id)
    .execute(w.conn().await?)
    .await
    .map_err(|e| unique(e, format!("evidence file {}", f.id)))?;
    // Its name is searchable (docs/search.md).
    let mut b = crate::writer::Batch::default();
    crate::search::push_doc(
        &mut b,
        w.backend(),
        f.request_id,
        liaison_core::record::SearchSource::File,
        &f.id,
        f.uploaded_at,
        side_str(f.side),
        f.marking.tlp.as_str(),
        named(&f.marking),
        &f.file_name,
    );
    w.run(b).await?;
    Ok(())
}

impl Store {
    /// Opens a resumable upload session with its (wrapped) data key.
    pub async fn evidence_upload_begin(&self, u: &EvidenceUpload, key: &EvidenceStorage) -> Result<()> {
        let (u, key) = (u.clone(), key.clone());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            sqlx::query(
                "INSERT INTO evidence_uploads (id, request_id, kind, attached_to, file_name, media_claimed, uploader, uploader_agency, side, tlp, named, created_at, wrapped_key, kek_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&u.id)
            .bind(u.request_id.to_string())
            .bind(u.kind.as_str())
            .bind(u.attached_to.clone())
            .bind(&u.file_name)
            .bind(u.media_type_claimed.clone())
            .bind(&u.uploader)
            .bind(u.uploader_agency.to_string())
            .bind(side_str(u.side))
            .bind(u.marking.tlp.as_str())
            .bind(named(&u.marking))
            .bind(ms(u.created_at))
            .bind(&key.wrapped_key)
            .bind(&key.kek_id)
            .execute(w.conn().await?)
            .await
            .map_err(|e| unique(e, format!("upload {}", u.id)))?;
            w.commit().await
        })
        .await
    }

    /// An upload session (with `received` 0: the content on disk says how much arrived) and
    /// its data key.
    pub async fn evidence_upload(&self, id: &str) -> Result<(EvidenceUpload, EvidenceStorage)> {
        #[allow(clippy::type_complexity)]
        let r: Option<(
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            String,
            String,
            String,
            Option<String>,
            i64,
            String,
            String,
        )> = sqlx::query_as(
            "SELECT id, request_id, kind, attached_to, file_name, media_claimed, uploader, uploader_agency, side, tlp, named, created_at, wrapped_key, kek_id \
             FROM evidence_uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let r = r.ok_or_else(|| StoreError::NotFound(format!("upload {id}")))?;
        Ok((
            EvidenceUpload {
                id: r.0.clone(),
                request_id: parse(&r.1, "request id")?,
                kind: kind(&r.2)?,
                attached_to: r.3,
                file_name: r.4,
                media_type_claimed: r.5,
                uploader: r.6,
                uploader_agency: parse(&r.7, "agency id")?,
                side: side(&r.8)?,
                marking: marking(&r.9, r.10.as_deref())?,
                created_at: ts(r.11)?,
                received: 0,
                receiving: false,
            },
            EvidenceStorage {
                blob_id: r.0,
                wrapped_key: r.12,
                kek_id: r.13,
            },
        ))
    }

    /// Forgets an upload session (its partial content is the service's to remove).
    /// Unfinished upload sessions of `uploader` (a user name).
    pub async fn evidence_uploads_open(&self, uploader: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM evidence_uploads WHERE uploader = $1")
                .bind(uploader)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Ids of upload sessions begun before `before`, oldest first, at most `limit`.
    pub async fn evidence_uploads_begun_before(&self, before: jiff::Timestamp, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT id FROM evidence_uploads WHERE created_at < $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind(crate::ms(before))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn evidence_upload_drop(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            sqlx::query("DELETE FROM evidence_uploads WHERE id = $1")
                .bind(&id)
                .execute(w.conn().await?)
                .await?;
            w.commit().await
        })
        .await
    }

    /// Records a stored file: its row, the end of its upload session (if any) and its first
    /// custody entry `evidence.upload`, in one transaction.
    pub async fn evidence_insert(&self, f: &EvidenceFile, key: &EvidenceStorage, upload: Option<&str>) -> Result<()> {
        let (f, key, upload) = (f.clone(), key.clone(), upload.map(str::to_string));
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            insert_file_in(&mut w, &f, &key).await?;
            if let Some(u) = &upload {
                sqlx::query("DELETE FROM evidence_uploads WHERE id = $1")
                    .bind(u)
                    .execute(w.conn().await?)
                    .await?;
            }
            let detail = file_detail(&f);
            custody_in(&mut w, &f.id, f.uploaded_at, &f.uploader, "evidence.upload", &detail).await?;
            w.commit().await
        })
        .await
    }

    /// The transfer chunk hashes recorded for a content (`sha256` of the whole): the chunk size
    /// and the chunks' SHA-256 values, hex, one after another.
    pub async fn evidence_chunks(&self, sha256: &str) -> Result<Option<(u64, String)>> {
        let r: Option<(i64, String)> =
            sqlx::query_as("SELECT chunk_size, hashes FROM evidence_chunks WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?;
        r.map(|(size, hashes)| Ok((u64::try_from(size).map_err(StoreError::corrupt)?, hashes)))
            .transpose()
    }

    /// Records the transfer chunk hashes of a content (kept if already recorded: the same
    /// content has the same chunks).
    pub async fn evidence_chunks_put(&self, sha256: &str, chunk_size: u64, hashes: &str) -> Result<()> {
        let (sha256, hashes) = (sha256.to_string(), hashes.to_string());
        let chunk_size = i64::try_from(chunk_size).map_err(StoreError::corrupt)?;
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            sqlx::query(
                "INSERT INTO evidence_chunks (sha256, chunk_size, hashes) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(&sha256)
            .bind(chunk_size)
            .bind(&hashes)
            .execute(w.conn().await?)
            .await?;
            w.commit().await
        })
        .await
    }

    /// A file's metadata and storage.
    pub async fn evidence_file(&self, id: &str) -> Result<(EvidenceFile, EvidenceStorage)> {
        let r: Option<sqlx::any::AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLS} FROM evidence_files f WHERE f.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        file(&r.ok_or_else(|| StoreError::NotFound(format!("evidence file {id}")))?)
    }

    /// A live file already stored with this content, if any (its storage is shared).
    pub async fn evidence_by_sha256(&self, sha256: &str) -> Result<Option<EvidenceStorage>> {
        let r: Option<(String, String, String)> = sqlx::query_as(
            "SELECT blob_id, wrapped_key, kek_id FROM evidence_files WHERE sha256 = $1 AND deleted_at IS NULL ORDER BY id LIMIT 1",
        )
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| EvidenceStorage {
            blob_id: r.0,
            wrapped_key: r.1,
            kek_id: r.2,
        }))
    }

    /// The files of a request, oldest first (at most 1,000).
    pub async fn evidence_files(&self, request: RequestId) -> Result<Vec<EvidenceFile>> {
        let rows: Vec<sqlx::any::AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLS} FROM evidence_files f WHERE f.request_id = $1 ORDER BY f.id LIMIT 1000"
        )))
        .bind(request.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| file(r).map(|f| f.0)).collect()
    }

    /// Live (not deleted) files after `after` in id order: what a retention sweep walks.
    pub async fn evidence_live(&self, after: &str, limit: i64) -> Result<Vec<EvidenceFile>> {
        let rows: Vec<sqlx::any::AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLS} FROM evidence_files f WHERE f.id > $1 AND f.deleted_at IS NULL ORDER BY f.id LIMIT $2"
        )))
        .bind(after)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| file(r).map(|f| f.0)).collect()
    }

    /// Records a custody step on a file (`evidence.download`, `evidence.view`, …).
    pub async fn evidence_custody_step(
        &self,
        file_id: &str,
        at: jiff::Timestamp,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<i64> {
        let (file_id, actor, action, detail) = (
            file_id.to_string(),
            actor.to_string(),
            action.to_string(),
            detail.clone(),
        );
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let seq = custody_in(&mut w, &file_id, at, &actor, &action, &detail).await?;
            w.commit().await?;
            Ok(seq)
        })
        .await
    }

    /// A file's custody log: the audit entries about it, oldest first (at most 10,000).
    pub async fn evidence_custody(&self, file_id: &str) -> Result<Vec<AuditEntry>> {
        let rows: Vec<crate::audit::Row> = sqlx::query_as(
            "SELECT a.seq, a.at, a.actor, a.action, a.subject, a.detail, a.prev_hash, a.hash FROM evidence_custody c \
             JOIN audit_log a ON a.seq = c.seq WHERE c.file_id = $1 ORDER BY a.seq LIMIT 10000",
        )
        .bind(file_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(crate::audit::entry).collect()
    }

    /// Every wrapped data key not wrapped by `kek_id`, at most `limit`.
    pub async fn evidence_keys_not_under(&self, kek_id: &str, limit: i64) -> Result<Vec<WrappedKey>> {
        let files: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, wrapped_key, kek_id FROM evidence_files WHERE kek_id <> $1 AND deleted_at IS NULL ORDER BY id LIMIT $2",
        )
        .bind(kek_id)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        let uploads: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, wrapped_key, kek_id FROM evidence_uploads WHERE kek_id <> $1 ORDER BY id LIMIT $2",
        )
        .bind(kek_id)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        Ok(files
            .into_iter()
            .map(|r| (r, false))
            .chain(uploads.into_iter().map(|r| (r, true)))
            .map(|((id, wrapped_key, kek_id), upload)| WrappedKey {
                id,
                upload,
                wrapped_key,
                kek_id,
            })
            .collect())
    }

    /// Stores re-wrapped data keys, each only if it is still wrapped as read (`kek_id` of
    /// the old wrap), in one transaction with one audit entry `evidence.rekey`.
    pub async fn evidence_rewrap(
        &self,
        old: &[WrappedKey],
        new: &[WrappedKey],
        actor: &str,
        at: jiff::Timestamp,
    ) -> Result<u64> {
        let (old, new, actor) = (old.to_vec(), new.to_vec(), actor.to_string());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let mut n = 0;
            for (o, k) in old.iter().zip(&new) {
                let table = if k.upload { "evidence_uploads" } else { "evidence_files" };
                let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {table} SET wrapped_key = $1, kek_id = $2 WHERE id = $3 AND kek_id = $4 AND wrapped_key = $5"
                )))
                .bind(&k.wrapped_key)
                .bind(&k.kek_id)
                .bind(&k.id)
                .bind(&o.kek_id)
                .bind(&o.wrapped_key)
                .execute(w.conn().await?)
                .await?;
                n += r.rows_affected();
            }
            let kek = new.first().map(|k| k.kek_id.clone()).unwrap_or_default();
            crate::audit::append(
                &mut w,
                at,
                &actor,
                "evidence.rekey",
                "evidence-keys",
                &serde_json::json!({ "kek_id": kek, "rewrapped": n }),
            )
            .await?;
            w.commit().await?;
            Ok(n)
        })
        .await
    }

    /// Places a legal hold on a request's files or one file (`subject`), with an audit entry
    /// (and a custody entry when the subject is a file).
    pub async fn evidence_hold(
        &self,
        request: RequestId,
        subject: &str,
        file: bool,
        by: &str,
        reason: &str,
        at: jiff::Timestamp,
    ) -> Result<()> {
        let (subject, by, reason) = (subject.to_string(), by.to_string(), reason.to_string());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            sqlx::query(
                "INSERT INTO evidence_holds (subject, request_id, by_user, at, reason) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&subject)
            .bind(request.to_string())
            .bind(&by)
            .bind(ms(at))
            .bind(&reason)
            .execute(w.conn().await?)
            .await
            .map_err(|e| unique(e, format!("a legal hold on {subject}")))?;
            let detail = serde_json::json!({ "request": request.to_string(), "reason": reason });
            if file {
                custody_in(&mut w, &subject, at, &by, "evidence.hold", &detail).await?;
            } else {
                crate::audit::append(&mut w, at, &by, "evidence.hold", &subject, &detail).await?;
            }
            w.commit().await
        })
        .await
    }

    /// Lifts a legal hold; `NotFound` when there is none.
    pub async fn evidence_release(&self, subject: &str, file: bool, by: &str, at: jiff::Timestamp) -> Result<()> {
        let (subject, by) = (subject.to_string(), by.to_string());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let r = sqlx::query("DELETE FROM evidence_holds WHERE subject = $1")
                .bind(&subject)
                .execute(w.conn().await?)
                .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("a legal hold on {subject}")));
            }
            let detail = serde_json::json!({});
            if file {
                custody_in(&mut w, &subject, at, &by, "evidence.release", &detail).await?;
            } else {
                crate::audit::append(&mut w, at, &by, "evidence.release", &subject, &detail).await?;
            }
            w.commit().await
        })
        .await
    }

    /// The legal holds on a request and its files.
    pub async fn evidence_holds(&self, request: RequestId) -> Result<Vec<LegalHold>> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT subject, by_user, at, reason FROM evidence_holds WHERE request_id = $1 ORDER BY at, subject",
        )
        .bind(request.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(LegalHold {
                    subject: r.0,
                    by: r.1,
                    at: ts(r.2)?,
                    reason: r.3,
                })
            })
            .collect()
    }

    /// Deletes a file under retention: forgets its data key and marks the row deleted, with
    /// the custody entry `evidence.delete`, unless the file or its request is on legal hold
    /// (checked in the same statement). Answers whether it was deleted and whether another
    /// live file still shares its content (then the content must stay).
    pub async fn evidence_delete(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        at: jiff::Timestamp,
    ) -> Result<(bool, bool)> {
        let (id, actor, reason) = (id.to_string(), actor.to_string(), reason.to_string());
        self.writing(move |s| async move {
            let mut w = s.write().await?;
            let r = sqlx::query(
                "UPDATE evidence_files SET deleted_at = $1, wrapped_key = '' WHERE id = $2 AND deleted_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM evidence_holds h WHERE h.subject = evidence_files.id OR h.subject = evidence_files.request_id)",
            )
            .bind(ms(at))
            .bind(&id)
            .execute(w.conn().await?)
            .await?;
            if r.rows_affected() == 0 {
                return Ok((false, false));
            }
            let shared: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM evidence_files o WHERE o.deleted_at IS NULL AND o.sha256 = (SELECT sha256 FROM evidence_files WHERE id = $1)",
            )
            .bind(&id)
            .fetch_one(w.conn().await?)
            .await?;
            if shared == 0 {
                // The content goes: so do its chunk hashes.
                sqlx::query(
                    "DELETE FROM evidence_chunks WHERE sha256 = (SELECT sha256 FROM evidence_files WHERE id = $1)",
                )
                .bind(&id)
                .execute(w.conn().await?)
                .await?;
            }
            custody_in(
                &mut w,
                &id,
                at,
                &actor,
                "evidence.delete",
                &serde_json::json!({ "reason": reason }),
            )
            .await?;
            w.commit().await?;
            Ok((true, shared > 0))
        })
        .await
    }
}
