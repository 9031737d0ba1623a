//! The /api/v1/cases routes: joint task-force cases (docs/cases.md). Each calls the same use
//! case as the CLI (`liaison case …`) and the web page `/cases`. A change to a case kept by
//! another node is sent there and answered 202 (the case's `actions` show it waiting); a change
//! decided here is answered 200 with the case as it is now.

use crate::api::{ApiResult, Auth, json_body};
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use liaison_core::Marking;
use liaison_core::case::ItemKind;
use liaison_service::Node;
use liaison_service::cases::{CaseView, ItemRef};
use serde::Deserialize;

pub fn router(node: Node) -> Router {
    Router::new()
        .route("/api/v1/cases", get(list).post(create))
        .route("/api/v1/cases/{case}", get(show))
        .route("/api/v1/cases/{case}/stats", get(stats))
        .route("/api/v1/cases/{case}/members", post(invite))
        .route("/api/v1/cases/{case}/answer", post(answer))
        .route("/api/v1/cases/{case}/leave", post(leave))
        .route("/api/v1/cases/{case}/links", post(link))
        .route("/api/v1/cases/{case}/shares", post(share))
        .route("/api/v1/cases/{case}/notes", post(note))
        .route("/api/v1/cases/{case}/state", post(state))
        .route("/api/v1/cases/{case}/marking", post(marking))
        .route("/api/v1/cases/{case}/export", get(export))
        .with_state(node)
}

/// 200 with the case when it changed here; 202 when the change was sent to its home node.
fn changed(v: CaseView) -> Response {
    let status = if v.home.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (status, Json(v)).into_response()
}

async fn list(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.cases(&p).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    reference: String,
    #[serde(default)]
    marking: Option<Marking>,
    #[serde(default)]
    invite: Vec<String>,
}

async fn create(AxState(node): AxState<Node>, Auth(p): Auth, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let b: CreateBody = json_body(&headers, &body)?;
    let v = node
        .case_create(&p, &b.name, &b.reference, b.marking, &b.invite, Timestamp::now())
        .await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn show(AxState(node): AxState<Node>, Auth(p): Auth, Path(case): Path<String>) -> ApiResult<Response> {
    Ok(Json(node.case(&p, &case, Timestamp::now()).await?).into_response())
}

async fn stats(AxState(node): AxState<Node>, Auth(p): Auth, Path(case): Path<String>) -> ApiResult<Response> {
    Ok(Json(node.case_stats(&p, &case, Timestamp::now()).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    agency: String,
}

async fn invite(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: InviteBody = json_body(&headers, &body)?;
    Ok(changed(node.case_invite(&p, &case, &b.agency, Timestamp::now()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    accept: bool,
    #[serde(default)]
    note: Option<String>,
}

async fn answer(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: AnswerBody = json_body(&headers, &body)?;
    Ok(changed(
        node.case_answer(&p, &case, b.accept, b.note, Timestamp::now()).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteOnly {
    #[serde(default)]
    note: Option<String>,
}

async fn leave(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NoteOnly = json_body(&headers, &body)?;
    Ok(changed(node.case_leave(&p, &case, b.note, Timestamp::now()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    kind: ItemKind,
    id: String,
    #[serde(default)]
    share: bool,
}

async fn link(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: LinkBody = json_body(&headers, &body)?;
    let item = ItemRef { kind: b.kind, id: b.id };
    Ok(changed(
        node.case_link(&p, &case, &item, b.share, Timestamp::now()).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    kind: ItemKind,
    id: String,
}

async fn share(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: ShareBody = json_body(&headers, &body)?;
    let item = ItemRef { kind: b.kind, id: b.id };
    Ok(changed(node.case_share(&p, &case, &item, Timestamp::now()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
    #[serde(default)]
    marking: Option<Marking>,
}

async fn note(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NoteBody = json_body(&headers, &body)?;
    Ok(changed(
        node.case_note(&p, &case, &b.text, b.marking, Timestamp::now()).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    state: liaison_core::case::CaseState,
    #[serde(default)]
    note: Option<String>,
}

async fn state(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: StateBody = json_body(&headers, &body)?;
    let open = b.state == liaison_core::case::CaseState::Open;
    Ok(changed(
        node.case_close(&p, &case, open, b.note, Timestamp::now()).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkingBody {
    marking: Marking,
}

async fn marking(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: MarkingBody = json_body(&headers, &body)?;
    Ok(changed(
        node.case_set_marking(&p, &case, b.marking, Timestamp::now()).await?,
    ))
}

/// `GET /api/v1/cases/{case}/export`: the case file as a download.
async fn export(AxState(node): AxState<Node>, Auth(p): Auth, Path(case): Path<String>) -> ApiResult<Response> {
    Ok(case_file_response(&node, &p, &case).await?)
}

/// Writes the case file of `case` as `p` may read it to a temporary file (the audit entry
/// needs its digest before it is sent), unlinks it once open, and answers it as a download
/// (the API and the web page's button).
pub(crate) async fn case_file_response(
    node: &Node,
    p: &liaison_service::Principal,
    case: &str,
) -> Result<Response, liaison_service::ServiceError> {
    let (done, path) = node.case_export_temp(p, case, Timestamp::now()).await?;
    let name = format!("case-file-{}.zip", done.case_id);
    crate::evidence_package::signed_zip_response(
        &path,
        "a case file",
        &name,
        done.size,
        &done.sha256,
        &done.fingerprint,
    )
    .await
}
