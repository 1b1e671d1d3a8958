//! The shared HTTP server over real loopback sockets, spoken to byte by byte: header and idle timeouts,
//! header bounds, the per-request deadline, the connection cap, keep-alive, the peer address and draining.

#[path = "support/raw_http.rs"]
mod raw_http;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use raw_http::{assert_closed, get_request, read_response, BOUND};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::server::{self, RequestDeadline, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

/// Sets its flag when dropped: proves a handler's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn app(dropped: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow",
            get(move || {
                let flag = DropFlag(dropped.clone());
                async move {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    drop(flag);
                    "never"
                }
            }),
        )
        .route(
            "/brief",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        )
        .route("/upgrade", get(upgrade_and_echo))
        .route(
            "/long-lived",
            get(|Extension(d): Extension<RequestDeadline>| async move {
                d.lift();
                tokio::time::sleep(Duration::from_millis(600)).await;
                "still here"
            }),
        )
}

/// Switches protocols (as a WebSocket handshake does), then echoes bytes until the peer leaves.
async fn upgrade_and_echo(mut req: axum::extract::Request) -> axum::response::Response {
    let upgraded = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(io) = upgraded.await else { return };
        let mut io = hyper_util::rt::TokioIo::new(io);
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = io.read(&mut buf).await {
            if io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    axum::response::Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(axum::body::Body::empty())
        .unwrap()
}

fn config() -> ServerConfig {
    ServerConfig {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(600),
        request_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    }
}

async fn start(config: ServerConfig) -> (Server, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let dropped = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(server::serve(
        listener,
        app(dropped.clone()),
        config,
        shutdown.clone(),
    ));
    (
        Server {
            addr,
            shutdown,
            task,
        },
        dropped,
    )
}

#[tokio::test]
async fn half_a_header_is_cut_off_after_the_header_timeout() {
    let (srv, _) = start(config()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: te").await.unwrap();
    assert_closed(&mut s).await;
}

#[tokio::test]
async fn half_a_later_header_on_a_keep_alive_connection_is_cut_off_after_the_header_timeout() {
    // the idle timeout (600 s) cannot be what closes it: the next head's own clock must
    let (srv, _) = start(config()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(get_request("/").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut s).await.0, 200);
    tokio::time::sleep(Duration::from_millis(450)).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: te").await.unwrap();
    let started = std::time::Instant::now();
    assert_closed(&mut s).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_cut_off_after_the_header_timeout() {
    let (srv, _) = start(config()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    assert_closed(&mut s).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (srv, _) = start(ServerConfig {
        idle_timeout: Duration::from_millis(500),
        ..config()
    })
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(get_request("/").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut s).await.0, 200);
    assert_closed(&mut s).await;
}

#[tokio::test]
async fn keep_alive_connections_are_reused_and_idle_ones_outlive_the_header_timeout() {
    let (srv, _) = start(config()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(get_request("/").as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut s).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert!(!head.contains("connection: close"), "{head}");
    // Idle for several header timeouts (but within the idle timeout): a balancer may still send on it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    s.write_all(get_request("/peer").as_bytes()).await.unwrap();
    let (status, _, body) = read_response(&mut s).await;
    assert_eq!(status, 200);
    assert_eq!(body, s.local_addr().unwrap().to_string(), "ConnectInfo");
}

#[tokio::test]
async fn a_handler_past_the_deadline_is_dropped_and_answered_504() {
    let (srv, dropped) = start(config()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(get_request("/slow").as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut s).await;
    assert_eq!(status, 504);
    assert!(head.contains("content-type: application/json"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "request_timeout");
    assert!(v["message"].as_str().unwrap().contains("0.3 s"), "{v}");
    assert!(v.get("details").is_some() && v.get("hint").is_some(), "{v}");
    assert!(
        dropped.load(Ordering::SeqCst),
        "the handler's future is dropped"
    );
    // the connection stays usable
    s.write_all(get_request("/").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut s).await.0, 200);
}

#[tokio::test]
async fn a_lifted_deadline_lets_a_long_lived_handler_finish() {
    let (srv, _) = start(config()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(get_request("/long-lived").as_bytes())
        .await
        .unwrap();
    let (status, _, body) = read_response(&mut s).await;
    assert_eq!((status, body.as_str()), (200, "still here"));
}

#[tokio::test]
async fn oversized_heads_are_refused_with_431() {
    let (srv, _) = start(config()).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(big.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut s).await.0, 431);

    let many: String = (0..=server::MAX_HEADERS)
        .map(|i| format!("X-H{i}: v\r\n"))
        .collect();
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: test\r\n{many}\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.0, 431);
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_waits_for_a_free_slot() {
    let (srv, _) = start(ServerConfig {
        max_connections: 1,
        ..config()
    })
    .await;
    let mut first = TcpStream::connect(srv.addr).await.unwrap();
    first.write_all(get_request("/").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut first).await.0, 200);
    // The kernel completes the handshake, but the server does not take the connection up.
    let mut second = TcpStream::connect(srv.addr).await.unwrap();
    second.write_all(get_request("/").as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(1000), second.read(&mut byte))
            .await
            .is_err(),
        "no answer while the first connection holds the only slot"
    );
    drop(first);
    assert_eq!(read_response(&mut second).await.0, 200);
}

#[tokio::test]
async fn an_upgraded_connection_keeps_its_place_under_the_cap_until_it_closes() {
    let (srv, _) = start(ServerConfig {
        max_connections: 1,
        ..config()
    })
    .await;
    let mut ws = TcpStream::connect(srv.addr).await.unwrap();
    ws.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: test\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(read_response(&mut ws).await.0, 101);
    ws.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    ws.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping", "the upgraded connection is served");
    // hyper is done with the connection once upgraded; its place is still taken
    let mut second = TcpStream::connect(srv.addr).await.unwrap();
    second.write_all(get_request("/").as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(1000), second.read(&mut byte))
            .await
            .is_err(),
        "no answer while the upgraded connection holds the only slot"
    );
    drop(ws);
    assert_eq!(read_response(&mut second).await.0, 200);
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_then_returns() {
    let (srv, _) = start(ServerConfig {
        request_timeout: Duration::from_secs(60),
        ..config()
    })
    .await;
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    idle.write_all(get_request("/").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut idle).await.0, 200);
    let mut busy = TcpStream::connect(srv.addr).await.unwrap();
    busy.write_all(get_request("/brief").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    srv.shutdown.cancel();
    let (status, head, body) = read_response(&mut busy).await;
    assert_eq!((status, body.as_str()), (200, "done"));
    assert!(head.contains("connection: close"), "{head}");
    assert_closed(&mut idle).await;
    tokio::time::timeout(BOUND, srv.task)
        .await
        .expect("serve returns once drained")
        .unwrap();
    assert!(
        TcpStream::connect(srv.addr).await.is_err(),
        "the listener is closed"
    );
}
