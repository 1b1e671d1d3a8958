//! One request must never take the platform down: deep REST requests sent with a publishable key over
//! a real socket to the gateway (REST in-process, on tokio's multi-threaded runtime whose workers have
//! the default 2 MiB stack, in a debug build) are refused with 400 PGRST100, and the server answers the
//! next request. Before the limits of `rest::limits`, each of these aborted the whole process with
//! "stack overflow". Requests exactly at the limits are answered normally through every stage (parse,
//! SQL, PostgreSQL, JSON), which is what makes the limits safe.

mod common;

use common::*;
use http::{Method, StatusCode};
use rest::limits::{MAX_EMBED_DEPTH, MAX_JSON_PATH, MAX_LOGIC_DEPTH};
use serde_json::{json, Value};

const SCHEMA: &str = "create table a (id int primary key, data jsonb);
create table b (id int primary key, a_id int references a(id));
insert into a values (1, '{\"k\": {\"k\": 1}}');
insert into b values (1, 1);";

/// `/rest/v1/{path_and_query}` with the publishable key, the query percent-encoded where `http::Uri`
/// would refuse it (as clients send it).
async fn get(pf: &Platform, p: &Project, path_and_query: &str) -> (StatusCode, Value) {
    let encoded: String = path_and_query
        .chars()
        .map(|c| match c {
            '"' | '>' | '<' | ' ' | '{' | '}' => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect();
    pf.rest(p, Method::GET, &encoded, &p.anon, &[], None).await
}

fn assert_limit(what: &str, (s, v): (StatusCode, Value), message: &str) {
    assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {v}");
    assert_eq!(v["code"], "PGRST100", "{what}: {v}");
    assert_eq!(v["message"], message, "{what}: {v}");
}

/// `id,b(id,a(id,b(…)))` with `levels` select lists in all, alternating the two tables.
fn alternating_select(levels: usize) -> String {
    let mut s = String::from("id");
    for level in (1..levels).rev() {
        let t = if level % 2 == 1 { "b" } else { "a" };
        s = format!("id,{t}({s})");
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_requests_are_refused_and_the_server_survives() {
    let pf = Platform::start().await;
    let p = pf.create("deep").await;
    let (s, v) = pf.sql(&p, SCHEMA).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The two requests of the report: about 2 KB each.
    let or = format!("a?or=({}id.eq.1{})", "or(".repeat(600), ")".repeat(600));
    assert_limit(
        "deep or",
        get(&pf, &p, &or).await,
        "logic tree nesting exceeds 16 levels",
    );
    let select = format!("a?select=id,{}id{}", "t(id,".repeat(150), ")".repeat(150));
    assert_limit(
        "deep select",
        get(&pf, &p, &select).await,
        "select nesting exceeds 16 levels",
    );
    let path = format!("a?data{}=eq.1", "->k".repeat(2_000));
    assert_limit(
        "deep JSON path",
        get(&pf, &p, &path).await,
        "JSON path exceeds 32 steps",
    );
    let inside = format!(
        "a?select=id,b(id)&b.or=({}id.eq.1{})",
        "and(not.or(".repeat(300),
        "))".repeat(300)
    );
    assert_limit(
        "deep logic tree in an embed filter",
        get(&pf, &p, &inside).await,
        "logic tree nesting exceeds 16 levels",
    );
    // A deep JSON body stops at serde_json's recursion limit.
    let body: Value = serde_json::from_str(&format!("{}1{}", "[".repeat(100), "]".repeat(100)))
        .expect("100 levels parse");
    let (s, v) = pf
        .rest(
            &p,
            Method::POST,
            "a",
            &p.anon,
            &[],
            Some(json!({"id": 2, "data": body})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let deep = format!(
        "{{\"id\": 3, \"data\": {}1{}}}",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let req = http::Request::post(format!("{}/rest/v1/a", p.api_url))
        .header("apikey", &p.anon)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(deep)))
        .unwrap();
    let (s, bytes) = pf.http.send(req).await.unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("PGRST102")),
        "{v}"
    );

    // Still serving.
    let (s, v) = get(&pf, &p, "a?select=id&order=id").await;
    assert_eq!((s, v), (StatusCode::OK, json!([{"id": 1}, {"id": 2}])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_at_the_limits_are_served() {
    let pf = Platform::start().await;
    let p = pf.create("atlimits").await;
    let (s, v) = pf.sql(&p, SCHEMA).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let select = format!("a?select={}", alternating_select(MAX_EMBED_DEPTH));
    let (s, v) = get(&pf, &p, &select).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut level = &v[0];
    for depth in 1..MAX_EMBED_DEPTH {
        let key = if depth % 2 == 1 { "b" } else { "a" };
        level = match &level[key] {
            Value::Array(rows) => &rows[0],
            one => one,
        };
        assert_eq!(level["id"], 1, "level {depth}: {v}");
    }
    assert_limit(
        "one level more",
        get(
            &pf,
            &p,
            &format!("a?select={}", alternating_select(MAX_EMBED_DEPTH + 1)),
        )
        .await,
        &format!("select nesting exceeds {MAX_EMBED_DEPTH} levels"),
    );

    let d = MAX_LOGIC_DEPTH - 1;
    let or = format!(
        "a?select=id&or=({}id.eq.1{})",
        "not.and(or(".repeat(d / 2),
        "))".repeat(d / 2)
    );
    let (s, v) = get(&pf, &p, &or).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let inside = format!(
        "a?select=id,b(id)&b.or=({}id.eq.1{})",
        "or(".repeat(MAX_LOGIC_DEPTH - 1),
        ")".repeat(MAX_LOGIC_DEPTH - 1)
    );
    let (s, v) = get(&pf, &p, &inside).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!([{"id": 1, "b": [{"id": 1}]}]))
    );

    let path = format!("a?select=id&data{}=is.null", "->k".repeat(MAX_JSON_PATH));
    let (s, v) = get(&pf, &p, &path).await;
    assert_eq!((s, v), (StatusCode::OK, json!([{"id": 1}])));
}
