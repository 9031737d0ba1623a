//! What `/health` says about the database: reachable, intact, room to write.
//!
//! A `SELECT 1` answers on a database whose pages are corrupt and on a disk with no space
//! left, so the store also keeps the result of its last integrity check (SQLite's
//! `PRAGMA quick_check`, which reads every page: run in the background at most once per
//! [`INTEGRITY_INTERVAL`], never on the caller's time) and reads the free space of the
//! file system that holds the SQLite file. PostgreSQL checks its own pages and disk; for it
//! the store reports only whether the server answers.

use crate::{Backend, Result, Store, with_locked};
use jiff::Timestamp;
pub use liaison_core::record::Integrity;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How old the last integrity check may be before a health check starts another.
pub const INTEGRITY_INTERVAL: Duration = Duration::from_secs(6 * 3600);

#[derive(Default)]
pub(crate) struct IntegrityState {
    last: Option<(Timestamp, Option<String>)>,
    running: bool,
    /// When the last check started, for [`INTEGRITY_INTERVAL`].
    started: Option<std::time::Instant>,
}

pub(crate) type SharedIntegrity = Arc<Mutex<IntegrityState>>;

/// The database's part of a health answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbHealth {
    /// `None` when the database answered; else why not.
    pub unreachable: Option<String>,
    pub integrity: Integrity,
    /// Bytes free to this process on the file system of the SQLite file (`None` on PostgreSQL).
    pub free_bytes: Option<u64>,
}

/// The SQLite file a URL names (`sqlite://PATH?mode=rwc` → `PATH`); `None` for in-memory.
pub(crate) fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    };
    let st = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// SQLite's answer to `quick_check`: `None` when intact, else the first problems it lists.
async fn quick_check(store: &Store) -> std::result::Result<Option<String>, String> {
    use sqlx::Row;
    let rows = sqlx::query("PRAGMA quick_check(5)")
        .fetch_all(&store.pool)
        .await
        .map_err(|e| e.to_string())?;
    let lines: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(None)
    } else if lines.is_empty() {
        Ok(Some("the integrity check returned nothing".into()))
    } else {
        Ok(Some(lines.join("; ")))
    }
}

/// Whether an error message from SQLite says the file is damaged.
fn says_corrupt(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("malformed") || m.contains("not a database") || m.contains("corrupt")
}

impl Store {
    /// Runs the integrity check now and records its result (SQLite; PostgreSQL: nothing to do).
    pub async fn check_integrity(&self) -> Result<Integrity> {
        if self.backend != Backend::Sqlite {
            return Ok(Integrity::NotApplicable);
        }
        let result = match quick_check(self).await {
            Ok(r) => r,
            Err(e) if says_corrupt(&e) => Some(e),
            Err(e) => {
                with_locked(&self.integrity, |s| s.running = false);
                return Err(crate::StoreError::Database(sqlx::Error::Protocol(e)));
            }
        };
        let now = Timestamp::now();
        with_locked(&self.integrity, |s| {
            s.last = Some((now, result.clone()));
            s.running = false;
        });
        if let Some(d) = &result {
            tracing::error!(detail = %d, "database integrity check failed: the database is damaged; restore it from a backup");
        }
        Ok(integrity_of(Some((now, result))))
    }

    /// The database's health, at the cost of one `SELECT 1` and one `statvfs`. Starts a
    /// background integrity check when the last one is older than [`INTEGRITY_INTERVAL`].
    pub async fn health(&self) -> DbHealth {
        let unreachable = match self.ping().await {
            Ok(()) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = &unreachable
            && self.backend == Backend::Sqlite
            && says_corrupt(e)
        {
            with_locked(&self.integrity, |s| s.last = Some((Timestamp::now(), Some(e.clone()))));
        }
        let integrity = if self.backend == Backend::Sqlite {
            let start = with_locked(&self.integrity, |s| {
                let due = s.started.is_none_or(|t| t.elapsed() >= INTEGRITY_INTERVAL);
                if due && !s.running && unreachable.is_none() {
                    s.running = true;
                    s.started = Some(std::time::Instant::now());
                    true
                } else {
                    false
                }
            });
            if start {
                let store = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = store.check_integrity().await {
                        tracing::warn!(error = %e, "the database integrity check could not run; will retry");
                        with_locked(&store.integrity, |s| s.started = None);
                    }
                });
            }
            with_locked(&self.integrity, |s| integrity_of(s.last.clone()))
        } else {
            Integrity::NotApplicable
        };
        let free_bytes = self.sqlite_path.as_deref().and_then(|p| free_bytes(p).ok());
        DbHealth {
            unreachable,
            integrity,
            free_bytes,
        }
    }
}

fn integrity_of(last: Option<(Timestamp, Option<String>)>) -> Integrity {
    match last {
        None => Integrity::Pending,
        Some((checked_at, None)) => Integrity::Ok { checked_at },
        Some((checked_at, Some(detail))) => Integrity::Corrupt { checked_at, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_from_url() {
        assert_eq!(
            sqlite_file("sqlite:///tmp/a.db?mode=rwc"),
            Some(PathBuf::from("/tmp/a.db"))
        );
        assert_eq!(sqlite_file("sqlite://rel/a.db"), Some(PathBuf::from("rel/a.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x@y/z"), None);
    }

    #[test]
    fn free_bytes_of_a_real_directory() {
        let n = free_bytes(&std::env::temp_dir()).unwrap();
        assert!(n > 0);
    }
}
