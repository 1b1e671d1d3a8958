//! The `rls` statements against a real PostgreSQL 15 with the real tenant template
//! (`templates/roles.sql`, `templates/tenant.sql`, `templates/realtime.sql`): batched
//! postgres_changes visibility per (role, claims) group, and private-channel authorization through
//! `realtime.messages` policies.

use pgcluster::TestCluster;
use realtime::rls::{
    claims_group, set_role, KeyColumn, VisibilityQuery, PROBE_INSERT, READ_CHECK, SET_CLAIMS,
    SET_TOPIC, WRITE_CHECK,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use tokio_postgres::{Client, NoTls};

const USER_A: &str = "00000000-0000-0000-0000-00000000000a";
const USER_B: &str = "00000000-0000-0000-0000-00000000000b";

async fn project_db(tc: &TestCluster) -> Client {
    let (admin, conn) = tokio_postgres::connect(&tc.url("postgres"), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    admin
        .batch_execute(include_str!("../../../templates/roles.sql"))
        .await
        .expect("roles");
    admin
        .batch_execute("CREATE DATABASE project_t")
        .await
        .expect("create db");
    let (db, conn) = tokio_postgres::connect(&tc.url("project_t"), NoTls)
        .await
        .expect("connect project");
    tokio::spawn(conn);
    db.batch_execute(include_str!("../../../templates/tenant.sql"))
        .await
        .expect("template");
    db.batch_execute(include_str!("../../../templates/realtime.sql"))
        .await
        .expect("realtime.messages");
    db
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Runs one visibility statement for one group: the positions of the rows it may see.
async fn visible(
    db: &mut Client,
    q: &VisibilityQuery,
    rows: &[Value],
    claims: &Map<String, Value>,
) -> BTreeSet<i64> {
    let role = claims["role"].as_str().unwrap();
    let group = claims_group(claims);
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rows: Vec<&Map<String, Value>> = rows.iter().map(|r| r.as_object().unwrap()).collect();
    let params = q.params(&rows).unwrap();
    let tx = db.transaction().await.unwrap();
    tx.batch_execute(&set_role(role)).await.unwrap();
    tx.execute(SET_CLAIMS, &[&group, &sub, &role])
        .await
        .unwrap();
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let out = tx.query(q.sql(), &refs).await.expect("visibility query");
    tx.rollback().await.unwrap();
    out.iter().map(|r| r.get::<_, i64>(0)).collect()
}

#[tokio::test]
async fn visibility_and_private_channel_policies() {
    let tc = TestCluster::start();
    let mut db = project_db(&tc).await;
    db.batch_execute(&format!(
        "CREATE TABLE public.todos (id bigint PRIMARY KEY, owner uuid, title text);
         ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON public.todos FOR SELECT TO authenticated USING (owner = auth.uid());
         INSERT INTO public.todos VALUES (1, '{USER_A}', 'a1'), (2, '{USER_B}', 'b1'), (3, '{USER_A}', 'a2');
         CREATE TABLE public.notes (a int, b text, PRIMARY KEY (a, b));
         ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
         CREATE POLICY open ON public.notes FOR SELECT TO anon, authenticated USING (b = 'public');
         INSERT INTO public.notes VALUES (1, 'public'), (1, 'hidden');"
    ))
    .await
    .expect("tables");

    let todos = VisibilityQuery::new(
        "public",
        "todos",
        &[KeyColumn {
            name: "id".into(),
            sql_type: "bigint".into(),
        }],
    )
    .unwrap();
    // Changed rows of one poll batch, as the payload module types them; row 4 no longer exists.
    let rows = [
        json!({"id": 1, "title": "a1"}),
        json!({"id": 2}),
        json!({"id": 3}),
        json!({"id": 4}),
    ];
    let a = claims(json!({"sub": USER_A, "role": "authenticated", "exp": 1, "iat": 0}));
    let b = claims(json!({"sub": USER_B, "role": "authenticated"}));
    assert_eq!(
        visible(&mut db, &todos, &rows, &a).await,
        BTreeSet::from([1, 3])
    );
    assert_eq!(
        visible(&mut db, &todos, &rows, &b).await,
        BTreeSet::from([2])
    );
    assert!(
        visible(&mut db, &todos, &rows, &claims(json!({"role": "anon"})))
            .await
            .is_empty()
    );
    // service_role bypasses RLS.
    assert_eq!(
        visible(
            &mut db,
            &todos,
            &rows,
            &claims(json!({"role": "service_role"}))
        )
        .await,
        BTreeSet::from([1, 2, 3])
    );

    let key = [
        KeyColumn {
            name: "a".into(),
            sql_type: "integer".into(),
        },
        KeyColumn {
            name: "b".into(),
            sql_type: "text".into(),
        },
    ];
    let notes = VisibilityQuery::new("public", "notes", &key).unwrap();
    let rows = [
        json!({"a": 1, "b": "hidden"}),
        json!({"a": 1, "b": "public"}),
    ];
    assert_eq!(
        visible(&mut db, &notes, &rows, &claims(json!({"role": "anon"}))).await,
        BTreeSet::from([2])
    );

    db.batch_execute(
        "CREATE POLICY read_own_room ON realtime.messages FOR SELECT TO authenticated
           USING (realtime.topic() = 'room-' || auth.uid()::text);
         CREATE POLICY send_own_room ON realtime.messages FOR INSERT TO authenticated
           WITH CHECK (realtime.topic() = 'room-' || auth.uid()::text AND extension = 'broadcast');",
    )
    .await
    .expect("policies");
    let own_room = format!("room-{USER_A}");
    assert_eq!(
        authorize(&mut db, &own_room, &a).await,
        (
            vec!["broadcast".into(), "presence".into()],
            vec!["broadcast".into()]
        )
    );
    let other_room = format!("room-{USER_B}");
    assert_eq!(authorize(&mut db, &other_room, &a).await, (vec![], vec![]));
    assert_eq!(
        authorize(&mut db, &own_room, &claims(json!({"role": "anon"}))).await,
        (vec![], vec![])
    );
    // Every probe was rolled back.
    let left: i64 = db
        .query_one("SELECT count(*) FROM realtime.messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

/// The private-channel check: (extensions readable, extensions writable), sorted.
async fn authorize(
    db: &mut Client,
    topic: &str,
    claims: &Map<String, Value>,
) -> (Vec<String>, Vec<String>) {
    let role = claims["role"].as_str().unwrap();
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tx = db.transaction().await.unwrap();
    let probes = tx
        .query(PROBE_INSERT, &[&topic])
        .await
        .expect("probe insert");
    let ids: Vec<String> = probes.iter().map(|r| r.get(0)).collect();
    tx.batch_execute(&set_role(role)).await.unwrap();
    tx.execute(SET_CLAIMS, &[&claims_group(claims), &sub, &role])
        .await
        .unwrap();
    tx.execute(SET_TOPIC, &[&topic]).await.unwrap();
    let mut read: Vec<String> = tx
        .query(READ_CHECK, &[&ids])
        .await
        .expect("read check")
        .iter()
        .map(|r| r.get(0))
        .collect();
    read.sort();
    let mut write = Vec::new();
    for ext in ["broadcast", "presence"] {
        tx.batch_execute("SAVEPOINT w").await.unwrap();
        match tx.execute(WRITE_CHECK, &[&topic, &ext]).await {
            Ok(_) => write.push(ext.to_owned()),
            Err(e) => assert_eq!(
                e.code(),
                Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                "{e}"
            ),
        }
        tx.batch_execute("ROLLBACK TO SAVEPOINT w").await.unwrap();
    }
    tx.rollback().await.unwrap();
    (read, write)
}
