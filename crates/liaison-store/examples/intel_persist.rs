//! Persistence benchmark for the clean-up state: how many NEW indicators per second
//! `IntelTx::save_indicators` writes (one large transaction), and how fast known ones are
//! updated.
//!
//! ```sh
//! cargo run --release -p liaison-store --example intel_persist -- [INDICATORS] [sqlite|postgres|both]
//! ```
//! SQLite goes to a fresh file under the temp directory; PostgreSQL to a fresh schema of
//! `LIAISON_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use liaison_core::{CountryCode, Tlp};
use liaison_intel::CleanupState;
use liaison_intel::model::{Classification, Event, IndicatorValue, PartnerId};
use liaison_store::Store;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

fn build_state(n: u32) -> Result<CleanupState, Box<dyn std::error::Error>> {
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
        let ip = Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i.wrapping_mul(2_654_435_761) >> 4));
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

async fn run(label: &str, store: Store, state: &CleanupState) -> Result<(), Box<dyn std::error::Error>> {
    let ixs: Vec<u32> = (0..state.len() as u32).collect();
    let t = Instant::now();
    let mut tx = store.intel_begin().await?;
    tx.save_indicators(state, &ixs).await?;
    tx.commit().await?;
    let insert = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut tx = store.intel_begin().await?;
    tx.save_indicators(state, &ixs).await?;
    tx.commit().await?;
    let update = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let loaded = store.intel_load().await?;
    let load = t.elapsed().as_secs_f64();
    if loaded.len() != state.len() {
        return Err(format!("reloaded {} indicators, expected {}", loaded.len(), state.len()).into());
    }
    let n = state.len() as f64;
    println!(
        "{label:<10} {:>9} indicators | insert new {:>6.2} s = {:>9.0}/s | update known {:>6.2} s = {:>9.0}/s | reload {:>6.2} s = {:>9.0}/s",
        state.len(),
        insert,
        n / insert,
        update,
        n / update,
        load,
        n / load
    );
    store.close().await;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(500_000);
    let which = args.get(2).map(String::as_str).unwrap_or("both");
    let t = Instant::now();
    let state = build_state(n)?;
    println!(
        "built {} indicators in memory in {:.2} s",
        state.len(),
        t.elapsed().as_secs_f64()
    );
    if which == "sqlite" || which == "both" {
        run("sqlite", liaison_store::testing::sqlite().await?, &state).await?;
    }
    if (which == "postgres" || which == "both")
        && let Some(store) = liaison_store::testing::postgres().await
    {
        run("postgres", store, &state).await?;
    }
    Ok(())
}
