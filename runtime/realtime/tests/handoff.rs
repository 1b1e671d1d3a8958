//! The hand-over the gateway will do: its handler builds a new request for the service (headers
//! chosen, `Authorization` replaced by its minted token, the path below `/realtime/v1`) and calls
//! realtime's router in-process with `oneshot`. A WebSocket upgrade survives that only if the new
//! request carries the original's hyper `OnUpgrade` extension and its `Connection`/`Upgrade`
//! headers; this test stands in for the gateway (a stand-in, not the gateway: its route is being
//! reshaped elsewhere) and proves the upgrade then works end to end on a real socket.

mod support;

use axum::extract::Request;
use axum::Router;
use realtime::protocol::Vsn;
use realtime::RealtimeConfig;
use serde_json::json;
use std::time::Duration;
use supactl_common::server::{serve, ServerConfig};
use support::{json_of, Client, Project, Replica};
use testkit::ControlPlane;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// What a gateway forwards to realtime for `…/realtime/v1/<rest>`.
fn forward(
    req: Request,
    inner: Router,
    project: &Project,
) -> impl std::future::Future<Output = axum::response::Response> {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path()
        .strip_prefix("/realtime/v1")
        .unwrap_or("/")
        .to_owned();
    let uri = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut out = http::Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(body)
        .unwrap();
    for (name, value) in parts.headers.iter() {
        // The gateway's hop-by-hop filter, except that an upgrade keeps Connection and Upgrade.
        if !matches!(
            name.as_str(),
            "host" | "authorization" | "apikey" | "content-length"
        ) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out.headers_mut().insert(
        realtime::PROJECT_HEADER,
        project.project_ref.parse().unwrap(),
    );
    out.headers_mut().insert(
        "authorization",
        format!("Bearer {}", project.token("anon")).parse().unwrap(),
    );
    if let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
        out.extensions_mut().insert(on_upgrade);
    }
    async move { inner.oneshot(out).await.unwrap() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_survives_an_in_process_hand_over() {
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    let p = std::sync::Arc::new(Project::create(&cp, "rthandoff").await);
    let replica = Replica::start(&cp, RealtimeConfig::default()).await;
    let inner = realtime::router(replica.realtime.clone());
    let project = p.clone();
    let gateway = Router::new().fallback(move |req: Request| forward(req, inner.clone(), &project));
    let (listener, url) = testkit::listen().await;
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        gateway,
        ServerConfig::default(),
        shutdown.clone(),
    ));

    // The client addresses the gateway's path; the stand-in injects the project and the token.
    let front = Replica {
        url: format!("{url}/realtime/v1"),
        realtime: replica.realtime.clone(),
        shutdown: shutdown.clone(),
    };
    let mut c = Client::connect(&front, &p, Vsn::V2, "anon").await;
    c.join("realtime:through", json!({"broadcast": {"self": true}}))
        .await;
    c.push(
        Some("1"),
        "realtime:through",
        "broadcast",
        json!({"type": "broadcast", "event": "e", "payload": {"ok": true}}),
    )
    .await;
    let echo = c.recv_event("broadcast").await;
    assert_eq!(json_of(&echo)["payload"], json!({"ok": true}));
    c.push(None, "phoenix", "heartbeat", json!({})).await;
    assert_eq!(json_of(&c.recv_event("phx_reply").await)["status"], "ok");
    // The socket outlives the server's request deadline machinery: still served after a pause.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.push(None, "phoenix", "heartbeat", json!({})).await;
    assert_eq!(json_of(&c.recv_event("phx_reply").await)["status"], "ok");
}
