//! The HTTP/1 server every supactl listener runs on (`supactl up`, `supactl serve …`, the testkit's
//! tenant-manager): an axum [`Router`] served by hyper with the limits a public endpoint needs, so that no
//! client can hold the process's connections, memory or handlers indefinitely.
//!
//! Per connection, in the spirit of nginx's `client_header_timeout` / `keepalive_timeout`:
//! - **Header timeout**: a request's head (request line and headers) must arrive within
//!   [`ServerConfig::header_timeout`], counted from the accept for the first request and from the first byte
//!   of each later one; past it the connection is closed (slowloris).
//! - **Idle timeout**: a keep-alive connection with no request in flight and no byte moving for
//!   [`ServerConfig::idle_timeout`] is closed. Rule: it must be longer than the idle timeout of any load
//!   balancer in front (the AWS ALBs: 180 s public, 400 s admin), so the balancer always closes an idle
//!   connection first; a target that closes first races with a request the balancer is sending on that
//!   connection, and the balancer answers that request 502.
//! - **Header bounds**: at most [`ServerConfig::max_header_bytes`] of head and [`MAX_HEADERS`] headers
//!   (hyper answers 431 past either).
//! - **Connection cap**: at most [`ServerConfig::max_connections`] open connections per listener (an
//!   upgraded WebSocket holds its place until it closes); past it the listener stops accepting and new
//!   connections wait in the kernel's backlog.
//!
//! Per request:
//! - **Deadline**: a handler that has not produced its response head within
//!   [`ServerConfig::request_timeout`] is dropped (cancelling whatever it awaits: a dropped REST request
//!   cancels its SQL) and the client gets 504 with the stable code `request_timeout`. A response body
//!   streamed after its head, or a connection upgraded after a `101` (WebSockets), is not under the
//!   deadline. A long-lived handler that must wait longer before its head lifts the deadline through the
//!   [`RequestDeadline`] request extension.
//! - The peer address is available to handlers as axum's `ConnectInfo<SocketAddr>`.
//!
//! Shutdown: when the cancellation token fires the listener stops accepting, idle connections close,
//! in-flight requests finish (each under its deadline), and [`serve`] returns once every connection is closed.

use crate::error::HttpError;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Above the 400 s idle timeout of the admin ALB (see the module's rule).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(420);
/// Supabase's own cap on an API request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Large enough for a JWT with user metadata in `Authorization` beside the usual headers.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// Above the 10,000 realtime WebSockets one process is sized for, plus REST's keep-alive connections
/// (ECS Fargate's default `nofile` limit is 65535).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Headers per request: hyper's parser limit (kept at its default, which parses on the stack).
pub const MAX_HEADERS: usize = 100;
/// The stable error code of a request cut off by its deadline.
pub const REQUEST_TIMEOUT_CODE: &str = "request_timeout";

/// The limits of one listener; see the module documentation for what each one bounds.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then drains: returns once every connection
/// has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServerConfig,
    shutdown: CancellationToken,
) {
    let config = Arc::new(config);
    let mut h1 = http1::Builder::new();
    // Our own header timeout replaces hyper's, which also runs while a keep-alive connection is idle.
    h1.header_read_timeout(None)
        .max_header_size(config.max_header_bytes);
    let mut cap = Cap::new(config.max_connections);
    let connections = TaskTracker::new();
    while let Some(permit) = cap.admit(&shutdown).await {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Responses are written whole; Nagle's algorithm would only delay them.
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            h1: h1.clone(),
            app: app.clone(),
            config: config.clone(),
            shutdown: shutdown.clone(),
        };
        connections.spawn(conn.run(stream, peer, permit));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Serves `app` on `listener` as [`serve`] does, from `threads` single-threaded runtimes of their own, each
/// on an OS thread accepting from the same socket, as nginx's workers do: a connection, its requests and
/// the tasks they spawn stay on the thread that accepted it, so no request is handed between threads (on
/// a work-stealing runtime every wake-up across its workers is a futex call and a context switch, a third
/// of a proxied request's CPU time). The connection cap is shared out between the threads. Returns once
/// every thread has drained.
pub async fn serve_per_core(
    listener: TcpListener,
    app: Router,
    config: ServerConfig,
    shutdown: CancellationToken,
    threads: usize,
) -> io::Result<()> {
    let socket = listener.into_std()?;
    let threads = threads.max(1);
    let per_thread = ServerConfig {
        max_connections: (config.max_connections / threads).max(1),
        ..config
    };
    let mut done = Vec::with_capacity(threads);
    for i in 0..threads {
        let socket = socket.try_clone()?;
        let (app, config, shutdown) = (app.clone(), per_thread.clone(), shutdown.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("supactl-serve-{i}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a serving thread's runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(socket) {
                        Ok(l) => serve(l, app, config, shutdown).await,
                        Err(e) => tracing::error!(error = %e, "cannot listen on a serving thread"),
                    }
                });
                drop(tx);
            })?;
        done.push(rx);
    }
    for rx in done {
        let _ = rx.await;
    }
    Ok(())
}

/// The connection cap of a listener: one permit per open connection.
struct Cap {
    permits: Arc<Semaphore>,
    max: usize,
    /// Logged once per spell at the cap, not once per connection.
    at_cap: bool,
}

impl Cap {
    fn new(max: usize) -> Cap {
        Cap {
            permits: Arc::new(Semaphore::new(max)),
            max,
            at_cap: false,
        }
    }

    /// A free slot, waiting for one at the cap; None on shutdown.
    async fn admit(&mut self, shutdown: &CancellationToken) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            self.at_cap = false;
            return Some(p);
        }
        if !self.at_cap {
            tracing::warn!(
                max = self.max,
                "listener at its connection cap; new connections wait"
            );
            self.at_cap = true;
        }
        tokio::select! {
            p = self.permits.clone().acquire_owned() => Some(p.expect("the semaphore is never closed")),
            _ = shutdown.cancelled() => None,
        }
    }
}

/// Per-connection accept errors (the peer already left) are skipped; others (out of file descriptors)
/// are logged and retried after a pause rather than spinning.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A handle on the current request's deadline, in every request's extensions.
#[derive(Clone, Default)]
pub struct RequestDeadline {
    lifted: Arc<Notify>,
}

impl RequestDeadline {
    /// Takes the request out from under the deadline: for a long-lived route (a streamed function response,
    /// a long poll) whose head may come later than the deadline allows. The connection's idle timeout no
    /// longer applies either while it runs; the route bounds itself.
    pub fn lift(&self) {
        self.lifted.notify_one();
    }
}

struct Connection {
    h1: http1::Builder,
    app: Router,
    config: Arc<ServerConfig>,
    shutdown: CancellationToken,
}

/// Why the watchdog closed a connection.
#[derive(Debug, PartialEq, Eq)]
enum Expired {
    Header,
    Idle,
}

impl Connection {
    async fn run(self, stream: TcpStream, peer: SocketAddr, permit: OwnedSemaphorePermit) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
            _slot: permit,
        });
        let (app, timeout, busy) = (self.app, self.config.request_timeout, activity.clone());
        let service = hyper::service::service_fn(move |req| {
            handle(req, app.clone(), peer, busy.clone(), timeout)
        });
        let mut conn = pin!(self.h1.serve_connection(io, service).with_upgrades());
        let mut draining = false;
        // One timer per connection, reset rather than made anew; it fires at least every header timeout,
        // so a request head that starts arriving is put under its clock without the reads waking anyone.
        let mut check = pin!(tokio::time::sleep(self.config.header_timeout));
        loop {
            let now = activity.now();
            let recheck = now.saturating_add(self.config.header_timeout.as_millis() as u64);
            let wake = match activity.deadline(&self.config) {
                Some((ms, Expired::Header)) => ms,
                Some((ms, Expired::Idle)) => ms.min(recheck),
                None => recheck,
            };
            check.as_mut().reset(activity.at(wake));
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = self.shutdown.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = check.as_mut() => {
                    if let Some((ms, why)) = activity.deadline(&self.config) {
                        if activity.now() >= ms {
                            tracing::debug!(%peer, ?why, "closing connection");
                            return;
                        }
                    }
                }
            }
        }
    }
}

async fn handle(
    mut req: Request<Incoming>,
    app: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    timeout: Duration,
) -> Result<Response, Infallible> {
    let _busy = activity.begin_request();
    let deadline = RequestDeadline::default();
    req.extensions_mut().insert(ConnectInfo(peer));
    req.extensions_mut().insert(deadline.clone());
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let call = app.oneshot(req.map(Body::new));
    let res = match with_deadline(call, timeout, &deadline).await {
        Some(Ok(res)) => res,
        Some(Err(never)) => match never {},
        None => {
            // the path only: a query string may carry values a log must not hold
            tracing::warn!(%method, path = uri.path(), "request deadline exceeded; handler cancelled");
            timeout_error(timeout).into_response()
        }
    };
    Ok(res)
}

/// Runs `fut` until it completes, or `None` once `timeout` has passed (unless the deadline was lifted
/// first); `fut` is dropped then.
async fn with_deadline<F: Future>(
    fut: F,
    timeout: Duration,
    deadline: &RequestDeadline,
) -> Option<F::Output> {
    let mut fut = pin!(fut);
    tokio::select! {
        biased;
        out = &mut fut => return Some(out),
        _ = deadline.lifted.notified() => {}
        _ = tokio::time::sleep(timeout) => return None,
    }
    Some(fut.await)
}

/// The 504 of a request cut off by its deadline.
fn timeout_error(timeout: Duration) -> HttpError {
    HttpError::new(
        StatusCode::GATEWAY_TIMEOUT,
        REQUEST_TIMEOUT_CODE,
        format!(
            "the request did not complete within {} s and was cancelled",
            timeout.as_secs_f64()
        ),
    )
}

/// What the watchdog knows of a connection: requests in flight and when bytes last moved, as
/// milliseconds since the accept.
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    last_io: AtomicU64,
    /// When the head of the next request started arriving ([`NONE`] while none is); the accept for the
    /// first request.
    head_since: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Bytes read with no request in flight belong to the next request's head. (So does the tail of a
    /// request body that hyper discards after its handler answered without reading it: the connection
    /// is then under the header timeout, not the idle one, which only shortens its life.)
    fn on_read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_since
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Marks a request in flight (its head has been parsed) until the guard drops.
    fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NONE, Ordering::Release);
        InFlight(self.clone())
    }

    /// When (ms since the accept) the connection expires and why; none while a request is in flight.
    fn deadline(&self, c: &ServerConfig) -> Option<(u64, Expired)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let after = |start: u64, d: Duration| start.saturating_add(d.as_millis() as u64);
        Some(match self.head_since.load(Ordering::Acquire) {
            NONE => (
                after(self.last_io.load(Ordering::Relaxed), c.idle_timeout),
                Expired::Idle,
            ),
            since => (after(since, c.header_timeout), Expired::Header),
        })
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.on_write();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket, reporting reads and writes to its [`Activity`]. It holds the connection's
/// place under the cap: an upgraded connection (a WebSocket) outlives [`Connection::run`] inside hyper's
/// `Upgraded`, and keeps its place until that is dropped.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(100),
            ..ServerConfig::default()
        }
    }

    #[test]
    fn a_new_connection_is_under_the_header_timeout_from_its_accept() {
        let a = Activity::new();
        assert_eq!(a.deadline(&config()), Some((10_000, Expired::Header)));
    }

    #[test]
    fn a_request_in_flight_never_expires_and_then_the_idle_clock_runs_from_its_end() {
        let a = Arc::new(Activity::new());
        let busy = a.begin_request();
        a.on_read(); // its body
        assert_eq!(a.deadline(&config()), None);
        drop(busy);
        a.last_io.store(50_000, Ordering::Relaxed);
        assert_eq!(a.deadline(&config()), Some((150_000, Expired::Idle)));
    }

    #[test]
    fn the_first_byte_of_the_next_request_starts_its_header_clock() {
        let a = Arc::new(Activity::new());
        drop(a.begin_request());
        a.on_read();
        assert!(matches!(a.deadline(&config()), Some((_, Expired::Header))));
        // later bytes of the same head do not restart it
        a.head_since.store(40_000, Ordering::Relaxed);
        a.on_read();
        assert_eq!(a.deadline(&config()), Some((50_000, Expired::Header)));
    }

    #[tokio::test]
    async fn a_lifted_deadline_lets_the_handler_finish() {
        let d = RequestDeadline::default();
        let stuck = std::future::pending::<()>();
        assert_eq!(
            with_deadline(stuck, Duration::from_millis(10), &d).await,
            None
        );
        let long = async {
            d.lift();
            tokio::time::sleep(Duration::from_millis(50)).await;
            7
        };
        assert_eq!(
            with_deadline(long, Duration::from_millis(10), &d).await,
            Some(7)
        );
    }
}
