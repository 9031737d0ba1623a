//! `GET /api/v1/requests/{id}/evidence-package`: the evidence package of a request
//! (docs/evidence.md, "Evidence package") as a download. The package is written to a file in
//! the evidence directory's `tmp/` (the custody steps need its digest before it is sent), which
//! is unlinked as soon as it is open and then streamed, a megabyte at a time.

use crate::api::{Auth, Problem, parse_id};
use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use jiff::Timestamp;
use liaison_core::RequestId;
use liaison_service::{Node, Principal, ServiceError};

pub fn router(node: Node) -> Router {
    Router::new()
        .route("/api/v1/requests/{id}/evidence-package", get(package))
        .with_state(node)
}

async fn package(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(package_response(&node, &p, id).await?)
}

/// Writes the package of request `id` as `p` may read it and answers it as a download (the
/// API and the web UI's button).
pub(crate) async fn package_response(node: &Node, p: &Principal, id: RequestId) -> Result<Response, ServiceError> {
    let (done, path) = node.evidence_export_temp(p, id, Timestamp::now()).await?;
    let name = format!("evidence-package-{id}.zip");
    signed_zip_response(
        &path,
        "an evidence package",
        &name,
        done.size,
        &done.sha256,
        &done.fingerprint,
    )
    .await
}

/// A signed ZIP written to the temporary file `path` as a download (unlinked once open, then
/// streamed), with its digest and the signing key's fingerprint in headers.
pub(crate) async fn signed_zip_response(
    path: &std::path::Path,
    what: &'static str,
    file_name: &str,
    size: u64,
    sha256: &str,
    fingerprint: &str,
) -> Result<Response, ServiceError> {
    let body = crate::evidence::temp_file_body(path, what).await?;
    let mut resp = Response::new(body);
    crate::evidence::download_headers(resp.headers_mut(), file_name, size);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    if let Ok(v) = HeaderValue::from_str(sha256) {
        h.insert("x-liaison-package-sha256", v);
    }
    if let Ok(v) = HeaderValue::from_str(fingerprint) {
        h.insert("x-liaison-key-fingerprint", v);
    }
    Ok(resp)
}
