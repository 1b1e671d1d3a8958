//! A PostgREST-compatible REST engine for many projects.
//!
//! A request goes through three stages kept apart (STYLE.md "Services"): [`parse`] turns the PostgREST
//! query string, headers and body into an [`plan::ApiRequest`]; [`sql`] turns that into one parameterised
//! statement whose result PostgreSQL already renders as JSON; [`exec`] runs it on the project's own pool in
//! one pipelined round trip (`BEGIN`, role and claims `set_config`, the statement, `COMMIT`).
//!
//! The engine trusts nothing from the gateway but a JWT it verifies again with the project's secrets
//! (defence in depth) and then lets row-level security decide. Values are always bind parameters and
//! identifiers always quoted. This crate owns no platform state: project configs come from the
//! [`supactl_common::directory::Directory`].

pub mod error;
pub mod exec;
pub mod parse;
pub mod plan;
pub mod service;
pub mod sql;

pub use service::{router, Rest, RestConfig, PROJECT_HEADER};
