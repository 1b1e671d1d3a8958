//! Writes: insert (with upsert), update and delete as a data-modifying CTE, read back through the
//! select machinery.

use super::output::wrap;
use super::{Builder, Mutation, Render, Source, Statement, Total};
use crate::error::RestError;
use crate::request::*;
use crate::schema::Table;
use std::fmt::Write;
use supactl_common::ident::quote_ident;

impl<'a> Builder<'a> {
    /// An insert (with optional upsert), update or delete, its result read back through `select=`.
    pub fn write(
        mut self,
        table: &Table,
        w: &Mutation,
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
        let filtered = !matches!(w, Mutation::Insert { .. });
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
        let mut reports_inserted = false;
        let dml = match w {
            Mutation::Insert {
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
                    // No conflict target (no primary key, no `on_conflict`): a plain insert, as
                    // PostgREST makes it.
                    let target = on_conflict.as_deref().unwrap_or(&table.pk);
                    let resolution = resolution.filter(|_| !target.is_empty());
                    if resolution == Some(Resolution::MergeDuplicates) {
                        // Every candidate row counts one up and every conflicting one down again,
                        // leaving how many rows were inserted (the status tells inserts from updates).
                        let _ = write!(s, " WHERE {}", inserted_step(true));
                        reports_inserted = true;
                    }
                    if let Some(res) = resolution {
                        let target: Vec<String> = target.iter().map(|c| quote_ident(c)).collect();
                        let _ = write!(s, " ON CONFLICT ({})", target.join(", "));
                        match res {
                            Resolution::IgnoreDuplicates => s.push_str(" DO NOTHING"),
                            Resolution::MergeDuplicates => {
                                let sets: Vec<String> =
                                    cols.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
                                let _ = write!(
                                    s,
                                    " DO UPDATE SET {} WHERE {}",
                                    sets.join(", "),
                                    inserted_step(false)
                                );
                            }
                        }
                    }
                    let _ = write!(s, " RETURNING {a}.*");
                    s
                }
            }
            Mutation::Update {
                json,
                columns,
                complete,
            } => {
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
                            let default = table.column(c).and_then(|x| x.default.as_deref());
                            let c_q = quote_ident(c);
                            // `columns=` naming a key the body lacks: its default under
                            // `missing=default` (else null).
                            match default {
                                Some(d) if missing_default && !complete.contains(c) => {
                                    format!("{c_q} = {d}")
                                }
                                _ => format!("{c_q} = \"pgrst_body\".{c_q}"),
                            }
                        })
                        .collect();
                    format!(
                        "UPDATE {qt} AS {a} SET {} FROM (SELECT * FROM json_populate_record(NULL::{qt}, {p}::json)) AS \"pgrst_body\"{where_} RETURNING {a}.*",
                        sets.join(", ")
                    )
                }
            }
            Mutation::Delete => format!("DELETE FROM {qt} AS {a}{where_} RETURNING {a}.*"),
        };
        self.skip_top_filters = true;
        let ret_src = Source {
            from: "\"pgrst_source\"".to_string(),
            table: Some(table),
            qname: src.qname.clone(),
            row_cast: true,
        };
        let lv = self.level(&ret_src, &alias, &self.query.select.clone(), &[], false)?;
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
                &self.body_sql(render, false),
                if reports_inserted {
                    INSERTED
                } else {
                    "NULL::bigint"
                },
                &location,
                &format!("WITH \"pgrst_source\" AS ({dml}) "),
            ),
            params: self.params,
            explain: None,
            total: if reports_inserted {
                Total::Inserted
            } else {
                Total::Counted
            },
            plan: false,
            binary: None,
        })
    }
}

/// The `pgrst.inserted` counter of an upsert, one step up (a row offered for insertion) or down (a row
/// that conflicted and was updated), as a condition that always holds.
fn inserted_step(up: bool) -> &'static str {
    if up {
        "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) + 1)::text, true) <> '0'"
    } else {
        "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) - 1)::text, true) <> '-1'"
    }
}

/// The third column of an upsert's statement: how many rows it inserted.
const INSERTED: &str = "nullif(current_setting('pgrst.inserted', true), '')::bigint";
