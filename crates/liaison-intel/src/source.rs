//! Sources: streaming feed parsers with constant memory and a quarantine for bad rows.
//!
//! Parsing never fails as a whole. Every parser returns what it could read plus a
//! [`SourceReport`] listing the rows it quarantined (file, line, reason). A row is quarantined
//! for a wrong column count, a bad indicator, a bad timestamp, a field longer than
//! [`Limits::max_field_bytes`], or invalid UTF-8; the batch goes on.
//!
//! Formats: abuse.ch Feodo Tracker CSV, URLhaus CSV, ThreatFox CSV and JSON, Shadowserver report
//! CSV, a generic CSV with a column mapping from config ([`CsvMapping`]), and plain lists (one
//! indicator per line, `#` comments). All CSV formats run on one engine over
//! `csv_core` with fixed-size record buffers, reused across rows.

use crate::enrich::country_from_bytes;
use crate::fast_hash::FastMap;
use crate::model::{Classification, Event, IndicatorKind, IndicatorValue, Origin, ValueError, parse_asn};
use crate::time::{UnixTime, parse_timestamp};
use liaison_core::Tlp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Size limits that protect the pipeline from hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// A field longer than this quarantines its row (default 8 KiB; URLs are rarely longer).
    pub max_field_bytes: usize,
    /// How many quarantined rows are kept with details; the rest are only counted.
    pub max_quarantine_kept: usize,
    /// A CSV record longer than this is skipped without being buffered (default 256 KiB), so a
    /// hostile file (an endless line, an unterminated quote) cannot exhaust memory.
    pub max_record_bytes: usize,
    /// A STIX bundle or MISP document longer than this is refused as a whole (default
    /// 100 MiB): those formats are read to the end before their objects are converted.
    pub max_document_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_field_bytes: 8 * 1024,
            max_quarantine_kept: 10_000,
            max_record_bytes: 256 * 1024,
            max_document_bytes: 100 * 1024 * 1024,
        }
    }
}

/// Why a row was quarantined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum QuarantineReason {
    #[error("wrong column count: expected {expected}, found {found}")]
    ColumnCount { expected: usize, found: usize },
    #[error("bad indicator: {message}")]
    BadIndicator { message: String },
    #[error("bad timestamp in column '{column}': '{value}'")]
    BadTimestamp { column: String, value: String },
    #[error("field {column} is {len} bytes, over the limit of {limit}")]
    FieldTooLong { column: usize, len: usize, limit: usize },
    #[error("record is longer than {limit} bytes or has more than {max_fields} fields")]
    RecordTooLong { limit: usize, max_fields: usize },
    #[error("invalid UTF-8 in column {column}")]
    InvalidUtf8 { column: usize },
    #[error("malformed record: {message}")]
    Malformed { message: String },
}

impl QuarantineReason {
    /// Refuses a JSON entry's value `text` of field `field` longer than `limit` bytes
    /// ([`Limits::max_field_bytes`]), as the CSV readers refuse a long field.
    pub(crate) fn check_len(field: &str, text: &str, limit: usize) -> Result<(), QuarantineReason> {
        if text.len() > limit {
            return Err(QuarantineReason::Malformed {
                message: format!(
                    "field '{field}' is {} bytes, over the limit of {limit} (max_field_bytes)",
                    text.len()
                ),
            });
        }
        Ok(())
    }

    /// Parses the timestamp in field `field` of a JSON entry, or says which field held what.
    pub(crate) fn timestamp(field: &str, text: &str) -> Result<UnixTime, QuarantineReason> {
        parse_timestamp(text.as_bytes()).ok_or_else(|| QuarantineReason::BadTimestamp {
            column: field.to_string(),
            value: text.chars().take(64).collect(),
        })
    }
}

impl From<ValueError> for QuarantineReason {
    fn from(e: ValueError) -> Self {
        QuarantineReason::BadIndicator { message: e.to_string() }
    }
}

/// One quarantined row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub file: Arc<str>,
    pub line: u64,
    #[serde(flatten)]
    pub reason: QuarantineReason,
    /// The start of the raw row (lossy UTF-8, at most 160 bytes).
    pub excerpt: String,
}

impl fmt::Display for Quarantined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// A problem that stopped a source early (the rows read before it are kept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum SourceError {
    #[error("{file}: read error after line {line}: {message}")]
    Io { file: String, line: u64, message: String },
    /// The header (at `line`) lacks columns the format maps: `wanted` lists the missing ones,
    /// `found` the header's columns.
    #[error("{file}:{line}: the columns do not match the format: expected {wanted}, found [{}]", .found.join(", "))]
    MissingColumn {
        file: String,
        line: u64,
        wanted: String,
        found: Vec<String>,
    },
    /// A STIX or MISP document over [`Limits::max_document_bytes`]: nothing of it is kept.
    #[error(
        "{file}: the document is larger than the limit of {limit} bytes (max_document_bytes); nothing of it was imported"
    )]
    TooLarge { file: String, limit: u64 },
    #[error("{file}:{line}:{column}: malformed JSON: {message}")]
    Json {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
}

/// What one source produced: counts, quarantine and a fatal error if it stopped early.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    pub file: String,
    /// Data rows seen (not counting comments, blank lines and the header).
    pub rows: u64,
    pub accepted: u64,
    pub quarantined: u64,
    /// Entries read but not meant to become indicators: MISP attributes of other types,
    /// deleted or not for detection; STIX objects that are neither indicators nor
    /// observables Liaison keeps.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// The first [`Limits::max_quarantine_kept`] quarantined rows.
    pub quarantine: Vec<Quarantined>,
    pub bytes: u64,
    pub error: Option<SourceError>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl SourceReport {
    pub(crate) fn quarantine(
        &mut self,
        limits: &Limits,
        file: &Arc<str>,
        line: u64,
        reason: QuarantineReason,
        raw: &[u8],
    ) {
        self.quarantined += 1;
        if self.quarantine.len() < limits.max_quarantine_kept {
            let cut = raw.len().min(160);
            self.quarantine.push(Quarantined {
                file: file.clone(),
                line,
                reason,
                excerpt: String::from_utf8_lossy(&raw[..cut]).into_owned(),
            });
        }
    }
}

/// A progress report, sent every few thousand rows and at the end of each source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressUpdate<'a> {
    pub source: u32,
    pub file: &'a str,
    pub bytes_read: u64,
    pub rows: u64,
    pub done: bool,
}

/// Receives progress updates (for a CLI progress bar). Called from the parser thread.
pub trait Progress: Sync {
    fn update(&self, p: ProgressUpdate<'_>);
}

impl<F: Fn(ProgressUpdate<'_>) + Sync> Progress for F {
    fn update(&self, p: ProgressUpdate<'_>) {
        self(p)
    }
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: ProgressUpdate<'_>) {}
}

/// A column reference in a [`CsvMapping`]: an index, a header name, or alternative names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
    AnyOf(Vec<String>),
}

impl Column {
    fn names<const N: usize>(n: [&str; N]) -> Option<Column> {
        Some(Column::AnyOf(n.iter().map(|s| s.to_string()).collect()))
    }

    fn describe(&self) -> String {
        match self {
            Column::Index(i) => format!("#{i}"),
            Column::Name(n) => format!("'{n}'"),
            Column::AnyOf(v) => format!("one of {v:?}"),
        }
    }

    fn resolve(&self, header: Option<&[String]>) -> Option<usize> {
        match self {
            Column::Index(i) => Some(*i),
            Column::Name(n) => header?.iter().position(|h| h.eq_ignore_ascii_case(n)),
            Column::AnyOf(v) => v
                .iter()
                .find_map(|n| header?.iter().position(|h| h.eq_ignore_ascii_case(n))),
        }
    }
}

fn comma() -> char {
    ','
}
fn yes() -> bool {
    true
}
fn default_confidence() -> u8 {
    50
}
fn amber() -> Tlp {
    Tlp::Amber
}

/// How to read a CSV feed: which column holds what. A serde struct for the TOML config:
///
/// ```toml
/// [intel.sources.partner-list]
/// format = "generic"
/// indicator = "ip"
/// time_source = "seen"
/// classification = "type"
/// default_classification = "c2-server"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    #[serde(default = "comma")]
    pub delimiter: char,
    /// The first non-comment row is a header. If it lacks the indicator column, the last `#`
    /// comment line is tried as the header (abuse.ch style).
    #[serde(default = "yes")]
    pub has_header: bool,
    /// Expected number of columns; defaults to the header's length when there is one.
    #[serde(default)]
    pub columns: Option<usize>,
    pub indicator: Column,
    /// A column naming the indicator kind (`ip`, `domain`, `url`, `md5_hash`, `ip:port`...).
    #[serde(default)]
    pub kind: Option<Column>,
    /// The kind when there is no kind column; `None` detects it from the value.
    #[serde(default)]
    pub default_kind: Option<IndicatorKind>,
    #[serde(default)]
    pub time_source: Option<Column>,
    #[serde(default)]
    pub first_seen: Option<Column>,
    #[serde(default)]
    pub last_seen: Option<Column>,
    #[serde(default)]
    pub classification: Option<Column>,
    #[serde(default = "other")]
    pub default_classification: Classification,
    /// Rows with a malware name are infected systems (Shadowserver event reports).
    #[serde(default)]
    pub infected_if_malware: bool,
    #[serde(default)]
    pub malware: Option<Column>,
    #[serde(default)]
    pub port: Option<Column>,
    #[serde(default)]
    pub confidence: Option<Column>,
    #[serde(default = "default_confidence")]
    pub default_confidence: u8,
    #[serde(default)]
    pub tlp: Option<Column>,
    #[serde(default = "amber")]
    pub default_tlp: Tlp,
    #[serde(default)]
    pub victim_count: Option<Column>,
    #[serde(default)]
    pub victim_country: Option<Column>,
    /// Pre-enriched country/ASN (Shadowserver `geo`/`asn`); MMDB fills only what is missing.
    #[serde(default)]
    pub source_country: Option<Column>,
    #[serde(default)]
    pub source_asn: Option<Column>,
}

fn other() -> Classification {
    Classification::Other
}

impl CsvMapping {
    /// The named columns of this mapping that `header` does not have (described as in
    /// error messages: `'ip'`, `one of ["a", "b"]`). Index columns are not checked.
    pub fn missing_columns(&self, header: &[String]) -> Vec<String> {
        let all = [
            Some(&self.indicator),
            self.kind.as_ref(),
            self.time_source.as_ref(),
            self.first_seen.as_ref(),
            self.last_seen.as_ref(),
            self.classification.as_ref(),
            self.malware.as_ref(),
            self.port.as_ref(),
            self.confidence.as_ref(),
            self.tlp.as_ref(),
            self.victim_count.as_ref(),
            self.victim_country.as_ref(),
            self.source_country.as_ref(),
            self.source_asn.as_ref(),
        ];
        let mut out: Vec<String> = Vec::new();
        for c in all.into_iter().flatten() {
            if !matches!(c, Column::Index(_)) && c.resolve(Some(header)).is_none() {
                let d = c.describe();
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// A mapping with only an indicator column; everything else default.
    pub fn new(indicator: Column) -> CsvMapping {
        CsvMapping {
            delimiter: ',',
            has_header: true,
            columns: None,
            indicator,
            kind: None,
            default_kind: None,
            time_source: None,
            first_seen: None,
            last_seen: None,
            classification: None,
            default_classification: Classification::Other,
            infected_if_malware: false,
            malware: None,
            port: None,
            confidence: None,
            default_confidence: 50,
            tlp: None,
            default_tlp: Tlp::Amber,
            victim_count: None,
            victim_country: None,
            source_country: None,
            source_asn: None,
        }
    }

    /// abuse.ch Feodo Tracker `ipblocklist.csv` (`first_seen_utc,dst_ip,dst_port,c2_status,
    /// last_online,malware`; also the older `Firstseen,DstIP,DstPort,LastOnline,Malware`).
    /// Optional Liaison columns `classification`, `victim_count`, `victim_country`, `tlp`,
    /// `confidence` are read when present (the demo feed has them).
    pub fn feodo() -> CsvMapping {
        CsvMapping {
            indicator: Column::AnyOf(vec!["dst_ip".into(), "dstip".into(), "ip_address".into()]),
            default_kind: Some(IndicatorKind::Ipv4),
            time_source: Column::names(["first_seen_utc", "firstseen", "first_seen"]),
            first_seen: Column::names(["first_seen_utc", "firstseen", "first_seen"]),
            last_seen: Column::names(["last_online", "lastonline", "last_seen"]),
            port: Column::names(["dst_port", "dstport"]),
            malware: Column::names(["malware"]),
            classification: Column::names(["classification"]),
            default_classification: Classification::C2Server,
            victim_count: Column::names(["victim_count"]),
            victim_country: Column::names(["victim_country"]),
            tlp: Column::names(["tlp"]),
            confidence: Column::names(["confidence"]),
            default_confidence: 90,
            default_tlp: Tlp::Clear,
            ..CsvMapping::new(Column::Index(1))
        }
    }

    /// abuse.ch URLhaus `csv_recent` / `csv_online`: `id,dateadded,url,url_status,last_online,
    /// threat,tags,urlhaus_link,reporter` (header only in a `#` comment).
    pub fn urlhaus() -> CsvMapping {
        CsvMapping {
            has_header: false,
            columns: Some(9),
            default_kind: Some(IndicatorKind::Url),
            time_source: Some(Column::Index(1)),
            first_seen: Some(Column::Index(1)),
            last_seen: Some(Column::Index(4)),
            classification: Some(Column::Index(5)),
            default_classification: Classification::MalwareDistribution,
            malware: Some(Column::Index(6)),
            default_confidence: 80,
            default_tlp: Tlp::Clear,
            ..CsvMapping::new(Column::Index(2))
        }
    }

    /// abuse.ch ThreatFox CSV export: `first_seen_utc,ioc_id,ioc_value,ioc_type,threat_type,
    /// fk_malware,malware_alias,malware_printable,last_seen_utc,confidence_level,reference,tags,
    /// anonymous,reporter` (header only in a `#` comment).
    pub fn threatfox() -> CsvMapping {
        CsvMapping {
            has_header: false,
            columns: Some(14),
            kind: Some(Column::Index(3)),
            time_source: Some(Column::Index(0)),
            first_seen: Some(Column::Index(0)),
            last_seen: Some(Column::Index(8)),
            classification: Some(Column::Index(4)),
            default_classification: Classification::C2Server,
            malware: Some(Column::Index(7)),
            confidence: Some(Column::Index(9)),
            default_tlp: Tlp::Clear,
            ..CsvMapping::new(Column::Index(2))
        }
    }

    /// Shadowserver report CSV (scan reports: `timestamp,ip,port,asn,geo,...`; event reports:
    /// `timestamp,src_ip,src_port,src_asn,src_geo,...,infection,...`). Country and ASN come
    /// pre-enriched from the report.
    pub fn shadowserver() -> CsvMapping {
        CsvMapping {
            default_kind: None,
            time_source: Column::names(["timestamp"]),
            port: Column::names(["port", "src_port"]),
            malware: Column::names(["infection"]),
            infected_if_malware: true,
            default_classification: Classification::VulnerableSystem,
            source_asn: Column::names(["asn", "src_asn"]),
            source_country: Column::names(["geo", "src_geo"]),
            default_confidence: 80,
            default_tlp: Tlp::Amber,
            ..CsvMapping::new(Column::AnyOf(vec!["ip".into(), "src_ip".into()]))
        }
    }

    /// The Liaison generic layout written by [`crate::demo::generate_feed`] and documented for
    /// partners: `time_source,indicator,kind,port,classification,malware,victim_count,
    /// victim_country,confidence,tlp` (header required; `kind` may be empty to detect).
    pub fn liaison() -> CsvMapping {
        CsvMapping {
            kind: Column::names(["kind"]),
            time_source: Column::names(["time_source"]),
            first_seen: Column::names(["first_seen"]),
            last_seen: Column::names(["last_seen"]),
            port: Column::names(["port"]),
            classification: Column::names(["classification"]),
            malware: Column::names(["malware"]),
            victim_count: Column::names(["victim_count"]),
            victim_country: Column::names(["victim_country"]),
            confidence: Column::names(["confidence"]),
            tlp: Column::names(["tlp"]),
            source_country: Column::names(["source_country"]),
            source_asn: Column::names(["source_asn"]),
            ..CsvMapping::new(Column::Name("indicator".into()))
        }
    }
}

/// Options for plain indicator lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// `None` detects each line's kind.
    #[serde(default)]
    pub kind: Option<IndicatorKind>,
    #[serde(default = "other")]
    pub classification: Classification,
    #[serde(default = "default_confidence")]
    pub confidence: u8,
    #[serde(default = "amber")]
    pub tlp: Tlp,
}

impl Default for ListConfig {
    fn default() -> Self {
        ListConfig {
            kind: None,
            classification: Classification::Other,
            confidence: 50,
            tlp: Tlp::Amber,
        }
    }
}

/// Options for the STIX and MISP imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// The marking of an object that states none Liaison can read (docs/intel-formats.md):
    /// the strictest level unless the source is configured otherwise.
    #[serde(default = "red")]
    pub default_tlp: Tlp,
    /// The confidence of an indicator that states none.
    #[serde(default = "default_confidence")]
    pub default_confidence: u8,
}

fn red() -> Tlp {
    Tlp::Red
}

/// Where the STIX and MISP readers put what they convert: the import options, the feed name
/// and the source's place in the run.
pub(crate) struct Convert<'a> {
    pub import: &'a ImportConfig,
    pub feed: Arc<str>,
    pub source: u32,
    pub observed_at: UnixTime,
}

impl Convert<'_> {
    /// A new event of this source, from entry `line`.
    pub(crate) fn event(&self, value: crate::model::IndicatorValue, line: u64) -> Event {
        let mut ev = Event::new(value, self.feed.clone(), self.observed_at);
        ev.origin = Origin {
            source: self.source,
            line,
        };
        ev.confidence = self.import.default_confidence;
        ev
    }
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            default_tlp: Tlp::Red,
            default_confidence: 50,
        }
    }
}

/// A feed format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum FeedFormat {
    Feodo,
    Urlhaus,
    ThreatfoxCsv,
    ThreatfoxJson,
    Shadowserver,
    /// The Liaison generic layout ([`CsvMapping::liaison`]).
    Liaison,
    Generic(Box<CsvMapping>),
    List(ListConfig),
    /// A STIX 2.1 bundle or TAXII envelope ([`crate::stix_in`]).
    Stix(ImportConfig),
    /// MISP events or a restSearch answer ([`crate::misp`]).
    Misp(ImportConfig),
}

impl FeedFormat {
    /// The CSV mapping behind a CSV format.
    pub fn csv_mapping(&self) -> Option<CsvMapping> {
        Some(match self {
            FeedFormat::Feodo => CsvMapping::feodo(),
            FeedFormat::Urlhaus => CsvMapping::urlhaus(),
            FeedFormat::ThreatfoxCsv => CsvMapping::threatfox(),
            FeedFormat::Shadowserver => CsvMapping::shadowserver(),
            FeedFormat::Liaison => CsvMapping::liaison(),
            FeedFormat::Generic(m) => (**m).clone(),
            FeedFormat::ThreatfoxJson | FeedFormat::List(_) | FeedFormat::Stix(_) | FeedFormat::Misp(_) => {
                return None;
            }
        })
    }

    /// Names accepted by [`FromStr`] (for `--format`).
    pub const NAMES: &'static [&'static str] = &[
        "feodo",
        "urlhaus",
        "threatfox-csv",
        "threatfox-json",
        "shadowserver",
        "liaison",
        "list",
        "stix",
        "misp",
    ];
}

impl FromStr for FeedFormat {
    type Err = crate::model::UnknownWord;
    /// Parses a `--format` word. `generic` needs a mapping from config and is not accepted here.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "feodo" | "feodotracker" => FeedFormat::Feodo,
            "urlhaus" => FeedFormat::Urlhaus,
            "threatfox" | "threatfox-csv" => FeedFormat::ThreatfoxCsv,
            "threatfox-json" => FeedFormat::ThreatfoxJson,
            "shadowserver" => FeedFormat::Shadowserver,
            "liaison" | "generic-csv" | "demo" => FeedFormat::Liaison,
            "list" | "plain" | "txt" => FeedFormat::List(ListConfig::default()),
            "stix" | "stix2" | "stix-2.1" | "taxii" => FeedFormat::Stix(ImportConfig::default()),
            "misp" | "misp-event" | "misp-feed" => FeedFormat::Misp(ImportConfig::default()),
            _ => {
                return Err(crate::model::UnknownWord {
                    what: "feed format",
                    value: s.to_string(),
                });
            }
        })
    }
}

/// One input of a run: a format, a feed name and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConfig {
    /// `feed.name`.
    pub feed: String,
    #[serde(flatten)]
    pub format: FeedFormat,
    #[serde(default)]
    pub limits: Limits,
}

impl SourceConfig {
    pub fn new(feed: &str, format: FeedFormat) -> SourceConfig {
        SourceConfig {
            feed: feed.to_string(),
            format,
            limits: Limits::default(),
        }
    }
}

/// A reader that counts the bytes it hands out, for progress reports.
pub struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> CountingReader<R> {
    pub fn new(inner: R) -> (CountingReader<R>, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            CountingReader {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Context shared by all parsers of one source.
pub struct ParseContext<'a> {
    pub file: Arc<str>,
    pub source: u32,
    pub observed_at: UnixTime,
    pub progress: &'a dyn Progress,
}

const PROGRESS_EVERY: u64 = 16_384;

impl ParseContext<'_> {
    /// Reports progress every `PROGRESS_EVERY` rows while a source is read.
    fn tick(&self, rows: u64, bytes_read: &std::sync::atomic::AtomicU64) {
        if rows.is_multiple_of(PROGRESS_EVERY) {
            self.progress.update(ProgressUpdate {
                source: self.source,
                file: &self.file,
                bytes_read: bytes_read.load(Ordering::Relaxed),
                rows,
                done: false,
            });
        }
    }
}

/// Parses one source, calling `emit` for every accepted event. Never fails as a whole.
pub fn parse_source<R: Read>(
    reader: R,
    config: &SourceConfig,
    ctx: &ParseContext<'_>,
    emit: &mut dyn FnMut(Event),
) -> SourceReport {
    let (reader, count) = CountingReader::new(reader);
    let mut report = SourceReport {
        file: ctx.file.to_string(),
        ..SourceReport::default()
    };
    match &config.format {
        FeedFormat::List(list) => parse_list(reader, &count, list, config, ctx, &mut report, emit),
        FeedFormat::ThreatfoxJson => parse_threatfox_json(reader, config, ctx, &mut report, emit),
        FeedFormat::Stix(c) => crate::json_doc::parse_stix(reader, c, config, ctx, &mut report, emit),
        FeedFormat::Misp(c) => crate::json_doc::parse_misp(reader, c, config, ctx, &mut report, emit),
        other => {
            if let Some(m) = other.csv_mapping() {
                parse_csv(reader, &count, &m, config, ctx, &mut report, emit);
            }
        }
    }
    report.bytes = count.load(Ordering::Relaxed);
    ctx.progress.update(ProgressUpdate {
        source: ctx.source,
        file: &ctx.file,
        bytes_read: report.bytes,
        rows: report.rows,
        done: true,
    });
    report
}

/// Parses a whole source into memory: the events and the report (for tests and small feeds).
pub fn parse_to_vec<R: Read>(
    reader: R,
    config: &SourceConfig,
    file: &str,
    observed_at: UnixTime,
) -> (Vec<Event>, SourceReport) {
    let mut events = Vec::new();
    let ctx = ParseContext {
        file: Arc::from(file),
        source: 0,
        observed_at,
        progress: &NoProgress,
    };
    let report = parse_source(reader, config, &ctx, &mut |e| events.push(e));
    (events, report)
}

struct Resolved {
    indicator: usize,
    kind: Option<usize>,
    time_source: Option<usize>,
    first_seen: Option<usize>,
    last_seen: Option<usize>,
    classification: Option<usize>,
    malware: Option<usize>,
    port: Option<usize>,
    confidence: Option<usize>,
    tlp: Option<usize>,
    victim_count: Option<usize>,
    victim_country: Option<usize>,
    source_country: Option<usize>,
    source_asn: Option<usize>,
    expected: Option<usize>,
    names: Vec<String>,
}

fn header_names(rec: &Record) -> Vec<String> {
    rec.iter()
        .enumerate()
        .map(|(i, f)| {
            let s = String::from_utf8_lossy(f);
            let s = if i == 0 { s.trim_start_matches('#') } else { &s };
            s.trim().trim_matches('"').trim().to_string()
        })
        .collect()
}

fn resolve(m: &CsvMapping, header: Option<&[String]>) -> Option<Resolved> {
    let r = |c: &Option<Column>| c.as_ref().and_then(|c| c.resolve(header));
    let indicator = m.indicator.resolve(header)?;
    let mut res = Resolved {
        indicator,
        kind: r(&m.kind),
        time_source: r(&m.time_source),
        first_seen: r(&m.first_seen),
        last_seen: r(&m.last_seen),
        classification: r(&m.classification),
        malware: r(&m.malware),
        port: r(&m.port),
        confidence: r(&m.confidence),
        tlp: r(&m.tlp),
        victim_count: r(&m.victim_count),
        victim_country: r(&m.victim_country),
        source_country: r(&m.source_country),
        source_asn: r(&m.source_asn),
        expected: m.columns.or(header.map(<[String]>::len)),
        names: header.map(<[String]>::to_vec).unwrap_or_default(),
    };
    if res.names.is_empty() {
        res.names = (0..res.expected.unwrap_or(0)).map(|i| format!("#{i}")).collect();
    }
    Some(res)
}

/// An indicator kind and whether the value carries a port (`ip:port`).
type KindWord = Option<(IndicatorKind, bool)>;

/// Small caches so repeated words (classification, TLP, kind, malware) cost no allocation.
#[derive(Default)]
struct Words {
    classes: Vec<(Box<[u8]>, Option<Classification>)>,
    tlps: Vec<(Box<[u8]>, Option<Tlp>)>,
    kinds: Vec<(Box<[u8]>, KindWord)>,
    malware: FastMap<Box<[u8]>, Arc<str>>,
}

fn cached<T: Copy>(cache: &mut Vec<(Box<[u8]>, T)>, key: &[u8], f: impl FnOnce(&str) -> T) -> T {
    if let Some((_, v)) = cache.iter().find(|(k, _)| &**k == key) {
        return *v;
    }
    let v = f(&String::from_utf8_lossy(key));
    if cache.len() < 256 {
        cache.push((key.into(), v));
    }
    v
}

impl Words {
    fn class(&mut self, b: &[u8]) -> Option<Classification> {
        cached(&mut self.classes, b, Classification::parse_lenient)
    }
    fn tlp(&mut self, b: &[u8]) -> Option<Tlp> {
        cached(&mut self.tlps, b, |s| s.parse().ok())
    }
    /// The kind and whether the value carries a port (`ip:port`).
    fn kind(&mut self, b: &[u8]) -> Option<(IndicatorKind, bool)> {
        cached(&mut self.kinds, b, |s| {
            let s = s.trim().to_ascii_lowercase();
            if s == "ip:port" {
                Some((IndicatorKind::Ipv4, true))
            } else {
                s.parse::<IndicatorKind>().ok().map(|k| (k, false))
            }
        })
    }
    fn malware(&mut self, b: &[u8]) -> Option<Arc<str>> {
        let b = b.trim_ascii();
        if b.is_empty() || b == b"None" || b == b"n/a" {
            return None;
        }
        if let Some(a) = self.malware.get(b) {
            return Some(a.clone());
        }
        let a: Arc<str> = Arc::from(String::from_utf8_lossy(b).as_ref());
        if self.malware.len() < 100_000 {
            self.malware.insert(b.into(), a.clone());
        }
        Some(a)
    }
}

/// Splits `1.2.3.4:443` or `[2001:db8::1]:443` into address and port.
fn split_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((a, p)) = rest.split_once("]:")
    {
        return (a, p.parse().ok());
    }
    match s.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') => (a, p.parse().ok()),
        _ => (s, None),
    }
}

fn parse_value(kind: Option<(IndicatorKind, bool)>, s: &str) -> Result<(IndicatorValue, Option<u16>), ValueError> {
    match kind {
        Some((IndicatorKind::Ipv4 | IndicatorKind::Ipv6, with_port)) => {
            let s = s.trim();
            if let Ok(ip) = s.parse::<std::net::IpAddr>() {
                return Ok((IndicatorValue::from_ip(ip), None));
            }
            if with_port || s.contains(':') {
                let (a, p) = split_port(s);
                if let Ok(ip) = a.parse::<std::net::IpAddr>() {
                    return Ok((IndicatorValue::from_ip(ip), p));
                }
            }
            Err(ValueError::BadIp(s.chars().take(120).collect()))
        }
        Some((k, _)) => IndicatorValue::parse(k, s).map(|v| (v, None)),
        None => IndicatorValue::detect(s).map(|v| (v, None)),
    }
}

/// Most fields a CSV record may have.
const MAX_FIELDS: usize = 512;

/// One CSV record: field bytes back to back and the end offset of each field. The buffers are
/// allocated once at their maximum size and reused, so reading a record copies nothing.
#[derive(Debug, Clone, Default)]
struct Record {
    data: Vec<u8>,
    used: usize,
    ends: Vec<usize>,
    fields: usize,
}

impl Record {
    fn len(&self) -> usize {
        self.fields
    }
    fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.fields {
            return None;
        }
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.fields).filter_map(|i| self.get(i))
    }
    fn as_slice(&self) -> &[u8] {
        &self.data[..self.used]
    }
}

/// A CSV reader over `csv_core` whose record buffer never grows past a limit: longer records
/// are consumed and reported as overflowing, not buffered.
struct BoundedCsv<R> {
    core: csv_core::Reader,
    input: BufReader<R>,
    max_record: usize,
    /// Newlines consumed so far.
    line: u64,
}

impl<R: Read> BoundedCsv<R> {
    fn new(inner: R, delimiter: u8, max_record: usize) -> BoundedCsv<R> {
        BoundedCsv {
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            input: BufReader::with_capacity(256 * 1024, inner),
            max_record: max_record.max(1024),
            line: 0,
        }
    }

    /// Reads the next record into `rec`. Returns its (1-based, first) line and whether it
    /// overflowed the limits (then `rec` holds only a prefix, without field bounds), or `None`
    /// at the end.
    fn next(&mut self, rec: &mut Record) -> std::io::Result<Option<(u64, bool)>> {
        if rec.data.len() != self.max_record {
            rec.data = vec![0; self.max_record];
        }
        if rec.ends.len() != MAX_FIELDS {
            rec.ends = vec![0; MAX_FIELDS];
        }
        rec.used = 0;
        rec.fields = 0;
        let mut nout_total = 0;
        let mut nend_total = 0;
        let mut overflow = false;
        let mut start_line = 0;
        loop {
            let buf = self.input.fill_buf()?;
            let (res, nin, nout, nend) =
                self.core
                    .read_record(buf, &mut rec.data[nout_total..], &mut rec.ends[nend_total..]);
            let consumed = &buf[..nin];
            if start_line == 0 {
                // Terminators before the record's first byte belong to earlier lines.
                let mut pre = 0;
                for &b in consumed {
                    match b {
                        b'\n' => pre += 1,
                        b'\r' => {}
                        _ => {
                            start_line = self.line + pre + 1;
                            break;
                        }
                    }
                }
            }
            self.line += consumed.iter().filter(|&&b| b == b'\n').count() as u64;
            self.input.consume(nin);
            nout_total += nout;
            nend_total += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull | csv_core::ReadRecordResult::OutputEndsFull => {
                    // Keep the first 160 bytes as the excerpt; overwrite the rest from there on.
                    overflow = true;
                    nout_total = nout_total.min(160);
                    nend_total = 0;
                }
                csv_core::ReadRecordResult::Record => {
                    rec.used = nout_total;
                    rec.fields = if overflow { 0 } else { nend_total };
                    let line = if start_line == 0 { self.line + 1 } else { start_line };
                    return Ok(Some((line, overflow)));
                }
                csv_core::ReadRecordResult::End => return Ok(None),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_csv<R: Read>(
    reader: CountingReader<R>,
    count: &AtomicU64,
    m: &CsvMapping,
    config: &SourceConfig,
    ctx: &ParseContext<'_>,
    report: &mut SourceReport,
    emit: &mut dyn FnMut(Event),
) {
    let limits = config.limits;
    let feed: Arc<str> = Arc::from(config.feed.as_str());
    let mut rdr = BoundedCsv::new(
        reader,
        u8::try_from(m.delimiter).unwrap_or(b','),
        limits.max_record_bytes,
    );
    let mut rec = Record::default();
    let mut last_comment: Option<Record> = None;
    let mut resolved: Option<Resolved> = None;
    let mut words = Words::default();
    let strict = matches!(config.format, FeedFormat::Generic(_));
    if !m.has_header {
        resolved = resolve(m, None);
    }
    loop {
        let (line, overflow) = match rdr.next(&mut rec) {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => {
                report.error = Some(SourceError::Io {
                    file: ctx.file.to_string(),
                    line: rdr.line,
                    message: e.to_string(),
                });
                break;
            }
        };
        if overflow {
            report.rows += 1;
            let reason = QuarantineReason::RecordTooLong {
                limit: limits.max_record_bytes,
                max_fields: MAX_FIELDS,
            };
            report.quarantine(&limits, &ctx.file, line, reason, rec.as_slice());
            continue;
        }
        if rec.get(0).is_some_and(|f| f.first() == Some(&b'#')) {
            if resolved.is_none() {
                last_comment = Some(rec.clone());
            }
            continue;
        }
        if rec.len() == 0 {
            continue;
        }
        if rec.len() == 1 && rec.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        let res = match &resolved {
            Some(r) => r,
            None => {
                // Header row, or the last comment line as header (abuse.ch style).
                let names = header_names(&rec);
                if let Some(r) = resolve(m, Some(&names)) {
                    // A mapping from configuration names its columns on purpose: every one
                    // of them must be in the header, or the file is not in that layout.
                    let missing = if strict { m.missing_columns(&names) } else { Vec::new() };
                    if !missing.is_empty() {
                        report.error = Some(SourceError::MissingColumn {
                            file: ctx.file.to_string(),
                            line,
                            wanted: missing.join(", "),
                            found: names,
                        });
                        break;
                    }
                    resolved = Some(r);
                    continue;
                }
                let from_comment = last_comment
                    .as_ref()
                    .map(header_names)
                    .and_then(|n| resolve(m, Some(&n)));
                match from_comment {
                    Some(r) => {
                        resolved = Some(r);
                        match &resolved {
                            Some(r) => r,
                            None => continue,
                        }
                    }
                    None => {
                        report.error = Some(SourceError::MissingColumn {
                            file: ctx.file.to_string(),
                            line,
                            wanted: if strict {
                                m.missing_columns(&names).join(", ")
                            } else {
                                format!("the indicator column {}", m.indicator.describe())
                            },
                            found: names,
                        });
                        break;
                    }
                }
            }
        };
        report.rows += 1;
        ctx.tick(report.rows, count);
        match csv_row(&rec, res, m, &limits, &feed, ctx, line, &mut words) {
            Ok(ev) => {
                report.accepted += 1;
                emit(ev);
            }
            Err(reason) => report.quarantine(&limits, &ctx.file, line, reason, rec.as_slice()),
        }
    }
}

/// Trims blanks and, for feeds that write `, "value"` (ThreatFox), the quotes the CSV reader
/// could not see as quoting because of the leading space.
#[inline]
fn unquote(f: &[u8]) -> &[u8] {
    let t = f.trim_ascii();
    if t.len() >= 2 && t[0] == b'"' && t[t.len() - 1] == b'"' {
        t[1..t.len() - 1].trim_ascii()
    } else {
        t
    }
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn csv_row(
    rec: &Record,
    r: &Resolved,
    m: &CsvMapping,
    limits: &Limits,
    feed: &Arc<str>,
    ctx: &ParseContext<'_>,
    line: u64,
    words: &mut Words,
) -> Result<Event, QuarantineReason> {
    if let Some(expected) = r.expected
        && rec.len() != expected
    {
        return Err(QuarantineReason::ColumnCount {
            expected,
            found: rec.len(),
        });
    }
    // A record shorter than the field limit cannot hold a field over it.
    for (i, f) in rec.iter().enumerate().filter(|_| rec.used > limits.max_field_bytes) {
        if f.len() > limits.max_field_bytes {
            return Err(QuarantineReason::FieldTooLong {
                column: i,
                len: f.len(),
                limit: limits.max_field_bytes,
            });
        }
    }
    if std::str::from_utf8(rec.as_slice()).is_err() {
        let column = rec.iter().position(|f| std::str::from_utf8(f).is_err()).unwrap_or(0);
        return Err(QuarantineReason::InvalidUtf8 { column });
    }
    let field = |ix: Option<usize>| ix.and_then(|i| rec.get(i)).map(unquote).filter(|f| !f.is_empty());
    let Some(raw) = rec.get(r.indicator) else {
        return Err(QuarantineReason::ColumnCount {
            expected: r.expected.unwrap_or(r.indicator + 1),
            found: rec.len(),
        });
    };
    let text = std::str::from_utf8(unquote(raw)).unwrap_or_default();
    let kind = match field(r.kind) {
        Some(k) => words.kind(k).or(m.default_kind.map(|k| (k, false))),
        None => m.default_kind.map(|k| (k, false)),
    };
    let (value, port_in_value) = parse_value(kind, text)?;
    let time = |ix: Option<usize>| -> Result<Option<UnixTime>, QuarantineReason> {
        match field(ix) {
            None => Ok(None),
            Some(b) => parse_timestamp(b)
                .map(Some)
                .ok_or_else(|| QuarantineReason::BadTimestamp {
                    column: ix.and_then(|i| r.names.get(i)).cloned().unwrap_or_default(),
                    value: String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned(),
                }),
        }
    };
    let time_source = time(r.time_source)?;
    let first_seen = time(r.first_seen)?;
    let last_seen = time(r.last_seen)?;
    let mut ev = Event::new(value, feed.clone(), ctx.observed_at);
    ev.origin = Origin {
        source: ctx.source,
        line,
    };
    ev.time_source = time_source;
    ev.first_seen = first_seen;
    ev.last_seen = last_seen;
    ev.port = port_in_value.or_else(|| field(r.port).and_then(|p| std::str::from_utf8(p).ok()?.parse().ok()));
    ev.malware = field(r.malware).and_then(|b| words.malware(b));
    ev.classification = field(r.classification).and_then(|b| words.class(b)).unwrap_or(
        if m.infected_if_malware && ev.malware.is_some() {
            Classification::InfectedSystem
        } else {
            m.default_classification
        },
    );
    ev.confidence = field(r.confidence)
        .and_then(|b| std::str::from_utf8(b).ok()?.parse::<u8>().ok())
        .map_or(m.default_confidence, |c| c.min(100));
    ev.tlp = field(r.tlp).and_then(|b| words.tlp(b)).unwrap_or(m.default_tlp);
    ev.victim_count = field(r.victim_count).and_then(|b| std::str::from_utf8(b).ok()?.parse().ok());
    ev.victim_country = field(r.victim_country).and_then(country_from_bytes);
    ev.source_country = field(r.source_country).and_then(country_from_bytes);
    ev.source_asn = field(r.source_asn).and_then(|b| parse_asn(std::str::from_utf8(b).ok()?));
    Ok(ev)
}

/// Reads lines of at most `max` bytes with constant memory; longer lines are cut and flagged.
struct BoundedLines<R> {
    inner: BufReader<R>,
    max: usize,
}

impl<R: Read> BoundedLines<R> {
    /// Fills `buf` with the next line (without `\n`). Returns `None` at end, else whether the
    /// line was longer than the limit.
    fn next_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
        buf.clear();
        let mut overlong = false;
        let mut any = false;
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                return Ok(any.then_some(overlong));
            }
            any = true;
            let (chunk, found) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], Some(i)),
                None => (avail, None),
            };
            let room = self.max.saturating_sub(buf.len());
            if chunk.len() > room {
                overlong = true;
            }
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            match found {
                Some(i) => {
                    self.inner.consume(i + 1);
                    return Ok(Some(overlong));
                }
                None => {
                    let n = avail.len();
                    self.inner.consume(n);
                }
            }
        }
    }
}

fn parse_list<R: Read>(
    reader: CountingReader<R>,
    count: &AtomicU64,
    list: &ListConfig,
    config: &SourceConfig,
    ctx: &ParseContext<'_>,
    report: &mut SourceReport,
    emit: &mut dyn FnMut(Event),
) {
    let limits = config.limits;
    let feed: Arc<str> = Arc::from(config.feed.as_str());
    let mut lines = BoundedLines {
        inner: BufReader::with_capacity(128 * 1024, reader),
        max: limits.max_field_bytes + 1,
    };
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        let overlong = match lines.next_line(&mut buf) {
            Ok(Some(o)) => o,
            Ok(None) => break,
            Err(e) => {
                report.error = Some(SourceError::Io {
                    file: ctx.file.to_string(),
                    line,
                    message: e.to_string(),
                });
                break;
            }
        };
        line += 1;
        let t = buf.trim_ascii();
        if t.is_empty() || t[0] == b'#' {
            continue;
        }
        report.rows += 1;
        ctx.tick(report.rows, count);
        if overlong || t.len() > limits.max_field_bytes {
            report.quarantine(
                &limits,
                &ctx.file,
                line,
                QuarantineReason::FieldTooLong {
                    column: 0,
                    len: t.len().max(limits.max_field_bytes + 1),
                    limit: limits.max_field_bytes,
                },
                t,
            );
            continue;
        }
        // Allow a trailing comment: `1.2.3.4 # seen in campaign X`.
        let t = match t.iter().position(|&b| b == b'#') {
            Some(i) if i > 0 && t[i - 1].is_ascii_whitespace() => t[..i].trim_ascii(),
            _ => t,
        };
        let parsed = std::str::from_utf8(t)
            .map_err(|_| QuarantineReason::InvalidUtf8 { column: 0 })
            .and_then(|s| parse_value(list.kind.map(|k| (k, false)), s).map_err(QuarantineReason::from));
        match parsed {
            Ok((value, port)) => {
                let mut ev = Event::new(value, feed.clone(), ctx.observed_at);
                ev.origin = Origin {
                    source: ctx.source,
                    line,
                };
                ev.port = port;
                ev.classification = list.classification;
                ev.confidence = list.confidence.min(100);
                ev.tlp = list.tlp;
                report.accepted += 1;
                emit(ev);
            }
            Err(reason) => report.quarantine(&limits, &ctx.file, line, reason, t),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ThreatFox JSON export: `{"<ioc id>": [{"ioc_value": ..., "ioc_type": ..., ...}], ...}`, or the
// API shape `{"query_status": "ok", "data": [{...}, ...]}`, or a bare array. Streamed entry by
// entry with serde's visitor API so memory stays constant.

struct JsonSink<'a, 'b> {
    config: &'a SourceConfig,
    ctx: &'a ParseContext<'b>,
    report: &'a mut SourceReport,
    emit: &'a mut dyn FnMut(Event),
    feed: Arc<str>,
    words: Words,
    entry: u64,
}

impl JsonSink<'_, '_> {
    fn entry(&mut self, v: serde_json::Value) {
        self.entry += 1;
        self.report.rows += 1;
        let limits = self.config.limits;
        let line = self.entry;
        let raw = v.to_string();
        match self.convert(&v) {
            Ok(ev) => {
                self.report.accepted += 1;
                (self.emit)(ev);
            }
            Err(reason) => self
                .report
                .quarantine(&limits, &self.ctx.file, line, reason, raw.as_bytes()),
        }
    }

    fn convert(&mut self, v: &serde_json::Value) -> Result<Event, QuarantineReason> {
        let limits = self.config.limits;
        let s = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let Some(obj) = v.as_object() else {
            return Err(QuarantineReason::Malformed {
                message: "entry is not an object".into(),
            });
        };
        for (i, (_, f)) in obj.iter().enumerate() {
            if let Some(t) = f.as_str()
                && t.len() > limits.max_field_bytes
            {
                return Err(QuarantineReason::FieldTooLong {
                    column: i,
                    len: t.len(),
                    limit: limits.max_field_bytes,
                });
            }
        }
        let value = s("ioc_value").or(s("ioc")).ok_or(QuarantineReason::Malformed {
            message: "no ioc_value".into(),
        })?;
        let kind = s("ioc_type").and_then(|k| self.words.kind(k.as_bytes()));
        let (value, port) = parse_value(kind, value)?;
        let time = |k: &str| -> Result<Option<UnixTime>, QuarantineReason> {
            match s(k) {
                None => Ok(None),
                Some(t) => QuarantineReason::timestamp(k, t).map(Some),
            }
        };
        let mut ev = Event::new(value, self.feed.clone(), self.ctx.observed_at);
        ev.origin = Origin {
            source: self.ctx.source,
            line: self.entry,
        };
        ev.port = port;
        let first_key = if v.get("first_seen_utc").is_some() {
            "first_seen_utc"
        } else {
            "first_seen"
        };
        let last_key = if v.get("last_seen_utc").is_some() {
            "last_seen_utc"
        } else {
            "last_seen"
        };
        ev.time_source = time(first_key)?;
        ev.first_seen = ev.time_source;
        ev.last_seen = time(last_key)?;
        ev.classification = s("threat_type")
            .and_then(|t| self.words.class(t.as_bytes()))
            .unwrap_or(Classification::C2Server);
        ev.malware = s("malware_printable")
            .or(s("malware"))
            .and_then(|m| self.words.malware(m.as_bytes()));
        ev.confidence = match v.get("confidence_level") {
            Some(serde_json::Value::Number(n)) => n.as_u64().map_or(50, |c| c.min(100) as u8),
            Some(serde_json::Value::String(t)) => t.parse::<u8>().map_or(50, |c| c.min(100)),
            _ => 50,
        };
        ev.tlp = Tlp::Clear;
        Ok(ev)
    }
}

struct Entries<'s, 'a, 'b>(&'s mut JsonSink<'a, 'b>);

impl<'de> serde::de::DeserializeSeed<'de> for Entries<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Entries<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ThreatFox JSON export (object of arrays) or an array of IOCs")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<serde_json::Value>()? {
            self.0.entry(v);
        }
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "query_status" {
                map.next_value::<serde::de::IgnoredAny>()?;
            } else {
                map.next_value_seed(Entries(&mut *self.0))?;
            }
        }
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

fn parse_threatfox_json<R: Read>(
    reader: CountingReader<R>,
    config: &SourceConfig,
    ctx: &ParseContext<'_>,
    report: &mut SourceReport,
    emit: &mut dyn FnMut(Event),
) {
    let mut sink = JsonSink {
        config,
        ctx,
        report,
        emit,
        feed: Arc::from(config.feed.as_str()),
        words: Words::default(),
        entry: 0,
    };
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(128 * 1024, reader));
    let result = serde::de::DeserializeSeed::deserialize(Entries(&mut sink), &mut de).and_then(|()| de.end());
    if let Err(e) = result {
        sink.report.error = Some(SourceError::Json {
            file: ctx.file.to_string(),
            line: e.line() as u64,
            column: e.column() as u64,
            message: e.to_string(),
        });
    }
}
