//! The federation transport: HTTPS to each peer's base URL over a TLS connection that accepts
//! only the certificate pinned from the peer's signed descriptor. One client per peer, kept
//! while the pinned certificate stays the same.

use liaison_service::federation::receive::ACCEPTED_HEADER;
use liaison_service::federation::tls::pinned_client_config;
use liaison_service::federation::transport::{Answer, BoxFuture, Transport};
use liaison_wire::{Hash256, PinnedPeer};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Connection set-up limit: an unreachable peer is retried later, not waited for.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Whole-request limit (a batch of 256 envelopes is at most 4 MiB).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Whole-request limit of a chunk of the bulk channel (at most 16 MiB).
const CHUNK_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer read from a peer (a batch answer carries one receipt per envelope).
const MAX_ANSWER_BYTES: usize = 8 << 20;

/// HTTPS with pinned certificates (see the module docs).
#[derive(Default)]
pub struct Https {
    clients: Mutex<HashMap<String, (Hash256, reqwest::Client)>>,
}

/// An HTTPS client that talks only to the server presenting the certificate with this
/// SHA-256 fingerprint.
pub fn pinned_client(fingerprint: Hash256) -> Result<reqwest::Client, String> {
    let cfg = pinned_client_config(fingerprint).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("TLS client: {e}"))
}

impl Https {
    fn client(&self, peer: &PinnedPeer) -> Result<reqwest::Client, String> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| "the client cache lock was poisoned".to_string())?;
        if let Some((fp, c)) = clients.get(peer.node_id.as_str())
            && *fp == peer.tls_cert_sha256
        {
            return Ok(c.clone());
        }
        let c = pinned_client(peer.tls_cert_sha256)?;
        clients.insert(peer.node_id.to_string(), (peer.tls_cert_sha256, c.clone()));
        Ok(c)
    }

    async fn answer(url: &str, resp: reqwest::Response) -> Result<Answer, String> {
        let status = resp.status().as_u16();
        let accepted_envelope = resp
            .headers()
            .get(ACCEPTED_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
            return Err(format!("{url}: answer larger than {MAX_ANSWER_BYTES} bytes"));
        }
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("{url}: reading the answer: {e}"))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!("{url}: answer larger than {MAX_ANSWER_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            accepted_envelope,
            body,
        })
    }
}

fn url(peer: &PinnedPeer, path: &str) -> String {
    format!("{}{path}", peer.base_url.trim_end_matches('/'))
}

impl Transport for Https {
    fn post<'a>(&'a self, peer: &'a PinnedPeer, path: &'a str, body: Vec<u8>) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let url = url(peer, path);
            let resp = self
                .client(peer)?
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("POST {url}: {e}"))?;
            Https::answer(&url, resp).await
        })
    }

    fn put<'a>(
        &'a self,
        peer: &'a PinnedPeer,
        path: &'a str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let url = url(peer, path);
            let mut req = self
                .client(peer)?
                .put(&url)
                .timeout(CHUNK_TIMEOUT)
                .header("content-type", "application/octet-stream");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let resp = req.body(body).send().await.map_err(|e| format!("PUT {url}: {e}"))?;
            Https::answer(&url, resp).await
        })
    }

    fn get<'a>(&'a self, peer: &'a PinnedPeer, path_and_query: &'a str) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let url = url(peer, path_and_query);
            let resp = self
                .client(peer)?
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            Https::answer(&url, resp).await
        })
    }
}
