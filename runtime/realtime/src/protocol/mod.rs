//! The Phoenix channel protocol as Supabase Realtime speaks it, in both serializers.
//!
//! - `vsn=1.0.0` (supabase-py): text frames holding a JSON object
//!   `{"topic","event","payload","ref","join_ref"}`.
//! - `vsn=2.0.0` (supabase-js ≥ 2.x): text frames holding a JSON array
//!   `[join_ref, ref, topic, event, payload]`, plus binary frames ([`binary`]) for pushes with
//!   binary payloads and for user broadcasts (kind 3 from the client, kind 4 to it).
//!
//! A [`Codec`] decodes what one side sends and encodes what the other expects. The server side
//! uses [`Codec::decode_client`] and [`Codec::encode_server`]; the client side (tests, benches)
//! uses [`Codec::decode_server`] and [`Codec::encode_client`], which frame messages the way
//! supabase-js does. Every decode is bounded by [`Limits`]: the frame size is checked before any
//! parse, JSON nesting stops at serde_json's recursion limit ([`MAX_JSON_DEPTH`]), and topics,
//! events and refs have byte limits (255, what a binary frame can carry).

pub mod binary;
#[cfg(test)]
mod tests;
mod text;

use bytes::Bytes;
use serde_json::{Map, Value};

/// Event names of the Phoenix channel protocol and of Supabase Realtime.
pub mod event {
    pub const JOIN: &str = "phx_join";
    pub const LEAVE: &str = "phx_leave";
    pub const REPLY: &str = "phx_reply";
    pub const ERROR: &str = "phx_error";
    pub const CLOSE: &str = "phx_close";
    pub const HEARTBEAT: &str = "heartbeat";
    pub const ACCESS_TOKEN: &str = "access_token";
    pub const BROADCAST: &str = "broadcast";
    pub const PRESENCE: &str = "presence";
    pub const PRESENCE_STATE: &str = "presence_state";
    pub const PRESENCE_DIFF: &str = "presence_diff";
    pub const POSTGRES_CHANGES: &str = "postgres_changes";
    pub const SYSTEM: &str = "system";
}

/// The topic heartbeats are sent on.
pub const PHOENIX_TOPIC: &str = "phoenix";

/// How deep JSON may nest in any frame: serde_json refuses deeper input with "recursion limit
/// exceeded" instead of recursing further, so a hostile frame cannot exhaust the stack.
pub const MAX_JSON_DEPTH: usize = 128;

/// The largest topic, event or ref a binary frame can carry (one length byte each).
pub const MAX_FIELD_BYTES: usize = 255;

/// The protocol version a socket negotiated with its `vsn` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vsn {
    /// `1.0.0`: JSON objects (supabase-py; Phoenix's default when `vsn` is absent).
    V1,
    /// `2.0.0`: JSON arrays and binary frames (supabase-js).
    V2,
}

impl Vsn {
    /// Reads the `vsn` query parameter; an absent one means 1.0.0, as in Phoenix.
    pub fn from_param(vsn: Option<&str>) -> Result<Self, ProtocolError> {
        match vsn {
            None | Some("1.0.0") => Ok(Vsn::V1),
            Some("2.0.0") => Ok(Vsn::V2),
            Some(other) => Err(ProtocolError::UnsupportedVsn(truncate(other, 32))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Vsn::V1 => "1.0.0",
            Vsn::V2 => "2.0.0",
        }
    }
}

/// Bounds applied to every decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, text or binary, checked before parsing.
    pub max_frame_bytes: usize,
    /// Largest topic, in bytes (at most [`MAX_FIELD_BYTES`] so every topic fits a binary frame).
    pub max_topic_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 1024 * 1024,
            max_topic_bytes: MAX_FIELD_BYTES,
        }
    }
}

/// One protocol message, whichever serializer carried it.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub join_ref: Option<String>,
    /// The message's `ref` (a Rust keyword, hence the name).
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Payload,
}

/// What a message carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A JSON object: every text frame, and broadcasts sent as JSON.
    Json(Map<String, Value>),
    /// Raw bytes of a binary push (kind 0) or broadcast (kind 2).
    Binary(Bytes),
    /// A binary reply (kind 1): its status and raw response.
    BinaryReply { status: String, data: Bytes },
    /// A user broadcast (kinds 3 and 4), or its JSON form `{type:"broadcast", event, payload}`.
    UserBroadcast(UserBroadcast),
}

/// A user broadcast: the user's event name, its payload and optional metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct UserBroadcast {
    pub event: String,
    pub payload: UserPayload,
    pub meta: Option<Map<String, Value>>,
}

/// A user broadcast's payload, kept as the bytes the sender wrote so fan-out never re-encodes it.
#[derive(Clone, Debug, PartialEq)]
pub enum UserPayload {
    /// JSON text, already checked to be well-formed (encoding byte 1).
    Json(Bytes),
    /// Opaque bytes (encoding byte 0); only `vsn=2.0.0` sockets can receive these.
    Binary(Bytes),
}

impl UserBroadcast {
    /// Reads the JSON form a client sends in a text frame,
    /// `{"type":"broadcast","event":"…","payload":…}`; `None` when the object is not one.
    pub fn from_json(payload: &Map<String, Value>) -> Option<Self> {
        let event = payload.get("event")?.as_str()?.to_owned();
        let body = payload
            .get("payload")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let meta = match payload.get("meta") {
            Some(Value::Object(meta)) => Some(meta.clone()),
            _ => None,
        };
        let json = serde_json::to_vec(&body).ok()?;
        Some(UserBroadcast {
            event,
            payload: UserPayload::Json(Bytes::from(json)),
            meta,
        })
    }
}

impl Message {
    /// A message with a JSON payload.
    pub fn json(
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: Map<String, Value>,
    ) -> Self {
        Message {
            join_ref: join_ref.map(str::to_owned),
            msg_ref: msg_ref.map(str::to_owned),
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload: Payload::Json(payload),
        }
    }

    /// The `phx_reply` answering `request`: `{"status": status, "response": response}`.
    pub fn reply(request: &Message, status: &str, response: Value) -> Self {
        let mut payload = Map::new();
        payload.insert("status".into(), Value::String(status.to_owned()));
        payload.insert("response".into(), response);
        Message {
            join_ref: request.join_ref.clone(),
            msg_ref: request.msg_ref.clone(),
            topic: request.topic.clone(),
            event: event::REPLY.to_owned(),
            payload: Payload::Json(payload),
        }
    }

    /// The JSON object payload, if the message has one.
    pub fn json_payload(&self) -> Option<&Map<String, Value>> {
        match &self.payload {
            Payload::Json(map) => Some(map),
            _ => None,
        }
    }
}

/// A WebSocket frame's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Bytes),
}

/// A borrowed WebSocket frame to decode.
#[derive(Clone, Copy, Debug)]
pub enum FrameRef<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// Encodes and decodes frames for one socket's protocol version.
#[derive(Clone, Copy, Debug)]
pub struct Codec {
    pub vsn: Vsn,
    pub limits: Limits,
}

impl Codec {
    pub fn new(vsn: Vsn, limits: Limits) -> Self {
        Codec { vsn, limits }
    }

    /// Decodes a frame a client sent (the server's side).
    pub fn decode_client(&self, frame: FrameRef<'_>) -> Result<Message, ProtocolError> {
        self.decode(frame, binary::Direction::FromClient)
    }

    /// Decodes a frame the server sent (a client's side: tests and benches).
    pub fn decode_server(&self, frame: FrameRef<'_>) -> Result<Message, ProtocolError> {
        self.decode(frame, binary::Direction::FromServer)
    }

    fn decode(
        &self,
        frame: FrameRef<'_>,
        dir: binary::Direction,
    ) -> Result<Message, ProtocolError> {
        let size = match frame {
            FrameRef::Text(text) => text.len(),
            FrameRef::Binary(bytes) => bytes.len(),
        };
        if size > self.limits.max_frame_bytes {
            return Err(ProtocolError::FrameTooLarge {
                size,
                max: self.limits.max_frame_bytes,
            });
        }
        let msg = match (frame, self.vsn) {
            (FrameRef::Text(text), vsn) => text::decode(vsn, text)?,
            (FrameRef::Binary(_), Vsn::V1) => return Err(ProtocolError::BinaryNeedsV2),
            (FrameRef::Binary(bytes), Vsn::V2) => binary::decode(dir, bytes)?,
        };
        check_len("topic", &msg.topic, self.limits.max_topic_bytes)?;
        check_len("event", &msg.event, MAX_FIELD_BYTES)?;
        check_len("ref", msg.msg_ref.as_deref().unwrap_or(""), MAX_FIELD_BYTES)?;
        check_len(
            "join_ref",
            msg.join_ref.as_deref().unwrap_or(""),
            MAX_FIELD_BYTES,
        )?;
        Ok(msg)
    }

    /// Encodes a message the way Supabase Realtime sends it: JSON text, except binary payloads and
    /// user broadcasts, which `vsn=2.0.0` sockets get as binary frames (kinds 0, 1, 2 and 4).
    pub fn encode_server(&self, msg: &Message) -> Result<Frame, ProtocolError> {
        match (&msg.payload, self.vsn) {
            (Payload::Json(_), _) | (Payload::UserBroadcast(_), Vsn::V1) => {
                text::encode(self.vsn, msg)
            }
            (_, Vsn::V1) => Err(ProtocolError::BinaryNotEncodable),
            (_, Vsn::V2) => binary::encode(binary::Direction::FromServer, msg).map(Frame::Binary),
        }
    }

    /// Encodes a message the way supabase-js sends it: a JSON broadcast
    /// (`event == "broadcast"` with a string `payload.event`) and a user broadcast become a kind 3
    /// frame, a binary payload a kind 0 frame, anything else a JSON array.
    pub fn encode_client(&self, msg: &Message) -> Result<Frame, ProtocolError> {
        if self.vsn == Vsn::V1 {
            return match msg.payload {
                Payload::Json(_) | Payload::UserBroadcast(_) => text::encode(Vsn::V1, msg),
                _ => Err(ProtocolError::BinaryNotEncodable),
            };
        }
        let as_user_broadcast = match &msg.payload {
            Payload::Json(map) if msg.event == event::BROADCAST => UserBroadcast::from_json(map),
            _ => None,
        };
        match (as_user_broadcast, &msg.payload) {
            (Some(broadcast), _) => {
                let msg = Message {
                    payload: Payload::UserBroadcast(broadcast),
                    ..msg.clone()
                };
                binary::encode(binary::Direction::FromClient, &msg).map(Frame::Binary)
            }
            (None, Payload::Json(_)) => text::encode(Vsn::V2, msg),
            (None, _) => binary::encode(binary::Direction::FromClient, msg).map(Frame::Binary),
        }
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), ProtocolError> {
    if value.len() > max {
        return Err(ProtocolError::FieldTooLong {
            field,
            size: value.len(),
            max,
        });
    }
    Ok(())
}

/// Cuts client-supplied text that goes into an error message.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Why a frame could not be decoded or encoded. Messages may be shown to the client that sent the
/// frame: they quote at most a short prefix of its input.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("unsupported protocol version {0:?}: expected 1.0.0 or 2.0.0")]
    UnsupportedVsn(String),
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { size: usize, max: usize },
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("expected a JSON array [join_ref, ref, topic, event, payload]")]
    NotV2Array,
    #[error("expected a JSON object with topic, event, payload and ref")]
    NotV1Object,
    #[error("{0} must be a string, a number or null")]
    BadRef(&'static str),
    #[error("{0} must be a string")]
    NotString(&'static str),
    #[error("JSON nests deeper than {0} levels")]
    TooDeep(usize),
    #[error("payload must be a JSON object")]
    PayloadNotObject,
    #[error("{field} is {size} bytes, over the limit of {max}")]
    FieldTooLong {
        field: &'static str,
        size: usize,
        max: usize,
    },
    #[error("binary frames need protocol version 2.0.0")]
    BinaryNeedsV2,
    #[error("binary frame of kind {0} is not expected here")]
    UnexpectedKind(u8),
    #[error("binary frame is truncated in its {0}")]
    Truncated(&'static str),
    #[error("binary frame's {0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("unknown user payload encoding {0}")]
    BadEncoding(u8),
    #[error("binary metadata must be a JSON object")]
    MetaNotObject,
    #[error("a JSON payload is sent in a text frame, not a binary one")]
    NotBinary,
    #[error("a binary payload cannot be sent in a text frame")]
    BinaryNotEncodable,
}
