//! ELB names and tags, shared by the load balancer kinds.

use std::collections::BTreeMap;

use crate::aws::Clients;
use crate::Error;

/// An ELBv2 name (≤ 32 characters: letters, digits, hyphens) for `<prefix>-<suffix>`; long prefixes are cut and
/// a short hash of the whole keeps names of different stacks apart.
pub fn elb_name(prefix: &str, suffix: &str) -> String {
    let full = format!("{prefix}-{suffix}");
    if full.len() <= 32 {
        return full;
    }
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let tag = format!("{:06x}", hash & 0xff_ffff);
    let keep = 32 - suffix.len() - tag.len() - 2;
    let head = prefix[..keep.min(prefix.len())].trim_end_matches('-');
    format!("{head}-{tag}-{suffix}")
}

pub async fn observed_tags(
    c: &Clients,
    arns: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(20) {
        let r = c
            .elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(crate::aws::err("elasticloadbalancing:DescribeTags"))?;
        for d in r.tag_descriptions() {
            out.insert(
                d.resource_arn().unwrap_or_default().to_string(),
                d.tags()
                    .iter()
                    .filter_map(|t| {
                        Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

pub fn elb_tags(
    tags: &BTreeMap<String, String>,
) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elb_names_fit_in_32_characters() {
        assert_eq!(
            elb_name("supabase-on-aws-test", "gw"),
            "supabase-on-aws-test-gw"
        );
        let long = elb_name("a-very-long-stack-name-production", "tm");
        assert!(long.len() <= 32, "{long}");
        assert!(long.ends_with("-tm") && long.starts_with("a-very-long"));
        assert_ne!(long, elb_name("a-very-long-stack-name-productioo", "tm"));
    }
}
