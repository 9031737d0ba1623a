//! Webhooks against a receiver started here, on 127.0.0.1: a small HTTP/1.1 server over plain
//! TCP or TLS (tokio-rustls, ring) that checks the signature with `verify` and records every
//! request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use liaison_notify::{ConfigError, DeliveryError, VerifyError, Webhook, WebhookConfig, verify};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use common::{free_port, scratch_dir, self_signed};

const SECRET: &[u8] = b"a webhook secret of 32 bytes...!";
const TOLERANCE: i64 = 300;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    verified: Result<(), VerifyError>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the receiver answers to a request whose signature verifies (401 otherwise).
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    /// Accept the connection, read the request, never answer.
    hang: bool,
}

impl Answer {
    fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            hang: false,
        }
    }
}

struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(port: u16, answer: Answer, tls: Option<TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let answer = answer.clone();
                let recorded = Arc::clone(&recorded);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            // A client that does not trust the certificate aborts the handshake.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, &answer, &recorded).await;
                            }
                        }
                        None => serve(stream, &answer, &recorded).await,
                    }
                });
            }
        });
        Receiver { port, requests, task }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}/hooks/liaison?agency=demo", self.port)
    }
}

/// One HTTP/1.1 exchange: the request (Content-Length body), then the answer, then close.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, answer: &Answer, recorded: &Mutex<Vec<Recorded>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
        assert!(data.len() < 64 * 1024, "request head too long");
    };
    let head = String::from_utf8(data[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let target = request_line.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let signature = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("liaison-signature"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let verified = verify(SECRET, &signature, &body, now(), TOLERANCE);
    let ok = verified.is_ok();
    recorded.lock().unwrap().push(Recorded {
        method,
        target,
        headers,
        body,
        verified,
    });
    if answer.hang {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let (status, body) = if ok {
        (answer.status, answer.body.clone())
    } else {
        (401, b"bad signature".to_vec())
    };
    let mut response = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in &answer.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

fn webhook(url: &str) -> Webhook {
    let mut cfg = WebhookConfig::new(url, SECRET);
    cfg.timeout = Duration::from_secs(5);
    Webhook::new(cfg).unwrap()
}

const BODY: &str = r#"{"event":"request.replied","request":"2024/17","summary":"答复已到达"}"#;

#[tokio::test]
async fn delivered_signed_and_verifiable() {
    let receiver = Receiver::start(0, Answer::status(204), None).await;
    let hook = webhook(&receiver.url("http", "127.0.0.1"));
    let sent_at = now();
    hook.post("d-0001", "request.replied", BODY.as_bytes(), sent_at)
        .await
        .unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.verified, Ok(()));
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/hooks/liaison?agency=demo");
    assert_eq!(request.body, BODY.as_bytes());
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(request.header("Liaison-Delivery"), Some("d-0001"));
    assert_eq!(request.header("Liaison-Event"), Some("request.replied"));
    assert_eq!(
        request.header("User-Agent"),
        Some(concat!("liaison-notify/", env!("CARGO_PKG_VERSION")))
    );
    let signature = request.header("Liaison-Signature").unwrap();
    assert!(signature.starts_with(&format!("t={sent_at},v1=")), "{signature}");
    assert_eq!(signature, liaison_notify::sign(SECRET, sent_at, BODY.as_bytes()));

    // A receiver refuses a changed body, a stale signature and another secret.
    let tampered = BODY.replace("2024/17", "2024/18");
    assert_eq!(
        verify(SECRET, signature, tampered.as_bytes(), sent_at, TOLERANCE),
        Err(VerifyError::Mismatch)
    );
    assert!(matches!(
        verify(SECRET, signature, BODY.as_bytes(), sent_at + TOLERANCE + 1, TOLERANCE),
        Err(VerifyError::Stale { .. })
    ));
    assert_eq!(
        verify(
            b"another secret, 16 bytes or more",
            signature,
            BODY.as_bytes(),
            sent_at,
            TOLERANCE
        ),
        Err(VerifyError::Mismatch)
    );
}

#[tokio::test]
async fn a_stale_timestamp_is_refused_by_the_receiver() {
    let receiver = Receiver::start(0, Answer::status(200), None).await;
    let hook = webhook(&receiver.url("http", "localhost"));
    let error = hook
        .post("d-0002", "request.replied", BODY.as_bytes(), now() - 3600)
        .await
        .unwrap_err();
    // The receiver answers 401: a permanent refusal (the outbox signs anew on a retry anyway).
    assert!(matches!(error, DeliveryError::Permanent(_)), "{error:?}");
    assert!(
        error.to_string().contains("401") && error.to_string().contains("bad signature"),
        "{error}"
    );
    let requests = receiver.requests();
    assert!(
        matches!(requests[0].verified, Err(VerifyError::Stale { .. })),
        "{:?}",
        requests[0].verified
    );
}

#[tokio::test]
async fn statuses_are_classified() {
    for (status, transient) in [
        (500, true),
        (502, true),
        (503, true),
        (408, true),
        (425, true),
        (429, true),
        (400, false),
        (404, false),
        (410, false),
        (301, false),
    ] {
        let receiver = Receiver::start(0, Answer::status(status), None).await;
        let hook = webhook(&receiver.url("http", "127.0.0.1"));
        let error = hook.post("d-1", "ping", b"{}", now()).await.unwrap_err();
        assert_eq!(error.is_transient(), transient, "{status}: {error:?}");
        assert!(error.to_string().contains(&status.to_string()), "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("127.0.0.1:{}/hooks/liaison", receiver.port)),
            "{error}"
        );
        // The query string (it may hold a token) is not in the message.
        assert!(!error.to_string().contains("agency=demo"), "{error}");
        assert_eq!(receiver.requests().len(), 1);
    }
}

#[tokio::test]
async fn error_bodies_are_quoted_briefly() {
    let mut answer = Answer::status(400);
    answer.body = format!("{{\"error\":\"unknown event\"}}{}", "x".repeat(100_000)).into_bytes();
    let receiver = Receiver::start(0, answer, None).await;
    let hook = webhook(&receiver.url("http", "127.0.0.1"));
    let error = hook.post("d-1", "ping", b"{}", now()).await.unwrap_err();
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(text.contains("400") && text.contains("unknown event"), "{text}");
    assert!(text.len() < 600, "{text}");
}

#[tokio::test]
async fn a_large_success_answer_is_read_only_in_part() {
    let mut answer = Answer::status(200);
    answer.body = vec![b'a'; 4 << 20];
    let receiver = Receiver::start(0, answer, None).await;
    let hook = webhook(&receiver.url("http", "127.0.0.1"));
    hook.post("d-1", "ping", b"{}", now()).await.unwrap();
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let target = Receiver::start(0, Answer::status(200), None).await;
    let mut answer = Answer::status(302);
    let location: &'static str = Box::leak(target.url("http", "127.0.0.1").into_boxed_str());
    answer.headers.push(("Location", location));
    let receiver = Receiver::start(0, answer, None).await;
    let hook = webhook(&receiver.url("http", "127.0.0.1"));
    let error = hook.post("d-1", "ping", b"{}", now()).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Permanent(_)), "{error:?}");
    assert!(
        error.to_string().contains("302") && error.to_string().contains("not followed"),
        "{error}"
    );
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(target.requests().len(), 0);
}

#[tokio::test]
async fn receiver_down_is_transient_then_the_retry_succeeds() {
    let port = free_port();
    let hook = webhook(&format!("http://127.0.0.1:{port}/hooks/liaison?agency=demo"));
    let error = hook
        .post("d-7", "request.replied", BODY.as_bytes(), now())
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error.to_string().starts_with(&format!(
            "could not connect to the webhook receiver http://127.0.0.1:{port}/hooks/liaison"
        )),
        "{error}"
    );

    let receiver = Receiver::start(port, Answer::status(200), None).await;
    hook.post("d-7", "request.replied", BODY.as_bytes(), now())
        .await
        .unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("Liaison-Delivery"), Some("d-7"));
    assert_eq!(requests[0].verified, Ok(()));
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_times_out() {
    let mut answer = Answer::status(200);
    answer.hang = true;
    let receiver = Receiver::start(0, answer, None).await;
    let mut cfg = WebhookConfig::new(receiver.url("http", "127.0.0.1"), SECRET);
    cfg.timeout = Duration::from_millis(700);
    let hook = Webhook::new(cfg).unwrap();
    let started = std::time::Instant::now();
    let error = hook.post("d-1", "ping", b"{}", now()).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("did not answer within 0.7 s"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn bodies_over_one_mib_are_refused_unsent() {
    let receiver = Receiver::start(0, Answer::status(200), None).await;
    let hook = webhook(&receiver.url("http", "127.0.0.1"));
    let body = vec![b' '; 2 << 20];
    let error = hook.post("d-1", "ping", &body, now()).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Permanent(_)), "{error:?}");
    assert!(error.to_string().contains("1 MiB"), "{error}");
    // Exactly 1 MiB is allowed.
    hook.post("d-2", "ping", &body[..1 << 20], now()).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body.len(), 1 << 20);
}

#[tokio::test]
async fn header_values_are_checked() {
    let receiver = Receiver::start(0, Answer::status(200), None).await;
    let hook = webhook(&receiver.url("http", "127.0.0.1"));
    for (id, event) in [
        ("d-1\r\nX-Injected: yes", "ping"),
        ("d-1", "ping pong"),
        ("", "ping"),
        ("d-1", ""),
    ] {
        let error = hook.post(id, event, b"{}", now()).await.unwrap_err();
        assert!(!error.is_transient(), "{id:?} {event:?}: {error:?}");
    }
    assert!(receiver.requests().is_empty());
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let error = Webhook::new(WebhookConfig::new("http://hooks.example.org/liaison", SECRET)).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                field: "webhook.url",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("http://hooks.example.org/liaison"),
        "{error}"
    );
    assert!(Webhook::new(WebhookConfig::new("https://hooks.example.org/liaison", SECRET)).is_ok());
    assert!(Webhook::new(WebhookConfig::new("http://[::1]:8080/liaison", SECRET)).is_ok());
}

#[tokio::test]
async fn https_with_ca_file_and_without() {
    let dir = scratch_dir("webhook-tls");
    let cert = self_signed(&dir);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert_der.clone()], cert.key_der.clone_key())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let receiver = Receiver::start(0, Answer::status(200), Some(acceptor)).await;

    // Trusted through ca_file: delivered, by name and by address.
    for host in ["localhost", "127.0.0.1"] {
        let mut cfg = WebhookConfig::new(receiver.url("https", host), SECRET);
        cfg.ca_file = Some(cert.cert_path.clone());
        let hook = Webhook::new(cfg).unwrap();
        hook.post("d-tls", "ping", BODY.as_bytes(), now()).await.unwrap();
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.verified.is_ok()));

    // Without it the certificate is not trusted: nothing is sent.
    let hook = webhook(&receiver.url("https", "localhost"));
    let error = hook.post("d-tls", "ping", BODY.as_bytes(), now()).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("TLS handshake") && text.contains("UnknownIssuer"),
        "{text}"
    );
    assert_eq!(receiver.requests().len(), 2);

    // A ca_file that holds no certificate is a configuration error naming the field.
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let mut cfg = WebhookConfig::new(receiver.url("https", "localhost"), SECRET);
    cfg.ca_file = Some(empty);
    let error = Webhook::new(cfg).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::CaFile {
                field: "webhook.ca_file",
                ..
            }
        ),
        "{error:?}"
    );
}
