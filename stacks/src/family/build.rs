//! What a family's desired state is built with: the inputs besides the config, and a builder that tags every
//! resource with the stack's ownership tags. Pure.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::model::{Desired, Kind, Props, ResId, TAG_ENV, TAG_ID, TAG_STACK};

/// What the desired state depends on besides the config.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The region's availability zones, sorted (the first `maxAzs` are used).
    pub azs: &'a [String],
    /// The region deployed to (ARNs, log configuration).
    pub region: &'a str,
    /// Image references by repository (`gateway`, `tenant-manager`, `rest-lambda`): `<uri>@sha256:…`.
    /// Missing entries render as an empty image (destroy needs only names).
    pub images: &'a BTreeMap<String, String>,
}

/// Collects desired resources in the order they are added.
pub struct Builder<'a> {
    pub cfg: &'a Config,
    pub out: Vec<Desired>,
}

impl Builder<'_> {
    /// Adds a resource with the config's tags, its `Name` and the ownership tags.
    pub fn add(&mut self, kind: Kind, id: &str, name: String, props: Props, create_only: Props) {
        let mut tags = self.cfg.tags.clone();
        tags.insert("Name".into(), name.clone());
        tags.insert(TAG_STACK.into(), self.cfg.name.clone());
        tags.insert(TAG_ENV.into(), self.cfg.environment.clone());
        tags.insert(TAG_ID.into(), id.into());
        self.out.push(Desired {
            id: ResId::new(id),
            kind,
            name,
            props,
            create_only,
            tags,
        });
    }
}
