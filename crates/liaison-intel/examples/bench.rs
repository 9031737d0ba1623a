//! Runs the full pipeline on a feed and prints events/s and peak RSS.
//!
//! `cargo run --release -p liaison-intel --example bench -- FEED.csv MMDB [MMDB...]`
//! Routing: every country of the synthetic world goes to a national partner, plus a few ASN
//! and CIDR rules, so routing does real work.

use liaison_intel::source::NoProgress;
use liaison_intel::{
    FeedFormat, GroupBy, Input, Interval, Pipeline, PrefixTable, RouteRule, Router, RoutingConfig, SourceConfig,
    StatsQuery, indicator_stats,
};
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// utime + stime in seconds from a /proc stat file (fields 14 and 15, clock ticks of 1/100 s).
fn cpu_secs(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let feed = args.get(1).ok_or("usage: bench FEED.csv MMDB...")?;
    let t0 = Instant::now();
    let mut tables = Vec::new();
    for p in &args[2..] {
        let t = PrefixTable::open(std::path::Path::new(p))?;
        eprintln!("compiled {p} ({}): {:?} intervals", t.database_type, t.len());
        tables.push(t);
    }
    eprintln!(
        "mmdb compile: {:.2}s, rss {:.0} MB",
        t0.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    let mut routes = Vec::new();
    for cc in [
        "CN", "US", "DE", "NL", "RU", "FR", "GB", "SG", "HK", "IN", "BR", "VN", "JP", "KR",
    ] {
        if let Some(c) = liaison_intel::route::country(cc) {
            routes.push(RouteRule::country(&format!("cert-{}", cc.to_lowercase()), c));
        }
    }
    for n in liaison_intel::demo::world(42).iter().step_by(7) {
        routes.push(RouteRule::asn(&format!("isp-as{}", n.asn), n.asn));
    }
    for n in liaison_intel::demo::world(42).iter().step_by(11) {
        routes.push(RouteRule::cidr("hoster-abuse", ipnet::IpNet::V4(n.v4)));
    }
    let router = Router::new(&RoutingConfig { routes })?;
    let mut p = Pipeline::new(liaison_intel::Enricher::new(tables), router, 1_795_000_000);
    let file = std::fs::File::open(feed)?;
    let input = Input::new(SourceConfig::new("demo", FeedFormat::Liaison), feed, file);
    let (proc0, main0) = (cpu_secs("/proc/self/stat"), cpu_secs("/proc/thread-self/stat"));
    let s = p.run(vec![input], &NoProgress);
    let (proc1, main1) = (cpu_secs("/proc/self/stat"), cpu_secs("/proc/thread-self/stat"));
    let aggregate_cpu = main1 - main0;
    let reader_cpu = (proc1 - proc0) - aggregate_cpu;
    println!(
        "rows {} accepted {} quarantined {} dedup {} new {} resight {} enriched {} routed {} unroutable {}",
        s.rows,
        s.accepted,
        s.quarantined,
        s.deduplicated,
        s.new_indicators,
        s.resightings,
        s.enriched,
        s.routed,
        s.unroutable
    );
    println!(
        "pipeline: {:.2}s, {:.0} events/s, {:.0} MB/s, peak RSS {:.0} MB, distinct indicators {}",
        s.elapsed_secs,
        s.events_per_sec,
        s.bytes as f64 / 1e6 / s.elapsed_secs,
        peak_rss_mb(),
        p.state.len()
    );
    println!(
        "clean-up state: {} indicators, about {:.0} MB of heap ({:.0} bytes per indicator)",
        p.state.len(),
        p.state.heap_bytes() as f64 / 1e6,
        p.state.heap_bytes() as f64 / p.state.len().max(1) as f64
    );
    println!(
        "cpu: reader thread {reader_cpu:.2}s, aggregation thread {aggregate_cpu:.2}s; on two dedicated cores: {:.0} events/s",
        s.accepted as f64 / reader_cpu.max(aggregate_cpu).max(0.01)
    );
    let t1 = Instant::now();
    let day = Interval::day_of(p.state.indicators.iter().map(|i| i.last_seen).max().unwrap_or(0));
    let notices = p.state.build_notices(day);
    let mut q = StatsQuery::by(GroupBy::Country);
    q.class = Some(liaison_intel::Classification::C2Server);
    q.victim_country = liaison_intel::route::country("CN");
    let rows = indicator_stats(&p.state.indicators, &q);
    println!(
        "notices for last day: {} partners, {} items; C2s with CN victims by C2 country: {:?} ({:.2}s)",
        notices.len(),
        notices.iter().map(|n| n.items.len()).sum::<usize>(),
        rows.iter()
            .take(5)
            .map(|r| (r.key.clone(), r.indicators))
            .collect::<Vec<_>>(),
        t1.elapsed().as_secs_f64()
    );
    println!(
        "RESULT events_per_sec={:.0} cpu_bound_events_per_sec={:.0} cpu_seconds={:.2} peak_rss_mb={:.0} accepted={} seconds={:.2}",
        s.events_per_sec,
        s.accepted as f64 / reader_cpu.max(aggregate_cpu).max(0.01),
        reader_cpu + aggregate_cpu,
        peak_rss_mb(),
        s.accepted,
        s.elapsed_secs
    );
    Ok(())
}
