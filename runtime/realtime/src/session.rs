//! One socket's channels, as the Phoenix channel protocol and Supabase Realtime drive them, kept
//! apart from I/O: [`Session::handle`] takes a decoded client message and returns [`Effect`]s for
//! the socket task to carry out (send a frame, ask the hub to join, broadcast, track…).
//!
//! Rules it encodes: heartbeats on `phoenix` are answered `ok`; a message for a topic the socket
//! has not joined is answered `{"reason":"unmatched topic"}` (Phoenix); joining a topic already
//! joined closes the old channel first (`phx_close` to the old join ref, as Phoenix does); a
//! `phx_leave` is answered `ok`; broadcasts are normalised to [`UserBroadcast`] whether they came
//! as JSON or as a kind 3 frame, and carry the `ack` reply when the channel asked for acks;
//! presence pushes are parsed and carry their `ok` reply; an `access_token` push is only passed on
//! when it brings a new user JWT (API keys, nulls and the current token are ignored, as Supabase
//! does). Joins are two-step because they need the hub (limits, policies, subscriptions): the
//! session returns [`Effect::Join`], the driver answers with [`Session::joined`] or
//! [`Session::join_failed`].

use crate::join::{sub_topic, AccessToken, JoinConfig, JoinLimits};
use crate::presence::{PresenceLimits, PresenceRequest};
use crate::protocol::{event, Message, Payload, UserBroadcast, PHOENIX_TOPIC};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A join waiting for the hub's decision.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinRequest {
    /// The `phx_join` message (its refs and topic are those of the reply).
    pub message: Message,
    pub sub_topic: String,
    pub config: JoinConfig,
}

/// What the socket task must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send this message to the client.
    Send(Message),
    /// Check limits and authorization, subscribe, then call [`Session::joined`] or
    /// [`Session::join_failed`].
    Join(Box<JoinRequest>),
    /// Unsubscribe the topic and untrack its presence.
    Leave { topic: String },
    /// Deliver to the topic's subscribers (not back to this socket unless `echo_self`); send `ack`
    /// once the broadcast passed the limits.
    Broadcast {
        topic: String,
        broadcast: UserBroadcast,
        echo_self: bool,
        ack: Option<Message>,
    },
    /// Track or untrack under the channel's presence key; send `reply` when done.
    Presence {
        topic: String,
        key: String,
        request: PresenceRequest,
        reply: Message,
    },
    /// Verify the token and refresh the channel's identity (no reply).
    AccessToken { topic: String, token: String },
}

#[derive(Clone, Debug)]
struct Channel {
    join_ref: Option<String>,
    broadcast_self: bool,
    broadcast_ack: bool,
    presence_key: String,
    token: AccessToken,
}

/// The channels joined on one socket.
#[derive(Debug, Default)]
pub struct Session {
    join_limits: JoinLimits,
    presence_limits: PresenceLimits,
    channels: HashMap<String, Channel>,
}

impl Session {
    pub fn new(join_limits: JoinLimits, presence_limits: PresenceLimits) -> Self {
        Session {
            join_limits,
            presence_limits,
            channels: HashMap::new(),
        }
    }

    /// How many channels are joined (for the channels-per-socket limit).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The joined topics (to leave them all when the socket closes).
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    /// The presence key of a joined topic.
    pub fn presence_key(&self, topic: &str) -> Option<&str> {
        self.channels.get(topic).map(|c| c.presence_key.as_str())
    }

    /// Handles one message from the client.
    pub fn handle(&mut self, msg: Message) -> Vec<Effect> {
        if msg.topic == PHOENIX_TOPIC && msg.event == event::HEARTBEAT {
            return vec![Effect::Send(Message::reply(&msg, "ok", json!({})))];
        }
        if msg.event == event::JOIN {
            return self.join(msg);
        }
        let Some(channel) = self.channels.get_mut(&msg.topic) else {
            return vec![error_reply(&msg, "unmatched topic")];
        };
        match msg.event.as_str() {
            event::LEAVE => {
                self.channels.remove(&msg.topic);
                let topic = msg.topic.clone();
                vec![
                    Effect::Send(Message::reply(&msg, "ok", json!({}))),
                    Effect::Leave { topic },
                ]
            }
            event::BROADCAST => {
                let broadcast = match &msg.payload {
                    Payload::UserBroadcast(b) => Some(b.clone()),
                    Payload::Json(map) => UserBroadcast::from_json(map),
                    _ => None,
                };
                let Some(broadcast) = broadcast else {
                    return Vec::new();
                };
                let ack = channel
                    .broadcast_ack
                    .then(|| Message::reply(&msg, "ok", json!({})));
                let echo_self = channel.broadcast_self;
                vec![Effect::Broadcast {
                    topic: msg.topic,
                    broadcast,
                    echo_self,
                    ack,
                }]
            }
            event::PRESENCE => {
                let empty = Map::new();
                let push = msg.json_payload().unwrap_or(&empty);
                match PresenceRequest::parse(push, &self.presence_limits) {
                    Ok(request) => {
                        let reply = Message::reply(&msg, "ok", json!({}));
                        let key = channel.presence_key.clone();
                        vec![Effect::Presence {
                            topic: msg.topic,
                            key,
                            request,
                            reply,
                        }]
                    }
                    Err(e) => vec![error_reply(&msg, &e.to_string())],
                }
            }
            event::ACCESS_TOKEN => {
                let empty = Map::new();
                match AccessToken::from_payload(msg.json_payload().unwrap_or(&empty)) {
                    AccessToken::Jwt(token) if channel.token != AccessToken::Jwt(token.clone()) => {
                        channel.token = AccessToken::Jwt(token.clone());
                        vec![Effect::AccessToken {
                            topic: msg.topic,
                            token,
                        }]
                    }
                    _ => Vec::new(),
                }
            }
            // Supabase logs and ignores any other event.
            _ => Vec::new(),
        }
    }

    fn join(&mut self, msg: Message) -> Vec<Effect> {
        let name = match sub_topic(&msg.topic) {
            Ok(name) => name.to_owned(),
            Err(e) => return vec![error_reply(&msg, &e.to_string())],
        };
        let empty = Map::new();
        let config =
            match JoinConfig::parse(msg.json_payload().unwrap_or(&empty), &self.join_limits) {
                Ok(config) => config,
                Err(e) => return vec![error_reply(&msg, &e.to_string())],
            };
        let mut effects = Vec::new();
        // A second join of a joined topic replaces the channel: the old one is closed first.
        if let Some(old) = self.channels.remove(&msg.topic) {
            effects.push(Effect::Send(close_message(
                &msg.topic,
                old.join_ref.as_deref(),
            )));
            effects.push(Effect::Leave {
                topic: msg.topic.clone(),
            });
        }
        effects.push(Effect::Join(Box::new(JoinRequest {
            message: msg,
            sub_topic: name,
            config,
        })));
        effects
    }

    /// The hub accepted the join under `presence_key` (the config's, or one the driver generated):
    /// the channel is joined and the reply echoes its bindings; each unusable binding gets a
    /// `system` error message after it.
    pub fn joined(&mut self, request: &JoinRequest, presence_key: String) -> Vec<Effect> {
        let JoinRequest {
            message,
            sub_topic,
            config,
        } = request;
        self.channels.insert(
            message.topic.clone(),
            Channel {
                join_ref: message.join_ref.clone().or_else(|| message.msg_ref.clone()),
                broadcast_self: config.broadcast_self,
                broadcast_ack: config.broadcast_ack,
                presence_key,
                token: config.access_token.clone(),
            },
        );
        let mut effects = vec![Effect::Send(Message::reply(
            message,
            "ok",
            config.reply_response(),
        ))];
        for binding in &config.bindings {
            if let Err(e) = &binding.spec {
                let payload = crate::join::system_payload(
                    "postgres_changes",
                    "error",
                    &e.to_string(),
                    sub_topic,
                );
                effects.push(Effect::Send(push(message, event::SYSTEM, payload)));
            }
        }
        effects
    }

    /// The hub refused the join; `reason` is the text the client sees.
    pub fn join_failed(&self, request: &JoinRequest, reason: &str) -> Effect {
        error_reply(&request.message, reason)
    }

    /// Closes a channel from the server's side (limits, an expired token): the `system` error
    /// Supabase sends, then `phx_close`. Also returns the [`Effect::Leave`] for the hub.
    pub fn shut_down(&mut self, topic: &str, message: &str) -> Vec<Effect> {
        let Some(channel) = self.channels.remove(topic) else {
            return Vec::new();
        };
        let name = topic
            .strip_prefix(crate::join::TOPIC_PREFIX)
            .unwrap_or(topic);
        let system = crate::join::system_payload("system", "error", message, name);
        let join_ref = channel.join_ref.as_deref();
        vec![
            Effect::Send(Message::json(join_ref, None, topic, event::SYSTEM, system)),
            Effect::Send(close_message(topic, join_ref)),
            Effect::Leave {
                topic: topic.to_owned(),
            },
        ]
    }
}

/// A server push on a channel (no ref), under the join's ref.
fn push(join: &Message, event: &str, payload: Map<String, Value>) -> Message {
    let join_ref = join.join_ref.as_deref().or(join.msg_ref.as_deref());
    Message::json(join_ref, None, &join.topic, event, payload)
}

fn close_message(topic: &str, join_ref: Option<&str>) -> Message {
    Message::json(join_ref, join_ref, topic, event::CLOSE, Map::new())
}

fn error_reply(msg: &Message, reason: &str) -> Effect {
    Effect::Send(Message::reply(msg, "error", json!({ "reason": reason })))
}

#[cfg(test)]
mod tests;
