//! What a family's create, update and delete are given: the SDK clients, the config, the apply options, and the
//! physical ids known so far (to resolve references). Also the waits every family uses: a polled predicate with
//! backoff, always under an explicit timeout, and the error an SDK waiter's failure becomes.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;

use crate::aws::Clients;
use crate::config::Config;
use crate::model::{render, Desired, ResId, Val};
use crate::Error;

/// Emulator gaps the engine must step around (off against AWS), named where the tests switch them on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quirks {
    /// ElastiCache deletes stay `deleting` for ever: treat `deleting` as gone.
    pub elasticache_delete_never_finishes: bool,
    /// `DeleteCacheSubnetGroup` is not implemented (HTTP 500): skip it with a warning.
    pub cache_subnet_group_delete_unimplemented: bool,
    /// An ECS service's deployment list is never refreshed (rollout state and task definition stay as
    /// created): judge a service steady by its counts and its task definition only.
    pub ecs_deployments_not_refreshed: bool,
}

impl Quirks {
    /// The gaps of moto 5.2.5.
    pub fn moto() -> Self {
        Quirks {
            elasticache_delete_never_finishes: true,
            cache_subnet_group_delete_unimplemented: true,
            ecs_deployments_not_refreshed: true,
        }
    }
}

/// How long an ECS service deployment may take to reach a steady state by default.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// How long to wait for one resource to become ready or gone.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub network: Duration,
    pub database: Duration,
    pub cache: Duration,
    /// An ECS service deployment to reach a steady state.
    pub service: Duration,
    /// Lambda to release its network interfaces in the VPC after the REST functions are deleted (destroy).
    pub lambda_network: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            network: Duration::from_secs(10 * 60),
            database: Duration::from_secs(45 * 60),
            cache: Duration::from_secs(45 * 60),
            service: SERVICE_TIMEOUT,
            lambda_network: crate::kinds::lambda::NETWORK_RELEASE_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Destroy: turn deletion protection off first.
    pub force: bool,
    pub quirks: Quirks,
    pub timeouts: Timeouts,
}

/// The context of one apply.
pub struct Ctx<'a> {
    pub c: &'a Clients,
    pub cfg: &'a Config,
    pub opts: ApplyOptions,
    /// Physical ids known so far (and `id#attr` attributes), updated by the applier as resources are created.
    pub live: HashMap<ResId, String>,
    /// Where a long wait reports how it is getting on (the applier passes it to [`crate::Progress::note`]).
    pub notes: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Ctx<'_> {
    /// Reports how the current change is getting on (a long wait's progress).
    pub fn note(&self, msg: &str) {
        if let Some(n) = &self.notes {
            let _ = n.send(msg.to_string());
        }
    }

    /// A value with its references resolved to physical ids.
    pub fn resolve(&self, v: &Val) -> Result<String, Error> {
        render(v, &|id| self.live.get(id).cloned())
            .ok_or_else(|| Error::Internal(format!("a reference in {v:?} is not created yet")))
    }

    /// A set (or a single value) with its references resolved.
    pub fn resolve_set(&self, v: Option<&Val>) -> Result<Vec<String>, Error> {
        match v {
            Some(Val::Set(items)) => items.iter().map(|i| self.resolve(i)).collect(),
            Some(other) => Ok(vec![self.resolve(other)?]),
            None => Ok(Vec::new()),
        }
    }

    /// Property `k` of `d` (compared or create-only), resolved.
    pub fn prop(&self, d: &Desired, k: &str) -> Result<String, Error> {
        let v = d
            .props
            .get(k)
            .or_else(|| d.create_only.get(k))
            .ok_or_else(|| Error::Internal(format!("{} has no property {k}", d.id)))?;
        self.resolve(v)
    }

    /// Boolean property `k` of `d`, false when absent.
    pub fn flag(d: &Desired, k: &str) -> bool {
        d.props.get(k).and_then(Val::as_bool).unwrap_or(false)
    }
}

/// The outcome message of a delete: `existed` is false when the resource was already gone.
pub fn deleted(physical: &str, existed: bool) -> String {
    if existed {
        format!("deleted {physical}")
    } else {
        format!("{physical} was already gone")
    }
}

/// Polls `check` with backoff until it returns true, under `timeout`.
pub async fn poll_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Error>>,
{
    let fut = async {
        let mut delay = Duration::from_millis(200);
        loop {
            if check().await? {
                return Ok(());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(15));
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Error::Timeout {
            what: what.to_string(),
            timeout,
        })?
}

/// The error an SDK waiter's failure becomes.
pub fn waiter_err(what: &str, timeout: Duration) -> impl Fn(String) -> Error + '_ {
    move |detail| Error::WaitFailed {
        what: what.to_string(),
        timeout,
        detail,
    }
}

/// A random token: letters and digits only (safe in URLs, env files and as a Redis AUTH token).
pub fn generate_secret(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Integer property `k` of `d` (compared or create-only), 0 when absent.
pub fn int(d: &Desired, k: &str) -> i64 {
    d.props
        .get(k)
        .or_else(|| d.create_only.get(k))
        .and_then(Val::as_int)
        .unwrap_or(0)
}

/// A request part the SDK builds fallibly (required fields): its failure is ours, not AWS's.
pub fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, Error> {
    r.map_err(|e| Error::Internal(format!("building a request: {e}")))
}
