#![recursion_limit = "512"]
//! # liaison-server
//!
//! The node's use cases ([`service::Node`]) and its HTTP face ([`api::router`]). The CLI calls
//! the same use cases directly, so the role matrix and every rule are enforced in one place.
//!
//! Architecture invariant: handlers parse and render; they decide nothing. Decisions live in
//! `service` (who may do what) and below it in `liaison-core` (what is legal) and
//! `liaison-law` (what the law says).

pub mod api;
// [federation]
pub mod experience;
pub mod federation;
pub mod intel; // [intel] network clean-up
pub mod legal;
pub mod openapi;
pub mod report;
pub mod service;
pub mod ui;

use std::net::SocketAddr;
use std::time::Duration;

/// Serves the API on `listener` until `shutdown` resolves, running the deadline watcher every
/// `tick` in the background.
pub async fn serve(
    node: service::Node,
    listener: tokio::net::TcpListener,
    tick: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let watcher = {
        let node = node.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match node.tick(jiff::Timestamp::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(escalations = n, "deadline watcher recorded escalations"),
                    Err(e) => tracing::error!(error = %e, "deadline watcher failed; will retry"),
                }
            }
        })
    };
    // [federation] endpoints, delivery worker and tree head watcher, if the node has an identity.
    let fed = federation::start(node.clone()).await.map_err(std::io::Error::other)?;
    let app = api::router(node).layer(tower_http::trace::TraceLayer::new_for_http());
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    watcher.abort();
    if let Some(f) = fed {
        f.stop(); // [federation]
    }
    result
}
