//! The API gateway: the only public entry of the data plane.
//!
//! Per request (a fixed sequence of phases, as in pingora): resolve the project from the Host
//! (`{ref}.{base_domain}`) or from the path prefix `/p/{ref}`; authenticate the opaque API key by its
//! SHA-256 through the cached project directory; choose the role (secret key → service_role, publishable
//! key → anon, or authenticated with the claims of a valid user JWT); mint a 5-minute HS256 JWT with the
//! project's secret; forward to the service (REST at `/rest/v1`, auth at `/auth/v1`; in-process or over
//! HTTP) with the client's address in `x-supactl-client-ip`. CORS is answered here.
//! The gateway never sees worker credentials and never routes to the tenant-manager.

mod cors;
mod proxy;

pub use proxy::{router, Gateway, GatewayConfig, Upstream};
