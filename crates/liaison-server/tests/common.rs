#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Shared fixtures: the service's two-agency node (FBI, MPS; a user per role in each, tokens)
//! and a running server for it.
#![allow(dead_code)]

use liaison_service::Node;
pub use liaison_service::fixtures::TwoAgencies as Fixture;

pub async fn fixture(node: Node) -> Fixture {
    Fixture::on(node).await.unwrap()
}

/// Serves the node on an ephemeral 127.0.0.1 port in the background; returns the base URL.
pub async fn serve(node: &Node) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let node = node.clone();
    tokio::spawn(async move {
        let _ = liaison_server::serve(
            node,
            listener,
            std::time::Duration::from_secs(3600),
            std::future::pending(),
        )
        .await;
    });
    format!("http://{addr}")
}
