//! Response shaping, as PostgREST does it: the media type asked for, `Preference-Applied`, status and
//! headers set by the statement (`response.headers`, `response.status`), singular responses, `Location`.

use super::RequestCtx;
use crate::error::RestError;
use crate::exec::Outcome;
use crate::request::*;
use crate::schema::Table;
use crate::sql::Render;
use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use std::borrow::Cow;

/// The response media type asked for by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    Json,
    Object,
    Csv,
    OpenApi,
    /// `application/vnd.pgrst.array+json;nulls=stripped`.
    JsonStripped,
    /// `application/vnd.pgrst.object+json;nulls=stripped`.
    ObjectStripped,
}

impl Media {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Media::Json => "application/json; charset=utf-8",
            Media::Object => "application/vnd.pgrst.object+json; charset=utf-8",
            Media::Csv => "text/csv; charset=utf-8",
            Media::OpenApi => "application/openapi+json; charset=utf-8",
            Media::JsonStripped => "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
            Media::ObjectStripped => {
                "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"
            }
        }
    }

    /// The singular (one object) flavours.
    pub(crate) fn singular(self) -> bool {
        matches!(self, Media::Object | Media::ObjectStripped)
    }

    pub(super) fn render(self) -> Render {
        match self {
            Media::Csv => Render::Csv,
            Media::JsonStripped | Media::ObjectStripped => Render::JsonStripped,
            _ => Render::Json,
        }
    }
}

pub(super) fn accept(headers: &HeaderMap) -> Result<Media, RestError> {
    let Some(v) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Media::Json);
    };
    for item in v.split(',') {
        let m = item.split(';').next().unwrap_or("").trim();
        let stripped = item.replace(' ', "").contains(";nulls=stripped");
        match m {
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" if stripped => {
                return Ok(Media::JsonStripped)
            }
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => {
                return Ok(Media::Json)
            }
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" if stripped => {
                return Ok(Media::ObjectStripped)
            }
            "" | "*/*" | "application/*" | "application/json" => return Ok(Media::Json),
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
                return Ok(Media::Object)
            }
            "text/csv" | "text/*" => return Ok(Media::Csv),
            "application/openapi+json" => return Ok(Media::OpenApi),
            _ => {}
        }
    }
    Err(RestError::api(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST107",
        format!("None of these media types are available: {v}"),
        None,
        None,
    ))
}

/// Preferences echoed in `Preference-Applied`.
fn applied(
    prefer: &Preferences,
    write: bool,
    tx_override: bool,
    max_affected: Option<i64>,
) -> Vec<Cow<'static, str>> {
    let mut out: Vec<Cow<'static, str>> = Vec::new();
    if write {
        match prefer.ret {
            Some(Return::Representation) => out.push("return=representation".into()),
            Some(Return::Minimal) => out.push("return=minimal".into()),
            Some(Return::HeadersOnly) => out.push("return=headers-only".into()),
            None => {}
        }
        match prefer.resolution {
            Some(Resolution::MergeDuplicates) => out.push("resolution=merge-duplicates".into()),
            Some(Resolution::IgnoreDuplicates) => out.push("resolution=ignore-duplicates".into()),
            None => {}
        }
        if prefer.missing_default {
            out.push("missing=default".into());
        }
    }
    match prefer.count {
        Some(Count::Exact) => out.push("count=exact".into()),
        Some(Count::Planned) => out.push("count=planned".into()),
        Some(Count::Estimated) => out.push("count=estimated".into()),
        None => {}
    }
    if tx_override {
        match prefer.tx {
            Some(true) => out.push("tx=commit".into()),
            Some(false) => out.push("tx=rollback".into()),
            None => {}
        }
    }
    if let Some(tz) = &prefer.timezone {
        out.push(format!("timezone={tz}").into());
    }
    if prefer.strict {
        out.push("handling=strict".into());
        if let Some(n) = max_affected {
            out.push(format!("max-affected={n}").into());
        }
    } else if !prefer.invalid.is_empty() {
        out.push("handling=lenient".into());
    }
    out
}

impl RequestCtx<'_> {
    /// `GET /`: the OpenAPI description of the schema ([`crate::openapi`]).
    pub(super) fn root(&self) -> Result<Response, RestError> {
        if !matches!(*self.method, Method::GET | Method::HEAD) {
            return Err(RestError::api(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST117",
                format!("Unsupported HTTP method: {}", self.method),
                None,
                None,
            ));
        }
        let out = Outcome {
            body: crate::openapi::document(self.cache, self.schema).to_string(),
            page: 0,
            total: None,
            headers: None,
            status: None,
            location: None,
        };
        let body = (*self.method == Method::GET).then(|| out.body.clone());
        let mut res = self.finish(StatusCode::OK, body, &out)?;
        // Whatever JSON flavour was accepted, the document is labelled OpenAPI, as PostgREST does.
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(Media::OpenApi.content_type()),
        );
        Ok(res)
    }

    pub(super) fn apply_guc_headers(
        &self,
        res: &mut Response,
        out: &Outcome,
    ) -> Result<(), RestError> {
        if let Some(h) = &out.headers {
            let parsed: Value = serde_json::from_str(h).map_err(|_| invalid_guc_headers())?;
            let list = parsed.as_array().ok_or_else(invalid_guc_headers)?;
            for item in list {
                let obj = item.as_object().ok_or_else(invalid_guc_headers)?;
                for (k, v) in obj {
                    let name =
                        HeaderName::from_bytes(k.as_bytes()).map_err(|_| invalid_guc_headers())?;
                    let value = v
                        .as_str()
                        .and_then(|s| HeaderValue::from_str(s).ok())
                        .ok_or_else(invalid_guc_headers)?;
                    res.headers_mut().insert(name, value);
                }
            }
        }
        if let Some(s) = &out.status {
            let code = s
                .trim()
                .parse::<u16>()
                .ok()
                .and_then(|n| StatusCode::from_u16(n).ok())
                .ok_or_else(|| {
                    RestError::api(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "PGRST112",
                        "Invalid response.status",
                        Some(format!("The status code must be a positive integer: {s}")),
                        None,
                    )
                })?;
            *res.status_mut() = code;
        }
        Ok(())
    }

    pub(super) fn singular_error(page: i64) -> RestError {
        RestError::api(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST116",
            "JSON object requested, multiple (or no) rows returned",
            Some(format!("The result contains {page} rows")),
            None,
        )
    }

    pub(crate) fn finish(
        &self,
        status: StatusCode,
        body: Option<String>,
        out: &Outcome,
    ) -> Result<Response, RestError> {
        let mut res = match body {
            Some(b) => {
                let media = match self.media {
                    Media::OpenApi => Media::Json,
                    m => m,
                };
                let mut r = Response::new(Body::from(b));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(media.content_type()),
                );
                r
            }
            None => Response::new(Body::empty()),
        };
        *res.status_mut() = status;
        let write = !matches!(*self.method, Method::GET | Method::HEAD);
        let ap = applied(
            self.prefer,
            write,
            self.cache.settings.tx_override(),
            self.max_affected(),
        );
        if !ap.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&ap.join(", ")) {
                res.headers_mut()
                    .insert(HeaderName::from_static("preference-applied"), v);
            }
        }
        self.apply_guc_headers(&mut res, out)?;
        Ok(res)
    }

    pub(super) fn read_response(
        &self,
        mut out: Outcome,
        offset: i64,
        head: bool,
        scalar: bool,
    ) -> Result<Response, RestError> {
        if let (Some(total), true) = (out.total, out.page == 0 && offset > 0) {
            if offset > total {
                return Err(RestError::api(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "PGRST103",
                    "Requested range not satisfiable",
                    Some(format!(
                        "An offset of {offset} was requested, but there are only {total} rows."
                    )),
                    None,
                ));
            }
        }
        let mut body = std::mem::take(&mut out.body);
        if self.media.singular() && !scalar {
            if out.page != 1 {
                return Err(Self::singular_error(out.page));
            }
            body = unwrap_single(&body).unwrap_or(body);
        }
        let range = if out.page == 0 {
            "*".to_string()
        } else {
            format!("{}-{}", offset, offset + out.page - 1)
        };
        let total = out
            .total
            .map(|t| t.to_string())
            .unwrap_or_else(|| "*".into());
        let partial = out
            .total
            .is_some_and(|t| out.page > 0 && out.page < t && offset + out.page <= t);
        let status = if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        let mut res = self.finish(status, (!head).then_some(body), &out)?;
        if !scalar {
            if let Ok(v) = HeaderValue::from_str(&format!("{range}/{total}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        Ok(res)
    }

    pub(super) fn write_response(
        &self,
        mut out: Outcome,
        table: &Table,
        ret: Return,
    ) -> Result<Response, RestError> {
        if self.media.singular() && out.page != 1 {
            return Err(Self::singular_error(out.page));
        }
        self.check_max_affected(out.page)?;
        let representation = ret == Return::Representation;
        let mut body = std::mem::take(&mut out.body);
        if representation && self.media.singular() {
            body = unwrap_single(&body).unwrap_or(body);
        }
        let (status, range) = match *self.method {
            Method::POST => (StatusCode::CREATED, "*/*".to_string()),
            _ => (
                if representation {
                    StatusCode::OK
                } else {
                    StatusCode::NO_CONTENT
                },
                if out.page == 0 {
                    "*/*".to_string()
                } else {
                    format!("0-{}/*", out.page - 1)
                },
            ),
        };
        let mut res = self.finish(status, representation.then_some(body), &out)?;
        if let Ok(v) = HeaderValue::from_str(&range) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        if *self.method == Method::POST && ret == Return::HeadersOnly {
            if let Some(loc) = out
                .location
                .as_deref()
                .and_then(|l| location(&table.name, l))
            {
                if let Ok(v) = HeaderValue::from_str(&loc) {
                    res.headers_mut().insert(header::LOCATION, v);
                }
            }
        }
        Ok(res)
    }
}

fn invalid_guc_headers() -> RestError {
    RestError::api(
        StatusCode::INTERNAL_SERVER_ERROR,
        "PGRST111",
        "response.headers guc must be a JSON array composed of objects with a single key and a string value",
        None,
        None,
    )
}

/// `[ {…} ]` → `{…}` without re-encoding (json_agg's output is `[` elements `]`).
pub(super) fn unwrap_single(body: &str) -> Option<String> {
    let inner = body.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.trim().to_string())
}

/// `/books?id=eq.1` from the first written row's primary key.
fn location(table: &str, pk_json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(pk_json).ok()?;
    let obj = v.as_object()?;
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let parts: Vec<String> = obj
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}=eq.{}", enc(k), enc(&v))
        })
        .collect();
    Some(format!("/{}?{}", enc(table), parts.join("&")))
}
