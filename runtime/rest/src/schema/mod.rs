//! The schema cache of one project: relations, columns, primary and foreign keys (also followed through
//! views), functions, media type handlers and the project's `pgrst.*` settings, read from the catalog in
//! one query whose result PostgreSQL renders as JSON.
//!
//! Loaded lazily on a project's first request and dropped with its pool; reloaded after DDL and on
//! `NOTIFY pgrst` (see [`crate::exec`] for how the notification arrives without a listener per project).

mod media;
mod relationship;
mod suggest;

pub use media::MediaHandler;
pub use relationship::Relationship;

use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// `(schema, name)`.
pub type QName = (String, String);

#[derive(Debug, Clone, Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type` of the column, e.g. `integer`, `character varying(20)`, `text[]`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    /// The default expression, inlined for `Prefer: missing=default` (the catalog's own SQL).
    pub default: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// `r`, `p`, `v`, `m`, `f`.
    pub kind: String,
    pub insertable: bool,
    pub description: Option<String>,
    pub columns: Vec<Column>,
    #[serde(default)]
    pub pk: Vec<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn is_view(&self) -> bool {
        matches!(self.kind.as_str(), "v" | "m")
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    pub fschema: String,
    pub ftable: String,
    pub fcolumns: Vec<String>,
    /// Synthesised for a view over the constrained (or referenced) table.
    #[serde(default)]
    pub via_view: bool,
    /// The key's columns are the constrained table's primary key or a unique constraint: each row
    /// of the referenced table has at most one referencing row (one-to-one).
    #[serde(default)]
    pub one_to_one: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Arg {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    /// `i`, `o`, `b`, `v`, `t` as in `pg_proc.proargmodes`.
    pub mode: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Function {
    pub schema: String,
    pub name: String,
    pub args: Vec<Arg>,
    /// How many trailing input arguments have defaults.
    pub ndefaults: usize,
    pub retset: bool,
    pub rettype: String,
    /// `typtype` of the return type: `b` base, `c` composite, `p` pseudo (void, record), `d` domain…
    pub rettyptype: String,
    /// The relation whose row type is returned, when composite.
    pub retrel: Option<QName>,
    /// `i`, `s`, `v`.
    pub volatility: String,
    pub description: Option<String>,
    /// The relation whose row type is the function's only input argument: the function is then a
    /// computed field of that relation (scalar result) or a computed relationship (a relation's rows).
    #[serde(default)]
    pub argrel: Option<QName>,
    /// `pg_proc.prorows`: a set-returning computed relationship declared `ROWS 1` is to-one.
    #[serde(default)]
    pub rows: f64,
}

impl Function {
    /// Input arguments (in, inout, variadic), in order.
    pub fn inputs(&self) -> impl Iterator<Item = &Arg> {
        self.args
            .iter()
            .filter(|a| matches!(a.mode.as_str(), "i" | "b" | "v"))
    }

    /// Output columns of `RETURNS TABLE(...)` / OUT parameters.
    pub fn outputs(&self) -> Vec<&Arg> {
        self.args
            .iter()
            .filter(|a| matches!(a.mode.as_str(), "o" | "b" | "t"))
            .collect()
    }

    pub fn returns_void(&self) -> bool {
        self.rettype == "void"
    }

    /// Returns rows (a composite or `RETURNS TABLE`), as opposed to scalars.
    pub fn returns_rows(&self) -> bool {
        self.rettyptype == "c" || (self.rettype == "record" && !self.outputs().is_empty())
    }

    pub fn required_inputs(&self) -> usize {
        self.inputs().count().saturating_sub(self.ndefaults)
    }

    pub fn is_variadic(&self) -> bool {
        self.args.iter().any(|a| a.mode == "v")
    }
}

/// `pgrst.*` settings of the project (PostgREST's in-database configuration), read from
/// `ALTER DATABASE … SET` / `ALTER ROLE … SET`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub db_aggregates_enabled: bool,
    /// `db-plan-enabled`: `Accept: application/vnd.pgrst.plan` is answered (off by default).
    #[serde(default)]
    pub db_plan_enabled: bool,
    pub db_pre_request: Option<String>,
    #[serde(default)]
    pub db_tx_end: Option<String>,
    pub db_schemas: Option<String>,
    /// `db-extra-search-path`: schemas after the request's schema on every request's `search_path`
    /// (comma-separated; `public, extensions` when unset, as on Supabase).
    pub db_extra_search_path: Option<String>,
    /// `db-max-rows`: the most rows a read or RPC returns (Supabase's default is 1,000); parsed when
    /// the cache loads, ignored unless a positive number.
    #[serde(default, deserialize_with = "positive_number")]
    pub db_max_rows: Option<i64>,
}

/// A setting's text as a positive number, or none.
fn positive_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    // Any JSON value (a nonsense setting such as 'on' arrives as a boolean) must not fail the others.
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_str()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|n| *n > 0))
}

impl Settings {
    /// The schemas of `db-extra-search-path`, in order.
    pub fn extra_search_path(&self) -> Vec<&str> {
        match &self.db_extra_search_path {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
            None => vec!["public", "extensions"],
        }
    }

    /// `tx=commit|rollback` is honoured only when the project allows an override.
    pub fn tx_override(&self) -> bool {
        self.db_tx_end
            .as_deref()
            .is_some_and(|s| s.ends_with("-allow-override"))
    }

    /// Whether transactions end in ROLLBACK by default (`db-tx-end = rollback…`).
    pub fn rollback_default(&self) -> bool {
        self.db_tx_end
            .as_deref()
            .is_some_and(|s| s.starts_with("rollback"))
    }
}

#[derive(Debug, Deserialize)]
struct Raw {
    tables: Vec<Table>,
    fks: Vec<ForeignKey>,
    view_columns: Vec<ViewColumn>,
    functions: Vec<Function>,
    settings: Vec<String>,
    media_handlers: Vec<MediaHandler>,
    postgis: Option<media::Postgis>,
}

#[derive(Debug, Deserialize)]
struct ViewColumn {
    vschema: String,
    vname: String,
    tschema: String,
    tname: String,
    column: String,
}

/// One project's cache.
#[derive(Debug, Default)]
pub struct SchemaCache {
    /// Exposed schemas, the default first.
    pub schemas: Vec<String>,
    pub tables: HashMap<QName, Table>,
    pub fks: Vec<ForeignKey>,
    pub functions: HashMap<QName, Vec<Function>>,
    /// Names of the functions of a row (computed fields and relationships), so that a name which is
    /// none of them is ruled out without building a key.
    pub row_functions: HashSet<String>,
    pub settings: Settings,
    /// Media type handlers, by media type (see [`MediaHandler`]).
    pub media_handlers: Vec<MediaHandler>,
    /// The schema of PostGIS (≥ 3.0), when installed: `application/geo+json` is then available.
    pub geojson: Option<String>,
}

/// The catalog query, with `$settings` the query of the `pgrst.*` in-database settings. `$1` is the
/// exposed schemas.
macro_rules! load_sql {
    ($settings:literal) => {
        concat!(
            r#"
WITH rels AS (
  SELECT c.oid, n.nspname, c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r','p','v','m','f')
)
SELECT json_build_object(
  'tables', (SELECT coalesce(json_agg(json_build_object(
      'schema', r.nspname, 'name', r.relname, 'kind', r.relkind,
      'insertable', r.relkind IN ('r','p') OR pg_relation_is_updatable(r.oid, true) & 8 = 8,
      'description', obj_description(r.oid, 'pg_class'),
      'columns', (SELECT coalesce(json_agg(json_build_object(
            'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
            'nullable', NOT a.attnotnull,
            'default', CASE
                WHEN a.attidentity = 'd' THEN format('nextval(%L)', pg_get_serial_sequence(r.oid::regclass::text, a.attname))
                WHEN a.attgenerated = 's' THEN NULL
                WHEN d.adbin IS NULL AND t.typbasetype <> 0 THEN pg_get_expr(t.typdefaultbin, 0)
                ELSE pg_get_expr(d.adbin, d.adrelid) END,
            'description', col_description(r.oid, a.attnum)) ORDER BY a.attnum), '[]')
          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          JOIN pg_type t ON t.oid = a.atttypid
          WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'pk', (SELECT coalesce(json_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum)), '[]')
          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
          WHERE i.indrelid = r.oid AND i.indisprimary)) ORDER BY r.nspname, r.relname), '[]') FROM rels r),
  'fks', (SELECT coalesce(json_agg(json_build_object(
      'name', con.conname, 'schema', sn.nspname, 'table', s.relname,
      'columns', (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n),
      'fschema', fn.nspname, 'ftable', f.relname,
      'fcolumns', (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n),
      'one_to_one', EXISTS (SELECT 1 FROM pg_constraint u WHERE u.conrelid = con.conrelid AND u.contype IN ('p', 'u')
                  AND (SELECT array_agg(x ORDER BY x) FROM unnest(u.conkey) x) = (SELECT array_agg(x ORDER BY x) FROM unnest(con.conkey) x))
      ) ORDER BY sn.nspname, s.relname, con.conname), '[]')
    FROM pg_constraint con
    JOIN pg_class s ON s.oid = con.conrelid JOIN pg_namespace sn ON sn.oid = s.relnamespace
    JOIN pg_class f ON f.oid = con.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
    WHERE con.contype = 'f' AND con.conparentid = 0),
  'view_columns', (SELECT coalesce(json_agg(DISTINCT jsonb_build_object(
      'vschema', vn.nspname, 'vname', v.relname, 'tschema', tn.nspname, 'tname', t.relname, 'column', a.attname)), '[]')
    FROM pg_rewrite rw
    JOIN pg_class v ON v.oid = rw.ev_class AND v.relkind IN ('v','m')
    JOIN pg_namespace vn ON vn.oid = v.relnamespace
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
      AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.refobjid <> v.oid
    JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
    JOIN pg_attribute va ON va.attrelid = v.oid AND va.attname = a.attname
    WHERE vn.nspname = ANY($1::text[])),
  'functions', (SELECT coalesce(json_agg(json_build_object(
      'schema', n.nspname, 'name', p.proname,
      'args', (SELECT coalesce(json_agg(json_build_object(
            'name', coalesce(p.proargnames[u.i], ''), 'type', format_type(u.t, NULL),
            'mode', coalesce(p.proargmodes[u.i]::text, 'i')) ORDER BY u.i), '[]')
          FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY u(t, i)),
      'ndefaults', p.pronargdefaults, 'retset', p.proretset,
      'rettype', format_type(p.prorettype, NULL), 'rettyptype', rt.typtype,
      'retrel', (SELECT json_build_array(rn.nspname, rc.relname) FROM pg_class rc
                 JOIN pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = rt.typrelid),
      'volatility', p.provolatile, 'description', obj_description(p.oid, 'pg_proc'),
      'argrel', (SELECT json_build_array(an.nspname, ac.relname) FROM pg_type at
                 JOIN pg_class ac ON ac.oid = at.typrelid JOIN pg_namespace an ON an.oid = ac.relnamespace
                 WHERE p.pronargs = 1 AND at.oid = p.proargtypes[0]),
      'rows', p.prorows) ORDER BY n.nspname, p.proname, p.oid), '[]')
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_type rt ON rt.oid = p.prorettype
    WHERE n.nspname = ANY($1::text[]) AND p.prokind = 'f'),"#,
            media::media_sql!(),
            r#"
  'settings', (SELECT coalesce(json_agg(s.x), '[]') FROM ("#,
            $settings,
            r#") s(x))
)::text
"#
        )
    };
}

/// The catalog query of a project database: the settings come from `extensions.pgrst_settings()`
/// (templates/rest.sql), since the cluster-wide catalogs that hold them are not readable by project roles
/// (templates/confine.sql).
pub const LOAD_SQL: &str = load_sql!("SELECT * FROM extensions.pgrst_settings()");

/// The same for a database created before `extensions.pgrst_settings()` existed (its catalogs are still
/// readable); used when [`LOAD_SQL`] finds no such function or may not call it.
pub const LOAD_SQL_BEFORE_CONFINE: &str = load_sql!(
    "SELECT x FROM (SELECT unnest(setconfig) AS x, setrole, setdatabase FROM pg_db_role_setting
      WHERE setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
        AND setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = session_user))
      ORDER BY setrole, setdatabase) t WHERE x LIKE 'pgrst.%'"
);

impl SchemaCache {
    /// Builds the cache from [`LOAD_SQL`]'s output.
    pub fn from_json(text: &str) -> Result<SchemaCache, serde_json::Error> {
        let raw: Raw = serde_json::from_str(text)?;
        let mut settings = serde_json::Map::new();
        for s in &raw.settings {
            if let Some((k, v)) = s.strip_prefix("pgrst.").and_then(|s| s.split_once('=')) {
                let v = match v {
                    "true" | "on" => serde_json::Value::Bool(true),
                    "false" | "off" => serde_json::Value::Bool(false),
                    v => serde_json::Value::String(v.to_string()),
                };
                settings.insert(k.replace('-', "_"), v);
            }
        }
        let settings: Settings =
            serde_json::from_value(serde_json::Value::Object(settings)).unwrap_or_default();
        let mut tables: HashMap<QName, Table> = raw
            .tables
            .into_iter()
            .map(|t| ((t.schema.clone(), t.name.clone()), t))
            .collect();
        let mut functions: HashMap<QName, Vec<Function>> = HashMap::new();
        for f in raw.functions {
            functions
                .entry((f.schema.clone(), f.name.clone()))
                .or_default()
                .push(f);
        }
        // Relationships through views: a view column that takes its name from a base-table column it
        // depends on stands for that column (renamed columns are not followed).
        let mut view_map: HashMap<QName, Vec<(QName, String)>> = HashMap::new();
        for vc in raw.view_columns {
            view_map
                .entry((vc.vschema, vc.vname))
                .or_default()
                .push(((vc.tschema, vc.tname), vc.column));
        }
        let mut fks = raw.fks;
        let base = fks.clone();
        let covers = |view: &QName, table: (&str, &str), cols: &[String]| {
            view_map.get(view).is_some_and(|m| {
                cols.iter().all(|c| {
                    m.iter()
                        .any(|(t, col)| t.0 == table.0 && t.1 == table.1 && col == c)
                })
            })
        };
        for fk in &base {
            for view in view_map.keys() {
                if covers(view, (&fk.schema, &fk.table), &fk.columns) {
                    fks.push(ForeignKey {
                        schema: view.0.clone(),
                        table: view.1.clone(),
                        via_view: true,
                        ..fk.clone()
                    });
                }
                if covers(view, (&fk.fschema, &fk.ftable), &fk.fcolumns) {
                    fks.push(ForeignKey {
                        fschema: view.0.clone(),
                        ftable: view.1.clone(),
                        via_view: true,
                        ..fk.clone()
                    });
                }
            }
        }
        // A view over one table keeps that table's primary key when it exposes all of its columns.
        for (view, m) in &view_map {
            let mut sources: Vec<&QName> = m.iter().map(|(t, _)| t).collect();
            sources.dedup();
            if let [src] = sources.as_slice() {
                let pk = tables.get(*src).map(|t| t.pk.clone()).unwrap_or_default();
                if !pk.is_empty() && pk.iter().all(|c| m.iter().any(|(_, col)| col == c)) {
                    if let Some(v) = tables.get_mut(view) {
                        v.pk = pk;
                    }
                }
            }
        }
        fks.retain(|fk| {
            tables.contains_key(&(fk.schema.clone(), fk.table.clone()))
                && tables.contains_key(&(fk.fschema.clone(), fk.ftable.clone()))
        });
        // One order whatever the order views were visited in: what depends on it (ambiguity errors,
        // OpenAPI) reads the same on every load.
        fks.sort_by(|a, b| {
            (
                &a.schema, &a.table, &a.name, &a.fschema, &a.ftable, a.via_view,
            )
                .cmp(&(
                    &b.schema, &b.table, &b.name, &b.fschema, &b.ftable, b.via_view,
                ))
        });
        fks.dedup();
        let row_functions = functions
            .values()
            .flatten()
            .filter(|f| f.argrel.is_some())
            .map(|f| f.name.clone())
            .collect();
        Ok(SchemaCache {
            schemas: Vec::new(),
            tables,
            fks,
            functions,
            row_functions,
            settings,
            media_handlers: raw.media_handlers,
            geojson: raw.postgis.and_then(media::Postgis::geojson_schema),
        })
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.get(&(schema.to_string(), name.to_string()))
    }

    /// Approximate heap bytes held (for the memory benchmark's sanity, not for accounting).
    pub fn approx_bytes(&self) -> usize {
        let s = |x: &String| x.capacity();
        let mut n = 0;
        for t in self.tables.values() {
            n += 128 + s(&t.schema) * 2 + s(&t.name) * 2;
            for c in &t.columns {
                n += 96 + s(&c.name) + s(&c.data_type) + c.default.as_ref().map_or(0, s);
            }
        }
        for f in &self.fks {
            n += 160 + f.columns.iter().chain(&f.fcolumns).map(s).sum::<usize>();
        }
        for fs in self.functions.values() {
            for f in fs {
                n += 200
                    + f.args
                        .iter()
                        .map(|a| 64 + s(&a.name) + s(&a.data_type))
                        .sum::<usize>();
            }
        }
        n
    }
}
