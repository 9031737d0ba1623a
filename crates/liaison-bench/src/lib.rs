//! Shared helpers for the Liaison benchmarks (`api-load`, `list-bench`, `experience-bench`):
//! opening a store on either backend, building fixture agencies/users/tokens and a node, and
//! latency statistics.

use anyhow::{Context, Result, anyhow};
use jiff::{SignedDuration, Timestamp};
use liaison_core::directory::{Agency, AgencyKind};
use liaison_core::jurisdiction::Jurisdiction;
use liaison_core::request::{RequestDraft, RequestKind, Urgency};
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

/// An agency for fixtures.
pub fn agency(code: &str, cc: &str, tz: &str) -> Result<Agency> {
    Ok(Agency {
        id: AgencyId::new(),
        code: code.into(),
        name_en: code.into(),
        name_native: code.into(),
        jurisdiction: CountryCode::parse(cc).map_err(|e| anyhow!("country code {cc}: {e}"))?,
        kind: AgencyKind::Police,
        time_zone: tz.into(),
    })
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
    RequestDraft {
        kind,
        urgency: Urgency::Routine,
        requesting_agency: requesting,
        requested_agency: requested,
        case_reference: format!("BENCH-2026-{n:07}"),
        offences: vec!["BC-02".into()],
        summary: "Intrusion into a hospital network from servers in the requested state".into(),
        targets: vec![],
        data_categories: vec![],
        legal_basis: "18 USC 1030".into(),
        related: vec![],
        attachments: vec![],
        amount: None,
        conduct: vec![],
    }
}

/// Two agencies (FBI in US, CN-MPS in CN), one user per role in each, and a token per user.
pub async fn api_fixture(store: &Store) -> Result<(Agency, Agency, Vec<Login>)> {
    let now = Timestamp::now();
    jurisdictions(store, &["US", "CN"]).await?;
    let fbi = agency("FBI", "US", "America/New_York")?;
    let mps = agency("CN-MPS", "CN", "Asia/Shanghai")?;
    store.insert_agency(&fbi, None, "bench", now).await?;
    store.insert_agency(&mps, None, "bench", now).await?;
    let mut logins = Vec::new();
    for a in [&fbi, &mps] {
        for &role in Role::ALL {
            let name = format!("{}.{}", a.code.to_lowercase(), role);
            let u = store.create_user(&name, &name, a.id, role, "bench", now).await?;
            let (secret, _) = store
                .create_token(u.id, "bench", now + SignedDuration::from_hours(24), "bench", now)
                .await?;
            logins.push(Login {
                agency: a.code.clone(),
                role,
                token: secret,
            });
        }
    }
    Ok((fbi, mps, logins))
}

/// A node on `db` with the [`api_fixture`] agencies and logins and the rule packs of `rules`
/// (default: the workspace's `rules/`).
pub struct BenchNode {
    pub store: Store,
    pub node: liaison_server::service::Node,
    pub fbi: Agency,
    pub mps: Agency,
    pub logins: Vec<Login>,
}

/// Opens the store, creates the fixture and loads the rule packs.
pub async fn bench_node(db: &Db, rules: Option<PathBuf>) -> Result<BenchNode> {
    let store = Store::open(&db.url)
        .await
        .with_context(|| format!("opening {}", db.backend))?;
    let (fbi, mps, logins) = api_fixture(&store).await?;
    let legal = liaison_server::legal::Legal::load(&rules_dir(rules)).context("loading rule packs")?;
    let node = liaison_server::service::Node::new(store.clone(), Default::default(), legal);
    Ok(BenchNode {
        store,
        node,
        fbi,
        mps,
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
