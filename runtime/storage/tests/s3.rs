//! Storage on S3: the scenario every backend passes (`common::scenario`), with the objects in a bucket of
//! the AWS emulator (`moto_server`, [`testkit::moto`]) reached as in production (object_store over the
//! runtime's hyper client, credentials from the environment, keys below a prefix). Then what only S3
//! shows: an upload of three parts (moto refuses parts below 5 MiB but the last, as S3 does) and a range
//! across a part boundary, a 50 MiB upload and download streamed both ways with this process's peak
//! memory measured, resumable (TUS) uploads of 6 MiB chunks (`common::tus`: a dropped chunk, conflicts,
//! completion into one object), the keys' layout in the bucket, and a deleted project's objects deleted.
//!
//! What moto cannot show: the task role's IAM policy and the bucket's TLS-only policy in force.
//! The environment is set before any thread exists, so this file holds a single test.

mod common;

use axum::body::Body;
use bytes::Bytes;
use common::{env_with, scenario, Env, REF};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use testkit::moto::MotoServer;

const BUCKET: &str = "supactl-storage-test";
const PREFIX: &str = "objects";
const MIB: u64 = 1024 * 1024;

#[test]
fn storage_on_s3() {
    let moto = MotoServer::start(&[]);
    // static credentials from the environment, as object_store reads them; no metadata service
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }
    for k in [
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        std::env::remove_var(k);
    }
    let created = moto.request("PUT", &format!("/{BUCKET}")).unwrap();
    assert!(created.contains(" 200 "), "{created}");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(&moto));
}

async fn run(moto: &MotoServer) {
    let location = storage::S3Location {
        bucket: BUCKET.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(moto.endpoint()),
        prefix: Some(PREFIX.into()),
    };
    let e = env_with(Some(location), 64 * MIB).await;
    scenario::buckets_objects_and_urls(&e).await;

    let r = e
        .json(Method::POST, "/bucket", &e.secret, json!({"name": "big"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    memory_stays_flat(&e).await;
    parts_and_ranges(&e).await;
    common::tus::chunks_resume_and_complete(&e, "big").await;
    resumable_memory_stays_flat(&e).await;

    // The keys are `<prefix>/<ref>/<version>` in the bucket.
    e.upload_as("big/last.txt", &e.secret, None, b"last").await;
    let listing = moto
        .get(&format!("/{BUCKET}?list-type=2&prefix={PREFIX}/{REF}/"))
        .unwrap();
    assert!(
        listing.contains(&format!("<Key>{PREFIX}/{REF}/")),
        "{listing}"
    );
    assert_eq!(e.delete_project().await, 0);
    let listing = moto.get(&format!("/{BUCKET}?list-type=2")).unwrap();
    assert!(!listing.contains("<Key>"), "{listing}");
}

/// Byte `i` of a test object (251 is prime: no two parts look alike).
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// A streamed body of `len` bytes of [`pattern`], made 64 KiB at a time.
fn pattern_body(len: u64) -> Body {
    const CHUNK: u64 = 64 * 1024;
    let chunks = (0..len.div_ceil(CHUNK)).map(move |c| {
        let bytes: Vec<u8> = (c * CHUNK..len.min((c + 1) * CHUNK)).map(pattern).collect();
        Ok::<_, std::convert::Infallible>(Bytes::from(bytes))
    });
    Body::from_stream(futures_util::stream::iter(chunks))
}

async fn upload(e: &Env, path: &str, len: u64) {
    let r = e
        .send(
            Method::POST,
            &format!("/object/{path}"),
            Some(&e.secret),
            None,
            &[("content-type", "application/octet-stream")],
            pattern_body(len),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
}

/// Reads `path` as a stream, checking every byte against [`pattern`] from `offset`: the length read.
async fn download(e: &Env, path: &str, range: Option<&str>, offset: u64) -> (StatusCode, u64) {
    let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
    let res = e
        .streamed(
            Method::GET,
            &format!("/object/{path}"),
            Some(&e.secret),
            None,
            &headers,
            Body::empty(),
        )
        .await;
    let status = res.status();
    let mut body = res.into_body();
    let mut at = offset;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            for b in data.iter() {
                assert_eq!(*b, pattern(at), "byte {at} of {path}");
                at += 1;
            }
        }
    }
    (status, at - offset)
}

/// Three parts (5 + 5 + 2 MiB): S3 takes them only at [`storage::backend::S3_PART_SIZE`] and up.
async fn parts_and_ranges(e: &Env) {
    let len = 12 * MIB + 3;
    upload(e, "big/parts.bin", len).await;
    assert_eq!(
        download(e, "big/parts.bin", None, 0).await,
        (StatusCode::OK, len)
    );
    let boundary = storage::backend::S3_PART_SIZE as u64;
    let (from, to) = (boundary - 10, boundary + 9);
    let range = format!("bytes={from}-{to}");
    assert_eq!(
        download(e, "big/parts.bin", Some(&range), from).await,
        (StatusCode::PARTIAL_CONTENT, 20)
    );
}

/// This process's `VmHWM` or `VmRSS` in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A 50 MiB upload and download hold a few parts at a time, never the object: the peak resident
/// memory (reset first through `/proc/self/clear_refs`) grows by far less than the object's size.
async fn memory_stays_flat(e: &Env) {
    let len = 50 * MIB;
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib(if reset { "VmRSS:" } else { "VmHWM:" });
    upload(e, "big/fifty.bin", len).await;
    assert_eq!(
        download(e, "big/fifty.bin", None, 0).await,
        (StatusCode::OK, len)
    );
    let grown = status_kib("VmHWM:").saturating_sub(before) / 1024;
    println!("s3: a 50 MiB upload and download grew the peak resident memory by {grown} MiB");
    assert!(grown < 40, "the peak grew by {grown} MiB");
}

/// A 48 MiB resumable upload (eight 6 MiB chunks, then their assembly into one object) holds a part at a
/// time, never a chunk or the object: the peak resident memory grows by far less than the object.
async fn resumable_memory_stays_flat(e: &Env) {
    use common::tus::{create, metadata, patch, pattern_body, upload_path, CHUNK};
    let len = 8 * CHUNK;
    let key = Some(e.secret.as_str());
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib(if reset { "VmRSS:" } else { "VmHWM:" });
    let r = create(e, key, None, len, &metadata("big", "tus-48.bin", &[]), &[]).await;
    let path = upload_path(&r);
    for i in 0..8 {
        let (from, to) = (i * CHUNK, (i + 1) * CHUNK);
        let r = patch(e, &path, key, None, from, &[], pattern_body(from, to)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "chunk {i}");
    }
    let grown = status_kib("VmHWM:").saturating_sub(before) / 1024;
    assert_eq!(
        download(e, "big/tus-48.bin", None, 0).await,
        (StatusCode::OK, len)
    );
    println!("s3: a 48 MiB resumable upload grew the peak resident memory by {grown} MiB");
    assert!(grown < 32, "the peak grew by {grown} MiB");
}
