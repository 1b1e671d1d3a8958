//! ECS tags both ways, shared by the ECS kinds.

use std::collections::BTreeMap;

pub fn ecs_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_ecs::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub fn observed_tags(tags: &[aws_sdk_ecs::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}
