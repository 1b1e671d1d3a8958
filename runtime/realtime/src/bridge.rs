//! Broadcast and presence across replicas over Redis pub/sub.
//!
//! Each project has one channel, `supactl:rt:{ref}`; a replica subscribes to it while it holds a
//! hub of that project ([`Bridge::subscribe`] / [`Bridge::unsubscribe`] are counted, so a hub
//! dropped and re-created in a race stays subscribed). A message is one JSON envelope
//! `{"o": origin replica, "k": "b" | "p", …}`: `b` a user broadcast (`payload` is the JSON text, or
//! base64 when `enc` is `bin`), `p` a presence diff. A replica ignores its own envelopes: the
//! origin already delivered locally, honouring `self`.
//!
//! Redis is never on the delivery path of local subscribers. Publishing goes through a bounded
//! queue to one task; while Redis is unreachable envelopes are dropped (counted, logged once per
//! outage) and delivery is per replica. The subscriber task reconnects with backoff (200 ms to
//! 5 s) and resubscribes every live project. Nothing here panics or blocks a socket.
//!
//! Presence of other replicas is mirrored from their diffs. A replica holding presence entries of
//! a project also publishes `a` (alive) every third of the presence TTL; the entries of a replica
//! not heard from for a TTL (it died, or diffs were lost while Redis was down) are dropped and the
//! local subscribers get the leaves.

use crate::delivery::TopicKey;
use crate::protocol::{UserBroadcast, UserPayload};
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use supactl_common::invalidation::{client, RedisError};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

/// Envelopes waiting to be published; past this they are dropped.
const PUBLISH_QUEUE: usize = 4096;
/// Bound on connecting to Redis and on one command.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The pub/sub channel of a project.
pub fn channel(project_ref: &str) -> String {
    format!("supactl:rt:{project_ref}")
}

/// What another replica published, ready for [`Local::deliver`].
#[derive(Debug, PartialEq)]
pub enum Remote {
    Broadcast {
        topic: TopicKey,
        broadcast: UserBroadcast,
    },
    PresenceDiff {
        topic: TopicKey,
        diff: Map<String, Value>,
    },
    /// The origin replica still holds presence entries of this project.
    Alive,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    o: String,
    #[serde(flatten)]
    body: Body,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "k")]
enum Body {
    #[serde(rename = "b")]
    Broadcast {
        topic: String,
        private: bool,
        event: String,
        enc: Encoding,
        payload: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meta: Option<Map<String, Value>>,
    },
    #[serde(rename = "p")]
    Presence {
        topic: String,
        private: bool,
        diff: Map<String, Value>,
    },
    #[serde(rename = "a")]
    Alive,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    Json,
    Bin,
}

enum Control {
    Subscribe(String),
    Unsubscribe(String),
}

/// This replica's side of the Redis fan-out (cheap to clone).
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

struct Inner {
    replica: String,
    publish: mpsc::Sender<(String, String)>,
    // Unbounded but small: one message per hub created or dropped, drained even while Redis is down.
    control: mpsc::UnboundedSender<Control>,
    dropped: AtomicU64,
}

/// This replica's side of the bridge: the hubs it delivers into (implemented by the hub module's
/// `Hubs`), so the bridge does not depend on the hub.
pub trait Local: Send + Sync + 'static {
    /// Hands what replica `origin` published for `project_ref` to that project's hub, if this
    /// replica has one.
    fn deliver(&self, project_ref: &str, origin: &str, remote: Remote);
    /// Drops other replicas' presence entries not heard of within `ttl`, and returns the projects
    /// with presence of this replica's own (which the bridge announces as alive).
    fn refresh_presence(&self, ttl: Duration) -> Vec<String>;
}

impl Bridge {
    /// Starts the publisher and subscriber tasks; they end with `shutdown`. Fails only on a URL
    /// that cannot be used; an unreachable Redis is retried in the background.
    /// `presence_ttl`: how long another replica's presence entries last without news from it.
    pub fn start(
        url: &str,
        hubs: Weak<dyn Local>,
        replica: String,
        presence_ttl: Duration,
        shutdown: CancellationToken,
    ) -> Result<Bridge, RedisError> {
        let redis = client(url)?;
        let (publish, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (control, control_rx) = mpsc::unbounded_channel();
        tokio::spawn(publisher(redis.clone(), publish_rx, shutdown.clone()));
        tokio::spawn(subscriber(
            redis,
            control_rx,
            hubs.clone(),
            replica.clone(),
            shutdown.clone(),
        ));
        let bridge = Bridge {
            inner: Arc::new(Inner {
                replica,
                publish,
                control,
                dropped: AtomicU64::new(0),
            }),
        };
        tokio::spawn(liveness(bridge.clone(), hubs, presence_ttl, shutdown));
        Ok(bridge)
    }

    pub fn subscribe(&self, project_ref: &str) {
        let _ = self
            .inner
            .control
            .send(Control::Subscribe(project_ref.to_owned()));
    }

    pub fn unsubscribe(&self, project_ref: &str) {
        let _ = self
            .inner
            .control
            .send(Control::Unsubscribe(project_ref.to_owned()));
    }

    /// Envelopes dropped because the queue was full (Redis slow or down).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    pub fn publish_broadcast(&self, project_ref: &str, topic: &TopicKey, b: &UserBroadcast) {
        let (enc, payload) = match &b.payload {
            UserPayload::Json(bytes) => (Encoding::Json, String::from_utf8_lossy(bytes).into()),
            UserPayload::Binary(bytes) => (
                Encoding::Bin,
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ),
        };
        self.publish(
            project_ref,
            Body::Broadcast {
                topic: topic.topic.clone(),
                private: topic.private,
                event: b.event.clone(),
                enc,
                payload,
                meta: b.meta.clone(),
            },
        );
    }

    pub fn publish_presence(&self, project_ref: &str, topic: &TopicKey, diff: &Map<String, Value>) {
        self.publish(
            project_ref,
            Body::Presence {
                topic: topic.topic.clone(),
                private: topic.private,
                diff: diff.clone(),
            },
        );
    }

    fn publish(&self, project_ref: &str, body: Body) {
        let envelope = Envelope {
            o: self.inner.replica.clone(),
            body,
        };
        let Ok(text) = serde_json::to_string(&envelope) else {
            return;
        };
        if self
            .inner
            .publish
            .try_send((channel(project_ref), text))
            .is_err()
        {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Every third of `ttl`: says "alive" for each project with presence entries here, and drops the
/// entries of replicas not heard from within `ttl` (they died, or their leaves were lost).
async fn liveness(
    bridge: Bridge,
    hubs: Weak<dyn Local>,
    ttl: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(ttl / 3);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let Some(hubs) = hubs.upgrade() else { return };
        for project_ref in hubs.refresh_presence(ttl) {
            bridge.publish(&project_ref, Body::Alive);
        }
    }
}

/// Reads an envelope into its origin and content; `None` for our own, or for one we cannot read.
fn decode(text: &[u8], replica: &str) -> Option<(String, Remote)> {
    let envelope: Envelope = serde_json::from_slice(text).ok()?;
    if envelope.o == replica {
        return None;
    }
    let remote = match envelope.body {
        Body::Broadcast {
            topic,
            private,
            event,
            enc,
            payload,
            meta,
        } => {
            let payload = match enc {
                Encoding::Json => UserPayload::Json(Bytes::from(payload)),
                Encoding::Bin => UserPayload::Binary(Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(payload)
                        .ok()?,
                )),
            };
            Remote::Broadcast {
                topic: TopicKey { topic, private },
                broadcast: UserBroadcast {
                    event,
                    payload,
                    meta,
                },
            }
        }
        Body::Presence {
            topic,
            private,
            diff,
        } => Remote::PresenceDiff {
            topic: TopicKey { topic, private },
            diff,
        },
        Body::Alive => Remote::Alive,
    };
    Some((envelope.o, remote))
}

/// Publishes queued envelopes on one multiplexed connection; drops them while Redis is down.
async fn publisher(
    redis: redis::Client,
    mut rx: mpsc::Receiver<(String, String)>,
    shutdown: CancellationToken,
) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let (mut retry_at, mut backoff) = (Instant::now(), MIN_BACKOFF);
    loop {
        let (channel, text) = tokio::select! {
            item = rx.recv() => match item { Some(item) => item, None => return },
            _ = shutdown.cancelled() => return,
        };
        if conn.is_none() && Instant::now() >= retry_at {
            match timeout(REDIS_TIMEOUT, redis.get_multiplexed_async_connection()).await {
                Ok(Ok(c)) => conn = Some(c),
                _ => {
                    tracing::warn!("realtime bridge: redis unreachable, delivering per replica");
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(text);
        match timeout(REDIS_TIMEOUT, cmd.query_async::<i64>(c)).await {
            Ok(Ok(_)) => backoff = MIN_BACKOFF,
            _ => {
                tracing::warn!("realtime bridge: publish failed, reconnecting");
                conn = None;
            }
        }
    }
}

/// Subscribed projects: how many live hubs want each.
type Wanted = HashMap<String, usize>;

/// Applies a control message; returns the channel to (un)subscribe when its count crossed zero.
fn apply(wanted: &mut Wanted, control: Control) -> Option<(bool, String)> {
    match control {
        Control::Subscribe(r) => {
            let n = wanted.entry(r.clone()).or_default();
            *n += 1;
            (*n == 1).then(|| (true, channel(&r)))
        }
        Control::Unsubscribe(r) => {
            let n = wanted.get_mut(&r)?;
            *n -= 1;
            if *n > 0 {
                return None;
            }
            wanted.remove(&r);
            Some((false, channel(&r)))
        }
    }
}

async fn subscriber(
    redis: redis::Client,
    mut control: mpsc::UnboundedReceiver<Control>,
    hubs: Weak<dyn Local>,
    replica: String,
    shutdown: CancellationToken,
) {
    let mut wanted = Wanted::new();
    let mut backoff = MIN_BACKOFF;
    loop {
        match listen(
            &redis,
            &mut control,
            &mut wanted,
            &hubs,
            &replica,
            &shutdown,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "realtime bridge: subscription lost, retrying"),
        }
        // Keep counting (un)subscriptions while waiting to reconnect.
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                _ = shutdown.cancelled() => return,
                c = control.recv() => match c {
                    Some(c) => { apply(&mut wanted, c); }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One subscription session; `Ok` on shutdown, `Err` when the connection is lost.
async fn listen(
    redis: &redis::Client,
    control: &mut mpsc::UnboundedReceiver<Control>,
    wanted: &mut Wanted,
    hubs: &Weak<dyn Local>,
    replica: &str,
    shutdown: &CancellationToken,
) -> Result<(), RedisError> {
    let pubsub = timeout(REDIS_TIMEOUT, redis.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    let (mut sink, mut stream) = pubsub.split();
    for r in wanted.keys() {
        sink.subscribe(channel(r)).await?;
    }
    tracing::info!("realtime bridge: subscribed");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            c = control.recv() => {
                let Some(c) = c else { return Ok(()) };
                match apply(wanted, c) {
                    Some((true, ch)) => sink.subscribe(ch).await?,
                    Some((false, ch)) => sink.unsubscribe(ch).await?,
                    None => {}
                }
            }
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Err(RedisError::from(redis::RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::ConnectionReset,
                    ))));
                };
                let Some(project_ref) = msg.get_channel_name().strip_prefix("supactl:rt:") else {
                    continue;
                };
                let Some((origin, remote)) = decode(msg.get_payload_bytes(), replica) else {
                    continue;
                };
                if let Some(hubs) = hubs.upgrade() {
                    hubs.deliver(project_ref, &origin, remote);
                }
            }
        }
    }
}

fn timed_out() -> RedisError {
    RedisError::from(redis::RedisError::from(std::io::Error::from(
        std::io::ErrorKind::TimedOut,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_round_trip_and_skip_their_origin() {
        let body = Body::Broadcast {
            topic: "realtime:room".into(),
            private: false,
            event: "msg".into(),
            enc: Encoding::Bin,
            payload: base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2]),
            meta: None,
        };
        let text = serde_json::to_vec(&Envelope {
            o: "r1".into(),
            body,
        })
        .unwrap();
        assert!(decode(&text, "r1").is_none());
        assert_eq!(
            decode(&text, "r2").map(|(_, remote)| remote),
            Some(Remote::Broadcast {
                topic: TopicKey::new("realtime:room", false),
                broadcast: UserBroadcast {
                    event: "msg".into(),
                    payload: UserPayload::Binary(Bytes::from_static(&[0, 1, 2])),
                    meta: None,
                },
            })
        );
        let presence = json!({"o": "r1", "k": "p", "topic": "realtime:a", "private": true,
            "diff": {"joins": {}, "leaves": {}}});
        assert!(matches!(
            decode(presence.to_string().as_bytes(), "r2"),
            Some((origin, Remote::PresenceDiff { topic, .. }))
                if origin == "r1" && topic == TopicKey::new("realtime:a", true)
        ));
        assert_eq!(
            decode(br#"{"o":"r1","k":"a"}"#, "r2"),
            Some(("r1".into(), Remote::Alive))
        );
        assert!(decode(b"{\"o\":\"r1\",\"k\":\"x\"}", "r2").is_none());
    }

    #[test]
    fn subscriptions_are_counted() {
        let mut w = Wanted::new();
        let sub = |r: &str| Control::Subscribe(r.into());
        let unsub = |r: &str| Control::Unsubscribe(r.into());
        assert_eq!(apply(&mut w, sub("a")), Some((true, "supactl:rt:a".into())));
        assert_eq!(apply(&mut w, sub("a")), None);
        assert_eq!(apply(&mut w, unsub("a")), None);
        assert_eq!(
            apply(&mut w, unsub("a")),
            Some((false, "supactl:rt:a".into()))
        );
        assert_eq!(apply(&mut w, unsub("a")), None);
        assert!(w.is_empty());
    }
}
