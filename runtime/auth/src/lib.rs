//! A GoTrue-compatible auth API (Supabase Auth) for many projects, served at `{api_url}/auth/v1`
//! behind the gateway, so supabase-js / supabase-py auth clients and `auth.uid()` policies work
//! unchanged.
//!
//! It owns each project's `auth` schema (GoTrue's tables, created by `templates/auth.sql`): users with
//! bcrypt password hashes, identities, sessions, rotating refresh tokens, one-time tokens and MFA
//! factors (TOTP secrets sealed with the project's data key, [`factors`]). It issues access tokens
//! with GoTrue's claims, signed with the project's current asymmetric key (ES256/RS256, `kid` in the
//! header, public halves at `/.well-known/jwks.json`) when the project chose one, else with its current
//! HS256 JWT secret; the gateway and every service behind it accept either. Per-project settings
//! (autoconfirm, anonymous sign-ins, password length, token lifetime, rate limits, SMTP) live in
//! `auth.supactl_settings`; its OAuth/OIDC providers (client secrets sealed with the data key) in
//! `auth.supactl_oauth_providers`, set through the platform's admin API ([`oauth`]). Phone sign-in and
//! phone MFA factors send their codes through the project's Send SMS hook (`auth.supactl_hooks`, its
//! Standard Webhooks secret sealed the same way, [`hook`], [`sms`]).
//!
//! It trusts only a JWT minted by the gateway for the project in [`PROJECT_HEADER`], checked again here
//! by the rule every service shares ([`supactl_common::forwarded`]: signed with the project's secret,
//! naming the project, a role the platform serves); admin routes require that role to be
//! `service_role`. It reads project configs from the
//! [`supactl_common::directory::Directory`] and must not touch platform state or any schema but `auth`.
//! No password, token or hash is ever logged.

pub mod db;
pub mod error;
pub mod factors;
pub mod hook;
pub mod mail;
pub mod oauth;
pub mod phones;
pub mod ratelimit;
pub mod redirect;
pub mod sealed;
pub mod service;
pub mod sms;
pub mod store;
pub mod token;
pub mod totp;
pub mod validate;

pub use service::{router, Auth, AuthConfig, BCRYPT_COST, CLIENT_IP_HEADER, PROJECT_HEADER};
