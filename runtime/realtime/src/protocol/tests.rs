//! Frames as supabase-py 2.34 and supabase-js 2.119 write and read them (byte layouts taken from
//! their serializers' source), round trips in both directions, and malformed or oversized input.

use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn v1() -> Codec {
    Codec::new(Vsn::V1, Limits::default())
}

fn v2() -> Codec {
    Codec::new(Vsn::V2, Limits::default())
}

/// A kind 3 frame exactly as supabase-js's serializer builds it for `channel.send({type:
/// "broadcast", event, payload})`: lengths of join_ref, ref, topic, event, metadata, then the
/// encoding byte (1 = JSON), then the fields and the JSON payload.
fn js_user_broadcast_push(
    join_ref: &str,
    msg_ref: &str,
    topic: &str,
    event: &str,
    body: &str,
) -> Vec<u8> {
    let mut f = vec![
        3,
        join_ref.len() as u8,
        msg_ref.len() as u8,
        topic.len() as u8,
        event.len() as u8,
        0,
        1,
    ];
    for part in [join_ref, msg_ref, topic, event, body] {
        f.extend_from_slice(part.as_bytes());
    }
    f
}

#[test]
fn vsn_from_query_parameter() {
    assert_eq!(Vsn::from_param(None).unwrap(), Vsn::V1);
    assert_eq!(Vsn::from_param(Some("1.0.0")).unwrap(), Vsn::V1);
    assert_eq!(Vsn::from_param(Some("2.0.0")).unwrap(), Vsn::V2);
    let err = Vsn::from_param(Some("3.0.0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unsupported protocol version "3.0.0": expected 1.0.0 or 2.0.0"#
    );
}

#[test]
fn supabase_py_join_frame_decodes() {
    let frame = r#"{"event":"phx_join","payload":{"config":{"broadcast":{"self":true},"presence":{"key":"u1","enabled":false},"private":false,"postgres_changes":[{"event":"INSERT","schema":"public","table":"todos"}]},"access_token":"sb_publishable_x"},"topic":"realtime:room1","ref":"1","join_ref":"1"}"#;
    let msg = v1().decode_client(FrameRef::Text(frame)).unwrap();
    assert_eq!(msg.event, "phx_join");
    assert_eq!(msg.topic, "realtime:room1");
    assert_eq!(msg.msg_ref.as_deref(), Some("1"));
    assert_eq!(msg.join_ref.as_deref(), Some("1"));
    let payload = msg.json_payload().unwrap();
    assert_eq!(payload["config"]["presence"]["key"], "u1");
    assert_eq!(payload["access_token"], "sb_publishable_x");
}

#[test]
fn supabase_js_heartbeat_and_reply() {
    let msg = v2()
        .decode_client(FrameRef::Text(r#"[null,"3","phoenix","heartbeat",{}]"#))
        .unwrap();
    assert_eq!(
        (msg.topic.as_str(), msg.event.as_str()),
        (PHOENIX_TOPIC, event::HEARTBEAT)
    );
    assert_eq!(msg.join_ref, None);
    let reply = Message::reply(&msg, "ok", json!({}));
    let frame = v2().encode_server(&reply).unwrap();
    assert_eq!(
        frame,
        Frame::Text(r#"[null,"3","phoenix","phx_reply",{"response":{},"status":"ok"}]"#.into())
    );
    let Frame::Text(text) = v1().encode_server(&reply).unwrap() else {
        panic!("v1 is text")
    };
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        back,
        json!({"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"3","join_ref":null})
    );
}

#[test]
fn supabase_js_broadcast_push_is_kind_3_and_decodes() {
    let frame = js_user_broadcast_push("1", "2", "realtime:room1", "msg", r#"{"text":"hi"}"#);
    let msg = v2().decode_client(FrameRef::Binary(&frame)).unwrap();
    assert_eq!(msg.event, "broadcast");
    assert_eq!(msg.topic, "realtime:room1");
    assert_eq!(
        (msg.join_ref.as_deref(), msg.msg_ref.as_deref()),
        (Some("1"), Some("2"))
    );
    let Payload::UserBroadcast(b) = &msg.payload else {
        panic!("user broadcast expected")
    };
    assert_eq!(b.event, "msg");
    assert_eq!(
        b.payload,
        UserPayload::Json(Bytes::from_static(br#"{"text":"hi"}"#))
    );
    assert_eq!(b.meta, None);

    // Our client encoder writes the same bytes supabase-js does for a JSON broadcast push.
    let js = Message::json(
        Some("1"),
        Some("2"),
        "realtime:room1",
        "broadcast",
        obj(json!({"type":"broadcast","event":"msg","payload":{"text":"hi"}})),
    );
    assert_eq!(
        v2().encode_client(&js).unwrap(),
        Frame::Binary(Bytes::from(frame))
    );
}

#[test]
fn multibyte_topic_lengths_are_bytes() {
    let topic = "realtime:café-☕";
    let frame = js_user_broadcast_push("", "", topic, "é", "[1]");
    let msg = v2().decode_client(FrameRef::Binary(&frame)).unwrap();
    assert_eq!(msg.topic, topic);
    assert_eq!((msg.join_ref, msg.msg_ref), (None, None));
    let Payload::UserBroadcast(b) = msg.payload else {
        panic!()
    };
    assert_eq!(b.event, "é");
}

#[test]
fn server_user_broadcast_is_kind_4_as_supabase_js_decodes_it() {
    let msg = Message {
        join_ref: None,
        msg_ref: None,
        topic: "realtime:room1".into(),
        event: "broadcast".into(),
        payload: Payload::UserBroadcast(UserBroadcast {
            event: "msg".into(),
            payload: UserPayload::Json(Bytes::from_static(b"{\"n\":1}")),
            meta: None,
        }),
    };
    let Frame::Binary(bytes) = v2().encode_server(&msg).unwrap() else {
        panic!("binary expected")
    };
    let mut expected = vec![4u8, 14, 3, 0, 1];
    expected.extend_from_slice(b"realtime:room1msg{\"n\":1}");
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(v2().decode_server(FrameRef::Binary(&bytes)).unwrap(), msg);

    // supabase-py (vsn 1.0.0) gets the JSON form, payload bytes spliced in unchanged.
    let Frame::Text(text) = v1().encode_server(&msg).unwrap() else {
        panic!("text expected")
    };
    let back = v1().decode_server(FrameRef::Text(&text)).unwrap();
    assert_eq!(
        back.json_payload().unwrap(),
        &obj(json!({"type":"broadcast","event":"msg","payload":{"n":1}}))
    );
    assert_eq!(
        UserBroadcast::from_json(back.json_payload().unwrap()).unwrap(),
        match msg.payload {
            Payload::UserBroadcast(b) => b,
            _ => unreachable!(),
        }
    );
}

#[test]
fn metadata_and_binary_payloads_round_trip() {
    let broadcast = UserBroadcast {
        event: "bin".into(),
        payload: UserPayload::Binary(Bytes::from_static(&[0, 159, 146, 150])),
        meta: Some(obj(json!({"id":"m1"}))),
    };
    let msg = Message {
        join_ref: Some("4".into()),
        msg_ref: Some("9".into()),
        topic: "realtime:t".into(),
        event: "broadcast".into(),
        payload: Payload::UserBroadcast(broadcast.clone()),
    };
    let Frame::Binary(push) = v2().encode_client(&msg).unwrap() else {
        panic!()
    };
    assert_eq!(&push[..7], &[3, 1, 1, 10, 3, 11, 0]);
    assert_eq!(v2().decode_client(FrameRef::Binary(&push)).unwrap(), msg);

    let out = Message {
        join_ref: None,
        msg_ref: None,
        ..msg
    };
    let Frame::Binary(sent) = v2().encode_server(&out).unwrap() else {
        panic!()
    };
    assert_eq!(v2().decode_server(FrameRef::Binary(&sent)).unwrap(), out);
    // A binary payload has no text form: supabase-py sockets cannot receive it.
    assert!(matches!(
        v1().encode_server(&out),
        Err(ProtocolError::BinaryNotEncodable)
    ));
}

#[test]
fn binary_push_reply_and_broadcast_kinds_round_trip() {
    let data = Bytes::from_static(b"\x01\x02\x03");
    let push = Message {
        join_ref: Some("1".into()),
        msg_ref: Some("5".into()),
        topic: "realtime:x".into(),
        event: "custom".into(),
        payload: Payload::Binary(data.clone()),
    };
    let Frame::Binary(up) = v2().encode_client(&push).unwrap() else {
        panic!()
    };
    assert_eq!(&up[..5], &[0, 1, 1, 10, 6]);
    assert_eq!(v2().decode_client(FrameRef::Binary(&up)).unwrap(), push);

    // Server pushes carry no ref (kind 0 has one length byte fewer in that direction).
    let down = Message {
        msg_ref: None,
        ..push.clone()
    };
    let Frame::Binary(bytes) = v2().encode_server(&down).unwrap() else {
        panic!()
    };
    assert_eq!(&bytes[..4], &[0, 1, 10, 6]);
    assert_eq!(v2().decode_server(FrameRef::Binary(&bytes)).unwrap(), down);

    let broadcast = Message {
        join_ref: None,
        ..down
    };
    let Frame::Binary(bytes) = v2().encode_server(&broadcast).unwrap() else {
        panic!()
    };
    assert_eq!(bytes[0], binary::KIND_BROADCAST);
    assert_eq!(
        v2().decode_server(FrameRef::Binary(&bytes)).unwrap(),
        broadcast
    );

    let reply = Message {
        event: event::REPLY.into(),
        payload: Payload::BinaryReply {
            status: "ok".into(),
            data,
        },
        ..push
    };
    let Frame::Binary(bytes) = v2().encode_server(&reply).unwrap() else {
        panic!()
    };
    assert_eq!(&bytes[..5], &[1, 1, 1, 10, 2]);
    assert_eq!(v2().decode_server(FrameRef::Binary(&bytes)).unwrap(), reply);
}

#[test]
fn json_round_trips_in_both_versions() {
    let msg = Message::json(
        Some("1"),
        Some("7"),
        "realtime:a",
        "presence",
        obj(json!({"type":"presence","event":"track","payload":{"u":"é\"\\"}})),
    );
    for codec in [v1(), v2()] {
        let Frame::Text(text) = codec.encode_client(&msg).unwrap() else {
            panic!()
        };
        assert_eq!(codec.decode_client(FrameRef::Text(&text)).unwrap(), msg);
        let Frame::Text(text) = codec.encode_server(&msg).unwrap() else {
            panic!()
        };
        assert_eq!(codec.decode_server(FrameRef::Text(&text)).unwrap(), msg);
    }
}

#[test]
fn refs_may_be_numbers_and_v2_may_have_extra_elements() {
    let msg = v2()
        .decode_client(FrameRef::Text(r#"[1,2,"t","e",{},"extra"]"#))
        .unwrap();
    assert_eq!(
        (msg.join_ref.as_deref(), msg.msg_ref.as_deref()),
        (Some("1"), Some("2"))
    );
    let msg = v1()
        .decode_client(FrameRef::Text(r#"{"topic":"t","event":"e","payload":{}}"#))
        .unwrap();
    assert_eq!((msg.join_ref, msg.msg_ref), (None, None));
}

#[test]
fn malformed_text_frames_are_errors() {
    let cases: &[(Codec, &str, &str)] = &[
        (v2(), r#"["1","2","t","e"]"#, "expected a JSON array"),
        (v2(), r#"{"topic":"t"}"#, "expected a JSON array"),
        (
            v2(),
            r#"["1","2","t","e",[]]"#,
            "payload must be a JSON object",
        ),
        (v2(), r#"[{},"2","t","e",{}]"#, "join_ref must be a string"),
        (v2(), r#"["1","2",5,"e",{}]"#, "topic must be a string"),
        (v2(), "not json", "invalid JSON"),
        (v1(), r#"["1","2","t","e",{}]"#, "expected a JSON object"),
        (
            v1(),
            r#"{"topic":"t","event":"e"}"#,
            "expected a JSON object",
        ),
        (
            v1(),
            r#"{"topic":"t","event":"e","payload":{},"ref":true}"#,
            "ref must be a string",
        ),
    ];
    for (codec, frame, want) in cases {
        let err = codec
            .decode_client(FrameRef::Text(frame))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{frame}: {err}");
    }
}

#[test]
fn deep_json_is_refused_without_recursing() {
    let deep = format!(
        r#"[null,null,"t","e",{}{}{}]"#,
        r#"{"a":"#.repeat(MAX_JSON_DEPTH + 10),
        "1",
        "}".repeat(MAX_JSON_DEPTH + 10)
    );
    let err = v2().decode_client(FrameRef::Text(&deep)).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );
    // Just under the limit decodes.
    let ok = format!(
        r#"[null,null,"t","e",{}{}{}]"#,
        r#"{"a":"#.repeat(100),
        "1",
        "}".repeat(100)
    );
    assert!(v2().decode_client(FrameRef::Text(&ok)).is_ok());
    // The same bound applies to a binary broadcast's JSON payload.
    let body = format!(
        "{}{}",
        "[".repeat(MAX_JSON_DEPTH + 10),
        "]".repeat(MAX_JSON_DEPTH + 10)
    );
    let frame = js_user_broadcast_push("", "", "t", "e", &body);
    let err = v2().decode_client(FrameRef::Binary(&frame)).unwrap_err();
    assert_eq!(err.to_string(), "JSON nests deeper than 128 levels");
    // Brackets inside strings do not count.
    let body = format!(r#"["{}\"{}"]"#, "[".repeat(200), "{".repeat(200));
    let frame = js_user_broadcast_push("", "", "t", "e", &body);
    assert!(v2().decode_client(FrameRef::Binary(&frame)).is_ok());
}

#[test]
fn limits_are_enforced_before_and_after_parsing() {
    let small = Codec::new(
        Vsn::V2,
        Limits {
            max_frame_bytes: 64,
            ..Limits::default()
        },
    );
    let big = format!(r#"[null,null,"t","e",{{"x":"{}"}}]"#, "a".repeat(100));
    assert!(matches!(
        small.decode_client(FrameRef::Text(&big)),
        Err(ProtocolError::FrameTooLarge { max: 64, .. })
    ));
    assert!(matches!(
        small.decode_client(FrameRef::Binary(big.as_bytes())),
        Err(ProtocolError::FrameTooLarge { .. })
    ));

    let long_topic = format!(r#"[null,null,"{}","e",{{}}]"#, "t".repeat(256));
    let err = v2().decode_client(FrameRef::Text(&long_topic)).unwrap_err();
    assert_eq!(err.to_string(), "topic is 256 bytes, over the limit of 255");
    let long_ref = format!(r#"["{}",null,"t","e",{{}}]"#, "1".repeat(300));
    assert!(matches!(
        v2().decode_client(FrameRef::Text(&long_ref)),
        Err(ProtocolError::FieldTooLong {
            field: "join_ref",
            ..
        })
    ));

    // A topic too long for a binary frame cannot be encoded into one.
    let msg = Message {
        payload: Payload::Binary(Bytes::new()),
        ..Message::json(None, None, &"t".repeat(300), "e", Map::new())
    };
    let err = v2().encode_server(&msg).unwrap_err();
    assert_eq!(err.to_string(), "topic is 300 bytes, over the limit of 255");
}

#[test]
fn malformed_binary_frames_are_errors() {
    let good = js_user_broadcast_push("1", "2", "realtime:room1", "msg", "{}");
    // Every truncation of a valid frame before its payload fails cleanly.
    for end in 0..good.len() - 2 {
        assert!(
            v2().decode_client(FrameRef::Binary(&good[..end])).is_err(),
            "prefix {end}"
        );
    }
    let mut bad_encoding = good.clone();
    bad_encoding[6] = 7;
    assert!(matches!(
        v2().decode_client(FrameRef::Binary(&bad_encoding)),
        Err(ProtocolError::BadEncoding(7))
    ));
    let mut bad_json = good.clone();
    bad_json.pop();
    assert!(matches!(
        v2().decode_client(FrameRef::Binary(&bad_json)),
        Err(ProtocolError::Json(_))
    ));
    let mut bad_utf8 = good.clone();
    bad_utf8[9] = 0xff;
    assert!(matches!(
        v2().decode_client(FrameRef::Binary(&bad_utf8)),
        Err(ProtocolError::NotUtf8("topic"))
    ));
    let mut meta = js_user_broadcast_push("", "", "t", "e", "{}");
    meta[5] = 2;
    meta.splice(9..9, b"[]".iter().copied());
    assert!(matches!(
        v2().decode_client(FrameRef::Binary(&meta)),
        Err(ProtocolError::MetaNotObject)
    ));
    // Kinds only the server sends are refused from a client, and the reverse.
    assert!(matches!(
        v2().decode_client(FrameRef::Binary(&[4, 0, 0, 0, 1])),
        Err(ProtocolError::UnexpectedKind(4))
    ));
    assert!(matches!(
        v2().decode_server(FrameRef::Binary(&good)),
        Err(ProtocolError::UnexpectedKind(3))
    ));
    assert!(matches!(
        v2().decode_client(FrameRef::Binary(&[9])),
        Err(ProtocolError::UnexpectedKind(9))
    ));
    assert!(matches!(
        v1().decode_client(FrameRef::Binary(&good)),
        Err(ProtocolError::BinaryNeedsV2)
    ));
}

#[test]
fn user_payload_json_is_checked_before_it_is_spliced() {
    let msg = Message {
        payload: Payload::UserBroadcast(UserBroadcast {
            event: "e".into(),
            payload: UserPayload::Json(Bytes::from_static(b"{\"a\":1}],\"x\"")),
            meta: None,
        }),
        ..Message::json(None, None, "t", "broadcast", Map::new())
    };
    assert!(matches!(
        v1().encode_server(&msg),
        Err(ProtocolError::Json(_))
    ));
    assert!(matches!(
        v2().encode_server(&msg),
        Err(ProtocolError::Json(_))
    ));
}
