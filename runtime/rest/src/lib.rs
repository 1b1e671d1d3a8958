//! A PostgREST-compatible REST engine for many projects.
//!
//! A request goes through stages kept apart: [`parse`] turns the PostgREST query string, headers and
//! body into a [`request::Query`]; [`sql`] checks it against the project's [`schema::SchemaCache`] and
//! turns it into one parameterised statement whose result PostgreSQL already renders as JSON; [`exec`]
//! runs it on the project's own pool in one pipelined round trip (reads: the role and request GUCs, then
//! the statement; writes: `BEGIN`, the GUCs, the statement, `COMMIT`); [`service`] shapes the HTTP
//! response.
//!
//! The caller comes from the gateway in one of two ways: in process, the gateway attaches the [`Caller`]
//! it has just authenticated to the request (an extension, which no client can send); across a process
//! boundary (an HTTP upstream, a Lambda Function URL), the gateway's JWT is verified again with the
//! project's secrets and must name the project (defence in depth). Row-level security then decides.
//! Values are always bind parameters and identifiers always quoted. This crate owns no platform state:
//! project configs come from the [`supactl_common::directory::Directory`].
//!
//! Two ways to serve: [`router`] for many projects (the gateway names the project in a header), and,
//! with the `lambda` feature, [`lambda`] for one project per AWS Lambda function behind a Function URL.

pub mod csv;
pub mod error;
pub mod exec;
#[cfg(feature = "lambda")]
pub mod lambda;
mod lease;
pub mod limits;
mod openapi;
pub mod parse;
pub mod request;
pub mod schema;
pub mod service;
pub mod session;
pub mod sql;

pub use service::{router, Caller, Rest, RestConfig, PROJECT_HEADER};
