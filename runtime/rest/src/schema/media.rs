//! PostgREST's media type handlers, as the catalog declares them: a domain named like a media type
//! (`create domain "application/vnd.geo2+json" as jsonb`, or `"*/*"` for any) returned by an
//! aggregate over a relation's rows (or over `anyelement`, for every relation) or by a scalar
//! function. Also whether PostGIS ≥ 3 is installed, which the builtin `application/geo+json` needs.

use super::QName;
use serde::Deserialize;

/// The catalog query's `media_handlers` and `postgis` members (`$1` is the exposed schemas), as
/// PostgREST 13 finds handlers: aggregates of one argument whose type is a relation's row type or
/// `anyelement`, and functions not returning a set, in the exposed schemas.
macro_rules! media_sql {
    () => {
        r#"
  'media_handlers', (SELECT coalesce(json_agg(h ORDER BY h.media_type, h.schema, h.name, h.target::text), '[]') FROM (
    WITH mt AS (
      SELECT t.oid, lower(t.typname) AS media_type, b.typname = 'bytea' AS binary
      FROM pg_type t JOIN pg_type b ON b.oid = t.typbasetype
      WHERE t.typtype = 'd' AND (t.typname ~* '^[A-Za-z0-9.-]+/[A-Za-z0-9.\+-]+$' OR t.typname = '*/*'))
    SELECT ps.nspname AS schema, p.proname AS name, true AS aggregate,
      (SELECT json_build_array(rn.nspname, rc.relname) FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE rc.reltype = p.proargtypes[0] AND rc.relkind IN ('r','p','v','m','f')) AS target,
      mt.media_type, mt.binary
    FROM mt JOIN pg_proc p ON p.prorettype = mt.oid JOIN pg_namespace ps ON ps.oid = p.pronamespace
    JOIN pg_aggregate a ON a.aggfnoid = p.oid
    WHERE ps.nspname = ANY($1::text[]) AND p.pronargs = 1 AND (p.proargtypes[0] = 'anyelement'::regtype
      OR EXISTS (SELECT 1 FROM pg_class rc WHERE rc.reltype = p.proargtypes[0] AND rc.relkind IN ('r','p','v','m','f')))
    UNION ALL
    SELECT ps.nspname, p.proname, false, json_build_array(ps.nspname, p.proname), mt.media_type, mt.binary
    FROM mt JOIN pg_proc p ON p.prorettype = mt.oid JOIN pg_namespace ps ON ps.oid = p.pronamespace
    WHERE ps.nspname = ANY($1::text[]) AND NOT p.proretset AND p.prokind = 'f') h),
  'postgis', (SELECT json_build_object('schema', n.nspname, 'version', e.extversion)
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'),"#
    };
}
pub(super) use media_sql;

/// One handler: a media type some aggregate or function produces.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MediaHandler {
    /// The aggregate's (or the function's) schema and name.
    pub schema: String,
    pub name: String,
    /// An aggregate over rows, rather than a function whose own result is the body.
    pub aggregate: bool,
    /// The relation (for an aggregate) or the function the handler answers for; none for an
    /// aggregate over `anyelement`, which answers for every relation.
    pub target: Option<QName>,
    /// The domain's name in lower case: `application/vnd.twkb`, `*/*`.
    pub media_type: String,
    /// The domain is over `bytea`: the body is the value's bytes.
    pub binary: bool,
}

impl MediaHandler {
    /// `Content-Type` of the response, as PostgREST writes it: `application/octet-stream` for the
    /// any handler, `; charset=utf-8` after the media types PostgREST knows as text, the name alone
    /// otherwise.
    pub fn content_type(&self) -> String {
        match self.media_type.as_str() {
            "*/*" | "application/octet-stream" => "application/octet-stream".to_string(),
            m @ ("application/json"
            | "application/geo+json"
            | "text/csv"
            | "text/plain"
            | "text/xml"
            | "application/openapi+json"
            | "application/x-www-form-urlencoded") => format!("{m}; charset=utf-8"),
            m => m.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Postgis {
    pub schema: String,
    pub version: String,
}

impl Postgis {
    /// `ST_AsGeoJSON(record)`, which GeoJSON output needs, exists from PostGIS 3.0.0.
    pub(super) fn geojson_schema(self) -> Option<String> {
        let major: u32 = self.version.split('.').next()?.parse().ok()?;
        (major >= 3).then_some(self.schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(media_type: &str) -> MediaHandler {
        MediaHandler {
            schema: "public".into(),
            name: "agg".into(),
            aggregate: true,
            target: None,
            media_type: media_type.into(),
            binary: false,
        }
    }

    #[test]
    fn content_types_follow_postgrest() {
        assert_eq!(handler("*/*").content_type(), "application/octet-stream");
        assert_eq!(
            handler("text/plain").content_type(),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            handler("application/vnd.twkb").content_type(),
            "application/vnd.twkb"
        );
        assert_eq!(handler("text/html").content_type(), "text/html");
    }

    #[test]
    fn geojson_needs_postgis_3() {
        let p = |v: &str| Postgis {
            schema: "extensions".into(),
            version: v.into(),
        };
        assert_eq!(p("3.3.2").geojson_schema().as_deref(), Some("extensions"));
        assert_eq!(p("2.5.5").geojson_schema(), None);
        assert_eq!(p("x").geojson_schema(), None);
    }
}
