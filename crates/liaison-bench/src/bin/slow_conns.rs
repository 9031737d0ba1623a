//! The attacker of the connection benchmark (bench/conns): holds N connections open against one
//! address, idle or trickling, and opens a new one whenever one is cut.
//!
//! ```sh
//! slow-conns --addr 127.0.0.1:8640 --connections 1000 --mode trickle --duration 30
//! ```
//!
//! Modes: `idle` connects and sends nothing; `trickle` sends the start of an HTTP request and
//! then one header byte every `--interval` seconds, never finishing it; `tls-trickle` sends the
//! header of a 512-byte TLS handshake record and then one byte of it every `--interval` seconds
//! (a handshake that never finishes). The connections come from `--sources` loopback addresses
//! (127.0.0.2, 127.0.0.3, …), as from that many hosts, so a per-address limit does not stop them
//! all. Every `--report` seconds, and at the end, one line: connections open, opened, cut by
//! the server, failed to connect.

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Connect and send nothing.
    Idle,
    /// Send `GET / HTTP/1.1\r\n` and then one header byte every interval.
    Trickle,
    /// Send a TLS record header and then one byte of the record every interval.
    TlsTrickle,
}

#[derive(Parser, Debug)]
#[command(about = "Holds many idle or slow connections against an address (loopback benchmark attacker)")]
struct Args {
    /// Address to attack (loopback only).
    #[arg(long)]
    addr: SocketAddr,
    /// Connections to hold.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    #[arg(long, value_enum, default_value_t = Mode::Idle)]
    mode: Mode,
    /// Seconds between two trickled bytes.
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// Source addresses to spread the connections over: 127.0.0.2 onwards.
    #[arg(long, default_value_t = 20)]
    sources: u8,
    /// Seconds to run.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds between two report lines.
    #[arg(long, default_value_t = 5)]
    report: u64,
    /// Milliseconds to wait before reconnecting a cut connection.
    #[arg(long, default_value_t = 100)]
    reconnect_ms: u64,
}

#[derive(Default)]
struct Stats {
    open: AtomicU64,
    opened: AtomicU64,
    cut: AtomicU64,
    failed: AtomicU64,
}

impl Stats {
    fn line(&self, t: Duration) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "t={:.0}s open={} opened={} cut={} connect_failed={}",
            t.as_secs_f64(),
            g(&self.open),
            g(&self.opened),
            g(&self.cut),
            g(&self.failed)
        )
    }
}

/// One connection slot: connects from `source`, holds the connection as the mode says until
/// the server closes it, and starts again.
async fn slot(args: Arc<Args>, source: Ipv4Addr, stats: Arc<Stats>, end: Instant) {
    let interval = Duration::from_secs_f64(args.interval.max(0.01));
    while Instant::now() < end {
        let sock = match tokio::net::TcpSocket::new_v4() {
            Ok(s) => s,
            Err(_) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(args.reconnect_ms)).await;
                continue;
            }
        };
        let connected = match sock.bind(SocketAddr::from((source, 0))) {
            Ok(()) => tokio::time::timeout(Duration::from_secs(5), sock.connect(args.addr)).await,
            Err(e) => Ok(Err(e)),
        };
        let mut tcp = match connected {
            Ok(Ok(t)) => t,
            _ => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(args.reconnect_ms)).await;
                continue;
            }
        };
        stats.opened.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let opening: &[u8] = match args.mode {
            Mode::Idle => b"",
            Mode::Trickle => b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n",
            // A TLS handshake record of 512 bytes whose body never comes.
            Mode::TlsTrickle => &[0x16, 0x03, 0x01, 0x02, 0x00],
        };
        let mut alive = tcp.write_all(opening).await.is_ok();
        let mut buf = [0u8; 1024];
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut byte = 0usize;
        while alive {
            tokio::select! {
                r = tcp.read(&mut buf) => {
                    // The server answered (an error status) or closed: either way it is cut.
                    if !matches!(r, Ok(n) if n > 0) {
                        alive = false;
                    }
                }
                _ = tick.tick(), if args.mode != Mode::Idle => {
                    let b: &[u8] = match args.mode {
                        Mode::Trickle => &[b"X-a: b\r\n"[byte % 8]],
                        _ => &[0u8],
                    };
                    byte += 1;
                    alive = tcp.write_all(b).await.is_ok();
                }
                _ = tokio::time::sleep_until(end.into()) => {
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        stats.open.fetch_sub(1, Ordering::Relaxed);
        stats.cut.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(args.reconnect_ms)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    if !args.addr.ip().is_loopback() {
        bail!("--addr must be a loopback address: this tool attacks only this machine");
    }
    if args.sources == 0 || args.sources > 250 {
        bail!("--sources must be 1 to 250");
    }
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i % args.sources as usize) as u8);
        tasks.push(tokio::spawn(slot(args.clone(), source, stats.clone(), end)));
        // Open them at about 2,000 per second rather than all in one burst.
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut every = tokio::time::interval(Duration::from_secs(args.report.max(1)));
    every.tick().await;
    while Instant::now() < end {
        tokio::select! {
            _ = every.tick() => eprintln!("slow-conns {:?} {}: {}", args.mode, args.addr, stats.line(start.elapsed())),
            _ = tokio::time::sleep_until(end.into()) => {}
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "slow-conns {:?} {} done: {}",
        args.mode,
        args.addr,
        stats.line(start.elapsed())
    );
    Ok(())
}
