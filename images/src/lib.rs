//! `images`: OCI images of supactl's runtime services without Docker, and a registry client to push them.
//!
//! A service image is the one `supactl` binary with the service's entrypoint (`supactl serve gateway`,
//! `supactl serve tenant-manager`), on a minimal root filesystem: the binary, the shared libraries it links
//! and their loader, Debian's CA bundle and a non-root user; the functions and tenant-manager images also
//! carry the pinned Deno binary. [`build`] assembles it reproducibly (sorted tar
//! entries, fixed mtimes and owners, gzip with a fixed header, sorted JSON) into an OCI image layout on disk
//! ([`oci::Layout`]); [`registry`] pushes it with the OCI distribution API to any registry (Basic or Bearer
//! auth), ECR included when the caller brings ECR's credentials.
//!
//! It does not compile anything (the CLI runs cargo), does not talk to AWS (ECR credentials come from the
//! `stacks` crate through the CLI), and writes nothing outside the layout directory it is given.

pub mod build;
pub mod oci;
pub mod registry;
pub mod tar;

use std::path::PathBuf;

pub use build::{service, BuildOptions, Built, Service, SERVICES};
pub use oci::Layout;
pub use registry::{BlobOutcome, Client, Credentials, Event, Observer, PushReport, Registry};

/// Errors of image building and pushing. Messages are lowercase and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown service {name:?}: the services with images are {known}")]
    UnknownService { name: String, known: String },
    #[error("the {service} image carries Deno, and none was found: run `scripts/setup.sh deno` (the pinned build), or pass --deno PATH")]
    NoDeno { service: String },
    #[error("no image of {service} in {}: run `supactl build {service}` first", layout.display())]
    NotBuilt { service: String, layout: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: corrupt image layout ({detail}): delete it and run `supactl build` again", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("{tool}: {detail}")]
    Tool { tool: &'static str, detail: String },
    #[error("--registry {given:?}: {why} (expected HOST[:PORT][/PREFIX])")]
    BadRegistry { given: String, why: String },
    #[error(
        "cannot reach registry {registry}: {detail} (is it running, and is --registry right?)"
    )]
    Unreachable { registry: String, detail: String },
    #[error("{}", unauthorized(registry, repository, *had_credentials))]
    Unauthorized {
        registry: String,
        repository: String,
        had_credentials: bool,
    },
    #[error("registry {registry}: repository does not exist ({detail}): create it first (on ECR: `aws ecr create-repository`)")]
    NoRepository { registry: String, detail: String },
    #[error("registry {registry}: {op} answered {status} {code}: {message}")]
    Registry {
        registry: String,
        op: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

fn unauthorized(registry: &str, repository: &str, had_credentials: bool) -> String {
    let what = if repository.is_empty() {
        String::new()
    } else {
        format!(" for {repository}")
    };
    if had_credentials {
        format!("registry {registry} rejected the credentials{what}: check --username and the password (for ECR: the AWS credentials, account and region)")
    } else {
        format!("registry {registry} requires credentials{what}: pass --username and --password-stdin (or set SUPACTL_REGISTRY_USERNAME and SUPACTL_REGISTRY_PASSWORD)")
    }
}
