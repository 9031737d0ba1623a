//! Consistent copies of the database for `liaison backup`, and loading one back for
//! `liaison restore`.
//!
//! SQLite: `VACUUM INTO` writes a consistent, compacted copy of the whole database file while
//! the node keeps running (it reads one snapshot; writers are not blocked in WAL mode).
//!
//! PostgreSQL: every table of the store's schema is read inside ONE `REPEATABLE READ, READ ONLY`
//! transaction (one snapshot: the copy is consistent even while instances keep writing) and
//! written as JSON lines: a header line, then one line per row, `{"t": table, "r": row}`, the
//! row as `row_to_json`. Loading needs a schema migrated to the same version (the header names
//! the applied migrations) and writes every row in ONE transaction: the tables are emptied
//! (`TRUNCATE … CASCADE` of Liaison's tables only) and filled in creation order, so foreign keys
//! hold; if anything fails, nothing changed.

use crate::{Backend, Result, Store, StoreError};
use futures_util::TryStreamExt;
use sqlx::Connection;
use std::io::{BufRead, Write};
use std::path::Path;

/// The first line of a PostgreSQL dump.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DumpHeader {
    /// `liaison-pg-dump/1`.
    pub format: String,
    /// The applied schema migrations (versions), ascending.
    pub migrations: Vec<i64>,
    /// The tables, in the order their rows follow (creation order).
    pub tables: Vec<String>,
}

pub const DUMP_FORMAT: &str = "liaison-pg-dump/1";

/// What a dump or a load covered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DumpSummary {
    pub tables: usize,
    pub rows: u64,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Io(e))
}

/// Table names are identifiers we quote ourselves; refuse anything else.
fn quoted(table: &str) -> Result<String> {
    if table.is_empty()
        || !table
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::corrupt(format!("unexpected table name '{table}'")));
    }
    Ok(format!("\"{table}\""))
}

/// The store schema's tables, in creation order (object ids grow with creation, so a table
/// comes after the tables its foreign keys name).
async fn pg_tables(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.oid",
    )
    .fetch_all(conn)
    .await?)
}

impl Store {
    /// SQLite: writes a consistent copy of the database to `dest` (which must not exist).
    pub async fn snapshot_sqlite(&self, dest: &Path) -> Result<()> {
        if self.backend() != Backend::Sqlite {
            return Err(StoreError::corrupt("snapshot_sqlite on a PostgreSQL store"));
        }
        let path = dest
            .to_str()
            .ok_or_else(|| StoreError::corrupt(format!("{} is not UTF-8", dest.display())))?;
        sqlx::query("VACUUM INTO $1").bind(path).execute(&self.pool).await?;
        Ok(())
    }

    /// PostgreSQL: writes every table of the store's schema, from one snapshot, as JSON lines.
    pub async fn dump_postgres(&self, out: &mut dyn Write) -> Result<DumpSummary> {
        if self.backend() != Backend::Postgres {
            return Err(StoreError::corrupt("dump_postgres on a SQLite store"));
        }
        let mut conn = self.pool.acquire().await?;
        let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let tables = pg_tables(&mut tx).await?;
        let migrations: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
        let header = DumpHeader {
            format: DUMP_FORMAT.into(),
            migrations,
            tables: tables.clone(),
        };
        serde_json::to_writer(&mut *out, &header).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)?;
        let mut summary = DumpSummary {
            tables: tables.len(),
            rows: 0,
        };
        for t in &tables {
            let sql = format!("SELECT row_to_json(x)::text FROM {} x", quoted(t)?);
            let mut rows = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let name = serde_json::to_string(t).map_err(|e| io(e.into()))?;
                writeln!(out, "{{\"t\":{name},\"r\":{row}}}").map_err(io)?;
                summary.rows += 1;
            }
        }
        tx.rollback().await?;
        Ok(summary)
    }

    /// Whether the store holds anything a restore would overwrite (any request, user, peer or
    /// ledger leaf).
    pub async fn has_data(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM requests) + (SELECT COUNT(*) FROM ledger_leaves) + (SELECT COUNT(*) FROM peers)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// PostgreSQL: replaces the contents of the store's schema with a dump written by
    /// [`Store::dump_postgres`], in ONE transaction. The schema must be at the dump's migration
    /// version. On any error nothing changed.
    pub async fn load_postgres(&self, input: &mut dyn BufRead) -> Result<DumpSummary> {
        if self.backend() != Backend::Postgres {
            return Err(StoreError::corrupt("load_postgres on a SQLite store"));
        }
        let mut lines = input.lines();
        let first = lines
            .next()
            .ok_or_else(|| StoreError::corrupt("the database dump is empty"))?
            .map_err(io)?;
        let header: DumpHeader =
            serde_json::from_str(&first).map_err(|e| StoreError::corrupt(format!("database dump, line 1: {e}")))?;
        if header.format != DUMP_FORMAT {
            return Err(StoreError::corrupt(format!(
                "database dump format '{}' is not {DUMP_FORMAT}",
                header.format
            )));
        }
        let mut conn = self.pool.acquire().await?.detach();
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        let migrations: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
        if migrations != header.migrations {
            return Err(StoreError::corrupt(format!(
                "the dump has schema migrations {:?}, this database {:?}: restore with the liaison version that wrote the backup",
                header.migrations, migrations
            )));
        }
        let here = pg_tables(&mut tx).await?;
        let mut wanted: Vec<String> = header
            .tables
            .iter()
            .filter(|t| *t != "schema_migrations")
            .cloned()
            .collect();
        for t in &wanted {
            if !here.contains(t) {
                return Err(StoreError::corrupt(format!(
                    "the dump names table '{t}', which this database lacks"
                )));
            }
        }
        wanted.sort_by_key(|t| here.iter().position(|h| h == t));
        let list = wanted.iter().map(|t| quoted(t)).collect::<Result<Vec<_>>>()?.join(", ");
        if !list.is_empty() {
            sqlx::query(sqlx::AssertSqlSafe(format!("TRUNCATE {list}")))
                .execute(&mut *tx)
                .await?;
        }
        // Rows come grouped by table in creation order (the dump's order, which is this
        // database's for one schema version), so foreign keys hold row by row; they are
        // inserted as they are read (memory stays bounded).
        let mut summary = DumpSummary {
            tables: wanted.len(),
            rows: 0,
        };
        let mut position = 0usize;
        for (i, line) in lines.enumerate() {
            let line = line.map_err(io)?;
            if line.is_empty() {
                continue;
            }
            #[derive(serde::Deserialize)]
            struct Row<'a> {
                t: String,
                #[serde(borrow)]
                r: &'a serde_json::value::RawValue,
            }
            let row: Row = serde_json::from_str(&line)
                .map_err(|e| StoreError::corrupt(format!("database dump, line {}: {e}", i + 2)))?;
            if row.t == "schema_migrations" {
                continue;
            }
            let Some(at) = wanted.iter().position(|t| *t == row.t) else {
                return Err(StoreError::corrupt(format!(
                    "database dump, line {}: table '{}' is not in the header",
                    i + 2,
                    row.t
                )));
            };
            if at < position {
                return Err(StoreError::corrupt(format!(
                    "database dump, line {}: rows of table '{}' out of creation order",
                    i + 2,
                    row.t
                )));
            }
            position = at;
            let sql = format!(
                "INSERT INTO {q} SELECT * FROM json_populate_record(NULL::{q}, $1::json)",
                q = quoted(&row.t)?
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(row.r.get().to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::corrupt(format!("database dump, line {}: {e}", i + 2)))?;
            summary.rows += 1;
        }
        tx.commit().await?;
        let _ = conn.close().await;
        Ok(summary)
    }
}
