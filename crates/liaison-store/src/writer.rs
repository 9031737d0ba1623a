//! The node's one write connection, with group commit.
//!
//! Every write transaction of the store runs on one dedicated connection, one at a time, in the
//! order the writers asked (a fair lock). A writer's transaction is a `SAVEPOINT` inside an
//! outer transaction that several writers share:
//!
//! 1. [`Writer::begin`] takes the lock, opens the outer transaction if none is open
//!    (`BEGIN IMMEDIATE` on SQLite, so another process waits instead of failing) and sets a
//!    savepoint;
//! 2. [`WriteTx::commit`] releases the savepoint, joins the *group* of writers waiting for
//!    the outer commit, gives the lock to the next writer in line and queues for the lock
//!    again; when it gets the lock back and its group has not been committed yet, it commits
//!    the outer transaction for everyone in the group;
//! 3. a writer that drops its transaction without committing has its savepoint rolled back
//!    (by the next holder of the lock, or by a task spawned for it), without touching the
//!    other members' work.
//!
//! So when writers queue up, one `COMMIT` (one WAL write on SQLite, one WAL flush on
//! PostgreSQL) serves all of them; a writer alone commits at once. A writer returns from
//! `commit` only after the outer transaction committed: what the caller reports as done is
//! durable, and a crash loses only work nobody was told about. If the outer commit fails,
//! every member of the group gets the error and nothing of the group is stored.
//!
//! The order of the group's savepoints is the order in which the writers held the lock, so
//! the result is the same as if each had committed alone, one after the other.

use crate::{Backend, Result, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use std::sync::{Arc, Mutex as StdMutex};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, oneshot};

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
    /// The savepoint of the last holder was abandoned and must be rolled back first.
    abandoned: bool,
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

/// A write transaction: the write connection, inside the writer's savepoint.
///
/// Use `&mut *w.tx` as the executor. Dropping it without [`WriteTx::commit`] rolls back
/// this writer's work only.
pub(crate) struct WriteTx {
    // Declared first so it is dropped first: an abandoned savepoint is marked as such before
    // the lock (in `tx`) passes to the next writer.
    abandon: Abandon,
    pub tx: OwnedMappedMutexGuard<Option<PoolConnection<Any>>, AnyConnection>,
    /// This writer's work is inside a savepoint (false: it opened the outer transaction and
    /// is alone in it, so `BEGIN`/`ROLLBACK` serve as its savepoint).
    savepoint: bool,
}

/// Marks the writer's savepoint as abandoned when its transaction is dropped uncommitted.
struct Abandon {
    writer: Arc<WriterHandle>,
    armed: bool,
    savepoint: bool,
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
        let mut guard = h.acquire().await?;
        let open = h.with_group(|g| g.open);
        if !open {
            let begin = match self.backend {
                Backend::Sqlite => "BEGIN IMMEDIATE",
                Backend::Postgres => "BEGIN",
            };
            if let Err(e) = exec(&mut guard, begin).await {
                // The connection may be in any state now: start afresh with a new one.
                discard(&mut guard).await;
                return Err(e.into());
            }
            h.with_group(|g| {
                g.open = true;
                g.head = None;
                g.head_dirty = false;
            });
        } else {
            // Others' work is in the open transaction: keep ours separable from it.
            if let Err(e) = exec(&mut guard, SAVEPOINT).await {
                h.abort_group(&mut guard, &e.to_string()).await;
                return Err(e.into());
            }
            h.with_group(|g| g.head_at_savepoint = (g.head.clone(), g.head_dirty));
        }
        let savepoint = open;
        let tx = OwnedMutexGuard::try_map(guard, |c| c.as_mut().map(|c| &mut **c))
            .map_err(|_| StoreError::Corrupt("the write connection went away".into()))?;
        Ok(WriteTx {
            abandon: Abandon {
                writer: h,
                armed: true,
                savepoint,
            },
            tx,
            savepoint,
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
        // A panic while the std mutex was held cannot leave `Group` half-updated in a way
        // that matters more than stopping writes would; keep going with its contents.
        let mut g = match self.group.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }

    /// Takes the write lock, makes sure there is a connection, and cleans up after an
    /// abandoned writer.
    async fn acquire(&self) -> Result<OwnedMutexGuard<Option<PoolConnection<Any>>>> {
        let mut guard = self.conn.clone().lock_owned().await;
        if guard.is_none() {
            self.with_group(|g| {
                g.open = false;
                g.abandoned = false;
            });
            *guard = Some(self.pool.acquire().await?);
        }
        self.settle(&mut guard).await;
        Ok(guard)
    }

    /// Rolls back an abandoned savepoint; closes the outer transaction if nobody is in it.
    async fn settle(&self, guard: &mut Option<PoolConnection<Any>>) {
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

impl WriteTx {
    /// Commits this writer's work: returns once it is durably stored (see the module docs).
    pub async fn commit(self) -> Result<()> {
        let WriteTx {
            mut abandon,
            mut tx,
            savepoint,
        } = self;
        abandon.armed = false;
        let writer = abandon.writer.clone();
        let released = if savepoint {
            exec_conn(&mut tx, RELEASE).await
        } else {
            Ok(())
        };
        if let Err(e) = released {
            // Undo just this writer's part if the savepoint can still be rolled back.
            let recovered = match exec_conn(&mut tx, ROLLBACK_TO).await {
                Ok(()) => exec_conn(&mut tx, RELEASE).await.is_ok(),
                Err(_) => false,
            };
            drop(tx);
            let mut guard = writer.conn.clone().lock_owned().await;
            if !recovered {
                writer.abort_group(&mut guard, &e.to_string()).await;
            } else {
                writer.finish_group(&mut guard).await;
            }
            return Err(e.into());
        }
        let (send, done) = oneshot::channel();
        writer.with_group(|g| g.waiting.push(send));
        // Let the writers queued behind us add their work to this transaction.
        drop(tx);
        let pending = Pending {
            writer: Some(writer.clone()),
        };
        let r = writer.complete(done).await;
        pending.disarm();
        r
    }
}

impl WriteTx {
    /// The audit chain's head inside this transaction: (last seq, its hash). Read from the
    /// `audit_head` row on first use in the outer transaction (which also takes that row's
    /// lock on PostgreSQL), then kept here until the commit writes it back once.
    pub(crate) async fn audit_head(&mut self) -> Result<(i64, String)> {
        if let Some(h) = self.abandon.writer.with_group(|g| g.head.clone()) {
            return Ok(h);
        }
        let h: (i64, String) = sqlx::query_as("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *self.tx)
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
        if !self.armed {
            return;
        }
        // The next holder of the lock rolls the savepoint back; make sure there is one even
        // if no other write comes.
        let whole = !self.savepoint;
        self.writer.with_group(|g| {
            if whole {
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
        Some(c) => exec_conn(c, sql).await,
        None => Err(sqlx::Error::PoolClosed),
    }
}

async fn exec_conn(c: &mut AnyConnection, sql: &'static str) -> std::result::Result<(), sqlx::Error> {
    c.execute(sql).await.map(|_| ())
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
            .execute(&mut *w.tx)
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
                .execute(&mut *w.tx)
                .await
                .unwrap();
        }
        put(&store, 8, "kept").await.unwrap();
        assert_eq!(rows(&store).await, vec![(8, "kept".to_string())]);
        // A dropped writer with nobody after it must not keep the file locked for others.
        {
            let mut w = store.write().await.unwrap();
            sqlx::query("INSERT INTO t (k, v) VALUES (9, 'dropped')")
                .execute(&mut *w.tx)
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
}
