//! What a family's observation shares: ownership by tags, the sink that keeps only owned resources, the
//! "exists under our name but is not ours" error, and small property builders. Observation is read-only.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::model::{Desired, Kind, Observed, Props, ResId, Val, TAG_ENV, TAG_ID, TAG_STACK};
use crate::Error;

/// Whether `tags` say this stack (name and environment) owns the resource.
pub fn owned(cfg: &Config, tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_STACK) == Some(&cfg.name) && tags.get(TAG_ENV) == Some(&cfg.environment)
}

fn id_of(tags: &BTreeMap<String, String>) -> Option<ResId> {
    tags.get(TAG_ID).map(|s| ResId::new(s.as_str()))
}

/// An optional string as a property (absent = empty).
pub fn s(v: Option<&str>) -> Val {
    Val::Str(v.unwrap_or("").to_string())
}

/// The error for a resource found under one of our names that this stack does not own.
pub fn conflict(kind: Kind, name: &str, tags: &BTreeMap<String, String>) -> Error {
    Error::NotOwned {
        kind,
        name: name.to_string(),
        owner: match (tags.get(TAG_STACK), tags.get(TAG_ENV)) {
            (Some(s), Some(e)) => format!("stack {s} ({e})"),
            _ => "nobody known to supactl".into(),
        },
    }
}

/// Whether this stack owns a resource of `kind` found as `name`; one it does not own is a conflict when it is
/// desired (it has one of our names), else someone else's and skipped.
pub fn is_ours(
    cfg: &Config,
    desired: &[Desired],
    kind: Kind,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<bool, Error> {
    if owned(cfg, tags) {
        Ok(true)
    } else if wanted(desired, kind, name) {
        Err(conflict(kind, name, tags))
    } else {
        Ok(false)
    }
}

/// A resource found by one of our names: this stack must own it.
pub fn must_own(
    cfg: &Config,
    kind: Kind,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    if owned(cfg, tags) {
        Ok(())
    } else {
        Err(conflict(kind, name, tags))
    }
}

/// The desired resources of one kind (their names are looked up where a service cannot filter by tag).
pub fn named(desired: &[Desired], kind: Kind) -> impl Iterator<Item = &Desired> {
    desired.iter().filter(move |d| d.kind == kind)
}

/// Whether a resource of `kind` named `name` is desired.
pub fn wanted(desired: &[Desired], kind: Kind, name: &str) -> bool {
    named(desired, kind).any(|d| d.name == name)
}

/// Tags for resources that cannot carry readable tags: the desired ones (so there is no tag drift), else
/// ownership tags with the logical id.
pub fn synthesized(cfg: &Config, desired: &[Desired], id: &str) -> BTreeMap<String, String> {
    desired
        .iter()
        .find(|d| d.id.as_str() == id)
        .map(|d| d.tags.clone())
        .unwrap_or_else(|| {
            BTreeMap::from([
                (TAG_STACK.to_string(), cfg.name.clone()),
                (TAG_ENV.to_string(), cfg.environment.clone()),
                (TAG_ID.to_string(), id.to_string()),
            ])
        })
}

/// Collects observed resources, keeping only those this stack owns (by tags, with a logical id).
pub struct Sink<'a> {
    pub cfg: &'a Config,
    pub out: Vec<Observed>,
}

impl<'a> Sink<'a> {
    pub fn new(cfg: &'a Config) -> Self {
        Sink {
            cfg,
            out: Vec::new(),
        }
    }

    /// Keeps the resource if this stack owns it.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        kind: Kind,
        physical: &str,
        arn: Option<String>,
        tags: BTreeMap<String, String>,
        props: Props,
        state: &str,
        aux: BTreeMap<String, String>,
    ) {
        if !owned(self.cfg, &tags) {
            return;
        }
        let Some(id) = id_of(&tags) else { return };
        self.out.push(Observed {
            id,
            kind,
            physical: physical.to_string(),
            arn,
            props,
            tags,
            state: state.to_string(),
            aux,
        });
    }
}
