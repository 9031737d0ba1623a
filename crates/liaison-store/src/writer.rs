//! The node's one write connection, with group commit.
//!
//! Every write transaction of the store runs on one dedicated connection, one at a time, in the
//! order the writers asked (a fair lock). A writer's transaction is a `SAVEPOINT` inside an
//! outer transaction that several writers share:
//!
//! 1. [`Writer::begin`] takes the lock. The writer's first statement is preceded by `BEGIN`
//!    (`BEGIN IMMEDIATE` on SQLite, so another process waits instead of failing) if no outer
//!    transaction is open, or else by a `SAVEPOINT`; a writer that never runs a statement
//!    costs nothing;
//! 2. [`WriteTx::commit`] joins the *group* of writers waiting for the outer commit, gives the
//!    lock to the next writer in line and queues for the lock again; when it gets the lock
//!    back and its group has not been committed yet, it commits the outer transaction for
//!    everyone in the group. Its savepoint is released by the next writer, in the same call
//!    as that writer's first statement (or by the `COMMIT`, which ends all savepoints);
//! 3. a writer that drops its transaction without committing has its savepoint rolled back
//!    (by the next holder of the lock, or by a task spawned for it), without touching the
//!    other members' work. A writer dropped while its `BEGIN`/`SAVEPOINT` is on its way (a
//!    cancelled request) leaves the transaction in a state nobody can tell: the whole group
//!    is then rolled back and its members are told their writes failed, never that they
//!    succeeded.
//!
//! So when writers queue up, one `COMMIT` (one WAL write on SQLite, one WAL flush on
//! PostgreSQL) serves all of them; a writer alone commits at once. A writer returns from
//! `commit` only after the outer transaction committed: what the caller reports as done is
//! durable, and a crash loses only work nobody was told about. If the outer commit fails,
//! every member of the group gets the error and nothing of the group is stored.
//!
//! The order of the group's savepoints is the order in which the writers held the lock, so
//! the result is the same as if each had committed alone, one after the other.
//!
//! A [`Batch`] of statements runs in one call on SQLite, together with the `BEGIN` or
//! `SAVEPOINT` that opens the writer's part: with sqlx every call is a round trip to the
//! connection's worker thread, and the lock is held for all of them. PostgreSQL's protocol
//! takes one statement with parameters per call, so there a batch runs in parts whose
//! statements cannot see each other's effects (only new rows, or one change per table:
//! [`Batch::parts`]), each part one statement of data-modifying `WITH` queries; the
//! `RELEASE`/`SAVEPOINT` pair that starts a writer's part is one call.

use crate::{Backend, Result, StoreError};
use futures_util::TryStreamExt;
use sqlx::any::AnyArguments;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Arguments, Either, Executor};
use std::sync::{Arc, Mutex as StdMutex};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

type Done = oneshot::Sender<std::result::Result<(), String>>;

/// The shared write connection and its commit group.
pub(crate) struct Writer {
    backend: Backend,
    shared: Arc<WriterHandle>,
}

#[derive(Default)]
struct Group {
    /// An outer transaction is open on the connection.
    open: bool,
    /// The last writer's savepoint is still open although its work is done: the next writer
    /// releases it before setting its own (savepoints nest; releasing one keeps its work).
    unreleased: bool,
    /// The savepoint of the last holder was abandoned and must be rolled back first.
    abandoned: bool,
    /// A writer was dropped while its `BEGIN`/`SAVEPOINT` was on its way to the database: the
    /// transaction's state is unknown, and the whole group is rolled back (its members are
    /// told their writes failed) rather than guess.
    unknown: bool,
    /// Writers whose savepoints were released into the open transaction, waiting for its commit.
    waiting: Vec<Done>,
    /// Commits done (for tests and diagnostics).
    commits: u64,
    /// Savepoints committed (for tests and diagnostics).
    members: u64,
    /// The audit chain's head (seq, hash) as of the open transaction's latest append; the
    /// `audit_head` row is written once, just before `COMMIT` (see [`WriteTx::audit_head`]).
    head: Option<(i64, String)>,
    /// `head` moved on since it was read from the database.
    head_dirty: bool,
    /// `head` and `head_dirty` as they were when the current member's savepoint was set.
    head_at_savepoint: (Option<(i64, String)>, bool),
    /// The current member opened the outer transaction itself (no savepoint): abandoning it
    /// rolls back the whole transaction, which holds no one else's work.
    abandoned_whole: bool,
}

/// How a writer's part of the outer transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// No outer transaction is open: this writer opens it (and is alone in it).
    Begin,
    /// Others' work is in the open transaction: this writer sets a savepoint.
    Savepoint,
    /// Like `Savepoint`, after releasing the previous writer's savepoint.
    ReleaseThenSavepoint,
}

impl Start {
    fn statements(self, backend: Backend) -> &'static [&'static str] {
        match (self, backend) {
            (Start::Begin, Backend::Sqlite) => &["BEGIN IMMEDIATE"],
            (Start::Begin, Backend::Postgres) => &["BEGIN"],
            (Start::Savepoint, _) => &[SAVEPOINT],
            // One round trip (PostgreSQL's simple protocol takes several statements).
            (Start::ReleaseThenSavepoint, Backend::Postgres) => &[RELEASE_THEN_SAVEPOINT],
            (Start::ReleaseThenSavepoint, Backend::Sqlite) => &[RELEASE, SAVEPOINT],
        }
    }
}

/// A write transaction: the write connection, inside the writer's savepoint.
///
/// Use [`WriteTx::conn`] as the executor, or [`WriteTx::run`] for several statements.
/// Dropping it without [`WriteTx::commit`] rolls back this writer's work only.
pub(crate) struct WriteTx {
    // Declared first so it is dropped first: an abandoned savepoint is marked as such before
    // the lock (in `guard`) passes to the next writer.
    abandon: Abandon,
    guard: OwnedMutexGuard<Option<PoolConnection<Any>>>,
    /// What must run before this writer's first statement; `None` once it ran.
    start: Option<Start>,
    backend: Backend,
}

/// Marks the writer's savepoint as abandoned when its transaction is dropped uncommitted.
struct Abandon {
    writer: Arc<WriterHandle>,
    armed: bool,
    /// The writer's work is in a savepoint (false: it opened the outer transaction).
    savepoint: bool,
    /// The writer's `BEGIN`/`SAVEPOINT` ran, so there is something to roll back.
    started: bool,
    /// The writer's `BEGIN`/`SAVEPOINT` has been sent and not yet confirmed.
    in_flight: bool,
}

/// The state the writer and its open transactions share (a [`WriteTx`] finishes with it
/// after it gave up the lock).
struct WriterHandle {
    pool: AnyPool,
    /// The connection, taken from `pool` on first use and kept. Holding this lock is the
    /// right to write.
    conn: Arc<Mutex<Option<PoolConnection<Any>>>>,
    /// Only changed while `conn` is held; a plain mutex for short, non-async access.
    group: StdMutex<Group>,
}

const SAVEPOINT: &str = "SAVEPOINT liaison_w";
const RELEASE: &str = "RELEASE SAVEPOINT liaison_w";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT liaison_w";
const RELEASE_THEN_SAVEPOINT: &str = "RELEASE SAVEPOINT liaison_w; SAVEPOINT liaison_w";

impl Writer {
    pub(crate) fn new(backend: Backend, pool: AnyPool) -> Writer {
        Writer {
            backend,
            shared: Arc::new(WriterHandle {
                pool,
                conn: Arc::new(Mutex::new(None)),
                group: StdMutex::new(Group::default()),
            }),
        }
    }

    fn handle(&self) -> Arc<WriterHandle> {
        self.shared.clone()
    }

    /// Starts a write transaction (see the module documentation).
    pub(crate) async fn begin(&self) -> Result<WriteTx> {
        let h = self.handle();
        let guard = h.acquire().await?;
        let start = h.with_group(|g| match (g.open, g.unreleased) {
            (false, _) => Start::Begin,
            (true, false) => Start::Savepoint,
            (true, true) => Start::ReleaseThenSavepoint,
        });
        Ok(WriteTx {
            abandon: Abandon {
                writer: h,
                armed: true,
                savepoint: start != Start::Begin,
                started: false,
                in_flight: false,
            },
            guard,
            start: Some(start),
            backend: self.backend,
        })
    }

    /// Waits until every write transaction that is running now has been committed or rolled
    /// back, then returns holding the write lock (drop it to let writers go on).
    pub(crate) async fn lock(&self) -> OwnedMutexGuard<Option<PoolConnection<Any>>> {
        let h = self.handle();
        let mut guard = h.conn.clone().lock_owned().await;
        if guard.is_some() {
            h.settle(&mut guard).await;
            h.finish_group(&mut guard).await;
        }
        guard
    }

    /// [`Writer::lock`] for callers that only need the barrier.
    pub(crate) async fn barrier(&self) -> Result<()> {
        drop(self.lock().await);
        Ok(())
    }

    /// Commits what is pending and returns the connection to its pool (before closing it).
    pub(crate) async fn shutdown(&self) {
        let mut guard = self.lock().await;
        guard.take();
    }

    /// Number of outer commits and of committed write transactions so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.handle().with_group(|g| (g.commits, g.members))
    }
}

impl WriterHandle {
    fn with_group<T>(&self, f: impl FnOnce(&mut Group) -> T) -> T {
        crate::with_locked(&self.group, f)
    }

    /// Takes the write lock, makes sure there is a connection, and cleans up after an
    /// abandoned writer.
    async fn acquire(&self) -> Result<OwnedMutexGuard<Option<PoolConnection<Any>>>> {
        let mut guard = self.conn.clone().lock_owned().await;
        if guard.is_none() {
            self.with_group(|g| {
                g.open = false;
                g.unreleased = false;
                g.abandoned = false;
            });
            *guard = Some(self.pool.acquire().await?);
        }
        self.settle(&mut guard).await;
        Ok(guard)
    }

    /// Rolls back an abandoned savepoint; closes the outer transaction if nobody is in it.
    async fn settle(&self, guard: &mut Option<PoolConnection<Any>>) {
        if self.with_group(|g| std::mem::take(&mut g.unknown)) {
            self.abort_group(guard, "a cancelled write left the transaction in an unknown state")
                .await;
            return;
        }
        if self.with_group(|g| std::mem::take(&mut g.abandoned_whole)) {
            // The abandoned writer was alone in the transaction.
            self.abort_group(guard, "abandoned").await;
            return;
        }
        if !self.with_group(|g| std::mem::take(&mut g.abandoned)) {
            return;
        }
        let undone = match exec(guard, ROLLBACK_TO).await {
            Ok(()) => exec(guard, RELEASE).await,
            Err(e) => Err(e),
        };
        if let Err(e) = undone {
            self.abort_group(guard, &format!("could not roll back a failed write: {e}"))
                .await;
            return;
        }
        self.with_group(|g| (g.head, g.head_dirty) = std::mem::take(&mut g.head_at_savepoint));
        if self.with_group(|g| g.waiting.is_empty()) {
            // Nothing to keep: end the transaction so other processes may write.
            self.abort_group(guard, "nothing to commit").await;
        }
    }

    /// Commits the open transaction for every waiting member and tells them the outcome.
    async fn finish_group(&self, guard: &mut Option<PoolConnection<Any>>) {
        if !self.with_group(|g| g.open) {
            return;
        }
        let head = self.with_group(|g| if g.head_dirty { g.head.clone() } else { None });
        let result = match (head, guard.as_mut()) {
            (Some((seq, hash)), Some(c)) => sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(seq)
                .bind(hash)
                .execute(&mut **c)
                .await
                .map(|_| ()),
            _ => Ok(()),
        };
        let result = match result {
            Ok(()) => exec(guard, "COMMIT").await,
            Err(e) => Err(e),
        };
        let (waiting, failed) = self.with_group(|g| {
            g.open = false;
            g.unreleased = false;
            g.head = None;
            g.head_dirty = false;
            if result.is_ok() {
                g.commits += 1;
                g.members += g.waiting.len() as u64;
            }
            (std::mem::take(&mut g.waiting), result.is_err())
        });
        if failed {
            let _ = exec(guard, "ROLLBACK").await;
            discard(guard).await;
        }
        let outcome = result.map_err(|e| format!("the database did not commit: {e}"));
        for w in waiting {
            let _ = w.send(outcome.clone());
        }
    }

    /// Rolls back the whole open transaction: every waiting member is told it failed.
    async fn abort_group(&self, guard: &mut Option<PoolConnection<Any>>, why: &str) {
        let waiting = self.with_group(|g| {
            g.open = false;
            g.unreleased = false;
            g.unknown = false;
            g.abandoned = false;
            g.abandoned_whole = false;
            g.head = None;
            g.head_dirty = false;
            std::mem::take(&mut g.waiting)
        });
        if exec(guard, "ROLLBACK").await.is_err() {
            discard(guard).await;
        }
        for w in waiting {
            let _ = w.send(Err(format!("the write group was rolled back: {why}")));
        }
    }

    /// Second half of a commit: wait for the group's outer commit, doing it if nobody has.
    async fn complete(self: Arc<Self>, mut done: oneshot::Receiver<std::result::Result<(), String>>) -> Result<()> {
        let mut guard = self.conn.clone().lock_owned().await;
        if let Ok(outcome) = done.try_recv() {
            return outcome.map_err(group_error);
        }
        self.settle(&mut guard).await;
        self.finish_group(&mut guard).await;
        drop(guard);
        match done.await {
            Ok(outcome) => outcome.map_err(group_error),
            Err(_) => Err(group_error("the write group ended without an outcome".into())),
        }
    }
}

/// A value bound to a statement of a [`Batch`] (typed even when NULL: PostgreSQL needs the type).
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(Some(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(Some(v.to_string()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        Val::Text(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Val {
        Val::Text(v.map(str::to_string))
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::Int(v)
    }
}

impl Val {
    fn add_to(self, args: &mut AnyArguments) -> Result<()> {
        let r = match self {
            Val::Text(v) => args.add(v),
            Val::Int(v) => args.add(v),
        };
        r.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
    }
}

/// How a statement of a [`Batch`] writes its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A plain `INSERT`: new rows only.
    Insert,
    /// `UPDATE`, `DELETE` or `INSERT … ON CONFLICT`: may touch existing rows.
    Other,
}

/// Statements that run together on the write connection, in order; each uses its own
/// `$1…$n` placeholders. See [`WriteTx::run`].
#[derive(Debug, Default)]
pub(crate) struct Batch {
    statements: Vec<(&'static str, Vec<Val>)>,
}

impl Batch {
    /// Adds a statement; returns its index in the batch (for [`WriteTx::run`]'s counts).
    pub(crate) fn push(&mut self, sql: &'static str, values: Vec<Val>) -> usize {
        self.statements.push((sql, values));
        self.statements.len() - 1
    }

    /// The table a statement writes and how: `INSERT INTO t …` (plain, or with `ON CONFLICT`),
    /// `UPDATE t …`, `DELETE FROM t …`; `None` for anything else.
    fn target(sql: &str) -> Option<(&str, Write)> {
        let mut words = sql.split_ascii_whitespace();
        let first = words.next()?.to_ascii_uppercase();
        let (table, kind) = match first.as_str() {
            "INSERT" if words.next()?.eq_ignore_ascii_case("INTO") => (words.next()?, Write::Insert),
            "UPDATE" => (words.next()?, Write::Other),
            "DELETE" if words.next()?.eq_ignore_ascii_case("FROM") => (words.next()?, Write::Other),
            _ => return None,
        };
        let upper = sql.to_ascii_uppercase();
        if upper.contains("SELECT") || upper.contains("RETURNING") || upper.contains(';') {
            return None;
        }
        let kind = if kind == Write::Insert && upper.contains("ON CONFLICT") {
            Write::Other
        } else {
            kind
        };
        let table = table.split('(').next().unwrap_or(table);
        Some((table, kind))
    }

    /// Whether the statements can run as one PostgreSQL statement ([`Batch::combined`]) with
    /// the same outcome as one after the other. The parts of one statement share a snapshot,
    /// so none may depend on another's effect: each is an `INSERT`, `UPDATE` or `DELETE`
    /// without a sub-query; a table is written by several of them only if they are all plain
    /// `INSERT`s (new rows that no other part reads or changes).
    #[cfg(test)]
    fn combinable(&self) -> bool {
        self.statements.len() >= 2 && Batch::combinable_len(&self.statements) == self.statements.len()
    }

    /// How many statements from the start of `statements` can run as one statement (at
    /// least one, unless there are none).
    fn combinable_len(statements: &[(&'static str, Vec<Val>)]) -> usize {
        let mut seen: Vec<(&str, Write)> = Vec::with_capacity(statements.len());
        for (i, (sql, _)) in statements.iter().enumerate() {
            let Some((table, kind)) = Batch::target(sql) else {
                return i.max(1);
            };
            if let Some((_, k)) = seen.iter().find(|(t, _)| t.eq_ignore_ascii_case(table)) {
                if *k != Write::Insert || kind != Write::Insert {
                    return i.max(1);
                }
            } else {
                seen.push((table, kind));
            }
        }
        statements.len()
    }

    /// The batch cut into consecutive parts that each run as one statement: a part ends
    /// where the next statement could depend on one in it (two state changes of one request:
    /// the second `UPDATE` must see the first), so running the parts in order is running the
    /// statements in order.
    fn parts(mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        while !self.statements.is_empty() {
            let n = Batch::combinable_len(&self.statements);
            let rest = self.statements.split_off(n);
            out.push(Batch {
                statements: std::mem::replace(&mut self.statements, rest),
            });
        }
        out
    }

    /// One PostgreSQL statement doing the whole batch: each part a data-modifying `WITH`
    /// query (`RETURNING 1`), the result one row with each part's row count. One round trip
    /// instead of one per statement, while the write lock is held (bench/intel/README.md).
    /// PostgreSQL runs every part exactly once, to completion; foreign keys are checked at
    /// the end of the statement, so a row may refer to one inserted by an earlier part.
    fn combined(self) -> Result<(String, AnyArguments, usize)> {
        let n = self.statements.len();
        let mut sql = String::from("WITH ");
        let mut args = AnyArguments::default();
        for (i, (text, values)) in self.statements.into_iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("s{i} AS ("));
            renumber(&mut sql, text, args.len());
            sql.push_str(" RETURNING 1)");
            for v in values {
                v.add_to(&mut args)?;
            }
        }
        sql.push_str(" SELECT ");
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(SELECT count(*) FROM s{i})"));
        }
        Ok((sql, args, n))
    }

    /// One SQL text for SQLite: the statements joined, placeholders renumbered so that each
    /// statement's `$k` becomes the `$k` of the joined argument list.
    fn joined(self, prefix: &[&str]) -> Result<(String, AnyArguments)> {
        let mut sql = String::new();
        for p in prefix {
            sql.push_str(p);
            sql.push_str(";\n");
        }
        let mut args = AnyArguments::default();
        for (text, values) in self.statements {
            renumber(&mut sql, text, args.len());
            sql.push_str(";\n");
            for v in values {
                v.add_to(&mut args)?;
            }
        }
        Ok((sql, args))
    }
}

/// Appends `text` to `out` with every `$k` placeholder shifted by `offset`. The store's SQL
/// has no `$` outside placeholders.
fn renumber(out: &mut String, text: &str, offset: usize) {
    if offset == 0 {
        out.push_str(text);
        return;
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 {
                let n: usize = text[i + 1..i + 1 + digits].parse().unwrap_or(0);
                out.push('$');
                out.push_str(&(n + offset).to_string());
                i += 1 + digits;
                continue;
            }
        }
        let next = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + next]);
        i += next;
    }
}

impl WriteTx {
    /// The write connection, for one statement of this writer's transaction.
    /// The backend this transaction runs on.
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) async fn conn(&mut self) -> Result<&mut AnyConnection> {
        if let Some(start) = self.start {
            self.abandon.in_flight = true;
            for sql in start.statements(self.backend) {
                if let Err(e) = exec(&mut self.guard, sql).await {
                    return Err(self.start_failed(start, e).await);
                }
            }
            self.started(start);
        }
        self.guard
            .as_mut()
            .map(|c| &mut **c)
            .ok_or_else(|| StoreError::Corrupt("the write connection went away".into()))
    }

    /// Runs the batch's statements in this transaction, in order, and returns the number of
    /// rows each changed. On SQLite this is one call, together with the `BEGIN`/`SAVEPOINT`
    /// that starts this writer's part if it has not run yet. An error stops the batch; drop
    /// the transaction then (its work is rolled back).
    pub(crate) async fn run(&mut self, batch: Batch) -> Result<Vec<u64>> {
        let n = batch.statements.len();
        if self.backend == Backend::Postgres && n > 1 {
            let mut counts = Vec::with_capacity(n);
            for part in batch.parts() {
                if part.statements.len() == 1 {
                    for (sql, values) in part.statements {
                        let mut args = AnyArguments::default();
                        for v in values {
                            v.add_to(&mut args)?;
                        }
                        let r = self.conn().await?.execute(sqlx::query_with(sql, args)).await?;
                        counts.push(r.rows_affected());
                    }
                    continue;
                }
                let (sql, args, k) = part.combined()?;
                let row = self
                    .conn()
                    .await?
                    .fetch_one(sqlx::query_with(sqlx::AssertSqlSafe(sql), args))
                    .await?;
                for i in 0..k {
                    let c: i64 = sqlx::Row::try_get(&row, i)?;
                    counts.push(u64::try_from(c).unwrap_or(0));
                }
            }
            return Ok(counts);
        }
        if self.backend == Backend::Postgres || n == 0 {
            let mut counts = Vec::with_capacity(n);
            for (sql, values) in batch.statements {
                let mut args = AnyArguments::default();
                for v in values {
                    v.add_to(&mut args)?;
                }
                let r = self.conn().await?.execute(sqlx::query_with(sql, args)).await?;
                counts.push(r.rows_affected());
            }
            return Ok(counts);
        }
        let prefix = self.start.map_or(&[][..], |s| s.statements(self.backend));
        let (sql, args) = batch.joined(prefix)?;
        let c = self
            .guard
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("the write connection went away".into()))?;
        let mut counts = Vec::with_capacity(prefix.len() + n);
        let mut failed = None;
        // If this future is dropped before the answer, the start's fate is unknown.
        self.abandon.in_flight = self.start.is_some();
        {
            let mut results = c.fetch_many(sqlx::query_with(sqlx::AssertSqlSafe(sql), args));
            loop {
                match results.try_next().await {
                    Ok(Some(Either::Left(r))) => counts.push(r.rows_affected()),
                    Ok(Some(Either::Right(_))) => {}
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(start) = self.start {
            // `counts` has one entry per statement that completed, the prefix's first.
            if counts.len() >= prefix.len() {
                self.started(start);
            } else {
                let e = failed
                    .take()
                    .unwrap_or_else(|| sqlx::Error::Protocol("the batch ended before its transaction started".into()));
                return Err(self.start_failed(start, e).await);
            }
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(counts.split_off(prefix.len()))
    }

    /// The `BEGIN`/`SAVEPOINT` of this writer failed (or did not finish).
    async fn start_failed(&mut self, start: Start, e: sqlx::Error) -> StoreError {
        self.abandon.armed = false;
        self.abandon.in_flight = false;
        self.start = None;
        let h = self.abandon.writer.clone();
        if start == Start::Begin {
            // The connection may be in any state now: start afresh with a new one.
            let _ = exec(&mut self.guard, "ROLLBACK").await;
            discard(&mut self.guard).await;
        } else {
            // The open transaction holds others' work in a state we cannot tell.
            h.abort_group(&mut self.guard, &e.to_string()).await;
        }
        e.into()
    }

    /// This writer's `BEGIN`/`SAVEPOINT` ran.
    fn started(&mut self, start: Start) {
        self.start = None;
        self.abandon.started = true;
        self.abandon.in_flight = false;
        self.abandon.writer.with_group(|g| {
            if start == Start::Begin {
                g.open = true;
                g.head = None;
                g.head_dirty = false;
            } else {
                g.unreleased = false;
                g.head_at_savepoint = (g.head.clone(), g.head_dirty);
            }
        });
    }

    /// Commits this writer's work: returns once it is durably stored (see the module docs).
    pub async fn commit(self) -> Result<()> {
        let WriteTx { mut abandon, guard, .. } = self;
        abandon.armed = false;
        if !abandon.started {
            // No statement ran: there is nothing to commit.
            return Ok(());
        }
        let writer = abandon.writer.clone();
        let (send, done) = oneshot::channel();
        writer.with_group(|g| {
            g.waiting.push(send);
            // The next writer releases our savepoint (the outer transaction's opener has none).
            g.unreleased = abandon.savepoint;
        });
        // Let the writers queued behind us add their work to this transaction.
        drop(guard);
        let pending = Pending {
            writer: Some(writer.clone()),
        };
        let r = writer.complete(done).await;
        pending.disarm();
        r
    }

    /// The audit chain's head inside this transaction: (last seq, its hash). Read from the
    /// `audit_head` row on first use in the outer transaction (which also takes that row's
    /// lock on PostgreSQL), then kept here until the commit writes it back once.
    pub(crate) async fn audit_head(&mut self) -> Result<(i64, String)> {
        // Known in an open transaction: no need to start this writer's part to read it (so
        // the start can go with the writer's first batch).
        if self.start != Some(Start::Begin)
            && let Some(h) = self.abandon.writer.with_group(|g| g.head.clone())
        {
            return Ok(h);
        }
        let h: (i64, String) = sqlx::query_as("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_one(self.conn().await?)
            .await?;
        // If this writer is rolled back, `head` returns to None (its value at the savepoint),
        // so the next append reads the row again (and, on PostgreSQL, locks it again: a
        // rolled-back savepoint gives up the row lock it took).
        self.abandon.writer.with_group(|g| g.head = Some(h.clone()));
        Ok(h)
    }

    /// Moves the audit chain's head after an append in this transaction.
    pub(crate) fn set_audit_head(&mut self, seq: i64, hash: String) {
        self.abandon.writer.with_group(|g| {
            g.head = Some((seq, hash));
            g.head_dirty = true;
        });
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.armed || !(self.started || self.in_flight) {
            return;
        }
        // The next holder of the lock rolls the savepoint back; make sure there is one even
        // if no other write comes.
        let (whole, unknown) = (!self.savepoint, self.in_flight);
        self.writer.with_group(|g| {
            if unknown {
                g.unknown = true;
            } else if whole {
                g.abandoned_whole = true;
            } else {
                g.abandoned = true;
            }
        });
        let writer = self.writer.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut guard = writer.conn.clone().lock_owned().await;
                if guard.is_some() {
                    writer.settle(&mut guard).await;
                }
            });
        }
    }
}

/// If a committing writer is cancelled while it waits, makes sure its group still commits.
struct Pending {
    writer: Option<Arc<WriterHandle>>,
}

impl Pending {
    fn disarm(mut self) {
        self.writer = None;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut guard = writer.conn.clone().lock_owned().await;
                if guard.is_some() {
                    writer.settle(&mut guard).await;
                    writer.finish_group(&mut guard).await;
                }
            });
        }
    }
}

fn group_error(why: String) -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(why)))
}

async fn exec(guard: &mut Option<PoolConnection<Any>>, sql: &'static str) -> std::result::Result<(), sqlx::Error> {
    match guard.as_mut() {
        Some(c) => c.execute(sql).await.map(|_| ()),
        None => Err(sqlx::Error::PoolClosed),
    }
}

/// Drops a connection whose transaction state is unknown; the next writer opens a new one.
async fn discard(guard: &mut Option<PoolConnection<Any>>) {
    if let Some(c) = guard.take() {
        let _ = c.close().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::Store;

    fn batch(sqls: &[&'static str]) -> Batch {
        let mut b = Batch::default();
        for s in sqls {
            b.push(s, vec![]);
        }
        b
    }

    #[test]
    fn only_independent_statements_are_combined() {
        let create = [
            "INSERT INTO requests (id, body) VALUES ($1, $2)",
            "INSERT INTO request_events (id, request_id) VALUES ($1, $2)",
            "INSERT INTO audit_log (seq, hash) VALUES ($1, $2)",
            "INSERT INTO audit_log (seq, hash) VALUES ($1, $2)",
        ];
        assert!(batch(&create).combinable());
        let transition = [
            "UPDATE requests SET state = $1 WHERE id = $2 AND version = $3",
            "INSERT INTO request_events (id) VALUES ($1)",
            "INSERT INTO audit_log (seq) VALUES ($1)",
        ];
        assert!(batch(&transition).combinable());
        // Two changes of one row: the second must see the first.
        let twice = [
            "UPDATE requests SET state = $1 WHERE id = $2 AND version = $3",
            "UPDATE requests SET state = $1 WHERE id = $2 AND version = $3",
        ];
        assert!(!batch(&twice).combinable());
        // A new row changed, or an upsert beside an insert into the same table.
        assert!(!batch(&["INSERT INTO t (k) VALUES ($1)", "UPDATE t SET v = $1 WHERE k = $2"]).combinable());
        assert!(
            !batch(&[
                "INSERT INTO t (k) VALUES ($1)",
                "INSERT INTO t (k) VALUES ($1) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
            ])
            .combinable()
        );
        // Reads, RETURNING, several statements in one text, anything but a write.
        assert!(!batch(&["INSERT INTO a (k) SELECT k FROM b", "INSERT INTO c (k) VALUES ($1)"]).combinable());
        assert!(
            !batch(&[
                "INSERT INTO a (k) VALUES ($1) RETURNING k",
                "INSERT INTO c (k) VALUES ($1)"
            ])
            .combinable()
        );
        assert!(!batch(&["DELETE FROM a", "VACUUM"]).combinable());
        assert!(
            !batch(&["INSERT INTO a (k) VALUES ($1)"]).combinable(),
            "one statement runs as it is"
        );
        // Two state changes of one request: two parts, each one statement.
        let two: Vec<&'static str> = transition.iter().chain(transition.iter()).copied().collect();
        let parts: Vec<usize> = batch(&two).parts().iter().map(|p| p.statements.len()).collect();
        assert_eq!(parts, [3, 3]);
        let parts: Vec<usize> = batch(&[
            "DELETE FROM a",
            "VACUUM",
            "INSERT INTO a (k) VALUES ($1)",
            "INSERT INTO b (k) VALUES ($1)",
        ])
        .parts()
        .iter()
        .map(|p| p.statements.len())
        .collect();
        assert_eq!(parts, [1, 1, 2]);
        let (sql, _, n) = batch(&["INSERT INTO a (k) VALUES ($1)", "DELETE FROM b WHERE k = $1"])
            .combined()
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            sql,
            "WITH s0 AS (INSERT INTO a (k) VALUES ($1) RETURNING 1), s1 AS (DELETE FROM b WHERE k = $1 RETURNING 1) \
             SELECT (SELECT count(*) FROM s0), (SELECT count(*) FROM s1)"
        );
    }

    async fn sqlite() -> (tempdir::Dir, Store) {
        let dir = tempdir::Dir::new();
        let store = Store::open_sqlite(&dir.0.join("w.db")).await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(&store.pool)
            .await
            .unwrap();
        (dir, store)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!("liaison-writer-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    async fn put(store: &Store, k: i64, v: &str) -> Result<()> {
        let mut w = store.write().await?;
        sqlx::query("INSERT INTO t (k, v) VALUES ($1, $2)")
            .bind(k)
            .bind(v)
            .execute(w.conn().await?)
            .await?;
        w.commit().await
    }

    async fn rows(store: &Store) -> Vec<(i64, String)> {
        sqlx::query_as("SELECT k, v FROM t ORDER BY k")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_commits_and_all_land() {
        let (_d, store) = sqlite().await;
        let (c0, m0) = store.write_lock.counts();
        let tasks: Vec<_> = (0..200)
            .map(|k| {
                let s = store.clone();
                tokio::spawn(async move { put(&s, k, "x").await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(rows(&store).await.len(), 200);
        let (c1, m1) = store.write_lock.counts();
        assert_eq!(m1 - m0, 200, "every write was committed exactly once");
        assert!(c1 - c0 < 200, "concurrent writers shared commits ({} commits)", c1 - c0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_writer_does_not_undo_the_others() {
        let (_d, store) = sqlite().await;
        put(&store, 1, "first").await.unwrap();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let s = store.clone();
                // Every third writer collides with key 1 and fails.
                let k = if i % 3 == 0 { 1 } else { 1000 + i };
                tokio::spawn(async move { (k, put(&s, k, "y").await) })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            let (k, r) = t.await.unwrap();
            if k == 1 {
                assert!(r.is_err());
            } else {
                r.unwrap();
                ok += 1;
            }
        }
        let stored = rows(&store).await;
        assert_eq!(stored.len(), ok + 1);
        assert_eq!(stored[0], (1, "first".to_string()));
    }

    #[tokio::test]
    async fn dropping_a_transaction_rolls_back_only_its_work_and_frees_the_file() {
        let (dir, store) = sqlite().await;
        {
            let mut w = store.write().await.unwrap();
            sqlx::query("INSERT INTO t (k, v) VALUES (7, 'dropped')")
                .execute(w.conn().await.unwrap())
                .await
                .unwrap();
        }
        put(&store, 8, "kept").await.unwrap();
        assert_eq!(rows(&store).await, vec![(8, "kept".to_string())]);
        // A dropped writer with nobody after it must not keep the file locked for others.
        {
            let mut w = store.write().await.unwrap();
            sqlx::query("INSERT INTO t (k, v) VALUES (9, 'dropped')")
                .execute(w.conn().await.unwrap())
                .await
                .unwrap();
        }
        store.write_barrier().await.unwrap();
        let other = Store::open_sqlite(&dir.0.join("w.db")).await.unwrap();
        put(&other, 10, "other process").await.unwrap();
        assert_eq!(rows(&store).await.len(), 2);
    }

    #[tokio::test]
    async fn close_returns_with_the_writer_connection_held() {
        let (_d, store) = sqlite().await;
        put(&store, 1, "a").await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), store.close())
            .await
            .unwrap();
    }

    async fn put_batch(store: &Store, pairs: &[(i64, &str)]) -> Result<Vec<u64>> {
        let mut w = store.write().await?;
        let mut b = Batch::default();
        for (k, v) in pairs {
            b.push("INSERT INTO t (k, v) VALUES ($1, $2)", vec![(*k).into(), (*v).into()]);
        }
        b.push(
            "UPDATE t SET v = v || $2 WHERE k = $1",
            vec![pairs[0].0.into(), "+".into()],
        );
        let counts = w.run(b).await?;
        w.commit().await?;
        Ok(counts)
    }

    #[test]
    fn placeholders_are_renumbered_for_the_joined_statement() {
        let mut out = String::new();
        renumber(&mut out, "UPDATE t SET v = $2, w = COALESCE($10, w) WHERE k = $1", 3);
        assert_eq!(out, "UPDATE t SET v = $5, w = COALESCE($13, w) WHERE k = $4");
        let mut b = Batch::default();
        assert_eq!(
            b.push("INSERT INTO t (k, v) VALUES ($1, $2)", vec![1.into(), "a".into()]),
            0
        );
        assert_eq!(b.push("DELETE FROM t WHERE k = $1", vec![2.into()]), 1);
        let (sql, args) = b.joined(&[SAVEPOINT]).unwrap();
        assert_eq!(
            sql,
            "SAVEPOINT liaison_w;\nINSERT INTO t (k, v) VALUES ($1, $2);\nDELETE FROM t WHERE k = $3;\n"
        );
        assert_eq!(args.len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn batches_report_rows_per_statement_and_fail_alone() {
        let (_d, store) = sqlite().await;
        assert_eq!(put_batch(&store, &[(1, "a"), (2, "b")]).await.unwrap(), vec![1, 1, 1]);
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let s = store.clone();
                // Every fourth batch repeats key 1 in its second statement and fails after
                // its first statement ran: none of it may stay.
                let pairs = if i % 4 == 0 {
                    vec![(100 + i, "x"), (1, "dup")]
                } else {
                    vec![(100 + i, "x"), (1000 + i, "y")]
                };
                tokio::spawn(async move {
                    let pairs: Vec<(i64, &str)> = pairs;
                    (i, put_batch(&s, &pairs).await)
                })
            })
            .collect();
        let mut expected = vec![(1, "a+".to_string()), (2, "b".to_string())];
        for t in tasks {
            let (i, r) = t.await.unwrap();
            if i % 4 == 0 {
                assert!(r.is_err(), "batch {i} should fail");
            } else {
                assert_eq!(r.unwrap(), vec![1, 1, 1]);
                expected.push((100 + i, "x+".to_string()));
                expected.push((1000 + i, "y".to_string()));
            }
        }
        expected.sort();
        assert_eq!(rows(&store).await, expected);
    }

    #[tokio::test]
    async fn a_writer_that_runs_nothing_costs_nothing() {
        let (dir, store) = sqlite().await;
        let w = store.write().await.unwrap();
        w.commit().await.unwrap();
        drop(store.write().await.unwrap());
        // No transaction was left open: another process can write at once.
        let other = Store::open_sqlite(&dir.0.join("w.db")).await.unwrap();
        put(&other, 1, "other").await.unwrap();
        put(&store, 2, "this").await.unwrap();
        assert_eq!(rows(&store).await.len(), 2);
    }

    #[tokio::test]
    async fn a_writer_cancelled_while_starting_fails_its_group_instead_of_guessing() {
        let (_d, store) = sqlite().await;
        let mut w1 = store.write().await.unwrap();
        let mut b = Batch::default();
        b.push("INSERT INTO t (k, v) VALUES ($1, $2)", vec![1.into(), "first".into()]);
        w1.run(b).await.unwrap();
        // A second writer queues for the lock, gets it when the first commits, sends its
        // SAVEPOINT and insert, and is dropped before the answer comes.
        let s2 = store.clone();
        let second = tokio::spawn(async move {
            let mut w2 = s2.write().await.unwrap();
            let mut b = Batch::default();
            // A statement that takes SQLite a while (counting to two million), so the answer
            // cannot already be there when the one poll below looks for it.
            b.push(
                "INSERT INTO t (k, v) SELECT $1, $2 FROM \
                 (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT max(x) FROM c)",
                vec![2.into(), "cancelled".into()],
            );
            // One poll sends the batch to the connection's thread; then the future is dropped.
            let r = futures_util::FutureExt::now_or_never(w2.run(b));
            assert!(r.is_none(), "the batch should still be waiting for its answer");
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // The first writer is told the truth: its group was rolled back.
        assert!(w1.commit().await.is_err());
        second.await.unwrap();
        assert!(rows(&store).await.is_empty());
        put(&store, 3, "after").await.unwrap();
        assert_eq!(rows(&store).await, vec![(3, "after".to_string())]);
    }
}
