//! A parsed request + the schema cache → one SQL statement with text bind parameters.
//!
//! Every statement yields exactly one row `(body, page, total, response.headers, response.status,
//! location)`: PostgreSQL renders the body itself (`json_agg`, `row_to_json`), so rows are never decoded
//! into Rust values and re-encoded. Embeds are `LEFT JOIN LATERAL` subqueries; writes are data-modifying
//! CTEs read by the same select machinery. Parameters are sent untyped in text format, so PostgreSQL
//! infers each one's type from its context, as it would for a quoted literal. Identifiers are always
//! quoted; casts and JSON keys are validated by the parser and keys are bound as parameters too.

use crate::error::RestError;
use crate::limits::{MAX_EMBED_DEPTH, MAX_LOGIC_DEPTH};
use crate::plan::*;
use crate::schema::{Function, QName, Relationship, SchemaCache, Table};
use http::StatusCode;
use std::fmt::Write;
use supactl_common::ident::quote_ident;

/// A statement ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<String>,
    /// `Prefer: count=planned`: an `EXPLAIN (FORMAT JSON)` of the filtered relation over the same
    /// parameters, run before `sql` in the same transaction; its top node's `Plan Rows` is the total.
    pub explain: Option<String>,
    /// `count=estimated` under `db-max-rows`: the statement counts at most this many rows plus one,
    /// and a count above it is replaced by the planner's estimate (PostgREST's rule).
    pub estimate_above: Option<i64>,
}

impl Statement {
    /// The total to report from the statement's own count and the explained estimate.
    pub fn total(&self, counted: Option<i64>, planned: Option<i64>) -> Option<i64> {
        match (self.estimate_above, counted) {
            (Some(max), Some(n)) if n > max => planned.or(Some(n)),
            (Some(_), n) => n,
            (None, n) => planned.or(n),
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
}

/// What to write.
#[derive(Debug, Clone)]
pub enum Write_ {
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
}

pub struct Builder<'a> {
    cache: &'a SchemaCache,
    query: &'a Query,
    pub params: Vec<String>,
    n: usize,
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
            n: 0,
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
        self.n += 1;
        format!("{base}_{}", self.n)
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
                let func = self
                    .computed_field(src, &f.name)
                    .ok_or_else(|| column_error(alias, &f.name))?;
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

    /// Builds one level of a read: select list, laterals for embeds, conditions and order.
    fn level(
        &mut self,
        src: &Source,
        alias: &str,
        select: &[SelectItem],
        path: &[String],
    ) -> Result<Level, RestError> {
        // The parser refused deeper selects; a plan built some other way stops here too.
        if path.len() >= MAX_EMBED_DEPTH {
            return Err(RestError::Limit(format!(
                "select nesting exceeds {MAX_EMBED_DEPTH} levels"
            )));
        }
        self.seen_paths.push(path.to_vec());
        // Embedded levels are built inside this one: each keeps its own computed flag.
        let outer_computed = std::mem::take(&mut self.computed);
        let mut lv = Level {
            select: Vec::new(),
            group_by: Vec::new(),
            has_aggregate: false,
            laterals: Vec::new(),
            conds: Vec::new(),
            order: Vec::new(),
            embeds: Vec::new(),
            computed: false,
        };
        // Embeds first, so filters and order can refer to them.
        let mut embed_sql: Vec<Vec<String>> = Vec::new();
        for item in select {
            if let SelectItem::Embed(e) = item {
                let emb = self.embed(src, alias, e, path)?;
                lv.embeds
                    .push((e.label().to_string(), emb.alias.clone(), emb.to_one));
                embed_sql.push(emb.columns);
                let inner = e.join == Some(JoinType::Inner);
                if inner {
                    lv.conds.push(format!(
                        "{}.\"pgrst_v\" IS NOT NULL",
                        quote_ident(&emb.alias)
                    ));
                }
                lv.laterals.push(Lateral {
                    sql: emb.lateral,
                    alias: emb.alias.clone(),
                    filtering: inner,
                });
            }
        }
        let mut embed_iter = embed_sql.into_iter();
        for item in select {
            match item {
                SelectItem::Star => lv.select.push(format!("{}.*", quote_ident(alias))),
                SelectItem::Count { alias: a } => {
                    self.aggregates_allowed()?;
                    lv.has_aggregate = true;
                    lv.select.push(format!(
                        "count(*) AS {}",
                        quote_ident(a.as_deref().unwrap_or("count"))
                    ));
                }
                SelectItem::Column {
                    field,
                    alias: a,
                    cast,
                    aggregate,
                    aggregate_cast,
                } => {
                    let mut expr = self.field(src, alias, field)?;
                    if let Some(c) = cast {
                        expr = format!("CAST({expr} AS {c})");
                    }
                    let name = match aggregate {
                        Some(agg) => {
                            self.aggregates_allowed()?;
                            lv.has_aggregate = true;
                            expr = format!("{}({expr})", agg.sql());
                            if let Some(c) = aggregate_cast {
                                expr = format!("CAST({expr} AS {c})");
                            }
                            a.clone().unwrap_or_else(|| agg.sql().to_string())
                        }
                        None => {
                            lv.group_by.push(expr.clone());
                            a.clone()
                                .unwrap_or_else(|| field.default_alias().to_string())
                        }
                    };
                    lv.select.push(format!("{expr} AS {}", quote_ident(&name)));
                }
                SelectItem::Embed(_) => {
                    if let Some(cols) = embed_iter.next() {
                        lv.select.extend(cols);
                    }
                }
            }
        }
        // Filters, logic trees and order at this path.
        for (p, c) in &self.query.filters {
            if p.as_slice() == path && !(path.is_empty() && self.skip_top_filters) {
                let c = self.cond(src, alias, c, &lv.embeds, 1)?;
                if c.contains("\"pgrst_v\"") {
                    // A null filter on an embed: the count query needs the embeds.
                    for l in lv.laterals.iter_mut() {
                        l.filtering = true;
                    }
                }
                lv.conds.push(c);
            }
        }
        for (p, terms) in &self.query.order {
            if p.as_slice() == path {
                let t = self.order_terms(src, alias, terms, &lv.embeds)?;
                lv.order.extend(t);
            }
        }
        lv.computed = std::mem::replace(&mut self.computed, outer_computed);
        Ok(lv)
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

/// One embed, rendered.
struct Embedded {
    /// Alias of the lateral subquery.
    alias: String,
    lateral: String,
    /// What the parent selects from it (nothing for an empty embed, several columns for a spread).
    columns: Vec<String>,
    to_one: bool,
}

/// What an RPC call passes.
pub enum RpcArgs<'f> {
    None,
    /// JSON object text and the chosen input arguments, bound through `json_to_record`.
    Named(String, Vec<&'f crate::schema::Arg>),
    /// The whole body to a single json/jsonb argument.
    Single(String),
}

impl<'a> Builder<'a> {
    /// Output keys of a select list over `table` (for spreads).
    fn output_names(&self, table: Option<&Table>, select: &[SelectItem]) -> Vec<String> {
        let mut out = Vec::new();
        for item in select {
            match item {
                SelectItem::Star => {
                    if let Some(t) = table {
                        out.extend(t.columns.iter().map(|c| c.name.clone()));
                    }
                }
                SelectItem::Count { alias } => {
                    out.push(alias.clone().unwrap_or_else(|| "count".into()))
                }
                SelectItem::Column {
                    field,
                    alias,
                    aggregate,
                    ..
                } => out.push(alias.clone().unwrap_or_else(|| match aggregate {
                    Some(a) => a.sql().to_string(),
                    None => field.default_alias().to_string(),
                })),
                SelectItem::Embed(e) if e.spread => {
                    let (target, _) = self.cache.relationships(
                        &table
                            .map(|t| (t.schema.clone(), t.name.clone()))
                            .unwrap_or_default(),
                        &e.name,
                        e.hint.as_deref(),
                    );
                    let t = target.and_then(|q| self.cache.tables.get(&q));
                    out.extend(self.output_names(t, &e.select));
                }
                SelectItem::Embed(e) if !e.select.is_empty() => out.push(e.label().to_string()),
                SelectItem::Embed(_) => {}
            }
        }
        out
    }

    fn embed(
        &mut self,
        parent: &Source,
        parent_alias: &str,
        e: &EmbedRequest,
        path: &[String],
    ) -> Result<Embedded, RestError> {
        let origin = &parent.qname;
        let (target, mut rels) = self.cache.relationships(origin, &e.name, e.hint.as_deref());
        let rel = match rels.len() {
            0 => {
                return Err(RestError::api(
                    StatusCode::BAD_REQUEST,
                    "PGRST200",
                    format!(
                        "Could not find a relationship between '{}' and '{}' in the schema cache",
                        origin.1, e.name
                    ),
                    Some(format!(
                        "Searched for a foreign key relationship between '{}' and '{}'{} in the schema '{}', but no matches were found.",
                        origin.1,
                        e.name,
                        e.hint.as_ref().map(|h| format!(" using the hint '{h}'")).unwrap_or_default(),
                        origin.0
                    )),
                    None,
                ))
            }
            1 => rels.pop().expect("one relationship"),
            _ => {
                let details: Vec<serde_json::Value> = rels
                    .iter()
                    .map(|r| r.describe(&origin.1, &e.name))
                    .collect();
                let hints: Vec<String> = rels
                    .iter()
                    .map(|r| format!("'{}!{}'", e.name, r.hint_name()))
                    .collect();
                return Err(RestError::Api {
                    status: StatusCode::MULTIPLE_CHOICES,
                    code: "PGRST201",
                    message: format!(
                        "Could not embed because more than one relationship was found for '{}' and '{}'",
                        origin.1, e.name
                    ),
                    details: serde_json::Value::Array(details),
                    hint: serde_json::Value::String(format!(
                        "Try changing '{}' to one of the following: {}. Find the desired relationship in the 'details' key.",
                        e.name,
                        hints.join(", ")
                    )),
                });
            }
        };
        let target = target.expect("a relationship has a target");
        let table = self
            .cache
            .tables
            .get(&target)
            .ok_or_else(|| RestError::no_table(&target.0, &target.1))?;
        let child_alias = self.next_alias(&target.1);
        let lat_alias = self.next_alias("pgrst");
        let from = match &rel {
            // The function's rows, from the parent's row; the level's row is then typed again.
            Relationship::Computed { function, .. } => format!(
                "{}.{}({})",
                quote_ident(&function.0),
                quote_ident(&function.1),
                parent.row(parent_alias)
            ),
            _ => format!("{}.{}", quote_ident(&target.0), quote_ident(&target.1)),
        };
        let child_src = Source {
            from,
            table: Some(table),
            qname: target.clone(),
            row_cast: false,
        };
        let mut child_path = path.to_vec();
        child_path.push(e.label().to_string());
        let select: Vec<SelectItem> = if e.select.is_empty() {
            Vec::new()
        } else {
            e.select.clone()
        };
        let mut lv = self.level(&child_src, &child_alias, &select, &child_path)?;
        let (c, p) = (quote_ident(&child_alias), quote_ident(parent_alias));
        match &rel {
            Relationship::ManyToOne(fk) => {
                for (col, fcol) in fk.columns.iter().zip(&fk.fcolumns) {
                    lv.conds.push(format!(
                        "{c}.{} = {p}.{}",
                        quote_ident(fcol),
                        quote_ident(col)
                    ));
                }
            }
            Relationship::OneToMany { fk, .. } => {
                for (col, fcol) in fk.columns.iter().zip(&fk.fcolumns) {
                    lv.conds.push(format!(
                        "{c}.{} = {p}.{}",
                        quote_ident(col),
                        quote_ident(fcol)
                    ));
                }
            }
            Relationship::ManyToMany {
                junction,
                to_origin,
                to_target,
            } => {
                let j = quote_ident(&self.next_alias(&junction.1));
                let mut on = Vec::new();
                for (col, fcol) in to_target.columns.iter().zip(&to_target.fcolumns) {
                    on.push(format!(
                        "{j}.{} = {c}.{}",
                        quote_ident(col),
                        quote_ident(fcol)
                    ));
                }
                for (col, fcol) in to_origin.columns.iter().zip(&to_origin.fcolumns) {
                    on.push(format!(
                        "{j}.{} = {p}.{}",
                        quote_ident(col),
                        quote_ident(fcol)
                    ));
                }
                lv.conds.push(format!(
                    "EXISTS (SELECT 1 FROM {}.{} AS {j} WHERE {})",
                    quote_ident(&junction.0),
                    quote_ident(&junction.1),
                    on.join(" AND ")
                ));
            }
            Relationship::Computed { .. } => self.computed = true,
        }
        let to_one = rel.to_one();
        if lv.select.is_empty() {
            lv.select.push("true AS \"pgrst_empty\"".into());
        }
        let limit = if to_one {
            None
        } else {
            self.query.limit_at(&child_path)
        };
        let offset = if to_one {
            None
        } else {
            self.query.offset_at(&child_path)
        };
        let inner = self.select_sql(&child_src.from, &child_alias, &lv, limit, offset);
        let l = quote_ident(&lat_alias);
        let label = quote_ident(e.label());
        let (lateral, columns) = if to_one {
            let columns = if e.select.is_empty() {
                Vec::new()
            } else if e.spread {
                self.output_names(Some(table), &e.select)
                    .iter()
                    .map(|n| format!("{l}.{} AS {}", quote_ident(n), quote_ident(n)))
                    .collect()
            } else {
                vec![format!("{l}.\"pgrst_v\" AS {label}")]
            };
            (
                format!(
                    " LEFT JOIN LATERAL (SELECT row_to_json(\"pgrst_x\".*) AS \"pgrst_v\", \"pgrst_x\".* FROM ({inner}) AS \"pgrst_x\") AS {l} ON TRUE"
                ),
                columns,
            )
        } else {
            if e.spread {
                // PostgREST 13: each spread column of a to-many embed becomes an array of its values,
                // in the embed's order.
                if lv.has_aggregate {
                    return Err(RestError::api(
                        StatusCode::BAD_REQUEST,
                        "PGRST127",
                        "Feature not implemented",
                        Some(format!(
                            "Aggregates are not supported in a spread of the to-many relationship '{}'",
                            e.name
                        )),
                        None,
                    ));
                }
                let names = self.output_names(Some(table), &e.select);
                let aggs: Vec<String> = names
                    .iter()
                    .map(|n| {
                        let q = quote_ident(n);
                        format!("json_agg(\"pgrst_x\".{q}) AS {q}")
                    })
                    .collect();
                let columns = names
                    .iter()
                    .map(|n| {
                        let q = quote_ident(n);
                        format!("coalesce({l}.{q}, '[]') AS {q}")
                    })
                    .collect();
                return Ok(Embedded {
                    alias: lat_alias.clone(),
                    lateral: format!(
                        " LEFT JOIN LATERAL (SELECT {} FROM ({inner}) AS \"pgrst_x\") AS {l} ON TRUE",
                        if aggs.is_empty() { "true AS \"pgrst_empty\"".to_string() } else { aggs.join(", ") }
                    ),
                    columns,
                    to_one: false,
                });
            }
            let columns = if e.select.is_empty() {
                Vec::new()
            } else {
                vec![format!("coalesce({l}.\"pgrst_v\", '[]') AS {label}")]
            };
            (
                format!(
                    " LEFT JOIN LATERAL (SELECT json_agg(\"pgrst_x\") AS \"pgrst_v\" FROM ({inner}) AS \"pgrst_x\") AS {l} ON TRUE"
                ),
                columns,
            )
        };
        Ok(Embedded {
            alias: lat_alias,
            lateral,
            columns,
            to_one,
        })
    }

    /// Whether a level's embeds can be joined after its rows are chosen: none of them filters the rows
    /// (`!inner`, a null filter), orders them or is aggregated over, and every one yields exactly one
    /// row per parent (a LEFT JOIN of a to-one embed or of a to-many aggregate).
    fn embeds_after_rows(lv: &Level) -> bool {
        !lv.laterals.is_empty()
            && !lv.has_aggregate
            && !lv.computed
            && lv.laterals.iter().all(|l| {
                let refer = format!("{}.", quote_ident(&l.alias));
                !l.filtering && !lv.conds.iter().chain(&lv.order).any(|c| c.contains(&refer))
            })
    }

    /// `SELECT … FROM from AS alias <laterals> WHERE … GROUP BY … ORDER BY … LIMIT … OFFSET …`.
    fn select_sql(
        &mut self,
        from: &str,
        alias: &str,
        lv: &Level,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> String {
        // Rows first, embeds after: joined in one query, PostgreSQL would build the embeds of every
        // row OFFSET skips (and, under a sort, of every row) before LIMIT drops them.
        let rows_first = (limit.is_some() || offset.is_some()) && Self::embeds_after_rows(lv);
        let source = if rows_first {
            let rows = Level {
                select: vec![format!("{}.*", quote_ident(alias))],
                group_by: Vec::new(),
                has_aggregate: false,
                laterals: Vec::new(),
                conds: lv.conds.clone(),
                order: lv.order.clone(),
                embeds: Vec::new(),
                computed: false,
            };
            format!("({})", self.select_sql(from, alias, &rows, limit, offset))
        } else {
            from.to_string()
        };
        let mut s = format!(
            "SELECT {} FROM {source} AS {}",
            lv.select.join(", "),
            quote_ident(alias)
        );
        for l in &lv.laterals {
            s.push_str(&l.sql);
        }
        if !rows_first && !lv.conds.is_empty() {
            let _ = write!(s, " WHERE {}", lv.conds.join(" AND "));
        }
        if lv.has_aggregate && !lv.group_by.is_empty() {
            let _ = write!(s, " GROUP BY {}", lv.group_by.join(", "));
        }
        if !lv.order.is_empty() {
            let _ = write!(s, " ORDER BY {}", lv.order.join(", "));
        }
        if rows_first {
            return s;
        }
        if let Some(l) = limit {
            let p = self.param(l.to_string());
            let _ = write!(s, " LIMIT {p}");
        }
        if let Some(o) = offset {
            let p = self.param(o.to_string());
            let _ = write!(s, " OFFSET {p}");
        }
        s
    }

    /// The statement of a read (relation or row-returning RPC) over `inner`, with the total that
    /// `Prefer: count=` asks for; the count query is built only when one is asked for.
    fn counted(
        self,
        inner: &str,
        render: Render,
        count: Option<Count>,
        from: &str,
        alias: &str,
        lv: &Level,
    ) -> Statement {
        let max_rows = self.cache.settings.db_max_rows;
        let rows = count.map(|_| self.count_sql(from, alias, lv));
        let rows = rows.as_deref().unwrap_or_default();
        let total = total_expr(count, rows, max_rows);
        let explain = explain_sql(count, rows, self.params.len(), max_rows);
        Statement {
            sql: wrap(inner, render, &total, "NULL::text", ""),
            params: self.params,
            explain,
            estimate_above: max_rows.filter(|_| count == Some(Count::Estimated)),
        }
    }

    /// `SELECT 1` over the whole filtered relation (for `Prefer: count=`: counted, or explained),
    /// reusing the level's conditions.
    fn count_sql(&self, from: &str, alias: &str, lv: &Level) -> String {
        let mut s = format!("SELECT 1 FROM {from} AS {}", quote_ident(alias));
        for l in lv.laterals.iter().filter(|l| l.filtering) {
            s.push_str(&l.sql);
        }
        if !lv.conds.is_empty() {
            let _ = write!(s, " WHERE {}", lv.conds.join(" AND "));
        }
        s
    }
}

fn body_expr(render: Render) -> &'static str {
    match render {
        Render::Json => "coalesce(json_agg(\"pgrst_r\"), '[]')::text",
        Render::JsonStripped => {
            "coalesce(json_agg(json_strip_nulls(row_to_json(\"pgrst_r\"))), '[]')::text"
        }
        Render::Csv => "coalesce((SELECT string_agg(k, ',') FROM json_object_keys((array_agg(row_to_json(\"pgrst_r\")))[1]) AS k) || chr(10) || string_agg(substring(\"pgrst_r\"::text, 2, length(\"pgrst_r\"::text) - 2), chr(10)), '')",
        Render::None => "''::text",
        Render::Scalar => "coalesce((json_agg(\"pgrst_r\".\"pgrst_scalar\")->0)::text, 'null')",
        Render::ScalarSet => "coalesce(json_agg(\"pgrst_r\".\"pgrst_scalar\"), '[]')::text",
    }
}

/// The final projection over the rows `pgrst_r`.
/// Its last columns are the session GUCs as they stand once the statement has run (see
/// [`crate::session::OBSERVED_GUCS`]).
fn wrap(inner: &str, render: Render, total: &str, location: &str, cte: &str) -> String {
    format!(
        "{cte}SELECT {}, count(*), {total}, current_setting('response.headers', true), current_setting('response.status', true), {location}, {} FROM ({inner}) AS \"pgrst_r\"",
        body_expr(render),
        crate::session::OBSERVED_GUCS,
    )
}

/// What the count preference turns into (`count=planned` is read from an `EXPLAIN` instead, see
/// [`Statement::explain`]).
fn total_expr(count: Option<Count>, rows_query: &str, max_rows: Option<i64>) -> String {
    match (count, max_rows) {
        // Counting past db-max-rows is what `estimated` avoids: stop one row after it.
        (Some(Count::Estimated), Some(max)) => format!(
            "(SELECT count(*) FROM ({rows_query} LIMIT {}) AS \"pgrst_counted\")",
            max + 1
        ),
        (Some(Count::Exact | Count::Estimated), _) => {
            format!("(SELECT count(*) FROM ({rows_query}) AS \"pgrst_counted\")")
        }
        (Some(Count::Planned), _) | (None, _) => "NULL::bigint".to_string(),
    }
}

/// `EXPLAIN (FORMAT JSON)` of the rows a count counts. The statement is prepared with the main
/// statement's parameters, and PostgreSQL cannot type a parameter the text never mentions, so those
/// the count does not use (limit, offset, select-list values) are mentioned in a one-row join that
/// leaves the estimate unchanged.
fn explain_sql(
    count: Option<Count>,
    rows_query: &str,
    nparams: usize,
    max_rows: Option<i64>,
) -> Option<String> {
    let wanted = match count {
        Some(Count::Planned) => true,
        Some(Count::Estimated) => max_rows.is_some(),
        _ => false,
    };
    if !wanted {
        return None;
    }
    let mentioned = mentioned_params(rows_query, nparams);
    let unused: Vec<String> = (1..=nparams)
        .filter(|i| !mentioned[*i])
        .map(|i| format!("${i}::text"))
        .collect();
    Some(if unused.is_empty() {
        format!("EXPLAIN (FORMAT JSON) {rows_query}")
    } else {
        format!(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM ({rows_query}) AS \"pgrst_rows\", (SELECT {}) AS \"pgrst_unused\"",
            unused.join(", ")
        )
    })
}

/// Which of the placeholders `$1`…`$n` `sql` mentions (whole: `$12` is not `$1`), indexed by number,
/// in one pass: a request can carry thousands of parameters, and a search per parameter would make
/// the count's cost grow with their square.
fn mentioned_params(sql: &str, n: usize) -> Vec<bool> {
    let mut seen = vec![false; n + 1];
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if let Ok(k) = sql[i + 1..i + 1 + digits].parse::<usize>() {
            if k <= n {
                seen[k] = true;
            }
        }
        i += 1 + digits;
    }
    seen
}

impl<'a> Builder<'a> {
    /// A read of a table or view.
    pub fn read(
        mut self,
        table: &Table,
        render: Render,
        count: Option<Count>,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Statement, RestError> {
        let src = Source {
            from: format!(
                "{}.{}",
                quote_ident(&table.schema),
                quote_ident(&table.name)
            ),
            table: Some(table),
            qname: (table.schema.clone(), table.name.clone()),
            row_cast: false,
        };
        let alias = table.name.clone();
        let lv = self.level(&src, &alias, &self.query.select.clone(), &[])?;
        self.check_paths()?;
        let inner = self.select_sql(&src.from, &alias, &lv, limit, offset);
        Ok(self.counted(&inner, render, count, &src.from, &alias, &lv))
    }

    /// An insert (with optional upsert), update or delete, its result read back through `select=`.
    pub fn write(
        mut self,
        table: &Table,
        w: &Write_,
        render: Render,
        missing_default: bool,
        resolution: Option<Resolution>,
        want_location: bool,
    ) -> Result<Statement, RestError> {
        let qt = format!(
            "{}.{}",
            quote_ident(&table.schema),
            quote_ident(&table.name)
        );
        let alias = table.name.clone();
        let a = quote_ident(&alias);
        let src = Source {
            from: qt.clone(),
            table: Some(table),
            qname: (table.schema.clone(), table.name.clone()),
            row_cast: false,
        };
        // Top-level filters go to the DML's WHERE; the rest of the query shapes what is returned.
        let mut dml_conds = Vec::new();
        let filtered = !matches!(w, Write_::Insert { .. });
        for (p, c) in &self.query.filters {
            if p.is_empty() && filtered {
                let c = self.cond(&src, &alias, c, &[], 1)?;
                dml_conds.push(c);
            }
        }
        let where_ = if dml_conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", dml_conds.join(" AND "))
        };
        let dml = match w {
            Write_::Insert {
                json,
                columns,
                complete,
                on_conflict,
            } => {
                for c in columns {
                    if table.column(c).is_none() {
                        return Err(RestError::no_column(c, &table.name));
                    }
                }
                if columns.is_empty() {
                    if json == "[]" {
                        format!("SELECT * FROM {qt} WHERE false")
                    } else {
                        format!("INSERT INTO {qt} AS {a} DEFAULT VALUES RETURNING {a}.*")
                    }
                } else {
                    let p = self.param(json.clone());
                    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
                    let mut exprs = Vec::with_capacity(columns.len());
                    for c in columns {
                        let col = format!("\"pgrst_body\".{}", quote_ident(c));
                        if missing_default && !complete.contains(c) {
                            let k = self.param(c.clone());
                            let default = table
                                .column(c)
                                .and_then(|x| x.default.clone())
                                .unwrap_or_else(|| "NULL".into());
                            exprs.push(format!(
                                "CASE WHEN \"pgrst_j\"::jsonb ? {k}::text THEN {col} ELSE {default} END"
                            ));
                        } else {
                            exprs.push(col);
                        }
                    }
                    let mut s = format!(
                        "INSERT INTO {qt} AS {a} ({}) SELECT {} FROM json_array_elements({p}::json) AS \"pgrst_e\"(\"pgrst_j\"), LATERAL json_populate_record(NULL::{qt}, \"pgrst_j\") AS \"pgrst_body\"",
                        cols.join(", "),
                        exprs.join(", ")
                    );
                    if let Some(res) = resolution {
                        let target = on_conflict.as_deref().unwrap_or(&table.pk);
                        if target.is_empty() {
                            return Err(RestError::api(
                                StatusCode::BAD_REQUEST,
                                "PGRST100",
                                "an upsert needs on_conflict or a primary key on the relation",
                                None,
                                None,
                            ));
                        }
                        let target: Vec<String> = target.iter().map(|c| quote_ident(c)).collect();
                        let _ = write!(s, " ON CONFLICT ({})", target.join(", "));
                        match res {
                            Resolution::IgnoreDuplicates => s.push_str(" DO NOTHING"),
                            Resolution::MergeDuplicates => {
                                let sets: Vec<String> =
                                    cols.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
                                let _ = write!(s, " DO UPDATE SET {}", sets.join(", "));
                            }
                        }
                    }
                    let _ = write!(s, " RETURNING {a}.*");
                    s
                }
            }
            Write_::Update { json, columns } => {
                for c in columns {
                    if table.column(c).is_none() {
                        return Err(RestError::no_column(c, &table.name));
                    }
                }
                if columns.is_empty() {
                    format!("SELECT * FROM {qt} WHERE false")
                } else {
                    let p = self.param(json.clone());
                    let sets: Vec<String> = columns
                        .iter()
                        .map(|c| {
                            let c = quote_ident(c);
                            format!("{c} = \"pgrst_body\".{c}")
                        })
                        .collect();
                    format!(
                        "UPDATE {qt} AS {a} SET {} FROM (SELECT * FROM json_populate_record(NULL::{qt}, {p}::json)) AS \"pgrst_body\"{where_} RETURNING {a}.*",
                        sets.join(", ")
                    )
                }
            }
            Write_::Delete => format!("DELETE FROM {qt} AS {a}{where_} RETURNING {a}.*"),
        };
        self.skip_top_filters = true;
        let ret_src = Source {
            from: "\"pgrst_source\"".to_string(),
            table: Some(table),
            qname: src.qname.clone(),
            row_cast: true,
        };
        let lv = self.level(&ret_src, &alias, &self.query.select.clone(), &[])?;
        self.check_paths()?;
        let inner = self.select_sql(&ret_src.from, &alias, &lv, None, None);
        let location = if want_location && !table.pk.is_empty() {
            let pk: Vec<String> = table.pk.iter().map(|c| quote_ident(c)).collect();
            format!(
                "(SELECT row_to_json(\"pgrst_l\")::text FROM (SELECT {} FROM \"pgrst_source\" LIMIT 1) AS \"pgrst_l\")",
                pk.join(", ")
            )
        } else {
            "NULL::text".to_string()
        };
        Ok(Statement {
            sql: wrap(
                &inner,
                render,
                "NULL::bigint",
                &location,
                &format!("WITH \"pgrst_source\" AS ({dml}) "),
            ),
            params: self.params,
            explain: None,
            estimate_above: None,
        })
    }
}

impl<'a> Builder<'a> {
    /// A function call. Row-returning functions are read like relations (select, filters, order,
    /// embeds through the returned table type); scalar ones return their value.
    pub fn rpc(
        mut self,
        f: &Function,
        args: &RpcArgs,
        render: Render,
        count: Option<Count>,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Statement, RestError> {
        let fq = format!("{}.{}", quote_ident(&f.schema), quote_ident(&f.name));
        let (prefix, call) = match args {
            RpcArgs::None => (String::new(), format!("{fq}()")),
            RpcArgs::Single(json) => {
                let p = self.param(json.clone());
                let ty = f
                    .inputs()
                    .next()
                    .map(|a| a.data_type.as_str())
                    .unwrap_or("json");
                let ty = if ty == "jsonb" { "jsonb" } else { "json" };
                (String::new(), format!("{fq}({p}::{ty})"))
            }
            RpcArgs::Named(json, chosen) => {
                if chosen.is_empty() {
                    (String::new(), format!("{fq}()"))
                } else {
                    let p = self.param(json.clone());
                    let defs: Vec<String> = chosen
                        .iter()
                        .map(|a| format!("{} {}", quote_ident(&a.name), a.data_type))
                        .collect();
                    let passed: Vec<String> = chosen
                        .iter()
                        .map(|a| {
                            format!(
                                "{}{} := \"pgrst_args\".{}",
                                if a.mode == "v" { "VARIADIC " } else { "" },
                                quote_ident(&a.name),
                                quote_ident(&a.name)
                            )
                        })
                        .collect();
                    (
                        format!(
                            "json_to_record({p}::json) AS \"pgrst_args\"({}) CROSS JOIN LATERAL ",
                            defs.join(", ")
                        ),
                        format!("{fq}({})", passed.join(", ")),
                    )
                }
            }
        };
        if !f.returns_rows() {
            let inner = if f.retset {
                let mut q = format!("SELECT \"pgrst_call\" AS \"pgrst_scalar\" FROM {prefix}{call} AS \"pgrst_call\"");
                // limit/offset (and `db-max-rows`) apply to a set of scalars as to rows
                if let Some(l) = limit {
                    let p = self.param(l.to_string());
                    q.push_str(&format!(" LIMIT {p}"));
                }
                if let Some(o) = offset {
                    let p = self.param(o.to_string());
                    q.push_str(&format!(" OFFSET {p}"));
                }
                q
            } else if prefix.is_empty() {
                format!("SELECT {call} AS \"pgrst_scalar\"")
            } else {
                let from = prefix.trim_end().trim_end_matches("CROSS JOIN LATERAL");
                format!("SELECT {call} AS \"pgrst_scalar\" FROM {from}")
            };
            let render = match render {
                Render::Json | Render::JsonStripped | Render::Scalar if f.retset => {
                    Render::ScalarSet
                }
                Render::Json | Render::JsonStripped => Render::Scalar,
                r => r,
            };
            return Ok(Statement {
                sql: wrap(&inner, render, "NULL::bigint", "NULL::text", ""),
                params: self.params,
                explain: None,
                estimate_above: None,
            });
        }
        let table = f.retrel.as_ref().and_then(|q| self.cache.tables.get(q));
        let qname = f
            .retrel
            .clone()
            .unwrap_or_else(|| (f.schema.clone(), f.name.clone()));
        let src = Source {
            from: format!("(SELECT \"pgrst_call\".* FROM {prefix}{call} AS \"pgrst_call\")"),
            table,
            qname,
            row_cast: true,
        };
        let alias = f.name.clone();
        let lv = self.level(&src, &alias, &self.query.select.clone(), &[])?;
        self.check_paths()?;
        let inner = self.select_sql(&src.from, &alias, &lv, limit, offset);
        Ok(self.counted(&inner, render, count, &src.from, &alias, &lv))
    }
}

#[cfg(test)]
mod explain_tests {
    use super::*;

    #[test]
    fn placeholders_are_matched_whole() {
        let m = mentioned_params("a = $1 AND b = $12", 12);
        assert!(m[1] && m[12]);
        assert!(!m[2] && !m[11]);
        let m = mentioned_params("a = $12", 12);
        assert!(!m[1] && !m[2] && m[12]);
        assert!(mentioned_params("LIMIT $3", 3)[3]);
        assert_eq!(
            mentioned_params("$ $x $99999999999999999999 $4", 3),
            vec![false; 4]
        );
    }

    #[test]
    fn unused_parameters_are_mentioned_once() {
        let sql = explain_sql(
            Some(Count::Planned),
            "SELECT 1 FROM t WHERE id = $2",
            3,
            None,
        )
        .unwrap();
        assert!(
            sql.ends_with("(SELECT $1::text, $3::text) AS \"pgrst_unused\""),
            "{sql}"
        );
        assert_eq!(
            explain_sql(
                Some(Count::Planned),
                "SELECT 1 FROM t WHERE id = $1",
                1,
                None
            )
            .unwrap(),
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM t WHERE id = $1"
        );
        assert!(explain_sql(Some(Count::Exact), "SELECT 1", 0, None).is_none());
        assert!(explain_sql(Some(Count::Estimated), "SELECT 1", 0, None).is_none());
        assert!(explain_sql(Some(Count::Estimated), "SELECT 1", 0, Some(10)).is_some());
    }
}
