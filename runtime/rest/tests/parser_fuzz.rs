//! Property test of the query-string parser: random inputs built from PostgREST's syntax characters
//! never panic, and whatever is refused is refused as PGRST100/PGRST102 (so it never reaches
//! PostgreSQL). Deterministic (seeded) so a failure reproduces.

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
        RestError::Parse { .. } | RestError::InvalidBody(_) => true,
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
