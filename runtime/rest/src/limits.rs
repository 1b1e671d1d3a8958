//! Bounds on what one request may ask of the engine, all in one place.
//!
//! Anyone holding a project's publishable key (public by design) can send any query string, so every
//! recursive or repeated structure a request drives is capped here and refused with a 400 (PGRST100,
//! naming the limit) before anything is built from it. The parser enforces the caps; the SQL builder
//! checks the nesting again, so no later stage recurses deeper than the parser allowed (the parsed
//! [`crate::request::Query`] is a public type anyone could construct). Values that reach PostgreSQL
//! (casts, JSON keys, filter values) are bounded by the query string's length and by PostgreSQL's own
//! `max_stack_depth`.
//!
//! The depths are generous for real use (PostgREST clients rarely nest more than four levels) and
//! measured against a *debug* build on a 2 MiB tokio worker stack: one select level costs the parser
//! alone about 13 KiB there and a logic level about 7 KiB, so a ~2 KB GET of 150–300 levels aborted
//! the whole process, every tenant with it. Through the whole pipeline (gateway, parser, SQL builder,
//! PostgreSQL, response) that build serves 64 levels of either and overflows at 128: the caps below
//! leave four times that margin (`runtime/gateway/tests/rest_limits.rs` sends requests at the caps).

/// Longest query string accepted, in bytes as sent (percent-encoded). Bounds every list a request can
/// make (select items, filters, `in.(…)` values) and keeps bind parameters below PostgreSQL's 65,535.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// Deepest nesting of select lists: the top level and embedded resources inside each other
/// (`select=id,a(b(c))` has 4 levels). So an embedded filter, order or limit names a path of at most
/// this many embeds less one (`a.b.c.id=eq.1`).
pub const MAX_EMBED_DEPTH: usize = 16;

/// Embedded resources in one request, at every level together (each becomes a lateral subquery).
pub const MAX_EMBEDS: usize = 100;

/// Deepest nesting of `and(…)` / `or(…)` / `not.` logic trees (`or=(a.eq.1,and(…))` is depth 2).
pub const MAX_LOGIC_DEPTH: usize = 16;

/// Most `->` / `->>` steps in one JSON path (`data->a->b->>c` has 3).
pub const MAX_JSON_PATH: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RestError;
    use crate::parse::{parse_field, parse_order, parse_query, parse_select};

    /// `select=id,t(id,t(…))` with `levels` select lists in all.
    fn nested_select(levels: usize) -> String {
        format!(
            "id,{}id{}",
            "t(id,".repeat(levels - 1),
            ")".repeat(levels - 1)
        )
    }

    /// `or=(or(or(…id.eq.1)))` whose lists nest `levels` deep.
    fn nested_logic(levels: usize) -> String {
        format!(
            "({}id.eq.1{})",
            "or(".repeat(levels - 1),
            ")".repeat(levels - 1)
        )
    }

    fn limit_message(r: Result<impl std::fmt::Debug, RestError>) -> String {
        match r {
            Err(RestError::Limit(m)) => m,
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn select_nesting_at_and_past_the_limit() {
        assert!(parse_select(&nested_select(MAX_EMBED_DEPTH)).is_ok());
        assert_eq!(
            limit_message(parse_select(&nested_select(MAX_EMBED_DEPTH + 1))),
            "select nesting exceeds 16 levels"
        );
        // Also through the query string, and spreads count the same.
        let spread = format!(
            "select=id,{}id{}",
            "...t(id,".repeat(MAX_EMBED_DEPTH),
            ")".repeat(MAX_EMBED_DEPTH)
        );
        assert!(matches!(
            parse_query(&spread, false),
            Err(RestError::Limit(_))
        ));
    }

    #[test]
    fn embeds_at_and_past_the_limit() {
        let wide = |n: usize| vec!["t(id)"; n].join(",");
        assert!(parse_select(&wide(MAX_EMBEDS)).is_ok());
        assert_eq!(
            limit_message(parse_select(&wide(MAX_EMBEDS + 1))),
            "select has more than 100 embedded resources"
        );
        // Nested ones count too.
        let nested = format!("a({}),{}", wide(MAX_EMBEDS / 2), wide(MAX_EMBEDS / 2));
        assert!(matches!(parse_select(&nested), Err(RestError::Limit(_))));
    }

    #[test]
    fn logic_nesting_at_and_past_the_limit() {
        let at = format!("or={}", nested_logic(MAX_LOGIC_DEPTH));
        assert!(parse_query(&at, false).is_ok());
        let past = format!("or={}", nested_logic(MAX_LOGIC_DEPTH + 1));
        assert_eq!(
            limit_message(parse_query(&past, false)),
            "logic tree nesting exceeds 16 levels"
        );
        // `not.` and `and` nest the same, on an embed's path too.
        let negated = format!(
            "t.not.and=({}id.eq.1{})",
            "not.and(".repeat(MAX_LOGIC_DEPTH),
            ")".repeat(MAX_LOGIC_DEPTH)
        );
        assert!(matches!(
            parse_query(&negated, false),
            Err(RestError::Limit(_))
        ));
    }

    #[test]
    fn json_paths_at_and_past_the_limit() {
        let path = |n: usize| format!("data{}", "->a".repeat(n));
        assert_eq!(parse_field(&path(MAX_JSON_PATH)).unwrap().json.len(), 32);
        assert_eq!(
            limit_message(parse_field(&path(MAX_JSON_PATH + 1))),
            "JSON path exceeds 32 steps"
        );
        assert!(matches!(
            parse_query(&format!("{}=eq.1", path(MAX_JSON_PATH + 1)), false),
            Err(RestError::Limit(_))
        ));
        assert!(matches!(
            parse_order(&format!("{}.desc", path(MAX_JSON_PATH + 1))),
            Err(RestError::Limit(_))
        ));
        assert!(matches!(
            parse_select(&format!("x:{}::text", path(MAX_JSON_PATH + 1))),
            Err(RestError::Limit(_))
        ));
    }

    #[test]
    fn embedded_parameter_paths_at_and_past_the_limit() {
        let key = |n: usize| vec!["t"; n].join(".");
        assert!(parse_query(&format!("{}.id=eq.1", key(MAX_EMBED_DEPTH - 1)), false).is_ok());
        assert!(parse_query(
            &format!("{}.not.or=(id.eq.1)", key(MAX_EMBED_DEPTH - 1)),
            false
        )
        .is_ok());
        assert_eq!(
            limit_message(parse_query(
                &format!("{}.id=eq.1", key(MAX_EMBED_DEPTH + 1)),
                false
            )),
            "embedded parameter path exceeds 16 levels"
        );
    }

    #[test]
    fn query_strings_at_and_past_the_limit() {
        let q = |n: usize| format!("id=in.({})", "1".repeat(n - "id=in.()".len()));
        assert!(parse_query(&q(MAX_QUERY_BYTES), false).is_ok());
        match parse_query(&q(MAX_QUERY_BYTES + 1), false) {
            Err(e) => {
                assert_eq!(e.status(), http::StatusCode::URI_TOO_LONG);
                assert_eq!(e.into_http().body.code, "PGRST100");
            }
            Ok(_) => panic!("a query string past the limit parsed"),
        }
    }

    #[test]
    fn limit_errors_are_pgrst100_with_the_limit_in_the_message() {
        let e = RestError::Limit("select nesting exceeds 16 levels".into()).into_http();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
        assert_eq!(e.body.code, "PGRST100");
        assert_eq!(e.body.message, "select nesting exceeds 16 levels");
    }
}
