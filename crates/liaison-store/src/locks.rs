//! Roles that exactly one process may hold at a time across every instance sharing the
//! database: the delivery worker of one federation link, the deadline watcher.
//!
//! PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock(namespace, key)`) taken on
//! a connection of its own that the holder keeps open while it holds the role. The server
//! releases a session lock when its connection ends, so an instance that dies (SIGKILL, power
//! loss, a cut network) gives the role up as soon as PostgreSQL notices the connection is gone,
//! and another instance takes it at its next try. The key is derived from the schema the store
//! works in and the role's name, so two deployments in different schemas of one database (the
//! tests do that) never block each other.
//!
//! SQLite: one process owns the database file, so every role is always granted (the current
//! behaviour); the lease holds nothing.

use crate::{Backend, Result, Store};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection};

/// The first key of every advisory lock Liaison takes ("LIAI" in ASCII), so that its locks
/// are told apart from any other application's on the same database.
pub const LOCK_NAMESPACE: i32 = 0x4c49_4149;

/// A role held by this process until the lease is released or dropped.
pub struct Lease {
    name: String,
    /// PostgreSQL: the connection the session lock lives on. `None` on SQLite.
    conn: Option<AnyConnection>,
    key: i32,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("exclusive", &self.conn.is_some())
            .finish()
    }
}

/// The advisory lock key of a role in a schema: the first four bytes of
/// SHA-256(schema ‖ 0x00 ‖ name), as a signed 32-bit integer. Two roles sharing a key only
/// means one process serves both; it never lets two processes hold one role.
pub fn lock_key(schema: &str, name: &str) -> i32 {
    let mut h = Sha256::new();
    h.update(schema.as_bytes());
    h.update([0u8]);
    h.update(name.as_bytes());
    let d = h.finalize();
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

impl Lease {
    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the role is still held: on PostgreSQL, the lock's connection still answers.
    /// A holder checks this before each round of work and stops when it is false (the lock
    /// was released with the connection and another instance may hold the role now).
    pub async fn alive(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(c) => sqlx::query("SELECT 1").execute(&mut *c).await.is_ok(),
        }
    }

    /// Gives the role up now (dropping the lease does too, when the connection closes).
    pub async fn release(mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(LOCK_NAMESPACE)
                .bind(self.key)
                .execute(&mut c)
                .await;
            let _ = c.close().await;
        }
    }
}

impl Store {
    /// Tries to take the role `name` for this process. `Ok(None)`: another process (an
    /// instance on the same PostgreSQL database) holds it. Never waits for the lock.
    pub async fn try_lease(&self, name: &str) -> Result<Option<Lease>> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(Lease {
                name: name.to_string(),
                conn: None,
                key: 0,
            }));
        }
        // A connection of the lease's own, taken out of the pool: the lock lives and dies with it.
        let mut conn = self.pool.acquire().await?.detach();
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&mut conn)
            .await?;
        let key = lock_key(&schema, name);
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LOCK_NAMESPACE)
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        if !got {
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(Lease {
            name: name.to_string(),
            conn: Some(conn),
            key,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_schema_and_name() {
        assert_ne!(lock_key("a", "deliver:x"), lock_key("b", "deliver:x"));
        assert_ne!(lock_key("a", "deliver:x"), lock_key("a", "deliver:y"));
        assert_eq!(lock_key("a", "deadlines"), lock_key("a", "deadlines"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(lock_key("ab", "c"), lock_key("a", "bc"));
    }

    #[tokio::test]
    async fn one_holder_at_a_time_on_postgresql_and_always_on_sqlite() {
        let sqlite = crate::testing::sqlite().await.unwrap();
        let a = sqlite.try_lease("deadlines").await.unwrap();
        let b = sqlite.try_lease("deadlines").await.unwrap();
        assert!(a.is_some() && b.is_some(), "SQLite: one process owns the file");
        let Some(url) = crate::testing::postgres_url().await else {
            return;
        };
        // Two stores on one schema stand for two instances.
        let one = Store::open(&url).await.unwrap();
        let two = Store::open(&url).await.unwrap();
        let mut held = one.try_lease("deliver:cn-mps").await.unwrap().expect("first taker");
        assert!(two.try_lease("deliver:cn-mps").await.unwrap().is_none());
        assert!(
            one.try_lease("deliver:cn-mps").await.unwrap().is_none(),
            "not re-entrant across leases"
        );
        assert!(
            two.try_lease("deliver:de-bka").await.unwrap().is_some(),
            "another link is free"
        );
        assert!(held.alive().await);
        held.release().await;
        let again = two.try_lease("deliver:cn-mps").await.unwrap();
        assert!(again.is_some(), "released: the other instance takes over");
        // A holder whose connection dies (dropped without unlocking) gives the role up.
        drop(again);
        let t0 = std::time::Instant::now();
        loop {
            if one.try_lease("deliver:cn-mps").await.unwrap().is_some() {
                break;
            }
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "lock not released with its connection"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
