//! An upload's body as a stream of bytes, whatever its form: `multipart/form-data` with the file in a
//! part named `file` (storage3) or unnamed (storage-js) after optional `cacheControl` and `metadata`
//! fields, or the raw bytes with `Content-Type`, `Cache-Control` and `x-metadata` (base64 JSON, as
//! storage-js sends it) headers. The user metadata is a JSON object of at most [`MAX_USER_METADATA`]
//! bytes. Nothing is buffered beyond the chunk in hand (multer parses the parts as they stream); each
//! chunk must arrive within the idle timeout.

use crate::error::{StorageError, StorageResult};
use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use http::{header, HeaderMap, StatusCode};
use std::time::Duration;

/// Longest `cacheControl` field or header kept.
const MAX_CACHE_CONTROL: usize = 256;
/// Largest non-file multipart field read (`cacheControl`, `metadata`).
const MAX_FIELD: u64 = 64 * 1024;
/// Largest user metadata kept (its JSON text), however it comes.
pub const MAX_USER_METADATA: usize = 16 * 1024;

pub struct Upload {
    /// The declared type of the bytes (a part's own `Content-Type` in a multipart body).
    pub content_type: String,
    pub cache_control: String,
    /// The user's metadata (`storage.objects.user_metadata`).
    pub user_metadata: Option<serde_json::Value>,
    pub data: BoxStream<'static, StorageResult<Bytes>>,
}

/// User metadata from its JSON text: an object of at most [`MAX_USER_METADATA`] bytes.
pub fn user_metadata(text: &str) -> StorageResult<serde_json::Value> {
    if text.len() > MAX_USER_METADATA {
        return Err(StorageError::bad_request(format!(
            "metadata is larger than {MAX_USER_METADATA} bytes"
        )));
    }
    match serde_json::from_str(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        _ => Err(StorageError::bad_request("metadata must be a JSON object")),
    }
}

/// The `x-metadata` header: base64 of the metadata's JSON.
fn metadata_header(headers: &HeaderMap) -> StorageResult<Option<serde_json::Value>> {
    let Some(v) = headers.get("x-metadata") else {
        return Ok(None);
    };
    let raw = v.as_bytes();
    if raw.len() > MAX_USER_METADATA * 4 / 3 + 4 {
        return Err(StorageError::bad_request(format!(
            "metadata is larger than {MAX_USER_METADATA} bytes"
        )));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw.trim_ascii())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| StorageError::bad_request("x-metadata must be base64 of a JSON object"))?;
    user_metadata(&decoded).map(Some)
}

/// A raw body's bytes (a resumable upload's chunk), each chunk due within `idle`.
pub fn raw(body: Body, idle: Duration) -> BoxStream<'static, StorageResult<Bytes>> {
    timed(body, idle).map(|r| r.map_err(interrupted)).boxed()
}

/// The client's body with each chunk due within `idle`.
fn timed(body: Body, idle: Duration) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let s = body.into_data_stream();
    futures_util::stream::unfold(Some(s), move |s| async move {
        let mut s = s?;
        match tokio::time::timeout(idle, s.next()).await {
            Ok(Some(Ok(b))) => Some((Ok(b), Some(s))),
            Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e.to_string())), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no upload data within the idle timeout",
                )),
                None,
            )),
        }
    })
    .boxed()
}

fn interrupted(e: impl std::fmt::Display) -> StorageError {
    let text = e.to_string();
    if text.contains("idle timeout") {
        return StorageError::new(StatusCode::REQUEST_TIMEOUT, "RequestTimeout", text);
    }
    if text.contains("body limit") || text.contains("length limit") {
        return StorageError::too_large();
    }
    StorageError::bad_request(format!("the upload could not be read: {text}"))
}

fn cache_control(v: &str) -> String {
    v.chars().take(MAX_CACHE_CONTROL).collect()
}

/// Reads the upload's form; `limit` bounds the file (enforced again as it is stored).
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    idle: Duration,
    limit: u64,
) -> StorageResult<Upload> {
    let text = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let content_type = text(header::CONTENT_TYPE).unwrap_or("").to_string();
    let stream = timed(body, idle);
    match multer::parse_boundary(&content_type) {
        Ok(boundary) if content_type.starts_with("multipart/form-data") => {
            multipart(stream, boundary, limit).await
        }
        _ => Ok(Upload {
            user_metadata: metadata_header(headers)?,
            content_type: if content_type.is_empty() {
                "application/octet-stream".into()
            } else {
                content_type
            },
            cache_control: text(header::CACHE_CONTROL)
                .map(cache_control)
                .unwrap_or_else(|| "no-cache".into()),
            data: stream.map(|r| r.map_err(interrupted)).boxed(),
        }),
    }
}

async fn multipart(
    stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
    boundary: String,
    limit: u64,
) -> StorageResult<Upload> {
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit.saturating_add(1024 * 1024))
            .for_field("cacheControl", MAX_FIELD)
            .for_field("metadata", MAX_FIELD)
            .for_field("contentType", MAX_FIELD)
            .for_field("contentEncoding", MAX_FIELD),
    );
    let mut form = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut cache = "no-cache".to_string();
    let mut user = None;
    // bounded: the whole stream is, and every field but the file is read whole only when small
    loop {
        let field = form
            .next_field()
            .await
            .map_err(interrupted)?
            .ok_or_else(|| StorageError::bad_request("the form has no file part"))?;
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "cacheControl" => {
                let v = field.text().await.map_err(interrupted)?;
                cache = format!("max-age={}", cache_control(v.trim()));
            }
            "metadata" => {
                let v = field.text().await.map_err(interrupted)?;
                user = Some(user_metadata(v.trim())?);
            }
            "contentType" | "contentEncoding" => {
                field.text().await.map_err(interrupted)?;
            }
            _ => {
                let content_type = field
                    .content_type()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "application/octet-stream".into());
                // the form rides along so that the part keeps streaming
                let data = futures_util::stream::unfold(Some((form, field)), |state| async move {
                    let (form, mut field) = state?;
                    match field.chunk().await {
                        Ok(Some(b)) => Some((Ok(b), Some((form, field)))),
                        Ok(None) => None,
                        Err(e) => Some((Err(interrupted(e)), None)),
                    }
                })
                .boxed();
                return Ok(Upload {
                    content_type,
                    cache_control: cache,
                    user_metadata: user,
                    data,
                });
            }
        }
    }
}

/// Whether `content_type` is one of the bucket's allowed types (`image/png`, or `image/*`).
pub fn mime_allowed(allowed: Option<&[String]>, content_type: &str) -> bool {
    let Some(allowed) = allowed.filter(|a| !a.is_empty()) else {
        return true;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        match a.strip_suffix("/*") {
            Some(top) => essence.split('/').next() == Some(top),
            None => a == essence || a == "*/*" || a == "*",
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types() {
        let allowed = vec!["image/png".to_string(), "text/*".to_string()];
        assert!(mime_allowed(Some(&allowed), "image/png"));
        assert!(mime_allowed(Some(&allowed), "text/plain;charset=UTF-8"));
        assert!(!mime_allowed(Some(&allowed), "image/jpeg"));
        assert!(mime_allowed(None, "anything/else"));
        assert!(mime_allowed(Some(&[]), "x/y"));
    }

    #[tokio::test]
    async fn a_multipart_body_streams_its_file_part() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n60\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nhello world\r\n--XX--\r\n";
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XX".parse().unwrap(),
        );
        let up = read(&h, Body::from(body), Duration::from_secs(5), 100)
            .await
            .unwrap();
        assert_eq!(
            (up.content_type.as_str(), up.cache_control.as_str()),
            ("text/plain", "max-age=60")
        );
        let bytes: Vec<Bytes> = up.data.map(|r| r.unwrap()).collect().await;
        assert_eq!(bytes.concat(), b"hello world");
    }
}
