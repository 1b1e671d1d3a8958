//! Per-topic presence state, shaped as Phoenix Presence (and so Supabase) sends it.
//!
//! A channel tracks at most one entry per topic under its join's presence key; several sockets
//! may share a key (one user, two tabs), so a key holds a list of metas. The state a joining
//! channel receives is `presence_state`: `{key: {metas: [{phx_ref, …meta}]}}`; every change is a
//! `presence_diff`: `{joins: {key: {metas}}, leaves: {key: {metas}}}`. Tracking again with a new
//! meta is a leave of the old meta and a join of the new one, whose `phx_ref_prev` names the old
//! ref; tracking again with the same meta changes nothing (Supabase's `no_payload_change`).
//! Closing a socket untracks everything it tracked ([`Presence::untrack_socket`]).
//!
//! `phx_ref`s are this replica's node name plus a counter, unique across replicas without a clock
//! or a random source. This module holds one replica's entries; merging other replicas' diffs
//! (Redis) is the hub's concern.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Identifies one WebSocket connection within this replica.
pub type SocketId = u64;

/// Bounds on presence state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceLimits {
    /// Largest meta (the track payload) as JSON.
    pub max_meta_bytes: usize,
    /// Most entries one topic holds on this replica.
    pub max_entries_per_topic: usize,
}

impl Default for PresenceLimits {
    fn default() -> Self {
        PresenceLimits {
            max_meta_bytes: 64 * 1024,
            max_entries_per_topic: 10_000,
        }
    }
}

/// A client's `presence` push: `{"type":"presence","event":"track","payload":{…}}` or
/// `{"event":"untrack"}`.
#[derive(Clone, Debug, PartialEq)]
pub enum PresenceRequest {
    Track(Map<String, Value>),
    Untrack,
}

impl PresenceRequest {
    /// Reads a push payload; the event is case-insensitive, a missing `payload` is `{}`.
    pub fn parse(
        push: &Map<String, Value>,
        limits: &PresenceLimits,
    ) -> Result<Self, PresenceError> {
        let event = push
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match event.to_ascii_lowercase().as_str() {
            "track" => match push.get("payload") {
                None => Ok(PresenceRequest::Track(Map::new())),
                Some(Value::Object(meta)) => {
                    let size = serde_json::to_vec(meta).map_or(usize::MAX, |v| v.len());
                    if size > limits.max_meta_bytes {
                        return Err(PresenceError::TooLarge);
                    }
                    Ok(PresenceRequest::Track(meta.clone()))
                }
                Some(_) => Err(PresenceError::NotAMap),
            },
            "untrack" => Ok(PresenceRequest::Untrack),
            _ => Err(PresenceError::UnknownEvent),
        }
    }
}

/// A `presence_diff` payload under construction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diff {
    joins: BTreeMap<String, Vec<Map<String, Value>>>,
    leaves: BTreeMap<String, Vec<Map<String, Value>>>,
}

impl Diff {
    /// `{"joins": {key: {"metas": […]}}, "leaves": {…}}`.
    pub fn payload(&self) -> Map<String, Value> {
        let mut payload = Map::new();
        payload.insert("joins".into(), Value::Object(grouped(&self.joins)));
        payload.insert("leaves".into(), Value::Object(grouped(&self.leaves)));
        payload
    }
}

fn grouped(by_key: &BTreeMap<String, Vec<Map<String, Value>>>) -> Map<String, Value> {
    by_key
        .iter()
        .map(|(key, metas)| {
            let metas = metas.iter().cloned().map(Value::Object).collect();
            let mut entry = Map::new();
            entry.insert("metas".into(), Value::Array(metas));
            (key.clone(), Value::Object(entry))
        })
        .collect()
}

#[derive(Clone, Debug)]
struct Entry {
    key: String,
    /// The tracked meta, without `phx_ref` (to detect unchanged payloads).
    meta: Map<String, Value>,
    phx_ref: String,
}

impl Entry {
    fn sent_meta(&self, prev_ref: Option<&str>) -> Map<String, Value> {
        let mut meta = self.meta.clone();
        meta.insert("phx_ref".into(), Value::String(self.phx_ref.clone()));
        if let Some(prev) = prev_ref {
            meta.insert("phx_ref_prev".into(), Value::String(prev.to_owned()));
        }
        meta
    }
}

/// Presence entries of every topic on this replica.
#[derive(Debug)]
pub struct Presence {
    node: String,
    next_ref: u64,
    limits: PresenceLimits,
    /// topic → socket → entry (ordered, so states list metas deterministically).
    topics: HashMap<String, BTreeMap<SocketId, Entry>>,
    /// socket → topics it tracks, for cleanup when it closes.
    sockets: HashMap<SocketId, BTreeSet<String>>,
}

impl Presence {
    /// `node` prefixes every `phx_ref` and must differ between replicas.
    pub fn new(node: impl Into<String>, limits: PresenceLimits) -> Self {
        Presence {
            node: node.into(),
            next_ref: 0,
            limits,
            topics: HashMap::new(),
            sockets: HashMap::new(),
        }
    }

    /// Tracks (or re-tracks) `socket` in `topic` under `key`; `Ok(None)` when nothing changed.
    pub fn track(
        &mut self,
        topic: &str,
        socket: SocketId,
        key: &str,
        meta: Map<String, Value>,
    ) -> Result<Option<Diff>, PresenceError> {
        let entries = self.topics.entry(topic.to_owned()).or_default();
        let mut diff = Diff::default();
        let mut prev_ref = None;
        match entries.get(&socket) {
            Some(old) if old.key == key && old.meta == meta => return Ok(None),
            Some(old) => {
                diff.leaves
                    .entry(old.key.clone())
                    .or_default()
                    .push(old.sent_meta(None));
                prev_ref = Some(old.phx_ref.clone());
            }
            None if entries.len() >= self.limits.max_entries_per_topic => {
                if entries.is_empty() {
                    self.topics.remove(topic);
                }
                return Err(PresenceError::TopicFull);
            }
            None => {}
        }
        self.next_ref += 1;
        let entry = Entry {
            key: key.to_owned(),
            meta,
            phx_ref: format!("{}-{}", self.node, self.next_ref),
        };
        diff.joins
            .entry(entry.key.clone())
            .or_default()
            .push(entry.sent_meta(prev_ref.as_deref()));
        entries.insert(socket, entry);
        self.sockets
            .entry(socket)
            .or_default()
            .insert(topic.to_owned());
        Ok(Some(diff))
    }

    /// Untracks `socket` from `topic`; `None` when it was not tracked there.
    pub fn untrack(&mut self, topic: &str, socket: SocketId) -> Option<Diff> {
        let entries = self.topics.get_mut(topic)?;
        let entry = entries.remove(&socket)?;
        if entries.is_empty() {
            self.topics.remove(topic);
        }
        if let Some(tracked) = self.sockets.get_mut(&socket) {
            tracked.remove(topic);
            if tracked.is_empty() {
                self.sockets.remove(&socket);
            }
        }
        let mut diff = Diff::default();
        diff.leaves
            .insert(entry.key.clone(), vec![entry.sent_meta(None)]);
        Some(diff)
    }

    /// Untracks `socket` everywhere (it closed): one diff per topic it was in.
    pub fn untrack_socket(&mut self, socket: SocketId) -> Vec<(String, Diff)> {
        let topics = self.sockets.get(&socket).cloned().unwrap_or_default();
        topics
            .into_iter()
            .filter_map(|topic| self.untrack(&topic, socket).map(|diff| (topic, diff)))
            .collect()
    }

    /// The `presence_state` payload for `topic`.
    pub fn state(&self, topic: &str) -> Map<String, Value> {
        let mut by_key: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
        for entry in self
            .topics
            .get(topic)
            .into_iter()
            .flat_map(BTreeMap::values)
        {
            by_key
                .entry(entry.key.clone())
                .or_default()
                .push(entry.sent_meta(None));
        }
        grouped(&by_key)
    }

    /// How many entries `topic` holds.
    pub fn len(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, BTreeMap::len)
    }

    /// Whether no topic holds any entry.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }
}

/// Why a presence push was refused; the texts are Supabase's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error("Presence track payload must be a map")]
    NotAMap,
    #[error("Track message size exceeded")]
    TooLarge,
    #[error("UnknownPresenceEvent: expected track or untrack")]
    UnknownEvent,
    #[error("Too many presence entries on this topic")]
    TopicFull,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn presence() -> Presence {
        Presence::new("n1", PresenceLimits::default())
    }

    #[test]
    fn track_gives_state_and_diff_in_phoenix_shape() {
        let mut p = presence();
        let diff = p
            .track("realtime:room", 1, "u1", obj(json!({"name": "ann"})))
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(diff.payload()),
            json!({"joins": {"u1": {"metas": [{"name": "ann", "phx_ref": "n1-1"}]}}, "leaves": {}})
        );
        p.track("realtime:room", 2, "u1", obj(json!({"name": "ann2"})))
            .unwrap();
        p.track("realtime:room", 3, "u2", Map::new()).unwrap();
        assert_eq!(
            Value::Object(p.state("realtime:room")),
            json!({
                "u1": {"metas": [{"name": "ann", "phx_ref": "n1-1"}, {"name": "ann2", "phx_ref": "n1-2"}]},
                "u2": {"metas": [{"phx_ref": "n1-3"}]},
            })
        );
        assert_eq!(p.len("realtime:room"), 3);
        assert!(p.state("realtime:other").is_empty());
    }

    #[test]
    fn retrack_replaces_the_meta_and_same_meta_is_a_no_op() {
        let mut p = presence();
        p.track("t", 1, "u1", obj(json!({"s": "online"}))).unwrap();
        assert_eq!(
            p.track("t", 1, "u1", obj(json!({"s": "online"}))).unwrap(),
            None
        );
        let diff = p
            .track("t", 1, "u1", obj(json!({"s": "away"})))
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(diff.payload()),
            json!({
                "joins": {"u1": {"metas": [{"s": "away", "phx_ref": "n1-2", "phx_ref_prev": "n1-1"}]}},
                "leaves": {"u1": {"metas": [{"s": "online", "phx_ref": "n1-1"}]}},
            })
        );
        assert_eq!(p.len("t"), 1);
    }

    #[test]
    fn untrack_and_socket_close_clean_up() {
        let mut p = presence();
        p.track("a", 1, "u1", Map::new()).unwrap();
        p.track("b", 1, "u1", Map::new()).unwrap();
        p.track("b", 2, "u2", Map::new()).unwrap();
        let diff = p.untrack("a", 1).unwrap();
        assert_eq!(
            diff.payload()["leaves"],
            json!({"u1": {"metas": [{"phx_ref": "n1-1"}]}})
        );
        assert_eq!(p.untrack("a", 1), None);
        let closed = p.untrack_socket(1);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].0, "b");
        assert_eq!(
            closed[0].1.payload()["leaves"],
            json!({"u1": {"metas": [{"phx_ref": "n1-2"}]}})
        );
        assert!(p.untrack_socket(1).is_empty());
        assert_eq!(p.len("b"), 1);
        p.untrack_socket(2);
        assert!(p.is_empty());
        assert!(p.sockets.is_empty());
    }

    #[test]
    fn requests_are_parsed_and_bounded() {
        let limits = PresenceLimits {
            max_meta_bytes: 16,
            ..PresenceLimits::default()
        };
        let parse = |v: Value| PresenceRequest::parse(&obj(v), &limits);
        assert_eq!(
            parse(json!({"type": "presence", "event": "TRACK", "payload": {"a": 1}})),
            Ok(PresenceRequest::Track(obj(json!({"a": 1}))))
        );
        assert_eq!(
            parse(json!({"event": "track"})),
            Ok(PresenceRequest::Track(Map::new()))
        );
        assert_eq!(
            parse(json!({"event": "untrack"})),
            Ok(PresenceRequest::Untrack)
        );
        assert_eq!(
            parse(json!({"event": "track", "payload": [1]})),
            Err(PresenceError::NotAMap)
        );
        assert_eq!(
            parse(json!({"event": "track", "payload": [1]}))
                .unwrap_err()
                .to_string(),
            "Presence track payload must be a map"
        );
        assert_eq!(
            parse(json!({"event": "track", "payload": {"a": "x".repeat(20)}})),
            Err(PresenceError::TooLarge)
        );
        assert_eq!(
            parse(json!({"event": "dance"})),
            Err(PresenceError::UnknownEvent)
        );
    }

    #[test]
    fn a_full_topic_refuses_new_entries_but_not_updates() {
        let mut p = Presence::new(
            "n",
            PresenceLimits {
                max_entries_per_topic: 2,
                ..PresenceLimits::default()
            },
        );
        p.track("t", 1, "a", Map::new()).unwrap();
        p.track("t", 2, "b", Map::new()).unwrap();
        assert_eq!(
            p.track("t", 3, "c", Map::new()),
            Err(PresenceError::TopicFull)
        );
        assert!(p
            .track("t", 2, "b", obj(json!({"x": 1})))
            .unwrap()
            .is_some());
        assert_eq!(p.len("t"), 2);
        assert!(!p.sockets.contains_key(&3));
    }
}
