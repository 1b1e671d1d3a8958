//! Realtime over real WebSockets: both protocol versions, join/heartbeat/leave, broadcast with
//! `self` and `ack`, topic and project isolation, presence seen by another socket and cleaned up
//! when a socket closes, the REST broadcast endpoint, and the socket bounds (idle timeout, frame
//! size, refused handshakes). One control plane serves every scenario (starting PostgreSQL is the
//! slow part); each scenario uses its own topics.

mod support;

use bytes::Bytes;
use http_body_util::Full;
use realtime::protocol::Vsn;
use realtime::socket::SocketConfig;
use realtime::RealtimeConfig;
use serde_json::{json, Value};
use std::time::Duration;
use supactl_common::http_client::HttpClient;
use support::{json_of, Client, Project, Replica};
use testkit::ControlPlane;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_over_real_sockets() {
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    let p1 = Project::create(&cp, "rtone").await;
    let p2 = Project::create(&cp, "rttwo").await;
    let replica = Replica::start(&cp, RealtimeConfig::default()).await;

    heartbeat_join_leave(&replica, &p1, Vsn::V1).await;
    heartbeat_join_leave(&replica, &p1, Vsn::V2).await;
    broadcast_self_and_ack(&replica, &p1, &p2).await;
    presence_join_sync_leave(&replica, &p1).await;
    rest_broadcast(&replica, &p1).await;
    token_expiry_and_refresh(&replica, &p1).await;
    handshakes_refused(&replica, &p1).await;

    let tight = RealtimeConfig {
        socket: SocketConfig {
            idle_timeout: Duration::from_millis(800),
            max_frame_bytes: 16 * 1024,
            ..SocketConfig::default()
        },
        ..RealtimeConfig::default()
    };
    let tight = Replica::start(&cp, tight).await;
    socket_bounds(&tight, &p1).await;

    let limited = RealtimeConfig {
        limits: realtime::limits::ProjectLimits {
            max_sockets: 2,
            channels_per_socket: 2,
            events_per_second: 3,
            ..Default::default()
        },
        ..RealtimeConfig::default()
    };
    let limited = Replica::start(&cp, limited).await;
    project_limits(&limited, &p1).await;
    server_shutdown(limited, &p1).await;
}

async fn project_limits(replica: &Replica, p: &Project) {
    let mut c = Client::connect(replica, p, Vsn::V2, "anon").await;
    let join_ref = c.join("realtime:l1", json!({})).await;
    c.join("realtime:l2", json!({})).await;
    c.push(None, "realtime:l3", "phx_join", json!({"config": {}}))
        .await;
    let refused = json_of(&c.recv_event("phx_reply").await);
    assert_eq!(
        refused["response"]["reason"],
        "ChannelRateLimitReached: Too many channels"
    );

    // A second socket fits, a third is refused before the upgrade with Supabase's text.
    let _second = Client::connect(replica, p, Vsn::V1, "anon").await;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{}/websocket", replica.url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert(realtime::PROJECT_HEADER, p.project_ref.parse().unwrap());
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", p.token("anon")).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 429);
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
            assert_eq!(body, json!({"error": "Too many connected users"}));
        }
        other => panic!("third socket: {other:?}"),
    }

    // Past the project's events per second, the channel is closed with Supabase's system error.
    for n in 0..5 {
        c.push(
            Some(&join_ref),
            "realtime:l1",
            "broadcast",
            json!({"type": "broadcast", "event": "e", "payload": {"n": n}}),
        )
        .await;
    }
    let system = json_of(&c.recv_event("system").await);
    assert_eq!(
        system["message"], "Too many messages per second",
        "{system}"
    );
    assert_eq!(c.recv_event("phx_close").await.topic, "realtime:l1");
}

async fn server_shutdown(replica: Replica, p: &Project) {
    // (the limited replica's sockets from the previous scenario are gone)
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = Client::connect(&replica, p, Vsn::V1, "anon").await;
    c.join("realtime:bye", json!({})).await;
    replica.shutdown.cancel();
    let system = json_of(&c.recv_event("system").await);
    assert_eq!(system["status"], "error");
    assert_eq!(c.recv().await.event, "phx_close");
    assert_eq!(
        c.closed(Duration::from_secs(5)).await,
        Some(CloseCode::Away)
    );
}

async fn heartbeat_join_leave(replica: &Replica, p: &Project, vsn: Vsn) {
    let mut c = Client::connect(replica, p, vsn, "anon").await;
    let hb = c.push(None, "phoenix", "heartbeat", json!({})).await;
    let reply = c.recv().await;
    assert_eq!(
        (reply.event.as_str(), reply.msg_ref.as_deref()),
        ("phx_reply", Some(hb.as_str()))
    );
    assert_eq!(json_of(&reply), json!({"status": "ok", "response": {}}));

    let join_ref = c.join("realtime:hb", json!({})).await;
    let leave = c
        .push(Some(&join_ref), "realtime:hb", "phx_leave", json!({}))
        .await;
    let reply = c.recv_event("phx_reply").await;
    assert_eq!(reply.msg_ref.as_deref(), Some(leave.as_str()));
    assert_eq!(json_of(&reply)["status"], "ok");
    // Left: the topic is no longer matched.
    c.push(
        Some(&join_ref),
        "realtime:hb",
        "broadcast",
        json!({"type": "broadcast", "event": "e", "payload": {}}),
    )
    .await;
    let reply = c.recv_event("phx_reply").await;
    assert_eq!(
        json_of(&reply),
        json!({"status": "error", "response": {"reason": "unmatched topic"}})
    );
}

async fn broadcast_self_and_ack(replica: &Replica, p1: &Project, p2: &Project) {
    let topic = "realtime:room";
    // A speaks 2.0.0 (binary user broadcasts, as supabase-js), B 1.0.0 (JSON, as supabase-py).
    let mut a = Client::connect(replica, p1, Vsn::V2, "anon").await;
    let mut b = Client::connect(replica, p1, Vsn::V1, "anon").await;
    let mut other_topic = Client::connect(replica, p1, Vsn::V2, "anon").await;
    let mut other_project = Client::connect(replica, p2, Vsn::V2, "anon").await;
    let a_join = a
        .join(topic, json!({"broadcast": {"self": false, "ack": true}}))
        .await;
    let b_join = b.join(topic, json!({"broadcast": {"self": true}})).await;
    other_topic.join("realtime:elsewhere", json!({})).await;
    other_project
        .join(topic, json!({"broadcast": {"self": true}}))
        .await;

    let sent = a
        .push(
            Some(&a_join),
            topic,
            "broadcast",
            json!({"type": "broadcast", "event": "msg", "payload": {"n": 1}}),
        )
        .await;
    let ack = a.recv().await;
    assert_eq!(
        (ack.event.as_str(), ack.msg_ref.as_deref()),
        ("phx_reply", Some(sent.as_str())),
        "ack"
    );
    let got = b.recv().await;
    assert_eq!(got.event, "broadcast");
    assert_eq!(
        json_of(&got),
        json!({"type": "broadcast", "event": "msg", "payload": {"n": 1}})
    );
    a.silent(QUIET).await; // no echo without `self`

    b.push(
        Some(&b_join),
        topic,
        "broadcast",
        json!({"type": "broadcast", "event": "msg", "payload": {"n": 2}}),
    )
    .await;
    assert_eq!(json_of(&a.recv().await)["payload"], json!({"n": 2}));
    // `self`: B gets its own message back; no `ack` asked, so no reply.
    let echo = b.recv().await;
    assert_eq!(
        (echo.event.as_str(), json_of(&echo)["payload"].clone()),
        ("broadcast", json!({"n": 2}))
    );
    b.silent(QUIET).await;

    // The same topic name in another project, and another topic of this one, heard nothing.
    other_topic.silent(QUIET).await;
    other_project.silent(Duration::ZERO).await;
}

async fn presence_join_sync_leave(replica: &Replica, p: &Project) {
    let topic = "realtime:lobby";
    let mut a = Client::connect(replica, p, Vsn::V2, "anon").await;
    let a_join = a
        .join(topic, json!({"presence": {"key": "ann", "enabled": true}}))
        .await;
    assert_eq!(json_of(&a.recv_event("presence_state").await), json!({}));
    a.push(
        Some(&a_join),
        topic,
        "presence",
        json!({"type": "presence", "event": "track", "payload": {"mood": "ok"}}),
    )
    .await;
    assert_eq!(json_of(&a.recv_event("phx_reply").await)["status"], "ok");
    let own = json_of(&a.recv_event("presence_diff").await);
    assert_eq!(own["joins"]["ann"]["metas"][0]["mood"], "ok");

    // A socket joining later gets the whole state (sync).
    let mut b = Client::connect(replica, p, Vsn::V1, "anon").await;
    let b_join = b
        .join(topic, json!({"presence": {"key": "bob", "enabled": true}}))
        .await;
    let state = json_of(&b.recv_event("presence_state").await);
    assert_eq!(state["ann"]["metas"][0]["mood"], "ok", "{state}");
    assert!(state["ann"]["metas"][0]["phx_ref"].is_string());

    b.push(
        Some(&b_join),
        topic,
        "presence",
        json!({"type": "presence", "event": "track", "payload": {"mood": "new"}}),
    )
    .await;
    let diff = json_of(&a.recv_event("presence_diff").await);
    assert_eq!(diff["joins"]["bob"]["metas"][0]["mood"], "new", "{diff}");

    // B goes away without a leave: its entry is cleaned up and A is told.
    drop(b);
    let diff = json_of(&a.recv_event("presence_diff").await);
    assert_eq!(diff["leaves"]["bob"]["metas"][0]["mood"], "new", "{diff}");
    assert_eq!(diff["joins"], json!({}));
    let mut c = Client::connect(replica, p, Vsn::V2, "anon").await;
    c.join(topic, json!({"presence": {"enabled": true}})).await;
    let state = json_of(&c.recv_event("presence_state").await);
    assert_eq!(
        state.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["ann"],
        "{state}"
    );
}

async fn post(replica: &Replica, p: &Project, role: &str, body: &Value) -> (u16, Value) {
    let req = http::Request::post(format!("{}/api/broadcast", replica.url))
        .header(realtime::PROJECT_HEADER, &p.project_ref)
        .header("authorization", format!("Bearer {}", p.token(role)))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let (status, body) = HttpClient::new(Duration::from_secs(5))
        .send(req)
        .await
        .unwrap();
    (
        status.as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn rest_broadcast(replica: &Replica, p: &Project) {
    let mut sub = Client::connect(replica, p, Vsn::V1, "anon").await;
    sub.join("realtime:news", json!({})).await;
    let body = json!({"messages": [
        {"topic": "news", "event": "headline", "payload": {"title": "hi"}},
        {"topic": "news", "event": "secret", "payload": {}, "private": true},
    ]});
    assert_eq!(post(replica, p, "service_role", &body).await.0, 202);
    let got = sub.recv().await;
    assert_eq!(
        json_of(&got),
        json!({"type": "broadcast", "event": "headline", "payload": {"title": "hi"}})
    );
    // The private message went to the private topic, which this public channel is not.
    sub.silent(QUIET).await;

    let (status, err) = post(
        replica,
        p,
        "anon",
        &json!({"messages": [{"topic": "news"}]}),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    assert!(err["error"].as_str().unwrap().contains("event"), "{err}");
}

async fn token_expiry_and_refresh(replica: &Replica, p: &Project) {
    use supactl_common::jwt::now;
    let mut c = Client::connect(replica, p, Vsn::V2, "anon").await;
    let soon = p.user_token("u1", now() + 2);
    let kept = c.join("realtime:kept", json!({})).await;
    // (the token goes beside `config` in the join payload, as supabase-js sends it)
    let msg = realtime::protocol::Message::json(
        Some("90"),
        Some("90"),
        "realtime:expiring",
        "phx_join",
        support::obj(json!({"config": {}, "access_token": soon})),
    );
    c.send(&msg).await;
    assert_eq!(json_of(&c.recv_event("phx_reply").await)["status"], "ok");
    let msg = realtime::protocol::Message::json(
        Some("91"),
        Some("91"),
        "realtime:refreshed",
        "phx_join",
        support::obj(json!({"config": {}, "access_token": soon})),
    );
    c.send(&msg).await;
    assert_eq!(json_of(&c.recv_event("phx_reply").await)["status"], "ok");
    let later = p.user_token("u1", now() + 600);
    c.push(
        Some("91"),
        "realtime:refreshed",
        "access_token",
        json!({"access_token": later}),
    )
    .await;

    // The channel whose token expired is closed: system error, then phx_close.
    let system = c.recv_event("system").await;
    assert_eq!(system.topic, "realtime:expiring");
    let payload = json_of(&system);
    assert_eq!(
        (payload["extension"].as_str(), payload["status"].as_str()),
        (Some("system"), Some("error"))
    );
    assert!(
        payload["message"]
            .as_str()
            .unwrap()
            .starts_with("Token has expired"),
        "{payload}"
    );
    let close = c.recv().await;
    assert_eq!(
        (close.event.as_str(), close.topic.as_str()),
        ("phx_close", "realtime:expiring")
    );
    // The refreshed one and the one without a token of its own stay joined.
    c.silent(Duration::from_millis(1500)).await;
    for (topic, join_ref) in [
        ("realtime:refreshed", "91"),
        ("realtime:kept", kept.as_str()),
    ] {
        c.push(
            Some(join_ref),
            topic,
            "presence",
            json!({"event": "untrack"}),
        )
        .await;
        let reply = c.recv_event("phx_reply").await;
        assert_eq!(json_of(&reply)["status"], "ok", "{topic}: {reply:?}");
    }
    // A token that does not verify closes the channel it was pushed on.
    c.push(
        Some("91"),
        "realtime:refreshed",
        "access_token",
        json!({"access_token": "e30.e30.bad"}),
    )
    .await;
    let system = json_of(&c.recv_event("system").await);
    assert!(
        system["message"]
            .as_str()
            .unwrap()
            .starts_with("InvalidJWTToken"),
        "{system}"
    );
    assert_eq!(c.recv().await.event, "phx_close");
}

async fn handshakes_refused(replica: &Replica, p: &Project) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/websocket?vsn=2.0.0", replica.url.replace("http", "ws"));
    let attempt = |token: String, project: String| {
        let mut req = url.clone().into_client_request().unwrap();
        req.headers_mut()
            .insert(realtime::PROJECT_HEADER, project.parse().unwrap());
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the handshake was accepted"),
    };
    let forged = Project {
        project_ref: p.project_ref.clone(),
        secret: "not-the-secret".into(),
    };
    assert_eq!(
        status(attempt(forged.token("service_role"), p.project_ref.clone()).await),
        401
    );
    assert_eq!(
        status(attempt(p.token("anon"), "nosuchproject".into()).await),
        404
    );
    let bad_vsn = format!("{}/websocket?vsn=3.0.0", replica.url.replace("http", "ws"));
    let mut req = bad_vsn.into_client_request().unwrap();
    req.headers_mut()
        .insert(realtime::PROJECT_HEADER, p.project_ref.parse().unwrap());
    assert_eq!(status(tokio_tungstenite::connect_async(req).await), 400);
}

async fn socket_bounds(replica: &Replica, p: &Project) {
    // Idle: no frame for the idle timeout closes the socket normally.
    let mut idle = Client::connect(replica, p, Vsn::V2, "anon").await;
    let started = std::time::Instant::now();
    assert_eq!(
        idle.closed(Duration::from_secs(5)).await,
        Some(CloseCode::Normal)
    );
    assert!(started.elapsed() >= Duration::from_millis(700));

    // Heartbeats keep a socket open past the idle timeout.
    let mut alive = Client::connect(replica, p, Vsn::V1, "anon").await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        alive.push(None, "phoenix", "heartbeat", json!({})).await;
        assert_eq!(alive.recv().await.event, "phx_reply");
    }

    // A frame over the size limit is refused with 1009 before it is parsed.
    let mut big = Client::connect(replica, p, Vsn::V2, "anon").await;
    big.send_raw(WsMessage::Text("x".repeat(32 * 1024).into()))
        .await;
    assert_eq!(
        big.closed(Duration::from_secs(5)).await,
        Some(CloseCode::Size)
    );

    // A frame that is not the protocol closes the socket with 1007.
    let mut garbage = Client::connect(replica, p, Vsn::V1, "anon").await;
    garbage.send_raw(WsMessage::Text("[1,2".into())).await;
    assert_eq!(
        garbage.closed(Duration::from_secs(5)).await,
        Some(CloseCode::Invalid)
    );

    // Closed sockets are no longer counted against the project.
    drop((idle, alive, big, garbage));
    for _ in 0..50 {
        if replica.realtime.sockets(&p.project_ref) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "sockets still counted: {}",
        replica.realtime.sockets(&p.project_ref)
    );
}
