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

/// Bulk seeding shared by `list-bench` and `queue-bench`: synthetic requests written with
/// multi-row `INSERT`s through a raw one-connection pool (no history or audit rows, which
/// listings do not read).
pub mod seed {
    use super::Db;
    use anyhow::Result;
    use jiff::Timestamp;
    use liaison_core::lifecycle::State;
    use liaison_core::request::{RequestKind, Urgency};
    use liaison_core::sla::{DeadlineKind, running_deadline};
    use liaison_core::{AgencyId, RequestId};
    use rand::Rng;
    use rand::rngs::StdRng;
    use sqlx::any::AnyPoolOptions;
    use sqlx::{AnyConnection, AnyPool, Executor};

    /// A one-connection pool for the seeding SQL (SQLite pragmas as the store sets them).
    pub async fn raw_pool(db: &Db) -> Result<AnyPool> {
        sqlx::any::install_default_drivers();
        let sqlite = db.url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&db.url)
            .await?;
        Ok(pool)
    }

    pub struct SeedRow {
        pub id: RequestId,
        pub kind: RequestKind,
        pub urgency: Urgency,
        pub state: State,
        pub requesting: AgencyId,
        pub requested: AgencyId,
        pub case_reference: String,
        pub body: String,
        pub version: i64,
        pub created_at: i64,
        pub updated_at: i64,
        pub submitted_at: Option<i64>,
        pub acknowledged_at: Option<i64>,
        pub answered_at: Option<i64>,
        pub ack_due: Option<i64>,
        pub answer_due: Option<i64>,
        pub preserved_until: Option<i64>,
        pub next_due: Option<i64>,
    }

    pub const DAY: i64 = 86_400_000;

    /// One synthetic request: 60 % sent by the node's own agency to one of 30 foreign agencies,
    /// 40 % received from them; rows older than 90 days are mostly finished, recent ones spread
    /// over the lifecycle (with a realistic backlog of overdue ones).
    pub fn make_row(
        rng: &mut StdRng,
        i: u64,
        rows: u64,
        now: i64,
        own: AgencyId,
        foreign: &[AgencyId],
    ) -> Result<SeedRow> {
        let span = 730 * DAY;
        let created_at =
            now - span + (i as i128 * span as i128 / rows.max(1) as i128) as i64 + rng.random_range(0..1000);
        let age = now - created_at;
        let other = foreign[rng.random_range(0..foreign.len())];
        let outgoing = rng.random_bool(0.6);
        let (requesting, requested) = if outgoing { (own, other) } else { (other, own) };
        let kind = RequestKind::ALL[rng.random_range(0..RequestKind::ALL.len())];
        let urgency = match rng.random_range(0..100) {
            0..5 => Urgency::Emergency,
            5..20 => Urgency::Urgent,
            _ => Urgency::Routine,
        };
        let roll = rng.random_range(0..100);
        let mut state = if age > 90 * DAY {
            match roll {
                0..70 => State::Closed,
                70..82 => State::Answered,
                82..88 => State::Refused,
                88..93 => State::Withdrawn,
                93..96 => State::Expired,
                96..98 => State::Released,
                _ => State::Executing,
            }
        } else {
            match roll {
                0..8 => State::Draft,
                8..18 => State::Received,
                18..26 => State::Acknowledged,
                26..34 => State::InReview,
                34..38 => State::NeedsInformation,
                38..46 => State::Accepted,
                46..56 => State::Executing,
                56..62 => State::Preserved,
                62..75 => State::Answered,
                _ => State::Closed,
            }
        };
        if state == State::Draft && !outgoing {
            state = State::Received;
        }
        let mut d = crate::draft(kind, requesting, requested, i);
        d.urgency = urgency;
        let body = serde_json::to_string(&d)?;
        let submitted_at = (state != State::Draft).then_some(created_at + rng.random_range(0..DAY));
        let ack_due = submitted_at.map(|s| s + 7 * DAY);
        let answer_due = submitted_at.map(|s| s + 60 * DAY);
        let acknowledged_at = match state {
            State::Draft | State::Submitted | State::Received => None,
            _ => submitted_at.map(|s| s + rng.random_range(0..5 * DAY)),
        };
        let answered_at = matches!(state, State::Answered | State::AnsweredPartial | State::Closed)
            .then(|| submitted_at.map(|s| s + rng.random_range(5 * DAY..50 * DAY)))
            .flatten();
        let preserved_until = matches!(
            state,
            State::Preserved | State::Extended | State::Released | State::Converted
        )
        .then(|| submitted_at.map(|s| s + 90 * DAY))
        .flatten();
        let next_due = match running_deadline(state) {
            Some(DeadlineKind::Acknowledge) => ack_due,
            Some(DeadlineKind::Answer) => answer_due,
            Some(DeadlineKind::PreservationExpiry) => preserved_until,
            Some(DeadlineKind::Information) => None,
            None => None,
        };
        let updated_at = (created_at + rng.random_range(0..(age.clamp(1, 30 * DAY)))).min(now);
        Ok(SeedRow {
            id: RequestId::at(Timestamp::from_millisecond(created_at)?, rng.random()),
            kind,
            urgency,
            state,
            requesting,
            requested,
            case_reference: d.case_reference.clone(),
            body,
            version: if state == State::Draft {
                1
            } else {
                rng.random_range(2..9)
            },
            created_at,
            updated_at,
            submitted_at,
            acknowledged_at,
            answered_at,
            ack_due,
            answer_due,
            preserved_until,
            next_due,
        })
    }

    pub const COLS: &str = "id, kind, urgency, state, requesting_agency, requested_agency, case_reference, body, version, created_at, updated_at, \
                        submitted_at, acknowledged_at, answered_at, ack_due, answer_due, preserved_until, next_due";

    /// Inserts `rows` with one multi-row `INSERT` (the 18 columns of [`COLS`]); with `refs`
    /// (one per row) also each row's reference (`ref_prefix`, `ref_seq`).
    /// `($1,$2,…),($n+1,…)`: the placeholders of a multi-row `VALUES` of `rows` rows of
    /// `ncols` columns each.
    pub fn value_rows(rows: usize, ncols: usize) -> String {
        let mut sql = String::new();
        for r in 0..rows {
            if r > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..ncols {
                if c > 0 {
                    sql.push(',');
                }
                sql += &format!("${}", r * ncols + c + 1);
            }
            sql.push(')');
        }
        sql
    }

    pub async fn insert_rows(conn: &mut AnyConnection, rows: &[SeedRow], refs: Option<&[(String, i64)]>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ncols = if refs.is_some() { 20 } else { 18 };
        let mut sql = match refs {
            Some(_) => format!("INSERT INTO requests ({COLS}, ref_prefix, ref_seq) VALUES "),
            None => format!("INSERT INTO requests ({COLS}) VALUES "),
        };
        sql += &value_rows(rows.len(), ncols);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (k, r) in rows.iter().enumerate() {
            q = q
                .bind(r.id.to_string())
                .bind(r.kind.as_str())
                .bind(r.urgency.as_str())
                .bind(r.state.as_str())
                .bind(r.requesting.to_string())
                .bind(r.requested.to_string())
                .bind(r.case_reference.clone())
                .bind(r.body.clone())
                .bind(r.version)
                .bind(r.created_at)
                .bind(r.updated_at)
                .bind(r.submitted_at)
                .bind(r.acknowledged_at)
                .bind(r.answered_at)
                .bind(r.ack_due)
                .bind(r.answer_due)
                .bind(r.preserved_until)
                .bind(r.next_due);
            if let Some(refs) = refs {
                let (p, n) = refs.get(k).cloned().unwrap_or_default();
                q = q.bind(p).bind(n);
            }
        }
        q.execute(&mut *conn).await?;
        Ok(())
    }

    /// Jurisdiction codes of the seeded agencies.
    pub const JURISDICTIONS: &[&str] = &["US", "CN", "GB", "DE", "FR", "JP", "KR", "SG", "AU", "BR", "IN"];
    /// Foreign agencies (`AG00`..`AG29`) beside the node's own (`OWN`).
    pub const FOREIGN: usize = 30;

    /// Creates the jurisdictions, the node's agency `OWN` (US) and the foreign agencies `AG00`..;
    /// returns their ids.
    pub async fn agencies(store: &liaison_store::Store, now: Timestamp) -> Result<(AgencyId, Vec<AgencyId>)> {
        super::jurisdictions(store, JURISDICTIONS).await?;
        let own = super::agency("OWN", "US", "America/New_York")?;
        store.insert_agency(&own, None, "bench", now).await?;
        let mut foreign = Vec::new();
        for k in 0..FOREIGN {
            let cc = JURISDICTIONS[1 + k % (JURISDICTIONS.len() - 1)];
            let a = super::agency(&format!("AG{k:02}"), cc, "UTC")?;
            store.insert_agency(&a, None, "bench", now).await?;
            foreign.push(a.id);
        }
        Ok((own.id, foreign))
    }
}
