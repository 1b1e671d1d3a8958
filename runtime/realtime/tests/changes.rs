//! postgres_changes end to end on a real project database (the real tenant template, provisioned
//! by the real tenant-manager): a temporary pgoutput slot per project, Supabase's filters, and RLS
//! checked per subscriber group — user A gets only A's rows, user B only B's, anon nothing from the
//! RLS-protected table; DELETEs reach every subscriber with the key only, as Supabase sends them;
//! a replica past its cap of slots per database server refuses postgres_changes (a `system`
//! error) while the channel's broadcast keeps working; the slot goes away with its last subscriber.
//! Capture runs as in production, on the project's own login role ([`Cdc::project_login`]).

mod support;

use realtime::cdc::{Cdc, TOO_MANY_SLOTS};
use realtime::protocol::{Message, Vsn};
use realtime::RealtimeConfig;
use serde_json::{json, Value};
use std::time::Duration;
use supactl_common::jwt::now;
use support::{json_of, obj, Client, Project, Replica};
use testkit::ControlPlane;

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";

const FIXTURE: &str = "
    CREATE TABLE public.todos (id bigint PRIMARY KEY, owner uuid NOT NULL, title text);
    ALTER TABLE public.todos REPLICA IDENTITY FULL;
    ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own ON public.todos FOR SELECT TO authenticated USING (owner = auth.uid());
    GRANT SELECT ON public.todos TO anon, authenticated;
    CREATE TABLE public.open_notes (id int PRIMARY KEY, body text);
    GRANT SELECT ON public.open_notes TO anon, authenticated;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.todos, public.open_notes;
";

/// Joins `topic` with one postgres_changes binding and `access_token`; returns the join ref
/// after the reply and the "Subscribed to PostgreSQL" system message.
async fn subscribe(c: &mut Client, topic: &str, binding: Value, token: Option<String>) -> String {
    let mut payload = json!({"config": {"postgres_changes": [binding.clone()]}});
    if let Some(token) = token {
        payload["access_token"] = json!(token);
    }
    let join_ref = format!("j{}", topic.len());
    c.send(&Message::json(
        Some(&join_ref),
        Some(&join_ref),
        topic,
        "phx_join",
        obj(payload),
    ))
    .await;
    let reply = json_of(&c.recv_event("phx_reply").await);
    assert_eq!(reply["status"], "ok", "{reply}");
    assert_eq!(
        reply["response"]["postgres_changes"][0]["table"],
        binding["table"]
    );
    let system = json_of(&c.recv_event("system").await);
    assert_eq!(
        (system["status"].as_str(), system["message"].as_str()),
        (Some("ok"), Some("Subscribed to PostgreSQL")),
        "{system}"
    );
    join_ref
}

/// The data of the next postgres_changes message.
async fn change(c: &mut Client) -> Value {
    let msg = json_of(&c.recv_event("postgres_changes").await);
    assert!(
        msg["ids"].as_array().is_some_and(|ids| !ids.is_empty()),
        "{msg}"
    );
    msg["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_with_filters_and_rls() {
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    let p = Project::create(&cp, "rtcdc").await;
    let db = cp.project_db(&p.project_ref).await;
    db.batch_execute(FIXTURE).await.unwrap();

    let replica = Replica::start(&cp, RealtimeConfig::default()).await;
    replica.realtime.set_cdc(Cdc::project_login(50));

    let todos = json!({"event": "*", "schema": "public", "table": "todos", "filter": "id=lt.100"});
    let mut a = Client::connect(&replica, &p, Vsn::V2, "anon").await;
    let mut b = Client::connect(&replica, &p, Vsn::V1, "anon").await;
    let mut anon = Client::connect(&replica, &p, Vsn::V2, "anon").await;
    subscribe(
        &mut a,
        "realtime:a",
        todos.clone(),
        Some(p.user_token(A, now() + 600)),
    )
    .await;
    subscribe(
        &mut b,
        "realtime:b",
        todos.clone(),
        Some(p.user_token(B, now() + 600)),
    )
    .await;
    subscribe(&mut anon, "realtime:anon", todos, None).await;
    let notes = json!({"event": "INSERT", "schema": "public", "table": "open_notes"});
    subscribe(&mut anon, "realtime:notes", notes, None).await;

    db.batch_execute(&format!(
        "INSERT INTO todos VALUES (1, '{A}', 'a1'), (2, '{B}', 'b1'), (500, '{A}', 'filtered out');
         INSERT INTO open_notes VALUES (1, 'hello');"
    ))
    .await
    .unwrap();
    let got = change(&mut a).await;
    assert_eq!(
        (got["type"].as_str(), got["table"].as_str()),
        (Some("INSERT"), Some("todos"))
    );
    assert_eq!(got["record"], json!({"id": 1, "owner": A, "title": "a1"}));
    assert!(got["commit_timestamp"].is_string() && got["columns"].is_array());
    assert_eq!(change(&mut b).await["record"]["id"], 2);
    // anon: nothing from todos (RLS), the open table's insert only.
    let note = change(&mut anon).await;
    assert_eq!(
        (note["table"].as_str(), note["record"].clone()),
        (Some("open_notes"), json!({"id": 1, "body": "hello"}))
    );

    db.batch_execute("UPDATE todos SET title = 'a2' WHERE id = 1; DELETE FROM todos WHERE id = 2")
        .await
        .unwrap();
    let update = change(&mut a).await;
    assert_eq!(update["type"], "UPDATE");
    assert_eq!(update["record"]["title"], "a2");
    assert_eq!(update["old_record"]["title"], "a1");
    // A DELETE is not checked against RLS (the row is gone): everyone subscribed gets the key only.
    for c in [&mut a, &mut b, &mut anon] {
        let delete = change(c).await;
        assert_eq!(
            (delete["type"].as_str(), delete["old_record"].clone()),
            (Some("DELETE"), json!({"id": 2}))
        );
    }
    // B saw nothing of A's rows, anon nothing else; the filter kept row 500 away from A.
    for c in [&mut a, &mut b, &mut anon] {
        c.silent(Duration::from_millis(500)).await;
    }

    // A replica allowed no slot on this server refuses postgres_changes, and only them.
    let capped = Replica::start(&cp, RealtimeConfig::default()).await;
    capped.realtime.set_cdc(Cdc::project_login(0));
    let mut late = Client::connect(&capped, &p, Vsn::V2, "anon").await;
    let binding = json!({"event": "*", "schema": "public", "table": "open_notes"});
    let payload = json!({"config": {"postgres_changes": [binding], "broadcast": {"self": true}}});
    late.send(&Message::json(
        Some("1"),
        Some("1"),
        "realtime:late",
        "phx_join",
        obj(payload),
    ))
    .await;
    assert_eq!(json_of(&late.recv_event("phx_reply").await)["status"], "ok");
    let system = json_of(&late.recv_event("system").await);
    assert_eq!(
        (system["status"].as_str(), system["message"].as_str()),
        (Some("error"), Some(TOO_MANY_SLOTS))
    );
    late.push(
        Some("1"),
        "realtime:late",
        "broadcast",
        json!({"type": "broadcast", "event": "e", "payload": {}}),
    )
    .await;
    assert_eq!(late.recv_event("broadcast").await.topic, "realtime:late");
    drop(late);

    // The slot exists while someone subscribes, and goes away with the last subscriber.
    let slots = "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'supactl_rt_%'";
    assert_eq!(db.query_one(slots, &[]).await.unwrap().get::<_, i64>(0), 1);
    drop((a, b, anon));
    for _ in 0..50 {
        if db.query_one(slots, &[]).await.unwrap().get::<_, i64>(0) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the temporary slot outlived its subscribers");
}
