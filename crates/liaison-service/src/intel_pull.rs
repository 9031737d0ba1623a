//! Pulling indicators from partners (docs/intel-formats.md, "Pulling from partners"): a
//! partner's TAXII 2.1 collection or MISP feed as a configured source (`[pull.NAME]` in
//! `liaison.toml`), fetched on a schedule by `liaison serve` or at once by `liaison intel
//! pull`, and ingested like a file of that format for one of this node's agencies.
//!
//! What was seen is kept per source in the node's settings (`intel.pull.NAME`): for TAXII the
//! newest `date_added` received (the next pull asks `added_after` it), for a MISP feed each
//! event's `timestamp` (an event is fetched again only when the feed says it changed). The
//! state moves only after the ingest succeeded: a pull that fails (the partner is down, the
//! document is refused, another ingest is running) is tried again from the same place, and
//! nothing already stored is touched. The fetching (HTTP, TLS, bounds) is the server's
//! (`liaison_server::pull`); this room holds the configuration, the state and the ingest.

use crate::error::{Result, ServiceError};
use crate::intel::{IngestReport, may_operate};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::Tlp;
use liaison_core::record::Principal;
use liaison_intel::pipeline::Input;
use liaison_intel::source::{FeedFormat, ImportConfig, SourceConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What a pulled source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullKind {
    /// A TAXII 2.1 collection: `url` is the collection's URL (`…/collections/ID/`).
    Taxii,
    /// A MISP feed: `url` is the directory holding `manifest.json` and `<uuid>.json`.
    MispFeed,
}

/// One `[pull.NAME]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    pub kind: PullKind,
    pub url: String,
    /// With a user name the token is sent as HTTP Basic password, else as a Bearer token
    /// (MISP: the `Authorization` header MISP's feeds take).
    #[serde(default)]
    pub user: Option<String>,
    /// A file holding the token (relative paths are relative to the data directory); the
    /// token itself is never written in the configuration.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The agency of this node the indicators are ingested for (may be left out when the
    /// node serves one).
    #[serde(default)]
    pub agency: Option<String>,
    /// The feed name the indicators get (default: the source's name).
    #[serde(default)]
    pub feed: Option<String>,
    /// The marking of what arrives without one (default `TLP:RED`).
    #[serde(default = "red")]
    pub default_tlp: Tlp,
    /// Minutes between pulls by `liaison serve` (0: only `liaison intel pull`).
    #[serde(default = "hourly")]
    pub every_minutes: u64,
    /// A PEM file of certificate authorities to trust for this source, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The most bytes one pull fetches (default 100 MiB): a bigger backlog is taken over
    /// several pulls (TAXII) or refused with the size named (MISP).
    #[serde(default = "hundred_mib")]
    pub max_bytes: u64,
}

fn red() -> Tlp {
    Tlp::Red
}
fn hourly() -> u64 {
    60
}
fn hundred_mib() -> u64 {
    100 * 1024 * 1024
}

/// Every `[pull.NAME]`, by name.
pub type PullSources = BTreeMap<String, PullConfig>;

/// Checks the sources without the network or the directory.
pub fn validate(sources: &PullSources) -> std::result::Result<(), String> {
    for (name, s) in sources {
        let at = format!("[pull.{name}]");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("{at}: a source name is letters, digits, '-' and '_'"));
        }
        let lower = s.url.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
            return Err(format!("{at}: url '{}' is not an http(s) URL", s.url));
        };
        if lower.starts_with("http://") {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                return Err(format!(
                    "{at}: url '{}' is plain HTTP: a token would cross the network in clear text; use https:// (plain HTTP is accepted on this machine only, 127.0.0.1)",
                    s.url
                ));
            }
        }
        if !s.url.ends_with('/') {
            return Err(format!(
                "{at}: url '{}' must end with '/' (the collection's URL, or the MISP feed's directory)",
                s.url
            ));
        }
        if s.max_bytes < 1024 {
            return Err(format!("{at}: max_bytes = {} is too small", s.max_bytes));
        }
    }
    Ok(())
}

/// What a source has seen (kept in the node's settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullState {
    /// TAXII: the newest `date_added` received (the next pull's `added_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_after: Option<String>,
    /// MISP feed: each event's `timestamp` when it was last ingested.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, i64>,
    pub last_run: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Objects (TAXII) or events (MISP) ingested by this source so far.
    #[serde(default)]
    pub pulled: u64,
}

/// What a fetch brought: a spool file to ingest and the state to keep if it succeeds.
pub struct Fetched {
    pub spool: crate::intel_ingest::SpoolFile,
    /// Objects (TAXII) or events (MISP) in the spool file.
    pub items: u64,
    pub bytes: u64,
    pub next: PullState,
    /// Whether the source had more than this pull took (a TAXII backlog over `max_bytes`).
    pub more: bool,
}

/// One pull's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub source: String,
    pub feed: String,
    pub agency: String,
    pub items: u64,
    pub bytes: u64,
    pub more: bool,
    /// The ingest's report (none when nothing new arrived, or nothing of it was kept).
    pub ingest: Option<IngestReport>,
    /// Why nothing of what arrived was kept (every object quarantined, or none an
    /// indicator): the source still moves past it, so it is not fetched again.
    pub problem: Option<String>,
    pub state: PullState,
}

/// A source with its state, for `liaison intel pull --list`.
#[derive(Debug, Clone, Serialize)]
pub struct PullSourceView {
    pub name: String,
    pub kind: PullKind,
    pub url: String,
    pub every_minutes: u64,
    pub state: PullState,
}

fn key(name: &str) -> String {
    format!("intel.pull.{name}")
}

impl Node {
    /// The node with its `[pull.*]` sources and the data directory their files are read from.
    pub fn with_pull_sources(mut self, sources: PullSources, data_dir: PathBuf) -> Self {
        self.pull = Arc::new((sources, data_dir));
        self
    }

    pub fn pull_sources(&self) -> &PullSources {
        &self.pull.0
    }

    /// A source's configuration; "not found" names the configured ones.
    pub fn pull_source(&self, name: &str) -> Result<PullConfig> {
        self.pull.0.get(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = self.pull.0.keys().map(String::as_str).collect();
            ServiceError::NotFound(format!(
                "pull source '{name}' (configured: {})",
                if names.is_empty() {
                    "none; add a [pull.NAME] section to liaison.toml".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })
    }

    /// The token of a source, read from its `token_file` (none without one).
    pub fn pull_token(&self, name: &str) -> Result<Option<String>> {
        let s = self.pull_source(name)?;
        let Some(f) = &s.token_file else {
            return Ok(None);
        };
        let path = if f.is_relative() {
            self.pull.1.join(f)
        } else {
            f.clone()
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ServiceError::invalid(
                "token_file",
                format!("[pull.{name}] token_file {}: {e}", path.display()),
            )
        })?;
        let t = text.trim().to_string();
        if t.is_empty() {
            return Err(ServiceError::invalid(
                "token_file",
                format!("[pull.{name}] token_file {} is empty", path.display()),
            ));
        }
        Ok(Some(t))
    }

    /// The PEM file of extra certificate authorities of a source, resolved.
    pub fn pull_ca_file(&self, name: &str) -> Result<Option<PathBuf>> {
        let s = self.pull_source(name)?;
        Ok(s.ca_file.map(|f| if f.is_relative() { self.pull.1.join(f) } else { f }))
    }

    pub async fn pull_state(&self, name: &str) -> Result<PullState> {
        match self.store.setting(&key(name)).await? {
            Some(v) => serde_json::from_str(&v)
                .map_err(|e| ServiceError::Internal(format!("pull state of {name} is damaged: {e}"))),
            None => Ok(PullState::default()),
        }
    }

    async fn save_pull_state(&self, name: &str, s: &PullState) -> Result<()> {
        let v = serde_json::to_string(s).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store.set_setting(&key(name), &v).await?;
        Ok(())
    }

    /// Records a failed pull (the state it would continue from is kept).
    pub async fn pull_failed(&self, name: &str, error: &str) -> Result<()> {
        let mut s = self.pull_state(name).await?;
        s.last_run = Some(Timestamp::now());
        s.last_error = Some(error.chars().take(2000).collect());
        self.save_pull_state(name, &s).await
    }

    /// The configured sources and their state; operators only.
    pub async fn pull_list(&self, p: &Principal) -> Result<Vec<PullSourceView>> {
        require(may_operate(p.role), "listing pulled sources", p)?;
        let mut out = Vec::new();
        for (name, s) in self.pull.0.iter() {
            out.push(PullSourceView {
                name: name.clone(),
                kind: s.kind,
                url: s.url.clone(),
                every_minutes: s.every_minutes,
                state: self.pull_state(name).await?,
            });
        }
        Ok(out)
    }

    /// The agency code a source ingests for.
    async fn pull_agency(&self, name: &str, s: &PullConfig) -> Result<String> {
        let all = self.store.agencies(&Default::default()).await?;
        let local: Vec<_> = all.iter().filter(|(_, n)| n.is_none()).map(|(a, _)| a).collect();
        match &s.agency {
            Some(code) => local
                .iter()
                .find(|a| a.code.eq_ignore_ascii_case(code))
                .map(|a| a.code.clone())
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "agency",
                        format!("[pull.{name}] agency '{code}' is not an agency this node serves"),
                    )
                }),
            None if local.len() == 1 => Ok(local[0].code.clone()),
            None => Err(ServiceError::invalid(
                "agency",
                format!("[pull.{name}] names no agency, and this node serves several: set agency = \"CODE\""),
            )),
        }
    }

    /// Checks that `p` may start a pull by hand (operators of this node's agencies).
    pub async fn pull_may_start(&self, p: &Principal) -> Result<()> {
        require(may_operate(p.role), "pulling from partners", p)?;
        if !self.store.agency_is_local(p.agency).await? {
            return Err(ServiceError::Forbidden(format!(
                "user {} belongs to an agency served by another node; only this node's agencies pull here",
                p.username
            )));
        }
        Ok(())
    }

    /// Ingests what a fetch brought (the agency's indicators, feed `feed`), then keeps the
    /// new state; on failure the old state stays and the error is recorded.
    pub async fn pull_ingest(&self, name: &str, fetched: Fetched) -> Result<PullReport> {
        let s = self.pull_source(name)?;
        let agency = self.pull_agency(name, &s).await?;
        let feed = s.feed.clone().unwrap_or_else(|| name.to_string());
        let now = Timestamp::now();
        let mut next = fetched.next;
        next.last_run = Some(now);
        let mut problem = None;
        let ingest = if fetched.items == 0 {
            None
        } else {
            let import = ImportConfig {
                default_tlp: s.default_tlp,
                ..Default::default()
            };
            let format = match s.kind {
                PullKind::Taxii => FeedFormat::Stix(import),
                PullKind::MispFeed => FeedFormat::Misp(import),
            };
            let src = SourceConfig::new(&feed, format);
            let file = std::fs::File::open(fetched.spool.path())
                .map_err(|e| ServiceError::Internal(format!("reopening the pull's spool file: {e}")))?;
            let input = Input::new(src, &format!("{name} ({})", s.url), std::io::BufReader::new(file));
            let config = self.intel_config();
            let r = self
                .intel_ingest_trusted(
                    &config,
                    vec![input],
                    Arc::new(liaison_intel::source::NoProgress),
                    Some(&agency),
                    now,
                )
                .await;
            match r {
                Ok(r) => Some(r),
                // The document was read and judged, and nothing in it is an indicator Liaison
                // keeps: moving past it is right (fetching it again would give the same).
                Err(ServiceError::Unprocessable(m)) if m.contains("accepted") => {
                    problem = Some(m);
                    None
                }
                Err(e) => {
                    self.pull_failed(name, &e.to_string()).await?;
                    return Err(e);
                }
            }
        };
        next.last_success = Some(now);
        next.last_error = problem.clone();
        next.pulled += fetched.items;
        self.save_pull_state(name, &next).await?;
        drop(fetched.spool);
        Ok(PullReport {
            source: name.to_string(),
            feed,
            agency,
            items: fetched.items,
            bytes: fetched.bytes,
            more: fetched.more,
            ingest,
            problem,
            state: next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(url: &str) -> PullSources {
        let mut m = PullSources::new();
        m.insert(
            "cert".into(),
            PullConfig {
                kind: PullKind::Taxii,
                url: url.into(),
                user: None,
                token_file: None,
                agency: None,
                feed: None,
                default_tlp: Tlp::Red,
                every_minutes: 60,
                ca_file: None,
                max_bytes: hundred_mib(),
            },
        );
        m
    }

    #[test]
    fn urls_are_checked() {
        assert!(validate(&src("https://cert.example/taxii2/api/collections/x/")).is_ok());
        assert!(validate(&src("http://127.0.0.1:8640/taxii2/intel/collections/x/")).is_ok());
        let e = validate(&src("http://cert.example/taxii2/")).unwrap_err();
        assert!(e.contains("clear text"), "{e}");
        assert!(validate(&src("ftp://cert.example/")).is_err());
        assert!(
            validate(&src("https://cert.example/collections/x"))
                .unwrap_err()
                .contains("end with '/'")
        );
    }
}
