//! The control plane under load and cut off: a burst of project creates is admitted or refused cleanly
//! (never 500, nothing half created) while the data plane keeps serving; and a gateway that loses the
//! tenant-manager keeps serving the projects it knows, within its stale bound, and nothing it was told
//! to forget.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use supactl_common::directory::{Directory, DirectoryConfig, DirectoryError};
use supactl_common::ident::{database_name, login_role};
use testkit::{listen, ControlPlane};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

type Http = Client<HttpConnector, Full<Bytes>>;

fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One HTTP call, with the response's headers.
async fn send(
    http: &Http,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = Full::new(Bytes::from(body.map(|v| v.to_string()).unwrap_or_default()));
    let res = http.request(b.body(body).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (parts.status, parts.headers, v)
}

async fn admin(
    cp: &ControlPlane,
    http: &Http,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let auth = format!("Bearer {}", cp.admin_key);
    let url = format!("{}{path}", cp.admin_url);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    send(http, method, &url, &headers, body).await
}

/// Serves a gateway with in-process REST reading projects through `directory` on `l`.
fn serve_gateway(l: TcpListener, directory: Arc<Directory>) {
    let rest = rest::Rest::new(directory.clone(), rest::RestConfig::default());
    let gw = gateway::Gateway::builder(gateway::GatewayConfig::default(), directory)
        .route(
            gateway::Service::Rest,
            gateway::Upstream::InProcess(rest::router(rest)),
        )
        .build();
    tokio::spawn(async move { axum::serve(l, gateway::router(gw)).await });
}

/// Creates a project with a readable table `items`; returns its publishable key.
async fn project_with_items(cp: &ControlPlane, project_ref: &str) -> String {
    let data = cp.create_project("Steady", project_ref).await;
    let (s, v) = cp
        .admin(
            Method::POST,
            &format!("/admin/v1/projects/{project_ref}/database/query"),
            Some(json!({"query": "create table items (id int primary key); insert into items values (1);
              alter table items enable row level security; create policy read on items for select using (true);"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    data["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["type"] == "publishable")
        .unwrap()["opaque_key"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn read_items(
    http: &Http,
    gateway_url: &str,
    project_ref: &str,
    key: &str,
) -> (StatusCode, Value) {
    let url = format!("{gateway_url}/p/{project_ref}/rest/v1/items");
    let (s, _, v) = send(http, Method::GET, &url, &[("apikey", key)], None).await;
    (s, v)
}

/// Fifty creates at once: each is created (201) or refused with 429/503, a stable code and
/// Retry-After; exactly the created ones exist afterwards (project row, database, login role); and
/// meanwhile an existing project, looked up afresh on every request, keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_creates_is_admitted_or_refused_and_the_data_plane_keeps_serving() {
    let (gw_l, gateway_url) = listen().await;
    let cp = Arc::new(ControlPlane::start(&format!("{gateway_url}/p/{{ref}}")).await);
    // TTL zero and no stale answers: every request below asks the tenant-manager for the key and
    // the project, so it must not wait behind the creates.
    let directory = Arc::new(Directory::new(DirectoryConfig {
        stale_for: Duration::ZERO,
        ..cp.directory_config(Duration::ZERO)
    }));
    serve_gateway(gw_l, directory);
    let anon = project_with_items(&cp, "steady").await;
    let http = http();
    assert_eq!(
        read_items(&http, &gateway_url, "steady", &anon).await.0,
        StatusCode::OK
    );

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (http, done, gateway_url) = (http.clone(), done.clone(), gateway_url.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !done.load(Ordering::SeqCst) || answers.is_empty() {
                answers.push(read_items(&http, &gateway_url, "steady", &anon).await);
            }
            answers
        })
    };
    let refs: Vec<String> = (0..50).map(|i| format!("burst-{i:02}")).collect();
    let creates: Vec<_> = refs
        .iter()
        .map(|r| {
            let (cp, http, r) = (cp.clone(), http.clone(), r.clone());
            tokio::spawn(async move {
                let body = json!({"name": "Burst", "ref": r});
                admin(&cp, &http, Method::POST, "/admin/v1/projects", Some(body)).await
            })
        })
        .collect();
    let mut created = Vec::new();
    for (r, task) in refs.iter().zip(creates) {
        let (status, headers, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created.push(r.clone()),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                let retry: u64 = headers
                    .get("retry-after")
                    .unwrap_or_else(|| panic!("{status} without Retry-After: {body}"))
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1, "{retry}");
                let code = body["code"].as_str().unwrap_or_default();
                assert!(
                    ["provisioning_busy", "platform_busy", "database_unavailable"].contains(&code),
                    "{body}"
                );
                assert!(body["message"].is_string(), "{body}");
            }
            other => panic!("create {r}: {other} {body}"),
        }
    }
    done.store(true, Ordering::SeqCst);
    let answers = reader.await.unwrap();
    for (s, v) in &answers {
        assert_eq!(
            *s,
            StatusCode::OK,
            "a request for an existing project failed: {v}"
        );
    }
    assert!(!created.is_empty(), "no create got through");

    // Exactly the created projects exist, whole: no orphan row, database or role of a refused one.
    let platform = cp.connect("supactl_platform").await;
    let server = cp.connect("postgres").await;
    for r in &refs {
        let want = created.contains(r);
        let row = platform
            .query_opt("SELECT status FROM supactl.projects WHERE ref = $1", &[r])
            .await
            .unwrap()
            .map(|row| row.get::<_, String>(0));
        let db = server
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&database_name(r)],
            )
            .await
            .unwrap();
        let role = server
            .query_opt(
                "SELECT 1 FROM pg_roles WHERE rolname = $1",
                &[&login_role(r)],
            )
            .await
            .unwrap();
        if want {
            assert_eq!(row.as_deref(), Some("ACTIVE_HEALTHY"), "{r}");
        } else {
            assert_eq!(row, None, "{r}: refused but its row exists");
        }
        assert_eq!(
            db.is_some(),
            want,
            "{r}: database exists = {}",
            db.is_some()
        );
        assert_eq!(
            role.is_some(),
            want,
            "{r}: role exists = {}",
            role.is_some()
        );
    }
}

/// Admin work that holds every admin connection makes further admin requests answer 503
/// `platform_busy` with Retry-After (not 500), while the data plane's lookups, on their own pool, go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_do_not_wait_behind_an_exhausted_admin_pool() {
    let (gw_l, gateway_url) = listen().await;
    let cp = Arc::new(ControlPlane::start(&format!("{gateway_url}/p/{{ref}}")).await);
    let directory = Arc::new(Directory::new(DirectoryConfig {
        stale_for: Duration::ZERO,
        ..cp.directory_config(Duration::ZERO)
    }));
    serve_gateway(gw_l, directory);
    let anon = project_with_items(&cp, "steady").await;
    let http = http();

    // With the audit log locked, every admin mutation holds its connection while it waits to write
    // its audit row: as many of them as the admin pool has connections exhaust it.
    let mut locker = cp.connect("supactl_platform").await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE supactl.audit_log IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let pool = tenant_manager::Capacity::default().admin_pool;
    let held: Vec<_> = (0..pool)
        .map(|_| {
            let (cp, http) = (cp.clone(), http.clone());
            tokio::spawn(async move {
                admin(
                    &cp,
                    &http,
                    Method::POST,
                    "/admin/v1/projects/nowhere/pause",
                    None,
                )
                .await
            })
        })
        .collect();
    let watcher = cp.connect("postgres").await;
    for attempt in 0.. {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                   AND query LIKE 'INSERT INTO supactl.audit_log%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting == pool as i64 {
            break;
        }
        assert!(
            attempt < 600,
            "{waiting} of {pool} admin requests are waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (s, headers, v) = admin(&cp, &http, Method::GET, "/admin/v1/projects", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["code"], "platform_busy", "{v}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    let (s, v) = read_items(&http, &gateway_url, "steady", &anon).await;
    assert_eq!(s, StatusCode::OK, "lookups have their own pool: {v}");

    lock.rollback().await.unwrap();
    for h in held {
        assert_eq!(h.await.unwrap().0, StatusCode::NOT_FOUND);
    }
}

/// A loopback TCP proxy that can be cut: afterwards it refuses new connections and has closed the
/// open ones, as a tenant-manager that went away would.
struct Proxy {
    url: String,
    accept: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let target: SocketAddr = target.trim_start_matches("http://").parse().unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let conns = conns.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = l.accept().await {
                    let conn = tokio::spawn(async move {
                        if let Ok(mut out) = TcpStream::connect(target).await {
                            tokio::io::copy_bidirectional(&mut inbound, &mut out)
                                .await
                                .ok();
                        }
                    });
                    conns.lock().unwrap().push(conn);
                }
            })
        };
        Proxy {
            url,
            accept: Mutex::new(Some(accept)),
            conns,
        }
    }

    async fn cut(&self) {
        let accept = self.accept.lock().unwrap().take().unwrap();
        accept.abort();
        accept.await.ok();
        let conns: Vec<_> = self.conns.lock().unwrap().drain(..).collect();
        for c in conns {
            c.abort();
            c.await.ok();
        }
    }
}

/// The tenant-manager becomes unreachable: a known project keeps answering (within the stale bound; a
/// directory with no bound answers 503), an unknown one gets 503, and a key revoked (and invalidated
/// through the change hook) before the cut is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_project_keeps_serving_while_the_control_plane_is_unreachable() {
    let (gw_l, gateway_url) = listen().await;
    let (strict_l, strict_url) = listen().await;
    let cp = ControlPlane::start(&format!("{gateway_url}/p/{{ref}}")).await;
    let proxy = Proxy::start(&cp.admin_url).await;
    // TTL zero: every request tries the tenant-manager first, so after the cut every answer about
    // `known` comes from the stale value.
    let through_proxy = |stale_for| {
        Arc::new(Directory::new(DirectoryConfig {
            url: proxy.url.clone(),
            stale_for,
            ..cp.directory_config(Duration::ZERO)
        }))
    };
    let directory = through_proxy(DirectoryConfig::DEFAULT_STALE_FOR);
    let strict = through_proxy(Duration::ZERO);
    {
        let d = directory.clone();
        cp.tenant_manager
            .on_change(Arc::new(move |r: &str| d.invalidate_project(r)));
    }
    serve_gateway(gw_l, directory.clone());
    serve_gateway(strict_l, strict);
    let http = http();

    let anon = project_with_items(&cp, "known").await;
    let (s, _, v) = admin(
        &cp,
        &http,
        Method::POST,
        "/admin/v1/projects/known/api-keys",
        Some(json!({"type": "secret", "name": "doomed"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (doomed, doomed_id) = (
        v["data"]["opaque_key"].as_str().unwrap().to_string(),
        v["data"]["id"].as_str().unwrap().to_string(),
    );
    for (url, key) in [
        (&gateway_url, &anon),
        (&gateway_url, &doomed),
        (&strict_url, &anon),
    ] {
        let (s, v) = read_items(&http, url, "known", key).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // Revoked: the hook drops the project's cached config and keys; the publishable key is then
    // looked up again, the revoked one is not.
    let (s, _, v) = admin(
        &cp,
        &http,
        Method::DELETE,
        &format!("/admin/v1/projects/known/api-keys/{doomed_id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = read_items(&http, &gateway_url, "known", &anon).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    proxy.cut().await;

    for _ in 0..5 {
        let (s, v) = read_items(&http, &gateway_url, "known", &anon).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "a known project is served from the cache: {v}"
        );
    }
    let (s, v) = read_items(&http, &gateway_url, "known", &doomed).await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "a revoked key is never served stale: {v}"
    );
    assert_eq!(v["code"], "directory_unavailable", "{v}");

    // An unknown project (with a key never seen) cannot be looked up.
    let stranger = supactl_common::keys::generate(supactl_common::keys::KeyType::Publishable);
    let (s, v) = read_items(&http, &gateway_url, "ghost", &stranger).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["code"], "directory_unavailable", "{v}");
    assert!(matches!(
        directory.project("ghost").await,
        Err(DirectoryError::Unavailable(_))
    ));

    // With no stale bound, the same known project is unavailable.
    let (s, v) = read_items(&http, &strict_url, "known", &anon).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["code"], "directory_unavailable", "{v}");
}
