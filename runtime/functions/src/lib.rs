//! Edge Functions: a supervisor of per-project Deno workers and the endpoint that invokes them.
//!
//! A function is a TypeScript/JavaScript module written for Supabase (`Deno.serve(handler)`, or `serve` from
//! std's `http/server`). Each (project, function) runs in its own Deno process ([`worker`]) under Deno's
//! permission sandbox ([`sandbox`]): the network minus the platform's private endpoints, its own files only,
//! its project's environment only, a V8 heap limit. The [`Supervisor`] starts workers on first invocation,
//! keeps them warm, replaces them on redeploy, crash or environment change, evicts idle ones and bounds how
//! many run; [`router`] serves `/{slug}[/sub/path]` for an already authenticated caller, bodies streamed
//! both ways. [`internal`] is what the rest of the platform reads from a runtime on its own port (health,
//! log records), never behind the gateway, and [`RemoteLogs`] reads it from every replica.
//!
//! Code and environments come from a [`FunctionStore`]: the tenant-manager's internal API ([`RemoteStore`],
//! the only service this crate calls), or [`memory::MemoryStore`] where there is no control plane. This
//! crate keeps no state but its workers, their logs and caches, and never reaches the platform database.
//!
//! Deno is the pinned npm package (`scripts/setup.sh deno`, located by [`find_deno`]).

pub mod body;
pub mod bundle;
pub mod check;
pub mod config;
pub mod error;
pub mod internal;
pub mod logs;
pub mod memory;
pub mod remote;
pub mod router;
pub mod sandbox;
pub mod store;
pub mod supervisor;
pub mod worker;

pub use bundle::{check as check_bundle, BundleError};
pub use check::{check_syntax, CheckError};
pub use config::{find_deno, ConfigError, NetPolicy, SupervisorConfig};
pub use error::InvokeError;
pub use internal::{internal_router, LogsError, RemoteLogs};
pub use logs::LogRecord;
pub use remote::{RemoteConfig, RemoteStore};
pub use router::{behind_gateway, router};
pub use store::{Bundle, BundleFile, FunctionMeta, FunctionStore, ProjectEnv, StoreError};
pub use supervisor::{Caller, Supervisor};
