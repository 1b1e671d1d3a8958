//! PostgREST request syntax → [`Query`] and [`Preferences`]. Malformed input is refused here (PGRST100)
//! and never reaches PostgreSQL. Nothing here knows the schema: names are checked against it by
//! [`crate::sql`].

mod filter;
mod payload;
mod select;
#[cfg(test)]
mod tests;

pub use filter::{parse_filter, parse_list};
pub use payload::{parse_csv_payload, parse_json_payload, Payload};
pub use select::{parse_order, parse_select};

use crate::error::RestError;
use crate::limits::{MAX_EMBED_DEPTH, MAX_JSON_PATH, MAX_QUERY_BYTES};
use crate::request::*;
use filter::parse_logic_list;
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

pub(super) fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

pub(super) fn failed(what: &str, value: &str, detail: impl Into<String>) -> RestError {
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

pub(super) fn parse_int(what: &str, v: &str) -> Result<i64, RestError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| failed(what, v, "expected a non-negative integer"))
}

/// Splits at `sep` outside parentheses and double quotes.
pub(super) fn split_top(s: &str, sep: char) -> Result<Vec<&str>, RestError> {
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
pub(super) fn parse_name(s: &str) -> Result<String, RestError> {
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
pub(super) fn parse_column_list(v: &str) -> Result<Vec<String>, RestError> {
    v.split(',').map(parse_name).collect()
}

pub(super) fn parse_cast(s: &str) -> Result<String, RestError> {
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
pub(super) fn alias_split(s: &str) -> Option<(&str, &str)> {
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
