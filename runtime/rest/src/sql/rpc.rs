//! Function calls: arguments bound through `json_to_record` or as one json argument; row-returning
//! functions are read like relations.

use super::output::wrap;
use super::select::Origin;
use super::{Builder, Render, Source, Statement, Total};
use crate::error::RestError;
use crate::request::*;
use crate::schema::Function;
use supactl_common::ident::quote_ident;

/// What an RPC call passes.
pub enum RpcArgs<'f> {
    None,
    /// JSON object text and the chosen input arguments, bound through `json_to_record`.
    Named(String, Vec<&'f crate::schema::Arg>),
    /// The whole body to a single json/jsonb argument.
    Single(String),
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
        // The call is a CTE, so that counting its rows does not call the function again.
        if !f.returns_rows() {
            let counting = matches!(count, Some(Count::Exact | Count::Estimated));
            let render = match render {
                Render::Json | Render::JsonStripped | Render::Scalar if f.retset => {
                    Render::ScalarSet
                }
                Render::Json | Render::JsonStripped => Render::Scalar,
                r => r,
            };
            if !f.retset {
                let inner = if prefix.is_empty() {
                    format!("SELECT {call} AS \"pgrst_scalar\"")
                } else {
                    let from = prefix.trim_end().trim_end_matches("CROSS JOIN LATERAL");
                    format!("SELECT {call} AS \"pgrst_scalar\" FROM {from}")
                };
                // One value: a total of one, as PostgREST counts a function returning a single value.
                let total = if counting {
                    "1::bigint"
                } else {
                    "NULL::bigint"
                };
                return Ok(Statement {
                    sql: wrap(
                        &inner,
                        &self.body_sql(render, true),
                        total,
                        "NULL::text",
                        "",
                    ),
                    params: self.params,
                    explain: None,
                    total: Total::Counted,
                    plan: false,
                    binary: None,
                });
            }
            let cte = format!(
                "WITH \"pgrst_source\" AS (SELECT \"pgrst_call\" AS \"pgrst_scalar\" FROM {prefix}{call} AS \"pgrst_call\") "
            );
            // limit/offset (and `db-max-rows`) apply to a set of scalars as to rows
            let mut inner = "SELECT * FROM \"pgrst_source\"".to_string();
            super::select::limit_offset(&mut inner, limit, offset);
            let total = if counting {
                "(SELECT count(*) FROM \"pgrst_source\")"
            } else {
                "NULL::bigint"
            };
            return Ok(Statement {
                sql: wrap(
                    &inner,
                    &self.body_sql(render, true),
                    total,
                    "NULL::text",
                    &cte,
                ),
                params: self.params,
                explain: None,
                total: Total::Counted,
                plan: false,
                binary: None,
            });
        }
        let table = f.retrel.as_ref().and_then(|q| self.cache.tables.get(q));
        let qname = f
            .retrel
            .clone()
            .unwrap_or_else(|| (f.schema.clone(), f.name.clone()));
        let cte = format!(
            "WITH \"pgrst_source\" AS (SELECT \"pgrst_call\".* FROM {prefix}{call} AS \"pgrst_call\") "
        );
        let src = Source {
            from: "\"pgrst_source\"".to_string(),
            table,
            qname,
            row_cast: true,
        };
        let alias = f.name.clone();
        let lv = self.level(&src, &alias, &self.query.select.clone(), &[], false)?;
        self.check_paths()?;
        let inner = self.select_sql(&src.from, &alias, &lv, limit, offset);
        let rows = |b: &Self| b.count_sql(&src.from, &alias, &lv);
        Ok(self.counted(&inner, render, count, rows, Origin::Rpc { cte: &cte }))
    }
}
