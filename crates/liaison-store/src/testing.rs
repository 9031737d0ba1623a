//! Test support: a fresh store on each backend.
//!
//! SQLite: a new file under the system temp directory. PostgreSQL: a new schema in the
//! database named by `LIAISON_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! selected through `search_path`, so tests never see each other's rows.
//! When PostgreSQL does not answer, the PostgreSQL half is skipped with a loud message,
//! unless `LIAISON_REQUIRE_POSTGRES=1` (set by `.ci/run` once it has checked the server), in
//! which case it fails.

use crate::{Result, Store, StoreError};
use sqlx::Connection;

/// Base URL of the PostgreSQL test database.
pub fn postgres_base_url() -> String {
    std::env::var("LIAISON_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The path of a SQLite file not yet created, in a new temporary directory (for tests that
/// close and reopen a store).
pub fn sqlite_path() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("liaison-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::Corrupt(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir.join("liaison.db"))
}

/// A fresh SQLite store in a new temporary file.
pub async fn sqlite() -> Result<Store> {
    Store::open_sqlite(&sqlite_path()?).await
}

/// A URL for a fresh, empty PostgreSQL schema, or `None` (after a loud message) if PostgreSQL
/// is not reachable and not required.
pub async fn postgres_url() -> Option<String> {
    sqlx::any::install_default_drivers();
    let base = postgres_base_url();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let made = async {
        let mut conn = sqlx::AnyConnection::connect(&base).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    match made {
        Ok(()) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        }
        Err(e) => {
            if std::env::var("LIAISON_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL is required (LIAISON_REQUIRE_POSTGRES=1) but {base} failed: {e}");
            }
            eprintln!(
                "\n*** SKIPPING PostgreSQL half of this test: {base} is not reachable ({e}). ***\n*** Set LIAISON_TEST_POSTGRES_URL or start PostgreSQL to run it. ***\n"
            );
            None
        }
    }
}

/// A fresh PostgreSQL store (see [`postgres_url`]).
pub async fn postgres() -> Option<Store> {
    let url = postgres_url().await?;
    match Store::open(&url).await {
        Ok(s) => Some(s),
        Err(e) => panic!("PostgreSQL reachable but opening the store failed: {e}"),
    }
}

/// Every backend available here: SQLite always, PostgreSQL when reachable.
pub async fn all_backends() -> Vec<Store> {
    let mut v = Vec::new();
    match sqlite().await {
        Ok(s) => v.push(s),
        Err(e) => panic!("cannot open a SQLite test store: {e}"),
    }
    if let Some(p) = postgres().await {
        v.push(p);
    }
    v
}
