//! Reads: the select list, embeds (`LEFT JOIN LATERAL` subqueries), the rows-first subquery and the
//! count.

use super::output::{explain_sql, total_expr, wrap, wrap_binary};
use super::{
    BinaryRead, Builder, ColumnKind, EmbedColumn, Embedded, Level, Render, Source, Statement, Total,
};
use crate::error::RestError;
use crate::request::*;
use crate::schema::{Relationship, Table};
use http::StatusCode;
use std::fmt::Write;
use supactl_common::ident::quote_ident;

impl<'a> Builder<'a> {
    /// Output keys of a select list over `table` (for spreads).
    pub(super) fn output_names(&self, table: Option<&Table>, select: &[SelectItem]) -> Vec<String> {
        let mut out = Vec::new();
        for item in select {
            match item {
                SelectItem::Star => {
                    if let Some(t) = table {
                        out.extend(t.columns.iter().map(|c| c.name.clone()));
                    }
                }
                SelectItem::Count { alias, .. } => {
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
                    let rels = self.cache.relationships(
                        &table
                            .map(|t| (t.schema.clone(), t.name.clone()))
                            .unwrap_or_default(),
                        &e.name,
                        e.hint.as_deref(),
                    );
                    let t = rels.first().and_then(|(q, _)| self.cache.tables.get(q));
                    out.extend(self.output_names(t, &e.select));
                }
                SelectItem::Embed(e) if !e.select.is_empty() => out.push(e.label().to_string()),
                SelectItem::Embed(_) => {}
            }
        }
        out
    }

    /// The keys a spread brings to its parent, each once (the last of a repeated key stays, as in
    /// the spread's own select list).
    fn spread_names(&self, table: &Table, select: &[SelectItem]) -> Vec<String> {
        let mut names = self.output_names(Some(table), select);
        let mut seen = std::collections::HashSet::new();
        names.reverse();
        names.retain(|n| seen.insert(n.clone()));
        names.reverse();
        names
    }

    pub(super) fn embed(
        &mut self,
        parent: &Source,
        parent_alias: &str,
        e: &EmbedRequest,
        path: &[String],
    ) -> Result<Embedded, RestError> {
        let origin = &parent.qname;
        let mut rels = self.cache.relationships(origin, &e.name, e.hint.as_deref());
        let (target, rel) = match rels.len() {
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
                    self.cache.relationship_hint(&origin.0, &origin.1, &e.name),
                ))
            }
            1 => rels.pop().expect("one relationship"),
            _ => {
                let details: Vec<serde_json::Value> = rels
                    .iter()
                    .map(|(to, r)| r.describe(&origin.1, &to.1))
                    .collect();
                let hints: Vec<String> = rels
                    .iter()
                    .map(|(to, r)| format!("'{}!{}'", to.1, r.hint_name()))
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
        // A to-one spread leaves its aggregates to this level (PostgREST hoists them).
        let hoist = e.spread && rel.to_one();
        let mut lv = self.level(&child_src, &child_alias, &select, &child_path, hoist)?;
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
        let column = |expr: String, name: &str, kind: ColumnKind| EmbedColumn {
            expr,
            name: name.to_string(),
            kind,
        };
        let (lateral, columns) = if to_one {
            let columns = if e.select.is_empty() {
                Vec::new()
            } else if e.spread {
                self.spread_names(table, &e.select)
                    .iter()
                    .map(|n| {
                        let kind = match lv.hoisted.iter().find(|h| &h.name == n) {
                            Some(h) => ColumnKind::Aggregate(h.aggregate, h.cast.clone()),
                            None => ColumnKind::Spread,
                        };
                        column(format!("{l}.{}", quote_ident(n)), n, kind)
                    })
                    .collect()
            } else {
                vec![column(
                    format!("{l}.\"pgrst_v\""),
                    e.label(),
                    ColumnKind::Json,
                )]
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
                        Some(
                            "Aggregates are not implemented for one-to-many or many-to-many spreads."
                                .into(),
                        ),
                        None,
                    ));
                }
                let names = self.spread_names(table, &e.select);
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
                        column(format!("coalesce({l}.{q}, '[]')"), n, ColumnKind::Json)
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
                vec![column(
                    format!("coalesce({l}.\"pgrst_v\", '[]')"),
                    e.label(),
                    ColumnKind::Json,
                )]
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
    pub(super) fn embeds_after_rows(lv: &Level) -> bool {
        !lv.laterals.is_empty()
            && !lv.has_aggregate
            && !lv.computed
            && lv.laterals.iter().all(|l| {
                let refer = format!("{}.", quote_ident(&l.alias));
                !l.filtering && !lv.conds.iter().chain(&lv.order).any(|c| c.contains(&refer))
            })
    }

    /// `SELECT … FROM from AS alias <laterals> WHERE … GROUP BY … ORDER BY … LIMIT … OFFSET …`.
    pub(super) fn select_sql(
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
                hoisted: Vec::new(),
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
        limit_offset(&mut s, limit, offset);
        s
    }

    /// The statement of a read (relation or row-returning RPC) over `inner`, with the total that
    /// `Prefer: count=` asks for; the count query is built only when one is asked for. A function's
    /// result is counted exactly for `count=exact` and `count=estimated` and never planned, as
    /// PostgREST counts it (no estimate for RPC).
    pub(super) fn counted(
        self,
        inner: &str,
        render: Render,
        count: Option<Count>,
        rows: impl FnOnce(&Self) -> String,
        origin: Origin,
    ) -> Statement {
        let (rpc, cte, binary) = match origin {
            Origin::Relation { binary } => (false, "", binary),
            Origin::Rpc { cte } => (true, cte, None),
        };
        let max_rows = self.cache.settings.db_max_rows;
        let (count, total) = match count {
            Some(Count::Planned) if rpc => (None, Total::Counted),
            Some(Count::Estimated) if rpc => (Some(Count::Exact), Total::Counted),
            Some(Count::Planned) => (count, Total::Planned),
            Some(Count::Estimated) => (count, Total::Estimated { max_rows }),
            _ => (count, Total::Counted),
        };
        let rows = count.map(|_| rows(&self));
        let rows = rows.as_deref().unwrap_or_default();
        let total_sql = total_expr(count, rows, max_rows);
        let explain = explain_sql(count, rows, self.params.len());
        Statement {
            sql: wrap(
                inner,
                &self.body_sql(render, false),
                &total_sql,
                "NULL::text",
                cte,
            ),
            binary: binary.map(|b| BinaryRead {
                sql: wrap_binary(inner, &b.columns, b.floats, &total_sql),
                floats: b.floats,
            }),
            params: self.params,
            explain,
            total,
            plan: false,
        }
    }

    /// `SELECT 1` over the whole filtered relation (for `Prefer: count=`: counted, or explained),
    /// reusing the level's conditions.
    pub(super) fn count_sql(&self, from: &str, alias: &str, lv: &Level) -> String {
        let mut s = format!("SELECT 1 FROM {from} AS {}", quote_ident(alias));
        for l in lv.laterals.iter().filter(|l| l.filtering) {
            s.push_str(&l.sql);
        }
        if !lv.conds.is_empty() {
            let _ = write!(s, " WHERE {}", lv.conds.join(" AND "));
        }
        s
    }

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
        let lv = self.level(&src, &alias, &self.query.select.clone(), &[], false)?;
        self.check_paths()?;
        let inner = self.select_sql(&src.from, &alias, &lv, limit, offset);
        let rows = |b: &Self| b.count_sql(&src.from, &alias, &lv);
        let binary = (render == Render::Json)
            .then(|| binary_columns(table, &lv, &self.query.select))
            .flatten();
        Ok(self.counted(&inner, render, count, rows, Origin::Relation { binary }))
    }
}

/// What a read reads from.
pub(super) enum Origin<'c> {
    /// A table or view; `binary`: its columns when the read has a binary form (see [`binary_columns`]).
    Relation { binary: Option<BinaryColumns> },
    /// A function, called in `cte`.
    Rpc { cte: &'c str },
}

/// The output columns of a plain read (see [`binary_columns`]).
pub(super) struct BinaryColumns {
    /// Each column's name, with whether it goes out as is (a type [`crate::exec::binary`] writes) or
    /// as `to_json`.
    pub columns: Vec<(String, bool)>,
    /// Whether a float column goes out as is.
    pub floats: bool,
}

/// The output columns of a plain read of `table` (no embed, spread, aggregate or computed field);
/// `None` for any other read. A key given twice keeps its last place, as the level's select list does.
fn binary_columns(table: &Table, lv: &Level, select: &[SelectItem]) -> Option<BinaryColumns> {
    if !lv.laterals.is_empty() || lv.has_aggregate || lv.computed || !lv.hoisted.is_empty() {
        return None;
    }
    let mut cols = Vec::new();
    let mut floats = false;
    for item in select {
        match item {
            SelectItem::Star => {
                for c in &table.columns {
                    floats |= float_type(&c.data_type);
                    cols.push((c.name.clone(), bare_type(&c.data_type)));
                }
            }
            SelectItem::Column {
                field,
                alias,
                cast,
                aggregate: None,
                ..
            } => {
                let bare = match field.json.last() {
                    _ if cast.is_some() => false,
                    None => table.column(&field.name).is_some_and(|c| {
                        floats |= float_type(&c.data_type);
                        bare_type(&c.data_type)
                    }),
                    // `->>` is text, `->` json or jsonb.
                    Some(_) => true,
                };
                let name = alias.clone();
                cols.push((
                    name.unwrap_or_else(|| field.default_alias().to_string()),
                    bare,
                ));
            }
            _ => return None,
        }
    }
    let last: std::collections::HashMap<&str, usize> = cols
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let kept = cols
        .iter()
        .enumerate()
        .filter(|(i, (n, _))| last[n.as_str()] == *i)
        .map(|(_, c)| c.clone())
        .collect::<Vec<_>>();
    (!kept.is_empty()).then_some(BinaryColumns {
        columns: kept,
        floats,
    })
}

/// A type's name (`format_type` output) without `[]` and type modifier (`character varying(20)`,
/// `timestamp(3) without time zone`).
fn base_type(format_type: &str) -> std::borrow::Cow<'_, str> {
    let t = format_type.strip_suffix("[]").unwrap_or(format_type);
    match (t.find('('), t.find(')')) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &t[..a], &t[b + 1..]).into(),
        _ => t.into(),
    }
}

/// Whether a column of this type is `real` or `double precision`, or an array of one.
fn float_type(format_type: &str) -> bool {
    matches!(&*base_type(format_type), "real" | "double precision")
}

/// Whether a column of this type (`format_type` output) is written from its binary form: booleans,
/// integers, floats, text, uuid, numeric, json, jsonb, date, timestamp, and their arrays.
fn bare_type(format_type: &str) -> bool {
    matches!(
        &*base_type(format_type),
        "boolean"
            | "smallint"
            | "integer"
            | "bigint"
            | "text"
            | "character varying"
            | "character"
            | "bpchar"
            | "name"
            | "uuid"
            | "numeric"
            | "json"
            | "jsonb"
            | "date"
            | "timestamp without time zone"
            | "real"
            | "double precision"
    )
}

/// ` LIMIT n OFFSET m` as literals, as PostgREST writes them: a parameter there makes every execution of
/// the prepared statement plan again (PostgreSQL's generic plan cannot know the row count), while a
/// statement whose only values are literals keeps one plan.
pub(super) fn limit_offset(s: &mut String, limit: Option<i64>, offset: Option<i64>) {
    if let Some(l) = limit {
        let _ = write!(s, " LIMIT {l}");
    }
    if let Some(o) = offset {
        let _ = write!(s, " OFFSET {o}");
    }
}

#[cfg(test)]
mod tests {
    use super::{bare_type, float_type};

    #[test]
    fn column_types_written_from_binary_are_known_by_name() {
        for t in [
            "integer",
            "double precision",
            "real[]",
            "character varying(20)",
            "timestamp(3) without time zone",
            "numeric(12,4)[]",
        ] {
            assert!(bare_type(t), "{t}");
        }
        for t in ["timestamp with time zone", "interval", "money", "my_domain"] {
            assert!(!bare_type(t), "{t}");
        }
        assert!(float_type("double precision[]") && float_type("real"));
        assert!(!float_type("numeric") && !float_type("integer[]"));
    }
}
