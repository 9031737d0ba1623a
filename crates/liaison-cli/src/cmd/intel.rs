//! `liaison intel …`: network clean-up (ingest feeds, notices, partner feedback, statistics),
//! and the demo hook [`populate_intel_demo`].
//!
//! Enrichment databases and routes come from the `[intel]` section of `liaison.toml`
//! (`mmdb = [...]`, `[[intel.routes]]`), plus `--mmdb` and `--route` on the command line.

use super::{Ctx, InputError};
use crate::output::{json, table};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use liaison_intel::source::{Progress, ProgressUpdate};
use liaison_intel::time::{UnixTime, format_day, format_rfc3339};
use liaison_intel::{FeedbackStatus, Input, IntelConfig, MmdbLayout, RouteRule, StatsRow};
use liaison_server::intel::{IngestReport, IssueReport, NoticeSummary};
use liaison_server::service::Node;
use liaison_store::StoredNotice;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Subcommand, Debug)]
pub enum IntelCmd {
    /// Ingest feed files: parse, enrich (MMDB), route to partners, deduplicate, persist.
    Ingest(IngestArgs),
    /// List issued clean-up notices, or issue new ones with --issue.
    Notices(NoticesArgs),
    /// Answer a notice item as the partner it was sent to.
    Feedback {
        /// Notice item id (UUID).
        item: String,
        /// remediated, not-found, disputed or false-positive.
        status: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Statistics over the known indicators.
    Stats(StatsArgs),
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Feed files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// feodo, urlhaus, threatfox-csv, threatfox-json, shadowserver, liaison or list.
    #[arg(long)]
    pub format: String,
    /// MMDB file for enrichment (repeatable; replaces `[intel] mmdb` of the config).
    #[arg(long = "mmdb")]
    pub mmdb: Vec<PathBuf>,
    /// Routing rule MATCH=PARTNER (repeatable, added to `[[intel.routes]]`): MATCH is a
    /// country (CN), an AS number (AS4134), a CIDR (198.51.100.0/24) or an indicator.
    #[arg(long = "route")]
    pub routes: Vec<String>,
    /// Feed name (default: the file name).
    #[arg(long)]
    pub feed: Option<String>,
    /// Quarantined rows to list in the summary.
    #[arg(long, default_value_t = 20)]
    pub show_quarantine: usize,
}

#[derive(Args, Debug)]
pub struct NoticesArgs {
    /// Only this partner's notices (agency code).
    #[arg(long)]
    pub partner: Option<String>,
    /// Issue notices for what was seen since the last run (or --since/--until) first.
    #[arg(long)]
    pub issue: bool,
    /// With --issue: start of the interval (date or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// With --issue: end of the interval (exclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Items to list per notice in table output.
    #[arg(long, default_value_t = 10)]
    pub items: usize,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// country, victim-country, classification, asn, day, partner or malware.
    #[arg(long, default_value = "country")]
    pub by: String,
    /// Classification, e.g. botnet-c2 (c2-server), phishing, infected-system.
    #[arg(long)]
    pub class: Option<String>,
    /// Only indicators with victims in this country (e.g. CN).
    #[arg(long)]
    pub victim_country: Option<String>,
    /// Only indicators located in this country.
    #[arg(long)]
    pub country: Option<String>,
    #[arg(long)]
    pub asn: Option<String>,
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

/// The `[intel]` section of `DATA_DIR/liaison.toml` (empty if absent).
pub fn intel_config(data_dir: &Path) -> Result<IntelConfig> {
    let path = data_dir.join(crate::config::FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: toml::Table = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match value.get("intel") {
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|e| anyhow::Error::new(InputError(format!("{}: [intel]: {e}", path.display())))),
        None => Ok(IntelConfig::default()),
    }
}

/// Parses `--route MATCH=PARTNER`.
pub fn parse_route(s: &str) -> Result<RouteRule> {
    let (m, partner) = s
        .rsplit_once('=')
        .ok_or_else(|| bad(format!("--route '{s}': expected MATCH=PARTNER, e.g. CN=CN-CNCERT")))?;
    let (m, partner) = (m.trim(), partner.trim());
    if partner.is_empty() {
        return Err(bad(format!("--route '{s}': empty partner")));
    }
    if m.len() == 2
        && let Ok(cc) = liaison_core::CountryCode::parse(m)
    {
        return Ok(RouteRule::country(partner, cc));
    }
    if let Some(asn) = m
        .strip_prefix("AS")
        .or_else(|| m.strip_prefix("as"))
        .and_then(|n| n.parse().ok())
    {
        return Ok(RouteRule::asn(partner, asn));
    }
    if m.contains('/')
        && let Ok(rule) = serde_json::from_value::<RouteRule>(serde_json::json!({"partner": partner, "cidr": m}))
    {
        return Ok(rule);
    }
    Ok(RouteRule::manual(partner, m))
}

/// A progress bar over all input bytes, with rows/s.
struct Bar {
    bar: ProgressBar,
    sizes: Vec<u64>,
    /// (source, rows of the finished sources before it)
    rows: Mutex<(u32, u64, u64)>,
}

impl Progress for Bar {
    fn update(&self, p: ProgressUpdate<'_>) {
        let base: u64 = self.sizes.iter().take(p.source as usize).sum();
        self.bar.set_position(base + p.bytes_read);
        let Ok(mut r) = self.rows.lock() else { return };
        if r.0 != p.source {
            r.1 += r.2;
            r.0 = p.source;
        }
        r.2 = p.rows;
        let rows = r.1 + p.rows;
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar
            .set_message(format!("{} rows, {:.0} rows/s — {}", rows, rows as f64 / secs, p.file));
    }
}

pub async fn run(ctx: &Ctx, cmd: IntelCmd) -> Result<()> {
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    match cmd {
        IntelCmd::Ingest(a) => {
            let mut cfg = intel_config(&ctx.data_dir)?;
            if !a.mmdb.is_empty() {
                cfg.enrich.mmdb = a.mmdb.clone();
            }
            for r in &a.routes {
                cfg.routing.routes.push(parse_route(r)?);
            }
            let mut inputs = Vec::new();
            let mut sizes = Vec::new();
            for f in &a.files {
                let name = f.display().to_string();
                let file = std::fs::File::open(f).map_err(|e| bad(format!("{name}: {e}")))?;
                sizes.push(file.metadata().map(|m| m.len()).unwrap_or(0));
                let src = liaison_server::intel::source(&name, &a.format, a.feed.as_deref())?;
                inputs.push(Input::new(src, &name, std::io::BufReader::with_capacity(1 << 20, file)));
            }
            let bar = if ctx.json {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(sizes.iter().sum())
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let progress = Arc::new(Bar {
                bar: bar.clone(),
                sizes,
                rows: Mutex::new((0, 0, 0)),
            });
            let report = node.intel_ingest(&p, &cfg, inputs, progress, now).await?;
            bar.finish_and_clear();
            if ctx.json {
                return json(&report);
            }
            print_ingest(&report, a.show_quarantine);
            Ok(())
        }
        IntelCmd::Notices(a) => {
            if !["table", "json", "csv"].contains(&a.format.as_str()) {
                return Err(bad(format!("--format '{}': expected table, json or csv", a.format)));
            }
            let issued = if a.issue {
                let since = a
                    .since
                    .as_deref()
                    .map(|s| liaison_server::intel::parse_instant("since", s))
                    .transpose()?;
                let until = a
                    .until
                    .as_deref()
                    .map(|s| liaison_server::intel::parse_instant("until", s))
                    .transpose()?;
                Some(node.intel_issue(&p, since, until, now).await?)
            } else {
                None
            };
            let notices = node.intel_notices(&p, a.partner.as_deref()).await?;
            let notices: Vec<StoredNotice> = match &issued {
                Some(r) => notices
                    .into_iter()
                    .filter(|n| r.notices.iter().any(|s| s.id == n.notice.id))
                    .collect(),
                None => notices,
            };
            if ctx.json || a.format == "json" {
                return match issued {
                    Some(r) => json(&serde_json::json!({ "issued": r, "notices": notices })),
                    None => json(&notices),
                };
            }
            if a.format == "csv" {
                let plain: Vec<liaison_intel::Notice> = notices.into_iter().map(|n| n.notice).collect();
                liaison_intel::notices_to_csv(&plain, std::io::stdout().lock())?;
                return Ok(());
            }
            if let Some(r) = &issued {
                println!("{}", issue_text(r));
            }
            print_notices(&notices, a.items);
            Ok(())
        }
        IntelCmd::Feedback { item, status, note } => {
            let item: uuid::Uuid = item
                .parse()
                .map_err(|_| bad(format!("'{item}' is not a notice item id (UUID)")))?;
            let status: FeedbackStatus = status.parse().map_err(|e: liaison_intel::model::UnknownWord| {
                bad(format!(
                    "{e}; accepted: remediated, not-found, disputed, false-positive"
                ))
            })?;
            let rec = node.intel_feedback(&p, item, status, note, now).await?;
            if ctx.json {
                return json(&rec);
            }
            println!(
                "Feedback recorded: item {} ({}) is {:?} according to {}",
                rec.item_id, rec.indicator, rec.status, rec.partner
            );
            Ok(())
        }
        IntelCmd::Stats(a) => {
            let q = liaison_server::intel::stats_query(
                &a.by,
                a.class.as_deref(),
                a.victim_country.as_deref(),
                a.country.as_deref(),
                a.asn.as_deref(),
                a.since.as_deref(),
                a.until.as_deref(),
            )?;
            let rows = node.intel_stats(&p, &q).await?;
            if ctx.json {
                return json(&serde_json::json!({ "query": q, "rows": rows }));
            }
            println!("{}", stats_table(&a.by, &rows));
            Ok(())
        }
    }
}

fn stats_table(by: &str, rows: &[StatsRow]) -> String {
    let mut t = table(&[by, "indicators", "sightings", "victims"]);
    for r in rows {
        t.add_row(vec![
            r.key.clone(),
            r.indicators.to_string(),
            r.sightings.to_string(),
            r.victims.to_string(),
        ]);
    }
    t.to_string()
}

fn print_ingest(r: &IngestReport, show: usize) {
    let s = &r.summary;
    let mut t = table(&["", "count"]);
    for (k, v) in [
        ("rows read", s.rows),
        ("accepted", s.accepted),
        ("deduplicated (same sighting again)", s.deduplicated),
        ("quarantined", s.quarantined),
        ("new indicators", s.new_indicators),
        ("re-sightings", s.resightings),
        ("reappeared after remediation", s.reappeared),
        ("enriched (country/ASN)", s.enriched),
        ("routed to a partner", s.routed),
        ("unroutable", s.unroutable),
        ("indicator rows persisted", r.persisted),
        ("indicators known", r.indicators_total),
    ] {
        t.add_row(vec![k.to_string(), v.to_string()]);
    }
    println!("{t}");
    println!(
        "{} bytes in {:.2} s ({:.0} events/s); persisted in {:.2} s",
        s.bytes, s.elapsed_secs, s.events_per_sec, r.persist_secs
    );
    let quarantined: Vec<_> = s.sources.iter().flat_map(|src| src.quarantine.iter()).collect();
    if !quarantined.is_empty() {
        println!("Quarantined rows (first {}):", show.min(quarantined.len()));
        for q in quarantined.iter().take(show) {
            println!("  {q}");
        }
    }
    for src in &s.sources {
        if let Some(e) = &src.error {
            println!("  source stopped early: {e}");
        }
    }
}

fn issue_text(r: &IssueReport) -> String {
    let mut t = table(&["notice", "partner", "TLP", "items", "new", "still active", "reappeared"]);
    for n in &r.notices {
        t.add_row(vec![
            n.id.to_string(),
            n.partner.to_string(),
            n.tlp.to_string(),
            n.items.to_string(),
            n.new.to_string(),
            n.still_active.to_string(),
            n.reappeared.to_string(),
        ]);
    }
    format!(
        "Issued {} notices with {} items for {} .. {}\n{t}",
        r.notices.len(),
        r.items,
        format_rfc3339(r.interval.start),
        format_rfc3339(r.interval.end)
    )
}

fn print_notices(notices: &[StoredNotice], per_notice: usize) {
    if notices.is_empty() {
        println!("No notices.");
        return;
    }
    for n in notices {
        let s = NoticeSummary::of(&n.notice);
        println!(
            "Notice {} to {} ({}), {} .. {}, issued {}: {} items ({} new, {} still active, {} reappeared)",
            n.notice.id,
            n.notice.partner,
            n.notice.tlp,
            format_day(n.notice.interval.start),
            format_day(n.notice.interval.end),
            format_rfc3339(n.issued_at),
            s.items,
            s.new,
            s.still_active,
            s.reappeared
        );
        let mut t = table(&[
            "item",
            "status",
            "kind",
            "value",
            "class",
            "country",
            "ASN",
            "last seen",
        ]);
        for i in n.notice.items.iter().take(per_notice) {
            t.add_row(vec![
                i.item_id.to_string(),
                format!("{:?}", i.status).to_ascii_lowercase(),
                i.kind.to_string(),
                i.value.clone(),
                i.classification.to_string(),
                i.source_country.map(|c| c.to_string()).unwrap_or_default(),
                i.source_asn.map(|a| format!("AS{a}")).unwrap_or_default(),
                format_rfc3339(i.last_seen),
            ]);
        }
        println!("{t}");
        if n.notice.items.len() > per_notice {
            println!(
                "  … {} more items (--items N, --format csv)",
                n.notice.items.len() - per_notice
            );
        }
    }
}

/// Demo routes: country → agency code of the demo directory; one Chinese AS to CN-MPS.
#[allow(dead_code)] // used by populate_intel_demo
fn demo_routes(seed: u64) -> Vec<RouteRule> {
    let mut routes = Vec::new();
    let cn_mps_asn = liaison_intel::demo::world(seed)
        .into_iter()
        .find(|n| n.country == "CN")
        .map(|n| n.asn);
    if let Some(asn) = cn_mps_asn {
        routes.push(RouteRule::asn("CN-MPS", asn));
    }
    for (cc, partner) in [
        ("CN", "CN-CNCERT"),
        ("US", "FBI"),
        ("GB", "UK-NCA"),
        ("DE", "DE-BKA"),
        ("JP", "JP-NPA"),
        ("KR", "KR-KNPA"),
    ] {
        if let Ok(c) = liaison_core::CountryCode::parse(cc) {
            routes.push(RouteRule::country(partner, c));
        }
    }
    routes
}

/// Demo hook: generates a realistic feed (with a few malformed rows) and an MMDB into `dir`,
/// routes them to the demo agencies (CN → CN-CNCERT, one Chinese AS → CN-MPS, US → FBI,
/// GB → UK-NCA, DE → DE-BKA, JP → JP-NPA, KR → KR-KNPA), ingests, issues notices, records a
/// few partner answers, sees two remediated C2s again, and returns a printable summary.
#[allow(dead_code)] // the lead calls it from demo.rs
pub async fn populate_intel_demo(node: &Node, dir: &Path, now: Timestamp) -> Result<String> {
    const SEED: u64 = 7;
    const ROWS: u64 = 100_000;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mmdb = dir.join("intel-demo.mmdb");
    let feed = dir.join("intel-demo-feed.csv");
    liaison_intel::generate_mmdb(SEED, MmdbLayout::GeoLite2, std::fs::File::create(&mmdb)?)
        .with_context(|| format!("writing {}", mmdb.display()))?;
    liaison_intel::generate_feed(SEED, ROWS, std::io::BufWriter::new(std::fs::File::create(&feed)?))
        .with_context(|| format!("writing {}", feed.display()))?;
    let mut cfg = IntelConfig::default();
    cfg.enrich.mmdb = vec![mmdb];
    cfg.routing.routes = demo_routes(SEED);
    let source = liaison_server::intel::source(&feed.display().to_string(), "liaison", Some("demo botnet feed"))?;
    let file = std::fs::File::open(&feed)?;
    let input = Input::new(source, &feed.display().to_string(), std::io::BufReader::new(file));
    let noop = Arc::new(liaison_intel::source::NoProgress);
    let first = node.intel_ingest_trusted(&cfg, vec![input], noop.clone(), now).await?;
    let issued = node.intel_issue_trusted(None, None, now).await?;

    // Partner answers, an hour before `now`, on the first items of some notices.
    let answered_at = now - jiff::SignedDuration::from_hours(1);
    let notices = node.store.intel_notices(None).await?;
    let mut answers = 0;
    let mut remediated: Vec<String> = Vec::new();
    for n in &notices {
        let plan: &[FeedbackStatus] = match n.notice.partner.as_str() {
            "CN-CNCERT" => &[
                FeedbackStatus::Remediated,
                FeedbackStatus::Remediated,
                FeedbackStatus::Remediated,
                FeedbackStatus::FalsePositive,
            ],
            "FBI" => &[FeedbackStatus::Remediated, FeedbackStatus::Disputed],
            "UK-NCA" => &[FeedbackStatus::NotFound],
            "DE-BKA" => &[FeedbackStatus::Remediated],
            _ => &[],
        };
        for (item, status) in n.notice.items.iter().zip(plan) {
            node.intel_feedback_trusted(
                &n.notice.partner,
                item.item_id,
                *status,
                Some("demo answer".into()),
                answered_at,
            )
            .await?;
            answers += 1;
            if *status == FeedbackStatus::Remediated && item.kind.as_str().starts_with("ipv") {
                remediated.push(item.value.clone());
            }
        }
    }
    // Two remediated hosts show up again: a reappearance.
    let mut again = String::from(
        "time_source,indicator,kind,port,classification,malware,victim_count,victim_country,confidence,tlp\n",
    );
    let seen: UnixTime = now.as_second();
    for v in remediated.iter().take(2) {
        let _ = writeln!(again, "{},{v},,443,c2-server,,,CN,90,TLP:GREEN", format_rfc3339(seen));
    }
    let source = liaison_server::intel::source("resighting.csv", "liaison", Some("demo botnet feed"))?;
    let second = node
        .intel_ingest_trusted(
            &cfg,
            vec![Input::new(
                source,
                "resighting.csv",
                std::io::Cursor::new(again.into_bytes()),
            )],
            noop,
            now,
        )
        .await?;

    let q = liaison_server::intel::stats_query("country", Some("botnet-c2"), Some("CN"), None, None, None, None)?;
    let rows = node.intel_stats_trusted(&q).await?;
    let mut out = String::new();
    let s = &first.summary;
    let _ = writeln!(
        out,
        "Clean-up feed: {} rows, {} accepted, {} quarantined, {} duplicates; {} distinct indicators ({} routed, {} unroutable events)",
        s.rows, s.accepted, s.quarantined, s.deduplicated, first.indicators_total, s.routed, s.unroutable
    );
    let _ = writeln!(
        out,
        "Notices issued: {} with {} items; partner answers: {answers}; reappeared after remediation: {}",
        issued.notices.len(),
        issued.items,
        second.summary.reappeared
    );
    let _ = writeln!(out, "C2 servers controlling hosts in CN, by country of the C2:");
    let _ = write!(out, "{}", stats_table("C2 country", &rows[..rows.len().min(12)]));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn demo_hook_populates_and_summarises() {
        let store = liaison_store::testing::sqlite().await.unwrap();
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let legal = liaison_server::legal::Legal::load(&rules).unwrap();
        let node = Node::new(store, Default::default(), legal);
        let dir = std::env::temp_dir().join(format!("liaison-intel-demo-{}", uuid::Uuid::new_v4()));
        let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let text = populate_intel_demo(&node, &dir, now).await.unwrap();
        println!("{text}");
        assert!(text.contains("C2 servers controlling hosts in CN"), "{text}");
        assert!(text.contains("reappeared after remediation: 2"), "{text}");
        let notices = node.store.intel_notices(None).await.unwrap();
        let partners: std::collections::BTreeSet<&str> = notices.iter().map(|n| n.notice.partner.as_str()).collect();
        for p in ["CN-CNCERT", "CN-MPS", "FBI", "UK-NCA", "DE-BKA"] {
            assert!(partners.contains(p), "{partners:?}");
        }
        let c = node.store.intel_counts().await.unwrap();
        assert_eq!(c.feedback, 8);
    }
}
