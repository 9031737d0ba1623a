//! Jurisdictions, agencies and contact points.

use crate::{Result, Store, StoreError, audit, parse, unique};
use liaison_core::AgencyId;
use liaison_core::directory::{Agency, ContactPoint};
use liaison_core::jurisdiction::Jurisdiction;
use liaison_core::record::AgencyFilter;

type AgencyRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
);

fn agency(r: AgencyRow) -> Result<(Agency, Option<String>)> {
    Ok((
        Agency {
            id: parse(&r.0, "agency id")?,
            code: r.1,
            name_en: r.2,
            name_native: r.3,
            name_zh: r.8,
            jurisdiction: parse(&r.4, "jurisdiction")?,
            kind: parse(&r.5, "agency kind")?,
            time_zone: r.6,
        },
        r.7,
    ))
}

const AGENCY_COLS: &str =
    "SELECT id, code, name_en, name_native, jurisdiction, kind, time_zone, node_id, name_zh FROM agencies";

/// An agency's name for readers of Chinese pages (`Agency::name_zh`). Agencies were named in
/// English and their own language only; the column starts empty, so the pages fall back to
/// the native name when it is Chinese, as before.
pub(crate) const MIGRATION_29: &str = "ALTER TABLE agencies ADD COLUMN name_zh TEXT NOT NULL DEFAULT ''";

impl Store {
    /// Adds or renames a jurisdiction.
    pub async fn upsert_jurisdiction(&self, j: &Jurisdiction) -> Result<()> {
        let mut w = self.write().await?;
        upsert_jurisdiction_in(&mut w, j).await?;
        w.commit().await
    }

    pub async fn jurisdictions(&self) -> Result<Vec<Jurisdiction>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT code, name_en, name_zh FROM jurisdictions ORDER BY code")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Jurisdiction {
                    code: parse(&r.0, "jurisdiction")?,
                    name_en: r.1,
                    name_zh: r.2,
                })
            })
            .collect()
    }

    /// Adds an agency; `node_id` is set for agencies served by a peer node.
    pub async fn insert_agency(
        &self,
        a: &Agency,
        node_id: Option<&str>,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        insert_agency_in(&mut w, a, node_id, actor, now).await?;
        w.commit().await
    }

    pub async fn agencies(&self, filter: &AgencyFilter) -> Result<Vec<(Agency, Option<String>)>> {
        let rows: Vec<AgencyRow> = match filter.jurisdiction {
            Some(j) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{AGENCY_COLS} WHERE jurisdiction = $1 ORDER BY code"
                )))
                .bind(j.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{AGENCY_COLS} ORDER BY code")))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter().map(agency).collect()
    }

    pub async fn agency(&self, id: AgencyId) -> Result<Agency> {
        Ok(self.agency_entry(id).await?.0)
    }

    /// An agency and its serving node (None: this node), from the in-process cache. Only an
    /// agency's names ever change ([`Store::rename_agency`], which drops this process's entry);
    /// another process sharing the database sees a new name once its entry is older than
    /// [`AGENCY_CACHE_TTL`]. Only rows that exist are cached (an agency added by another
    /// process is found on first use).
    async fn agency_entry(&self, id: AgencyId) -> Result<(Agency, Option<String>)> {
        if let Some(hit) = self.agency_cache.get(&id) {
            return Ok(hit);
        }
        let row: Option<AgencyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{AGENCY_COLS} WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let entry = agency(row.ok_or_else(|| StoreError::NotFound(format!("agency {id}")))?)?;
        self.agency_cache.put(id, entry.clone());
        Ok(entry)
    }

    /// Finds an agency by its short code (case-insensitive) or its id.
    pub async fn agency_by_code(&self, code_or_id: &str) -> Result<Agency> {
        if let Ok(id) = code_or_id.parse::<AgencyId>() {
            return self.agency(id).await;
        }
        let row: Option<AgencyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{AGENCY_COLS} WHERE UPPER(code) = UPPER($1)"
        )))
        .bind(code_or_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(agency(row.ok_or_else(|| StoreError::NotFound(format!("agency '{code_or_id}'")))?)?.0)
    }

    /// Renames an agency: its English, native and Chinese-page names (audited; the code, the
    /// jurisdiction, the kind and the time zone never change once requests name the agency).
    pub async fn rename_agency(
        &self,
        id: AgencyId,
        name_en: &str,
        name_native: &str,
        name_zh: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let r = sqlx::query("UPDATE agencies SET name_en = $1, name_native = $2, name_zh = $3 WHERE id = $4")
            .bind(name_en)
            .bind(name_native)
            .bind(name_zh)
            .bind(id.to_string())
            .execute(w.conn().await?)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("agency {id}")));
        }
        audit::append(
            &mut w,
            now,
            actor,
            "agency.rename",
            &id.to_string(),
            &serde_json::json!({"name_en": name_en, "name_native": name_native, "name_zh": name_zh}),
        )
        .await?;
        w.commit().await?;
        self.agency_cache.forget(&id);
        Ok(())
    }

    pub async fn insert_contact(&self, c: &ContactPoint, actor: &str, now: jiff::Timestamp) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("INSERT INTO contacts (id, agency_id, name, phone, email, languages, time_zone, office_hours) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(c.id.to_string())
            .bind(c.agency.to_string())
            .bind(&c.name)
            .bind(&c.phone)
            .bind(&c.email)
            .bind(c.languages.join(","))
            .bind(&c.time_zone)
            .bind(c.office_hours.to_string())
            .execute(w.conn().await?)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(format!("agency {}", c.agency)),
                _ => StoreError::Database(e),
            })?;
        audit::append(
            &mut w,
            now,
            actor,
            "contact.create",
            &c.id.to_string(),
            &serde_json::json!({"agency": c.agency, "name": c.name}),
        )
        .await?;
        w.commit().await
    }

    pub async fn contacts(&self, agency: Option<AgencyId>) -> Result<Vec<ContactPoint>> {
        type Row = (String, String, String, String, String, String, String, String);
        let q = "SELECT id, agency_id, name, phone, email, languages, time_zone, office_hours FROM contacts";
        let rows: Vec<Row> = match agency {
            Some(a) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{q} WHERE agency_id = $1 ORDER BY name")))
                    .bind(a.to_string())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{q} ORDER BY agency_id, name")))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter()
            .map(|r| {
                Ok(ContactPoint {
                    id: parse(&r.0, "contact id")?,
                    agency: parse(&r.1, "agency id")?,
                    name: r.2,
                    phone: r.3,
                    email: r.4,
                    languages: r.5.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                    time_zone: r.6,
                    office_hours: parse(&r.7, "office hours")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Whether an agency is served by this node (true) or by a peer node (false).
    pub async fn agency_is_local(&self, id: AgencyId) -> Result<bool> {
        Ok(self.agency_entry(id).await?.1.is_none())
    }

    /// The peer node serving an agency (None: this node).
    pub async fn agency_node(&self, id: AgencyId) -> Result<Option<String>> {
        Ok(self.agency_entry(id).await?.1)
    }
}

/// How long a cached agency row is trusted: a renamed agency shows its new name on every
/// process within this time.
pub const AGENCY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

type CachedAgency = (std::time::Instant, (Agency, Option<String>));

/// Agencies by id, as read from the database, with when they were read (see [`Store::agency`]).
#[derive(Default)]
pub(crate) struct AgencyCache(std::sync::RwLock<std::collections::HashMap<AgencyId, CachedAgency>>);

impl AgencyCache {
    fn get(&self, id: &AgencyId) -> Option<(Agency, Option<String>)> {
        match self.0.read() {
            Ok(m) => m
                .get(id)
                .filter(|(at, _)| at.elapsed() < AGENCY_CACHE_TTL)
                .map(|(_, e)| e.clone()),
            Err(_) => None,
        }
    }

    fn forget(&self, id: &AgencyId) {
        if let Ok(mut m) = self.0.write() {
            m.remove(id);
        }
    }

    fn put(&self, id: AgencyId, entry: (Agency, Option<String>)) {
        if let Ok(mut m) = self.0.write() {
            // Bounded: a directory has hundreds of agencies, not millions.
            if m.len() >= 100_000 {
                m.clear();
            }
            m.insert(id, (std::time::Instant::now(), entry));
        }
    }
}

/// Adds or renames a jurisdiction inside an open transaction.
pub(crate) async fn upsert_jurisdiction_in(w: &mut crate::WriteTx, j: &Jurisdiction) -> Result<()> {
    sqlx::query("INSERT INTO jurisdictions (code, name_en, name_zh) VALUES ($1, $2, $3) ON CONFLICT (code) DO UPDATE SET name_en = excluded.name_en, name_zh = excluded.name_zh")
        .bind(j.code.as_str())
        .bind(&j.name_en)
        .bind(&j.name_zh)
        .execute(w.conn().await?)
        .await?;
    Ok(())
}

/// Adds an agency (with its audit entry) inside an open transaction.
pub(crate) async fn insert_agency_in(
    w: &mut crate::WriteTx,
    a: &Agency,
    node_id: Option<&str>,
    actor: &str,
    now: jiff::Timestamp,
) -> Result<()> {
    sqlx::query("INSERT INTO agencies (id, code, name_en, name_native, jurisdiction, kind, time_zone, node_id, name_zh) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(a.id.to_string())
        .bind(&a.code)
        .bind(&a.name_en)
        .bind(&a.name_native)
        .bind(a.jurisdiction.as_str())
        .bind(a.kind.as_str())
        .bind(&a.time_zone)
        .bind(node_id.map(str::to_string))
        .bind(&a.name_zh)
        .execute(w.conn().await?)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound(format!("jurisdiction {} (add it to the directory first)", a.jurisdiction))
            }
            _ => unique(e, format!("agency with code {}", a.code)),
        })?;
    audit::append(
        w,
        now,
        actor,
        "agency.create",
        &a.id.to_string(),
        &serde_json::json!({"code": a.code, "name_en": a.name_en}),
    )
    .await?;
    Ok(())
}
