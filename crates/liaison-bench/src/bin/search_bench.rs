//! Search benchmark (issue #18, "Find anything"): seeds N requests (default 1,000,000) and M
//! comments (default 5,000,000) with bulk SQL, in English, Chinese and both, with typed targets
//! on about 30 % of the requests; builds the search index with `Store::search_rebuild` (timed,
//! with the index's size); then times a named mix of searches, identifier look-ups and
//! listings filtered by words or targets, through the service as users reach it
//! (`Node::search`, `Node::lookup`, `Node::search_filters` then `Node::list`), for an officer
//! of the node's agency and for an officer of a partner agency. Target: p99 < 50 ms.
//!
//! Every query's number of matching texts is known from the generator; before timing, the
//! service's answers are checked against it (counts, what the partner may not see, the
//! planted identifiers). See bench/search/README.md.
//!
//! ```sh
//! cargo run --release -p liaison-bench --bin search-bench -- --keep
//! cargo run --release -p liaison-bench --bin search-bench -- --postgres
//! ```

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use jiff::Timestamp;
use liaison_bench::{Db, fmt_ms, seed};
use liaison_core::lifecycle::{Role, Side, State};
use liaison_core::record::{Principal, RequestFilter, RequestSummary, SearchPage};
use liaison_core::request::{Target, TargetValue};
use liaison_core::search::{Query, Term, parse_query, tokens};
use liaison_core::{AgencyId, EventId, Marking, Tlp, UserId};
use liaison_service::Node;
use liaison_service::search::SearchParams;
use liaison_store::{DocSearch, ListingArg as Arg, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, AnyPool, Row};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Liaison search benchmark (words, phrases, Chinese, identifiers over N requests and M comments)")]
struct Args {
    /// Requests to store before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Comments to store before measuring (spread over the requests).
    #[arg(long, default_value_t = 5_000_000)]
    comments: u64,
    /// Timed calls per series and round (fewer when a series exceeds --budget).
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Measurement rounds (each round runs every series `iterations` times).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds one series may take per round; a slower series stops early (after --min-calls).
    #[arg(long, default_value_t = 20)]
    budget: u64,
    /// Timed calls per series and round even past --budget.
    #[arg(long, default_value_t = 20)]
    min_calls: usize,
    /// Database URL (`sqlite://PATH` or `postgres://...`); default: a new SQLite file in a temp dir.
    /// A database this tool seeded is reused (no seeding, no rebuild unless --rebuild).
    #[arg(long)]
    database_url: Option<String>,
    /// Use a fresh schema in the local PostgreSQL.
    #[arg(long)]
    postgres: bool,
    /// Rebuild the index (and time it) even when the reused database has one.
    #[arg(long)]
    rebuild: bool,
    /// Print the query plans of the listings (SQLite EXPLAIN QUERY PLAN, PostgreSQL EXPLAIN ANALYZE).
    #[arg(long)]
    explain: bool,
    /// Only the series whose name contains this text (timing and plans).
    #[arg(long)]
    only: Option<String>,
    /// Seed (or open) the database, build the index, check the answers and stop.
    #[arg(long)]
    seed_only: bool,
    /// Keep the temporary SQLite database (to reuse it with --database-url).
    #[arg(long)]
    keep: bool,
    /// Rows per INSERT statement while seeding requests.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Requests per seeding transaction (with their comments).
    #[arg(long, default_value_t = 20_000)]
    tx_rows: usize,
    /// Where a listing filtered by words switches from starting at the matching texts to
    /// walking its own order (`Node::set_search_few_matches`; default: the node's, 5,000).
    #[arg(long)]
    few_matches: Option<u64>,
}

/// p99 target of issue #18.
const TARGET: Duration = Duration::from_millis(50);

/// The settings row recording what this tool seeded (JSON of [`Seeded`]).
const SEED_KEY: &str = "search_bench.seed";
/// The settings row recording the last timed rebuild (JSON of [`Indexed`]).
const INDEX_KEY: &str = "search_bench.index";

/// The officer of the node's agency `OWN` who reads.
const OWN_OFFICER: &str = "sb-own-officer";
/// The officer of the partner agency `AG00` who reads.
const PARTNER_OFFICER: &str = "sb-ag00-officer";
/// Users of `OWN` named by the `TLP:RED` comments.
const RED_USERS: [&str; 5] = [
    "sb-own-red-0",
    "sb-own-red-1",
    "sb-own-red-2",
    "sb-own-red-3",
    "sb-own-red-4",
];

/// The most frequent English query word (a prefix: it also finds `accounts`).
const Q_COMMON: &str = "account";
/// Planted in one text of every [`MEDIUM_EVERY`] (0.1 %).
const Q_MEDIUM: &str = "extradition";
/// Planted in [`RARE_TEXTS`] texts.
const Q_RARE: &str = "cryptojacking";
/// Planted in about 1 % of the English texts.
const Q_PHRASE: &str = "\"money mule\"";
/// A Chinese word of the vocabulary, at the rank [`ZH_COMMON_RANK`].
const Q_ZH_COMMON: &str = "诈骗";
/// Planted in [`ZH_RARE_TEXTS`] texts (neither character is in the vocabulary).
const Q_ZH_RARE: &str = "赌博";
/// Planted in every `TLP:RED` comment and nowhere else (validation only).
const Q_RED: &str = "embargoed";

const MEDIUM_EVERY: u64 = 1_000;
const RARE_TEXTS: u64 = 40;
const ZH_RARE_TEXTS: u64 = 300;
/// Rank of [`Q_COMMON`] among the English words (after the commonest function words).
const EN_COMMON_RANK: usize = 12;
/// Rank of [`Q_ZH_COMMON`] among the Chinese words (about 8 % of the Chinese texts).
const ZH_COMMON_RANK: usize = 175;

/// An IPv4 address planted in exactly [`IP_REQUESTS`] requests.
const PLANTED_IP: &str = "203.0.113.77";
const IP_REQUESTS: u64 = 3;
/// A network with one address in each of about [`NET_REQUESTS`] requests.
const PLANTED_NET: &str = "198.51.100.0/24";
const NET_REQUESTS: u64 = 50;
/// A phone number planted in [`PHONE_REQUESTS`] requests, written four ways.
const PHONE_FORMS: [&str; 4] = [
    "+8613800138000",
    "+86 138 0013 8000",
    "0086 138-0013-8000",
    "+86 (138) 0013 8000",
];
const PHONE_REQUESTS: u64 = 5;
/// How an officer types the planted number.
const PHONE_QUERY: &str = "+86 138 0013 8000";

const DAY: i64 = seed::DAY;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // The store's progress lines (the index rebuild) on stderr; RUST_LOG overrides.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("liaison_store=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let db = Db::resolve(args.database_url.clone(), args.postgres).await?;
    eprintln!("database: {}", db.url);
    let result = run(&args, &db).await;
    db.cleanup(args.keep);
    result
}

// ---- what the seeding records ----

/// How many texts match one query (documents) and how many requests hold one, in all and
/// for each reader; for a target, documents are requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Expect {
    name: String,
    q: String,
    docs: u64,
    own: u64,
    partner: u64,
    own_requests: u64,
    partner_requests: u64,
    /// Whether the current request already counted (while seeding).
    #[serde(skip)]
    own_seen: bool,
    #[serde(skip)]
    partner_seen: bool,
}

impl Expect {
    fn new(name: &str, q: &str) -> Expect {
        Expect {
            name: name.into(),
            q: q.into(),
            ..Default::default()
        }
    }

    /// Counts one matching document (or request) seen by the readers in `vis`.
    fn add(&mut self, vis: Vis) {
        self.docs += 1;
        if vis.own {
            self.own += 1;
            if !self.own_seen {
                self.own_seen = true;
                self.own_requests += 1;
            }
        }
        if vis.partner {
            self.partner += 1;
            if !self.partner_seen {
                self.partner_seen = true;
                self.partner_requests += 1;
            }
        }
    }

    /// The documents the reader `r` (0 own, 1 partner) may see.
    fn docs_for(&self, r: usize) -> u64 {
        if r == 0 { self.own } else { self.partner }
    }

    /// The requests the reader `r` may see.
    fn requests_for(&self, r: usize) -> u64 {
        if r == 0 {
            self.own_requests
        } else {
            self.partner_requests
        }
    }
}

/// What this tool seeded: sizes, the shape of the texts and every query's expected matches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Seeded {
    rows: u64,
    comments: u64,
    seed_seconds: f64,
    texts_en: u64,
    texts_zh: u64,
    texts_mixed: u64,
    /// Chinese texts (not mixed) holding [`Q_ZH_COMMON`].
    zh_common_in_zh: u64,
    red_comments: u64,
    requests_with_targets: u64,
    targets: u64,
    /// The word queries (named as the timed series).
    words: Vec<Expect>,
    /// The planted identifiers (`lookup-ip`, `lookup-net`, `lookup-phone`).
    idents: Vec<Expect>,
}

impl Seeded {
    fn word(&self, name: &str) -> Result<&Expect> {
        self.words
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| anyhow!("no expectation recorded for {name}"))
    }

    fn ident(&self, name: &str) -> Result<&Expect> {
        self.idents
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| anyhow!("no expectation recorded for {name}"))
    }
}

/// The last timed rebuild of the index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Indexed {
    docs: u64,
    keys: u64,
    rebuild_seconds: f64,
    analyze_seconds: f64,
    /// Database size before and after (SQLite: the file's pages; PostgreSQL: the schema's
    /// relations).
    size_before: i64,
    size_after: i64,
    /// The index's own size (SQLite: the difference; PostgreSQL: `search_docs` and
    /// `search_targets` with their indexes).
    index_bytes: i64,
    /// Per table and index where the backend tells (SQLite `dbstat`, PostgreSQL relations).
    parts: Vec<(String, i64)>,
    /// Whether the index was empty before (a first build rather than a rebuild).
    was_empty: bool,
}

/// Which readers see a document.
#[derive(Debug, Clone, Copy)]
struct Vis {
    own: bool,
    partner: bool,
}

// ---- the run ----

/// One of the two readers.
#[derive(Debug, Clone)]
struct Reader {
    label: &'static str,
    p: Principal,
    /// The other agency's code, as a search's `counterpart`.
    counterpart: &'static str,
}

async fn run(args: &Args, db: &Db) -> Result<()> {
    let store = Store::open(&db.url)
        .await
        .with_context(|| format!("opening {}", db.backend))?;
    let pool = seed::raw_pool(db).await?;
    let seeded = match recorded::<Seeded>(&store, SEED_KEY).await? {
        Some(s) => {
            if s.rows < args.rows || s.comments < args.comments {
                bail!(
                    "the database holds {} requests and {} comments seeded by search-bench, fewer than asked: \
                     give --rows {} --comments {} or an empty database",
                    s.rows,
                    s.comments,
                    s.rows,
                    s.comments
                );
            }
            eprintln!(
                "reusing {} requests and {} comments seeded by search-bench",
                s.rows, s.comments
            );
            s
        }
        None => {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests")
                .fetch_one(&pool)
                .await?;
            if n > 0 {
                bail!("the database holds {n} requests but was not seeded by search-bench: give an empty one");
            }
            let s = seed_all(args, db, &store, &pool).await?;
            store.set_setting(SEED_KEY, &serde_json::to_string(&s)?).await?;
            s
        }
    };
    let indexed = match recorded::<Indexed>(&store, INDEX_KEY).await? {
        Some(i) if !args.rebuild => {
            println!("index reused (built earlier: figures below are from that build)");
            i
        }
        _ => {
            let i = rebuild(&store, &pool, db).await?;
            store.set_setting(INDEX_KEY, &serde_json::to_string(&i)?).await?;
            i
        }
    };
    let (docs, keys) = store.search_size().await?;
    let requests = store.count_requests().await?;
    describe(db, &seeded, &indexed, requests, docs, keys);

    // The service itself, on the seeded store (rule packs loaded because a node needs them).
    let legal = liaison_service::legal::Legal::load(&liaison_bench::rules_dir(None)).context("loading rule packs")?;
    let node = Node::new(store.clone(), Default::default(), legal);
    if let Some(n) = args.few_matches {
        node.set_search_few_matches(n);
        println!("few-matches threshold set to {n}");
    }
    let now = Timestamp::now();
    let own = agency_id(&pool, "OWN").await?;
    let ag00 = agency_id(&pool, "AG00").await?;
    let readers = [
        Reader {
            label: "own",
            p: principal(&pool, OWN_OFFICER).await?,
            counterpart: "AG00",
        },
        Reader {
            label: "partner",
            p: principal(&pool, PARTNER_OFFICER).await?,
            counterpart: "OWN",
        },
    ];
    let pair = (own, ag00);

    let t = Instant::now();
    validate(&node, &readers, &seeded, pair, now).await?;
    println!(
        "validation passed ({:.1} s): counts match the generator for both readers, the partner sees only \
         requests between AG00 and OWN and none of the {} TLP:RED comments, the planted identifiers are found",
        t.elapsed().as_secs_f64(),
        seeded.red_comments
    );
    if args.seed_only {
        pool.close().await;
        store.close().await;
        return Ok(());
    }

    let mut cases = cases(&node, &readers, now).await?;
    if let Some(o) = &args.only {
        cases.retain(|c| c.name.contains(o.as_str()));
    }
    if args.explain {
        explain(&node, &store, &pool, db, &readers, &cases).await?;
    }
    println!();
    println!(
        "every Node::search call runs its page and its count together; the count stops at {} (shown as {}+)",
        SearchPage::CAP,
        SearchPage::CAP
    );

    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut outs = vec![Outcome::default(); cases.len()];
    let mut per_round: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 1..=args.rounds {
        println!();
        println!(
            "{} | {requests} requests, {docs} texts | round {round}/{} | up to {} calls per series | load average {}",
            db.backend,
            args.rounds,
            args.iterations,
            liaison_bench::load_average()
        );
        header(false);
        for (k, c) in cases.iter().enumerate() {
            let mut samples = Vec::with_capacity(args.iterations);
            let started = Instant::now();
            for i in 0..args.iterations + 3 {
                let t0 = Instant::now();
                outs[k] = c.op.run(&node, &store, &readers[c.reader], now).await?;
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
            line(&c.name, &outs[k], &s, None);
        }
    }
    println!();
    println!(
        "{} | {requests} requests, {} comments, {docs} texts, {keys} target keys | all rounds | p99 target {} ms | load average {}",
        db.backend,
        seeded.comments,
        TARGET.as_millis(),
        liaison_bench::load_average()
    );
    header(true);
    let mut misses = Vec::new();
    for (k, c) in cases.iter().enumerate() {
        let s = stats(&mut all[k]);
        if s.p99 >= TARGET {
            misses.push(c.name.clone());
        }
        let rounds = per_round[k].iter().map(|d| fmt_ms(*d)).collect::<Vec<_>>().join(" / ");
        line(&c.name, &outs[k], &s, Some(&rounds));
    }
    println!();
    println!(
        "{} of {} series meet p99 < {} ms{}",
        cases.len() - misses.len(),
        cases.len(),
        TARGET.as_millis(),
        if misses.is_empty() {
            String::new()
        } else {
            format!("; missing: {}", misses.join(", "))
        }
    );
    describe(db, &seeded, &indexed, requests, docs, keys);
    println!("load average {}", liaison_bench::load_average());
    pool.close().await;
    store.close().await;
    Ok(())
}

/// A JSON value this tool recorded in `settings`.
async fn recorded<T: for<'de> Deserialize<'de>>(store: &Store, key: &str) -> Result<Option<T>> {
    match store.setting(key).await? {
        Some(v) => Ok(Some(
            serde_json::from_str(&v).with_context(|| format!("reading the setting {key}"))?,
        )),
        None => Ok(None),
    }
}

async fn agency_id(pool: &AnyPool, code: &str) -> Result<AgencyId> {
    let id: String = sqlx::query_scalar("SELECT id FROM agencies WHERE code = $1")
        .bind(code)
        .fetch_one(pool)
        .await
        .with_context(|| format!("agency {code}"))?;
    id.parse().map_err(|e| anyhow!("agency {id}: {e}"))
}

/// A seeded officer as the service sees a caller.
async fn principal(pool: &AnyPool, username: &str) -> Result<Principal> {
    let (id, agency): (String, String) = sqlx::query_as("SELECT id, agency_id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(pool)
        .await
        .with_context(|| format!("user {username}"))?;
    Ok(Principal {
        user: id.parse().map_err(|e| anyhow!("user {id}: {e}"))?,
        username: username.to_string(),
        agency: agency.parse().map_err(|e| anyhow!("agency {agency}: {e}"))?,
        role: Role::Officer,
        token: None,
    })
}

/// Prints the sizes, the seeding and the index (for the report).
fn describe(db: &Db, s: &Seeded, i: &Indexed, requests: i64, docs: u64, keys: u64) {
    let mib = |b: i64| b as f64 / (1u64 << 20) as f64;
    println!();
    println!(
        "{} | {requests} requests ({} with targets, {} targets), {} comments ({} TLP:RED) | texts: {} English, {} Chinese, {} mixed",
        db.backend,
        s.requests_with_targets,
        s.targets,
        s.comments,
        s.red_comments,
        s.texts_en,
        s.texts_zh,
        s.texts_mixed
    );
    println!(
        "seeding (bulk SQL, then (VACUUM) ANALYZE): {:.1} s | index {}: {:.1} s for {} texts and {} target keys, then ANALYZE {:.1} s",
        s.seed_seconds,
        if i.was_empty { "build" } else { "rebuild" },
        i.rebuild_seconds,
        i.docs,
        i.keys,
        i.analyze_seconds
    );
    println!(
        "index size {:.1} MiB | database {:.1} MiB before, {:.1} MiB after{}",
        mib(i.index_bytes),
        mib(i.size_before),
        mib(i.size_after),
        if i.was_empty {
            ""
        } else {
            " (the index was not empty before: the difference is not its size)"
        }
    );
    if !i.parts.is_empty() {
        println!(
            "  {}",
            i.parts
                .iter()
                .map(|(n, b)| format!("{n} {:.1} MiB", mib(*b)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("search index now: {docs} texts, {keys} target keys");
    println!(
        "matching texts per query (all / own / partner; requests own / partner); Chinese texts holding {Q_ZH_COMMON}: {} of {} ({:.1} %)",
        s.zh_common_in_zh,
        s.texts_zh,
        100.0 * s.zh_common_in_zh as f64 / s.texts_zh.max(1) as f64
    );
    for e in s.words.iter().chain(&s.idents) {
        println!(
            "  {:<13} {:<22} {:>9} / {:>9} / {:>8} ; {:>8} / {:>7}",
            e.name, e.q, e.docs, e.own, e.partner, e.own_requests, e.partner_requests
        );
    }
}

// ---- the timed series ----

/// One timed operation, as the API runs it for a reader.
enum Op {
    /// `Node::search` (a page of hits and the capped count): `GET /api/v1/search`.
    Search(Box<SearchParams>),
    /// The capped count alone: `Store::search_count`, the half of `Node::search` that counts.
    CountOnly(Query),
    /// `Node::lookup`: `GET /api/v1/lookup`.
    Lookup(String),
    /// `Node::search_filters` then `Node::list` (50 rows): `GET /api/v1/requests?q=…` or `?target=…`.
    List { q: Option<String>, target: Option<String> },
}

struct Case {
    name: String,
    reader: usize,
    op: Op,
}

/// What one call answered: its rows and, for searches, the capped count.
#[derive(Debug, Clone, Default)]
struct Outcome {
    rows: usize,
    count: Option<(u64, bool)>,
}

impl Op {
    async fn run(&self, node: &Node, store: &Store, r: &Reader, now: Timestamp) -> Result<Outcome> {
        Ok(match self {
            Op::Search(params) => {
                let page = node.search(&r.p, params, now).await?;
                Outcome {
                    rows: page.items.len(),
                    count: Some((page.count, page.count_capped)),
                }
            }
            Op::CountOnly(q) => {
                let n = store.search_count(&doc_search(&r.p, q), SearchPage::CAP).await?;
                Outcome {
                    rows: 0,
                    count: Some((n.min(SearchPage::CAP), n >= SearchPage::CAP)),
                }
            }
            Op::Lookup(input) => {
                let l = node.lookup(&r.p, input, None, now).await?;
                Outcome {
                    rows: l.requests.len(),
                    count: Some((l.request_count, l.request_count_capped)),
                }
            }
            Op::List { q, target } => {
                let f = list_filter(node, &r.p, q.as_deref(), target.as_deref()).await?;
                Outcome {
                    rows: node.list(&r.p, f, now).await?.items.len(),
                    count: None,
                }
            }
        })
    }
}

/// A search of `q` for `p` as `Node::search` hands it to the store (no other filter).
fn doc_search<'a>(p: &'a Principal, q: &'a Query) -> DocSearch<'a> {
    DocSearch {
        agency: p.agency,
        user: &p.username,
        query: q,
        sources: &[],
        kind: None,
        states: &[],
        counterpart: None,
        case_reference: None,
        owner: None,
        from: None,
        to: None,
        oldest_first: false,
        after_doc: None,
        limit: 20,
        requests: None,
    }
}

/// The filter of a listing of 50 requests with the search filters `q` and `target`.
async fn list_filter(node: &Node, p: &Principal, q: Option<&str>, target: Option<&str>) -> Result<RequestFilter> {
    let mut f = RequestFilter {
        limit: 50,
        ..Default::default()
    };
    node.search_filters(p, &mut f, q, None, target, None).await?;
    Ok(f)
}

/// Search parameters as the API reads its query string (the page size is the API's, 20).
fn params(pairs: &[(&str, &str)]) -> Result<SearchParams> {
    Ok(SearchParams::parse(pairs.iter().copied())?)
}

/// The 90-day window of the filtered series: from 200 to 110 days ago.
fn window(now: Timestamp) -> Result<(Timestamp, Timestamp)> {
    let ms = now.as_millisecond();
    Ok((
        Timestamp::from_millisecond(ms - 200 * DAY)?,
        Timestamp::from_millisecond(ms - 110 * DAY)?,
    ))
}

/// The states of the filtered series.
const FILTER_STATES: &str = "closed,answered";

/// The parameters of `filtered-date` / `filtered-oldest` for `r`.
fn filtered(r: &Reader, now: Timestamp, oldest: bool) -> Result<SearchParams> {
    let (from, to) = window(now)?;
    let (from, to) = (from.to_string(), to.to_string());
    params(&[
        ("q", Q_COMMON),
        ("state", FILTER_STATES),
        ("counterpart", r.counterpart),
        ("from", from.as_str()),
        ("to", to.as_str()),
        ("sort", if oldest { "oldest" } else { "newest" }),
    ])
}

/// Every timed series, for each reader.
async fn cases(node: &Node, readers: &[Reader], now: Timestamp) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    for (ri, r) in readers.iter().enumerate() {
        let mut add = |name: &str, op: Op| {
            out.push(Case {
                name: format!("{name} [{}]", r.label),
                reader: ri,
                op,
            })
        };
        for (name, q) in [
            ("word-common", Q_COMMON),
            ("word-medium", Q_MEDIUM),
            ("word-rare", Q_RARE),
            ("phrase", Q_PHRASE),
            ("zh-common", Q_ZH_COMMON),
            ("zh-rare", Q_ZH_RARE),
        ] {
            add(name, Op::Search(Box::new(params(&[("q", q)])?)));
        }
        let first = node.search(&r.p, &params(&[("q", Q_COMMON)])?, now).await?;
        match first.next {
            Some(c) => add(
                "word-page2",
                Op::Search(Box::new(params(&[("q", Q_COMMON), ("cursor", c.as_str())])?)),
            ),
            None => println!("word-page2 [{}]: one page only, no second page", r.label),
        }
        add("filtered-date", Op::Search(Box::new(filtered(r, now, false)?)));
        add("filtered-oldest", Op::Search(Box::new(filtered(r, now, true)?)));
        add(
            "count-only",
            Op::CountOnly(parse_query(Q_COMMON).map_err(|e| anyhow!("{Q_COMMON}: {e}"))?),
        );
        add("lookup-ip", Op::Lookup(PLANTED_IP.into()));
        add("lookup-net", Op::Lookup(PLANTED_NET.into()));
        add("lookup-phone", Op::Lookup(PHONE_QUERY.into()));
        add(
            "list-q-common",
            Op::List {
                q: Some(Q_COMMON.into()),
                target: None,
            },
        );
        add(
            "list-q-rare",
            Op::List {
                q: Some(Q_RARE.into()),
                target: None,
            },
        );
        add(
            "list-target",
            Op::List {
                q: None,
                target: Some(PLANTED_IP.into()),
            },
        );
    }
    Ok(out)
}

// ---- validation ----

/// Whether a request is between the partner and the node's agency.
fn between(s: &RequestSummary, (own, ag00): (AgencyId, AgencyId)) -> bool {
    (s.requesting_agency == own && s.requested_agency == ag00)
        || (s.requesting_agency == ag00 && s.requested_agency == own)
}

/// Checks the service's answers against what the generator planted, for both readers;
/// fails with every difference found.
async fn validate(
    node: &Node,
    readers: &[Reader],
    s: &Seeded,
    pair: (AgencyId, AgencyId),
    now: Timestamp,
) -> Result<()> {
    let cap = SearchPage::CAP;
    let mut bad: Vec<String> = Vec::new();
    for (ri, r) in readers.iter().enumerate() {
        let partner = ri == 1;
        let who = r.label;
        for e in &s.words {
            let page = node.search(&r.p, &params(&[("q", e.q.as_str())])?, now).await?;
            let want = e.docs_for(ri);
            if page.count != want.min(cap) || page.count_capped != (want >= cap) {
                bad.push(format!(
                    "{} [{who}] {}: count {} (capped {}), the generator made {want} visible texts",
                    e.name, e.q, page.count, page.count_capped
                ));
            }
            if page.items.len() as u64 != want.min(20) {
                bad.push(format!(
                    "{} [{who}] {}: {} hits on the first page, expected {}",
                    e.name,
                    e.q,
                    page.items.len(),
                    want.min(20)
                ));
            }
            if partner && let Some(h) = page.items.iter().find(|h| !between(&h.request, pair)) {
                bad.push(format!(
                    "{} [partner]: hit on request {} not between AG00 and OWN",
                    e.name, h.request.reference
                ));
            }
            if e.q == Q_COMMON && !partner && (page.items.len() != 20 || page.count != cap || !page.count_capped) {
                bad.push(format!(
                    "word-common [own]: expected a full page of 20 and a capped count of {cap}, got {} hits, count {} (capped {})",
                    page.items.len(),
                    page.count,
                    page.count_capped
                ));
            }
            if e.q == Q_RED {
                if partner && (page.count != 0 || e.partner != 0) {
                    bad.push(format!(
                        "the partner finds {} TLP:RED comments (generator: {})",
                        page.count, e.partner
                    ));
                }
                if !partner && e.own != s.red_comments {
                    bad.push(format!(
                        "own should see all {} TLP:RED comments, the generator counted {}",
                        s.red_comments, e.own
                    ));
                }
            }
        }
        // The second page follows the first without overlap.
        let first = node.search(&r.p, &params(&[("q", Q_COMMON)])?, now).await?;
        if let Some(c) = &first.next {
            let second = node
                .search(&r.p, &params(&[("q", Q_COMMON), ("cursor", c.as_str())])?, now)
                .await?;
            let last_at = first.items.last().map(|h| h.at);
            if second.items.iter().any(|h| {
                first
                    .items
                    .iter()
                    .any(|f| f.item_id == h.item_id && f.source == h.source)
            }) || second.items.iter().any(|h| Some(h.at) > last_at)
            {
                bad.push(format!(
                    "word-page2 [{who}]: the second page repeats or precedes the first"
                ));
            }
        }
        // The filtered series keep to their filters.
        let (from, to) = window(now)?;
        let states: Vec<State> = FILTER_STATES
            .split(',')
            .map(|s| s.parse::<State>().map_err(|e| anyhow!("state {s}: {e}")))
            .collect::<Result<_>>()?;
        for oldest in [false, true] {
            let page = node.search(&r.p, &filtered(r, now, oldest)?, now).await?;
            if page.items.is_empty() {
                bad.push(format!("filtered (oldest {oldest}) [{who}]: no hits"));
            }
            for h in &page.items {
                if !states.contains(&h.request.state) || !between(&h.request, pair) || h.at < from || h.at >= to {
                    bad.push(format!(
                        "filtered (oldest {oldest}) [{who}]: hit on {} ({}, at {}) outside the filters",
                        h.request.reference,
                        h.request.state.as_str(),
                        h.at
                    ));
                }
            }
            let ordered = page
                .items
                .windows(2)
                .all(|w| if oldest { w[0].at <= w[1].at } else { w[0].at >= w[1].at });
            if !ordered {
                bad.push(format!("filtered (oldest {oldest}) [{who}]: hits out of order"));
            }
        }
        // Identifier look-ups.
        for (name, input) in [
            ("lookup-ip", PLANTED_IP),
            ("lookup-net", PLANTED_NET),
            ("lookup-phone", PHONE_QUERY),
        ] {
            let e = s.ident(name)?;
            let l = node.lookup(&r.p, input, None, now).await?;
            let want = e.requests_for(ri);
            if l.request_count != want.min(cap) {
                bad.push(format!(
                    "{name} [{who}] {input}: {} requests, {want} planted and visible",
                    l.request_count
                ));
            }
            if l.requests.len() as u64 != want.min(50) {
                bad.push(format!(
                    "{name} [{who}] {input}: {} requests listed, expected {}",
                    l.requests.len(),
                    want.min(50)
                ));
            }
            if partner && l.requests.iter().any(|q| !between(q, pair)) {
                bad.push(format!("{name} [partner]: a request not between AG00 and OWN"));
            }
        }
        if !partner && s.ident("lookup-ip")?.own != IP_REQUESTS {
            bad.push(format!(
                "lookup-ip: {} requests hold {PLANTED_IP}, {IP_REQUESTS} were planted",
                s.ident("lookup-ip")?.own
            ));
        }
        // Listings filtered by words and by a target.
        for (name, q, target, want) in [
            (
                "list-q-common",
                Some(Q_COMMON),
                None,
                s.word("word-common")?.requests_for(ri),
            ),
            ("list-q-rare", Some(Q_RARE), None, s.word("word-rare")?.requests_for(ri)),
            (
                "list-target",
                None,
                Some(PLANTED_IP),
                s.ident("lookup-ip")?.requests_for(ri),
            ),
        ] {
            let f = list_filter(node, &r.p, q, target).await?;
            let page = node.list(&r.p, f, now).await?;
            if page.items.len() as u64 != want.min(50) {
                bad.push(format!(
                    "{name} [{who}]: {} rows, expected {} ({want} matching requests)",
                    page.items.len(),
                    want.min(50)
                ));
            }
            if partner && page.items.iter().any(|q| !between(q, pair)) {
                bad.push(format!("{name} [partner]: a request not between AG00 and OWN"));
            }
        }
    }
    if !bad.is_empty() {
        for b in &bad {
            eprintln!("VALIDATION FAILED: {b}");
        }
        bail!("{} checks of the search results failed (see above)", bad.len());
    }
    Ok(())
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

fn header(total: bool) {
    let (extra, dash) = if total {
        (
            format!(" {:>15} | {:<5} |", "p99 per round", "< 50"),
            "-----------------|-------|",
        )
    } else {
        (String::new(), "")
    };
    println!(
        "| {:<28} | {:>4} | {:>6} | {:>5} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |{extra}",
        "series", "rows", "count", "calls", "min ms", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    println!(
        "|{:-<30}|{:-<6}|{:-<8}|{:-<7}|{:-<10}|{:-<10}|{:-<10}|{:-<10}|{:-<10}|{dash}",
        "", "", "", "", "", "", "", "", ""
    );
}

fn line(name: &str, o: &Outcome, s: &Stats, rounds: Option<&str>) {
    let count = match o.count {
        Some((n, true)) => format!("{n}+"),
        Some((n, false)) => n.to_string(),
        None => "-".into(),
    };
    let extra = match rounds {
        Some(r) => format!(" {:>15} | {:<5} |", r, if s.p99 < TARGET { "yes" } else { "NO" }),
        None => String::new(),
    };
    println!(
        "| {:<28} | {:>4} | {:>6} | {:>5} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |{extra}",
        name,
        o.rows,
        count,
        s.count,
        fmt_ms(s.min),
        fmt_ms(s.p50),
        fmt_ms(s.p95),
        fmt_ms(s.p99),
        fmt_ms(s.max)
    );
}

// ---- query plans ----

/// Prints the plans of the listings (`Store::listing_sql` of the filter `Node::list` runs).
/// The SQL of `Node::search` is built inside the store and not exposed: no plan for it.
async fn explain(
    node: &Node,
    store: &Store,
    pool: &AnyPool,
    db: &Db,
    readers: &[Reader],
    cases: &[Case],
) -> Result<()> {
    let pg = !db.url.starts_with("sqlite:");
    println!();
    println!("plans of the searches (the first query of a page: on PostgreSQL its newest window) and the listings");
    for c in cases {
        let r = &readers[c.reader];
        let (sql, args) = match &c.op {
            Op::List { q, target } => {
                let mut f = list_filter(node, &r.p, q.as_deref(), target.as_deref()).await?;
                // What `Node::list` adds: the reader's agency.
                f.visible_to = Some(r.p.agency);
                store.listing_sql(&f).await?
            }
            Op::Search(params) => {
                let Some(q) = params.query()? else {
                    continue;
                };
                let counterpart = match &params.counterpart {
                    Some(code) => Some(agency_id(pool, code).await?),
                    None => None,
                };
                let ds = DocSearch {
                    sources: &params.sources,
                    states: &params.states,
                    counterpart,
                    from: params.from,
                    to: params.to,
                    oldest_first: params.oldest_first,
                    after_doc: params.cursor.as_deref().and_then(|c| c.parse().ok()),
                    ..doc_search(&r.p, &q)
                };
                store.search_page_sql(&ds).await?
            }
            _ => continue,
        };
        let plan_sql = if pg {
            format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")
        } else {
            format!("EXPLAIN QUERY PLAN {sql}")
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(plan_sql));
        for a in &args {
            query = match a {
                Arg::S(s) => query.bind(s.clone()),
                Arg::I(i) => query.bind(*i),
            };
        }
        let rows = query.fetch_all(pool).await?;
        println!("-- {}", c.name);
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
        for row in rows {
            let l: String = if pg { row.try_get(0)? } else { row.try_get(3)? };
            println!("   {l}");
        }
    }
    Ok(())
}

// ---- the index ----

/// Builds the index with `Store::search_rebuild` (timed), then gathers statistics (timed
/// apart) and measures the sizes.
async fn rebuild(store: &Store, pool: &AnyPool, db: &Db) -> Result<Indexed> {
    let sqlite = db.url.starts_with("sqlite:");
    let (docs_before, _) = store.search_size().await?;
    let size_before = db_size(pool, sqlite).await?;
    eprintln!("building the search index (Store::search_rebuild)...");
    let t = Instant::now();
    let (docs, keys) = store.search_rebuild().await?;
    let rebuild_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let stmts: &[&str] = if sqlite {
        &["ANALYZE search_docs", "ANALYZE search_targets"]
    } else {
        &["VACUUM ANALYZE search_docs", "VACUUM ANALYZE search_targets"]
    };
    for s in stmts {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string())).execute(pool).await?;
    }
    let analyze_seconds = t.elapsed().as_secs_f64();
    let size_after = db_size(pool, sqlite).await?;
    let parts = index_parts(pool, sqlite).await;
    let index_bytes = if sqlite {
        size_after - size_before
    } else {
        parts.iter().map(|(_, b)| *b).sum()
    };
    println!(
        "index built in {rebuild_seconds:.1} s: {docs} texts, {keys} target keys ({:.0} texts/s)",
        docs as f64 / rebuild_seconds.max(1e-9)
    );
    Ok(Indexed {
        docs,
        keys,
        rebuild_seconds,
        analyze_seconds,
        size_before,
        size_after,
        index_bytes,
        parts,
        was_empty: docs_before == 0,
    })
}

/// The size of the database: the SQLite file's pages, or the PostgreSQL schema's relations.
async fn db_size(pool: &AnyPool, sqlite: bool) -> Result<i64> {
    if sqlite {
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

/// The index's tables and their indexes: on PostgreSQL `search_docs` and `search_targets`
/// (each with its indexes and TOAST); on SQLite each object from `dbstat` when the library has
/// it (otherwise nothing: the size is then the file's growth).
async fn index_parts(pool: &AnyPool, sqlite: bool) -> Vec<(String, i64)> {
    let sql = if sqlite {
        "SELECT name, CAST(SUM(pgsize) AS BIGINT) FROM dbstat \
         WHERE name LIKE 'search!_%' ESCAPE '!' OR name LIKE 'sqlite!_autoindex!_search!_%' ESCAPE '!' \
         GROUP BY name ORDER BY name"
    } else {
        "SELECT t, CAST(pg_total_relation_size(CAST(t AS regclass)) AS BIGINT) \
         FROM (VALUES ('search_docs'), ('search_targets'), ('search_vocab'), ('search_spans')) AS v(t)"
    };
    match sqlx::query_as::<_, (String, i64)>(sql).fetch_all(pool).await {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("(no size per table: {e})");
            Vec::new()
        }
    }
}

// ---- seeding ----

/// The agencies of the seeded node and their codes.
struct World {
    own: AgencyId,
    ag00: AgencyId,
    foreign: Vec<AgencyId>,
    codes: HashMap<AgencyId, String>,
    now: i64,
}

impl World {
    /// Who sees a document of request `r` (by its two agencies and its state); `red` gives
    /// the writer's agency and the named user of a `TLP:RED` document.
    fn vis(&self, r: &seed::SeedRow, red: Option<(AgencyId, &str)>) -> Vis {
        let sees = |a: AgencyId, user: &str| {
            let request = r.requesting == a || (r.requested == a && r.state != State::Draft);
            request
                && match red {
                    None => true,
                    Some((writer, named)) => writer == a || named == user,
                }
        };
        Vis {
            own: sees(self.own, OWN_OFFICER),
            partner: sees(self.ag00, PARTNER_OFFICER),
        }
    }

    fn code(&self, a: AgencyId) -> &str {
        self.codes.get(&a).map(String::as_str).unwrap_or("AG??")
    }
}

/// One comment row of `request_events`.
struct CommentRow {
    id: String,
    request_id: String,
    at: i64,
    actor: String,
    text: String,
    data: Option<String>,
}

/// Inserts comments, many rows per statement.
async fn insert_comments(conn: &mut AnyConnection, rows: &[CommentRow]) -> Result<()> {
    for chunk in rows.chunks(400) {
        let sql = format!(
            "INSERT INTO request_events (id, request_id, at, actor, event, from_state, to_state, reason, data) VALUES {}",
            seed::value_rows(chunk.len(), 9)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            q = q
                .bind(c.id.clone())
                .bind(c.request_id.clone())
                .bind(c.at)
                .bind(c.actor.clone())
                .bind("comment")
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(c.text.clone())
                .bind(c.data.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts the officers that read (one of `OWN`, one of `AG00`) and the users the `TLP:RED`
/// comments name.
async fn insert_users(conn: &mut AnyConnection, w: &World) -> Result<()> {
    let mut users: Vec<(&str, AgencyId)> = vec![(OWN_OFFICER, w.own), (PARTNER_OFFICER, w.ag00)];
    users.extend(RED_USERS.iter().map(|u| (*u, w.own)));
    let sql = format!(
        "INSERT INTO users (id, username, display_name, agency_id, role, created_at, disabled) VALUES {}",
        seed::value_rows(users.len(), 7)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (name, agency) in users {
        q = q
            .bind(UserId::new().to_string())
            .bind(name)
            .bind(format!("Search Bench {name}"))
            .bind(agency.to_string())
            .bind(Role::Officer.as_str())
            .bind(w.now)
            .bind(0i64);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// The word queries whose matches the generator counts.
fn word_queries() -> Result<Vec<(Expect, Query)>> {
    [
        ("word-common", Q_COMMON),
        ("word-medium", Q_MEDIUM),
        ("word-rare", Q_RARE),
        ("phrase", Q_PHRASE),
        ("zh-common", Q_ZH_COMMON),
        ("zh-rare", Q_ZH_RARE),
        ("red-only", Q_RED),
    ]
    .into_iter()
    .map(|(n, q)| {
        Ok((
            Expect::new(n, q),
            parse_query(q).map_err(|e| anyhow!("query {q}: {e}"))?,
        ))
    })
    .collect()
}

/// Whether the folded tokens `toks` (as indexed) hold the term: its tokens at consecutive
/// positions, the last one as a prefix when the term says so.
fn term_matches(t: &Term, toks: &[String]) -> bool {
    let n = t.tokens.len();
    n > 0
        && toks.windows(n).any(|w| {
            w.iter().zip(&t.tokens).enumerate().all(|(j, (d, q))| {
                if j + 1 == n && t.last_is_prefix {
                    d.starts_with(q.as_str())
                } else {
                    d == q
                }
            })
        })
}

/// Whether a text matches a query as both backends' indexes match it.
fn query_matches(q: &Query, toks: &[String]) -> bool {
    q.terms.iter().all(|t| term_matches(t, toks) != t.negated)
}

/// Counts one document's matches; answers which queries matched (bit i for query i).
fn tally(queries: &mut [(Expect, Query)], text: &str, vis: Vis) -> u32 {
    let toks: Vec<String> = tokens(text).into_iter().map(|t| t.text).collect();
    let mut hit = 0u32;
    for (i, (e, q)) in queries.iter_mut().enumerate() {
        if query_matches(q, &toks) {
            e.add(vis);
            hit |= 1 << i;
        }
    }
    hit
}

/// A new request starts: nothing of it counted yet.
fn next_request(queries: &mut [(Expect, Query)]) {
    for (e, _) in queries {
        e.own_seen = false;
        e.partner_seen = false;
    }
}

/// Where planted texts fall: every `stride`-th text, `count` times at most.
struct Plant {
    stride: u64,
    count: u64,
}

impl Plant {
    fn new(total: u64, count: u64) -> Plant {
        Plant {
            stride: (total / count.max(1)).max(1),
            count,
        }
    }

    fn at(&self, t: u64) -> bool {
        t % self.stride == self.stride / 2 && t / self.stride < self.count
    }
}

/// Seeds the agencies, the reading officers, the requests (each with a generated summary,
/// case reference and, for about 30 %, typed targets) and the comments, counting every
/// query's matches as it goes; then (VACUUM) ANALYZE.
async fn seed_all(args: &Args, db: &Db, store: &Store, pool: &AnyPool) -> Result<Seeded> {
    if args.rows < 1_000 {
        bail!("--rows must be at least 1000 (the planted identifiers need room)");
    }
    let t0 = Instant::now();
    let now_ts = Timestamp::now();
    let now = now_ts.as_millisecond();
    let (own, foreign) = seed::agencies(store, now_ts).await?;
    let ag00 = *foreign.first().ok_or_else(|| anyhow!("no foreign agency"))?;
    let mut codes: HashMap<AgencyId, String> = HashMap::new();
    codes.insert(own, "OWN".into());
    for (k, a) in foreign.iter().enumerate() {
        codes.insert(*a, format!("AG{k:02}"));
    }
    let w = World {
        own,
        ag00,
        foreign,
        codes,
        now,
    };
    {
        let mut conn = pool.acquire().await?;
        insert_users(&mut conn, &w).await?;
    }
    let texts = TextGen::new()?;
    let mut queries = word_queries()?;
    let zh_common = queries
        .iter()
        .position(|(e, _)| e.q == Q_ZH_COMMON)
        .ok_or_else(|| anyhow!("no zh-common query"))?;
    let mut idents = [
        Expect::new("lookup-ip", PLANTED_IP),
        Expect::new("lookup-net", PLANTED_NET),
        Expect::new("lookup-phone", PHONE_QUERY),
    ];
    let mut s = Seeded {
        rows: args.rows,
        comments: args.comments,
        ..Default::default()
    };
    let rows = args.rows;
    let total_texts = rows + args.comments;
    let medium = Plant {
        stride: MEDIUM_EVERY,
        count: u64::MAX,
    };
    let rare = Plant::new(total_texts, RARE_TEXTS);
    let zh_rare = Plant::new(total_texts, ZH_RARE_TEXTS);
    let net = Plant::new(rows, NET_REQUESTS);
    let phone = Plant::new(rows, PHONE_REQUESTS);
    // The planted address: three requests, the second between OWN and AG00 (the first one
    // from 3/7 of the rows on that is not a draft, so that the partner sees it).
    let ip_first = rows / 7;
    let ip_third = 5 * rows / 7;
    let ip_second_from = 3 * rows / 7;
    let mut ip_second_done = false;

    // Requests as list-bench and queue-bench make them (same generator and seed); texts,
    // targets and comments from a second generator.
    let mut rng = StdRng::seed_from_u64(42);
    let mut trng = StdRng::seed_from_u64(18);
    let batch = args.batch.clamp(1, 1000);
    let tx_rows = args.tx_rows.max(batch);
    let mean = (args.comments / rows.max(1)) as i64;
    let mut seqs: HashMap<String, i64> = HashMap::new();
    let mut text_no = 0u64;
    let mut emitted = 0u64;
    let mut i = 0u64;
    while i < rows {
        let mut tx = pool.begin().await?;
        let tx_end = (i + tx_rows as u64).min(rows);
        while i < tx_end {
            let n = (tx_end - i).min(batch as u64);
            let mut batch_rows = Vec::with_capacity(n as usize);
            let mut refs = Vec::with_capacity(n as usize);
            let mut comments: Vec<CommentRow> = Vec::new();
            for idx in i..i + n {
                let mut r = seed::make_row(&mut rng, idx, rows, now, w.own, &w.foreign)?;
                let plant_ip = idx == ip_first
                    || idx == ip_third
                    || (!ip_second_done && idx >= ip_second_from && r.state != State::Draft);
                if plant_ip && idx != ip_first && idx != ip_third {
                    ip_second_done = true;
                    if r.requesting == w.own {
                        r.requested = w.ag00;
                    } else {
                        r.requesting = w.ag00;
                    }
                }
                let year = Timestamp::from_millisecond(r.created_at)?
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .year();
                let prefix = format!("{}-{year:04}", w.code(r.requesting));
                let seq = seqs.entry(prefix.clone()).or_insert(0);
                *seq += 1;
                let reference = liaison_store::reference_text(Some(&prefix), Some(*seq), "");
                refs.push((prefix, *seq));

                // The request's own text.
                next_request(&mut queries);
                let mut d = liaison_bench::draft(r.kind, r.requesting, r.requested, idx);
                d.urgency = r.urgency;
                d.case_reference = case_reference(&mut trng, w.code(r.requesting), year);
                let lang = texts.lang(&mut trng);
                let planted = planted_words(text_no, &medium, &rare, &zh_rare, false);
                d.summary = texts.text(&mut trng, lang, &planted);
                count_lang(&mut s, lang);
                let vis = w.vis(&r, None);
                let hit = tally(
                    &mut queries,
                    &format!("{reference}\n{}\n{}", d.case_reference, d.summary),
                    vis,
                );
                if lang == Lang::Zh && hit & (1 << zh_common) != 0 {
                    s.zh_common_in_zh += 1;
                }
                text_no += 1;

                // Targets: about 30 % of requests have 1–3, plus the planted ones.
                for e in idents.iter_mut() {
                    e.own_seen = false;
                    e.partner_seen = false;
                }
                let at = r.created_at;
                if trng.random_bool(0.3) {
                    for _ in 0..trng.random_range(1..=3) {
                        d.targets.push(random_target(&mut trng, at)?);
                    }
                }
                if plant_ip {
                    d.targets.push(ip_target(&mut trng, PLANTED_IP.parse()?, at)?);
                    idents[0].add(vis);
                }
                if net.at(idx) {
                    let a = IpAddr::V4(Ipv4Addr::new(198, 51, 100, trng.random_range(1..=254)));
                    d.targets.push(ip_target(&mut trng, a, at)?);
                    idents[1].add(vis);
                }
                if phone.at(idx) {
                    let form = PHONE_FORMS[(idx / phone.stride) as usize % PHONE_FORMS.len()];
                    d.targets.push(target(
                        TargetValue::Phone {
                            number: form.to_string(),
                        },
                        at,
                    )?);
                    idents[2].add(vis);
                }
                if !d.targets.is_empty() {
                    s.requests_with_targets += 1;
                    s.targets += d.targets.len() as u64;
                }
                r.case_reference = d.case_reference.clone();
                r.body = serde_json::to_string(&d)?;

                // Comments: about `mean` per request, exactly `--comments` in all.
                let goal = ((idx as u128 + 1) * args.comments as u128 / rows as u128) as i64;
                let k = if idx + 1 == rows {
                    args.comments - emitted
                } else {
                    let jitter = if mean > 0 { trng.random_range(-mean..=mean) } else { 0 };
                    ((goal - emitted as i64 + jitter).max(0) as u64).min(args.comments - emitted)
                };
                for _ in 0..k {
                    let c = comment(&mut trng, &texts, &w, &r, text_no, &medium, &rare, &zh_rare)?;
                    count_lang(&mut s, c.lang);
                    if c.red {
                        s.red_comments += 1;
                    }
                    let hit = tally(&mut queries, &c.row.text, c.vis);
                    if c.lang == Lang::Zh && hit & (1 << zh_common) != 0 {
                        s.zh_common_in_zh += 1;
                    }
                    comments.push(c.row);
                    text_no += 1;
                }
                emitted += k;
                batch_rows.push(r);
            }
            seed::insert_rows(&mut tx, &batch_rows, Some(&refs)).await?;
            insert_comments(&mut tx, &comments).await?;
            i += n;
        }
        tx.commit().await?;
        eprint!(
            "\rseeded {i}/{rows} requests, {emitted} comments ({:.0} s)",
            t0.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    let analyze: Vec<String> = if db.url.starts_with("sqlite:") {
        vec!["ANALYZE".into()]
    } else {
        ["requests", "request_events", "users", "agencies"]
            .iter()
            .map(|t| format!("VACUUM ANALYZE {t}"))
            .collect()
    };
    for sql in analyze {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    }
    s.seed_seconds = t0.elapsed().as_secs_f64();
    s.words = queries.into_iter().map(|(e, _)| e).collect();
    s.idents = idents.into_iter().collect();
    println!(
        "seeded {rows} requests and {} comments and ran (VACUUM) ANALYZE in {:.1} s",
        args.comments, s.seed_seconds
    );
    Ok(s)
}

fn count_lang(s: &mut Seeded, lang: Lang) {
    match lang {
        Lang::En => s.texts_en += 1,
        Lang::Zh => s.texts_zh += 1,
        Lang::Mixed => s.texts_mixed += 1,
    }
}

/// The planted words of text number `t`.
fn planted_words(t: u64, medium: &Plant, rare: &Plant, zh_rare: &Plant, red: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    if medium.at(t) {
        out.push(Q_MEDIUM);
    }
    if rare.at(t) {
        out.push(Q_RARE);
    }
    if zh_rare.at(t) {
        out.push(Q_ZH_RARE);
    }
    if red {
        out.push(Q_RED);
    }
    out
}

/// A generated comment with what the counting needs.
struct Comment {
    row: CommentRow,
    lang: Lang,
    red: bool,
    vis: Vis,
}

/// One comment on `r`: after the request's creation (within 120 days) and before now; 3 %
/// `TLP:RED`, written by the node's side and naming one of its users; 10 % without event data
/// (written before markings); the rest `TLP:AMBER+STRICT`, `TLP:AMBER` or `TLP:GREEN`, by
/// either side.
#[allow(clippy::too_many_arguments)]
fn comment(
    rng: &mut StdRng,
    texts: &TextGen,
    w: &World,
    r: &seed::SeedRow,
    t: u64,
    medium: &Plant,
    rare: &Plant,
    zh_rare: &Plant,
) -> Result<Comment> {
    let span = (w.now - r.created_at).clamp(1, 120 * DAY);
    let at = r.created_at + rng.random_range(0..span);
    let red = rng.random_bool(0.03);
    let own_side = if r.requesting == w.own {
        Side::Requesting
    } else {
        Side::Requested
    };
    let side = if red {
        own_side
    } else if rng.random_bool(0.5) {
        Side::Requesting
    } else {
        Side::Requested
    };
    let writer = match side {
        Side::Requesting => r.requesting,
        Side::Requested => r.requested,
    };
    let named = RED_USERS[rng.random_range(0..RED_USERS.len())];
    let data = if red {
        let m = Marking {
            tlp: Tlp::Red,
            recipients: vec![named.to_string()],
        };
        Some(serde_json::json!({ "marking": m, "side": side }).to_string())
    } else {
        let tlp = match rng.random_range(0..100) {
            0..10 => None,
            10..20 => Some(Tlp::Green),
            20..35 => Some(Tlp::Amber),
            _ => Some(Tlp::AmberStrict),
        };
        tlp.map(|tlp| serde_json::json!({ "marking": Marking::new(tlp), "side": side }).to_string())
    };
    // Without event data a comment reads as written by the requesting side.
    let writer = if data.is_none() { r.requesting } else { writer };
    let actor = if writer == w.own {
        OWN_OFFICER.to_string()
    } else {
        format!("{}.officer", w.code(writer).to_lowercase())
    };
    let lang = texts.lang(rng);
    let text = texts.text(rng, lang, &planted_words(t, medium, rare, zh_rare, red));
    Ok(Comment {
        row: CommentRow {
            id: EventId::at(Timestamp::from_millisecond(at)?, rng.random()).to_string(),
            request_id: r.id.to_string(),
            at,
            actor,
            text,
            data,
        },
        lang,
        red,
        vis: w.vis(r, red.then_some((writer, named))),
    })
}

/// A case reference in the requesting agency's style.
fn case_reference(rng: &mut StdRng, code: &str, year: i16) -> String {
    let n = rng.random_range(1..100_000);
    match (code, rng.random_range(0..3)) {
        ("OWN", _) => format!("OWN-CY-{year}-{n:05}"),
        (c, 0) if c.ends_with('0') => format!("（{year}）{c}刑协字第{n}号"),
        (c, 1) => format!("{c}/{year}/{n:05}"),
        (c, _) => format!("{c}-CR-{n:06}"),
    }
}

// ---- targets ----

/// A target with a period of interest ending a day before `at` (ms).
fn target(value: TargetValue, at: i64) -> Result<Target> {
    Ok(Target {
        value,
        from: Timestamp::from_millisecond(at - 60 * DAY)?,
        until: Timestamp::from_millisecond(at - DAY)?,
        provider: None,
    })
}

/// An IP address target observed some days before `at` (ms).
fn ip_target(rng: &mut StdRng, address: IpAddr, at: i64) -> Result<Target> {
    let observed = at - rng.random_range(2 * DAY..50 * DAY);
    target(
        TargetValue::Ip {
            address,
            port: None,
            observed_at: Timestamp::from_millisecond(observed)?,
            zone: None,
        },
        at,
    )
}

/// First octets of the background IPv4 addresses (none near the planted ones).
const V4_FIRST: [u8; 24] = [
    5, 31, 37, 45, 46, 62, 77, 80, 85, 91, 95, 103, 109, 112, 114, 117, 121, 139, 154, 176, 185, 193, 212, 222,
];

fn random_v4(rng: &mut StdRng) -> Ipv4Addr {
    Ipv4Addr::new(
        V4_FIRST[rng.random_range(0..V4_FIRST.len())],
        rng.random(),
        rng.random(),
        rng.random_range(1..255),
    )
}

const DOMAIN_A: [&str; 15] = [
    "secure", "my", "online", "global", "fast", "smart", "cloud", "easy", "best", "first", "royal", "golden", "asia",
    "euro", "prime",
];
const DOMAIN_B: [&str; 15] = [
    "pay", "bank", "trade", "coin", "mail", "shop", "invest", "wallet", "loan", "ticket", "parcel", "express",
    "support", "verify", "login",
];
const TLDS: [&str; 10] = ["com", "net", "top", "xyz", "cn", "info", "shop", "online", "co", "io"];

fn random_domain(rng: &mut StdRng) -> String {
    let a = DOMAIN_A[rng.random_range(0..DOMAIN_A.len())];
    let b = DOMAIN_B[rng.random_range(0..DOMAIN_B.len())];
    let tld = TLDS[rng.random_range(0..TLDS.len())];
    match rng.random_range(0..3) {
        0 => format!("{a}-{b}.{tld}"),
        1 => format!("{a}{b}{}.{tld}", rng.random_range(1..1000)),
        _ => format!("{b}.{a}{}.{tld}", rng.random_range(1..100)),
    }
}

fn hex(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect()
}

/// A random phone number in E.164, written in one of several ways (never the planted one).
fn random_phone(rng: &mut StdRng) -> String {
    loop {
        let s = match rng.random_range(0..4) {
            0 | 1 => {
                let p = rng.random_range(130..=199);
                let (a, b) = (rng.random_range(0..10_000), rng.random_range(0..10_000));
                if rng.random_bool(0.5) {
                    format!("+86{p}{a:04}{b:04}")
                } else {
                    format!("+86 {p} {a:04} {b:04}")
                }
            }
            2 => format!(
                "+1 {} 555 {:04}",
                rng.random_range(201..990),
                rng.random_range(0..10_000)
            ),
            _ => format!(
                "+44 20 {:04} {:04}",
                rng.random_range(0..10_000),
                rng.random_range(0..10_000)
            ),
        };
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        if digits != "8613800138000" {
            return s;
        }
    }
}

/// A random target: IPv4 35 %, IPv6 8 %, domain 17 %, phone 15 %, wallet 10 %, e-mail 15 %.
fn random_target(rng: &mut StdRng, at: i64) -> Result<Target> {
    let roll = rng.random_range(0..100);
    let value = match roll {
        0..35 => {
            let a = random_v4(rng);
            return ip_target(rng, IpAddr::V4(a), at);
        }
        35..43 => {
            let a = Ipv6Addr::new(
                0x2400 + rng.random_range(0..0x400),
                rng.random(),
                rng.random(),
                rng.random(),
                0,
                0,
                0,
                rng.random_range(1..0xffff),
            );
            return ip_target(rng, IpAddr::V6(a), at);
        }
        43..60 => TargetValue::Domain {
            name: random_domain(rng),
        },
        60..75 => TargetValue::Phone {
            number: random_phone(rng),
        },
        75..85 => {
            if rng.random_bool(0.5) {
                TargetValue::CryptoWallet {
                    currency: "ETH".into(),
                    address: format!("0x{}", hex(rng, 40)),
                }
            } else {
                const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
                let tail: String = (0..38)
                    .map(|_| char::from(BECH32[rng.random_range(0..BECH32.len())]))
                    .collect();
                TargetValue::CryptoWallet {
                    currency: "BTC".into(),
                    address: format!("bc1q{tail}"),
                }
            }
        }
        _ => TargetValue::Email {
            address: format!(
                "{}{}@{}",
                [
                    "support",
                    "admin",
                    "service",
                    "kefu",
                    "zhang.wei",
                    "li.na",
                    "john.doe",
                    "info"
                ][rng.random_range(0..8)],
                rng.random_range(1..10_000),
                random_domain(rng)
            ),
        },
    };
    target(value, at)
}

// ---- texts ----

/// The language of a generated text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Zh,
    Mixed,
}

/// A word list with Zipf-like weights: the word of rank r (from 0) weighs 1/(r+1).
struct Zipf {
    words: Vec<&'static str>,
    cumulative: Vec<f64>,
}

impl Zipf {
    /// The list with `word` put at `rank`.
    fn new(list: &[&'static str], word: &'static str, rank: usize) -> Zipf {
        let mut words: Vec<&'static str> = Vec::with_capacity(list.len() + 1);
        for w in list {
            if !words.contains(w) {
                words.push(w);
            }
        }
        words.insert(rank.min(words.len()), word);
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|r| {
                total += 1.0 / (r + 1) as f64;
                total
            })
            .collect();
        Zipf { words, cumulative }
    }

    fn pick(&self, rng: &mut StdRng) -> &'static str {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random::<f64>() * total;
        let k = self.cumulative.partition_point(|c| *c < x);
        self.words.get(k).or(self.words.last()).copied().unwrap_or("")
    }
}

/// The text generator: English and Chinese words with Zipf-like frequencies.
struct TextGen {
    en: Zipf,
    zh: Zipf,
}

/// Whether a piece ends or starts with ASCII (English words, identifiers, `,` `.`): two such
/// pieces are separated by a space; Chinese is written without spaces.
fn ascii_end(s: &str) -> bool {
    s.chars().last().is_some_and(|c| c.is_ascii())
}

fn ascii_start(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '+')
}

impl TextGen {
    /// The generator; fails if a vocabulary holds a planted word or one of its characters
    /// (the planted counts would no longer be known).
    fn new() -> Result<TextGen> {
        let zh_rare: Vec<char> = Q_ZH_RARE.chars().collect();
        for w in ZH_WORDS {
            if w.chars().any(|c| zh_rare.contains(&c)) || w.contains(Q_ZH_COMMON) {
                bail!("the Chinese vocabulary holds {w}, which overlaps a query word");
            }
        }
        for w in EN_WORDS {
            if [Q_MEDIUM, Q_RARE, Q_RED, "mule"].iter().any(|q| w.starts_with(q)) {
                bail!("the English vocabulary holds {w}, which a query word finds");
            }
        }
        Ok(TextGen {
            en: Zipf::new(EN_WORDS, Q_COMMON, EN_COMMON_RANK),
            zh: Zipf::new(ZH_WORDS, Q_ZH_COMMON, ZH_COMMON_RANK),
        })
    }

    /// 45 % English, 45 % Chinese, 10 % both.
    fn lang(&self, rng: &mut StdRng) -> Lang {
        match rng.random_range(0..100) {
            0..45 => Lang::En,
            45..90 => Lang::Zh,
            _ => Lang::Mixed,
        }
    }

    /// A text of about 40 to 250 characters in `lang`, with the `planted` words at random
    /// places; 3 % hold an identifier (an IP address, a domain, an e-mail address) and 1 % of
    /// the English ones the phrase "money mule".
    fn text(&self, rng: &mut StdRng, lang: Lang, planted: &[&str]) -> String {
        let target = rng.random_range(40..=235usize);
        let mut pieces: Vec<String> = Vec::new();
        let mut len = 0;
        let mut since_punct = 0;
        let mut punct_every = rng.random_range(5..13);
        while len < target {
            let zh = match lang {
                Lang::En => false,
                Lang::Zh => true,
                Lang::Mixed => rng.random_bool(0.6),
            };
            let w = if zh { self.zh.pick(rng) } else { self.en.pick(rng) };
            len += w.chars().count() + usize::from(!zh);
            pieces.push(w.to_string());
            since_punct += 1;
            if since_punct >= punct_every && len + 2 < target {
                pieces.push(if zh { "，" } else { "," }.to_string());
                since_punct = 0;
                punct_every = rng.random_range(5..13);
            }
        }
        if rng.random_bool(0.03) {
            let ident = match rng.random_range(0..3) {
                0 => random_v4(rng).to_string(),
                1 => random_domain(rng),
                _ => format!("kefu{}@{}", rng.random_range(1..1000), random_domain(rng)),
            };
            let at = rng.random_range(0..=pieces.len());
            pieces.insert(at, ident);
        }
        if lang == Lang::En && rng.random_bool(0.01) {
            let at = rng.random_range(0..=pieces.len());
            pieces.insert(at, "money mule".into());
        }
        for p in planted {
            let at = rng.random_range(0..=pieces.len());
            pieces.insert(at, (*p).to_string());
        }
        let mut out = String::with_capacity(len + 16);
        for p in &pieces {
            if ascii_end(&out) && ascii_start(p) {
                out.push(' ');
            }
            out.push_str(p);
        }
        out.push(if lang == Lang::En { '.' } else { '。' });
        // English sentences start with a capital.
        if let Some(first) = out.get(..1)
            && first.chars().all(|c| c.is_ascii_lowercase())
        {
            out.replace_range(..1, &first.to_ascii_uppercase());
        }
        out
    }
}

/// English words, most frequent first (function words, then cybercrime and ordinary words);
/// [`Q_COMMON`] is put at rank [`EN_COMMON_RANK`]. No word starts with a planted word or
/// with `mule`.
#[rustfmt::skip]
const EN_WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "was", "for", "on", "with", "from", "by", "that", "is", "at", "as", "were",
    "this", "which", "an", "be", "has", "have", "are", "it", "victim", "suspect", "payment", "bank", "transfer",
    "their", "not", "after", "server", "phishing", "fraud", "email", "wallet", "subscriber", "data", "his", "her",
    "into", "via", "information", "request", "police", "investigation", "evidence", "records", "provider", "domain",
    "address", "login", "password", "customer", "money", "funds", "transaction", "cryptocurrency", "bitcoin",
    "scam", "online", "website", "platform", "user", "messages", "phone", "number", "calls", "invoice", "company",
    "network", "malware", "ransomware", "attack", "intrusion", "hospital", "logs", "traffic", "hosting", "service",
    "identity", "stolen", "card", "credit", "loan", "investment", "romance", "exchange", "deposit", "withdrawal",
    "linked", "registered", "used", "sent", "received", "opened", "created", "reported", "identified", "suspected",
    "alleged", "contacted", "requested", "preserved", "disclosed", "accounts", "through", "between", "about",
    "than", "also", "all", "any", "other", "more", "some", "only", "over", "under", "before", "during", "within",
    "without", "each", "day", "week", "month", "year", "time", "people", "family", "office", "home", "city",
    "report", "case", "officer", "team", "meeting", "letter", "document", "review", "urgent", "please", "confirm",
    "provide", "details", "regarding", "following", "attached", "reference", "period", "between", "until", "since",
    "unknown", "several", "multiple", "large", "small", "new", "old", "first", "last", "same", "different",
    "further", "additional", "relevant", "possible", "likely", "clear", "known", "foreign", "local", "national",
    "international", "court", "order", "warrant", "legal", "basis", "treaty", "assistance", "mutual", "cooperation",
    "authority", "agency", "prosecutor", "judge", "hearing", "charge", "arrest", "search", "seizure", "freeze",
    "asset", "assets", "proceeds", "laundering", "cash", "currency", "dollars", "euros", "yuan", "amount", "total",
    "balance", "statement", "history", "activity", "session", "device", "mobile", "laptop", "computer", "router",
    "cloud", "storage", "backup", "file", "files", "archive", "image", "video", "photo", "chat", "group", "channel",
    "telegram", "wechat", "whatsapp", "signal", "message", "text", "sms", "voice", "call", "number", "sim",
    "carrier", "operator", "ip", "port", "timestamp", "timezone", "utc", "vpn", "proxy", "tor", "exit", "node",
    "relay", "botnet", "command", "control", "infrastructure", "panel", "kit", "spam", "campaign", "target",
    "targets", "victims", "businesses", "employees", "staff", "manager", "director", "ceo", "fake", "impersonation",
    "spoofed", "forged", "counterfeit", "scheme", "network", "organised", "crime", "criminal", "offence",
    "offender", "accomplice", "courier", "recruited", "job", "offer", "advert", "social", "media", "profile",
    "profiles", "followers", "dating", "app", "apps", "download", "install", "update", "patch", "vulnerability",
    "exploit", "breach", "leak", "dump", "database", "credentials", "token", "tokens", "key", "keys", "encrypted",
    "decrypted", "ransom", "demand", "paid", "pay", "paying", "refund", "chargeback", "merchant", "shop", "store",
    "order", "delivery", "parcel", "shipment", "address", "name", "names", "birth", "passport", "license", "photo",
    "selfie", "verification", "kyc", "compliance", "team", "desk", "hotline", "ticket", "complaint", "victim",
    "statement", "witness", "interview", "analysis", "forensic", "examination", "copy", "image", "hash", "hashes",
    "sample", "samples", "indicator", "indicators", "notice", "takedown", "blocked", "suspended", "closed",
    "pending", "answered", "refused", "executed", "partial", "complete", "deadline", "extension", "preservation",
    "disclosure", "subscriber", "content", "metadata", "traffic", "location", "cell", "tower", "roaming", "border",
    "travel", "flight", "hotel", "rental", "vehicle", "plate", "camera", "footage", "morning", "evening", "night",
    "monday", "friday", "weekend", "yesterday", "today", "tomorrow", "soon", "again", "still", "already", "never",
    "always", "often", "usually", "quickly", "carefully", "directly", "indirectly", "together", "separately",
];

/// Common Chinese words (two to four characters, and a few one-character function words),
/// most frequent first; [`Q_ZH_COMMON`] is put at rank [`ZH_COMMON_RANK`]. No word holds a
/// character of [`Q_ZH_RARE`] or the word [`Q_ZH_COMMON`].
#[rustfmt::skip]
const ZH_WORDS: &[&str] = &[
    "的", "了", "在", "是", "和", "与", "对", "将", "被", "向", "从", "我们", "公司", "账户", "转账", "银行", "数据", "调取", "冻结", "嫌疑人",
    "服务器", "网站", "钓鱼", "电信", "用户", "信息", "资金", "平台", "手机", "号码", "记录", "警方", "案件", "调查", "证据", "受害人", "支付", "交易",
    "网络", "系统", "地址", "登录", "密码", "客户", "投资", "理财", "贷款", "虚拟货币", "比特币", "钱包", "境外", "境内", "协查", "请求", "提供", "相关",
    "情况", "时间", "期间", "通过", "使用", "注册", "实名", "认证", "身份证", "短信", "电话", "微信", "支付宝", "聊天", "群组", "链接", "下载", "软件",
    "应用", "木马", "病毒", "攻击", "入侵", "漏洞", "勒索", "加密", "解密", "日志", "流量", "域名", "托管", "运营商", "基站", "定位", "查询", "核实",
    "反馈", "回复", "函件", "法律", "依据", "条约", "司法", "协助", "刑事", "立案", "侦查", "逮捕", "起诉", "判决", "公安", "机关", "部门", "单位",
    "人员", "团伙", "组织", "成员", "上线", "下线", "接收", "发送", "转移", "提现", "充值", "流水", "明细", "开户", "资料", "信用卡", "借记卡", "商户",
    "订单", "物流", "快递", "包裹", "仓库", "地区", "国家", "城市", "省份", "北京", "上海", "广东", "深圳", "香港", "美国", "英国", "日本", "新加坡",
    "今天", "昨天", "上午", "下午", "晚上", "本周", "本月", "去年", "目前", "已经", "正在", "需要", "可以", "应当", "请求方", "被请求方", "紧急", "尽快",
    "保全", "冻结令", "扣押", "没收", "返还", "赔偿", "损失", "金额", "人民币", "美元", "万元", "多次", "大量", "少量", "部分", "全部", "其他", "以及",
    "并且", "但是", "因为", "所以", "如果", "由于", "根据", "关于", "对于", "为了", "进行", "发现", "确认", "显示", "表明", "涉嫌", "涉案", "案发",
    "报案", "举报", "线索", "分析", "研判", "比对", "追踪", "溯源", "取证", "鉴定", "存储", "备份", "删除", "恢复", "访问", "控制", "管理", "维护",
    "安全", "风险", "异常", "可疑", "重要", "主要", "一般", "问题", "工作", "联系", "沟通", "会议", "报告", "文件", "材料", "附件", "签字", "盖章",
    "翻译", "客服", "冒充", "刷单", "返利", "兼职", "招聘", "网购", "退款", "快递员", "中奖", "彩票", "游戏", "装备", "点卡", "直播", "主播", "打赏",
    "粉丝", "视频", "图片", "截图", "聊天记录", "通话记录", "银行卡", "收款码", "二维码", "验证码", "手续费", "保证金", "解冻费", "安全账户", "洗钱", "跑分",
    "地下钱庄", "汇款", "境外账户", "离岸", "空壳公司", "法人", "股东", "合同", "发票", "税务", "海关", "边境", "出入境", "护照", "签证", "航班", "酒店",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_follows_the_query_rules() -> Result<()> {
        let toks = |s: &str| tokens(s).into_iter().map(|t| t.text).collect::<Vec<_>>();
        let q = |s: &str| parse_query(s).map_err(|e| anyhow!("{e}"));
        assert!(query_matches(&q("account")?, &toks("two Accounts frozen")));
        assert!(!query_matches(&q("\"money mule\"")?, &toks("money mules")));
        assert!(query_matches(&q("\"money mule\"")?, &toks("a Money Mule, again")));
        assert!(query_matches(&q("诈骗")?, &toks("电信诈骗团伙")));
        assert!(!query_matches(&q("诈骗")?, &toks("诈 骗")));
        Ok(())
    }

    #[test]
    fn texts_have_the_promised_shape() -> Result<()> {
        let g = TextGen::new()?;
        let mut rng = StdRng::seed_from_u64(1);
        for lang in [Lang::En, Lang::Zh, Lang::Mixed] {
            for _ in 0..200 {
                let t = g.text(&mut rng, lang, &[Q_RARE]);
                let n = t.chars().count();
                assert!((40..=300).contains(&n), "{n} characters: {t}");
                assert!(query_matches(
                    &parse_query(Q_RARE).map_err(|e| anyhow!("{e}"))?,
                    &tokens(&t).into_iter().map(|t| t.text).collect::<Vec<_>>()
                ));
            }
        }
        Ok(())
    }
}
