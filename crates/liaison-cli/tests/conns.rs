//! Bounded connections (issue #12 §3): a real `liaison serve` process with its API and
//! federation (TLS) listeners on 127.0.0.1, attacked with idle, half-sent, trickling and surplus
//! connections. The limits are shortened through `[limits]` in the node's liaison.toml. Bounds
//! on "closed within" are generous (several times the configured timeout): they show that a
//! connection is closed, not how fast.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::BIN;

/// A port below the kernel's ephemeral range, distinct within this process and checked free
/// (the federation port goes into the node's descriptor before the node binds it).
fn free_port() -> u16 {
    common::free_port_from(common::port_slot(7))
}

struct TestNode {
    dir: PathBuf,
    api: u16,
    fed: u16,
    token: String,
    child: Option<Child>,
    log: PathBuf,
}

impl TestNode {
    /// A node (FBI, with a federation identity) whose `[limits]` are changed as `limits` says.
    fn new(name: &str, db: Option<&str>, limits: &[(&str, u64)]) -> TestNode {
        let base = std::env::temp_dir().join(format!("liaison-conns-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let mut n = TestNode {
            dir: base.join("node"),
            api: free_port(),
            fed: free_port(),
            token: String::new(),
            child: None,
            log: base.join("node.log"),
        };
        let listen = format!("127.0.0.1:{}", n.fed);
        let mut init = vec!["init"];
        init.extend(common::node_init_args(
            "FBI",
            "US",
            "America/New_York",
            "us-fbi",
            &listen,
        ));
        if let Some(url) = db {
            init.extend(["--database-url", url]);
        }
        n.ok(&init);
        n.ok(&common::ADD_CN_MPS);
        n.ok(&["user", "add", "officer", "--agency", "FBI", "--role", "officer"]);
        let t: Value = serde_json::from_str(&n.ok(&["--json", "token", "create", "officer"])).unwrap();
        n.token = t["token"].as_str().unwrap().to_string();
        let path = n.dir.join("liaison.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (key, value) in limits {
            let prefix = format!("\n{key} = ");
            let at = text
                .find(&prefix)
                .unwrap_or_else(|| panic!("{key} not in liaison.toml"))
                + 1;
            let end = at + text[at..].find('\n').unwrap();
            text.replace_range(at..end, &format!("{key} = {value}"));
        }
        std::fs::write(&path, text).unwrap();
        n
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = common::data_dir_command(&self.dir, args)
            .env_remove("LIAISON_DATABASE_URL")
            .output()
            .unwrap();
        common::ok_stdout(&o, format_args!("{args:?}"))
    }

    /// Starts `liaison serve`, under `ulimit -n open_files` if given.
    fn start(&mut self, open_files: Option<u32>) {
        let log = std::fs::File::create(&self.log).unwrap();
        let listen = format!("127.0.0.1:{}", self.api);
        let args = ["--data-dir", self.dir.to_str().unwrap(), "serve", "--listen", &listen];
        let mut c = match open_files {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(BIN)
                    .args(args);
                c
            }
            None => {
                let mut c = Command::new(BIN);
                c.args(args);
                c
            }
        };
        let child = c
            .env("LIAISON_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("LIAISON_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("the node exited on start ({status}):\n{}", self.log_text());
            }
            let fed_up = TcpStream::connect(("127.0.0.1", self.fed)).is_ok();
            if fed_up && self.health_from(Ipv4Addr::LOCALHOST).is_some_and(|s| s == 200) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the node did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        common::read_log(&self.log)
    }

    fn api_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.api))
    }

    fn fed_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.fed))
    }

    /// One HTTP/1.1 exchange on a new connection from `source`; the status, or None if the
    /// connection was refused or closed without an answer.
    fn exchange_from(&self, source: Ipv4Addr, request: &str) -> Option<(u16, String)> {
        let mut s = connect_from(source, self.api_addr())?;
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(request.as_bytes()).ok()?;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        Some((status, text))
    }

    fn health_from(&self, source: Ipv4Addr) -> Option<u16> {
        self.exchange_from(
            source,
            "GET /api/v1/health HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n",
        )
        .map(|(s, _)| s)
    }

    /// Creates a draft through the API as the officer; the status.
    fn create_request_from(&self, source: Ipv4Addr, case: &str) -> Option<u16> {
        let dir: Value = serde_json::from_str(&self.ok(&["--json", "directory"])).unwrap();
        let id = |code: &str| {
            dir.as_array().unwrap().iter().find(|a| a["code"] == code).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let body = serde_json::json!({
            "kind": "subscriber_information",
            "urgency": "routine",
            "requesting_agency": id("FBI"),
            "requested_agency": id("CN-MPS"),
            "case_reference": case,
            "offences": ["BC-02"],
            "summary": "Intrusion into a hospital network",
            "legal_basis": "18 USC 1030",
        })
        .to_string();
        let req = format!(
            "POST /api/v1/requests HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.token,
            body.len()
        );
        let r = self.exchange_from(source, &req);
        if let Some((s, text)) = &r {
            assert!(*s == 201 || *s == 200, "creating a request: {text}");
        }
        r.map(|(s, _)| s)
    }

    /// The sum of a counter over the node's "connection limits" log lines of `listener`, and
    /// how many such lines there were.
    fn logged(&self, listener: &str, field: &str) -> (u64, usize) {
        let text = self.log_text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("connection limits") && l.contains(&format!("listener=\"{listener}\"")))
            .collect();
        let key = format!("{field}=");
        let sum = lines
            .iter()
            .filter_map(|l| {
                let rest = &l[l.find(&key)? + key.len()..];
                rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok()
            })
            .sum();
        (sum, lines.len())
    }

    /// Waits (up to 25 s: counters are reported every 10 s) until `field` of `listener` has
    /// been logged at least `at_least` times in all.
    fn wait_logged(&self, listener: &str, field: &str, at_least: u64) -> (u64, usize) {
        let t0 = Instant::now();
        loop {
            let got = self.logged(listener, field);
            if got.0 >= at_least {
                return got;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(25),
                "{listener} {field} logged {} times, expected {at_least}:\n{}",
                got.0,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        common::kill(&mut self.child);
    }
}

/// A connection to `to` from the loopback address `source` (127.0.0.2 … act as other hosts).
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> Option<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().ok()?;
        sock.bind(SocketAddr::from((source, 0))).ok()?;
        tokio::time::timeout(Duration::from_secs(5), sock.connect(to))
            .await
            .ok()?
            .ok()
    })?;
    let s = s.into_std().ok()?;
    s.set_nonblocking(false).ok()?;
    Some(s)
}

/// Whether the server closes `s` (end of stream or reset) within `bound`, reading and
/// discarding whatever it sends before; the bytes it sent.
fn closed_within(s: &mut TcpStream, bound: Duration) -> (bool, Vec<u8>) {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < bound {
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (true, got),
        }
    }
    (false, got)
}

const GENEROUS: Duration = Duration::from_secs(15);

fn source(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// API listener: idle and half-sent connections, a trickled header, a slow body and an idle
/// kept-alive connection are all closed after their (shortened) timeouts; the node answers
/// normally all along.
fn api_timeouts(db: Option<&str>, name: &str) {
    let mut n = TestNode::new(
        name,
        db,
        &[
            ("header_timeout_seconds", 1),
            ("idle_timeout_seconds", 2),
            ("request_timeout_seconds", 3),
        ],
    );
    n.start(None);
    let mut idle: Vec<TcpStream> = (0..20)
        .map(|_| connect_from(source(2), n.api_addr()).unwrap())
        .collect();
    let mut half: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = connect_from(source(3), n.api_addr()).unwrap();
            s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: node\r\n").unwrap();
            s
        })
        .collect();
    // A client that keeps sending header bytes is still held to the header timeout.
    let mut trickle = connect_from(source(4), n.api_addr()).unwrap();
    trickle.write_all(b"GET /api/v1/health HTTP/1.1\r\n").unwrap();
    let t0 = Instant::now();
    let mut cut = false;
    while t0.elapsed() < GENEROUS {
        if trickle.write_all(b"X").is_err() {
            cut = true;
            break;
        }
        let (closed, _) = closed_within(&mut trickle, Duration::from_millis(300));
        if closed {
            cut = true;
            break;
        }
    }
    assert!(cut, "a trickled header was not cut");
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(closed_within(s, GENEROUS).0, "idle connection {i} still open");
    }
    for (i, s) in half.iter_mut().enumerate() {
        assert!(closed_within(s, GENEROUS).0, "half-sent request {i} still open");
    }
    // A slow body: answered 408 after the request timeout, and the connection closed.
    let mut slow = connect_from(source(5), n.api_addr()).unwrap();
    slow.write_all(
        format!(
            "POST /api/v1/requests HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"kind\"",
            n.token
        )
        .as_bytes(),
    )
    .unwrap();
    let (closed, got) = closed_within(&mut slow, GENEROUS);
    assert!(closed, "a slow body was not cut");
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // A kept-alive connection is closed after the idle timeout, once its answer is read.
    let mut kept = connect_from(source(6), n.api_addr()).unwrap();
    kept.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: node\r\n\r\n")
        .unwrap();
    let (closed, got) = closed_within(&mut kept, GENEROUS);
    assert!(closed, "an idle kept-alive connection was not closed");
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // The node is fine, and says what it cut, as counters.
    assert_eq!(n.health_from(source(1)), Some(200));
    assert_eq!(n.create_request_from(source(1), "FBI-2026-0101"), Some(201));
    let (header_cuts, _) = n.wait_logged("api", "header_timeouts", 41);
    assert!(header_cuts >= 41, "{header_cuts}");
    n.wait_logged("api", "request_timeouts", 1);
    n.wait_logged("api", "idle_timeouts", 1);
}

#[test]
fn api_idle_half_sent_and_slow_connections_are_closed_on_sqlite() {
    api_timeouts(None, "api-sqlite");
}

#[test]
fn api_idle_half_sent_and_slow_connections_are_closed_on_postgresql() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(liaison_service::fixtures::postgres_url()) else {
        return;
    };
    api_timeouts(Some(&url), "api-pg");
}

/// Federation listener (TLS): a connection that never starts its handshake, and one that
/// trickles it, are cut after the handshake timeout; a body over the federation bound is refused
/// 413; the endpoints answer all along.
#[test]
fn federation_slow_handshakes_are_cut_and_bodies_bounded() {
    let mut n = TestNode::new(
        "fed",
        None,
        &[("handshake_timeout_seconds", 1), ("header_timeout_seconds", 1)],
    );
    n.start(None);
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| connect_from(source(2), n.fed_addr()).unwrap())
        .collect();
    let mut partial = connect_from(source(3), n.fed_addr()).unwrap();
    // A TLS handshake record announcing 512 bytes, sent a byte at a time.
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let t0 = Instant::now();
    let mut cut = false;
    while t0.elapsed() < GENEROUS {
        if partial.write_all(&[0]).is_err() || closed_within(&mut partial, Duration::from_millis(300)).0 {
            cut = true;
            break;
        }
    }
    assert!(cut, "a trickled TLS handshake was not cut");
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(
            closed_within(s, GENEROUS).0,
            "connection {i} without a handshake still open"
        );
    }
    let (timeouts, _) = n.wait_logged("federation", "handshake_timeouts", 21);
    assert!(timeouts >= 21);

    // Over TLS, with the node's pinned certificate: the endpoints answer; 2 MiB is refused.
    let peer_file = n.dir.with_extension("peer.json");
    n.ok(&["federation", "descriptor", "--out", peer_file.to_str().unwrap()]);
    let pf: Value = serde_json::from_slice(&std::fs::read(&peer_file).unwrap()).unwrap();
    let fp = liaison_wire::Hash256::from_hex(pf["descriptor"]["tls_cert_sha256"].as_str().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = liaison_server::federation::https::pinned_client(fp).unwrap();
        let base = format!("https://127.0.0.1:{}/federation/v1", n.fed);
        let sth = client.get(format!("{base}/sth")).send().await.unwrap();
        assert_eq!(sth.status().as_u16(), 200);
        // One envelope: 1 MiB at most; a batch: 4 MiB at most.
        for (path, size) in [("envelopes", 2 << 20), ("envelope-batches", 5 << 20)] {
            let r = client
                .post(format!("{base}/{path}"))
                .header("content-type", "application/json")
                .body(vec![b' '; size])
                .send()
                .await;
            // Refused as too large, or the connection closed while the rest was still being sent.
            if let Ok(r) = r {
                assert_eq!(r.status().as_u16(), 413, "{path}");
            }
        }
        // A new client: the node closes a connection whose oversized body it did not read, and
        // a pooled connection may be that one.
        let client = liaison_server::federation::https::pinned_client(fp).unwrap();
        let sth = client.get(format!("{base}/sth")).send().await;
        let sth = sth.unwrap_or_else(|e| panic!("{e:?}\n{}", n.log_text()));
        assert_eq!(sth.status().as_u16(), 200);
    });
}

/// The per-address cap closes the surplus connections of one address at once, on both
/// listeners, and reports them as one counted log line per period, while a client from another
/// address reads health and creates a request.
#[test]
fn per_address_cap_refuses_extras_others_are_served() {
    let mut n = TestNode::new(
        "cap",
        None,
        &[
            ("header_timeout_seconds", 60),
            ("handshake_timeout_seconds", 60),
            ("max_connections_per_address", 8),
        ],
    );
    n.start(None);
    for (listener, addr) in [("api", n.api_addr()), ("federation", n.fed_addr())] {
        let held: Vec<TcpStream> = (0..8).map(|_| connect_from(source(2), addr).unwrap()).collect();
        // Let the node accept them before the surplus arrives.
        std::thread::sleep(Duration::from_millis(500));
        for i in 0..30 {
            let mut extra = connect_from(source(2), addr).unwrap();
            let (closed, _) = closed_within(&mut extra, Duration::from_secs(5));
            assert!(closed, "{listener}: surplus connection {i} was kept");
        }
        // Another address is served at once.
        assert_eq!(n.health_from(source(3)), Some(200));
        assert_eq!(
            n.create_request_from(source(3), &format!("FBI-CAP-{listener}")),
            Some(201)
        );
        let (refused, lines) = n.wait_logged(listener, "refused_address_limit", 30);
        assert_eq!(refused, 30, "{listener}");
        assert!(lines <= 3, "{listener}: {lines} log lines for 30 refusals");
        // The held connections are still open (their timeouts are long).
        for mut s in held {
            assert!(!closed_within(&mut s, Duration::from_millis(100)).0);
        }
    }
    assert!(n.logged("api", "refused_total_limit").0 == 0);
}

/// With 256 open files, an attacker holding 240 idle connections from one address (the attack
/// seen in issue #12) takes only its per-address share; health checks and request creation from
/// another address keep working, and the node fits its limits to the open-files limit.
fn low_open_files(db: Option<&str>, name: &str) {
    let mut n = TestNode::new(
        name,
        db,
        &[("header_timeout_seconds", 120), ("handshake_timeout_seconds", 120)],
    );
    n.start(Some(256));
    assert!(
        n.log_text()
            .contains("connection limits lowered to fit the open-files limit"),
        "{}",
        n.log_text()
    );
    let mut attack = Vec::new();
    for addr in [n.api_addr(), n.fed_addr()] {
        for _ in 0..240 {
            if let Some(s) = connect_from(source(2), addr) {
                attack.push(s);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..10 {
        assert_eq!(n.health_from(source(1)), Some(200), "health check {i}");
    }
    assert_eq!(n.create_request_from(source(1), "FBI-2026-0301"), Some(201));
    let (refused, _) = n.wait_logged("api", "refused_address_limit", 1);
    assert!(refused >= 240 - 64, "{refused}");
    drop(attack);
    assert!(
        n.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the node exited"
    );
}

#[test]
fn low_open_files_limit_keeps_the_node_answering_on_sqlite() {
    low_open_files(None, "nofile-sqlite");
}

#[test]
fn low_open_files_limit_keeps_the_node_answering_on_postgresql() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(liaison_service::fixtures::postgres_url()) else {
        return;
    };
    low_open_files(Some(&url), "nofile-pg");
}

/// SIGTERM still stops the node gracefully (exit 0, "stopped") while connections are open: an
/// idle one, a half-sent request and a connection without a TLS handshake do not hold it up
/// past their timeouts.
#[test]
fn graceful_shutdown_with_open_connections() {
    let mut n = TestNode::new("shutdown", None, &[("header_timeout_seconds", 3)]);
    n.start(None);
    let _idle = connect_from(source(2), n.api_addr()).unwrap();
    let mut half = connect_from(source(2), n.api_addr()).unwrap();
    half.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: node\r\n")
        .unwrap();
    let _fed = connect_from(source(2), n.fed_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = n.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = n.child.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the node did not stop:\n{}",
            n.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}:\n{}", n.log_text());
    assert!(n.log_text().contains("stopped"), "{}", n.log_text());
    n.child = None;
    assert!(closed_within(&mut half, Duration::from_secs(1)).0);
}
