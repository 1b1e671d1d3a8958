//! The supervisor over a real cluster: a postmaster killed with SIGKILL while a backend is busy (so that
//! backend outlives it, holding the old shared memory) is restarted by itself, the orphan is cleared, the
//! server answers queries again, and once supervision stops a stopped cluster stays stopped.

use pgcluster::{Backoff, Event, Supervisor, TestCluster};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

fn postmaster_pid(tc: &TestCluster) -> u32 {
    let lock = std::fs::read_to_string(tc.cluster.data_dir().join("postmaster.pid")).unwrap();
    lock.lines().next().unwrap().parse().unwrap()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[test]
fn a_killed_postmaster_is_restarted_and_its_orphans_cleared() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tc = TestCluster::start();
    let url = tc.url("postgres");

    // A backend in a long CPU-bound query does not notice its postmaster's death.
    let busy = rt.block_on(connect(&url));
    let running = rt.spawn(async move {
        busy.simple_query("select count(*) from generate_series(1, 100000000000)")
            .await
    });

    let watcher = rt.block_on(connect(&url));
    rt.block_on(async {
        let busy_query = "select count(*) from pg_stat_activity where state = 'active' and query like '%generate_series%' and pid <> pg_backend_pid()";
        while watcher.query_one(busy_query, &[]).await.unwrap().get::<_, i64>(0) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let (tx, events) = mpsc::channel();
    let supervisor = Supervisor::start(
        tc.cluster.clone(),
        Backoff {
            poll: Duration::from_millis(100),
            initial: Duration::from_millis(100),
            ..Backoff::default()
        },
        move |e: &Event| {
            let _ = tx.send(e.clone());
        },
    );
    let old = postmaster_pid(&tc);
    let killed = Command::new("kill")
        .args(["-KILL", &old.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let next = || events.recv_timeout(Duration::from_secs(90)).unwrap();
    assert_eq!(next(), Event::Died { pid: Some(old) });
    assert_eq!(
        next(),
        Event::Restarting {
            attempt: 1,
            delay: Duration::from_millis(100)
        }
    );
    match next() {
        Event::Restarted { pid, cleared } => {
            assert_ne!(pid, old);
            assert_eq!(pid, postmaster_pid(&tc));
            assert!(cleared.orphans >= 1, "the busy backend: {cleared:?}");
            assert!(cleared.stale_lock, "{cleared:?}");
        }
        other => panic!("expected a restart, got {other:?}"),
    }

    // the busy backend was killed, and the new server answers
    assert!(rt.block_on(running).unwrap().is_err());
    let fresh = rt.block_on(connect(&url));
    let one: i32 = rt
        .block_on(fresh.query_one("select 1::int4", &[]))
        .unwrap()
        .get(0);
    assert_eq!(one, 1);

    // Once supervision stops, a stopped cluster stays stopped.
    supervisor.stop();
    tc.cluster.stop().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(!tc.cluster.is_running());
    assert!(events.try_recv().is_err(), "no event after stop");
}

#[test]
fn the_debug_output_of_a_cluster_has_no_password() {
    let tc = TestCluster::start();
    let password = tc
        .url("postgres")
        .split_once("postgres:")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(p, _)| p.to_string())
        .unwrap();
    let debug = format!("{:?}", tc.cluster);
    assert!(!debug.contains(&password), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}
