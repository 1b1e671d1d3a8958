//! Binary frames of `vsn=2.0.0` (Supabase's superset of Phoenix's V2 serializer).
//!
//! Every frame starts with a kind byte, then one length byte per variable field, then the fields
//! (UTF-8), then the rest of the frame as the payload:
//!
//! | kind | direction | header after the kind byte | fields |
//! |---|---|---|---|
//! | 0 push | client → server | join_ref, ref, topic, event lengths | join_ref ref topic event data |
//! | 0 push | server → client | join_ref, topic, event lengths | join_ref topic event data |
//! | 1 reply | server → client | join_ref, ref, topic, status lengths | join_ref ref topic status data |
//! | 2 broadcast | server → client | topic, event lengths | topic event data |
//! | 3 user broadcast push | client → server | join_ref, ref, topic, user event, metadata lengths, encoding | join_ref ref topic event metadata payload |
//! | 4 user broadcast | server → client | topic, user event, metadata lengths, encoding | topic event metadata payload |
//!
//! The encoding byte is 1 for a JSON payload and 0 for opaque bytes; metadata is a JSON object or
//! empty. An empty ref field means no ref. supabase-js sends kind 3 for every `channel.send` of a
//! broadcast and decodes only kind 4, so the server sends user broadcasts as kind 4 and everything
//! else as text.

use super::{text, Message, Payload, ProtocolError, UserBroadcast, UserPayload, MAX_FIELD_BYTES};
use crate::protocol::event;
use bytes::{BufMut, Bytes, BytesMut};

pub const KIND_PUSH: u8 = 0;
pub const KIND_REPLY: u8 = 1;
pub const KIND_BROADCAST: u8 = 2;
pub const KIND_USER_BROADCAST_PUSH: u8 = 3;
pub const KIND_USER_BROADCAST: u8 = 4;

const ENCODING_BINARY: u8 = 0;
const ENCODING_JSON: u8 = 1;

/// Which side sent a frame: kind 0 is laid out differently in each direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    FromClient,
    FromServer,
}

/// Decodes one binary frame; the caller has already bounded its size.
pub(super) fn decode(dir: Direction, frame: &[u8]) -> Result<Message, ProtocolError> {
    let mut r = Reader { buf: frame, pos: 0 };
    let kind = r.byte("kind")?;
    match (dir, kind) {
        (Direction::FromClient, KIND_PUSH) => {
            let [jr, rf, tp, ev] = r.lengths::<4>()?;
            let (join_ref, msg_ref) = (r.opt_str(jr, "join_ref")?, r.opt_str(rf, "ref")?);
            let (topic, event) = (r.str(tp, "topic")?, r.str(ev, "event")?);
            let payload = Payload::Binary(Bytes::copy_from_slice(r.rest()));
            Ok(Message {
                join_ref,
                msg_ref,
                topic,
                event,
                payload,
            })
        }
        (Direction::FromServer, KIND_PUSH) => {
            let [jr, tp, ev] = r.lengths::<3>()?;
            let join_ref = r.opt_str(jr, "join_ref")?;
            let (topic, event) = (r.str(tp, "topic")?, r.str(ev, "event")?);
            let payload = Payload::Binary(Bytes::copy_from_slice(r.rest()));
            Ok(Message {
                join_ref,
                msg_ref: None,
                topic,
                event,
                payload,
            })
        }
        (Direction::FromServer, KIND_REPLY) => {
            let [jr, rf, tp, st] = r.lengths::<4>()?;
            let (join_ref, msg_ref) = (r.opt_str(jr, "join_ref")?, r.opt_str(rf, "ref")?);
            let (topic, status) = (r.str(tp, "topic")?, r.str(st, "status")?);
            let payload = Payload::BinaryReply {
                status,
                data: Bytes::copy_from_slice(r.rest()),
            };
            Ok(Message {
                join_ref,
                msg_ref,
                topic,
                event: event::REPLY.to_owned(),
                payload,
            })
        }
        (Direction::FromServer, KIND_BROADCAST) => {
            let [tp, ev] = r.lengths::<2>()?;
            let (topic, event) = (r.str(tp, "topic")?, r.str(ev, "event")?);
            let payload = Payload::Binary(Bytes::copy_from_slice(r.rest()));
            Ok(Message {
                join_ref: None,
                msg_ref: None,
                topic,
                event,
                payload,
            })
        }
        (Direction::FromClient, KIND_USER_BROADCAST_PUSH) => {
            let [jr, rf, tp, ev, md] = r.lengths::<5>()?;
            let encoding = r.byte("encoding")?;
            let (join_ref, msg_ref) = (r.opt_str(jr, "join_ref")?, r.opt_str(rf, "ref")?);
            let topic = r.str(tp, "topic")?;
            let broadcast = user_broadcast(&mut r, ev, md, encoding)?;
            let payload = Payload::UserBroadcast(broadcast);
            let event = event::BROADCAST.to_owned();
            Ok(Message {
                join_ref,
                msg_ref,
                topic,
                event,
                payload,
            })
        }
        (Direction::FromServer, KIND_USER_BROADCAST) => {
            let [tp, ev, md] = r.lengths::<3>()?;
            let encoding = r.byte("encoding")?;
            let topic = r.str(tp, "topic")?;
            let broadcast = user_broadcast(&mut r, ev, md, encoding)?;
            let payload = Payload::UserBroadcast(broadcast);
            let event = event::BROADCAST.to_owned();
            Ok(Message {
                join_ref: None,
                msg_ref: None,
                topic,
                event,
                payload,
            })
        }
        (_, kind) => Err(ProtocolError::UnexpectedKind(kind)),
    }
}

/// Reads the user event, metadata and payload shared by kinds 3 and 4.
fn user_broadcast(
    r: &mut Reader<'_>,
    event_len: u8,
    meta_len: u8,
    encoding: u8,
) -> Result<UserBroadcast, ProtocolError> {
    let event = r.str(event_len, "user event")?;
    let meta = match r.take(meta_len, "metadata")? {
        [] => None,
        meta => Some(text::meta_object(meta)?),
    };
    let body = r.rest();
    let payload = match encoding {
        ENCODING_JSON => {
            text::check_json(body)?;
            UserPayload::Json(Bytes::copy_from_slice(body))
        }
        ENCODING_BINARY => UserPayload::Binary(Bytes::copy_from_slice(body)),
        other => return Err(ProtocolError::BadEncoding(other)),
    };
    Ok(UserBroadcast {
        event,
        payload,
        meta,
    })
}

/// Encodes a message with a non-JSON payload as the binary frame `dir` uses for it.
pub(super) fn encode(dir: Direction, msg: &Message) -> Result<Bytes, ProtocolError> {
    let join_ref = ("join_ref", msg.join_ref.as_deref().unwrap_or(""));
    let msg_ref = ("ref", msg.msg_ref.as_deref().unwrap_or(""));
    let (topic, ev) = (("topic", msg.topic.as_str()), ("event", msg.event.as_str()));
    match (dir, &msg.payload) {
        (Direction::FromClient, Payload::Binary(data)) => {
            frame(KIND_PUSH, &[join_ref, msg_ref, topic, ev], &[], data)
        }
        (Direction::FromServer, Payload::Binary(data)) if msg.join_ref.is_some() => {
            frame(KIND_PUSH, &[join_ref, topic, ev], &[], data)
        }
        (Direction::FromServer, Payload::Binary(data)) => {
            frame(KIND_BROADCAST, &[topic, ev], &[], data)
        }
        (Direction::FromServer, Payload::BinaryReply { status, data }) => frame(
            KIND_REPLY,
            &[join_ref, msg_ref, topic, ("status", status)],
            &[],
            data,
        ),
        (_, Payload::UserBroadcast(b)) => {
            let meta = match &b.meta {
                Some(meta) if !meta.is_empty() => serde_json::to_vec(meta)?,
                _ => Vec::new(),
            };
            let (encoding, body) = match &b.payload {
                UserPayload::Json(body) => {
                    text::check_json(body)?;
                    (ENCODING_JSON, body)
                }
                UserPayload::Binary(body) => (ENCODING_BINARY, body),
            };
            let meta = (
                "metadata",
                std::str::from_utf8(&meta).map_err(|_| ProtocolError::NotUtf8("metadata"))?,
            );
            let user_event = ("user event", b.event.as_str());
            match dir {
                Direction::FromClient => frame(
                    KIND_USER_BROADCAST_PUSH,
                    &[join_ref, msg_ref, topic, user_event, meta],
                    &[encoding],
                    body,
                ),
                Direction::FromServer => frame(
                    KIND_USER_BROADCAST,
                    &[topic, user_event, meta],
                    &[encoding],
                    body,
                ),
            }
        }
        (Direction::FromClient, Payload::BinaryReply { .. }) => {
            Err(ProtocolError::UnexpectedKind(KIND_REPLY))
        }
        (_, Payload::Json(_)) => Err(ProtocolError::NotBinary),
    }
}

/// A named header field of a frame being written.
type Field<'a> = (&'static str, &'a str);

/// Writes `kind`, one length byte per field, the `extra` header bytes, the fields and the body.
fn frame(
    kind: u8,
    fields: &[Field<'_>],
    extra: &[u8],
    body: &Bytes,
) -> Result<Bytes, ProtocolError> {
    let header = 1 + fields.len() + extra.len() + fields.iter().map(|f| f.1.len()).sum::<usize>();
    let mut out = BytesMut::with_capacity(header + body.len());
    out.put_u8(kind);
    for &(field, value) in fields {
        let len = u8::try_from(value.len()).map_err(|_| ProtocolError::FieldTooLong {
            field,
            size: value.len(),
            max: MAX_FIELD_BYTES,
        })?;
        out.put_u8(len);
    }
    out.put_slice(extra);
    for (_, value) in fields {
        out.put_slice(value.as_bytes());
    }
    out.put_slice(body);
    Ok(out.freeze())
}

/// A cursor over a frame that fails, never panics, when the frame is shorter than it claims.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, what)?[0])
    }

    fn lengths<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u8, "header")?);
        Ok(out)
    }

    fn take(&mut self, len: u8, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let end = self.pos + usize::from(len);
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or(ProtocolError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }

    fn str(&mut self, len: u8, what: &'static str) -> Result<String, ProtocolError> {
        let bytes = self.take(len, what)?;
        let s = std::str::from_utf8(bytes).map_err(|_| ProtocolError::NotUtf8(what))?;
        Ok(s.to_owned())
    }

    /// A ref field, where empty means none.
    fn opt_str(&mut self, len: u8, what: &'static str) -> Result<Option<String>, ProtocolError> {
        let s = self.str(len, what)?;
        Ok((!s.is_empty()).then_some(s))
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}
