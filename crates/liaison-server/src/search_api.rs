//! The /api/v1 routes of search (docs/search.md): words in texts, identifier look-ups and saved
//! searches. Each calls the same use case as the CLI (`liaison search`, `liaison lookup`) and
//! the web page `/search`.

use crate::api::{ApiResult, Auth, Problem, json_body};
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use jiff::Timestamp;
use liaison_service::Node;
use liaison_service::search::SearchParams;
use serde::Deserialize;

pub fn router(node: Node) -> Router {
    Router::new()
        .route("/api/v1/search", get(search))
        .route("/api/v1/lookup", get(lookup))
        .route("/api/v1/searches", get(saved).post(save))
        .route("/api/v1/searches/{name}", delete(forget))
        .with_state(node)
}

/// `GET /api/v1/search`: one page of hits as JSON, or as CSV with `format=csv`.
async fn search(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let mut csv = false;
    let mut rest = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if k == "format" {
            csv = match v.as_str() {
                "json" => false,
                "csv" => true,
                _ => return Err(Problem::field("format", format!("'{v}' is not json or csv"))),
            };
        } else {
            rest.push((k, v));
        }
    }
    let params = SearchParams::parse(rest)?;
    let page = node.search(&p, &params, Timestamp::now()).await?;
    if !csv {
        return Ok(Json(page).into_response());
    }
    Ok(crate::api::csv_page(
        node.search_csv(&page).await?,
        page.next.as_deref(),
    ))
}

/// `GET /api/v1/lookup?target=…[&kind=…]`.
async fn lookup(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let mut target = None;
    let mut kind = None;
    for (k, v) in pairs {
        match k.as_str() {
            "target" if target.is_none() => target = Some(v),
            "kind" if kind.is_none() => {
                kind = Some(
                    v.parse()
                        .map_err(|e: liaison_core::UnknownValue| Problem::field("kind", e.to_string()))?,
                )
            }
            "target" | "kind" => return Err(Problem::field(&k, "given twice")),
            _ => return Err(Problem::field(&k, "unknown query parameter; known: target, kind")),
        }
    }
    let target = target.ok_or_else(|| Problem::field("target", "required: the identifier to look up"))?;
    Ok(Json(node.lookup(&p, &target, kind, Timestamp::now()).await?).into_response())
}

async fn saved(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.saved_searches(&p).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    /// 1–80 characters; the same name replaces the saved search.
    name: String,
    /// The search's query string (`q=phishing&state=received`).
    query: String,
}

async fn save(AxState(node): AxState<Node>, Auth(p): Auth, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let b: SaveBody = json_body(&headers, &body)?;
    let s = node.save_search(&p, &b.name, &b.query, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

async fn forget(AxState(node): AxState<Node>, Auth(p): Auth, Path(name): Path<String>) -> ApiResult<Response> {
    node.delete_saved_search(&p, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
