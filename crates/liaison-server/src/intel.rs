//! The /api/v1/intel routes: network clean-up over the use cases of
//! `liaison_service::intel` (ingest feeds, issue notices, record feedback, statistics).

use crate::api::{Auth, Problem, check_params};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use jiff::Timestamp;
use liaison_intel::{FeedbackStatus, Notice};
use liaison_service::intel::{parse_instant, source_in, stats_query};
use liaison_service::intel_ingest::{JobHandle, SpoolFile, nul_to_replacement};
use liaison_service::{Node, ServiceError};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write as _;
use uuid::Uuid;

type ApiResult<T> = std::result::Result<T, Problem>;

fn field(field: &str, message: impl Into<String>) -> Problem {
    Problem::from(ServiceError::invalid(field, message))
}

/// The /api/v1/intel routes, using the node's `[intel]` configuration.
pub fn router(node: Node) -> Router {
    Router::new()
        // The upload is streamed to a spool file under `[intel] max_upload_bytes`, not read
        // into memory: no framework body limit.
        .route("/api/v1/intel/ingest", post(ingest).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/intel/ingest/{id}", get(ingest_job))
        .route("/api/v1/intel/ingests", get(ingest_jobs))
        .route("/api/v1/intel/notices", get(notices))
        .route("/api/v1/intel/notices/issue", post(issue))
        .route("/api/v1/intel/feedback", post(feedback))
        .route("/api/v1/intel/stats", get(stats))
        .route("/api/v1/intel/inbox", get(inbox))
        .route("/api/v1/intel/inbox/answer", post(inbox_answer))
        .route("/api/v1/intel/remediation", get(remediation))
        .route("/api/v1/intel/export", get(export))
        .route("/api/v1/intel/misp-feed/manifest.json", get(misp_manifest))
        .route("/api/v1/intel/misp-feed/{event}", get(misp_event))
        .with_state(node)
}

/// `POST /api/v1/intel/ingest?format=F[&feed=][&name=][&wait=true]`: the body is streamed to
/// a spool file (NUL bytes read as U+FFFD, at most `[intel] max_upload_bytes`), then
/// ingested in the background: 202 with the job (follow it at `Location`), or with
/// `wait=true` 200 with the report once done. A second ingest while one runs: 409 with
/// `Retry-After`. A feed whose columns do not match its format, or of which no row is
/// accepted: 422 (the job, or the answer with `wait=true`), and nothing is stored.
async fn ingest(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult<Response> {
    check_params(&q, &["format", "feed", "name", "wait"])?;
    let format = q
        .get("format")
        .ok_or_else(|| field("format", "required, e.g. ?format=feodo"))?;
    let name = q.get("name").map(String::as_str).unwrap_or("upload");
    let wait = match q.get("wait").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(field("wait", format!("'{other}' is not true or false"))),
    };
    let config = node.intel_config();
    let src = source_in(&config, name, format, q.get("feed").map(String::as_str))?;
    let (job, guard) = node.intel_ingest_begin(&p, &src, format, name).await?;
    let spool = match receive(&node, &job, body, config.upload_limit()).await {
        Ok(spool) => spool,
        Err(problem) => {
            job.fail(problem.status.as_u16(), problem.detail.clone());
            guard.release().await;
            return Err(problem);
        }
    };
    let task = node.intel_ingest_start(&job, guard, src, spool, Timestamp::now());
    if wait {
        return match task.await {
            Ok(Ok(report)) => Ok(Json(report).into_response()),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(Problem::from(ServiceError::Internal(format!("ingest task: {e}")))),
        };
    }
    let snapshot = job.snapshot();
    let mut resp = (StatusCode::ACCEPTED, Json(&snapshot)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/intel/ingest/{}", snapshot.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Streams an upload into a new spool file, frame by frame.
async fn receive(node: &Node, job: &JobHandle, body: Body, limit: u64) -> ApiResult<SpoolFile> {
    const FLUSH: usize = 1 << 20;
    // The spool file is synced every SYNC_EVERY bytes. Unsynced, a 1 GB upload left a
    // gigabyte of dirty pages for the kernel to write back later, and the database's commits
    // (each waits for its WAL to reach the disk) then queued behind that write-back: one
    // stall of about half a second for every request, seconds after the upload had ended
    // (bench/intel/README.md).
    const SYNC_EVERY: u64 = 32 << 20;
    let mut unsynced = 0u64;
    let mut spool = node.intel_spool_file()?;
    let mut file = spool
        .take_file()
        .ok_or_else(|| Problem::from(ServiceError::Internal("spool file already taken".into())))?;
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH + FLUSH / 4);
    loop {
        let frame = stream.next().await;
        let last = frame.is_none();
        if let Some(frame) = frame {
            let bytes = frame.map_err(|e| {
                field(
                    "body",
                    format!("the upload broke off after {received} bytes: {e}; nothing was ingested"),
                )
            })?;
            received += bytes.len() as u64;
            if received > limit {
                return Err(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Content too large",
                    format!(
                        "the feed is larger than this node accepts by upload ({limit} bytes, [intel] max_upload_bytes); nothing was ingested: split it, or ingest it with the CLI"
                    ),
                ));
            }
            nul_to_replacement(&bytes, &mut buf);
            job.received(received);
        }
        if buf.len() >= FLUSH || (last && !buf.is_empty()) {
            let chunk = std::mem::take(&mut buf);
            unsynced += chunk.len() as u64;
            let sync = unsynced >= SYNC_EVERY || last;
            if sync {
                unsynced = 0;
            }
            let (f, back) = tokio::task::spawn_blocking(move || {
                let r = file
                    .write_all(&chunk)
                    .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
                (file, r.map(|()| chunk))
            })
            .await
            .map_err(|e| Problem::from(ServiceError::Internal(format!("spool writer: {e}"))))?;
            file = f;
            buf = back.map_err(|e| Problem::from(ServiceError::Internal(format!("writing the spool file: {e}"))))?;
            buf.clear();
        }
        if last {
            break;
        }
    }
    job.received(received);
    Ok(spool)
}

/// `GET /api/v1/intel/ingest/{id}`: one ingest job of this node process.
async fn ingest_job(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| field("id", format!("'{id}' is not an ingest job id (UUID)")))?;
    Ok(Json(node.intel_ingest_job(&p, id)?).into_response())
}

/// `GET /api/v1/intel/ingests`: the recent ingest jobs of this node process, newest first.
async fn ingest_jobs(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &[])?;
    Ok(Json(node.intel_ingest_jobs(&p)?).into_response())
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
            liaison_intel::notices_to_csv(&plain, &mut out)
                .map_err(|e| Problem::from(ServiceError::Internal(e.to_string())))?;
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
    check_params(&q, &["since", "until", "pap"])?;
    let since = q.get("since").map(|s| parse_instant("since", s)).transpose()?;
    let until = q.get("until").map(|s| parse_instant("until", s)).transpose()?;
    let pap = q
        .get("pap")
        .map(|s| s.parse::<liaison_core::Pap>().map_err(|e| field("pap", e.to_string())))
        .transpose()?;
    let report = node.intel_issue(&p, since, until, pap, Timestamp::now()).await?;
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
    let rec = node
        .intel_feedback(&p, b.partner.as_deref(), b.item, status, b.note, Timestamp::now())
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

async fn inbox(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &[])?;
    Ok(Json(node.intel_inbox(&p).await?).into_response())
}

/// Body of `POST /api/v1/intel/inbox/answer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    pub item: Uuid,
    pub status: String,
    #[serde(default)]
    pub note: Option<String>,
}

async fn inbox_answer(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: AnswerBody = crate::api::json_body(&headers, &body)?;
    let status: FeedbackStatus = b.status.parse().map_err(|e: liaison_intel::model::UnknownWord| {
        field(
            "status",
            format!("{e}; accepted: remediated, not-found, disputed, false-positive"),
        )
    })?;
    let report = node
        .intel_inbox_answer(&p, b.item, status, b.note, Timestamp::now())
        .await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

async fn remediation(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &[])?;
    Ok(Json(node.intel_remediation(&p).await?).into_response())
}

/// The export filters of a query (`tlp_max`, `since`, `feed`, `active`).
fn export_query(q: &HashMap<String, String>) -> ApiResult<liaison_service::intel_export::ExportQuery> {
    Ok(liaison_service::intel_export::ExportQuery {
        tlp_max: q
            .get("tlp_max")
            .map(|t| {
                t.parse::<liaison_core::Tlp>()
                    .map_err(|e| field("tlp_max", e.to_string()))
            })
            .transpose()?,
        since: q.get("since").map(|s| parse_instant("since", s)).transpose()?,
        feed: q.get("feed").cloned(),
        active_only: match q.get("active").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(field("active", format!("'{other}' is not true or false"))),
        },
    })
}

/// `GET /api/v1/intel/export?format=stix|misp`: the caller's agency's indicators (and, for
/// STIX, its notices as reports), written to a temporary file and streamed as a download.
async fn export(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &["format", "tlp_max", "since", "feed", "active"])?;
    let format: liaison_service::intel_export::ExportFormat = q
        .get("format")
        .ok_or_else(|| field("format", "required: stix or misp"))?
        .parse()?;
    let query = export_query(&q)?;
    let (summary, path) = node.intel_export_temp(&p, format, &query).await?;
    let body = crate::evidence::temp_file_body(&path, "an indicator export").await?;
    let mut resp = Response::new(body);
    let (name, ctype) = match format {
        liaison_service::intel_export::ExportFormat::Stix => {
            ("liaison-indicators.stix.json", "application/stix+json;version=2.1")
        }
        _ => ("liaison-indicators.misp.json", "application/json"),
    };
    crate::evidence::download_headers(resp.headers_mut(), name, summary.bytes);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert("x-liaison-indicators", HeaderValue::from(summary.indicators));
    h.insert(
        "x-liaison-left-out-by-marking",
        HeaderValue::from(summary.left_out_by_marking),
    );
    Ok(resp)
}

/// `GET /api/v1/intel/misp-feed/manifest.json`: the manifest of the caller's agency's MISP
/// feed (a MISP instance subscribes with the node's URL of this directory and an
/// `Authorization` header).
async fn misp_manifest(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &[])?;
    let m = node.intel_misp_manifest(&p, &Default::default()).await?;
    Ok(Json(m).into_response())
}

/// `GET /api/v1/intel/misp-feed/{uuid}.json`: one event of that feed.
async fn misp_event(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(event): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &[])?;
    let id = event
        .strip_suffix(".json")
        .and_then(|u| Uuid::parse_str(u).ok())
        .ok_or_else(|| field("event", format!("'{event}' is not <uuid>.json")))?;
    let body = node.intel_misp_event(&p, &Default::default(), id).await?;
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}
