//! Listing benchmark: seeds N requests (default 1,000,000) with bulk SQL, then measures the
//! typical listings through `Store::requests`, scoped to the node's own agency as the API does.
//!
//! ```sh
//! cargo run --release -p liaison-bench --bin list-bench -- --rows 1000000
//! cargo run --release -p liaison-bench --bin list-bench -- --postgres --explain
//! ```

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use jiff::{SignedDuration, Timestamp};
use liaison_bench::{Db, fmt_ms, summarize};
use liaison_core::lifecycle::State;
use liaison_core::request::{RequestKind, Urgency};
use liaison_core::sla::{DeadlineKind, running_deadline};
use liaison_core::{AgencyId, RequestId};
use liaison_store::{ListingArg as Arg, RequestFilter, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Liaison request listing benchmark (Store::requests over N stored requests)")]
struct Args {
    /// Requests to store before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Timed calls per query and round.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Measurement rounds (each round runs every query `iterations` times).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Database URL (`sqlite://PATH` or `postgres://...`); default: a new SQLite file in a temp dir.
    /// An existing database that already holds >= rows requests seeded by this tool is reused.
    #[arg(long)]
    database_url: Option<String>,
    /// Use a fresh schema in the local PostgreSQL.
    #[arg(long)]
    postgres: bool,
    /// Print the query plans (SQLite EXPLAIN QUERY PLAN, PostgreSQL EXPLAIN ANALYZE).
    #[arg(long)]
    explain: bool,
    /// Also time candidate rewrites of the slow listings (index proposals are tried by hand).
    #[arg(long)]
    experiments: bool,
    /// Keep the temporary SQLite database (to reuse it with --database-url).
    #[arg(long)]
    keep: bool,
    /// Rows per INSERT statement while seeding.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Rows per seeding transaction.
    #[arg(long, default_value_t = 50_000)]
    tx_rows: usize,
    /// Time full requests (`Store::requests`, the API's `view=full`) instead of the summaries
    /// the API lists by default (`Store::request_summaries`).
    #[arg(long)]
    full: bool,
}

const FOREIGN: usize = 30;
const JURISDICTIONS: &[&str] = &["US", "CN", "GB", "DE", "FR", "JP", "KR", "SG", "AU", "BR", "IN"];
const PAGE: u32 = 50;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let db = Db::resolve(args.database_url.clone(), args.postgres).await?;
    eprintln!("database: {}", db.url);
    let result = run(&args, &db).await;
    db.cleanup(args.keep);
    result
}

struct World {
    own: AgencyId,
    foreign: Vec<AgencyId>,
    /// Every 1000th id (newest first), for cursor pages.
    cursors: Vec<RequestId>,
}

async fn raw_pool(db: &Db) -> Result<AnyPool> {
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

async fn run(args: &Args, db: &Db) -> Result<()> {
    let store = Store::open(&db.url)
        .await
        .with_context(|| format!("opening {}", db.backend))?;
    let pool = raw_pool(db).await?;
    let world = match existing(&pool, args.rows).await? {
        Some(w) => {
            eprintln!("reusing {} seeded requests", store.count_requests().await?);
            w
        }
        None => seed(args, db, &store, &pool).await?,
    };
    let stored = store.count_requests().await?;
    let now = Timestamp::now();
    let pending = vec![
        State::Submitted,
        State::Received,
        State::Acknowledged,
        State::InReview,
        State::NeedsInformation,
        State::Accepted,
        State::Executing,
    ];
    let base = RequestFilter {
        visible_to: Some(world.own),
        limit: PAGE,
        ..Default::default()
    };
    let mid = world.cursors.get(world.cursors.len() / 2).copied();
    let queries: Vec<(&str, RequestFilter)> = vec![
        ("newest page (no filter)", base.clone()),
        (
            "state=received",
            RequestFilter {
                states: vec![State::Received],
                ..base.clone()
            },
        ),
        (
            "state=draft",
            RequestFilter {
                states: vec![State::Draft],
                ..base.clone()
            },
        ),
        (
            "state in 7 pending states",
            RequestFilter {
                states: pending.clone(),
                ..base.clone()
            },
        ),
        (
            "kind=stored_content",
            RequestFilter {
                kind: Some(RequestKind::StoredContent),
                ..base.clone()
            },
        ),
        (
            "pair own->foreign#7",
            RequestFilter {
                requesting: Some(world.own),
                requested: Some(world.foreign[7]),
                ..base.clone()
            },
        ),
        (
            "incoming (requested=own)",
            RequestFilter {
                requested: Some(world.own),
                ..base.clone()
            },
        ),
        (
            "overdue",
            RequestFilter {
                overdue_at: Some(now),
                ..base.clone()
            },
        ),
        (
            "overdue + state=received",
            RequestFilter {
                overdue_at: Some(now),
                states: vec![State::Received],
                ..base.clone()
            },
        ),
        (
            "updated_since 24 h",
            RequestFilter {
                updated_since: Some(now - SignedDuration::from_hours(24)),
                ..base.clone()
            },
        ),
        (
            "updated_since 30 d",
            RequestFilter {
                updated_since: Some(now - SignedDuration::from_hours(24 * 30)),
                ..base.clone()
            },
        ),
        (
            "deep cursor (middle)",
            RequestFilter {
                before: mid,
                ..base.clone()
            },
        ),
        (
            "state=closed, deep cursor",
            RequestFilter {
                states: vec![State::Closed],
                before: mid,
                ..base.clone()
            },
        ),
    ];

    if args.explain {
        for (name, f) in &queries {
            explain(&store, &pool, db, name, f).await?;
        }
    }

    if args.experiments {
        experiments(&store, &pool, db, &world, now).await?;
    }

    for round in 1..=args.rounds {
        println!();
        println!(
            "{} | {stored} requests | round {round}/{} | {} calls per query, page {PAGE} | load average {}",
            db.backend,
            args.rounds,
            args.iterations,
            liaison_bench::load_average()
        );
        println!(
            "| {:<30} | {:>6} | {:>8} | {:>8} | {:>8} | {:>8} |",
            "query", "rows", "p50 ms", "p99 ms", "max ms", "mean ms"
        );
        println!(
            "|{:-<32}|{:-<8}|{:-<10}|{:-<10}|{:-<10}|{:-<10}|",
            "", "", "", "", "", ""
        );
        let mut rng = StdRng::seed_from_u64(round as u64);
        for (name, f) in &queries {
            let mut samples = Vec::with_capacity(args.iterations);
            let mut rows = 0;
            for i in 0..args.iterations + 3 {
                let mut f = f.clone();
                // Deep cursor pages: a different cursor each call, around the middle.
                if f.before.is_some() && !world.cursors.is_empty() {
                    let n = world.cursors.len();
                    f.before = Some(world.cursors[rng.random_range(n / 4..(3 * n / 4).max(n / 4 + 1))]);
                }
                let t0 = Instant::now();
                rows = if args.full {
                    store.requests(&f, now).await?.items.len()
                } else {
                    store.request_summaries(&f, now).await?.items.len()
                };
                let took = t0.elapsed();
                if i >= 3 {
                    samples.push(took);
                }
            }
            let s = summarize(&mut samples);
            println!(
                "| {:<30} | {:>6} | {:>8} | {:>8} | {:>8} | {:>8} |",
                name,
                rows,
                fmt_ms(s.p50),
                fmt_ms(s.p99),
                fmt_ms(s.max),
                fmt_ms(s.mean)
            );
        }
    }
    pool.close().await;
    store.close().await;
    Ok(())
}

/// A database already seeded by this tool with at least `rows` requests.
async fn existing(pool: &AnyPool, rows: u64) -> Result<Option<World>> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests")
        .fetch_one(pool)
        .await?;
    if n <= 0 || (n as u64) < rows {
        return Ok(None);
    }
    let own: Option<String> = sqlx::query_scalar("SELECT id FROM agencies WHERE code = 'OWN'")
        .fetch_optional(pool)
        .await?;
    let Some(own) = own else { return Ok(None) };
    let foreign: Vec<String> = sqlx::query_scalar("SELECT id FROM agencies WHERE code LIKE 'AG%' ORDER BY code")
        .fetch_all(pool)
        .await?;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM requests ORDER BY id DESC")
        .fetch_all(pool)
        .await?;
    let cursors = ids
        .iter()
        .step_by(1000)
        .map(|s| s.parse().map_err(|e| anyhow!("id {s}: {e}")))
        .collect::<Result<Vec<RequestId>>>()?;
    Ok(Some(World {
        own: own.parse().map_err(|e| anyhow!("agency {own}: {e}"))?,
        foreign: foreign
            .iter()
            .map(|s| s.parse().map_err(|e| anyhow!("agency {s}: {e}")))
            .collect::<Result<_>>()?,
        cursors,
    }))
}

struct SeedRow {
    id: RequestId,
    kind: RequestKind,
    urgency: Urgency,
    state: State,
    requesting: AgencyId,
    requested: AgencyId,
    case_reference: String,
    body: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    submitted_at: Option<i64>,
    acknowledged_at: Option<i64>,
    answered_at: Option<i64>,
    ack_due: Option<i64>,
    answer_due: Option<i64>,
    preserved_until: Option<i64>,
    next_due: Option<i64>,
}

const DAY: i64 = 86_400_000;

/// One synthetic request: 60 % sent by the node's own agency to one of 30 foreign agencies,
/// 40 % received from them; rows older than 90 days are mostly finished, recent ones spread
/// over the lifecycle (with a realistic backlog of overdue ones).
fn make_row(rng: &mut StdRng, i: u64, rows: u64, now: i64, own: AgencyId, foreign: &[AgencyId]) -> Result<SeedRow> {
    let span = 730 * DAY;
    let created_at = now - span + (i as i128 * span as i128 / rows.max(1) as i128) as i64 + rng.random_range(0..1000);
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
    let mut d = liaison_bench::draft(kind, requesting, requested, i);
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

const COLS: &str = "id, kind, urgency, state, requesting_agency, requested_agency, case_reference, body, version, created_at, updated_at, \
                    submitted_at, acknowledged_at, answered_at, ack_due, answer_due, preserved_until, next_due";

async fn seed(args: &Args, db: &Db, store: &Store, pool: &AnyPool) -> Result<World> {
    let t0 = Instant::now();
    liaison_bench::jurisdictions(store, JURISDICTIONS).await?;
    let now_ts = Timestamp::now();
    let own = liaison_bench::agency("OWN", "US", "America/New_York")?;
    store.insert_agency(&own, None, "bench", now_ts).await?;
    let mut foreign = Vec::new();
    for k in 0..FOREIGN {
        let cc = JURISDICTIONS[1 + k % (JURISDICTIONS.len() - 1)];
        let a = liaison_bench::agency(&format!("AG{k:02}"), cc, "UTC")?;
        store.insert_agency(&a, None, "bench", now_ts).await?;
        foreign.push(a.id);
    }
    let now = now_ts.as_millisecond();
    let mut rng = StdRng::seed_from_u64(42);
    let batch = args.batch.clamp(1, 1000);
    let tx_rows = args.tx_rows.max(batch);
    let mut ids: Vec<RequestId> = Vec::new();
    let mut i = 0u64;
    while i < args.rows {
        let mut tx = pool.begin().await?;
        let tx_end = (i + tx_rows as u64).min(args.rows);
        while i < tx_end {
            let n = (tx_end - i).min(batch as u64);
            let rows = (0..n)
                .map(|k| make_row(&mut rng, i + k, args.rows, now, own.id, &foreign))
                .collect::<Result<Vec<_>>>()?;
            let mut sql = format!("INSERT INTO requests ({COLS}) VALUES ");
            for r in 0..rows.len() {
                if r > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for c in 0..18 {
                    if c > 0 {
                        sql.push(',');
                    }
                    sql += &format!("${}", r * 18 + c + 1);
                }
                sql.push(')');
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in &rows {
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
            }
            q.execute(&mut *tx).await?;
            ids.extend(rows.iter().map(|r| r.id));
            i += n;
        }
        tx.commit().await?;
        eprint!(
            "\rseeded {i}/{} requests ({:.0} s)",
            args.rows,
            t0.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    if !db.url.starts_with("sqlite:") {
        sqlx::query("ANALYZE requests").execute(pool).await?;
    } else {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    eprintln!("seeding + ANALYZE took {:.1} s", t0.elapsed().as_secs_f64());
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let cursors = ids.iter().step_by(1000).copied().collect();
    Ok(World {
        own: own.id,
        foreign,
        cursors,
    })
}

async fn explain(store: &Store, pool: &AnyPool, db: &Db, name: &str, f: &RequestFilter) -> Result<()> {
    let pg = !db.url.starts_with("sqlite:");
    // The store's own query for this listing, as it runs it.
    let (sql, args) = store.listing_sql(f).await?;
    let sql = if pg {
        format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")
    } else {
        format!("EXPLAIN QUERY PLAN {sql}")
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in args {
        q = match a {
            Arg::S(s) => q.bind(s),
            Arg::I(i) => q.bind(i),
        };
    }
    let rows = q.fetch_all(pool).await?;
    println!("-- {name}");
    for r in rows {
        let line: String = if pg { r.try_get(0)? } else { r.try_get(3)? };
        println!("   {line}");
    }
    Ok(())
}

/// Times the store's SQL for `updated_since` windows with the `updated_at` condition written
/// both ways: `updated_at` (SQLite may choose the `requests_updated` index) and `+updated_at`
/// (it walks the primary key newest first). The store picks one by the window's size.
async fn experiments(store: &Store, pool: &AnyPool, db: &Db, world: &World, now: Timestamp) -> Result<()> {
    let base = RequestFilter {
        visible_to: Some(world.own),
        limit: PAGE,
        ..Default::default()
    };
    for (label, hours) in [("30 d", 24 * 30), ("24 h", 24), ("none (future)", -1)] {
        let f = RequestFilter {
            updated_since: Some(now - SignedDuration::from_hours(hours)),
            ..base.clone()
        };
        for plus in [false, true] {
            let (sql, args) = store.listing_sql(&f).await?;
            let sql = if plus {
                sql.replace("AND updated_at >=", "AND +updated_at >=")
            } else {
                sql.replace("AND +updated_at >=", "AND updated_at >=")
            };
            let plan_sql = if db.url.starts_with("sqlite:") {
                format!("EXPLAIN QUERY PLAN {sql}")
            } else {
                format!("EXPLAIN {sql}")
            };
            let mut plan = Vec::new();
            for r in bind(sqlx::query(sqlx::AssertSqlSafe(plan_sql)), &args)
                .fetch_all(pool)
                .await?
            {
                let line: String = if db.url.starts_with("sqlite:") {
                    r.try_get(3)?
                } else {
                    r.try_get(0)?
                };
                plan.push(line.trim().to_string());
            }
            let mut samples = Vec::new();
            let mut n = 0;
            for _ in 0..20 {
                let t0 = Instant::now();
                n = bind(sqlx::query(sqlx::AssertSqlSafe(sql.clone())), &args)
                    .fetch_all(pool)
                    .await?
                    .len();
                samples.push(t0.elapsed());
            }
            let s = summarize(&mut samples);
            println!(
                "experiment updated_since {label} {}: rows {n} p50 {} ms p99 {} ms | {}",
                if plus { "+updated_at" } else { "updated_at" },
                fmt_ms(s.p50),
                fmt_ms(s.p99),
                plan.join(" / ")
            );
        }
    }
    Ok(())
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: &[Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Arg::S(s) => q.bind(s.clone()),
            Arg::I(i) => q.bind(*i),
        };
    }
    q
}
