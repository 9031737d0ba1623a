//! The federation endpoints (docs/federation.md §7) over TLS.

use super::Federation;
use super::apply::ApplyError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use liaison_store::{InboxRow, IncomingRecord, LeafRecord};
use liaison_wire::{Envelope, LedgerEntry, LinkOrder, Receipt, Rejection, VerifyContext, link_order};
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

/// The stored receipt for an already accepted message, with the accepted copy's header.
fn stored_receipt(row: &InboxRow) -> Response {
    let mut r = json(StatusCode::OK, row.receipt.clone().into_bytes());
    if let Ok(v) = HeaderValue::from_str(&row.header) {
        r.headers_mut().insert(ACCEPTED_HEADER, v);
    }
    r
}

async fn envelopes(State(fed): State<Federation>, _headers: HeaderMap, body: Bytes) -> Response {
    let now = Timestamp::now();
    let store = &fed.inner.node.store;
    let env = match Envelope::from_slice(&body) {
        Ok(e) => e,
        Err(rej) => {
            tracing::warn!(node = %fed.node_id(), code = rej.code(), reason = %rej, "envelope rejected");
            return problem(rejection_status(&rej), rej.code(), &rej.to_string());
        }
    };
    let mid = env.header.message_id.to_string();
    let seen = match store.fed_inbox(&mid).await {
        Ok(s) => s,
        Err(e) => return internal(&fed, e),
    };
    let mut replay = HashSet::new();
    if seen.is_some() {
        replay.insert(env.header.message_id);
    }
    let verify = |peers: &liaison_wire::PeerSet| {
        env.verify(
            &VerifyContext::new(&fed.inner.node_id, peers, now, &replay).with_max_skew(fed.inner.settings.max_skew),
        )
    };
    let mut peers = match fed.peers() {
        Ok(p) => p,
        Err(e) => return internal(&fed, e),
    };
    let mut result = verify(&peers);
    if matches!(result, Err(Rejection::UnknownSender(_) | Rejection::UnknownKey { .. })) {
        // The peer may have been pinned (or updated) by `liaison peer add` since we loaded.
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
            if let Some(row) = seen {
                tracing::warn!(node = %fed.node_id(), code = "replay", message_id = %mid, sender = %env.header.sender, "duplicate envelope not applied again; answered with the stored receipt");
                return stored_receipt(&row);
            }
            return internal(&fed, "replay without inbox row");
        }
        Err(rej) => {
            tracing::warn!(node = %fed.node_id(), code = rej.code(), sender = %env.header.sender, message_id = %mid, reason = %rej, "envelope rejected");
            return problem(rejection_status(&rej), rej.code(), &rej.to_string());
        }
    };
    let sender = verified.sender.to_string();
    let last = match store.fed_last_applied(&sender).await {
        Ok(l) => l,
        Err(e) => return internal(&fed, e),
    };
    match link_order(last as u64, verified.link_seq) {
        LinkOrder::Next => {}
        LinkOrder::AlreadyApplied => {
            return match store.fed_inbox_by_seq(&sender, verified.link_seq as i64).await {
                Ok(Some(row)) => stored_receipt(&row),
                Ok(None) => internal(&fed, "applied link_seq without inbox row"),
                Err(e) => internal(&fed, e),
            };
        }
        LinkOrder::Gap { expected } => {
            tracing::info!(node = %fed.node_id(), sender = %sender, got = verified.link_seq, expected, "envelope out of order");
            return json(
                StatusCode::CONFLICT,
                serde_json::json!({"expected_link_seq": expected})
                    .to_string()
                    .into_bytes(),
            );
        }
    }
    let receipt = match Receipt::issue(&verified, now, &fed.inner.key) {
        Ok(r) => r,
        Err(e) => return internal(&fed, e),
    };
    let record = match incoming_record(&env, &receipt, now) {
        Ok(r) => r,
        Err(e) => return internal(&fed, e),
    };
    let receipt_bytes = record.receipt.clone().into_bytes();
    let applied = fed.apply_payload(&env, record.clone()).await;
    let created = match applied {
        Ok(c) => c,
        Err(ApplyError::Transient(e)) => {
            tracing::info!(node = %fed.node_id(), message_id = %mid, error = %e, "envelope not applied yet (busy); the sender will retry");
            return problem(StatusCode::SERVICE_UNAVAILABLE, "busy", "try again");
        }
        Err(ApplyError::Duplicate) => {
            return match store.fed_inbox(&mid).await {
                Ok(Some(row)) => stored_receipt(&row),
                Ok(None) => internal(&fed, "duplicate without inbox row"),
                Err(e) => internal(&fed, e),
            };
        }
        Err(ApplyError::Permanent(reason)) => {
            tracing::warn!(node = %fed.node_id(), message_id = %mid, sender = %sender, reason = %reason, "envelope accepted but its content cannot be applied; recorded as received");
            let mut rec = record;
            rec.outcome = format!("not applied: {reason}");
            let fw = liaison_store::FedWrites {
                outbox: vec![],
                incoming: Some(rec),
            };
            if let Err(e) = store.fed_write(&fw).await {
                return internal(&fed, e);
            }
            None
        }
    };
    if let Err(e) = fed.sync_log().await {
        tracing::error!(node = %fed.node_id(), error = %e, "ledger sync failed");
    }
    tracing::debug!(node = %fed.node_id(), message_id = %mid, sender = %sender, link_seq = verified.link_seq, "envelope applied");
    if let Some(id) = created {
        fed.mark_received(id).await;
    }
    json(StatusCode::OK, receipt_bytes)
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
