//! RDS tags both ways, shared by the RDS kinds.

use std::collections::BTreeMap;

use crate::aws::{AwsError, Clients};
use crate::Error;

pub fn observed_tags(tags: &[aws_sdk_rds::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

/// The tags of the RDS resource `arn` (for the kinds a describe call returns without them).
pub async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, Error> {
    Ok(observed_tags(
        c.rds
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|err| Error::Aws(AwsError::new("rds:ListTagsForResource", &err)))?
            .tag_list(),
    ))
}
