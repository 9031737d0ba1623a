//! The TAXII 2.1 server at `/taxii2/` (docs/intel-formats.md, "TAXII 2.1") over the use
//! cases of `liaison_service::taxii`: discovery, one API root (`/taxii2/intel/`), its
//! collections, objects, manifest, versions, adding objects and status resources.
//!
//! Clients sign in with the node's tokens, as `Authorization: Bearer <token>` or as HTTP
//! Basic with the user name and the token as password. Every answer is
//! `application/taxii+json;version=2.1`, errors are TAXII error messages.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, RawQuery, State as AxState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use jiff::Timestamp;
use liaison_core::record::Principal;
use liaison_service::taxii::{Entry, ObjectQuery, taxii_time};
use liaison_service::{Node, ServiceError};
use serde_json::{Value, json};

/// The TAXII media type of every answer.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// The API root's path.
pub const API_ROOT: &str = "/taxii2/intel/";

/// How long adding objects waits for the import before answering `pending`.
const ADD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A TAXII error message.
pub struct TaxiiError {
    status: StatusCode,
    title: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl TaxiiError {
    fn new(status: StatusCode, title: &'static str, description: impl Into<String>) -> Self {
        TaxiiError {
            status,
            title,
            description: description.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut resp = (self.status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_MEDIA_TYPE));
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"liaison\", Bearer realm=\"liaison\""),
            );
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<ServiceError> for TaxiiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(errors) => TaxiiError::new(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
            ),
            ServiceError::Unauthenticated(m) => TaxiiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", m),
            ServiceError::Forbidden(m) => TaxiiError::new(StatusCode::FORBIDDEN, "Forbidden", m),
            ServiceError::NotFound(m) => TaxiiError::new(StatusCode::NOT_FOUND, "Not found", m),
            ServiceError::Busy {
                message,
                retry_after_secs,
            } => TaxiiError {
                retry_after: Some(retry_after_secs),
                ..TaxiiError::new(StatusCode::SERVICE_UNAVAILABLE, "Busy", message)
            },
            ServiceError::Unprocessable(m) => {
                TaxiiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable content", m)
            }
            ServiceError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                TaxiiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    "the node could not complete the request; the error is in its log",
                )
            }
            other => TaxiiError::new(StatusCode::CONFLICT, "Conflict", other.to_string()),
        }
    }
}

type TaxiiResult<T> = Result<T, TaxiiError>;

/// The caller, by Bearer token or HTTP Basic (user name, token as password); and a check of
/// the `Accept` header.
pub struct TaxiiAuth(pub Principal);

fn unauthorized(m: &str) -> TaxiiError {
    TaxiiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", m)
}

impl FromRequestParts<Node> for TaxiiAuth {
    type Rejection = TaxiiError;
    async fn from_request_parts(parts: &mut Parts, node: &Node) -> Result<Self, Self::Rejection> {
        check_accept(&parts.headers)?;
        if !node.taxii_config().enabled {
            return Err(TaxiiError::new(
                StatusCode::NOT_FOUND,
                "Not found",
                "this node does not serve TAXII ([taxii] enabled = false)",
            ));
        }
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                unauthorized(
                    "sign in with 'Authorization: Bearer <token>' or HTTP Basic (user name, token as password)",
                )
            })?;
        let now = Timestamp::now();
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Ok(TaxiiAuth(node.authenticate(token.trim(), now).await?));
        }
        let Some(b64) = value.strip_prefix("Basic ") else {
            return Err(unauthorized(
                "the Authorization header must be 'Bearer <token>' or 'Basic <user:token in base64>'",
            ));
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| unauthorized("the Basic credentials are not base64"))?;
        let text = String::from_utf8(raw).map_err(|_| unauthorized("the Basic credentials are not UTF-8"))?;
        let (user, token) = text
            .split_once(':')
            .ok_or_else(|| unauthorized("the Basic credentials must be 'user:token'"))?;
        let p = node.authenticate(token.trim(), now).await?;
        if p.username != user {
            // The same answer as an unknown token: nothing tells which half was wrong.
            return Err(unauthorized("the token is unknown, expired or revoked"));
        }
        Ok(TaxiiAuth(p))
    }
}

/// 406 unless the client accepts TAXII 2.1 (or anything).
fn check_accept(headers: &HeaderMap) -> TaxiiResult<()> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ok = accept.split(',').any(|part| {
        let mut bits = part.split(';').map(str::trim);
        let media = bits.next().unwrap_or("").to_ascii_lowercase();
        let version: Option<String> = bits
            .find_map(|b| b.strip_prefix("version=").map(str::to_string))
            .map(|v| v.trim_matches('"').to_string());
        match media.as_str() {
            "*/*" | "application/*" => true,
            "application/taxii+json" => version.is_none_or(|v| v == "2.1"),
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(TaxiiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Not acceptable",
            format!("this server answers {TAXII_MEDIA_TYPE}; the request accepts only '{accept}'"),
        ))
    }
}

fn taxii_json(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_MEDIA_TYPE));
    resp
}

/// Adds `X-TAXII-Date-Added-First/Last` for the entries of a page.
fn date_headers(resp: &mut Response, entries: &[Entry]) {
    if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
        for (name, t) in [
            ("x-taxii-date-added-first", first.date_added),
            ("x-taxii-date-added-last", last.date_added),
        ] {
            if let Ok(v) = HeaderValue::from_str(&taxii_time(t)) {
                resp.headers_mut().insert(name, v);
            }
        }
    }
}

/// The `/taxii2/` routes.
pub fn router(node: Node) -> Router {
    let limit = usize::try_from(node.taxii_config().max_content_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let mut r = Router::new();
    for (path, route) in [
        ("/taxii2/", get(discovery)),
        ("/taxii2/intel/", get(api_root)),
        ("/taxii2/intel/collections/", get(collections)),
        ("/taxii2/intel/collections/{id}/", get(collection)),
        (
            "/taxii2/intel/collections/{id}/objects/",
            get(objects).post(add_objects).layer(DefaultBodyLimit::max(limit)),
        ),
        (
            "/taxii2/intel/collections/{id}/objects/{object}/",
            get(object).delete(delete_object),
        ),
        (
            "/taxii2/intel/collections/{id}/objects/{object}/versions/",
            get(versions),
        ),
        ("/taxii2/intel/collections/{id}/manifest/", get(manifest)),
        ("/taxii2/intel/status/{id}/", get(status)),
    ] {
        // The same resource with or without the final slash.
        let bare = path.trim_end_matches('/');
        if !bare.is_empty() && bare != path {
            r = r.route(bare, route.clone());
        }
        r = r.route(path, route);
    }
    r.with_state(node)
}

async fn discovery(TaxiiAuth(_p): TaxiiAuth) -> TaxiiResult<Response> {
    Ok(taxii_json(
        StatusCode::OK,
        &json!({
            "title": "Liaison TAXII 2.1",
            "description": "Indicators this node's agencies share with their partners and community, by marking scope (docs/intel-formats.md)",
            "default": API_ROOT,
            "api_roots": [API_ROOT],
        }),
    ))
}

async fn api_root(AxState(node): AxState<Node>, TaxiiAuth(_p): TaxiiAuth) -> TaxiiResult<Response> {
    Ok(taxii_json(
        StatusCode::OK,
        &json!({
            "title": "Liaison indicators",
            "description": "One collection per partner and marking scope, a community collection and an inbox per agency",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": node.taxii_config().max_content_bytes,
        }),
    ))
}

async fn collections(AxState(node): AxState<Node>, TaxiiAuth(p): TaxiiAuth) -> TaxiiResult<Response> {
    let list: Vec<Value> = node.taxii_collections(&p).await?.iter().map(|c| c.resource()).collect();
    let body = if list.is_empty() {
        json!({})
    } else {
        json!({ "collections": list })
    };
    Ok(taxii_json(StatusCode::OK, &body))
}

async fn collection(
    AxState(node): AxState<Node>,
    TaxiiAuth(p): TaxiiAuth,
    Path(id): Path<String>,
) -> TaxiiResult<Response> {
    let c = node.taxii_collection(&p, &id).await?;
    Ok(taxii_json(StatusCode::OK, &c.resource()))
}

fn object_query(raw: Option<String>, paging: bool) -> TaxiiResult<ObjectQuery> {
    Ok(ObjectQuery::parse(raw.as_deref().unwrap_or(""), paging)?)
}

/// A page of Get Objects or Get Manifest as an envelope: each entry as `item` makes it.
async fn page(
    node: &Node,
    p: &Principal,
    id: &str,
    raw: Option<String>,
    item: fn(&Entry) -> Value,
) -> TaxiiResult<Response> {
    let q = object_query(raw, true)?;
    let page = node.taxii_objects(p, id, &q).await?;
    let mut body = json!({ "more": page.more });
    if let Some(n) = &page.next {
        body["next"] = Value::from(n.clone());
    }
    if !page.entries.is_empty() {
        body["objects"] = Value::Array(page.entries.iter().map(item).collect());
    }
    let mut resp = taxii_json(StatusCode::OK, &body);
    date_headers(&mut resp, &page.entries);
    Ok(resp)
}

async fn objects(
    AxState(node): AxState<Node>,
    TaxiiAuth(p): TaxiiAuth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> TaxiiResult<Response> {
    page(&node, &p, &id, raw, |e| e.object.clone()).await
}

async fn manifest(
    AxState(node): AxState<Node>,
    TaxiiAuth(p): TaxiiAuth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> TaxiiResult<Response> {
    page(&node, &p, &id, raw, Entry::manifest).await
}

/// Get an Object (`versions`: false) or Get Object Versions (true).
async fn one(
    node: &Node,
    p: &Principal,
    id: &str,
    object: &str,
    raw: Option<String>,
    versions: bool,
) -> TaxiiResult<Response> {
    let q = object_query(raw, false)?;
    let entries = node.taxii_object(p, id, object, &q).await?;
    let body = if versions {
        json!({"more": false, "versions": entries.iter().map(|e| e.version().to_string()).collect::<Vec<_>>()})
    } else {
        json!({"more": false, "objects": entries.iter().map(|e| e.object.clone()).collect::<Vec<_>>()})
    };
    let mut resp = taxii_json(StatusCode::OK, &body);
    date_headers(&mut resp, &entries);
    Ok(resp)
}

async fn object(
    AxState(node): AxState<Node>,
    TaxiiAuth(p): TaxiiAuth,
    Path((id, object)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> TaxiiResult<Response> {
    one(&node, &p, &id, &object, raw, false).await
}

async fn versions(
    AxState(node): AxState<Node>,
    TaxiiAuth(p): TaxiiAuth,
    Path((id, object)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> TaxiiResult<Response> {
    one(&node, &p, &id, &object, raw, true).await
}

async fn delete_object(
    AxState(node): AxState<Node>,
    TaxiiAuth(p): TaxiiAuth,
    Path((id, _object)): Path<(String, String)>,
) -> TaxiiResult<Response> {
    // Answer "not found" for a collection the caller may not see, as every other route does.
    node.taxii_collection(&p, &id).await?;
    Err(TaxiiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "objects of a collection are the node's indicators: remove an indicator by marking it a false positive (liaison intel feedback), not through TAXII",
    ))
}

async fn add_objects(
    AxState(node): AxState<Node>,
    TaxiiAuth(p): TaxiiAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> TaxiiResult<Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "application/taxii+json" {
        return Err(TaxiiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("send the envelope as Content-Type: {TAXII_MEDIA_TYPE} (found '{ct}')"),
        ));
    }
    let status = node.taxii_add(&p, &id, &body, ADD_WAIT).await?;
    Ok(taxii_json(StatusCode::ACCEPTED, &status))
}

async fn status(
    AxState(node): AxState<Node>,
    TaxiiAuth(p): TaxiiAuth,
    Path(id): Path<String>,
) -> TaxiiResult<Response> {
    Ok(taxii_json(StatusCode::OK, &node.taxii_status(&p, &id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            check_accept(&m).is_ok()
        };
        assert!(h("application/taxii+json;version=2.1"));
        assert!(h("application/taxii+json"));
        assert!(h("*/*"));
        assert!(!h("application/taxii+json;version=2.0"));
        assert!(!h("application/json"));
        assert!(check_accept(&HeaderMap::new()).is_ok());
    }
}
