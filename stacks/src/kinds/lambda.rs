//! The per-project REST functions of lambda mode. The tenant-manager creates and deletes them
//! (`runtime/tenant-manager/src/rest_lambda.rs`), so a deploy neither creates nor deletes one; the stack names
//! them (a stack-specific prefix, handed to the tenant-manager in its task definition), scopes IAM to that
//! prefix, lists them for `status`, and on `destroy` deletes every function carrying its ownership tags (with
//! its Function URL), then waits for Lambda to release the VPC network interfaces those functions used, which
//! keep the REST security group and the private subnets busy until then.
//!
//! Ownership is read with `ListTags` (`GetFunction` returns tags only to callers allowed `lambda:ListTags`):
//! a function whose tags cannot be read is not ours.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::aws::{absent, ec2_is_not_found, err as aws, partition, AwsError, Clients};
use crate::config::Config;
use crate::family::ctx::{deleted, Ctx};
use crate::family::found::owned;
use crate::family::{not_ours, Created, Family};
use crate::model::{Desired, FieldChange, Kind, Observed, Props, ResId, TAG_ID};
use crate::Error;

/// How long destroy waits for Lambda to release a VPC's network interfaces. Lambda keeps a function's
/// interfaces for a while after the function is gone; Terraform's AWS provider waits up to 45 minutes for them
/// before deleting a security group or subnet they used.
pub const NETWORK_RELEASE_TIMEOUT: Duration = Duration::from_secs(45 * 60);

/// The description Lambda gives the network interfaces it creates for functions in a VPC.
const LAMBDA_ENI_DESCRIPTION: &str = "AWS Lambda VPC ENI";

/// The logical id of the wait for Lambda's network interfaces (one per stack).
pub const NETWORK_INTERFACES_ID: &str = "lambda/network-interfaces";

/// The prefix of the stack's REST function names: `rest-<8 hex digits>-`, the digits a hash (FNV-1a, 32 bits)
/// of `<name>/<environment>`. Short, so that a 40-character project ref still fits Lambda's 64; fixed-length,
/// so no other stack's prefix starts with it (as `<name>-<env>-` could: `a-b`/`c` and `a`/`b-c`).
pub fn function_prefix(cfg: &Config) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in format!("{}/{}", cfg.name, cfg.environment).bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("rest-{h:08x}-")
}

/// The ARN pattern of the stack's REST functions (IAM statements are scoped to it).
pub fn functions_arn(cfg: &Config, region: &str) -> String {
    format!(
        "arn:{}:lambda:{region}:{}:function:{}*",
        partition(region),
        cfg.account_id,
        function_prefix(cfg)
    )
}

/// A REST function of the stack, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Function {
    pub name: String,
    pub state: String,
    pub image: Option<String>,
}

/// A function of the region with its tags.
struct Tagged {
    name: String,
    arn: String,
    tags: BTreeMap<String, String>,
}

/// Every function of the region that carries this stack's ownership tags, read with `ListTags`.
async fn owned_functions(c: &Clients, cfg: &Config) -> Result<Vec<Tagged>, Error> {
    let fns = c
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::Aws(AwsError::new("lambda:ListFunctions", &e)))?;
    let mut out = Vec::new();
    for f in fns {
        let (Some(name), Some(arn)) = (f.function_name(), f.function_arn()) else {
            continue;
        };
        let tags = match c.lambda.list_tags().resource(arn).send().await {
            Ok(t) => t.tags().cloned().unwrap_or_default(),
            // unreadable tags (no lambda:ListTags on it) or a function deleted meanwhile: not ours
            Err(e) if unreadable(&e) => continue,
            Err(e) => return Err(Error::Aws(AwsError::new("lambda:ListTags", &e))),
        };
        let tags: BTreeMap<String, String> = tags.into_iter().collect();
        if owned(cfg, &tags) {
            out.push(Tagged {
                name: name.to_string(),
                arn: arn.to_string(),
                tags,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether a `ListTags` failure means the tags cannot be read (denied, or the function is gone).
fn unreadable<R>(
    e: &aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::list_tags::ListTagsError, R>,
) -> bool {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    e.as_service_error().is_some_and(|s| {
        s.is_resource_not_found_exception()
            || s.code()
                .is_some_and(|c| c.starts_with("AccessDenied") || c == "UnauthorizedOperation")
    })
}

/// The stack's REST functions with their state and image (`ListFunctions` returns neither the state nor the
/// image: each is read with `GetFunction`).
pub async fn rest_functions(c: &Clients, cfg: &Config) -> Result<Vec<Function>, Error> {
    let mut out = Vec::new();
    for f in owned_functions(c, cfg).await? {
        let call = c.lambda.get_function().function_name(&f.name).send();
        let Some(g) = absent("lambda:GetFunction", call, |e| {
            e.is_resource_not_found_exception()
        })
        .await?
        else {
            continue;
        };
        out.push(Function {
            state: g
                .configuration()
                .and_then(|c| c.state())
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "unknown".into()),
            image: g.code().and_then(|c| c.image_uri()).map(str::to_string),
            name: f.name,
        });
    }
    Ok(out)
}

/// What destroy deletes besides the resources the stack created: every function carrying its ownership tags,
/// and, when there were any or Lambda still holds network interfaces in the stack's VPC, the wait for those
/// interfaces to be released (before the security groups and subnets they use are deleted).
pub async fn observe_for_destroy(
    c: &Clients,
    cfg: &Config,
    observed: &[Observed],
) -> Result<Vec<Observed>, Error> {
    let mut out: Vec<Observed> = owned_functions(c, cfg)
        .await?
        .into_iter()
        .map(|f| {
            let mut tags = f.tags;
            tags.insert(TAG_ID.into(), format!("function/{}", f.name));
            tags.entry("Name".into()).or_insert_with(|| f.name.clone());
            Observed {
                id: ResId(format!("function/{}", f.name)),
                kind: Kind::LambdaFunction,
                physical: f.name,
                arn: Some(f.arn),
                props: Props::new(),
                tags,
                state: "active".into(),
                aux: BTreeMap::new(),
            }
        })
        .collect();
    let Some(vpc) = observed.iter().find(|o| o.kind == Kind::Vpc) else {
        return Ok(out);
    };
    let enis = lambda_interfaces(c, &vpc.physical).await?;
    if !out.is_empty() || !enis.is_empty() {
        out.push(Observed {
            id: ResId::new(NETWORK_INTERFACES_ID),
            kind: Kind::LambdaNetworkInterfaces,
            physical: vpc.physical.clone(),
            arn: None,
            props: Props::new(),
            tags: BTreeMap::from([(
                "Name".to_string(),
                format!("Lambda's network interfaces in {}", vpc.physical),
            )]),
            state: format!("{} in use", enis.len()),
            aux: BTreeMap::new(),
        });
    }
    Ok(out)
}

/// Lambda's network interfaces in `vpc`: (id, status).
async fn lambda_interfaces(c: &Clients, vpc: &str) -> Result<Vec<(String, String)>, Error> {
    let enis = c
        .ec2
        .describe_network_interfaces()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(vpc)
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::Aws(AwsError::new("ec2:DescribeNetworkInterfaces", &e)))?;
    Ok(enis
        .iter()
        .filter(|e| {
            e.description()
                .is_some_and(|d| d.starts_with(LAMBDA_ENI_DESCRIPTION))
        })
        .filter_map(|e| {
            Some((
                e.network_interface_id()?.to_string(),
                e.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            ))
        })
        .collect())
}

/// Deletes a function's URL, then the function; either being gone already is fine.
async fn delete_function(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let name = &o.physical;
    absent(
        "lambda:DeleteFunctionUrlConfig",
        x.c.lambda
            .delete_function_url_config()
            .function_name(name)
            .send(),
        |e| e.is_resource_not_found_exception(),
    )
    .await?;
    let r = absent(
        "lambda:DeleteFunction",
        x.c.lambda.delete_function().function_name(name).send(),
        |e| e.is_resource_not_found_exception(),
    )
    .await?;
    Ok(deleted(name, r.is_some()))
}

/// Waits until Lambda has released its network interfaces in the VPC `o.physical`, deleting those it has
/// detached (`available`) as Terraform does, under `timeouts.lambda_network`, with a progress note per poll.
async fn release_interfaces(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let vpc = &o.physical;
    let timeout = x.opts.timeouts.lambda_network;
    let start = tokio::time::Instant::now();
    let mut delay = Duration::from_secs(1);
    let mut released = 0usize;
    loop {
        let enis = lambda_interfaces(x.c, vpc).await?;
        let mut busy = Vec::new();
        for (id, status) in enis {
            if status != "available" {
                busy.push(id);
                continue;
            }
            let r =
                x.c.ec2
                    .delete_network_interface()
                    .network_interface_id(&id)
                    .send()
                    .await;
            match r {
                Ok(_) => released += 1,
                Err(e) if ec2_is_not_found(&e) => {}
                // Lambda took it back meanwhile: the next poll sees it
                Err(e) if crate::aws::ec2_code(&e) == Some("InvalidNetworkInterface.InUse") => {
                    busy.push(id)
                }
                Err(e) => return Err(aws("ec2:DeleteNetworkInterface")(e)),
            }
        }
        if busy.is_empty() {
            return Ok(format!(
                "Lambda holds no network interface in {vpc} ({released} deleted here)"
            ));
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(Error::WaitFailed {
                what: format!("Lambda to release its network interfaces in {vpc}"),
                timeout,
                detail: format!("still in use: {}", busy.join(", ")),
            });
        }
        x.note(&format!(
            "waiting for Lambda to release {} network interface(s) ({}m{:02}s of at most {}m)",
            busy.len(),
            elapsed.as_secs() / 60,
            elapsed.as_secs() % 60,
            timeout.as_secs() / 60
        ));
        tokio::time::sleep(delay.min(timeout.saturating_sub(elapsed))).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// The REST functions and Lambda's network interfaces: observed and deleted by destroy only
/// ([`observe_for_destroy`]); never desired, created or changed.
pub struct Lambda;

impl Family for Lambda {
    fn replaces(_kind: Kind, _field: &str) -> bool {
        false
    }

    /// Nothing: a deploy leaves the tenant-manager's functions alone.
    async fn observe(_: &Clients, _: &Config, _: &[Desired]) -> Result<Vec<Observed>, Error> {
        Ok(Vec::new())
    }

    async fn create(_: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        Err(not_ours(d.kind, "a desired"))
    }

    async fn update(
        _: &Ctx<'_>,
        d: &Desired,
        _: &Observed,
        _: &[FieldChange],
    ) -> Result<(), Error> {
        Err(not_ours(d.kind, "a desired"))
    }

    async fn tag(_: &Ctx<'_>, o: &Observed, _: &BTreeMap<String, String>) -> Result<(), Error> {
        Err(not_ours(o.kind, "a desired"))
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::LambdaFunction => delete_function(x, o).await,
            Kind::LambdaNetworkInterfaces => release_interfaces(x, o).await,
            k => Err(not_ours(k, "a Lambda")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_differ_per_stack_and_leave_room_for_a_long_ref() {
        let cfg = |name: &str, env: &str| {
            let mut c = crate::config::tests::sample();
            c.name = name.into();
            c.environment = env.into();
            c
        };
        let test = function_prefix(&cfg("supabase-on-aws", "test"));
        let prod = function_prefix(&cfg("supabase-on-aws", "production"));
        assert_ne!(test, prod);
        assert_eq!(test, function_prefix(&cfg("supabase-on-aws", "test")));
        // the hyphen does not make two stacks alike
        assert_ne!(
            function_prefix(&cfg("a-b", "c")),
            function_prefix(&cfg("a", "b-c"))
        );
        assert!(test.starts_with("rest-") && test.len() == 14, "{test}");
        assert!(test.len() + 40 <= 64);
        assert!(!prod.starts_with(&test) && !test.starts_with(&prod));
    }
}
