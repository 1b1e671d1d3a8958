//! A keep-alive HTTP/1 client for one upstream whose connections are driven by the requests using
//! them. A general client (hyper's pooled one) runs each connection as a task of its own and hands
//! every request and response across through channels, two task wake-ups per request on a proxy's
//! hottest path. Here the request's own task polls the connection while it waits for the head, and
//! the response body polls it while the body streams; once the body has ended, the connection goes
//! back to the pool, idle and unpolled, until the next request takes it.
//!
//! Idle connections are kept per thread: a socket's readiness comes from the event loop of the runtime
//! that opened it, so a connection taken up on another thread would wake that one for every read.
//!
//! A pooled connection the upstream closed meanwhile is noticed when it is taken (its driver sees the
//! end of the stream) or when the request cannot be written on it: hyper then hands the request back,
//! unsent, and it goes out on a new connection. A response body dropped before its end closes its
//! connection (the rest of the body would have to be read first).

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, Uri};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle connections kept per upstream and thread (more are closed when returned).
const MAX_IDLE: usize = 256;

pub struct Pool {
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header of every request.
    host: HeaderValue,
    connect_timeout: Duration,
    idle_timeout: Duration,
    idle: Mutex<HashMap<ThreadId, Vec<(Conn, Instant)>>>,
}

/// One connection: the handle requests are sent through, and the connection itself, which only makes
/// progress while polled.
struct Conn {
    send: http1::SendRequest<Body>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Body>>>,
    /// The driver has completed (the connection is closed): it must not be polled again.
    ended: bool,
}

impl Conn {
    /// Polls the driver unless it has ended; true once it has.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.ended && self.driver.as_mut().poll(cx).is_ready() {
            self.ended = true;
        }
        self.ended
    }

    /// Whether an idle connection can take a request: its driver has not seen the upstream close it.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        !self.drive(&mut cx) && self.send.is_ready()
    }
}

#[derive(Debug)]
pub enum SendError {
    Connect(std::io::Error),
    Http(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Http(e) => write!(f, "{e}"),
        }
    }
}

impl Pool {
    /// A pool for `authority` (`host:port`).
    pub fn new(
        authority: &http::uri::Authority,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Arc<Pool> {
        let address = match authority.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{}:80", authority.host()),
        };
        Arc::new(Pool {
            address,
            host: HeaderValue::from_str(authority.as_str()).expect("an authority is header-safe"),
            connect_timeout,
            idle_timeout,
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// Sends `req` (its URI in origin form) and answers the response, whose body drives the connection.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Body>,
    ) -> Result<Response<Body>, SendError> {
        req.headers_mut()
            .entry(header::HOST)
            .or_insert_with(|| self.host.clone());
        // A request refused unsent by a pooled connection goes once more, on a new connection.
        let (mut conn, reused) = match self.checkout() {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let res = match exchange(&mut conn, req).await {
            Ok(res) => res,
            Err(mut e) => match e.take_message() {
                Some(req) if reused => {
                    conn = self.connect().await?;
                    exchange(&mut conn, req)
                        .await
                        .map_err(|e| SendError::Http(e.into_error()))?
                }
                _ => return Err(SendError::Http(e.into_error())),
            },
        };
        let (parts, body) = res.into_parts();
        let body = Driven {
            body,
            conn: Some(conn),
            pool: self.clone(),
        };
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    /// The most recently returned idle connection still usable; stale ones are closed.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let idle = idle.get_mut(&std::thread::current().id())?;
        while let Some((mut conn, since)) = idle.pop() {
            if since.elapsed() < self.idle_timeout && conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, mut conn: Conn) {
        if !conn.usable() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let idle = idle.entry(std::thread::current().id()).or_default();
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|_| SendError::Connect(std::io::ErrorKind::TimedOut.into()))?
            .map_err(SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (send, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Http)?;
        Ok(Conn {
            send,
            driver: Box::pin(driver),
            ended: false,
        })
    }
}

/// Writes `req` on `conn` and waits for the response head, driving the connection meanwhile.
async fn exchange(
    conn: &mut Conn,
    req: Request<Body>,
) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<Body>>> {
    let mut sent = pin!(conn.send.try_send_request(req));
    let driver = &mut conn.driver;
    let ended = &mut conn.ended;
    poll_fn(|cx| {
        if !*ended && driver.as_mut().poll(cx).is_ready() {
            *ended = true;
        }
        sent.as_mut().poll(cx)
    })
    .await
}

/// Strips the URI to origin form (`/path?query`), as an HTTP/1 request to a server is written.
pub fn origin_form(uri: &Uri) -> Uri {
    uri.path_and_query()
        .map(|p| Uri::from(p.clone()))
        .unwrap_or_else(|| Uri::from_static("/"))
}

/// A response body that drives its connection and returns it to the pool at its end.
struct Driven {
    body: Incoming,
    conn: Option<Conn>,
    pool: Arc<Pool>,
}

impl http_body::Body for Driven {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(conn) = &mut this.conn {
            conn.drive(cx);
        }
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        let done = match &frame {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.body.is_end_stream(),
            Poll::Ready(Some(Err(_))) => {
                this.conn = None;
                false
            }
            Poll::Pending => false,
        };
        if done {
            if let Some(mut conn) = this.conn.take() {
                // the driver moves to idle once it has seen the end of the body
                conn.drive(cx);
                this.pool.checkin(conn);
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A raw HTTP/1 server on loopback answering every request with `reply(request head, body)`;
    /// counts the connections it accepted. `close_after` closes each connection after that many
    /// answers, without saying so (as an upstream's idle timeout does).
    async fn upstream(close_after: usize) -> (http::uri::Authority, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    for _ in 0..close_after {
                        let Some((head, body)) = read_request(&mut s).await else {
                            return;
                        };
                        let text = format!("{}|{}", head.lines().next().unwrap_or(""), body.len());
                        let host = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("host: ")
                                    .or_else(|| l.strip_prefix("Host: "))
                            })
                            .unwrap_or("-")
                            .to_string();
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-host: {host}\r\nconnection: keep-alive\r\n\r\n{text}",
                            text.len()
                        );
                        if s.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr.to_string().parse().unwrap(), accepted)
    }

    /// One request's head and its `content-length` body.
    async fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            buf.push(byte[0]);
        }
        let head = String::from_utf8(buf).ok()?;
        let len = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_string)
            })
            .map_or(0, |v| v.trim().parse().unwrap_or(0));
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.ok()?;
        Some((head, body))
    }

    async fn get(pool: &Arc<Pool>, path: &str, body: Vec<u8>) -> (String, String) {
        let req = Request::builder()
            .method(if body.is_empty() { "GET" } else { "POST" })
            .uri(path)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        let res = pool.send(req).await.unwrap();
        let host = res.headers()["x-host"].to_str().unwrap().to_string();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (String::from_utf8(bytes.to_vec()).unwrap(), host)
    }

    fn pool(authority: &http::uri::Authority) -> Arc<Pool> {
        Pool::new(authority, Duration::from_secs(2), Duration::from_secs(60))
    }

    #[tokio::test]
    async fn one_connection_carries_sequential_requests_and_bodies() {
        let (authority, accepted) = upstream(usize::MAX).await;
        let pool = pool(&authority);
        for i in 0..20 {
            let (text, host) = get(&pool, &format!("/f/{i}?q=1"), vec![7u8; i * 1000]).await;
            assert_eq!(
                text,
                format!(
                    "{} /f/{i}?q=1 HTTP/1.1|{}",
                    if i == 0 { "GET" } else { "POST" },
                    i * 1000
                )
            );
            assert_eq!(host, authority.as_str(), "Host is the upstream's");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "kept alive");
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced_without_failing_a_request() {
        let (authority, accepted) = upstream(1).await;
        let pool = pool(&authority);
        for i in 0..5 {
            let (text, _) = get(&pool, &format!("/{i}"), Vec::new()).await;
            assert_eq!(text, format!("GET /{i} HTTP/1.1|0"));
            // let the close reach us sometimes before the next request, sometimes not
            if i % 2 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let (authority, accepted) = upstream(usize::MAX).await;
        let pool = pool(&authority);
        let res = pool
            .send(Request::get("/a").body(Body::empty()).unwrap())
            .await
            .unwrap();
        drop(res);
        let (text, _) = get(&pool, "/b", Vec::new()).await;
        assert_eq!(text, "GET /b HTTP/1.1|0");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "the half-read connection was not reused"
        );
        let (text, _) = get(&pool, "/c", Vec::new()).await;
        assert_eq!(text, "GET /c HTTP/1.1|0");
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a fully read one was");
    }

    #[tokio::test]
    async fn an_upstream_that_is_down_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: http::uri::Authority =
            listener.local_addr().unwrap().to_string().parse().unwrap();
        drop(listener);
        let err = pool(&authority)
            .send(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Connect(_)), "{err}");
    }
}
