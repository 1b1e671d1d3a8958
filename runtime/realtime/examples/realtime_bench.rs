//! The driver of `bench/realtime.sh` (a benchmark, not a test: it prints figures, it asserts
//! nothing). Two processes, so that the server's memory is the server's alone:
//!
//! - `realtime_bench serve STATE_FILE`: a throwaway control plane (PostgreSQL cluster,
//!   tenant-manager) with one project, and the realtime router served directly on loopback, with
//!   limits raised for the bench and postgres_changes captured as in production
//!   ([`realtime::cdc::Cdc::project_login`]); writes `{url, project_ref, secret, pid, db_url}` (the
//!   throwaway cluster's superuser URL of the project database) to STATE_FILE (mode 0600) and
//!   serves until killed.
//! - `realtime_bench drive STATE_FILE [SOCKETS] [SUBSCRIBERS] [BURST]`: (1) opens SOCKETS sockets
//!   (default 10,000; at most 200 connecting at once), each joining one of 100 topics, and prints
//!   the server's resident memory growth per idle socket; closes them; (2) joins SUBSCRIBERS
//!   sockets (default 1,000) to one topic and broadcasts to it from one more socket: 100 messages
//!   at 10/s for delivery latency (p50/p99, send to receive), then BURST messages (default 200)
//!   back to back for deliveries per second; (3) subscribes one socket to INSERTs of a table with
//!   RLS on (a policy lets anon read every row) and inserts 100 rows/s for 10 s: latency from each
//!   row's commit to its arrival (p50/p99).

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use supactl_common::jwt;
use supactl_common::server::{serve, ServerConfig};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Latency-phase messages and their pace.
const PACED: usize = 100;
const PACE: Duration = Duration::from_millis(100);
/// The table of the postgres_changes phase: `sent` is the inserting client's clock at commit.
const CHANGES_TABLE: &str = "
    CREATE TABLE public.bench_changes (id bigint PRIMARY KEY, sent text NOT NULL);
    ALTER TABLE public.bench_changes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY everyone ON public.bench_changes FOR SELECT TO anon USING (true);
    GRANT SELECT ON public.bench_changes TO anon;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.bench_changes;";
/// Rows inserted in the postgres_changes phase, one every [`CHANGE_PACE`].
const CHANGES: usize = 1000;
const CHANGE_PACE: Duration = Duration::from_millis(10);

/// How long a subscriber waits for the messages it expects.
const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: realtime_bench serve STATE_FILE | drive STATE_FILE [SOCKETS] [SUBSCRIBERS] [BURST]";
    let (Some(mode), Some(state)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let number = |i: usize, default: usize| {
        args.get(i)
            .map(|s| s.parse().expect("a number"))
            .unwrap_or(default)
    };
    match mode.as_str() {
        "serve" => run_server(state).await,
        "drive" => drive(state, number(3, 10_000), number(4, 1_000), number(5, 200)).await,
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}

async fn run_server(state_file: &str) {
    let cp = testkit::ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    let created = cp.create_project("realtime bench", "rtbench").await;
    let project_ref = created["ref"].as_str().unwrap().to_owned();
    let secret = cp.jwt_secret(&project_ref).await;
    let db_url = cp
        .db
        .cluster
        .url(&supactl_common::ident::database_name(&project_ref));
    cp.project_db(&project_ref)
        .await
        .batch_execute(CHANGES_TABLE)
        .await
        .expect("bench table");
    let config = realtime::RealtimeConfig {
        limits: realtime::limits::ProjectLimits {
            max_sockets: 100_000,
            joins_per_second: 1_000_000,
            events_per_second: 1_000_000,
            ..Default::default()
        },
        socket: realtime::socket::SocketConfig {
            idle_timeout: Duration::from_secs(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let rt = realtime::Realtime::new(
        cp.directory(Duration::from_secs(600)),
        config,
        shutdown.clone(),
    )
    .expect("realtime");
    rt.set_cdc(realtime::cdc::Cdc::project_login(100));
    let (listener, url) = testkit::listen().await;
    let server = ServerConfig {
        max_connections: 50_000,
        ..ServerConfig::default()
    };
    let state = json!({"url": url, "project_ref": project_ref, "secret": secret,
        "pid": std::process::id(), "db_url": db_url});
    write_private(state_file, &state.to_string());
    serve(listener, realtime::router(rt), server, shutdown).await;
}

/// Writes `text` readable by the owner only (it holds the throwaway project's JWT secret).
fn write_private(path: &str, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = format!("{path}.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .expect("state file");
    f.write_all(text.as_bytes()).expect("state file");
    std::fs::rename(tmp, path).expect("state file");
}

struct Target {
    url: String,
    db_url: String,
    project_ref: String,
    token: String,
    pid: u32,
}

async fn drive(state_file: &str, sockets: usize, subscribers: usize, burst: usize) {
    let state: Value = serde_json::from_str(&std::fs::read_to_string(state_file).unwrap()).unwrap();
    let project_ref = state["project_ref"].as_str().unwrap().to_owned();
    let claims =
        json!({"role": "anon", "ref": project_ref, "iat": jwt::now(), "exp": jwt::now() + 3600});
    let target = Arc::new(Target {
        url: format!(
            "{}/websocket?vsn=1.0.0",
            state["url"].as_str().unwrap().replace("http", "ws")
        ),
        token: jwt::sign(
            claims.as_object().unwrap(),
            state["secret"].as_str().unwrap().as_bytes(),
        ),
        project_ref,
        pid: state["pid"].as_u64().unwrap() as u32,
        db_url: state["db_url"].as_str().unwrap().to_owned(),
    });

    // 1. Idle sockets.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(target.pid);
    let started = Instant::now();
    let idle = open_many(&target, sockets, |i| format!("realtime:idle-{}", i % 100)).await;
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(target.pid);
    println!(
        "idle sockets: {} open and joined in {:.1}s; server RSS {} MiB -> {} MiB: {:.1} KiB per idle socket",
        idle.len(),
        opened.as_secs_f64(),
        before / 1024,
        after / 1024,
        (after.saturating_sub(before)) as f64 / idle.len().max(1) as f64
    );
    for mut s in idle {
        let _ = s.close(None).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. Fan-out to one topic.
    let topic = "realtime:fanout";
    let subs = open_many(&target, subscribers, |_| topic.to_owned()).await;
    let expected = PACED + burst;
    let readers: Vec<_> = subs
        .into_iter()
        .map(|s| tokio::spawn(receive(s, expected)))
        .collect();
    let mut sender = open_many(&target, 1, |_| topic.to_owned())
        .await
        .pop()
        .unwrap();
    for i in 0..PACED {
        send(&mut sender, topic, "paced", i).await;
        tokio::time::sleep(PACE).await;
    }
    let burst_start = unix_nanos();
    for i in 0..burst {
        send(&mut sender, topic, "burst", i).await;
    }
    let (mut paced, mut burst_last, mut delivered, mut missing) =
        (Vec::new(), 0u128, 0usize, 0usize);
    for r in readers {
        let got = r.await.unwrap();
        missing += expected - got.paced.len() - got.burst;
        delivered += got.burst;
        paced.extend(got.paced);
        burst_last = burst_last.max(got.burst_last);
    }
    paced.sort_unstable();
    let pct = |p: usize| {
        paced
            .get((paced.len() * p / 100).min(paced.len().saturating_sub(1)))
            .map_or(f64::NAN, |n| *n as f64 / 1e6)
    };
    println!(
        "fan-out to {subscribers} subscribers, {PACED} messages at {}/s: delivery latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        1000 / PACE.as_millis(),
        pct(50),
        pct(99),
        paced.last().map_or(f64::NAN, |n| *n as f64 / 1e6)
    );
    let seconds = burst_last.saturating_sub(burst_start) as f64 / 1e9;
    println!(
        "fan-out burst: {burst} messages to {subscribers} subscribers = {delivered} deliveries in {:.2}s: {:.0} deliveries/s; {missing} not delivered",
        seconds,
        delivered as f64 / seconds
    );

    // 3. postgres_changes.
    changes(&target).await;
}

/// One subscriber to INSERTs; rows inserted at a steady pace; commit-to-arrival latency.
async fn changes(target: &Target) {
    let mut ws = open(target, "realtime:changes-warmup").await.unwrap();
    let join = json!({"topic": "realtime:changes", "event": "phx_join", "ref": "2", "join_ref": "2",
        "payload": {"config": {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": "bench_changes"}]}}});
    ws.send(Ws::Text(join.to_string().into())).await.unwrap();
    loop {
        let Some(Ok(Ws::Text(t))) = ws.next().await else {
            panic!("the socket closed before postgres_changes subscribed");
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["event"] == "system" {
            assert_eq!(v["payload"]["status"], "ok", "{v}");
            break;
        }
    }
    let (db, conn) = tokio_postgres::connect(&target.db_url, tokio_postgres::NoTls)
        .await
        .expect("project database");
    tokio::spawn(conn);
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(CHANGES);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while latencies.len() < CHANGES {
            let frame = match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Ws::Text(t)))) => t,
                Ok(Some(Ok(_))) => continue,
                _ => break,
            };
            let now = unix_nanos();
            let Ok(v) = serde_json::from_str::<Value>(&frame) else {
                continue;
            };
            if v["event"] != "postgres_changes" {
                continue;
            }
            let sent = v["payload"]["data"]["record"]["sent"]
                .as_str()
                .and_then(|t| t.parse::<u128>().ok());
            if let Some(sent) = sent {
                latencies.push(now.saturating_sub(sent) as u64);
            }
        }
        latencies
    });
    let insert = db
        .prepare("INSERT INTO public.bench_changes VALUES ($1, $2)")
        .await
        .unwrap();
    let mut tick = tokio::time::interval(CHANGE_PACE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..CHANGES {
        tick.tick().await;
        let id = i as i64;
        db.execute(&insert, &[&id, &unix_nanos().to_string()])
            .await
            .unwrap();
    }
    let mut latencies = reader.await.unwrap();
    latencies.sort_unstable();
    let pct = |p: usize| {
        latencies
            .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |n| *n as f64 / 1e6)
    };
    println!(
        "postgres_changes: {} of {CHANGES} inserts at {}/s (RLS on) delivered: commit to client p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        1000 / CHANGE_PACE.as_millis(),
        pct(50),
        pct(99),
        latencies.last().map_or(f64::NAN, |n| *n as f64 / 1e6)
    );
}

/// Opens `n` sockets (at most 200 connecting at once), each joined to `topic(i)`.
async fn open_many(target: &Arc<Target>, n: usize, topic: impl Fn(usize) -> String) -> Vec<Socket> {
    let gate = Arc::new(Semaphore::new(200));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (target, gate, topic) = (target.clone(), gate.clone(), topic(i));
            tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                open(&target, &topic).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        match t.await.unwrap() {
            Ok(s) => out.push(s),
            Err(e) => eprintln!("socket failed: {e}"),
        }
    }
    out
}

async fn open(target: &Target, topic: &str) -> Result<Socket, String> {
    let mut req = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let h = req.headers_mut();
    h.insert(
        realtime::PROJECT_HEADER,
        target.project_ref.parse().unwrap(),
    );
    h.insert(
        "authorization",
        format!("Bearer {}", target.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    let join = json!({"topic": topic, "event": "phx_join", "payload": {"config": {}}, "ref": "1", "join_ref": "1"});
    ws.send(Ws::Text(join.to_string().into()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Ws::Text(t))) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                if v["event"] == "phx_reply" {
                    return match v["payload"]["status"].as_str() {
                        Some("ok") => Ok(ws),
                        _ => Err(format!("join refused: {v}")),
                    };
                }
            }
            Some(Ok(_)) => {}
            other => return Err(format!("closed while joining: {other:?}")),
        }
    }
}

async fn send(ws: &mut Socket, topic: &str, phase: &str, i: usize) {
    let msg = json!({"topic": topic, "event": "broadcast", "ref": null, "join_ref": "1",
        "payload": {"type": "broadcast", "event": phase, "payload": {"t": unix_nanos().to_string(), "i": i}}});
    ws.send(Ws::Text(msg.to_string().into())).await.unwrap();
}

#[derive(Default)]
struct Received {
    /// Latencies of the paced messages, in nanoseconds.
    paced: Vec<u64>,
    burst: usize,
    /// When the last burst message arrived (unix nanoseconds).
    burst_last: u128,
}

async fn receive(mut ws: Socket, expected: usize) -> Received {
    let mut got = Received::default();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while got.paced.len() + got.burst < expected {
        let frame = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Ws::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            _ => break,
        };
        let now = unix_nanos();
        let Ok(v) = serde_json::from_str::<Value>(&frame) else {
            continue;
        };
        if v["event"] != "broadcast" {
            continue;
        }
        let inner = &v["payload"];
        let sent: u128 = inner["payload"]["t"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        match inner["event"].as_str() {
            Some("paced") => got.paced.push(now.saturating_sub(sent) as u64),
            Some("burst") => {
                got.burst += 1;
                got.burst_last = got.burst_last.max(now);
            }
            _ => {}
        }
    }
    got
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
