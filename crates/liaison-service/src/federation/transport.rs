//! How the federation layer reaches its peers. The service decides what to send and what an
//! answer means; the bytes travel over a [`Transport`] the caller provides: the server's HTTPS
//! client, which accepts only each peer's pinned certificate (`liaison_server::federation`).

use liaison_wire::PinnedPeer;
use std::future::Future;
use std::pin::Pin;

/// A future a transport returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a peer answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `liaison-accepted-envelope` header of a duplicate's answer (docs/federation.md §3.3).
    pub accepted_envelope: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Carries requests to a pinned peer's federation endpoints. `Err`: the peer could not be
/// reached or did not answer (the message says why; it is retried later).
pub trait Transport: Send + Sync {
    /// POSTs a JSON body to `path` (e.g. `/federation/v1/envelope-batches`) of the peer.
    fn post<'a>(&'a self, peer: &'a PinnedPeer, path: &'a str, body: Vec<u8>) -> BoxFuture<'a, Result<Answer, String>>;
    /// GETs `path_and_query` of the peer.
    fn get<'a>(&'a self, peer: &'a PinnedPeer, path_and_query: &'a str) -> BoxFuture<'a, Result<Answer, String>>;
    /// PUTs a binary body with extra headers to `path` of the peer (the evidence transfer's
    /// chunks, docs/federation.md §12). Transports without a bulk channel refuse it.
    fn put<'a>(
        &'a self,
        _peer: &'a PinnedPeer,
        path: &'a str,
        _headers: Vec<(&'static str, String)>,
        _body: Vec<u8>,
    ) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move { Err(format!("PUT {path}: this transport has no bulk channel")) })
    }
}

/// A transport for work that never reaches a peer (ledger checks, proofs): every call fails.
pub struct Offline;

impl Transport for Offline {
    fn post<'a>(&'a self, _: &'a PinnedPeer, path: &'a str, _: Vec<u8>) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move { Err(format!("POST {path}: this command does not reach peers")) })
    }
    fn get<'a>(&'a self, _: &'a PinnedPeer, path: &'a str) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move { Err(format!("GET {path}: this command does not reach peers")) })
    }
}
