//! The auth router in-process (`oneshot`) against a real project database: a throwaway PostgreSQL
//! cluster, the tenant-manager provisioning the project from the template and serving its config.
//! The gateway's role is played by signing the forwarded JWT with the project's secret, as it does.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use pgcluster::TestCluster;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::http_client::HttpClient;
use supactl_common::jwt;
use supactl_common::wire::ProjectConfig;
use tokio::net::TcpListener;
use tower::ServiceExt;

pub const REF: &str = "auth-flows";

pub struct Env {
    pub cluster: TestCluster,
    pub router: Router,
    pub project: Arc<ProjectConfig>,
}

/// A fresh cluster, a tenant-manager over it, project [`REF`] and the auth router serving it.
pub async fn env() -> Env {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_url = format!("http://{}", listener.local_addr().unwrap());
    let db_url = cluster.url("postgres");
    let tm = tenant_manager::TenantManager::start(tenant_manager::Config {
        database_url: db_url.clone(),
        admin_key: "test-admin-key-0123456789".into(),
        service_token: "test-service-token-0123456789".into(),
        encryption_key: "test-encryption-key".into(),
        api_url_template: "http://gw.test/p/{ref}".into(),
        local_worker: Some(tenant_manager::WorkerSpec::from_url("local", &db_url).unwrap()),
        redis_url: None,
        project_connection_limit: tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
        capacity: tenant_manager::Capacity::default(),
    })
    .await
    .unwrap();
    tokio::spawn(async move { axum::serve(listener, tenant_manager::router(tm)).await });
    let req = http::Request::post(format!("{admin_url}/admin/v1/projects"))
        .header("authorization", "Bearer test-admin-key-0123456789")
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(
            json!({"name": "flows", "ref": REF}).to_string(),
        )))
        .unwrap();
    let (status, body) = HttpClient::new(Duration::from_secs(60))
        .send(req)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body:?}");
    let directory = Arc::new(Directory::new(DirectoryConfig {
        url: admin_url,
        service_token: "test-service-token-0123456789".into(),
        ttl: Duration::from_secs(30),
        stale_for: DirectoryConfig::DEFAULT_STALE_FOR,
    }));
    let project = directory.project(REF).await.unwrap().unwrap();
    let auth = auth::Auth::new(
        directory,
        auth::AuthConfig {
            api_url_template: "http://gw.test/p/{ref}".into(),
            ..auth::AuthConfig::default()
        },
    );
    Env {
        cluster,
        router: auth::router(auth),
        project,
    }
}

impl Env {
    /// The JWT the gateway would forward for `role` (plus user claims).
    pub fn minted(&self, role: &str, extra: Value) -> String {
        let mut claims = Map::new();
        claims.insert("role".into(), json!(role));
        claims.insert("ref".into(), json!(REF));
        claims.insert("exp".into(), json!(jwt::now() + 300));
        if let Value::Object(m) = extra {
            claims.extend(m);
        }
        jwt::sign(&claims, self.project.signing_secret())
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        modern: bool,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(auth::PROJECT_HEADER, REF)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if modern {
            req = req.header("x-supabase-api-version", "2024-01-01");
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A superuser session on the project's database (fixtures, inspection).
    pub async fn superuser(&self) -> tokio_postgres::Client {
        let url = self.cluster.url(&supactl_common::ident::database_name(REF));
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c
    }
}
