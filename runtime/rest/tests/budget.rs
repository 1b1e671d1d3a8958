//! The REST engine's connection budget across projects, against a real PostgreSQL cluster: with more
//! projects than the budget allows connections for, opening a connection for one project closes the idle
//! connections of the least recently used other project, so the server never sees more than the budget.
//! And the registry's pools in the process's metrics: busy, idle and waiting connections, the wait, and
//! connections that could not be opened.

use pgcluster::TestCluster;
use rest::exec::Pools;
use std::time::Duration;
use supactl_common::connections::{Registry, ServiceSpec};
use supactl_common::wire::DbConfig;

/// Sessions of `supactl-rest` the server itself reports (the guard counts can lag a closed socket).
async fn server_sessions(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'supactl-rest'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_of_other_projects_make_room() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let url = cluster.url("postgres");
    let cfg: tokio_postgres::Config = url.parse().unwrap();
    let password = String::from_utf8(cfg.get_password().unwrap().to_vec()).unwrap();
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let projects = ["p1", "p2", "p3", "p4"];
    for p in projects {
        admin
            .batch_execute(&format!("CREATE DATABASE {p}"))
            .await
            .unwrap();
    }
    let db = |name: &str| DbConfig {
        host: "127.0.0.1".into(),
        port: cluster.cluster.port(),
        dbname: name.into(),
        user: "postgres".into(),
        password: password.clone(),
        tls: Default::default(),
    };

    // Two connections per project at most, three across all projects.
    let registry = Registry::new(3);
    let pools = Pools::new(
        &registry,
        2,
        Duration::from_secs(300),
        Duration::from_secs(300),
    );
    let schemas = vec!["public".to_string()];
    for p in projects {
        pools.schema(p, &db(p), &schemas).await.unwrap();
        // Let closed connections' driver tasks finish before counting.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            pools.open_connections() <= 3,
            "{} open after {p}",
            pools.open_connections()
        );
    }
    assert_eq!(pools.len(), 4, "every project keeps its pool and cache");
    let mut sessions = server_sessions(&admin).await;
    for _ in 0..50 {
        if sessions <= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        sessions = server_sessions(&admin).await;
    }
    assert!(sessions <= 3, "server sees {sessions} REST sessions");

    // The least recently used project was the one shed: p1 has no connection left, p4 has one.
    let per_db = |name: &'static str| {
        let admin = &admin;
        async move {
            admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'supactl-rest' AND datname = $1",
                    &[&name],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(per_db("p1").await, 0);
    assert_eq!(per_db("p4").await, 1);
    // A shed project still works: it opens a connection again (shedding another one).
    pools.schema("p1", &db("p1"), &schemas).await.unwrap();
    pools.invalidate("p1");
    pools.schema("p1", &db("p1"), &schemas).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(pools.open_connections() <= 3);
}

/// The budget is the registry's, over every service: idle connections another service (auth, say)
/// holds are closed to make room for REST's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_covers_every_service_of_the_registry() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let url = cluster.url("postgres");
    let cfg: tokio_postgres::Config = url.parse().unwrap();
    let password = String::from_utf8(cfg.get_password().unwrap().to_vec()).unwrap();
    let db = DbConfig {
        host: "127.0.0.1".into(),
        port: cluster.cluster.port(),
        dbname: "postgres".into(),
        user: "postgres".into(),
        password,
        tls: Default::default(),
    };
    let registry = Registry::new(2);
    let other: supactl_common::connections::Pools = registry.service(ServiceSpec {
        application_name: "supactl-other",
        options: None,
        pool_size: 2,
        idle_timeout: Duration::from_secs(300),
        connection_idle_timeout: Duration::from_secs(300),
    });
    let (pool, _) = other.get("p1", &db);
    // Two connections of the other service, both back in its pool (idle).
    let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    drop((a, b));
    assert_eq!(registry.open_connections(), 2);

    let rest = Pools::new(
        &registry,
        2,
        Duration::from_secs(300),
        Duration::from_secs(300),
    );
    rest.schema("p1", &db, &["public".to_string()])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        pool.status().size,
        0,
        "the other service's idle connections were closed"
    );
    assert_eq!(
        registry.open_connections(),
        1,
        "REST's connection is the only one open"
    );
}

/// The value of one series in the process's metrics (0 when absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_usage_waits_and_errors_are_in_the_metrics() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let url = cluster.url("postgres");
    let cfg: tokio_postgres::Config = url.parse().unwrap();
    let password = String::from_utf8(cfg.get_password().unwrap().to_vec()).unwrap();
    let db = DbConfig {
        host: "127.0.0.1".into(),
        port: cluster.cluster.port(),
        dbname: "postgres".into(),
        user: "postgres".into(),
        password,
        tls: Default::default(),
    };
    let registry = Registry::new(10);
    // a service name of this test's own: other tests of this process use the same metrics
    let pools: supactl_common::connections::Pools = registry.service(ServiceSpec {
        application_name: "supactl-metered",
        options: None,
        pool_size: 2,
        idle_timeout: Duration::from_secs(300),
        connection_idle_timeout: Duration::from_secs(300),
    });
    let metrics = supactl_common::metrics::metrics();
    let (pool, _) = pools.get("p1", &db);
    let a = pools.checkout(&pool).await.unwrap();
    let b = pools.checkout(&pool).await.unwrap();
    // a third request waits for one of the two
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = metrics.render();
    let busy = r#"supactl_db_pool_connections{service="metered",state="busy"}"#;
    assert_eq!(series(&text, busy), 2.0, "{text}");
    assert_eq!(
        series(&text, r#"supactl_db_pool_waiting{service="metered"}"#),
        1.0
    );
    assert_eq!(
        series(&text, r#"supactl_db_pool_projects{service="metered"}"#),
        1.0
    );
    assert!(
        series(&text, "supactl_db_connections_open") >= 2.0,
        "{text}"
    );
    drop(a);
    waiter.await.unwrap().unwrap();
    drop(b);
    let text = metrics.render();
    assert_eq!(series(&text, busy), 0.0);
    assert_eq!(
        series(
            &text,
            r#"supactl_db_pool_connections{service="metered",state="idle"}"#
        ),
        2.0
    );
    assert_eq!(
        series(&text, r#"supactl_db_pool_waiting{service="metered"}"#),
        0.0
    );
    assert_eq!(
        series(
            &text,
            r#"supactl_db_pool_wait_seconds_count{service="metered"}"#
        ),
        2.0
    );

    // a server that is not there: a connect error, counted
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = DbConfig { port: closed, ..db };
    let (pool, _) = pools.get("p2", &gone);
    assert!(pools.checkout(&pool).await.is_err());
    let text = metrics.render();
    assert_eq!(
        series(
            &text,
            r#"supactl_db_pool_errors_total{service="metered",kind="connect"}"#
        ),
        1.0,
        "{text}"
    );
    // a dropped registry leaves the gauges
    drop((pools, pool, registry));
    let text = metrics.render();
    assert_eq!(
        series(&text, r#"supactl_db_pool_projects{service="metered"}"#),
        0.0
    );
}
