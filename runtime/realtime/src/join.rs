//! The `phx_join` payload, read once into a validated [`JoinConfig`].
//!
//! supabase-js and supabase-py send
//! `{"config":{"broadcast":{"self","ack"},"presence":{"key","enabled"},"private",
//! "postgres_changes":[{"event","schema","table","filter"?}]},"access_token"?}`. As in Supabase,
//! a field of the wrong type falls back to its default and is reported in
//! [`JoinConfig::warnings`] (Supabase logs `InvalidJoinPayload` and joins anyway); booleans may be
//! strings (`"true"`, `"False"`). A postgres_changes binding that cannot be used does not fail the
//! join either: it is answered in the reply like the others and reported afterwards in a `system`
//! message ([`system_payload`]). Only limits ([`JoinLimits`]) and a topic outside `realtime:`
//! refuse the join.
//!
//! The join reply must echo every binding exactly as sent, in order, each with an `id`
//! ([`JoinConfig::reply_response`]); supabase-js and supabase-py compare `event`, `schema`,
//! `table` and `filter` and fail with "mismatch between server and client bindings" otherwise.
//! The `id` is what `postgres_changes` messages carry in `ids`.

use crate::filter::{Filter, FilterError, FilterLimits};
use crate::payload::{Change, ChangeKind};
use serde_json::{Map, Value};
use std::fmt;

/// The prefix every Realtime channel topic has.
pub const TOPIC_PREFIX: &str = "realtime:";

/// The channel name inside a `realtime:` topic.
pub fn sub_topic(topic: &str) -> Result<&str, JoinError> {
    match topic.strip_prefix(TOPIC_PREFIX) {
        Some("") => Err(JoinError::TopicNameRequired),
        Some(name) => Ok(name),
        None => Err(JoinError::UnmatchedTopic),
    }
}

/// Bounds on one join payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinLimits {
    pub max_bindings: usize,
    pub max_presence_key_bytes: usize,
    pub filter: FilterLimits,
}

impl Default for JoinLimits {
    fn default() -> Self {
        JoinLimits {
            max_bindings: 100,
            max_presence_key_bytes: 256,
            filter: FilterLimits::default(),
        }
    }
}

/// What a channel asked for when it joined.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinConfig {
    /// Echo the socket's own broadcasts back to it.
    pub broadcast_self: bool,
    /// Answer each broadcast with a `phx_reply`.
    pub broadcast_ack: bool,
    pub presence_enabled: bool,
    /// The presence key; `None` (absent or empty) means the server picks a random one.
    pub presence_key: Option<String>,
    /// Authorize with the project's `realtime.messages` policies.
    pub private: bool,
    pub bindings: Vec<Binding>,
    pub access_token: AccessToken,
    /// Fields that could not be read and took their defaults, as `path: reason`.
    pub warnings: Vec<String>,
}

/// The token a join or an `access_token` message carries.
#[derive(Clone, PartialEq, Eq)]
pub enum AccessToken {
    /// None sent: the socket's `apikey` decides the role.
    Absent,
    /// An API key (`sb_…`): Supabase treats it as absent.
    ApiKey,
    /// A user JWT, still to be verified.
    Jwt(String),
}

impl AccessToken {
    /// Reads `access_token` (or the older `user_token`) from a join or `access_token` payload.
    pub fn from_payload(payload: &Map<String, Value>) -> Self {
        let token = payload
            .get("access_token")
            .or_else(|| payload.get("user_token"));
        match token.and_then(Value::as_str) {
            None | Some("") => AccessToken::Absent,
            Some(key) if key.starts_with("sb_") => AccessToken::ApiKey,
            Some(jwt) => AccessToken::Jwt(jwt.to_owned()),
        }
    }
}

impl fmt::Debug for AccessToken {
    // Never prints the token itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessToken::Absent => f.write_str("Absent"),
            AccessToken::ApiKey => f.write_str("ApiKey"),
            AccessToken::Jwt(_) => f.write_str("Jwt(<redacted>)"),
        }
    }
}

/// One entry of `config.postgres_changes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// Stable for equal parameters (a hash of them, as Supabase's `phash2`).
    pub id: u32,
    /// The client's parameters plus `id`, for the join reply.
    pub echo: Map<String, Value>,
    /// What to subscribe to, or why it cannot be (sent in a `system` message after the join).
    pub spec: Result<ChangeSpec, BindingError>,
}

/// A usable postgres_changes subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeSpec {
    /// `None` for `*` (every change kind).
    pub event: Option<ChangeKind>,
    /// `None` for `*`.
    pub schema: Option<String>,
    /// `None` for `*` (every table of the schema in the publication).
    pub table: Option<String>,
    pub filter: Filter,
}

impl ChangeSpec {
    /// Whether `change` is one this subscription receives (before RLS). As in Supabase, a DELETE
    /// is also matched on its old row, the only one it has.
    pub fn matches(&self, change: &Change) -> bool {
        self.event.is_none_or(|kind| kind == change.kind)
            && self.schema.as_ref().is_none_or(|s| *s == change.schema)
            && self.table.as_ref().is_none_or(|t| *t == change.table)
            && (self.filter.matches(&change.record)
                || (change.kind == ChangeKind::Delete && self.filter.matches(&change.old_record)))
    }
}

/// Why a binding cannot be subscribed; the text is the `system` message's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("No subscription params provided. Please provide at least a `schema` or `table` to subscribe to")]
    NoParams,
    #[error(transparent)]
    Filter(#[from] FilterError),
}

impl JoinConfig {
    /// Reads a `phx_join` payload.
    pub fn parse(payload: &Map<String, Value>, limits: &JoinLimits) -> Result<Self, JoinError> {
        let mut warnings = Vec::new();
        let empty = Map::new();
        let config = section(payload, "config", &mut warnings).unwrap_or(&empty);
        let broadcast = section(config, "broadcast", &mut warnings).unwrap_or(&empty);
        let presence = section(config, "presence", &mut warnings).unwrap_or(&empty);
        let mut flag = |map: &Map<String, Value>, path: &str, key: &str| {
            flexible_bool(map.get(key)).unwrap_or_else(|| {
                warnings.push(format!("{path}.{key}: unable to parse, expected boolean"));
                false
            })
        };
        let broadcast_self = flag(broadcast, "config.broadcast", "self");
        let broadcast_ack = flag(broadcast, "config.broadcast", "ack");
        let presence_enabled = flag(presence, "config.presence", "enabled");
        let private = flag(config, "config", "private");
        let presence_key = match presence.get("key") {
            Some(Value::String(key)) if !key.is_empty() => Some(key.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if let Some(key) = &presence_key {
            if key.len() > limits.max_presence_key_bytes {
                let max = limits.max_presence_key_bytes;
                return Err(JoinError::PresenceKeyTooLong {
                    size: key.len(),
                    max,
                });
            }
        }
        let bindings = bindings(config.get("postgres_changes"), limits, &mut warnings)?;
        Ok(JoinConfig {
            broadcast_self,
            broadcast_ack,
            presence_enabled,
            presence_key,
            private,
            bindings,
            access_token: AccessToken::from_payload(payload),
            warnings,
        })
    }

    /// The `response` of a successful join reply: `{"postgres_changes":[…]}`.
    pub fn reply_response(&self) -> Value {
        let echoed = self
            .bindings
            .iter()
            .map(|b| Value::Object(b.echo.clone()))
            .collect();
        let mut response = Map::new();
        response.insert("postgres_changes".into(), Value::Array(echoed));
        Value::Object(response)
    }
}

/// A nested object of the payload; anything else than an object or null is a warning.
fn section<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    warnings: &mut Vec<String>,
) -> Option<&'a Map<String, Value>> {
    match map.get(key) {
        Some(Value::Object(inner)) => Some(inner),
        None | Some(Value::Null) => None,
        Some(_) => {
            warnings.push(format!("{key}: unable to parse, expected a map"));
            None
        }
    }
}

/// Supabase's FlexibleBoolean: absent or null is false, a boolean is itself, `"true"`/`"false"` in
/// any case are booleans; `None` for anything else.
fn flexible_bool(value: Option<&Value>) -> Option<bool> {
    match value {
        None | Some(Value::Null) => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        Some(_) => None,
    }
}

fn bindings(
    value: Option<&Value>,
    limits: &JoinLimits,
    warnings: &mut Vec<String>,
) -> Result<Vec<Binding>, JoinError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            warnings
                .push("config.postgres_changes: unable to parse, expected an array of maps".into());
            return Ok(Vec::new());
        }
    };
    // Supabase drops null entries before reading the list; warnings name the client's index.
    let entries: Vec<(usize, &Value)> = items
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_null())
        .collect();
    if entries.len() > limits.max_bindings {
        return Err(JoinError::TooManyBindings {
            count: entries.len(),
            max: limits.max_bindings,
        });
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries {
        let Value::Object(params) = entry else {
            warnings.push(format!(
                "config.postgres_changes[{i}]: unable to parse, expected a map"
            ));
            continue;
        };
        let id = binding_id(params);
        let mut echo = params.clone();
        echo.insert("id".into(), Value::from(id));
        out.push(Binding {
            id,
            echo,
            spec: change_spec(params, &limits.filter),
        });
    }
    Ok(out)
}

/// Supabase's reading of one binding: schema, table and filter; schema alone means every table,
/// table alone means schema `public`; an unknown event means `*`. A null filter counts as none.
fn change_spec(
    params: &Map<String, Value>,
    limits: &FilterLimits,
) -> Result<ChangeSpec, BindingError> {
    let text = |key: &str| params.get(key).and_then(Value::as_str);
    let wildcard = |s: &str| (s != "*").then(|| s.to_owned());
    let event = match text("event").map(str::to_ascii_uppercase).as_deref() {
        Some("INSERT") => Some(ChangeKind::Insert),
        Some("UPDATE") => Some(ChangeKind::Update),
        Some("DELETE") => Some(ChangeKind::Delete),
        _ => None,
    };
    let filter = match params.get("filter") {
        None | Some(Value::Null) => Filter::default(),
        Some(Value::String(f)) => Filter::parse(f, limits)?,
        Some(_) => return Err(BindingError::NoParams),
    };
    let (schema, table) = match (text("schema"), text("table")) {
        (Some(schema), Some(table)) => (wildcard(schema), wildcard(table)),
        (Some(schema), None) if filter.conditions().is_empty() => (wildcard(schema), None),
        (None, Some(table)) if filter.conditions().is_empty() => {
            (Some("public".into()), wildcard(table))
        }
        _ => return Err(BindingError::NoParams),
    };
    Ok(ChangeSpec {
        event,
        schema,
        table,
        filter,
    })
}

/// FNV-1a over the parameters' canonical JSON (serde_json sorts object keys), kept to 31 bits so
/// every client reads it as a small positive integer.
fn binding_id(params: &Map<String, Value>) -> u32 {
    let text = serde_json::to_string(params).unwrap_or_default();
    let hash = text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash & 0x7fff_ffff
}

/// The payload of a `system` message, as Supabase sends it after a join
/// (`extension: "postgres_changes"`, `status: "ok"`, `message: "Subscribed to PostgreSQL"`) or
/// before it closes a channel (`extension: "system"`, `status: "error"`).
pub fn system_payload(
    extension: &str,
    status: &str,
    message: &str,
    channel: &str,
) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert("extension".into(), Value::String(extension.into()));
    payload.insert("status".into(), Value::String(status.into()));
    payload.insert("message".into(), Value::String(message.into()));
    payload.insert("channel".into(), Value::String(channel.into()));
    payload
}

/// Why a join is refused; the text is the error reply's `reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("TopicNameRequired: You must provide a topic name")]
    TopicNameRequired,
    #[error("unmatched topic")]
    UnmatchedTopic,
    #[error("InvalidJoinPayload: {count} postgres_changes bindings, at most {max} allowed")]
    TooManyBindings { count: usize, max: usize },
    #[error("InvalidJoinPayload: presence key is {size} bytes, at most {max} allowed")]
    PresenceKeyTooLong { size: usize, max: usize },
}

#[cfg(test)]
mod tests;
