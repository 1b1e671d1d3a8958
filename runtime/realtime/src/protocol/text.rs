//! Text frames: JSON objects (`vsn=1.0.0`) and JSON arrays (`vsn=2.0.0`).

use super::{
    Frame, Message, Payload, ProtocolError, UserBroadcast, UserPayload, Vsn, MAX_JSON_DEPTH,
};
use serde_json::{Map, Value};

/// Decodes one text frame; the caller has already bounded its size.
pub(super) fn decode(vsn: Vsn, text: &str) -> Result<Message, ProtocolError> {
    match vsn {
        Vsn::V1 => decode_v1(text),
        Vsn::V2 => decode_v2(text),
    }
}

fn decode_v1(text: &str) -> Result<Message, ProtocolError> {
    let Value::Object(mut obj) = serde_json::from_str::<Value>(text)? else {
        return Err(ProtocolError::NotV1Object);
    };
    let (Some(topic), Some(event), Some(payload)) = (
        obj.remove("topic"),
        obj.remove("event"),
        obj.remove("payload"),
    ) else {
        return Err(ProtocolError::NotV1Object);
    };
    Ok(Message {
        join_ref: ref_value(obj.remove("join_ref"), "join_ref")?,
        msg_ref: ref_value(obj.remove("ref"), "ref")?,
        topic: string_value(topic, "topic")?,
        event: string_value(event, "event")?,
        payload: object_payload(payload)?,
    })
}

fn decode_v2(text: &str) -> Result<Message, ProtocolError> {
    // Supabase accepts (and ignores) elements after the fifth.
    let Value::Array(items) = serde_json::from_str::<Value>(text)? else {
        return Err(ProtocolError::NotV2Array);
    };
    let mut items = items.into_iter();
    let (Some(join_ref), Some(msg_ref), Some(topic), Some(event), Some(payload)) = (
        items.next(),
        items.next(),
        items.next(),
        items.next(),
        items.next(),
    ) else {
        return Err(ProtocolError::NotV2Array);
    };
    Ok(Message {
        join_ref: ref_value(Some(join_ref), "join_ref")?,
        msg_ref: ref_value(Some(msg_ref), "ref")?,
        topic: string_value(topic, "topic")?,
        event: string_value(event, "event")?,
        payload: object_payload(payload)?,
    })
}

/// Refs are strings in every client; numbers are accepted and kept as their decimal text.
fn ref_value(value: Option<Value>, field: &'static str) -> Result<Option<String>, ProtocolError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ProtocolError::BadRef(field)),
    }
}

fn string_value(value: Value, field: &'static str) -> Result<String, ProtocolError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(ProtocolError::NotString(field)),
    }
}

fn object_payload(value: Value) -> Result<Payload, ProtocolError> {
    match value {
        Value::Object(map) => Ok(Payload::Json(map)),
        _ => Err(ProtocolError::PayloadNotObject),
    }
}

/// Encodes a JSON payload or a user broadcast (as `{type:"broadcast", event, payload, meta?}`) in
/// a text frame. A user broadcast's payload bytes are spliced in as they are, never re-parsed.
pub(super) fn encode(vsn: Vsn, msg: &Message) -> Result<Frame, ProtocolError> {
    let payload = match &msg.payload {
        Payload::Json(map) => serde_json::to_string(map)?,
        Payload::UserBroadcast(broadcast) => broadcast_json(broadcast)?,
        Payload::Binary(_) | Payload::BinaryReply { .. } => {
            return Err(ProtocolError::BinaryNotEncodable)
        }
    };
    let join_ref = serde_json::to_string(&msg.join_ref)?;
    let msg_ref = serde_json::to_string(&msg.msg_ref)?;
    let topic = serde_json::to_string(&msg.topic)?;
    let event = serde_json::to_string(&msg.event)?;
    let text = match vsn {
        Vsn::V1 => format!(
            r#"{{"topic":{topic},"event":{event},"payload":{payload},"ref":{msg_ref},"join_ref":{join_ref}}}"#
        ),
        Vsn::V2 => format!("[{join_ref},{msg_ref},{topic},{event},{payload}]"),
    };
    Ok(Frame::Text(text))
}

fn broadcast_json(broadcast: &UserBroadcast) -> Result<String, ProtocolError> {
    let UserPayload::Json(body) = &broadcast.payload else {
        return Err(ProtocolError::BinaryNotEncodable);
    };
    // Spliced into the frame as is, so checked here (once per encode, not per subscriber): the
    // bytes may come from anywhere that built a `UserPayload::Json`.
    check_json(body)?;
    let body = std::str::from_utf8(body).map_err(|_| ProtocolError::NotUtf8("payload"))?;
    let event = serde_json::to_string(&broadcast.event)?;
    let meta = match &broadcast.meta {
        Some(meta) => format!(r#","meta":{}"#, serde_json::to_string(meta)?),
        None => String::new(),
    };
    Ok(format!(
        r#"{{"type":"broadcast","event":{event},"payload":{body}{meta}}}"#
    ))
}

/// Checks that `bytes` is one well-formed JSON value nested at most [`MAX_JSON_DEPTH`] deep,
/// without building it. serde_json skips an ignored value with its own stack and no depth limit,
/// so the depth is counted here: a receiving client must not get what we would refuse to parse.
pub(super) fn check_json(bytes: &[u8]) -> Result<(), ProtocolError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)?;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ProtocolError::TooDeep(MAX_JSON_DEPTH));
                }
            }
            (false, _, b']' | b'}') => depth -= 1,
            (false, _, _) => {}
        }
    }
    Ok(())
}

/// Parses JSON metadata, which must be an object.
pub(super) fn meta_object(bytes: &[u8]) -> Result<Map<String, Value>, ProtocolError> {
    match serde_json::from_slice::<Value>(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(ProtocolError::MetaNotObject),
    }
}
