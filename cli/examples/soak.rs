//! The soak and fault benchmark behind `bench/soak.sh` (a benchmark: it prints figures and asserts nothing).
//!
//! It runs a whole `supactl up` (with its own Redis), measures the peak rate of a mixed workload — REST reads
//! and writes, auth refresh-token grants — with a closed loop, then holds 80 % of that rate in an open loop
//! (latency counted from when a request was due, so a stall is not hidden) while a slow admin loop creates
//! and deletes projects. It prints errors, latency percentiles and the growth of supactl's resident memory,
//! then injects faults under the same load — PostgreSQL's postmaster SIGKILLed, Redis restarted, supactl
//! itself SIGKILLed and started again — counting the requests that failed and the time to recovery of each,
//! and finally checks that every write the platform acknowledged is in the database.
//!
//! Usage: `soak <supactl binary> [steady seconds]`; `SOAK_PEAK_SECONDS` (10), `SOAK_FAULT_SECONDS` (40).

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use supactl_common::http_client::HttpClient;
use tokio::sync::Semaphore;

/// Requests in flight at most; a due request finding none free is counted as dropped by the generator.
const IN_FLIGHT: usize = 512;
/// Users whose refresh tokens the workload rotates.
const USERS: usize = 40;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let bin = PathBuf::from(args.next().expect("usage: soak <supactl binary> [seconds]"));
    let steady: u64 = args.next().map_or(600, |s| s.parse().expect("seconds"));
    let env_secs = |k: &str, d: u64| std::env::var(k).ok().map_or(d, |v| v.parse().expect(k));
    let (peak_secs, fault_secs) = (
        env_secs("SOAK_PEAK_SECONDS", 10),
        env_secs("SOAK_FAULT_SECONDS", 40),
    );

    let mut platform = Platform::start(bin);
    let load = Arc::new(Load::setup(&platform).await);
    println!("== peak: closed loop, 32 connections, {peak_secs} s");
    let peak = load.closed_loop(32, Duration::from_secs(peak_secs)).await;
    let rate = peak * 0.8;
    println!("peak {peak:.0} req/s; soak at {rate:.0} req/s (80 %)");

    println!("== steady: {steady} s at {rate:.0} req/s, a project created and deleted every 10 s");
    let admin = tokio::spawn(admin_loop(load.clone(), Duration::from_secs(steady)));
    let rss = tokio::spawn(rss_samples(
        platform.supactl_pid(),
        Duration::from_secs(steady),
    ));
    let run = load.open_loop(rate, Duration::from_secs(steady)).await;
    let (creates, create_errors) = admin.await.unwrap();
    let rss = rss.await.unwrap();
    run.print("steady");
    println!("admin: {creates} projects created and deleted, {create_errors} errors (target 0)");
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        println!(
            "supactl RSS {:.1} MB after warm-up → {:.1} MB at the end: {:+.1} % (target < 5 %)",
            *first as f64 / 1024.0,
            *last as f64 / 1024.0,
            (*last as f64 / *first as f64 - 1.0) * 100.0
        );
    }

    println!("== faults under the same load ({fault_secs} s each, injected after 5 s)");
    for fault in [Fault::KillPostgres, Fault::RestartRedis, Fault::KillSupactl] {
        let window = load.open_loop(rate, Duration::from_secs(fault_secs));
        let inject = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            platform.inject(fault);
            Instant::now()
        };
        let (run, at) = tokio::join!(window, inject);
        let (failed, recovery) = run.after(at);
        println!(
            "{:<34} {failed:>6} requests failed, recovered in {:.1} s; {} of {} not sent (generator saturated); failures: {}",
            fault.name(),
            recovery.as_secs_f64(),
            run.dropped,
            run.samples.len() as u64 + run.dropped,
            run.failures_since(Some(at)),
        );
    }

    let (acked, missing) = load.verify_writes().await;
    println!("acknowledged writes: {acked}, missing after the faults: {missing} (target 0)");
    platform.stop();
}

#[derive(Clone, Copy)]
enum Fault {
    KillPostgres,
    RestartRedis,
    KillSupactl,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KillPostgres => "PostgreSQL postmaster SIGKILLed:",
            Fault::RestartRedis => "Redis restarted:",
            Fault::KillSupactl => "supactl SIGKILLed and restarted:",
        }
    }
}

/// The processes under test: `supactl up` (with its managed PostgreSQL) and a Redis of its own.
struct Platform {
    bin: PathBuf,
    dir: PathBuf,
    ports: [u16; 4],
    supactl: Child,
    redis: Child,
    admin: String,
    admin_key: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Platform {
    fn start(bin: PathBuf) -> Platform {
        let dir = std::env::temp_dir().join(format!("supactl-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ports = [free_port(), free_port(), free_port(), free_port()];
        let redis = spawn_redis(ports[3], &dir);
        let supactl = spawn_supactl(&bin, &dir, ports);
        let admin = format!("http://127.0.0.1:{}", ports[1]);
        let state = dir.join("state.json");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !state.exists() {
            assert!(
                Instant::now() < deadline,
                "supactl up did not start: see {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let s: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        let admin_key = s["admin_key"].as_str().unwrap().to_string();
        Platform {
            bin,
            dir,
            ports,
            supactl,
            redis,
            admin,
            admin_key,
        }
    }

    fn supactl_pid(&self) -> u32 {
        self.supactl.id()
    }

    fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::KillPostgres => {
                let pidfile = std::fs::read_to_string(self.dir.join("pg/postmaster.pid")).unwrap();
                let pid = pidfile.lines().next().unwrap().trim().to_string();
                run("kill", &["-KILL", &pid]);
            }
            Fault::RestartRedis => {
                self.redis.kill().ok();
                self.redis.wait().ok();
                self.redis = spawn_redis(self.ports[3], &self.dir);
            }
            Fault::KillSupactl => {
                self.supactl.kill().ok();
                self.supactl.wait().ok();
                self.supactl = spawn_supactl(&self.bin, &self.dir, self.ports);
            }
        }
    }

    fn stop(mut self) {
        run("kill", &["-TERM", &self.supactl.id().to_string()]);
        self.supactl.wait().ok();
        self.redis.kill().ok();
        self.redis.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn run(cmd: &str, args: &[&str]) {
    Command::new(cmd).args(args).status().unwrap();
}

fn spawn_redis(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)")
}

fn spawn_supactl(bin: &Path, dir: &Path, p: [u16; 4]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("up.log"))
        .unwrap();
    Command::new(bin)
        .args(["up", "--data-dir"])
        .arg(dir)
        .args([
            "--port",
            &p[0].to_string(),
            "--admin-port",
            &p[1].to_string(),
        ])
        .args(["--db-port", &p[2].to_string()])
        .args(["--redis-url", &format!("redis://127.0.0.1:{}", p[3])])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Resident memory of `pid` in KiB, sampled every 5 s after a 60 s warm-up.
async fn rss_samples(pid: u32, dur: Duration) -> Vec<u64> {
    let end = Instant::now() + dur;
    tokio::time::sleep(Duration::from_secs(60).min(dur / 4)).await;
    let mut out = Vec::new();
    while Instant::now() < end {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            out.push(kb);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    out
}

/// The workload: one project with a table, users with refresh tokens, and the writes acknowledged so far.
struct Load {
    http: HttpClient,
    admin: String,
    admin_key: String,
    api: String,
    anon: String,
    secret: String,
    users: Mutex<VecDeque<String>>,
    acked: Mutex<Vec<i64>>,
    seq: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Read,
    Write,
    Refresh,
}

impl Op {
    /// 70 % reads, 20 % writes, 10 % refresh grants.
    fn nth(n: u64) -> Op {
        match n % 10 {
            0 => Op::Refresh,
            1 | 2 => Op::Write,
            _ => Op::Read,
        }
    }
}

impl Load {
    async fn setup(p: &Platform) -> Load {
        let mut load = Load {
            http: HttpClient::new(Duration::from_secs(10)),
            admin: p.admin.clone(),
            admin_key: p.admin_key.clone(),
            api: String::new(),
            anon: String::new(),
            secret: String::new(),
            users: Mutex::new(VecDeque::new()),
            acked: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
        };
        let (_, v) = load
            .admin_call(
                Method::POST,
                "/admin/v1/projects",
                json!({"name": "soak", "ref": "soak"}),
            )
            .await;
        let d = &v["data"];
        load.api = d["api_url"].as_str().expect("project created").to_string();
        let key = |t: &str| {
            d["api_keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["type"] == t)
                .unwrap()["opaque_key"]
                .as_str()
                .unwrap()
                .to_string()
        };
        (load.anon, load.secret) = (key("publishable"), key("secret"));
        let sql = "CREATE TABLE soak (id bigserial PRIMARY KEY, v text NOT NULL);
                   INSERT INTO soak (v) SELECT md5(g::text) FROM generate_series(1, 10000) g;
                   ALTER TABLE soak ENABLE ROW LEVEL SECURITY;
                   CREATE POLICY read_all ON soak FOR SELECT TO anon USING (true);
                   UPDATE auth.supactl_settings SET rate_limit_token_refresh = 1000000, rate_limit_sign_in_sign_ups = 1000000";
        load.admin_call(
            Method::POST,
            "/admin/v1/projects/soak/database/query",
            json!({ "query": sql }),
        )
        .await;
        for i in 0..USERS {
            let creds =
                json!({"email": format!("soak{i}@example.com"), "password": "soak-password-1"});
            let (s, v) = load
                .call(Method::POST, "/auth/v1/signup", &load.anon, Some(creds))
                .await;
            let token = v["refresh_token"]
                .as_str()
                .unwrap_or_else(|| panic!("signup: {s} {v}"));
            load.users.lock().unwrap().push_back(token.to_string());
        }
        load
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api))
            .header("apikey", key)
            .header("content-type", "application/json")
            .header("prefer", "return=representation")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        match self.http.send(req).await {
            Ok((s, b)) => (
                s.as_u16(),
                serde_json::from_slice(&b).unwrap_or(Value::Null),
            ),
            Err(_) => (0, Value::Null),
        }
    }

    async fn admin_call(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.admin))
            .header("authorization", format!("Bearer {}", self.admin_key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        match self.http.send(req).await {
            Ok((s, b)) => (
                s.as_u16(),
                serde_json::from_slice(&b).unwrap_or(Value::Null),
            ),
            Err(_) => (0, Value::Null),
        }
    }

    /// One request of the mix: `None` when the platform answered as it should, else the request's kind
    /// and the status it got (0: no answer).
    async fn op(&self, op: Op) -> Option<Failure> {
        let status = self.status_of(op).await;
        let expected = if op == Op::Write { 201 } else { 200 };
        (status != expected).then_some((op, status))
    }

    /// The status one request of the mix got (a refresh with no token free runs a read).
    async fn status_of(&self, op: Op) -> u16 {
        match op {
            Op::Read => {
                let id = self.seq.fetch_add(7919, Ordering::Relaxed) % 10_000 + 1;
                let (s, _) = self
                    .call(
                        Method::GET,
                        &format!("/rest/v1/soak?id=eq.{id}&select=id,v"),
                        &self.anon,
                        None,
                    )
                    .await;
                s
            }
            Op::Write => {
                let (s, v) = self
                    .call(
                        Method::POST,
                        "/rest/v1/soak",
                        &self.secret,
                        Some(json!({"v": "w"})),
                    )
                    .await;
                if let Some(id) = v[0]["id"].as_i64().filter(|_| s == 201) {
                    self.acked.lock().unwrap().push(id);
                }
                s
            }
            Op::Refresh => {
                let Some(token) = self.users.lock().unwrap().pop_front() else {
                    return Box::pin(self.status_of(Op::Read)).await;
                };
                let body = json!({ "refresh_token": token });
                let (s, v) = self
                    .call(
                        Method::POST,
                        "/auth/v1/token?grant_type=refresh_token",
                        &self.anon,
                        Some(body),
                    )
                    .await;
                let next = v["refresh_token"]
                    .as_str()
                    .filter(|_| s == 200)
                    .unwrap_or(&token)
                    .to_string();
                self.users.lock().unwrap().push_back(next);
                s
            }
        }
    }

    /// Requests per second `connections` callers achieve, each sending its next request when the last ends.
    async fn closed_loop(self: &Arc<Self>, connections: usize, dur: Duration) -> f64 {
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..connections)
            .map(|i| {
                let (load, done) = (self.clone(), done.clone());
                tokio::spawn(async move {
                    let mut n = i as u64;
                    while start.elapsed() < dur {
                        load.op(Op::nth(n)).await;
                        done.fetch_add(1, Ordering::Relaxed);
                        n += connections as u64;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
    }

    /// `rate` requests per second for `dur`, each timed from when it was due.
    async fn open_loop(self: &Arc<Self>, rate: f64, dur: Duration) -> Run {
        let run = Arc::new(Mutex::new(Run::default()));
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let start = tokio::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed() < dur {
            let due = start + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(due).await;
            n += 1;
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                run.lock().unwrap().dropped += 1;
                continue;
            };
            let (load, run) = (self.clone(), run.clone());
            // Not joined one by one: a finished task's handle would keep its memory until the end.
            tokio::spawn(async move {
                let failure = load.op(Op::nth(n)).await;
                let latency = due.elapsed();
                run.lock().unwrap().record(due.into_std(), latency, failure);
                // The run first: once every slot is free, the run has no other owner.
                drop(run);
                drop(slot);
            });
        }
        // Every request has ended once all the slots are free again.
        let all = u32::try_from(IN_FLIGHT).expect("IN_FLIGHT fits u32");
        drop(
            slots
                .acquire_many(all)
                .await
                .expect("the semaphore is never closed"),
        );
        Arc::try_unwrap(run).ok().unwrap().into_inner().unwrap()
    }

    /// How many acknowledged writes there were and how many of them the table lacks.
    async fn verify_writes(&self) -> (usize, usize) {
        let acked = self.acked.lock().unwrap().clone();
        let mut missing = 0;
        for chunk in acked.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let q = format!("SELECT count(*) AS n FROM soak WHERE id IN ({list})");
            let (_, v) = self
                .admin_call(
                    Method::POST,
                    "/admin/v1/projects/soak/database/query",
                    json!({ "query": q }),
                )
                .await;
            let found = v["data"][0]["n"]
                .as_i64()
                .expect("count of acknowledged rows") as usize;
            missing += chunk.len() - found;
        }
        (acked.len(), missing)
    }
}

/// Creates and deletes a project every 10 s; returns (projects, errors).
async fn admin_loop(load: Arc<Load>, dur: Duration) -> (u64, u64) {
    let (start, mut n, mut errors) = (Instant::now(), 0u64, 0u64);
    while start.elapsed() + Duration::from_secs(10) < dur {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let r = format!("soak-admin-{n}");
        let (s, _) = load
            .admin_call(
                Method::POST,
                "/admin/v1/projects",
                json!({"name": r, "ref": r}),
            )
            .await;
        let (d, _) = load
            .admin_call(
                Method::DELETE,
                &format!("/admin/v1/projects/{r}"),
                Value::Null,
            )
            .await;
        errors += u64::from(s != 201) + u64::from(d != 204);
        n += 1;
    }
    (n, errors)
}

/// A request that was not answered as expected: its kind and the status it got (0: no answer).
type Failure = (Op, u16);

/// What an open-loop run saw.
#[derive(Default)]
struct Run {
    /// (due, latency, the failure if it was not answered as expected), in completion order.
    samples: Vec<(Instant, Duration, Option<Failure>)>,
    dropped: u64,
}

impl Run {
    fn record(&mut self, due: Instant, latency: Duration, failure: Option<Failure>) {
        self.samples.push((due, latency, failure));
    }

    /// Failures of requests due at or after `from`, by kind and status ("Read 503 ×12, …"; 0: no answer).
    fn failures_since(&self, from: Option<Instant>) -> String {
        let mut by = std::collections::BTreeMap::new();
        for (due, _, failure) in &self.samples {
            if let (Some(f), true) = (failure, from.is_none_or(|at| *due >= at)) {
                *by.entry(*f).or_insert(0u64) += 1;
            }
        }
        let parts: Vec<String> = by
            .iter()
            .map(|((op, status), n)| format!("{op:?} {status} ×{n}"))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    fn print(&self, name: &str) {
        let errors = self.samples.iter().filter(|s| s.2.is_some()).count();
        let mut lat: Vec<Duration> = self.samples.iter().map(|s| s.1).collect();
        lat.sort();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "{name}: {} requests, {errors} errors (target 0), {} not sent (generator saturated); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.samples.len(),
            self.dropped,
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
        println!("{name} failures: {}", self.failures_since(None));
    }

    /// Requests due after `at` that failed, and the time from `at` to the last of them.
    fn after(&self, at: Instant) -> (usize, Duration) {
        let failed: Vec<Instant> = self
            .samples
            .iter()
            .filter(|s| s.2.is_some() && s.0 >= at)
            .map(|s| s.0)
            .collect();
        let last = failed
            .iter()
            .max()
            .map_or(Duration::ZERO, |t| t.duration_since(at));
        (failed.len(), last)
    }
}
