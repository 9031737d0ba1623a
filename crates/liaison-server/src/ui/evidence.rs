//! [ui] Evidence files on a request's page (docs/evidence.md): the list with download links
//! and the upload form. Uploads are `multipart/form-data` (the only way a browser form sends
//! a file), read field by field and streamed into the upload's sealed chunks; downloads are
//! attachments with the same headers as the API's.

use super::html::Opt;
use super::i18n::Lang;
use super::pages::{marking_class, render_detail_with};
use super::{Session, Ui, redirect};
use axum::body::Body;
use axum::extract::{Multipart, Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use liaison_core::record::EvidenceFile;
use liaison_core::{Marking, RequestId, Tlp};
use liaison_service::ServiceError;
use liaison_service::evidence::NewEvidence;

/// One file as the page lists it.
pub(crate) struct EvidenceRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub size: String,
    pub media_type: String,
    pub marking: String,
    pub marking_class: &'static str,
    pub uploaded: String,
    pub by: String,
    /// Deleted under retention: listed, not downloadable.
    pub deleted: bool,
}

pub(crate) fn rows(l: Lang, files: &[EvidenceFile]) -> Vec<EvidenceRow> {
    files
        .iter()
        .map(|f| EvidenceRow {
            id: f.id.clone(),
            name: f.file_name.clone(),
            kind: l.word("evidence_kind", f.kind.as_str()),
            size: size_text(f.size),
            media_type: f.media_type_sniffed.clone().unwrap_or_else(|| "-".into()),
            marking: f.marking.tlp.to_string(),
            marking_class: marking_class(f.marking.tlp),
            uploaded: f.uploaded_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            by: f.uploader.clone(),
            deleted: f.deleted_at.is_some(),
        })
        .collect()
}

fn size_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The levels of the upload form: the request's (default) and stricter ones.
pub(crate) fn levels(l: Lang, request: Tlp) -> Vec<Opt> {
    super::html::options(
        std::iter::once(("", l.t("marking.default").to_string())).chain(
            Tlp::ALL
                .iter()
                .filter(|t| **t >= request)
                .map(|t| (t.as_str(), t.to_string())),
        ),
        &[],
    )
}

/// Reads a short text field (at most 4 KiB).
async fn short_text(field: axum::extract::multipart::Field<'_>) -> Result<String, ServiceError> {
    let name = field.name().unwrap_or("field").to_string();
    let mut field = field;
    let mut out = Vec::new();
    while let Some(c) = field
        .chunk()
        .await
        .map_err(|e| ServiceError::invalid(&name, e.to_string()))?
    {
        out.extend_from_slice(&c);
        if out.len() > 4096 {
            return Err(ServiceError::invalid(&name, "too long"));
        }
    }
    String::from_utf8(out).map_err(|_| ServiceError::invalid(&name, "must be UTF-8 text"))
}

/// `POST /requests/{id}/evidence` (multipart: `csrf`, `tlp`, then `file`): adds the file; back
/// to the page with a banner, or the page with the refusal.
pub async fn upload(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, mut mp: Multipart) -> Response {
    s.ctx.here = format!("/requests/{}", super::html::url_enc(&id));
    let rid: RequestId = match id.parse() {
        Ok(r) => r,
        Err(_) => return s.error(&ServiceError::NotFound(format!("'{id}' is not a request id"))),
    };
    let mut csrf_ok = false;
    let mut tlp: Option<Tlp> = None;
    let result: Result<EvidenceFile, ServiceError> = async {
        loop {
            let field = mp
                .next_field()
                .await
                .map_err(|e| ServiceError::invalid("form", e.to_string()))?;
            let Some(field) = field else {
                return Err(ServiceError::invalid("file", "choose a file"));
            };
            match field.name() {
                Some("csrf") => csrf_ok = s.csrf_value_ok(&ui, Some(&short_text(field).await?)),
                Some("tlp") => {
                    let t = short_text(field).await?;
                    if !t.trim().is_empty() {
                        tlp = Some(t.trim().parse().map_err(|e: liaison_core::tlp::TlpParseError| {
                            ServiceError::invalid("tlp", e.to_string())
                        })?);
                    }
                }
                Some("file") => {
                    if !csrf_ok {
                        return Err(ServiceError::Forbidden("csrf".into()));
                    }
                    let name = field.file_name().unwrap_or("").to_string();
                    if name.is_empty() {
                        return Err(ServiceError::invalid("file", "choose a file"));
                    }
                    let media_type = field
                        .content_type()
                        .filter(|t| !t.starts_with("application/octet-stream"))
                        .map(str::to_string);
                    let new = NewEvidence {
                        file_name: name,
                        media_type,
                        marking: tlp.map(Marking::new),
                        ..Default::default()
                    };
                    let u = ui.node.evidence_upload_begin(&s.p, rid, new, Timestamp::now()).await?;
                    let mut field = field;
                    let stored = async {
                        let mut w = ui.node.evidence_upload_piece(&s.p, &u.id, 0).await?;
                        while let Some(c) = field
                            .chunk()
                            .await
                            .map_err(|e| ServiceError::invalid("file", format!("the upload broke off: {e}")))?
                        {
                            w.write(&c).await?;
                        }
                        w.finish().await?;
                        ui.node
                            .evidence_upload_finish(&s.p, &u.id, None, Timestamp::now())
                            .await
                    }
                    .await;
                    if stored.is_err() {
                        let _ = ui.node.evidence_upload_abort(&s.p, &u.id).await;
                    }
                    return stored;
                }
                _ => {
                    // Unknown fields are read and ignored (bounded).
                    short_text(field).await?;
                }
            }
        }
    }
    .await;
    match result {
        Ok(_) => redirect(&format!("/requests/{rid}?uploaded=1#evidence")),
        Err(ServiceError::Forbidden(m)) if m == "csrf" => s.csrf_rejected(),
        Err(e) => {
            let (status, banner) = super::service_banner(s.ctx.lang, &e);
            render_detail_with(&ui, &s, &id, status, vec![banner]).await
        }
    }
}

/// `GET /requests/{id}/evidence/{file}`: the file as a download (never inline).
pub async fn download(AxState(ui): AxState<Ui>, s: Session, Path((id, file)): Path<(String, String)>) -> Response {
    let rid: RequestId = match id.parse() {
        Ok(r) => r,
        Err(_) => return s.error(&ServiceError::NotFound(format!("'{id}' is not a request id"))),
    };
    let d = match ui
        .node
        .evidence_download(&s.p, Some(rid), &file, Timestamp::now())
        .await
    {
        Ok(d) => d,
        Err(e) => return s.error(&e),
    };
    let (name, size) = (d.file.file_name.clone(), d.file.size);
    let stream = futures_util::stream::unfold(Some(d.content), |reader| async move {
        let mut reader = reader?;
        match reader.next_chunk().await {
            Ok(Some(c)) => Some((Ok::<_, ServiceError>(axum::body::Bytes::from(c)), Some(reader))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "an evidence download failed its integrity check");
                Some((Err(e), None))
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    crate::evidence::download_headers(resp.headers_mut(), &name, size);
    resp
}
