//! What the network kinds share: EC2 tags both ways, the ownership filters, "treat not-found as gone" for EC2
//! calls, and the availability zones and subnets the layout uses.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{absent, ec2_is_not_found};
use crate::config::Config;
use crate::family::build::Inputs;
use crate::model::{ResId, Val, TAG_ENV, TAG_STACK};
use crate::Error;

/// EC2 tags as a map.
pub fn ec2_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

/// Tags to create a resource of type `rt` with.
pub fn tag_spec(rt: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// Describe filters on this stack's ownership tags.
pub fn owner_filters(cfg: &Config) -> Vec<Filter> {
    vec![
        Filter::builder()
            .name(format!("tag:{TAG_STACK}"))
            .values(&cfg.name)
            .build(),
        Filter::builder()
            .name(format!("tag:{TAG_ENV}"))
            .values(&cfg.environment)
            .build(),
    ]
}

/// Sends an EC2 call on a resource that may be gone already: false when EC2 answers "not found".
pub async fn sent<T, E, R>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<bool, Error>
where
    E: ProvideErrorMetadata,
    SdkError<E, R>: ProvideErrorMetadata + std::fmt::Display,
{
    Ok(absent(op, call, |e| ec2_is_not_found(e)).await?.is_some())
}

/// How many availability zones the layout uses.
pub fn az_count(cfg: &Config, inputs: &Inputs<'_>) -> usize {
    cfg.vpc.max_azs.min(inputs.azs.len())
}

/// The private subnets (one per AZ used), as references: where the databases and Redis go.
pub fn private_subnets(cfg: &Config, inputs: &Inputs<'_>) -> Vec<Val> {
    (0..az_count(cfg, inputs))
        .map(|i| Val::Ref(ResId(format!("subnet/private/{i}"))))
        .collect()
}
