//! The compute tier's preflight against the account: image tags resolved to digests in ECR (task definitions
//! and the REST Lambda reference images by digest, so a new image is a new task definition revision and `latest`
//! never drifts), and the listener certificate (exists, ISSUED, covers the hosts). Read-only.
//!
//! Lambda pulls container images only from an ECR repository in the function's own region, so the REST
//! image must come from one. Every image is built for x86_64 (`supactl build` refuses a binary for another
//! machine), which the task definitions' `runtimePlatform` and the functions' `Architectures` state.

use std::collections::BTreeMap;

use crate::aws::{AwsError, Clients};
use crate::config::{Config, Issue, RestMode};
use crate::Error;

use super::rules::cert_covers;
use crate::kinds::ecr::{parse_ecr_uri, repository_name, repository_uri};

/// The CPU architecture of every image, as ECS's `runtimePlatform.cpuArchitecture` names it.
pub const ECS_CPU_ARCHITECTURE: &str = "X86_64";
/// The same as Lambda's `Architectures` names it (given to the tenant-manager, which creates the functions).
pub const LAMBDA_ARCHITECTURE: &str = "x86_64";

/// The images a deploy of `cfg` runs.
pub fn needed(cfg: &Config) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = cfg.compute.services.iter().map(|s| s.name).collect();
    if cfg.compute.rest.mode == RestMode::Lambda {
        v.push("rest-lambda");
    }
    v
}

/// Resolves each needed image's `tag` to `<repository uri>@sha256:…`. Problems (a missing image, a registry
/// where no digest can be looked up) are returned as issues, all at once.
pub async fn resolve(
    c: &Clients,
    cfg: &Config,
    region: &str,
    tag: &str,
) -> Result<BTreeMap<String, String>, Vec<Issue>> {
    let mut out = BTreeMap::new();
    let mut issues = Vec::new();
    for image in needed(cfg) {
        let uri = repository_uri(cfg, region, image);
        if image == "rest-lambda" {
            if let Some(issue) = lambda_image_issue(cfg, region, &uri) {
                issues.push(issue);
                continue;
            }
        }
        if let Some(pinned) = cfg
            .compute
            .ecr_overrides
            .get(image)
            .filter(|u| u.contains("@sha256:"))
        {
            out.insert(image.to_string(), pinned.clone());
            continue;
        }
        let overridden = cfg.compute.ecr_overrides.contains_key(image);
        let path = if overridden {
            format!("infraStack.ecr.repositories.{image}.uri")
        } else {
            format!("ecr:{}", repository_name(cfg, image))
        };
        let (registry, repo) = match parse_ecr_uri(&uri) {
            Some((acct, r, repo)) if r == region => (acct, repo),
            _ => {
                issues.push(Issue {
                    path,
                    message: format!(
                        "cannot look up the digest of {uri}:{tag}: it is not an ECR repository of {region}"
                    ),
                    fix: format!("pin the image by digest: \"{uri}@sha256:<digest>\""),
                });
                continue;
            }
        };
        let r = c
            .ecr
            .describe_images()
            .registry_id(&registry)
            .repository_name(&repo)
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag(tag)
                    .build(),
            )
            .send()
            .await;
        let push = if overridden {
            format!("push {image}:{tag} to {uri}")
        } else {
            format!(
                "run `supactl build` and `supactl push --env {}` (it creates the repositories), or pass --image-tag with a tag that was pushed",
                cfg.environment
            )
        };
        match r {
            Ok(o) => match o.image_details().first().and_then(|d| d.image_digest()) {
                Some(digest) => {
                    out.insert(image.to_string(), format!("{uri}@{digest}"));
                }
                None => issues.push(Issue {
                    path,
                    message: format!("ECR has no digest for {repo}:{tag}"),
                    fix: push,
                }),
            },
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_image_not_found_exception() || s.is_repository_not_found_exception()
                }) =>
            {
                let what = if e
                    .as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception())
                {
                    format!("the ECR repository {repo} does not exist (so it has no image {tag})")
                } else {
                    format!("the ECR repository {repo} has no image tagged {tag}")
                };
                issues.push(Issue {
                    path,
                    message: what,
                    fix: push,
                })
            }
            Err(e) => {
                issues.push(Issue {
                    path,
                    message: AwsError::new("ecr:DescribeImages", &e).to_string(),
                    fix: "check the credentials' ECR permissions".into(),
                });
            }
        }
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}

/// Lambda pulls images only from ECR in the function's region (any account's, given its repository policy):
/// an override elsewhere would pass every check and fail every `CreateFunction`.
fn lambda_image_issue(cfg: &Config, region: &str, uri: &str) -> Option<Issue> {
    match parse_ecr_uri(uri) {
        Some((_, r, _)) if r == region => None,
        found => Some(Issue {
            path: "infraStack.ecr.repositories.rest-lambda.uri".into(),
            message: format!(
                "{uri} is {}; Lambda pulls container images only from Amazon ECR in the function's region ({region})",
                match found {
                    Some((_, r, _)) => format!("an ECR repository of {r}"),
                    None => "not an ECR repository".into(),
                }
            ),
            fix: format!(
                "push the image to ECR in {region} and point the override there, or remove the override to use the stack's own repository (`supactl push --env {}`)",
                cfg.environment
            ),
        }),
    }
}

/// The host names the listener certificate must cover: every project (`*.{baseDomain}`), the API and the admin
/// host.
pub fn certificate_hosts(cfg: &Config) -> Vec<String> {
    let c = &cfg.compute;
    vec![
        format!("*.{}", c.base_domain),
        format!("{}.{}", c.api_subdomain, c.base_domain),
        format!("{}.{}", c.admin_subdomain, c.base_domain),
    ]
}

/// Checks the listener certificate: it exists in the region, is ISSUED and covers [`certificate_hosts`].
pub async fn check_certificate(c: &Clients, cfg: &Config) -> Result<Vec<Issue>, Error> {
    let arn = &cfg.compute.certificate_arn;
    let path = "infraStack.certificate.arn".to_string();
    let r = c
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await;
    let cert = match r {
        Ok(o) => o.certificate,
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_resource_not_found_exception() || s.is_invalid_arn_exception()
            }) =>
        {
            return Ok(vec![Issue {
                path,
                message: format!("no ACM certificate {arn} in region {}", c.region),
                fix: "request or import the certificate in the stack's region (ACM) and put its ARN here".into(),
            }]);
        }
        Err(e) => return Err(Error::Aws(AwsError::new("acm:DescribeCertificate", &e))),
    };
    let Some(cert) = cert else {
        return Ok(vec![]);
    };
    let mut issues = Vec::new();
    let status = cert.status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
    if status != "ISSUED" {
        issues.push(Issue {
            path: path.clone(),
            message: format!("the certificate is {status}, not ISSUED"),
            fix: if status == "PENDING_VALIDATION" {
                "finish its DNS validation (ACM shows the CNAME records to create), then deploy again".into()
            } else {
                "use an ISSUED certificate".into()
            },
        });
    }
    let mut names: Vec<String> = cert.subject_alternative_names().to_vec();
    if let Some(d) = cert.domain_name() {
        names.push(d.to_string());
    }
    let missing: Vec<String> = certificate_hosts(cfg)
        .into_iter()
        .filter(|h| !cert_covers(&names, h))
        .collect();
    if !missing.is_empty() {
        issues.push(Issue {
            path,
            message: format!(
                "the certificate does not cover {} (its names: {})",
                missing.join(", "),
                names.join(", ")
            ),
            fix: format!(
                "use a certificate for *.{} (it covers the API and admin hosts too)",
                cfg.compute.base_domain
            ),
        });
    }
    Ok(issues)
}
