//! Limits with real Deno workers: the wall-clock limit, the heap limit, crashes, and how many workers run.
//! Each failure answers a JSON error with a stable code, and the next invocation is served by a new worker.
//! The control plane is a test double (see `common`).

mod common;

use common::Platform;
use http::{Method, StatusCode};
use std::time::Duration;

/// `/ok` answers; `/hang` never does; `/oom` fills the heap; `/exit` ends the process.
const FRAGILE: &str = r#"
Deno.serve(async (req: Request) => {
  const path = new URL(req.url).pathname;
  if (path.endsWith("/hang")) await new Promise(() => {});
  if (path.endsWith("/spin")) while (true) {}
  if (path.endsWith("/oom")) {
    const hoard = [];
    while (true) hoard.push(new Array(100_000).fill(Math.random()));
  }
  if (path.endsWith("/exit")) Deno.exit(3);
  return new Response("ok " + Deno.pid);
});
"#;

async fn ok_pid(p: &Platform) -> String {
    let (status, _, body) = p.call("proj1", Method::GET, "/fragile/ok", &[], b"").await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn a_function_past_its_time_limit_gets_504_and_a_new_worker() {
    let p = Platform::with(|c| c.request_timeout = Duration::from_secs(2)).await;
    p.deploy("proj1", "fragile", FRAGILE);
    let before = ok_pid(&p).await;
    for path in ["/fragile/hang", "/fragile/spin"] {
        let (status, err) = p.get_json("proj1", path).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{path}");
        assert_eq!(err["code"], "function_timeout", "{path}");
    }
    let after = ok_pid(&p).await;
    assert_ne!(before, after, "a worker that timed out is replaced");
}

#[tokio::test]
async fn a_function_past_its_heap_limit_gets_a_clean_5xx_and_the_next_call_works() {
    let p = Platform::with(|c| c.max_heap_mb = 32).await;
    p.deploy("proj1", "fragile", FRAGILE);
    let before = ok_pid(&p).await;
    let (status, err) = p.get_json("proj1", "/fragile/oom").await;
    assert_eq!(status.as_u16(), functions::error::WORKER_LIMIT_STATUS);
    assert_eq!(err["code"], "worker_memory_limit");
    let after = ok_pid(&p).await;
    assert_ne!(before, after);
    let logs = p.supervisor.logs("proj1", "fragile");
    assert!(
        logs.iter()
            .any(|r| r.level == "worker" && r.message.contains("out of memory")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn a_crashed_worker_is_replaced() {
    let p = Platform::start().await;
    p.deploy("proj1", "fragile", FRAGILE);
    let before = ok_pid(&p).await;
    let (status, err) = p.get_json("proj1", "/fragile/exit").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(err["code"], "worker_crashed");
    assert_ne!(before, ok_pid(&p).await);
}

#[tokio::test]
async fn a_module_that_does_not_load_is_a_boot_error_with_logs() {
    let p = Platform::start().await;
    p.deploy("proj1", "broken", "this is not typescript (");
    p.deploy("proj1", "noserve", "console.log('no server here');");
    for slug in ["broken", "noserve"] {
        let (status, err) = p.get_json("proj1", &format!("/{slug}")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{slug}");
        assert_eq!(err["code"], "function_boot_error", "{slug}");
    }
    let logs = p.supervisor.logs("proj1", "broken");
    assert!(logs.iter().any(|r| r.level == "stderr"), "{logs:?}");
    let logs = p.supervisor.logs("proj1", "noserve");
    assert!(
        logs.iter()
            .any(|r| r.message.contains("did not call Deno.serve")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn workers_per_project_are_bounded_and_idle_ones_make_room() {
    let p = Platform::with(|c| {
        c.max_workers_per_project = 2;
        c.max_workers = 3;
    })
    .await;
    for slug in ["a", "b", "c"] {
        p.deploy("proj1", slug, FRAGILE);
    }
    p.deploy("proj2", "a", FRAGILE);
    p.deploy("proj3", "a", FRAGILE);
    for slug in ["a", "b", "c"] {
        let (status, _, _) = p
            .call("proj1", Method::GET, &format!("/{slug}/ok"), &[], b"")
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(p.supervisor.workers() <= 2);
    }
    for project in ["proj2", "proj3"] {
        let (status, _, _) = p.call(project, Method::GET, "/a/ok", &[], b"").await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(p.supervisor.workers(), 3);
}

#[tokio::test]
async fn a_busy_project_at_its_limit_gets_503() {
    let p = Platform::with(|c| {
        c.max_workers_per_project = 1;
        c.request_timeout = Duration::from_secs(5);
    })
    .await;
    p.deploy("proj1", "fragile", FRAGILE);
    p.deploy("proj1", "other", FRAGILE);
    let hanging = {
        let url = format!("{}/fragile/hang", p.url);
        let client = p.client().clone();
        tokio::spawn(async move {
            let req = http::Request::get(url)
                .header("x-test-project", "proj1")
                .header("x-test-jwt", "valid")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            client.request(req).await.unwrap().status()
        })
    };
    // the hanging invocation holds the project's only worker
    while p.supervisor.workers() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, err) = p.get_json("proj1", "/other/ok").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err["code"], "worker_limit");
    assert_eq!(hanging.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn a_response_body_past_the_time_limit_is_cut_off() {
    let p = Platform::with(|c| c.request_timeout = Duration::from_secs(2)).await;
    p.deploy(
        "proj1",
        "dribble",
        r#"Deno.serve(() => new Response(new ReadableStream({
             start(c) { c.enqueue(new TextEncoder().encode("head start")); },
           })));"#,
    );
    let req = http::Request::get(format!("{}/dribble", p.url))
        .header("x-test-project", "proj1")
        .header("x-test-jwt", "valid")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let res = p.client().request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    use http_body_util::BodyExt;
    assert!(
        res.into_body().collect().await.is_err(),
        "the body must end in an error, not look complete"
    );
}

#[tokio::test]
async fn idle_workers_stop_and_concurrent_first_calls_share_one_start() {
    let p = Platform::with(|c| c.idle_timeout = Duration::from_secs(1)).await;
    p.deploy("proj1", "fragile", FRAGILE);
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let (client, url) = (p.client().clone(), format!("{}/fragile/ok", p.url));
            tokio::spawn(async move {
                let req = http::Request::get(url)
                    .header("x-test-project", "proj1")
                    .header("x-test-jwt", "valid")
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                let res = client.request(req).await.unwrap();
                use http_body_util::BodyExt;
                res.into_body().collect().await.unwrap().to_bytes()
            })
        })
        .collect();
    let mut pids = Vec::new();
    for c in calls {
        pids.push(c.await.unwrap());
    }
    pids.dedup();
    assert_eq!(
        pids.len(),
        1,
        "one worker served every first call: {pids:?}"
    );
    assert_eq!(p.supervisor.workers(), 1);
    // the sweeper stops it once idle (polled, under a bound)
    let mut waited = Duration::ZERO;
    while p.supervisor.workers() > 0 && waited < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert_eq!(p.supervisor.workers(), 0);
    assert_ne!(ok_pid(&p).await.into_bytes(), pids[0]);
}

#[tokio::test]
async fn stopping_a_project_stops_its_workers_only() {
    let p = Platform::start().await;
    p.deploy("proj1", "fragile", FRAGILE);
    p.deploy("proj2", "fragile", FRAGILE);
    let before = ok_pid(&p).await;
    let (_, _, other) = p.call("proj2", Method::GET, "/fragile/ok", &[], b"").await;
    assert_eq!(p.supervisor.workers(), 2);
    p.supervisor.stop_project("proj1");
    assert_eq!(p.supervisor.workers(), 1);
    assert_ne!(ok_pid(&p).await, before);
    let (_, _, again) = p.call("proj2", Method::GET, "/fragile/ok", &[], b"").await;
    assert_eq!(again, other);
}

#[tokio::test]
async fn a_redeploy_under_load_at_the_projects_limit_is_served() {
    let p = Platform::with(|c| {
        c.max_workers_per_project = 1;
        c.request_timeout = Duration::from_secs(5);
    })
    .await;
    p.deploy("proj1", "fragile", FRAGILE);
    let before = ok_pid(&p).await;
    // an invocation keeps the old version busy while the new one is deployed
    let hanging = {
        let (client, url) = (p.client().clone(), format!("{}/fragile/hang", p.url));
        tokio::spawn(async move {
            let req = http::Request::get(url)
                .header("x-test-project", "proj1")
                .header("x-test-jwt", "valid")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            client.request(req).await.unwrap().status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.deploy("proj1", "fragile", FRAGILE);
    assert_ne!(
        ok_pid(&p).await,
        before,
        "the new version runs in a new worker"
    );
    // the old worker finished its invocation (here: cut off at the limit) before it stopped
    assert_eq!(hanging.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
}
