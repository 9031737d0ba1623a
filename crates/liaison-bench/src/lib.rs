//! Shared helpers for the Liaison benchmarks (`api-load`, `list-bench`, `experience-bench`):
//! opening a store on either backend, building fixture agencies/users/tokens and a node, and
//! latency statistics.

use anyhow::{Context, Result, anyhow};
use liaison_core::directory::Agency;
use liaison_core::jurisdiction::Jurisdiction;
use liaison_core::request::{RequestDraft, RequestKind};
use liaison_core::{AgencyId, CountryCode, Role};
use liaison_store::Store;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the benchmark database lives.
pub struct Db {
    /// The URL the store was opened with.
    pub url: String,
    /// Human-readable backend name for reports.
    pub backend: &'static str,
    /// A temporary directory to remove at the end (SQLite default).
    pub temp_dir: Option<PathBuf>,
}

impl Db {
    /// Resolves `--database-url` / `--postgres` into a URL: a fresh PostgreSQL schema for
    /// `--postgres`, a new SQLite file under the system temp directory by default.
    pub async fn resolve(database_url: Option<String>, postgres: bool) -> Result<Db> {
        if let Some(url) = database_url {
            let backend = if url.starts_with("sqlite:") {
                "SQLite"
            } else {
                "PostgreSQL"
            };
            return Ok(Db {
                url,
                backend,
                temp_dir: None,
            });
        }
        if postgres {
            let url = liaison_store::testing::postgres_url().await.ok_or_else(|| {
                anyhow!(
                    "PostgreSQL is not reachable at {}",
                    liaison_store::testing::postgres_base_url()
                )
            })?;
            return Ok(Db {
                url,
                backend: "PostgreSQL",
                temp_dir: None,
            });
        }
        let dir = std::env::temp_dir().join(format!("liaison-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("liaison.db").display());
        Ok(Db {
            url,
            backend: "SQLite",
            temp_dir: Some(dir),
        })
    }

    /// Removes the temporary SQLite directory, if any (unless `keep`).
    pub fn cleanup(&self, keep: bool) {
        if let Some(d) = &self.temp_dir {
            if keep {
                eprintln!("kept database in {}", d.display());
            } else if let Err(e) = std::fs::remove_dir_all(d) {
                eprintln!("warning: could not remove {}: {e}", d.display());
            }
        }
    }
}

/// The shipped rule packs (`<workspace>/rules`), or `dir` if given.
pub fn rules_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))
}

/// An agency for fixtures (the service's fixture, shared with the demo and the tests).
pub fn agency(code: &str, cc: &str, tz: &str) -> Result<Agency> {
    Ok(liaison_service::fixtures::agency(code, cc, tz)?)
}

/// Inserts jurisdictions by code (names are placeholders).
pub async fn jurisdictions(store: &Store, codes: &[&str]) -> Result<()> {
    for c in codes {
        store
            .upsert_jurisdiction(&Jurisdiction {
                code: CountryCode::parse(c).map_err(|e| anyhow!("country code {c}: {e}"))?,
                name_en: (*c).into(),
                name_zh: (*c).into(),
            })
            .await?;
    }
    Ok(())
}

/// A user and its bearer token.
#[derive(Clone)]
pub struct Login {
    pub agency: String,
    pub role: Role,
    pub token: String,
}

/// A draft like the one the API tests use: FBI asks CN-MPS for subscriber information.
pub fn draft(kind: RequestKind, requesting: AgencyId, requested: AgencyId, n: u64) -> RequestDraft {
    liaison_service::fixtures::draft(kind, requesting, requested, &format!("BENCH-2026-{n:07}"))
}

/// A node on `db` with the service's two-agency fixture (FBI and CN-MPS, a user per role in
/// each, a token per user) and the rule packs of `rules` (default: the workspace's `rules/`).
pub struct BenchNode {
    pub store: Store,
    pub node: liaison_service::Node,
    pub fbi: Agency,
    pub mps: Agency,
    pub logins: Vec<Login>,
}

/// Opens the store, creates the fixture and loads the rule packs.
pub async fn bench_node(db: &Db, rules: Option<PathBuf>) -> Result<BenchNode> {
    let store = Store::open(&db.url)
        .await
        .with_context(|| format!("opening {}", db.backend))?;
    let legal = liaison_service::legal::Legal::load(&rules_dir(rules)).context("loading rule packs")?;
    let node = liaison_service::Node::new(store.clone(), Default::default(), legal);
    let f = liaison_service::fixtures::TwoAgencies::on(node.clone()).await?;
    let logins = f
        .tokens
        .iter()
        .map(|((agency, role), token)| Login {
            agency: agency.clone(),
            role: *role,
            token: token.clone(),
        })
        .collect();
    Ok(BenchNode {
        store,
        node,
        fbi: f.fbi,
        mps: f.mps,
        logins,
    })
}

/// Latency summary of one series.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// Nearest-rank percentiles over `samples` (sorted in place).
pub fn summarize(samples: &mut [Duration]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    samples.sort_unstable();
    let n = samples.len();
    let rank = |p: f64| {
        let r = ((p / 100.0) * n as f64).ceil() as usize;
        samples[r.clamp(1, n) - 1]
    };
    let total: Duration = samples.iter().sum();
    Summary {
        count: n,
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
        max: samples[n - 1],
        mean: total / n as u32,
    }
}

/// Milliseconds with two decimals.
pub fn fmt_ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The 1-minute load average, from /proc/loadavg (for the report header).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
