//! The federation endpoints (docs/federation.md §7) over TLS.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use liaison_service::federation::Federation;
use liaison_service::federation::receive::{ACCEPTED_HEADER, MAX_BATCH, MAX_BATCH_BYTES, NotNow, Outcome, receive};
use liaison_wire::Envelope;
use std::sync::Arc;

/// Serves the endpoints over TLS on `listener` through the bounded accept loop
/// ([`crate::conn`]) until `shutdown` resolves.
pub(super) async fn serve_tls(
    fed: Federation,
    listener: tokio::net::TcpListener,
    cfg: rustls::ServerConfig,
    limits: crate::conn::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let l = crate::conn::Listener {
        listener,
        name: "federation",
        limits,
        transport: crate::conn::Transport::Tls(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))),
    };
    if let Err(e) = crate::conn::serve(l, router(fed.clone()), shutdown).await {
        tracing::error!(node = %fed.node_id(), error = %e, "federation listener failed");
    }
}

fn router(fed: Federation) -> Router {
    Router::new()
        .route("/federation/v1/envelopes", post(envelopes))
        .route(
            "/federation/v1/envelope-batches",
            post(envelope_batches).layer(axum::extract::DefaultBodyLimit::max(MAX_BATCH_BYTES)),
        )
        .route("/federation/v1/sth", get(sth))
        .route("/federation/v1/consistency", get(consistency))
        .route("/federation/v1/descriptor", get(descriptor))
        .route(
            "/federation/v1/key-revocations",
            post(key_revocation).layer(axum::extract::DefaultBodyLimit::max(
                liaison_service::federation::revoke::MAX_REVOCATION_BYTES,
            )),
        )
        .route(liaison_service::federation::recovery::PATH, post(link_recovery))
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        // The bulk channel (docs/federation.md §12): its own body limit and its own
        // concurrency limit (in the service), so that chunks never hold up envelopes.
        .route(
            "/federation/v1/evidence/{transfer}/chunks/{index}",
            put(bulk_chunk), // the body is read (and limited) by the handler
        )
        .route("/federation/v1/evidence/{transfer}/status", get(bulk_status))
        .with_state(fed)
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("https://liaison.example/federation/problems/{code}"),
        "title": code,
        "status": status.as_u16(),
        "detail": detail,
    });
    (status, [("content-type", "application/problem+json")], body.to_string()).into_response()
}

/// What a request of envelopes that was not taken now is answered with.
fn not_now(e: NotNow) -> Response {
    match e {
        NotNow::Busy => problem(StatusCode::SERVICE_UNAVAILABLE, "busy", "try again"),
        NotNow::Internal(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again later"),
    }
}

fn internal(fed: &Federation, e: impl std::fmt::Display) -> Response {
    tracing::error!(node = %fed.node_id(), error = %e, "federation endpoint failed");
    problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again later")
}

/// `POST /federation/v1/key-revocations`: a pinned peer says one of its keys is compromised
/// (docs/federation.md §2.4). `200 {"applied": bool}`; a statement that does not check out
/// (unknown node, unknown key, bad signature, malformed) is a problem+json `400`/`401`.
async fn key_revocation(State(fed): State<Federation>, body: Bytes) -> Response {
    use liaison_service::federation::FedError;
    match fed.receive_revocation(&body).await {
        Ok(applied) => json(
            StatusCode::OK,
            serde_json::json!({"applied": applied}).to_string().into_bytes(),
        ),
        Err(FedError::Peer { message, .. }) => problem(StatusCode::UNAUTHORIZED, "unknown_sender", &message),
        // Logged by the service, within the rejection budget.
        Err(FedError::Descriptor(e)) => problem(StatusCode::BAD_REQUEST, "bad_revocation", &e.to_string()),
        Err(FedError::Config(m)) => problem(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &m),
        Err(e) => internal(&fed, e),
    }
}

/// `POST /federation/v1/envelopes`: one envelope.
async fn envelopes(State(fed): State<Federation>, _headers: HeaderMap, body: Bytes) -> Response {
    let item = Envelope::from_slice(&body);
    let outcome = match receive(&fed, vec![item]).await {
        Ok(mut o) => o.pop(),
        Err(e) => return not_now(e),
    };
    match outcome {
        Some(Outcome::Accepted { receipt }) => json(StatusCode::OK, receipt.into_bytes()),
        Some(Outcome::Duplicate {
            receipt,
            accepted_header,
        }) => {
            let mut r = json(StatusCode::OK, receipt.into_bytes());
            if let Ok(v) = HeaderValue::from_str(&accepted_header) {
                r.headers_mut().insert(ACCEPTED_HEADER, v);
            }
            r
        }
        Some(Outcome::Rejected { status, code, detail }) => problem(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            &detail,
        ),
        Some(Outcome::OutOfOrder { expected }) => json(
            StatusCode::CONFLICT,
            serde_json::json!({"expected_link_seq": expected})
                .to_string()
                .into_bytes(),
        ),
        Some(Outcome::Skipped) | None => internal(&fed, "no outcome for the envelope"),
    }
}

/// The body of `POST /federation/v1/envelope-batches`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    envelopes: Vec<serde_json::Value>,
}

fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

/// `POST /federation/v1/envelope-batches`: up to [`MAX_BATCH`] envelopes of one link, in
/// link order; one result per envelope (docs/federation.md §7.1).
async fn envelope_batches(State(fed): State<Federation>, body: Bytes) -> Response {
    let req: BatchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "malformed", &format!("batch: {e}")),
    };
    if req.envelopes.is_empty() || req.envelopes.len() > MAX_BATCH {
        return problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            &format!(
                "a batch carries 1 to {MAX_BATCH} envelopes, not {}",
                req.envelopes.len()
            ),
        );
    }
    let items = req.envelopes.into_iter().map(Envelope::from_value).collect();
    let outcomes = match receive(&fed, items).await {
        Ok(o) => o,
        Err(e) => return not_now(e),
    };
    let results: Vec<serde_json::Value> = outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Accepted { receipt } => {
                serde_json::json!({"status": "accepted", "receipt": parse_json(&receipt)})
            }
            Outcome::Duplicate {
                receipt,
                accepted_header,
            } => serde_json::json!({"status": "duplicate", "receipt": parse_json(&receipt),
                "accepted_envelope": parse_json(&accepted_header)}),
            Outcome::Rejected { code, detail, .. } => {
                serde_json::json!({"status": "rejected", "code": code, "detail": detail})
            }
            Outcome::OutOfOrder { expected } => {
                serde_json::json!({"status": "out_of_order", "expected_link_seq": expected})
            }
            Outcome::Skipped => serde_json::json!({"status": "skipped"}),
        })
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({"results": results}).to_string().into_bytes(),
    )
}

async fn sth(State(fed): State<Federation>) -> Response {
    match fed
        .current_sth()
        .await
        .and_then(|s| Ok(liaison_wire::to_canonical(&s)?))
    {
        Ok(b) => json(StatusCode::OK, b),
        Err(e) => internal(&fed, e),
    }
}

#[derive(serde::Deserialize)]
struct Sizes {
    from: u64,
    to: u64,
}

async fn consistency(State(fed): State<Federation>, Query(q): Query<Sizes>) -> Response {
    if q.from > q.to {
        return problem(StatusCode::BAD_REQUEST, "bad_range", "from must not exceed to");
    }
    match fed.consistency(q.from, q.to).await {
        Ok(proof) => json(
            StatusCode::OK,
            serde_json::json!({"from": q.from, "to": q.to, "proof": proof.iter().map(|h| h.to_hex()).collect::<Vec<_>>()})
                .to_string()
                .into_bytes(),
        ),
        Err(e) => problem(StatusCode::BAD_REQUEST, "bad_range", &e.to_string()),
    }
}

async fn descriptor(State(fed): State<Federation>) -> Response {
    match liaison_wire::to_canonical(fed.descriptor()) {
        Ok(b) => json(StatusCode::OK, b),
        Err(e) => internal(&fed, e),
    }
}

/// `POST /federation/v1/link-recovery`: what this node accepted from a restored peer
/// (docs/federation.md §7.2).
async fn link_recovery(State(fed): State<Federation>, body: Bytes) -> Response {
    match liaison_service::federation::recovery::answer(&fed, &body).await {
        Ok(b) => json(StatusCode::OK, b),
        Err(r) => problem(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
            r.code,
            &r.detail,
        ),
    }
}

fn bulk_reply(r: liaison_service::federation::bulk::BulkReply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let ct = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    (status, [("content-type", ct)], r.body.to_string()).into_response()
}

/// `PUT /federation/v1/evidence/{transfer}/chunks/{index}`: one chunk of an evidence transfer
/// (docs/federation.md §12.4).
async fn bulk_chunk(
    State(fed): State<Federation>,
    Path((transfer, index)): Path<(String, u64)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    use futures_util::StreamExt;
    use liaison_service::federation::bulk::{BulkReply, MAX_CHUNK_BODY};
    use sha2::Digest;
    let auth = headers
        .get(liaison_service::federation::bulk::CHUNK_AUTH_HEADER)
        .and_then(|v| v.to_str().ok());
    // Read up to the limit and hashed as it arrives (the digest the chunk's signature covers),
    // so that nothing waits for a hash of the whole chunk after its last byte.
    let expect = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let too_large = || {
        bulk_reply(BulkReply {
            status: 413,
            body: serde_json::json!({"code": "too_large", "detail": format!("a chunk is at most {MAX_CHUNK_BODY} bytes")}),
        })
    };
    if expect > MAX_CHUNK_BODY {
        return too_large();
    }
    let mut buf = bytes::BytesMut::with_capacity(expect);
    let mut hash = sha2::Sha256::new();
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let Ok(b) = frame else {
            return bulk_reply(BulkReply {
                status: 400,
                body: serde_json::json!({"code": "broken_body", "detail": format!("the chunk broke off after {} bytes", buf.len())}),
            });
        };
        if buf.len() + b.len() > MAX_CHUNK_BODY {
            return too_large();
        }
        hash.update(&b);
        buf.extend_from_slice(&b);
    }
    let digest = liaison_wire::Hash256(hash.finalize().into());
    bulk_reply(fed.bulk_chunk(&transfer, index, auth, buf.freeze(), Some(digest)).await)
}

#[derive(serde::Deserialize)]
struct StatusQuery {
    sender: String,
}

/// `GET /federation/v1/evidence/{transfer}/status?sender=NODE` (docs/federation.md §12.4).
async fn bulk_status(
    State(fed): State<Federation>,
    Path(transfer): Path<String>,
    Query(q): Query<StatusQuery>,
) -> Response {
    bulk_reply(fed.bulk_status(&q.sender, &transfer).await)
}
