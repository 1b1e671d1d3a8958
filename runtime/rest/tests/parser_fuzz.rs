//! Property test of the query-string parser: random inputs built from PostgREST's syntax characters
//! never panic, and whatever is refused is refused as PGRST100/PGRST102 (so it never reaches
//! PostgreSQL). Deep and wide inputs (thousands of nested embeds, logic trees, JSON steps, JSON
//! bodies) are refused at the limits of `rest::limits`, on a thread with a tokio worker's 2 MiB stack,
//! where unbounded recursion used to abort the process. Deterministic (seeded) so a failure reproduces.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rest::error::RestError;
use rest::parse;

const PIECES: &[&str] = &[
    "select",
    "order",
    "limit",
    "offset",
    "or",
    "and",
    "not",
    "columns",
    "on_conflict",
    "id",
    "name",
    "books",
    "authors",
    "data",
    "=",
    "&",
    ".",
    ",",
    "(",
    ")",
    "{",
    "}",
    "!",
    ":",
    "::",
    "->",
    "->>",
    "\"",
    "'",
    "\\",
    "*",
    "...",
    "eq",
    "neq",
    "in",
    "is",
    "null",
    "fts",
    "(english)",
    "(any)",
    "like",
    "cs",
    "desc",
    "nullsfirst",
    "inner",
    "count()",
    ".sum()",
    "%",
    "%2C",
    "%22",
    "%28",
    "+",
    " ",
    "0",
    "1",
    "-1",
    "ł",
    "\u{0}",
    "\n",
    "text",
    ";",
    "--",
];

fn random_string(rng: &mut StdRng, max: usize) -> String {
    let n = rng.gen_range(0..max);
    (0..n)
        .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
        .collect()
}

fn refused_before_sql(e: &RestError) -> bool {
    match e {
        RestError::Parse { .. } | RestError::Limit(_) | RestError::InvalidBody(_) => true,
        RestError::Api { code, .. } => code.starts_with("PGRST"),
        _ => false,
    }
}

#[test]
fn query_strings_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let mut ok = 0usize;
    for i in 0..60_000 {
        let q = random_string(&mut rng, 24);
        for rpc in [false, true] {
            match parse::parse_query(&q, rpc) {
                Ok(_) => ok += 1,
                Err(e) => assert!(refused_before_sql(&e), "case {i} {q:?}: {e:?}"),
            }
        }
        let v = random_string(&mut rng, 12);
        if let Err(e) = parse::parse_select(&v) {
            assert!(refused_before_sql(&e), "select {v:?}: {e:?}");
        }
        if let Err(e) = parse::parse_order(&v) {
            assert!(refused_before_sql(&e), "order {v:?}: {e:?}");
        }
        let _ = parse::parse_prefer(Some(&v));
        if let Err(e) = parse::parse_csv_payload(v.as_bytes()) {
            assert!(refused_before_sql(&e), "csv {v:?}: {e:?}");
        }
        if let Err(e) = parse::parse_json_payload(v.as_bytes(), true) {
            assert!(refused_before_sql(&e), "json {v:?}: {e:?}");
        }
    }
    // The generator is not degenerate: a good share of inputs parse.
    assert!(ok > 10_000, "only {ok} inputs parsed");
}

#[test]
fn well_formed_pieces_parse() {
    let mut rng = StdRng::seed_from_u64(7);
    let fields = ["id", "name", "data->a->>b", "\"odd name\""];
    let ops = [
        "eq.1",
        "not.neq.x",
        "in.(1,\"a,b\")",
        "is.null",
        "fts(english).cat",
        "like(any).{a*,b*}",
        "cs.{1,2}",
        "gt.2",
    ];
    for _ in 0..5_000 {
        let f = fields[rng.gen_range(0..fields.len())];
        let o = ops[rng.gen_range(0..ops.len())];
        let q = format!("{f}={o}&or=({f}.{o},and({f}.{o},{f}.{o}))&order={f}.desc&limit=3");
        let q = q.replace(' ', "%20");
        let (parsed, _) = parse::parse_query(&q, false).unwrap_or_else(|e| panic!("{q}: {e:?}"));
        assert_eq!(parsed.filters.len(), 2, "{q}");
        assert_eq!(parsed.limit_at(&[]), Some(3));
    }
}

/// Runs `f` on a thread with a tokio worker's default stack (2 MiB): a stack overflow aborts the
/// whole test binary, as it aborted the server.
fn on_worker_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// Openers that nest, each with what closes it.
const NESTERS: &[(&str, &str)] = &[
    ("or(", ")"),
    ("and(", ")"),
    ("not.or(", ")"),
    ("not.and(", ")"),
    ("t(", ")"),
    ("t(id,", ")"),
    ("...t(", ")"),
    ("a:t!inner(", ")"),
    ("(", ")"),
    ("{", "}"),
    ("\"", "\""),
];

/// A random nesting of `depth` openers around `core`, closed (or, sometimes, left unbalanced).
fn nested(rng: &mut StdRng, depth: usize, core: &str) -> String {
    let mut open = String::new();
    let mut close = Vec::new();
    for _ in 0..depth {
        let (o, c) = NESTERS[rng.gen_range(0..NESTERS.len())];
        open.push_str(o);
        close.push(c);
    }
    if rng.gen_bool(0.1) {
        close.pop();
    }
    close.reverse();
    open + core + &close.concat()
}

fn check(what: &str, input: &str, r: Result<impl std::fmt::Debug, RestError>) {
    if let Err(e) = r {
        assert!(refused_before_sql(&e), "{what} {:.200}: {e:?}", input);
    }
}

#[test]
fn deep_and_wide_inputs_are_refused_at_the_limits() {
    on_worker_stack(|| {
        let mut rng = StdRng::seed_from_u64(0x5eed_0002);
        for _ in 0..200 {
            let depth = rng.gen_range(0..3_000);
            let core = random_string(&mut rng, 6);
            let deep = nested(&mut rng, depth, &core);
            for key in [
                "or", "and", "not.or", "t.and", "select", "order", "id", "columns",
            ] {
                let q = format!("{key}={deep}");
                for rpc in [false, true] {
                    check("query", &q, parse::parse_query(&q, rpc));
                }
            }
            check("select", &deep, parse::parse_select(&deep));
            check("order", &deep, parse::parse_order(&deep));
            check("field", &deep, parse::parse_field(&deep));
            check("list", &deep, parse::parse_list(&deep));
            check(
                "filter",
                &deep,
                parse::parse_filter(rest::request::Field::plain("id"), &deep, false),
            );
            check(
                "filter in a tree",
                &deep,
                parse::parse_filter(rest::request::Field::plain("id"), &deep, true),
            );
            let _ = parse::parse_prefer(Some(&deep));
            check("csv", &deep, parse::parse_csv_payload(deep.as_bytes()));
            // Wide: many siblings, each possibly nested a little.
            let n = rng.gen_range(0..2_000);
            let items: Vec<String> = (0..n)
                .map(|_| {
                    let d = rng.gen_range(0..4);
                    nested(&mut rng, d, "id")
                })
                .collect();
            let wide = items.join(",");
            check("wide select", &wide, parse::parse_select(&wide));
            let q = format!("or=({wide})&select={wide}&order={wide}");
            check("wide query", &q, parse::parse_query(&q, false));
            let path = "->a".repeat(rng.gen_range(0..5_000));
            let q = format!("data{path}=eq.1&select=data{path}&order=data{path}.desc");
            check("json path", &q, parse::parse_query(&q, false));
        }
    });
}

#[test]
fn well_formed_deep_requests_are_refused_with_pgrst100_naming_the_limit() {
    use rest::limits::*;
    on_worker_stack(|| {
        let mut rng = StdRng::seed_from_u64(0x5eed_0003);
        for _ in 0..200 {
            let over = rng.gen_range(1..2_000);
            let d = MAX_LOGIC_DEPTH + over;
            let logic = format!("or=({}id.eq.1{})", "or(".repeat(d - 1), ")".repeat(d - 1));
            let d = MAX_EMBED_DEPTH + over;
            let select = format!("select=id,{}id{}", "t(id,".repeat(d - 1), ")".repeat(d - 1));
            let embeds = format!("select={}", vec!["t(id)"; MAX_EMBEDS + over].join(","));
            let json = format!("data{}=eq.1", "->>a".repeat(MAX_JSON_PATH + over));
            let inside = format!(
                "select=id,t(id)&t.or=({}id.eq.1{})",
                "and(".repeat(d),
                ")".repeat(d)
            );
            for q in [logic, select, embeds, json, inside] {
                match parse::parse_query(&q, false) {
                    Err(RestError::Limit(m)) => {
                        assert!(m.contains("exceeds") || m.contains("more than"), "{m}")
                    }
                    other => panic!("{:.100}: {other:?}", q),
                }
            }
        }
    });
}

#[test]
fn deep_json_bodies_are_refused_as_invalid_bodies() {
    on_worker_stack(|| {
        for depth in [127, 128, 129, 1_000, 100_000] {
            let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            for body in [arrays, format!("[{objects}]"), objects] {
                match parse::parse_json_payload(body.as_bytes(), true) {
                    Ok(_) => assert!(depth <= 128, "depth {depth} parsed"),
                    Err(e) => assert!(matches!(e, RestError::InvalidBody(_)), "{e:?}"),
                }
            }
        }
    });
}
