//! `supactl up` as a user runs it, spoken to over raw sockets: both listeners it assembles (gateway and
//! admin API) enforce the header, idle and request timeouts its flags set, keep-alive still works, its
//! banner says where the admin key is kept instead of printing it, and bad limit flags are usage errors.

#[path = "../../runtime/common/tests/support/raw_http.rs"]
mod raw_http;
#[path = "support/up.rs"]
mod up;

use raw_http::{assert_closed, get_request, read_response, send_json};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use up::Up;

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_serves_both_listeners_with_its_timeouts_and_keeps_the_admin_key_out_of_its_banner() {
    let mut up = Up::start(&[
        "--header-timeout-secs",
        "1",
        "--idle-timeout-secs",
        "3",
        "--request-timeout-secs",
        "2",
    ]);
    let admin_key = up.admin_key();
    let banner = up.log();
    assert!(
        banner.contains(&format!(
            "admin key:    stored in {}",
            up.data().join("state.json").display()
        )),
        "{banner}"
    );
    assert!(!banner.contains(&admin_key), "the banner prints the key");

    for port in [up.port, up.admin_port] {
        // slowloris: half a header is cut off
        let mut s = connect(port).await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x")
            .await
            .unwrap();
        assert_closed(&mut s).await;

        // keep-alive: an idle connection outlives the header timeout, then the idle timeout closes it
        let mut s = connect(port).await;
        s.write_all(get_request("/health").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_response(&mut s).await.0, 200);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        s.write_all(get_request("/health").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_response(&mut s).await.0, 200, "keep-alive reuse");
        assert_closed(&mut s).await;
    }

    // A request past the deadline: 504 request_timeout, on the admin API and through the gateway.
    let bearer = format!("Bearer {admin_key}");
    let auth = [("Authorization", bearer.as_str())];
    let mut admin = connect(up.admin_port).await;
    let (status, _, body) = send_json(
        &mut admin,
        "POST",
        "/admin/v1/projects",
        &auth,
        r#"{"name": "slow"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let project: Value = serde_json::from_str(&body).unwrap();
    let project_ref = project["data"]["ref"].as_str().unwrap().to_string();
    let secret = project["data"]["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["type"] == "secret")
        .unwrap()["opaque_key"]
        .as_str()
        .unwrap()
        .to_string();
    let query = format!("/admin/v1/projects/{project_ref}/database/query");
    let (status, _, body) = send_json(
        &mut admin,
        "POST",
        &query,
        &auth,
        r#"{"query": "create function public.slow() returns void language sql as 'select pg_sleep(20)'"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send_json(
        &mut admin,
        "POST",
        &query,
        &auth,
        r#"{"query": "select pg_sleep(20)"}"#,
    )
    .await;
    assert_timed_out(status, &body);

    let mut gw = connect(up.port).await;
    let bearer = format!("Bearer {secret}");
    let (status, _, body) = send_json(
        &mut gw,
        "POST",
        &format!("/p/{project_ref}/rest/v1/rpc/slow"),
        &[
            ("apikey", secret.as_str()),
            ("Authorization", bearer.as_str()),
        ],
        "{}",
    )
    .await;
    assert_timed_out(status, &body);

    let code = tokio::task::spawn_blocking(move || up.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

fn assert_timed_out(status: u16, body: &str) {
    assert_eq!(status, 504, "{body}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["code"], "request_timeout", "{v}");
}

#[test]
fn limit_flags_out_of_range_are_usage_errors_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, env, value, says) in [
        (
            "--header-timeout-secs",
            "SUPACTL_HEADER_TIMEOUT_SECS",
            "0",
            "got 0",
        ),
        (
            "--idle-timeout-secs",
            "SUPACTL_IDLE_TIMEOUT_SECS",
            "0",
            "got 0",
        ),
        (
            "--request-timeout-secs",
            "SUPACTL_REQUEST_TIMEOUT_SECS",
            "0",
            "got 0",
        ),
        ("--max-connections", "SUPACTL_MAX_CONNECTIONS", "0", "got 0"),
        (
            "--max-connections",
            "SUPACTL_MAX_CONNECTIONS",
            "2000000",
            "got 2000000",
        ),
        (
            "--realtime-capture-slots",
            "SUPACTL_REALTIME_CAPTURE_SLOTS",
            "1001",
            "0..=1000",
        ),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_supactl"))
            .arg("up")
            .arg("--data-dir")
            .arg(dir.path())
            .env(env, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(flag) && err.contains(says), "{err}");
    }
}
