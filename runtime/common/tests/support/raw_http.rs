//! HTTP/1.1 spoken byte by byte over a loopback socket, for tests of what a server does with a connection
//! (shared by the server's own tests and the CLI's tests of `supactl up`).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something that must happen; far above every configured timeout.
pub const BOUND: Duration = Duration::from_secs(30);

pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Reads one response: status, head (lowercase) and body (by content-length).
pub async fn read_response(s: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(BOUND, s.read(&mut chunk))
            .await
            .expect("a response")
            .unwrap();
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(BOUND, s.read(&mut chunk))
            .await
            .expect("a body")
            .unwrap();
        assert!(n > 0, "connection closed in the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    (status, head, body)
}

/// Waits until the server closes the connection (EOF or reset); fails after [`BOUND`].
pub async fn assert_closed(s: &mut TcpStream) {
    let mut chunk = [0u8; 1024];
    let n = tokio::time::timeout(BOUND, s.read(&mut chunk))
        .await
        .expect("the server closes the connection");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "expected a close, got data: {n:?}"
    );
}

/// Sends one request with a JSON body on `s` and reads the response.
#[allow(dead_code)] // not every test binary sends bodies
pub async fn send_json(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    read_response(s).await
}
