//! HTTP API under /api/v1: thin handlers over [`liaison_service::Node`].
//!
//! All errors are RFC 9457 problem+json documents that name the field and value at fault.
//! Every route except `/api/v1/health` (and the public API description) needs a Bearer token.

use crate::openapi;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use jiff::Timestamp;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::{FieldError, RequestDraft};
use liaison_core::{AgencyId, RequestId, RequestKind, Role};
use liaison_service::work::Queue;
use liaison_service::{GroupBy, Node, ServiceError};
use liaison_service::{Principal, RequestFilter};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The router with every /api/v1 route, the OpenAPI document and Swagger UI.
pub fn router(node: Node) -> Router {
    let api = Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/me", get(me))
        .route("/api/v1/directory", get(directory))
        .route("/api/v1/jurisdictions", post(add_jurisdiction))
        .route("/api/v1/agencies", post(add_agency))
        .route("/api/v1/agencies/{code}", patch(rename_agency))
        .route("/api/v1/contacts", post(add_contact))
        .route("/api/v1/requests", get(list_requests).post(create_request))
        .route("/api/v1/requests/overdue", get(overdue))
        .route("/api/v1/requests/{id}", get(get_request).put(update_draft))
        .route("/api/v1/requests/{id}/events", get(events))
        .route("/api/v1/requests/{id}/transitions", get(allowed).post(transition))
        .route("/api/v1/requests/{id}/comments", post(comment))
        .route("/api/v1/requests/{id}/approval", get(approval).post(approval_step))
        .route("/api/v1/requests/{id}/reassess", post(reassess))
        .route("/api/v1/requests/{id}/marking", post(set_marking))
        .route("/api/v1/requests/{id}/consents", get(uses).post(consent))
        .route("/api/v1/requests/{id}/letter", get(letter))
        .route(
            "/api/v1/requests/{id}/texts/{field}/{lang}",
            axum::routing::put(set_text),
        )
        .route("/api/v1/assessments", post(assess))
        .route("/api/v1/reports/cooperation", get(cooperation))
        .route("/api/v1/audit/verify", get(audit_verify))
        .route("/api/v1/users", get(users).post(create_user))
        .route("/api/v1/tokens", get(crate::admin_api::tokens).post(create_token))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(node.clone())
        .merge(crate::admin_api::router(node.clone())) // users, tokens, peers, ledger, keys
        .merge(crate::intel::router(node.clone())) // [intel] /api/v1/intel (network clean-up)
        .merge(crate::evidence::router(node.clone())) // /api/v1/requests/{id}/evidence
        .merge(crate::evidence_package::router(node.clone())) // /api/v1/requests/{id}/evidence-package
        .merge(crate::work_api::router(node.clone())) // home, queues, assignment, units, inbox
        .merge(crate::search_api::router(node.clone())) // search, look-up, saved searches
        .merge(crate::cases_api::router(node.clone())) // joint cases
        .layer(axum::middleware::from_fn(refuse_nul_in_query))
        // Every error of the API is problem+json, including the framework's own refusals.
        .layer(axum::middleware::map_response(problem_errors));
    let doc = openapi::document(&node);
    api.merge(crate::taxii::router(node.clone())) // [intel] TAXII 2.1 at /taxii2/ (its own error format)
        .merge(crate::ui::router(node)) // [ui] web pages at / (see docs/ui.md)
        .merge(utoipa_swagger_ui::SwaggerUi::new("/api/v1/docs").external_url_unchecked("/api/v1/openapi.json", doc))
}

/// Turns an error answer that is not problem+json (the framework's refusals: a body over the
/// limit, a malformed path or query, a method the route does not have) into one, keeping its
/// status and headers. The health check's JSON answer is left as it is.
async fn problem_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with(openapi::PROBLEM_JSON) || ct.starts_with("application/json") {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let title = status.canonical_reason().unwrap_or("Error");
    let detail = if text.is_empty() { title.to_string() } else { text };
    let mut out = Problem::new(status, title, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

// ----- errors --------------------------------------------------------------------------------

/// An RFC 9457 problem document.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub allowed: Option<Vec<State>>,
    /// Seconds for a `Retry-After` header (a busy answer).
    pub retry_after: Option<u64>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            title,
            detail: detail.into(),
            errors: vec![],
            allowed: None,
            retry_after: None,
        }
    }
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Problem {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid input",
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.to_string(),
                message,
            }],
            allowed: None,
            retry_after: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let slug = self.title.to_ascii_lowercase().replace(' ', "-");
        let mut body = serde_json::json!({
            "type": format!("https://liaison.invalid/problems/{slug}"),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = serde_json::to_value(
                self.errors
                    .iter()
                    .map(|e| serde_json::json!({"field": e.field, "message": e.message}))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default();
        }
        if let Some(a) = &self.allowed {
            body["allowed"] = serde_json::json!(a);
        }
        let mut resp = (self.status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"liaison\""),
            );
        }
        resp
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(errors) => Problem {
                status: StatusCode::BAD_REQUEST,
                title: "Invalid input",
                detail: errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
                errors,
                allowed: None,
                retry_after: None,
            },
            ServiceError::Unauthenticated(m) => Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", m),
            ServiceError::Forbidden(m) => Problem::new(StatusCode::FORBIDDEN, "Forbidden", m),
            ServiceError::NotFound(m) => Problem::new(StatusCode::NOT_FOUND, "Not found", m),
            ServiceError::IllegalTransition { message, allowed } => Problem {
                allowed: Some(allowed),
                ..Problem::new(StatusCode::CONFLICT, "Illegal transition", message)
            },
            ServiceError::Conflict(m) => Problem::new(StatusCode::CONFLICT, "Conflict", m),
            ServiceError::Integrity(m) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Integrity check failed", m),
            ServiceError::Busy {
                message,
                retry_after_secs,
            } => Problem {
                retry_after: Some(retry_after_secs),
                ..Problem::new(StatusCode::CONFLICT, "Busy", message)
            },
            ServiceError::Unprocessable(m) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable content", m)
            }
            ServiceError::Incomplete(errors) => Problem {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                title: "Missing particulars",
                detail: errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
                errors,
                allowed: None,
                retry_after: None,
            },
            ServiceError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    "the node could not complete the request; the error is in its log",
                )
            }
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, Problem>;

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "no such route; see /api/v1/openapi.json",
    )
}

// ----- extractors ----------------------------------------------------------------------------

/// The authenticated caller.
pub struct Auth(pub Principal);

impl FromRequestParts<Node> for Auth {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, node: &Node) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "send the header 'Authorization: Bearer <token>'",
            )
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "the Authorization header must be 'Bearer <token>'",
                )
            })?;
        Ok(Auth(node.authenticate(token.trim(), Timestamp::now()).await?))
    }
}

/// Parses a JSON body, naming the exact field path and value on error. A body that is missing
/// or not sent as application/json is a 415.
pub(crate) fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> ApiResult<T> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = ct.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "send the body as Content-Type: application/json",
        ));
    }
    if let Some(path) = nul_in_json(body) {
        return Err(Problem::field(&path, NUL_MESSAGE));
    }
    let problem = |e: serde_path_to_error::Error<serde_json::Error>| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        Problem::field(&field, e.inner().to_string())
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let first = serde_path_to_error::deserialize(&mut de)
        .map_err(problem)
        // Nothing but white space may follow the JSON value.
        .and_then(|v| de.end().map(|()| v).map_err(|e| Problem::field("body", e.to_string())));
    match first {
        Ok(v) => Ok(v),
        Err(p) => {
            // JSON Schema counts 30.0 as an integer: read integral numbers written with a
            // fraction or an exponent as integers and try again; else the first error stands.
            let retried = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|mut v| integral_numbers(&mut v).then_some(v))
                .map(serde_path_to_error::deserialize::<_, T>);
            match retried {
                Some(Ok(v)) => Ok(v),
                _ => Err(p),
            }
        }
    }
}

const NUL_MESSAGE: &str = "must not contain the character U+0000";

/// The path of the first string (or key) of a JSON body that contains U+0000, which
/// PostgreSQL cannot store: the node refuses it on every backend.
fn nul_in_json(body: &[u8]) -> Option<String> {
    // JSON writes U+0000 only as an escape; most bodies have none.
    if !body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return None;
    }
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        let at = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        match v {
            serde_json::Value::String(s) if s.contains('\0') => {
                Some(if path.is_empty() { "body".into() } else { path.into() })
            }
            serde_json::Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(o) => o.iter().find_map(|(k, x)| {
                if k.contains('\0') {
                    Some(at(&k.replace('\0', "\\u0000")))
                } else {
                    walk(x, &at(k))
                }
            }),
            _ => None,
        }
    }
    walk(&serde_json::from_slice(body).ok()?, "")
}

/// Refuses U+0000 in query parameters (see [`nul_in_json`]).
async fn refuse_nul_in_query(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let nul = req.uri().query().and_then(|q| {
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let has = |s: &str| s.to_ascii_lowercase().contains("%00");
            (has(k) || has(v)).then(|| k.to_string())
        })
    });
    match nul {
        Some(k) => Problem::field(&k, NUL_MESSAGE).into_response(),
        None => next.run(req).await,
    }
}

/// Rewrites every float with no fractional part (within the i64/u64 range) as an integer;
/// tells whether anything changed.
fn integral_numbers(v: &mut serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let as_int = if f.fract() != 0.0 || !f.is_finite() {
                None
            } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                Some(serde_json::Value::from(f as u64))
            } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                Some(serde_json::Value::from(f as i64))
            } else {
                None
            };
            match as_int {
                Some(i) => {
                    *v = i;
                    true
                }
                None => false,
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().map(integral_numbers).filter(|&c| c).count() > 0,
        serde_json::Value::Object(o) => o.values_mut().map(integral_numbers).filter(|&c| c).count() > 0,
        _ => false,
    }
}

/// The request a path names: its id or its reference (`FBI-2026-0042`); a reference the
/// caller may not see is "not found".
pub(crate) async fn parse_id(node: &Node, p: &Principal, id: &str) -> ApiResult<RequestId> {
    Ok(node.resolve(p, id, Timestamp::now()).await?)
}

fn parse_ts(field: &str, v: &str) -> ApiResult<Timestamp> {
    v.parse().map_err(|_| {
        Problem::field(
            field,
            format!("'{v}' is not an RFC 3339 instant such as 2026-01-31T12:00:00Z"),
        )
    })
}

fn parse_agency(field: &str, v: &str) -> ApiResult<AgencyId> {
    v.parse()
        .map_err(|_| Problem::field(field, format!("'{v}' is not an agency id (UUID)")))
}

/// Refuses query parameters a route does not know, naming the ones it accepts.
pub(crate) fn check_params(q: &HashMap<String, String>, known: &[&str]) -> ApiResult<()> {
    for k in q.keys() {
        if !known.contains(&k.as_str()) {
            return Err(Problem::field(
                k,
                format!("unknown query parameter; accepted: {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

// ----- handlers ------------------------------------------------------------------------------

async fn health(AxState(node): AxState<Node>) -> Response {
    let h = node.health().await;
    let body = serde_json::json!({
        "status": if h.ok { "ok" } else { "unavailable" },
        "database": h.database,
        "integrity": h.integrity,
        "disk_free_bytes": h.disk_free_bytes,
        "problems": h.problems,
        "rule_pack_version": node.legal.version(),
    });
    if h.ok {
        Json(body).into_response()
    } else {
        tracing::error!(problems = ?h.problems, "health check failed");
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn me(Auth(p): Auth) -> Json<Principal> {
    Json(p)
}

async fn directory(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.directory(&p, Timestamp::now()).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAgency {
    code: String,
    name_en: String,
    #[serde(default)]
    name_native: Option<String>,
    /// The name Chinese pages show (this node's readers'; never sent to peers).
    #[serde(default)]
    name_zh: Option<String>,
    jurisdiction: liaison_core::CountryCode,
    kind: liaison_core::directory::AgencyKind,
    time_zone: String,
}

async fn add_jurisdiction(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let j: liaison_core::jurisdiction::Jurisdiction = json_body(&headers, &body)?;
    node.add_jurisdiction(&p, j.clone()).await?;
    Ok((StatusCode::CREATED, Json(j)).into_response())
}

async fn add_agency(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let a: NewAgency = json_body(&headers, &body)?;
    let agency = liaison_core::directory::Agency {
        id: AgencyId::new(),
        name_native: a.name_native.unwrap_or_else(|| a.name_en.clone()),
        name_zh: a.name_zh.unwrap_or_default(),
        code: a.code,
        name_en: a.name_en,
        jurisdiction: a.jurisdiction,
        kind: a.kind,
        time_zone: a.time_zone,
    };
    Ok((
        StatusCode::CREATED,
        Json(node.add_agency(&p, agency, Timestamp::now()).await?),
    )
        .into_response())
}

/// `PATCH /api/v1/agencies/{code}`: an agency's names in this node's directory (admins).
async fn rename_agency(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let names: liaison_service::AgencyNames = json_body(&headers, &body)?;
    Ok(Json(node.rename_agency(&p, &code, names, Timestamp::now()).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewContact {
    agency: AgencyId,
    name: String,
    phone: String,
    email: String,
    #[serde(default)]
    languages: Vec<String>,
    time_zone: String,
    office_hours: liaison_core::directory::OfficeHours,
}

async fn add_contact(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let c: NewContact = json_body(&headers, &body)?;
    let contact = liaison_core::directory::ContactPoint {
        id: liaison_core::ContactId::new(),
        agency: c.agency,
        name: c.name,
        phone: c.phone,
        email: c.email,
        languages: c.languages,
        time_zone: c.time_zone,
        office_hours: c.office_hours,
    };
    Ok((
        StatusCode::CREATED,
        Json(node.add_contact(&p, contact, Timestamp::now()).await?),
    )
        .into_response())
}

const LIST_PARAMS: &[&str] = &[
    "state",
    "kind",
    "requesting",
    "requested",
    "overdue",
    "updated_since",
    "cursor",
    "limit",
    "view",
    "queue",
    "sort",
    "counterpart",
    "owner",
    "created_from",
    "created_to",
    "due_before",
    "format",
    "q",
    "case_reference",
    "target",
    "target_kind",
];

/// The listing's filters, for `p` (a counterpart given by code and an owner by user name
/// are looked up).
pub(crate) async fn filter_from(node: &Node, p: &Principal, q: &HashMap<String, String>) -> ApiResult<RequestFilter> {
    check_params(q, LIST_PARAMS)?;
    let mut f = RequestFilter {
        limit: 50,
        ..Default::default()
    };
    if let Some(s) = q.get("state") {
        for part in s.split(',').filter(|p| !p.is_empty()) {
            f.states.push(
                part.parse()
                    .map_err(|e: liaison_core::UnknownValue| Problem::field("state", e.to_string()))?,
            );
        }
    }
    if let Some(k) = q.get("kind") {
        f.kind = Some(
            k.parse::<RequestKind>()
                .map_err(|e| Problem::field("kind", e.to_string()))?,
        );
    }
    if let Some(a) = q.get("requesting") {
        f.requesting = Some(parse_agency("requesting", a)?);
    }
    if let Some(a) = q.get("requested") {
        f.requested = Some(parse_agency("requested", a)?);
    }
    match q.get("overdue").map(String::as_str) {
        None | Some("false") => {}
        Some("true") => f.overdue_at = Some(Timestamp::now()),
        Some(v) => return Err(Problem::field("overdue", format!("'{v}' is not true or false"))),
    }
    if let Some(s) = q.get("updated_since") {
        f.updated_since = Some(parse_ts("updated_since", s)?);
    }
    if let Some(s) = q.get("sort") {
        f.sort = s.parse().map_err(|e: String| Problem::field("sort", e))?;
    }
    if let Some(c) = q.get("cursor") {
        let bad = || Problem::field("cursor", format!("'{c}' is not a cursor returned by this API"));
        match f.sort {
            liaison_core::record::Sort::Newest => f.before = Some(c.parse().map_err(|_| bad())?),
            liaison_core::record::Sort::Oldest => f.after = Some(c.parse().map_err(|_| bad())?),
            liaison_core::record::Sort::Due => {
                f.after_due = Some(liaison_core::record::parse_due_cursor(c).ok_or_else(bad)?)
            }
        }
    }
    if let Some(a) = q.get("counterpart") {
        f.counterpart = Some(match a.parse::<AgencyId>() {
            Ok(id) => id,
            Err(_) => node.agency_by_code(p, "counterpart", a).await?.id,
        });
    }
    if let Some(u) = q.get("owner") {
        f.owner = Some(node.colleague(p, "owner", u).await?);
    }
    for (key, slot) in [
        ("created_from", &mut f.created_from),
        ("created_to", &mut f.created_to),
        ("due_before", &mut f.due_before),
    ] {
        if let Some(v) = q.get(key) {
            *slot = Some(parse_ts(key, v)?);
        }
    }
    if let Some(l) = q.get("limit") {
        f.limit = l
            .parse()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| Problem::field("limit", format!("'{l}' is not a number from 1 to 500")))?;
    }
    node.search_filters(
        p,
        &mut f,
        q.get("q").map(String::as_str),
        q.get("case_reference").map(String::as_str),
        q.get("target").map(String::as_str),
        q.get("target_kind").map(String::as_str),
    )
    .await?;
    Ok(f)
}

async fn list_requests(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    list_page(&node, &p, &q).await
}

async fn overdue(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(mut q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    if q.contains_key("overdue") {
        return Err(Problem::field(
            "overdue",
            "unknown query parameter: this listing is the overdue requests",
        ));
    }
    q.insert("overdue".into(), "true".into());
    list_page(&node, &p, &q).await
}

/// A page of requests: summaries (`view=summary`, the default) or full requests (`view=full`),
/// of one of the caller's queues (`queue`, default all), as JSON or CSV (`format=csv`,
/// summaries).
async fn list_page(node: &Node, p: &Principal, q: &HashMap<String, String>) -> ApiResult<Response> {
    let f = filter_from(node, p, q).await?;
    let now = Timestamp::now();
    let queue: Option<Queue> = q
        .get("queue")
        .map(|s| s.parse().map_err(|e: String| Problem::field("queue", e)))
        .transpose()?;
    let csv = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(v) => return Err(Problem::field("format", format!("'{v}' is not json or csv"))),
    };
    match q.get("view").map(String::as_str) {
        None | Some("summary") => {}
        Some("full") if queue.is_none() && !csv => return Ok(Json(node.list_full(p, f, now).await?).into_response()),
        Some("full") => {
            return Err(Problem::field(
                "view",
                "a queue or a CSV lists summaries: leave view out",
            ));
        }
        Some(v) => return Err(Problem::field("view", format!("'{v}' is not summary or full"))),
    }
    let page = node.queue(p, queue.unwrap_or(Queue::All), f, now).await?;
    if !csv {
        return Ok(Json(page).into_response());
    }
    Ok(csv_page(
        node.summaries_csv(&page.items, now).await?,
        page.next.as_deref(),
    ))
}

/// A page as CSV: `text/csv; charset=utf-8`, with the next page's cursor in `X-Next-Cursor`.
pub(crate) fn csv_page(text: String, next: Option<&str>) -> Response {
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Some(n) = next
        && let Ok(v) = HeaderValue::from_str(n)
    {
        resp.headers_mut().insert("x-next-cursor", v);
    }
    resp
}

async fn create_request(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let draft: RequestDraft = json_body(&headers, &body)?;
    let r = node.create_request(&p, draft, Timestamp::now()).await?;
    let mut resp = (StatusCode::CREATED, Json(&r)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/requests/{}", r.request.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

async fn get_request(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let r = node
        .request(&p, parse_id(&node, &p, &id).await?, Timestamp::now())
        .await?;
    let mut resp = Json(&r).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", r.request.version)) {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftUpdate {
    version: i64,
    draft: RequestDraft,
}

async fn update_draft(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let u: DraftUpdate = json_body(&headers, &body)?;
    Ok(Json(node.update_draft(&p, id, u.version, u.draft, Timestamp::now()).await?).into_response())
}

async fn events(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(
        node.events(&p, parse_id(&node, &p, &id).await?, Timestamp::now())
            .await?,
    )
    .into_response())
}

async fn allowed(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(
        Json(
            serde_json::json!({"allowed": node.allowed(&p, parse_id(&node, &p, &id).await?, Timestamp::now()).await?}),
        )
        .into_response(),
    )
}

async fn transition(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let mut raw: serde_json::Value = json_body(&headers, &body)?;
    integral_numbers(&mut raw);
    let version = raw
        .get("version")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| Problem::field("version", "give the version you last read (an integer)"))?;
    let mut rest = raw.clone();
    if let Some(o) = rest.as_object_mut() {
        o.remove("version");
    }
    let input: TransitionInput = serde_path_to_error::deserialize(rest)
        .map_err(|e| Problem::field(&e.path().to_string(), e.inner().to_string()))?;
    Ok(Json(node.transition(&p, id, version, input, Timestamp::now()).await?).into_response())
}

async fn approval(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(Json(node.approval(&p, id, Timestamp::now()).await?).into_response())
}

/// A four-eyes step: `ask` (with the version asked about), or `return` (an approver sends the
/// draft back with a reason; the person who asked takes the call back). Approving is sending
/// (`POST .../transitions` to `submitted`) by an approver.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "action")]
enum ApprovalStep {
    Ask {
        version: i64,
    },
    Return {
        #[serde(default)]
        reason: Option<String>,
    },
}

async fn approval_step(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let now = Timestamp::now();
    let view = match json_body(&headers, &body)? {
        ApprovalStep::Ask { version } => node.ask_approval(&p, id, version, now).await?,
        ApprovalStep::Return { reason } => node.end_approval(&p, id, reason.as_deref(), now).await?,
    };
    Ok(Json(view).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: String,
    /// The comment's marking (default: the node's, never below the request's).
    #[serde(default)]
    marking: Option<liaison_core::Marking>,
}

async fn comment(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let c: CommentBody = json_body(&headers, &body)?;
    Ok((
        StatusCode::CREATED,
        Json(node.comment(&p, id, &c.text, c.marking, Timestamp::now()).await?),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssessBody {
    /// A draft (agencies resolve to jurisdictions), or explicit jurisdictions.
    #[serde(default)]
    draft: Option<RequestDraft>,
    #[serde(default)]
    request: Option<RequestId>,
    #[serde(default)]
    input: Option<serde_json::Value>,
}

/// The fields of an explicit assessment input, as the law engine names them.
fn assessment_input_fields() -> &'static [String] {
    static FIELDS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let draft = RequestDraft {
            kind: RequestKind::SubscriberInformation,
            urgency: liaison_core::Urgency::Routine,
            requesting_agency: AgencyId::new(),
            requested_agency: AgencyId::new(),
            case_reference: String::new(),
            offences: vec![],
            summary: String::new(),
            targets: vec![],
            data_categories: vec![],
            legal_basis: String::new(),
            related: vec![],
            attachments: vec![],
            amount: None,
            conduct: vec![],
            marking_set: None,
        };
        let cc = liaison_core::CountryCode::parse("US").ok();
        cc.map(|c| liaison_law::AssessmentInput::from_draft(&draft, c, c, Timestamp::UNIX_EPOCH))
            .and_then(|i| serde_json::to_value(i).ok())
            .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
            .unwrap_or_default()
    });
    &FIELDS
}

/// Parses an explicit assessment input, refusing unknown fields like every other body.
fn assessment_input(mut v: serde_json::Value) -> ApiResult<liaison_law::AssessmentInput> {
    integral_numbers(&mut v);
    let known = assessment_input_fields();
    if let Some(k) = v.as_object().and_then(|o| o.keys().find(|k| !known.contains(k))) {
        return Err(Problem::field(
            &format!("input.{k}"),
            format!("unknown field `{k}`, expected one of {}", known.join(", ")),
        ));
    }
    let input: liaison_law::AssessmentInput = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "input".to_string()
        } else {
            format!("input.{path}")
        };
        Problem::field(&field, e.inner().to_string())
    })?;
    for (i, t) in input.targets.iter().enumerate() {
        if let Some(p) = &t.provider {
            let n = p.name.chars().count();
            if p.name.trim().is_empty() || n > 200 || p.name.chars().any(char::is_control) {
                return Err(Problem::field(
                    &format!("input.targets[{i}].provider.name"),
                    "give the provider's name: 1 to 200 characters, no control characters",
                ));
            }
        }
    }
    Ok(input)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssessQuery {
    #[serde(default)]
    lang: Option<String>,
}

async fn assess(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<AssessQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let lang = match q.lang.as_deref() {
        None => None,
        Some(l) => Some(liaison_law::Lang::parse(l).ok_or_else(|| {
            Problem::field(
                "lang",
                format!("'{l}' is not a language Liaison speaks: use en or zh-CN"),
            )
        })?),
    };
    let b: AssessBody = json_body(&headers, &body)?;
    let input = b.input.map(assessment_input).transpose()?;
    let now = Timestamp::now();
    let a = node.assess(&p, b.draft, b.request, input, now).await?;
    match lang {
        None => Ok(Json(a).into_response()),
        Some(l) => {
            let mut v = serde_json::to_value(&a)
                .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", e.to_string()))?;
            v["rendered"] = serde_json::json!(a.render(l));
            Ok(Json(v).into_response())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkingBody {
    marking: liaison_core::Marking,
}

async fn set_marking(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let b: MarkingBody = json_body(&headers, &body)?;
    Ok(Json(node.set_marking(&p, id, b.marking, Timestamp::now()).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    for_case: String,
    #[serde(default)]
    note: Option<String>,
}

async fn consent(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let b: ConsentBody = json_body(&headers, &body)?;
    let e = node
        .consent_to_use(&p, id, &b.for_case, b.note.as_deref(), Timestamp::now())
        .await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

async fn uses(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let uses = node.permitted_uses(&p, id, Timestamp::now()).await?;
    Ok(Json(serde_json::json!({ "cases": uses })).into_response())
}

/// `GET /api/v1/requests/{id}/letter`: the formal letter as a PDF attachment.
async fn letter(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &["lang", "draft", "signer", "function", "place"])?;
    let id = parse_id(&node, &p, &id).await?;
    let draft = match q.get("draft").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(Problem::field("draft", format!("'{other}' is not true or false"))),
    };
    let opts = liaison_service::letter::LetterOptions {
        langs: vec![q.get("lang").cloned().unwrap_or_else(|| "en,zh-CN".into())],
        draft,
        signer: q.get("signer").cloned(),
        function: q.get("function").cloned(),
        place: q.get("place").cloned(),
    };
    let letter = node.request_letter(&p, id, &opts, Timestamp::now()).await?;
    Ok(pdf_attachment(letter))
}

/// A letter as a download: never shown inline, never cached, never sniffed.
pub(crate) fn pdf_attachment(letter: liaison_service::letter::Letter) -> Response {
    let mut resp = (StatusCode::OK, letter.pdf).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", letter.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&letter.reference) {
        h.insert("x-liaison-letter-reference", v);
    }
    if let Ok(v) = HeaderValue::from_str(&letter.sha256) {
        h.insert("x-liaison-letter-sha256", v);
    }
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

/// `PUT /api/v1/requests/{id}/texts/{field}/{lang}`: a letter's free text in one language.
async fn set_text(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path((id, field, lang)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    let b: TextBody = json_body(&headers, &body)?;
    node.set_request_text(&p, id, &field, &lang, &b.text, Timestamp::now())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reassess(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&node, &p, &id).await?;
    Ok(Json(node.reassess(&p, id, Timestamp::now()).await?).into_response())
}

async fn cooperation(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &["from", "to", "by", "format"])?;
    let now = Timestamp::now();
    let from = match q.get("from") {
        Some(s) => parse_ts("from", s)?,
        None => now
            .checked_sub(jiff::SignedDuration::from_hours(24 * 730))
            .map_err(|e| Problem::field("from", e.to_string()))?,
    };
    let to = match q.get("to") {
        Some(s) => parse_ts("to", s)?,
        None => now,
    };
    let by: GroupBy = q.get("by").map(|s| s.parse()).transpose()?.unwrap_or(GroupBy::Agency);
    let report = node.cooperation(&p, from, to, by, now).await?;
    match q.get("format").map(String::as_str) {
        None | Some("json") => Ok(Json(report).into_response()),
        Some("csv") => {
            let mut resp = liaison_service::report::cooperation_csv(&report).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            Ok(resp)
        }
        Some(f) => Err(Problem::field("format", format!("'{f}' is not json or csv"))),
    }
}

async fn audit_verify(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    let r = node.verify_audit(&p).await?;
    Ok(Json(r).into_response())
}

async fn users(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.users(&p).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    display_name: String,
    agency: String,
    role: Role,
}

async fn create_user(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let u: NewUser = json_body(&headers, &body)?;
    let user = node
        .create_user(&p, &u.username, &u.display_name, &u.agency, u.role, Timestamp::now())
        .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    username: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    days: Option<u32>,
}

async fn create_token(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let t: NewToken = json_body(&headers, &body)?;
    let (secret, info) = node
        .create_token(
            &p,
            &t.username,
            t.label.as_deref().unwrap_or("api"),
            t.days.unwrap_or(90),
            Timestamp::now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"token": secret, "info": info})),
    )
        .into_response())
}
