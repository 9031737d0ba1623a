//! Network clean-up: the use cases over [`liaison_intel`] (ingest feeds, issue per-partner
//! notices, record partner feedback, statistics) and their HTTP routes under /api/v1/intel.
//!
//! Roles:
//! - analysts, supervisors and admins ingest feeds and issue notices;
//! - a partner agency's users (the partner id of a route is the agency code, e.g. `CN-CNCERT`)
//!   read their own notices and give feedback on their own items only;
//! - statistics and all notices: analysts, supervisors, auditors and admins.
//!
//! Enrichment databases and routes come from the node's `[intel]` configuration, handed to
//! this module with [`set_config`] at start-up (the CLI passes it per command).
//!
//! Every write is one [`liaison_store::IntelTx`]: the state is loaded inside the write
//! transaction, changed in memory, and only changed indicators are written back.

use crate::api::{Auth, Problem};
use crate::service::{Node, Result, ServiceError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use liaison_core::{CountryCode, Role};
use liaison_intel::aggregate::{FeedbackError, FeedbackRecord};
use liaison_intel::source::{NoProgress, Progress};
use liaison_intel::time::{DAY, UnixTime, parse_timestamp};
use liaison_intel::{
    Classification, CleanupState, FeedFormat, FeedbackStatus, GroupBy, Input, Interval, Notice, NoticeId, PartnerId,
    Pipeline, RunSummary, SourceConfig, StatsQuery, StatsRow, indicator_stats,
};
use liaison_store::{Principal, StoredNotice};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

pub use liaison_intel::IntelConfig;

/// Largest accepted feed body on `POST /api/v1/intel/ingest`.
pub const MAX_FEED_BYTES: usize = 512 * 1024 * 1024;

static CONFIG: RwLock<Option<Arc<IntelConfig>>> = RwLock::new(None);

/// Sets the `[intel]` configuration the HTTP routes use (call once at start-up).
pub fn set_config(config: IntelConfig) {
    if let Ok(mut c) = CONFIG.write() {
        *c = Some(Arc::new(config));
    }
}

/// The configuration set with [`set_config`] (empty if none: no enrichment, no routes).
pub fn config() -> Arc<IntelConfig> {
    CONFIG.read().ok().and_then(|c| c.clone()).unwrap_or_default()
}

// ----- use cases -----------------------------------------------------------------------------

/// What an ingest did: the pipeline's run summary plus what was persisted.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    #[serde(flatten)]
    pub summary: RunSummary,
    /// Indicator rows written (new and changed).
    pub persisted: u64,
    pub persist_secs: f64,
    /// Distinct indicators known after the run.
    pub indicators_total: u64,
}

/// A notice as issued: counts only (the items are listed by `GET /api/v1/intel/notices`).
#[derive(Debug, Clone, Serialize)]
pub struct NoticeSummary {
    pub id: NoticeId,
    pub partner: PartnerId,
    pub interval: Interval,
    pub tlp: liaison_core::Tlp,
    pub items: usize,
    pub new: usize,
    pub still_active: usize,
    pub reappeared: usize,
}

impl NoticeSummary {
    pub fn of(n: &Notice) -> NoticeSummary {
        use liaison_intel::ItemStatus as S;
        let count = |s: S| n.items.iter().filter(|i| i.status == s).count();
        NoticeSummary {
            id: n.id,
            partner: n.partner.clone(),
            interval: n.interval,
            tlp: n.tlp,
            items: n.items.len(),
            new: count(S::New),
            still_active: count(S::StillActive),
            reappeared: count(S::Reappeared),
        }
    }
}

/// The result of a notice run.
#[derive(Debug, Clone, Serialize)]
pub struct IssueReport {
    pub interval: Interval,
    pub notices: Vec<NoticeSummary>,
    pub items: usize,
}

fn require(ok: bool, what: &str, p: &Principal) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "{what} is not allowed for role {} (user {})",
            p.role, p.username
        )))
    }
}

/// May ingest feeds and issue notices.
pub fn may_operate(role: Role) -> bool {
    matches!(role, Role::Analyst | Role::Supervisor | Role::Admin)
}

/// A source in an ingest: display name (file path), format word and feed name.
pub fn source(name: &str, format: &str, feed: Option<&str>) -> Result<SourceConfig> {
    let fmt: FeedFormat = format.parse().map_err(|e: liaison_intel::model::UnknownWord| {
        ServiceError::invalid("format", format!("{e}; accepted: {}", FeedFormat::NAMES.join(", ")))
    })?;
    let feed = feed.map(str::to_string).unwrap_or_else(|| {
        std::path::Path::new(name)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string())
    });
    Ok(SourceConfig::new(&feed, fmt))
}

/// A cheap fingerprint of what an update can change about a known indicator. Every
/// non-duplicate sighting bumps `sightings`; duplicates can only raise victim numbers.
fn fingerprint(ind: &liaison_intel::Indicator) -> (u64, Option<u32>, u64, usize) {
    let by_country: u64 = ind.victim_countries.iter().map(|(_, n)| u64::from(n)).sum();
    (ind.sightings, ind.victim_count, by_country, ind.victim_countries.len())
}

fn secs(t: Timestamp) -> UnixTime {
    t.as_second()
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

impl Node {
    /// The agency code of the principal: the partner id its notices are routed to.
    async fn partner_of(&self, p: &Principal) -> Result<String> {
        Ok(self.store.agency(p.agency).await?.code)
    }

    /// Runs feeds through parse → enrich → route → aggregate and persists the result.
    pub async fn intel_ingest(
        &self,
        p: &Principal,
        config: &IntelConfig,
        inputs: Vec<Input<'static>>,
        progress: Arc<dyn Progress + Send + Sync>,
        now: Timestamp,
    ) -> Result<IngestReport> {
        require(may_operate(p.role), "ingesting intelligence feeds", p)?;
        self.intel_ingest_trusted(config, inputs, progress, now).await
    }

    /// [`Node::intel_ingest`] without a principal: for the demo and trusted tooling.
    pub async fn intel_ingest_trusted(
        &self,
        config: &IntelConfig,
        inputs: Vec<Input<'static>>,
        progress: Arc<dyn Progress + Send + Sync>,
        now: Timestamp,
    ) -> Result<IngestReport> {
        let mut pipeline =
            Pipeline::from_config(config, secs(now)).map_err(|e| ServiceError::invalid("intel", e.to_string()))?;
        let mut tx = self.store.intel_begin().await?;
        let state = tx.load().await?;
        let before: Vec<_> = state.indicators.iter().map(fingerprint).collect();
        pipeline.state = state;
        let (pipeline, summary, dirty) = tokio::task::spawn_blocking(move || {
            let summary = pipeline.run(inputs, &*progress);
            let state = &pipeline.state;
            let mut dirty: Vec<u32> = before
                .iter()
                .zip(&state.indicators)
                .enumerate()
                .filter(|(_, (f, ind))| **f != fingerprint(ind))
                .map(|(i, _)| i as u32)
                .collect();
            dirty.extend(before.len() as u32..state.len() as u32);
            (pipeline, summary, dirty)
        })
        .await
        .map_err(internal)?;
        let started = std::time::Instant::now();
        let persisted = tx.save_indicators(&pipeline.state, &dirty).await?;
        tx.commit().await?;
        Ok(IngestReport {
            summary,
            persisted,
            persist_secs: started.elapsed().as_secs_f64(),
            indicators_total: pipeline.state.len() as u64,
        })
    }

    /// Builds and records the notices for `[since, until)`. Default `since`: the end of the
    /// last notice run (else everything; today when that run already reached `until`);
    /// default `until`: the end of today (UTC).
    pub async fn intel_issue(
        &self,
        p: &Principal,
        since: Option<UnixTime>,
        until: Option<UnixTime>,
        now: Timestamp,
    ) -> Result<IssueReport> {
        require(may_operate(p.role), "issuing clean-up notices", p)?;
        self.intel_issue_trusted(since, until, now).await
    }

    /// [`Node::intel_issue`] without a principal: for the demo and trusted tooling.
    pub async fn intel_issue_trusted(
        &self,
        since: Option<UnixTime>,
        until: Option<UnixTime>,
        now: Timestamp,
    ) -> Result<IssueReport> {
        let at = secs(now);
        let mut tx = self.store.intel_begin().await?;
        let mut state = tx.load().await?;
        let until = until.unwrap_or_else(|| Interval::day_of(at).end);
        let since = match since {
            Some(s) => s,
            None => tx
                .last_interval_end()
                .await?
                .or_else(|| state.indicators.iter().map(|i| i.first_seen).min())
                .filter(|&s| s < until)
                // A second run the same day: the last day before `until`.
                .unwrap_or(until - DAY),
        };
        if until <= since {
            return Err(ServiceError::invalid("until", "must be after since"));
        }
        let interval = Interval {
            start: since,
            end: until,
        };
        let notices = state.issue_notices(interval, at);
        let mut ixs: Vec<u32> = notices
            .iter()
            .flat_map(|n| n.items.iter().map(|i| i.indicator))
            .collect();
        ixs.sort_unstable();
        ixs.dedup();
        tx.save_indicators(&state, &ixs).await?;
        tx.save_notices(&notices, at).await?;
        tx.commit().await?;
        Ok(IssueReport {
            interval,
            items: notices.iter().map(|n| n.items.len()).sum(),
            notices: notices.iter().map(NoticeSummary::of).collect(),
        })
    }

    /// Issued notices: all of them for operators and statistics readers (optionally one
    /// partner's), else the caller's own agency's only.
    pub async fn intel_notices(&self, p: &Principal, partner: Option<&str>) -> Result<Vec<StoredNotice>> {
        let sees_all = may_operate(p.role) || p.role.may_read_statistics();
        let partner = if sees_all {
            partner.map(str::to_string)
        } else {
            let own = self.partner_of(p).await?;
            if let Some(asked) = partner
                && !asked.eq_ignore_ascii_case(&own)
            {
                return Err(ServiceError::Forbidden(format!(
                    "user {} of {own} may read only {own}'s notices, not {asked}'s",
                    p.username
                )));
            }
            Some(own)
        };
        Ok(self.store.intel_notices(partner.as_deref()).await?)
    }

    /// A partner's answer about one of its notice items.
    pub async fn intel_feedback(
        &self,
        p: &Principal,
        item: Uuid,
        status: FeedbackStatus,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<FeedbackRecord> {
        require(p.role != Role::Auditor, "giving feedback on notices", p)?;
        let own = self.partner_of(p).await?;
        let owner = self.store.intel_item_owner(item).await?;
        if owner.partner.as_str() != own {
            return Err(ServiceError::Forbidden(format!(
                "notice item {item} was sent to {}, not to {own}",
                owner.partner
            )));
        }
        self.intel_feedback_trusted(&owner.partner, item, status, note, now)
            .await
    }

    /// [`Node::intel_feedback`] on behalf of `partner`, without a principal (demo, tooling).
    pub async fn intel_feedback_trusted(
        &self,
        partner: &PartnerId,
        item: Uuid,
        status: FeedbackStatus,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<FeedbackRecord> {
        let mut tx = self.store.intel_begin().await?;
        let mut state = tx.load().await?;
        apply(&mut state, partner, item, status, note, secs(now))?;
        let first = state.feedback.len() - 1;
        let rec = state.feedback[first].clone();
        tx.save_indicators(&state, &[rec.indicator]).await?;
        tx.save_feedback(first, std::slice::from_ref(&rec)).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// Statistics over the persisted indicators.
    pub async fn intel_stats(&self, p: &Principal, q: &StatsQuery) -> Result<Vec<StatsRow>> {
        require(p.role.may_read_statistics(), "reading clean-up statistics", p)?;
        self.intel_stats_trusted(q).await
    }

    /// [`Node::intel_stats`] without a principal (demo).
    pub async fn intel_stats_trusted(&self, q: &StatsQuery) -> Result<Vec<StatsRow>> {
        let state = self.store.intel_load().await?;
        Ok(indicator_stats(&state.indicators, q))
    }
}

fn apply(
    state: &mut CleanupState,
    partner: &PartnerId,
    item: Uuid,
    status: FeedbackStatus,
    note: Option<String>,
    at: UnixTime,
) -> Result<()> {
    state
        .apply_feedback(partner, item, status, at, note)
        .map_err(|e| match e {
            FeedbackError::UnknownItem(_) => ServiceError::NotFound(e.to_string()),
            FeedbackError::WrongPartner { .. } => ServiceError::Forbidden(e.to_string()),
        })
}

/// Parses an instant as feeds write it (`2026-10-01`, RFC 3339, Unix seconds).
/// Instants are kept to the millisecond, up to the last one other timestamps can hold
/// (9999-12-30T22:00:00Z); later ones would collapse into one stored value.
pub fn parse_instant(field: &str, s: &str) -> Result<UnixTime> {
    parse_timestamp(s.trim().as_bytes())
        .filter(|&t| t <= Timestamp::MAX.as_second())
        .ok_or_else(|| {
            ServiceError::invalid(
                field,
                format!("'{s}' is not a date or instant such as 2026-10-01 or 2026-10-01T12:00:00Z, up to 9999-12-30T22:00:00Z"),
            )
        })
}

/// Builds a statistics query from words (shared by the API and the CLI).
pub fn stats_query(
    by: &str,
    class: Option<&str>,
    victim_country: Option<&str>,
    country: Option<&str>,
    asn: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<StatsQuery> {
    let by: GroupBy = by.parse().map_err(|e: liaison_intel::model::UnknownWord| {
        ServiceError::invalid(
            "by",
            format!("{e}; accepted: country, victim-country, classification, asn, day, partner, malware"),
        )
    })?;
    let mut q = StatsQuery::by(by);
    q.class = class
        .map(|c| c.parse::<Classification>())
        .transpose()
        .map_err(|e| ServiceError::invalid("class", e.to_string()))?;
    let cc = |field: &str, v: Option<&str>| {
        v.map(CountryCode::parse)
            .transpose()
            .map_err(|_| ServiceError::invalid(field, format!("'{}' is not an ISO 3166 country code", v.unwrap_or(""))))
    };
    q.victim_country = cc("victim_country", victim_country)?;
    q.country = cc("country", country)?;
    q.asn = asn
        .map(|a| {
            liaison_intel::model::parse_asn(a)
                .ok_or_else(|| ServiceError::invalid("asn", format!("'{a}' is not an AS number")))
        })
        .transpose()?;
    q.since = since.map(|s| parse_instant("since", s)).transpose()?;
    q.until = until.map(|s| parse_instant("until", s)).transpose()?;
    Ok(q)
}

// ----- HTTP ----------------------------------------------------------------------------------

type ApiResult<T> = std::result::Result<T, Problem>;

fn field(field: &str, message: impl Into<String>) -> Problem {
    Problem::from(ServiceError::invalid(field, message))
}

fn check_params(q: &HashMap<String, String>, known: &[&str]) -> ApiResult<()> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(field(
            k,
            format!("unknown query parameter; accepted: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The /api/v1/intel routes, using the configuration set with [`set_config`].
pub fn router(node: Node) -> Router {
    Router::new()
        .route(
            "/api/v1/intel/ingest",
            post(ingest).layer(DefaultBodyLimit::max(MAX_FEED_BYTES)),
        )
        .route("/api/v1/intel/notices", get(notices))
        .route("/api/v1/intel/notices/issue", post(issue))
        .route("/api/v1/intel/feedback", post(feedback))
        .route("/api/v1/intel/stats", get(stats))
        .with_state(node)
}

async fn ingest(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Response> {
    check_params(&q, &["format", "feed", "name"])?;
    let format = q
        .get("format")
        .ok_or_else(|| field("format", "required, e.g. ?format=feodo"))?;
    let name = q.get("name").map(String::as_str).unwrap_or("upload");
    let src = source(name, format, q.get("feed").map(String::as_str))?;
    // PostgreSQL cannot store U+0000: NUL bytes are read as U+FFFD, like other invalid text,
    // so that the rows they are in are kept or quarantined like any other.
    let body = if body.contains(&0) {
        let mut clean = Vec::with_capacity(body.len() + 16);
        for &b in body.iter() {
            if b == 0 {
                clean.extend_from_slice("\u{FFFD}".as_bytes());
            } else {
                clean.push(b);
            }
        }
        Bytes::from(clean)
    } else {
        body
    };
    let input = Input::new(src, name, std::io::Cursor::new(body));
    let report = node
        .intel_ingest(&p, &config(), vec![input], Arc::new(NoProgress), Timestamp::now())
        .await?;
    Ok(Json(report).into_response())
}

async fn notices(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &["partner", "format"])?;
    let notices = node.intel_notices(&p, q.get("partner").map(String::as_str)).await?;
    match q.get("format").map(String::as_str).unwrap_or("json") {
        "json" => Ok(Json(notices).into_response()),
        "csv" => {
            let plain: Vec<Notice> = notices.into_iter().map(|n| n.notice).collect();
            let mut out = Vec::new();
            liaison_intel::notices_to_csv(&plain, &mut out).map_err(|e| Problem::from(internal(e)))?;
            let mut resp = (StatusCode::OK, out).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            Ok(resp)
        }
        other => Err(field("format", format!("'{other}' is not json or csv"))),
    }
}

async fn issue(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &["since", "until"])?;
    let since = q.get("since").map(|s| parse_instant("since", s)).transpose()?;
    let until = q.get("until").map(|s| parse_instant("until", s)).transpose()?;
    let report = node.intel_issue(&p, since, until, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

/// Body of `POST /api/v1/intel/feedback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// The caller's agency code (optional; checked when given).
    #[serde(default)]
    pub partner: Option<String>,
    pub item: Uuid,
    pub status: String,
    #[serde(default)]
    pub note: Option<String>,
}

async fn feedback(AxState(node): AxState<Node>, Auth(p): Auth, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let b: FeedbackBody = crate::api::json_body(&headers, &body)?;
    let status: FeedbackStatus = b.status.parse().map_err(|e: liaison_intel::model::UnknownWord| {
        field(
            "status",
            format!("{e}; accepted: remediated, not-found, disputed, false-positive"),
        )
    })?;
    if let Some(claimed) = &b.partner {
        let own = node.store.agency(p.agency).await.map_err(ServiceError::from)?.code;
        if !claimed.eq_ignore_ascii_case(&own) {
            return Err(Problem::from(ServiceError::Forbidden(format!(
                "user {} answers for {own}, not for {claimed}",
                p.username
            ))));
        }
    }
    let rec = node
        .intel_feedback(&p, b.item, status, b.note, Timestamp::now())
        .await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

async fn stats(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(
        &q,
        &["by", "class", "victim_country", "country", "asn", "since", "until"],
    )?;
    let get = |k: &str| q.get(k).map(String::as_str);
    let query = stats_query(
        get("by").unwrap_or("country"),
        get("class"),
        get("victim_country"),
        get("country"),
        get("asn"),
        get("since"),
        get("until"),
    )?;
    let rows = node.intel_stats(&p, &query).await?;
    Ok(Json(serde_json::json!({ "query": query, "rows": rows })).into_response())
}
