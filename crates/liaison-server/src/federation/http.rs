//! The federation endpoints (docs/federation.md §7) over TLS.

use super::Federation;
use super::apply::{ApplyError, Planner};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use liaison_store::{InboxRow, IncomingRecord, LeafRecord};
use liaison_wire::{
    Envelope, LedgerEntry, LinkOrder, Mirrored, NodeId, PayloadType, PeerSet, Receipt, Rejection, VerifyContext,
    link_order,
};
use std::collections::HashSet;
use std::sync::Arc;

/// Response header carrying the header of the accepted copy when a duplicate is answered
/// with the stored receipt (the copy the receipt acknowledges; see §3.3).
pub const ACCEPTED_HEADER: &str = "liaison-accepted-envelope";

pub(crate) async fn serve_tls(fed: Federation, listener: tokio::net::TcpListener, cfg: rustls::ServerConfig) {
    let app = router(fed.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    loop {
        let (tcp, _peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "federation accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
            };
            let io = hyper_util::rt::TokioIo::new(tls);
            let svc = hyper_util::service::TowerToHyperService::new(app);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await
            {
                tracing::debug!(error = %e, "federation connection ended");
            }
        });
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
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
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

fn rejection_status(r: &Rejection) -> StatusCode {
    match r {
        Rejection::Malformed { .. } | Rejection::UnsupportedVersion(_) | Rejection::StaleOrFuture { .. } => {
            StatusCode::BAD_REQUEST
        }
        Rejection::UnknownSender(_)
        | Rejection::UnknownKey { .. }
        | Rejection::KeyNotValidAt { .. }
        | Rejection::BadSignature { .. } => StatusCode::UNAUTHORIZED,
        Rejection::WrongRecipient { .. } => StatusCode::MISDIRECTED_REQUEST,
        Rejection::PayloadHashMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        Rejection::Replay(_) | Rejection::ReceiptMismatch { .. } => StatusCode::CONFLICT,
    }
}

fn internal(fed: &Federation, e: impl std::fmt::Display) -> Response {
    tracing::error!(node = %fed.node_id(), error = %e, "federation endpoint failed");
    problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again later")
}

/// Most envelopes one batch may carry (docs/federation.md §7.1).
pub const MAX_BATCH: usize = 256;
/// Largest batch request body.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// What became of one envelope of a request (single or batch).
enum Outcome {
    /// Accepted now: the receipt just issued and committed.
    Accepted { receipt: String },
    /// Accepted before (same `message_id`, or its `link_seq` was already applied): the
    /// stored receipt and the header of the copy it acknowledges.
    Duplicate { receipt: String, accepted_header: String },
    /// Refused; nothing of it was applied.
    Rejected {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
    /// `link_seq` is beyond the next one expected on the link.
    OutOfOrder { expected: u64 },
    /// Not looked at, because an earlier envelope of the batch was refused or was a key
    /// rotation.
    Skipped,
}

impl Outcome {
    fn rejected(r: &Rejection) -> Self {
        Outcome::Rejected {
            status: rejection_status(r),
            code: r.code(),
            detail: r.to_string(),
        }
    }

    fn duplicate(row: &InboxRow) -> Self {
        Outcome::Duplicate {
            receipt: row.receipt.clone(),
            accepted_header: row.header.clone(),
        }
    }
}

/// Verifies, in order, each envelope of one request, applies the accepted ones and records
/// them with their receipts in ONE transaction, and says what became of each. Processing
/// stops at the first envelope that is neither accepted nor a duplicate (and after a key
/// rotation): the rest are `Skipped`. `Err`: nothing was applied (try again later).
async fn receive(fed: &Federation, items: Vec<Result<Envelope, Rejection>>) -> Result<Vec<Outcome>, Response> {
    // One request at a time: link order and replay checks see every earlier commit.
    let _turn = fed.inner.incoming.lock().await;
    let now = Timestamp::now();
    let store = &fed.inner.node.store;
    let mut peers = fed.peers().map_err(|e| internal(fed, e))?;
    let mut reloaded = false;
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(items.len());
    let mut accepted: Vec<(usize, IncomingRecord)> = Vec::new();
    let mut batch_sender: Option<NodeId> = None;
    let mut next_seq: Option<u64> = None;
    let mut planner = Planner::default();
    let mut stop = false;
    // Which of the batch's messages were accepted before (one look-up for the batch).
    let ids: Vec<String> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|e| e.header.message_id.to_string())
        .collect();
    let mut seen_before: std::collections::HashMap<String, InboxRow> = store
        .fed_inbox_many(&ids)
        .await
        .map_err(|e| internal(fed, e))?
        .into_iter()
        .map(|r| (r.message_id.clone(), r))
        .collect();
    for item in items {
        if stop {
            outcomes.push(Outcome::Skipped);
            continue;
        }
        let env = match item {
            Ok(e) => e,
            Err(rej) => {
                tracing::warn!(node = %fed.node_id(), code = rej.code(), reason = %rej, "envelope rejected");
                outcomes.push(Outcome::rejected(&rej));
                stop = true;
                continue;
            }
        };
        let mid = env.header.message_id.to_string();
        let seen = seen_before.remove(&mid);
        let mut replay = HashSet::new();
        if seen.is_some() || accepted.iter().any(|(_, r)| r.message_id == mid) {
            replay.insert(env.header.message_id);
        }
        let verify = |peers: &PeerSet| {
            env.verify(
                &VerifyContext::new(&fed.inner.node_id, peers, now, &replay).with_max_skew(fed.inner.settings.max_skew),
            )
        };
        let mut result = verify(&peers);
        if !reloaded && matches!(result, Err(Rejection::UnknownSender(_) | Rejection::UnknownKey { .. })) {
            // The peer may have been pinned (or updated) by `liaison peer add` since we loaded.
            reloaded = true;
            if fed.reload_peers().await.is_ok()
                && let Ok(p) = fed.peers()
            {
                peers = p;
                result = verify(&peers);
            }
        }
        let verified = match result {
            Ok(v) => v,
            Err(Rejection::Replay(_)) => {
                match seen {
                    Some(row) => {
                        tracing::warn!(node = %fed.node_id(), code = "replay", message_id = %mid, sender = %env.header.sender, "duplicate envelope not applied again; answered with the stored receipt");
                        outcomes.push(Outcome::duplicate(&row));
                    }
                    None => {
                        // The same message twice in one batch.
                        let rej = Rejection::Malformed {
                            field: "envelopes",
                            reason: format!("message {mid} appears twice in the batch"),
                        };
                        outcomes.push(Outcome::rejected(&rej));
                        stop = true;
                    }
                }
                continue;
            }
            Err(rej) => {
                tracing::warn!(node = %fed.node_id(), code = rej.code(), sender = %env.header.sender, message_id = %mid, reason = %rej, "envelope rejected");
                outcomes.push(Outcome::rejected(&rej));
                stop = true;
                continue;
            }
        };
        match &batch_sender {
            None => batch_sender = Some(verified.sender.clone()),
            Some(s) if *s != verified.sender => {
                let rej = Rejection::Malformed {
                    field: "envelopes",
                    reason: format!("a batch carries one link; {} is not {s}", verified.sender),
                };
                tracing::warn!(node = %fed.node_id(), code = rej.code(), message_id = %mid, reason = %rej, "envelope rejected");
                outcomes.push(Outcome::rejected(&rej));
                stop = true;
                continue;
            }
            Some(_) => {}
        }
        let sender = verified.sender.to_string();
        let expected = match next_seq {
            Some(n) => n,
            None => store.fed_last_applied(&sender).await.map_err(|e| internal(fed, e))? as u64 + 1,
        };
        next_seq = Some(expected);
        match link_order(expected - 1, verified.link_seq) {
            LinkOrder::Next => {}
            LinkOrder::AlreadyApplied => {
                match store.fed_inbox_by_seq(&sender, verified.link_seq as i64).await {
                    Ok(Some(row)) => {
                        tracing::warn!(node = %fed.node_id(), code = "replay", message_id = %mid, sender = %sender, link_seq = verified.link_seq, "duplicate envelope not applied again; answered with the stored receipt");
                        outcomes.push(Outcome::duplicate(&row));
                    }
                    Ok(None) => return Err(internal(fed, "applied link_seq without inbox row")),
                    Err(e) => return Err(internal(fed, e)),
                }
                continue;
            }
            LinkOrder::Gap { expected } => {
                tracing::info!(node = %fed.node_id(), sender = %sender, got = verified.link_seq, expected, "envelope out of order");
                outcomes.push(Outcome::OutOfOrder { expected });
                stop = true;
                continue;
            }
        }
        let receipt = Receipt::issue(&verified, now, &fed.inner.key).map_err(|e| internal(fed, e))?;
        let mut record = incoming_record(&env, &receipt, now).map_err(|e| internal(fed, e))?;
        match planner.plan(fed, &env).await {
            Ok(effect) => record.effect = effect,
            Err(ApplyError::Transient(e)) => {
                tracing::info!(node = %fed.node_id(), message_id = %mid, error = %e, "envelope not applied yet (busy); the sender will retry");
                return Err(problem(StatusCode::SERVICE_UNAVAILABLE, "busy", "try again"));
            }
            Err(ApplyError::Permanent(reason)) => record.outcome = format!("not applied: {reason}"),
        }
        next_seq = Some(expected + 1);
        if env.header.payload_type == PayloadType::KeyRotation {
            // Later envelopes may be signed with the new key: the sender resends them.
            stop = true;
        }
        outcomes.push(Outcome::Accepted {
            receipt: record.receipt.clone(),
        });
        accepted.push((outcomes.len() - 1, record));
    }
    if accepted.is_empty() {
        return Ok(outcomes);
    }
    let records: Vec<IncomingRecord> = accepted.iter().map(|(_, r)| r.clone()).collect();
    let recorded = match store.fed_receive(&records).await {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(node = %fed.node_id(), error = %e, "envelopes not applied yet (busy or raced); the sender will retry");
            return Err(problem(StatusCode::SERVICE_UNAVAILABLE, "busy", "try again"));
        }
    };
    if let Err(e) = fed.sync_log().await {
        tracing::error!(node = %fed.node_id(), error = %e, "ledger sync failed");
    }
    let mut created = Vec::new();
    for (rec, outcome) in records.iter().zip(&recorded) {
        if outcome == "applied" {
            tracing::debug!(node = %fed.node_id(), message_id = %rec.message_id, sender = %rec.sender, link_seq = rec.link_seq, "envelope applied");
            if let Some(Mirrored::Submitted(p)) = &rec.effect {
                created.push(p.request.id);
            }
        } else {
            tracing::warn!(node = %fed.node_id(), message_id = %rec.message_id, sender = %rec.sender, reason = %outcome, "envelope accepted but its content cannot be applied; recorded as received");
        }
    }
    drop(_turn);
    for id in created {
        fed.mark_received(id).await;
    }
    Ok(outcomes)
}

/// `POST /federation/v1/envelopes`: one envelope.
async fn envelopes(State(fed): State<Federation>, _headers: HeaderMap, body: Bytes) -> Response {
    let item = Envelope::from_slice(&body);
    let outcome = match receive(&fed, vec![item]).await {
        Ok(mut o) => o.pop(),
        Err(resp) => return resp,
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
        Some(Outcome::Rejected { status, code, detail }) => problem(status, code, &detail),
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
        Err(resp) => return resp,
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

fn incoming_record(env: &Envelope, receipt: &Receipt, now: Timestamp) -> Result<IncomingRecord, super::FedError> {
    let entry = LedgerEntry::Received {
        envelope: env.header.clone(),
    };
    let leaf = entry.leaf_bytes()?;
    Ok(IncomingRecord {
        message_id: env.header.message_id.to_string(),
        sender: env.header.sender.to_string(),
        link_seq: env.header.link_seq as i64,
        envelope_hash: env.header.hash()?.to_hex(),
        header: String::from_utf8(liaison_wire::to_canonical(&env.header)?)
            .map_err(|e| super::FedError::Ledger(e.to_string()))?,
        payload: String::from_utf8(liaison_wire::canonicalize(&env.payload)?)
            .map_err(|e| super::FedError::Ledger(e.to_string()))?,
        receipt: String::from_utf8(liaison_wire::to_canonical(receipt)?)
            .map_err(|e| super::FedError::Ledger(e.to_string()))?,
        outcome: "applied".into(),
        leaf: LeafRecord {
            kind: "received".into(),
            message_id: env.header.message_id.to_string(),
            leaf_hash: entry.leaf_hash()?.to_hex(),
            leaf: String::from_utf8(leaf).map_err(|e| super::FedError::Ledger(e.to_string()))?,
        },
        at: now,
        effect: None,
    })
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
    match liaison_wire::to_canonical(&fed.inner.descriptor) {
        Ok(b) => json(StatusCode::OK, b),
        Err(e) => internal(&fed, e),
    }
}
