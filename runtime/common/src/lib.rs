//! Shared building blocks of the supactl runtime services.
//!
//! This crate owns the formats and protocols that more than one service must agree on: opaque API keys
//! (`sb_publishable_…` / `sb_secret_…`) and their hashes, JWTs (HS256 minting and verification, ES256/RS256 signing keys: [`jwk`]) and the
//! caller's role read from verified claims ([`claims`]), the one check of what the gateway forwarded
//! and the caller it yields ([`forwarded`]), the encryption of secrets at rest (bound to the row and
//! column that hold them), the wire types of the tenant-manager's internal config endpoint and the
//! cached client that gateway and REST use to read it and the per-project tokens it accepts, the JSON
//! error body every HTTP service answers with (and GoTrue's, [`gotrue`], on `/auth/v1`), `Debug` output without secrets ([`redact`]), the HTTP
//! server every listener runs on ([`server`]), the outbound HTTPS connector ([`https`]), how services connect to PostgreSQL, over TLS where
//! asked ([`pg`], [`pg_tls`]), and the per-project connection registry whose budget covers every
//! data-plane service ([`connections`]). It holds no state but caches; services build on it and must not copy its
//! logic.

pub mod cache;
pub mod claims;
pub mod connections;
pub mod crypto;
pub mod directory;
pub mod error;
pub mod forwarded;
pub mod gotrue;
pub mod headers;
pub mod http_client;
pub mod https;
pub mod ident;
pub mod invalidation;
pub mod json_text;
pub mod jwk;
pub mod jwt;
pub mod keys;
pub mod metrics;
pub mod pg;
pub mod pg_tls;
pub mod redact;
pub mod server;
pub mod throttle;
pub mod tokens;
pub mod wire;
