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
use liaison_bench::{Db, fmt_ms, seed, summarize};
use liaison_core::lifecycle::State;
use liaison_core::request::RequestKind;
use liaison_core::{AgencyId, RequestId};
use liaison_store::{ListingArg as Arg, RequestFilter, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{AnyPool, Row};
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

async fn run(args: &Args, db: &Db) -> Result<()> {
    let store = Store::open(&db.url)
        .await
        .with_context(|| format!("opening {}", db.backend))?;
    let pool = seed::raw_pool(db).await?;
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

async fn seed(args: &Args, db: &Db, store: &Store, pool: &AnyPool) -> Result<World> {
    let t0 = Instant::now();
    let now_ts = Timestamp::now();
    let (own, foreign) = seed::agencies(store, now_ts).await?;
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
                .map(|k| seed::make_row(&mut rng, i + k, args.rows, now, own, &foreign))
                .collect::<Result<Vec<_>>>()?;
            seed::insert_rows(&mut tx, &rows, None).await?;
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
    Ok(World { own, foreign, cursors })
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
