//! The Storage API's routes (paths below `/storage/v1`), parsed by hand into [`Route`] so that object
//! names (which contain `/`, spaces and any Unicode, percent-encoded by the clients) are decoded once,
//! here, and checked by [`crate::names`] before anything runs.

use crate::error::{StorageError, StorageResult};
use crate::names;
use http::Method;
use percent_encoding::percent_decode_str;

/// How a download is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAs {
    /// The caller's role and claims: RLS decides (`/object/{b}/…`, `/object/authenticated/{b}/…`).
    Caller,
    /// Anyone, when the bucket is public (`/object/public/{b}/…`).
    Public,
    /// A signed URL's token (`/object/sign/{b}/…?token=`).
    Signed,
}

/// An object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    ListBuckets,
    CreateBucket,
    GetBucket(String),
    UpdateBucket(String),
    DeleteBucket(String),
    EmptyBucket(String),
    /// POST (create; `x-upsert` may replace) or PUT (replace or create).
    Upload {
        obj: ObjectRef,
        replace: bool,
    },
    Download {
        obj: ObjectRef,
        read_as: ReadAs,
    },
    Info {
        obj: ObjectRef,
        read_as: ReadAs,
    },
    DeleteObject(ObjectRef),
    RemoveMany(String),
    List(String),
    Move,
    Copy,
    SignOne(ObjectRef),
    SignMany(String),
    SignUpload(ObjectRef),
    UploadSigned(ObjectRef),
    /// `OPTIONS /upload/resumable…`: what the TUS server supports ([`crate::tus`]).
    TusOptions,
    /// `POST /upload/resumable` (`…/sign` when `signed`): a new resumable upload.
    TusCreate {
        signed: bool,
    },
    /// `HEAD`, `PATCH`, `DELETE` (or `POST` overriding them) of `/upload/resumable[/sign]/{id}`.
    TusUpload {
        id: String,
        signed: bool,
    },
}

fn bucket(raw: &str) -> StorageResult<String> {
    Ok(names::bucket_id(&decode(raw)?)?.to_string())
}

fn decode(raw: &str) -> StorageResult<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| StorageError::invalid_key("the path is not valid UTF-8"))
}

/// `{bucket}/{name…}` of an object path.
fn object(raw: &str) -> StorageResult<ObjectRef> {
    let (b, n) = raw
        .split_once('/')
        .ok_or_else(|| StorageError::invalid_key("the path names no object"))?;
    let name = decode(n)?;
    names::object_name(&name)?;
    Ok(ObjectRef {
        bucket: bucket(b)?,
        name,
    })
}

fn not_found() -> StorageError {
    StorageError::new(http::StatusCode::NOT_FOUND, "not_found", "Route not found")
}

/// The route of `method path` (`path` below `/storage/v1`, still percent-encoded).
pub fn parse(method: &Method, path: &str) -> StorageResult<Route> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let m = method.as_str();
    if let Some(rest) = path.strip_prefix("bucket") {
        return bucket_route(m, rest);
    }
    if let Some(rest) = path.strip_prefix("upload/resumable") {
        return tus_route(m, rest);
    }
    let Some(rest) = path.strip_prefix("object/") else {
        return Err(not_found());
    };
    let read = matches!(m, "GET" | "HEAD");
    let route = match (m, rest.split_once('/')) {
        ("POST", Some(("list", b))) => Route::List(bucket(b)?),
        ("POST", None) if rest == "move" => Route::Move,
        ("POST", None) if rest == "copy" => Route::Copy,
        ("POST", Some(("sign", o))) if !o.contains('/') => Route::SignMany(bucket(o)?),
        ("POST", Some(("sign", o))) => Route::SignOne(object(o)?),
        (_, Some(("sign", o))) if read => Route::Download {
            obj: object(o)?,
            read_as: ReadAs::Signed,
        },
        (_, Some(("public", o))) if read => Route::Download {
            obj: object(o)?,
            read_as: ReadAs::Public,
        },
        (_, Some(("authenticated", o))) if read => Route::Download {
            obj: object(o)?,
            read_as: ReadAs::Caller,
        },
        ("GET", Some(("info", o))) => info(o)?,
        ("POST", Some(("upload", o))) => match o.strip_prefix("sign/") {
            Some(o) => Route::SignUpload(object(o)?),
            None => return Err(not_found()),
        },
        ("PUT", Some(("upload", o))) => match o.strip_prefix("sign/") {
            Some(o) => Route::UploadSigned(object(o)?),
            None => return Err(not_found()),
        },
        ("DELETE", None) => Route::RemoveMany(bucket(rest)?),
        ("POST", Some(_)) => Route::Upload {
            obj: object(rest)?,
            replace: false,
        },
        ("PUT", Some(_)) => Route::Upload {
            obj: object(rest)?,
            replace: true,
        },
        (_, Some(_)) if read => Route::Download {
            obj: object(rest)?,
            read_as: ReadAs::Caller,
        },
        ("DELETE", Some(_)) => Route::DeleteObject(object(rest)?),
        _ => return Err(not_found()),
    };
    Ok(route)
}

fn info(o: &str) -> StorageResult<Route> {
    let (read_as, o) = match o.split_once('/') {
        Some(("public", rest)) => (ReadAs::Public, rest),
        Some(("authenticated", rest)) => (ReadAs::Caller, rest),
        _ => (ReadAs::Caller, o),
    };
    Ok(Route::Info {
        obj: object(o)?,
        read_as,
    })
}

/// `/upload/resumable` + `rest`: `[/sign][/{id}]`.
fn tus_route(m: &str, rest: &str) -> StorageResult<Route> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (signed, rest) = match rest.strip_prefix("/sign") {
        Some(r) if r.is_empty() || r.starts_with('/') => (true, r),
        _ => (false, rest),
    };
    match (m, rest.strip_prefix('/')) {
        ("OPTIONS", _) => Ok(Route::TusOptions),
        ("POST", None) if rest.is_empty() => Ok(Route::TusCreate { signed }),
        ("HEAD" | "PATCH" | "DELETE" | "POST", Some(id)) if crate::tus_state::valid_id(id) => {
            Ok(Route::TusUpload {
                id: id.to_string(),
                signed,
            })
        }
        _ => Err(not_found()),
    }
}

fn bucket_route(m: &str, rest: &str) -> StorageResult<Route> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return match m {
            "GET" => Ok(Route::ListBuckets),
            "POST" => Ok(Route::CreateBucket),
            _ => Err(not_found()),
        };
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(not_found());
    };
    if let Some(b) = rest.strip_suffix("/empty") {
        return match m {
            "POST" => Ok(Route::EmptyBucket(bucket(b)?)),
            _ => Err(not_found()),
        };
    }
    let id = bucket(rest)?;
    match m {
        "GET" => Ok(Route::GetBucket(id)),
        "PUT" => Ok(Route::UpdateBucket(id)),
        "DELETE" => Ok(Route::DeleteBucket(id)),
        _ => Err(not_found()),
    }
}

/// Whether a route may be served without a caller (the gateway lets these through without an API key):
/// public objects, signed URLs, uploads to a signed upload URL (resumable ones too) and TUS's `OPTIONS`.
pub fn open(route: &Route) -> bool {
    matches!(
        route,
        Route::TusOptions
            | Route::TusCreate { signed: true }
            | Route::TusUpload { signed: true, .. }
    ) || matches!(
        route,
        Route::Download {
            read_as: ReadAs::Public | ReadAs::Signed,
            ..
        } | Route::Info {
            read_as: ReadAs::Public,
            ..
        } | Route::UploadSigned(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(b: &str, n: &str) -> ObjectRef {
        ObjectRef {
            bucket: b.into(),
            name: n.into(),
        }
    }

    #[test]
    fn routes() {
        let p = |m: Method, path: &str| parse(&m, path).unwrap();
        assert_eq!(p(Method::GET, "/bucket"), Route::ListBuckets);
        assert_eq!(p(Method::POST, "/bucket/"), Route::CreateBucket);
        assert_eq!(p(Method::GET, "/bucket/av"), Route::GetBucket("av".into()));
        assert_eq!(
            p(Method::POST, "/bucket/av/empty"),
            Route::EmptyBucket("av".into())
        );
        assert_eq!(
            p(Method::POST, "/object/av/a%20b/%E6%97%A5.txt"),
            Route::Upload {
                obj: obj("av", "a b/日.txt"),
                replace: false
            }
        );
        assert_eq!(
            p(Method::HEAD, "/object/av/x"),
            Route::Download {
                obj: obj("av", "x"),
                read_as: ReadAs::Caller
            }
        );
        assert_eq!(
            p(Method::GET, "/object/public/av/x/y"),
            Route::Download {
                obj: obj("av", "x/y"),
                read_as: ReadAs::Public
            }
        );
        assert_eq!(
            p(Method::POST, "/object/sign/av"),
            Route::SignMany("av".into())
        );
        assert_eq!(
            p(Method::POST, "/object/sign/av/x"),
            Route::SignOne(obj("av", "x"))
        );
        assert_eq!(
            p(Method::PUT, "/object/upload/sign/av/x"),
            Route::UploadSigned(obj("av", "x"))
        );
        assert_eq!(
            p(Method::DELETE, "/object/av"),
            Route::RemoveMany("av".into())
        );
        assert_eq!(
            p(Method::DELETE, "/object/av/x"),
            Route::DeleteObject(obj("av", "x"))
        );
        assert_eq!(p(Method::POST, "/object/list/av"), Route::List("av".into()));
        assert_eq!(p(Method::POST, "/object/move"), Route::Move);
        assert_eq!(
            p(Method::GET, "/object/info/public/av/x"),
            Route::Info {
                obj: obj("av", "x"),
                read_as: ReadAs::Public
            }
        );
    }

    #[test]
    fn resumable_routes() {
        let p = |m: Method, path: &str| parse(&m, path);
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            p(Method::POST, "/upload/resumable").unwrap(),
            Route::TusCreate { signed: false }
        );
        assert_eq!(
            p(Method::POST, "/upload/resumable/sign/").unwrap(),
            Route::TusCreate { signed: true }
        );
        assert_eq!(
            p(Method::OPTIONS, "/upload/resumable/sign").unwrap(),
            Route::TusOptions
        );
        assert_eq!(
            p(Method::PATCH, &format!("/upload/resumable/{id}")).unwrap(),
            Route::TusUpload {
                id: id.into(),
                signed: false
            }
        );
        assert_eq!(
            p(Method::HEAD, &format!("/upload/resumable/sign/{id}")).unwrap(),
            Route::TusUpload {
                id: id.into(),
                signed: true
            }
        );
        for bad in [
            "/upload/resumable/x",
            "/upload/resumable/signx",
            "/upload/resumableX",
        ] {
            assert!(p(Method::PATCH, bad).is_err(), "{bad}");
        }
        assert!(p(Method::GET, &format!("/upload/resumable/{id}")).is_err());
        assert!(open(&Route::TusCreate { signed: true }));
        assert!(!open(&Route::TusCreate { signed: false }));
    }

    #[test]
    fn traversal_and_bad_encodings_are_refused() {
        for path in [
            "/object/av/..%2Fx",
            "/object/av/a/%2E%2E/b",
            "/object/av/a%00b",
            "/object/av/%FF",
            "/object/..%2F/x",
            "/object/av/",
        ] {
            assert!(parse(&Method::POST, path).is_err(), "{path}");
        }
        assert_eq!(
            parse(&Method::PATCH, "/object/av/x").unwrap_err().status,
            http::StatusCode::NOT_FOUND
        );
    }
}
