//! Fetching from partners' TAXII collections and MISP feeds (`[pull.NAME]`, docs/intel-formats.md,
//! "Pulling from partners"): HTTP with TLS against the system's certificate authorities and
//! the source's own `ca_file`, every answer bounded in size and time, written to a spool file
//! that `liaison_service::intel_pull` ingests; the schedule `liaison serve` runs.
//!
//! Everything the partner sends is hostile: a TAXII page must be an envelope of objects; a
//! MISP manifest's keys must be UUIDs (they become file names in URLs); the bytes of one pull
//! are capped by `max_bytes`, one answer by what is left of it; every request has a time limit.

use futures_util::StreamExt;
use liaison_service::intel_ingest::SpoolFile;
use liaison_service::intel_pull::{Fetched, PullConfig, PullKind, PullReport, PullState};
use liaison_service::{Node, ServiceError};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One answer (a page of 1,000 objects, a MISP event) must arrive within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Objects asked per TAXII page.
const PAGE: u32 = 1000;
/// Pages one pull follows at most.
const MAX_PAGES: u32 = 100_000;
/// The largest MISP manifest read.
const MAX_MANIFEST: u64 = 32 << 20;
/// The largest TAXII page read (a page is parsed whole: this bounds the memory it takes).
const MAX_PAGE_BYTES: u64 = 32 << 20;
/// The largest MISP event read (parsed whole, like a page).
const MAX_EVENT_BYTES: u64 = 64 << 20;
/// The system's certificate authorities (Debian's ca-certificates).
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

fn bad(name: &str, m: impl std::fmt::Display) -> ServiceError {
    ServiceError::Unprocessable(format!("pull {name}: {m}"))
}

fn client(node: &Node, name: &str) -> Result<reqwest::Client, ServiceError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let mut files = Vec::new();
    if std::path::Path::new(SYSTEM_CAS).exists() {
        files.push(std::path::PathBuf::from(SYSTEM_CAS));
    }
    if let Some(f) = node.pull_ca_file(name)? {
        files.push(f);
    }
    for f in &files {
        let certs = CertificateDer::pem_file_iter(f)
            .map_err(|e| bad(name, format!("reading certificate authorities {}: {e}", f.display())))?;
        for c in certs {
            let c = c.map_err(|e| bad(name, format!("{}: {e}", f.display())))?;
            // A certificate the store cannot use is skipped, as TLS libraries do with a bundle.
            let _ = roots.add(c);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServiceError::Internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ServiceError::Internal(format!("HTTP client: {e}")))
}

struct Source {
    name: String,
    cfg: PullConfig,
    token: Option<String>,
    http: reqwest::Client,
}

impl Source {
    fn get(&self, url: &str, accept: &str) -> reqwest::RequestBuilder {
        let r = self.http.get(url).header("Accept", accept);
        match (&self.cfg.user, &self.token) {
            (Some(u), t) => r.basic_auth(u, t.as_deref()),
            (None, Some(t)) => match self.cfg.kind {
                // MISP feeds take the key as the Authorization header itself.
                PullKind::MispFeed => r.header("Authorization", t),
                PullKind::Taxii => r.bearer_auth(t),
            },
            (None, None) => r,
        }
    }

    /// The body of a 200 answer, at most `limit` bytes (`None`: over the limit).
    async fn body(&self, url: &str, resp: reqwest::Response, limit: u64) -> Result<Option<Vec<u8>>, ServiceError> {
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(bad(
                &self.name,
                format!(
                    "{url} answered {status}: {}",
                    text.chars().take(300).collect::<String>().trim()
                ),
            ));
        }
        if resp.content_length().is_some_and(|n| n > limit) {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| bad(&self.name, format!("{url}: the answer broke off: {e}")))?;
            if (out.len() + chunk.len()) as u64 > limit {
                return Ok(None);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name)?.to_str().ok().map(str::to_string)
}

/// Writes `{"objects":[` … `]}` (TAXII) or `{"response":[` … `]}` (MISP) item by item.
struct SpoolWriter {
    file: std::io::BufWriter<std::fs::File>,
    items: u64,
    bytes: u64,
}

impl SpoolWriter {
    fn new(file: std::fs::File, key: &str) -> std::io::Result<SpoolWriter> {
        let mut file = std::io::BufWriter::new(file);
        let head = format!("{{\"{key}\":[");
        file.write_all(head.as_bytes())?;
        Ok(SpoolWriter {
            file,
            items: 0,
            bytes: head.len() as u64,
        })
    }
    fn item(&mut self, v: &Value) -> std::io::Result<()> {
        if self.items > 0 {
            self.file.write_all(b",")?;
        }
        let s = serde_json::to_vec(v)?;
        self.file.write_all(&s)?;
        self.items += 1;
        self.bytes += s.len() as u64 + 1;
        Ok(())
    }
    fn finish(mut self) -> std::io::Result<(u64, u64)> {
        self.file.write_all(b"]}")?;
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok((self.items, self.bytes + 2))
    }
}

fn io(name: &str) -> impl Fn(std::io::Error) -> ServiceError + '_ {
    move |e| ServiceError::Internal(format!("pull {name}: writing the spool file: {e}"))
}

/// A new spool file and its writer, under `key` (`objects` or `response`).
fn spool(node: &Node, name: &str, key: &str) -> Result<(SpoolFile, SpoolWriter), ServiceError> {
    let mut spool = node.intel_spool_file()?;
    let file = spool
        .take_file()
        .ok_or_else(|| ServiceError::Internal("spool file already taken".into()))?;
    let w = SpoolWriter::new(file, key).map_err(io(name))?;
    Ok((spool, w))
}

/// Closes the spool file: what a fetch brought.
fn fetched(name: &str, spool: SpoolFile, w: SpoolWriter, next: PullState, more: bool) -> Result<Fetched, ServiceError> {
    let (items, bytes) = w.finish().map_err(io(name))?;
    Ok(Fetched {
        spool,
        items,
        bytes,
        next,
        more,
    })
}

/// Pulls one source now: fetches what is new, ingests it, keeps the new state.
pub async fn pull(node: &Node, name: &str) -> Result<PullReport, ServiceError> {
    let cfg = node.pull_source(name)?;
    let fetched = async {
        let src = Source {
            name: name.to_string(),
            token: node.pull_token(name)?,
            http: client(node, name)?,
            cfg,
        };
        let state = node.pull_state(name).await?;
        match src.cfg.kind {
            PullKind::Taxii => fetch_taxii(node, &src, state).await,
            PullKind::MispFeed => fetch_misp(node, &src, state).await,
        }
    }
    .await;
    match fetched {
        Ok(f) => node.pull_ingest(name, f).await,
        Err(e) => {
            node.pull_failed(name, &e.to_string()).await?;
            Err(e)
        }
    }
}

/// One millisecond before a TAXII timestamp (a pull cut short resumes at the last instant it
/// received, so objects sharing that instant are not skipped).
fn just_before(t: &str) -> Option<String> {
    let ts: jiff::Timestamp = t.trim().parse().ok()?;
    let back = ts.checked_sub(jiff::SignedDuration::from_millis(1)).ok()?;
    Some(back.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

fn later(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(x), Some(y)) => {
            let (px, py) = (x.parse::<jiff::Timestamp>().ok(), y.parse::<jiff::Timestamp>().ok());
            Some(if py > px { y } else { x })
        }
        (x, y) => x.or(y),
    }
}

async fn fetch_taxii(node: &Node, src: &Source, state: PullState) -> Result<Fetched, ServiceError> {
    let name = &src.name;
    let (spool, mut w) = spool(node, name, "objects")?;
    let base = format!("{}objects/", src.cfg.url);
    let accept = "application/taxii+json;version=2.1";
    let mut next: Option<String> = None;
    let mut newest: Option<String> = None;
    let mut more = false;
    let mut pages = 0;
    loop {
        let mut q: Vec<(&str, String)> = vec![("limit", PAGE.to_string())];
        if let Some(a) = &state.added_after {
            q.push(("added_after", a.clone()));
        }
        if let Some(n) = &next {
            q.push(("next", n.clone()));
        }
        let resp = src
            .get(&base, accept)
            .query(&q)
            .send()
            .await
            .map_err(|e| bad(name, format!("{base}: {e}")))?;
        let last = header(&resp, "x-taxii-date-added-last");
        let left = src.cfg.max_bytes.saturating_sub(w.bytes);
        let Some(body) = src.body(&base, resp, left.min(MAX_PAGE_BYTES)).await? else {
            if pages == 0 || left > MAX_PAGE_BYTES {
                return Err(bad(
                    name,
                    format!(
                        "a page is larger than {} bytes (max_bytes {}, at most {MAX_PAGE_BYTES} a page): ask the partner for smaller pages",
                        left.min(MAX_PAGE_BYTES),
                        src.cfg.max_bytes
                    ),
                ));
            }
            // Over this pull's budget: the rest comes with the next pull.
            more = true;
            newest = newest.as_deref().and_then(just_before).or(newest);
            break;
        };
        let env: Value = serde_json::from_slice(&body)
            .map_err(|e| bad(name, format!("{base}: the answer is not a TAXII envelope: {e}")))?;
        let objects = match env.get("objects") {
            None | Some(Value::Null) => &Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(bad(name, format!("{base}: 'objects' is not a list"))),
        };
        for o in objects {
            w.item(o).map_err(io(name))?;
        }
        pages += 1;
        if last.is_none() && !objects.is_empty() {
            tracing::warn!(source = %name, "the TAXII server sends no X-TAXII-Date-Added-Last: the next pull starts from the same place");
        }
        newest = later(newest, last);
        let server_more = env.get("more").and_then(Value::as_bool).unwrap_or(false);
        match env.get("next").and_then(Value::as_str) {
            Some(n) if server_more && !n.is_empty() => next = Some(n.to_string()),
            _ => break,
        }
        if pages >= MAX_PAGES {
            more = true;
            break;
        }
    }
    let mut next_state = state;
    if newest.is_some() {
        next_state.added_after = newest;
    }
    fetched(name, spool, w, next_state, more)
}

fn event_time(v: &Value) -> Option<i64> {
    match v.get("timestamp")? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

async fn fetch_misp(node: &Node, src: &Source, state: PullState) -> Result<Fetched, ServiceError> {
    let name = &src.name;
    let murl = format!("{}manifest.json", src.cfg.url);
    let accept = "application/json";
    let resp = src
        .get(&murl, accept)
        .send()
        .await
        .map_err(|e| bad(name, format!("{murl}: {e}")))?;
    let body = src
        .body(&murl, resp, MAX_MANIFEST.min(src.cfg.max_bytes))
        .await?
        .ok_or_else(|| {
            bad(
                name,
                format!("{murl} is larger than {} bytes", MAX_MANIFEST.min(src.cfg.max_bytes)),
            )
        })?;
    let manifest: Value =
        serde_json::from_slice(&body).map_err(|e| bad(name, format!("{murl}: not a MISP manifest: {e}")))?;
    let map = manifest.as_object().ok_or_else(|| {
        bad(
            name,
            format!("{murl}: not a MISP manifest (an object of event uuid to header)"),
        )
    })?;
    // The events the feed changed since they were last ingested, oldest first.
    let mut todo: Vec<(i64, String)> = Vec::new();
    for (k, v) in map {
        let Ok(u) = uuid::Uuid::parse_str(k) else {
            tracing::warn!(source = %name, key = %k.chars().take(80).collect::<String>(), "MISP manifest key is not a UUID: skipped");
            continue;
        };
        let t = event_time(v).unwrap_or(0);
        let key = u.to_string();
        if state.events.get(&key).is_none_or(|seen| t > *seen) {
            todo.push((t, key));
        }
    }
    todo.sort();
    let (spool, mut w) = spool(node, name, "response")?;
    let mut next_state = state;
    let mut more = false;
    for (t, key) in todo {
        let url = format!("{}{key}.json", src.cfg.url);
        let resp = src
            .get(&url, accept)
            .send()
            .await
            .map_err(|e| bad(name, format!("{url}: {e}")))?;
        let left = src.cfg.max_bytes.saturating_sub(w.bytes);
        let Some(body) = src.body(&url, resp, left.min(MAX_EVENT_BYTES)).await? else {
            if w.items == 0 || left > MAX_EVENT_BYTES {
                return Err(bad(
                    name,
                    format!(
                        "event {key} is larger than {} bytes (max_bytes {}, at most {MAX_EVENT_BYTES} an event)",
                        left.min(MAX_EVENT_BYTES),
                        src.cfg.max_bytes
                    ),
                ));
            }
            more = true;
            break;
        };
        let ev: Value =
            serde_json::from_slice(&body).map_err(|e| bad(name, format!("{url}: not a MISP event: {e}")))?;
        if ev.get("Event").is_none() {
            return Err(bad(name, format!("{url}: not a MISP event (no 'Event')")));
        }
        w.item(&ev).map_err(io(name))?;
        next_state.events.insert(key, t);
    }
    fetched(name, spool, w, next_state, more)
}

/// The schedule: every minute, pulls each source whose `every_minutes` have passed since its
/// last run (a busy node or a failing partner is tried again at its next turn).
pub fn spawn_schedule(node: Node) -> Option<tokio::task::JoinHandle<()>> {
    if node.pull_sources().values().all(|s| s.every_minutes == 0) {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let names: Vec<(String, u64)> = node
                .pull_sources()
                .iter()
                .filter(|(_, s)| s.every_minutes > 0)
                .map(|(n, s)| (n.clone(), s.every_minutes))
                .collect();
            for (name, minutes) in names {
                let due = match node.pull_state(&name).await {
                    Ok(s) => s
                        .last_run
                        .is_none_or(|t| jiff::Timestamp::now().duration_since(t).as_secs() >= (minutes * 60) as i64),
                    Err(e) => {
                        tracing::error!(source = %name, error = %e, "pull state unreadable");
                        false
                    }
                };
                if !due {
                    continue;
                }
                match pull(&node, &name).await {
                    Ok(r) => tracing::info!(source = %name, items = r.items, bytes = r.bytes, more = r.more, "pulled"),
                    Err(e) => tracing::warn!(source = %name, error = %e, "pull failed; tried again at its next turn"),
                }
            }
        }
    }))
}
