//! The HTTP face of realtime: `router(state)` serving, for requests the gateway already
//! authenticated and forwarded with `Authorization: Bearer <token it minted>` and the project in
//! [`PROJECT_HEADER`]:
//!
//! - `GET /websocket?vsn=1.0.0|2.0.0`: the WebSocket upgrade (Phoenix protocol, [`crate::socket`]);
//! - `POST /api/broadcast`: `{"messages":[{"topic","event","payload","private"?}]}` → 202;
//! - `GET /health`.
//!
//! Refusals before the upgrade are JSON `{"error": …}` as Supabase answers them (401 for a token
//! that does not verify, 404 for an unknown project, 429 past the project's socket limit). The
//! token is verified again here (defence in depth) with the shared check ([`Identity::verify`]).

use crate::bridge::{Bridge, Local};
use crate::delivery::TopicKey;
use crate::hub::Hubs;
use crate::identity::Identity;
use crate::join::{JoinLimits, TOPIC_PREFIX};
use crate::limits::{LimitError, ProjectLimits};
use crate::policies::Authorizer;
use crate::presence::PresenceLimits;
use crate::protocol::{self, Codec, UserBroadcast, UserPayload, Vsn};
use crate::socket::{self, SocketConfig, SocketCtx};
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use supactl_common::connections::Registry;
use supactl_common::directory::Directory;
use supactl_common::forwarded::RefRule;
use supactl_common::headers::{bearer, PROJECT_HEADER};
use supactl_common::invalidation::RedisError;
use supactl_common::wire::{status, ProjectConfig};
use tokio_util::sync::CancellationToken;

/// Messages one REST broadcast may carry.
const MAX_REST_MESSAGES: usize = 1000;

/// How this replica runs realtime.
#[derive(Clone, Debug)]
pub struct RealtimeConfig {
    /// Unique per replica: presence refs and the bridge's origin field.
    pub replica_id: String,
    /// Every project's limits (Supabase's defaults).
    pub limits: ProjectLimits,
    pub socket: SocketConfig,
    pub join: JoinLimits,
    pub presence: PresenceLimits,
    /// Redis for fan-out across replicas; `None`: this replica alone.
    pub redis_url: Option<String>,
    /// How long another replica's presence entries last without news from it (it says it is
    /// alive every third of this).
    pub presence_ttl: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            replica_id: format!("rt{:08x}", rand::random::<u32>()),
            limits: ProjectLimits::default(),
            socket: SocketConfig::default(),
            join: JoinLimits::default(),
            presence: PresenceLimits::default(),
            redis_url: None,
            presence_ttl: Duration::from_secs(15),
        }
    }
}

/// Connections kept open across projects for private-channel checks when realtime is given no
/// registry of its own ([`Realtime::set_registry`]).
const OWN_CONNECTION_BUDGET: usize = 64;

/// The state behind [`router`]: the project directory and this replica's hubs.
pub struct Realtime {
    directory: Arc<Directory>,
    config: RealtimeConfig,
    hubs: Arc<Hubs>,
    next_socket: AtomicU64,
    shutdown: CancellationToken,
    /// Private-channel checks, on the registry given or one of realtime's own.
    authorizer: OnceLock<Arc<Authorizer>>,
}

impl Realtime {
    /// Sockets close (1001) and the bridge stops when `shutdown` is cancelled.
    pub fn new(
        directory: Arc<Directory>,
        config: RealtimeConfig,
        shutdown: CancellationToken,
    ) -> Result<Arc<Realtime>, RedisError> {
        let hubs = Arc::new(Hubs::new(
            config.replica_id.clone(),
            config.limits,
            config.presence,
        ));
        if let Some(url) = &config.redis_url {
            let local: Arc<dyn Local> = hubs.clone();
            let bridge = Bridge::start(
                url,
                Arc::downgrade(&local),
                config.replica_id.clone(),
                config.presence_ttl,
                shutdown.clone(),
            )?;
            hubs.set_bridge(bridge);
        }
        Ok(Arc::new(Realtime {
            directory,
            config,
            hubs,
            next_socket: AtomicU64::new(1),
            shutdown,
            authorizer: OnceLock::new(),
        }))
    }

    /// Takes the connections of private-channel checks from `registry` (the budget every service
    /// of the process shares); call before serving. Without it realtime keeps its own budget.
    pub fn set_registry(&self, registry: &Registry) {
        let _ = self.authorizer.set(Arc::new(Authorizer::new(registry)));
    }

    /// Drops what realtime holds of a project's database connections (changed or paused project).
    pub fn forget(&self, project_ref: &str) {
        if let Some(a) = self.authorizer.get() {
            a.remove(project_ref);
        }
    }

    fn authorizer(&self) -> Arc<Authorizer> {
        self.authorizer
            .get_or_init(|| Arc::new(Authorizer::new(&Registry::new(OWN_CONNECTION_BUDGET))))
            .clone()
    }

    /// Enables postgres_changes; call before serving.
    pub fn set_cdc(&self, cdc: crate::cdc::Cdc) {
        self.hubs.set_cdc(cdc);
    }

    /// Open sockets of a project on this replica.
    pub fn sockets(&self, project_ref: &str) -> usize {
        self.hubs
            .existing(project_ref)
            .map_or(0, |hub| hub.counters(|c, _| c.sockets()))
    }

    /// The project and caller the gateway forwarded.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Arc<ProjectConfig>, Identity), ApiError> {
        let project_ref = headers
            .get(PROJECT_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "Tenant not found".into()))?;
        let project = self
            .directory
            .project(project_ref)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "realtime: project directory unavailable");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the platform cannot look up projects right now; retry shortly".into(),
                )
            })?
            .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "Tenant not found".into()))?;
        if project.status != status::ACTIVE {
            let message = format!("project is {}", project.status);
            return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, message));
        }
        let token = bearer(headers)
            .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "No JWT provided".into()))?;
        let identity = Identity::verify(token, &project, RefRule::MustName).map_err(|e| {
            let message = format!("The token provided is not a valid JWT: {e}");
            ApiError(StatusCode::UNAUTHORIZED, message)
        })?;
        Ok((project, identity))
    }
}

/// The routes, relative to where the gateway mounts realtime (`…/realtime/v1`).
pub fn router(state: Arc<Realtime>) -> Router {
    // A REST broadcast may carry a whole project payload limit, plus its envelope.
    let body_limit = state.config.limits.max_payload_bytes + 64 * 1024;
    Router::new()
        .route("/websocket", get(websocket))
        .route("/api/broadcast", post(broadcast))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// A refusal: `{"error": message}` with a status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        let (status, text) = e.http();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
        ApiError(status, text.into())
    }
}

#[derive(Deserialize)]
struct WsParams {
    vsn: Option<String>,
}

async fn websocket(
    State(rt): State<Arc<Realtime>>,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let vsn = Vsn::from_param(params.vsn.as_deref())
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let upgrade = upgrade.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let (project, identity) = rt.authenticate(&headers).await?;
    let hub = rt.hubs.get(&project.project_ref);
    let guard = hub.open_socket()?;
    let config = rt.config.socket;
    let limits = protocol::Limits {
        max_frame_bytes: config.max_frame_bytes,
        ..protocol::Limits::default()
    };
    let ctx = SocketCtx {
        id: rt.next_socket.fetch_add(1, Ordering::Relaxed),
        guard,
        codec: Codec::new(vsn, limits),
        project,
        identity,
        config,
        join_limits: rt.config.join,
        presence_limits: rt.config.presence,
        shutdown: rt.shutdown.clone(),
        authorizer: rt.authorizer(),
    };
    Ok(upgrade
        .read_buffer_size(config.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(config.max_frame_bytes)
        .max_frame_size(config.max_frame_bytes)
        .on_upgrade(move |ws| socket::run(ws, ctx)))
}

#[derive(Deserialize)]
struct BroadcastBody {
    messages: Vec<RestMessage>,
}

#[derive(Deserialize)]
struct RestMessage {
    topic: String,
    event: String,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    private: bool,
}

/// `POST /api/broadcast`: Supabase's REST broadcast; `topic` is the channel name without
/// `realtime:`. A private message is sent only when the caller may send broadcasts on its topic
/// (`realtime.messages` policies, one check per distinct topic), and silently skipped otherwise.
async fn broadcast(
    State(rt): State<Arc<Realtime>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (project, identity) = rt.authenticate(&headers).await?;
    let invalid = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let body: BroadcastBody =
        serde_json::from_slice(&body).map_err(|e| invalid(format!("invalid messages: {e}")))?;
    if body.messages.len() > MAX_REST_MESSAGES {
        return Err(invalid(format!(
            "at most {MAX_REST_MESSAGES} messages per request"
        )));
    }
    for m in &body.messages {
        if m.topic.is_empty() || m.event.is_empty() {
            return Err(invalid("topic and event are required".into()));
        }
        if TOPIC_PREFIX.len() + m.topic.len() > protocol::MAX_FIELD_BYTES
            || m.event.len() > protocol::MAX_FIELD_BYTES
        {
            return Err(invalid("topic or event too long".into()));
        }
    }
    let writable = writable_private_topics(&rt, &project, &identity, &body.messages).await?;
    let hub = rt.hubs.get(&project.project_ref);
    hub.linger();
    let mut ready = Vec::with_capacity(body.messages.len());
    for m in body.messages {
        let payload = serde_json::to_vec(&m.payload.unwrap_or_else(|| json!({})))
            .map_err(|e| invalid(e.to_string()))?;
        hub.counters(|c, _| c.payload(payload.len()))?;
        if m.private && !writable.contains(&m.topic) {
            continue;
        }
        let topic = TopicKey::new(&format!("{TOPIC_PREFIX}{}", m.topic), m.private);
        let broadcast = UserBroadcast {
            event: m.event,
            payload: UserPayload::Json(payload.into()),
            meta: None,
        };
        ready.push((topic, broadcast));
    }
    let n = u32::try_from(ready.len()).unwrap_or(u32::MAX);
    hub.counters(|c, now| c.events(n, now))?;
    for (topic, broadcast) in ready {
        hub.broadcast(&topic, None, false, broadcast);
    }
    Ok(StatusCode::ACCEPTED)
}

/// The private topics among `messages` the caller may send broadcasts to (one check for all).
async fn writable_private_topics(
    rt: &Realtime,
    project: &ProjectConfig,
    identity: &Identity,
    messages: &[RestMessage],
) -> Result<HashSet<String>, ApiError> {
    let mut topics: Vec<&str> = messages
        .iter()
        .filter(|m| m.private)
        .map(|m| m.topic.as_str())
        .collect();
    topics.sort_unstable();
    topics.dedup();
    if topics.is_empty() {
        return Ok(HashSet::new());
    }
    let policies = rt
        .authorizer()
        .check(project, identity, &topics)
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(topics
        .into_iter()
        .zip(policies)
        .filter(|(_, p)| p.broadcast_write)
        .map(|(t, _)| t.to_owned())
        .collect())
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
