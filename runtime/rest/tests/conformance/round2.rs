//! Round two of the conformance cases (PostgREST 13): counts on writes and on functions, upsert
//! statuses, `missing=default` with identity columns, every way of naming an embed, self-references,
//! the aggregate-free `count` of an embed and duplicate embed keys. They run after every other case.

use super::{case, get, post, Case};
use serde_json::json;

pub fn all() -> Vec<Case> {
    let mut c = Vec::new();
    c.extend(write_counts());
    c.extend(rpc_counts());
    c.extend(upserts());
    c.extend(missing_default());
    c.extend(embedding());
    c
}

fn write_counts() -> Vec<Case> {
    vec![
        post("/kv", r#"{"k": "cnt1", "v": "1"}"#)
            .h("prefer", "count=exact")
            .status(201)
            .header("content-range", "*/1")
            .header("preference-applied", "count=exact")
            .named("count on insert"),
        post(
            "/kv?columns=k,v",
            r#"[{"k": "cnt2"}, {"k": "cnt3", "v": "x"}]"#,
        )
        .h("prefer", "return=representation, count=exact")
        .status(201)
        .header("content-range", "*/2")
        .named("count on insert with columns"),
        post(
            "/kv",
            r#"[{"k": "cnt1", "v": "2"}, {"k": "cnt4", "v": "4"}]"#,
        )
        .h("prefer", "resolution=merge-duplicates, count=exact")
        .status(201)
        .header("content-range", "*/2")
        .header(
            "preference-applied",
            "resolution=merge-duplicates, count=exact",
        )
        .named("count on upsert"),
        case("PATCH", "/kv?k=in.(cnt1,cnt2,cnt3,cnt4)")
            .body(r#"{"v": "p"}"#)
            .h("prefer", "count=exact")
            .status(204)
            .header("content-range", "0-3/4")
            .named("count on update"),
        case("PATCH", "/kv?select=k&k=in.(cnt1,cnt2)&order=k")
            .body(r#"{"v": "q"}"#)
            .h("prefer", "count=exact, return=representation")
            .json(json!([{"k": "cnt1"}, {"k": "cnt2"}]))
            .header("content-range", "0-1/2"),
        case("PATCH", "/kv?k=eq.none")
            .body(r#"{"v": "q"}"#)
            .h("prefer", "count=exact")
            .status(204)
            .header("content-range", "*/0"),
        case("DELETE", "/kv?k=in.(cnt1,cnt2,cnt3,cnt4)")
            .h("prefer", "count=exact")
            .status(204)
            .header("content-range", "*/4")
            .named("count on delete"),
        case("DELETE", "/kv?k=eq.none")
            .status(204)
            .header("content-range", "*/*"),
        case("PUT", "/kv?k=eq.cnt5")
            .body(r#"{"k": "cnt5", "v": "5"}"#)
            .h("prefer", "count=exact")
            .status(204)
            .no_header("content-range")
            .named("a single-row upsert has no range"),
    ]
}

fn rpc_counts() -> Vec<Case> {
    vec![
        get("/rpc/add_them?a=1&b=2")
            .h("prefer", "count=exact")
            .text("3")
            .header("content-range", "0-0/1")
            .named("count on a scalar function by GET"),
        post("/rpc/add_them", r#"{"a": 1, "b": 2}"#)
            .h("prefer", "count=exact")
            .text("3")
            .header("content-range", "0-0/1"),
        case("HEAD", "/rpc/add_them?a=1&b=2")
            .h("prefer", "count=exact")
            .text("")
            .header("content-range", "0-0/1"),
        get("/rpc/add_them?a=1&b=2")
            .text("3")
            .header("content-range", "0-0/*"),
        get("/rpc/genre_list?limit=2")
            .h("prefer", "count=exact")
            .status(206)
            .json(json!(["classic", "historical"]))
            .header("content-range", "0-1/5"),
        get("/rpc/books_by?author=2&select=id")
            .h("prefer", "count=planned")
            .header("content-range", "0-1/*")
            .named("no planned count for functions"),
        post("/rpc/add_note", r#"{"body": "counted once"}"#)
            .h("prefer", "count=exact")
            .ptr("/body", json!("counted once"))
            .header("content-range", "0-0/1"),
        get("/notes?select=body&body=eq.counted%20once")
            .json(json!([{"body": "counted once"}]))
            .named("counting calls the function once"),
    ]
}

fn upserts() -> Vec<Case> {
    let merge = "resolution=merge-duplicates, return=representation";
    vec![
        post("/kv", r#"[{"k": "up1", "v": "1"}, {"k": "up2", "v": "2"}]"#)
            .h("prefer", merge)
            .status(201)
            .named("upsert inserting only"),
        post(
            "/kv",
            r#"[{"k": "up1", "v": "1b"}, {"k": "up3", "v": "3"}]"#,
        )
        .h("prefer", merge)
        .status(201)
        .json(json!([{"k": "up1", "v": "1b"}, {"k": "up3", "v": "3"}]))
        .named("upsert inserting and updating"),
        post(
            "/kv",
            r#"[{"k": "up1", "v": "1c"}, {"k": "up2", "v": "2c"}]"#,
        )
        .h("prefer", merge)
        .status(200)
        .named("upsert updating only"),
        post("/kv", r#"[{"k": "up1", "v": "x"}]"#)
            .h(
                "prefer",
                "resolution=ignore-duplicates, return=representation",
            )
            .status(201)
            .json(json!([]))
            .named("ignore-duplicates is always 201"),
        case("PUT", "/kv?k=eq.up9")
            .body(r#"{"k": "up9", "v": "9"}"#)
            .h("prefer", "return=representation")
            .status(201)
            .json(json!([{"k": "up9", "v": "9"}]))
            .named("PUT inserting"),
        case("PUT", "/kv?k=eq.up9")
            .body(r#"{"k": "up9", "v": "9b"}"#)
            .h("prefer", "return=representation")
            .status(200)
            .named("PUT updating"),
        post("/notes", "{}")
            .h("prefer", "resolution=merge-duplicates")
            .status(201)
            .named("an upsert of defaults inserts"),
        post("/kv?columns=k,v", "[]")
            .h("prefer", "resolution=merge-duplicates")
            .status(200)
            .named("an upsert of nothing is 200"),
        post("/logs", r#"{"msg": "no key"}"#)
            .h("prefer", "resolution=merge-duplicates")
            .status(201)
            .no_header("preference-applied")
            .named("no conflict target: a plain insert"),
    ]
}

fn missing_default() -> Vec<Case> {
    let prefer = "missing=default, return=representation";
    vec![
        post(
            "/items?columns=id,name",
            r#"[{"name": "a"}, {"id": 100, "name": "b"}]"#,
        )
        .h("prefer", prefer)
        .status(201)
        .json(json!([{"id": 1, "name": "a", "qty": 1}, {"id": 100, "name": "b", "qty": 1}]))
        .header(
            "preference-applied",
            "missing=default, return=representation",
        )
        .named("missing=default on an identity column"),
        case("PATCH", "/items?id=eq.100")
            .body(r#"{"qty": 9}"#)
            .status(204),
        post(
            "/items?columns=id,name,qty&on_conflict=id",
            r#"[{"id": 100, "name": "b2"}, {"name": "c", "qty": 4}]"#,
        )
        .h(
            "prefer",
            "resolution=merge-duplicates, missing=default, return=representation",
        )
        .status(201)
        .json(json!([{"id": 100, "name": "b2", "qty": 1}, {"id": 2, "name": "c", "qty": 4}]))
        .named("missing=default on an upsert with different keys"),
        case("PATCH", "/items?id=eq.2&columns=name,qty")
            .body(r#"{"name": "c2"}"#)
            .h("prefer", prefer)
            .json(json!([{"id": 2, "name": "c2", "qty": 1}]))
            .named("missing=default on an update with columns"),
        post(
            "/items?columns=id,name",
            r#"[{"name": "d"}, {"id": 101, "name": "e"}]"#,
        )
        .h("prefer", "return=representation")
        .status(400)
        .code("23502")
        .named("missing keys are null without missing=default"),
    ]
}

fn embedding() -> Vec<Case> {
    vec![
        get("/authors?select=id,books_author_id_fkey(id)&id=eq.2&books_author_id_fkey.order=id")
            .json(json!([{"id": 2, "books_author_id_fkey": [{"id": 3}, {"id": 4}]}]))
            .named("one-to-many by constraint name"),
        get("/authors?select=id,written:books_author_id_fkey(id)&id=eq.3")
            .json(json!([{"id": 3, "written": [{"id": 5}]}]))
            .named("aliased embed by constraint name"),
        get("/books?select=id,authors!id(name)&id=eq.3")
            .json(json!([{"id": 3, "authors": {"name": "Stanisław Lem"}}]))
            .named("hint by the referenced column"),
        get("/books?select=id,authors!author_id!left(name)&id=eq.6")
            .json(json!([{"id": 6, "authors": null}])),
        get("/books?select=id,authors!books_author_id_fkey!inner(name)&order=id&limit=1")
            .json(json!([{"id": 1, "authors": {"name": "Ursula K. Le Guin"}}])),
        get("/books?select=id,tags!book_tags_tag_id_fkey(name)")
            .status(400)
            .code("PGRST200")
            .named("many-to-many takes the junction as hint, not a constraint"),
        get("/authors?select=id,bookz(id)")
            .status(400)
            .ptr("/hint", json!("Perhaps you meant 'books' instead of 'bookz'."))
            .named("PGRST200 suggests a close relation"),
        get("/employees?select=id,employee(id)")
            .status(400)
            .ptr("/hint", json!("Perhaps you meant 'employees' instead of 'employee'."))
            .named("PGRST200 suggests the self-reference"),
        get("/kv?select=k,authors(id)")
            .status(400)
            .code("PGRST200")
            .ptr("/hint", json!(null))
            .named("PGRST200 without a close relation"),
        get("/book_titles?select=id,writer:books_author_id_fkey(name)&id=eq.5")
            .json(json!([{"id": 5, "writer": {"name": "Octavia E. Butler"}}]))
            .named("a view embeds by the constraint of its table"),
        get("/us_authors?select=name,books!books_author_id_fkey(id)&id=eq.3")
            .json(json!([{"name": "Octavia E. Butler", "books": [{"id": 5}]}]))
            .named("hint on a view"),
        get("/employees?select=name,reports:employees!manager_id(name)&id=eq.2")
            .json(json!([{"name": "Bob", "reports": [{"name": "Di"}]}]))
            .named("self-reference: a hint picks the children by their key column"),
        get("/employees?select=name,manager_id(name,manager_id(name))&id=eq.4")
            .json(json!([{"name": "Di", "manager_id": {"name": "Bob", "manager_id": {"name": "Ada"}}}]))
            .named("self-reference: parents of parents"),
        get("/routes?select=id,addresses(line)")
            .status(300)
            .json(json!({
                "code": "PGRST201",
                "message": "Could not embed because more than one relationship was found for 'routes' and 'addresses'",
                "details": [
                    {"cardinality": "many-to-one", "embedding": "routes with addresses", "relationship": "a_origin using routes(a_from) and addresses(id)"},
                    {"cardinality": "many-to-one", "embedding": "routes with addresses", "relationship": "m_via using routes(m_via) and addresses(id)"},
                    {"cardinality": "many-to-one", "embedding": "routes with addresses", "relationship": "z_dest using routes(z_to) and addresses(id)"}
                ],
                "hint": "Try changing 'addresses' to one of the following: 'addresses!a_origin', 'addresses!m_via', 'addresses!z_dest'. Find the desired relationship in the 'details' key."
            }))
            .named("ambiguity listed in constraint order"),
        get("/addresses?select=id,routes(id)&id=eq.1")
            .status(300)
            .ptr("/details/0/cardinality", json!("one-to-many"))
            .ptr("/details/0/relationship", json!("a_origin using addresses(id) and routes(a_from)")),
        get("/books?select=id,book_tags(tag_id)&id=eq.1&book_tags.order=tag_id")
            .json(json!([{"id": 1, "book_tags": [{"tag_id": 1}, {"tag_id": 2}]}])),
        get("/orders?select=addresses!billing(line),addresses!shipping(line)")
            .status(400)
            .json(json!({"code": "42712", "message": "table name \"orders_addresses_1\" specified more than once", "details": null, "hint": null}))
            .named("two embeds under one key"),
        get("/orders?select=billing:addresses!billing(line),billing:addresses!shipping(line)")
            .status(400)
            .code("42712"),
        get("/books?select=name:title,...authors(name)&id=eq.3")
            .text(r#"[{"name":"Stanisław Lem"}]"#)
            .named("a key selected twice appears once, the last"),
        get("/authors?select=id,*&id=eq.4")
            .text(r#"[{"id":4,"name":"Nobody","country":null,"bio":null,"born":null}]"#),
        get("/books?select=author_id,author_id(name)&id=eq.3")
            .text(r#"[{"author_id":{"name":"Stanisław Lem"}}]"#),
        get("/authors?select=name,name:country&id=eq.2")
            .text(r#"[{"name":"PL"}]"#),
        get("/authors?select=name,name:country&id=eq.2")
            .h("accept", "text/csv")
            .text("name\nPL"),
        get("/authors?select=name,books(count)&id=eq.2")
            .json(json!([{"name": "Stanisław Lem", "books": [{"count": 2}]}]))
            .named("count of an embed without aggregates enabled"),
        get("/authors?select=id")
            .h("accept", "application/vnd.pgrst.plan+json")
            .status(406)
            .code("PGRST107")
            .named("plans are off unless the project enables them"),
        get("/authors?select=id&id=eq.1")
            .h("accept", "application/vnd.pgrst.plan, application/json")
            .json(json!([{"id": 1}])),
        get("/authors?select=count")
            .json(json!([{"count": 4}]))
            .named("count as a column"),
    ]
}
