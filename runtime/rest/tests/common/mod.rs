//! The REST router in-process over a real control plane: a throwaway PostgreSQL cluster, the
//! tenant-manager provisioning one project from the real template, and requests signed with that
//! project's secret as the gateway signs them.
#![allow(dead_code)]

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::jwt;
use testkit::ControlPlane;
use tower::ServiceExt;

pub struct Env {
    pub cp: ControlPlane,
    pub router: axum::Router,
    pub project_ref: String,
    secret: String,
    pub db: tokio_postgres::Client,
    pub rest: Arc<rest::Rest>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }
}

impl Env {
    /// A project on a fresh control plane, with `fixture` run in its database as superuser.
    pub async fn start(fixture: &str) -> Env {
        let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
        let project_ref = cp.create_project("Conformance", "conformance").await["ref"]
            .as_str()
            .unwrap()
            .to_string();
        let secret = cp.jwt_secret(&project_ref).await;
        let db = cp.project_db(&project_ref).await;
        db.batch_execute(fixture).await.unwrap();
        let directory = cp.directory(Duration::from_secs(60));
        let rest = rest::Rest::new(directory, rest::RestConfig::default());
        Env {
            router: rest::router(rest.clone()),
            rest,
            cp,
            project_ref,
            secret,
            db,
        }
    }

    pub fn token(&self, role: &str, extra: Option<Value>) -> String {
        let mut claims = Map::new();
        claims.insert("role".into(), json!(role));
        claims.insert("ref".into(), json!(self.project_ref));
        claims.insert("iat".into(), json!(jwt::now()));
        claims.insert("exp".into(), json!(jwt::now() + 300));
        if let Some(Value::Object(o)) = extra {
            claims.extend(o);
        }
        jwt::sign(&claims, self.secret.as_bytes())
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
        token: &str,
    ) -> Reply {
        // Characters http::Uri refuses are sent percent-encoded, as clients do.
        let mut uri = String::new();
        for ch in path.chars() {
            if ch.is_ascii() && !" \"{}^|<>\\`".contains(ch) {
                uri.push(ch);
            } else {
                let mut buf = [0u8; 4];
                for byte in ch.encode_utf8(&mut buf).bytes() {
                    uri.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(rest::PROJECT_HEADER, &self.project_ref)
            .header("authorization", format!("Bearer {token}"));
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if !has_ct {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(axum::body::Body::from(body.unwrap_or("").to_string()))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}
