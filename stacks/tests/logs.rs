//! `supactl logs` against moto_server's CloudWatch Logs: one service's events come from its own streams of
//! the ECS group (by the stream prefix the task definitions set), all of them without `--service`, the REST
//! functions' group under `rest` in Lambda mode, in time order from the start time, and a name the stack
//! does not have is refused.

mod common;

use common::{test_config, Moto};
use stacks::kinds::logs::{log_group_name, rest_log_group_name};
use stacks::tail::{log_services, log_target};
use std::time::{SystemTime, UNIX_EPOCH};

async fn put(s: &stacks::Session, group: &str, stream: &str, events: &[(i64, &str)]) {
    let c = &s.clients.logs;
    let _ = c.create_log_group().log_group_name(group).send().await;
    c.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let mut req = c
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream);
    for (t, m) in events {
        req = req.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(*t)
                .message(*m)
                .build()
                .unwrap(),
        );
    }
    req.send().await.unwrap();
}

#[tokio::test]
async fn each_service_reads_its_own_streams_in_time_order() {
    let moto = Moto::start();
    let cfg = test_config();
    let s = moto.session_without_images(cfg.clone()).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ecs = log_group_name(&cfg);
    put(
        &s,
        &ecs,
        "gateway/gateway/task-1",
        &[(now - 3000, "gw first"), (now - 1000, "gw third")],
    )
    .await;
    put(
        &s,
        &ecs,
        "tenant-manager/tenant-manager/task-2",
        &[(now - 2000, "tm second")],
    )
    .await;
    put(
        &s,
        &ecs,
        "gateway/gateway/task-3",
        &[(now - 600_000, "gw too old")],
    )
    .await;
    put(
        &s,
        &rest_log_group_name(&cfg),
        "2026/12/07/[$LATEST]abc",
        &[(now - 500, "rest line")],
    )
    .await;

    let start = now - 60_000;
    let gateway = log_target(&cfg, Some("gateway")).unwrap();
    let lines: Vec<_> = s
        .log_events(&gateway, start)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(lines, ["gw first", "gw third"]);

    let all = log_target(&cfg, None).unwrap();
    let lines: Vec<_> = s
        .log_events(&all, start)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(lines, ["gw first", "tm second", "gw third"]);
    let older = s.log_events(&all, now - 3_600_000).await.unwrap();
    assert_eq!(older[0].message, "gw too old");
    assert_eq!(older[0].stream, "gateway/gateway/task-3");

    let rest = log_target(&cfg, Some("rest")).unwrap();
    let lines: Vec<_> = s
        .log_events(&rest, start)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(lines, ["rest line"]);

    assert!(log_target(&cfg, Some("kong")).is_none());
    assert!(log_services(&cfg).contains(&"tenant-manager".to_string()));
}
