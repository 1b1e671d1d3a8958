//! The API gateway: the only public entry of the data plane.
//!
//! Per request, in order: resolve the project from the Host (`{ref}.{base_domain}`) or from the path
//! prefix `/p/{ref}`; authenticate the opaque API key by its SHA-256 through the cached project
//! directory; choose the role (secret key → service_role, publishable key → anon, or authenticated with
//! the claims of a valid user JWT); mint a 5-minute HS256 JWT with the project's secret
//! ([`supactl_common::forwarded::mint`], which the services check); forward to the service (REST at
//! `/rest/v1`, auth at `/auth/v1`; in-process, or for a project whose REST runs on AWS Lambda its
//! Function URL, signed with SigV4: [`function_url`]) with the client's address in
//! `x-supactl-client-ip`. CORS is answered here. This crate depends on no AWS SDK (the signer and
//! credential types only, with credentials injected by the binary) and on none of the services it
//! forwards to: it is handed their routers. The gateway never sees worker credentials and never routes
//! to the tenant-manager.

mod cors;
pub mod function_url;
mod proxy;

pub use function_url::{FunctionUrlConfig, FunctionUrls};
pub use proxy::{router, Gateway, GatewayConfig, Upstream};
