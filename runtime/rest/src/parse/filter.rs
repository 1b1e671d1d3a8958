//! Filters (`col=op.value`), lists and the `or=` / `and=` / `not.` logic trees.

use super::{failed, parse_field, split_top};
use crate::error::RestError;
use crate::limits::MAX_LOGIC_DEPTH;
use crate::request::*;

/// `(a.eq.1,or(b.gt.2,not.and(c.is.null,d.in.(1,2))))` → children, the list being at nesting `depth`
/// (1: the parameter's own list).
pub(super) fn parse_logic_list(v: &str, depth: usize) -> Result<Vec<Cond>, RestError> {
    let inner = v
        .trim()
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| failed("logic tree", v, "expected \"(\""))?;
    split_top(inner, ',')
        .map_err(|_| failed("logic tree", v, "unbalanced parentheses"))?
        .into_iter()
        .map(|item| parse_logic_item(item.trim(), depth).map_err(|e| e.within("logic tree", v)))
        .collect()
}

pub(super) fn parse_logic_item(item: &str, depth: usize) -> Result<Cond, RestError> {
    let (negated, rest) = match item.strip_prefix("not.") {
        Some(r) if r.starts_with("and(") || r.starts_with("or(") => (true, r),
        _ => (false, item),
    };
    for (prefix, or) in [("and(", false), ("or(", true)] {
        if rest.starts_with(prefix) {
            if depth == MAX_LOGIC_DEPTH {
                return Err(RestError::Limit(format!(
                    "logic tree nesting exceeds {MAX_LOGIC_DEPTH} levels"
                )));
            }
            return Ok(Cond::Logic {
                or,
                negated,
                children: parse_logic_list(&rest[prefix.len() - 1..], depth + 1)?,
            });
        }
    }
    let (field, value) = item
        .split_once('.')
        .ok_or_else(|| failed("logic tree", item, "expected a filter"))?;
    Ok(Cond::Filter(parse_filter(
        parse_field(field)?,
        value,
        true,
    )?))
}

/// In a logic tree a value may be double-quoted to carry `,` `(` `)`; `\` escapes inside quotes.
pub(super) fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// `[not.]op[(modifier)].value` for `field`.
pub fn parse_filter(field: Field, value: &str, in_logic: bool) -> Result<Filter, RestError> {
    let bad = |d: &str| failed("filter", value, d.to_string());
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (op, operand) = rest
        .split_once('.')
        .ok_or_else(|| bad("expected operator.value"))?;
    let (op, modifier) = match op.split_once('(') {
        Some((o, m)) => (
            o,
            Some(
                m.strip_suffix(')')
                    .ok_or_else(|| bad("expected \")\" after the modifier"))?,
            ),
        ),
        None => (op, None),
    };
    let operand = if in_logic {
        unquote(operand)
    } else {
        operand.to_string()
    };
    let star = |s: &str| s.replace('*', "%");
    let predicate = match op {
        "in" if modifier.is_none() => Predicate::In(parse_list(&operand)?),
        "is" if modifier.is_none() => Predicate::Is(match operand.to_ascii_lowercase().as_str() {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            _ => return Err(bad("is accepts null, not_null, true, false or unknown")),
        }),
        "fts" | "plfts" | "phfts" | "wfts" => {
            let language = match modifier {
                Some(l) => {
                    if l.is_empty()
                        || !l
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                    {
                        return Err(bad("invalid text search language"));
                    }
                    Some(l.to_string())
                }
                None => None,
            };
            Predicate::Fts {
                kind: match op {
                    "fts" => Fts::Fts,
                    "plfts" => Fts::Plain,
                    "phfts" => Fts::Phrase,
                    _ => Fts::Websearch,
                },
                language,
                value: operand,
            }
        }
        _ => {
            let op = Op::from_name(op).ok_or_else(|| bad(&format!("unknown operator \"{op}\"")))?;
            let quantifier = match modifier {
                None => None,
                Some("any") if op.quantifiable() => Some(Quantifier::Any),
                Some("all") if op.quantifiable() => Some(Quantifier::All),
                Some(m) => return Err(bad(&format!("unexpected modifier \"{m}\""))),
            };
            let value = match (op, quantifier) {
                (Op::Like | Op::Ilike, Some(_)) => {
                    // `{a*,b*}`: the stars of each element.
                    star(&operand)
                }
                (Op::Like | Op::Ilike, None) => star(&operand),
                _ => operand,
            };
            if quantifier.is_some() && !(value.starts_with('{') && value.ends_with('}')) {
                return Err(bad("(any)/(all) expect a list in braces: {a,b}"));
            }
            Predicate::Compare {
                op,
                quantifier,
                value,
            }
        }
    };
    Ok(Filter {
        field,
        negated,
        predicate,
    })
}

/// `(a,"b,c",d)` → items; double quotes protect commas and parentheses, `\` escapes inside quotes.
pub fn parse_list(v: &str) -> Result<Vec<String>, RestError> {
    let inner = v
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| {
            failed(
                "filter",
                &format!("in.{v}"),
                "expected a list in parentheses",
            )
        })?;
    let mut items = Vec::new();
    if inner.is_empty() {
        return Ok(items);
    }
    let mut cur = String::new();
    let mut chars = inner.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', _) => quoted = !quoted,
            ('\\', true) => {
                if let Some(n) = chars.next() {
                    cur.push(n)
                }
            }
            (',', false) => items.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err(failed("filter", v, "unterminated quote"));
    }
    items.push(cur);
    Ok(items)
}
