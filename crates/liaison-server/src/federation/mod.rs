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
}

impl FedHandle {
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Binds the federation listener, serves the endpoints and starts the delivery worker and the
/// tree head watcher.
pub async fn run(fed: Federation) -> Result<FedHandle, FedError> {
    let server_cfg = fed.tls_server_config()?;
    let listen = fed.listen_address();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| FedError::Config(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| FedError::Config(e.to_string()))?;
    let mut tasks = fed.spawn_background().await?;
    tracing::info!(node = %fed.node_id(), %addr, "federation endpoints listening on https://{addr}/federation/v1/");
    tasks.push(tokio::spawn(http::serve_tls(fed.clone(), listener, server_cfg)));
    Ok(FedHandle {
        federation: fed,
        addr,
        tasks,
    })
}

/// The transport the federation layer reaches peers with: HTTPS with pinned certificates.
pub fn transport() -> std::sync::Arc<dyn liaison_service::federation::transport::Transport> {
    std::sync::Arc::new(https::Https::default())
}

/// Starts federation for `node` if it has an identity (called by [`crate::serve`]).
pub async fn start(node: Node) -> Result<Option<FedHandle>, FedError> {
    start_with(node, FedSettings::from_env()).await
}

/// [`start`] with this instance's settings.
pub async fn start_with(node: Node, settings: FedSettings) -> Result<Option<FedHandle>, FedError> {
    match Federation::load(node, settings, transport()).await? {
        Some(f) => Ok(Some(run(f).await?)),
        None => Ok(None),
    }
}
