//! PostgREST request syntax → [`ApiRequest`]. Malformed input is refused here (PGRST100) and never
//! reaches PostgreSQL.

use crate::error::RestError;
use crate::plan::*;
use percent_encoding::percent_decode_str;

/// Query-string keys that are not filters.
const RESERVED: &[&str] = &[
    "select",
    "order",
    "limit",
    "offset",
    "on_conflict",
    "columns",
];

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

/// Parses one request. `relation` is the path segment after the service prefix.
pub fn parse_request(
    method: &http::Method,
    relation: &str,
    query: &str,
    prefer: Option<&str>,
    schema: String,
    body: &[u8],
) -> Result<ApiRequest, RestError> {
    if relation.is_empty() || relation.contains('/') {
        return Err(RestError::NotFound(format!("no route for /{relation}")));
    }
    let mut req = ApiRequest {
        schema,
        relation: relation.to_string(),
        action: Action::Delete,
        select: vec![SelectItem::Star],
        filters: Vec::new(),
        order: Vec::new(),
        limit: None,
        offset: None,
        on_conflict: None,
        prefer: parse_prefer(prefer),
    };
    let mut columns: Option<Vec<String>> = None;
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "select" => req.select = parse_select(&value)?,
            "order" => req.order = parse_order(&value)?,
            "limit" => req.limit = Some(parse_int("limit", &value)?),
            "offset" => req.offset = Some(parse_int("offset", &value)?),
            "on_conflict" => req.on_conflict = Some(parse_column_list(&value)?),
            "columns" => columns = Some(parse_column_list(&value)?),
            _ => {
                debug_assert!(!RESERVED.contains(&key.as_str()));
                req.filters.push(parse_filter(&key, &value)?);
            }
        }
    }
    req.action = match *method {
        http::Method::GET => Action::Read { head: false },
        http::Method::HEAD => Action::Read { head: true },
        http::Method::POST | http::Method::PATCH => {
            let (body, keys) =
                normalise_body(body, method == http::Method::POST, columns.is_none())?;
            let columns = columns.unwrap_or(keys);
            if method == http::Method::POST {
                Action::Insert { body, columns }
            } else {
                Action::Update { body, columns }
            }
        }
        http::Method::DELETE => Action::Delete,
        _ => return Err(RestError::MethodNotAllowed(method.to_string())),
    };
    Ok(req)
}

fn parse_int(what: &str, v: &str) -> Result<i64, RestError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| RestError::parse(format!("\"failed to parse {what} parameter ({v})\"")))
}

/// A column name: letters, digits, `_`, `$` and spaces are accepted (PostgREST quotes them all); the
/// characters that carry syntax in the query language are not.
fn parse_name(s: &str) -> Result<String, RestError> {
    let s = s.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    if s.is_empty() || s.chars().any(|c| "(),.:!\"'".contains(c) || c.is_control()) {
        return Err(RestError::parse(format!("unexpected column name \"{s}\"")));
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
        return Err(RestError::parse(format!("unexpected cast \"{s}\"")));
    }
    Ok(s.to_string())
}

/// `select=*,id,alias:col::text`.
pub fn parse_select(v: &str) -> Result<Vec<SelectItem>, RestError> {
    if v.trim().is_empty() {
        return Ok(vec![SelectItem::Star]);
    }
    if v.contains('(') {
        return Err(RestError::parse(
            "embedded resources are not supported yet".to_string(),
        ));
    }
    v.split(',')
        .map(|item| {
            let item = item.trim();
            if item == "*" {
                return Ok(SelectItem::Star);
            }
            let (item, cast) = match item.split_once("::") {
                Some((a, c)) => (a, Some(parse_cast(c)?)),
                None => (item, None),
            };
            let (alias, name) = match item.split_once(':') {
                Some((a, n)) => (Some(parse_name(a)?), n),
                None => (None, item),
            };
            Ok(SelectItem::Column {
                field: Field {
                    name: parse_name(name)?,
                },
                alias,
                cast,
            })
        })
        .collect()
}

/// `order=a.desc.nullslast,b`.
pub fn parse_order(v: &str) -> Result<Vec<OrderTerm>, RestError> {
    v.split(',')
        .map(|term| {
            let mut parts = term.split('.');
            let name = parse_name(parts.next().unwrap_or(""))?;
            let mut t = OrderTerm {
                field: Field { name },
                descending: false,
                nulls: None,
            };
            for p in parts {
                match p {
                    "asc" => t.descending = false,
                    "desc" => t.descending = true,
                    "nullsfirst" => t.nulls = Some(Nulls::First),
                    "nullslast" => t.nulls = Some(Nulls::Last),
                    other => {
                        return Err(RestError::parse(format!(
                            "unexpected order modifier \"{other}\" in \"{term}\""
                        )))
                    }
                }
            }
            Ok(t)
        })
        .collect()
}

/// `col=[not.]op.value`.
pub fn parse_filter(key: &str, value: &str) -> Result<Filter, RestError> {
    let field = Field {
        name: parse_name(key)?,
    };
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (op, operand) = rest
        .split_once('.')
        .ok_or_else(|| RestError::parse(format!("\"failed to parse filter ({value})\"")))?;
    let predicate = match op {
        "eq" => cmp(Op::Eq, operand),
        "neq" => cmp(Op::Neq, operand),
        "gt" => cmp(Op::Gt, operand),
        "gte" => cmp(Op::Gte, operand),
        "lt" => cmp(Op::Lt, operand),
        "lte" => cmp(Op::Lte, operand),
        "like" => cmp(Op::Like, &operand.replace('*', "%")),
        "ilike" => cmp(Op::Ilike, &operand.replace('*', "%")),
        "in" => Predicate::In(parse_list(operand)?),
        "is" => Predicate::Is(match operand.to_ascii_lowercase().as_str() {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            _ => {
                return Err(RestError::parse(format!(
                    "\"failed to parse filter (is.{operand})\""
                )))
            }
        }),
        _ => {
            return Err(RestError::parse(format!(
                "\"failed to parse filter ({value})\" (unknown operator \"{op}\")"
            )))
        }
    };
    Ok(Filter {
        field,
        negated,
        predicate,
    })
}

fn cmp(op: Op, value: &str) -> Predicate {
    Predicate::Compare {
        op,
        value: value.to_string(),
    }
}

/// `(a,"b,c",d)` → items; double quotes protect commas and parentheses, `\` escapes inside quotes.
pub fn parse_list(v: &str) -> Result<Vec<String>, RestError> {
    let inner = v
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| RestError::parse(format!("\"failed to parse filter (in.{v})\"")))?;
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
        return Err(RestError::parse(format!("unterminated quote in \"{v}\"")));
    }
    items.push(cur);
    Ok(items)
}

/// `Prefer: return=representation, resolution=merge-duplicates, count=exact`.
pub fn parse_prefer(h: Option<&str>) -> Preferences {
    let mut p = Preferences::default();
    for item in h.unwrap_or("").split(',').map(str::trim) {
        match item {
            "return=representation" => p.ret = Return::Representation,
            "return=minimal" => p.ret = Return::Minimal,
            "return=headers-only" => p.ret = Return::HeadersOnly,
            "resolution=merge-duplicates" => p.resolution = Some(Resolution::MergeDuplicates),
            "resolution=ignore-duplicates" => p.resolution = Some(Resolution::IgnoreDuplicates),
            "count=exact" => p.count_exact = true,
            "missing=default" => p.missing_default = true,
            _ => {}
        }
    }
    p
}

/// Validates the JSON body and returns it as an array (a single object is wrapped) plus the keys of its
/// first object, which become the insert/update columns unless `columns=` says otherwise. Without
/// `columns=`, every object of an array must have the same keys (PostgREST's PGRST102).
fn normalise_body(
    body: &[u8],
    allow_array: bool,
    uniform_keys: bool,
) -> Result<(String, Vec<String>), RestError> {
    use serde_json::Value;
    let mismatch = || RestError::InvalidBody("All object keys must match".to_string());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RestError::InvalidBody(format!("Empty or invalid json: {e}")))?;
    let value = match value {
        Value::Object(_) => Value::Array(vec![value]),
        Value::Array(_) if allow_array => value,
        _ => {
            return Err(RestError::InvalidBody(
                "Empty or invalid json: expected a JSON object".to_string(),
            ))
        }
    };
    let items = value.as_array().expect("normalised to an array");
    let keys: Vec<String> = match items.first() {
        Some(Value::Object(o)) => o.keys().cloned().collect(),
        Some(_) => return Err(mismatch()),
        None => Vec::new(),
    };
    for item in items {
        let o = item.as_object().ok_or_else(mismatch)?;
        if uniform_keys && (o.len() != keys.len() || !keys.iter().all(|k| o.contains_key(k))) {
            return Err(mismatch());
        }
    }
    Ok((value.to_string(), keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_with_alias_and_cast() {
        let s = parse_select("id,author:name,price::text,*").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[1],
            SelectItem::Column {
                field: Field {
                    name: "name".into()
                },
                alias: Some("author".into()),
                cast: None
            }
        );
        assert!(matches!(&s[2], SelectItem::Column { cast: Some(c), .. } if c == "text"));
        assert!(
            parse_select("id;drop").is_ok(),
            "odd names are quoted, not refused"
        );
        assert!(parse_select("a::text;drop").is_err());
    }

    #[test]
    fn filters_and_lists() {
        let f = parse_filter("age", "not.gte.18").unwrap();
        assert!(f.negated);
        assert_eq!(
            f.predicate,
            Predicate::Compare {
                op: Op::Gte,
                value: "18".into()
            }
        );
        let f = parse_filter("name", "in.(a,\"b,c\",d)").unwrap();
        assert_eq!(
            f.predicate,
            Predicate::In(vec!["a".into(), "b,c".into(), "d".into()])
        );
        assert_eq!(
            parse_filter("t", "like.*x*").unwrap().predicate,
            Predicate::Compare {
                op: Op::Like,
                value: "%x%".into()
            }
        );
        assert!(parse_filter("a", "bogus.1").is_err());
        assert!(parse_filter("a", "eq").is_err());
        assert!(parse_filter("a", "is.maybe").is_err());
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
        let o = parse_order("a.desc.nullslast,b").unwrap();
        assert!(o[0].descending && o[0].nulls == Some(Nulls::Last));
        assert!(!o[1].descending);
        assert!(parse_order("a.sideways").is_err());
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
        let r = parse_request(&http::Method::POST, "t", "", None, "public".into(), body);
        assert!(matches!(r, Err(RestError::InvalidBody(_))));
        let r = parse_request(
            &http::Method::POST,
            "t",
            "columns=a,b",
            None,
            "public".into(),
            body,
        )
        .unwrap();
        assert!(matches!(r.action, Action::Insert { ref columns, .. } if columns == &["a", "b"]));
    }

    #[test]
    fn prefer_header() {
        let p = parse_prefer(Some(
            "return=representation, resolution=merge-duplicates,count=exact",
        ));
        assert_eq!(p.ret, Return::Representation);
        assert_eq!(p.resolution, Some(Resolution::MergeDuplicates));
        assert!(p.count_exact);
    }
}
