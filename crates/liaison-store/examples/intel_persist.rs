//! Persistence benchmark for the clean-up state: how many NEW indicators per second
//! `IntelTx::save_indicators` writes (one large transaction, committed), how fast known ones
//! are updated, how fast the state reloads, and how fast new indicators are added to a table
//! that already holds many (the incremental case).
//!
//! ```sh
//! cargo run --release -p liaison-store --example intel_persist -- [INDICATORS] [sqlite|postgres|both]
//! ```
//! SQLite goes to a fresh file under the temp directory (WAL, `synchronous = NORMAL`, the
//! store's pragmas); PostgreSQL to a fresh schema of `LIAISON_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Each phase prints its wall-clock time and the CPU time of the whole process during it
//! (`/proc/self/stat`, all threads: the async side plus sqlx's SQLite worker thread), so a
//! run on a loaded machine still shows what the work costs.

use liaison_core::{CountryCode, Tlp};
use liaison_intel::CleanupState;
use liaison_intel::model::{Classification, Event, IndicatorValue, PartnerId};
use liaison_store::Store;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

type BoxError = Box<dyn std::error::Error>;

fn build_state(n: u32) -> Result<CleanupState, BoxError> {
    let feed: Arc<str> = Arc::from("bench feed");
    let malware: Arc<str> = Arc::from("Emotet");
    let org: Arc<str> = Arc::from("Example Telecom");
    let countries = ["CN", "US", "DE", "GB", "RU", "NL", "FR", "BR"];
    let ccs: Vec<CountryCode> = countries
        .iter()
        .map(|c| CountryCode::parse(c))
        .collect::<Result<_, _>>()?;
    let partners: Vec<PartnerId> = ["CN-CNCERT", "FBI", "DE-BKA", "UK-NCA"]
        .iter()
        .map(|p| PartnerId::new(p))
        .collect();
    let mut state = CleanupState::new();
    let t0 = 1_790_000_000i64;
    for i in 0..n {
        // A bijection on u32 (odd multiplier), so the addresses are distinct and in random order.
        let ip = Ipv4Addr::from(i.wrapping_mul(2_654_435_761).rotate_right(7));
        let mut ev = Event::new(IndicatorValue::Ipv4(ip), feed.clone(), t0 + i64::from(i % 86_400));
        ev.classification = if i.is_multiple_of(2) {
            Classification::C2Server
        } else {
            Classification::Phishing
        };
        ev.malware = Some(malware.clone());
        ev.port = Some(443);
        ev.confidence = 80;
        ev.tlp = Tlp::Green;
        ev.victim_count = Some(i % 500);
        ev.victim_country = Some(ccs[(i % 3) as usize]);
        ev.source_country = Some(ccs[(i as usize) % ccs.len()]);
        ev.source_asn = Some(64_500 + i % 100);
        ev.as_org = Some(org.clone());
        ev.partner = Some(partners[(i as usize) % partners.len()].clone());
        state.observe(&ev);
    }
    Ok(state)
}

/// CPU seconds of this process so far (user + system, all threads).
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

struct Phase {
    wall: f64,
    cpu: f64,
}

impl Phase {
    fn show(&self, what: &str, rows: usize) -> String {
        format!(
            "{what} {:>5.2} s = {:>7.0}/s (CPU {:.2} s)",
            self.wall,
            rows as f64 / self.wall,
            self.cpu
        )
    }
}

async fn timed<F: std::future::Future<Output = Result<(), BoxError>>>(f: F) -> Result<Phase, BoxError> {
    let (t, c) = (Instant::now(), cpu_secs());
    f.await?;
    Ok(Phase {
        wall: t.elapsed().as_secs_f64(),
        cpu: cpu_secs() - c,
    })
}

async fn save(store: &Store, state: &CleanupState, ixs: &[u32]) -> Result<(), BoxError> {
    let mut tx = store.intel_begin().await?;
    let written = tx.save_indicators(state, ixs).await?;
    tx.commit().await?;
    if written != ixs.len() as u64 {
        return Err(format!("wrote {written} rows, expected {}", ixs.len()).into());
    }
    Ok(())
}

/// `state` with every indicator seen again an hour later (new last-seen time and count).
fn resighted(state: &CleanupState) -> CleanupState {
    let mut later = state.clone();
    for ind in &state.indicators {
        let mut ev = Event::new(ind.value.clone(), ind.feed.clone(), ind.last_seen + 3600);
        ev.classification = ind.classification;
        later.observe(&ev);
    }
    later
}

async fn run(
    label: &str,
    open: &dyn Fn() -> Opener,
    state: &CleanupState,
    later: &CleanupState,
    n: usize,
) -> Result<(), BoxError> {
    // Fresh table: n new indicators, then the same n re-sighted (all updates), then reload.
    let store = open().await?;
    let first: Vec<u32> = (0..n as u32).collect();
    let insert = timed(save(&store, state, &first)).await?;
    let update = timed(save(&store, later, &first)).await?;
    let mut loaded = None;
    let load = timed(async {
        loaded = Some(store.intel_load().await?);
        Ok(())
    })
    .await?;
    let loaded = loaded.map(|s| s.len()).unwrap_or_default();
    if loaded != n {
        return Err(format!("reloaded {loaded} indicators, expected {n}").into());
    }
    // Incremental: n/10 new indicators into the table of n (below the bulk-load threshold
    // of "at least as many new as stored": ordinary upserts into the existing index).
    let more: Vec<u32> = (n as u32..(n + n / 10) as u32).collect();
    let incremental = timed(save(&store, state, &more)).await?;
    store.close().await;
    println!("{label:<9} {n} indicators");
    println!("  {}", insert.show("insert new (empty table)  ", n));
    println!("  {}", update.show("update known (re-sighted) ", n));
    println!("  {}", load.show("reload into CleanupState  ", n));
    println!(
        "  {}",
        incremental.show(&format!("+{:<7} new into {n:<7}", n / 10), n / 10)
    );
    Ok(())
}

type Opener = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Store, BoxError>>>>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(500_000);
    let which = args.get(2).map(String::as_str).unwrap_or("both");
    let t = Instant::now();
    let state = build_state(n + n / 10)?;
    let later = resighted(&state);
    println!(
        "built {} indicators in memory in {:.2} s",
        state.len(),
        t.elapsed().as_secs_f64()
    );
    if which == "sqlite" || which == "both" {
        let open = || -> Opener { Box::pin(async { Ok(liaison_store::testing::sqlite().await?) }) };
        run("sqlite", &open, &state, &later, n as usize).await?;
    }
    if (which == "postgres" || which == "both") && liaison_store::testing::postgres().await.is_some() {
        let open = || -> Opener {
            Box::pin(async {
                liaison_store::testing::postgres()
                    .await
                    .ok_or_else(|| BoxError::from("PostgreSQL went away"))
            })
        };
        run("postgres", &open, &state, &later, n as usize).await?;
    }
    Ok(())
}
