//! ECR repositories: one per image supactl builds ([`crate::compute::REPOSITORIES`]) unless the config points
//! an image elsewhere, with scanning on push, a lifecycle policy (untagged images expire) and, in lambda mode,
//! a repository policy that lets Lambda pull the REST image. Found by name; a name without our tags is a
//! conflict.

use std::collections::BTreeMap;

use serde_json::json;

use crate::aws::{absent, err as aws, partition, Clients};
use crate::compute::REPOSITORIES;
use crate::config::{Config, RestMode};
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{built, deleted, Ctx};
use crate::family::found::{is_ours, s, wanted, Sink};
use crate::family::{Created, Family};
use crate::model::{changes, doc, props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::policy::normalize;
use crate::Error;

/// ECR repository name of an image: `<name>-<env>/<image>`, lowercase (what `supactl push --env` pushes to).
pub fn repository_name(cfg: &Config, image: &str) -> String {
    format!("{}/{image}", cfg.prefix().to_ascii_lowercase())
}

/// The repository URI of an image: the config's override, else the stack's own repository.
pub fn repository_uri(cfg: &Config, region: &str, image: &str) -> String {
    match cfg.compute.ecr_overrides.get(image) {
        Some(u) => u.split('@').next().unwrap_or(u).to_string(),
        None => format!(
            "{}.dkr.ecr.{region}.amazonaws.com/{}",
            cfg.account_id,
            repository_name(cfg, image)
        ),
    }
}

/// `(registry account, region, repository)` of an ECR URI (`<acct>.dkr.ecr.<region>.amazonaws.com/<repo>`).
pub fn parse_ecr_uri(uri: &str) -> Option<(String, String, String)> {
    let (host, repo) = uri.split_once('/')?;
    let mut parts = host.split('.');
    let acct = parts.next()?;
    if parts.next()? != "dkr" || parts.next()? != "ecr" {
        return None;
    }
    let region = parts.next()?;
    let repo = repo.split('@').next()?.split(':').next()?;
    (acct.len() == 12 && acct.chars().all(|c| c.is_ascii_digit()))
        .then(|| (acct.to_string(), region.to_string(), repo.to_string()))
}

/// The ARN of the ECR repository an image is pulled from, when it is one.
pub fn repository_arn(cfg: &Config, region: &str, image: &str) -> Option<String> {
    let (acct, r, repo) = parse_ecr_uri(&repository_uri(cfg, region, image))?;
    Some(format!(
        "arn:{}:ecr:{r}:{acct}:repository/{repo}",
        partition(&r)
    ))
}

/// One repository per image the stack builds, unless the config overrides it.
pub fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let region = inputs.region;
    let p = partition(region);
    let acct = cfg.account_id.clone();
    let lambda_mode = c.rest.mode == RestMode::Lambda;
    let lifecycle = json!({
        "rules": [{
            "rulePriority": 1,
            "description": "keep the last 10 untagged images",
            "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 10},
            "action": {"type": "expire"}
        }]
    });
    for image in REPOSITORIES {
        if c.ecr_overrides.contains_key(*image) {
            continue;
        }
        let name = repository_name(cfg, image);
        let policy = if *image == "rest-lambda" && lambda_mode {
            doc(&json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "LambdaPullsRestImage",
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    // the form AWS documents for Lambda pulls (Lambda's "Amazon ECR permissions")
                    "Condition": {
                        "StringLike": {"aws:SourceArn": format!("arn:{p}:lambda:{region}:{acct}:function:rest-*")}
                    }
                }]
            }))
        } else {
            Val::str("")
        };
        b.add(
            Kind::EcrRepository,
            &format!("ecr/{image}"),
            name.clone(),
            props([
                ("name", Val::Str(name)),
                ("scan_on_push", Val::Bool(true)),
                ("tag_mutability", Val::str("MUTABLE")),
                ("lifecycle_policy", doc(&lifecycle)),
                ("repository_policy", policy),
            ]),
            Props::new(),
        );
    }
}

pub struct Ecr;

impl Family for Ecr {
    fn replaces(_kind: Kind, field: &str) -> bool {
        field == "name"
    }

    async fn observe(
        c: &Clients,
        cfg: &Config,
        desired: &[Desired],
    ) -> Result<Vec<Observed>, Error> {
        let mut sink = Sink::new(cfg);
        let ours = format!("{}/", cfg.prefix().to_ascii_lowercase());
        let repos = c
            .ecr
            .describe_repositories()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(crate::aws::err("ecr:DescribeRepositories"))?;
        for repo in repos {
            let name = repo.repository_name().unwrap_or_default();
            let is_wanted = wanted(desired, Kind::EcrRepository, name);
            if !name.starts_with(&ours) && !is_wanted {
                continue;
            }
            let arn = repo.repository_arn().unwrap_or_default().to_string();
            let tags: BTreeMap<String, String> = c
                .ecr
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(crate::aws::err("ecr:ListTagsForResource"))?
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            if !is_ours(cfg, desired, Kind::EcrRepository, name, &tags)? {
                continue;
            }
            let lifecycle = match absent(
                "ecr:GetLifecyclePolicy",
                c.ecr.get_lifecycle_policy().repository_name(name).send(),
                |s| s.is_lifecycle_policy_not_found_exception(),
            )
            .await?
            {
                Some(o) => normalize(o.lifecycle_policy_text().unwrap_or_default()),
                None => String::new(),
            };
            let policy = match absent(
                "ecr:GetRepositoryPolicy",
                c.ecr.get_repository_policy().repository_name(name).send(),
                |s| s.is_repository_policy_not_found_exception(),
            )
            .await?
            {
                Some(o) => normalize(o.policy_text().unwrap_or_default()),
                None => String::new(),
            };
            let mut aux = BTreeMap::new();
            aux.insert("arn".into(), arn.clone());
            if let Some(u) = repo.repository_uri() {
                aux.insert("endpoint".into(), u.to_string());
            }
            sink.push(
                Kind::EcrRepository,
                name,
                Some(arn),
                tags,
                props([
                    ("name", Val::str(name)),
                    (
                        "scan_on_push",
                        Val::Bool(
                            repo.image_scanning_configuration()
                                .map(|s| s.scan_on_push())
                                .unwrap_or(false),
                        ),
                    ),
                    (
                        "tag_mutability",
                        s(repo.image_tag_mutability().map(|m| m.as_str())),
                    ),
                    ("lifecycle_policy", Val::Str(lifecycle)),
                    ("repository_policy", Val::Str(policy)),
                ]),
                "available",
                aux,
            );
        }
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        let c = x.c;
        let name = x.prop(d, "name")?;
        let tags: Vec<_> = d
            .tags
            .iter()
            .map(|(k, v)| built(aws_sdk_ecr::types::Tag::builder().key(k).value(v).build()))
            .collect::<Result<_, _>>()?;
        let r = c
            .ecr
            .create_repository()
            .repository_name(&name)
            .image_scanning_configuration(
                aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                    .scan_on_push(Ctx::flag(d, "scan_on_push"))
                    .build(),
            )
            .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::from(
                x.prop(d, "tag_mutability")?.as_str(),
            ))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(aws("ecr:CreateRepository"))?;
        ecr_policies(x, d, &name, true, true).await?;
        let repo = r.repository();
        let mut aux = BTreeMap::new();
        if let Some(a) = repo.and_then(|r| r.repository_arn()) {
            aux.insert("arn".into(), a.to_string());
        }
        if let Some(u) = repo.and_then(|r| r.repository_uri()) {
            aux.insert("endpoint".into(), u.to_string());
        }
        Ok((name, aux))
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        let c = x.c;
        let changed = changes(fields);
        if changed("scan_on_push") {
            c.ecr
                .put_image_scanning_configuration()
                .repository_name(&o.physical)
                .image_scanning_configuration(
                    aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                        .scan_on_push(Ctx::flag(d, "scan_on_push"))
                        .build(),
                )
                .send()
                .await
                .map_err(aws("ecr:PutImageScanningConfiguration"))?;
        }
        if changed("tag_mutability") {
            c.ecr
                .put_image_tag_mutability()
                .repository_name(&o.physical)
                .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::from(
                    x.prop(d, "tag_mutability")?.as_str(),
                ))
                .send()
                .await
                .map_err(aws("ecr:PutImageTagMutability"))?;
        }
        ecr_policies(
            x,
            d,
            &o.physical,
            changed("lifecycle_policy"),
            changed("repository_policy"),
        )
        .await?;
        Ok(())
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        let c = x.c;
        let arn = o.arn_or_physical();
        let t: Vec<_> = tags
            .iter()
            .map(|(k, v)| built(aws_sdk_ecr::types::Tag::builder().key(k).value(v).build()))
            .collect::<Result<_, _>>()?;
        c.ecr
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(t))
            .send()
            .await
            .map_err(aws("ecr:TagResource"))?;
        Ok(())
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        let c = x.c;
        // images go with it: destroy is confirmed, and the images can be pushed again
        let r = absent(
            "ecr:DeleteRepository",
            c.ecr
                .delete_repository()
                .repository_name(&o.physical)
                .force(true)
                .send(),
            |e| e.is_repository_not_found_exception(),
        )
        .await?;
        Ok(deleted(&o.physical, r.is_some()))
    }
}

async fn ecr_policies(
    x: &Ctx<'_>,
    d: &Desired,
    name: &str,
    lifecycle: bool,
    policy: bool,
) -> Result<(), Error> {
    let c = x.c;
    if lifecycle {
        let text = x.prop(d, "lifecycle_policy")?;
        if text.is_empty() {
            absent(
                "ecr:DeleteLifecyclePolicy",
                c.ecr.delete_lifecycle_policy().repository_name(name).send(),
                |s| s.is_lifecycle_policy_not_found_exception(),
            )
            .await?;
        } else {
            c.ecr
                .put_lifecycle_policy()
                .repository_name(name)
                .lifecycle_policy_text(text)
                .send()
                .await
                .map_err(aws("ecr:PutLifecyclePolicy"))?;
        }
    }
    if policy {
        let text = x.prop(d, "repository_policy")?;
        if text.is_empty() {
            absent(
                "ecr:DeleteRepositoryPolicy",
                c.ecr
                    .delete_repository_policy()
                    .repository_name(name)
                    .send(),
                |s| s.is_repository_policy_not_found_exception(),
            )
            .await?;
        } else {
            c.ecr
                .set_repository_policy()
                .repository_name(name)
                .policy_text(text)
                .send()
                .await
                .map_err(aws("ecr:SetRepositoryPolicy"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_uris() {
        assert_eq!(
            parse_ecr_uri("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a/gateway@sha256:ab"),
            Some((
                "123456789012".into(),
                "eu-west-1".into(),
                "a/gateway".into()
            ))
        );
        assert_eq!(parse_ecr_uri("ghcr.io/org/gateway"), None);
    }
}
