//! Exporting indicators as STIX 2.1 bundles, MISP events and a MISP feed
//! (docs/intel-formats.md): who may export what, and the files.
//!
//! *What a reader may export* is what its agency originated (docs/markings.md): the
//! indicators its users ingested on this node (and, where the node serves one agency only,
//! those stored before the node recorded who ingested them), never the suppressed ones (false
//! positives), and the notices its agency issued, as STIX `report`s. The originator is not
//! bound by its own marking, so every level may be exported; each object carries its marking,
//! and `tlp_max` leaves out what is marked stricter than the audience the export is meant
//! for (a community feed: `TLP:GREEN`). Only operators (analysts, supervisors, admins) export.
//!
//! The clean-up state is read once, the selection made in memory, and the file written on a
//! blocking thread, object by object.

use crate::error::{Result, ServiceError};
use crate::intel::may_operate;
use crate::node::{Node, require};
use liaison_core::Tlp;
use liaison_core::record::Principal;
use liaison_intel::misp::{EventWriter, Org, event_header, event_uuid, manifest_entry};
use liaison_intel::stix::{BundleWriter, Producer, item_indicator};
use liaison_intel::time::UnixTime;
use liaison_intel::{CleanupState, StoredNotice};
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// A STIX 2.1 bundle.
    Stix,
    /// MISP events as a restSearch answer (`{"response": [{"Event": …}, …]}`).
    Misp,
    /// A MISP feed: a directory with `manifest.json` and one `<uuid>.json` per event.
    MispFeed,
}

impl FromStr for ExportFormat {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "stix" | "stix2" | "stix-2.1" => ExportFormat::Stix,
            "misp" | "misp-events" => ExportFormat::Misp,
            "misp-feed" => ExportFormat::MispFeed,
            other => {
                return Err(ServiceError::invalid(
                    "format",
                    format!("'{other}' is not an export format; accepted: stix, misp, misp-feed"),
                ));
            }
        })
    }
}

/// Which indicators an export holds (of those the reader may export).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportQuery {
    /// Leave out what is marked stricter than this.
    pub tlp_max: Option<Tlp>,
    /// Only indicators seen at or after this instant.
    pub since: Option<UnixTime>,
    /// Only indicators of this feed.
    pub feed: Option<String>,
    /// Only indicators still active (not remediated, or seen again since).
    pub active_only: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub format: ExportFormat,
    pub indicators: u64,
    /// Notices written as STIX reports.
    pub notices: u64,
    /// STIX objects, or MISP events.
    pub objects: u64,
    /// Indicators and notices of the agency left out because `tlp_max` is wider than their
    /// marking.
    pub left_out_by_marking: u64,
    pub bytes: u64,
}

/// What an export holds, chosen before anything is written.
struct Selection {
    state: CleanupState,
    /// Indices into `state.indicators`, by feed, marking, kind and value.
    chosen: Vec<u32>,
    notices: Vec<StoredNotice>,
    producer: Producer,
    left_out: u64,
}

/// One MISP event of an export: the indicators of one feed at one marking.
struct Group {
    uuid: Uuid,
    /// The event's header (its `timestamp` the group's newest sighting).
    header: serde_json::Value,
    indices: Vec<u32>,
}

impl Selection {
    /// The MISP events, in the selection's order (by feed, then marking).
    fn groups(&self) -> Vec<Group> {
        let mut runs: Vec<(Arc<str>, Tlp, Vec<u32>, UnixTime)> = Vec::new();
        for &i in &self.chosen {
            let ind = &self.state.indicators[i as usize];
            match runs.last_mut() {
                Some((f, t, ixs, newest)) if *f == ind.feed && *t == ind.tlp => {
                    ixs.push(i);
                    *newest = (*newest).max(ind.last_seen);
                }
                _ => runs.push((ind.feed.clone(), ind.tlp, vec![i], ind.last_seen)),
            }
        }
        let org = Org {
            code: self.producer.code.clone(),
            name: self.producer.name.clone(),
        };
        runs.into_iter()
            .map(|(feed, tlp, indices, newest)| Group {
                uuid: event_uuid(&org, &feed, tlp),
                header: event_header(&org, &feed, tlp, newest),
                indices,
            })
            .collect()
    }
}

/// A MISP feed's `manifest.json`: event uuid → the header's manifest fields.
fn manifest(groups: &[Group]) -> serde_json::Value {
    serde_json::Value::Object(
        groups
            .iter()
            .map(|g| (g.uuid.to_string(), manifest_entry(&g.header)))
            .collect(),
    )
}

/// Counts bytes written.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> ServiceError {
    let at = path.display().to_string();
    let what = what.to_string();
    move |e| ServiceError::Internal(format!("{what} {at}: {e}"))
}

fn write_stix(sel: &Selection, out: impl Write) -> std::io::Result<(u64, u64)> {
    let mut counting = Counting { inner: out, n: 0 };
    let id = Uuid::new_v5(
        &liaison_intel::aggregate::LIAISON_NAMESPACE,
        sel.producer.code.as_bytes(),
    );
    let mut w = BundleWriter::begin(&mut counting, id, Some(sel.producer.clone()))?;
    let mut written = std::collections::HashSet::new();
    for &i in &sel.chosen {
        let ind = &sel.state.indicators[i as usize];
        written.insert(ind.value.clone());
        w.indicator(ind)?;
    }
    for n in &sel.notices {
        // The notice's items, where the export does not hold them already (filtered out by
        // `since` or `active`), never one found to be a false positive since.
        for item in &n.notice.items {
            if let Some(ind) = item_indicator(item, "clean-up notice")
                && !sel.state.get(&ind.value).is_some_and(|(_, i)| i.suppressed)
                && written.insert(ind.value.clone())
            {
                w.indicator(&ind)?;
            }
        }
        w.notice(n)?;
    }
    let objects = w.objects();
    w.finish()?;
    Ok((objects, counting.n))
}

fn write_misp_event(sel: &Selection, g: &Group, out: impl Write) -> std::io::Result<()> {
    let mut w = EventWriter::begin(out, &g.header)?;
    for &i in &g.indices {
        w.attribute(&sel.state.indicators[i as usize])?;
    }
    w.finish()?;
    Ok(())
}

fn write_misp(sel: &Selection, out: impl Write) -> std::io::Result<(u64, u64)> {
    let mut c = Counting { inner: out, n: 0 };
    let groups = sel.groups();
    c.write_all(b"{\"response\":[")?;
    for (k, g) in groups.iter().enumerate() {
        if k > 0 {
            c.write_all(b",")?;
        }
        write_misp_event(sel, g, &mut c)?;
    }
    c.write_all(b"]}")?;
    c.flush()?;
    Ok((groups.len() as u64, c.n))
}

/// Writes `manifest.json` and the event files into `dir` (created if missing); event files
/// are written to a temporary name and renamed, and the manifest last, so a MISP instance
/// polling the directory never reads half a file.
fn write_feed(sel: &Selection, dir: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::create_dir_all(dir)?;
    let mut bytes = 0;
    let groups = sel.groups();
    for g in &groups {
        let uuid = g.uuid;
        let tmp = dir.join(format!(".{uuid}.json.tmp"));
        let mut c = Counting {
            inner: BufWriter::new(std::fs::File::create(&tmp)?),
            n: 0,
        };
        write_misp_event(sel, g, &mut c)?;
        bytes += c.n;
        c.inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, dir.join(format!("{uuid}.json")))?;
    }
    let body = serde_json::to_vec_pretty(&manifest(&groups))?;
    bytes += body.len() as u64;
    let tmp = dir.join(".manifest.json.tmp");
    std::fs::write(&tmp, &body)?;
    std::fs::rename(&tmp, dir.join("manifest.json"))?;
    Ok((groups.len() as u64, bytes))
}

impl Node {
    async fn export_selection(&self, p: &Principal, q: &ExportQuery, with_notices: bool) -> Result<Selection> {
        require(may_operate(p.role), "exporting indicators", p)?;
        let agency = self.store.agency(p.agency).await?;
        let local = self.store.agency_is_local(p.agency).await?;
        if !local {
            return Err(ServiceError::Forbidden(format!(
                "user {} belongs to {}, which this node does not serve: it has no indicators here to export",
                p.username, agency.code
            )));
        }
        let only_local = {
            let all = self.store.agencies(&Default::default()).await?;
            all.iter().filter(|(_, node)| node.is_none()).count() == 1
        };
        let state = self.store.intel_load().await?;
        let code = agency.code.clone();
        let admitted = |t: Tlp| q.tlp_max.is_none_or(|max| t <= max);
        let mut left_out = 0;
        let mut chosen: Vec<u32> = Vec::new();
        for (i, ind) in state.indicators.iter().enumerate() {
            let own = ind.ingested_by(&code) || (only_local && ind.ingested_by.is_none());
            if !own
                || ind.suppressed
                || (q.active_only && !ind.is_active())
                || q.since.is_some_and(|s| ind.last_seen < s)
                || q.feed.as_deref().is_some_and(|f| &*ind.feed != f)
            {
                continue;
            }
            if !admitted(ind.tlp) {
                left_out += 1;
                continue;
            }
            chosen.push(i as u32);
        }
        chosen.sort_by(|&a, &b| {
            let (x, y) = (&state.indicators[a as usize], &state.indicators[b as usize]);
            (&x.feed, x.tlp, x.kind, &x.value).cmp(&(&y.feed, y.tlp, y.kind, &y.value))
        });
        let mut notices = Vec::new();
        // Notices are not of one feed: an export of one feed holds none.
        if with_notices && q.feed.is_none() {
            for n in self.store.intel_notices_visible(None, Some(&code)).await? {
                if n.issuer.as_deref() != Some(code.as_str()) || q.since.is_some_and(|s| n.issued_at < s) {
                    continue;
                }
                if admitted(n.notice.tlp) {
                    notices.push(n);
                } else {
                    left_out += 1;
                }
            }
        }
        Ok(Selection {
            state,
            chosen,
            notices,
            producer: Producer {
                code,
                name: agency.name_en,
            },
            left_out,
        })
    }

    /// Writes an export of what `p`'s agency may export (see the module documentation) to
    /// `path` (a file, or for [`ExportFormat::MispFeed`] a directory).
    pub async fn intel_export(
        &self,
        p: &Principal,
        format: ExportFormat,
        q: &ExportQuery,
        path: &Path,
    ) -> Result<ExportSummary> {
        let sel = self.export_selection(p, q, format == ExportFormat::Stix).await?;
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let (objects, bytes) = match format {
                ExportFormat::MispFeed => write_feed(&sel, &path).map_err(io_err("writing the MISP feed in", &path))?,
                _ => {
                    let file = std::fs::File::create(&path).map_err(io_err("creating", &path))?;
                    let mut out = BufWriter::new(file);
                    let r = if format == ExportFormat::Stix {
                        write_stix(&sel, &mut out)
                    } else {
                        write_misp(&sel, &mut out)
                    };
                    let r = r.and_then(|r| out.flush().map(|()| r));
                    r.map_err(io_err("writing", &path))?
                }
            };
            Ok(ExportSummary {
                format,
                indicators: sel.chosen.len() as u64,
                notices: sel.notices.len() as u64,
                objects,
                left_out_by_marking: sel.left_out,
                bytes,
            })
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("export task: {e}")))?
    }

    /// [`Node::intel_export`] into a temporary file (for the API to stream and remove).
    pub async fn intel_export_temp(
        &self,
        p: &Principal,
        format: ExportFormat,
        q: &ExportQuery,
    ) -> Result<(ExportSummary, PathBuf)> {
        if format == ExportFormat::MispFeed {
            return Err(ServiceError::invalid(
                "format",
                "a MISP feed is served as /api/v1/intel/misp-feed/manifest.json and its event files",
            ));
        }
        let dir = self.intel_spool_dir();
        std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let path = dir.join(format!("export-{}.json", Uuid::now_v7()));
        match self.intel_export(p, format, q, &path).await {
            Ok(s) => Ok((s, path)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// The MISP feed's `manifest.json` (event uuid → header), for a MISP instance that
    /// subscribes to the node's feed.
    pub async fn intel_misp_manifest(&self, p: &Principal, q: &ExportQuery) -> Result<serde_json::Value> {
        let sel = self.export_selection(p, q, false).await?;
        Ok(manifest(&sel.groups()))
    }

    /// One event of the MISP feed (`<uuid>.json`); "not found" for an event the reader's
    /// feed does not hold.
    pub async fn intel_misp_event(&self, p: &Principal, q: &ExportQuery, event: Uuid) -> Result<Vec<u8>> {
        let sel = self.export_selection(p, q, false).await?;
        let group = sel
            .groups()
            .into_iter()
            .find(|g| g.uuid == event)
            .ok_or_else(|| ServiceError::NotFound(format!("MISP event {event}")))?;
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            write_misp_event(&sel, &group, &mut out).map_err(|e| ServiceError::Internal(e.to_string()))?;
            Ok(out)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("export task: {e}")))?
    }
}
