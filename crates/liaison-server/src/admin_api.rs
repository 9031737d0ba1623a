//! The /api/v1 routes for administering a node: users and tokens beyond creating them, peers,
//! the ledger and the node's signing key. Each calls the same use case as the CLI command
//! (`liaison user|token|peer|ledger|federation …`), with the same role checks.

use crate::api::{ApiResult, Auth, Problem, check_params, json_body};
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use liaison_service::federation::PeerFile;
use liaison_service::{Node, ServiceError};
use serde::Deserialize;
use std::collections::HashMap;

/// Longest overlap a rotated key may keep (30 days).
pub const MAX_OVERLAP_HOURS: i64 = 24 * 30;

pub fn router(node: Node) -> Router {
    Router::new()
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/users/{username}", patch(update_user))
        .route("/api/v1/users/{username}/password", post(reset_password))
        .route("/api/v1/federation/status", get(status))
        .route("/api/v1/federation/descriptor", get(descriptor))
        .route("/api/v1/federation/peers", get(peers).post(pin_peer))
        .route("/api/v1/federation/peers/{node_id}", axum::routing::delete(remove_peer))
        .route("/api/v1/federation/ledger/verify", get(verify_ledger))
        .route("/api/v1/federation/ledger/proofs/{message_id}", get(prove))
        .route("/api/v1/federation/key-rotations", post(rotate_key))
        .with_state(node)
}

/// `GET /api/v1/tokens` (routed with the token creation in `api`).
pub(crate) async fn tokens(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.tokens(&p).await?).into_response())
}

async fn revoke_token(AxState(node): AxState<Node>, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    node.revoke_token(&p, &id, Timestamp::now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    role: Option<liaison_core::Role>,
}

async fn update_user(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let c: UserChange = json_body(&headers, &body)?;
    if c.disabled.is_none() && c.role.is_none() {
        return Err(ServiceError::invalid("disabled", "give disabled, role or both").into());
    }
    if let Some(role) = c.role {
        node.set_user_role(&p, &username, role, Timestamp::now()).await?;
    }
    if let Some(disabled) = c.disabled {
        node.set_user_disabled(&p, &username, disabled, Timestamp::now())
            .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    #[serde(default)]
    reset_second_factor: bool,
}

/// `POST /api/v1/users/{username}/password`: a temporary password for the web pages (admins).
async fn reset_password(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let c: PasswordReset = if body.is_empty() {
        PasswordReset::default()
    } else {
        json_body(&headers, &body)?
    };
    let temporary = node
        .reset_password(&p, &username, c.reset_second_factor, Timestamp::now())
        .await?;
    Ok(Json(serde_json::json!({
        "username": username,
        "temporary_password": temporary,
        "second_factor_removed": c.reset_second_factor,
    }))
    .into_response())
}

async fn status(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    Ok(Json(node.federation_status(&p).await?).into_response())
}

/// This node's peer file (signed descriptor and agency entry) with its fingerprint: what an
/// operator sends to a partner. Any signed-in user may read it.
async fn descriptor(AxState(node): AxState<Node>, Auth(_p): Auth) -> ApiResult<Response> {
    let pf = node.own_peer_file().await?;
    let fp = pf
        .descriptor
        .fingerprint()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(Json(serde_json::json!({"peer_file": pf, "fingerprint": fp.to_hex()})).into_response())
}

async fn peers(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    let peers: Vec<serde_json::Value> = node
        .peers(&p)
        .await?
        .into_iter()
        .map(|r| {
            serde_json::json!({"node_id": r.node_id, "agency_id": r.agency_id, "base_url": r.base_url,
                "tls_cert_sha256": r.tls_cert_sha256, "serial": r.serial, "added_at": r.added_at})
        })
        .collect();
    Ok(Json(peers).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    /// The peer file (or bare signed descriptor) the peer's operator sent.
    peer_file: serde_json::Value,
    /// The descriptor fingerprint the peer's operator read out (hex, colons allowed).
    fingerprint: String,
    /// Directory code for the peer's agency (default: from the peer file).
    #[serde(default)]
    agency_code: Option<String>,
    /// IANA time zone of the peer's agency (default: from the peer file).
    #[serde(default)]
    time_zone: Option<String>,
}

async fn pin_peer(AxState(node): AxState<Node>, Auth(p): Auth, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let b: PinBody = json_body(&headers, &body)?;
    let bytes = serde_json::to_vec(&b.peer_file).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let mut pf: PeerFile = liaison_service::federation::parse_peer_file(&bytes)?;
    if let Some(code) = b.agency_code {
        pf.agency.code = code;
    }
    if let Some(tz) = b.time_zone {
        pf.agency.time_zone = tz;
    }
    let pinned = node.pin_peer(&p, &pf, &b.fingerprint, Timestamp::now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            serde_json::json!({"node_id": pinned.node_id, "agency": pf.agency.code, "base_url": pinned.base_url,
            "tls_cert_sha256": pinned.tls_cert_sha256.to_hex(), "serial": pinned.descriptor_serial}),
        ),
    )
        .into_response())
}

async fn remove_peer(AxState(node): AxState<Node>, Auth(p): Auth, Path(node_id): Path<String>) -> ApiResult<Response> {
    node.remove_peer(&p, &node_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn verify_ledger(AxState(node): AxState<Node>, Auth(p): Auth) -> ApiResult<Response> {
    let r = node.verify_ledger(&p).await?;
    let intact = r.is_intact();
    let mut v = serde_json::to_value(&r).map_err(|e| ServiceError::Internal(e.to_string()))?;
    v["intact"] = serde_json::Value::Bool(intact);
    Ok(Json(v).into_response())
}

async fn prove(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    Path(message_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_params(&q, &["disclose_payload"])?;
    let disclose = match q.get("disclose_payload").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Problem::from(ServiceError::invalid(
                "disclose_payload",
                format!("'{other}' is not true or false"),
            )));
        }
    };
    let bundle = node.prove_message(&p, &message_id, disclose).await?;
    Ok(Json(bundle).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old key stays valid, in hours (default 24, at most 720).
    #[serde(default)]
    overlap_hours: Option<i64>,
}

async fn rotate_key(
    AxState(node): AxState<Node>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: RotateBody = if body.is_empty() {
        RotateBody { overlap_hours: None }
    } else {
        json_body(&headers, &body)?
    };
    let hours = b.overlap_hours.unwrap_or(24);
    if !(0..=MAX_OVERLAP_HOURS).contains(&hours) {
        return Err(Problem::from(ServiceError::invalid(
            "overlap_hours",
            format!("{hours} is not between 0 and {MAX_OVERLAP_HOURS}"),
        )));
    }
    let now = Timestamp::now();
    let r = node
        .rotate_key(&p, now + SignedDuration::from_hours(hours), now)
        .await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}
