//! Supabase's postgres_changes filters: parse `column=operator.value` (PostgREST syntax) and
//! evaluate it against a row given as JSON.
//!
//! Grammar (what supabase-js/py send in `postgres_changes[].filter`):
//! `condition ("," condition)*`, all of which must hold, where a condition is
//! `column "=" ["not."] op "." value` with `op` one of `eq neq lt lte gt gte in`. An `in` value is
//! a parenthesised list, `in.(a,b,"c,d")`; elements may be double-quoted (with `\` escapes), as
//! in a PostgreSQL array literal. An empty or blank filter matches every row. Parsing is bounded
//! by [`FilterLimits`].
//!
//! Evaluation follows SQL, over the JSON types the [`crate::payload`] module produces: a missing
//! or null column never matches (not even `neq` or `not.`); numbers compare numerically (integers
//! exactly), booleans accept PostgreSQL's spellings (`true`, `t`, `1`, …), strings compare by
//! bytes (PostgreSQL's `C` collation; ISO timestamps and UUIDs order correctly), JSON objects and
//! arrays only for (in)equality. A value that cannot be compared with the column's type (`id=eq.x`
//! on a number) matches nothing, where Supabase would have refused the subscription.

use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Bounds on one filter string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterLimits {
    pub max_bytes: usize,
    pub max_conditions: usize,
    pub max_in_values: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        FilterLimits {
            max_bytes: 4096,
            max_conditions: 16,
            max_in_values: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "in" => Op::In,
            _ => return None,
        })
    }
}

/// The right-hand side of a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterValue {
    One(String),
    List(Vec<String>),
}

/// One `column=[not.]op.value` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub column: String,
    pub op: Op,
    pub negated: bool,
    pub value: FilterValue,
}

/// A parsed filter: the conjunction of its conditions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    conditions: Vec<Condition>,
}

impl Filter {
    /// Parses a filter string; blank means no condition.
    pub fn parse(filter: &str, limits: &FilterLimits) -> Result<Self, FilterError> {
        if filter.len() > limits.max_bytes {
            return Err(FilterError::TooLong {
                size: filter.len(),
                max: limits.max_bytes,
            });
        }
        if filter.trim().is_empty() {
            return Ok(Filter::default());
        }
        let segments = split_unquoted(filter, ',', true);
        if segments.len() > limits.max_conditions {
            return Err(FilterError::TooManyConditions {
                max: limits.max_conditions,
            });
        }
        let conditions = segments
            .into_iter()
            .map(|segment| parse_condition(segment.trim(), limits))
            .collect::<Result<_, _>>()?;
        Ok(Filter { conditions })
    }

    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The columns the filter reads (to check them against the table when subscribing).
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.conditions.iter().map(|c| c.column.as_str())
    }

    /// Whether `row` satisfies every condition.
    pub fn matches(&self, row: &Map<String, Value>) -> bool {
        self.conditions
            .iter()
            .all(|c| c.matches(row.get(&c.column)))
    }
}

impl Condition {
    fn matches(&self, value: Option<&Value>) -> bool {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return false;
        };
        let outcome = match (&self.value, self.op) {
            (FilterValue::List(items), _) => {
                let cmps: Vec<Cmp> = items.iter().map(|item| compare(value, item)).collect();
                if cmps.iter().any(|c| matches!(c, Cmp::Ord(Ordering::Equal))) {
                    Some(true)
                } else if cmps.iter().all(|c| !matches!(c, Cmp::Incomparable)) {
                    Some(false)
                } else {
                    None
                }
            }
            (FilterValue::One(text), op) => compare(value, text).holds(op),
        };
        // SQL: an unknown outcome is never visible, negated or not.
        outcome.is_some_and(|holds| holds != self.negated)
    }
}

/// The outcome of comparing a column's JSON value with a filter value's text.
enum Cmp {
    Ord(Ordering),
    /// Comparable for equality only (JSON objects and arrays), and different.
    Unequal,
    /// The text is not a value of the column's type.
    Incomparable,
}

impl Cmp {
    fn holds(&self, op: Op) -> Option<bool> {
        match (self, op) {
            (Cmp::Incomparable, _) => None,
            (Cmp::Unequal, Op::Eq) => Some(false),
            (Cmp::Unequal, Op::Neq) => Some(true),
            (Cmp::Unequal, _) => None,
            (Cmp::Ord(o), Op::Eq | Op::In) => Some(*o == Ordering::Equal),
            (Cmp::Ord(o), Op::Neq) => Some(*o != Ordering::Equal),
            (Cmp::Ord(o), Op::Lt) => Some(*o == Ordering::Less),
            (Cmp::Ord(o), Op::Lte) => Some(*o != Ordering::Greater),
            (Cmp::Ord(o), Op::Gt) => Some(*o == Ordering::Greater),
            (Cmp::Ord(o), Op::Gte) => Some(*o != Ordering::Less),
        }
    }
}

fn compare(value: &Value, text: &str) -> Cmp {
    match value {
        Value::Bool(b) => match parse_bool(text) {
            Some(other) => Cmp::Ord(b.cmp(&other)),
            None => Cmp::Incomparable,
        },
        Value::Number(n) => compare_number(n, text.trim()),
        Value::String(s) => Cmp::Ord(s.as_str().cmp(text)),
        Value::Array(_) | Value::Object(_) => match serde_json::from_str::<Value>(text) {
            Ok(other) if &other == value => Cmp::Ord(Ordering::Equal),
            Ok(_) => Cmp::Unequal,
            Err(_) => Cmp::Incomparable,
        },
        Value::Null => Cmp::Incomparable,
    }
}

fn compare_number(n: &serde_json::Number, text: &str) -> Cmp {
    let exact = n
        .as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from));
    if let (Some(a), Ok(b)) = (exact, text.parse::<i128>()) {
        return Cmp::Ord(a.cmp(&b));
    }
    match (n.as_f64(), text.parse::<f64>()) {
        (Some(a), Ok(b)) => a.partial_cmp(&b).map_or(Cmp::Incomparable, Cmp::Ord),
        _ => Cmp::Incomparable,
    }
}

/// PostgreSQL's boolean input spellings.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn parse_condition(segment: &str, limits: &FilterLimits) -> Result<Condition, FilterError> {
    if segment.is_empty() {
        return Err(FilterError::EmptySegment);
    }
    let malformed = || FilterError::Malformed(quote(segment));
    let (column, rest) = segment.split_once('=').ok_or_else(malformed)?;
    let (negated, rest) = match rest.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let (op, value) = rest.split_once('.').ok_or_else(malformed)?;
    let column = column.trim();
    if column.is_empty() {
        return Err(malformed());
    }
    let op = Op::parse(op).ok_or_else(|| FilterError::UnknownOperator(quote(op)))?;
    let value = match op {
        Op::In => FilterValue::List(parse_list(value, limits)?),
        _ => FilterValue::One(unquote(value).unwrap_or_else(|| value.to_owned())),
    };
    Ok(Condition {
        column: column.to_owned(),
        op,
        negated,
        value,
    })
}

/// `(a, b, "c,d")` → `["a", "b", "c,d"]`.
fn parse_list(value: &str, limits: &FilterLimits) -> Result<Vec<String>, FilterError> {
    let inner = value
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or(FilterError::InNotParenthesized)?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    let items = split_unquoted(inner, ',', false);
    if items.len() > limits.max_in_values {
        return Err(FilterError::TooManyInValues {
            max: limits.max_in_values,
        });
    }
    Ok(items
        .into_iter()
        .map(|item| {
            let item = item.trim();
            unquote(item).unwrap_or_else(|| item.to_owned())
        })
        .collect())
}

/// Splits at `sep` outside double quotes (and, when `parens`, outside parentheses).
fn split_unquoted(s: &str, sep: char, parens: bool) -> Vec<&str> {
    let (mut parts, mut start, mut depth) = (Vec::new(), 0, 0usize);
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if parens && !quoted => depth += 1,
            ')' if parens && !quoted => depth = depth.saturating_sub(1),
            c if c == sep && !quoted && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `"a\"b"` → `a"b`; `None` when `s` is not one whole quoted string.
fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let (mut out, mut chars) = (String::with_capacity(inner.len()), inner.chars());
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Quotes a piece of client input for an error message, cut to a readable length.
fn quote(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    format!("{cut:?}")
}

/// Why a filter was refused. Supabase reports these in a `system` message
/// (`extension: "postgres_changes"`, `status: "error"`), prefixed as here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("Error parsing `filter` params: filter is {size} bytes, over the limit of {max}")]
    TooLong { size: usize, max: usize },
    #[error("Error parsing `filter` params: more than {max} conditions")]
    TooManyConditions { max: usize },
    #[error("Error parsing `filter` params: filter must not contain empty segments (check for extra commas)")]
    EmptySegment,
    #[error("Error parsing `filter` params: expected column=operator.value, got {0}")]
    Malformed(String),
    #[error("Error parsing `filter` params: unsupported operator {0} (expected eq, neq, lt, lte, gt, gte or in)")]
    UnknownOperator(String),
    #[error("Error parsing `filter` params: `in` filter value must be wrapped by parentheses")]
    InNotParenthesized,
    #[error("Error parsing `filter` params: more than {max} values in an `in` list")]
    TooManyInValues { max: usize },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s, &FilterLimits::default())
    }

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parses_supabase_examples() {
        let f = parse("subject=eq.hey").unwrap();
        let want = Condition {
            column: "subject".into(),
            op: Op::Eq,
            negated: false,
            value: FilterValue::One("hey".into()),
        };
        assert_eq!(f.conditions(), &[want]);
        let f = parse("subject=in.(hidee,ho)").unwrap();
        assert_eq!(
            f.conditions()[0].value,
            FilterValue::List(vec!["hidee".into(), "ho".into()])
        );
        let f = parse("id=gt.0,id=lt.100").unwrap();
        assert_eq!(f.conditions().len(), 2);
        assert_eq!(f.columns().collect::<Vec<_>>(), ["id", "id"]);
        let f = parse("name=not.eq.x").unwrap();
        assert!(f.conditions()[0].negated);
        assert!(parse("").unwrap().conditions().is_empty());
        assert!(parse("   ").unwrap().conditions().is_empty());
        // A value may itself contain '=' and '.'.
        let f = parse("email=eq.a.b=c@x.io").unwrap();
        assert_eq!(
            f.conditions()[0].value,
            FilterValue::One("a.b=c@x.io".into())
        );
    }

    #[test]
    fn quoted_values_and_lists() {
        let f = parse(r#"tag=in.("a,b", c ,"d\"e"),name=eq."x,y""#).unwrap();
        assert_eq!(
            f.conditions()[0].value,
            FilterValue::List(vec!["a,b".into(), "c".into(), "d\"e".into()])
        );
        assert_eq!(f.conditions()[1].value, FilterValue::One("x,y".into()));
        assert!(f.matches(&row(json!({"tag": "a,b", "name": "x,y"}))));
        assert!(!f.matches(&row(json!({"tag": "a", "name": "x,y"}))));
    }

    #[test]
    fn malformed_filters_are_errors_with_supabase_prefix() {
        let cases = [
            ("subject=foo.hey", "unsupported operator \"foo\""),
            (
                "undefined",
                "expected column=operator.value, got \"undefined\"",
            ),
            ("id=eq", "expected column=operator.value"),
            ("=eq.1", "expected column=operator.value"),
            (
                "id=in.1,2",
                "`in` filter value must be wrapped by parentheses",
            ),
            ("id=eq.1,,id=eq.2", "empty segments"),
            ("id=eq.1,", "empty segments"),
        ];
        for (filter, want) in cases {
            let err = parse(filter).unwrap_err().to_string();
            assert!(err.starts_with("Error parsing `filter` params: "), "{err}");
            assert!(err.contains(want), "{filter}: {err}");
        }
    }

    #[test]
    fn limits_bound_the_parse() {
        let limits = FilterLimits {
            max_bytes: 64,
            max_conditions: 2,
            max_in_values: 3,
        };
        let long = format!("id=eq.{}", "9".repeat(100));
        assert_eq!(
            Filter::parse(&long, &limits),
            Err(FilterError::TooLong { size: 106, max: 64 })
        );
        assert_eq!(
            Filter::parse("a=eq.1,b=eq.2,c=eq.3", &limits),
            Err(FilterError::TooManyConditions { max: 2 })
        );
        assert_eq!(
            Filter::parse("a=in.(1,2,3,4)", &limits),
            Err(FilterError::TooManyInValues { max: 3 })
        );
        assert!(Filter::parse("a=in.(1,2,3)", &limits).is_ok());
        // A comma inside an `in` list does not count as a condition.
        assert!(Filter::parse("a=in.(1,2),b=eq.1", &limits).is_ok());
    }

    #[test]
    fn numbers_compare_numerically_and_exactly() {
        let r = row(json!({"id": 10, "big": 9007199254740993u64, "price": 2.5}));
        for (filter, want) in [
            ("id=eq.10", true),
            ("id=eq.010", true),
            ("id=neq.10", false),
            ("id=lt.9", false),
            ("id=lte.10", true),
            ("id=gt.9", true),
            ("id=gte.11", false),
            ("id=in.(1,10)", true),
            ("id=in.(1,2)", false),
            ("id=not.in.(1,2)", true),
            ("big=eq.9007199254740993", true),
            ("big=eq.9007199254740992", false),
            ("price=gt.2.25", true),
            ("price=eq.2.50", true),
            ("id=eq.abc", false),
            ("id=neq.abc", false),
            ("id=not.eq.abc", false),
        ] {
            assert_eq!(parse(filter).unwrap().matches(&r), want, "{filter}");
        }
    }

    #[test]
    fn strings_booleans_json_and_nulls() {
        let r = row(json!({
            "name": "bob", "at": "2026-12-07T06:00:00Z", "done": false,
            "doc": {"a": [1, 2]}, "gone": null,
        }));
        for (filter, want) in [
            ("name=eq.bob", true),
            ("name=neq.bob", false),
            ("name=lt.carl", true),
            ("name=in.(al,bob)", true),
            ("at=gte.2026-12-07", true),
            ("at=lt.2026-12-07T06:00:01Z", true),
            ("done=eq.false", true),
            ("done=eq.f", true),
            ("done=neq.true", true),
            ("done=eq.maybe", false),
            // A comma outside quotes separates conditions (as in Supabase): quote JSON values.
            (r#"doc=eq."{\"a\":[1,2]}""#, true),
            (r#"doc=neq.{"a":[1]}"#, true),
            ("doc=gt.1", false),
            ("gone=eq.x", false),
            ("gone=neq.x", false),
            ("gone=not.eq.x", false),
            ("missing=neq.1", false),
            ("name=eq.bob,done=eq.true", false),
            ("name=eq.bob,done=eq.false", true),
        ] {
            assert_eq!(parse(filter).unwrap().matches(&r), want, "{filter}");
        }
        assert!(parse("").unwrap().matches(&r));
    }
}
