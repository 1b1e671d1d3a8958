//! Per-project hubs: which local sockets joined which topic, presence, fan-out and limits.
//!
//! A [`ProjectHub`] exists while something of its project is alive on this replica (a socket, a
//! REST broadcast in flight): [`Hubs::get`] creates it on first use and it goes away with the last
//! `Arc`. Topics live inside their project's hub, so the same topic name in two projects never
//! meets; a private channel and a public one of the same name are different topics too.
//!
//! Fan-out never waits on a socket: each subscriber has a bounded queue, a full queue kicks the
//! socket (it closes with 1013, a slow consumer must not hold memory or stall others), and a
//! message is encoded at most once per protocol version ([`Outgoing`]) whatever the number of
//! subscribers. Broadcasts and presence diffs also go to the [`Bridge`] for the other replicas;
//! what the bridge brings back is delivered here with [`ProjectHub::deliver_remote`].

use crate::bridge::{Bridge, Local, Remote};
use crate::cdc::{Cdc, Subscriptions};
use crate::delivery::{Outgoing, SocketHandle, TopicKey};
use crate::limits::{LimitError, ProjectCounters, ProjectLimits};
use crate::presence::{Presence, PresenceError, PresenceLimits, SocketId};
use crate::protocol::{event, Message, Payload, UserBroadcast};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a project's hub, and so its rate buckets, outlives its last socket or REST call:
/// without it a client reconnecting in a loop, or REST broadcasts to a project with no socket
/// here, would start from full buckets every time.
const LINGER: Duration = Duration::from_secs(2);

/// Every project hub of this replica.
pub struct Hubs {
    replica: String,
    limits: ProjectLimits,
    presence_limits: PresenceLimits,
    map: Mutex<HashMap<String, Weak<ProjectHub>>>,
    /// Hubs kept alive until the instant, whoever else holds them ([`LINGER`]).
    lingering: Mutex<HashMap<String, (Arc<ProjectHub>, Instant)>>,
    bridge: OnceLock<Bridge>,
    cdc: OnceLock<Cdc>,
}

impl Local for Hubs {
    fn deliver(&self, project_ref: &str, origin: &str, remote: Remote) {
        if let Some(hub) = self.existing(project_ref) {
            hub.deliver_remote(origin, remote);
        }
    }

    fn refresh_presence(&self, ttl: Duration) -> Vec<String> {
        let mut own = Vec::new();
        for hub in self.live() {
            if hub.has_local_presence() {
                own.push(hub.project_ref().to_owned());
            }
            hub.expire_remote_presence(ttl);
        }
        own
    }
}

impl Hubs {
    pub fn new(replica: String, limits: ProjectLimits, presence_limits: PresenceLimits) -> Self {
        Hubs {
            replica,
            limits,
            presence_limits,
            map: Mutex::new(HashMap::new()),
            lingering: Mutex::new(HashMap::new()),
            bridge: OnceLock::new(),
            cdc: OnceLock::new(),
        }
    }

    /// This replica's name (presence refs, the bridge's origin field).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Connects the hubs to the other replicas; set once, before the first hub.
    pub fn set_bridge(&self, bridge: Bridge) {
        let _ = self.bridge.set(bridge);
    }

    /// Enables postgres_changes; set once, before the first hub.
    pub fn set_cdc(&self, cdc: Cdc) {
        let _ = self.cdc.set(cdc);
    }

    /// The hub of `project_ref`, created if no one holds it.
    pub fn get(self: &Arc<Self>, project_ref: &str) -> Arc<ProjectHub> {
        self.linger_until(None);
        let mut map = lock(&self.map);
        if let Some(hub) = map.get(project_ref).and_then(Weak::upgrade) {
            return hub;
        }
        map.retain(|_, hub| hub.strong_count() > 0);
        let bridge = self.bridge.get().cloned();
        if let Some(bridge) = &bridge {
            bridge.subscribe(project_ref);
        }
        let hub = Arc::new(ProjectHub {
            project_ref: project_ref.to_owned(),
            hubs: Arc::downgrade(self),
            topics: Mutex::new(HashMap::new()),
            presence: Mutex::new(Presence::new(self.replica.clone(), self.presence_limits)),
            remote_presence: Mutex::new(HashMap::new()),
            remote_seen: Mutex::new(HashMap::new()),
            max_remote_entries: self.presence_limits.max_entries_per_topic,
            counters: Mutex::new(ProjectCounters::new(self.limits, Instant::now())),
            changes: self
                .cdc
                .get()
                .map(|cdc| Subscriptions::new(cdc.clone(), &self.replica)),
            bridge,
        });
        map.insert(project_ref.to_owned(), Arc::downgrade(&hub));
        hub
    }

    /// Drops lingering hubs whose time is up, then keeps `hub` (if any) for [`LINGER`] more.
    fn linger_until(&self, hub: Option<&Arc<ProjectHub>>) {
        let now = Instant::now();
        let expired: Vec<Arc<ProjectHub>> = {
            let mut lingering = lock(&self.lingering);
            if let Some(hub) = hub {
                lingering.insert(hub.project_ref.clone(), (hub.clone(), now + LINGER));
            }
            let gone: Vec<String> = lingering
                .iter()
                .filter(|(_, (_, until))| *until <= now)
                .map(|(r, _)| r.clone())
                .collect();
            gone.iter()
                .filter_map(|r| lingering.remove(r).map(|(hub, _)| hub))
                .collect()
        };
        // Dropped outside the lock: a last reference runs the hub's Drop.
        drop(expired);
    }

    /// Every live hub (the bridge's liveness round).
    pub fn live(&self) -> Vec<Arc<ProjectHub>> {
        lock(&self.map).values().filter_map(Weak::upgrade).collect()
    }

    /// The hub of `project_ref` if one is alive (the bridge delivers only to those).
    pub fn existing(&self, project_ref: &str) -> Option<Arc<ProjectHub>> {
        lock(&self.map).get(project_ref).and_then(Weak::upgrade)
    }
}

/// A presence entry another replica reported.
struct RemoteEntry {
    key: String,
    /// The meta as sent, with its phx_ref.
    meta: Map<String, Value>,
    origin: String,
}

/// Remote presence entries of one topic, by phx_ref.
type RemoteEntries = BTreeMap<String, RemoteEntry>;

/// One project's topics, presence and limits on this replica.
pub struct ProjectHub {
    project_ref: String,
    hubs: Weak<Hubs>,
    topics: Mutex<HashMap<TopicKey, HashMap<SocketId, SocketHandle>>>,
    presence: Mutex<Presence>,
    /// Presence of other replicas, folded from their diffs.
    remote_presence: Mutex<HashMap<TopicKey, RemoteEntries>>,
    /// When each other replica was last heard from about this project.
    remote_seen: Mutex<HashMap<String, Instant>>,
    /// Remote entries kept per topic (what other replicas report is bounded as our own).
    max_remote_entries: usize,
    counters: Mutex<ProjectCounters>,
    /// postgres_changes subscriptions; `None` when this replica cannot capture changes.
    changes: Option<Subscriptions>,
    bridge: Option<Bridge>,
}

impl Drop for ProjectHub {
    fn drop(&mut self) {
        if let Some(bridge) = &self.bridge {
            bridge.unsubscribe(&self.project_ref);
        }
    }
}

impl ProjectHub {
    pub fn project_ref(&self) -> &str {
        &self.project_ref
    }

    /// Keeps this hub (its limits) alive a little after its last user lets go.
    pub fn linger(self: &Arc<Self>) {
        if let Some(hubs) = self.hubs.upgrade() {
            hubs.linger_until(Some(self));
        }
    }

    pub fn limits(&self) -> ProjectLimits {
        *lock(&self.counters).limits()
    }

    /// Runs `f` on the project's counters (limits are checked under one lock, never awaited).
    pub fn counters<T>(&self, f: impl FnOnce(&mut ProjectCounters, Instant) -> T) -> T {
        f(&mut lock(&self.counters), Instant::now())
    }

    /// Counts a socket for as long as the returned guard lives.
    pub fn open_socket(self: &Arc<Self>) -> Result<SocketGuard, LimitError> {
        lock(&self.counters).open_socket()?;
        Ok(SocketGuard { hub: self.clone() })
    }

    pub fn subscribe(&self, topic: &TopicKey, socket: SocketHandle) {
        lock(&self.topics)
            .entry(topic.clone())
            .or_default()
            .insert(socket.id, socket);
    }

    pub fn changes(&self) -> Option<&Subscriptions> {
        self.changes.as_ref()
    }

    /// Leaves `topic`: unsubscribes the socket, its postgres_changes and its presence there.
    pub fn unsubscribe(&self, topic: &TopicKey, socket: SocketId) {
        if let Some(changes) = &self.changes {
            changes.remove(socket, &topic.topic);
        }
        {
            let mut topics = lock(&self.topics);
            if let Some(subs) = topics.get_mut(topic) {
                subs.remove(&socket);
                if subs.is_empty() {
                    topics.remove(topic);
                }
            }
        }
        let diff = lock(&self.presence).untrack(&topic.presence_name(), socket);
        if let Some(diff) = diff {
            self.presence_diff(topic, &diff.payload());
        }
    }

    /// How many local sockets joined `topic`.
    pub fn subscribers(&self, topic: &TopicKey) -> usize {
        lock(&self.topics).get(topic).map_or(0, HashMap::len)
    }

    /// Sends a user broadcast to the topic's subscribers here and on the other replicas; the
    /// sender (`from`) gets it back only with `echo_self`.
    pub fn broadcast(
        &self,
        topic: &TopicKey,
        from: Option<SocketId>,
        echo_self: bool,
        broadcast: UserBroadcast,
    ) {
        if let Some(bridge) = &self.bridge {
            bridge.publish_broadcast(&self.project_ref, topic, &broadcast);
        }
        let skip = from.filter(|_| !echo_self);
        self.deliver(topic, skip, broadcast_message(topic, broadcast));
    }

    /// Tracks `socket` under `key`; every subscriber (the tracker too) gets the diff.
    pub fn track(
        &self,
        topic: &TopicKey,
        socket: SocketId,
        key: &str,
        meta: Map<String, Value>,
    ) -> Result<(), PresenceError> {
        let diff = lock(&self.presence).track(&topic.presence_name(), socket, key, meta)?;
        if let Some(diff) = diff {
            self.presence_diff(topic, &diff.payload());
        }
        Ok(())
    }

    pub fn untrack(&self, topic: &TopicKey, socket: SocketId) {
        let diff = lock(&self.presence).untrack(&topic.presence_name(), socket);
        if let Some(diff) = diff {
            self.presence_diff(topic, &diff.payload());
        }
    }

    /// A closed socket leaves every topic it joined.
    pub fn remove_socket(&self, socket: SocketId, topics: &[TopicKey]) {
        for topic in topics {
            self.unsubscribe(topic, socket);
        }
    }

    /// The `presence_state` payload: this replica's entries and those other replicas reported.
    pub fn presence_state(&self, topic: &TopicKey) -> Map<String, Value> {
        let mut state = lock(&self.presence).state(&topic.presence_name());
        if let Some(remote) = lock(&self.remote_presence).get(topic) {
            for RemoteEntry { key, meta, .. } in remote.values() {
                let entry = state
                    .entry(key.clone())
                    .or_insert_with(|| serde_json::json!({"metas": []}));
                if let Some(Value::Array(metas)) = entry.get_mut("metas") {
                    metas.push(Value::Object(meta.clone()));
                }
            }
        }
        state
    }

    /// What another replica (`origin`) published for this project.
    pub fn deliver_remote(&self, origin: &str, remote: Remote) {
        lock(&self.remote_seen).insert(origin.to_owned(), Instant::now());
        match remote {
            Remote::Broadcast { topic, broadcast } => {
                self.deliver(&topic, None, broadcast_message(&topic, broadcast));
            }
            Remote::PresenceDiff { topic, diff } => {
                self.fold_remote_presence(&topic, &diff, origin);
                let message = Message::json(None, None, &topic.topic, event::PRESENCE_DIFF, diff);
                self.deliver(&topic, None, message);
            }
            Remote::Alive => {}
        }
    }

    /// Whether this replica holds presence entries of the project.
    pub fn has_local_presence(&self) -> bool {
        !lock(&self.presence).is_empty()
    }

    /// Drops the entries of replicas not heard from within `ttl`; local subscribers get the leaves.
    pub fn expire_remote_presence(&self, ttl: Duration) {
        let now = Instant::now();
        let gone: Vec<String> = {
            let mut seen = lock(&self.remote_seen);
            let gone = seen
                .iter()
                .filter(|(_, at)| now.saturating_duration_since(**at) > ttl)
                .map(|(origin, _)| origin.clone())
                .collect::<Vec<_>>();
            for origin in &gone {
                seen.remove(origin);
            }
            gone
        };
        if gone.is_empty() {
            return;
        }
        let mut leaves: Vec<(TopicKey, Map<String, Value>)> = Vec::new();
        {
            let mut remote = lock(&self.remote_presence);
            for (topic, entries) in remote.iter_mut() {
                let mut by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
                entries.retain(|_, e| {
                    let stale = gone.contains(&e.origin);
                    if stale {
                        let meta = Value::Object(e.meta.clone());
                        by_key.entry(e.key.clone()).or_default().push(meta);
                    }
                    !stale
                });
                if !by_key.is_empty() {
                    let grouped: Map<String, Value> = by_key
                        .into_iter()
                        .map(|(key, metas)| (key, serde_json::json!({ "metas": metas })))
                        .collect();
                    let mut diff = Map::new();
                    diff.insert("joins".into(), Value::Object(Map::new()));
                    diff.insert("leaves".into(), Value::Object(grouped));
                    leaves.push((topic.clone(), diff));
                }
            }
            remote.retain(|_, entries| !entries.is_empty());
        }
        for (topic, diff) in leaves {
            let message = Message::json(None, None, &topic.topic, event::PRESENCE_DIFF, diff);
            self.deliver(&topic, None, message);
        }
    }

    fn fold_remote_presence(&self, topic: &TopicKey, diff: &Map<String, Value>, origin: &str) {
        let mut remote = lock(&self.remote_presence);
        let entries = remote.entry(topic.clone()).or_default();
        for (_, meta) in metas(diff, "leaves") {
            if let Some(phx_ref) = meta.get("phx_ref").and_then(Value::as_str) {
                entries.remove(phx_ref);
            }
        }
        for (key, meta) in metas(diff, "joins") {
            if let Some(phx_ref) = meta.get("phx_ref").and_then(Value::as_str) {
                if entries.len() < self.max_remote_entries {
                    let entry = RemoteEntry {
                        key: key.to_owned(),
                        meta: meta.clone(),
                        origin: origin.to_owned(),
                    };
                    entries.insert(phx_ref.to_owned(), entry);
                }
            }
        }
        if entries.is_empty() {
            remote.remove(topic);
        }
    }

    fn presence_diff(&self, topic: &TopicKey, payload: &Map<String, Value>) {
        if let Some(bridge) = &self.bridge {
            bridge.publish_presence(&self.project_ref, topic, payload);
        }
        let message = Message::json(
            None,
            None,
            &topic.topic,
            event::PRESENCE_DIFF,
            payload.clone(),
        );
        self.deliver(topic, None, message);
    }

    /// Queues `message` for every local subscriber of `topic` but `skip`.
    fn deliver(&self, topic: &TopicKey, skip: Option<SocketId>, message: Message) {
        let outgoing = Outgoing::new(message);
        let topics = lock(&self.topics);
        let Some(subs) = topics.get(topic) else {
            return;
        };
        for (id, sub) in subs {
            if Some(*id) == skip {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = sub.queue.try_send(outgoing.clone()) {
                sub.kick.cancel();
            }
        }
    }
}

/// `(key, meta)` of every meta under `joins` or `leaves` of a presence diff.
fn metas<'a>(
    diff: &'a Map<String, Value>,
    side: &str,
) -> impl Iterator<Item = (&'a str, &'a Map<String, Value>)> {
    diff.get(side)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .flat_map(|(key, entry)| {
            entry
                .get("metas")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .map(move |meta| (key.as_str(), meta))
        })
}

/// A user broadcast as subscribers receive it (no refs: it is not a reply to them).
fn broadcast_message(topic: &TopicKey, broadcast: UserBroadcast) -> Message {
    Message {
        join_ref: None,
        msg_ref: None,
        topic: topic.topic.clone(),
        event: event::BROADCAST.to_owned(),
        payload: Payload::UserBroadcast(broadcast),
    }
}

/// Keeps a socket counted against its project's limit.
pub struct SocketGuard {
    hub: Arc<ProjectHub>,
}

impl SocketGuard {
    pub fn hub(&self) -> &Arc<ProjectHub> {
        &self.hub
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        lock(&self.hub.counters).close_socket();
        self.hub.linger();
    }
}

/// Locks a mutex whose holders never panic while holding it (no I/O, no user code under it).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_lingers_so_its_limits_outlive_its_last_user() {
        let limits = ProjectLimits {
            events_per_second: 3,
            ..ProjectLimits::default()
        };
        let hubs = Arc::new(Hubs::new("r1".into(), limits, PresenceLimits::default()));
        let hub = hubs.get("p1");
        assert!(hub.counters(|c, now| c.events(3, now)).is_ok());
        hub.linger();
        let weak = Arc::downgrade(&hub);
        drop(hub);
        let again = hubs.get("p1");
        assert!(Weak::ptr_eq(&weak, &Arc::downgrade(&again)));
        assert_eq!(
            again.counters(|c, now| c.events(1, now)),
            Err(LimitError::TooManyEvents)
        );
        // Another project is another hub, with its own buckets.
        assert!(hubs.get("p2").counters(|c, now| c.events(3, now)).is_ok());
        // Without a linger, the last user takes the hub with it.
        let p3 = hubs.get("p3");
        let weak = Arc::downgrade(&p3);
        drop(p3);
        assert!(weak.upgrade().is_none());
        assert!(hubs.existing("p3").is_none());
    }
}
