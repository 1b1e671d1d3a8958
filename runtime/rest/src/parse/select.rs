//! `select=` (columns, aliases, casts, JSON paths, aggregates, embeds and spreads) and `order=`.

use super::{alias_split, failed, parse_cast, parse_field, parse_name, split_top};
use crate::error::RestError;
use crate::limits::{MAX_EMBEDS, MAX_EMBED_DEPTH};
use crate::request::*;

/// `select=*,id,alias:col::text,author:authors!fk!inner(name),...tags(name),amount.sum()`.
pub fn parse_select(v: &str) -> Result<Vec<SelectItem>, RestError> {
    if v.trim().is_empty() {
        return Ok(vec![SelectItem::Star]);
    }
    let mut embeds = 0;
    let items = parse_select_list(v, 1, &mut embeds)?;
    if embeds > MAX_EMBEDS {
        return Err(RestError::Limit(format!(
            "select has more than {MAX_EMBEDS} embedded resources"
        )));
    }
    Ok(items)
}

/// The items of a select list at nesting `depth` (1: the top level), counting embeds in `embeds`.
pub(super) fn parse_select_list(
    v: &str,
    depth: usize,
    embeds: &mut usize,
) -> Result<Vec<SelectItem>, RestError> {
    split_top(v, ',')
        .map_err(|_| failed("select", v, "unbalanced parentheses"))?
        .into_iter()
        .map(|item| {
            parse_select_item(item.trim(), depth, embeds).map_err(|e| e.within("select", v))
        })
        .collect()
}

pub(super) fn parse_select_item(
    item: &str,
    depth: usize,
    embeds: &mut usize,
) -> Result<SelectItem, RestError> {
    if item == "*" {
        return Ok(SelectItem::Star);
    }
    if item.is_empty() {
        return Err(failed("select", item, "empty select item"));
    }
    let (spread, item) = match item.strip_prefix("...") {
        Some(rest) => (true, rest),
        None => (false, item),
    };
    let (alias, body) = match alias_split(item) {
        Some((a, b)) => (Some(parse_name(a)?), b.trim()),
        None => (None, item),
    };
    // `count()` / `col.sum()` end in `()` (maybe followed by a cast); an embed ends in `(…)`.
    let (body_nocast, final_cast) = match body.rfind("::") {
        // (Not the cast of an aggregate inside an embed: `books(c:count()::text)`.)
        Some(i) if body[..i].ends_with("()") && !body[i + 2..].contains(')') => {
            (&body[..i], Some(parse_cast(&body[i + 2..])?))
        }
        _ => (body, None),
    };
    let aggregate_like = body_nocast
        .strip_suffix("()")
        .is_some_and(|h| h == "count" || (h.contains('.') && !h.contains('(')));
    if let (true, Some(head)) = (aggregate_like, body_nocast.strip_suffix("()")) {
        if spread {
            return Err(failed("select", item, "spread needs a relation"));
        }
        if head == "count" {
            return Ok(SelectItem::Count {
                alias,
                cast: final_cast,
            });
        }
        let (col, agg) = head
            .rsplit_once('.')
            .ok_or_else(|| failed("select", item, "unknown function"))?;
        let aggregate = match agg {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "max" => Aggregate::Max,
            "min" => Aggregate::Min,
            other => {
                return Err(failed(
                    "select",
                    item,
                    format!("unknown aggregate \"{other}\""),
                ))
            }
        };
        let (col, cast) = match col.split_once("::") {
            Some((c, t)) => (c, Some(parse_cast(t)?)),
            None => (col, None),
        };
        return Ok(SelectItem::Column {
            field: parse_field(col)?,
            alias,
            cast,
            aggregate: Some(aggregate),
            aggregate_cast: final_cast,
        });
    }
    if let Some(open) = body.find('(') {
        let inner = body[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| failed("select", item, "expected \")\" at the end of an embed"))?;
        let mut parts = body[..open].split('!');
        let name = parse_name(parts.next().unwrap_or(""))?;
        let (mut hint, mut join) = (None, None);
        for p in parts {
            match p {
                "inner" => join = Some(JoinType::Inner),
                "left" => join = Some(JoinType::Left),
                h if hint.is_none() => hint = Some(parse_name(h)?),
                _ => return Err(failed("select", item, "too many hints")),
            }
        }
        // Checked before descending: the parser's own recursion is what the cap protects.
        if depth == MAX_EMBED_DEPTH {
            return Err(RestError::Limit(format!(
                "select nesting exceeds {MAX_EMBED_DEPTH} levels"
            )));
        }
        *embeds += 1;
        return Ok(SelectItem::Embed(Box::new(EmbedRequest {
            name,
            alias,
            hint,
            join,
            spread,
            select: if inner.trim().is_empty() {
                Vec::new()
            } else {
                parse_select_list(inner, depth + 1, embeds)?
            },
        })));
    }
    if spread {
        return Err(failed("select", item, "spread needs a relation"));
    }
    let (col, cast) = match body.split_once("::") {
        Some((c, t)) => (c, Some(parse_cast(t)?)),
        None => (body, None),
    };
    Ok(SelectItem::Column {
        field: parse_field(col)?,
        alias,
        cast,
        aggregate: None,
        aggregate_cast: None,
    })
}

/// `order=a.desc.nullslast,data->>x,author(name).asc`.
pub fn parse_order(v: &str) -> Result<Vec<OrderTerm>, RestError> {
    split_top(v, ',')
        .map_err(|_| failed("order", v, "unbalanced parentheses"))?
        .into_iter()
        .map(|term| {
            let term = term.trim();
            let (relation, field, mods) = if let Some(open) = term.find('(') {
                let close = term
                    .find(')')
                    .ok_or_else(|| failed("order", v, "expected \")\""))?;
                if close < open {
                    return Err(failed("order", v, "unexpected \")\""));
                }
                let rest = &term[close + 1..];
                let mods = match rest {
                    "" => "",
                    r => r
                        .strip_prefix('.')
                        .ok_or_else(|| failed("order", v, "expected \".\" after \")\""))?,
                };
                (
                    Some(parse_name(&term[..open])?),
                    parse_field(&term[open + 1..close])?,
                    mods,
                )
            } else {
                let (f, m) = term.split_once('.').unwrap_or((term, ""));
                (None, parse_field(f)?, m)
            };
            let mut t = OrderTerm {
                relation,
                field,
                descending: false,
                nulls: None,
            };
            for p in mods.split('.').filter(|p| !p.is_empty()) {
                match p {
                    "asc" => t.descending = false,
                    "desc" => t.descending = true,
                    "nullsfirst" => t.nulls = Some(Nulls::First),
                    "nullslast" => t.nulls = Some(Nulls::Last),
                    other => {
                        return Err(failed(
                            "order",
                            v,
                            format!("unexpected order modifier \"{other}\""),
                        ))
                    }
                }
            }
            Ok(t)
        })
        .collect()
}
