//! The /api/v1 routes for working requests (docs/queues.md): home pages and queue counts,
//! assignment, watching, converting a preservation, units, preferences and the inbox. Each
//! calls the same use case as the CLI (`liaison home|inbox|unit|prefs`, `liaison request
//! assign|watch|convert`) and the web pages.

use crate::api::{ApiResult, Auth, Problem, check_params, json_body, parse_id};
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use jiff::Timestamp;
use liaison_core::NotificationId;
use liaison_service::{Node, UserPrefs};
use serde::Deserialize;
use std::collections::HashMap;

pub fn router(node: Node) -> Router {
    Router::new()
        .route("/api/v1/home", get(home))
        .route("/api/v1/queues", get(counts))
        .route("/api/v1/requests/{id}/work", get(work))
        .route("/api/v1/requests/{id}/assignment", post(assign))
        .route("/api/v1/requests/{id}/watchers/me", put(watch).delete(unwatch))
        .route("/api/v1/requests/{id}/conversion", post(convert))
        .route("/api/v1/units", get(units).post(create_unit))
        .route(
            "/api/v1/units/{code}/members/{username}",
            put(add_member).delete(remove_member),
        )
        .route("/api/v1/preferences", get(prefs).put(set_prefs))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/notifications/read", post(read))
        .with_state(node)
}

async fn home(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &["shift_end"])?;
    let end = q
        .get("shift_end")
        .map(|v| {
            v.parse::<Timestamp>().map_err(|_| {
                Problem::field(
                    "shift_end",
                    format!("'{v}' is not an RFC 3339 instant such as 2026-01-31T18:00:00Z"),
                )
            })
        })
        .transpose()?;
    Ok(Json(node.home(&p, end, Timestamp::now()).await?).into_response())
}

async fn counts(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.queue_counts(&p, Timestamp::now()).await?).into_response())
}

async fn work(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(Json(node.work_state(&p, id, Timestamp::now()).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    /// A user name of the caller's agency; null or absent: nobody.
    #[serde(default)]
    owner: Option<String>,
    /// A unit code of the caller's agency; null or absent: none.
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

async fn assign(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let b: AssignBody = json_body(&headers, &body)?;
    if b.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(Problem::field("note", "at most 2000 characters"));
    }
    let w = node
        .assign(
            &p,
            id,
            b.owner.as_deref(),
            b.unit.as_deref(),
            b.note.as_deref(),
            Timestamp::now(),
        )
        .await?;
    Ok(Json(w).into_response())
}

async fn watch(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(Json(node.watch(&p, id, true, Timestamp::now()).await?).into_response())
}

async fn unwatch(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(Json(node.watch(&p, id, false, Timestamp::now()).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvertBody {
    /// The kind of the follow-up request.
    kind: liaison_core::RequestKind,
}

async fn convert(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let b: ConvertBody = json_body(&headers, &body)?;
    let (follow_up, preservation) = node.convert_preservation(&p, id, b.kind, Timestamp::now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"follow_up": follow_up, "preservation": preservation})),
    )
        .into_response())
}

async fn units(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.units(&p).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUnit {
    code: String,
    name: String,
}

async fn create_unit(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NewUnit = json_body(&headers, &body)?;
    let u = node.create_unit(&p, &b.code, &b.name, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, Json(u)).into_response())
}

async fn add_member(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((code, username)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(Json(node.unit_member(&p, &code, &username, true, Timestamp::now()).await?).into_response())
}

async fn remove_member(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((code, username)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(Json(node.unit_member(&p, &code, &username, false, Timestamp::now()).await?).into_response())
}

async fn prefs(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.prefs(&p).await?).into_response())
}

async fn set_prefs(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: UserPrefs = json_body(&headers, &body)?;
    Ok(Json(node.set_prefs(&p, b, Timestamp::now()).await?).into_response())
}

async fn notifications(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &["unread", "cursor", "limit"])?;
    let unread = match q.get("unread").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(Problem::field("unread", format!("'{v}' is not true or false"))),
    };
    let before = q
        .get("cursor")
        .map(|c| {
            c.parse::<NotificationId>()
                .map_err(|_| Problem::field("cursor", format!("'{c}' is not a cursor returned by this API")))
        })
        .transpose()?;
    let limit = match q.get("limit") {
        None => 50,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| Problem::field("limit", format!("'{l}' is not a number from 1 to 200")))?,
    };
    let items = node.notifications(&p, unread, before, limit, Timestamp::now()).await?;
    let next = (items.len() == limit as usize)
        .then(|| items.last().map(|n| n.id.to_string()))
        .flatten();
    Ok(Json(serde_json::json!({"items": items, "next": next})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    /// One notification; absent: all of them.
    #[serde(default)]
    id: Option<NotificationId>,
}

async fn read(AxState(node): AxState<Node>, Auth(p): Auth, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let b: ReadBody = json_body(&headers, &body)?;
    let n = node.mark_read(&p, b.id, Timestamp::now()).await?;
    Ok(Json(serde_json::json!({"marked": n})).into_response())
}
