//! [`ApiRequest`] → one SQL statement with text bind parameters.
//!
//! Every statement yields exactly one row `(body text, page bigint, total bigint)`: PostgreSQL renders the
//! JSON body itself (`json_agg`), so rows are never decoded into Rust values and re-encoded. Parameters are
//! sent untyped in text format, so PostgreSQL infers each one's type from its column, as it would for a
//! literal in the query.

use crate::error::RestError;
use crate::plan::*;
use std::fmt::Write;
use supactl_common::ident::quote_ident;

/// A statement ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<String>,
}

struct Builder {
    sql: String,
    params: Vec<String>,
}

impl Builder {
    fn param(&mut self, v: String) -> String {
        self.params.push(v);
        format!("${}", self.params.len())
    }
}

fn qualified(req: &ApiRequest) -> String {
    format!(
        "{}.{}",
        quote_ident(&req.schema),
        quote_ident(&req.relation)
    )
}

/// Renders `select=` over the relation aliased `q`.
fn select_list(items: &[SelectItem], q: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match item {
            SelectItem::Star => {
                let _ = write!(out, "{q}.*");
            }
            SelectItem::Column { field, alias, cast } => {
                let col = quote_ident(&field.name);
                let name = quote_ident(alias.as_deref().unwrap_or(&field.name));
                match cast {
                    Some(c) => {
                        let _ = write!(out, "{q}.{col}::{c} AS {name}");
                    }
                    None => {
                        let _ = write!(out, "{q}.{col} AS {name}");
                    }
                }
            }
        }
    }
    out
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

fn where_clause(b: &mut Builder, filters: &[Filter], q: &str) -> String {
    if filters.is_empty() {
        return String::new();
    }
    let mut parts = Vec::with_capacity(filters.len());
    for f in filters {
        let col = format!("{q}.{}", quote_ident(&f.field.name));
        let expr = match &f.predicate {
            Predicate::Compare { op, value } => {
                let p = b.param(value.clone());
                format!("{col} {} {p}", op.sql())
            }
            Predicate::In(items) if items.is_empty() => "false".to_string(),
            Predicate::In(items) => {
                let p = b.param(array_literal(items));
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
        };
        parts.push(if f.negated {
            format!("NOT ({expr})")
        } else {
            expr
        });
    }
    format!(" WHERE {}", parts.join(" AND "))
}

fn order_clause(order: &[OrderTerm], q: &str) -> String {
    if order.is_empty() {
        return String::new();
    }
    let terms: Vec<String> = order
        .iter()
        .map(|t| {
            let mut s = format!("{q}.{}", quote_ident(&t.field.name));
            if t.descending {
                s.push_str(" DESC");
            }
            match t.nulls {
                Some(Nulls::First) => s.push_str(" NULLS FIRST"),
                Some(Nulls::Last) => s.push_str(" NULLS LAST"),
                None => {}
            }
            s
        })
        .collect();
    format!(" ORDER BY {}", terms.join(", "))
}

/// The outer query over the subquery `_supactl_r` that renders the body.
fn render(body: bool) -> &'static str {
    if body {
        "coalesce(json_agg(_supactl_r), '[]')::text"
    } else {
        "''::text"
    }
}

/// Builds the statement. `primary_key` is the relation's key, needed for upserts without `on_conflict`.
pub fn build(req: &ApiRequest, primary_key: &[String]) -> Result<Statement, RestError> {
    let mut b = Builder {
        sql: String::with_capacity(256),
        params: Vec::new(),
    };
    let table = qualified(req);
    // The relation's own name is its alias, so PostgreSQL's messages and hints name it as PostgREST's do.
    let q = quote_ident(&req.relation);
    let q = q.as_str();
    let want_body = req.prefer.ret == Return::Representation;
    match &req.action {
        Action::Read { head } => {
            let where_ = where_clause(&mut b, &req.filters, q);
            let total = if req.prefer.count_exact {
                // The same filters again, over the whole relation.
                let where_total = where_clause(&mut b, &req.filters, q);
                format!("(SELECT count(*) FROM {table} AS {q}{where_total})")
            } else {
                "NULL::bigint".to_string()
            };
            let mut inner = format!(
                "SELECT {} FROM {table} AS {q}{where_}{}",
                select_list(&req.select, q),
                order_clause(&req.order, q)
            );
            if let Some(l) = req.limit {
                let p = b.param(l.to_string());
                let _ = write!(inner, " LIMIT {p}");
            }
            if let Some(o) = req.offset {
                let p = b.param(o.to_string());
                let _ = write!(inner, " OFFSET {p}");
            }
            b.sql = format!(
                "SELECT {}, count(*), {total} FROM ({inner}) _supactl_r",
                render(!head)
            );
        }
        Action::Insert { body, columns } => {
            let p = b.param(body.clone());
            let insert = if columns.is_empty() {
                format!("INSERT INTO {table} AS {q} DEFAULT VALUES")
            } else {
                let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
                let cols = cols.join(", ");
                let mut s = format!(
                    "INSERT INTO {table} AS {q} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{table}, {p}::json) _supactl_b"
                );
                if let Some(res) = req.prefer.resolution {
                    let target = req.on_conflict.as_deref().unwrap_or(primary_key);
                    if target.is_empty() {
                        return Err(RestError::parse(
                            "upsert needs on_conflict or a primary key on the relation".to_string(),
                        ));
                    }
                    let target: Vec<String> = target.iter().map(|c| quote_ident(c)).collect();
                    let _ = write!(s, " ON CONFLICT ({})", target.join(", "));
                    match res {
                        Resolution::IgnoreDuplicates => s.push_str(" DO NOTHING"),
                        Resolution::MergeDuplicates => {
                            let sets: Vec<String> = columns
                                .iter()
                                .map(|c| {
                                    let c = quote_ident(c);
                                    format!("{c} = EXCLUDED.{c}")
                                })
                                .collect();
                            let _ = write!(s, " DO UPDATE SET {}", sets.join(", "));
                        }
                    }
                }
                s
            };
            b.sql = format!(
                "WITH {q} AS ({insert} RETURNING {q}.*) SELECT {}, count(*), NULL::bigint FROM (SELECT {} FROM {q}) _supactl_r",
                render(want_body),
                select_list(&req.select, q)
            );
        }
        Action::Update { body, columns } => {
            if columns.is_empty() {
                return Err(RestError::InvalidBody(
                    "Empty or invalid json: nothing to update".to_string(),
                ));
            }
            let p = b.param(body.clone());
            let sets: Vec<String> = columns
                .iter()
                .map(|c| {
                    let c = quote_ident(c);
                    format!("{c} = _supactl_b.{c}")
                })
                .collect();
            let where_ = where_clause(&mut b, &req.filters, q);
            b.sql = format!(
                "WITH {q} AS (UPDATE {table} AS {q} SET {} FROM (SELECT * FROM json_populate_record(NULL::{table}, ({p}::json)->0)) _supactl_b{where_} RETURNING {q}.*) \
                 SELECT {}, count(*), NULL::bigint FROM (SELECT {} FROM {q}) _supactl_r",
                sets.join(", "),
                render(want_body),
                select_list(&req.select, q)
            );
        }
        Action::Delete => {
            let where_ = where_clause(&mut b, &req.filters, q);
            b.sql = format!(
                "WITH {q} AS (DELETE FROM {table} AS {q}{where_} RETURNING {q}.*) \
                 SELECT {}, count(*), NULL::bigint FROM (SELECT {} FROM {q}) _supactl_r",
                render(want_body),
                select_list(&req.select, q)
            );
        }
    }
    Ok(Statement {
        sql: b.sql,
        params: b.params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_request;
    use http::Method;

    fn req(method: Method, q: &str, prefer: Option<&str>, body: &str) -> ApiRequest {
        parse_request(
            &method,
            "todos",
            q,
            prefer,
            "public".into(),
            body.as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn read_binds_every_value() {
        let s = build(
            &req(
                Method::GET,
                "select=id,title&done=eq.false&id=in.(1,2)&order=id.desc&limit=5",
                None,
                "",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(s.params, vec!["false", "{\"1\",\"2\"}", "5"]);
        assert!(s.sql.contains(r#""todos"."done" = $1"#), "{}", s.sql);
        assert!(s.sql.contains(r#""todos"."id" = ANY($2)"#));
        assert!(s.sql.contains(r#"ORDER BY "todos"."id" DESC LIMIT $3"#));
        assert!(!s.sql.contains("false'"));
    }

    #[test]
    fn hostile_identifiers_are_quoted() {
        let quote = parse_request(
            &Method::GET,
            "todos",
            "x%22y=eq.1",
            None,
            "public".into(),
            b"",
        );
        assert!(
            quote.is_err(),
            "a double quote in a column name is refused before SQL"
        );
        let s = build(&req(Method::GET, "select=drop table x", None, ""), &[]).unwrap();
        assert!(s.sql.contains(r#""todos"."drop table x""#));
    }

    #[test]
    fn upsert_uses_primary_key_by_default() {
        let r = req(
            Method::POST,
            "",
            Some("resolution=merge-duplicates,return=representation"),
            r#"{"id":1,"title":"x"}"#,
        );
        let s = build(&r, &["id".to_string()]).unwrap();
        assert!(s.sql.contains(r#"ON CONFLICT ("id") DO UPDATE SET "id" = EXCLUDED."id", "title" = EXCLUDED."title""#), "{}", s.sql);
        assert!(build(&r, &[]).is_err());
        let r = req(
            Method::POST,
            "on_conflict=title",
            Some("resolution=ignore-duplicates"),
            r#"[{"title":"x"}]"#,
        );
        assert!(build(&r, &[])
            .unwrap()
            .sql
            .contains(r#"ON CONFLICT ("title") DO NOTHING"#));
    }
}
