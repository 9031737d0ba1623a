//! The evidence routes under /api/v1/requests/{id}/evidence (docs/evidence.md): streamed and
//! resumable uploads, listing, metadata, custody and downloads — thin handlers over
//! `liaison_service::evidence`.
//!
//! Downloads are never shown inline: every content answer is `application/octet-stream` with
//! `Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`,
//! `Content-Security-Policy: sandbox` and `Cache-Control: no-store`, so that malware samples
//! and abuse material never execute or display in a browser.

use crate::api::{Auth, Problem, check_params, json_body, parse_id};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use jiff::Timestamp;
use liaison_core::record::EvidenceKind;
use liaison_core::{Marking, RequestId};
use liaison_service::evidence::{NewEvidence, UploadWriter};
use liaison_service::{Node, Principal, ServiceError};
use serde::Deserialize;
use std::collections::HashMap;

type ApiResult<T> = std::result::Result<T, Problem>;

fn field(field: &str, message: impl Into<String>) -> Problem {
    Problem::from(ServiceError::invalid(field, message))
}

/// The evidence routes. Upload bodies are streamed to sealed chunks on disk under
/// `[evidence] max_file_bytes`, never held in memory: no framework body limit on them.
pub fn router(node: Node) -> Router {
    Router::new()
        .route(
            "/api/v1/requests/{id}/evidence",
            get(list).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/requests/{id}/evidence/uploads", post(begin))
        .route(
            "/api/v1/requests/{id}/evidence/uploads/{upload}",
            get(status)
                .patch(piece)
                .delete(abort)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/requests/{id}/evidence/uploads/{upload}/finish", post(finish))
        .route("/api/v1/requests/{id}/evidence/{file}", get(meta))
        .route("/api/v1/requests/{id}/evidence/{file}/content", get(content))
        .route("/api/v1/requests/{id}/evidence/{file}/custody", get(custody))
        .with_state(node)
}

/// `GET …/evidence`: the files of the request the caller may see.
async fn list(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(Json(node.evidence_list(&p, id, Timestamp::now()).await?).into_response())
}

/// The query of a one-shot upload: what the uploader says about the file.
fn new_evidence(q: &HashMap<String, String>, headers: &HeaderMap) -> ApiResult<NewEvidence> {
    let file_name = q
        .get("file_name")
        .cloned()
        .ok_or_else(|| field("file_name", "required: the file's original name"))?;
    let kind = q
        .get("kind")
        .map(|k| {
            EvidenceKind::parse(k).ok_or_else(|| field("kind", format!("'{k}' is not supporting, answer or comment")))
        })
        .transpose()?;
    let media_type = q.get("media_type").cloned().or_else(|| {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.starts_with("application/octet-stream"))
            .map(str::to_string)
    });
    let marking = match q.get("tlp") {
        None => {
            if q.contains_key("recipients") {
                return Err(field("recipients", "needs tlp=TLP:RED"));
            }
            None
        }
        Some(t) => {
            let tlp = t.parse().map_err(|e| field("tlp", format!("{e}")))?;
            let recipients = q
                .get("recipients")
                .map(|r| {
                    r.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            Some(Marking { tlp, recipients })
        }
    };
    Ok(NewEvidence {
        kind,
        attached_to: q.get("attached_to").cloned(),
        file_name,
        media_type,
        marking,
    })
}

/// Streams a body into an upload piece. What arrived before the body broke off or went over
/// the limit stays (sealed and synced): the session's offset says where to resume.
async fn receive(mut w: UploadWriter<'_>, body: Body) -> ApiResult<u64> {
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let bytes: Bytes = match frame {
            Ok(b) => b,
            Err(e) => {
                let at = w.finish().await?;
                return Err(field(
                    "body",
                    format!("the upload broke off after {at} bytes ({e}); resume at offset {at}"),
                ));
            }
        };
        if w.received() + bytes.len() as u64 > w.limit() {
            let limit = w.limit();
            let _ = w.finish().await;
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Content too large",
                format!("the file is larger than this node accepts ({limit} bytes, [evidence] max_file_bytes)"),
            ));
        }
        w.write(&bytes).await?;
    }
    Ok(w.finish().await?)
}

/// `POST …/evidence?file_name=…[&media_type=][&kind=][&attached_to=][&tlp=][&recipients=][&sha256=]`:
/// a whole file in one streamed body; 201 with the file. With `sha256` the content must have
/// that digest (else 422 and nothing is kept).
async fn upload(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_params(
        &q,
        &[
            "file_name",
            "media_type",
            "kind",
            "attached_to",
            "tlp",
            "recipients",
            "sha256",
        ],
    )?;
    let id = parse_id(&node, &p, &id).await?;
    let new = new_evidence(&q, &headers)?;
    let now = Timestamp::now();
    let u = node.evidence_upload_begin(&p, id, new, now).await?;
    let result = async {
        let w = node.evidence_upload_piece(&p, &u.id, 0).await?;
        receive(w, body).await?;
        Ok::<_, Problem>(
            node.evidence_upload_finish(&p, &u.id, q.get("sha256").map(String::as_str), Timestamp::now())
                .await?,
        )
    }
    .await;
    match result {
        Ok(f) => Ok((StatusCode::CREATED, Json(f)).into_response()),
        Err(e) => {
            // A one-shot upload does not resume: forget its session.
            let _ = node.evidence_upload_abort(&p, &u.id).await;
            Err(e)
        }
    }
}

/// `POST …/evidence/uploads` (JSON: file_name, media_type, kind, attached_to, marking): opens
/// a resumable upload; 201 with the session (`received` 0).
async fn begin(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let new: NewEvidence = json_body(&headers, &body)?;
    let u = node.evidence_upload_begin(&p, id, new, Timestamp::now()).await?;
    let mut resp = (StatusCode::CREATED, Json(&u)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/requests/{id}/evidence/uploads/{}", u.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn own_session(node: &Node, p: &Principal, id: &str, upload: &str) -> ApiResult<RequestId> {
    let id = parse_id(node, p, id).await?;
    node.evidence_upload_on(p, id, upload).await?;
    Ok(id)
}

/// `GET …/evidence/uploads/{upload}`: the session, with `received`, the offset the next
/// piece must start at.
async fn status(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((id, upload)): Path<(String, String)>,
) -> ApiResult<Response> {
    own_session(&node, &p, &id, &upload).await?;
    Ok(Json(node.evidence_upload_status(&p, &upload).await?).into_response())
}

/// `PATCH …/evidence/uploads/{upload}?offset=N`: the next piece, starting at `offset` (the
/// session's `received`; else 409 naming it). Answers the session.
async fn piece(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((id, upload)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult<Response> {
    check_params(&q, &["offset"])?;
    own_session(&node, &p, &id, &upload).await?;
    let offset: u64 = q
        .get("offset")
        .ok_or_else(|| field("offset", "required: where this piece starts (the session's received)"))?
        .parse()
        .map_err(|_| field("offset", "must be a whole number of bytes"))?;
    let w = node.evidence_upload_piece(&p, &upload, offset).await?;
    receive(w, body).await?;
    Ok(Json(node.evidence_upload_status(&p, &upload).await?).into_response())
}

/// `DELETE …/evidence/uploads/{upload}`: abandons the upload.
async fn abort(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((id, upload)): Path<(String, String)>,
) -> ApiResult<Response> {
    own_session(&node, &p, &id, &upload).await?;
    node.evidence_upload_abort(&p, &upload).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishBody {
    /// The SHA-256 of the whole file, hex: required, so that what is stored is what was sent.
    sha256: String,
}

/// `POST …/evidence/uploads/{upload}/finish` (JSON: sha256): checks the content's digest
/// (422 on a mismatch, and the upload is discarded) and stores the file; 201 with it.
async fn finish(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((id, upload)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    own_session(&node, &p, &id, &upload).await?;
    let b: FinishBody = json_body(&headers, &body)?;
    let f = node
        .evidence_upload_finish(&p, &upload, Some(&b.sha256), Timestamp::now())
        .await?;
    Ok((StatusCode::CREATED, Json(f)).into_response())
}

/// `GET …/evidence/{file}`: one file's metadata.
async fn meta(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((id, file)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(Json(node.evidence_meta(&p, Some(id), &file, Timestamp::now()).await?).into_response())
}

/// `GET …/evidence/{file}/custody`: the file's chain of custody (its audit entries).
async fn custody(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((id, file)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(Json(node.evidence_custody(&p, Some(id), &file, Timestamp::now()).await?).into_response())
}

/// A file name safe in a `Content-Disposition` header: ASCII letters, digits and `._-`
/// (others `_`) in `filename`, the name percent-encoded in `filename*` (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The headers of every evidence download.
/// A temporary file as a streamed body; the file is removed at once (the open handle keeps
/// its content until the answer is sent). `what` names it in errors and logs.
pub(crate) async fn temp_file_body(path: &std::path::Path, what: &'static str) -> Result<Body, ServiceError> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path).await;
    let _ = std::fs::remove_file(path);
    let file = file.map_err(|e| ServiceError::Internal(format!("reading {what}: {e}")))?;
    let stream = futures_util::stream::unfold(Some(file), move |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), Some(f)))
            }
            Err(e) => {
                tracing::error!(error = %e, "reading {what} failed");
                Some((Err(e), None))
            }
        }
    });
    Ok(Body::from_stream(stream))
}

pub fn download_headers(h: &mut HeaderMap, file_name: &str, size: u64) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    } else {
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"file\""),
        );
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
}

/// `GET …/evidence/{file}/content`: the file as a download (never inline), streamed and
/// checked chunk by chunk; custody records the download. Content that fails its check stops
/// the answer short of its `Content-Length`, so a client never takes it as complete.
async fn content(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((id, file)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let d = node.evidence_download(&p, Some(id), &file, Timestamp::now()).await?;
    let (name, size) = (d.file.file_name.clone(), d.file.size);
    let stream = futures_util::stream::unfold(Some(d.content), |reader| async move {
        let mut reader = reader?;
        match reader.next_chunk().await {
            Ok(Some(c)) => Some((Ok::<Bytes, ServiceError>(Bytes::from(c)), Some(reader))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "an evidence download failed its integrity check");
                Some((Err(e), None))
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    download_headers(resp.headers_mut(), &name, size);
    Ok(resp)
}
