//! Two realtime replicas (two routers on two ports, as two gateway processes would serve them)
//! joined by a real `redis-server`: broadcast and presence reach sockets on the other replica;
//! with Redis stopped, each replica keeps delivering to its own sockets and nothing crashes; once
//! Redis is back, the bridge reconnects and delivery across replicas resumes; presence of a replica
//! that stopped saying it is alive expires.

mod support;

use realtime::protocol::Vsn;
use realtime::RealtimeConfig;
use serde_json::json;
use std::time::Duration;
use support::{json_of, Client, Project, Replica};
use testkit::ControlPlane;

/// A `redis-server` on a loopback port; killed on drop.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run redis-server (apt-get install redis-server)");
        let redis = Redis { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replica_config(id: &str, redis: &Redis) -> RealtimeConfig {
    RealtimeConfig {
        replica_id: id.into(),
        redis_url: Some(redis.url()),
        presence_ttl: Duration::from_secs(1),
        ..RealtimeConfig::default()
    }
}

/// Broadcasts from `from` until `to` receives one (the other replica subscribes asynchronously);
/// returns the number of the first one heard.
async fn broadcast_until_heard(from: &mut Client, join_ref: &str, to: &mut Client) -> u64 {
    for sent in 1..=50 {
        from.push(
            Some(join_ref),
            "realtime:room",
            "broadcast",
            json!({"type": "broadcast", "event": "ping", "payload": {"n": sent}}),
        )
        .await;
        if let Some(Ok(msg)) = to.next(Duration::from_millis(200)).await {
            let msg = json_of(&msg);
            assert_eq!(msg["event"], "ping", "{msg}");
            return msg["payload"]["n"].as_u64().unwrap();
        }
    }
    panic!("no broadcast crossed replicas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_and_presence_across_replicas_through_redis() {
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    let p = Project::create(&cp, "rtbridge").await;
    let other = Project::create(&cp, "rtother").await;
    let port = pgcluster::free_port();
    let redis = Redis::start(port);
    let r1 = Replica::start(&cp, replica_config("r1", &redis)).await;
    let r2 = Replica::start(&cp, replica_config("r2", &redis)).await;

    let mut a = Client::connect(&r1, &p, Vsn::V2, "anon").await;
    let mut local = Client::connect(&r1, &p, Vsn::V1, "anon").await;
    let mut b = Client::connect(&r2, &p, Vsn::V1, "anon").await;
    let mut stranger = Client::connect(&r2, &other, Vsn::V2, "anon").await;
    let presence = json!({"presence": {"key": "ann", "enabled": true}});
    let a_join = a.join("realtime:room", presence).await;
    local.join("realtime:room", json!({})).await;
    b.join("realtime:room", json!({"presence": {"enabled": true}}))
        .await;
    stranger.join("realtime:room", json!({})).await;
    b.recv_event("presence_state").await;

    // Broadcast crosses replicas; B gets each message once, the other project nothing.
    let heard = broadcast_until_heard(&mut a, &a_join, &mut b).await;
    while let Some(later) = b.next(Duration::from_millis(300)).await {
        let later = json_of(&later.unwrap());
        assert!(
            later["payload"]["n"].as_u64().unwrap() > heard,
            "duplicate {later}"
        );
    }
    stranger.silent(Duration::ZERO).await;
    while local.next(Duration::from_millis(100)).await.is_some() {}

    // Presence: A's track reaches B as a diff.
    a.push(
        Some(&a_join),
        "realtime:room",
        "presence",
        json!({"type": "presence", "event": "track", "payload": {"at": 1}}),
    )
    .await;
    let diff = json_of(&b.recv_event("presence_diff").await);
    assert_eq!(diff["joins"]["ann"]["metas"][0]["at"], 1, "{diff}");
    // A socket joining on the other replica later sees A in its state.
    let mut late = Client::connect(&r2, &p, Vsn::V2, "anon").await;
    late.join("realtime:room", json!({"presence": {"enabled": true}}))
        .await;
    let state = json_of(&late.recv_event("presence_state").await);
    assert_eq!(state["ann"]["metas"][0]["at"], 1, "{state}");
    drop(late);

    // Redis goes away: delivery on the same replica continues, nothing crashes.
    drop(redis);
    a.push(
        Some(&a_join),
        "realtime:room",
        "broadcast",
        json!({"type": "broadcast", "event": "local", "payload": {}}),
    )
    .await;
    let got = local.recv_event("broadcast").await;
    assert_eq!(json_of(&got)["event"], "local");
    // (presence diffs may come: A's entry expires on r2 without news from r1)
    while let Some(msg) = b.next(Duration::from_millis(300)).await {
        assert_ne!(msg.unwrap().event, "broadcast");
    }

    // Redis is back on the same port: the bridge reconnects and resubscribes.
    let redis = Redis::start(port);
    while b.next(Duration::from_millis(50)).await.is_some() {}
    broadcast_until_heard(&mut a, &a_join, &mut b).await;

    // A replica that vanished without its leaves (here a ghost that only ever published one
    // join): its entries expire after the presence TTL and subscribers get the leave.
    let ghost = json!({"o": "ghost", "k": "p", "topic": "realtime:room", "private": false,
        "diff": {"joins": {"casper": {"metas": [{"phx_ref": "ghost-1"}]}}, "leaves": {}}});
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PUBLISH")
        .arg(realtime::bridge::channel(&p.project_ref))
        .arg(ghost.to_string())
        .query_async::<i64>(&mut conn)
        .await
        .unwrap();
    let joined = json_of(&b.recv_event("presence_diff").await);
    assert_eq!(
        joined["joins"]["casper"]["metas"][0]["phx_ref"], "ghost-1",
        "{joined}"
    );
    let started = std::time::Instant::now();
    let left = json_of(&b.recv_event("presence_diff").await);
    assert_eq!(
        left["leaves"]["casper"]["metas"][0]["phx_ref"], "ghost-1",
        "{left}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "expired too early"
    );
}
