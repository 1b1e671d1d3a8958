//! PostgREST request syntax → [`Query`] and [`Preferences`]. Malformed input is refused here (PGRST100)
//! and never reaches PostgreSQL. Nothing here knows the schema: names are checked by [`crate::resolve`].

use crate::error::RestError;
use crate::limits::{MAX_EMBEDS, MAX_EMBED_DEPTH, MAX_JSON_PATH, MAX_LOGIC_DEPTH, MAX_QUERY_BYTES};
use crate::plan::*;
use percent_encoding::percent_decode_str;

/// Splits a raw query string into decoded `(key, value)` pairs (`+` is a space, as PostgREST decodes).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

fn failed(what: &str, value: &str, detail: impl Into<String>) -> RestError {
    RestError::Parse {
        message: format!("\"failed to parse {what} parameter ({value})\""),
        details: Some(detail.into()),
    }
}

/// What the query string carries besides the read query.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extras {
    pub on_conflict: Option<Vec<String>>,
    pub columns: Option<Vec<String>>,
}

/// Parses the query string. With `rpc_get`, keys that are not PostgREST syntax are kept raw in
/// [`Query::extra`] (the resolver decides which are function arguments and which are filters).
/// Refuses what exceeds [`crate::limits`].
pub fn parse_query(query: &str, rpc_get: bool) -> Result<(Query, Extras), RestError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(RestError::api(
            http::StatusCode::URI_TOO_LONG,
            "PGRST100",
            format!("query string exceeds {MAX_QUERY_BYTES} bytes"),
            None,
            Some("send fewer or shorter parameters, or split the request".into()),
        ));
    }
    let mut q = Query {
        select: vec![SelectItem::Star],
        ..Query::default()
    };
    let mut extras = Extras::default();
    for (key, value) in query_pairs(query) {
        if key.contains('\0') || value.contains('\0') {
            return Err(failed("query", &key, "NUL characters are not allowed"));
        }
        match key.as_str() {
            "select" => q.select = parse_select(&value)?,
            "on_conflict" => extras.on_conflict = Some(parse_column_list(&value)?),
            "columns" => extras.columns = Some(parse_column_list(&value)?),
            _ => {
                let mut path: Vec<String> = key.split('.').map(str::to_string).collect();
                let last = path.pop().unwrap_or_default();
                // `a.b.id` names a column of an embed two levels down; `a.not.or` a negated tree.
                if path.len() > MAX_EMBED_DEPTH {
                    return Err(RestError::Limit(format!(
                        "embedded parameter path exceeds {MAX_EMBED_DEPTH} levels"
                    )));
                }
                // `not.or` / `a.not.and`
                let (last, negated) = match path.last().map(String::as_str) {
                    Some("not") if last == "or" || last == "and" => {
                        path.pop();
                        (last, true)
                    }
                    _ => (last, false),
                };
                match last.as_str() {
                    "order" => q.order.push((path, parse_order(&value)?)),
                    "limit" => q.limit.push((path, parse_int("limit", &value)?)),
                    "offset" => q.offset.push((path, parse_int("offset", &value)?)),
                    "or" | "and" => {
                        let children = parse_logic_list(&value, 1)?;
                        q.filters.push((
                            path,
                            Cond::Logic {
                                or: last == "or",
                                negated,
                                children,
                            },
                        ));
                    }
                    _ if rpc_get && path.is_empty() => q.extra.push((key, value)),
                    _ => {
                        let field = parse_field(&last)?;
                        q.filters
                            .push((path, Cond::Filter(parse_filter(field, &value, false)?)));
                    }
                }
            }
        }
    }
    Ok((q, extras))
}

fn parse_int(what: &str, v: &str) -> Result<i64, RestError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| failed(what, v, "expected a non-negative integer"))
}

/// Splits at `sep` outside parentheses and double quotes.
fn split_top(s: &str, sep: char) -> Result<Vec<&str>, RestError> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if quoted => {
                chars.next();
            }
            '"' => quoted = !quoted,
            '(' | '{' if !quoted => depth += 1,
            ')' | '}' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return Err(failed("query", s, "unbalanced parentheses"));
                }
            }
            c if c == sep && !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth != 0 || quoted {
        return Err(failed("query", s, "unbalanced parentheses or quotes"));
    }
    out.push(&s[start..]);
    Ok(out)
}

/// A column or alias name. Quoted names (`"my col"`) may hold any character but `"`; bare names may
/// not hold the characters that carry syntax.
fn parse_name(s: &str) -> Result<String, RestError> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        if inner.is_empty() || inner.contains('"') || inner.chars().any(char::is_control) {
            return Err(failed("name", s, "invalid quoted name"));
        }
        return Ok(inner.to_string());
    }
    if s.is_empty() || s.chars().any(|c| "(),.:!\"'".contains(c) || c.is_control()) {
        return Err(failed("name", s, format!("unexpected name \"{s}\"")));
    }
    Ok(s.to_string())
}

/// `columns=a,b` or, as supabase-py sends it, `columns="a","b"`.
fn parse_column_list(v: &str) -> Result<Vec<String>, RestError> {
    v.split(',').map(parse_name).collect()
}

fn parse_cast(s: &str) -> Result<String, RestError> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ' || c == '[' || c == ']')
    {
        return Err(failed("select", s, format!("unexpected cast \"{s}\"")));
    }
    Ok(s.to_string())
}

/// `name->a->>b->0` → [`Field`].
pub fn parse_field(s: &str) -> Result<Field, RestError> {
    let s = s.trim();
    let mut parts = s.split("->");
    let name = parse_name(parts.next().unwrap_or(""))?;
    let mut json = Vec::new();
    for p in parts {
        if json.len() == MAX_JSON_PATH {
            return Err(RestError::Limit(format!(
                "JSON path exceeds {MAX_JSON_PATH} steps"
            )));
        }
        let (text, key) = match p.strip_prefix('>') {
            Some(k) => (true, k),
            None => (false, p),
        };
        let key = key.trim();
        let key = key
            .strip_prefix('\'')
            .and_then(|k| k.strip_suffix('\''))
            .unwrap_or(key);
        if key.is_empty() || key.chars().any(|c| "(),:!\"".contains(c) || c.is_control()) {
            return Err(failed("field", s, "invalid JSON path"));
        }
        json.push(JsonStep {
            text,
            key: key.to_string(),
        });
    }
    Ok(Field { name, json })
}

/// Finds the alias separator `:` (not part of `::`) outside quotes.
fn alias_split(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut quoted = false;
    for i in 0..b.len() {
        match b[i] {
            b'(' if !quoted => return None,
            b'"' => quoted = !quoted,
            b':' if !quoted => {
                let prev = i > 0 && b[i - 1] == b':';
                let next = i + 1 < b.len() && b[i + 1] == b':';
                if !prev && !next {
                    return Some((&s[..i], &s[i + 1..]));
                }
                if next {
                    return None; // a cast comes first: no alias
                }
            }
            _ => {}
        }
    }
    None
}

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
fn parse_select_list(
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

fn parse_select_item(
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
        Some(i) if body[..i].ends_with("()") => (&body[..i], Some(parse_cast(&body[i + 2..])?)),
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
            if final_cast.is_some() {
                return Err(failed("select", item, "count() takes no cast"));
            }
            return Ok(SelectItem::Count { alias });
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

/// `(a.eq.1,or(b.gt.2,not.and(c.is.null,d.in.(1,2))))` → children, the list being at nesting `depth`
/// (1: the parameter's own list).
fn parse_logic_list(v: &str, depth: usize) -> Result<Vec<Cond>, RestError> {
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

fn parse_logic_item(item: &str, depth: usize) -> Result<Cond, RestError> {
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
fn unquote(v: &str) -> String {
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

/// `Prefer: return=representation, resolution=merge-duplicates, count=exact, …` (several headers are
/// joined with commas by the caller).
pub fn parse_prefer(h: Option<&str>) -> Preferences {
    let mut p = Preferences::default();
    for item in h.unwrap_or("").split(',').map(str::trim) {
        match item {
            "" => {}
            "return=representation" => p.ret = Some(Return::Representation),
            "return=minimal" => p.ret = Some(Return::Minimal),
            "return=headers-only" => p.ret = Some(Return::HeadersOnly),
            "resolution=merge-duplicates" => p.resolution = Some(Resolution::MergeDuplicates),
            "resolution=ignore-duplicates" => p.resolution = Some(Resolution::IgnoreDuplicates),
            "count=exact" => p.count = Some(Count::Exact),
            "count=planned" => p.count = Some(Count::Planned),
            "count=estimated" => p.count = Some(Count::Estimated),
            "missing=default" => p.missing_default = true,
            "missing=null" => p.missing_default = false,
            "params=single-object" => p.params_single_object = true,
            "tx=commit" => p.tx = Some(true),
            "tx=rollback" => p.tx = Some(false),
            "handling=strict" => p.strict = true,
            "handling=lenient" => p.strict = false,
            other => match other
                .strip_prefix("max-affected=")
                .and_then(|n| n.parse().ok())
            {
                Some(n) => p.max_affected = Some(n),
                None => match other.strip_prefix("timezone=") {
                    Some(tz) => p.timezone = Some(tz.to_string()),
                    None => p.invalid.push(other.to_string()),
                },
            },
        }
    }
    p
}

/// A JSON body made uniform: an array of objects plus the keys that become the written columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The body as a JSON array text.
    pub json: String,
    pub keys: Vec<String>,
    /// Rows in the body.
    pub rows: usize,
    /// The body was a single object (not an array).
    pub single: bool,
    /// Keys present in every row.
    pub complete: Vec<String>,
}

/// Validates a JSON body and returns it as an array (a single object is wrapped) plus the keys of its
/// first object, which become the insert/update columns unless `columns=` says otherwise. Without
/// `columns=`, every object of an array must have the same keys (PostgREST's PGRST102).
pub fn parse_json_payload(body: &[u8], uniform_keys: bool) -> Result<Payload, RestError> {
    use serde_json::Value;
    let mismatch = || RestError::InvalidBody("All object keys must match".to_string());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RestError::InvalidBody(format!("Empty or invalid json: {e}")))?;
    let single = value.is_object();
    let value = match value {
        Value::Object(_) => Value::Array(vec![value]),
        Value::Array(_) => value,
        _ => {
            return Err(RestError::InvalidBody(
                "Empty or invalid json: expected an object or an array of objects".to_string(),
            ))
        }
    };
    let items = value.as_array().expect("normalised to an array");
    let keys: Vec<String> = match items.first() {
        Some(Value::Object(o)) => o.keys().cloned().collect(),
        Some(_) => return Err(mismatch()),
        None => Vec::new(),
    };
    let mut complete = keys.clone();
    for item in items {
        let o = item.as_object().ok_or_else(mismatch)?;
        if uniform_keys && (o.len() != keys.len() || !keys.iter().all(|k| o.contains_key(k))) {
            return Err(mismatch());
        }
        complete.retain(|k| o.contains_key(k));
    }
    Ok(Payload {
        rows: items.len(),
        json: value.to_string(),
        keys,
        single,
        complete,
    })
}

/// A CSV body (first line: column names) → the same payload as JSON, every value a string; an
/// unquoted `NULL` is SQL NULL, as PostgREST reads it.
pub fn parse_csv_payload(body: &[u8]) -> Result<Payload, RestError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| RestError::InvalidBody("CSV body is not UTF-8".into()))?;
    let records = crate::csv::read(text)?;
    let mut it = records.into_iter();
    let header: Vec<String> = it
        .next()
        .ok_or_else(|| RestError::InvalidBody("Empty CSV body".into()))?
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    let mut rows = Vec::new();
    for rec in it {
        if rec.len() == 1 && rec[0].0.is_empty() && !rec[0].1 {
            continue; // trailing newline
        }
        if rec.len() != header.len() {
            return Err(RestError::InvalidBody(
                "CSV rows must have as many fields as the header".into(),
            ));
        }
        let mut o = serde_json::Map::new();
        for (k, (v, quoted)) in header.iter().zip(rec) {
            let v = if !quoted && v == "NULL" {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(v)
            };
            o.insert(k.clone(), v);
        }
        rows.push(serde_json::Value::Object(o));
    }
    Ok(Payload {
        rows: rows.len(),
        json: serde_json::Value::Array(rows).to_string(),
        complete: header.clone(),
        keys: header,
        single: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> SelectItem {
        SelectItem::Column {
            field: Field::plain(name),
            alias: None,
            cast: None,
            aggregate: None,
            aggregate_cast: None,
        }
    }

    #[test]
    fn select_with_alias_cast_embed_and_spread() {
        let s = parse_select("id,author:name,price::text,*").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0], col("id"));
        assert!(matches!(&s[1], SelectItem::Column { alias: Some(a), .. } if a == "author"));
        assert!(matches!(&s[2], SelectItem::Column { cast: Some(c), .. } if c == "text"));
        let s = parse_select(
            "title,writer:authors!books_author_id_fkey!inner(name,books(id)),...tags(name)",
        )
        .unwrap();
        let SelectItem::Embed(e) = &s[1] else {
            panic!("{s:?}")
        };
        assert_eq!(e.name, "authors");
        assert_eq!(e.alias.as_deref(), Some("writer"));
        assert_eq!(e.hint.as_deref(), Some("books_author_id_fkey"));
        assert_eq!(e.join, Some(JoinType::Inner));
        assert!(matches!(&e.select[1], SelectItem::Embed(b) if b.name == "books"));
        assert!(matches!(&s[2], SelectItem::Embed(t) if t.spread && t.name == "tags"));
        assert!(parse_select("a::text;drop").is_err());
        assert!(parse_select("authors(name").is_err());
    }

    #[test]
    fn select_aggregates_and_json_paths() {
        let s = parse_select("total:amount.sum()::int,count(),data->a->>b").unwrap();
        assert!(
            matches!(&s[0], SelectItem::Column { aggregate: Some(Aggregate::Sum), aggregate_cast: Some(c), alias: Some(a), .. } if c == "int" && a == "total")
        );
        assert_eq!(s[1], SelectItem::Count { alias: None });
        let SelectItem::Column { field, .. } = &s[2] else {
            panic!()
        };
        assert_eq!(field.name, "data");
        assert_eq!(field.json.len(), 2);
        assert!(!field.json[0].text && field.json[1].text);
        assert_eq!(field.default_alias(), "b");
    }

    #[test]
    fn filters_and_lists() {
        let f = parse_filter(Field::plain("age"), "not.gte.18", false).unwrap();
        assert!(f.negated);
        assert!(matches!(
            f.predicate,
            Predicate::Compare { op: Op::Gte, ref value, .. } if value == "18"
        ));
        let f = parse_filter(Field::plain("name"), "in.(a,\"b,c\",d)", false).unwrap();
        assert_eq!(
            f.predicate,
            Predicate::In(vec!["a".into(), "b,c".into(), "d".into()])
        );
        let f = parse_filter(Field::plain("t"), "like(any).{a*,*b}", false).unwrap();
        assert!(
            matches!(f.predicate, Predicate::Compare { quantifier: Some(Quantifier::Any), ref value, .. } if value == "{a%,%b}")
        );
        let f = parse_filter(Field::plain("t"), "wfts(english).cat dog", false).unwrap();
        assert!(
            matches!(f.predicate, Predicate::Fts { kind: Fts::Websearch, language: Some(ref l), .. } if l == "english")
        );
        assert!(parse_filter(Field::plain("a"), "bogus.1", false).is_err());
        assert!(parse_filter(Field::plain("a"), "eq", false).is_err());
        assert!(parse_filter(Field::plain("a"), "is.maybe", false).is_err());
        assert!(parse_filter(Field::plain("a"), "fts(en;drop).x", false).is_err());
        assert!(parse_filter(Field::plain("a"), "gt(any).1", false).is_err());
    }

    #[test]
    fn logic_trees_nest() {
        let (q, _) = parse_query(
            "or=(a.eq.1,and(b.gt.2,c.is.null),not.or(d.in.(1,2),e.eq.\"x,y\"))&books.not.and=(id.lt.3)",
            false,
        )
        .unwrap();
        let (path, Cond::Logic { or, children, .. }) = &q.filters[0] else {
            panic!()
        };
        assert!(path.is_empty() && *or && children.len() == 3);
        let Cond::Logic {
            negated, children, ..
        } = &children[2]
        else {
            panic!()
        };
        assert!(*negated);
        assert!(
            matches!(&children[1], Cond::Filter(Filter { predicate: Predicate::Compare { value, .. }, .. }) if value == "x,y")
        );
        assert!(
            matches!(&q.filters[1], (p, Cond::Logic { negated: true, or: false, .. }) if p == &["books"])
        );
        assert!(parse_query("or=(a.eq.1", false).is_err());
        assert!(parse_query("or=a.eq.1", false).is_err());
    }

    #[test]
    fn quoted_columns_from_supabase_py() {
        assert_eq!(
            parse_column_list("\"id\",\"name\"").unwrap(),
            vec!["id", "name"]
        );
    }

    #[test]
    fn order_terms() {
        let o = parse_order("a.desc.nullslast,b,author(name).desc,data->>x.asc").unwrap();
        assert!(o[0].descending && o[0].nulls == Some(Nulls::Last));
        assert!(!o[1].descending);
        assert_eq!(o[2].relation.as_deref(), Some("author"));
        assert!(o[2].descending);
        assert_eq!(o[3].field.json[0].key, "x");
        assert!(parse_order("a.sideways").is_err());
    }

    #[test]
    fn nested_parameters_have_paths() {
        let (q, x) = parse_query(
            "select=*,books(*)&books.order=id.desc&books.limit=2&books.title=eq.x&limit=1&columns=\"a\",b",
            false,
        )
        .unwrap();
        assert_eq!(q.limit_at(&["books".to_string()]), Some(2));
        assert_eq!(q.limit_at(&[]), Some(1));
        assert_eq!(q.order[0].0, vec!["books"]);
        assert_eq!(q.filters[0].0, vec!["books"]);
        assert_eq!(x.columns.unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn query_decoding() {
        let q = query_pairs("select=id%2Ctitle&title=eq.a+b&done=eq.false");
        assert_eq!(q[0], ("select".into(), "id,title".into()));
        assert_eq!(q[1], ("title".into(), "eq.a b".into()));
    }

    #[test]
    fn bulk_bodies_need_uniform_keys_unless_columns_given() {
        let body = br#"[{"a":1},{"a":2,"b":3}]"#;
        assert!(matches!(
            parse_json_payload(body, true),
            Err(RestError::InvalidBody(_))
        ));
        let p = parse_json_payload(body, false).unwrap();
        assert_eq!(p.rows, 2);
        assert!(!p.single);
    }

    #[test]
    fn csv_bodies() {
        let p = parse_csv_payload(b"id,name\n1,\"a,b\"\n2,NULL\n").unwrap();
        assert_eq!(p.keys, vec!["id", "name"]);
        assert_eq!(
            p.json,
            r#"[{"id":"1","name":"a,b"},{"id":"2","name":null}]"#
        );
    }

    #[test]
    fn prefer_header() {
        let p = parse_prefer(Some(
            "return=representation, resolution=merge-duplicates,count=exact,bogus=1",
        ));
        assert_eq!(p.ret, Some(Return::Representation));
        assert_eq!(p.resolution, Some(Resolution::MergeDuplicates));
        assert_eq!(p.count, Some(Count::Exact));
        assert_eq!(p.invalid, vec!["bogus=1"]);
    }
}
