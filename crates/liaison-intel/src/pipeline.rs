//! The pipeline: sources -> enrich -> route -> aggregate, on two threads.
//!
//! A reader thread parses all inputs in turn into batches of [`Event`]s and sends them over a
//! bounded channel (back-pressure: the parser waits when the consumer is behind). The calling
//! thread enriches, routes and folds each batch into the [`CleanupState`], then sends the
//! emptied batch back for reuse, so steady state allocates no batches.

use crate::aggregate::{CleanupState, Observed};
use crate::enrich::{EnrichConfig, EnrichError, Enricher};
use crate::model::Event;
use crate::route::{RouteError, Router, RoutingConfig};
use crate::source::{ParseContext, Progress, SourceConfig, SourceReport, parse_source};
use crate::time::UnixTime;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

/// Events per batch.
pub const DEFAULT_BATCH: usize = 2048;

/// The `[intel]` part of the configuration file:
///
/// ```toml
/// [intel]
/// mmdb = ["/var/lib/liaison/GeoLite2-Country.mmdb", "/var/lib/liaison/GeoLite2-ASN.mmdb"]
/// [[intel.routes]]
/// partner = "cn-cncert"
/// country = "CN"
/// [intel.sources.feodo]
/// feed = "abuse.ch Feodo Tracker"
/// format = "feodo"
/// ```
///
/// (No `deny_unknown_fields` here: serde does not support it together with `flatten`.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntelConfig {
    #[serde(default, flatten)]
    pub enrich: EnrichConfig,
    #[serde(default, flatten)]
    pub routing: RoutingConfig,
    /// Named source configurations (`[intel.sources.NAME]`): `--format NAME` (CLI) and
    /// `format=NAME` (API) read a feed with the named source's format or column mapping.
    #[serde(default)]
    pub sources: std::collections::BTreeMap<String, SourceConfig>,
    /// Largest feed accepted by upload (`POST /api/v1/intel/ingest`), in bytes; `None`:
    /// [`DEFAULT_MAX_UPLOAD_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_upload_bytes: Option<u64>,
}

/// Default for [`IntelConfig::max_upload_bytes`]: 4 GiB (uploads go to disk, not memory).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 4 << 30;

impl IntelConfig {
    /// The configured source named `name` (`[intel.sources.NAME]`, names compared exactly).
    pub fn named_source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.get(name.trim())
    }

    /// The upload limit in bytes.
    pub fn upload_limit(&self) -> u64 {
        self.max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES)
    }
}

/// Something the pipeline could not start with.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Enrich(#[from] EnrichError),
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// One input: its format/feed config, a display name (file path) and the bytes.
pub struct Input<'a> {
    pub config: SourceConfig,
    pub name: String,
    pub reader: Box<dyn Read + Send + 'a>,
}

impl<'a> Input<'a> {
    pub fn new(config: SourceConfig, name: &str, reader: impl Read + Send + 'a) -> Input<'a> {
        Input {
            config,
            name: name.to_string(),
            reader: Box::new(reader),
        }
    }
}

/// Totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub sources: Vec<SourceReport>,
    /// Data rows read over all sources.
    pub rows: u64,
    pub accepted: u64,
    pub quarantined: u64,
    /// Repeated sightings (same indicator, same time) counted but not applied.
    pub deduplicated: u64,
    pub new_indicators: u64,
    pub resightings: u64,
    /// Sightings of indicators the partner had reported remediated.
    pub reappeared: u64,
    /// Events with a country or ASN after enrichment.
    pub enriched: u64,
    pub routed: u64,
    /// Events no routing rule matched (kept, with no partner).
    pub unroutable: u64,
    pub bytes: u64,
    pub elapsed_secs: f64,
    /// Accepted events per second, end to end.
    pub events_per_sec: f64,
}

/// The clean-up pipeline with its aggregation state.
pub struct Pipeline {
    pub enricher: Enricher,
    pub router: Router,
    pub state: CleanupState,
    /// `time.observation` stamped on events (the caller's "now").
    pub observed_at: UnixTime,
    pub batch_size: usize,
    /// Batches in flight between the threads.
    pub channel_batches: usize,
}

impl Pipeline {
    pub fn new(enricher: Enricher, router: Router, observed_at: UnixTime) -> Pipeline {
        Pipeline {
            enricher,
            router,
            state: CleanupState::new(),
            observed_at,
            batch_size: DEFAULT_BATCH,
            channel_batches: 8,
        }
    }

    /// Loads the databases and compiles the routing table from config.
    pub fn from_config(config: &IntelConfig, observed_at: UnixTime) -> Result<Pipeline, PipelineError> {
        Ok(Pipeline::new(
            Enricher::open(&config.enrich)?,
            Router::new(&config.routing)?,
            observed_at,
        ))
    }

    /// Runs every input through parse -> enrich -> route -> aggregate.
    pub fn run(&mut self, inputs: Vec<Input<'_>>, progress: &dyn Progress) -> RunSummary {
        self.run_with(inputs, progress, &mut |_| {})
    }

    /// Like [`Pipeline::run`], also handing every enriched and routed event to `on_event`
    /// (for example to store raw events or feed live statistics).
    pub fn run_with(
        &mut self,
        inputs: Vec<Input<'_>>,
        progress: &dyn Progress,
        on_event: &mut dyn FnMut(&Event),
    ) -> RunSummary {
        let started = Instant::now();
        let mut summary = RunSummary::default();
        let batch_size = self.batch_size.max(1);
        let (tx, rx) = mpsc::sync_channel::<Vec<Event>>(self.channel_batches.max(1));
        let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<Event>>();
        let observed_at = self.observed_at;
        let enricher = &self.enricher;
        let router = &self.router;
        let state = &mut self.state;
        // Parse, enrich and route on the reader thread; aggregate on this one. Batches travel
        // back full and are cleared (events dropped) on the thread that allocated them.
        let (reports, counts) = std::thread::scope(|scope| {
            let parser = scope.spawn(move || {
                let mut reports = Vec::with_capacity(inputs.len());
                let mut counts = [0u64; 3];
                let mut batch: Vec<Event> = Vec::with_capacity(batch_size);
                let mut alive = true;
                for (i, input) in inputs.into_iter().enumerate() {
                    let ctx = ParseContext {
                        file: Arc::from(input.name.as_str()),
                        source: i as u32,
                        observed_at,
                        progress,
                    };
                    let report = parse_source(input.reader, &input.config, &ctx, &mut |mut ev| {
                        enricher.enrich(&mut ev);
                        counts[0] += u64::from(ev.source_country.is_some() || ev.source_asn.is_some());
                        if router.route_event(&mut ev) {
                            counts[1] += 1;
                        } else {
                            counts[2] += 1;
                        }
                        batch.push(ev);
                        if batch.len() >= batch_size && alive {
                            let mut next = recycle_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(batch_size));
                            next.clear();
                            let full = std::mem::replace(&mut batch, next);
                            alive = tx.send(full).is_ok();
                        }
                        if !alive {
                            batch.clear();
                        }
                    });
                    reports.push(report);
                }
                if !batch.is_empty() && alive {
                    let _ = tx.send(batch);
                }
                drop(tx);
                (reports, counts)
            });
            for batch in rx {
                state.observe_batch(&batch, |ev, observed| {
                    match observed {
                        Observed::New => summary.new_indicators += 1,
                        Observed::Resighting => summary.resightings += 1,
                        Observed::Duplicate => summary.deduplicated += 1,
                        Observed::Reappeared => {
                            summary.resightings += 1;
                            summary.reappeared += 1;
                        }
                    }
                    on_event(ev);
                });
                let _ = recycle_tx.send(batch);
            }
            match parser.join() {
                Ok(done) => done,
                // A panic in a parser is a bug: surface it, do not report an empty run.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        summary.enriched = counts[0];
        summary.routed = counts[1];
        summary.unroutable = counts[2];
        for r in &reports {
            summary.rows += r.rows;
            summary.accepted += r.accepted;
            summary.quarantined += r.quarantined;
            summary.bytes += r.bytes;
        }
        summary.sources = reports;
        summary.elapsed_secs = started.elapsed().as_secs_f64();
        if summary.elapsed_secs > 0.0 {
            summary.events_per_sec = summary.accepted as f64 / summary.elapsed_secs;
        }
        summary
    }
}
