//! IAM: the role of each ECS service and the tasks' execution role, and in lambda mode the REST functions'
//! role with its permission boundary (a managed policy). Least privilege and no AWS-managed policy anywhere:
//! the execution role pulls only our images, writes only our log group and reads exactly the secrets injected
//! into the tasks; the gateway may only use the objects of the storage bucket ([`crate::kinds::storage`]) and
//! invoke the Function URLs of this stack's REST functions (named with its prefix:
//! [`crate::kinds::lambda::function_prefix`]); the tenant-manager may manage only those functions, pass
//! only the REST role and only to Lambda, and manage only secrets under `secrets.prefix`; the functions
//! service's role allows nothing (user code runs there, and its workers cannot reach the credentials endpoint).
//! Everything lives under one IAM path per stack and region, which is how observation finds it.

mod documents;

use std::collections::BTreeMap;

use crate::aws::{absent, err as aws, partition, Clients};
use crate::config::{Config, RestMode};
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{built, deleted, Ctx};
use crate::family::found::{conflict, named, s, Sink};
use crate::family::{Created, Family};
use crate::model::{changes, doc, props, Desired, FieldChange, Kind, Observed, Val};
use crate::policy::normalize;
use crate::Error;
use documents::{rest_lambda_statements, roles, statements, Role};

/// IAM path of every role and policy of the stack in a region: IAM is global, the path keeps two regions (and
/// two stacks) apart, and `ListRoles(PathPrefix)` finds them all.
pub fn iam_path(cfg: &Config, region: &str) -> String {
    format!("/supactl/{}/{}/{region}/", cfg.name, cfg.environment)
}

/// The IAM roles of the stack: logical key and name suffix.
pub const ROLES: &[(&str, &str)] = &[
    ("execution", "task-exec"),
    ("gateway", "gateway"),
    ("tenant-manager", "tenant-mgr"),
    ("functions", "functions"),
    ("rest-lambda", "rest-lambda"),
];

/// A role's name: `<name>-<env>-<region>-<suffix>` (at most 64 characters with the config's name limits).
pub fn role_name(cfg: &Config, region: &str, key: &str) -> String {
    let suffix = ROLES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, s)| *s)
        .unwrap_or(key);
    format!("{}-{region}-{suffix}", cfg.prefix())
}

pub fn role_arn(cfg: &Config, region: &str, key: &str) -> String {
    format!(
        "arn:{}:iam::{}:role{}{}",
        partition(region),
        cfg.account_id,
        iam_path(cfg, region),
        role_name(cfg, region, key)
    )
}

/// The permission boundary of the REST Lambda role.
pub fn boundary_name(cfg: &Config, region: &str) -> String {
    format!("{}-{region}-rest-lambda-boundary", cfg.prefix())
}

/// The REST functions' permission boundary (lambda mode), then the roles.
pub fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let region = inputs.region;
    let path = iam_path(cfg, region);
    let lambda_mode = cfg.compute.rest.mode == RestMode::Lambda;
    if lambda_mode {
        let name = boundary_name(cfg, region);
        b.add(
            Kind::IamPolicy,
            "iam/policy/rest-lambda-boundary",
            name.clone(),
            props([
                ("name", Val::Str(name)),
                ("path", Val::Str(path.clone())),
                (
                    "document",
                    doc(&statements(rest_lambda_statements(cfg, region))),
                ),
            ]),
            props([(
                "description",
                Val::str("supactl: permission boundary of the per-project REST Lambda functions"),
            )]),
        );
    }
    for role in roles(cfg, inputs) {
        add_role(b, region, &path, role);
    }
}

/// A role with its inline policies, bounded by the REST boundary when `bounded`.
fn add_role(b: &mut Builder<'_>, region: &str, path: &str, (key, trust, inline, bounded): Role) {
    let cfg = b.cfg;
    let name = role_name(cfg, region, key);
    let mut p = props([
        ("name", Val::Str(name.clone())),
        ("path", Val::Str(path.to_string())),
        ("trust", doc(&trust)),
        (
            "boundary",
            if bounded {
                Val::r("iam/policy/rest-lambda-boundary")
            } else {
                Val::str("")
            },
        ),
    ]);
    for (pname, d) in inline {
        p.insert(format!("policy:{pname}"), doc(&d));
    }
    b.add(
        Kind::IamRole,
        &format!("iam/role/{key}"),
        name,
        p,
        props([(
            "description",
            Val::Str(format!("supactl: {key} role of {}", cfg.prefix())),
        )]),
    );
}

pub struct Iam;

impl Family for Iam {
    fn replaces(_kind: Kind, field: &str) -> bool {
        ["name", "path"].contains(&field)
    }

    async fn observe(
        c: &Clients,
        cfg: &Config,
        desired: &[Desired],
    ) -> Result<Vec<Observed>, Error> {
        let mut sink = Sink::new(cfg);
        let path = iam_path(cfg, &c.region);
        observe_policies(c, &path, &mut sink).await?;
        observe_roles(c, desired, &path, &mut sink).await?;
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        match d.kind {
            Kind::IamPolicy => create_iam_policy(x, d).await,
            _ => create_iam_role(x, d).await,
        }
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        match d.kind {
            Kind::IamPolicy => update_iam_policy(x, d, o, fields).await,
            _ => update_iam_role(x, d, o, fields).await,
        }
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        match o.kind {
            Kind::IamPolicy => tag_iam_policy(x, o, tags).await,
            _ => tag_iam_role(x, o, tags).await,
        }
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::IamPolicy => delete_iam_policy(x, o).await,
            _ => delete_iam_role(x, o).await,
        }
    }
}

/// Our customer-managed policies (under our path), with their default version's document.
async fn observe_policies(c: &Clients, path: &str, sink: &mut Sink<'_>) -> Result<(), Error> {
    let policies = c
        .iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .path_prefix(path)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(crate::aws::err("iam:ListPolicies"))?;
    for p in policies {
        let arn = p.arn().unwrap_or_default().to_string();
        let got = c
            .iam
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(crate::aws::err("iam:GetPolicy"))?;
        let tags = observed_tags(got.policy().map(|p| p.tags()).unwrap_or_default());
        let version = p.default_version_id().unwrap_or("v1");
        let document = c
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .map_err(crate::aws::err("iam:GetPolicyVersion"))?
            .policy_version()
            .and_then(|v| v.document())
            .map(normalize)
            .unwrap_or_default();
        sink.push(
            Kind::IamPolicy,
            &arn,
            Some(arn.clone()),
            tags,
            props([
                ("name", s(p.policy_name())),
                ("path", s(p.path())),
                ("document", Val::Str(document)),
            ]),
            "available",
            BTreeMap::from([(
                "name".to_string(),
                p.policy_name().unwrap_or_default().to_string(),
            )]),
        );
    }
    Ok(())
}

/// Our roles (under our path) with their inline policies; a desired role name outside it is a conflict.
async fn observe_roles(
    c: &Clients,
    desired: &[Desired],
    path: &str,
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let roles = c
        .iam
        .list_roles()
        .path_prefix(path)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(crate::aws::err("iam:ListRoles"))?;
    let mut seen = Vec::new();
    for role in &roles {
        let name = role.role_name();
        seen.push(name.to_string());
        let full = c
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(crate::aws::err("iam:GetRole"))?;
        let Some(r) = full.role() else { continue };
        let tags = observed_tags(r.tags());
        let mut p = props([
            ("name", Val::str(name)),
            ("path", Val::str(r.path())),
            (
                "trust",
                Val::Str(normalize(
                    r.assume_role_policy_document().unwrap_or_default(),
                )),
            ),
            (
                "boundary",
                s(r.permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn())),
            ),
        ]);
        let inline = c
            .iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(crate::aws::err("iam:ListRolePolicies"))?;
        for pname in inline.policy_names() {
            let d = c
                .iam
                .get_role_policy()
                .role_name(name)
                .policy_name(pname)
                .send()
                .await
                .map_err(crate::aws::err("iam:GetRolePolicy"))?;
            p.insert(
                format!("policy:{pname}"),
                Val::Str(normalize(d.policy_document())),
            );
        }
        sink.push(
            Kind::IamRole,
            r.arn(),
            Some(r.arn().to_string()),
            tags,
            p,
            "available",
            BTreeMap::from([("name".to_string(), name.to_string())]),
        );
    }
    // a role of ours by name but outside our path is someone else's (IAM role names are account-wide)
    for d in named(desired, Kind::IamRole) {
        if seen.contains(&d.name) {
            continue;
        }
        let call = c.iam.get_role().role_name(&d.name).send();
        if let Some(o) = absent("iam:GetRole", call, |s| s.is_no_such_entity_exception()).await? {
            let tags = observed_tags(o.role().map(|r| r.tags()).unwrap_or_default());
            return Err(conflict(Kind::IamRole, &d.name, &tags));
        }
    }
    Ok(())
}

fn observed_tags(tags: &[aws_sdk_iam::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn create_iam_policy(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    let r = c
        .iam
        .create_policy()
        .policy_name(x.prop(d, "name")?)
        .path(x.prop(d, "path")?)
        .policy_document(x.prop(d, "document")?)
        .description(x.prop(d, "description")?)
        .set_tags(Some(iam_tags(&d.tags)?))
        .send()
        .await
        .map_err(aws("iam:CreatePolicy"))?;
    let arn = r
        .policy()
        .and_then(|p| p.arn())
        .unwrap_or_default()
        .to_string();
    Ok((arn, BTreeMap::from([("name".to_string(), d.name.clone())])))
}

async fn update_iam_policy(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    if changed("document") {
        let versions = c
            .iam
            .list_policy_versions()
            .policy_arn(&o.physical)
            .send()
            .await
            .map_err(aws("iam:ListPolicyVersions"))?;
        // IAM keeps at most 5 versions: drop the oldest non-default one first
        let mut old: Vec<_> = versions
            .versions()
            .iter()
            .filter(|v| !v.is_default_version())
            .collect();
        old.sort_by_key(|v| v.create_date().map(|d| d.secs()).unwrap_or(0));
        if versions.versions().len() >= 5 {
            if let Some(v) = old.first().and_then(|v| v.version_id()) {
                c.iam
                    .delete_policy_version()
                    .policy_arn(&o.physical)
                    .version_id(v)
                    .send()
                    .await
                    .map_err(aws("iam:DeletePolicyVersion"))?;
            }
        }
        c.iam
            .create_policy_version()
            .policy_arn(&o.physical)
            .policy_document(x.prop(d, "document")?)
            .set_as_default(true)
            .send()
            .await
            .map_err(aws("iam:CreatePolicyVersion"))?;
    }
    Ok(())
}

async fn delete_iam_policy(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let call = c
        .iam
        .list_entities_for_policy()
        .policy_arn(&o.physical)
        .send();
    let Some(entities) = absent("iam:ListEntitiesForPolicy", call, |s| {
        s.is_no_such_entity_exception()
    })
    .await?
    else {
        return Ok(deleted(&o.physical, false));
    };
    for r in entities.policy_roles() {
        if let Some(name) = r.role_name() {
            c.iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(&o.physical)
                .send()
                .await
                .map_err(aws("iam:DetachRolePolicy"))?;
        }
    }
    let versions = c
        .iam
        .list_policy_versions()
        .policy_arn(&o.physical)
        .send()
        .await
        .map_err(aws("iam:ListPolicyVersions"))?;
    for v in versions.versions() {
        if !v.is_default_version() {
            if let Some(id) = v.version_id() {
                c.iam
                    .delete_policy_version()
                    .policy_arn(&o.physical)
                    .version_id(id)
                    .send()
                    .await
                    .map_err(aws("iam:DeletePolicyVersion"))?;
            }
        }
    }
    let r = absent(
        "iam:DeletePolicy",
        c.iam.delete_policy().policy_arn(&o.physical).send(),
        |e| e.is_no_such_entity_exception(),
    )
    .await?;
    Ok(deleted(&o.physical, r.is_some()))
}

async fn tag_iam_policy(
    x: &Ctx<'_>,
    o: &Observed,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let c = x.c;
    c.iam
        .tag_policy()
        .policy_arn(&o.physical)
        .set_tags(Some(iam_tags(tags)?))
        .send()
        .await
        .map_err(aws("iam:TagPolicy"))?;
    Ok(())
}

async fn create_iam_role(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    let name = x.prop(d, "name")?;
    let boundary = x.prop(d, "boundary")?;
    let r = c
        .iam
        .create_role()
        .role_name(&name)
        .path(x.prop(d, "path")?)
        .assume_role_policy_document(x.prop(d, "trust")?)
        .description(x.prop(d, "description")?)
        .set_permissions_boundary((!boundary.is_empty()).then_some(boundary))
        .set_tags(Some(iam_tags(&d.tags)?))
        .send()
        .await
        .map_err(aws("iam:CreateRole"))?;
    for (k, v) in &d.props {
        if let Some(pname) = k.strip_prefix("policy:") {
            put_role_policy(x, &name, pname, &x.resolve(v)?).await?;
        }
    }
    let arn = r.role().map(|r| r.arn()).unwrap_or_default().to_string();
    Ok((arn, BTreeMap::from([("name".to_string(), name)])))
}

async fn update_iam_role(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    let name = o.aux.get("name").cloned().unwrap_or_else(|| d.name.clone());
    if changed("trust") {
        c.iam
            .update_assume_role_policy()
            .role_name(&name)
            .policy_document(x.prop(d, "trust")?)
            .send()
            .await
            .map_err(aws("iam:UpdateAssumeRolePolicy"))?;
    }
    if changed("boundary") {
        let b = x.prop(d, "boundary")?;
        if b.is_empty() {
            c.iam
                .delete_role_permissions_boundary()
                .role_name(&name)
                .send()
                .await
                .map_err(aws("iam:DeleteRolePermissionsBoundary"))?;
        } else {
            c.iam
                .put_role_permissions_boundary()
                .role_name(&name)
                .permissions_boundary(b)
                .send()
                .await
                .map_err(aws("iam:PutRolePermissionsBoundary"))?;
        }
    }
    for fc in fields {
        let Some(pname) = fc.field.strip_prefix("policy:") else {
            continue;
        };
        match d.props.get(&fc.field) {
            Some(v) => put_role_policy(x, &name, pname, &x.resolve(v)?).await?,
            None => {
                c.iam
                    .delete_role_policy()
                    .role_name(&name)
                    .policy_name(pname)
                    .send()
                    .await
                    .map_err(aws("iam:DeleteRolePolicy"))?;
            }
        }
    }
    Ok(())
}

async fn delete_iam_role(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let name = o.aux.get("name").cloned().unwrap_or_else(|| {
        o.physical
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let inline = match absent(
        "iam:ListRolePolicies",
        c.iam.list_role_policies().role_name(&name).send(),
        |s| s.is_no_such_entity_exception(),
    )
    .await?
    {
        Some(r) => r,
        None => return Ok(deleted(&o.physical, false)),
    };
    for p in inline.policy_names() {
        c.iam
            .delete_role_policy()
            .role_name(&name)
            .policy_name(p)
            .send()
            .await
            .map_err(aws("iam:DeleteRolePolicy"))?;
    }
    let attached = c
        .iam
        .list_attached_role_policies()
        .role_name(&name)
        .send()
        .await
        .map_err(aws("iam:ListAttachedRolePolicies"))?;
    for p in attached.attached_policies() {
        if let Some(arn) = p.policy_arn() {
            c.iam
                .detach_role_policy()
                .role_name(&name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(aws("iam:DetachRolePolicy"))?;
        }
    }
    let r = absent(
        "iam:DeleteRole",
        c.iam.delete_role().role_name(&name).send(),
        |e| e.is_no_such_entity_exception(),
    )
    .await?;
    Ok(deleted(&o.physical, r.is_some()))
}

async fn tag_iam_role(
    x: &Ctx<'_>,
    o: &Observed,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let c = x.c;
    c.iam
        .tag_role()
        .role_name(o.aux.get("name").cloned().unwrap_or_default())
        .set_tags(Some(iam_tags(tags)?))
        .send()
        .await
        .map_err(aws("iam:TagRole"))?;
    Ok(())
}

async fn put_role_policy(x: &Ctx<'_>, role: &str, name: &str, document: &str) -> Result<(), Error> {
    x.c.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(document)
        .send()
        .await
        .map_err(aws("iam:PutRolePolicy"))?;
    Ok(())
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Result<Vec<aws_sdk_iam::types::Tag>, Error> {
    tags.iter()
        .map(|(k, v)| built(aws_sdk_iam::types::Tag::builder().key(k).value(v).build()))
        .collect()
}
