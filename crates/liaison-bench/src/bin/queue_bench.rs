//! Work-queue benchmark (issue #17): seeds N requests (default 1,000,000) with bulk SQL as
//! `list-bench` does, plus references, owners, units, watchers and notifications for the
//! node's own agency, then times every queue (first page, second page, both sorts), the six
//! queue counts and each role's home page, built exactly as `liaison_service::work` builds
//! them (`queue_filter`, `queue_counts`, `home`), through `liaison_store::Store`.
//!
//! ```sh
//! cargo run --release -p liaison-bench --bin queue-bench -- --keep
//! cargo run --release -p liaison-bench --bin queue-bench -- --postgres --explain
//! ```

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use jiff::Timestamp;
use liaison_bench::{Db, fmt_ms, seed};
use liaison_core::lifecycle::{Role, State};
use liaison_core::record::Principal;
use liaison_core::record::{QueueCounts, Sort, parse_due_cursor};
use liaison_core::{AgencyId, NotificationId, RequestId, UnitId, UserId};
use liaison_service::Node;
use liaison_service::work::{self, COUNTED, Queue};
use liaison_store::{ListingArg as Arg, RequestFilter, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{AnyConnection, AnyPool, Row};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Liaison work-queue benchmark (queues, counts and home pages over N stored requests)")]
struct Args {
    /// Requests to store before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Timed calls per query and round (fewer when a query exceeds --budget).
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Measurement rounds (each round runs every query `iterations` times).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds one query may take per round; a slower query stops early (after --min-calls).
    #[arg(long, default_value_t = 20)]
    budget: u64,
    /// Timed calls per query and round even past --budget.
    #[arg(long, default_value_t = 20)]
    min_calls: usize,
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
    /// Only the queries whose name contains this text (timing and plans).
    #[arg(long)]
    only: Option<String>,
    /// Seed (or open) the database and stop.
    #[arg(long)]
    seed_only: bool,
    /// Keep the temporary SQLite database (to reuse it with --database-url).
    #[arg(long)]
    keep: bool,
    /// Rows per INSERT statement while seeding.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Rows per seeding transaction.
    #[arg(long, default_value_t = 50_000)]
    tx_rows: usize,
    /// Users of the node's agency (owners, unit members, watchers).
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Units of the node's agency.
    #[arg(long, default_value_t = 20)]
    units: usize,
    /// Also time the web pages a desk officer opens (issue #20): the request list, a queue by
    /// due date, the home page and requests' pages, over HTTP on loopback from a node served
    /// in this process.
    #[arg(long)]
    pages: bool,
    /// Only the web pages (implies --pages).
    #[arg(long)]
    pages_only: bool,
}

/// p99 target of issue #17.
const TARGET: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let db = Db::resolve(args.database_url.clone(), args.postgres).await?;
    eprintln!("database: {}", db.url);
    let result = run(&args, &db).await;
    db.cleanup(args.keep);
    result
}

/// A user of the node's agency, as the bench knows it.
#[derive(Debug, Clone)]
struct Who {
    user: UserId,
    name: String,
    agency: AgencyId,
    role: Role,
    owned: i64,
}

impl Who {
    /// The user as the service sees a caller.
    fn principal(&self) -> Principal {
        Principal {
            user: self.user,
            username: self.name.clone(),
            agency: self.agency,
            role: self.role,
            token: None,
        }
    }
}

async fn run(args: &Args, db: &Db) -> Result<()> {
    let store = Store::open(&db.url)
        .await
        .with_context(|| format!("opening {}", db.backend))?;
    let pool = seed::raw_pool(db).await?;
    if seeded(&pool, args.rows).await? {
        eprintln!("reusing {} seeded requests", store.count_requests().await?);
    } else {
        seed_all(args, db, &store, &pool).await?;
    }
    let stored = store.count_requests().await?;
    let size = db_size(&pool, db).await?;
    println!(
        "{} | {stored} requests | database size {:.2} GiB",
        db.backend,
        size as f64 / (1u64 << 30) as f64
    );
    let users = users(&pool).await?;
    describe(&pool, &users).await?;
    if args.seed_only {
        pool.close().await;
        store.close().await;
        return Ok(());
    }
    // The service itself, on the seeded store: pages, counts and home pages are timed through
    // its own functions (rule packs are loaded because a node needs them; nothing here assesses).
    let legal = liaison_service::legal::Legal::load(&liaison_bench::rules_dir(None)).context("loading rule packs")?;
    // Token sign-in on: the bench signs the desk officer in to the pages with an API token.
    let node =
        Node::new(store.clone(), Default::default(), legal).with_sign_in(liaison_service::sign_in::SignInConfig {
            token_sign_in: true,
            ..Default::default()
        });
    let now = Timestamp::now();
    let officers: Vec<&Who> = users.iter().filter(|u| u.role == Role::Officer).collect();
    let busy = officers
        .iter()
        .max_by_key(|u| u.owned)
        .map(|u| (*u).clone())
        .ok_or_else(|| anyhow!("no officer"))?;
    let light = officers
        .iter()
        .min_by_key(|u| u.owned)
        .map(|u| (*u).clone())
        .ok_or_else(|| anyhow!("no officer"))?;
    println!(
        "busy user {} (officer, owns {}), light user {} (officer, owns {})",
        busy.name, busy.owned, light.name, light.owned
    );
    let mut cases = if args.pages_only {
        Vec::new()
    } else {
        cases(&store, &users, &busy, &light, now).await?
    };
    if args.pages || args.pages_only {
        cases.extend(page_cases(&node, &store, &pool, &users, now).await?);
    }
    if let Some(o) = &args.only {
        cases.retain(|c| c.name.contains(o.as_str()));
    }

    if args.explain {
        for c in &cases {
            explain(&store, &pool, db, c, now).await?;
        }
    }

    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut rows = vec![0usize; cases.len()];
    let mut per_round: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 1..=args.rounds {
        println!();
        println!(
            "{} | {stored} requests | round {round}/{} | up to {} calls per query | load average {}",
            db.backend,
            args.rounds,
            args.iterations,
            liaison_bench::load_average()
        );
        header();
        for (k, c) in cases.iter().enumerate() {
            let mut samples = Vec::with_capacity(args.iterations);
            let started = Instant::now();
            for i in 0..args.iterations + 3 {
                let t0 = Instant::now();
                rows[k] = c.op.run(&node, &store, now).await?;
                let took = t0.elapsed();
                if i >= 3 {
                    samples.push(took);
                }
                if samples.len() >= args.min_calls && started.elapsed() > Duration::from_secs(args.budget) {
                    break;
                }
            }
            all[k].extend_from_slice(&samples);
            let s = stats(&mut samples);
            per_round[k].push(s.p99);
            line(&c.name, rows[k], &s);
        }
    }
    println!();
    println!(
        "{} | {stored} requests | all rounds | p99 target {} ms | load average {}",
        db.backend,
        TARGET.as_millis(),
        liaison_bench::load_average()
    );
    println!(
        "| {:<44} | {:>6} | {:>5} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>14} | {:<5} |",
        "query", "rows", "calls", "min ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "p99 per round", "< 50"
    );
    println!(
        "|{:-<46}|{:-<8}|{:-<7}|{:-<10}|{:-<10}|{:-<10}|{:-<10}|{:-<10}|{:-<16}|{:-<7}|",
        "", "", "", "", "", "", "", "", "", ""
    );
    let mut misses = Vec::new();
    for (k, c) in cases.iter().enumerate() {
        let s = stats(&mut all[k]);
        let ok = s.p99 < TARGET;
        if !ok {
            misses.push(c.name.clone());
        }
        println!(
            "| {:<44} | {:>6} | {:>5} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>14} | {:<5} |",
            c.name,
            rows[k],
            s.count,
            fmt_ms(s.min),
            fmt_ms(s.p50),
            fmt_ms(s.p95),
            fmt_ms(s.p99),
            fmt_ms(s.max),
            per_round[k].iter().map(|d| fmt_ms(*d)).collect::<Vec<_>>().join(" / "),
            if ok { "yes" } else { "NO" }
        );
    }
    println!();
    if misses.is_empty() {
        println!("every query meets p99 < {} ms", TARGET.as_millis());
    } else {
        println!(
            "{} of {} queries miss p99 < {} ms: {}",
            misses.len(),
            cases.len(),
            TARGET.as_millis(),
            misses.join(", ")
        );
    }
    pool.close().await;
    store.close().await;
    Ok(())
}

// ---- what is timed ----

/// One timed operation.
enum Op {
    /// A page of a queue: `Node::queue` (what `GET /api/v1/requests?queue=…` calls).
    Page {
        who: Who,
        queue: Queue,
        base: Box<RequestFilter>,
    },
    /// One queue's count: the service's filter (`work::queue_filter`) and
    /// `Store::count_matching` with `QueueCounts::CAP`, as `Node::queue_counts` takes each.
    Count { who: Who, queue: Queue },
    /// All of a user's counts: `Node::queue_counts` (the `queueCounts` operation).
    Counts { who: Who },
    /// A role's home page: `Node::home` (the `home` operation and `/home`).
    Home { who: Who, shift_end: Option<Timestamp> },
    /// A web page as the browser gets it: `GET` each of `paths` in turn with the session
    /// cookie, the whole body read (status 200 required).
    Web {
        http: reqwest::Client,
        base: String,
        cookie: String,
        paths: Vec<String>,
        next: std::sync::atomic::AtomicUsize,
    },
}

struct Case {
    name: String,
    op: Op,
}

impl Op {
    /// Runs the operation once; returns the rows it listed (or the count).
    async fn run(&self, node: &Node, store: &Store, now: Timestamp) -> Result<usize> {
        Ok(match self {
            Op::Page { who, queue, base } => node
                .queue(&who.principal(), *queue, (**base).clone(), now)
                .await?
                .items
                .len(),
            Op::Count { who, queue } => {
                let f = queue_filter(store, who, *queue, RequestFilter::default(), now).await?;
                usize::try_from(store.count_matching(&f, QueueCounts::CAP).await?)?
            }
            Op::Counts { who } => {
                let c = node.queue_counts(&who.principal(), now).await?;
                usize::try_from(
                    c.mine + c.my_units + c.waiting_on_us + c.waiting_on_partner + c.overdue + c.unassigned_incoming,
                )?
            }
            Op::Home { who, shift_end } => {
                let h = node.home(&who.principal(), *shift_end, now).await?;
                h.sections.iter().map(|s| s.items.len()).sum()
            }
            Op::Web {
                http,
                base,
                cookie,
                paths,
                next,
            } => {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % paths.len().max(1);
                let path = paths.get(k).ok_or_else(|| anyhow!("no page to open"))?;
                let r = http
                    .get(format!("{base}{path}"))
                    .header(reqwest::header::COOKIE, cookie)
                    .send()
                    .await?;
                let status = r.status();
                let body = r.bytes().await?;
                if status != reqwest::StatusCode::OK {
                    bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
                }
                // "rows": the rows of the page's tables.
                body.windows(4).filter(|w| w == b"<tr>" || w == b"<tr ").count()
            }
        })
    }
}

/// `Node::queue_filter`: the filter of a queue for `who`, on top of `f` (the service's own
/// function; `my_units` reads the user's units as the service does).
async fn queue_filter(store: &Store, who: &Who, q: Queue, f: RequestFilter, now: Timestamp) -> Result<RequestFilter> {
    let units = match q {
        Queue::MyUnits => store.units_of(who.user).await?,
        _ => Vec::new(),
    };
    Ok(work::queue_filter(who.agency, who.user, units, q, f, now))
}

/// Every timed query: each queue's first page (newest first and by due date) and second page
/// (from the first page's cursor), the six counts, and the four roles' home pages. Queues that
/// depend on the user (mine, my_units, watching) are timed for the busy and the light user;
/// the others are the agency's and timed once.
async fn cases(store: &Store, users: &[Who], busy: &Who, light: &Who, now: Timestamp) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    for q in Queue::ALL {
        let personal = matches!(q, Queue::Mine | Queue::MyUnits | Queue::Watching);
        let whos: Vec<(&str, &Who)> = if personal {
            vec![("busy", busy), ("light", light)]
        } else {
            vec![("agency", busy)]
        };
        for (label, who) in whos {
            for (sort, sname) in [(Sort::Newest, "newest"), (Sort::Due, "due")] {
                let base = RequestFilter {
                    sort,
                    ..Default::default()
                };
                out.push(Case {
                    name: format!("{} p1 {sname} [{label}]", q.as_str()),
                    op: Op::Page {
                        who: who.clone(),
                        queue: *q,
                        base: Box::new(base.clone()),
                    },
                });
                // The second page, from the first page's cursor (as the API reads `cursor`).
                let f = queue_filter(store, who, *q, base.clone(), now).await?;
                let next = store.request_summaries(&f, now).await?.next;
                let second = match (next, sort) {
                    (None, _) => None,
                    (Some(c), Sort::Due) => Some(RequestFilter {
                        after_due: Some(parse_due_cursor(&c).ok_or_else(|| anyhow!("cursor {c}"))?),
                        ..base
                    }),
                    (Some(c), _) => Some(RequestFilter {
                        before: Some(c.parse().map_err(|e| anyhow!("cursor {c}: {e}"))?),
                        ..base
                    }),
                };
                match second {
                    Some(base) => out.push(Case {
                        name: format!("{} p2 {sname} [{label}]", q.as_str()),
                        op: Op::Page {
                            who: who.clone(),
                            queue: *q,
                            base: Box::new(base),
                        },
                    }),
                    None => println!("{} [{label}] {sname}: one page only, no second page", q.as_str()),
                }
            }
        }
    }
    for q in COUNTED {
        let whos: Vec<(&str, &Who)> = if matches!(q, Queue::Mine | Queue::MyUnits) {
            vec![("busy", busy), ("light", light)]
        } else {
            vec![("agency", busy)]
        };
        for (label, who) in whos {
            out.push(Case {
                name: format!("count {} [{label}]", q.as_str()),
                op: Op::Count {
                    who: who.clone(),
                    queue: q,
                },
            });
        }
    }
    for (label, who) in [("busy", busy), ("light", light)] {
        out.push(Case {
            name: format!("queueCounts [{label}]"),
            op: Op::Counts { who: who.clone() },
        });
    }
    for role in [Role::Desk, Role::Officer, Role::LegalReviewer, Role::Supervisor] {
        let of_role: Vec<&Who> = users.iter().filter(|u| u.role == role).collect();
        let most = of_role.iter().max_by_key(|u| u.owned);
        let least = of_role.iter().min_by_key(|u| u.owned);
        for (label, who) in [("busy", most), ("light", least)] {
            let Some(who) = who else { continue };
            out.push(Case {
                name: format!("home {} [{label}: {}, owns {}]", role.as_str(), who.name, who.owned),
                op: Op::Home {
                    who: (*who).clone(),
                    shift_end: None,
                },
            });
        }
    }
    Ok(out)
}

/// The web pages of issue #20's benchmark, for the busiest desk officer: the node is served on
/// 127.0.0.1 in this process, the desk signs in with an API token (`/login`, token sign-in
/// on) and each page is fetched over HTTP, so a time is the server's work plus a loopback
/// round trip. A request's page is timed over 200 requests the desk may open (a fixed random
/// sample of the agency's sent and received requests, its own drafts included), one per call.
async fn page_cases(node: &Node, store: &Store, pool: &AnyPool, users: &[Who], now: Timestamp) -> Result<Vec<Case>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let desk = users
        .iter()
        .filter(|u| u.role == Role::Desk)
        .max_by_key(|u| u.owned)
        .ok_or_else(|| anyhow!("no desk officer"))?
        .clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let served = node.clone();
    tokio::spawn(async move {
        let _ = liaison_server::serve(served, listener, Duration::from_secs(3600), std::future::pending()).await;
    });
    let (secret, _) = store
        .create_token(
            desk.user,
            "bench",
            now + jiff::SignedDuration::from_hours(24),
            &desk.name,
            now,
        )
        .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = http
        .post(format!("{base}/login"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={secret}"))
        .send()
        .await?;
    let cookie = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("signing in to the pages failed: {}", r.status()))?
        .to_string();
    let own = desk.agency.to_string();
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM requests WHERE requesting_agency = $1 OR (requested_agency = $1 AND state <> 'draft')",
    )
    .bind(&own)
    .fetch_all(pool)
    .await?;
    let mut rng = StdRng::seed_from_u64(20);
    let paths: Vec<String> = (0..200)
        .filter_map(|_| {
            let k = rng.random_range(0..ids.len().max(1));
            ids.get(k).map(|id| format!("/requests/{id}"))
        })
        .collect();
    let drafts = {
        let mut n = 0;
        for p in &paths {
            let id: RequestId = p.trim_start_matches("/requests/").parse()?;
            if store.request(id, None).await?.request.state == State::Draft {
                n += 1;
            }
        }
        n
    };
    println!(
        "web pages for {} (desk, owns {}) at {base}; request pages: 200 of {} requests the desk may open ({drafts} drafts)",
        desk.name,
        desk.owned,
        ids.len()
    );
    // Drafts apart: a draft's page assesses it (the verdict if it were sent now).
    let draft_ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM requests WHERE requesting_agency = $1 AND state = 'draft' LIMIT 50")
            .bind(&own)
            .fetch_all(pool)
            .await?;
    let web = |name: &str, paths: Vec<String>| Case {
        name: name.to_string(),
        op: Op::Web {
            http: http.clone(),
            base: base.clone(),
            cookie: cookie.clone(),
            paths,
            next: Default::default(),
        },
    };
    Ok(vec![
        web("page /requests [desk]", vec!["/requests".into()]),
        web(
            "page /requests?queue=unassigned&sort=due [desk]",
            vec!["/requests?queue=unassigned&sort=due".into()],
        ),
        web("page /home [desk]", vec!["/home".into()]),
        web("page /requests/{id} [desk, 200 requests]", paths),
        web(
            "page /requests/{id} [desk, 50 drafts]",
            draft_ids.iter().map(|id| format!("/requests/{id}")).collect(),
        ),
    ])
}

// ---- statistics and tables ----

#[derive(Default)]
struct Stats {
    count: usize,
    min: Duration,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    max: Duration,
}

/// Nearest-rank percentiles (`liaison_bench::summarize`) and the minimum.
fn stats(samples: &mut [Duration]) -> Stats {
    let s = liaison_bench::summarize(samples);
    Stats {
        count: s.count,
        min: samples.first().copied().unwrap_or_default(),
        p50: s.p50,
        p95: s.p95,
        p99: s.p99,
        max: s.max,
    }
}

fn header() {
    println!(
        "| {:<44} | {:>6} | {:>5} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |",
        "query", "rows", "calls", "min ms", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    println!(
        "|{:-<46}|{:-<8}|{:-<7}|{:-<10}|{:-<10}|{:-<10}|{:-<10}|{:-<10}|",
        "", "", "", "", "", "", "", ""
    );
}

fn line(name: &str, rows: usize, s: &Stats) {
    println!(
        "| {:<44} | {:>6} | {:>5} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |",
        name,
        rows,
        s.count,
        fmt_ms(s.min),
        fmt_ms(s.p50),
        fmt_ms(s.p95),
        fmt_ms(s.p99),
        fmt_ms(s.max)
    );
}

// ---- query plans ----

/// Prints the plan of each statement a case runs: the listing's (`Store::listing_sql`), or
/// the count's (the same id query taking `CAP` rows, wrapped in `COUNT(*)`), or for a home
/// page those of its sections (its counts are the `count …` cases).
async fn explain(store: &Store, pool: &AnyPool, db: &Db, c: &Case, now: Timestamp) -> Result<()> {
    let mut stmts: Vec<(String, String, Vec<Arg>)> = Vec::new();
    match &c.op {
        Op::Page { who, queue, base } => {
            let f = queue_filter(store, who, *queue, (**base).clone(), now).await?;
            let (sql, args) = store.listing_sql(&f).await?;
            stmts.push((c.name.clone(), sql, args));
        }
        Op::Count { who, queue } => {
            let f = queue_filter(store, who, *queue, RequestFilter::default(), now).await?;
            let (sql, args) = store.count_sql(&f, QueueCounts::CAP).await?;
            stmts.push((c.name.clone(), sql, args));
        }
        Op::Counts { who } => {
            for q in COUNTED {
                let f = queue_filter(store, who, q, RequestFilter::default(), now).await?;
                let (sql, args) = store.count_sql(&f, QueueCounts::CAP).await?;
                stmts.push((format!("{} / {}", c.name, q.as_str()), sql, args));
            }
        }
        Op::Home { who, shift_end } => {
            for (name, q, f) in work::home_plan(who.role, *shift_end, now) {
                let f = queue_filter(store, who, q, f, now).await?;
                let (sql, args) = store.listing_sql(&f).await?;
                stmts.push((format!("{} / section {name}", c.name), sql, args));
            }
        }
        // A page runs the statements of the service calls above; nothing of its own.
        Op::Web { .. } => {}
    }
    let pg = !db.url.starts_with("sqlite:");
    for (name, sql, args) in stmts {
        let plan_sql = if pg {
            format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")
        } else {
            format!("EXPLAIN QUERY PLAN {sql}")
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(plan_sql));
        for a in &args {
            q = match a {
                Arg::S(s) => q.bind(s.clone()),
                Arg::I(i) => q.bind(*i),
            };
        }
        let rows = q.fetch_all(pool).await?;
        println!("-- {name}");
        println!("   {sql}");
        println!(
            "   args: {}",
            args.iter()
                .map(|a| match a {
                    Arg::S(s) => format!("'{s}'"),
                    Arg::I(i) => i.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        for r in rows {
            let line: String = if pg { r.try_get(0)? } else { r.try_get(3)? };
            println!("   {line}");
        }
    }
    Ok(())
}

// ---- seeding ----

/// A database this tool seeded, with at least `rows` requests.
async fn seeded(pool: &AnyPool, rows: u64) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests")
        .fetch_one(pool)
        .await?;
    if n <= 0 {
        return Ok(false);
    }
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username LIKE 'qb-%'")
        .fetch_one(pool)
        .await?;
    if users == 0 {
        bail!("the database holds {n} requests but was not seeded by queue-bench: give an empty one");
    }
    if (n as u64) < rows {
        bail!("the database holds {n} requests, fewer than --rows {rows}: give --rows {n} or an empty one");
    }
    Ok(true)
}

/// The bench's users, each with how many requests it owns.
async fn users(pool: &AnyPool) -> Result<Vec<Who>> {
    let own: String = sqlx::query_scalar("SELECT id FROM agencies WHERE code = 'OWN'")
        .fetch_one(pool)
        .await?;
    let own: AgencyId = own.parse().map_err(|e| anyhow!("agency {own}: {e}"))?;
    let owned: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT owner_id, COUNT(*) FROM request_work WHERE owner_id IS NOT NULL GROUP BY owner_id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, username, role FROM users WHERE username LIKE 'qb-%' ORDER BY username")
            .fetch_all(pool)
            .await?;
    rows.into_iter()
        .map(|(id, name, role)| {
            Ok(Who {
                user: id.parse().map_err(|e| anyhow!("user {id}: {e}"))?,
                agency: own,
                role: role.parse().map_err(|e| anyhow!("role {role}: {e:?}"))?,
                owned: owned.get(&id).copied().unwrap_or(0),
                name,
            })
        })
        .collect()
}

/// Prints the shape of the work data (for the report).
async fn describe(pool: &AnyPool, users: &[Who]) -> Result<()> {
    let one = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await };
    println!(
        "request_work rows {} (owned {}, with a unit {}), watchers {}, units {}, unit members {}, notifications {}",
        one("SELECT COUNT(*) FROM request_work").await?,
        one("SELECT COUNT(*) FROM request_work WHERE owner_id IS NOT NULL").await?,
        one("SELECT COUNT(*) FROM request_work WHERE unit_id IS NOT NULL").await?,
        one("SELECT COUNT(*) FROM request_watchers").await?,
        one("SELECT COUNT(*) FROM units").await?,
        one("SELECT COUNT(*) FROM unit_members").await?,
        one("SELECT COUNT(*) FROM notifications").await?,
    );
    let mut by_role: Vec<(Role, usize, i64, i64)> = Vec::new();
    for role in [Role::Officer, Role::Desk, Role::LegalReviewer, Role::Supervisor] {
        let of: Vec<i64> = users.iter().filter(|u| u.role == role).map(|u| u.owned).collect();
        by_role.push((
            role,
            of.len(),
            of.iter().copied().min().unwrap_or(0),
            of.iter().copied().max().unwrap_or(0),
        ));
    }
    for (role, n, min, max) in by_role {
        println!("  {n} {role} users, each owning {min}..{max} requests");
    }
    Ok(())
}

/// The size of the database: the SQLite file, or the PostgreSQL schema's relations.
async fn db_size(pool: &AnyPool, db: &Db) -> Result<i64> {
    if db.url.starts_with("sqlite:") {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(pool).await?;
        let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(pool).await?;
        Ok(pages * size)
    } else {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'",
        )
        .fetch_one(pool)
        .await?)
    }
}

/// Roles of the seeded users by index: 70 % officers, 10 % desk, 15 % legal reviewers,
/// 5 % supervisors (user 0, the busiest owner, is an officer).
fn role_of(k: usize) -> Role {
    match k % 20 {
        19 => Role::Supervisor,
        17 | 18 => Role::Desk,
        14..=16 => Role::LegalReviewer,
        _ => Role::Officer,
    }
}

/// Rows of one multi-row INSERT: `cols` columns, values already in order.
enum V {
    S(String),
    OS(Option<String>),
    I(i64),
    OI(Option<i64>),
}

async fn insert(conn: &mut AnyConnection, table: &str, cols: &str, ncols: usize, values: Vec<V>) -> Result<()> {
    for chunk in values.chunks(ncols * 400) {
        let sql = format!(
            "INSERT INTO {table} ({cols}) VALUES {}",
            seed::value_rows(chunk.len() / ncols, ncols)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in chunk {
            q = match v {
                V::S(s) => q.bind(s.clone()),
                V::OS(s) => q.bind(s.clone()),
                V::I(i) => q.bind(*i),
                V::OI(i) => q.bind(*i),
            };
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Seeds the agencies, the users and units of the node's agency, the requests (as
/// `list-bench`: same generator and seed, so the same requests) with their references, who
/// works each one, watchers and a few notifications.
async fn seed_all(args: &Args, db: &Db, store: &Store, pool: &AnyPool) -> Result<()> {
    let t0 = Instant::now();
    let now_ts = Timestamp::now();
    let now = now_ts.as_millisecond();
    let (own, foreign) = seed::agencies(store, now_ts).await?;
    let mut codes: HashMap<AgencyId, String> = HashMap::new();
    codes.insert(own, "OWN".into());
    for (k, a) in foreign.iter().enumerate() {
        codes.insert(*a, format!("AG{k:02}"));
    }
    let nusers = args.users.max(2);
    let nunits = args.units.max(1);
    // Users, units and memberships (each user in one or two units).
    let user_ids: Vec<UserId> = (0..nusers).map(|_| UserId::new()).collect();
    let unit_ids: Vec<UnitId> = (0..nunits).map(|_| UnitId::new()).collect();
    {
        let mut tx = pool.begin().await?;
        let mut v = Vec::new();
        for (k, id) in user_ids.iter().enumerate() {
            v.extend([
                V::S(id.to_string()),
                V::S(format!("qb-{k:03}")),
                V::S(format!("Queue Bench {k}")),
                V::S(own.to_string()),
                V::S(role_of(k).as_str().to_string()),
                V::I(now),
                V::I(0),
            ]);
        }
        insert(
            &mut tx,
            "users",
            "id, username, display_name, agency_id, role, created_at, disabled",
            7,
            v,
        )
        .await?;
        let mut v = Vec::new();
        for (u, id) in unit_ids.iter().enumerate() {
            v.extend([
                V::S(id.to_string()),
                V::S(own.to_string()),
                V::S(format!("unit-{u:02}")),
                V::S(format!("Unit {u}")),
                V::I(now),
            ]);
        }
        insert(&mut tx, "units", "id, agency_id, code, name, created_at", 5, v).await?;
        let mut v = Vec::new();
        for (k, id) in user_ids.iter().enumerate() {
            let first = k % nunits;
            let second = (k * 7 + 3) % nunits;
            v.extend([V::S(unit_ids[first].to_string()), V::S(id.to_string())]);
            if k % 2 == 0 && second != first {
                v.extend([V::S(unit_ids[second].to_string()), V::S(id.to_string())]);
            }
        }
        insert(&mut tx, "unit_members", "unit_id, user_id", 2, v).await?;
        tx.commit().await?;
    }
    // Owners: a Zipf-like spread (weight 1/(k+1)^0.7), so user 0 owns about 7 % of the owned
    // requests and the last about 0.2 %.
    let mut cumulative = Vec::with_capacity(nusers);
    let mut total = 0.0f64;
    for k in 0..nusers {
        total += 1.0 / ((k + 1) as f64).powf(0.7);
        cumulative.push(total);
    }
    let pick_owner = |rng: &mut StdRng| {
        let x = rng.random::<f64>() * total;
        cumulative.partition_point(|c| *c < x).min(nusers - 1)
    };
    let mut rng = StdRng::seed_from_u64(42);
    let mut wrng = StdRng::seed_from_u64(7);
    let batch = args.batch.clamp(1, 1000);
    let tx_rows = args.tx_rows.max(batch);
    let mut seqs: HashMap<String, i64> = HashMap::new();
    let mut sample_ids: Vec<RequestId> = Vec::new();
    let mut i = 0u64;
    while i < args.rows {
        let mut tx = pool.begin().await?;
        let tx_end = (i + tx_rows as u64).min(args.rows);
        while i < tx_end {
            let n = (tx_end - i).min(batch as u64);
            let rows = (0..n)
                .map(|k| seed::make_row(&mut rng, i + k, args.rows, now, own, &foreign))
                .collect::<Result<Vec<_>>>()?;
            let mut refs = Vec::with_capacity(rows.len());
            let mut work = Vec::new();
            let mut watchers = Vec::new();
            for r in &rows {
                let year = Timestamp::from_millisecond(r.created_at)?
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .year();
                let code = codes.get(&r.requesting).cloned().unwrap_or_default();
                let prefix = format!("{code}-{year:04}");
                let seq = seqs.entry(prefix.clone()).or_insert(0);
                *seq += 1;
                refs.push((prefix, *seq));
                // Who works it for the node's agency: drafts are their author's; fresh
                // incoming requests are mostly not taken yet; 60 % of the rest are owned.
                let p_owned = match r.state {
                    State::Draft => 1.0,
                    State::Submitted | State::Received => 0.2,
                    _ => 0.6,
                };
                let owner = wrng.random_bool(p_owned).then(|| user_ids[pick_owner(&mut wrng)]);
                let unit = wrng.random_bool(0.1).then(|| unit_ids[wrng.random_range(0..nunits)]);
                if owner.is_some() || unit.is_some() {
                    work.extend([
                        V::S(r.id.to_string()),
                        V::S(own.to_string()),
                        V::OS(owner.map(|o| o.to_string())),
                        V::OS(unit.map(|u| u.to_string())),
                        V::I(r.updated_at),
                        // The copy of the due key the store keeps (schema migration 23).
                        V::I(r.next_due.unwrap_or(i64::MAX)),
                    ]);
                }
                if wrng.random_bool(0.05) {
                    let a = wrng.random_range(0..nusers);
                    watchers.extend([
                        V::S(r.id.to_string()),
                        V::S(user_ids[a].to_string()),
                        V::I(r.updated_at),
                    ]);
                    let b = wrng.random_range(0..nusers);
                    if wrng.random_bool(0.2) && b != a {
                        watchers.extend([
                            V::S(r.id.to_string()),
                            V::S(user_ids[b].to_string()),
                            V::I(r.updated_at),
                        ]);
                    }
                }
                if wrng.random_bool(0.01) {
                    sample_ids.push(r.id);
                }
            }
            seed::insert_rows(&mut tx, &rows, Some(&refs)).await?;
            insert(
                &mut tx,
                "request_work",
                "request_id, agency_id, owner_id, unit_id, updated_at, due",
                6,
                work,
            )
            .await?;
            insert(&mut tx, "request_watchers", "request_id, user_id, since", 3, watchers).await?;
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
    // 50 notifications per user about recent requests, the newest 10 unread.
    if !sample_ids.is_empty() {
        let mut tx = pool.begin().await?;
        let mut v = Vec::new();
        for u in &user_ids {
            for k in 0..50i64 {
                let at = now - (50 - k) * 3_600_000;
                let req = sample_ids[wrng.random_range(0..sample_ids.len())];
                v.extend([
                    V::S(NotificationId::at(Timestamp::from_millisecond(at)?, wrng.random()).to_string()),
                    V::S(u.to_string()),
                    V::S(uuid::Uuid::new_v4().to_string()),
                    V::OS(Some(req.to_string())),
                    V::I(at),
                    V::S("comment".into()),
                    V::S("{}".into()),
                    V::OI((k < 40).then_some(at + 60_000)),
                ]);
            }
        }
        insert(
            &mut tx,
            "notifications",
            "id, user_id, event_id, request_id, at, kind, data, read_at",
            8,
            v,
        )
        .await?;
        tx.commit().await?;
    }
    // Statistics, and on PostgreSQL the visibility map that index-only scans need: what
    // autovacuum gives a running node some minutes after a bulk load.
    let analyze: Vec<String> = if db.url.starts_with("sqlite:") {
        vec!["ANALYZE".into()]
    } else {
        [
            "requests",
            "request_work",
            "request_watchers",
            "users",
            "units",
            "unit_members",
            "notifications",
            "agencies",
        ]
        .iter()
        .map(|t| format!("VACUUM ANALYZE {t}"))
        .collect()
    };
    for sql in analyze {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    }
    println!(
        "seeded {} requests with their work rows and ran (VACUUM) ANALYZE in {:.1} s",
        args.rows,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
