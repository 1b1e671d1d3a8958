//! The auth router in-process (`oneshot`) against a real project database: a throwaway PostgreSQL
//! cluster, the tenant-manager provisioning the project from the template and serving its config
//! (`testkit`'s control plane).
//! The gateway's role is played by signing the forwarded JWT with the project's secret, as it does.
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::jwt;
use supactl_common::wire::ProjectConfig;
use testkit::ControlPlane;
use tower::ServiceExt;

pub const REF: &str = "auth-flows";

pub struct Env {
    /// The cluster and tenant-manager (kept for their lifetime).
    pub cp: ControlPlane,
    pub router: Router,
    pub project: Arc<ProjectConfig>,
}

/// A fresh cluster, a tenant-manager over it (`testkit`), project [`REF`] and the auth router
/// serving it.
pub async fn env() -> Env {
    let cp = ControlPlane::start("http://gw.test/p/{ref}").await;
    cp.create_project("flows", REF).await;
    let directory = cp.directory(Duration::from_secs(30));
    let project = directory.project(REF).await.unwrap().unwrap();
    let auth = auth::Auth::new(
        directory,
        auth::AuthConfig {
            api_url_template: "http://gw.test/p/{ref}".into(),
            ..auth::AuthConfig::default()
        },
    );
    Env {
        cp,
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

    /// `GET path` as a browser opens a link (the gateway forwarding it with the anon role): the
    /// status and `Location`.
    pub async fn open(&self, path: &str) -> (StatusCode, String) {
        let anon = self.minted("anon", json!({}));
        let req = Request::get(path)
            .header(auth::PROJECT_HEADER, REF)
            .header("authorization", format!("Bearer {anon}"))
            .body(Body::empty())
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let location = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        (res.status(), location)
    }

    /// A superuser session on the project's database (fixtures, inspection).
    pub async fn superuser(&self) -> tokio_postgres::Client {
        self.cp.project_db(REF).await
    }
}
