//! Resumable (TUS) uploads as tus-js-client drives them, on any backend (`tus.rs` on the local disk,
//! `s3.rs` on the emulator's S3): create, chunks of 6 MiB, a chunk whose connection drops, offset
//! conflicts, concurrent chunks, a restart between chunks, completion, and what a finished upload
//! leaves behind.

use super::{Env, Res, REF};
use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

pub const MIB: u64 = 1024 * 1024;
pub const CHUNK: u64 = 6 * MIB;

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Byte `i` of a test object (251 is prime: no two chunks look alike).
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// Bytes `from..to` of [`pattern`], streamed 64 KiB at a time.
pub fn pattern_body(from: u64, to: u64) -> Body {
    const STEP: u64 = 64 * 1024;
    let chunks = (from..to).step_by(STEP as usize).map(move |a| {
        let bytes: Vec<u8> = (a..to.min(a + STEP)).map(pattern).collect();
        Ok::<_, std::io::Error>(Bytes::from(bytes))
    });
    Body::from_stream(futures_util::stream::iter(chunks))
}

/// `bytes` of [`pattern`] from `from`, then the connection fails.
pub fn dropped_body(from: u64, bytes: u64) -> Body {
    let data: Vec<u8> = (from..from + bytes).map(pattern).collect();
    let items = vec![
        Ok(Bytes::from(data)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    Body::from_stream(futures_util::stream::iter(items))
}

/// The `Upload-Metadata` header of an upload of `bucket/name` (plus `extra` pairs).
pub fn metadata(bucket: &str, name: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        format!("bucketName {}", b64(bucket)),
        format!("objectName {}", b64(name)),
    ];
    pairs.extend(extra.iter().map(|(k, v)| format!("{k} {}", b64(v))));
    pairs.join(",")
}

/// The path below `/storage/v1` of an upload's `Location`.
pub fn upload_path(r: &Res) -> String {
    let location = r.headers["location"].to_str().unwrap();
    location
        .strip_prefix(&format!("/p/{REF}/storage/v1"))
        .unwrap_or_else(|| panic!("unexpected Location {location}"))
        .to_string()
}

pub fn header(r: &Res, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub fn text(r: &Res) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Creates an upload as tus-js-client does (no data with the POST).
pub async fn create(
    e: &Env,
    key: Option<&str>,
    token: Option<&str>,
    length: u64,
    meta: &str,
    extra: &[(&str, &str)],
) -> Res {
    create_at(e, "/upload/resumable", key, token, length, meta, extra).await
}

pub async fn create_at(
    e: &Env,
    path: &str,
    key: Option<&str>,
    token: Option<&str>,
    length: u64,
    meta: &str,
    extra: &[(&str, &str)],
) -> Res {
    let length = length.to_string();
    let mut headers = vec![
        ("tus-resumable", "1.0.0"),
        ("upload-length", length.as_str()),
        ("upload-metadata", meta),
    ];
    headers.extend_from_slice(extra);
    e.send(Method::POST, path, key, token, &headers, Body::empty())
        .await
}

/// A chunk at `offset`.
pub async fn patch(
    e: &Env,
    path: &str,
    key: Option<&str>,
    token: Option<&str>,
    offset: u64,
    extra: &[(&str, &str)],
    body: Body,
) -> Res {
    let offset = offset.to_string();
    let mut headers = vec![
        ("tus-resumable", "1.0.0"),
        ("content-type", "application/offset+octet-stream"),
        ("upload-offset", offset.as_str()),
    ];
    headers.extend_from_slice(extra);
    e.send(Method::PATCH, path, key, token, &headers, body)
        .await
}

pub async fn head(
    e: &Env,
    path: &str,
    key: Option<&str>,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Res {
    let mut headers = vec![("tus-resumable", "1.0.0")];
    headers.extend_from_slice(extra);
    e.send(Method::HEAD, path, key, token, &headers, Body::empty())
        .await
}

/// Checks `path` downloads as [`pattern`] bytes `0..len`.
pub async fn assert_pattern(e: &Env, path: &str, len: u64) -> Res {
    let r = e
        .get(&format!("/object/{path}"), Some(&e.secret), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(r.body.len() as u64, len);
    let first_bad = r
        .body
        .iter()
        .enumerate()
        .find(|(i, b)| **b != pattern(*i as u64));
    assert!(first_bad.is_none(), "byte {first_bad:?} differs");
    r
}

/// The scenario every backend passes (`bucket` exists, takes 64 MiB, no policy: the secret key).
pub async fn chunks_resume_and_complete(e: &Env, bucket: &str) {
    let sk = e.secret.clone();
    let key = Some(sk.as_str());
    let len = 2 * CHUNK + MIB + 5;
    let meta = metadata(
        bucket,
        "videos/big.bin",
        &[
            ("contentType", "text/plain"),
            ("cacheControl", "3600"),
            ("metadata", r#"{"camera":"x100","takes":3}"#),
        ],
    );

    // Discovery needs no key.
    let r = e
        .send(
            Method::OPTIONS,
            "/upload/resumable",
            None,
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "tus-version"), "1.0.0");
    assert_eq!(
        header(&r, "tus-extension"),
        "creation,creation-with-upload,termination,expiration"
    );
    assert_eq!(header(&r, "tus-max-size"), e.max_object_size.to_string());
    // a browser's CORS preflight is still the gateway's, and browsers may read the TUS headers
    let preflight = [("access-control-request-method", "PATCH")];
    let r = e
        .send(
            Method::OPTIONS,
            "/upload/resumable",
            None,
            None,
            &preflight,
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(header(&r, "access-control-allow-methods").contains("PATCH"));
    assert_eq!(header(&r, "tus-version"), "");
    assert!(header(&r, "access-control-expose-headers").contains("Upload-Offset"));

    let before = e.backend.count(REF).await;
    let r = create(e, key, None, len, &meta, &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    assert_eq!(header(&r, "tus-resumable"), "1.0.0");
    let expires = header(&r, "upload-expires");
    assert!(expires.ends_with(" GMT"), "{expires}");
    let path = upload_path(&r);
    assert!(path.starts_with("/upload/resumable/"), "{path}");

    let r = head(e, &path, key, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (header(&r, "upload-offset"), header(&r, "upload-length")),
        ("0".into(), len.to_string())
    );
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "upload-metadata"), meta);

    // The connection drops 2 MiB into the first chunk: nothing is kept, the offset stays.
    let r = patch(e, &path, key, None, 0, &[], dropped_body(0, 2 * MIB)).await;
    assert!(r.status.is_client_error() || r.status.is_server_error());
    let r = head(e, &path, key, None, &[]).await;
    assert_eq!(header(&r, "upload-offset"), "0");
    assert_eq!(
        e.backend.count(REF).await,
        before,
        "no bytes of a dropped chunk"
    );

    // A chunk at another offset conflicts; a chunk not of 6 MiB (not the last) is refused.
    let r = patch(e, &path, key, None, 5, &[], pattern_body(5, 5 + CHUNK)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", text(&r));
    let r = patch(e, &path, key, None, 0, &[], pattern_body(0, MIB)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", text(&r));
    let r = e
        .send(
            Method::PATCH,
            &path,
            key,
            None,
            &[("tus-resumable", "1.0.0"), ("upload-offset", "0")],
            Body::from("x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Chunk 1, then chunk 2 twice at once: one wins, the other conflicts.
    let r = patch(e, &path, key, None, 0, &[], pattern_body(0, CHUNK)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
    assert_eq!(header(&r, "upload-offset"), CHUNK.to_string());
    assert!(!header(&r, "upload-expires").is_empty());
    let (a, b) = tokio::join!(
        patch(
            e,
            &path,
            key,
            None,
            CHUNK,
            &[],
            pattern_body(CHUNK, 2 * CHUNK)
        ),
        patch(
            e,
            &path,
            key,
            None,
            CHUNK,
            &[],
            pattern_body(CHUNK, 2 * CHUNK)
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
        "{} / {}",
        text(&a),
        text(&b)
    );
    let r = head(e, &path, key, None, &[]).await;
    assert_eq!(header(&r, "upload-offset"), (2 * CHUNK).to_string());
    let object = format!("{bucket}/videos/big.bin");
    let r = e.get(&format!("/object/{object}"), key, &[]).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "not visible before the end"
    );

    // The last chunk: the object appears whole, with its type, cache control and user metadata.
    let r = patch(
        e,
        &path,
        key,
        None,
        2 * CHUNK,
        &[],
        pattern_body(2 * CHUNK, len),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
    assert_eq!(header(&r, "upload-offset"), len.to_string());
    let r = assert_pattern(e, &object, len).await;
    assert_eq!(header(&r, "content-type"), "text/plain");
    assert_eq!(header(&r, "cache-control"), "max-age=3600");
    let info = e
        .get(&format!("/object/info/{object}"), key, &[])
        .await
        .json();
    assert_eq!(info["metadata"], json!({"camera": "x100", "takes": 3}));
    assert_eq!(info["size"], json!(len));

    // A finished upload still answers its final offset; only the object's bytes remain.
    let r = head(e, &path, key, None, &[]).await;
    assert_eq!(header(&r, "upload-offset"), len.to_string());
    assert_eq!(e.backend.count(REF).await, before + 1);
    let r = e
        .send(
            Method::DELETE,
            &path,
            key,
            None,
            &[("tus-resumable", "1.0.0")],
            Body::empty(),
        )
        .await;
    assert_eq!(
        (r.status, text(&r)),
        (
            StatusCode::BAD_REQUEST,
            "Cannot terminate an already completed upload".into()
        )
    );
}
