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
pub mod cases_api; // joint task-force cases
pub mod conn;
pub mod evidence;
pub mod evidence_package;
pub mod federation;
pub mod intel; // [intel] network clean-up
pub mod marking_rules;
pub mod openapi;
pub mod pull; // [intel] pulling partners' TAXII collections and MISP feeds
pub mod search_api; // search, identifier look-ups, saved searches
pub mod taxii; // [intel] TAXII 2.1 at /taxii2/
pub mod ui;
pub mod work_api; // home pages, queues, assignment, units, preferences, the inbox

use liaison_service::Node;

use std::time::Duration;

/// Serves the API on `listener` until `shutdown` resolves, running the deadline watcher every
/// `tick` in the background, with the default connection limits ([`conn::Limits`]).
pub async fn serve(
    node: Node,
    listener: tokio::net::TcpListener,
    tick: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let settings = liaison_service::federation::FedSettings::from_env();
    serve_with(node, listener, tick, settings, conn::Limits::default(), shutdown).await
}

/// [`serve`] with this instance's federation settings (listen address, key directory: per
/// instance, from its configuration) and the connection limits `limits`, applied to the API
/// listener and to the federation listener each (lowered, with a warning, where both at their
/// limits would not fit in the process's open-files limit). The deadline watcher runs in the
/// one instance holding its lease (several instances may share a PostgreSQL database).
pub async fn serve_with(
    node: Node,
    listener: tokio::net::TcpListener,
    tick: Duration,
    fed_settings: liaison_service::federation::FedSettings,
    limits: conn::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (limits, lowered) = limits.fitted_to_open_files(2);
    if lowered {
        tracing::warn!(
            max_connections = limits.max_connections,
            max_per_address = limits.max_per_address,
            "connection limits lowered to fit the open-files limit (raise `ulimit -n`)"
        );
    }
    let watcher = {
        let mut deadlines = liaison_service::instances::DeadlineWatcher::new(node.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match deadlines.tick(jiff::Timestamp::now()).await {
                    Ok(None) => {}
                    Ok(Some(r)) if r == Default::default() => {}
                    Ok(Some(r)) => tracing::info!(
                        expired = r.expired,
                        escalations = r.escalations,
                        reminders = r.reminders,
                        notifications = r.notifications,
                        queued = r.queued,
                        delivered = r.delivered,
                        retrying = r.retrying,
                        given_up = r.given_up,
                        "deadline watcher pass"
                    ),
                    Err(e) => tracing::error!(error = %e, "deadline watcher failed; will retry"),
                }
            }
        })
    };
    // [federation] endpoints, delivery worker and tree head watcher, if the node has an identity.
    let fed = federation::start_with(node.clone(), fed_settings, limits)
        .await
        .map_err(std::io::Error::other)?;
    // [intel] partners' TAXII collections and MISP feeds on their schedule.
    let puller = pull::spawn_schedule(node.clone());
    let app = api::router(node).layer(tower_http::trace::TraceLayer::new_for_http());
    // Handlers that need the peer's address take `ConnectInfo<SocketAddr>`: the accept loop puts
    // it into every request.
    let api = conn::Listener {
        listener,
        name: "api",
        limits,
        transport: conn::Transport::Plain,
    };
    let result = conn::serve(api, app, shutdown).await;
    watcher.abort();
    if let Some(p) = puller {
        p.abort();
    }
    if let Some(f) = fed {
        f.stop(); // [federation]
    }
    result
}
