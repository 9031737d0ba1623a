//! Persistence of the clean-up pipeline's state ([`liaison_intel::CleanupState`]): indicators
//! (deduplicated by kind and value), issued notices and their items, and partner feedback.
//!
//! An ingest, a notice run or a feedback call is one [`IntelTx`]: it takes the write lock,
//! loads the state inside the transaction, changes it in memory and writes back only what
//! changed, so two writers (the server and a CLI process) never interleave.
//!
//! The row id of an indicator (`INTEGER PRIMARY KEY`: the rowid on SQLite) is its index in
//! the state, so reloading in id order rebuilds the same indices that notice items and
//! feedback refer to. Instants are stored as integer milliseconds (the pipeline works in Unix
//! seconds).
//!
//! How indicators are written (bench/intel/README.md has the measurements):
//! - **SQLite**: a clean-up transaction runs on a native `SqliteConnection` of its own (the
//!   store's shared write connection is held idle meanwhile, so nothing else of this process
//!   writes in between), not through sqlx's `Any` driver, which copies every text value twice.
//!   Rows go in as multi-row `INSERT … ON CONFLICT (kind, value) DO UPDATE` statements of
//!   [`SQLITE_ROWS_PER_STATEMENT`] rows (SQLite's bound-parameter limit is 32,766); shared
//!   words (feed, malware, AS names, partners, closed-set words) are bound as shared `Arc<str>`.
//!   A large batch of *new* indicators (at least [`IntelTx::BULK_MIN_ROWS`] and at least as many as are
//!   stored) is a bulk load: the `(kind, value)` index is dropped, the rows are appended in id
//!   order with plain `INSERT`s, and the unique index is built again by sorting, all inside a
//!   savepoint. Random-order inserts into that index were most of the cost. If the rebuilt
//!   index finds a duplicate (a caller's state that was not loaded from this store), the
//!   savepoint is rolled back and the rows go through the upsert instead, so dedup by
//!   `(kind, value)` holds either way.
//! - **PostgreSQL**: rows go in chunks of [`PG_ROWS_PER_STATEMENT`] as ONE JSON parameter
//!   expanded by `json_to_recordset`, instead of 25 bound parameters per row.

use crate::{Backend, Result, Store, StoreError, WriteTx};
use liaison_core::{CountryCode, Tlp};
use liaison_intel::aggregate::{FeedbackRecord, Victims};
use liaison_intel::model::{Classification, IndicatorKind, IndicatorValue, PartnerId};
use liaison_intel::time::UnixTime;
use liaison_intel::{
    CleanupState, FeedbackStatus, Indicator, Interval, ItemStatus, Notice, NoticeId, NoticeItem, StoredNotice,
};
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sqlx::{Any, Connection, Executor, Row};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

pub(crate) const MIGRATION: &str = r#"
CREATE TABLE intel_indicator (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    classification TEXT NOT NULL,
    malware TEXT,
    feed TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    sightings BIGINT NOT NULL,
    confidence BIGINT NOT NULL,
    tlp TEXT NOT NULL,
    port BIGINT,
    victim_count BIGINT,
    victim_countries TEXT,
    source_country TEXT,
    source_asn BIGINT,
    as_org TEXT,
    partner TEXT,
    status TEXT NOT NULL,
    first_notified BIGINT,
    last_notice TEXT,
    remediated_at BIGINT,
    reappeared_at BIGINT,
    reappearances BIGINT NOT NULL,
    UNIQUE (kind, value)
);
CREATE TABLE intel_notice (
    id TEXT PRIMARY KEY,
    partner TEXT NOT NULL,
    interval_start BIGINT NOT NULL,
    interval_end BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    tlp TEXT NOT NULL,
    items BIGINT NOT NULL,
    UNIQUE (partner, interval_start, interval_end)
);
CREATE TABLE intel_notice_item (
    id TEXT PRIMARY KEY,
    notice_id TEXT NOT NULL REFERENCES intel_notice(id),
    indicator_id BIGINT NOT NULL REFERENCES intel_indicator(id),
    partner TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX intel_notice_item_notice ON intel_notice_item(notice_id);
CREATE TABLE intel_feedback (
    id BIGINT PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES intel_notice_item(id),
    indicator_id BIGINT NOT NULL,
    partner TEXT NOT NULL,
    status TEXT NOT NULL,
    at BIGINT NOT NULL,
    note TEXT
)
"#;

/// Migration 18 (`notice-pap`): the Permissible Actions Protocol level of each clean-up
/// notice, issued (`intel_notice`) and received (`intel_inbox_notice`; NULL when the sending
/// node speaks a protocol older than 5 and so stated none). Notices issued before it said
/// nothing either; they asked the partner to act, so they read as `PAP:GREEN`
/// (docs/markings.md).
pub(crate) const MIGRATION_18: &str = r#"
ALTER TABLE intel_notice ADD COLUMN pap TEXT NOT NULL DEFAULT 'PAP:GREEN';
ALTER TABLE intel_inbox_notice ADD COLUMN pap TEXT
"#;

/// Migration 7 (`intel-bulk`): the same four tables, rebuilt so that the `(kind, value)`
/// uniqueness of indicators is a *named* index (`intel_indicator_kv`) that a bulk load can
/// drop and build again; an inline `UNIQUE` constraint cannot be dropped on SQLite.
///
/// Written in the SQL both backends accept: the old tables are renamed (SQLite rewrites the
/// foreign keys between them, PostgreSQL follows them by oid), new ones are created with
/// explicitly named constraints (PostgreSQL keeps the old tables' `…_pkey`/`…_key` names
/// until they are dropped), the rows are copied parents first and the old tables dropped
/// children first.
pub(crate) const MIGRATION_7: &str = r#"
ALTER TABLE intel_feedback RENAME TO intel_feedback_v3;
ALTER TABLE intel_notice_item RENAME TO intel_notice_item_v3;
ALTER TABLE intel_notice RENAME TO intel_notice_v3;
ALTER TABLE intel_indicator RENAME TO intel_indicator_v3;
CREATE TABLE intel_indicator (
    id INTEGER CONSTRAINT intel_indicator_id PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    classification TEXT NOT NULL,
    malware TEXT,
    feed TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    sightings BIGINT NOT NULL,
    confidence BIGINT NOT NULL,
    tlp TEXT NOT NULL,
    port BIGINT,
    victim_count BIGINT,
    victim_countries TEXT,
    source_country TEXT,
    source_asn BIGINT,
    as_org TEXT,
    partner TEXT,
    status TEXT NOT NULL,
    first_notified BIGINT,
    last_notice TEXT,
    remediated_at BIGINT,
    reappeared_at BIGINT,
    reappearances BIGINT NOT NULL
);
CREATE UNIQUE INDEX intel_indicator_kv ON intel_indicator (kind, value);
CREATE TABLE intel_notice (
    id TEXT CONSTRAINT intel_notice_id PRIMARY KEY,
    partner TEXT NOT NULL,
    interval_start BIGINT NOT NULL,
    interval_end BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    tlp TEXT NOT NULL,
    items BIGINT NOT NULL,
    CONSTRAINT intel_notice_interval UNIQUE (partner, interval_start, interval_end)
);
CREATE TABLE intel_notice_item (
    id TEXT CONSTRAINT intel_notice_item_id PRIMARY KEY,
    notice_id TEXT NOT NULL CONSTRAINT intel_notice_item_notice_fk REFERENCES intel_notice(id),
    indicator_id BIGINT NOT NULL CONSTRAINT intel_notice_item_indicator_fk REFERENCES intel_indicator(id),
    partner TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX intel_notice_item_by_notice ON intel_notice_item (notice_id);
CREATE INDEX intel_notice_item_by_indicator ON intel_notice_item (indicator_id);
CREATE TABLE intel_feedback (
    id BIGINT CONSTRAINT intel_feedback_id PRIMARY KEY,
    item_id TEXT NOT NULL CONSTRAINT intel_feedback_item_fk REFERENCES intel_notice_item(id),
    indicator_id BIGINT NOT NULL,
    partner TEXT NOT NULL,
    status TEXT NOT NULL,
    at BIGINT NOT NULL,
    note TEXT
);
INSERT INTO intel_indicator SELECT * FROM intel_indicator_v3;
INSERT INTO intel_notice SELECT * FROM intel_notice_v3;
INSERT INTO intel_notice_item SELECT * FROM intel_notice_item_v3;
INSERT INTO intel_feedback SELECT * FROM intel_feedback_v3;
DROP TABLE intel_feedback_v3;
DROP TABLE intel_notice_item_v3;
DROP TABLE intel_notice_v3;
DROP TABLE intel_indicator_v3
"#;

/// Migration 12 (`intel-ingest-journal`): the journal that makes an ingest persisted in many
/// short transactions all-or-nothing. While a run writes, `intel_ingest_run` holds its row
/// (id, `base`: the first indicator id the run adds) and `intel_indicator_undo` the rows of
/// known indicators as they were before the run changed them. The run's last, tiny
/// transaction deletes its journal row: that is its commit point. A run that died before it
/// is rolled back by [`Store::intel_recover`] (the next ingest, or the node's start): the
/// undo rows are written back and the indicators from `base` on deleted, in short
/// transactions too. Undo rows without a journal row are left-overs of a finished run.
pub(crate) const MIGRATION_12: &str = r#"
CREATE TABLE intel_ingest_run (
    id TEXT CONSTRAINT intel_ingest_run_id PRIMARY KEY,
    base BIGINT NOT NULL,
    started_at BIGINT NOT NULL
);
CREATE TABLE intel_indicator_undo (
    id BIGINT CONSTRAINT intel_indicator_undo_id PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    classification TEXT NOT NULL,
    malware TEXT,
    feed TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    sightings BIGINT NOT NULL,
    confidence BIGINT NOT NULL,
    tlp TEXT NOT NULL,
    port BIGINT,
    victim_count BIGINT,
    victim_countries TEXT,
    source_country TEXT,
    source_asn BIGINT,
    as_org TEXT,
    partner TEXT,
    status TEXT NOT NULL,
    first_notified BIGINT,
    last_notice TEXT,
    remediated_at BIGINT,
    reappeared_at BIGINT,
    reappearances BIGINT NOT NULL
)
"#;

/// Migration 20 (`intel-ingested-by`): which of the node's agencies ingested each indicator
/// (their codes, sorted, comma-separated; [`Indicator::ingested_by`]), so that statistics are
/// scoped to the reader's agency (docs/markings.md). Rows stored before it have none: who
/// ingested them was not recorded.
pub(crate) const MIGRATION_20: &str = r#"
ALTER TABLE intel_indicator ADD COLUMN ingested_by TEXT;
ALTER TABLE intel_indicator_undo ADD COLUMN ingested_by TEXT
"#;

/// Schema migration 21: when each indicator row was last written (`changed_at`, UTC
/// milliseconds), the `date_added` of its objects in the TAXII collections
/// (docs/intel-formats.md, "TAXII"), indexed with the id for keyset paging. Rows stored
/// before take their last sighting, and never a time before [`CHANGE_FLOOR_MS`], so that
/// they sort after the objects every collection holds from the start.
pub(crate) const MIGRATION_21: &str = r#"
ALTER TABLE intel_indicator ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE intel_indicator_undo ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0;
UPDATE intel_indicator SET changed_at = CASE WHEN last_seen > 1764547200000 THEN last_seen ELSE 1764547200001 END;
CREATE INDEX intel_indicator_changed ON intel_indicator (changed_at, id)
"#;

/// The earliest `changed_at` an indicator row gets: one millisecond after
/// `liaison_intel::stix::MAPPING_EPOCH` (2025-12-01), the `date_added` of the objects a TAXII
/// collection holds from the start (its producer's identity, the marking definitions).
pub const CHANGE_FLOOR_MS: i64 = 1_764_547_200_001;

/// The `changed_at` of rows written now (never below [`CHANGE_FLOOR_MS`]).
fn change_stamp() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    now.max(CHANGE_FLOOR_MS)
}

/// Rows per statement when the journal is cleared or a run rolled back.
const JOURNAL_ROWS: i64 = 2000;

/// What [`Store::intel_recover`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IntelRecovery {
    /// A run that died while writing was rolled back.
    pub rolled_back: bool,
    /// Indicator rows written back from the undo journal, and rows the dead run had added
    /// that were removed.
    pub restored: u64,
    pub removed: u64,
}

/// Columns of `intel_indicator`, in bind order.
const COLUMNS: [&str; 26] = [
    "id",
    "kind",
    "value",
    "classification",
    "malware",
    "feed",
    "first_seen",
    "last_seen",
    "sightings",
    "confidence",
    "tlp",
    "port",
    "victim_count",
    "victim_countries",
    "source_country",
    "source_asn",
    "as_org",
    "partner",
    "status",
    "first_notified",
    "last_notice",
    "remediated_at",
    "reappeared_at",
    "reappearances",
    "ingested_by",
    "changed_at",
];

/// Indicator rows per SQLite statement: 26 parameters each, 32,760 per statement, just below
/// SQLite's limit of 32,766.
pub const SQLITE_ROWS_PER_STATEMENT: usize = 1260;

/// Indicator rows per PostgreSQL statement (one JSON parameter each).
pub const PG_ROWS_PER_STATEMENT: usize = 5000;

/// Page cache of a clean-up transaction on SQLite (KiB): a large ingest keeps its index and
/// table pages in memory until commit instead of spilling them into the WAL early.
const SQLITE_CACHE_KIB: i64 = 262_144;

/// Page cache of the connection an ingest writes its chunks on (KiB). Each chunk is a short
/// transaction, and new indicators come in the order of the `(kind, value)` index
/// ([`CleanupState::sort_from`]), so a chunk touches few pages besides the ones the last
/// chunk left warm; the connection lives for the whole run, so this is memory the node holds
/// while persisting.
const SQLITE_CHUNK_CACHE_KIB: i64 = 32_768;

fn ms(t: UnixTime) -> i64 {
    t.saturating_mul(1000)
}

fn secs(ms: i64) -> UnixTime {
    ms.div_euclid(1000)
}

/// `active`, `remediated`, `reappeared` or `suppressed` (a false positive).
pub fn indicator_status(ind: &Indicator) -> &'static str {
    if ind.suppressed {
        "suppressed"
    } else if ind.remediated_at.is_some() && ind.reappeared_at.is_some() && ind.is_active() {
        "reappeared"
    } else if ind.remediated_at.is_some() {
        "remediated"
    } else {
        "active"
    }
}

fn item_status_str(s: ItemStatus) -> &'static str {
    match s {
        ItemStatus::New => "new",
        ItemStatus::StillActive => "still-active",
        ItemStatus::Reappeared => "reappeared",
    }
}

fn parse_item_status(s: &str) -> Result<ItemStatus> {
    Ok(match s {
        "new" => ItemStatus::New,
        "still-active" => ItemStatus::StillActive,
        "reappeared" => ItemStatus::Reappeared,
        _ => return Err(StoreError::Corrupt(format!("notice item status '{s}'"))),
    })
}

fn feedback_str(s: FeedbackStatus) -> &'static str {
    match s {
        FeedbackStatus::Remediated => "remediated",
        FeedbackStatus::NotFound => "not-found",
        FeedbackStatus::Disputed => "disputed",
        FeedbackStatus::FalsePositive => "false-positive",
    }
}

/// SQLite statement for `rows` indicator rows: anonymous `?` placeholders (SQLite treats
/// `$n` as *named* parameters and looks each one up linearly while preparing: quadratic in
/// the 32,760 parameters of a full statement), with or without the dedup clause.
fn sqlite_insert_sql(rows: usize, upsert: bool) -> String {
    let mut sql = String::with_capacity(64 + rows * COLUMNS.len() * 2 + 600);
    sql.push_str("INSERT INTO intel_indicator (");
    sql.push_str(&COLUMNS.join(", "));
    sql.push_str(") VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..COLUMNS.len() {
            if c > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    if upsert {
        sql.push_str(&on_conflict());
    }
    sql
}

fn on_conflict() -> String {
    let sets: Vec<String> = COLUMNS[3..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
    format!(" ON CONFLICT (kind, value) DO UPDATE SET {}", sets.join(", "))
}

/// The SQLite statement for a full chunk (built once per process).
fn full_sqlite_sql(upsert: bool) -> &'static str {
    static UPSERT: OnceLock<String> = OnceLock::new();
    static PLAIN: OnceLock<String> = OnceLock::new();
    if upsert {
        UPSERT.get_or_init(|| sqlite_insert_sql(SQLITE_ROWS_PER_STATEMENT, true))
    } else {
        PLAIN.get_or_init(|| sqlite_insert_sql(SQLITE_ROWS_PER_STATEMENT, false))
    }
}

/// PostgreSQL type of each column in the JSON records.
const PG_TYPES: [&str; 26] = [
    "integer", "text", "text", "text", "text", "text", "bigint", "bigint", "bigint", "bigint", "text", "bigint",
    "bigint", "text", "text", "bigint", "text", "text", "text", "bigint", "text", "bigint", "bigint", "bigint", "text",
    "bigint",
];

/// PostgreSQL statement: one JSON array of row objects, expanded by `json_to_recordset`.
fn pg_upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let defs: Vec<String> = COLUMNS.iter().zip(PG_TYPES).map(|(c, t)| format!("{c} {t}")).collect();
        format!(
            "INSERT INTO intel_indicator ({cols}) SELECT {cols} FROM json_to_recordset($1::json) AS r({defs}){conflict}",
            cols = COLUMNS.join(", "),
            defs = defs.join(", "),
            conflict = on_conflict()
        )
    })
}

/// The `n`th (1-based) placeholder: `$n` on PostgreSQL, `?` on SQLite.
fn placeholder(sql: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Sqlite => sql.push('?'),
        Backend::Postgres => {
            let _ = write!(sql, "${n}");
        }
    }
}

/// Shared `Arc<str>` for the closed-set words of a write, so binding them on SQLite copies
/// nothing on the Rust side.
#[derive(Default)]
struct Words(HashMap<Box<str>, Arc<str>>);

impl Words {
    fn get(&mut self, w: &str) -> Arc<str> {
        if let Some(a) = self.0.get(w) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(w);
        self.0.insert(Box::from(w), a.clone());
        a
    }
}

fn indicator_at(state: &CleanupState, ix: u32) -> Result<&Indicator> {
    state
        .indicators
        .get(ix as usize)
        .ok_or_else(|| StoreError::NotFound(format!("indicator index {ix}")))
}

type SqliteQuery = sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// One SQLite statement writing the indicators at `chunk`.
fn sqlite_chunk(
    state: &CleanupState,
    chunk: &[u32],
    upsert: bool,
    stamp: i64,
    words: &mut Words,
) -> Result<SqliteQuery> {
    let sql = if chunk.len() == SQLITE_ROWS_PER_STATEMENT {
        full_sqlite_sql(upsert).to_string()
    } else {
        sqlite_insert_sql(chunk.len(), upsert)
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for &ix in chunk {
        let ind = indicator_at(state, ix)?;
        q = q
            .bind(i64::from(ix))
            .bind(words.get(ind.kind.as_str()))
            .bind(ind.value.to_string())
            .bind(words.get(ind.classification.as_str()))
            .bind(ind.malware.clone())
            .bind(ind.feed.clone())
            .bind(ms(ind.first_seen))
            .bind(ms(ind.last_seen))
            .bind(i64::try_from(ind.sightings).unwrap_or(i64::MAX))
            .bind(i64::from(ind.confidence))
            .bind(words.get(ind.tlp.as_str()))
            .bind(ind.port.map(i64::from))
            .bind(ind.victim_count.map(i64::from))
            .bind(victims_text(&ind.victim_countries))
            .bind(ind.source_country.map(|c| words.get(c.as_str())))
            .bind(ind.source_asn.map(i64::from))
            .bind(ind.as_org.clone())
            .bind(ind.partner.as_ref().map(|p| p.0.clone()))
            .bind(words.get(indicator_status(ind)))
            .bind(ind.first_notified.map(ms))
            .bind(ind.last_notice.map(|n| n.to_string()))
            .bind(ind.remediated_at.map(ms))
            .bind(ind.reappeared_at.map(ms))
            .bind(i64::from(ind.reappearances))
            .bind(ind.ingested_by.clone())
            .bind(stamp);
    }
    Ok(q)
}

/// Writes `ixs` (sorted, distinct) on a native SQLite connection; `upsert` adds the dedup
/// clause. Returns the number of rows written.
///
/// The statements are pipelined: the next one's arguments are built on this task while
/// sqlx's SQLite worker thread executes the previous one.
async fn sqlite_write_rows(
    conn: &mut SqliteConnection,
    state: &CleanupState,
    ixs: &[u32],
    upsert: bool,
) -> Result<u64> {
    let (send, mut recv) = tokio::sync::mpsc::channel::<SqliteQuery>(1);
    let stamp = change_stamp();
    let produce = async move {
        let mut words = Words::default();
        for chunk in ixs.chunks(SQLITE_ROWS_PER_STATEMENT) {
            let q = sqlite_chunk(state, chunk, upsert, stamp, &mut words)?;
            if send.send(q).await.is_err() {
                // The writer stopped on an error; it reports it.
                break;
            }
        }
        Ok::<(), StoreError>(())
    };
    let consume = async move {
        let mut written = 0;
        while let Some(q) = recv.recv().await {
            written += q.execute(&mut *conn).await?.rows_affected();
        }
        Ok::<u64, StoreError>(written)
    };
    let (produced, written) = tokio::join!(produce, consume);
    let written = written?;
    produced?;
    Ok(written)
}

/// The bulk load of new indicators (see the module docs). Runs inside a savepoint of its own;
/// on an error nothing of it remains and the caller writes the rows the ordinary way.
async fn sqlite_bulk_load(conn: &mut SqliteConnection, state: &CleanupState, new: &[u32]) -> Result<u64> {
    conn.execute("DROP INDEX intel_indicator_kv").await?;
    let written = sqlite_write_rows(conn, state, new, false).await?;
    // Let SQLite's sorter use a helper thread for the index build.
    conn.execute("PRAGMA threads = 2").await?;
    conn.execute("CREATE UNIQUE INDEX intel_indicator_kv ON intel_indicator (kind, value)")
        .await?;
    Ok(written)
}

/// SQLite: known rows by upsert, new rows by bulk load when the batch is large.
async fn sqlite_save(conn: &mut SqliteConnection, state: &CleanupState, ixs: &[u32]) -> Result<u64> {
    let stored: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id) + 1, 0) FROM intel_indicator")
        .fetch_one(&mut *conn)
        .await?;
    let split = ixs.partition_point(|&ix| i64::from(ix) < stored);
    let (known, new) = ixs.split_at(split);
    let mut written = sqlite_write_rows(conn, state, known, true).await?;
    if new.len() >= IntelTx::BULK_MIN_ROWS && new.len() as i64 >= stored {
        conn.execute("SAVEPOINT intel_bulk").await?;
        match sqlite_bulk_load(conn, state, new).await {
            Ok(n) => {
                conn.execute("RELEASE SAVEPOINT intel_bulk").await?;
                return Ok(written + n);
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = new.len(), "bulk load of new indicators undone; upserting them instead");
                conn.execute("ROLLBACK TO SAVEPOINT intel_bulk").await?;
                conn.execute("RELEASE SAVEPOINT intel_bulk").await?;
            }
        }
    }
    written += sqlite_write_rows(conn, state, new, true).await?;
    Ok(written)
}

/// In-memory SQLite (no file for a native connection): multi-row upserts through `Any`.
async fn any_save(conn: &mut sqlx::AnyConnection, state: &CleanupState, ixs: &[u32], backend: Backend) -> Result<u64> {
    let mut written = 0;
    let stamp = change_stamp();
    for chunk in ixs.chunks(1000) {
        let mut sql = String::from("INSERT INTO intel_indicator (");
        sql.push_str(&COLUMNS.join(", "));
        sql.push_str(") VALUES ");
        for r in 0..chunk.len() {
            if r > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..COLUMNS.len() {
                if c > 0 {
                    sql.push(',');
                }
                placeholder(&mut sql, backend, r * COLUMNS.len() + c + 1);
            }
            sql.push(')');
        }
        sql.push_str(&on_conflict());
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for &ix in chunk {
            let ind = indicator_at(state, ix)?;
            q = q
                .bind(i64::from(ix))
                .bind(ind.kind.as_str())
                .bind(ind.value.to_string())
                .bind(ind.classification.as_str())
                .bind(ind.malware.as_deref().map(str::to_string))
                .bind(ind.feed.to_string())
                .bind(ms(ind.first_seen))
                .bind(ms(ind.last_seen))
                .bind(i64::try_from(ind.sightings).unwrap_or(i64::MAX))
                .bind(i64::from(ind.confidence))
                .bind(ind.tlp.as_str())
                .bind(ind.port.map(i64::from))
                .bind(ind.victim_count.map(i64::from))
                .bind(victims_text(&ind.victim_countries))
                .bind(ind.source_country.map(|c| c.as_str().to_string()))
                .bind(ind.source_asn.map(i64::from))
                .bind(ind.as_org.as_deref().map(str::to_string))
                .bind(ind.partner.as_ref().map(|p| p.as_str().to_string()))
                .bind(indicator_status(ind))
                .bind(ind.first_notified.map(ms))
                .bind(ind.last_notice.map(|n| n.to_string()))
                .bind(ind.remediated_at.map(ms))
                .bind(ind.reappeared_at.map(ms))
                .bind(i64::from(ind.reappearances))
                .bind(ind.ingested_by.as_deref().map(str::to_string))
                .bind(stamp);
        }
        written += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(written)
}

/// Appends `s` as a JSON string.
fn json_str(buf: &mut String, s: &str) {
    buf.push('"');
    for ch in s.chars() {
        match ch {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

fn json_opt_str(buf: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_str(buf, s),
        None => buf.push_str("null"),
    }
}

fn json_opt_int(buf: &mut String, v: Option<i64>) {
    match v {
        Some(v) => {
            let _ = write!(buf, "{v}");
        }
        None => buf.push_str("null"),
    }
}

/// One indicator as a JSON object keyed by column name.
fn json_row(buf: &mut String, ix: u32, ind: &Indicator, stamp: i64) {
    let _ = write!(buf, "{{\"id\":{ix},\"kind\":");
    json_str(buf, ind.kind.as_str());
    buf.push_str(",\"value\":");
    json_str(buf, &ind.value.to_string());
    buf.push_str(",\"classification\":");
    json_str(buf, ind.classification.as_str());
    buf.push_str(",\"malware\":");
    json_opt_str(buf, ind.malware.as_deref());
    buf.push_str(",\"feed\":");
    json_str(buf, &ind.feed);
    let _ = write!(
        buf,
        ",\"first_seen\":{},\"last_seen\":{},\"sightings\":{},\"confidence\":{},\"tlp\":",
        ms(ind.first_seen),
        ms(ind.last_seen),
        i64::try_from(ind.sightings).unwrap_or(i64::MAX),
        ind.confidence
    );
    json_str(buf, ind.tlp.as_str());
    buf.push_str(",\"port\":");
    json_opt_int(buf, ind.port.map(i64::from));
    buf.push_str(",\"victim_count\":");
    json_opt_int(buf, ind.victim_count.map(i64::from));
    buf.push_str(",\"victim_countries\":");
    json_opt_str(buf, victims_text(&ind.victim_countries).as_deref());
    buf.push_str(",\"source_country\":");
    json_opt_str(buf, ind.source_country.as_ref().map(|c| c.as_str()));
    buf.push_str(",\"source_asn\":");
    json_opt_int(buf, ind.source_asn.map(i64::from));
    buf.push_str(",\"as_org\":");
    json_opt_str(buf, ind.as_org.as_deref());
    buf.push_str(",\"partner\":");
    json_opt_str(buf, ind.partner.as_ref().map(|p| p.as_str()));
    buf.push_str(",\"status\":");
    json_str(buf, indicator_status(ind));
    buf.push_str(",\"first_notified\":");
    json_opt_int(buf, ind.first_notified.map(ms));
    buf.push_str(",\"last_notice\":");
    json_opt_str(buf, ind.last_notice.map(|n| n.to_string()).as_deref());
    buf.push_str(",\"remediated_at\":");
    json_opt_int(buf, ind.remediated_at.map(ms));
    buf.push_str(",\"reappeared_at\":");
    json_opt_int(buf, ind.reappeared_at.map(ms));
    let _ = write!(buf, ",\"reappearances\":{},\"ingested_by\":", ind.reappearances);
    json_opt_str(buf, ind.ingested_by.as_deref());
    let _ = write!(buf, ",\"changed_at\":{stamp}}}");
}

/// PostgreSQL: chunks of rows as one JSON parameter each.
async fn pg_save(conn: &mut sqlx::AnyConnection, state: &CleanupState, ixs: &[u32]) -> Result<u64> {
    let mut written = 0;
    let mut buf = String::new();
    let stamp = change_stamp();
    for chunk in ixs.chunks(PG_ROWS_PER_STATEMENT) {
        buf.clear();
        buf.push('[');
        for (i, &ix) in chunk.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            json_row(&mut buf, ix, indicator_at(state, ix)?, stamp);
        }
        buf.push(']');
        written += sqlx::query(pg_upsert_sql())
            .bind(buf.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(written)
}

fn victims_text(v: &Victims) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    let mut s = String::with_capacity(12 * v.len() + 2);
    s.push('[');
    for (i, (c, n)) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "[\"{}\",{n}]", c.as_str());
    }
    s.push(']');
    Some(s)
}

fn parse_victims(s: &str) -> Result<Victims> {
    let pairs: Vec<(String, u32)> =
        serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("victim countries '{s}': {e}")))?;
    let mut out = Vec::with_capacity(pairs.len());
    for (c, n) in pairs {
        out.push((crate::parse::<CountryCode>(&c, "victim country")?, n));
    }
    Ok(Victims::from_pairs(&out))
}

/// Shares one `Arc<str>` per distinct word while loading (feeds, malware, AS names, partners).
#[derive(Default)]
struct Interner(HashMap<String, Arc<str>>);

impl Interner {
    fn get(&mut self, s: String) -> Arc<str> {
        if let Some(a) = self.0.get(&s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s.as_str());
        self.0.insert(s, a.clone());
        a
    }
    fn opt(&mut self, s: Option<String>) -> Option<Arc<str>> {
        s.map(|s| self.get(s))
    }
}

fn u32_of(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

fn opt_cc(v: Option<String>) -> Result<Option<CountryCode>> {
    v.map(|c| crate::parse::<CountryCode>(&c, "country")).transpose()
}
/// Column access shared by the `Any` and native SQLite rows.
trait Cols {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, i: usize) -> Result<String> {
                Ok(self.try_get(i)?)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>> {
                Ok(self.try_get(i)?)
            }
            fn int(&self, i: usize) -> Result<i64> {
                Ok(self.try_get(i)?)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>> {
                Ok(self.try_get(i)?)
            }
        }
    };
}
impl_cols!(sqlx::any::AnyRow);
impl_cols!(sqlx::sqlite::SqliteRow);

fn indicator_sql() -> String {
    format!(
        "SELECT CAST(id AS BIGINT), {} FROM intel_indicator ORDER BY id",
        COLUMNS[1..].join(", ")
    )
}

const ITEMS_SQL: &str = "SELECT id, indicator_id, partner FROM intel_notice_item";
const FEEDBACK_SQL: &str = "SELECT item_id, indicator_id, partner, status, at, note FROM intel_feedback ORDER BY id";

type ItemRow = (String, i64, String);
type FeedbackRow = (String, i64, String, String, i64, Option<String>);

fn indicator_of<R: Cols>(i: usize, r: &R, words: &mut Interner) -> Result<Indicator> {
    let id = r.int(0)?;
    if id != i as i64 {
        return Err(StoreError::Corrupt(format!(
            "intel_indicator ids are not contiguous: row {i} has id {id}"
        )));
    }
    indicator_row(r, words)
}

/// One indicator row (columns in [`COLUMNS`] order), wherever it sits.
fn indicator_row<R: Cols>(r: &R, words: &mut Interner) -> Result<Indicator> {
    let id = r.int(0)?;
    if id < 0 {
        return Err(StoreError::Corrupt(format!("intel_indicator row with id {id}")));
    }
    let kind: IndicatorKind = crate::parse(&r.text(1)?, "indicator kind")?;
    let raw = r.text(2)?;
    let value =
        IndicatorValue::parse(kind, &raw).map_err(|e| StoreError::Corrupt(format!("indicator {id} ({kind}): {e}")))?;
    let status = r.text(18)?;
    Ok(Indicator {
        kind,
        value,
        classification: crate::parse::<Classification>(&r.text(3)?, "classification")?,
        malware: words.opt(r.opt_text(4)?),
        feed: words.get(r.text(5)?),
        first_seen: secs(r.int(6)?),
        last_seen: secs(r.int(7)?),
        sightings: r.int(8)?.max(0) as u64,
        confidence: r.int(9)?.clamp(0, 100) as u8,
        tlp: crate::parse::<Tlp>(&r.text(10)?, "TLP")?,
        port: r.opt_int(11)?.map(|p| p.clamp(0, 65535) as u16),
        victim_count: r.opt_int(12)?.map(|v| u32_of(v, "victim count")).transpose()?,
        victim_countries: match r.opt_text(13)? {
            Some(s) => parse_victims(&s)?,
            None => Victims::default(),
        },
        source_country: opt_cc(r.opt_text(14)?)?,
        source_asn: r.opt_int(15)?.map(|v| u32_of(v, "ASN")).transpose()?,
        as_org: words.opt(r.opt_text(16)?),
        partner: words.opt(r.opt_text(17)?).map(PartnerId),
        first_notified: r.opt_int(19)?.map(secs),
        last_notice: r
            .opt_text(20)?
            .map(|s| crate::parse::<Uuid>(&s, "notice id").map(NoticeId))
            .transpose()?,
        remediated_at: r.opt_int(21)?.map(secs),
        reappeared_at: r.opt_int(22)?.map(secs),
        reappearances: u32_of(r.int(23)?, "reappearances")?,
        suppressed: status == "suppressed",
        ingested_by: words.opt(r.opt_text(24)?),
    })
}

fn state_of(
    indicators: Vec<Indicator>,
    mut words: Interner,
    items: Vec<ItemRow>,
    fb: Vec<FeedbackRow>,
) -> Result<CleanupState> {
    let mut issued = Vec::with_capacity(items.len());
    for (id, ix, partner) in items {
        issued.push((
            crate::parse::<Uuid>(&id, "notice item id")?,
            u32_of(ix, "indicator id")?,
            PartnerId(words.get(partner)),
        ));
    }
    let mut feedback = Vec::with_capacity(fb.len());
    for (item, ix, partner, status, at, note) in fb {
        feedback.push(FeedbackRecord {
            item_id: crate::parse(&item, "notice item id")?,
            indicator: u32_of(ix, "indicator id")?,
            partner: PartnerId(words.get(partner)),
            status: crate::parse(&status, "feedback status")?,
            at: secs(at),
            note,
        });
    }
    Ok(CleanupState::from_parts(indicators, issued, feedback))
}

/// Loads the state over any connection type (the body is the same SQL for both drivers).
/// The indicator rows are converted as they arrive (a row of the driver takes several times
/// the memory of the indicator it becomes: holding them all first took 776 MB for 200,000).
macro_rules! load_state {
    ($conn:expr) => {{
        let mut words = Interner::default();
        let mut indicators = Vec::new();
        {
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(indicator_sql())).fetch(&mut *$conn);
            while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
                let i = indicators.len();
                indicators.push(indicator_of(i, &r, &mut words)?);
            }
        }
        let items: Vec<ItemRow> = sqlx::query_as(ITEMS_SQL).fetch_all(&mut *$conn).await?;
        let fb: Vec<FeedbackRow> = sqlx::query_as(FEEDBACK_SQL).fetch_all(&mut *$conn).await?;
        state_of(indicators, words, items, fb)
    }};
}

/// The native SQLite connection of a clean-up transaction, and the store's write lock held
/// idle for its duration.
struct NativeTx {
    conn: SqliteConnection,
    _writer: OwnedMutexGuard<Option<PoolConnection<Any>>>,
}

enum Conn {
    /// PostgreSQL, or a SQLite database without a file (in memory): the store's write transaction.
    Shared(WriteTx),
    Sqlite(NativeTx),
}

/// Runs `$body` with `$c` bound to the transaction's connection, whichever driver it is.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Shared(w) => {
                let $c: &mut sqlx::AnyConnection = w.conn().await?;
                $body
            }
            Conn::Sqlite(n) => {
                let $c: &mut SqliteConnection = &mut n.conn;
                $body
            }
        }
    };
}

/// A value bound by [`IntelTx::exec`].
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

/// Who an issued notice item belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOwner {
    pub item: Uuid,
    pub notice: NoticeId,
    pub partner: PartnerId,
}

/// The persisted size of the clean-up state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IntelCounts {
    pub indicators: u64,
    pub notices: u64,
    pub notice_items: u64,
    pub feedback: u64,
}

/// Which indicator rows [`Store::intel_page`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndicatorPage {
    /// Rows this agency ingested (its code among the row's `ingested_by`).
    pub agency: String,
    /// Also rows stored before the node recorded who ingested them (migration 20).
    pub or_unattributed: bool,
    /// Only these levels (none: no rows).
    pub tlp: Vec<Tlp>,
    /// Only these feeds (empty: every feed).
    pub feeds: Vec<String>,
    /// Rows after this `(changed_at, id)` key, or at it when `inclusive`.
    pub after: Option<(i64, i64)>,
    pub inclusive: bool,
    /// Only rows written after this instant (UTC milliseconds).
    pub added_after: Option<i64>,
    pub limit: u32,
}

/// A row of [`Store::intel_page`].
#[derive(Debug, Clone)]
pub struct PagedIndicator {
    pub id: i64,
    /// When the row was last written (UTC milliseconds).
    pub changed_at: i64,
    pub indicator: Indicator,
}

/// One clean-up write transaction (see the module docs).
pub struct IntelTx {
    conn: Conn,
    backend: Backend,
    /// When this transaction got the write lock (for [`IntelTx::commit_timed`]).
    locked_at: std::time::Instant,
}

/// Writes an ingest's chunks ([`Store::intel_chunks`]).
pub struct IntelChunks {
    store: Store,
    native: Option<SqliteConnection>,
}

impl IntelChunks {
    /// Writes the indicators at `ixs` in one short journalled transaction (see
    /// [`Store::intel_save_chunk`]); returns the rows written and the write-lock hold.
    ///
    /// The transaction runs on the store's write thread, like every other write: its holder
    /// waits for the database several times (`BEGIN`, the statements, `COMMIT`), and on the
    /// node's main runtime each wait also waited for a turn behind the request handlers,
    /// while every request write waited for the lock.
    pub async fn save(&mut self, state: &Arc<CleanupState>, ixs: &[u32], base: u32) -> Result<(u64, Duration)> {
        let state = state.clone();
        let mut ixs = ixs.to_vec();
        let Some(conn) = self.native.take() else {
            return self
                .store
                .writing(move |s| async move { s.intel_save_chunk(&state, &ixs, base).await })
                .await;
        };
        ixs.sort_unstable();
        ixs.dedup();
        let undo = undo_sql(&ixs, base);
        let (conn, out) = self
            .store
            .writing(move |store| async move {
                let mut conn = conn;
                let out = native_chunk(&store, &mut conn, &state, &ixs, undo).await;
                Ok((conn, out))
            })
            .await?;
        self.native = Some(conn);
        out
    }

    /// Closes the native connection, if any.
    pub async fn close(mut self) {
        if let Some(c) = self.native.take()
            && let Err(e) = c.close().await
        {
            tracing::warn!(error = %e, "closing the clean-up connection");
        }
    }
}

/// One chunk's transaction on the ingest's native SQLite connection (see [`IntelChunks::save`]).
async fn native_chunk(
    store: &Store,
    conn: &mut SqliteConnection,
    state: &CleanupState,
    ixs: &[u32],
    undo: Option<String>,
) -> Result<(u64, Duration)> {
    // Every write of this process running now commits first; then nothing else of this
    // process writes until this chunk's transaction ends.
    let guard = store.write_lock.lock().await;
    let at = std::time::Instant::now();
    conn.execute("BEGIN IMMEDIATE").await?;
    let written = async {
        if let Some(sql) = undo {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
        }
        sqlite_save(conn, state, ixs).await
    }
    .await;
    match written {
        Ok(n) => {
            conn.execute("COMMIT").await?;
            drop(guard);
            Ok((n, at.elapsed()))
        }
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// The statement copying the known indicators among `ixs` (ids below `base`) into the undo
/// journal, if there are any. Integer literals only (indices), so the text is safe to build.
fn undo_sql(ixs: &[u32], base: u32) -> Option<String> {
    let known: Vec<String> = ixs.iter().filter(|&&i| i < base).map(|i| i.to_string()).collect();
    if known.is_empty() {
        return None;
    }
    let cols = COLUMNS.join(", ");
    Some(format!(
        "INSERT INTO intel_indicator_undo ({cols}) SELECT {cols} FROM intel_indicator WHERE id IN ({}) \
         ON CONFLICT (id) DO NOTHING",
        known.join(",")
    ))
}

/// The right to change the clean-up state outside a single write transaction (an ingest that
/// parses outside the write lock and persists in short transactions), held by one process
/// at a time across every process sharing the database. Notice runs and feedback take it
/// too, so that nothing changes indicators between an ingest's load and its last write.
///
/// PostgreSQL: the advisory lease `intel` ([`Store::try_lease`]). SQLite: an exclusive
/// advisory lock (`flock`) on `DATABASE.intel-lock` next to the database file, released
/// when the holder ends or dies. An in-memory SQLite store has one process: always granted.
#[derive(Debug)]
pub struct IntelLease {
    pg: Option<crate::locks::Lease>,
    file: Option<std::fs::File>,
}

impl IntelLease {
    /// Gives the lease up now (dropping it does too).
    pub async fn release(mut self) {
        if let Some(l) = self.pg.take() {
            l.release().await;
        }
        if let Some(f) = self.file.take() {
            let _ = f.unlock();
        }
    }
}

impl Store {
    /// The file of a SQLite store (`None` in memory).
    async fn sqlite_file(&self) -> Result<Option<PathBuf>> {
        let file: Option<String> = sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(file.filter(|f| !f.is_empty()).map(PathBuf::from))
    }

    /// A native connection to the store's SQLite file, with the store's pragmas.
    async fn native_sqlite(&self, file: &std::path::Path, read_only: bool, cache_kib: i64) -> Result<SqliteConnection> {
        let opts = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(false)
            .read_only(read_only)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(crate::sqlite_synchronous().1)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", format!("-{cache_kib}"))
            // As the store's own connections: the store's checkpointer copies the WAL.
            .pragma("wal_autocheckpoint", crate::SQLITE_AUTOCHECKPOINT_PAGES.to_string())
            // Rows come back from sqlx's SQLite worker thread through a channel: a deep one
            // saves a thread wake-up per row when loading the state.
            .row_buffer_size(4096);
        Ok(SqliteConnection::connect_with(&opts).await?)
    }

    /// Starts a clean-up write transaction. On PostgreSQL the indicator table is locked
    /// against other writers until commit; on SQLite the transaction runs on a native
    /// connection of its own while the store's other writers wait (see the module docs).
    pub async fn intel_begin(&self) -> Result<IntelTx> {
        if self.backend() == Backend::Sqlite
            && let Some(file) = self.sqlite_file().await?
        {
            let mut conn = self.native_sqlite(&file, false, SQLITE_CACHE_KIB).await?;
            // Every write of this process that is running now commits first; then nothing
            // else of this process writes until this transaction ends.
            let writer = self.write_lock.lock().await;
            let locked_at = std::time::Instant::now();
            conn.execute("BEGIN IMMEDIATE").await?;
            return Ok(IntelTx {
                conn: Conn::Sqlite(NativeTx { conn, _writer: writer }),
                backend: Backend::Sqlite,
                locked_at,
            });
        }
        let mut w = self.write().await?;
        let locked_at = std::time::Instant::now();
        let setup = match self.backend() {
            Backend::Postgres => "LOCK TABLE intel_indicator IN EXCLUSIVE MODE",
            Backend::Sqlite => "PRAGMA cache_size = -65536",
        };
        sqlx::query(setup).execute(w.conn().await?).await?;
        Ok(IntelTx {
            conn: Conn::Shared(w),
            backend: self.backend(),
            locked_at,
        })
    }

    /// Tries to take the [`IntelLease`]; `Ok(None)`: another process holds it.
    pub async fn intel_try_lease(&self) -> Result<Option<IntelLease>> {
        if self.backend() == Backend::Postgres {
            return Ok(self.try_lease("intel").await?.map(|l| IntelLease {
                pg: Some(l),
                file: None,
            }));
        }
        let Some(db) = self.sqlite_file().await? else {
            return Ok(Some(IntelLease { pg: None, file: None }));
        };
        let mut path = db.into_os_string();
        path.push(".intel-lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(IntelLease {
                pg: None,
                file: Some(file),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Database(sqlx::Error::Io(e))),
        }
    }

    /// Writes the indicators at `ixs` of `state` in one short transaction of their own and
    /// returns the rows written and how long the transaction held the write lock (from
    /// taking it to the end of `COMMIT`). Callers keep `ixs` small enough for that to stay
    /// short (an ingest sizes its chunks from the times measured here). Known indicators
    /// (ids below `base`) are copied into the undo journal first (migration 12), unless
    /// already there: call [`Store::intel_run_begin`] before the first chunk.
    pub async fn intel_save_chunk(&self, state: &CleanupState, ixs: &[u32], base: u32) -> Result<(u64, Duration)> {
        let mut tx = self.intel_begin().await?;
        if let Some(sql) = undo_sql(ixs, base) {
            tx.exec(&sql).await?;
        }
        let n = tx.save_indicators(state, ixs).await?;
        let held = tx.commit_timed().await?;
        Ok((n, held))
    }

    /// A writer of journalled chunks for one ingest run: like [`Store::intel_save_chunk`], but
    /// on SQLite it keeps one native connection (and its warm page cache) for all the chunks,
    /// taking the store's write lock for each chunk's transaction only.
    pub async fn intel_chunks(&self) -> Result<IntelChunks> {
        let native = match self.backend() {
            Backend::Sqlite => match self.sqlite_file().await? {
                Some(file) => Some(self.native_sqlite(&file, false, SQLITE_CHUNK_CACHE_KIB).await?),
                None => None,
            },
            Backend::Postgres => None,
        };
        Ok(IntelChunks {
            store: self.clone(),
            native,
        })
    }

    /// Opens the journal of an ingest about to write (see [`MIGRATION_12`]): `base` is the
    /// number of indicators it loaded (the first id it adds). The caller holds the
    /// [`IntelLease`] and ran [`Store::intel_recover`].
    pub async fn intel_run_begin(&self, run: Uuid, base: u32, started_at: UnixTime) -> Result<()> {
        let mut tx = self.intel_begin().await?;
        tx.exec_bind(
            "INSERT INTO intel_ingest_run (id, base, started_at) VALUES ($1, $2, $3)",
            run.to_string(),
            i64::from(base),
            ms(started_at),
        )
        .await?;
        tx.commit().await
    }

    /// The commit point of an ingest: its journal row goes (a tiny transaction); returns how
    /// long it held the write lock. The undo rows are cleared after, in short transactions.
    pub async fn intel_run_end(&self, run: Uuid) -> Result<Duration> {
        let mut tx = self.intel_begin().await?;
        tx.exec_bind("DELETE FROM intel_ingest_run WHERE id = $1", run.to_string(), 0, 0)
            .await?;
        let held = tx.commit_timed().await?;
        self.intel_clear_undo().await?;
        Ok(held)
    }

    /// Deletes the undo journal, [`JOURNAL_ROWS`] rows per transaction.
    async fn intel_clear_undo(&self) -> Result<()> {
        loop {
            let mut tx = self.intel_begin().await?;
            let n = tx
                .exec(&format!(
                    "DELETE FROM intel_indicator_undo WHERE id IN \
                     (SELECT id FROM intel_indicator_undo ORDER BY id LIMIT {JOURNAL_ROWS})"
                ))
                .await?;
            tx.commit().await?;
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// Rolls back an ingest that died while writing (its journal row is still there): the
    /// known indicators it changed are written back from the undo journal, the ones it added
    /// are deleted, then the journal row, all in short transactions (a recovery that dies is
    /// simply run again). Then clears left-over undo rows. The caller holds the
    /// [`IntelLease`], so no live run is touched.
    pub async fn intel_recover(&self) -> Result<IntelRecovery> {
        let mut out = IntelRecovery::default();
        let run: Option<(String, i64)> =
            sqlx::query_as("SELECT id, base FROM intel_ingest_run ORDER BY started_at LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        if let Some((id, base)) = run {
            out.rolled_back = true;
            let cols = COLUMNS.join(", ");
            let sets: Vec<String> = COLUMNS[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
            let mut after: i64 = -1;
            loop {
                let last: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT MAX(id) FROM (SELECT id FROM intel_indicator_undo WHERE id > {after} ORDER BY id LIMIT {JOURNAL_ROWS}) AS page"
                )))
                .fetch_one(&self.pool)
                .await?;
                let Some(last) = last else { break };
                let mut tx = self.intel_begin().await?;
                out.restored += tx
                    .exec(&format!(
                        "INSERT INTO intel_indicator ({cols}) SELECT {cols} FROM intel_indicator_undo \
                         WHERE id > {after} AND id <= {last} ON CONFLICT (id) DO UPDATE SET {}",
                        sets.join(", ")
                    ))
                    .await?;
                tx.commit().await?;
                after = last;
            }
            let top: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM intel_indicator")
                .fetch_one(&self.pool)
                .await?;
            let mut from = base;
            while let Some(top) = top
                && from <= top
            {
                let to = from + JOURNAL_ROWS * 4;
                let mut tx = self.intel_begin().await?;
                out.removed += tx
                    .exec(&format!("DELETE FROM intel_indicator WHERE id >= {from} AND id < {to}"))
                    .await?;
                tx.commit().await?;
                from = to;
            }
            let mut tx = self.intel_begin().await?;
            tx.exec_bind("DELETE FROM intel_ingest_run WHERE id = $1", id, 0, 0)
                .await?;
            tx.commit().await?;
            tracing::warn!(
                restored = out.restored,
                removed = out.removed,
                "rolled back an intel ingest that died while writing"
            );
        }
        self.intel_clear_undo().await?;
        Ok(out)
    }

    /// Loads the whole clean-up state (read only).
    pub async fn intel_load(&self) -> Result<CleanupState> {
        if self.backend() == Backend::Sqlite
            && let Some(file) = self.sqlite_file().await?
        {
            let mut conn = self.native_sqlite(&file, true, SQLITE_CACHE_KIB).await?;
            conn.execute("BEGIN").await?;
            let c = &mut conn;
            let state = load_state!(c);
            conn.close().await?;
            return state;
        }
        let mut conn = self.pool.acquire().await?;
        load_state!(conn)
    }

    /// Row counts.
    /// One keyset page of indicator rows in `(changed_at, id)` order (the TAXII collections'
    /// order, docs/intel-formats.md): rows of `q.agency` (its code among `ingested_by`),
    /// never suppressed ones, at the given TLP levels and feeds.
    pub async fn intel_page(&self, q: &IndicatorPage) -> Result<Vec<PagedIndicator>> {
        if q.tlp.is_empty() || q.limit == 0 {
            return Ok(Vec::new());
        }
        let levels: Vec<String> = q.tlp.iter().map(|t| format!("'{}'", t.as_str())).collect();
        let mut sql = format!(
            "SELECT CAST(id AS BIGINT), {} FROM intel_indicator WHERE status <> 'suppressed' AND tlp IN ({}) \
             AND ((',' || ingested_by || ',') LIKE $1 ESCAPE '\\'{})",
            COLUMNS[1..].join(", "),
            levels.join(", "),
            if q.or_unattributed {
                " OR ingested_by IS NULL"
            } else {
                ""
            }
        );
        let mut n = 1;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if !q.feeds.is_empty() {
            let ps: Vec<String> = q.feeds.iter().map(|_| next()).collect();
            let _ = write!(sql, " AND feed IN ({})", ps.join(", "));
        }
        if q.after.is_some() {
            let (a, b) = (next(), next());
            let op = if q.inclusive { ">=" } else { ">" };
            let _ = write!(sql, " AND (changed_at, id) {op} ({a}, {b})");
        }
        if q.added_after.is_some() {
            let a = next();
            let _ = write!(sql, " AND changed_at > {a}");
        }
        let _ = write!(sql, " ORDER BY changed_at, id LIMIT {}", q.limit);
        let escaped: String = q
            .agency
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(format!("%,{escaped},%"));
        for f in &q.feeds {
            query = query.bind(f.clone());
        }
        if let Some((t, id)) = q.after {
            query = query.bind(t).bind(id);
        }
        if let Some(t) = q.added_after {
            query = query.bind(t);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut words = Interner::default();
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(PagedIndicator {
                id: r.int(0)?,
                changed_at: r.int(COLUMNS.len() - 1)?,
                indicator: indicator_row(r, &mut words)?,
            });
        }
        Ok(out)
    }

    pub async fn intel_counts(&self) -> Result<IntelCounts> {
        let (a, b, c, d): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM intel_indicator), (SELECT COUNT(*) FROM intel_notice), \
             (SELECT COUNT(*) FROM intel_notice_item), (SELECT COUNT(*) FROM intel_feedback)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(IntelCounts {
            indicators: a.max(0) as u64,
            notices: b.max(0) as u64,
            notice_items: c.max(0) as u64,
            feedback: d.max(0) as u64,
        })
    }

    /// The notice an issued item is on, and its partner.
    pub async fn intel_item_owner(&self, item: Uuid) -> Result<ItemOwner> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT notice_id, partner FROM intel_notice_item WHERE id = $1")
                .bind(item.to_string())
                .fetch_optional(&self.pool)
                .await?;
        let (notice, partner) = row.ok_or_else(|| StoreError::NotFound(format!("notice item {item}")))?;
        Ok(ItemOwner {
            item,
            notice: NoticeId(crate::parse(&notice, "notice id")?),
            partner: PartnerId::new(&partner),
        })
    }

    /// Issued notices with their items (current indicator data), newest first; optionally
    /// for one partner only.
    pub async fn intel_notices(&self, partner: Option<&str>) -> Result<Vec<StoredNotice>> {
        self.intel_notices_visible(partner, None).await
    }

    /// [`Store::intel_notices`] limited to what agency `viewer` (a code) may see: the notices
    /// it issued and the notices addressed to it (`None`: every notice).
    pub async fn intel_notices_visible(
        &self,
        partner: Option<&str>,
        viewer: Option<&str>,
    ) -> Result<Vec<StoredNotice>> {
        let mut conds = Vec::new();
        if partner.is_some() {
            conds.push("n.partner = $1".to_string());
        }
        if viewer.is_some() {
            let n = conds.len() + 1;
            conds.push(format!("(n.issuer = ${n} OR n.partner = ${n})"));
        }
        let sql = format!(
            "SELECT n.id, n.partner, n.interval_start, n.interval_end, n.issued_at, n.tlp, \
             i.id, i.indicator_id, i.status, d.kind, d.value, d.classification, d.malware, d.first_seen, \
             d.last_seen, d.sightings, d.port, d.source_country, d.source_asn, d.as_org, d.victim_count, d.tlp, n.issuer, n.pap \
             FROM intel_notice n JOIN intel_notice_item i ON i.notice_id = n.id \
             JOIN intel_indicator d ON d.id = i.indicator_id {} \
             ORDER BY n.issued_at DESC, n.interval_start DESC, n.partner, n.id, d.kind, d.value",
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(p) = partner {
            q = q.bind(p.to_string());
        }
        if let Some(v) = viewer {
            q = q.bind(v.to_string());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut words = Interner::default();
        let mut out: Vec<StoredNotice> = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            let id = NoticeId(crate::parse(&id, "notice id")?);
            if out.last().is_none_or(|n| n.notice.id != id) {
                out.push(StoredNotice {
                    notice: Notice {
                        id,
                        partner: PartnerId(words.get(r.try_get(1)?)),
                        interval: Interval {
                            start: secs(r.try_get(2)?),
                            end: secs(r.try_get(3)?),
                        },
                        tlp: crate::parse(&r.try_get::<String, _>(5)?, "TLP")?,
                        pap: crate::parse(&r.try_get::<String, _>(23)?, "PAP")?,
                        items: Vec::new(),
                    },
                    issued_at: secs(r.try_get(4)?),
                    issuer: r.try_get(22)?,
                });
            }
            let item = NoticeItem {
                item_id: crate::parse(&r.try_get::<String, _>(6)?, "notice item id")?,
                indicator: u32_of(r.try_get(7)?, "indicator id")?,
                status: parse_item_status(&r.try_get::<String, _>(8)?)?,
                kind: crate::parse(&r.try_get::<String, _>(9)?, "indicator kind")?,
                value: r.try_get(10)?,
                classification: crate::parse(&r.try_get::<String, _>(11)?, "classification")?,
                malware: words.opt(r.try_get(12)?),
                first_seen: secs(r.try_get(13)?),
                last_seen: secs(r.try_get(14)?),
                sightings: r.try_get::<i64, _>(15)?.max(0) as u64,
                port: r.try_get::<Option<i64>, _>(16)?.map(|p| p.clamp(0, 65535) as u16),
                source_country: opt_cc(r.try_get(17)?)?,
                source_asn: r.try_get::<Option<i64>, _>(18)?.map(|v| u32_of(v, "ASN")).transpose()?,
                as_org: words.opt(r.try_get(19)?),
                victim_count: r
                    .try_get::<Option<i64>, _>(20)?
                    .map(|v| u32_of(v, "victim count"))
                    .transpose()?,
                tlp: crate::parse(&r.try_get::<String, _>(21)?, "TLP")?,
            };
            if let Some(n) = out.last_mut() {
                n.notice.items.push(item);
            }
        }
        Ok(out)
    }
}

impl IntelTx {
    /// Smallest batch of new indicators written as a bulk load on SQLite (see the module docs).
    pub const BULK_MIN_ROWS: usize = 20_000;

    /// Runs one statement without parameters; returns the rows it changed.
    async fn exec(&mut self, sql: &str) -> Result<u64> {
        let n = on_conn!(&mut self.conn, c => {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    /// Runs one statement with a text and two integer parameters (unused ones are ignored
    /// only if the statement does not name them: pass statements that use all it binds).
    async fn exec_bind(&mut self, sql: &'static str, a: String, b: i64, c2: i64) -> Result<u64> {
        let uses = |n: &str| sql.contains(n);
        let (use_b, use_c) = (uses("$2"), uses("$3"));
        let n = on_conn!(&mut self.conn, c => {
            let mut q = sqlx::query(sql).bind(a);
            if use_b {
                q = q.bind(b);
            }
            if use_c {
                q = q.bind(c2);
            }
            q.execute(&mut *c).await?.rows_affected()
        });
        Ok(n)
    }

    /// Loads the whole clean-up state inside this transaction.
    pub async fn load(&mut self) -> Result<CleanupState> {
        on_conn!(&mut self.conn, c => load_state!(c))
    }

    /// The end of the latest notice interval issued so far (seconds), if any.
    pub async fn last_interval_end(&mut self) -> Result<Option<UnixTime>> {
        let end: Option<i64> = on_conn!(&mut self.conn, c => {
            sqlx::query_scalar("SELECT MAX(interval_end) FROM intel_notice")
                .fetch_one(&mut *c)
                .await?
        });
        Ok(end.map(secs))
    }

    /// Writes the indicators at `ixs` (indices into `state`, in any order; repeats are
    /// written once): new ones are inserted, known ones (same kind and value) updated.
    /// Returns the number of rows written.
    pub async fn save_indicators(&mut self, state: &CleanupState, ixs: &[u32]) -> Result<u64> {
        let mut ixs = ixs.to_vec();
        ixs.sort_unstable();
        ixs.dedup();
        match &mut self.conn {
            Conn::Sqlite(n) => sqlite_save(&mut n.conn, state, &ixs).await,
            Conn::Shared(w) => match self.backend {
                Backend::Postgres => pg_save(w.conn().await?, state, &ixs).await,
                Backend::Sqlite => any_save(w.conn().await?, state, &ixs, self.backend).await,
            },
        }
    }

    /// Records issued notices and their items (re-issuing the same notice updates it).
    /// Call [`IntelTx::save_indicators`] for the items' indicators too (first-notified times).
    pub async fn save_notices(&mut self, notices: &[Notice], issued_at: UnixTime) -> Result<()> {
        let backend = self.backend;
        on_conn!(&mut self.conn, c => {
        for n in notices {
            sqlx::query(
                "INSERT INTO intel_notice (id, partner, interval_start, interval_end, issued_at, tlp, items, pap) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO UPDATE SET issued_at = excluded.issued_at, tlp = excluded.tlp, items = excluded.items, \
                 pap = excluded.pap",
            )
            .bind(n.id.to_string())
            .bind(n.partner.as_str().to_string())
            .bind(ms(n.interval.start))
            .bind(ms(n.interval.end))
            .bind(ms(issued_at))
            .bind(n.tlp.as_str())
            .bind(n.items.len() as i64)
            .bind(n.pap.as_str())
            .execute(&mut *c)
            .await?;
            // 5 parameters per row.
            for chunk in n.items.chunks(1000) {
                let mut sql = String::from(
                    "INSERT INTO intel_notice_item (id, notice_id, indicator_id, partner, status) VALUES ",
                );
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push('(');
                    for col in 1..=5 {
                        if col > 1 {
                            sql.push(',');
                        }
                        placeholder(&mut sql, backend, i * 5 + col);
                    }
                    sql.push(')');
                }
                sql.push_str(" ON CONFLICT (id) DO UPDATE SET status = excluded.status");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for item in chunk {
                    q = q
                        .bind(item.item_id.to_string())
                        .bind(n.id.to_string())
                        .bind(i64::from(item.indicator))
                        .bind(n.partner.as_str().to_string())
                        .bind(item_status_str(item.status));
                }
                q.execute(&mut *c).await?;
            }
        }
        });
        Ok(())
    }

    /// Appends feedback records; `first` is the index of `records[0]` in the state's feedback
    /// list (the stored id).
    pub async fn save_feedback(&mut self, first: usize, records: &[FeedbackRecord]) -> Result<()> {
        on_conn!(&mut self.conn, c => {
        for (i, f) in records.iter().enumerate() {
            sqlx::query(
                "INSERT INTO intel_feedback (id, item_id, indicator_id, partner, status, at, note) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind((first + i) as i64)
            .bind(f.item_id.to_string())
            .bind(i64::from(f.indicator))
            .bind(f.partner.as_str().to_string())
            .bind(feedback_str(f.status))
            .bind(ms(f.at))
            .bind(f.note.clone())
            .execute(&mut *c)
            .await
            .map_err(|e| crate::unique(e, format!("feedback #{}", first + i)))?;
        }
        });
        Ok(())
    }

    /// Runs one statement with `$n` placeholders in this transaction (for the clean-up rows
    /// that travel over federation, `crate::notices`). Returns the rows changed.
    pub(crate) async fn exec_args(&mut self, sql: &str, args: &[Arg]) -> Result<u64> {
        on_conn!(&mut self.conn, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
            for a in args {
                q = match a {
                    Arg::Int(v) => q.bind(*v),
                    Arg::Text(v) => q.bind(v.clone()),
                };
            }
            Ok(q.execute(&mut *c).await?.rows_affected())
        })
    }

    /// Runs one statement returning one integer in this transaction.
    pub(crate) async fn scalar(&mut self, sql: &str, args: &[Arg]) -> Result<i64> {
        on_conn!(&mut self.conn, c => {
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()));
            for a in args {
                q = match a {
                    Arg::Int(v) => q.bind(*v),
                    Arg::Text(v) => q.bind(v.clone()),
                };
            }
            Ok(q.fetch_one(&mut *c).await?)
        })
    }

    /// Commits like [`IntelTx::commit`]; returns how long the transaction held the write
    /// lock (from taking it until the commit returned: an upper bound).
    pub async fn commit_timed(self) -> Result<Duration> {
        let at = self.locked_at;
        self.commit().await?;
        Ok(at.elapsed())
    }

    /// Commits: returns once the transaction is durably stored.
    pub async fn commit(self) -> Result<()> {
        match self.conn {
            Conn::Shared(w) => w.commit().await,
            Conn::Sqlite(mut n) => {
                n.conn.execute("COMMIT").await?;
                if let Err(e) = n.conn.close().await {
                    tracing::warn!(error = %e, "closing the clean-up connection after commit");
                }
                Ok(())
            }
        }
    }
}
