//! The Storage API scenario every backend passes (`api.rs` on the local disk, `s3.rs` on the emulator's
//! S3): buckets, uploads and downloads, listing, move/copy/remove, public and signed URLs, limits and odd
//! names.

use super::{multipart, zeros, Env, REF};
use axum::body::Body;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

pub async fn buckets_objects_and_urls(e: &Env) {
    let sk = e.secret.clone();

    // Buckets.
    let r = e
        .json(
            Method::POST,
            "/bucket",
            &sk,
            json!({"name": "docs", "file_size_limit": "1MB"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"name": "docs"}))
    );
    let r = e
        .json(Method::POST, "/bucket", &sk, json!({"name": "docs"}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (StatusCode::CONFLICT, json!("Duplicate"))
    );
    let r = e.get("/bucket", Some(&sk), &[]).await;
    let b = &r.json()[0];
    assert_eq!(
        (&b["id"], &b["owner"], &b["public"], &b["file_size_limit"]),
        (&json!("docs"), &json!(""), &json!(false), &json!(1048576))
    );
    // anon sees no bucket without a policy
    assert_eq!(e.get("/bucket", Some(&e.anon), &[]).await.json(), json!([]));
    let r = e.get("/bucket/nope", Some(&sk), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Upload (multipart, as storage3 sends it) and download equal bytes, with odd but safe names.
    let name = "a b/日本語 ファイル.txt";
    let encoded =
        "docs/a%20b/%E6%97%A5%E6%9C%AC%E8%AA%9E%20%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.txt";
    let (ct, body) = multipart("60", "text/plain", b"hello storage");
    let r = e
        .send(
            Method::POST,
            &format!("/object/{encoded}"),
            Some(&sk),
            None,
            &[("content-type", &ct)],
            Body::from(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.json()["Key"], format!("docs/{name}"));
    let r = e
        .send(
            Method::POST,
            &format!("/object/{encoded}"),
            Some(&sk),
            None,
            &[("content-type", &ct)],
            Body::from(body),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "no upsert: the object exists"
    );
    let r = e.get(&format!("/object/{encoded}"), Some(&sk), &[]).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &b"hello storage"[..])
    );
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.headers["cache-control"], "max-age=60");
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let r = e
        .get(
            &format!("/object/{encoded}"),
            Some(&sk),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = e
        .get(
            &format!("/object/authenticated/{encoded}"),
            Some(&sk),
            &[("range", "bytes=6-12")],
        )
        .await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::PARTIAL_CONTENT, &b"storage"[..])
    );
    assert_eq!(r.headers["content-range"], "bytes 6-12/13");
    let r = e
        .get(&format!("/object/{encoded}?download"), Some(&sk), &[])
        .await;
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));

    // Upsert replaces the bytes and leaves one stored object.
    let r = e
        .send(
            Method::POST,
            "/object/docs/up.txt",
            Some(&sk),
            None,
            &[("content-type", "text/plain")],
            Body::from("v1"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = e
        .send(
            Method::POST,
            "/object/docs/up.txt",
            Some(&sk),
            None,
            &[("content-type", "text/plain"), ("x-upsert", "true")],
            Body::from("v2"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        &e.get("/object/docs/up.txt", Some(&sk), &[]).await.body[..],
        b"v2"
    );
    assert_eq!(e.backend.count(REF).await, 2);

    // Missing objects: 404 not_found (HEAD without a body, as exists() expects).
    let r = e.get("/object/docs/missing.txt", Some(&sk), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        json!({"statusCode": "404", "error": "not_found", "message": "Object not found"})
    );
    let r = e
        .send(
            Method::HEAD,
            "/object/docs/missing.txt",
            Some(&sk),
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!((r.status, r.body.len()), (StatusCode::NOT_FOUND, 0));
    let r = e
        .send(
            Method::HEAD,
            "/object/docs/up.txt",
            Some(&sk),
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, 0));
    assert_eq!(r.headers["content-length"], "2");

    // Odd names are refused before anything is stored.
    for bad in [
        "/object/docs/..%2F..%2Fetc%2Fpasswd",
        "/object/docs/a%00b",
        "/object/docs/a//b",
    ] {
        let r = e.upload_as(&bad["/object/".len()..], &sk, None, b"x").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.json());
    }
    let long = format!("docs/{}", "x".repeat(1025));
    assert_eq!(
        e.upload_as(&long, &sk, None, b"x").await.status,
        StatusCode::BAD_REQUEST
    );

    // Limits: the bucket's size (nothing left behind) and MIME types.
    let before = e.backend.count(REF).await;
    let r = e
        .json(
            Method::PUT,
            "/bucket/docs",
            &sk,
            json!({"file_size_limit": 10, "allowed_mime_types": ["text/*"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let r = e.upload_as("docs/big.txt", &sk, None, b"01234567890").await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = e
        .send(
            Method::POST,
            "/object/docs/p.png",
            Some(&sk),
            None,
            &[("content-type", "image/png")],
            Body::from("png"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(e.backend.count(REF).await, before);
    let r = e
        .json(
            Method::PUT,
            "/bucket/docs",
            &sk,
            json!({"file_size_limit": null, "allowed_mime_types": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // and the service's own maximum still bounds every bucket
    let r = e
        .send(
            Method::POST,
            "/object/docs/huge.bin",
            Some(&sk),
            None,
            &[("content-type", "text/plain")],
            zeros(e.max_object_size + 1),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Listing: a folder's files and sub-folders, search, sort, paging.
    for n in ["f/x.txt", "f/sub/y.txt", "f/a.txt", "top.txt"] {
        assert_eq!(
            e.upload_as(&format!("docs/{n}"), &sk, None, n.as_bytes())
                .await
                .status,
            StatusCode::OK
        );
    }
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = e
        .json(
            Method::POST,
            "/object/list/docs",
            &sk,
            json!({"prefix": "f", "limit": 100, "offset": 0}),
        )
        .await;
    assert_eq!(names(r.json()), ["a.txt", "sub", "x.txt"]);
    assert_eq!(r.json()[1]["id"], Value::Null, "a folder has no id");
    let r = e
        .json(
            Method::POST,
            "/object/list/docs",
            &sk,
            json!({"prefix": "", "sortBy": {"column": "name", "order": "desc"}}),
        )
        .await;
    assert_eq!(names(r.json()), ["up.txt", "top.txt", "f", "a b"]);
    let r = e
        .json(
            Method::POST,
            "/object/list/docs",
            &sk,
            json!({"prefix": "f/", "search": "X", "limit": 1}),
        )
        .await;
    assert_eq!(names(r.json()), ["x.txt"]);
    let r = e
        .json(
            Method::POST,
            "/object/list/docs",
            &sk,
            json!({"prefix": "f", "limit": 1, "offset": 1}),
        )
        .await;
    assert_eq!(names(r.json()), ["sub"]);

    // Move, copy, info, remove several.
    let r = e
        .json(
            Method::POST,
            "/object/move",
            &sk,
            json!({"bucketId": "docs", "sourceKey": "f/a.txt", "destinationKey": "g/a.txt"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(
        e.get("/object/docs/f/a.txt", Some(&sk), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        &e.get("/object/docs/g/a.txt", Some(&sk), &[]).await.body[..],
        b"f/a.txt"
    );
    let r = e
        .json(
            Method::POST,
            "/object/copy",
            &sk,
            json!({"bucketId": "docs", "sourceKey": "g/a.txt", "destinationKey": "g/b.txt"}),
        )
        .await;
    assert_eq!(r.json()["Key"], "docs/g/b.txt");
    assert_eq!(
        &e.get("/object/docs/g/b.txt", Some(&sk), &[]).await.body[..],
        b"f/a.txt"
    );
    let r = e
        .json(
            Method::POST,
            "/object/move",
            &sk,
            json!({"bucketId": "docs", "sourceKey": "nope", "destinationKey": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = e.get("/object/info/docs/g/b.txt", Some(&sk), &[]).await;
    assert_eq!(
        (r.json()["size"].clone(), r.json()["name"].clone()),
        (json!(7), json!("g/b.txt"))
    );
    let r = e
        .json(
            Method::DELETE,
            "/object/docs",
            &sk,
            json!({"prefixes": ["g/a.txt", "g/b.txt", "g/none"]}),
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert_eq!(
        e.get("/object/docs/g/b.txt", Some(&sk), &[]).await.status,
        StatusCode::NOT_FOUND
    );

    // Public URLs need no key once the bucket is public.
    assert_eq!(
        e.get("/object/public/docs/top.txt", None, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        e.get("/object/docs/top.txt", None, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    e.json(Method::PUT, "/bucket/docs", &sk, json!({"public": true}))
        .await;
    let r = e.get("/object/public/docs/top.txt", None, &[]).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"top.txt"[..]));

    // Signed URLs: bound to their object, no key needed, expiry to the second.
    e.json(Method::PUT, "/bucket/docs", &sk, json!({"public": false}))
        .await;
    let r = e
        .json(
            Method::POST,
            "/object/sign/docs/top.txt",
            &sk,
            json!({"expiresIn": "60"}),
        )
        .await;
    let url = r.json()["signedURL"].as_str().unwrap().to_string();
    assert!(url.starts_with("/object/sign/docs/top.txt?token="), "{url}");
    let r = e.get(&url, None, &[]).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"top.txt"[..]));
    let other = url.replace("top.txt?", "up.txt?");
    assert_eq!(
        e.get(&other, None, &[]).await.json()["error"],
        "InvalidSignature"
    );
    let r = e
        .json(
            Method::POST,
            "/object/sign/docs",
            &sk,
            json!({"expiresIn": 60, "paths": ["top.txt", "none"]}),
        )
        .await;
    let batch = r.json();
    assert_eq!(batch[0]["error"], Value::Null);
    assert_eq!(batch[1]["signedURL"], "");
    assert_eq!(
        e.get(batch[0]["signedURL"].as_str().unwrap(), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let r = e
        .json(
            Method::POST,
            "/object/sign/docs/top.txt",
            &sk,
            json!({"expiresIn": 1}),
        )
        .await;
    let short = r.json()["signedURL"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = e.get(&short, None, &[]).await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("jwt expired"))
    );

    // Signed upload URLs: the upload needs no key.
    let r = e
        .send(
            Method::POST,
            "/object/upload/sign/docs/signed.txt",
            Some(&sk),
            None,
            &[],
            Body::empty(),
        )
        .await;
    let url = r.json()["url"].as_str().unwrap().to_string();
    let r = e
        .send(
            Method::PUT,
            &url,
            None,
            None,
            &[("content-type", "text/plain")],
            Body::from("via url"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["Key"].clone()),
        (StatusCode::OK, json!("docs/signed.txt"))
    );
    assert_eq!(
        &e.get("/object/docs/signed.txt", Some(&sk), &[]).await.body[..],
        b"via url"
    );
    let r = e
        .send(
            Method::PUT,
            &url,
            None,
            None,
            &[("content-type", "text/plain")],
            Body::from("again"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "no upsert granted");

    // Buckets are deleted only once empty.
    let r = e
        .send(
            Method::DELETE,
            "/bucket/docs",
            Some(&sk),
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = e
        .send(
            Method::POST,
            "/bucket/docs/empty",
            Some(&sk),
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(e.backend.count(REF).await, 0);
    let r = e
        .send(
            Method::DELETE,
            "/bucket/docs",
            Some(&sk),
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
}
