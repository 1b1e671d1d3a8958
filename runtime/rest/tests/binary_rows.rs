//! The binary read path against PostgreSQL's own JSON, byte for byte: random rows of every type the
//! path writes from binary (integers, floats of any bit pattern, numeric with NaN and infinities, text
//! with escapes and control characters, uuid, json with its whitespace, jsonb, dates and timestamps with
//! BC years, years past 9999 and infinities, arrays of them, nested, empty and with other bounds) and of
//! types it leaves to PostgreSQL's `to_json` (timestamptz, interval), read with several select lists.
//! Each read's binary statement is run and its rows written by `rest::exec::binary`, then compared with
//! the body of the same read rendered by PostgreSQL, under several `extra_float_digits`; the same reads
//! through the router must give that body too. The seed is printed; `BINARY_ROWS_SEED=n` replays one.

mod common;

use common::Env;
use http::StatusCode;
use postgres_types::ToSql;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rest::exec::Text;
use rest::sql::{Builder, Render};

/// Column name, SQL type, and a generator of one SQL literal of it.
type Gen = fn(&mut StdRng) -> String;

const COLUMNS: &[(&str, &str, Gen)] = &[
    ("b", "boolean", |r| pick(r, &["true", "false"]).into()),
    ("i2", "smallint", |r| {
        int(r, i16::MIN.into(), i16::MAX.into())
    }),
    ("i4", "integer", |r| {
        int(r, i32::MIN.into(), i32::MAX.into())
    }),
    ("i8", "bigint", |r| int(r, i64::MIN.into(), i64::MAX.into())),
    ("t", "text", |r| text(r, 12)),
    ("vc", "varchar(20)", |r| text(r, 20)),
    ("ch", "char(5)", |r| text(r, 5)),
    ("nm", "name", |r| text(r, 10)),
    ("u", "uuid", uuid),
    ("n", "numeric", numeric),
    ("n4", "numeric(12,4)", |r| {
        format!(
            "{}.{}",
            r.gen_range(-99_999_999i64..99_999_999),
            r.gen_range(0..100_000)
        )
    }),
    ("j", "json", |r| quote(&json(r, 0, true))),
    ("jb", "jsonb", |r| quote(&json(r, 0, true))),
    ("d", "date", date),
    ("ts", "timestamp", timestamp),
    ("ts3", "timestamp(3)", timestamp),
    ("tz", "timestamptz", |r| {
        format!("{}::timestamptz", timestamp(r))
    }),
    ("f8", "float8", float8),
    ("f4", "real", float4),
    ("f8a", "float8[]", |r| array(r, "float8", float8)),
    ("iv", "interval", |r| {
        format!(
            "'{} days {} microseconds'",
            r.gen_range(-99..99),
            r.gen_range(0..99_999_999)
        )
    }),
    ("ia", "integer[]", |r| {
        array(r, "integer", |r| int(r, i32::MIN.into(), i32::MAX.into()))
    }),
    ("ta", "text[]", |r| array(r, "text", |r| text(r, 6))),
    ("na", "numeric[]", |r| array(r, "numeric", numeric)),
    ("ba", "boolean[]", |r| {
        array(r, "boolean", |r| pick(r, &["true", "false"]).into())
    }),
    ("ua", "uuid[]", |r| array(r, "uuid", uuid)),
    ("da", "date[]", |r| array(r, "date", date)),
    ("tsa", "timestamp[]", |r| array(r, "timestamp", timestamp)),
    ("jba", "jsonb[]", |r| {
        array(r, "jsonb", |r| quote(&json(r, 1, false)))
    }),
    ("ja", "json[]", |r| {
        array(r, "json", |r| quote(&json(r, 1, false)))
    }),
    ("vca", "varchar(8)[]", |r| {
        array(r, "varchar(8)", |r| text(r, 8))
    }),
];

fn pick<'a>(r: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[r.gen_range(0..from.len())]
}

fn int(r: &mut StdRng, min: i128, max: i128) -> String {
    let v = match r.gen_range(0..6) {
        0 => min,
        1 => max,
        2 => 0,
        3 => r.gen_range(-1000..1000),
        _ => r.gen_range(min..=max),
    };
    format!("({v})")
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Up to `max` characters: quotes, backslashes, control characters, DEL, non-ASCII, emoji.
fn text(r: &mut StdRng, max: usize) -> String {
    const POOL: &[char] = &[
        'a', 'Z', '0', ' ', '"', '\\', '\'', '/', '\n', '\r', '\t', '\u{1}', '\u{8}', '\u{c}',
        '\u{1b}', '\u{1f}', '\u{7f}', 'é', 'ß', '日', '😀', '\u{2028}', '{', '}', ',',
    ];
    let len = r.gen_range(0..=max);
    quote(
        &(0..len)
            .map(|_| POOL[r.gen_range(0..POOL.len())])
            .collect::<String>(),
    )
}

/// Any double: a random bit pattern (subnormals, NaN payloads and infinities included), or a value
/// near a boundary of PostgreSQL's notation.
fn float8(r: &mut StdRng) -> String {
    let x = match r.gen_range(0..4) {
        0 => *pick_f(
            r,
            &[0.0, -0.0, 1e14, 1e15, 1e-4, 1e-5, 0.1, 123456.789, f64::MAX],
        ),
        1 => r.gen_range(-1e6..1e6),
        _ => f64::from_bits(r.gen()),
    };
    format!("'{}'::float8", literal(x, format!("{x:e}")))
}

/// Any float4, as [`float8`].
fn float4(r: &mut StdRng) -> String {
    let x = match r.gen_range(0..4) {
        0 => *pick_f(
            r,
            &[
                0.0,
                -0.0,
                1e5,
                1e6,
                1e-4,
                1e-5,
                1.1,
                f32::MAX,
                f32::MIN_POSITIVE,
            ],
        ),
        1 => r.gen_range(-1e4..1e4),
        _ => f32::from_bits(r.gen()),
    };
    format!("'{}'::real", literal(x.into(), format!("{x:e}")))
}

fn pick_f<'a, T>(r: &mut StdRng, from: &'a [T]) -> &'a T {
    &from[r.gen_range(0..from.len())]
}

/// A float's SQL text: `NaN`, `Infinity`, `-Infinity`, or its shortest exact digits.
fn literal(x: f64, shortest: String) -> String {
    match x {
        x if x.is_nan() => "NaN".into(),
        f64::INFINITY => "Infinity".into(),
        f64::NEG_INFINITY => "-Infinity".into(),
        _ => shortest,
    }
}

fn uuid(r: &mut StdRng) -> String {
    let b: [u8; 16] = r.gen();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("'{hex}'::uuid")
}

fn numeric(r: &mut StdRng) -> String {
    match r.gen_range(0..10) {
        0 => pick(
            r,
            &[
                "'NaN'",
                "'Infinity'",
                "'-Infinity'",
                "0",
                "0.000",
                "-0.5",
                "1e-20",
                "-1e30",
            ],
        )
        .into(),
        _ => {
            let digits = |r: &mut StdRng, n: usize| -> String {
                (0..n)
                    .map(|_| char::from(b'0' + r.gen_range(0..10)))
                    .collect()
            };
            let (i, f) = (r.gen_range(0..40), r.gen_range(0..30));
            let sign = if r.gen() { "-" } else { "" };
            let int = digits(r, i);
            let frac = digits(r, f);
            let int = if int.is_empty() { "0".into() } else { int };
            if frac.is_empty() {
                format!("{sign}{int}::numeric")
            } else {
                format!("{sign}{int}.{frac}")
            }
        }
    }
}

/// JSON text with PostgreSQL's `json` kept verbatim in mind: random whitespace, escapes, duplicate
/// keys, number forms jsonb normalises.
fn json(r: &mut StdRng, depth: usize, pad: bool) -> String {
    let ws = |r: &mut StdRng| -> &'static str {
        if pad {
            pick(r, &["", " ", "\n", "  \t"])
        } else {
            ""
        }
    };
    let v = match r.gen_range(0..if depth < 3 { 9 } else { 6 }) {
        0 => "null".to_string(),
        1 => pick(r, &["true", "false"]).to_string(),
        2 => pick(
            r,
            &[
                "0",
                "-0",
                "1.50",
                "1e10",
                "1E+2",
                "0.000",
                "-12.5e-3",
                "123456789012345678901234567890",
            ],
        )
        .to_string(),
        3 | 4 => pick(
            r,
            &[
                "\"\"",
                "\"a\\nb\"",
                "\"\\u00e9\\\"\"",
                "\"é日😀\"",
                "\"\\\\/\\t\"",
                "\"\\u0001\"",
            ],
        )
        .to_string(),
        5 => "\"k\"".to_string(),
        6 | 7 => {
            let n = r.gen_range(0..4);
            let items: Vec<String> = (0..n)
                .map(|_| {
                    let key = pick(r, &["\"a\"", "\"b\"", "\"ab\"", "\"\"", "\"é\"", "\"a\""]);
                    format!("{key}{}:{}{}", ws(r), ws(r), json(r, depth + 1, pad))
                })
                .collect();
            format!("{{{}{}}}", ws(r), items.join(","))
        }
        _ => {
            let n = r.gen_range(0..4);
            let items: Vec<String> = (0..n).map(|_| json(r, depth + 1, pad)).collect();
            format!("[{}{}]", items.join(&format!(",{}", ws(r))), ws(r))
        }
    };
    format!("{}{v}{}", ws(r), ws(r))
}

/// Julian day 0 (4713 BC) up to the last date; now and then infinity.
fn date(r: &mut StdRng) -> String {
    match r.gen_range(0..12) {
        0 => "'infinity'::date".into(),
        1 => "'-infinity'::date".into(),
        2 | 3 => format!(
            "('2000-01-01'::date + {})",
            r.gen_range(-2_451_545..2_147_483_494 - 2_451_545)
        ),
        4 => format!(
            "('2000-01-01'::date + {})",
            r.gen_range(-2_451_545..-730_000)
        ),
        _ => format!("('2000-01-01'::date + {})", r.gen_range(-40_000..40_000)),
    }
}

/// 4713 BC to 294276 AD, microseconds included; now and then infinity.
fn timestamp(r: &mut StdRng) -> String {
    let days = match r.gen_range(0..12) {
        0 => return "'infinity'::timestamp".into(),
        1 => return "'-infinity'::timestamp".into(),
        2 | 3 => r.gen_range(-2_451_545..106_000_000),
        4 => r.gen_range(-2_451_545..-730_000),
        5 => r.gen_range(2_950_000..106_000_000),
        _ => r.gen_range(-40_000..40_000),
    };
    let micros = match r.gen_range(0..3) {
        0 => 0,
        1 => r.gen_range(0..86_400) * 1_000_000,
        _ => r.gen_range(0..86_400_000_000i64),
    };
    format!("('2000-01-01'::timestamp + {days} * interval '1 day' + {micros} * interval '1 microsecond')")
}

/// An array literal: empty, one-dimensional with nulls, two-dimensional, or with a lower bound other
/// than 1.
fn array(r: &mut StdRng, ty: &str, elem: fn(&mut StdRng) -> String) -> String {
    let el = |r: &mut StdRng| {
        if r.gen_range(0..6) == 0 {
            "NULL".to_string()
        } else {
            elem(r)
        }
    };
    match r.gen_range(0..6) {
        0 => format!("'{{}}'::{ty}[]"),
        1 => {
            let (a, b) = (r.gen_range(1..3), r.gen_range(1..3));
            let rows: Vec<String> = (0..a)
                .map(|_| format!("[{}]", (0..b).map(|_| el(r)).collect::<Vec<_>>().join(",")))
                .collect();
            format!("ARRAY[{}]::{ty}[]", rows.join(","))
        }
        2 => format!(
            "array_cat('[5:5]={{NULL}}'::{ty}[], ARRAY[{}]::{ty}[])",
            el(r)
        ),
        _ => {
            let n = r.gen_range(1..5);
            format!(
                "ARRAY[{}]::{ty}[]",
                (0..n).map(|_| el(r)).collect::<Vec<_>>().join(",")
            )
        }
    }
}

/// The body of `query` on table `bin` both ways, directly on the database (in its session's
/// `extra_float_digits`).
async fn both(db: &tokio_postgres::Client, query: &str) -> (String, String) {
    let row = db
        .query_one(rest::schema::LOAD_SQL, &[&vec!["public".to_string()]])
        .await
        .unwrap();
    let mut cache = rest::schema::SchemaCache::from_json(&row.get::<_, String>(0)).unwrap();
    cache.schemas = vec!["public".into()];
    let (q, _) = rest::parse::parse_query(query, false).unwrap();
    let table = cache.table("public", "bin").unwrap();
    let limit = q.limit_at(&[]);
    let offset = q.offset_at(&[]);
    let stmt = Builder::new(&cache, &q)
        .read(table, Render::Json, None, limit, offset)
        .unwrap();
    let texts: Vec<Text> = stmt.params.iter().map(|p| Text(p)).collect();
    let params: Vec<&(dyn ToSql + Sync)> = texts.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let pg: String = db.query_one(&stmt.sql, &params).await.unwrap().get(0);
    let binary = stmt.binary.expect("a plain read has a binary form");
    let prepared = db.prepare(&binary.sql).await.unwrap();
    let n = prepared.columns().len() - 1;
    assert!(
        rest::exec::binary::encodable(&prepared.columns()[..n], binary.floats),
        "{query}"
    );
    let rows = db.query(&prepared, &params).await.unwrap();
    let trailer: Vec<Option<String>> = rows.last().unwrap().get(n);
    let float_digits = match trailer.get(3) {
        Some(Some(digits)) => digits.parse().unwrap(),
        _ => {
            assert!(
                !binary.floats,
                "{query}: no extra_float_digits in {trailer:?}"
            );
            1
        }
    };
    let ours = rest::exec::binary::body(&rows[..rows.len() - 1], n, float_digits).unwrap();
    (pg, ours)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_rows_are_postgresql_json_byte_for_byte() {
    let seed = std::env::var("BINARY_ROWS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("BINARY_ROWS_SEED={seed}");
    let mut r = StdRng::seed_from_u64(seed);
    let ddl: Vec<String> = COLUMNS.iter().map(|(n, t, _)| format!("{n} {t}")).collect();
    let fixture = format!("CREATE TABLE bin (id int PRIMARY KEY, {});", ddl.join(", "));
    let env = Env::start(&fixture).await;
    let token = env.token("service_role", None);
    let queries = [
        "select=*&order=id",
        "select=id,t,n,d,ts,ia,jb,ua&order=id.desc&limit=7&offset=2",
        "select=x:i8,id,tz,f8,f4,f8a,iv,b,ta,ja,vca,nm&order=id",
        "select=id,j->a,jb->>b,first:jb->0,n4,i2,i4,ch,vc,u,ba,da,tsa,jba,na&order=id",
        "select=*,id&order=id&limit=3",
    ];
    let (mut compared, mut rows) = (0, 0);
    for round in 0..8 {
        let mut sql = String::from("TRUNCATE bin;");
        for id in 0..r.gen_range(0..30) {
            rows += 1;
            let values: Vec<String> = COLUMNS
                .iter()
                .map(|(_, ty, gen)| {
                    if r.gen_range(0..8) == 0 {
                        format!("NULL::{ty}")
                    } else {
                        gen(&mut r)
                    }
                })
                .collect();
            sql.push_str(&format!(
                "INSERT INTO bin VALUES ({id}, {});",
                values.join(", ")
            ));
        }
        env.db
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{sql}"));
        for query in queries {
            for digits in [3, 0, -4, -15] {
                env.db
                    .batch_execute(&format!("SET extra_float_digits = {digits}"))
                    .await
                    .unwrap();
                let (pg, ours) = both(&env.db, query).await;
                assert_eq!(ours, pg, "seed {seed}, round {round}, {query}, {digits}");
            }
            env.db
                .batch_execute("RESET extra_float_digits")
                .await
                .unwrap();
            let (pg, ours) = both(&env.db, query).await;
            assert_eq!(ours, pg, "seed {seed}, round {round}, {query}");
            let reply = env
                .call("GET", &format!("/bin?{query}"), &[], None, &token)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            assert_eq!(
                reply.text, pg,
                "through the router: seed {seed}, round {round}, {query}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 40);
    assert!(rows > 0);
}

/// The binary path keeps the read-back: what a function called by the read sets for the response
/// (`response.headers`, `response.status`) reaches it, and a claims change it makes for the session
/// does not reach the next request on the connection (which then sets its GUCs again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reads_keep_the_guc_read_back() {
    let env = Env::start(
        "CREATE TABLE one (id int PRIMARY KEY); INSERT INTO one VALUES (1);
         CREATE FUNCTION sneak() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
         DECLARE seen text := current_setting('request.jwt.claims', true)::json->>'sub';
         BEGIN
           PERFORM set_config('request.jwt.claims', '{\"sub\": \"mallory\"}', false);
           PERFORM set_config('response.headers', '[{\"X-From-View\": \"yes\"}]', true);
           PERFORM set_config('response.status', '203', true);
           RETURN seen;
         END $$;
         CREATE VIEW sneaky AS SELECT id, sneak() AS who FROM one;
         GRANT SELECT ON sneaky TO authenticated;",
    )
    .await;
    let alice = env.token("authenticated", Some(serde_json::json!({"sub": "alice"})));
    // Sequential requests reuse the one pooled connection.
    for _ in 0..3 {
        let r = env
            .call("GET", "/sneaky?select=id,who", &[], None, &alice)
            .await;
        assert_eq!(
            r.status,
            StatusCode::NON_AUTHORITATIVE_INFORMATION,
            "{}",
            r.text
        );
        assert_eq!(r.header("x-from-view"), Some("yes"));
        assert_eq!(
            r.text, r#"[{"id":1,"who":"alice"}]"#,
            "a function's claims reached the next request"
        );
    }
}
