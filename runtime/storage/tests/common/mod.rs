//! The platform a storage test drives: a throwaway cluster, the tenant-manager provisioning one project
//! from the template, and the data plane as `supactl up` composes it (gateway + storage over the local
//! file system backend in a temporary directory), called in-process (`oneshot` on its router).
#![allow(dead_code)]

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use std::time::Duration;
use supactl_common::jwt;
use testkit::ControlPlane;
use tower::ServiceExt;

pub const REF: &str = "storage-api";

pub struct Env {
    pub cp: ControlPlane,
    pub router: Router,
    pub backend: storage::Backend,
    pub secret: String,
    pub anon: String,
    pub jwt_secret: String,
    _dir: tempfile::TempDir,
}

pub struct Res {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Res {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

pub async fn env() -> Env {
    let cp = ControlPlane::start("http://gw.test/p/{ref}").await;
    let data = cp.create_project("storage", REF).await;
    let key = |t: &str| {
        data["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["type"] == t)
            .unwrap()["opaque_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let backend = storage::Backend::new(&storage::BackendConfig::Local {
        root: dir.path().join("objects"),
    })
    .unwrap();
    let dp = dataplane::DataPlane::builder(cp.directory(Duration::from_secs(1)))
        .storage(
            backend.clone(),
            storage::StorageConfig {
                max_object_size: 1024 * 1024,
                ..storage::StorageConfig::default()
            },
        )
        .build()
        .unwrap();
    cp.tenant_manager.on_change(dp.on_change);
    let jwt_secret = cp.jwt_secret(REF).await;
    Env {
        secret: key("secret"),
        anon: key("publishable"),
        router: dp.router,
        backend,
        jwt_secret,
        cp,
        _dir: dir,
    }
}

impl Env {
    /// A user's access token (role authenticated, `sub` = `user`).
    pub fn user(&self, user: &str) -> String {
        let mut c = Map::new();
        c.insert("sub".into(), json!(user));
        c.insert("role".into(), json!("authenticated"));
        c.insert("exp".into(), json!(jwt::now() + 300));
        jwt::sign(&c, self.jwt_secret.as_bytes())
    }

    /// A request below `/storage/v1` with `key` (none: no API key at all) and a user token.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Res {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("/p/{REF}/storage/v1{path}"));
        if let Some(k) = key {
            b = b.header("apikey", k);
        }
        if let Some(t) = token.or(key) {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let res = self
            .router
            .clone()
            .oneshot(b.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        Res {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub async fn json(&self, method: Method, path: &str, key: &str, body: Value) -> Res {
        self.send(
            method,
            path,
            Some(key),
            None,
            &[("content-type", "application/json")],
            Body::from(body.to_string()),
        )
        .await
    }

    pub async fn upload_as(&self, path: &str, key: &str, token: Option<&str>, bytes: &[u8]) -> Res {
        self.send(
            Method::POST,
            &format!("/object/{path}"),
            Some(key),
            token,
            &[("content-type", "text/plain")],
            Body::from(bytes.to_vec()),
        )
        .await
    }

    pub async fn get(&self, path: &str, key: Option<&str>, headers: &[(&str, &str)]) -> Res {
        self.send(Method::GET, path, key, None, headers, Body::empty())
            .await
    }

    pub async fn sql(&self, q: &str) {
        let (s, v) = self
            .cp
            .admin(
                Method::POST,
                &format!("/admin/v1/projects/{REF}/database/query"),
                Some(json!({ "query": q })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
}

pub fn multipart(cache: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let mut b = Vec::new();
    b.extend_from_slice(
        format!(
            "--BOUND\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n{cache}\r\n\
             --BOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
             Content-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(bytes);
    b.extend_from_slice(b"\r\n--BOUND--\r\n");
    ("multipart/form-data; boundary=BOUND".into(), b)
}
