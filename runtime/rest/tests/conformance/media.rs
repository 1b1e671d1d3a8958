//! Media types as PostgREST 13 negotiates them: the vendor JSON flavours with `nulls=stripped`,
//! CSV, GeoJSON once PostGIS is installed in the project (406 before), and media type handlers
//! (domains named like a media type, returned by a scalar function or by an aggregate over a
//! relation's rows or over `anyelement`, `*/*` for any); 406 (PGRST107) for anything else.

use super::{case, get, post, Case};
use serde_json::json;

/// PostGIS in the project's `extensions` schema, a table of points, and handlers.
pub const SETUP: &str = r#"
CREATE EXTENSION postgis WITH SCHEMA extensions;
CREATE TABLE public.places (id int PRIMARY KEY, name text, geom extensions.geometry(Point, 4326));
INSERT INTO public.places VALUES (1, 'origin', 'SRID=4326;POINT(0 0)'), (2, 'north', 'SRID=4326;POINT(0 10)');
GRANT ALL ON public.places TO anon, authenticated, service_role;

CREATE DOMAIN "text/plain" AS text;
CREATE DOMAIN "text/xml" AS pg_catalog.xml;
CREATE DOMAIN "application/octet-stream" AS bytea;
CREATE DOMAIN "application/vnd.geo2+json" AS jsonb;
CREATE DOMAIN "text/tab-separated-values" AS text;
CREATE DOMAIN "*/*" AS bytea;

CREATE FUNCTION public.greeting() RETURNS "text/plain" LANGUAGE sql AS $$ SELECT 'hello, world' $$;
CREATE FUNCTION public.greeting_xml() RETURNS "text/xml" LANGUAGE sql AS $$ SELECT '<greeting>hi</greeting>'::xml $$;
CREATE FUNCTION public.png_magic() RETURNS "application/octet-stream" LANGUAGE sql AS $$ SELECT '\x89504e47'::bytea $$;
CREATE FUNCTION public.nothing_plain() RETURNS "text/plain" LANGUAGE sql AS $$ SELECT NULL::text $$;
CREATE FUNCTION public.plain_text() RETURNS text LANGUAGE sql AS $$ SELECT 'no handler' $$;
CREATE FUNCTION public.anything() RETURNS "*/*" LANGUAGE sql AS $$ SELECT 'any'::bytea $$;

-- For every relation: the rows as GeoJSON features in an array.
CREATE FUNCTION public.geo2_step(state "application/vnd.geo2+json", next anyelement)
  RETURNS "application/vnd.geo2+json" LANGUAGE sql
  AS $$ SELECT state || jsonb_build_array(extensions.st_asgeojson(next)::jsonb) $$;
CREATE AGGREGATE public.geo2_agg(anyelement) (initcond = '[]', stype = "application/vnd.geo2+json", sfunc = public.geo2_step);

-- For one table: tab-separated values.
CREATE FUNCTION public.tsv_step(state text, next public.kv) RETURNS "text/tab-separated-values" LANGUAGE sql
  AS $$ SELECT state || next.k || E'\t' || coalesce(next.v, '') || E'\n' $$;
CREATE AGGREGATE public.tsv_agg(public.kv) (initcond = '', stype = "text/tab-separated-values", sfunc = public.tsv_step);
"#;

const GEO_CT: &str = "application/geo+json; charset=utf-8";

fn accept(path: &str, media: &'static str) -> Case {
    get(path).h("accept", media)
}

/// Before [`SETUP`]: no PostGIS, no handlers.
pub fn before() -> Vec<Case> {
    vec![
        accept("/authors?select=id", "application/geo+json")
            .status(406)
            .json(json!({"code": "PGRST107", "details": null, "hint": null,
                "message": "None of these media types are available: application/geo+json"}))
            .named("GeoJSON without PostGIS"),
        accept(
            "/authors?select=id&id=eq.1",
            "application/geo+json, text/csv",
        )
        .text("id\n1")
        .named("the next acceptable media type"),
        accept("/rpc/add_them?a=1&b=2", "text/plain, text/xml")
            .status(406)
            .ptr(
                "/message",
                json!("None of these media types are available: text/plain, text/xml"),
            ),
        accept("/authors?select=id", "text/*")
            .status(406)
            .code("PGRST107"),
        accept(
            "/authors?select=id,country,bio&id=eq.4",
            "application/vnd.pgrst.object+json;nulls=stripped",
        )
        .json(json!({"id": 4}))
        .header(
            "content-type",
            "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8",
        ),
        accept(
            "/authors?select=id,country&id=eq.4",
            "application/vnd.pgrst.array+json; nulls=stripped",
        )
        .json(json!([{"id": 4}])),
        accept(
            "/authors?select=id&id=eq.1",
            "text/csv;q=0.5, application/json",
        )
        .json(json!([{"id": 1}]))
        .named("quality orders Accept"),
        accept("/", "text/csv").status(406).code("PGRST107"),
        case("HEAD", "/kv?select=k")
            .h("accept", "text/csv")
            .text("")
            .header("content-type", "text/csv; charset=utf-8")
            .named("HEAD names the media type"),
        case("HEAD", "/rpc/add_them?a=1&b=2")
            .header("content-type", "application/json; charset=utf-8"),
    ]
}

/// After [`SETUP`] (and a schema cache reload).
pub fn after() -> Vec<Case> {
    let feature = |id: i64, name: &str, y: i64| {
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, y]},
            "properties": {"id": id, "name": name}})
    };
    vec![
        accept("/places?order=id", "application/geo+json")
            .json(json!({"type": "FeatureCollection",
                "features": [feature(1, "origin", 0), feature(2, "north", 10)]}))
            .header("content-type", GEO_CT)
            .named("GeoJSON"),
        accept("/places?select=name,geom&id=eq.2", "application/geo+json").json(json!({
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 10]},
                "properties": {"name": "north"}}]})),
        accept("/places?id=eq.99", "application/geo+json")
            .json(json!({"type": "FeatureCollection", "features": []})),
        post("/places", r#"{"id": 3, "name": "east", "geom": "SRID=4326;POINT(10 0)"}"#)
            .h("accept", "application/geo+json")
            .h("prefer", "return=representation")
            .status(201)
            .ptr("/features/0/geometry/coordinates", json!([10, 0]))
            .header("content-type", GEO_CT),
        accept("/rpc/greeting", "text/plain")
            .text("hello, world")
            .header("content-type", "text/plain; charset=utf-8")
            .named("a scalar function's handler"),
        get("/rpc/greeting").json(json!("hello, world")),
        accept("/rpc/nothing_plain", "text/plain").text(""),
        accept("/rpc/plain_text", "text/plain")
            .status(406)
            .json(json!({"code": "PGRST107", "details": null, "hint": null,
                "message": "None of these media types are available: text/plain"})),
        accept("/rpc/greeting_xml", "text/xml")
            .text("<greeting>hi</greeting>")
            .header("content-type", "text/xml; charset=utf-8"),
        accept("/rpc/png_magic", "application/octet-stream")
            .text("\u{fffd}PNG")
            .header("content-type", "application/octet-stream"),
        accept("/rpc/anything", "app/bingo")
            .text("any")
            .header("content-type", "application/octet-stream")
            .named("the any handler"),
        get("/rpc/anything").text("any"),
        accept("/kv?order=k", "text/tab-separated-values")
            .text("a\t1\nb\t2\n")
            .header("content-type", "text/tab-separated-values")
            .named("a table's aggregate handler"),
        accept("/kv?select=k&order=k", "text/tab-separated-values")
            .status(406)
            .code("PGRST107")
            .named("a table's handler needs the default select"),
        accept("/kv?order=k", "text/plain, application/json")
            .json(json!([{"k": "a", "v": "1"}, {"k": "b", "v": "2"}])),
        accept("/places?select=id,geom&order=id", "application/vnd.geo2+json")
            .json(json!([
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}, "properties": {"id": 1}},
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 10]}, "properties": {"id": 2}},
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [10, 0]}, "properties": {"id": 3}}]))
            .header("content-type", "application/vnd.geo2+json")
            .named("a handler for every relation"),
        accept("/authors?select=id", "text/plain").status(406).code("PGRST107"),
        accept("/authors?select=id&id=eq.1", "application/vnd.pgrst.object")
            .json(json!({"id": 1}))
            .named("vendor media types are never overridden"),
    ]
}
