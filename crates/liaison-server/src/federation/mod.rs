//! Federation, the server's part (docs/federation.md, sections marked [node]): the HTTPS
//! endpoints under `/federation/v1/` on their own TLS listener. What an envelope does, what
//! to send and what a receipt means are use cases of `liaison_service::federation`.

mod http;
pub mod https;

use liaison_service::Node;
use liaison_service::federation::{FedError, FedSettings, Federation};

/// A running federation layer: its endpoints and background tasks, until [`FedHandle::stop`].
pub struct FedHandle {
    pub federation: Federation,
    pub addr: std::net::SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl FedHandle {
    /// Stops the background tasks and the listener; open connections finish their request in
    /// progress and close.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Binds the federation listener, serves the endpoints and starts the delivery worker and the
/// tree head watcher, with the default connection limits.
pub async fn run(fed: Federation) -> Result<FedHandle, FedError> {
    run_with(fed, crate::conn::Limits::default()).await
}

/// [`run`] with the connection limits `limits` (docs/federation.md §10).
pub async fn run_with(fed: Federation, limits: crate::conn::Limits) -> Result<FedHandle, FedError> {
    let server_cfg = fed.tls_server_config()?;
    let listen = fed.listen_address();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| FedError::Config(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| FedError::Config(e.to_string()))?;
    let tasks = fed.spawn_background().await?;
    tracing::info!(node = %fed.node_id(), %addr, "federation endpoints listening on https://{addr}/federation/v1/");
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    tokio::spawn(http::serve_tls(fed.clone(), listener, server_cfg, limits, shutdown));
    Ok(FedHandle {
        federation: fed,
        addr,
        tasks,
        stop,
    })
}

/// The transport the federation layer reaches peers with: HTTPS with pinned certificates.
pub fn transport() -> std::sync::Arc<dyn liaison_service::federation::transport::Transport> {
    std::sync::Arc::new(https::Https::default())
}

/// Starts federation for `node` if it has an identity, with the default connection limits.
pub async fn start(node: Node) -> Result<Option<FedHandle>, FedError> {
    start_with(node, FedSettings::from_env(), crate::conn::Limits::default()).await
}

/// [`start`] with this instance's settings and the connection limits `limits` (called by
/// [`crate::serve_with`]).
pub async fn start_with(
    node: Node,
    settings: FedSettings,
    limits: crate::conn::Limits,
) -> Result<Option<FedHandle>, FedError> {
    match Federation::load(node, settings, transport()).await? {
        Some(f) => Ok(Some(run_with(f, limits).await?)),
        None => Ok(None),
    }
}
