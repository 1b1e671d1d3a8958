//! Content negotiation as PostgREST 13 does it: `Accept` is read in order of quality and specificity,
//! and the first media type with a handler wins. Handlers are, in the order they are looked up: the
//! target's own `*/*` handler and its handler for that media type (both only with the default
//! `select`), a handler for every relation (an aggregate over `anyelement`), then the builtin ones
//! (`application/json`, `*/*`, `text/csv`, and `application/geo+json` when PostGIS ≥ 3 is
//! installed). PostgREST's vendor media types (`vnd.pgrst.object`, `vnd.pgrst.array;nulls=stripped`,
//! `vnd.pgrst.plan`) cannot be overridden. Nothing matching is 406 (PGRST107).

use super::plan::Plan;
use super::response::Media;
use super::RequestCtx;
use crate::error::RestError;
use crate::request::SelectItem;
use crate::schema::SchemaCache;
use http::{header, HeaderMap, StatusCode};

/// At most this many `Accept` items are considered (a request-driven loop stays bounded).
const MAX_ACCEPT_ITEMS: usize = 32;

/// One item of `Accept`, as PostgREST reads it (spaces removed, the `q` parameter taken off).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Accepted {
    /// The item without spaces and without `;q=…` and what follows it.
    item: String,
    /// `type/subtype` in lower case.
    mime: String,
    /// `nulls=stripped` was given.
    stripped: bool,
}

impl Accepted {
    fn new(item: &str) -> Accepted {
        let mime = item.split(';').next().unwrap_or("").to_ascii_lowercase();
        let stripped = item
            .split(';')
            .skip(1)
            .any(|p| p.eq_ignore_ascii_case("nulls=stripped"));
        Accepted {
            item: item.to_string(),
            mime,
            stripped,
        }
    }

    /// How PostgREST names the media type in PGRST107's message.
    fn name(&self) -> &str {
        match self.mime.as_str() {
            "application/json" => "application/json",
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" if self.stripped => {
                "application/vnd.pgrst.array+json;nulls=stripped"
            }
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => {
                "application/json"
            }
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object"
                if self.stripped =>
            {
                "application/vnd.pgrst.object+json;nulls=stripped"
            }
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
                "application/vnd.pgrst.object+json"
            }
            "text/csv"
            | "text/plain"
            | "text/xml"
            | "application/geo+json"
            | "application/openapi+json"
            | "application/octet-stream"
            | "*/*" => &self.mime,
            _ => &self.item,
        }
    }

    /// The media type a handler is looked up by (`vnd.pgrst.array` is plain JSON).
    fn lookup(&self) -> &str {
        match self.mime.as_str() {
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => {
                "application/json"
            }
            m => m,
        }
    }
}

/// `Accept` in the order PostgREST tries it: by quality, then by specificity (parameters count for,
/// wildcards against), otherwise as written; `*/*` when the header is absent or empty.
pub(super) fn parse_accept(headers: &HeaderMap) -> Vec<Accepted> {
    let v = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let compact: String = v.chars().filter(|c| *c != ' ').collect();
    if compact.is_empty() {
        return vec![Accepted::new("*/*")];
    }
    let mut ranked: Vec<(f64, i64, Accepted)> = super::plan::split_unquoted(&compact, ',')
        .into_iter()
        .take(MAX_ACCEPT_ITEMS)
        .map(|raw| {
            let (item, q) = match raw.split_once(";q=") {
                Some((item, rest)) => (item, rest.split(';').next().unwrap_or("")),
                None => (raw, "1"),
            };
            let q = q
                .parse::<f64>()
                .ok()
                .filter(|q| q.is_finite())
                .unwrap_or(1.0);
            let specificity = item.matches(';').count() as i64 - item.matches('*').count() as i64;
            (q, specificity, Accepted::new(item))
        })
        .collect();
    // A stable sort: equals keep the order they were written in.
    ranked.sort_by(|a, b| {
        (b.0, b.1)
            .partial_cmp(&(a.0, a.1))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    ranked.into_iter().map(|(_, _, a)| a).collect()
}

/// The builtin media type of one `Accept` item or `for="…"` value (no plans, no handlers).
pub(super) fn builtin(item: &str, cache: Option<&SchemaCache>) -> Option<Media> {
    let a = Accepted::new(&item.replace(' ', ""));
    vendor(&a).or_else(|| overridable_builtin(a.lookup(), cache))
}

/// PostgREST's vendor media types, which no handler overrides.
fn vendor(a: &Accepted) -> Option<Media> {
    Some(match a.mime.as_str() {
        "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" if a.stripped => {
            Media::ObjectStripped
        }
        "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => Media::Object,
        "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" if a.stripped => {
            Media::JsonStripped
        }
        _ => return None,
    })
}

/// The builtin handlers a custom one may replace.
fn overridable_builtin(mime: &str, cache: Option<&SchemaCache>) -> Option<Media> {
    Some(match mime {
        "application/json" | "*/*" => Media::Json,
        "text/csv" => Media::Csv,
        "application/geo+json" if cache.is_none_or(|c| c.geojson.is_some()) => Media::GeoJson,
        _ => return None,
    })
}

/// The custom handler for `mime` of the target `(schema, name)`: its own (default `select` only),
/// else one for every relation.
fn custom(
    cache: &SchemaCache,
    target: Option<(&str, &str)>,
    default_select: bool,
    mime: &str,
) -> Option<Media> {
    let own = |m: &str| {
        cache.media_handlers.iter().position(|h| {
            h.media_type == m
                && h.target
                    .as_ref()
                    .zip(target)
                    .is_some_and(|((s, n), (ts, tn))| s == ts && n == tn)
        })
    };
    let own = target
        .filter(|_| default_select)
        .and_then(|_| own("*/*").or_else(|| own(mime)));
    own.or_else(|| {
        cache
            .media_handlers
            .iter()
            .position(|h| h.aggregate && h.target.is_none() && h.media_type == mime)
    })
    .map(Media::Handler)
}

fn not_acceptable(accepts: &[Accepted]) -> RestError {
    let names: Vec<&str> = accepts.iter().map(Accepted::name).collect();
    RestError::api(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST107",
        format!(
            "None of these media types are available: {}",
            names.join(", ")
        ),
        None,
        None,
    )
}

impl<'a> RequestCtx<'a> {
    /// This request with its media type chosen for `target` (a relation, or the function called or
    /// the relation whose rows it returns), given the request's `select`.
    pub(super) fn negotiated(
        &self,
        target: (&str, &str),
        select: &[SelectItem],
    ) -> Result<RequestCtx<'a>, RestError> {
        let default_select = matches!(select, [SelectItem::Star]);
        let plans = self.cache.settings.db_plan_enabled;
        for a in self.accepts {
            let found = match Plan::parse(&a.item) {
                Some(plan) if plans => Some(Media::Plan(plan)),
                Some(_) => None,
                None => vendor(a).or_else(|| {
                    custom(self.cache, Some(target), default_select, a.lookup())
                        .or_else(|| overridable_builtin(a.lookup(), Some(self.cache)))
                }),
            };
            if let Some(media) = found {
                return Ok(RequestCtx { media, ..*self });
            }
        }
        Err(not_acceptable(self.accepts))
    }

    /// The root (OpenAPI) answers `application/openapi+json`, `application/json` and `*/*`.
    pub(super) fn negotiated_root(&self) -> Result<RequestCtx<'a>, RestError> {
        let openapi = self.accepts.iter().any(|a| {
            matches!(
                a.lookup(),
                "application/openapi+json" | "application/json" | "*/*"
            )
        });
        if !openapi {
            return Err(not_acceptable(self.accepts));
        }
        Ok(RequestCtx {
            media: Media::OpenApi,
            ..*self
        })
    }
}

/// A handler's body as sent: the bytes of a `bytea` domain arrive in hex ([`crate::sql`]).
pub(super) fn handler_body(cache: &SchemaCache, media: Media, body: String) -> Vec<u8> {
    match media {
        Media::Handler(i) if cache.media_handlers.get(i).is_some_and(|h| h.binary) => {
            hex_decode(&body).unwrap_or_default()
        }
        _ => body.into_bytes(),
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(v: &str) -> Vec<String> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        parse_accept(&h).into_iter().map(|a| a.item).collect()
    }

    #[test]
    fn accept_is_ranked_like_postgrest() {
        assert_eq!(accept("image/png, */*"), ["image/png", "*/*"]);
        assert_eq!(accept("*/*, text/csv"), ["text/csv", "*/*"]);
        assert_eq!(
            accept("text/html,application/xml;q=0.9,image/png,*/*;q=0.8"),
            ["text/html", "image/png", "application/xml", "*/*"]
        );
        assert_eq!(
            accept("text/plain, application/json"),
            ["text/plain", "application/json"]
        );
        assert_eq!(
            accept("application/vnd.pgrst.object+json; nulls=stripped"),
            ["application/vnd.pgrst.object+json;nulls=stripped"]
        );
        assert_eq!(accept(""), ["*/*"]);
        assert_eq!(parse_accept(&HeaderMap::new())[0].item, "*/*");
    }

    #[test]
    fn names_in_the_error_are_postgrest_s() {
        let a = |s: &str| Accepted::new(s);
        assert_eq!(a("application/vnd.pgrst.array").name(), "application/json");
        assert_eq!(a("TEXT/XML").name(), "text/xml");
        assert_eq!(
            a("application/vnd.twkb;x=1").name(),
            "application/vnd.twkb;x=1"
        );
    }

    #[test]
    fn builtins_without_a_cache() {
        assert_eq!(builtin("application/json", None), Some(Media::Json));
        assert_eq!(builtin("text/csv", None), Some(Media::Csv));
        assert_eq!(
            builtin("application/vnd.pgrst.object", None),
            Some(Media::Object)
        );
        assert_eq!(builtin("text/plain", None), None);
        assert_eq!(builtin("text/*", None), None);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex_decode("00ff41").unwrap(), vec![0, 255, b'A']);
        assert_eq!(hex_decode("").unwrap(), Vec::<u8>::new());
        assert!(hex_decode("abc").is_none());
    }
}
