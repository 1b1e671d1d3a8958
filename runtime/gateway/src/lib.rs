//! The API gateway: the only public entry of the data plane.
//!
//! Per request, in order: resolve the project from the Host (`{ref}.{base_domain}`) or from the path
//! prefix `/p/{ref}`; find the service by its path prefix in the route table ([`Service`]: REST at
//! `/rest/v1`, auth at `/auth/v1`, Edge Functions at `/functions/v1`, Realtime at `/realtime/v1`);
//! authenticate the opaque API key by its SHA-256 through the cached project directory; choose the role
//! (secret key → service_role, publishable key → anon, or authenticated with the claims of a valid user
//! JWT); mint a 5-minute HS256 JWT with the project's secret ([`supactl_common::forwarded::mint`], which
//! the services check; a key-only request's token is reused by its serving thread for up to a minute);
//! forward to the service's [`Upstream`] (in-process, or over HTTP; for a project whose REST runs on AWS
//! Lambda its Function URL, signed with SigV4: [`function_url`]) with the
//! client's address in `x-supactl-client-ip` ([`client_ip`]). WebSocket upgrades are handed to the
//! service that takes them. CORS is answered here.
//!
//! This crate depends on no AWS SDK (the signer and credential types only, with credentials injected by
//! the binary) and on none of the services it forwards to: it is handed their routers or addresses. The
//! gateway never sees worker credentials and never routes to the tenant-manager.

mod access;
pub mod client_ip;
mod cors;
pub mod function_url;
mod h1;
mod mint;
mod proxy;
mod service;
mod upstream;

pub use client_ip::Cidr;
pub use function_url::{FunctionUrlConfig, FunctionUrls};
pub use proxy::{router, Gateway, GatewayBuilder, GatewayConfig};
pub use service::{Access, Service};
pub use upstream::{HttpUpstream, Upstream};
