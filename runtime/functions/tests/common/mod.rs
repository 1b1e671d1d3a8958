//! The harness of the functions tests: real Deno workers (the pinned binary from `scripts/setup.sh deno`, or
//! `$SUPACTL_DENO`), the real router served over a loopback socket by the platform's HTTP server, and a real
//! HTTP client.
//!
//! Two stand-ins: the crate's in-memory [`MemoryStore`] is a **test double of the control plane** (so these
//! tests need no PostgreSQL; `tests/remote.rs` runs the same supervisor over the real tenant-manager), and
//! the `x-test-project` / `x-test-jwt` headers stand in for the gateway, which authenticates the caller and
//! sets the [`Caller`] (it is not composed with this crate yet).
#![allow(dead_code)] // each test binary uses its own part of the harness

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use functions::memory::MemoryStore;
use functions::{Bundle, BundleFile, Caller, NetPolicy, ProjectEnv, Supervisor, SupervisorConfig};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tokio_util::sync::CancellationToken;

/// The Deno binary: `$SUPACTL_DENO`, else the one `scripts/setup.sh deno` installs (run once per test binary).
pub fn deno() -> PathBuf {
    static DENO: OnceLock<PathBuf> = OnceLock::new();
    DENO.get_or_init(|| {
        if let Ok(p) = std::env::var("SUPACTL_DENO") {
            return PathBuf::from(p);
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup.sh");
        let out = std::process::Command::new(script)
            .arg("deno")
            .output()
            .expect("run scripts/setup.sh deno");
        assert!(
            out.status.success(),
            "scripts/setup.sh deno failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = String::from_utf8(out.stdout).expect("a path");
        PathBuf::from(path.lines().last().expect("setup.sh prints the path"))
    })
    .clone()
}

/// Stand-in for the gateway: the caller's project and JWT check come from test headers.
async fn caller_from_test_headers(mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let caller = Caller {
        project_ref: headers
            .get("x-test-project")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        jwt_verified: headers.contains_key("x-test-jwt"),
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// A supervisor and its router on a loopback port.
pub struct Platform {
    pub url: String,
    pub supervisor: Supervisor,
    pub store: Arc<MemoryStore>,
    pub work_dir: tempfile::TempDir,
    /// Projects whose environment is set.
    projects: Mutex<HashSet<String>>,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
}

impl Platform {
    /// Defaults, with a network policy that denies all of loopback.
    pub async fn start() -> Platform {
        Platform::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut SupervisorConfig)) -> Platform {
        let work_dir = tempfile::Builder::new()
            .prefix("fn")
            .tempdir_in("/tmp")
            .unwrap();
        let mut config = SupervisorConfig::new(
            deno(),
            work_dir.path().to_path_buf(),
            NetPolicy::platform(None, &[]),
        );
        tweak(&mut config);
        let store = Arc::new(MemoryStore::default());
        let supervisor = Supervisor::new(config, store.clone()).expect("valid config");
        let app = Router::new()
            .nest("/functions/v1", functions::router(supervisor.clone()))
            .layer(middleware::from_fn(caller_from_test_headers));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(supactl_common::server::serve(
            listener,
            app,
            Default::default(),
            shutdown.clone(),
        ));
        Platform {
            url: format!("http://{addr}/functions/v1"),
            supervisor,
            store,
            work_dir,
            projects: Mutex::default(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            shutdown,
        }
    }

    /// Deploys (or redeploys) `slug` with one file, `index.ts`; returns the new version.
    pub fn deploy(&self, project: &str, slug: &str, source: &str) -> u64 {
        self.deploy_files(project, slug, &[("index.ts", source)], false)
    }

    /// Deploys the files (the first is the entrypoint), giving the project an environment first if need be:
    /// `SUPABASE_URL` `http://127.0.0.1:9/<project>`, keys `sb_publishable_<project>` / `sb_secret_<project>`.
    pub fn deploy_files(
        &self,
        project: &str,
        slug: &str,
        files: &[(&str, &str)],
        verify_jwt: bool,
    ) -> u64 {
        if self.projects.lock().unwrap().insert(project.to_string()) {
            let env = ProjectEnv {
                api_url: format!("http://127.0.0.1:9/{project}"),
                publishable_key: format!("sb_publishable_{project}"),
                secret_key: format!("sb_secret_{project}"),
                db_url: None,
                secrets: Vec::new(),
            };
            self.store.set_environment(project, env);
        }
        let bundle = Bundle {
            entrypoint: files[0].0.into(),
            files: files
                .iter()
                .map(|(n, c)| BundleFile {
                    name: (*n).into(),
                    content: (*c).into(),
                })
                .collect(),
            import_map: None,
        };
        self.store
            .deploy(project, slug, bundle, verify_jwt)
            .expect("a valid bundle")
    }

    /// Sets a secret of a project that has a deployed function.
    pub fn set_secret(&self, project: &str, name: &str, value: &str) {
        assert!(
            self.store.set_secret(project, name, value),
            "deploy to {project} first"
        );
    }

    /// Sends a request to `{url}{path}` as `project` (with a valid JWT).
    pub async fn call(
        &self,
        project: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("x-test-project", project)
            .header("x-test-jwt", "valid");
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
        let res = self
            .client
            .request(req)
            .await
            .expect("the platform answers");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("a whole body").to_bytes();
        (parts.status, parts.headers, body)
    }

    /// GET `path` as `project`, the body as JSON.
    pub async fn get_json(&self, project: &str, path: &str) -> (StatusCode, serde_json::Value) {
        let (status, _, body) = self.call(project, Method::GET, path, &[], b"").await;
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("JSON from {path}: {}", String::from_utf8_lossy(&body)));
        (status, json)
    }

    pub fn client(&self) -> &Client<HttpConnector, Full<Bytes>> {
        &self.client
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.supervisor.shutdown();
    }
}
