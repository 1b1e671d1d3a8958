//! Response shaping, as PostgREST does it: the media type asked for, `Preference-Applied`, status and
//! headers set by the statement (`response.headers`, `response.status`), singular responses, `Location`.

use super::plan::Plan;
use super::RequestCtx;
use crate::error::RestError;
use crate::exec::Outcome;
use crate::request::*;
use crate::schema::Table;
use crate::sql::Render;
use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use std::borrow::Cow;

/// The response media type chosen from `Accept` ([`super::media`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    Json,
    /// `application/geo+json` (PostGIS installed).
    GeoJson,
    /// A media type handler of the schema cache, by index ([`crate::schema::MediaHandler`]).
    Handler(usize),
    Object,
    Csv,
    OpenApi,
    /// `application/vnd.pgrst.array+json;nulls=stripped`.
    JsonStripped,
    /// `application/vnd.pgrst.object+json;nulls=stripped`.
    ObjectStripped,
    /// `application/vnd.pgrst.plan…`: the execution plan of the request ([`super::plan`]).
    Plan(Plan),
}

impl Media {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Media::Json | Media::Plan(_) => "application/json; charset=utf-8",
            Media::Object => "application/vnd.pgrst.object+json; charset=utf-8",
            Media::Csv => "text/csv; charset=utf-8",
            Media::GeoJson => "application/geo+json; charset=utf-8",
            // The handler's own type is in the schema cache (`RequestCtx::content_type`).
            Media::Handler(_) => "application/octet-stream",
            Media::OpenApi => "application/openapi+json; charset=utf-8",
            Media::JsonStripped => "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
            Media::ObjectStripped => {
                "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"
            }
        }
    }

    /// The media type without parameters or charset, as `for="…"` names it.
    pub(super) fn mime(self) -> &'static str {
        let ct = self.content_type();
        ct.strip_suffix("; charset=utf-8").unwrap_or(ct)
    }

    /// The singular (one object) flavours.
    pub(crate) fn singular(self) -> bool {
        matches!(self, Media::Object | Media::ObjectStripped)
    }

    pub(super) fn render(self) -> Render {
        match self {
            Media::Csv => Render::Csv,
            Media::GeoJson => Render::GeoJson,
            Media::Handler(i) => Render::Handler(i),
            Media::JsonStripped | Media::ObjectStripped => Render::JsonStripped,
            Media::Plan(p) => p.of.render(),
            _ => Render::Json,
        }
    }
}

/// What a request is, for the preferences PostgREST echoes in `Preference-Applied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Read,
    Insert {
        /// The upsert resolution took effect (the relation has a primary key or `on_conflict` was given).
        resolution: bool,
    },
    Update,
    /// PUT: a single-row upsert.
    Upsert,
    Delete,
    Call,
}

/// Preferences echoed in `Preference-Applied`.
fn applied(
    prefer: &Preferences,
    action: Action,
    tx_override: bool,
    max_affected: Option<i64>,
) -> Vec<Cow<'static, str>> {
    let mut out: Vec<Cow<'static, str>> = Vec::new();
    if matches!(action, Action::Insert { resolution: true }) {
        match prefer.resolution {
            Some(Resolution::MergeDuplicates) => out.push("resolution=merge-duplicates".into()),
            Some(Resolution::IgnoreDuplicates) => out.push("resolution=ignore-duplicates".into()),
            None => {}
        }
    }
    if prefer.missing_default && matches!(action, Action::Insert { .. } | Action::Update) {
        out.push("missing=default".into());
    }
    if !matches!(action, Action::Read | Action::Call) {
        match prefer.ret {
            Some(Return::Representation) => out.push("return=representation".into()),
            Some(Return::Minimal) => out.push("return=minimal".into()),
            Some(Return::HeadersOnly) => out.push("return=headers-only".into()),
            None => {}
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
    if prefer.strict {
        out.push("handling=strict".into());
    } else if !prefer.invalid.is_empty() {
        out.push("handling=lenient".into());
    }
    if let Some(tz) = &prefer.timezone {
        out.push(format!("timezone={tz}").into());
    }
    if let Some(n) = max_affected {
        out.push(format!("max-affected={n}").into());
    }
    out
}

/// `Content-Range` as PostgREST writes it: `lower-upper/total`, with `*` for an empty range (or a
/// total of zero) and for a total not counted.
pub(super) fn content_range(lower: i64, upper: i64, total: Option<i64>) -> String {
    let range = if total != Some(0) && lower <= upper {
        format!("{lower}-{upper}")
    } else {
        "*".to_string()
    };
    match total {
        Some(t) => format!("{range}/{t}"),
        None => format!("{range}/*"),
    }
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
            inserted: None,
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

    /// `Content-Type` of a body in the chosen media type (OpenAPI's is set by [`Self::root`]).
    fn content_type(&self) -> Cow<'static, str> {
        match self.media {
            Media::OpenApi => Media::Json.content_type().into(),
            Media::Handler(i) => self
                .cache
                .media_handlers
                .get(i)
                .map_or(self.media.content_type().into(), |h| {
                    h.content_type().into()
                }),
            m => m.content_type().into(),
        }
    }

    /// What the request is, as far as the method tells (an insert's resolution taken as applied).
    fn action(&self) -> Action {
        match *self.method {
            _ if self.rpc => Action::Call,
            Method::POST => Action::Insert { resolution: true },
            Method::PATCH => Action::Update,
            Method::PUT => Action::Upsert,
            Method::DELETE => Action::Delete,
            _ => Action::Read,
        }
    }

    pub(crate) fn finish(
        &self,
        status: StatusCode,
        body: Option<String>,
        out: &Outcome,
    ) -> Result<Response, RestError> {
        self.finish_as(status, body, out, self.action())
    }

    fn finish_as(
        &self,
        status: StatusCode,
        body: Option<String>,
        out: &Outcome,
        action: Action,
    ) -> Result<Response, RestError> {
        let mut res = match body {
            Some(b) => {
                let mut r = Response::new(Body::from(super::media::handler_body(
                    self.cache, self.media, b,
                )));
                if let Ok(v) = HeaderValue::from_str(&self.content_type()) {
                    r.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                r
            }
            None => Response::new(Body::empty()),
        };
        *res.status_mut() = status;
        let ap = applied(
            self.prefer,
            action,
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

    /// A read or a function's result: status and `Content-Range` from the offset, the rows returned
    /// and the total, as PostgREST's range rules give them (416 past the end, 206 for part of the
    /// total). `unwrap` is false for results that are one value already (a scalar function, a
    /// single composite).
    pub(super) fn read_response(
        &self,
        mut out: Outcome,
        offset: i64,
        head: bool,
        unwrap: bool,
    ) -> Result<Response, RestError> {
        let (lower, upper) = (offset, offset + out.page - 1);
        let status = match out.total {
            Some(total) if lower > total => {
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
            Some(total) if out.page < total => StatusCode::PARTIAL_CONTENT,
            _ => StatusCode::OK,
        };
        let mut body = std::mem::take(&mut out.body);
        if self.media.singular() && unwrap {
            if out.page != 1 {
                return Err(Self::singular_error(out.page));
            }
            body = unwrap_single(&body).unwrap_or(body);
        }
        let mut res = self.finish(status, (!head).then_some(body), &out)?;
        if head {
            // A HEAD read names the media type of the body it leaves out, as PostgREST does.
            if let Ok(v) = HeaderValue::from_str(&self.content_type()) {
                res.headers_mut().entry(header::CONTENT_TYPE).or_insert(v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&content_range(lower, upper, out.total)) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        Ok(res)
    }

    /// A write's response. `resolution` is the upsert resolution that took effect on a POST.
    pub(super) fn write_response(
        &self,
        mut out: Outcome,
        table: &Table,
        ret: Return,
        resolution: Option<Resolution>,
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
        // `count=exact|estimated` on a write counts the rows it affected.
        let total =
            matches!(self.prefer.count, Some(Count::Exact | Count::Estimated)).then_some(out.page);
        let done = if representation {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        };
        // An upsert's status tells whether it inserted anything: 201 when it did, 200 when every row
        // was an update (merge-duplicates; ignore-duplicates always answers 201).
        // (A body without columns inserts defaults and reports nothing: any row is an insert.)
        let inserted_any = out.inserted.map_or(out.page > 0, |n| n > 0);
        let (status, range, action) = match *self.method {
            Method::POST => (
                match resolution {
                    Some(Resolution::MergeDuplicates) if !inserted_any => StatusCode::OK,
                    _ => StatusCode::CREATED,
                },
                Some(content_range(1, 0, total)),
                Action::Insert {
                    resolution: resolution.is_some(),
                },
            ),
            Method::PUT => (
                match ret {
                    Return::Representation if inserted_any => StatusCode::CREATED,
                    _ => done,
                },
                None,
                Action::Upsert,
            ),
            Method::PATCH => (
                done,
                Some(content_range(0, out.page - 1, total)),
                Action::Update,
            ),
            _ => (done, Some(content_range(1, 0, total)), Action::Delete),
        };
        let mut res = self.finish_as(status, representation.then_some(body), &out, action)?;
        if let Some(Ok(v)) = range.map(|r| HeaderValue::from_str(&r)) {
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

#[cfg(test)]
mod tests {
    use super::content_range;

    #[test]
    fn content_range_follows_postgrest() {
        assert_eq!(content_range(0, 3, Some(4)), "0-3/4");
        assert_eq!(content_range(0, 3, None), "0-3/*");
        // A write's own form: an insert is never a range.
        assert_eq!(content_range(1, 0, Some(2)), "*/2");
        assert_eq!(content_range(0, -1, Some(0)), "*/0");
        assert_eq!(content_range(5, 4, Some(5)), "*/5");
        assert_eq!(content_range(0, 0, Some(0)), "*/0");
    }
}
