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
use liaison_intel::StoredNotice;
use liaison_intel::source::{Progress, ProgressUpdate};
use liaison_intel::time::{format_day, format_rfc3339};
use liaison_intel::{FeedbackStatus, Input, IntelConfig, RouteRule, StatsRow};
use liaison_service::Node;
use liaison_service::intel::{IngestReport, IssueReport, NoticeSummary};
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
    /// Statistics over the indicators that concern your agency (ingested by it here, or put
    /// on a notice to it).
    Stats(StatsArgs),
    /// Notices other nodes issued for your agency (newest first), with your answers.
    Inbox {
        /// Items to list per notice in table output.
        #[arg(long, default_value_t = 20)]
        items: usize,
    },
    /// Answer one item of an incoming notice (it travels back to the issuing node).
    Answer {
        /// Notice item id (UUID), as `intel inbox` lists it.
        item: String,
        /// remediated, not-found, disputed or false-positive.
        status: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Time-to-remediation per partner and classification (your agency's notices).
    Remediation,
    /// Export your agency's indicators as a STIX 2.1 bundle, MISP events or a MISP feed.
    Export(ExportArgs),
    /// Pull from partners now: the `[pull.NAME]` TAXII collections and MISP feeds of
    /// liaison.toml (all, or NAME), only what is new since the last pull.
    Pull {
        /// The source to pull (default: every configured one).
        name: Option<String>,
        /// List the sources and what each has seen, pulling nothing.
        #[arg(long)]
        list: bool,
    },
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// stix (a STIX 2.1 bundle, with your agency's notices as reports), misp (MISP events)
    /// or misp-feed (a directory a MISP instance can subscribe to: manifest.json + events).
    #[arg(long)]
    pub format: String,
    /// The file to write (for misp-feed: the directory).
    #[arg(long)]
    pub out: PathBuf,
    /// Leave out what is marked stricter than this level (e.g. TLP:GREEN for a community
    /// feed). Every object keeps its own marking.
    #[arg(long)]
    pub tlp_max: Option<String>,
    /// Only indicators seen since this instant (date or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only indicators of this feed.
    #[arg(long)]
    pub feed: Option<String>,
    /// Only indicators still active (not remediated, or seen again since).
    #[arg(long)]
    pub active: bool,
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Feed files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// feodo, urlhaus, threatfox-csv, threatfox-json, shadowserver, liaison, list, stix (a
    /// STIX 2.1 bundle or TAXII envelope), misp (MISP events; a directory is read as a MISP
    /// feed), or the NAME of a configured source (`[intel.sources.NAME]` in liaison.toml).
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
    /// With --issue: what the partners may do about the items: PAP:GREEN (act on them),
    /// PAP:AMBER (passive checks only), PAP:RED (nothing detectable), PAP:CLEAR (no limit).
    /// Default: [markings] notice_pap (PAP:GREEN).
    #[arg(long, requires = "issue")]
    pub pap: Option<String>,
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
            for f in &expand_feed_dirs(&a.files)? {
                let name = f.display().to_string();
                let file = std::fs::File::open(f).map_err(|e| bad(format!("{name}: {e}")))?;
                sizes.push(file.metadata().map(|m| m.len()).unwrap_or(0));
                let src = liaison_service::intel::source_in(&cfg, &name, &a.format, a.feed.as_deref())?;
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
                    .map(|s| liaison_service::intel::parse_instant("since", s))
                    .transpose()?;
                let until = a
                    .until
                    .as_deref()
                    .map(|s| liaison_service::intel::parse_instant("until", s))
                    .transpose()?;
                let pap = a
                    .pap
                    .as_deref()
                    .map(|s| s.parse::<liaison_core::Pap>().map_err(|e| bad(format!("--pap: {e}"))))
                    .transpose()?;
                Some(node.intel_issue(&p, since, until, pap, now).await?)
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
            let (item, status) = item_and_status(&item, &status)?;
            let rec = node.intel_feedback(&p, None, item, status, note, now).await?;
            if ctx.json {
                return json(&rec);
            }
            println!(
                "Feedback recorded: item {} ({}) is {:?} according to {}",
                rec.item_id, rec.indicator, rec.status, rec.partner
            );
            Ok(())
        }
        IntelCmd::Inbox { items } => {
            let notices = node.intel_inbox(&p).await?;
            if ctx.json {
                return json(&notices);
            }
            print_inbox(&notices, items);
            Ok(())
        }
        IntelCmd::Answer { item, status, note } => {
            let (item, status) = item_and_status(&item, &status)?;
            let r = node.intel_inbox_answer(&p, item, status, note, now).await?;
            if ctx.json {
                return json(&r);
            }
            println!(
                "Answered item {} of notice {}: {}; sent to {} ({})",
                r.item_id,
                r.notice_id,
                liaison_service::notices::answer_word(r.status),
                r.issuer,
                r.sent_to
            );
            Ok(())
        }
        IntelCmd::Export(a) => {
            let format: liaison_service::intel_export::ExportFormat = a.format.parse()?;
            let q = liaison_service::intel_export::ExportQuery {
                tlp_max: a
                    .tlp_max
                    .as_deref()
                    .map(|t| {
                        t.parse::<liaison_core::Tlp>()
                            .map_err(|e| bad(format!("--tlp-max: {e}")))
                    })
                    .transpose()?,
                since: a
                    .since
                    .as_deref()
                    .map(|s| liaison_service::intel::parse_instant("since", s))
                    .transpose()?,
                feed: a.feed.clone(),
                active_only: a.active,
            };
            let s = node.intel_export(&p, format, &q, &a.out).await?;
            if ctx.json {
                return json(&s);
            }
            println!(
                "Exported {} indicators{} to {} ({} {}, {} bytes).",
                s.indicators,
                if s.notices > 0 {
                    format!(" and {} notices", s.notices)
                } else {
                    String::new()
                },
                a.out.display(),
                s.objects,
                if format == liaison_service::intel_export::ExportFormat::Stix {
                    "STIX objects"
                } else {
                    "MISP events"
                },
                s.bytes
            );
            if s.left_out_by_marking > 0 {
                println!(
                    "Left out {} marked stricter than {}.",
                    s.left_out_by_marking,
                    a.tlp_max.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        IntelCmd::Pull { name, list } => {
            node.pull_may_start(&p).await?;
            if list {
                let l = node.pull_list(&p).await?;
                if ctx.json {
                    return json(&l);
                }
                let mut t = table(&["source", "kind", "every", "last run", "last success", "pulled", "error"]);
                for s in &l {
                    let when = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_else(|| "never".into());
                    t.add_row(vec![
                        s.name.clone(),
                        format!("{:?}", s.kind).to_lowercase(),
                        if s.every_minutes == 0 {
                            "by hand".into()
                        } else {
                            format!("{} min", s.every_minutes)
                        },
                        when(s.state.last_run),
                        when(s.state.last_success),
                        s.state.pulled.to_string(),
                        s.state.last_error.clone().unwrap_or_default(),
                    ]);
                }
                println!("{t}");
                return Ok(());
            }
            let names: Vec<String> = match name {
                Some(n) => vec![n],
                None => node.pull_sources().keys().cloned().collect(),
            };
            if names.is_empty() {
                anyhow::bail!("no source to pull: add a [pull.NAME] section to liaison.toml (docs/intel-formats.md)");
            }
            let mut reports = Vec::new();
            let mut failed = Vec::new();
            for n in &names {
                match liaison_server::pull::pull(&node, n).await {
                    Ok(r) => {
                        if !ctx.json {
                            let new = r.ingest.as_ref().map(|i| i.summary.new_indicators).unwrap_or(0);
                            println!(
                                "{n}: {} {} ({} bytes), {new} new indicators for {} (feed {}){}",
                                r.items,
                                if node
                                    .pull_source(n)
                                    .map(|s| s.kind == liaison_service::intel_pull::PullKind::MispFeed)
                                    .unwrap_or(false)
                                {
                                    "events"
                                } else {
                                    "objects"
                                },
                                r.bytes,
                                r.agency,
                                r.feed,
                                if r.more { "; more remains: pull again" } else { "" }
                            );
                            if let Some(problem) = &r.problem {
                                println!("  nothing of it was kept: {problem}");
                            }
                        }
                        reports.push(r);
                    }
                    Err(e) => {
                        eprintln!("{n}: {e}");
                        failed.push(e);
                    }
                }
            }
            if ctx.json {
                json(&reports)?;
            }
            match failed.into_iter().next() {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        }
        IntelCmd::Remediation => {
            let r = node.intel_remediation(&p).await?;
            if ctx.json {
                return json(&r);
            }
            println!("{}", remediation_table(&r.rows));
            Ok(())
        }
        IntelCmd::Stats(a) => {
            let q = liaison_service::intel::stats_query(
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

/// The files to ingest: a directory holding a MISP feed (`manifest.json`) stands for the
/// event files its manifest lists, in its order; every listed file must be there.
fn expand_feed_dirs(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in files {
        if !f.is_dir() {
            out.push(f.clone());
            continue;
        }
        let manifest = f.join("manifest.json");
        let file = std::fs::File::open(&manifest).map_err(|e| {
            bad(format!(
                "{}: a directory is read as a MISP feed, but its manifest.json cannot be opened: {e}",
                f.display()
            ))
        })?;
        let ids = liaison_intel::misp::read_manifest(file).map_err(|e| bad(format!("{}: {e}", manifest.display())))?;
        for id in ids {
            let event = f.join(format!("{id}.json"));
            if !event.is_file() {
                return Err(bad(format!(
                    "{}: lists event {id}, but {} is missing",
                    manifest.display(),
                    event.display()
                )));
            }
            out.push(event);
        }
    }
    Ok(out)
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

/// Seconds as days and hours (`3d 4h`, `5h 12m`, `40m`).
fn duration_words(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

fn remediation_table(rows: &[liaison_service::notices::RemediationRow]) -> String {
    if rows.is_empty() {
        return "No notified indicators in your scope.".to_string();
    }
    let mut t = table(&[
        "partner",
        "class",
        "notified",
        "remediated",
        "reappeared",
        "not found",
        "disputed",
        "false pos.",
        "median TTR",
        "mean TTR",
    ]);
    for r in rows {
        t.add_row(vec![
            r.partner.clone(),
            r.classification.clone(),
            r.notified.to_string(),
            r.remediated.to_string(),
            r.reappeared.to_string(),
            r.not_found.to_string(),
            r.disputed.to_string(),
            r.false_positive.to_string(),
            r.median_ttr_secs.map(duration_words).unwrap_or_else(|| "-".into()),
            r.mean_ttr_secs
                .map(|s| duration_words(s as i64))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    t.to_string()
}

fn print_inbox(notices: &[liaison_intel::IncomingNotice], per_notice: usize) {
    if notices.is_empty() {
        println!("No incoming notices.");
        return;
    }
    for n in notices {
        println!(
            "Notice {} from {} (node {}) to {} ({}), {} .. {}, issued {}: {} items",
            n.id,
            n.issuer,
            n.sender,
            n.partner,
            n.tlp,
            format_day(n.interval.start),
            format_day(n.interval.end),
            format_rfc3339(n.issued_at),
            n.items.len()
        );
        match n.pap {
            Some(pap) => println!("  {pap}: {}", pap.meaning()),
            None => println!("  PAP not stated (the issuing node speaks an older protocol)"),
        }
        let mut t = table(&["item", "status", "kind", "value", "class", "TLP", "answer"]);
        for i in n.items.iter().take(per_notice) {
            t.add_row(vec![
                i.item_id.to_string(),
                i.status.clone(),
                i.kind.clone(),
                i.value.clone(),
                i.classification.clone(),
                i.tlp.to_string(),
                i.answer
                    .map(|a| liaison_service::notices::answer_word(a).to_string())
                    .unwrap_or_default(),
            ]);
        }
        println!("{t}");
        if n.items.len() > per_notice {
            println!("  … {} more items (--items N, --json)", n.items.len() - per_notice);
        }
    }
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
        "{} bytes in {:.2} s ({:.0} events/s); persisted in {:.2} s ({} write transactions, longest {:.1} ms)",
        s.bytes, s.elapsed_secs, s.events_per_sec, r.persist_secs, r.chunks, r.longest_write_ms
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
        println!("  {}: {}", n.notice.pap, n.notice.pap.meaning());
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
/// Demo hook: builds the clean-up demo (see `liaison_service::fixtures::intel`) and returns a
/// printable summary.
pub async fn populate_intel_demo(node: &Node, dir: &Path, now: Timestamp) -> Result<String> {
    let d = liaison_service::fixtures::intel::populate(node, dir, now).await?;
    let mut out = String::new();
    let s = &d.first.summary;
    let _ = writeln!(
        out,
        "Clean-up feed: {} rows, {} accepted, {} quarantined, {} duplicates; {} distinct indicators ({} routed, {} unroutable events)",
        s.rows, s.accepted, s.quarantined, s.deduplicated, d.first.indicators_total, s.routed, s.unroutable
    );
    let _ = writeln!(
        out,
        "Notices issued: {} with {} items; partner answers: {}; reappeared after remediation: {}",
        d.issued.notices.len(),
        d.issued.items,
        d.answers,
        d.second.summary.reappeared
    );
    let _ = writeln!(out, "C2 servers controlling hosts in CN, by country of the C2:");
    let rows = &d.c2_by_country;
    let _ = write!(out, "{}", stats_table("C2 country", &rows[..rows.len().min(12)]));
    Ok(out)
}

/// A notice item id and an answer word, as typed.
fn item_and_status(item: &str, status: &str) -> Result<(uuid::Uuid, FeedbackStatus)> {
    let item: uuid::Uuid = item
        .parse()
        .map_err(|_| bad(format!("'{item}' is not a notice item id (UUID)")))?;
    let status: FeedbackStatus = status.parse().map_err(|e: liaison_intel::model::UnknownWord| {
        bad(format!(
            "{e}; accepted: remediated, not-found, disputed, false-positive"
        ))
    })?;
    Ok((item, status))
}
