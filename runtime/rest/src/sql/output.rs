//! The outer statement every request shares: the body rendered by PostgreSQL, the total, the
//! session GUCs read back, and the `EXPLAIN` behind `count=planned`.

use super::{Builder, Render};
use crate::request::*;
use std::borrow::Cow;
use std::fmt::Write;
use supactl_common::ident::quote_ident;

impl Builder<'_> {
    /// The body column over the rows `pgrst_r`. `scalar`: each row is one value of a function
    /// (`pgrst_scalar`), which a handler takes rather than the row.
    pub(super) fn body_sql(&self, render: Render, scalar: bool) -> Cow<'static, str> {
        match render {
            Render::GeoJson => {
                let schema = self.cache.geojson.as_deref().unwrap_or("public");
                format!(
                    "json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg({}.\"st_asgeojson\"(\"pgrst_r\")::json), '[]'))::text",
                    quote_ident(schema)
                )
                .into()
            }
            Render::Handler(i) => match self.cache.media_handlers.get(i) {
                Some(h) => handler_sql(h, scalar).into(),
                None => body_expr(Render::None).into(),
            },
            r => body_expr(r).into(),
        }
    }
}

/// A media type handler's output as text (the hex of its bytes when the domain is over `bytea`,
/// decoded again by the service), empty when it yields NULL.
fn handler_sql(h: &crate::schema::MediaHandler, scalar: bool) -> String {
    let arg = if scalar {
        "\"pgrst_r\".\"pgrst_scalar\"".to_string()
    } else {
        match &h.target {
            Some((s, t)) if h.aggregate => {
                format!("\"pgrst_r\"::{}.{}", quote_ident(s), quote_ident(t))
            }
            _ => "\"pgrst_r\"".to_string(),
        }
    };
    // A function handler is the function's own (single) result.
    let value = if h.aggregate {
        format!("{}.{}({arg})", quote_ident(&h.schema), quote_ident(&h.name))
    } else {
        format!("(array_agg({arg}))[1]")
    };
    if h.binary {
        format!("coalesce(encode({value}::bytea, 'hex'), '')")
    } else {
        format!("coalesce({value}::text, '')")
    }
}

fn body_expr(render: Render) -> &'static str {
    match render {
        Render::Json => "coalesce(json_agg(\"pgrst_r\"), '[]')::text",
        Render::JsonStripped => {
            "coalesce(json_agg(json_strip_nulls(row_to_json(\"pgrst_r\"))), '[]')::text"
        }
        Render::Csv => "coalesce((SELECT string_agg(k, ',') FROM json_object_keys((array_agg(row_to_json(\"pgrst_r\")))[1]) AS k) || chr(10) || string_agg(substring(\"pgrst_r\"::text, 2, length(\"pgrst_r\"::text) - 2), chr(10)), '')",
        Render::None => "''::text",
        Render::Scalar => "coalesce((json_agg(\"pgrst_r\".\"pgrst_scalar\")->0)::text, 'null')",
        Render::ScalarSet => "coalesce(json_agg(\"pgrst_r\".\"pgrst_scalar\"), '[]')::text",
        // Built with the schema cache (`Builder::body_sql`).
        Render::GeoJson | Render::Handler(_) => "''::text",
    }
}

/// The final projection over the rows `pgrst_r`, whose body column is `body` ([`Builder::body_sql`]).
pub(super) fn wrap(inner: &str, body: &str, total: &str, location: &str, cte: &str) -> String {
    format!(
        "{cte}SELECT {body}, count(*), {total}, current_setting('response.headers', true), current_setting('response.status', true), {location} FROM ({inner}) AS \"pgrst_r\"",
    )
}

/// The same read as rows (see [`crate::exec::binary`]): the rows' `columns` (name, and whether it goes
/// out as is rather than as PostgreSQL's `to_json`) with a null last column, then one trailer row whose
/// last column is `{total, response.headers, response.status}` as text, read once the
/// rows are done, as [`wrap`] reads them, and `extra_float_digits` after them when `floats` go out as
/// they are. `pg_backend_pid()` is parallel restricted: it keeps the trailer in the leader process,
/// after the rows (a non-parallel Append runs its branches in order).
pub(super) fn wrap_binary(
    inner: &str,
    columns: &[(String, bool)],
    floats: bool,
    total: &str,
) -> String {
    let mut select = String::new();
    for (name, bare) in columns {
        let q = quote_ident(name);
        if *bare {
            let _ = write!(select, "\"pgrst_r\".{q}, ");
        } else {
            let _ = write!(select, "to_json(\"pgrst_r\".{q}) AS {q}, ");
        }
    }
    format!(
        "SELECT {select}NULL::text[] AS \"pgrst_trailer\" FROM ({inner}) AS \"pgrst_r\" \
         UNION ALL SELECT {}ARRAY[({total})::text, current_setting('response.headers', true), \
         current_setting('response.status', true){}] WHERE pg_backend_pid() IS NOT NULL",
        "NULL, ".repeat(columns.len()),
        if floats {
            ", current_setting('extra_float_digits')"
        } else {
            ""
        },
    )
}

/// What the count preference turns into (`count=planned` is read from an `EXPLAIN` instead, see
/// [`super::Statement::explain`]).
pub(super) fn total_expr(count: Option<Count>, rows_query: &str, max_rows: Option<i64>) -> String {
    match (count, max_rows) {
        // Counting past db-max-rows is what `estimated` avoids: stop one row after it.
        (Some(Count::Estimated), Some(max)) => format!(
            "(SELECT count(*) FROM ({rows_query} LIMIT {}) AS \"pgrst_counted\")",
            max + 1
        ),
        (Some(Count::Exact | Count::Estimated), _) => {
            format!("(SELECT count(*) FROM ({rows_query}) AS \"pgrst_counted\")")
        }
        (Some(Count::Planned), _) | (None, _) => "NULL::bigint".to_string(),
    }
}

/// `EXPLAIN (FORMAT JSON)` of the rows a count counts. The statement is prepared with the main
/// statement's parameters, and PostgreSQL cannot type a parameter the text never mentions, so those
/// the count does not use (limit, offset, select-list values) are mentioned in a one-row join that
/// leaves the estimate unchanged.
pub(super) fn explain_sql(
    count: Option<Count>,
    rows_query: &str,
    nparams: usize,
) -> Option<String> {
    if !matches!(count, Some(Count::Planned | Count::Estimated)) {
        return None;
    }
    let mentioned = mentioned_params(rows_query, nparams);
    let unused: Vec<String> = (1..=nparams)
        .filter(|i| !mentioned[*i])
        .map(|i| format!("${i}::text"))
        .collect();
    Some(if unused.is_empty() {
        format!("EXPLAIN (FORMAT JSON) {rows_query}")
    } else {
        format!(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM ({rows_query}) AS \"pgrst_rows\", (SELECT {}) AS \"pgrst_unused\"",
            unused.join(", ")
        )
    })
}

/// Which of the placeholders `$1`…`$n` `sql` mentions (whole: `$12` is not `$1`), indexed by number,
/// in one pass: a request can carry thousands of parameters, and a search per parameter would make
/// the count's cost grow with their square.
pub(super) fn mentioned_params(sql: &str, n: usize) -> Vec<bool> {
    let mut seen = vec![false; n + 1];
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if let Ok(k) = sql[i + 1..i + 1 + digits].parse::<usize>() {
            if k <= n {
                seen[k] = true;
            }
        }
        i += 1 + digits;
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_matched_whole() {
        let m = mentioned_params("a = $1 AND b = $12", 12);
        assert!(m[1] && m[12]);
        assert!(!m[2] && !m[11]);
        let m = mentioned_params("a = $12", 12);
        assert!(!m[1] && !m[2] && m[12]);
        assert!(mentioned_params("LIMIT $3", 3)[3]);
        assert_eq!(
            mentioned_params("$ $x $99999999999999999999 $4", 3),
            vec![false; 4]
        );
    }

    #[test]
    fn unused_parameters_are_mentioned_once() {
        let sql = explain_sql(Some(Count::Planned), "SELECT 1 FROM t WHERE id = $2", 3).unwrap();
        assert!(
            sql.ends_with("(SELECT $1::text, $3::text) AS \"pgrst_unused\""),
            "{sql}"
        );
        assert_eq!(
            explain_sql(Some(Count::Planned), "SELECT 1 FROM t WHERE id = $1", 1).unwrap(),
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM t WHERE id = $1"
        );
        assert!(explain_sql(Some(Count::Exact), "SELECT 1", 0).is_none());
        assert!(explain_sql(None, "SELECT 1", 0).is_none());
        // PostgREST explains an estimated count whether or not db-max-rows is set.
        assert!(explain_sql(Some(Count::Estimated), "SELECT 1", 0).is_some());
    }
}
