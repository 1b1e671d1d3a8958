//! Realtime served on real loopback sockets over a real control plane (a throwaway PostgreSQL
//! cluster and the tenant-manager), and a WebSocket client speaking either protocol version with
//! the crate's own client-side codec, as supabase-js (2.0.0) and supabase-py (1.0.0) frame messages.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use realtime::protocol::{Codec, FrameRef, Limits, Message, Payload, Vsn};
use realtime::{Realtime, RealtimeConfig};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::jwt;
use supactl_common::server::{serve, ServerConfig};
use testkit::ControlPlane;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long a client waits for a frame it expects.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct Project {
    pub project_ref: String,
    pub secret: String,
}

impl Project {
    pub async fn create(cp: &ControlPlane, project_ref: &str) -> Project {
        let created = cp.create_project(project_ref, project_ref).await;
        let project_ref = created["ref"].as_str().unwrap().to_string();
        let secret = cp.jwt_secret(&project_ref).await;
        Project {
            project_ref,
            secret,
        }
    }

    /// A token as the gateway mints it for `role`.
    pub fn token(&self, role: &str) -> String {
        let claims = json!({"role": role, "ref": self.project_ref, "iat": jwt::now(), "exp": jwt::now() + 300});
        jwt::sign(claims.as_object().unwrap(), self.secret.as_bytes())
    }
}

impl Project {
    /// A user's access token as the project's auth issues it, expiring at `exp` (unix seconds).
    pub fn user_token(&self, sub: &str, exp: i64) -> String {
        let claims = json!({"role": "authenticated", "sub": sub, "iat": jwt::now(), "exp": exp});
        jwt::sign(claims.as_object().unwrap(), self.secret.as_bytes())
    }
}

/// One realtime replica serving on a loopback port.
pub struct Replica {
    pub url: String,
    pub realtime: Arc<Realtime>,
    pub shutdown: CancellationToken,
}

impl Replica {
    pub async fn start(cp: &ControlPlane, config: RealtimeConfig) -> Replica {
        let shutdown = CancellationToken::new();
        let realtime = Realtime::new(
            cp.directory(Duration::from_secs(60)),
            config,
            shutdown.clone(),
        )
        .unwrap();
        let (listener, url) = testkit::listen().await;
        let app = realtime::router(realtime.clone());
        tokio::spawn(serve(
            listener,
            app,
            ServerConfig::default(),
            shutdown.clone(),
        ));
        Replica {
            url,
            realtime,
            shutdown,
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub codec: Codec,
    next_ref: u64,
}

impl Client {
    /// Connects as the gateway forwards a socket: minted token and project header.
    pub async fn connect(replica: &Replica, project: &Project, vsn: Vsn, role: &str) -> Client {
        let url = format!(
            "{}/websocket?vsn={}",
            replica.url.replace("http", "ws"),
            vsn.as_str()
        );
        let mut req = url.into_client_request().unwrap();
        let h = req.headers_mut();
        h.insert(
            realtime::PROJECT_HEADER,
            project.project_ref.parse().unwrap(),
        );
        h.insert(
            "authorization",
            format!("Bearer {}", project.token(role)).parse().unwrap(),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        Client {
            ws,
            codec: Codec::new(vsn, Limits::default()),
            next_ref: 0,
        }
    }

    /// Sends a push; returns its ref.
    pub async fn push(
        &mut self,
        join_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: Value,
    ) -> String {
        self.next_ref += 1;
        let msg_ref = self.next_ref.to_string();
        let msg = Message::json(
            join_ref,
            Some(&msg_ref),
            topic,
            event,
            payload.as_object().cloned().unwrap_or_default(),
        );
        self.send(&msg).await;
        msg_ref
    }

    pub async fn send(&mut self, msg: &Message) {
        let frame = match self.codec.encode_client(msg).unwrap() {
            realtime::protocol::Frame::Text(t) => WsMessage::Text(t.into()),
            realtime::protocol::Frame::Binary(b) => WsMessage::Binary(b),
        };
        self.ws.send(frame).await.unwrap();
    }

    pub async fn send_raw(&mut self, frame: WsMessage) {
        self.ws.send(frame).await.unwrap();
    }

    /// Joins `topic` with `config`; returns the join ref after checking the reply is ok.
    pub async fn join(&mut self, topic: &str, config: Value) -> String {
        self.next_ref += 1;
        let join_ref = self.next_ref.to_string();
        let msg = Message::json(
            Some(&join_ref),
            Some(&join_ref),
            topic,
            "phx_join",
            json!({ "config": config }).as_object().unwrap().clone(),
        );
        self.send(&msg).await;
        let reply = self.recv_event("phx_reply").await;
        assert_eq!(
            json_of(&reply)["status"],
            "ok",
            "join of {topic}: {reply:?}"
        );
        join_ref
    }

    /// The next message, whatever it is; `None` when the socket closed.
    pub async fn next(&mut self, wait: Duration) -> Option<Result<Message, Option<CloseCode>>> {
        loop {
            let frame = tokio::time::timeout(wait, self.ws.next()).await.ok()?;
            let decoded = match frame {
                Some(Ok(WsMessage::Text(t))) => {
                    self.codec.decode_server(FrameRef::Text(t.as_str()))
                }
                Some(Ok(WsMessage::Binary(b))) => self.codec.decode_server(FrameRef::Binary(&b)),
                Some(Ok(WsMessage::Close(frame))) => return Some(Err(frame.map(|f| f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Err(None)),
            };
            return Some(Ok(decoded.unwrap()));
        }
    }

    pub async fn recv(&mut self) -> Message {
        match self.next(WAIT).await {
            Some(Ok(msg)) => msg,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next message with `event`, skipping others (presence diffs, system messages).
    pub async fn recv_event(&mut self, event: &str) -> Message {
        loop {
            let msg = self.recv().await;
            if msg.event == event {
                return msg;
            }
        }
    }

    /// Asserts nothing arrives for `wait`.
    pub async fn silent(&mut self, wait: Duration) {
        if let Some(got) = self.next(wait).await {
            panic!("expected silence, got {got:?}");
        }
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn closed(&mut self, wait: Duration) -> Option<CloseCode> {
        loop {
            match self.next(wait).await {
                Some(Ok(_)) => continue,
                Some(Err(code)) => return code,
                None => panic!("the socket stayed open"),
            }
        }
    }
}

/// A message's payload as JSON (user broadcasts as `{type, event, payload}`, as clients see them).
pub fn json_of(msg: &Message) -> Value {
    match &msg.payload {
        Payload::Json(map) => Value::Object(map.clone()),
        Payload::UserBroadcast(b) => {
            let body = match &b.payload {
                realtime::protocol::UserPayload::Json(bytes) => {
                    serde_json::from_slice(bytes).unwrap()
                }
                realtime::protocol::UserPayload::Binary(bytes) => {
                    json!({ "binary": bytes.to_vec() })
                }
            };
            json!({"type": "broadcast", "event": b.event, "payload": body})
        }
        other => panic!("unexpected payload {other:?}"),
    }
}

pub fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}
