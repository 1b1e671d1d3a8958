//! Test-only: the in-process control plane that the services' integration tests start — a throwaway
//! PostgreSQL cluster with a tenant-manager serving its admin and internal APIs on a loopback port — and
//! helpers to drive it; and test certificates ([`tls`]). Only ever a `[dev-dependencies]` entry; no
//! service may depend on it.

pub mod tls;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use pgcluster::TestCluster;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::http_client::HttpClient;
use supactl_common::pg_tls::PgTls;
use tokio::net::TcpListener;

/// A loopback listener on a free port and its `http://` URL.
pub async fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// The tenant-manager's settings in tests: the cluster is the platform database and the one worker.
fn tenant_manager_config(db_url: &str, api_url_template: &str) -> tenant_manager::Config {
    tenant_manager::Config {
        database_url: db_url.to_string(),
        admin_key: "test-admin-key-0123456789".into(),
        service_token: "test-service-token-0123456789".into(),
        encryption_key: "test-encryption-key".into(),
        api_url_template: api_url_template.to_string(),
        local_worker: Some(tenant_manager::WorkerSpec::from_url("local", db_url).unwrap()),
        redis_url: None,
        project_connection_limit: tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
        capacity: tenant_manager::Capacity::default(),
    }
}

pub struct ControlPlane {
    pub cluster: TestCluster,
    pub admin_url: String,
    pub admin_key: String,
    pub service_token: String,
    pub http: HttpClient,
    /// The tenant-manager itself (to register change hooks).
    pub tenant_manager: Arc<tenant_manager::TenantManager>,
    /// TLS to the cluster as the tenant-manager connects (disable unless started with [`ControlPlane::start_tls`]).
    pub db_tls: PgTls,
    /// The CA of a TLS cluster, kept for its files.
    pub ca: Option<tls::TestCa>,
    /// The platform database's URL, TLS settings included.
    database_url: String,
}

impl ControlPlane {
    /// A cluster and a tenant-manager whose projects' `api_url` follows `api_url_template` (`{ref}` in
    /// it); the cluster itself is the one worker.
    pub async fn start(api_url_template: &str) -> ControlPlane {
        let cluster = tokio::task::spawn_blocking(TestCluster::start)
            .await
            .unwrap();
        let db_url = cluster.url("postgres");
        ControlPlane::with_cluster(cluster, db_url, None, api_url_template).await
    }

    /// As [`ControlPlane::start`], over a cluster that accepts TCP connections over TLS only, with a
    /// certificate for 127.0.0.1 and localhost from a test CA: the tenant-manager connects to it, and
    /// registers it as its worker, with `sslmode=verify-full` and that CA.
    pub async fn start_tls(api_url_template: &str) -> ControlPlane {
        let ca = tls::TestCa::new("supactl-test-ca");
        let server = ca.server_cert(&["127.0.0.1", "localhost"]);
        let cluster = tokio::task::spawn_blocking(move || {
            TestCluster::start_with_ssl(&server.cert_pem, &server.key_pem, true)
        })
        .await
        .unwrap();
        let db_url = format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            cluster.url("postgres"),
            ca.cert_path().display()
        );
        ControlPlane::with_cluster(cluster, db_url, Some(ca), api_url_template).await
    }

    async fn with_cluster(
        cluster: TestCluster,
        db_url: String,
        ca: Option<tls::TestCa>,
        api_url_template: &str,
    ) -> ControlPlane {
        let (admin_l, admin_url) = listen().await;
        let config = tenant_manager_config(&db_url, api_url_template);
        let (admin_key, service_token) = (config.admin_key.clone(), config.service_token.clone());
        let db_tls = config
            .local_worker
            .as_ref()
            .expect("a local worker")
            .tls
            .clone();
        let tm = tenant_manager::TenantManager::start(config).await.unwrap();
        // the server every supactl listener runs on; the test's runtime ends it
        tokio::spawn(supactl_common::server::serve(
            admin_l,
            tenant_manager::router(tm.clone()),
            supactl_common::server::ServerConfig::default(),
            tokio_util::sync::CancellationToken::new(),
        ));
        ControlPlane {
            tenant_manager: tm,
            cluster,
            admin_url,
            admin_key,
            service_token,
            http: HttpClient::new(Duration::from_secs(60)),
            db_tls,
            ca,
            database_url: db_url,
        }
    }

    /// Starts another tenant-manager over the same platform database, as a restart or a second replica
    /// would: it prepares every worker again (returns once it has).
    pub async fn start_tenant_manager_again(&self) {
        tenant_manager::TenantManager::start(tenant_manager_config(
            &self.database_url,
            "http://127.0.0.1:1/p/{ref}",
        ))
        .await
        .unwrap();
    }

    /// The project directory a data-plane service reads configs through.
    pub fn directory(&self, ttl: Duration) -> Arc<Directory> {
        Arc::new(Directory::new(self.directory_config(ttl)))
    }

    /// The settings of [`ControlPlane::directory`], to adjust (another URL, another stale bound).
    pub fn directory_config(&self, ttl: Duration) -> DirectoryConfig {
        DirectoryConfig {
            url: self.admin_url.clone(),
            service_token: self.service_token.clone(),
            ttl,
            stale_for: DirectoryConfig::DEFAULT_STALE_FOR,
        }
    }

    /// Any HTTP call; the body comes back as JSON (a string when it is not JSON, null when empty).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = body.map(|v| v.to_string()).unwrap_or_default();
        let (status, bytes) = self
            .http
            .send(b.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    /// A call to the admin API with the admin key.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let auth = format!("Bearer {}", self.admin_key);
        self.call(
            method,
            &format!("{}{path}", self.admin_url),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Creates a project (asserting 201) and returns the API's `data`: ref, api_url, api_keys, ….
    pub async fn create_project(&self, name: &str, project_ref: &str) -> Value {
        let (s, v) = self
            .admin(
                Method::POST,
                "/admin/v1/projects",
                Some(json!({"name": name, "ref": project_ref})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["data"].clone()
    }

    /// The project's current JWT secret, read from the internal endpoint with the service token.
    pub async fn jwt_secret(&self, project_ref: &str) -> String {
        let auth = format!("Bearer {}", self.service_token);
        let (s, v) = self
            .call(
                Method::GET,
                &format!(
                    "{}/internal/v1/projects/{project_ref}/config",
                    self.admin_url
                ),
                &[("authorization", &auth)],
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"]["jwt_secrets"][0].as_str().unwrap().to_string()
    }

    /// A superuser session on `dbname` (fixtures, inspection), with the tenant-manager's TLS settings.
    pub async fn connect(&self, dbname: &str) -> tokio_postgres::Client {
        let cfg: tokio_postgres::Config = self.cluster.url(dbname).parse().unwrap();
        supactl_common::pg::connect(&cfg, &self.db_tls)
            .await
            .unwrap()
    }

    /// A superuser session on a project's own database.
    pub async fn project_db(&self, project_ref: &str) -> tokio_postgres::Client {
        self.connect(&supactl_common::ident::database_name(project_ref))
            .await
    }
}
