//! One level of a read: the select list (columns, casts, aggregates, embeds and spreads, with the
//! aggregates of to-one spreads hoisted to the level above, as PostgREST does), the lateral subqueries
//! of its embeds, its filters and its order.

use super::{Builder, ColumnKind, EmbedColumn, Hoisted, Lateral, Level, Source};
use crate::error::RestError;
use crate::limits::MAX_EMBED_DEPTH;
use crate::request::*;
use supactl_common::ident::quote_ident;

impl Builder<'_> {
    /// Builds one level of a read: select list, laterals for embeds, conditions and order. A level
    /// that is a to-one spread (`hoist`) selects its aggregates' arguments raw and leaves the
    /// aggregates to the level above ([`Level::hoisted`]), which groups by everything else.
    pub(super) fn level(
        &mut self,
        src: &Source,
        alias: &str,
        select: &[SelectItem],
        path: &[String],
        hoist: bool,
    ) -> Result<Level, RestError> {
        // The parser refused deeper selects; a request built some other way stops here too.
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
            hoisted: Vec::new(),
        };
        // Embeds first, so filters and order can refer to them.
        let mut embed_cols: Vec<Vec<EmbedColumn>> = Vec::new();
        for item in select {
            if let SelectItem::Embed(e) = item {
                // Two embeds under one key would make an object with a duplicate key: PostgREST
                // refuses them with PostgreSQL's error for the lateral subqueries' shared alias.
                if lv.embeds.iter().any(|(label, _, _)| label == e.label()) {
                    return Err(duplicate_embed(&src.qname.1, e.label(), path.len() + 1));
                }
                let emb = self.embed(src, alias, e, path)?;
                lv.embeds
                    .push((e.label().to_string(), emb.alias.clone(), emb.to_one));
                embed_cols.push(emb.columns);
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
        let mut embed_iter = embed_cols.into_iter();
        // Select-list positions of embed JSON: jsonb (and grouped by) if the level aggregates.
        let mut json_at: Vec<(usize, String, String)> = Vec::new();
        // The output keys of each select-list entry, to leave none twice in an object.
        let mut names: Vec<Named> = Vec::new();
        for item in select {
            match item {
                SelectItem::Star => {
                    lv.select.push(format!("{}.*", quote_ident(alias)));
                    let columns = src.table.map(|t| t.columns.iter().map(|c| c.name.clone()));
                    names.push(Named::Star(
                        columns.map(Iterator::collect).unwrap_or_default(),
                    ));
                }
                SelectItem::Count { alias: a, cast } => {
                    self.aggregates_allowed()?;
                    let name = a.as_deref().unwrap_or("count");
                    if hoist {
                        // The spread's rows, counted above: null where the join found none.
                        lv.select.push(format!("1 AS {}", quote_ident(name)));
                        names.push(Named::One(name.to_string()));
                        lv.hoisted.push(Hoisted {
                            name: name.to_string(),
                            aggregate: Aggregate::Count,
                            cast: cast.clone(),
                        });
                    } else {
                        lv.has_aggregate = true;
                        let expr = cast_to("count(*)".into(), cast.as_deref());
                        lv.select.push(format!("{expr} AS {}", quote_ident(name)));
                        names.push(Named::One(name.to_string()));
                    }
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
                            let name = a.clone().unwrap_or_else(|| agg.sql().to_string());
                            if hoist {
                                lv.hoisted.push(Hoisted {
                                    name: name.clone(),
                                    aggregate: *agg,
                                    cast: aggregate_cast.clone(),
                                });
                            } else {
                                lv.has_aggregate = true;
                                expr = format!("{}({expr})", agg.sql());
                                expr = cast_to(expr, aggregate_cast.as_deref());
                            }
                            name
                        }
                        None => {
                            lv.group_by.push(expr.clone());
                            a.clone()
                                .unwrap_or_else(|| field.default_alias().to_string())
                        }
                    };
                    lv.select.push(format!("{expr} AS {}", quote_ident(&name)));
                    names.push(Named::One(name));
                }
                SelectItem::Embed(_) => {
                    for col in embed_iter.next().unwrap_or_default() {
                        let q = quote_ident(&col.name);
                        names.push(Named::One(col.name.clone()));
                        match col.kind {
                            ColumnKind::Json => {
                                json_at.push((lv.select.len(), col.expr.clone(), q.clone()));
                                lv.select.push(format!("{} AS {q}", col.expr));
                            }
                            ColumnKind::Spread => {
                                lv.group_by.push(col.expr.clone());
                                lv.select.push(format!("{} AS {q}", col.expr));
                            }
                            ColumnKind::Aggregate(agg, cast) if hoist => {
                                // A nested to-one spread's aggregate goes further up.
                                lv.hoisted.push(Hoisted {
                                    name: col.name.clone(),
                                    aggregate: agg,
                                    cast,
                                });
                                lv.select.push(format!("{} AS {q}", col.expr));
                            }
                            ColumnKind::Aggregate(agg, cast) => {
                                lv.has_aggregate = true;
                                let expr = cast_to(
                                    format!("{}({})", agg.sql(), col.expr),
                                    cast.as_deref(),
                                );
                                lv.select.push(format!("{expr} AS {q}"));
                            }
                        }
                    }
                }
            }
        }
        // JSON has no equality: grouped by (here, or above a spread with hoisted aggregates) as jsonb.
        if lv.has_aggregate || !lv.hoisted.is_empty() {
            for (i, expr, name) in json_at {
                let jsonb = format!("({expr})::jsonb");
                lv.select[i] = format!("{jsonb} AS {name}");
                lv.group_by.push(jsonb);
            }
        }
        dedupe_keys(&mut lv.select, &names, alias);
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
}

/// `CAST(expr AS cast)`, or `expr` without a cast.
fn cast_to(expr: String, cast: Option<&str>) -> String {
    match cast {
        Some(c) => format!("CAST({expr} AS {c})"),
        None => expr,
    }
}

/// Two embeds of one level under the same key (`users!a(*),users!b(*)`): 42712, as PostgREST answers.
fn duplicate_embed(origin: &str, label: &str, depth: usize) -> RestError {
    RestError::Db(
        Box::new(crate::error::DbError {
            code: "42712".into(),
            message: format!("table name \"{origin}_{label}_{depth}\" specified more than once"),
            details: None,
            hint: None,
        }),
        supactl_common::keys::Role::Anon,
    )
}

/// The output keys of one select-list entry.
enum Named {
    One(String),
    /// `alias.*`: the relation's columns (none known for a function's `RETURNS TABLE`).
    Star(Vec<String>),
}

/// A JSON object never gets a key twice: where entries of the select list share an output key (`id,*`,
/// a column and an embed or spread of the same name), the last one stays — what a client's JSON parser
/// keeps of PostgREST's output, which repeats the key. A `*` that loses columns becomes the list of
/// those it keeps.
fn dedupe_keys(select: &mut Vec<String>, names: &[Named], alias: &str) {
    let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut count = 0;
    for (i, n) in names.iter().enumerate() {
        let keys: &[String] = match n {
            Named::One(k) => std::slice::from_ref(k),
            Named::Star(ks) => ks,
        };
        for k in keys {
            last.insert(k, i);
            count += 1;
        }
    }
    if last.len() == count || names.len() != select.len() {
        return;
    }
    let entries = std::mem::take(select);
    for (i, (sql, n)) in entries.into_iter().zip(names).enumerate() {
        match n {
            Named::One(k) if last[k.as_str()] != i => {}
            Named::Star(ks) if ks.iter().any(|k| last[k.as_str()] != i) => {
                let a = quote_ident(alias);
                select.extend(ks.iter().filter(|k| last[k.as_str()] == i).map(|k| {
                    let q = quote_ident(k);
                    format!("{a}.{q} AS {q}")
                }));
            }
            _ => select.push(sql),
        }
    }
}
