//! Persistence of the clean-up pipeline's state ([`liaison_intel::CleanupState`]): indicators
//! (deduplicated by kind and value), issued notices and their items, and partner feedback.
//!
//! An ingest, a notice run or a feedback call is one [`IntelTx`]: it takes the write lock,
//! loads the state inside the transaction, changes it in memory and writes back only what
//! changed, so two writers (the server and a CLI process) never interleave.
//!
//! Indicator rows are written with multi-row `INSERT … ON CONFLICT (kind, value) DO UPDATE`
//! statements of [`ROWS_PER_STATEMENT`] rows (below SQLite's 32,766 bound-parameter limit).
//! The row id of an indicator (`INTEGER PRIMARY KEY`: the rowid on SQLite) is its index in the state, so reloading in id order rebuilds
//! the same indices that notice items and feedback refer to.
//!
//! Instants are stored as integer milliseconds (the pipeline works in Unix seconds).

use crate::{Backend, Result, Store, StoreError, WriteTx};
use liaison_core::{CountryCode, Tlp};
use liaison_intel::aggregate::{FeedbackRecord, Victims};
use liaison_intel::model::{Classification, IndicatorKind, IndicatorValue, PartnerId};
use liaison_intel::time::UnixTime;
use liaison_intel::{CleanupState, FeedbackStatus, Indicator, Interval, ItemStatus, Notice, NoticeId, NoticeItem};
use serde::Serialize;
use sqlx::Row;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
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

/// Columns of `intel_indicator`, in bind order.
const COLUMNS: [&str; 24] = [
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
];

/// Indicator rows per INSERT statement: 24 parameters each, 24,000 per statement, below
/// SQLite's limit of 32,766 (and PostgreSQL's 65,535).
pub const ROWS_PER_STATEMENT: usize = 1000;

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

/// The `n`th (1-based) placeholder: `$n` on PostgreSQL, `?` on SQLite. (SQLite treats `$n`
/// as a *named* parameter and looks each one up linearly while preparing: quadratic in the
/// 24,000 parameters of a full statement. Anonymous `?` are numbered in order.)
fn placeholder(sql: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Sqlite => sql.push('?'),
        Backend::Postgres => {
            let _ = write!(sql, "${n}");
        }
    }
}

fn upsert_sql(rows: usize, backend: Backend) -> String {
    let mut sql = String::with_capacity(64 + rows * 24 * 6 + 600);
    sql.push_str("INSERT INTO intel_indicator (");
    sql.push_str(&COLUMNS.join(", "));
    sql.push_str(") VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..COLUMNS.len() {
            if c > 0 {
                sql.push(',');
            }
            n += 1;
            placeholder(&mut sql, backend, n);
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (kind, value) DO UPDATE SET ");
    let sets: Vec<String> = COLUMNS[3..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
    sql.push_str(&sets.join(", "));
    sql
}

fn full_upsert_sql(backend: Backend) -> &'static str {
    static SQLITE: OnceLock<String> = OnceLock::new();
    static POSTGRES: OnceLock<String> = OnceLock::new();
    match backend {
        Backend::Sqlite => SQLITE.get_or_init(|| upsert_sql(ROWS_PER_STATEMENT, backend)),
        Backend::Postgres => POSTGRES.get_or_init(|| upsert_sql(ROWS_PER_STATEMENT, backend)),
    }
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

async fn load_state(conn: &mut sqlx::AnyConnection) -> Result<CleanupState> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(id AS BIGINT), {} FROM intel_indicator ORDER BY id",
        COLUMNS[1..].join(", ")
    )))
    .fetch_all(&mut *conn)
    .await?;
    let mut words = Interner::default();
    let mut indicators = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let id: i64 = r.try_get(0)?;
        if id != i as i64 {
            return Err(StoreError::Corrupt(format!(
                "intel_indicator ids are not contiguous: row {i} has id {id}"
            )));
        }
        let kind: IndicatorKind = crate::parse(&r.try_get::<String, _>(1)?, "indicator kind")?;
        let raw: String = r.try_get(2)?;
        let value = IndicatorValue::parse(kind, &raw)
            .map_err(|e| StoreError::Corrupt(format!("indicator {id} ({kind}): {e}")))?;
        let partner: Option<String> = r.try_get(17)?;
        let status: String = r.try_get(18)?;
        let last_notice: Option<String> = r.try_get(20)?;
        indicators.push(Indicator {
            kind,
            value,
            classification: crate::parse::<Classification>(&r.try_get::<String, _>(3)?, "classification")?,
            malware: words.opt(r.try_get(4)?),
            feed: words.get(r.try_get(5)?),
            first_seen: secs(r.try_get(6)?),
            last_seen: secs(r.try_get(7)?),
            sightings: r.try_get::<i64, _>(8)?.max(0) as u64,
            confidence: r.try_get::<i64, _>(9)?.clamp(0, 100) as u8,
            tlp: crate::parse::<Tlp>(&r.try_get::<String, _>(10)?, "TLP")?,
            port: r.try_get::<Option<i64>, _>(11)?.map(|p| p.clamp(0, 65535) as u16),
            victim_count: r
                .try_get::<Option<i64>, _>(12)?
                .map(|v| u32_of(v, "victim count"))
                .transpose()?,
            victim_countries: match r.try_get::<Option<String>, _>(13)? {
                Some(s) => parse_victims(&s)?,
                None => Victims::default(),
            },
            source_country: opt_cc(r.try_get(14)?)?,
            source_asn: r.try_get::<Option<i64>, _>(15)?.map(|v| u32_of(v, "ASN")).transpose()?,
            as_org: words.opt(r.try_get(16)?),
            partner: words.opt(partner).map(PartnerId),
            first_notified: r.try_get::<Option<i64>, _>(19)?.map(secs),
            last_notice: last_notice
                .map(|s| crate::parse::<Uuid>(&s, "notice id").map(NoticeId))
                .transpose()?,
            remediated_at: r.try_get::<Option<i64>, _>(21)?.map(secs),
            reappeared_at: r.try_get::<Option<i64>, _>(22)?.map(secs),
            reappearances: u32_of(r.try_get(23)?, "reappearances")?,
            suppressed: status == "suppressed",
        });
    }
    drop(rows);
    let items: Vec<(String, i64, String)> = sqlx::query_as("SELECT id, indicator_id, partner FROM intel_notice_item")
        .fetch_all(&mut *conn)
        .await?;
    let mut issued = Vec::with_capacity(items.len());
    for (id, ix, partner) in items {
        issued.push((
            crate::parse::<Uuid>(&id, "notice item id")?,
            u32_of(ix, "indicator id")?,
            PartnerId(words.get(partner)),
        ));
    }
    let fb: Vec<(String, i64, String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT item_id, indicator_id, partner, status, at, note FROM intel_feedback ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
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

/// A stored notice with when it was issued.
#[derive(Debug, Clone, Serialize)]
pub struct StoredNotice {
    #[serde(flatten)]
    pub notice: Notice,
    pub issued_at: UnixTime,
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

/// One clean-up write transaction (see the module docs).
pub struct IntelTx {
    w: WriteTx,
    backend: Backend,
}

impl Store {
    /// Starts a clean-up write transaction. On PostgreSQL the indicator table is locked
    /// against other writers until commit (SQLite has one writer anyway).
    pub async fn intel_begin(&self) -> Result<IntelTx> {
        let mut w = self.write().await?;
        let setup = match self.backend() {
            Backend::Postgres => "LOCK TABLE intel_indicator IN EXCLUSIVE MODE",
            // Large ingests touch many index pages: keep them in memory (64 MiB) instead of
            // spilling to the WAL before commit.
            Backend::Sqlite => "PRAGMA cache_size = -65536",
        };
        sqlx::query(setup).execute(&mut *w.tx).await?;
        Ok(IntelTx {
            w,
            backend: self.backend(),
        })
    }

    /// Loads the whole clean-up state (read only).
    pub async fn intel_load(&self) -> Result<CleanupState> {
        let mut conn = self.pool.acquire().await?;
        load_state(&mut conn).await
    }

    /// Row counts.
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
        let sql = format!(
            "SELECT n.id, n.partner, n.interval_start, n.interval_end, n.issued_at, n.tlp, \
             i.id, i.indicator_id, i.status, d.kind, d.value, d.classification, d.malware, d.first_seen, \
             d.last_seen, d.sightings, d.port, d.source_country, d.source_asn, d.as_org, d.victim_count, d.tlp \
             FROM intel_notice n JOIN intel_notice_item i ON i.notice_id = n.id \
             JOIN intel_indicator d ON d.id = i.indicator_id {} \
             ORDER BY n.issued_at DESC, n.interval_start DESC, n.partner, n.id, d.kind, d.value",
            if partner.is_some() { "WHERE n.partner = $1" } else { "" }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(p) = partner {
            q = q.bind(p.to_string());
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
                        items: Vec::new(),
                    },
                    issued_at: secs(r.try_get(4)?),
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
    /// Loads the whole clean-up state inside this transaction.
    pub async fn load(&mut self) -> Result<CleanupState> {
        load_state(&mut self.w.tx).await
    }

    /// The end of the latest notice interval issued so far (seconds), if any.
    pub async fn last_interval_end(&mut self) -> Result<Option<UnixTime>> {
        let end: Option<i64> = sqlx::query_scalar("SELECT MAX(interval_end) FROM intel_notice")
            .fetch_one(&mut *self.w.tx)
            .await?;
        Ok(end.map(secs))
    }

    /// Writes the indicators at `ixs` (indices into `state`): new ones are inserted, known
    /// ones updated. Returns the number of rows written.
    pub async fn save_indicators(&mut self, state: &CleanupState, ixs: &[u32]) -> Result<u64> {
        let mut written = 0u64;
        for chunk in ixs.chunks(ROWS_PER_STATEMENT) {
            let sql = if chunk.len() == ROWS_PER_STATEMENT {
                full_upsert_sql(self.backend).to_string()
            } else {
                upsert_sql(chunk.len(), self.backend)
            };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &ix in chunk {
                let ind = state
                    .indicators
                    .get(ix as usize)
                    .ok_or_else(|| StoreError::NotFound(format!("indicator index {ix}")))?;
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
                    .bind(i64::from(ind.reappearances));
            }
            written += q.execute(&mut *self.w.tx).await?.rows_affected();
        }
        Ok(written)
    }

    /// Records issued notices and their items (re-issuing the same notice updates it).
    /// Call [`IntelTx::save_indicators`] for the items' indicators too (first-notified times).
    pub async fn save_notices(&mut self, notices: &[Notice], issued_at: UnixTime) -> Result<()> {
        for n in notices {
            sqlx::query(
                "INSERT INTO intel_notice (id, partner, interval_start, interval_end, issued_at, tlp, items) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET issued_at = excluded.issued_at, tlp = excluded.tlp, items = excluded.items",
            )
            .bind(n.id.to_string())
            .bind(n.partner.as_str().to_string())
            .bind(ms(n.interval.start))
            .bind(ms(n.interval.end))
            .bind(ms(issued_at))
            .bind(n.tlp.as_str())
            .bind(n.items.len() as i64)
            .execute(&mut *self.w.tx)
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
                    for c in 1..=5 {
                        if c > 1 {
                            sql.push(',');
                        }
                        placeholder(&mut sql, self.backend, i * 5 + c);
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
                q.execute(&mut *self.w.tx).await?;
            }
        }
        Ok(())
    }

    /// Appends feedback records; `first` is the index of `records[0]` in the state's feedback
    /// list (the stored id).
    pub async fn save_feedback(&mut self, first: usize, records: &[FeedbackRecord]) -> Result<()> {
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
            .execute(&mut *self.w.tx)
            .await
            .map_err(|e| crate::unique(e, format!("feedback #{}", first + i)))?;
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        self.w.commit().await
    }
}
