//! The in-process platform the integration tests drive.
#![allow(dead_code)]

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use pgcluster::TestCluster;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::http_client::HttpClient;
use tokio::net::TcpListener;

pub struct Platform {
    pub cluster: TestCluster,
    pub admin_url: String,
    pub gateway_url: String,
    pub admin_key: String,
    pub service_token: String,
    pub http: HttpClient,
}

pub struct Project {
    pub project_ref: String,
    pub api_url: String,
    pub anon: String,
    pub secret: String,
}

async fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

impl Platform {
    pub async fn start() -> Platform {
        Platform::start_with(None).await
    }

    /// A platform whose gateway also has the Function URL upstream (REST on Lambda).
    pub async fn start_with(function_urls: Option<gateway::FunctionUrls>) -> Platform {
        let cluster = tokio::task::spawn_blocking(TestCluster::start)
            .await
            .unwrap();
        let (admin_l, admin_url) = listen().await;
        let (gw_l, gateway_url) = listen().await;
        let admin_key = "test-admin-key-0123456789".to_string();
        let service_token = "test-service-token-0123456789".to_string();
        let db_url = cluster.url("postgres");
        let tm = tenant_manager::TenantManager::start(tenant_manager::Config {
            database_url: db_url.clone(),
            admin_key: admin_key.clone(),
            service_token: service_token.clone(),
            encryption_key: "test-encryption-key".into(),
            api_url_template: format!("{gateway_url}/p/{{ref}}"),
            local_worker: Some(tenant_manager::WorkerSpec::from_url("local", &db_url).unwrap()),
            redis_url: None,
        })
        .await
        .unwrap();
        let directory = Arc::new(Directory::new(DirectoryConfig {
            url: admin_url.clone(),
            service_token: service_token.clone(),
            ttl: Duration::from_secs(1),
        }));
        let rest = rest::Rest::new(directory.clone(), rest::RestConfig::default());
        let gw = gateway::Gateway::with_function_urls(
            gateway::GatewayConfig::default(),
            directory,
            gateway::Upstream::InProcess(rest::router(rest)),
            None,
            function_urls,
        );
        // No change hook on purpose: revocation must also work through the directory's TTL alone.
        tokio::spawn(async move { axum::serve(admin_l, tenant_manager::router(tm)).await });
        tokio::spawn(async move { axum::serve(gw_l, gateway::router(gw)).await });
        Platform {
            cluster,
            admin_url,
            gateway_url,
            admin_key,
            service_token,
            http: HttpClient::new(Duration::from_secs(30)),
        }
    }

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
            &[("authorization", &auth)],
            body,
        )
        .await
    }

    pub async fn create(&self, project_ref: &str) -> Project {
        let (s, v) = self
            .admin(
                Method::POST,
                "/admin/v1/projects",
                Some(json!({"name": "Test", "ref": project_ref})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let d = &v["data"];
        let key = |t: &str| {
            d["api_keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["type"] == t)
                .unwrap()["opaque_key"]
                .as_str()
                .unwrap()
                .to_string()
        };
        Project {
            project_ref: d["ref"].as_str().unwrap().into(),
            api_url: d["api_url"].as_str().unwrap().into(),
            anon: key("publishable"),
            secret: key("secret"),
        }
    }

    pub async fn sql(&self, p: &Project, query: &str) -> (StatusCode, Value) {
        self.admin(
            Method::POST,
            &format!("/admin/v1/projects/{}/database/query", p.project_ref),
            Some(json!({ "query": query })),
        )
        .await
    }

    pub async fn rest(
        &self,
        p: &Project,
        method: Method,
        path: &str,
        key: &str,
        extra: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut headers = vec![("apikey", key), ("content-type", "application/json")];
        headers.extend_from_slice(extra);
        self.call(
            method,
            &format!("{}/rest/v1/{path}", p.api_url),
            &headers,
            body,
        )
        .await
    }

    pub async fn superuser(&self) -> tokio_postgres::Client {
        let (c, conn) =
            tokio_postgres::connect(&self.cluster.url("postgres"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        c
    }

    /// The project's current JWT secret, from the internal endpoint.
    pub async fn jwt_secret(&self, p: &Project) -> String {
        let auth = format!("Bearer {}", self.service_token);
        let (s, v) = self
            .call(
                Method::GET,
                &format!(
                    "{}/internal/v1/projects/{}/config",
                    self.admin_url, p.project_ref
                ),
                &[("authorization", &auth)],
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        v["data"]["jwt_secrets"][0].as_str().unwrap().to_string()
    }
}
