//! The bounded accept loop both listeners use (the API over plain HTTP, the federation endpoints
//! over TLS): every connection is held to a TLS handshake timeout, a header timeout, a request
//! timeout and an idle timeout, and the listener to a total and a per-address connection limit.
//!
//! A connection is always in one of three phases, watched by its own task:
//! - **head**: waiting for a request's headers — from accept (after the TLS handshake) and from
//!   the first byte of each later request; closed after `header_timeout`;
//! - **busy**: a request is being handled; it is answered `408` after `request_timeout` (reading
//!   a slow body included) and the connection is dropped if it is still busy 5 s later;
//! - **idle**: kept alive between requests, or writing a response nobody reads; closed after
//!   `idle_timeout` without a byte moving.
//!
//! Connections over a limit are closed at once, before any byte is read. Refusals, timeouts and
//! accept errors are counted and reported in one structured log line per listener at most every
//! 10 seconds, never one line per connection.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How long a busy connection may outlive its request's `408` before it is dropped.
const BUSY_GRACE: Duration = Duration::from_secs(5);
/// Reporting period of the counters.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) a connection buffers.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// File descriptors kept for the database, files and outgoing connections when the limits are
/// fitted to the process's open-files limit.
const FD_RESERVE: u64 = 64;

/// The bounds of one listener (`[limits]` in `liaison.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// TLS listener only: the handshake must finish within this.
    pub handshake_timeout: Duration,
    /// A request's headers must have arrived within this, counted from accept or from the
    /// request's first byte.
    pub header_timeout: Duration,
    /// A request (its body included) must be answered within this, or it is answered 408.
    pub request_timeout: Duration,
    /// A connection with no request in progress and no byte moving is closed after this.
    pub idle_timeout: Duration,
    /// Connections open at once on the listener; more are closed at accept.
    pub max_connections: usize,
    /// Connections open at once from one IP address; more are closed at accept.
    pub max_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_per_address: 64,
        }
    }
}

impl Limits {
    /// These limits with `max_connections` (and `max_per_address` with it) lowered so that
    /// `listeners` listeners at their limits fit in the process's open-files limit, keeping
    /// [`FD_RESERVE`] descriptors for everything else. Returns the limits and whether they were
    /// lowered. Where the open-files limit cannot be read (not Linux) the limits are kept.
    pub fn fitted_to_open_files(self, listeners: u64) -> (Limits, bool) {
        match open_files_limit() {
            Some(n) => self.fitted_to(n, listeners),
            None => (self, false),
        }
    }

    /// How long a connection may stay in `phase`.
    fn bound(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Head => self.header_timeout,
            Phase::Busy => self.request_timeout + BUSY_GRACE,
            Phase::Idle => self.idle_timeout,
        }
    }

    fn fitted_to(self, open_files: u64, listeners: u64) -> (Limits, bool) {
        let budget = open_files.saturating_sub(FD_RESERVE) / listeners.max(1);
        let budget = usize::try_from(budget).unwrap_or(usize::MAX).max(1);
        if self.max_connections <= budget {
            return (self, false);
        }
        let mut l = self;
        l.max_connections = budget;
        l.max_per_address = l.max_per_address.min(budget);
        (l, true)
    }
}

/// The soft open-files limit of this process, from `/proc/self/limits`.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How a listener's connections are taken before HTTP starts.
#[derive(Clone)]
pub enum Transport {
    /// Plain HTTP (the API, meant for loopback or behind a TLS proxy).
    Plain,
    /// TLS (the federation endpoints).
    Tls(tokio_rustls::TlsAcceptor),
}

/// Counters of one listener, reported every [`REPORT_EVERY`] and readable by tests.
#[derive(Debug, Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub refused_total_limit: AtomicU64,
    pub refused_address_limit: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub request_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub accept_errors: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    accepted: u64,
    refused_total_limit: u64,
    refused_address_limit: u64,
    handshake_timeouts: u64,
    handshake_failures: u64,
    header_timeouts: u64,
    request_timeouts: u64,
    idle_timeouts: u64,
    accept_errors: u64,
}

impl Counters {
    fn snapshot(&self) -> Snapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            accepted: g(&self.accepted),
            refused_total_limit: g(&self.refused_total_limit),
            refused_address_limit: g(&self.refused_address_limit),
            handshake_timeouts: g(&self.handshake_timeouts),
            handshake_failures: g(&self.handshake_failures),
            header_timeouts: g(&self.header_timeouts),
            request_timeouts: g(&self.request_timeouts),
            idle_timeouts: g(&self.idle_timeouts),
            accept_errors: g(&self.accept_errors),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Open connections per peer address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerAddress`], given back on drop.
struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut t = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = t.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut t = self.table.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = t.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// A listener to serve: its socket, its name in logs, its limits and how connections start.
pub struct Listener {
    pub listener: TcpListener,
    pub name: &'static str,
    pub limits: Limits,
    pub transport: Transport,
}

/// Serves `app` on `l` until `shutdown` resolves, then stops accepting, lets every connection
/// finish its request in progress, and returns once they are closed (or after the request
/// timeout and its grace, whichever comes first).
pub async fn serve(l: Listener, app: Router, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
    serve_counted(l, app, shutdown, Arc::new(Counters::default())).await
}

/// [`serve`], counting into `counters`.
pub async fn serve_counted(
    l: Listener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
    counters: Arc<Counters>,
) -> std::io::Result<()> {
    let Listener {
        listener,
        name,
        limits,
        transport,
    } = l;
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let per_address = Arc::new(PerAddress::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut report = tokio::time::interval(REPORT_EVERY);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = Snapshot::default();
    let mut accept_backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            _ = report.tick() => {
                reported = report_counters(name, &counters, reported);
                continue;
            }
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => {
                accept_backoff = Duration::ZERO;
                c
            }
            Err(e) => {
                bump(&counters.accept_errors);
                // Out of descriptors or memory: the pending connection stays queued, so accepting
                // again at once would spin. Back off (up to 1 s) and let connections close.
                if is_connection_error(&e) {
                    continue;
                }
                accept_backoff = (accept_backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tracing::debug!(listener = name, error = %e, backoff_ms = accept_backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(accept_backoff) => {}
                }
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            bump(&counters.refused_total_limit);
            drop(tcp);
            continue;
        };
        let Some(slot) = per_address.take(peer.ip(), limits.max_per_address.max(1)) else {
            bump(&counters.refused_address_limit);
            drop(tcp);
            continue;
        };
        bump(&counters.accepted);
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            app: app.clone(),
            peer,
            limits,
            counters: counters.clone(),
            stop: stop_rx.clone(),
            _permit: permit,
            _slot: slot,
        };
        let transport = transport.clone();
        tokio::spawn(conn.run(tcp, transport));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Wait for the connections: each holds a permit until it closes.
    let wait = permits.acquire_many(u32::try_from(max).unwrap_or(u32::MAX));
    let bound = limits.request_timeout + BUSY_GRACE + limits.handshake_timeout;
    if tokio::time::timeout(bound, wait).await.is_err() {
        tracing::warn!(
            listener = name,
            open = max - permits.available_permits(),
            "connections still open at shutdown"
        );
    }
    report_counters(name, &counters, reported);
    Ok(())
}

/// Errors of one pending connection (it was reset before accept): not worth a pause.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused)
}

/// Logs what changed since `last`, as fields, and returns the new snapshot.
fn report_counters(name: &'static str, c: &Counters, last: Snapshot) -> Snapshot {
    let now = c.snapshot();
    if now == last {
        return now;
    }
    let d = |f: fn(&Snapshot) -> u64| f(&now) - f(&last);
    let refused = d(|s| s.refused_total_limit) + d(|s| s.refused_address_limit);
    let cut =
        d(|s| s.handshake_timeouts) + d(|s| s.header_timeouts) + d(|s| s.request_timeouts) + d(|s| s.idle_timeouts);
    let fields = (
        d(|s| s.accepted),
        d(|s| s.refused_total_limit),
        d(|s| s.refused_address_limit),
        d(|s| s.handshake_timeouts),
        d(|s| s.handshake_failures),
        d(|s| s.header_timeouts),
        d(|s| s.request_timeouts),
        d(|s| s.idle_timeouts),
        d(|s| s.accept_errors),
    );
    macro_rules! emit {
        ($lvl:ident) => {
            tracing::$lvl!(
                listener = name,
                period_s = REPORT_EVERY.as_secs(),
                accepted = fields.0,
                refused_total_limit = fields.1,
                refused_address_limit = fields.2,
                handshake_timeouts = fields.3,
                handshake_failures = fields.4,
                header_timeouts = fields.5,
                request_timeouts = fields.6,
                idle_timeouts = fields.7,
                accept_errors = fields.8,
                "connection limits"
            )
        };
    }
    if refused > 0 || fields.8 > 0 {
        emit!(warn);
    } else if cut > 0 {
        emit!(info);
    } else {
        emit!(debug);
    }
    now
}

/// Where a connection is (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Instant,
    busy: usize,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks a connection busy while a request is handled.
struct BusyGuard(Shared);

impl BusyGuard {
    fn begin(s: &Shared) -> BusyGuard {
        let mut st = lock(s);
        if st.busy == 0 {
            st.since = Instant::now();
        }
        st.busy += 1;
        st.phase = Phase::Busy;
        BusyGuard(s.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut st = lock(&self.0);
        st.busy = st.busy.saturating_sub(1);
        if st.busy == 0 {
            st.phase = Phase::Idle;
            st.since = Instant::now();
        }
    }
}

/// The connection's byte stream, noting progress: a byte read while idle starts a request's
/// head; a byte moving while idle restarts the idle clock.
struct Watched<S> {
    inner: S,
    state: Shared,
}

impl<S> Watched<S> {
    fn moved(&self, read: bool) {
        let mut st = lock(&self.state);
        if st.phase == Phase::Idle {
            st.since = Instant::now();
            if read {
                st.phase = Phase::Head;
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved(true);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved(false);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One accepted connection and what it holds until it closes.
struct Conn {
    app: Router,
    peer: SocketAddr,
    limits: Limits,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
    _slot: AddressSlot,
}

impl Conn {
    async fn run(self, tcp: TcpStream, transport: Transport) {
        match transport {
            Transport::Plain => self.http(tcp).await,
            Transport::Tls(acceptor) => {
                let mut stop = self.stop.clone();
                let handshake = tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(tcp));
                let tls = tokio::select! {
                    r = handshake => r,
                    _ = stop.wait_for(|s| *s) => return,
                };
                match tls {
                    Ok(Ok(tls)) => self.http(tls).await,
                    Ok(Err(e)) => {
                        bump(&self.counters.handshake_failures);
                        tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        bump(&self.counters.handshake_timeouts);
                        tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                    }
                }
            }
        }
    }

    async fn http<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.limits;
        let state: Shared = Arc::new(Mutex::new(State {
            phase: Phase::Head,
            since: Instant::now(),
            busy: 0,
        }));
        let io = hyper_util::rt::TokioIo::new(Watched {
            inner: stream,
            state: state.clone(),
        });
        let svc = {
            let app = hyper_util::service::TowerToHyperService::new(self.app.clone());
            let peer = self.peer;
            let state = state.clone();
            let counters = self.counters.clone();
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let busy = BusyGuard::begin(&state);
                let counters = counters.clone();
                let fut = hyper::service::Service::call(&app, req);
                async move {
                    let answer = tokio::time::timeout(limits.request_timeout, fut).await;
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(match answer {
                        Ok(Ok(r)) => r,
                        Ok(Err(never)) => match never {},
                        Err(_) => {
                            bump(&counters.request_timeouts);
                            request_timeout()
                        }
                    })
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            // The watch below enforces the header and idle timeouts precisely; hyper's own header
            // timer (which also runs while a kept-alive connection waits) is only a backstop.
            .header_read_timeout(limits.header_timeout + limits.idle_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        let conn = builder.serve_connection(io, svc);
        tokio::pin!(conn);
        let mut stop = self.stop.clone();
        let mut stopping = *stop.borrow();
        if stopping {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            let (phase, deadline) = {
                let st = lock(&state);
                (st.phase, st.since + limits.bound(st.phase))
            };
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended");
                    }
                    return;
                }
                _ = stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    // Progress since the deadline was computed moves it; look again.
                    let expired = {
                        let st = lock(&state);
                        st.phase == phase && Instant::now() >= st.since + limits.bound(st.phase)
                    };
                    if !expired {
                        continue;
                    }
                    bump(match phase {
                        Phase::Head => &self.counters.header_timeouts,
                        Phase::Busy => &self.counters.request_timeouts,
                        Phase::Idle => &self.counters.idle_timeouts,
                    });
                    tracing::debug!(peer = %self.peer, phase = ?phase, "connection timed out; closing");
                    return; // dropping the connection closes the socket
                }
            }
        }
    }
}

/// The answer to a request not answered within the request timeout; the connection closes.
fn request_timeout() -> Response<Body> {
    let body = serde_json::json!({
        "type": "https://liaison.example/problems/request-timeout",
        "title": "request timeout",
        "status": 408,
        "detail": "the request was not received and answered in time",
    });
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_the_open_files_limit() {
        let l = Limits::default();
        assert_eq!(l.fitted_to(1_000_000, 2), (l, false));
        let (f, lowered) = l.fitted_to(256, 2);
        assert!(lowered);
        assert_eq!(f.max_connections, 96);
        assert_eq!(f.max_per_address, 64);
        let (f, _) = l.fitted_to(10, 2);
        assert_eq!((f.max_connections, f.max_per_address), (1, 1));
    }

    #[test]
    fn the_open_files_limit_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }
}
