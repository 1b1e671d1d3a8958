//! Observation: find every resource this stack owns (by ownership tags, or by name for services whose describe
//! calls cannot filter by tag) and read its live properties into the same shape as the desired ones. Each
//! family observes its own kinds ([`crate::kinds`]). Read-only: only Describe/List/Get calls.

use futures_util::future::join_all;

use crate::aws::Clients;
use crate::config::Config;
use crate::kinds::{self, Fam};
use crate::model::{Desired, Observed};
use crate::Error;

/// Observes every owned resource. `desired` names the resources found by name (RDS subnet/parameter groups,
/// ElastiCache, …); a resource found there that is not owned by this stack is an error, never adopted.
/// The families run side by side; one whose resources belong to another's (its [`kinds::parent`]) runs after,
/// and only when that parent is owned.
pub async fn observe(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    let (first, after): (Vec<Fam>, Vec<Fam>) = Fam::ALL
        .into_iter()
        .partition(|f| kinds::parent(*f).is_none());
    // boxed: the SDK's futures are large, and several of them side by side would sit on the caller's stack
    let found = join_all(
        first
            .into_iter()
            .map(|f| Box::pin(kinds::observe(f, c, cfg, desired))),
    )
    .await;
    let mut out = Vec::new();
    for r in found {
        out.extend(r?);
    }
    for f in after {
        if out.iter().any(|o| Some(o.kind) == kinds::parent(f)) {
            out.extend(Box::pin(kinds::observe(f, c, cfg, desired)).await?);
        }
    }
    out.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}
