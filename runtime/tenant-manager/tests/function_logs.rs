//! Function logs as on ECS: two replicas of the functions runtime (real supervisors running real Deno,
//! reading code from a real tenant-manager over its internal API) each serve their internal listener on
//! a loopback address of its own with the same port (the shape of a Cloud Map name with two A records),
//! and the tenant-manager reads them over HTTP ([`functions::RemoteLogs`], attached as
//! [`LogSource::Remote`]). What each replica printed comes back merged by time; the internal listener
//! wants the service token; a replica that does not answer is left out, none answering is an error.
//!
//! The name → several addresses step is Cloud Map's: nothing here resolves one name to two loopback
//! addresses, so the merge over both replicas is read with their addresses given
//! ([`RemoteLogs::get_from`]), and the admin endpoint reads through `localhost`, which resolves to one.

use axum::body::Body;
use bytes::Bytes;
use functions::{Caller, NetPolicy, RemoteConfig, RemoteLogs, RemoteStore, Supervisor};
use functions::{LogRecord, SupervisorConfig};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::http_client::HttpClient;
use tenant_manager::LogSource;
use testkit::ControlPlane;
use tokio::net::TcpListener;

const PROJECT: &str = "fnlogs";

/// The pinned Deno (`$SUPACTL_DENO`, else installed by `scripts/setup.sh deno`).
fn deno() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("SUPACTL_DENO") {
        return p.into();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/setup.sh");
    let out = std::process::Command::new(script)
        .arg("deno")
        .output()
        .expect("run scripts/setup.sh deno");
    assert!(out.status.success(), "scripts/setup.sh deno failed");
    String::from_utf8_lossy(&out.stdout).trim().into()
}

/// One replica: a supervisor and its internal listener on `ip:port`.
struct Replica {
    supervisor: Supervisor,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Replica {
    async fn start(cp: &ControlPlane, listener: TcpListener) -> Replica {
        let dir = tempfile::Builder::new()
            .prefix("fn")
            .tempdir_in("/tmp")
            .unwrap();
        let store = RemoteStore::new(RemoteConfig {
            url: cp.admin_url.clone(),
            service_token: cp.service_token.clone(),
        });
        let config = SupervisorConfig::new(
            deno(),
            dir.path().to_path_buf(),
            NetPolicy::platform(None, &[]),
        );
        let supervisor = Supervisor::new(config, Arc::new(store)).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = functions::internal_router(supervisor.clone(), cp.service_token.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Replica {
            supervisor,
            addr,
            _dir: dir,
        }
    }

    /// Invokes `hello` at `path` (as the gateway would forward it) and returns the body.
    async fn invoke(&self, path: &str) -> String {
        let caller = Caller {
            project_ref: PROJECT.into(),
            jwt_verified: false,
        };
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        let res = self.supervisor.invoke(&caller, "hello", req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// Two listeners on the same port, one on 127.0.0.1 and one on 127.0.0.2.
async fn same_port_pair() -> (TcpListener, TcpListener) {
    for _ in 0..20 {
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = a.local_addr().unwrap().port();
        if let Ok(b) = TcpListener::bind(("127.0.0.2", port)).await {
            return (a, b);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

fn messages(records: &[LogRecord]) -> Vec<&str> {
    records
        .iter()
        .filter(|r| r.level == "log")
        .map(|r| r.message.as_str())
        .collect()
}

async fn get(url: &str, token: &str) -> (StatusCode, Bytes) {
    let req = Request::builder()
        .method(Method::GET)
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    HttpClient::new(Duration::from_secs(5))
        .send(req)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_two_replicas_merge_by_time_and_reach_the_admin_api() {
    let cp = ControlPlane::start("http://127.0.0.1:9/p/{ref}").await;
    cp.create_project("logs", PROJECT).await;
    let (s, v) = cp
        .admin(
            Method::POST,
            &format!("/admin/v1/projects/{PROJECT}/functions"),
            Some(json!({"slug": "hello", "verify_jwt": false, "body":
                "Deno.serve((req) => { const p = new URL(req.url).pathname; console.log(`served ${p}`); return new Response(p); });"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (la, lb) = same_port_pair().await;
    let a = Replica::start(&cp, la).await;
    let b = Replica::start(&cp, lb).await;
    assert_eq!(a.invoke("/hello/first").await, "/hello/first");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(b.invoke("/hello/second").await, "/hello/second");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(a.invoke("/hello/third").await, "/hello/third");

    // the internal listener: health open, logs only with the service token, unknown paths 404
    let base = format!("http://{}", a.addr);
    let logs_path = format!("{base}/internal/v1/functions/{PROJECT}/hello/logs");
    assert_eq!(get(&format!("{base}/health"), "").await.0, StatusCode::OK);
    let (s, body) = get(&logs_path, "not-the-token").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(!String::from_utf8_lossy(&body).contains("served"));
    assert_eq!(
        get(&format!("{base}/hello"), &cp.service_token).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, body) = get(&logs_path, &cp.service_token).await;
    assert_eq!(s, StatusCode::OK);
    let own: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        own["data"].to_string().contains("served /hello/third"),
        "{own}"
    );
    assert!(
        !own["data"].to_string().contains("served /hello/second"),
        "{own}"
    );

    // both replicas, merged by time: each replica's console line and its invocation record
    let remote = RemoteLogs::new(
        &format!("http://localhost:{}", a.addr.port()),
        &cp.service_token,
    )
    .unwrap();
    let both = remote
        .get_from(&[a.addr, b.addr], PROJECT, "hello", 100)
        .await
        .unwrap();
    assert_eq!(
        messages(&both),
        [
            "served /hello/first",
            "served /hello/second",
            "served /hello/third"
        ]
    );
    assert_eq!(both.iter().filter(|r| r.level == "invocation").count(), 3);
    assert!(both
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    // the limit keeps the newest across replicas
    let newest = remote
        .get_from(&[a.addr, b.addr], PROJECT, "hello", 1)
        .await
        .unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0], *both.last().unwrap());

    // a replica that does not answer is left out; none answering is an error
    let gone = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), a.addr.port());
    let partial = remote
        .get_from(&[gone, b.addr], PROJECT, "hello", 100)
        .await
        .unwrap();
    assert_eq!(messages(&partial), ["served /hello/second"]);
    assert!(remote
        .get_from(&[gone], PROJECT, "hello", 100)
        .await
        .is_err());

    // the admin API through the remote source (localhost → replica a)
    cp.tenant_manager
        .set_function_logs(LogSource::Remote(Arc::new(remote)));
    let (s, v) = cp
        .admin(
            Method::GET,
            &format!("/admin/v1/projects/{PROJECT}/functions/hello/logs?limit=10"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let text = v["data"].to_string();
    assert!(
        text.contains("served /hello/first") && text.contains("served /hello/third"),
        "{v}"
    );
    assert!(!text.contains("served /hello/second"), "{v}");
}
