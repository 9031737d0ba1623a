//! The /api/v1/intel routes: network clean-up over the use cases of
//! `liaison_service::intel` (ingest feeds, issue notices, record feedback, statistics).

use crate::api::{Auth, Problem, check_params};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use liaison_intel::source::NoProgress;
use liaison_intel::{FeedbackStatus, Input, Notice};
use liaison_service::intel::{MAX_FEED_BYTES, parse_instant, source, stats_query};
use liaison_service::{Node, ServiceError};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

type ApiResult<T> = std::result::Result<T, Problem>;

fn field(field: &str, message: impl Into<String>) -> Problem {
    Problem::from(ServiceError::invalid(field, message))
}

/// The /api/v1/intel routes, using the node's `[intel]` configuration.
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
        .route("/api/v1/intel/inbox", get(inbox))
        .route("/api/v1/intel/inbox/answer", post(inbox_answer))
        .route("/api/v1/intel/remediation", get(remediation))
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
        .intel_ingest(
            &p,
            &node.intel_config(),
            vec![input],
            Arc::new(NoProgress),
            Timestamp::now(),
        )
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
