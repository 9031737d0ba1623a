//! Ingest that never blocks the node: the machinery behind [`Node::intel_ingest`] and the
//! upload jobs of `POST /api/v1/intel/ingest`.
//!
//! - **Outside the write lock.** The clean-up state is loaded with a read (no write
//!   transaction), the feed is parsed, enriched, routed and aggregated in memory, and only
//!   then are the changed indicators written, in short transactions of their own
//!   ([`liaison_store::Store::intel_save_chunk`]). The chunk size adapts to the time each
//!   transaction held the write lock, aiming at [`CHUNK_TARGET`] (the limit is 50 ms); the
//!   longest hold is in the report (`longest_write_ms`).
//! - **Consistency.** Between the load and the last chunk nothing else may change indicators:
//!   an ingest holds the *intel guard* for its whole run — an in-process mutex plus the
//!   store's cross-process [`liaison_store::IntelLease`] — and notice runs and feedback take
//!   the same guard (waiting up to [`GUARD_WAIT`] in process; answered busy when another
//!   process holds the lease). So an ingest never overwrites what a notice or a partner's
//!   answer changed, and they never see half of an ingest.
//! - **One ingest at a time.** A second ingest does not wait: it is answered
//!   [`ServiceError::Busy`] (409 with `Retry-After`).
//! - **All or nothing.** The chunks are journalled (schema migration 12: the run's row and the
//!   rows of known indicators as they were before it); deleting the run's row is its commit
//!   point. A run that dies or fails while writing is rolled back by the next ingest (or the
//!   node's start: [`Node::intel_recover`]), so what is stored is always a whole number of
//!   runs. Readers of statistics may see a run half-written while it writes.
//! - **A run that cannot be right fails before anything is written** ([`ServiceError::Unprocessable`]):
//!   a header without the format's columns, or no accepted row.
//! - **Parsing yields the processor.** The pipeline runs on a thread of its own whose
//!   scheduling priority is lowered to [`PARSE_NICE`] (its reader thread inherits it), so on a
//!   node with few cores the requests being served go first and the parse takes what is left.
//! - **Uploads** go to a spool file ([`SpoolFile`]: the node's data directory, mode 0600,
//!   removed when dropped), never whole into memory.
//! - **Jobs** ([`IngestJob`]): the last [`JOBS_KEPT`] runs of this process, with their phase,
//!   counters, and final report or error, for `GET /api/v1/intel/ingest/{id}`.

use crate::error::{Result, ServiceError};
use crate::intel::IngestReport;
use crate::node::Node;
use jiff::Timestamp;
use liaison_intel::source::{Progress, ProgressUpdate, SourceError};
use liaison_intel::{Input, IntelConfig, Pipeline, RunSummary, SourceConfig};
use liaison_store::IntelLease;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

/// Aimed-at write-lock hold per persistence chunk (the limit is 50 ms): chunks grow while
/// below it and shrink above [`CHUNK_CEILING`]. A request write that arrives during a chunk
/// waits for it; with 20/35 ms the requests' p99 during a 1 GB ingest was 55–78 ms, with
/// 8/15 ms 35–55 ms (bench/intel/README.md).
pub const CHUNK_TARGET: Duration = Duration::from_millis(8);
pub const CHUNK_CEILING: Duration = Duration::from_millis(15);
/// Indicator rows of the first chunk, and bounds of the adaptive size.
const CHUNK_FIRST: usize = 200;
const CHUNK_MIN: usize = 50;
/// Below the store's bulk-load threshold ([`liaison_store::IntelTx::BULK_MIN_ROWS`]), which
/// rebuilds the whole index in one transaction.
const CHUNK_MAX: usize = 10_000;
/// How long a notice run or feedback waits for a running ingest of this process before it
/// is answered busy.
pub const GUARD_WAIT: Duration = Duration::from_secs(30);
/// `Retry-After` of a busy answer (seconds).
pub const RETRY_AFTER_SECS: u64 = 30;
/// Finished jobs kept for `GET /api/v1/intel/ingest/{id}`.
pub const JOBS_KEPT: usize = 32;
/// Quarantined rows listed per source in a kept job's report.
pub const JOB_QUARANTINE_KEPT: usize = 100;

/// Per-node state of the clean-up runs (shared by clones of the node).
#[derive(Default)]
pub(crate) struct IntelRuntime {
    /// The in-process half of the intel guard.
    guard: Arc<Mutex<()>>,
    jobs: StdMutex<VecDeque<Arc<JobCell>>>,
    /// Directory of upload spool files (`None`: the system's temporary directory).
    spool: Option<PathBuf>,
}

/// Held while the clean-up state may change: see the module docs.
pub struct IntelGuard {
    _local: OwnedMutexGuard<()>,
    lease: Option<IntelLease>,
}

impl IntelGuard {
    /// Gives the guard up (the lease at once, not when its connection closes).
    pub async fn release(mut self) {
        if let Some(l) = self.lease.take() {
            l.release().await;
        }
    }
}

fn busy(what: &str) -> ServiceError {
    ServiceError::Busy {
        message: format!(
            "{what}; one ingest runs at a time per node: follow it with GET /api/v1/intel/ingests and try again when it has finished"
        ),
        retry_after_secs: RETRY_AFTER_SECS,
    }
}

/// `running`, `succeeded` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// Where a job is: `receiving` (the upload), `parsing` (parse, enrich, route, aggregate),
/// `persisting` (short write transactions), `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    Receiving,
    Loading,
    Parsing,
    Persisting,
    Done,
}

/// Why a job failed, as the API answers it.
#[derive(Debug, Clone, Serialize)]
pub struct JobError {
    /// The HTTP status the error maps to (409 busy, 413 too large, 422 unprocessable, …).
    pub status: u16,
    pub detail: String,
}

/// One ingest as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IngestJob {
    pub id: Uuid,
    /// The agency of the user who started it: only its operators follow the job.
    pub agency: liaison_core::AgencyId,
    pub state: JobState,
    pub phase: JobPhase,
    pub format: String,
    pub feed: String,
    pub name: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Upload bytes received so far (API uploads).
    pub bytes_received: u64,
    /// Feed bytes parsed so far.
    pub bytes_read: u64,
    /// Data rows parsed so far.
    pub rows: u64,
    /// Rows accepted so far (aggregated).
    pub accepted: u64,
    /// Rows quarantined (known at the end of parsing).
    pub quarantined: u64,
    /// Indicator rows to write, and written so far.
    pub to_persist: u64,
    pub persisted: u64,
    pub report: Option<IngestReport>,
    pub error: Option<JobError>,
}

pub(crate) struct JobCell {
    job: StdMutex<IngestJob>,
    rows: AtomicU64,
    bytes_read: AtomicU64,
    accepted: AtomicU64,
    persisted: AtomicU64,
}

impl JobCell {
    fn snapshot(&self) -> IngestJob {
        let mut j = with_lock(&self.job, |j| j.clone());
        if j.state == JobState::Running {
            j.rows = self.rows.load(Ordering::Relaxed);
            j.bytes_read = self.bytes_read.load(Ordering::Relaxed);
            j.accepted = self.accepted.load(Ordering::Relaxed);
            j.persisted = self.persisted.load(Ordering::Relaxed);
        }
        j
    }

    fn set(&self, f: impl FnOnce(&mut IngestJob)) {
        with_lock(&self.job, f)
    }

    fn finish(&self, result: &Result<IngestReport>) {
        let (rows, read, acc, pers) = (
            self.rows.load(Ordering::Relaxed),
            self.bytes_read.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
            self.persisted.load(Ordering::Relaxed),
        );
        self.set(|j| {
            j.finished_at = Some(Timestamp::now());
            j.phase = JobPhase::Done;
            j.rows = rows;
            j.bytes_read = read;
            j.accepted = acc;
            j.persisted = pers;
            match result {
                Ok(r) => {
                    j.state = JobState::Succeeded;
                    j.rows = r.summary.rows;
                    j.accepted = r.summary.accepted;
                    j.quarantined = r.summary.quarantined;
                    j.bytes_read = r.summary.bytes;
                    j.persisted = r.persisted;
                    // Kept jobs list a few quarantined rows each (the full list went to the
                    // caller that waited), so 32 jobs stay small.
                    let mut kept = r.clone();
                    for src in &mut kept.summary.sources {
                        src.quarantine.truncate(JOB_QUARANTINE_KEPT);
                    }
                    j.report = Some(kept);
                }
                Err(e) => {
                    j.state = JobState::Failed;
                    j.error = Some(JobError {
                        status: status_of(e),
                        detail: match e {
                            ServiceError::Internal(_) => {
                                "the node could not complete the ingest; the error is in its log".into()
                            }
                            other => other.to_string(),
                        },
                    });
                }
            }
        })
    }
}

fn status_of(e: &ServiceError) -> u16 {
    match e {
        ServiceError::Invalid(_) => 400,
        ServiceError::Unauthenticated(_) => 401,
        ServiceError::Forbidden(_) => 403,
        ServiceError::NotFound(_) => 404,
        ServiceError::IllegalTransition { .. } | ServiceError::Conflict(_) | ServiceError::Busy { .. } => 409,
        ServiceError::Integrity(_) | ServiceError::Unprocessable(_) | ServiceError::Incomplete(_) => 422,
        ServiceError::Internal(_) => 500,
    }
}

/// A job being run: updates its counters from the pipeline's progress.
#[derive(Clone)]
pub struct JobHandle(Arc<JobCell>);

impl JobHandle {
    /// The job's id.
    pub fn id(&self) -> Uuid {
        with_lock(&self.0.job, |j| j.id)
    }

    /// The job as the API shows it now.
    pub fn snapshot(&self) -> IngestJob {
        self.0.snapshot()
    }

    /// Upload bytes received so far.
    pub fn received(&self, bytes: u64) {
        self.0.set(|j| j.bytes_received = bytes)
    }

    /// Ends the job with an error that happened before the run (a refused upload): its
    /// HTTP status and the problem's detail.
    pub fn fail(&self, status: u16, detail: String) {
        self.0.set(|j| {
            j.finished_at = Some(Timestamp::now());
            j.phase = JobPhase::Done;
            j.state = JobState::Failed;
            j.error = Some(JobError { status, detail });
        })
    }
}

/// Forwards progress to the job's counters and to an inner sink (the CLI's bar).
struct JobProgress {
    cell: Arc<JobCell>,
    inner: Arc<dyn Progress + Send + Sync>,
    /// When the parser last reported (it reports every 16,384 rows).
    last: StdMutex<std::time::Instant>,
}

impl Progress for JobProgress {
    fn update(&self, p: ProgressUpdate<'_>) {
        self.cell.rows.store(p.rows, Ordering::Relaxed);
        self.cell.bytes_read.store(p.bytes_read, Ordering::Relaxed);
        self.inner.update(p);
        // A job runs inside the serving node: the parser (and with it the aggregation, which
        // waits for its batches) works at most a third of the time, leaving CPU to requests
        // (besides its low priority, which two cores do not make enough: bench/intel/README.md).
        // (The pause is not counted as work: `last` is set after it.)
        let worked = with_lock(&self.last, |l| l.elapsed());
        if !p.done {
            std::thread::sleep((worked * 2).min(Duration::from_millis(400)));
        }
        with_lock(&self.last, |l| *l = std::time::Instant::now());
    }
}

/// An upload's spool file: created mode 0600 in the node's spool directory, removed when
/// dropped (also after a failed or refused upload).
pub struct SpoolFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl SpoolFile {
    fn create(dir: &Path) -> std::io::Result<SpoolFile> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{SPOOL_PREFIX}{}{SPOOL_SUFFIX}", Uuid::now_v7()));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).read(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let file = o.open(&path)?;
        Ok(SpoolFile { path, file: Some(file) })
    }

    /// The file, for writing the upload (`None` once taken).
    pub fn take_file(&mut self) -> Option<std::fs::File> {
        self.file.take()
    }

    /// The spool file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        self.file.take();
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove an ingest spool file");
        }
    }
}

const SPOOL_PREFIX: &str = "ingest-";
const SPOOL_SUFFIX: &str = ".upload";

/// Streams `input` into `out`, replacing every NUL byte by U+FFFD (PostgreSQL cannot store
/// U+0000; the rows they are in are then kept or quarantined like any other), and refusing
/// more than `limit` input bytes. Returns the input bytes read. For the CLI and tests; the
/// server does the same frame by frame ([`nul_to_replacement`]).
pub fn copy_replacing_nul(
    input: &mut dyn std::io::Read,
    out: &mut dyn std::io::Write,
    limit: u64,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let mut clean = Vec::with_capacity(1 << 16);
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        if total > limit {
            return Err(std::io::Error::other(format!("more than {limit} bytes")));
        }
        clean.clear();
        nul_to_replacement(&buf[..n], &mut clean);
        out.write_all(&clean)?;
    }
}

/// Appends `chunk` to `out` with every NUL byte replaced by U+FFFD.
pub fn nul_to_replacement(chunk: &[u8], out: &mut Vec<u8>) {
    let mut rest = chunk;
    while let Some(i) = rest.iter().position(|&b| b == 0) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice("\u{FFFD}".as_bytes());
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Why a run cannot be right as a whole (checked before anything is written).
fn check_run(summary: &RunSummary) -> Option<String> {
    let mut problems = Vec::new();
    for s in &summary.sources {
        match &s.error {
            Some(e @ (SourceError::MissingColumn { .. } | SourceError::TooLarge { .. })) => {
                problems.push(e.to_string())
            }
            _ if s.rows > 0 && s.accepted == 0 => {
                let first: Vec<String> = s.quarantine.iter().take(3).map(|q| q.to_string()).collect();
                let mut p = format!(
                    "{}: none of its {} rows was accepted (is it in this format?)",
                    s.file, s.rows
                );
                if !first.is_empty() {
                    p.push_str(&format!("; first bad rows: {}", first.join("; ")));
                }
                if let Some(e) = &s.error {
                    p.push_str(&format!("; {e}"));
                }
                problems.push(p);
            }
            _ => {}
        }
    }
    if problems.is_empty() && summary.accepted == 0 {
        let files: Vec<&str> = summary.sources.iter().map(|s| s.file.as_str()).collect();
        let mut p = format!(
            "no row was accepted: {} rows read from {}",
            summary.rows,
            files.join(", ")
        );
        for s in &summary.sources {
            if let Some(e) = &s.error {
                p.push_str(&format!("; {e}"));
            }
        }
        problems.push(p);
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!("nothing was stored: {}", problems.join("; ")))
    }
}

/// A cheap fingerprint of what an update can change about a known indicator. Every
/// non-duplicate sighting bumps `sightings`; duplicates can only raise victim numbers.
fn fingerprint(ind: &liaison_intel::Indicator) -> (u64, Option<u32>, u64, usize) {
    let by_country: u64 = ind.victim_countries.iter().map(|(_, n)| u64::from(n)).sum();
    (ind.sightings, ind.victim_count, by_country, ind.victim_countries.len())
}

/// Runs `f` on an in-process mutex's contents; job bookkeeping is usable after a panic
/// elsewhere, so a poisoned lock is used as it is.
fn with_lock<T, R>(m: &StdMutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match m.lock() {
        Ok(mut g) => f(&mut g),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// The scheduling priority (nice value, 0 normal to 19 lowest) of an ingest's parse threads.
/// At 19 the kernel gives a busy request thread about 70 times the share of a parse thread.
pub const PARSE_NICE: i32 = 19;

/// Runs `f` on a new thread whose priority is lowered to [`PARSE_NICE`] (threads it starts
/// inherit it) and awaits its result. A failure to lower the priority is logged, not fatal.
async fn in_background<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("intel-ingest".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(f());
        })
        .map_err(internal)?;
    rx.await
        .map_err(|_| internal("the ingest thread ended without a result"))
}

/// Lowers the calling thread's priority to [`PARSE_NICE`] (Linux: the nice value is per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), PARSE_NICE) {
            tracing::warn!(error = %e, "could not lower the ingest thread's priority; it competes with requests");
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

impl Node {
    /// The node with the directory for upload spool files (the CLI's `serve` gives
    /// `DATA_DIR/spool`; default: the system's temporary directory). Leftover spool files of
    /// an earlier process are removed.
    pub fn with_intel_spool(mut self, dir: PathBuf) -> Self {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(SPOOL_PREFIX) && name.ends_with(SPOOL_SUFFIX) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        self.intel_rt = Arc::new(IntelRuntime {
            spool: Some(dir),
            ..IntelRuntime::default()
        });
        self
    }

    /// Rolls back an ingest that died while writing (of this process or another sharing the
    /// database), if no ingest is running now; the server calls it when it starts. Returns
    /// whether one was rolled back (`false` also when an ingest is running).
    pub async fn intel_recover(&self) -> Result<bool> {
        let Ok(guard) = self.intel_guard_try().await else {
            return Ok(false);
        };
        let r = self.store.intel_recover().await;
        guard.release().await;
        Ok(r?.rolled_back)
    }

    /// The directory of upload spool files and export files.
    pub(crate) fn intel_spool_dir(&self) -> PathBuf {
        self.intel_rt.spool.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// A new spool file for an upload.
    pub fn intel_spool_file(&self) -> Result<SpoolFile> {
        let dir = self.intel_spool_dir();
        SpoolFile::create(&dir)
            .map_err(|e| internal(format!("creating an ingest spool file in {}: {e}", dir.display())))
    }

    /// The intel guard, without waiting: busy if an ingest, a notice run or feedback holds it.
    pub(crate) async fn intel_guard_try(&self) -> Result<IntelGuard> {
        let local = self
            .intel_rt
            .guard
            .clone()
            .try_lock_owned()
            .map_err(|_| busy("an ingest (or a notice run) is running on this node"))?;
        self.intel_guard_lease(local).await
    }

    /// The intel guard for a notice run or feedback: waits up to [`GUARD_WAIT`] for a running
    /// ingest of this process.
    pub(crate) async fn intel_guard_wait(&self) -> Result<IntelGuard> {
        let local = tokio::time::timeout(GUARD_WAIT, self.intel_rt.guard.clone().lock_owned())
            .await
            .map_err(|_| busy("an ingest is writing the indicators"))?;
        self.intel_guard_lease(local).await
    }

    async fn intel_guard_lease(&self, local: OwnedMutexGuard<()>) -> Result<IntelGuard> {
        let lease = self
            .store
            .intel_try_lease()
            .await?
            .ok_or_else(|| busy("another process sharing this database is running an ingest"))?;
        Ok(IntelGuard {
            _local: local,
            lease: Some(lease),
        })
    }

    /// Starts an ingest job: checks the role, takes the intel guard (busy otherwise) and
    /// registers the job in the `receiving` phase. Then [`Node::intel_ingest_start`] runs it.
    pub async fn intel_ingest_begin(
        &self,
        p: &liaison_core::record::Principal,
        source: &SourceConfig,
        format: &str,
        name: &str,
    ) -> Result<(JobHandle, IntelGuard)> {
        crate::node::require(crate::intel::may_operate(p.role), "ingesting intelligence feeds", p)?;
        if !self.store.agency_is_local(p.agency).await? {
            return Err(ServiceError::Forbidden(format!(
                "user {} belongs to an agency served by another node; only this node's agencies ingest here",
                p.username
            )));
        }
        let guard = self.intel_guard_try().await?;
        let cell = Arc::new(JobCell {
            job: StdMutex::new(IngestJob {
                id: Uuid::now_v7(),
                agency: p.agency,
                state: JobState::Running,
                phase: JobPhase::Receiving,
                format: format.to_string(),
                feed: source.feed.clone(),
                name: name.to_string(),
                started_at: Timestamp::now(),
                finished_at: None,
                bytes_received: 0,
                bytes_read: 0,
                rows: 0,
                accepted: 0,
                quarantined: 0,
                to_persist: 0,
                persisted: 0,
                report: None,
                error: None,
            }),
            rows: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            persisted: AtomicU64::new(0),
        });
        with_lock(&self.intel_rt.jobs, |jobs| {
            // Drop the oldest finished jobs beyond the limit (a running one stays).
            while jobs.len() >= JOBS_KEPT {
                match jobs
                    .iter()
                    .position(|c| with_lock(&c.job, |j| j.state != JobState::Running))
                {
                    Some(i) => {
                        jobs.remove(i);
                    }
                    None => break,
                }
            }
            jobs.push_back(cell.clone());
        });
        Ok((JobHandle(cell), guard))
    }

    /// Runs a registered job over the spooled upload in the background; the returned task
    /// ends with the job (await it to wait for the report).
    pub fn intel_ingest_start(
        &self,
        job: &JobHandle,
        guard: IntelGuard,
        source: SourceConfig,
        spool: SpoolFile,
        now: Timestamp,
    ) -> tokio::task::JoinHandle<Result<IngestReport>> {
        let node = self.clone();
        let cell = job.0.clone();
        tokio::spawn(async move {
            let (name, agency) = with_lock(&cell.job, |j| (j.name.clone(), j.agency));
            let result = match std::fs::File::open(spool.path()) {
                Ok(f) => {
                    let code = match node.store.agency(agency).await {
                        Ok(a) => Some(a.code),
                        Err(e) => {
                            tracing::warn!(error = %e, "the ingesting agency could not be read; its indicators are not attributed to it");
                            None
                        }
                    };
                    let input = Input::new(source, &name, std::io::BufReader::with_capacity(1 << 20, f));
                    let config = node.intel_config();
                    node.intel_ingest_run(
                        guard,
                        &config,
                        vec![input],
                        Arc::new(liaison_intel::source::NoProgress),
                        Some(cell.clone()),
                        code,
                        now,
                    )
                    .await
                }
                Err(e) => {
                    guard.release().await;
                    Err(internal(format!("reopening the spool file: {e}")))
                }
            };
            drop(spool);
            if let Err(e) = &result {
                tracing::warn!(error = %e, "ingest job failed");
            }
            cell.finish(&result);
            result
        })
    }

    /// One job of this process (the last [`JOBS_KEPT`]).
    pub fn intel_ingest_job(&self, p: &liaison_core::record::Principal, id: Uuid) -> Result<IngestJob> {
        crate::node::require(crate::intel::may_operate(p.role), "following ingests", p)?;
        with_lock(&self.intel_rt.jobs, |jobs| {
            jobs.iter()
                .find(|c| with_lock(&c.job, |j| j.id == id && j.agency == p.agency))
                .cloned()
        })
        .map(|c| c.snapshot())
        .ok_or_else(|| ServiceError::NotFound(format!("ingest job {id} (this node keeps the last {JOBS_KEPT})")))
    }

    /// The jobs of this process, newest first.
    pub fn intel_ingest_jobs(&self, p: &liaison_core::record::Principal) -> Result<Vec<IngestJob>> {
        crate::node::require(crate::intel::may_operate(p.role), "following ingests", p)?;
        let cells: Vec<Arc<JobCell>> = with_lock(&self.intel_rt.jobs, |jobs| jobs.iter().rev().cloned().collect());
        Ok(cells
            .iter()
            .map(|c| c.snapshot())
            .filter(|j| j.agency == p.agency)
            .collect())
    }

    /// Loads the state (a read), runs the pipeline outside any write transaction, checks the
    /// run, and writes the changed indicators in short transactions. Holds `guard` throughout.
    #[allow(clippy::too_many_arguments)] // what a run is for: the job (if any) and the agency
    pub(crate) async fn intel_ingest_run(
        &self,
        guard: IntelGuard,
        config: &IntelConfig,
        inputs: Vec<Input<'static>>,
        progress: Arc<dyn Progress + Send + Sync>,
        job: Option<Arc<JobCell>>,
        agency: Option<String>,
        now: Timestamp,
    ) -> Result<IngestReport> {
        let result = self.ingest_guarded(config, inputs, progress, job, agency, now).await;
        guard.release().await;
        result
    }

    async fn ingest_guarded(
        &self,
        config: &IntelConfig,
        inputs: Vec<Input<'static>>,
        progress: Arc<dyn Progress + Send + Sync>,
        job: Option<Arc<JobCell>>,
        agency: Option<String>,
        now: Timestamp,
    ) -> Result<IngestReport> {
        let phase = |p: JobPhase| {
            if let Some(c) = &job {
                c.set(|j| j.phase = p);
            }
        };
        phase(JobPhase::Loading);
        // A run of any process that died while writing is rolled back first (the guard
        // proves it is not running).
        self.store.intel_recover().await?;
        let config = config.clone();
        let observed = now.as_second();
        let pipeline = in_background(move || Pipeline::from_config(&config, observed))
            .await?
            .map_err(|e| ServiceError::invalid("intel", e.to_string()))?;
        let state = self.store.intel_load().await?;
        let base = u32::try_from(state.len()).map_err(internal)?;
        phase(JobPhase::Parsing);
        let cell = job.clone();
        let progress: Arc<dyn Progress + Send + Sync> = match &job {
            Some(c) => Arc::new(JobProgress {
                cell: c.clone(),
                inner: progress,
                last: StdMutex::new(std::time::Instant::now()),
            }),
            None => progress,
        };
        let mut pipeline = pipeline;
        let (mut pipeline, summary, dirty) = in_background(move || {
            let before: Vec<_> = state.indicators.iter().map(fingerprint).collect();
            pipeline.state = state;
            let mut seen = 0u64;
            let summary = pipeline.run_with(inputs, &*progress, &mut |_| {
                seen += 1;
                if seen.is_multiple_of(4096)
                    && let Some(c) = &cell
                {
                    c.accepted.store(seen, Ordering::Relaxed);
                }
            });
            let state = &pipeline.state;
            let mut dirty: Vec<u32> = before
                .iter()
                .zip(&state.indicators)
                .enumerate()
                .filter(|(_, (f, ind))| **f != fingerprint(ind))
                .map(|(i, _)| i as u32)
                .collect();
            dirty.extend(before.len() as u32..state.len() as u32);
            if let Some(code) = &agency {
                pipeline.state.mark_ingested_by(&dirty, code);
            }
            // New indicators in the order of the store's (kind, value) index: far fewer
            // index pages change per chunk (bench/intel/README.md).
            pipeline.state.sort_from(before.len() as u32);
            (pipeline, summary, dirty)
        })
        .await?;
        if let Some(c) = &job {
            c.set(|j| {
                j.quarantined = summary.quarantined;
                j.to_persist = dirty.len() as u64;
            });
            c.accepted.store(summary.accepted, Ordering::Relaxed);
            c.rows.store(summary.rows, Ordering::Relaxed);
        }
        if let Some(problem) = check_run(&summary) {
            return Err(ServiceError::Unprocessable(problem));
        }
        phase(JobPhase::Persisting);
        let run = Uuid::now_v7();
        self.store.intel_run_begin(run, base, now.as_second()).await?;
        let started = std::time::Instant::now();
        // Shared with the store's write thread, which writes the chunks.
        let state = Arc::new(std::mem::take(&mut pipeline.state));
        let written = self.persist_chunks(&state, &dirty, base, run, job.as_deref()).await;
        let (persisted, chunks, longest) = match written {
            Ok(w) => w,
            Err(e) => {
                // Undo what the run wrote now (else the next ingest or start does).
                if let Err(r) = self.store.intel_recover().await {
                    tracing::error!(error = %r, "rolling back a failed ingest; the next ingest or start retries");
                }
                return Err(e);
            }
        };
        Ok(IngestReport {
            summary,
            persisted,
            persist_secs: started.elapsed().as_secs_f64(),
            indicators_total: state.len() as u64,
            chunks,
            longest_write_ms: longest.as_secs_f64() * 1000.0,
        })
    }

    /// Writes the indicators at `dirty` in short journalled transactions, then the run's
    /// commit point. Returns (rows written, transactions, longest write-lock hold).
    async fn persist_chunks(
        &self,
        state: &Arc<liaison_intel::CleanupState>,
        dirty: &[u32],
        base: u32,
        run: Uuid,
        job: Option<&JobCell>,
    ) -> Result<(u64, u64, Duration)> {
        let mut persisted = 0u64;
        let mut longest = Duration::ZERO;
        let mut chunks = 0u64;
        let mut size = CHUNK_FIRST;
        let mut at = 0usize;
        let mut writer = self.store.intel_chunks().await?;
        while at < dirty.len() {
            let end = (at + size).min(dirty.len());
            let (n, held) = match writer.save(state, &dirty[at..end], base).await {
                Ok(w) => w,
                Err(e) => {
                    writer.close().await;
                    return Err(e.into());
                }
            };
            persisted += n;
            chunks += 1;
            longest = longest.max(held);
            if let Some(c) = job {
                c.persisted.store(persisted, Ordering::Relaxed);
            }
            // Next size: double below the aim, halve above the ceiling, else keep. (A hold is
            // a fixed part — BEGIN, COMMIT and its fsync — plus a part per row, so scaling by
            // time per row would shrink chunks to nothing when the fixed part dominates.)
            if held < CHUNK_TARGET {
                size = size.saturating_mul(2).min(CHUNK_MAX);
            } else if held > CHUNK_CEILING {
                size = (size / 2).max(CHUNK_MIN);
            }
            at = end;
            // Let other writers in between chunks: the ingest holds the write lock at most
            // about half of the time.
            tokio::time::sleep(held).await;
        }
        writer.close().await;
        // The commit point: until here, a run that dies is rolled back by the next one.
        longest = longest.max(self.store.intel_run_end(run).await?);
        Ok((persisted, chunks + 1, longest))
    }
}
