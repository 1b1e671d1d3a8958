//! Resumable (TUS) uploads and user metadata through the gateway, on a real project database and the
//! local file system backend: the chunked scenario every backend passes (`common::tus`), an upload
//! that survives a restart, then what decides and what bounds an upload: RLS and the caller an upload
//! is bound to, another project, bucket size and MIME limits, upsert, termination, expiry, the signed
//! variant, and user metadata on plain uploads.

mod common;

use axum::body::Body;
use common::tus::{
    self as t, b64, create, create_at, head, header, metadata, patch, pattern_body, text,
    upload_path, CHUNK, MIB,
};
use common::{env_with, Env, REF};
use http::{Method, Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

async fn env() -> Env {
    let e = env_with(None, 64 * MIB).await;
    let r = e
        .json(Method::POST, "/bucket", &e.secret, json!({"name": "tus"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_resume_and_complete_on_the_local_disk() {
    t::chunks_resume_and_complete(&env().await, "tus").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_survives_a_restart_and_expires_with_its_bytes() {
    let mut e = env().await;
    let key = Some(e.secret.clone());
    let key = key.as_deref();
    let before = e.backend.count(REF).await;
    let len = CHUNK + 10;
    let r = create(&e, key, None, len, &metadata("tus", "r.bin", &[]), &[]).await;
    let path = upload_path(&r);
    let r = patch(&e, &path, key, None, 0, &[], pattern_body(0, CHUNK)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));

    // A new process: the state is in the database, the bytes in the store.
    e.restart();
    let r = head(&e, &path, key, None, &[]).await;
    assert_eq!(header(&r, "upload-offset"), CHUNK.to_string());
    let r = patch(&e, &path, key, None, CHUNK, &[], pattern_body(CHUNK, len)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
    assert_eq!(header(&r, "tus-complete"), "1");
    t::assert_pattern(&e, "tus/r.bin", len).await;

    // An unfinished upload past its expiry answers 404 and is removed with its bytes; creating an
    // upload sweeps the others.
    let mut paths = Vec::new();
    for name in ["x1.bin", "x2.bin"] {
        let r = create(&e, key, None, len, &metadata("tus", name, &[]), &[]).await;
        let p = upload_path(&r);
        let r = patch(&e, &p, key, None, 0, &[], pattern_body(0, CHUNK)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
        paths.push(p);
    }
    assert_eq!(e.backend.count(REF).await, before + 3);
    e.sql("UPDATE storage.resumable_uploads SET expires_at = now() - interval '1 hour' WHERE completed_at IS NULL")
        .await;
    let r = head(&e, &paths[0], key, None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(e.backend.count(REF).await, before + 2);
    create(&e, key, None, 1, &metadata("tus", "y.bin", &[]), &[]).await;
    assert_eq!(e.backend.count(REF).await, before + 1, "swept");
    let left = e
        .rows("SELECT count(*)::int AS n FROM storage.resumable_uploads WHERE expires_at < now()")
        .await;
    assert_eq!(left[0]["n"], 0);
    let r = patch(
        &e,
        &paths[1],
        key,
        None,
        CHUNK,
        &[],
        pattern_body(CHUNK, len),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_projects_limits_upsert_and_termination() {
    let e = env().await;
    let sk = e.secret.clone();
    let key = Some(sk.as_str());
    e.sql(
        "CREATE POLICY own_insert ON storage.objects FOR INSERT TO authenticated
           WITH CHECK (bucket_id = 'tus' AND (storage.foldername(name))[1] = auth.uid()::text);
         CREATE POLICY own_select ON storage.objects FOR SELECT TO authenticated
           USING (bucket_id = 'tus' AND (storage.foldername(name))[1] = auth.uid()::text);",
    )
    .await;
    let (a, b) = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    );
    let (ta, tb) = (e.user(a), e.user(b));
    let anon = Some(e.anon.as_str());

    // RLS decides at creation; the upload is then bound to its creator.
    let r = create(
        &e,
        anon,
        Some(&tb),
        5,
        &metadata("tus", &format!("{a}/x"), &[]),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", text(&r));
    let r = create(
        &e,
        anon,
        None,
        5,
        &metadata("tus", &format!("{a}/x"), &[]),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "anon has no policy");
    let r = create(&e, None, None, 5, &metadata("tus", "x", &[]), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no key");
    let r = create(
        &e,
        anon,
        Some(&ta),
        5,
        &metadata("tus", &format!("{a}/x"), &[]),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    let path = upload_path(&r);
    assert_eq!(
        head(&e, &path, anon, Some(&tb), &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        head(&e, &path, anon, None, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let r = patch(&e, &path, anon, Some(&tb), 0, &[], Body::from("hello")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(&e, &path, anon, Some(&ta), 0, &[], Body::from("hello")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
    let owner = e
        .rows(&format!(
            "SELECT owner_id FROM storage.objects WHERE name = '{a}/x'"
        ))
        .await;
    assert_eq!(owner[0]["owner_id"], a);

    // Another project does not know the upload.
    let other = e.cp.create_project("other", "storage-other").await;
    let other_key = other["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["type"] == "secret")
        .unwrap()["opaque_key"]
        .as_str()
        .unwrap()
        .to_string();
    let req = Request::builder()
        .method(Method::HEAD)
        .uri(format!("/p/storage-other/storage/v1{path}"))
        .header("apikey", &other_key)
        .header("tus-resumable", "1.0.0")
        .body(Body::empty())
        .unwrap();
    let res = e.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Limits: the protocol version, the bucket's size and types, a missing bucket.
    let r = e
        .send(
            Method::POST,
            "/upload/resumable",
            key,
            None,
            &[
                ("upload-length", "5"),
                ("upload-metadata", &metadata("tus", "v", &[])),
            ],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(header(&r, "tus-version"), "1.0.0");
    e.json(
        Method::POST,
        "/bucket",
        &sk,
        json!({"name": "small", "file_size_limit": "1MB", "allowed_mime_types": ["image/png"]}),
    )
    .await;
    let png = [("contentType", "image/png")];
    let r = create(
        &e,
        key,
        None,
        2 * MIB,
        &metadata("small", "a.png", &png),
        &[],
    )
    .await;
    assert_eq!(
        (r.status, text(&r)),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Maximum size exceeded".into()
        )
    );
    let r = create(&e, key, None, 65 * MIB, &metadata("tus", "big", &[]), &[]).await;
    assert_eq!(
        r.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "over the service's maximum"
    );
    let txt = [("contentType", "text/plain")];
    let r = create(&e, key, None, 10, &metadata("small", "a.txt", &txt), &[]).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = create(&e, key, None, 10, &metadata("nope", "a.txt", &[]), &[]).await;
    assert_eq!(
        (r.status, text(&r)),
        (StatusCode::NOT_FOUND, "Bucket not found".into())
    );
    let r = create(&e, key, None, 10, &format!("objectName {}", b64("a")), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Upsert: refused at creation without x-upsert, replaces with it (the data comes with the POST).
    let meta = metadata("tus", "up.txt", &txt);
    e.upload_as("tus/up.txt", &sk, None, b"old").await;
    let r = create(&e, key, None, 3, &meta, &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", text(&r));
    let r = e
        .send(
            Method::POST,
            "/upload/resumable",
            key,
            None,
            &[
                ("tus-resumable", "1.0.0"),
                ("upload-length", "3"),
                ("upload-metadata", &meta),
                ("x-upsert", "true"),
                ("content-type", "application/offset+octet-stream"),
            ],
            Body::from("new"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    assert_eq!(header(&r, "upload-offset"), "3");
    assert_eq!(
        &e.get("/object/tus/up.txt", key, &[]).await.body[..],
        b"new"
    );

    // An empty upload is complete at its creation.
    let r = create(&e, key, None, 0, &metadata("tus", "empty.txt", &txt), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    let r = e.get("/object/tus/empty.txt", key, &[]).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, 0));

    // Termination removes the upload and its bytes.
    let before = e.backend.count(REF).await;
    let r = create(&e, key, None, CHUNK + 1, &metadata("tus", "gone", &[]), &[]).await;
    let path = upload_path(&r);
    patch(&e, &path, key, None, 0, &[], pattern_body(0, CHUNK)).await;
    assert_eq!(e.backend.count(REF).await, before + 1);
    let del = [("tus-resumable", "1.0.0")];
    let r = e
        .send(Method::DELETE, &path, key, None, &del, Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        head(&e, &path, key, None, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(e.backend.count(REF).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_resumable_uploads_need_no_key() {
    let e = env().await;
    let sk = e.secret.clone();
    let r = e
        .send(
            Method::POST,
            "/object/upload/sign/tus/signed.bin",
            Some(&sk),
            None,
            &[],
            Body::empty(),
        )
        .await;
    let token = r.json()["token"].as_str().unwrap().to_string();
    let meta = metadata("tus", "signed.bin", &[("metadata", r#"{"via":"sign"}"#)]);
    let sig = [("x-signature", token.as_str())];

    let r = create_at(&e, "/upload/resumable/sign", None, None, 3, &meta, &[]).await;
    assert_eq!(
        (r.status, text(&r)),
        (StatusCode::BAD_REQUEST, "Missing x-signature header".into())
    );
    let other = metadata("tus", "other.bin", &[]);
    let r = create_at(&e, "/upload/resumable/sign", None, None, 3, &other, &sig).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the token is for another object"
    );
    let r = create_at(
        &e,
        "/upload/resumable/sign",
        None,
        None,
        CHUNK + 3,
        &meta,
        &sig,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    let path = upload_path(&r);
    assert!(path.starts_with("/upload/resumable/sign/"), "{path}");
    let plain = path.replace("/sign/", "/");
    assert_eq!(
        head(&e, &plain, Some(&sk), None, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        head(&e, &path, None, None, &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    let r = patch(&e, &path, None, None, 0, &sig, pattern_body(0, CHUNK)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
    let r = head(&e, &path, None, None, &sig).await;
    assert_eq!(header(&r, "upload-offset"), CHUNK.to_string());
    let r = patch(
        &e,
        &path,
        None,
        None,
        CHUNK,
        &sig,
        pattern_body(CHUNK, CHUNK + 3),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
    t::assert_pattern(&e, "tus/signed.bin", CHUNK + 3).await;
    let info = e
        .get("/object/info/tus/signed.bin", Some(&sk), &[])
        .await
        .json();
    assert_eq!(info["metadata"], json!({"via": "sign"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_uploads_carry_user_metadata() {
    let e = env().await;
    let sk = e.secret.clone();
    let info = |p: &'static str| {
        let e = &e;
        async move {
            e.get(&format!("/object/info/tus/{p}"), Some(&e.secret), &[])
                .await
        }
    };

    // A multipart `metadata` field, as storage3 and storage-js send it with a file.
    let body = "--B\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n60\r\n\
                --B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"k\":\"v\",\"n\":[1,2]}\r\n\
                --B\r\nContent-Disposition: form-data; name=\"\"; filename=\"f\"\r\n\
                Content-Type: text/plain\r\n\r\nform bytes\r\n--B--\r\n";
    let r = e
        .send(
            Method::POST,
            "/object/tus/form.txt",
            Some(&sk),
            None,
            &[("content-type", "multipart/form-data; boundary=B")],
            Body::from(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(
        info("form.txt").await.json()["metadata"],
        json!({"k": "v", "n": [1, 2]})
    );
    assert_eq!(
        &e.get("/object/tus/form.txt", Some(&sk), &[]).await.body[..],
        b"form bytes"
    );

    // The `x-metadata` header (base64 JSON) with raw bytes, as storage-js sends it; replaced on upsert.
    let x = b64(r#"{"raw":true}"#);
    let send = |name: &'static str, x: String, upsert: &'static str| {
        let e = &e;
        async move {
            e.send(
                Method::POST,
                &format!("/object/tus/{name}"),
                Some(&e.secret),
                None,
                &[
                    ("content-type", "text/plain"),
                    ("x-metadata", &x),
                    ("x-upsert", upsert),
                ],
                Body::from("raw bytes"),
            )
            .await
        }
    };
    assert_eq!(send("raw.txt", x, "false").await.status, StatusCode::OK);
    assert_eq!(
        info("raw.txt").await.json()["metadata"],
        json!({"raw": true})
    );
    let r = send("raw.txt", b64(r#"{"second":1}"#), "true").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        info("raw.txt").await.json()["metadata"],
        json!({"second": 1})
    );

    // Copies keep it; bad or oversized metadata is refused before anything is stored.
    let r = e
        .json(
            Method::POST,
            "/object/copy",
            &sk,
            json!({"bucketId": "tus", "sourceKey": "raw.txt", "destinationKey": "copy.txt"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(
        info("copy.txt").await.json()["metadata"],
        json!({"second": 1})
    );
    let before = e.backend.count(REF).await;
    for bad in [
        b64("[1,2]"),
        "%%%".to_string(),
        b64(&format!("{{\"a\":\"{}\"}}", "x".repeat(17_000))),
    ] {
        let r = send("bad.txt", bad, "false").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json());
    }
    assert_eq!(e.backend.count(REF).await, before);
}
