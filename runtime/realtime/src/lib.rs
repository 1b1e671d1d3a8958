//! Supabase Realtime for every project: the Phoenix channel protocol that supabase-js and
//! supabase-py speak at `{api_url}/realtime/v1/websocket`, with Broadcast, Presence and Postgres
//! Changes.
//!
//! The protocol core is pure (no sockets, no database, no clock). It owns the wire
//! formats ([`protocol`]: `vsn=1.0.0` JSON objects, `vsn=2.0.0` JSON arrays and binary frames), the
//! validated `phx_join` configuration ([`join`]), Supabase's postgres_changes filters ([`filter`]),
//! per-topic presence state ([`presence`]), the postgres_changes payloads clients expect
//! ([`payload`]) and the decoding of PostgreSQL's logical replication stream into them
//! ([`pgoutput`]), per-project limits with Supabase's texts ([`limits`]) and the SQL of the checks
//! against a project's policies ([`rls`]: batched postgres_changes visibility, private channels),
//! and one socket's channel semantics as effects for the socket task to carry out ([`session`]).
//! Every parse of client input is bounded (frame size, field lengths, JSON depth,
//! list lengths).
//!
//! On top of the core: [`http::router`] (the WebSocket upgrade, REST broadcast and health, for
//! requests the gateway already authenticated), one task per socket ([`socket`]) driving its
//! session, per-project hubs ([`hub`]: topics, fan-out, presence, limits), the Redis fan-out
//! across replicas ([`bridge`]) and postgres_changes from a temporary logical replication slot per
//! project with subscribers ([`cdc`]). These must not re-implement any of the core's parsing.
//! Private channels are authorized by the project's `realtime.messages` policies ([`policies`],
//! checked at join and again with each new token, cached per channel).

pub mod bridge;
pub mod cdc;
pub mod delivery;
pub mod filter;
pub mod http;
pub mod hub;
pub mod identity;
pub mod join;
pub mod limits;
pub mod payload;
pub mod pgoutput;
pub mod policies;
pub mod presence;
pub mod protocol;
pub mod rls;
pub mod session;
pub mod socket;

pub use http::{router, Realtime, RealtimeConfig};
pub use supactl_common::headers::PROJECT_HEADER;
