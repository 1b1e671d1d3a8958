//! The SQL endpoint: runs a script (one or more statements, in one implicit transaction) in a project's
//! database and returns the rows of its last statement as JSON objects with JSON types where PostgreSQL's
//! type maps onto one (booleans, integers, floats, json) and strings otherwise.

use crate::error::ApiError;
use serde_json::{Map, Value};
use tokio_postgres::{Client, SimpleQueryMessage};

/// Splits a script into statements, honouring quotes, dollar quotes and comments.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut start) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                // In E'…' strings a backslash escapes the next character.
                let backslash = q == b'\'' && i > 0 && (b[i - 1] == b'E' || b[i - 1] == b'e');
                i += 1;
                while i < b.len() {
                    if backslash && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => {
                // $tag$ … $tag$ (tag may be empty); a `$1` parameter is not a quote.
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j < b.len()
                    && b[j] == b'$'
                    && !b[i + 1..j].first().is_some_and(u8::is_ascii_digit)
                {
                    let tag = &sql[i..=j];
                    match sql[j + 1..].find(tag) {
                        Some(end) => i = j + 1 + end + tag.len(),
                        None => i = b.len(),
                    }
                } else {
                    i += 1;
                }
            }
            b';' => {
                push(&mut out, &sql[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push(&mut out, &sql[start..]);
    out
}

fn push<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let t = s.trim();
    if !t.is_empty() && !only_comments(t) {
        out.push(t);
    }
}

fn only_comments(s: &str) -> bool {
    s.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--")
    }) && !s.contains("/*")
}

/// Runs `sql` and returns the last statement's rows.
pub async fn run(client: &Client, sql: &str) -> Result<Vec<Value>, ApiError> {
    let statements = split_statements(sql);
    if statements.is_empty() {
        return Err(ApiError::BadRequest("query: empty SQL".into()));
    }
    let messages = client.simple_query(sql).await.map_err(sql_error)?;
    // Rows since the last CommandComplete belong to the last statement.
    let mut rows = Vec::new();
    let mut last_rows: Vec<tokio_postgres::SimpleQueryRow> = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::Row(r) => rows.push(r),
            SimpleQueryMessage::CommandComplete(_) => last_rows = std::mem::take(&mut rows),
            _ => {}
        }
    }
    if last_rows.is_empty() {
        return Ok(Vec::new());
    }
    // Column types come from describing the last statement (no execution).
    let types: Option<Vec<u32>> = match client.prepare(statements[statements.len() - 1]).await {
        Ok(st) => Some(st.columns().iter().map(|c| c.type_().oid()).collect()),
        Err(_) => None,
    };
    Ok(last_rows
        .iter()
        .map(|r| {
            let mut obj = Map::new();
            for (i, col) in r.columns().iter().enumerate() {
                let oid = types.as_ref().and_then(|t| t.get(i).copied()).unwrap_or(25);
                obj.insert(col.name().to_string(), typed(r.get(i), oid));
            }
            Value::Object(obj)
        })
        .collect())
}

/// The last statement's result as the dashboard's grid shows it: `columns` (name and type, also when no
/// row came back), `rows` as arrays typed as by [`run`], and `affected` (rows returned or changed).
pub async fn run_described(client: &Client, sql: &str) -> Result<Value, ApiError> {
    let statements = split_statements(sql);
    let Some(last) = statements.last() else {
        return Err(ApiError::BadRequest("query: empty SQL".into()));
    };
    let messages = client.simple_query(sql).await.map_err(sql_error)?;
    let (mut names, mut rows, mut affected) = (Vec::new(), Vec::new(), 0);
    let mut pending: Vec<tokio_postgres::SimpleQueryRow> = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                names = cols.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(r) => pending.push(r),
            SimpleQueryMessage::CommandComplete(n) => {
                rows = std::mem::take(&mut pending);
                affected = n;
            }
            _ => {}
        }
    }
    // Types come from describing the last statement (no execution); one that describes no result (DDL,
    // an INSERT without RETURNING) has no columns, whatever an earlier statement returned.
    let types: Vec<(u32, String)> = match client.prepare(last).await {
        Ok(st) => st
            .columns()
            .iter()
            .map(|c| (c.type_().oid(), c.type_().name().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    };
    if types.is_empty() {
        names.clear();
    }
    let type_of = |i: usize| types.get(i).cloned().unwrap_or((25, "text".into()));
    let columns: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| serde_json::json!({"name": n, "type": type_of(i).1}))
        .collect();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            Value::Array(
                (0..r.len())
                    .map(|i| typed(r.get(i), type_of(i).0))
                    .collect(),
            )
        })
        .collect();
    Ok(serde_json::json!({"columns": columns, "rows": rows, "affected": affected}))
}

/// Text value → JSON by type OID.
fn typed(v: Option<&str>, oid: u32) -> Value {
    let Some(v) = v else { return Value::Null };
    match oid {
        16 => Value::Bool(v == "t"),
        20 | 21 | 23 | 26 => v
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(v.into())),
        700 | 701 => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .unwrap_or_else(|| Value::String(v.into())),
        114 | 3802 => serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into())),
        _ => Value::String(v.into()),
    }
}

fn sql_error(e: tokio_postgres::Error) -> ApiError {
    match e.as_db_error() {
        Some(db) => ApiError::Sql {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
            position: match db.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            },
        },
        None => ApiError::internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let s = split_statements(
            "create table t(a text default ';'); -- c; omment\n\
             create function f() returns int as $$ select 1; $$ language sql;\
             select $tag$ ; $tag$, \"we;ird\", E'it\\'s;', 'a''b;' /* x; /* y; */ */ ;;  ",
        );
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(s[1].ends_with("language sql"));
        assert!(s[2].starts_with("select $tag$"));
        assert!(split_statements("-- only a comment").is_empty());
        assert_eq!(split_statements("select $1::int").len(), 1);
    }

    #[test]
    fn typing() {
        assert_eq!(typed(Some("t"), 16), Value::Bool(true));
        assert_eq!(typed(Some("42"), 23), Value::from(42));
        assert_eq!(typed(Some("1.5"), 701), Value::from(1.5));
        assert_eq!(typed(Some("NaN"), 701), Value::from("NaN"));
        assert_eq!(typed(Some("{\"a\":1}"), 3802)["a"], 1);
        assert_eq!(typed(Some("12.30"), 1700), Value::from("12.30"));
        assert_eq!(typed(None, 23), Value::Null);
    }
}
