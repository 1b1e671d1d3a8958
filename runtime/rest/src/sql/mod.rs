//! A parsed request + the schema cache → one SQL statement with text bind parameters.
//!
//! Every statement yields exactly one row `(body, page, total, response.headers, response.status,
//! location)`: PostgreSQL renders the body itself (`json_agg`, `row_to_json`), so rows are never decoded
//! into Rust values and re-encoded. Embeds are `LEFT JOIN LATERAL` subqueries; writes are data-modifying
//! CTEs read by the same select machinery. Parameters are sent untyped in text format, so PostgreSQL
//! infers each one's type from its context, as it would for a quoted literal. Identifiers are always
//! quoted; casts and JSON keys are validated by the parser and keys are bound as parameters too.

mod level;
mod output;
mod rpc;
mod select;
mod write;

pub use rpc::RpcArgs;

use crate::error::RestError;
use crate::limits::MAX_LOGIC_DEPTH;
use crate::request::*;
use crate::schema::{Function, QName, SchemaCache, Table};
use http::StatusCode;
use std::fmt::Write;
use supactl_common::ident::quote_ident;

/// A statement ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<String>,
    /// An `EXPLAIN (FORMAT JSON)` of the filtered relation over the same parameters, run before `sql`
    /// in the same transaction (`count=planned`, `count=estimated`); its top node's `Plan Rows` is the
    /// planner's estimate.
    pub explain: Option<String>,
    /// What the statement's third column holds and how the reported total follows from it.
    pub total: Total,
    /// An `EXPLAIN` of the statement: its rows are the plan (see `service::plan`).
    pub plan: bool,
    /// The same read as rows in binary, for the body to be written in Rust (see
    /// [`output::wrap_binary`]); `sql` is kept for columns of a type only PostgreSQL can write.
    pub binary: Option<BinaryRead>,
}

/// The binary form of a plain read ([`Statement::binary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryRead {
    pub sql: String,
    /// Whether its trailer also reads `extra_float_digits`, which the text of a float depends on: only
    /// then may a float column be written from binary.
    pub floats: bool,
}

/// How a statement's total (`Content-Range`'s `/N`) is found, as PostgREST finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// The column is the total, or NULL when none was asked for (`count=exact`, no count).
    Counted,
    /// The planner's estimate (`count=planned`).
    Planned,
    /// `count=estimated`: the column counts at most `db-max-rows` + 1 rows (all of them when the
    /// setting is unset); above `db-max-rows` (always, when unset) the total is the larger of that
    /// count and the planner's estimate.
    Estimated { max_rows: Option<i64> },
    /// An upsert: the column is how many rows were inserted rather than updated (no total).
    Inserted,
}

impl Statement {
    /// The total to report from the statement's own count and the explained estimate.
    pub fn total(&self, counted: Option<i64>, planned: Option<i64>) -> Option<i64> {
        match self.total {
            Total::Counted => counted,
            Total::Planned => planned,
            Total::Estimated { max_rows } => match counted {
                Some(n) if max_rows.is_none_or(|max| n > max) => {
                    Some(planned.map_or(n, |p| p.max(n)))
                }
                n => n,
            },
            Total::Inserted => None,
        }
    }
}

/// How the body is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// A JSON array of rows (also used for `vnd.pgrst.object+json`, unwrapped by the caller).
    Json,
    /// The same without null-valued keys (`nulls=stripped`).
    JsonStripped,
    Csv,
    /// No body (HEAD, `return=minimal`).
    None,
    /// One scalar function result.
    Scalar,
    /// A set of scalar function results, as a JSON array.
    ScalarSet,
    /// `application/geo+json`: a GeoJSON FeatureCollection of the rows (PostGIS's `ST_AsGeoJSON`).
    GeoJson,
    /// The output of a media type handler, by its index in the schema cache's `media_handlers`.
    Handler(usize),
}

/// What a write does: the DML of an insert (or upsert), update or delete.
#[derive(Debug, Clone)]
pub enum Mutation {
    Insert {
        json: String,
        columns: Vec<String>,
        /// Columns present in every row (the others take their default under `missing=default`).
        complete: Vec<String>,
        on_conflict: Option<Vec<String>>,
    },
    Update {
        json: String,
        columns: Vec<String>,
        /// Keys the body has (`columns=` may name others).
        complete: Vec<String>,
    },
    Delete,
}

/// A statement and what the caller needs to shape the response.
#[derive(Debug)]
pub struct Built {
    pub stmt: Statement,
    /// The read's offset, for Content-Range.
    pub offset: i64,
}

/// Where a read takes its rows from.
struct Source<'a> {
    /// SQL for the FROM item (a qualified table, a CTE name or a function call subquery).
    from: String,
    /// The relation whose columns and relationships apply (None for a `RETURNS TABLE` function).
    table: Option<&'a Table>,
    /// Name used for relationships and messages.
    qname: QName,
    /// The alias's row is an anonymous record (a subquery or a CTE), so a computed field or
    /// relationship gets it cast back to the relation's row type.
    row_cast: bool,
}

impl Source<'_> {
    /// The row of `alias` as a value of the relation's type, for a function taking it.
    fn row(&self, alias: &str) -> String {
        if self.row_cast {
            format!(
                "ROW({}.*)::{}.{}",
                quote_ident(alias),
                quote_ident(&self.qname.0),
                quote_ident(&self.qname.1)
            )
        } else {
            // The relation's own whole-row reference: an index on `f(table)` still matches.
            format!("{}.*", quote_ident(alias))
        }
    }
}

struct Lateral {
    sql: String,
    /// The lateral subquery's alias, as the level's other clauses refer to it.
    alias: String,
    /// Needed by the WHERE clause (inner join or a null filter on the embed), so the count query keeps it.
    filtering: bool,
}

/// The pieces of one level of a read.
struct Level {
    select: Vec<String>,
    group_by: Vec<String>,
    has_aggregate: bool,
    laterals: Vec<Lateral>,
    conds: Vec<String>,
    order: Vec<String>,
    /// Embeds at this level: label → (lateral alias, to_one).
    embeds: Vec<(String, String, bool)>,
    /// A computed field or relationship takes the level's row, which must then stay the relation's
    /// own row (not a rows-first subquery's record).
    computed: bool,
    /// In a to-one spread: the aggregates it leaves to its parent, by output name (see
    /// [`Builder::level`]).
    hoisted: Vec<Hoisted>,
}

/// An aggregate of a to-one spread, applied by the level above it over the spread's raw column (as
/// PostgREST hoists it), so that it aggregates the parent's rows grouped by the other columns.
#[derive(Debug, Clone)]
struct Hoisted {
    name: String,
    aggregate: Aggregate,
    cast: Option<String>,
}

/// What a column an embed adds to its parent holds.
#[derive(Debug, Clone)]
enum ColumnKind {
    /// JSON of the embed (an object or an array): grouped by as jsonb when the parent aggregates.
    Json,
    /// A spread column: grouped by when the parent aggregates.
    Spread,
    /// A spread column the parent aggregates.
    Aggregate(Aggregate, Option<String>),
}

/// A column an embed adds to its parent's select list.
struct EmbedColumn {
    /// The expression, over the embed's lateral subquery.
    expr: String,
    /// The output key.
    name: String,
    kind: ColumnKind,
}

/// One embed, rendered.
struct Embedded {
    /// Alias of the lateral subquery.
    alias: String,
    lateral: String,
    /// What the parent selects from it (nothing for an empty embed, several columns for a spread).
    columns: Vec<EmbedColumn>,
    to_one: bool,
}

pub struct Builder<'a> {
    cache: &'a SchemaCache,
    query: &'a Query,
    pub params: Vec<String>,
    /// Aliases handed out so far, numbering the next one.
    aliases: usize,
    /// Writes apply top-level filters to the DML, not to the rows read back.
    skip_top_filters: bool,
    /// Embed paths the select list has, to refuse parameters for others (PGRST108).
    seen_paths: Vec<Vec<String>>,
    /// Whether the level being built has used a computed field or relationship so far.
    computed: bool,
}

/// Whether a value/key is an integer (JSON array index).
fn is_index(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.len() < 10 && d.bytes().all(|b| b.is_ascii_digit())
}

fn column_error(table: &str, column: &str) -> RestError {
    RestError::Db(
        Box::new(crate::error::DbError {
            code: "42703".into(),
            message: format!("column {table}.{column} does not exist"),
            details: None,
            hint: None,
        }),
        supactl_common::keys::Role::Anon,
    )
}

impl<'a> Builder<'a> {
    pub fn new(cache: &'a SchemaCache, query: &'a Query) -> Builder<'a> {
        Builder {
            cache,
            query,
            params: Vec::new(),
            aliases: 0,
            skip_top_filters: false,
            seen_paths: Vec::new(),
            computed: false,
        }
    }

    fn param(&mut self, v: impl Into<String>) -> String {
        self.params.push(v.into());
        format!("${}", self.params.len())
    }

    fn next_alias(&mut self, base: &str) -> String {
        self.aliases += 1;
        format!("{base}_{}", self.aliases)
    }

    /// The computed field `name` of the source's relation: a function taking its row and returning
    /// a single value (PostgREST's computed fields; never part of `*`).
    fn computed_field(&self, src: &Source, name: &str) -> Option<&'a Function> {
        self.cache
            .computed(&src.qname, name)
            .filter(|f| f.retrel.is_none() && !f.retset)
    }

    /// `"alias"."col"->$1::text->>$2::text`, or `"schema"."fn"(row)` for a computed field.
    fn field(&mut self, src: &Source, alias: &str, f: &Field) -> Result<String, RestError> {
        let mut s = match src.table {
            Some(t) if t.column(&f.name).is_none() => {
                let func = match self.computed_field(src, &f.name) {
                    Some(func) => func,
                    // `count` that is no column: PostgreSQL reads `alias.count` as `count(alias)`,
                    // the row count PostgREST keeps for compatibility (`messages(count)`), allowed
                    // with aggregates off. An aggregate: the rows are never chosen first.
                    None if f.name == "count" && f.json.is_empty() => {
                        self.computed = true;
                        return Ok(format!("{}.\"count\"", quote_ident(alias)));
                    }
                    None => return Err(column_error(alias, &f.name)),
                };
                self.computed = true;
                format!(
                    "{}.{}({})",
                    quote_ident(&func.schema),
                    quote_ident(&func.name),
                    src.row(alias)
                )
            }
            _ => format!("{}.{}", quote_ident(alias), quote_ident(&f.name)),
        };
        for step in &f.json {
            let p = self.param(step.key.clone());
            let ty = if is_index(&step.key) { "int" } else { "text" };
            let _ = write!(s, "{}{p}::{ty}", if step.text { "->>" } else { "->" });
        }
        Ok(s)
    }

    fn column_type<'t>(&self, src: &Source<'t>, name: &str) -> Option<&'t str>
    where
        'a: 't,
    {
        match src.table?.column(name) {
            Some(c) => Some(c.data_type.as_str()),
            None => self.computed_field(src, name).map(|f| f.rettype.as_str()),
        }
    }

    fn filter(
        &mut self,
        src: &Source,
        alias: &str,
        f: &Filter,
        embeds: &[(String, String, bool)],
    ) -> Result<String, RestError> {
        // `embed=is.null` / `embed=not.is.null`: anti-join / semi-join on an embed.
        if f.field.json.is_empty() {
            if let Some((_, lat, _)) = embeds.iter().find(|(l, _, _)| *l == f.field.name) {
                let null = match f.predicate {
                    Predicate::Is(IsValue::Null) => !f.negated,
                    Predicate::Is(IsValue::NotNull) => f.negated,
                    _ => return Err(RestError::api(
                        StatusCode::BAD_REQUEST,
                        "PGRST120",
                        format!("Bad operator on the '{}' embedded resource", f.field.name),
                        Some(
                            "Only is null or not is null filters are allowed on embedded resources"
                                .into(),
                        ),
                        None,
                    )),
                };
                return Ok(format!(
                    "{}.\"pgrst_v\" IS {}NULL",
                    quote_ident(lat),
                    if null { "" } else { "NOT " }
                ));
            }
        }
        let col = self.field(src, alias, &f.field)?;
        let expr = match &f.predicate {
            Predicate::Compare {
                op,
                quantifier,
                value,
            } => {
                let p = self.param(value.clone());
                match quantifier {
                    Some(Quantifier::Any) => format!("{col} {} ANY({p})", op.sql()),
                    Some(Quantifier::All) => format!("{col} {} ALL({p})", op.sql()),
                    None => format!("{col} {} {p}", op.sql()),
                }
            }
            Predicate::In(items) if items.is_empty() => "false".to_string(),
            Predicate::In(items) => {
                let p = self.param(array_literal(items));
                format!("{col} = ANY({p})")
            }
            Predicate::Is(v) => format!(
                "{col} IS {}",
                match v {
                    IsValue::Null => "NULL",
                    IsValue::NotNull => "NOT NULL",
                    IsValue::True => "TRUE",
                    IsValue::False => "FALSE",
                    IsValue::Unknown => "UNKNOWN",
                }
            ),
            Predicate::Fts {
                kind,
                language,
                value,
            } => {
                let lang = language.as_ref().map(|l| self.param(l.clone()));
                let p = self.param(value.clone());
                let is_tsvector = f.field.json.is_empty()
                    && self.column_type(src, &f.field.name) == Some("tsvector");
                let lhs = match (&lang, is_tsvector) {
                    (_, true) => col,
                    (Some(l), false) => format!("to_tsvector({l}::regconfig, {col})"),
                    (None, false) => format!("to_tsvector({col})"),
                };
                match lang {
                    Some(l) => format!("{lhs} @@ {}({l}::regconfig, {p})", kind.function()),
                    None => format!("{lhs} @@ {}({p})", kind.function()),
                }
            }
        };
        Ok(if f.negated {
            format!("NOT ({expr})")
        } else {
            expr
        })
    }

    /// A filter or a logic tree whose list is at nesting `depth` (1: a parameter's own list).
    fn cond(
        &mut self,
        src: &Source,
        alias: &str,
        c: &Cond,
        embeds: &[(String, String, bool)],
        depth: usize,
    ) -> Result<String, RestError> {
        match c {
            Cond::Filter(f) => self.filter(src, alias, f, embeds),
            Cond::Logic { .. } if depth > MAX_LOGIC_DEPTH => Err(RestError::Limit(format!(
                "logic tree nesting exceeds {MAX_LOGIC_DEPTH} levels"
            ))),
            Cond::Logic {
                or,
                negated,
                children,
            } => {
                let mut parts = Vec::with_capacity(children.len());
                for ch in children {
                    parts.push(self.cond(src, alias, ch, embeds, depth + 1)?);
                }
                let joined = if parts.is_empty() {
                    "true".to_string()
                } else {
                    parts.join(if *or { " OR " } else { " AND " })
                };
                Ok(if *negated {
                    format!("NOT ({joined})")
                } else {
                    format!("({joined})")
                })
            }
        }
    }

    fn order_terms(
        &mut self,
        src: &Source,
        alias: &str,
        terms: &[OrderTerm],
        embeds: &[(String, String, bool)],
    ) -> Result<Vec<String>, RestError> {
        let mut out = Vec::new();
        for t in terms {
            let mut s = match &t.relation {
                None => self.field(src, alias, &t.field)?,
                Some(rel) => {
                    let (_, lat, to_one) = embeds
                        .iter()
                        .find(|(l, _, _)| l == rel)
                        .ok_or_else(|| not_embedded(rel))?;
                    if !to_one {
                        return Err(RestError::api(
                            StatusCode::BAD_REQUEST,
                            "PGRST118",
                            format!("A related order on '{rel}' is not possible"),
                            Some(format!("'{}' and '{rel}' do not form a many-to-one or one-to-one relationship", src.qname.1)),
                            None,
                        ));
                    }
                    let mut s = format!("{}.{}", quote_ident(lat), quote_ident(&t.field.name));
                    for step in &t.field.json {
                        let p = self.param(step.key.clone());
                        let ty = if is_index(&step.key) { "int" } else { "text" };
                        let _ = write!(s, "{}{p}::{ty}", if step.text { "->>" } else { "->" });
                    }
                    s
                }
            };
            if t.descending {
                s.push_str(" DESC");
            }
            match t.nulls {
                Some(Nulls::First) => s.push_str(" NULLS FIRST"),
                Some(Nulls::Last) => s.push_str(" NULLS LAST"),
                None => {}
            }
            out.push(s);
        }
        Ok(out)
    }

    /// Every nested parameter must name an embed of the select list.
    fn check_paths(&self) -> Result<(), RestError> {
        let q = self.query;
        let paths = q
            .filters
            .iter()
            .map(|x| &x.0)
            .chain(q.order.iter().map(|x| &x.0))
            .chain(q.limit.iter().map(|x| &x.0))
            .chain(q.offset.iter().map(|x| &x.0));
        for p in paths {
            if !p.is_empty() && !self.seen_paths.contains(p) {
                return Err(not_embedded(&p.join(".")));
            }
        }
        Ok(())
    }

    fn aggregates_allowed(&self) -> Result<(), RestError> {
        if self.cache.settings.db_aggregates_enabled {
            Ok(())
        } else {
            Err(RestError::api(
                StatusCode::BAD_REQUEST,
                "PGRST123",
                "Use of aggregate functions is not allowed",
                None,
                None,
            ))
        }
    }
}

/// PGRST108.
fn not_embedded(label: &str) -> RestError {
    RestError::api(
        StatusCode::BAD_REQUEST,
        "PGRST108",
        format!("'{label}' is not an embedded resource in this request"),
        None,
        Some(format!(
            "Verify that '{label}' is included in the 'select' query parameter."
        )),
    )
}

/// A PostgreSQL array literal for `= ANY($n)`: every element double-quoted.
fn array_literal(items: &[String]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::{Statement, Total};

    fn stmt(total: Total) -> Statement {
        Statement {
            sql: String::new(),
            params: Vec::new(),
            explain: None,
            total,
            plan: false,
            binary: None,
        }
    }

    #[test]
    fn estimated_totals_follow_postgrest() {
        let unset = stmt(Total::Estimated { max_rows: None });
        // db-max-rows unset: always the larger of the count and the estimate.
        assert_eq!(unset.total(Some(10), Some(100)), Some(100));
        assert_eq!(unset.total(Some(10), Some(3)), Some(10));
        assert_eq!(unset.total(Some(10), None), Some(10));
        let capped = stmt(Total::Estimated { max_rows: Some(2) });
        assert_eq!(capped.total(Some(3), Some(6)), Some(6));
        assert_eq!(capped.total(Some(2), Some(6)), Some(2));
        assert_eq!(stmt(Total::Planned).total(Some(5), Some(7)), Some(7));
        assert_eq!(stmt(Total::Counted).total(Some(5), Some(7)), Some(5));
        assert_eq!(stmt(Total::Inserted).total(Some(1), None), None);
    }
}
