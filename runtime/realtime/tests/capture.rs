//! Change capture's database rights on projects the real tenant-manager provisioned: no login
//! holds REPLICATION; a project's login role captures its own database's changes through the
//! template's capture functions, only under `SET ROLE supactl_realtime` (not as itself, not as
//! `anon`), cannot reach another project's slot, and holds at most 8 slots; a project database
//! and login role made before capture existed are brought up to date when the tenant-manager
//! starts.

use std::time::Duration;
use supactl_common::pg;
use supactl_common::wire::ProjectConfig;
use testkit::ControlPlane;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

async fn config(cp: &ControlPlane, project_ref: &str) -> std::sync::Arc<ProjectConfig> {
    cp.directory(Duration::from_secs(60))
        .project(project_ref)
        .await
        .unwrap()
        .unwrap()
}

/// A session of the project's own login role on its database, as realtime opens it.
async fn login(cfg: &ProjectConfig) -> Client {
    pg::connect(&pg::project_config(&cfg.db, "capture-test"), &cfg.db.tls)
        .await
        .unwrap()
}

async fn start(c: &Client, suffix: &str) -> Result<String, tokio_postgres::Error> {
    c.query_one("SELECT realtime.supactl_capture_start($1)", &[&suffix])
        .await
        .map(|r| r.get(0))
}

async fn poll(c: &Client, slot: &str) -> Result<usize, tokio_postgres::Error> {
    c.query(
        "SELECT c.data FROM realtime.supactl_capture_poll($1, 100) AS c(data)",
        &[&slot],
    )
    .await
    .map(|rows| rows.len())
}

fn code(r: Result<impl std::fmt::Debug, tokio_postgres::Error>) -> SqlState {
    r.expect_err("expected an error").code().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_captures_its_own_changes_only() {
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    for r in ["capp", "capq"] {
        cp.create_project(r, r).await;
    }
    let (p, q) = (config(&cp, "capp").await, config(&cp, "capq").await);
    let admin = cp.connect("postgres").await;
    let replication: bool = admin
        .query_one(
            "SELECT bool_or(rolreplication) FROM pg_roles WHERE rolname = ANY($1)",
            &[&vec![p.db.user.as_str(), q.db.user.as_str()]],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!replication, "a project login role holds REPLICATION");

    let pc = login(&p).await;
    // Not as the login role itself, not as anon (what REST requests run as).
    assert_eq!(
        code(start(&pc, "t1").await),
        SqlState::INSUFFICIENT_PRIVILEGE
    );
    pc.batch_execute("SET ROLE anon").await.unwrap();
    assert_eq!(
        code(start(&pc, "t1").await),
        SqlState::INSUFFICIENT_PRIVILEGE
    );
    pc.batch_execute("SET ROLE supactl_realtime").await.unwrap();
    // Slots only through the functions: PostgreSQL's own need the replication right.
    let direct = pc
        .query(
            "SELECT pg_create_logical_replication_slot('direct', 'pgoutput', true)",
            &[],
        )
        .await;
    assert_eq!(code(direct), SqlState::INSUFFICIENT_PRIVILEGE);
    assert_eq!(
        code(start(&pc, "Bad-Name").await),
        SqlState::INVALID_PARAMETER_VALUE
    );
    // (An error drops the session's temporary slots, so the failures come first or elsewhere.)
    let p_slot = start(&pc, "t1").await.unwrap();
    assert_eq!(poll(&pc, &p_slot).await.unwrap(), 0);

    let qc = login(&q).await;
    qc.batch_execute("SET ROLE supactl_realtime").await.unwrap();
    let q_slot = start(&qc, "t1").await.unwrap();
    assert_ne!(p_slot, q_slot);
    // P cannot read Q's slot, through the function or around it.
    let other = login(&p).await;
    other
        .batch_execute("SET ROLE supactl_realtime")
        .await
        .unwrap();
    assert_eq!(
        code(poll(&other, &q_slot).await),
        SqlState::INSUFFICIENT_PRIVILEGE
    );
    let around = other
        .query(
            "SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, 10)",
            &[&q_slot],
        )
        .await;
    assert_eq!(code(around), SqlState::INSUFFICIENT_PRIVILEGE);
    // Q's changes reach Q's slot only.
    let q_db = cp.project_db("capq").await;
    q_db.batch_execute(
        "CREATE TABLE public.t (id int PRIMARY KEY);
         ALTER PUBLICATION supabase_realtime ADD TABLE public.t;",
    )
    .await
    .unwrap();
    q_db.batch_execute("INSERT INTO public.t VALUES (1)")
        .await
        .unwrap();
    assert!(poll(&qc, &q_slot).await.unwrap() > 0);
    assert_eq!(poll(&pc, &p_slot).await.unwrap(), 0);

    // At most 8 capture slots per database.
    for i in 2..=8 {
        start(&pc, &format!("t{i}")).await.unwrap();
    }
    assert_eq!(
        code(start(&pc, "t9").await),
        SqlState::CONFIGURATION_LIMIT_EXCEEDED
    );
    // They are temporary: gone with the session.
    drop((pc, other));
    let slots = "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'supactl_rt_%'";
    for _ in 0..50 {
        if admin.query_one(slots, &[]).await.unwrap().get::<_, i64>(0) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the temporary slots outlived their session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_projects_get_realtime_at_start() {
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    cp.create_project("older", "caprt").await;
    let cfg = config(&cp, "caprt").await;
    // Make the database and role look like an earlier release's.
    let db = cp.project_db("caprt").await;
    db.batch_execute(
        "DROP FUNCTION realtime.supactl_capture_start(text), realtime.supactl_capture_poll(text, integer);
         DROP FUNCTION realtime.topic();
         DROP TABLE realtime.messages;
         COMMENT ON DATABASE project_caprt IS NULL;",
    )
    .await
    .unwrap();
    let admin = cp.connect("postgres").await;
    admin
        .batch_execute(&format!("REVOKE supactl_realtime FROM {}", cfg.db.user))
        .await
        .unwrap();
    let c = login(&cfg).await;
    assert_eq!(
        code(c.batch_execute("SET ROLE supactl_realtime").await),
        SqlState::INSUFFICIENT_PRIVILEGE
    );
    drop(c);

    cp.start_tenant_manager_again().await;
    let c = login(&cfg).await;
    c.batch_execute("SET ROLE supactl_realtime").await.unwrap();
    start(&c, "again").await.unwrap();
    c.batch_execute("RESET ROLE; SET ROLE authenticated")
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM realtime.messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let topic: Option<String> = c
        .query_one(
            "SELECT realtime.topic() FROM (SELECT set_config('realtime.topic', 'room', false)) s",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(topic.as_deref(), Some("room"));
}
