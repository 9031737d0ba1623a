//! # liaison-store
//!
//! Persistence for a Liaison node, behind one API for both backends:
//! SQLite (default, embedded, one file in the data directory, WAL) and PostgreSQL (for
//! multi-instance deployments). The SQL is written once in the common subset of both
//! dialects and runs through sqlx's `Any` driver.
//!
//! Architecture invariants:
//! - every public write method is one transaction: a request row, its history event and its
//!   audit entry commit together or not at all;
//! - the audit log is append-only and hash-chained; [`Store::verify_audit`] recomputes the chain;
//! - concurrent updates use optimistic versions: a stale version is [`StoreError::Conflict`],
//!   never a lost update;
//! - instants are stored as integer milliseconds since the Unix epoch (UTC).

mod audit;
mod directory;
// [intel] clean-up pipeline state
mod intel;
mod observed;
// [federation]
mod federation;
mod requests;
mod schema;
pub mod testing;
mod users;
mod writer;

pub use audit::{AuditEntry, AuditReport};
pub use directory::AgencyFilter;
pub use intel::{IntelCounts, IntelTx, ItemOwner, StoredNotice, indicator_status};
pub use observed::AnsweredSample;
// [federation]
pub use federation::{
    FedIdentity, FedWrites, InboxRow, IncomingRecord, LeafRecord, LeafRow, OutboxItem, OutboxRow, OutboxStats, OwnKey,
    PeerKeyRecord, PeerRecord, ReceiptRow, SthRecord,
};
pub use requests::{Escalation, EventRecord, Page, RequestFilter, StatsRow, StoredRequest, TransitionRecord};
pub use users::{Principal, TokenInfo, User};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors from the store. Each names what went wrong in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    /// The row changed since the caller read it (optimistic concurrency).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A uniqueness rule was broken (a second user with the same name, …).
    #[error("already exists: {0}")]
    Duplicate(String),
    #[error("invalid database URL '{url}': {reason}")]
    BadUrl { url: String, reason: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the node's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    /// The pool write transactions use: one dedicated connection (both backends).
    writer: AnyPool,
    backend: Backend,
    /// The one write connection and the group commit around it (see the `writer` module).
    pub(crate) write_lock: Arc<writer::Writer>,
    /// Agencies by id (rows are immutable once written).
    agency_cache: Arc<directory::AgencyCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
}

pub(crate) use writer::WriteTx;
impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Store::open(&url).await
    }

    /// Opens a database by URL (`sqlite://…` or `postgres://…`) and applies migrations.
    pub async fn open(url: &str) -> Result<Store> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: "expected sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
            });
        };
        // Create the SQLite file on first use unless the URL says otherwise.
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_string()
        };
        let url = url.as_str();
        let options = || AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                // Readers share a pool; writes go through one dedicated connection so a writer
                // never queues behind readers for a connection while holding the write lock.
                let readers = options()
                    .max_connections(8)
                    .after_connect(|c, _| Box::pin(sqlite_pragmas(c)))
                    .connect(url)
                    .await?;
                let writer = options()
                    .max_connections(1)
                    .after_connect(|c, _| Box::pin(sqlite_pragmas(c)))
                    .connect(url)
                    .await?;
                (readers, writer)
            }
            Backend::Postgres => {
                // Every write takes the audit chain's head row, so writes serialise anyway: one
                // write connection with group commit shares each WAL flush among the writers.
                let readers = options().max_connections(16).connect(url).await?;
                let writer = options().max_connections(1).connect(url).await?;
                (readers, writer)
            }
        };
        let store = Store {
            pool,
            write_lock: Arc::new(writer::Writer::new(backend, writer.clone())),
            writer,
            backend,
            agency_cache: Default::default(),
        };
        schema::migrate(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction (a savepoint in the current commit group, see [`writer`]).
    pub(crate) async fn write(&self) -> Result<WriteTx> {
        self.write_lock.begin().await
    }

    /// Waits until the write transactions of this process that are running now have been
    /// committed (or rolled back).
    pub async fn write_barrier(&self) -> Result<()> {
        self.write_lock.barrier().await
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.write_lock.shutdown().await;
        self.writer.close().await;
        self.pool.close().await;
    }

    /// A cheap liveness check for `/health`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Per-connection SQLite settings: WAL, foreign keys, and waiting (not failing) on a busy file.
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> std::result::Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    Ok(())
}

/// Milliseconds since the epoch, as stored.
pub(crate) fn ms(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

/// Back from stored milliseconds.
pub(crate) fn ts(ms: i64) -> Result<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(ms).map_err(StoreError::corrupt)
}

pub(crate) fn opt_ts(v: Option<i64>) -> Result<Option<jiff::Timestamp>> {
    v.map(ts).transpose()
}

pub(crate) fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| StoreError::Corrupt(format!("{what} '{s}': {e}")))
}

/// Maps a unique-constraint violation to [`StoreError::Duplicate`].
pub(crate) fn unique(e: sqlx::Error, what: impl Into<String>) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Duplicate(what.into());
    }
    StoreError::Database(e)
}
