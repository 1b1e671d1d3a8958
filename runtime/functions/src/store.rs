//! Where functions' code and projects' environments come from: the [`FunctionStore`] trait, which the
//! tenant-manager's internal API implements for the platform (and a test double for tests), and the shapes
//! it returns (also the JSON shapes of that API: see [`crate::remote`]).

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::fmt;
use supactl_common::redact;

/// A deployed function as the supervisor needs it on every invocation; the code is fetched separately
/// ([`FunctionStore::bundle`]) only when a worker starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionMeta {
    /// Grows with every deploy of the slug: a worker of an older version is replaced.
    pub version: u64,
    /// Whether an invocation must carry a valid JWT of the project ([`crate::Caller`]).
    pub verify_jwt: bool,
    /// Changes whenever the project's environment does (secrets set or deleted, keys rotated): workers
    /// started under another revision are replaced.
    pub env_revision: u64,
}

/// One version of a function's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The module to run, a path relative to the bundle's root (`index.ts`).
    pub entrypoint: String,
    pub files: Vec<BundleFile>,
    /// An import map (JSON text); relative addresses in it are relative to the bundle's root.
    pub import_map: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// A relative path (`index.ts`, `lib/util.ts`).
    pub name: String,
    pub content: String,
}

/// What a project's functions see in their environment: the standard Supabase variables and the
/// project's secrets. (Serialised only for the service-token endpoint that carries it to the workers.)
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectEnv {
    /// `SUPABASE_URL`: the project's API URL (through the gateway).
    pub api_url: String,
    /// `SUPABASE_ANON_KEY` and `SUPABASE_PUBLISHABLE_KEY`.
    pub publishable_key: String,
    /// `SUPABASE_SERVICE_ROLE_KEY` and `SUPABASE_SECRET_KEY`.
    pub secret_key: String,
    /// `SUPABASE_DB_URL`: the project's own database role, when the platform hands it out.
    pub db_url: Option<String>,
    /// The project's secrets, by name; the standard variables win over a secret of the same name.
    pub secrets: Vec<(String, String)>,
}

impl fmt::Debug for ProjectEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectEnv")
            .field("api_url", &self.api_url)
            .field("publishable_key", &redact::Redacted)
            .field("secret_key", &redact::Redacted)
            .field("db_url", &redact::optional(&self.db_url))
            .field(
                "secrets",
                &self.secrets.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ProjectEnv {
    /// The worker's whole environment, in a stable order: secrets whose name is a valid variable name,
    /// then the standard variables.
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .secrets
            .iter()
            .filter(|(name, _)| is_env_name(name) && !STANDARD.contains(&name.as_str()))
            .cloned()
            .collect();
        let mut standard = |name: &str, value: &str| vars.push((name.into(), value.into()));
        standard("SUPABASE_URL", &self.api_url);
        standard("SUPABASE_ANON_KEY", &self.publishable_key);
        standard("SUPABASE_PUBLISHABLE_KEY", &self.publishable_key);
        standard("SUPABASE_SERVICE_ROLE_KEY", &self.secret_key);
        standard("SUPABASE_SECRET_KEY", &self.secret_key);
        if let Some(db) = &self.db_url {
            standard("SUPABASE_DB_URL", db);
        }
        vars
    }
}

const STANDARD: [&str; 6] = [
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_SECRET_KEY",
    "SUPABASE_DB_URL",
];

/// `[A-Za-z_][A-Za-z0-9_]*`, at most 256 bytes: what a process environment and `--allow-env` can carry.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 256
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The control plane could not answer; the invocation may be retried.
    #[error("function store unavailable: {0}")]
    Unavailable(String),
    /// The version asked for is gone (deleted or redeployed since the metadata was read).
    #[error("function version not found")]
    VersionGone,
}

/// The supervisor's view of the control plane. Implementations cache as they see fit, but a redeploy or a
/// delete must be visible to [`FunctionStore::function`] within a second.
pub trait FunctionStore: Send + Sync + 'static {
    /// The function `slug` of `project`, or `None` when there is none.
    fn function<'a>(
        &'a self,
        project: &'a str,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<Option<FunctionMeta>, StoreError>>;

    /// The code of one version of a function.
    fn bundle<'a>(
        &'a self,
        project: &'a str,
        slug: &'a str,
        version: u64,
    ) -> BoxFuture<'a, Result<Bundle, StoreError>>;

    /// The project's environment.
    fn environment<'a>(&'a self, project: &'a str)
        -> BoxFuture<'a, Result<ProjectEnv, StoreError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> ProjectEnv {
        ProjectEnv {
            api_url: "http://127.0.0.1:1/p".into(),
            publishable_key: "sb_publishable_x".into(),
            secret_key: "sb_secret_topsecret".into(),
            db_url: Some("postgres://u:pw@h/db".into()),
            secrets: vec![
                ("API_TOKEN".into(), "tok-123".into()),
                ("SUPABASE_URL".into(), "http://evil".into()),
                ("BAD=NAME".into(), "x".into()),
            ],
        }
    }

    #[test]
    fn standard_variables_win_and_bad_names_are_dropped() {
        let vars = env().variables();
        let get = |n: &str| {
            vars.iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("SUPABASE_URL"), ["http://127.0.0.1:1/p"]);
        assert_eq!(get("API_TOKEN"), ["tok-123"]);
        assert_eq!(get("SUPABASE_SECRET_KEY"), ["sb_secret_topsecret"]);
        assert!(get("BAD=NAME").is_empty());
    }

    #[test]
    fn debug_shows_no_secret() {
        let text = format!("{:?}", env());
        for secret in ["topsecret", "tok-123", "pw@"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("API_TOKEN"), "{text}");
    }
}
