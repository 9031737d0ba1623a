#![recursion_limit = "512"]
//! # liaison-server
//!
//! The node's faces over the network: the HTTP API ([`api::router`], described by
//! [`openapi`]), the web UI ([`ui`]) and the federation endpoints ([`federation`]). Every
//! decision is a use case of `liaison_service::Node`, which the CLI calls too, so the role
//! matrix and every rule are enforced in one place.
//!
//! Architecture invariant: handlers parse and render; they decide nothing. This crate does
//! not depend on the store: the compiler keeps it that way.

pub mod admin_api;
pub mod api;
pub mod federation;
pub mod intel; // [intel] network clean-up
pub mod openapi;
pub mod ui;

use liaison_service::Node;

use std::net::SocketAddr;
use std::time::Duration;

/// Serves the API on `listener` until `shutdown` resolves, running the deadline watcher every
/// `tick` in the background.
pub async fn serve(
    node: Node,
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
