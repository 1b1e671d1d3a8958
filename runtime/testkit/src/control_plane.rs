//! The control plane the services' integration tests start: a tenant-manager over a [`Database`],
//! helpers to drive its admin API, and the production data plane in front of it.

use crate::db::Database;
use crate::listen;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::http_client::HttpClient;
use tokio::net::TcpListener;

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

/// A tenant-manager over a [`Database`] (its platform database and its one worker), serving its admin
/// and internal APIs on a loopback port.
pub struct ControlPlane {
    /// The cluster: platform database and worker.
    pub db: Database,
    pub admin_url: String,
    pub admin_key: String,
    pub service_token: String,
    pub http: HttpClient,
    /// The tenant-manager itself (to register change hooks).
    pub tenant_manager: Arc<tenant_manager::TenantManager>,
}

impl ControlPlane {
    /// A cluster and a tenant-manager whose projects' `api_url` follows `api_url_template` (`{ref}` in
    /// it); the cluster itself is the one worker.
    pub async fn start(api_url_template: &str) -> ControlPlane {
        ControlPlane::over(Database::start().await, api_url_template).await
    }

    /// As [`ControlPlane::start`], over a cluster that accepts TCP connections over TLS only
    /// ([`Database::start_tls`]): the tenant-manager connects to it, and registers it as its worker,
    /// with `sslmode=verify-full` and the test CA.
    pub async fn start_tls(api_url_template: &str) -> ControlPlane {
        ControlPlane::over(Database::start_tls().await, api_url_template).await
    }

    /// A tenant-manager over `db`.
    pub async fn over(db: Database, api_url_template: &str) -> ControlPlane {
        let (admin_l, admin_url) = listen().await;
        let config = tenant_manager_config(&db.url, api_url_template);
        let (admin_key, service_token) = (config.admin_key.clone(), config.service_token.clone());
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
            db,
            admin_url,
            admin_key,
            service_token,
            http: HttpClient::new(Duration::from_secs(60)),
        }
    }

    /// Starts another tenant-manager over the same platform database, as a restart or a second replica
    /// would: it prepares every worker again (returns once it has).
    pub async fn start_tenant_manager_again(&self) {
        tenant_manager::TenantManager::start(tenant_manager_config(
            &self.db.url,
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
        self.db.connect(dbname).await
    }

    /// A superuser session on a project's own database.
    pub async fn project_db(&self, project_ref: &str) -> tokio_postgres::Client {
        self.connect(&supactl_common::ident::database_name(project_ref))
            .await
    }

    /// Serves on `listener` the data plane `supactl up` runs ([`dataplane::Settings::builder`]: REST,
    /// auth and realtime behind the gateway, one connection budget, its change hook registered with
    /// this tenant-manager), reading projects from this control plane; `api_url_template` is the
    /// gateway's (`{ref}` in it).
    pub fn serve_data_plane(&self, listener: TcpListener, api_url_template: &str) {
        let data_plane = dataplane::Settings {
            tenant_manager_url: self.admin_url.clone(),
            service_token: self.service_token.clone(),
            redis_url: None,
            cache_ttl: Duration::from_secs(1),
            cache_stale: DirectoryConfig::DEFAULT_STALE_FOR,
            rest: rest::RestConfig::default(),
            base_domain: None,
            api_url_template: api_url_template.to_string(),
            trusted_proxies: Vec::new(),
            capture_slots: dataplane::DEFAULT_CAPTURE_SLOTS,
        }
        .builder(tokio_util::sync::CancellationToken::new())
        .build()
        .expect("no Redis to connect to");
        self.tenant_manager.on_change(data_plane.on_change);
        tokio::spawn(supactl_common::server::serve(
            listener,
            data_plane.router,
            supactl_common::server::ServerConfig::default(),
            tokio_util::sync::CancellationToken::new(),
        ));
    }
}
