//! A socket's conversation as supabase-js (vsn 2.0.0) and supabase-py (vsn 1.0.0) have it, decoded
//! from their frames with the protocol codec.

use super::*;
use crate::protocol::{Codec, Frame, FrameRef, Limits, UserPayload, Vsn};
use bytes::Bytes;

fn js(frame: &str) -> Message {
    Codec::new(Vsn::V2, Limits::default())
        .decode_client(FrameRef::Text(frame))
        .unwrap()
}

fn py(frame: &str) -> Message {
    Codec::new(Vsn::V1, Limits::default())
        .decode_client(FrameRef::Text(frame))
        .unwrap()
}

fn session() -> Session {
    Session::new(JoinLimits::default(), PresenceLimits::default())
}

fn sent(effects: &[Effect]) -> Vec<String> {
    let codec = Codec::new(Vsn::V2, Limits::default());
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) => match codec.encode_server(m).unwrap() {
                Frame::Text(t) => Some(t),
                Frame::Binary(_) => None,
            },
            _ => None,
        })
        .collect()
}

/// Joins `topic` with `config` and returns the effects of the accepted join.
fn join(s: &mut Session, topic: &str, join_ref: &str, config: &str) -> Vec<Effect> {
    let effects = s.handle(js(&format!(
        r#"["{join_ref}","{join_ref}","{topic}","phx_join",{{"config":{config}}}]"#
    )));
    let Some(Effect::Join(request)) = effects.last() else {
        panic!("join effect expected: {effects:?}")
    };
    s.joined(request, "key-1".into())
}

#[test]
fn heartbeat_is_answered() {
    let effects = session().handle(js(r#"[null,"9","phoenix","heartbeat",{}]"#));
    assert_eq!(
        sent(&effects),
        [r#"[null,"9","phoenix","phx_reply",{"response":{},"status":"ok"}]"#]
    );
}

#[test]
fn messages_on_unjoined_topics_are_unmatched() {
    let effects = session().handle(js(
        r#"["1","2","realtime:room","broadcast",{"type":"broadcast","event":"e","payload":{}}]"#,
    ));
    assert_eq!(
        sent(&effects),
        [
            r#"["1","2","realtime:room","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]"#
        ]
    );
    let effects = session().handle(js(r#"["1","1","room","phx_join",{}]"#));
    assert!(sent(&effects)[0].contains(r#""reason":"unmatched topic""#));
    let effects = session().handle(js(r#"["1","1","realtime:","phx_join",{}]"#));
    assert!(sent(&effects)[0].contains("TopicNameRequired: You must provide a topic name"));
}

#[test]
fn join_replies_with_bindings_and_reports_bad_ones() {
    let mut s = session();
    let effects = join(
        &mut s,
        "realtime:room",
        "1",
        r#"{"postgres_changes":[{"event":"INSERT","schema":"public","table":"todos"},{"event":"*","schema":"public","table":"t","filter":"id=foo.1"}]}"#,
    );
    let frames = sent(&effects);
    assert_eq!(frames.len(), 2);
    let reply: Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(reply[3], "phx_reply");
    assert_eq!(reply[4]["status"], "ok");
    let bindings = reply[4]["response"]["postgres_changes"].as_array().unwrap();
    assert_eq!(bindings.len(), 2);
    assert_eq!(bindings[0]["table"], "todos");
    assert!(bindings[0]["id"].is_u64());
    let system: Value = serde_json::from_str(&frames[1]).unwrap();
    assert_eq!(
        (system[0].as_str(), system[1].as_str(), system[3].as_str()),
        (Some("1"), None, Some("system"))
    );
    assert_eq!(system[4]["extension"], "postgres_changes");
    assert_eq!(system[4]["status"], "error");
    assert_eq!(system[4]["channel"], "room");
    assert!(system[4]["message"]
        .as_str()
        .unwrap()
        .starts_with("Error parsing `filter` params"));
    assert_eq!(s.channel_count(), 1);
    assert_eq!(s.presence_key("realtime:room"), Some("key-1"));
}

#[test]
fn refused_and_invalid_joins_reply_errors() {
    let mut s = Session::new(
        JoinLimits {
            max_bindings: 0,
            ..JoinLimits::default()
        },
        PresenceLimits::default(),
    );
    let effects = s.handle(js(
        r#"["1","1","realtime:a","phx_join",{"config":{"postgres_changes":[{"table":"t"}]}}]"#,
    ));
    assert!(sent(&effects)[0]
        .contains("InvalidJoinPayload: 1 postgres_changes bindings, at most 0 allowed"));
    let effects = s.handle(js(r#"["1","1","realtime:a","phx_join",{}]"#));
    let Some(Effect::Join(request)) = effects.first() else {
        panic!()
    };
    let refusal = s.join_failed(
        request,
        "ClientJoinRateLimitReached: Too many joins per second",
    );
    assert_eq!(
        sent(&[refusal]),
        [
            r#"["1","1","realtime:a","phx_reply",{"response":{"reason":"ClientJoinRateLimitReached: Too many joins per second"},"status":"error"}]"#
        ]
    );
    assert_eq!(s.channel_count(), 0);
}

#[test]
fn a_second_join_closes_the_first_channel() {
    let mut s = session();
    join(&mut s, "realtime:room", "1", "{}");
    let effects = s.handle(js(r#"["3","3","realtime:room","phx_join",{"config":{}}]"#));
    assert_eq!(
        sent(&effects),
        [r#"["1","1","realtime:room","phx_close",{}]"#]
    );
    assert!(matches!(&effects[1], Effect::Leave { topic } if topic == "realtime:room"));
    assert!(matches!(&effects[2], Effect::Join(_)));
}

#[test]
fn broadcasts_from_both_clients_honour_self_and_ack() {
    let mut s = session();
    join(
        &mut s,
        "realtime:room",
        "1",
        r#"{"broadcast":{"self":true,"ack":true}}"#,
    );
    join(&mut s, "realtime:quiet", "2", "{}");

    // supabase-py: JSON in a text frame.
    let effects = s.handle(py(r#"{"topic":"realtime:room","event":"broadcast","payload":{"type":"broadcast","event":"msg","payload":{"n":1}},"ref":"4","join_ref":"1"}"#));
    let [Effect::Broadcast {
        topic,
        broadcast,
        echo_self,
        ack,
    }] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(
        (topic.as_str(), broadcast.event.as_str(), *echo_self),
        ("realtime:room", "msg", true)
    );
    assert_eq!(
        broadcast.payload,
        UserPayload::Json(Bytes::from_static(br#"{"n":1}"#))
    );
    assert_eq!(
        sent(&[Effect::Send(ack.clone().unwrap())]),
        [r#"["1","4","realtime:room","phx_reply",{"response":{},"status":"ok"}]"#]
    );

    // supabase-js: a kind 3 frame.
    let mut frame = vec![3u8, 1, 1, 14, 3, 0, 1];
    frame.extend_from_slice(b"25realtime:quietmsg{}");
    let msg = Codec::new(Vsn::V2, Limits::default())
        .decode_client(FrameRef::Binary(&frame))
        .unwrap();
    let effects = s.handle(msg);
    let [Effect::Broadcast {
        echo_self: false,
        ack: None,
        ..
    }] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };

    // A JSON broadcast without an event name is dropped.
    assert!(s
        .handle(js(
            r#"["2","6","realtime:quiet","broadcast",{"type":"broadcast"}]"#
        ))
        .is_empty());
}

#[test]
fn presence_pushes_carry_the_key_and_reply() {
    let mut s = session();
    join(
        &mut s,
        "realtime:room",
        "1",
        r#"{"presence":{"key":"u1","enabled":true}}"#,
    );
    let effects = s.handle(js(r#"["1","5","realtime:room","presence",{"type":"presence","event":"track","payload":{"online_at":"now"}}]"#));
    let [Effect::Presence {
        key,
        request: PresenceRequest::Track(meta),
        reply,
        ..
    }] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(key, "key-1");
    assert_eq!(meta["online_at"], "now");
    assert_eq!(reply.msg_ref.as_deref(), Some("5"));
    let effects = s.handle(js(
        r#"["1","6","realtime:room","presence",{"type":"presence","event":"track","payload":"x"}]"#,
    ));
    assert!(sent(&effects)[0].contains(r#""reason":"Presence track payload must be a map""#));
    let effects = s.handle(js(
        r#"["1","7","realtime:room","presence",{"type":"presence","event":"untrack"}]"#,
    ));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Presence {
            request: PresenceRequest::Untrack,
            ..
        }]
    ));
}

#[test]
fn access_tokens_pass_only_when_new() {
    let mut s = session();
    let effects = s.handle(js(
        r#"["1","1","realtime:room","phx_join",{"config":{},"access_token":"jwt.one.x"}]"#,
    ));
    let Some(Effect::Join(request)) = effects.last() else {
        panic!()
    };
    s.joined(request, "k".into());
    let token = |t: &str| {
        js(&format!(
            r#"["1","2","realtime:room","access_token",{{"access_token":{t}}}]"#
        ))
    };
    assert!(s.handle(token(r#""jwt.one.x""#)).is_empty());
    assert!(s.handle(token(r#""sb_publishable_abc""#)).is_empty());
    assert!(s.handle(token("null")).is_empty());
    let effects = s.handle(token(r#""jwt.two.y""#));
    assert_eq!(
        effects,
        [Effect::AccessToken {
            topic: "realtime:room".into(),
            token: "jwt.two.y".into()
        }]
    );
    assert!(s.handle(token(r#""jwt.two.y""#)).is_empty());
}

#[test]
fn leave_and_server_shutdown() {
    let mut s = session();
    join(&mut s, "realtime:a", "1", "{}");
    join(&mut s, "realtime:b", "2", "{}");
    let effects = s.handle(js(r#"["1","3","realtime:a","phx_leave",{}]"#));
    assert_eq!(
        sent(&effects),
        [r#"["1","3","realtime:a","phx_reply",{"response":{},"status":"ok"}]"#]
    );
    assert!(matches!(&effects[1], Effect::Leave { topic } if topic == "realtime:a"));
    assert!(sent(&s.handle(js(
        r#"["1","4","realtime:a","presence",{"event":"untrack"}]"#
    )))[0]
        .contains("unmatched topic"));

    let effects = s.shut_down("realtime:b", "Too many messages per second");
    assert_eq!(
        sent(&effects),
        [
            r#"["2",null,"realtime:b","system",{"channel":"b","extension":"system","message":"Too many messages per second","status":"error"}]"#,
            r#"["2","2","realtime:b","phx_close",{}]"#,
        ]
    );
    assert!(matches!(&effects[2], Effect::Leave { topic } if topic == "realtime:b"));
    assert_eq!(s.channel_count(), 0);
    assert!(s.shut_down("realtime:b", "again").is_empty());
    assert_eq!(s.topics().count(), 0);
}
