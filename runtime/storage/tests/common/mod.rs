//! The platform a storage test drives: a throwaway cluster, the tenant-manager provisioning one project
//! from the template, and the data plane as `supactl up` composes it (gateway + storage over the local
//! file system backend in a temporary directory, or over an S3 bucket), called in-process (`oneshot` on
//! its router).
#![allow(dead_code)]

pub mod scenario;
pub mod tus;

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
    /// The largest object the service takes.
    pub max_object_size: u64,
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

/// On the local file system, with a 1 MiB maximum object size.
pub async fn env() -> Env {
    env_with(None, 1024 * 1024).await
}

/// In `s3` (else on the local file system), taking objects up to `max_object_size`.
pub async fn env_with(s3: Option<storage::S3Location>, max_object_size: u64) -> Env {
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
    let config = match s3 {
        Some(location) => storage::BackendConfig::S3(location),
        None => storage::BackendConfig::Local {
            root: dir.path().join("objects"),
        },
    };
    let backend = storage::Backend::new(&config).unwrap();
    let dp = dataplane::DataPlane::builder(cp.directory(Duration::from_secs(1)))
        .storage(
            backend.clone(),
            storage::StorageConfig {
                max_object_size,
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
        max_object_size,
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
        let res = self.streamed(method, path, key, token, headers, body).await;
        let (parts, body) = res.into_parts();
        Res {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    /// [`Env::send`], with the response body left to stream.
    pub async fn streamed(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> http::Response<Body> {
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
        self.router
            .clone()
            .oneshot(b.body(body).unwrap())
            .await
            .unwrap()
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

    /// A new data plane over the same database and object store, as after a restart of the process.
    pub fn restart(&mut self) {
        let dp = dataplane::DataPlane::builder(self.cp.directory(Duration::from_secs(1)))
            .storage(
                self.backend.clone(),
                storage::StorageConfig {
                    max_object_size: self.max_object_size,
                    ..storage::StorageConfig::default()
                },
            )
            .build()
            .unwrap();
        self.router = dp.router;
    }

    /// Rows of a query run on the project's database by the admin API.
    pub async fn rows(&self, q: &str) -> Value {
        let (s, v) = self
            .cp
            .admin(
                Method::POST,
                &format!("/admin/v1/projects/{REF}/database/query"),
                Some(json!({ "query": q })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"].clone()
    }

    /// Deletes the project and waits (5 s at most) for its objects to go: the number left.
    pub async fn delete_project(&self) -> usize {
        let (s, v) = self
            .cp
            .admin(Method::DELETE, &format!("/admin/v1/projects/{REF}"), None)
            .await;
        assert!(s.is_success(), "{v}");
        let mut left = usize::MAX;
        for _ in 0..50 {
            left = self.backend.count(REF).await;
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        left
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

/// A streamed body of `len` zero bytes (no buffer of that size is ever made).
pub fn zeros(len: u64) -> Body {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let chunk = ZEROS.len() as u64;
    let chunks = (0..len.div_ceil(chunk)).map(move |i| {
        let n = chunk.min(len - i * chunk) as usize;
        Ok::<_, std::convert::Infallible>(Bytes::from_static(&ZEROS[..n]))
    });
    Body::from_stream(futures_util::stream::iter(chunks))
}
