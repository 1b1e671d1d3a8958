//! One WebSocket connection: a single task that reads frames, feeds them to its
//! [`Session`](crate::session::Session), carries out the effects against the project's hub, and
//! writes what the hub queued for it. No task per channel (memory per socket stays small).
//!
//! Bounds: frames over [`SocketConfig::max_frame_bytes`] close the socket with 1009 (the
//! WebSocket layer refuses them before buffering them whole); a frame that does not decode closes
//! it with 1007; no frame at all for [`SocketConfig::idle_timeout`] closes it (clients heartbeat
//! every 25–30 s); the hub's queue for the socket holds [`SocketConfig::queue_frames`] messages
//! and a socket that falls behind is closed with 1013; a write that does not complete within
//! [`SocketConfig::write_timeout`] closes it. Channels per socket, joins, events and presence are
//! limited per project ([`crate::limits`]). A channel joined with its own `access_token` closes
//! when that token expires (`system` error "Token has expired …", then `phx_close`), unless an
//! `access_token` push brought a newer one first. Server shutdown closes every channel (`system` error
//! then `phx_close`, so clients rejoin elsewhere) and the socket with 1001.
//!
//! A private channel keeps the [`Policies`] its join was authorized with: it receives broadcasts
//! and presence diffs only as they allow, its broadcasts are dropped (no ack, as Supabase does) and
//! its presence tracks refused without the write right, and a new token checks them again (the
//! channel closes when it may no longer receive what it could).

use crate::cdc::Subscription;
use crate::delivery::{ws_message, Outgoing, SocketHandle, TopicKey};
use crate::hub::SocketGuard;
use crate::identity::Identity;
use crate::join::{sub_topic, AccessToken, JoinLimits};
use crate::limits::{LimitError, PresenceWindow};
use crate::policies::{self, Authorizer, Policies};
use crate::presence::{PresenceLimits, PresenceRequest, SocketId};
use crate::protocol::{event, Codec, FrameRef, Message};
use crate::session::{Effect, JoinRequest, Session};
use axum::extract::ws::{self, CloseFrame, WebSocket};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use supactl_common::forwarded::RefRule;
use supactl_common::wire::ProjectConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Bounds of every socket.
#[derive(Clone, Copy, Debug)]
pub struct SocketConfig {
    /// No frame for this long closes the socket.
    pub idle_timeout: Duration,
    /// Messages the hub may queue for a socket before it counts as too slow.
    pub queue_frames: usize,
    /// Largest WebSocket message and frame accepted (also the codec's frame limit).
    pub max_frame_bytes: usize,
    /// The WebSocket layer's read buffer (tungstenite's default of 128 KiB per socket is what
    /// would dominate an idle socket's memory).
    pub read_buffer_bytes: usize,
    /// A write that takes longer closes the socket (a peer that stopped reading).
    pub write_timeout: Duration,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            idle_timeout: Duration::from_secs(60),
            queue_frames: 256,
            max_frame_bytes: 1024 * 1024,
            read_buffer_bytes: 4096,
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything a socket task starts with.
pub struct SocketCtx {
    pub id: SocketId,
    /// Counts the socket against its project; holds the project's hub.
    pub guard: SocketGuard,
    pub codec: Codec,
    pub project: Arc<ProjectConfig>,
    /// The caller the gateway authenticated.
    pub identity: Identity,
    pub config: SocketConfig,
    pub join_limits: JoinLimits,
    pub presence_limits: PresenceLimits,
    pub shutdown: CancellationToken,
    /// Checks private channels against the project's `realtime.messages` policies.
    pub authorizer: Arc<Authorizer>,
}

/// Why the loop stops: a close frame to send, or none (the peer is gone).
struct Stop(Option<(u16, &'static str)>);

const GONE: Stop = Stop(None);

/// One joined channel's state beyond the session's.
struct Channel {
    key: TopicKey,
    presence_window: PresenceWindow,
    /// When the channel's own access token expires (unix seconds); the channel closes then.
    /// The gateway's forwarding token is short-lived by design and does not count.
    token_expires_at: Option<i64>,
    /// What the channel's identity may do there ([`Policies::ALL`] on a public channel).
    policies: Policies,
}

struct Socket {
    ws: WebSocket,
    ctx: SocketCtx,
    session: Session,
    channels: HashMap<String, Channel>,
    handle: SocketHandle,
}

/// Serves one upgraded connection until it closes.
pub async fn run(ws: WebSocket, ctx: SocketCtx) {
    let (queue, mut outbox) = mpsc::channel(ctx.config.queue_frames);
    let handle = SocketHandle {
        id: ctx.id,
        queue,
        kick: CancellationToken::new(),
    };
    let mut socket = Socket {
        ws,
        session: Session::new(ctx.join_limits, ctx.presence_limits),
        ctx,
        channels: HashMap::new(),
        handle,
    };
    let Stop(close) = socket.serve(&mut outbox).await;
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(
            socket.ctx.config.write_timeout,
            socket.ws.send(ws::Message::Close(Some(frame))),
        )
        .await;
    }
    let topics: Vec<TopicKey> = socket.channels.into_values().map(|c| c.key).collect();
    socket.ctx.guard.hub().remove_socket(socket.ctx.id, &topics);
}

impl Socket {
    async fn serve(&mut self, outbox: &mut mpsc::Receiver<Arc<Outgoing>>) -> Stop {
        let idle = tokio::time::sleep(self.ctx.config.idle_timeout);
        tokio::pin!(idle);
        let (shutdown, kick) = (self.ctx.shutdown.clone(), self.handle.kick.clone());
        loop {
            let expiry = self.next_expiry();
            let expired = async {
                match &expiry {
                    Some((_, at)) => tokio::time::sleep(until_unix(*at)).await,
                    None => std::future::pending().await,
                }
            };
            let step = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return self.shut_down_all().await,
                _ = kick.cancelled() => return Stop(Some((1013, "too slow to keep up"))),
                _ = &mut idle => return Stop(Some((1000, "idle timeout"))),
                _ = expired => match expiry {
                    Some((topic, at)) => self.token_expired(&topic, at).await,
                    None => Ok(()),
                },
                out = outbox.recv() => match out.filter(|o| self.receives(o)).and_then(|o| o.frame(&self.ctx.codec)) {
                    Some(frame) => self.write(frame).await,
                    None => Ok(()),
                },
                frame = self.ws.recv() => {
                    idle.as_mut().reset(tokio::time::Instant::now() + self.ctx.config.idle_timeout);
                    self.on_frame(frame).await
                }
            };
            if let Err(stop) = step {
                return stop;
            }
        }
    }

    /// Whether a message fanned out to this socket may reach it: on a private channel, broadcasts
    /// and presence diffs only as its read policies allow.
    fn receives(&self, out: &Outgoing) -> bool {
        let message = out.message();
        let Some(channel) = self.channels.get(&message.topic) else {
            return true;
        };
        match message.event.as_str() {
            event::BROADCAST => channel.policies.broadcast_read,
            event::PRESENCE_DIFF => channel.policies.presence_read,
            _ => true,
        }
    }

    /// The channel whose token expires first, and when.
    fn next_expiry(&self) -> Option<(String, i64)> {
        self.channels
            .iter()
            .filter_map(|(topic, c)| c.token_expires_at.map(|at| (topic, at)))
            .min_by_key(|(_, at)| *at)
            .map(|(topic, at)| (topic.clone(), at))
    }

    async fn token_expired(&mut self, topic: &str, at: i64) -> Result<(), Stop> {
        let ago = (supactl_common::jwt::now() - at).max(0);
        let message = format!("Token has expired {ago} seconds ago");
        let effects = self.session.shut_down(topic, &message);
        self.carry_out(effects).await
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<ws::Message, axum::Error>>,
    ) -> Result<(), Stop> {
        let message = match frame {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(read_error(e)),
            None => return Err(GONE),
        };
        let decoded = match &message {
            ws::Message::Text(text) => self.ctx.codec.decode_client(FrameRef::Text(text.as_str())),
            ws::Message::Binary(bytes) => self.ctx.codec.decode_client(FrameRef::Binary(bytes)),
            ws::Message::Close(_) => return Err(GONE),
            // Answered by the WebSocket layer; they only keep the socket alive.
            ws::Message::Ping(_) | ws::Message::Pong(_) => return Ok(()),
        };
        let msg = decoded.map_err(|e| {
            tracing::debug!(error = %e, "realtime: undecodable frame");
            Stop(Some((1007, "invalid frame")))
        })?;
        let effects = self.session.handle(msg);
        self.carry_out(effects).await
    }

    async fn carry_out(&mut self, effects: Vec<Effect>) -> Result<(), Stop> {
        let mut todo: VecDeque<Effect> = effects.into();
        while let Some(effect) = todo.pop_front() {
            let more = match effect {
                Effect::Send(msg) => {
                    self.send(&msg).await?;
                    Vec::new()
                }
                Effect::Join(request) => self.join(*request).await?,
                Effect::Leave { topic } => {
                    if let Some(channel) = self.channels.remove(&topic) {
                        self.hub_unsubscribe(&channel.key);
                    }
                    Vec::new()
                }
                Effect::Broadcast {
                    topic,
                    broadcast,
                    echo_self,
                    ack,
                } => self.broadcast(&topic, broadcast, echo_self, ack),
                Effect::Presence {
                    topic,
                    key,
                    request,
                    reply,
                } => self.presence(&topic, &key, request, reply),
                Effect::AccessToken { topic, token } => self.access_token(&topic, &token).await,
            };
            todo.extend(more);
        }
        Ok(())
    }

    fn hub_unsubscribe(&self, key: &TopicKey) {
        self.ctx.guard.hub().unsubscribe(key, self.ctx.id);
    }

    /// Limits, identity, authorization, subscription; then the session's reply.
    async fn join(&mut self, request: JoinRequest) -> Result<Vec<Effect>, Stop> {
        let hub = self.ctx.guard.hub().clone();
        let channels = self.session.channel_count();
        match hub.counters(|c, now| c.join(channels, now)) {
            Ok(()) => {}
            Err(e @ LimitError::TooManyJoins) => {
                // Supabase refuses the join, then disconnects the socket.
                let refused = self.session.join_failed(&request, &e.to_string());
                if let Effect::Send(msg) = refused {
                    self.send(&msg).await?;
                }
                return Err(Stop(Some((1008, "too many joins per second"))));
            }
            Err(e) => return Ok(vec![self.session.join_failed(&request, &e.to_string())]),
        }
        let (identity, token_expires_at) = match &request.config.access_token {
            AccessToken::Jwt(token) => {
                match Identity::verify(token, &self.ctx.project, RefRule::Optional) {
                    Ok(identity) => {
                        let expires_at = identity.expires_at();
                        (identity, expires_at)
                    }
                    Err(e) => {
                        let reason = format!("InvalidJWTToken: {e}");
                        return Ok(vec![self.session.join_failed(&request, &reason)]);
                    }
                }
            }
            _ => (self.ctx.identity.clone(), None),
        };
        let policies = if request.config.private {
            match self.policies(&identity, &request.sub_topic).await {
                Ok(policies) => policies,
                Err(e) => return Ok(vec![self.session.join_failed(&request, &e.to_string())]),
            }
        } else {
            Policies::ALL
        };
        if !policies.can_join() {
            let reason = policies::unauthorized(&request.sub_topic);
            return Ok(vec![self.session.join_failed(&request, &reason)]);
        }
        let key = TopicKey::new(&request.message.topic, request.config.private);
        hub.subscribe(&key, self.handle.clone());
        self.channels.insert(
            request.message.topic.clone(),
            Channel {
                key: key.clone(),
                presence_window: PresenceWindow::new(&hub.limits()),
                token_expires_at,
                policies,
            },
        );
        // a channel that chose no presence key gets a random UUID, as on Supabase
        let presence_key = request
            .config
            .presence_key
            .clone()
            .unwrap_or_else(supactl_common::ident::uuid_v4);
        let mut effects = self.session.joined(&request, presence_key);
        let join_ref = request
            .message
            .join_ref
            .as_deref()
            .or(request.message.msg_ref.as_deref());
        if request.config.presence_enabled && policies.presence_read {
            let state = hub.presence_state(&key);
            let push = Message::json(join_ref, None, &key.topic, event::PRESENCE_STATE, state);
            effects.push(Effect::Send(push));
        }
        let bindings: Vec<_> = request
            .config
            .bindings
            .iter()
            .filter_map(|b| b.spec.as_ref().ok().map(|spec| (b.id, spec.clone())))
            .collect();
        if !bindings.is_empty() {
            match hub.changes() {
                Some(changes) => changes.add(
                    &self.ctx.project,
                    Subscription {
                        socket: self.handle.clone(),
                        topic: key.topic.clone(),
                        join_ref: join_ref.map(str::to_owned),
                        bindings,
                        role: identity.role,
                        claims: identity.claims,
                    },
                ),
                None => {
                    let payload = crate::join::system_payload(
                        event::POSTGRES_CHANGES,
                        "error",
                        "postgres_changes is not available on this server",
                        &request.sub_topic,
                    );
                    let push = Message::json(join_ref, None, &key.topic, event::SYSTEM, payload);
                    effects.push(Effect::Send(push));
                }
            }
        }
        Ok(effects)
    }

    fn broadcast(
        &mut self,
        topic: &str,
        broadcast: crate::protocol::UserBroadcast,
        echo_self: bool,
        ack: Option<Message>,
    ) -> Vec<Effect> {
        let Some(channel) = self.channels.get(topic) else {
            return Vec::new();
        };
        // Supabase drops a broadcast its policies refuse, without an ack and without counting it.
        if !channel.policies.broadcast_write {
            return Vec::new();
        }
        let hub = self.ctx.guard.hub();
        if let Err(e) = hub.counters(|c, now| c.events(1, now)) {
            return self.session.shut_down(topic, &e.to_string());
        }
        let size = match &broadcast.payload {
            crate::protocol::UserPayload::Json(b) | crate::protocol::UserPayload::Binary(b) => {
                b.len()
            }
        };
        if hub.counters(|c, _| c.payload(size)).is_err() {
            let refused = ack.map(|ack| {
                let reason = json!({"reason": "payload_size_exceeded"});
                Effect::Send(Message::reply(&ack, "error", reason))
            });
            return refused.into_iter().collect();
        }
        hub.broadcast(&channel.key, Some(self.ctx.id), echo_self, broadcast);
        ack.map(Effect::Send).into_iter().collect()
    }

    fn presence(
        &mut self,
        topic: &str,
        key: &str,
        request: PresenceRequest,
        reply: Message,
    ) -> Vec<Effect> {
        let Some(channel) = self.channels.get_mut(topic) else {
            return Vec::new();
        };
        let hub = self.ctx.guard.hub();
        let admitted = channel
            .presence_window
            .call(Instant::now())
            .and_then(|()| hub.counters(|c, now| c.presence_event(now)));
        if let Err(e) = admitted {
            return self.session.shut_down(topic, &e.to_string());
        }
        if matches!(request, PresenceRequest::Track(_)) && !channel.policies.presence_write {
            return vec![Effect::Send(Message::reply(&reply, "error", json!({})))];
        }
        let done = match request {
            PresenceRequest::Track(meta) => hub.track(&channel.key, self.ctx.id, key, meta),
            PresenceRequest::Untrack => {
                hub.untrack(&channel.key, self.ctx.id);
                Ok(())
            }
        };
        match done {
            Ok(()) => vec![Effect::Send(reply)],
            Err(e) => {
                let reason = json!({"reason": e.to_string()});
                vec![Effect::Send(Message::reply(&reply, "error", reason))]
            }
        }
    }

    /// A new token for a channel: verified, and on a private channel the policies are checked again
    /// with it (the channel closes if it may no longer receive what it could); otherwise the channel
    /// now expires with it.
    async fn access_token(&mut self, topic: &str, token: &str) -> Vec<Effect> {
        let Some(channel) = self.channels.get(topic) else {
            return Vec::new();
        };
        let (private, before) = (channel.key.private, channel.policies);
        let identity = match Identity::verify(token, &self.ctx.project, RefRule::Optional) {
            Ok(identity) => identity,
            Err(e) => {
                return self
                    .session
                    .shut_down(topic, &format!("InvalidJWTToken: {e}"))
            }
        };
        let name = sub_topic(topic).unwrap_or(topic).to_owned();
        let after = if private {
            match self.policies(&identity, &name).await {
                Ok(policies) => policies,
                Err(e) => return self.session.shut_down(topic, &e.to_string()),
            }
        } else {
            Policies::ALL
        };
        if before.read_revoked_by(&after) {
            return self.session.shut_down(topic, &policies::revoked(&name));
        }
        let Some(channel) = self.channels.get_mut(topic) else {
            return Vec::new();
        };
        channel.policies = after;
        channel.token_expires_at = identity.expires_at();
        if let Some(changes) = self.ctx.guard.hub().changes() {
            changes.refresh(self.ctx.id, topic, identity.role, identity.claims);
        }
        Vec::new()
    }

    /// The policies of `identity` on a private channel (the socket itself is not held across the
    /// check: it is not `Sync`).
    fn policies(
        &self,
        identity: &Identity,
        sub_topic: &str,
    ) -> impl std::future::Future<Output = Result<Policies, policies::AuthzError>> + Send + 'static
    {
        let (authorizer, project) = (self.ctx.authorizer.clone(), self.ctx.project.clone());
        let (identity, sub_topic) = (identity.clone(), sub_topic.to_owned());
        async move {
            let checked = authorizer
                .check(&project, &identity, &[sub_topic.as_str()])
                .await?;
            Ok(checked.into_iter().next().unwrap_or_default())
        }
    }

    async fn send(&mut self, msg: &Message) -> Result<(), Stop> {
        match self.ctx.codec.encode_server(msg) {
            Ok(frame) => self.write(ws_message(frame)).await,
            Err(e) => {
                tracing::warn!(error = %e, "realtime: reply not encodable");
                Ok(())
            }
        }
    }

    async fn write(&mut self, frame: ws::Message) -> Result<(), Stop> {
        match tokio::time::timeout(self.ctx.config.write_timeout, self.ws.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(GONE),
            Err(_) => Err(Stop(Some((1013, "write timed out")))),
        }
    }

    /// Server shutdown: every channel is closed (clients rejoin elsewhere), then the socket.
    async fn shut_down_all(&mut self) -> Stop {
        let topics: Vec<String> = self.session.topics().map(str::to_owned).collect();
        for topic in topics {
            let effects = self.session.shut_down(&topic, "Server is shutting down");
            if self.carry_out(effects).await.is_err() {
                return GONE;
            }
        }
        Stop(Some((1001, "server shutting down")))
    }
}

/// A read error: a message over the size limit gets 1009, anything else means the peer is gone.
fn read_error(e: axum::Error) -> Stop {
    let inner = e.into_inner();
    match inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
        Some(tokio_tungstenite::tungstenite::Error::Capacity(_)) => {
            Stop(Some((1009, "frame too large")))
        }
        _ => GONE,
    }
}

/// How long until a unix time (zero when it has passed).
fn until_unix(at: i64) -> Duration {
    let secs = at.saturating_sub(supactl_common::jwt::now());
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}
