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

mod approval;
mod audit;
pub mod backup;
mod bulk;
mod cases;
mod directory;
mod evidence;
mod evidence_package;
// [intel] clean-up pipeline state
mod intel;
mod letters;
pub mod locks;
mod notices;
mod observed;
// [federation]
mod federation;
pub mod health;
mod requests;
mod schema;
mod search;
mod sign_in;
pub mod testing;
mod users;
mod work;
mod writer;

pub use approval::ApprovalEnd;
pub use bulk::{BulkIn, BulkOut, transfer_subject};
pub use cases::{CaseAction, CaseLinkRow, CaseRow, CaseWrite};
pub use evidence::{EvidenceStorage, WrappedKey, file_detail as evidence_file_detail};
pub use evidence_package::PackageMessage;
pub use intel::{
    CHANGE_FLOOR_MS, IndicatorPage, IntelChunks, IntelCounts, IntelLease, IntelRecovery, IntelTx, ItemOwner,
    PagedIndicator, indicator_status,
};
pub use letters::{LetterRef, RequestText};
pub use liaison_core::record::{
    AgencyFilter, AuditEntry, AuditReport, EventRecord, FedIdentity, InboxRow, LeafRow, OutboxRow, OutboxStats, OwnKey,
    Page, PeerKeyRecord, PeerRecord, Principal, RawJson, ReceiptRow, RequestFilter, RequestSummary, SthRecord,
    StoredRequest, TokenInfo, User,
};
pub use liaison_intel::StoredNotice;
pub use notices::InboxItemRef;
pub use observed::AnsweredSample;
// [federation]
pub use federation::{
    Effect, FedWrites, IncomingRecord, KeyRotationWrites, LeafRecord, LinkRecovery, OutboxItem, PeerPin,
};
pub use requests::{Arg as ListingArg, Escalation, Listed, RefSpec, StatsRow, TransitionRecord, reference_text};
pub use search::{DocHit, DocSearch, FEW_MATCHES};
pub use sign_in::{Credential, SignInStep};
pub use users::{AUTH_CACHE_TTL, TokenKind};
pub use work::{Delivery, Lapsed, NewDelivery, NewNotification, Reminder, event_id_floor};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::{Path, PathBuf};
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
    /// Tokens recently found valid (see [`AUTH_CACHE_TTL`]).
    auth_cache: Arc<users::AuthCache>,
    /// SQLite: the thread the busiest write transactions run on (see [`Store::writing`]).
    write_thread: Option<Arc<WriteThread>>,
    /// SQLite: the database file (for its file system's free space).
    sqlite_path: Option<std::path::PathBuf>,
    /// The last integrity check (see the `health` module).
    integrity: health::SharedIntegrity,
    /// Where a listing filtered by words switches from "start from the matches" to "walk and
    /// test" (see [`search::FEW_MATCHES`]; tests and benchmarks lower it to exercise both).
    few_matches: Arc<std::sync::atomic::AtomicU64>,
    /// PostgreSQL: the agency tokens most texts carry, from the statistics, and when they
    /// were read (see `Store::narrowing`).
    common_agencies: Arc<std::sync::Mutex<Option<search::CommonAgencies>>>,
}

/// A thread with a runtime of its own, for write transactions. The write lock's holder
/// waits for the database's answer to each call; on the node's main runtime it would then
/// also wait for a turn behind every request handler that is busy (building a page of
/// results, say), and every other writer would wait with it. On this thread it runs as
/// soon as the answer is there. On PostgreSQL the write connection is opened here too, so
/// this thread's runtime also reads its socket: a writer spends most of its time between
/// round trips to the server (bench/intel/README.md), and the main runtime's workers, busy
/// with request handlers, delayed each of them.
struct WriteThread {
    handle: tokio::runtime::Handle,
    /// Dropped with the last handle on the store: the thread's runtime then stops.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl WriteThread {
    fn start() -> Result<WriteThread> {
        let (ready, handle) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("liaison-writer".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(rt.handle().clone()));
                rt.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let handle = handle
            .recv()
            .map_err(|_| {
                StoreError::Database(sqlx::Error::Io(std::io::Error::other(
                    "the writer thread did not start",
                )))
            })?
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        Ok(WriteThread { handle, _stop: stop })
    }
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
        let write_thread = Arc::new(WriteThread::start()?);
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
                let readers = options()
                    .max_connections(16)
                    .after_connect(|c, _| Box::pin(postgres_settings(c)))
                    .connect(url)
                    .await?;
                // The write connection keeps PostgreSQL's default plan cache: its statements
                // (inserts, updates and reads by key) have one good plan whatever the values,
                // and planning every run of a multi-part `WITH` statement was much of the
                // serialised writer's time (bench/intel/README.md). It is opened on the
                // write thread, so that its socket is served by that thread's runtime, which
                // is never busy with anything else (see [`WriteThread`]).
                let url = url.to_string();
                let writer = write_thread
                    .handle
                    .spawn(async move { options().max_connections(1).connect(&url).await })
                    .await
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(std::io::Error::other(e.to_string()))))??;
                (readers, writer)
            }
        };
        let store = Store {
            pool,
            write_lock: Arc::new(writer::Writer::new(backend, writer.clone())),
            writer,
            backend,
            agency_cache: Default::default(),
            auth_cache: Default::default(),
            write_thread: Some(write_thread),
            sqlite_path: health::sqlite_file(url),
            integrity: Default::default(),
            few_matches: Arc::new(std::sync::atomic::AtomicU64::new(search::FEW_MATCHES)),
            common_agencies: Default::default(),
        };
        schema::migrate(&store).await?;
        if let (Some(t), Some(file)) = (&store.write_thread, &store.sqlite_path) {
            t.handle.spawn(checkpointer(file.clone()));
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction (a savepoint in the current commit group, see [`writer`]).
    pub(crate) async fn write(&self) -> Result<WriteTx> {
        self.write_lock.begin().await
    }

    /// Runs a write on the store's write thread (see [`WriteThread`]) and waits for its
    /// outcome. The write runs to its end even if the caller stops waiting, so it is stored
    /// or not as a whole, as always.
    pub(crate) async fn writing<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Store) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let work = f(self.clone());
        match &self.write_thread {
            Some(t) => t.handle.spawn(work).await.map_err(|e| {
                StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!("the write failed: {e}"))))
            })?,
            None => work.await,
        }
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

/// Runs `f` on the contents of an in-process mutex. The store's mutexes guard caches and
/// bookkeeping that a panic elsewhere cannot leave in a state worse than refusing to go on
/// would be, so a poisoned lock is used as it is.
pub(crate) fn with_locked<T, R>(m: &std::sync::Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match m.lock() {
        Ok(mut g) => f(&mut g),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// SQLite's `synchronous` setting for every connection: `FULL`, so a commit is on disk before
/// it is acknowledged — receipts and signed tree heads vouch for what the node stored, and a
/// power cut after `NORMAL`'s commit could still lose it (WAL mode syncs only at checkpoints).
/// `LIAISON_SQLITE_SYNCHRONOUS=NORMAL` exists only to measure the cost (bench/README.md).
pub(crate) fn sqlite_synchronous() -> (&'static str, sqlx::sqlite::SqliteSynchronous) {
    match std::env::var("LIAISON_SQLITE_SYNCHRONOUS").ok().as_deref() {
        Some(v) if v.eq_ignore_ascii_case("normal") => ("NORMAL", sqlx::sqlite::SqliteSynchronous::Normal),
        _ => ("FULL", sqlx::sqlite::SqliteSynchronous::Full),
    }
}

/// Bytes of the database file each SQLite connection maps: 64 MiB (the hottest pages: the
/// schema, index roots and the newest rows); the rest is read with `pread` through SQLite's
/// page cache and the kernel's. The mapped pages count in the process's RSS: with a 1 GiB
/// map a node serving the paced request mix during a 1 GB ingest reached 540 MB, with
/// 64 MiB 370 MB, and the mix alone was no slower (bench/intel/README.md).
/// `LIAISON_SQLITE_MMAP_MB` exists only to measure the choice; it is not a setting.
pub(crate) fn sqlite_mmap_bytes() -> u64 {
    std::env::var("LIAISON_SQLITE_MMAP_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(64 << 20, |mb| mb.min(4096) << 20)
}

/// WAL frames after which a committing SQLite connection checkpoints by itself: a safety net
/// only (256 MiB of 4 KiB pages), for when [`checkpointer`] cannot keep up.
pub(crate) const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 65_536;
/// How often [`checkpointer`] runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies the WAL into the database file, every [`CHECKPOINT_EVERY`], on a connection of its
/// own, while the store lives (on the writer thread's runtime, which stops with the store).
/// SQLite's default is for the connection that commits to checkpoint once the WAL holds 1,000
/// pages, in the commit, while this process's write lock is held: every writer then waited
/// for a copy and a sync of the database file (hundreds of milliseconds under an ingest,
/// bench/intel/README.md). A `PASSIVE` checkpoint waits for nobody: writers keep appending to
/// the WAL while it copies and syncs.
async fn checkpointer(file: PathBuf) {
    use sqlx::ConnectOptions;
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(false)
        .busy_timeout(Duration::from_millis(0));
    let mut conn: Option<sqlx::SqliteConnection> = None;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if conn.is_none() {
            match opts.connect().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(error = %e, "checkpointer: cannot open the database yet");
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut()
            && let Err(e) = c.execute("PRAGMA wal_checkpoint(PASSIVE)").await
        {
            tracing::debug!(error = %e, "checkpointer: checkpoint not done this time");
            conn = None;
        }
    }
}

/// Per-connection PostgreSQL settings: plan every statement for its own values. A prepared
/// statement otherwise switches to a generic plan after five runs, chosen without the values;
/// for the listings that plan can be one that suits one agency and walks the whole table for
/// another (an agency with no received requests, while the other has thousands), and it was
/// chosen while the table was small. Planning each run costs well under a millisecond.
/// Readers only: the write connection keeps the default (see [`Store::open`]).
async fn postgres_settings(conn: &mut sqlx::AnyConnection) -> std::result::Result<(), sqlx::Error> {
    conn.execute("SET plan_cache_mode = force_custom_plan").await?;
    // Just-in-time compilation pays off for long analytical queries, not for these: a
    // listing the planner costed above `jit_above_cost` spent 117 ms of 554 compiling
    // (bench/search/README.md).
    conn.execute("SET jit = off").await?;
    Ok(())
}

/// Per-connection SQLite settings: WAL, foreign keys, waiting (not failing) on a busy file,
/// memory-mapped reads.
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> std::result::Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute(match sqlite_synchronous().0 {
        "NORMAL" => "PRAGMA synchronous = NORMAL",
        _ => "PRAGMA synchronous = FULL",
    })
    .await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    // Checkpoints are the checkpointer's (see there); this is the safety net.
    let auto = format!("PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES}");
    conn.execute(sqlx::AssertSqlSafe(auto)).await?;
    // Read through a memory map (no read system call per page) and keep more pages per
    // connection than the default 2 MB; savepoint journals stay in memory.
    let mmap = format!("PRAGMA mmap_size = {}", sqlite_mmap_bytes());
    conn.execute(sqlx::AssertSqlSafe(mmap)).await?;
    conn.execute("PRAGMA cache_size = -16384").await?;
    conn.execute("PRAGMA temp_store = MEMORY").await?;
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
