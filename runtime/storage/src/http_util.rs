//! HTTP details the handlers share: JSON bodies, `x-upsert`, query parameters, `Range`,
//! `If-None-Match` and the `download` disposition.

use crate::error::{StorageError, StorageResult};
use axum::body::Body;
use http::{header, HeaderMap, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};
use std::ops::Range;

/// Largest JSON body of a non-upload route (1,000 names of 1 KiB fit).
const MAX_JSON: usize = 2 * 1024 * 1024;

/// Characters escaped in a header's `filename*` value: all but RFC 3986's unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The request's JSON object (an empty body is `{}`), bounded in size and nesting (serde_json's 128).
pub async fn json_body(body: Body) -> StorageResult<Map<String, Value>> {
    let bytes = axum::body::to_bytes(body, MAX_JSON)
        .await
        .map_err(|_| StorageError::too_large())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(StorageError::bad_request("the body must be a JSON object")),
    }
}

pub fn upsert_header(h: &HeaderMap) -> bool {
    h.get("x-upsert")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

pub fn encode_value(v: &str) -> String {
    utf8_percent_encode(v, SEGMENT).to_string()
}

/// A query parameter, percent-decoded (`+` as a space).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').take(64).find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranged {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

/// One `bytes=` range (`a-b`, `a-`, `-n`); anything else (several ranges, other units) is the whole
/// object, as RFC 9110 allows.
pub fn range(h: &HeaderMap, size: u64) -> Ranged {
    let Some(spec) = h
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if a.len() <= 20 && start <= end => {
            Some((start, end.saturating_add(1)))
        }
        (Some(start), None) if b.is_empty() => Some((start, size)),
        (None, Some(n)) if a.is_empty() => Some((size.saturating_sub(n), size)),
        _ => None,
    };
    match parsed {
        None => Ranged::Whole,
        Some((start, _)) if start >= size => Ranged::Unsatisfiable,
        Some((start, end)) if start >= end.min(size) => Ranged::Unsatisfiable,
        Some((start, end)) => Ranged::Part(start..end.min(size)),
    }
}

/// Whether `If-None-Match` names `etag` (quoted) or `*`.
pub fn not_modified(h: &HeaderMap, etag: &str) -> bool {
    h.get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
            })
        })
}

/// `Content-Disposition` for `?download` (the object's own file name) or `?download=name`.
pub fn disposition(download: &str, object_name: &str) -> HeaderValue {
    let name = if download.is_empty() {
        object_name.rsplit('/').next().unwrap_or(object_name)
    } else {
        download
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let v = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encode_value(name)
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(range: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, range.parse().unwrap());
        h
    }

    #[test]
    fn ranges() {
        assert_eq!(range(&HeaderMap::new(), 10), Ranged::Whole);
        assert_eq!(range(&h("bytes=0-3"), 10), Ranged::Part(0..4));
        assert_eq!(range(&h("bytes=5-"), 10), Ranged::Part(5..10));
        assert_eq!(range(&h("bytes=-3"), 10), Ranged::Part(7..10));
        assert_eq!(range(&h("bytes=8-100"), 10), Ranged::Part(8..10));
        assert_eq!(range(&h("bytes=10-"), 10), Ranged::Unsatisfiable);
        assert_eq!(range(&h("bytes=0-1,3-4"), 10), Ranged::Whole);
        assert_eq!(range(&h("items=0-1"), 10), Ranged::Whole);
        assert_eq!(range(&h("bytes=5-2"), 10), Ranged::Whole);
    }

    #[test]
    fn urls_and_dispositions() {
        assert_eq!(
            query_param(Some("x=1&token=a%2Bb"), "token").unwrap(),
            "a+b"
        );
        assert_eq!(query_param(Some("download"), "download").unwrap(), "");
        let d = disposition("", "f/日 x.txt");
        assert_eq!(
            d.to_str().unwrap(),
            "attachment; filename=\"_ x.txt\"; filename*=UTF-8''%E6%97%A5%20x.txt"
        );
        let mut hm = HeaderMap::new();
        hm.insert(header::IF_NONE_MATCH, "W/\"abc\", \"def\"".parse().unwrap());
        assert!(not_modified(&hm, "\"abc\""));
        assert!(!not_modified(&hm, "\"zzz\""));
    }
}
