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
/// The pages also take API tokens at sign-in, as these tests sign in with them
/// (tests/ui_sign_in.rs covers passwords and second factors).
pub async fn serve(node: &Node) -> String {
    serve_as_configured(&node.clone().with_sign_in(liaison_service::sign_in::SignInConfig {
        token_sign_in: true,
        ..Default::default()
    }))
    .await
}

/// Serves the node with its own sign-in configuration.
pub async fn serve_as_configured(node: &Node) -> String {
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

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
