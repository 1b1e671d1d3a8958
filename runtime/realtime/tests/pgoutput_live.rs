//! pgoutput as a real PostgreSQL 15 sends it through the SQL interface the design uses (a temporary
//! slot polled with `pg_logical_slot_get_binary_changes`, filtered by the `supabase_realtime`
//! publication), decoded into the changes clients receive. Also checks the catalog query that gives
//! [`TableMeta`].

use pgcluster::TestCluster;
use realtime::payload::{ChangeKind, MAX_RECORD_BYTES};
use realtime::pgoutput::{Decoder, DecoderLimits, TableMeta};
use serde_json::{json, Value};
use tokio_postgres::{Client, NoTls};

async fn connect(tc: &TestCluster) -> Client {
    let (client, conn) = tokio_postgres::connect(&tc.url("postgres"), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// A table's columns, primary key and RLS flag, by relation oid (the capture task's query).
async fn table_meta(client: &Client, oid: u32) -> TableMeta {
    realtime::cdc::table_meta(client, oid)
        .await
        .expect("table metadata")
        .0
}

#[tokio::test]
async fn real_pgoutput_stream_decodes_into_supabase_changes() {
    let tc = TestCluster::start();
    let db = connect(&tc).await;
    db.batch_execute(
        "CREATE TABLE public.todos (id bigserial PRIMARY KEY, title text, done bool DEFAULT false,
                                    doc jsonb, tags text[], big text, price numeric);
         ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
         CREATE TABLE public.notes (a int, b text, body text, PRIMARY KEY (a, b));
         ALTER TABLE public.notes REPLICA IDENTITY FULL;
         CREATE TABLE public.secret (id int PRIMARY KEY);
         CREATE PUBLICATION supabase_realtime FOR TABLE public.todos, public.notes;",
    )
    .await
    .expect("schema");
    // Its own statement: a slot cannot be created in a transaction that has written.
    db.execute(
        "SELECT pg_create_logical_replication_slot('supactl_rt_test', 'pgoutput', true)",
        &[],
    )
    .await
    .expect("temporary slot");
    // One transaction each (a multi-statement simple query would be one implicit transaction).
    for sql in [
        r#"INSERT INTO public.todos (title, doc, tags, price) VALUES ('a', '{"k": [1, 2]}', '{x,y}', 2.50)"#,
        "BEGIN; INSERT INTO public.todos (title) VALUES ('rolled back'); ROLLBACK",
        "INSERT INTO public.secret VALUES (1)",
        "UPDATE public.todos SET big = (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i) WHERE id = 1",
        "UPDATE public.todos SET title = 'b', done = true WHERE id = 1",
        "INSERT INTO public.notes VALUES (1, 'x', NULL)",
        "DELETE FROM public.notes",
        "DELETE FROM public.todos",
    ] {
        db.batch_execute(sql).await.expect(sql);
    }

    let rows = db
        .query(
            "SELECT data FROM pg_logical_slot_get_binary_changes('supactl_rt_test', NULL, NULL,
                 'proto_version', '1', 'publication_names', 'supabase_realtime')",
            &[],
        )
        .await
        .expect("get changes");
    let mut decoder = Decoder::new(DecoderLimits::default());
    let mut changes = Vec::new();
    for row in &rows {
        let data: Vec<u8> = row.get(0);
        if let Some(committed) = decoder.feed(&data).expect("decode") {
            assert_eq!(committed.dropped, 0);
            for raw in committed.changes {
                let meta = table_meta(&db, raw.relation.oid).await;
                changes.push(raw.to_change(&meta));
            }
        }
    }
    let summary: Vec<(&str, ChangeKind)> =
        changes.iter().map(|c| (c.table.as_str(), c.kind)).collect();
    // Nothing of the rolled-back transaction nor of the unpublished table.
    assert_eq!(
        summary,
        [
            ("todos", ChangeKind::Insert),
            ("todos", ChangeKind::Update),
            ("todos", ChangeKind::Update),
            ("notes", ChangeKind::Insert),
            ("notes", ChangeKind::Delete),
            ("todos", ChangeKind::Delete),
        ]
    );

    let insert = &changes[0];
    assert_eq!(insert.schema, "public");
    assert!(insert.rls_enabled);
    assert_eq!(insert.primary_key, ["id"]);
    assert_eq!(
        Value::Object(insert.record.clone()),
        json!({"id": 1, "title": "a", "done": false, "doc": {"k": [1, 2]}, "tags": "{x,y}", "big": null, "price": 2.5})
    );
    let year: i32 = insert.commit_timestamp[..4].parse().unwrap();
    assert!(
        year >= 2024 && insert.commit_timestamp.ends_with('Z'),
        "{}",
        insert.commit_timestamp
    );
    assert_eq!(
        insert.commit_timestamp.len(),
        "2026-12-07T06:24:38.123Z".len()
    );
    let types: Vec<&str> = insert
        .columns
        .iter()
        .map(|c| c.type_name.as_str())
        .collect();
    assert_eq!(
        types,
        ["int8", "text", "bool", "jsonb", "_text", "text", "numeric"]
    );

    // The TOASTed `big` did not change and the default identity sends no old row: left out.
    let update = &changes[2];
    assert_eq!(update.record["title"], "b");
    assert_eq!(update.record["done"], true);
    assert!(!update.record.contains_key("big"));
    assert!(update.old_record.is_empty());
    assert_eq!(
        changes[1].record["big"].as_str().map(str::len),
        Some(12_800)
    );

    // REPLICA IDENTITY FULL with a composite key: the whole old row, nulls included.
    let note_delete = &changes[4];
    assert_eq!(note_delete.primary_key, ["a", "b"]);
    assert_eq!(
        Value::Object(note_delete.old_record.clone()),
        json!({"a": 1, "b": "x", "body": null})
    );
    // Default identity: the key only; under RLS the payload keeps just that.
    let todo_delete = &changes[5];
    assert_eq!(
        Value::Object(todo_delete.old_record.clone()),
        json!({"id": 1})
    );
    let data = todo_delete.data_for(|_| true, MAX_RECORD_BYTES);
    assert_eq!(data["old_record"], json!({"id": 1}));
    assert_eq!(data["type"], "DELETE");
}
