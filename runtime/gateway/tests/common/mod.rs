//! The in-process platform the integration tests drive.
#![allow(dead_code)]

use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::{listen, ControlPlane};

/// The shared control plane (`testkit`) plus the data plane's composition (`dataplane`) with REST
/// only in front of it.
pub struct Platform {
    pub cp: ControlPlane,
    pub gateway_url: String,
}

impl std::ops::Deref for Platform {
    type Target = ControlPlane;
    fn deref(&self) -> &ControlPlane {
        &self.cp
    }
}

pub struct Project {
    pub project_ref: String,
    pub api_url: String,
    pub anon: String,
    pub secret: String,
}

impl Platform {
    pub async fn start() -> Platform {
        Platform::start_with(None).await
    }

    /// A platform whose gateway also has the Function URL upstream (REST on Lambda).
    pub async fn start_with(function_urls: Option<gateway::FunctionUrls>) -> Platform {
        let (gw_l, gateway_url) = listen().await;
        let cp = ControlPlane::start(&format!("{gateway_url}/p/{{ref}}")).await;
        let mut data_plane = dataplane::DataPlane::builder(cp.directory(Duration::from_secs(1)));
        if let Some(f) = function_urls {
            data_plane = data_plane.function_urls(f);
        }
        // REST only, and no change hook on purpose: revocation must also work through the
        // directory's TTL alone.
        let router = data_plane.build().expect("no Redis to connect to").router;
        tokio::spawn(async move { axum::serve(gw_l, router).await });
        Platform { cp, gateway_url }
    }

    /// A platform whose gateway also serves auth (`/auth/v1`).
    pub async fn start_with_auth() -> Platform {
        let (gw_l, gateway_url) = listen().await;
        let cp = ControlPlane::start(&format!("{gateway_url}/p/{{ref}}")).await;
        let router = dataplane::DataPlane::builder(cp.directory(Duration::from_secs(1)))
            .auth(auth::AuthConfig {
                api_url_template: format!("{gateway_url}/p/{{ref}}"),
                ..auth::AuthConfig::default()
            })
            .build()
            .expect("no Redis to connect to")
            .router;
        tokio::spawn(async move { axum::serve(gw_l, router).await });
        Platform { cp, gateway_url }
    }

    pub async fn create(&self, project_ref: &str) -> Project {
        let data = self.cp.create_project("Test", project_ref).await;
        let d = &data;
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
        self.cp.connect("postgres").await
    }

    /// The project's current JWT secret, from the internal endpoint.
    pub async fn jwt_secret(&self, p: &Project) -> String {
        self.cp.jwt_secret(&p.project_ref).await
    }
}

/// Polls until `f` returns true, failing after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
