//! What travels from a hub (or the change capture) to a socket: the topic key, a message encoded at
//! most once per protocol version, and the handle that reaches one socket's bounded queue. A leaf
//! module, so the hub, the bridge and the change capture share it without depending on each other.

use crate::presence::SocketId;
use crate::protocol::{Codec, Frame, Message, Vsn};
use axum::extract::ws;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A topic inside a project: the client's topic (`realtime:…`) and whether it is private.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicKey {
    pub topic: String,
    pub private: bool,
}

impl TopicKey {
    pub fn new(topic: &str, private: bool) -> Self {
        TopicKey {
            topic: topic.to_owned(),
            private,
        }
    }

    /// The key presence state is kept under (client topics all start with `realtime:`, so the
    /// private prefix cannot collide with one).
    pub(crate) fn presence_name(&self) -> String {
        if self.private {
            format!("private:{}", self.topic)
        } else {
            self.topic.clone()
        }
    }
}

/// A server message on its way to several sockets, encoded at most once per protocol version.
#[derive(Debug)]
pub struct Outgoing {
    message: Message,
    v1: OnceLock<Option<ws::Message>>,
    v2: OnceLock<Option<ws::Message>>,
}

impl Outgoing {
    pub fn new(message: Message) -> Arc<Self> {
        Arc::new(Outgoing {
            message,
            v1: OnceLock::new(),
            v2: OnceLock::new(),
        })
    }

    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The frame for a socket speaking `codec`; `None` when its version cannot carry the message
    /// (opaque binary broadcasts to a `vsn=1.0.0` socket).
    pub fn frame(&self, codec: &Codec) -> Option<ws::Message> {
        let cell = match codec.vsn {
            Vsn::V1 => &self.v1,
            Vsn::V2 => &self.v2,
        };
        cell.get_or_init(|| codec.encode_server(&self.message).ok().map(ws_message))
            .clone()
    }
}

/// A protocol frame as a WebSocket message (its bytes are shared, not copied, on clone).
pub fn ws_message(frame: Frame) -> ws::Message {
    match frame {
        Frame::Text(text) => ws::Message::Text(text.into()),
        Frame::Binary(bytes) => ws::Message::Binary(bytes),
    }
}

/// How the hub reaches one socket.
#[derive(Clone, Debug)]
pub struct SocketHandle {
    pub id: SocketId,
    pub queue: mpsc::Sender<Arc<Outgoing>>,
    /// Cancelled when the socket's queue overflowed: the socket closes itself.
    pub kick: CancellationToken,
}
