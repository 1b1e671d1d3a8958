//! Private channels authorized by the project's `realtime.messages` RLS policies, on a project
//! provisioned by the real tenant-manager from the real template, over real sockets: who may join
//! (Supabase's refusal text otherwise, for another user, for anon, and when a policy fails), who
//! receives and who may send broadcasts and presence, what a new token on a joined channel does,
//! and the REST broadcast to private topics. Every check is rolled back: `realtime.messages` stays
//! empty.

mod support;

use bytes::Bytes;
use http_body_util::Full;
use realtime::protocol::{Message, Vsn};
use realtime::RealtimeConfig;
use serde_json::{json, Value};
use std::time::Duration;
use supactl_common::http_client::HttpClient;
use supactl_common::jwt::{self, now};
use support::{json_of, obj, Client, Project, Replica};
use testkit::ControlPlane;

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";
const QUIET: Duration = Duration::from_millis(400);

/// Each user reads and sends broadcasts in its own room (presence: read only, no track); everyone
/// signed in reads the lobby's broadcasts only; a policy on `boom` fails when it runs.
const POLICIES: &str = "
    CREATE POLICY own_room_read ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'room-' || auth.uid()::text);
    CREATE POLICY own_room_send ON realtime.messages FOR INSERT TO authenticated
      WITH CHECK (realtime.topic() = 'room-' || auth.uid()::text AND extension = 'broadcast');
    CREATE POLICY lobby_read ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'lobby' AND extension = 'broadcast');
    CREATE POLICY boom ON realtime.messages FOR SELECT TO authenticated
      USING (CASE WHEN realtime.topic() = 'boom' THEN 1 / (length(realtime.topic()) - 4) = 1 ELSE false END);
";

/// Sends a `phx_join` for a private `topic` with `access_token` (if any); returns the reply.
async fn join_private(c: &mut Client, topic: &str, token: Option<&str>, config: Value) -> Value {
    let mut config = config;
    config["private"] = json!(true);
    let mut payload = json!({ "config": config });
    if let Some(token) = token {
        payload["access_token"] = json!(token);
    }
    let join_ref = format!("j-{topic}");
    c.send(&Message::json(
        Some(&join_ref),
        Some(&join_ref),
        topic,
        "phx_join",
        obj(payload),
    ))
    .await;
    json_of(&c.recv_event("phx_reply").await)
}

fn refused(topic: &str) -> Value {
    json!({"status": "error", "response": {"reason": format!(
        "Unauthorized: You do not have permissions to read from this Channel topic: {topic}"
    )}})
}

async fn broadcast(c: &mut Client, topic: &str, event: &str) -> String {
    let join_ref = format!("j-{topic}");
    c.push(
        Some(&join_ref),
        topic,
        "broadcast",
        json!({"type": "broadcast", "event": event, "payload": {"n": 1}}),
    )
    .await
}

async fn rest_broadcast(replica: &Replica, token: &str, p: &Project, body: Value) -> u16 {
    let req = http::Request::post(format!("{}/api/broadcast", replica.url))
        .header(realtime::PROJECT_HEADER, &p.project_ref)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let (status, body) = HttpClient::new(Duration::from_secs(5))
        .send(req)
        .await
        .unwrap();
    assert!(status.as_u16() < 300, "{status} {body:?}");
    status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_channels_follow_realtime_messages_policies() {
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    let p = Project::create(&cp, "rtpriv").await;
    let db = cp.project_db(&p.project_ref).await;
    db.batch_execute(POLICIES).await.unwrap();
    let replica = Replica::start(&cp, RealtimeConfig::default()).await;
    let a_token = p.user_token(A, now() + 600);
    let room_a = format!("realtime:room-{A}");

    // Who may join A's room: A; not B, not anon (no token, the socket's role).
    let mut a = Client::connect(&replica, &p, Vsn::V2, "anon").await;
    let joined = join_private(
        &mut a,
        &room_a,
        Some(&a_token),
        json!({"broadcast": {"self": true, "ack": true}, "presence": {"enabled": true}}),
    )
    .await;
    assert_eq!(joined["status"], "ok", "{joined}");
    let mut b = Client::connect(&replica, &p, Vsn::V1, "anon").await;
    let b_token = p.user_token(B, now() + 600);
    let reply = join_private(&mut b, &room_a, Some(&b_token), json!({})).await;
    assert_eq!(reply, refused(&format!("room-{A}")));
    let mut anon = Client::connect(&replica, &p, Vsn::V2, "anon").await;
    let reply = join_private(&mut anon, &room_a, None, json!({})).await;
    assert_eq!(reply, refused(&format!("room-{A}")));
    // A policy that fails refuses too.
    let reply = join_private(&mut b, "realtime:boom", Some(&b_token), json!({})).await;
    assert_eq!(reply, refused("boom"));
    // service_role bypasses RLS.
    let mut service = Client::connect(&replica, &p, Vsn::V2, "service_role").await;
    let reply = join_private(&mut service, &room_a, None, json!({})).await;
    assert_eq!(reply["status"], "ok", "{reply}");

    // The public channel of the same name is another topic.
    let mut public = Client::connect(&replica, &p, Vsn::V2, "anon").await;
    public.join(&room_a, json!({})).await;

    // A may send in its room: its own echo and the ack, and the service socket receives it.
    // It could read presence (presence_state came with the join) but may not track.
    assert_eq!(json_of(&a.recv_event("presence_state").await), json!({}));
    let sent = broadcast(&mut a, &room_a, "hello").await;
    let ack = a.recv_event("phx_reply").await;
    assert_eq!(ack.msg_ref.as_deref(), Some(sent.as_str()));
    assert_eq!(json_of(&a.recv_event("broadcast").await)["event"], "hello");
    assert_eq!(
        json_of(&service.recv_event("broadcast").await)["event"],
        "hello"
    );
    let track = a
        .push(
            Some(&format!("j-{room_a}")),
            &room_a,
            "presence",
            json!({"type": "presence", "event": "track", "payload": {"x": 1}}),
        )
        .await;
    let reply = a.recv_event("phx_reply").await;
    assert_eq!(reply.msg_ref.as_deref(), Some(track.as_str()));
    assert_eq!(json_of(&reply), json!({"status": "error", "response": {}}));
    public.silent(QUIET).await;

    // The lobby: A reads broadcasts there but may not send, nor see presence.
    let joined = join_private(
        &mut a,
        "realtime:lobby",
        Some(&a_token),
        json!({"broadcast": {"ack": true}, "presence": {"enabled": true}}),
    )
    .await;
    assert_eq!(joined["status"], "ok", "{joined}");
    let reply = join_private(&mut service, "realtime:lobby", None, json!({})).await;
    assert_eq!(reply["status"], "ok");
    broadcast(&mut a, "realtime:lobby", "refused").await;
    // No presence_state at the join, no ack; the broadcast reached no one.
    a.silent(QUIET).await;
    service.silent(QUIET).await;
    service
        .push(
            Some("j-realtime:lobby"),
            "realtime:lobby",
            "presence",
            json!({"type": "presence", "event": "track", "payload": {}}),
        )
        .await;
    assert_eq!(
        json_of(&service.recv_event("phx_reply").await)["status"],
        "ok"
    );
    // No presence_diff for A; broadcasts do reach it.
    a.silent(QUIET).await;
    broadcast(&mut service, "realtime:lobby", "news").await;
    let news = a.recv().await;
    assert_eq!(
        (news.topic.as_str(), json_of(&news)["event"].as_str()),
        ("realtime:lobby", Some("news"))
    );

    // REST broadcast by A: to its room (sent), to B's room (skipped silently).
    let mut b_room = Client::connect(&replica, &p, Vsn::V2, "service_role").await;
    let reply = join_private(&mut b_room, &format!("realtime:room-{B}"), None, json!({})).await;
    assert_eq!(reply["status"], "ok");
    let a_rest = jwt::sign(
        json!({"role": "authenticated", "sub": A, "ref": p.project_ref, "exp": now() + 300})
            .as_object()
            .unwrap(),
        p.secret.as_bytes(),
    );
    let body = json!({"messages": [
        {"topic": format!("room-{A}"), "event": "rest-own", "payload": {}, "private": true},
        {"topic": format!("room-{B}"), "event": "rest-other", "payload": {}, "private": true},
    ]});
    assert_eq!(rest_broadcast(&replica, &a_rest, &p, body).await, 202);
    assert_eq!(
        json_of(&service.recv_event("broadcast").await)["event"],
        "rest-own"
    );
    b_room.silent(QUIET).await;

    // A new token on A's room: B's closes it (read revoked), with Supabase's message.
    a.push(
        Some(&format!("j-{room_a}")),
        &room_a,
        "access_token",
        json!({"access_token": b_token}),
    )
    .await;
    let system = a.recv_event("system").await;
    assert_eq!(system.topic, room_a);
    assert_eq!(
        json_of(&system)["message"],
        format!("You no longer have permission to read from this Channel topic: room-{A}")
    );
    assert_eq!(a.recv().await.event, "phx_close");

    let left: i64 = db
        .query_one("SELECT count(*) FROM realtime.messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
