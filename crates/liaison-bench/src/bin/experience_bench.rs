//! Observed-duration medians over many answered requests (`liaison_service::experience`).
//!
//! A submission's legal assessment uses the node's own medians per (requested state, channel).
//! They are recomputed every 10 minutes from answered requests, each of which carries a ~10 KB
//! assessment. This times one recomputation (what the first submission waits for; later ones
//! run in the background) over N answered requests: one real request is walked through the
//! lifecycle with its real assessment, then cloned N times in SQL with varied dates.

use anyhow::{Context, Result, bail};
use clap::Parser;
use jiff::{SignedDuration, Timestamp};
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::RequestKind;
use liaison_core::{CountryCode, Role};
use liaison_service::experience::Experience;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Liaison observed-duration medians over many answered requests")]
struct Args {
    /// Answered requests (with assessments) to store before measuring.
    #[arg(long, default_value_t = 50_000)]
    answered: u32,
    /// Timed recomputations.
    #[arg(long, default_value_t = 5)]
    iterations: u32,
    /// Database URL (`sqlite://PATH` or `postgres://...`); default: a new SQLite file in a temp dir.
    #[arg(long)]
    database_url: Option<String>,
    /// Use a fresh schema in the local PostgreSQL.
    #[arg(long)]
    postgres: bool,
    /// Rule pack directory (default: the workspace's rules/).
    #[arg(long)]
    rules: Option<std::path::PathBuf>,
    /// Keep the temporary SQLite database.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.answered == 0 || args.iterations == 0 {
        bail!("--answered and --iterations must be positive");
    }
    let db = liaison_bench::Db::resolve(args.database_url.clone(), args.postgres).await?;
    let r = run(&args, &db).await;
    db.cleanup(args.keep);
    r
}

async fn run(args: &Args, db: &liaison_bench::Db) -> Result<()> {
    let b = liaison_bench::bench_node(db, args.rules.clone()).await?;
    let (store, node, logins) = (b.store, b.node, b.logins);
    let now = Timestamp::now();
    let who = |agency: &str, role: Role| {
        logins
            .iter()
            .find(|l| l.agency == agency && l.role == role)
            .map(|l| l.token.clone())
            .context("no login")
    };

    // One request through the lifecycle, with the assessment made on submission.
    let t0 = now - SignedDuration::from_hours(24 * 400);
    let officer = node.authenticate(&who("FBI", Role::Officer)?, now).await?;
    let draft = liaison_bench::draft(RequestKind::StoredContent, b.fbi.id, b.mps.id, 1);
    let r = node.create_request(&officer, draft, t0).await?;
    let mut version = r.request.version;
    for (agency, role, state) in [
        ("FBI", Role::Officer, State::Submitted),
        ("CN-MPS", Role::Desk, State::Acknowledged),
        ("CN-MPS", Role::LegalReviewer, State::InReview),
        ("CN-MPS", Role::LegalReviewer, State::Accepted),
        ("CN-MPS", Role::Officer, State::Executing),
        ("CN-MPS", Role::Officer, State::Answered),
    ] {
        let p = node.authenticate(&who(agency, role)?, now).await?;
        let input = TransitionInput {
            to: Some(state),
            ..Default::default()
        };
        version = node
            .transition(&p, r.request.id, version, input, t0 + SignedDuration::from_hours(24))
            .await?
            .request
            .version;
    }
    let stored = store.request(r.request.id, None).await?;
    let size = stored.assessment.as_ref().map(|a| a.get().len()).unwrap_or(0);

    // Its clones: submitted one minute apart going back from t0, answered after 20–219 days.
    let t_seed = Instant::now();
    let id = r.request.id.to_string();
    let n = i64::from(args.answered);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
         INSERT INTO requests (id, kind, urgency, state, requesting_agency, requested_agency, case_reference, body, version, \
         created_at, updated_at, submitted_at, acknowledged_at, answered_at, ack_due, answer_due, preserved_until, next_due, rule_pack_version) \
         SELECT r.id || '-' || n.i, r.kind, r.urgency, r.state, r.requesting_agency, r.requested_agency, r.case_reference, r.body, r.version, \
         r.created_at - n.i * 60000, r.updated_at, r.submitted_at - n.i * 60000, r.acknowledged_at, \
         r.submitted_at - n.i * 60000 + (20 + n.i % 200) * 86400000, r.ack_due, r.answer_due, r.preserved_until, NULL, r.rule_pack_version \
         FROM requests r, n WHERE r.id = $1",
    )
    .bind(&id)
    .bind(n)
    .execute(&mut *tx)
    .await
    .context("cloning the request")?;
    sqlx::query(
        "INSERT INTO request_assessments (request_id, assessment) \
         SELECT c.id, a.assessment FROM requests c, request_assessments a WHERE a.request_id = $1 AND c.id LIKE $2",
    )
    .bind(&id)
    .bind(format!("{id}-%"))
    .execute(&mut *tx)
    .await
    .context("cloning the assessment")?;
    tx.commit().await?;
    pool.close().await;
    eprintln!(
        "{} | {} answered requests, assessment {size} bytes each | seeded in {:.1} s | load average {}",
        db.backend,
        n + 1,
        t_seed.elapsed().as_secs_f64(),
        liaison_bench::load_average()
    );

    let cn = CountryCode::parse("CN")?;
    let mut times = Vec::new();
    for _ in 0..args.iterations {
        // A new cache each time: nothing cached, so the call recomputes before it answers.
        let exp = Arc::new(Experience::default());
        let t = Instant::now();
        let medians = exp.for_node(&node, cn, now).await;
        times.push(t.elapsed());
        let samples: u32 = medians.values().map(|d| d.samples).sum();
        if samples == 0 {
            bail!("no medians computed: {medians:?}");
        }
        println!(
            "recomputed in {:.1} ms: {samples} samples, {medians:?}",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    times.sort();
    println!(
        "recomputation over {} answered requests: median {:.1} ms, worst {:.1} ms",
        n + 1,
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
    );
    Ok(())
}
