//! Storage through the gateway, in-process (`oneshot` on the data plane's router, as `supactl up`
//! composes it), against a real project database (a throwaway cluster and the tenant-manager
//! provisioning the project from the template) and the local file system backend in a temporary
//! directory: buckets, uploads and downloads, listing, move/copy/remove, public and signed URLs, limits,
//! odd names, RLS deciding for anon and users, and a deleted project's objects.

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

const REF: &str = "storage-api";

struct Env {
    cp: ControlPlane,
    router: Router,
    backend: storage::Backend,
    secret: String,
    anon: String,
    jwt_secret: String,
    _dir: tempfile::TempDir,
}

struct Res {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Res {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn env() -> Env {
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
    fn user(&self, user: &str) -> String {
        let mut c = Map::new();
        c.insert("sub".into(), json!(user));
        c.insert("role".into(), json!("authenticated"));
        c.insert("exp".into(), json!(jwt::now() + 300));
        jwt::sign(&c, self.jwt_secret.as_bytes())
    }

    /// A request below `/storage/v1` with `key` (none: no API key at all) and a user token.
    async fn send(
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
        let res = self.router.clone().oneshot(b.body(body).unwrap()).await.unwrap();
        let (parts, body) = res.into_parts();
        Res {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    async fn json(&self, method: Method, path: &str, key: &str, body: Value) -> Res {
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

    async fn upload_as(&self, path: &str, key: &str, token: Option<&str>, bytes: &[u8]) -> Res {
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

    async fn get(&self, path: &str, key: Option<&str>, headers: &[(&str, &str)]) -> Res {
        self.send(Method::GET, path, key, None, headers, Body::empty()).await
    }

    async fn sql(&self, q: &str) {
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

fn multipart(cache: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_objects_and_urls() {
    let e = env().await;
    let sk = e.secret.clone();

    // Buckets.
    let r = e.json(Method::POST, "/bucket", &sk, json!({"name": "docs", "file_size_limit": "1MB"})).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"name": "docs"})));
    let r = e.json(Method::POST, "/bucket", &sk, json!({"name": "docs"})).await;
    assert_eq!((r.status, r.json()["error"].clone()), (StatusCode::CONFLICT, json!("Duplicate")));
    let r = e.get("/bucket", Some(&sk), &[]).await;
    let b = &r.json()[0];
    assert_eq!((&b["id"], &b["owner"], &b["public"], &b["file_size_limit"]), (&json!("docs"), &json!(""), &json!(false), &json!(1048576)));
    // anon sees no bucket without a policy
    assert_eq!(e.get("/bucket", Some(&e.anon), &[]).await.json(), json!([]));
    let r = e.get("/bucket/nope", Some(&sk), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Upload (multipart, as storage3 sends it) and download equal bytes, with odd but safe names.
    let name = "a b/日本語 ファイル.txt";
    let encoded = "docs/a%20b/%E6%97%A5%E6%9C%AC%E8%AA%9E%20%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.txt";
    let (ct, body) = multipart("60", "text/plain", b"hello storage");
    let r = e
        .send(Method::POST, &format!("/object/{encoded}"), Some(&sk), None, &[("content-type", &ct)], Body::from(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.json()["Key"], format!("docs/{name}"));
    let r = e
        .send(Method::POST, &format!("/object/{encoded}"), Some(&sk), None, &[("content-type", &ct)], Body::from(body))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "no upsert: the object exists");
    let r = e.get(&format!("/object/{encoded}"), Some(&sk), &[]).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"hello storage"[..]));
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.headers["cache-control"], "max-age=60");
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let r = e.get(&format!("/object/{encoded}"), Some(&sk), &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = e.get(&format!("/object/authenticated/{encoded}"), Some(&sk), &[("range", "bytes=6-12")]).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::PARTIAL_CONTENT, &b"storage"[..]));
    assert_eq!(r.headers["content-range"], "bytes 6-12/13");
    let r = e.get(&format!("/object/{encoded}?download"), Some(&sk), &[]).await;
    assert!(r.headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));

    // Upsert replaces the bytes and leaves one stored object.
    let r = e
        .send(Method::POST, "/object/docs/up.txt", Some(&sk), None, &[("content-type", "text/plain")], Body::from("v1"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = e
        .send(Method::POST, "/object/docs/up.txt", Some(&sk), None, &[("content-type", "text/plain"), ("x-upsert", "true")], Body::from("v2"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&e.get("/object/docs/up.txt", Some(&sk), &[]).await.body[..], b"v2");
    assert_eq!(e.backend.count(REF).await, 2);

    // Missing objects: 404 not_found (HEAD without a body, as exists() expects).
    let r = e.get("/object/docs/missing.txt", Some(&sk), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({"statusCode": "404", "error": "not_found", "message": "Object not found"}));
    let r = e.send(Method::HEAD, "/object/docs/missing.txt", Some(&sk), None, &[], Body::empty()).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::NOT_FOUND, 0));
    let r = e.send(Method::HEAD, "/object/docs/up.txt", Some(&sk), None, &[], Body::empty()).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, 0));
    assert_eq!(r.headers["content-length"], "2");

    // Odd names are refused before anything is stored.
    for bad in ["/object/docs/..%2F..%2Fetc%2Fpasswd", "/object/docs/a%00b", "/object/docs/a//b"] {
        let r = e.upload_as(&bad["/object/".len()..], &sk, None, b"x").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.json());
    }
    let long = format!("docs/{}", "x".repeat(1025));
    assert_eq!(e.upload_as(&long, &sk, None, b"x").await.status, StatusCode::BAD_REQUEST);

    // Limits: the bucket's size (nothing left behind) and MIME types.
    let before = e.backend.count(REF).await;
    let r = e.json(Method::PUT, "/bucket/docs", &sk, json!({"file_size_limit": 10, "allowed_mime_types": ["text/*"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let r = e.upload_as("docs/big.txt", &sk, None, b"01234567890").await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = e
        .send(Method::POST, "/object/docs/p.png", Some(&sk), None, &[("content-type", "image/png")], Body::from("png"))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(e.backend.count(REF).await, before);
    let r = e.json(Method::PUT, "/bucket/docs", &sk, json!({"file_size_limit": null, "allowed_mime_types": null})).await;
    assert_eq!(r.status, StatusCode::OK);
    // and the service's own maximum (1 MiB here) still bounds every bucket
    let r = e.upload_as("docs/huge.bin", &sk, None, &vec![0u8; 1024 * 1024 + 1]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Listing: a folder's files and sub-folders, search, sort, paging.
    for n in ["f/x.txt", "f/sub/y.txt", "f/a.txt", "top.txt"] {
        assert_eq!(e.upload_as(&format!("docs/{n}"), &sk, None, n.as_bytes()).await.status, StatusCode::OK);
    }
    let names = |v: Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_string()).collect()
    };
    let r = e.json(Method::POST, "/object/list/docs", &sk, json!({"prefix": "f", "limit": 100, "offset": 0})).await;
    assert_eq!(names(r.json()), ["a.txt", "sub", "x.txt"]);
    assert_eq!(r.json()[1]["id"], Value::Null, "a folder has no id");
    let r = e.json(Method::POST, "/object/list/docs", &sk, json!({"prefix": "", "sortBy": {"column": "name", "order": "desc"}})).await;
    assert_eq!(names(r.json()), ["up.txt", "top.txt", "f", "a b"]);
    let r = e.json(Method::POST, "/object/list/docs", &sk, json!({"prefix": "f/", "search": "X", "limit": 1})).await;
    assert_eq!(names(r.json()), ["x.txt"]);
    let r = e.json(Method::POST, "/object/list/docs", &sk, json!({"prefix": "f", "limit": 1, "offset": 1})).await;
    assert_eq!(names(r.json()), ["sub"]);

    // Move, copy, info, remove several.
    let r = e.json(Method::POST, "/object/move", &sk, json!({"bucketId": "docs", "sourceKey": "f/a.txt", "destinationKey": "g/a.txt"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(e.get("/object/docs/f/a.txt", Some(&sk), &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(&e.get("/object/docs/g/a.txt", Some(&sk), &[]).await.body[..], b"f/a.txt");
    let r = e.json(Method::POST, "/object/copy", &sk, json!({"bucketId": "docs", "sourceKey": "g/a.txt", "destinationKey": "g/b.txt"})).await;
    assert_eq!(r.json()["Key"], "docs/g/b.txt");
    assert_eq!(&e.get("/object/docs/g/b.txt", Some(&sk), &[]).await.body[..], b"f/a.txt");
    let r = e.json(Method::POST, "/object/move", &sk, json!({"bucketId": "docs", "sourceKey": "nope", "destinationKey": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = e.get("/object/info/docs/g/b.txt", Some(&sk), &[]).await;
    assert_eq!((r.json()["size"].clone(), r.json()["name"].clone()), (json!(7), json!("g/b.txt")));
    let r = e.json(Method::DELETE, "/object/docs", &sk, json!({"prefixes": ["g/a.txt", "g/b.txt", "g/none"]})).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert_eq!(e.get("/object/docs/g/b.txt", Some(&sk), &[]).await.status, StatusCode::NOT_FOUND);

    // Public URLs need no key once the bucket is public.
    assert_eq!(e.get("/object/public/docs/top.txt", None, &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(e.get("/object/docs/top.txt", None, &[]).await.status, StatusCode::UNAUTHORIZED);
    e.json(Method::PUT, "/bucket/docs", &sk, json!({"public": true})).await;
    let r = e.get("/object/public/docs/top.txt", None, &[]).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"top.txt"[..]));

    // Signed URLs: bound to their object, no key needed, expiry to the second.
    e.json(Method::PUT, "/bucket/docs", &sk, json!({"public": false})).await;
    let r = e.json(Method::POST, "/object/sign/docs/top.txt", &sk, json!({"expiresIn": "60"})).await;
    let url = r.json()["signedURL"].as_str().unwrap().to_string();
    assert!(url.starts_with("/object/sign/docs/top.txt?token="), "{url}");
    let r = e.get(&url, None, &[]).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"top.txt"[..]));
    let other = url.replace("top.txt?", "up.txt?");
    assert_eq!(e.get(&other, None, &[]).await.json()["error"], "InvalidSignature");
    let r = e.json(Method::POST, "/object/sign/docs", &sk, json!({"expiresIn": 60, "paths": ["top.txt", "none"]})).await;
    let batch = r.json();
    assert_eq!(batch[0]["error"], Value::Null);
    assert_eq!(batch[1]["signedURL"], "");
    assert_eq!(e.get(batch[0]["signedURL"].as_str().unwrap(), None, &[]).await.status, StatusCode::OK);
    let r = e.json(Method::POST, "/object/sign/docs/top.txt", &sk, json!({"expiresIn": 1})).await;
    let short = r.json()["signedURL"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = e.get(&short, None, &[]).await;
    assert_eq!((r.status, r.json()["message"].clone()), (StatusCode::BAD_REQUEST, json!("jwt expired")));

    // Signed upload URLs: the upload needs no key.
    let r = e.send(Method::POST, "/object/upload/sign/docs/signed.txt", Some(&sk), None, &[], Body::empty()).await;
    let url = r.json()["url"].as_str().unwrap().to_string();
    let r = e.send(Method::PUT, &url, None, None, &[("content-type", "text/plain")], Body::from("via url")).await;
    assert_eq!((r.status, r.json()["Key"].clone()), (StatusCode::OK, json!("docs/signed.txt")));
    assert_eq!(&e.get("/object/docs/signed.txt", Some(&sk), &[]).await.body[..], b"via url");
    let r = e.send(Method::PUT, &url, None, None, &[("content-type", "text/plain")], Body::from("again")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "no upsert granted");

    // Buckets are deleted only once empty.
    let r = e.send(Method::DELETE, "/bucket/docs", Some(&sk), None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = e.send(Method::POST, "/bucket/docs/empty", Some(&sk), None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(e.backend.count(REF).await, 0);
    let r = e.send(Method::DELETE, "/bucket/docs", Some(&sk), None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_decides_and_deleted_projects_lose_their_objects() {
    let e = env().await;
    let sk = e.secret.clone();
    e.json(Method::POST, "/bucket", &sk, json!({"id": "private"})).await;
    // Supabase's usual policy: a user reads and writes only under a folder named after its id.
    e.sql(
        "CREATE POLICY own_insert ON storage.objects FOR INSERT TO authenticated
           WITH CHECK (bucket_id = 'private' AND (storage.foldername(name))[1] = auth.uid()::text);
         CREATE POLICY own_select ON storage.objects FOR SELECT TO authenticated
           USING (bucket_id = 'private' AND (storage.foldername(name))[1] = auth.uid()::text);",
    )
    .await;
    let (a, b) = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    );
    let (ta, tb) = (e.user(a), e.user(b));
    let path = format!("private/{a}/secret.txt");
    let r = e.upload_as(&path, &e.anon, Some(&ta), b"for a only").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    // owner recorded
    let r = e.get(&format!("/object/info/{path}"), Some(&e.anon), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "anon cannot see it");
    let get = |t: String| {
        let p = path.clone();
        let e = &e;
        async move {
            e.send(Method::GET, &format!("/object/{p}"), Some(&e.anon), Some(&t), &[], Body::empty())
                .await
        }
    };
    assert_eq!(get(ta.clone()).await.body, &b"for a only"[..]);
    assert_eq!(get(tb.clone()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(e.anon.clone()).await.status, StatusCode::NOT_FOUND);
    // B cannot write under A's folder, nor anon anywhere; refused before any byte is stored
    let before = e.backend.count(REF).await;
    let r = e.upload_as(&format!("private/{a}/evil.txt"), &e.anon, Some(&tb), b"x").await;
    assert_eq!((r.status, r.json()["error"].clone()), (StatusCode::FORBIDDEN, json!("Unauthorized")));
    let r = e.upload_as("private/x.txt", &e.anon, None, b"x").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(e.backend.count(REF).await, before);
    // B's list of the bucket is empty, A's shows its folder
    let list = |t: String| {
        let e = &e;
        async move {
            e.send(
                Method::POST,
                "/object/list/private",
                Some(&e.anon),
                Some(&t),
                &[("content-type", "application/json")],
                Body::from(json!({"prefix": ""}).to_string()),
            )
            .await
            .json()
        }
    };
    assert_eq!(list(tb.clone()).await, json!([]));
    assert_eq!(list(ta.clone()).await[0]["name"], a);
    // B cannot sign A's object
    let r = e
        .send(Method::POST, &format!("/object/sign/{path}"), Some(&e.anon), Some(&tb), &[("content-type", "application/json")], Body::from(r#"{"expiresIn": 60}"#))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // a user token of another project's secret is refused at the gateway
    let mut c = Map::new();
    c.insert("sub".into(), json!(a));
    c.insert("exp".into(), json!(jwt::now() + 60));
    let forged = jwt::sign(&c, b"another project's secret");
    assert_eq!(get(forged).await.status, StatusCode::UNAUTHORIZED);

    // Deleting the project deletes its objects.
    assert!(e.backend.count(REF).await > 0);
    let (s, v) = e.cp.admin(Method::DELETE, &format!("/admin/v1/projects/{REF}"), None).await;
    assert!(s.is_success(), "{v}");
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = e.backend.count(REF).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0);
}
