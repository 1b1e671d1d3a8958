//! The DB subnet group (the private subnets) and the cluster parameter groups (logical replication on the
//! clusters that need it), both found by name.

use std::collections::BTreeMap;

use super::tags::{list_tags, rds_tags};
use crate::aws::{absent, err as aws, AwsError, Clients};
use crate::config::Config;
use crate::family::ctx::Ctx;
use crate::family::found::{is_ours, must_own, named, s, Sink};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Val};
use crate::Error;

/// DB subnet groups, by name.
pub(super) async fn observe_subnet_groups(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    for d in named(desired, Kind::DbSubnetGroup) {
        let groups = absent(
            "rds:DescribeDBSubnetGroups",
            c.rds
                .describe_db_subnet_groups()
                .db_subnet_group_name(&d.name)
                .send(),
            |e| e.is_db_subnet_group_not_found_fault(),
        )
        .await?
        .and_then(|o| o.db_subnet_groups);
        for g in groups.unwrap_or_default() {
            let arn = g.db_subnet_group_arn().unwrap_or_default().to_string();
            let tags = list_tags(c, &arn).await?;
            must_own(cfg, Kind::DbSubnetGroup, &d.name, &tags)?;
            sink.push(
                Kind::DbSubnetGroup,
                g.db_subnet_group_name().unwrap_or_default(),
                Some(arn),
                tags,
                props([
                    ("name", s(g.db_subnet_group_name())),
                    (
                        "subnets",
                        Val::Set(
                            g.subnets()
                                .iter()
                                .filter_map(|s| s.subnet_identifier())
                                .map(Val::str)
                                .collect(),
                        ),
                    ),
                ]),
                g.subnet_group_status().unwrap_or(""),
                BTreeMap::new(),
            );
        }
    }
    Ok(())
}

/// DB cluster parameter groups: every group named with one of the clusters' prefixes (the current family's and
/// those a major upgrade left behind), with the parameters we set.
pub(super) async fn observe_parameter_groups(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let prefixes = [&cfg.platform_db, &cfg.worker_db].map(super::parameter_group_prefix);
    let groups = c
        .rds
        .describe_db_cluster_parameter_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|err| Error::Aws(AwsError::new("rds:DescribeDBClusterParameterGroups", &err)))?;
    for g in groups {
        let name = g.db_cluster_parameter_group_name().unwrap_or_default();
        let ours_by_name = prefixes.iter().any(|p| {
            name == p.as_str()
                || name
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('-'))
        });
        if !ours_by_name {
            continue;
        }
        let arn = g
            .db_cluster_parameter_group_arn()
            .unwrap_or_default()
            .to_string();
        let tags = list_tags(c, &arn).await?;
        if !is_ours(cfg, desired, Kind::DbClusterParameterGroup, name, &tags)? {
            continue;
        }
        let params = c
            .rds
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(name)
            .source("user")
            .send()
            .await
            .map_err(|err| Error::Aws(AwsError::new("rds:DescribeDBClusterParameters", &err)))?;
        let mut p = props([
            ("name", Val::str(name)),
            ("family", s(g.db_parameter_group_family())),
        ]);
        for prm in params.parameters() {
            if let (Some(n), Some(v)) = (prm.parameter_name(), prm.parameter_value()) {
                p.insert(format!("parameter:{n}"), Val::str(v));
            }
        }
        sink.push(
            Kind::DbClusterParameterGroup,
            name,
            Some(arn),
            tags,
            p,
            "available",
            BTreeMap::new(),
        );
    }
    Ok(())
}

pub(super) async fn create_db_subnet_group(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let name = x.prop(d, "name")?;
    c.rds
        .create_db_subnet_group()
        .db_subnet_group_name(&name)
        .db_subnet_group_description(x.prop(d, "description")?)
        .set_subnet_ids(Some(x.resolve_set(d.props.get("subnets"))?))
        .set_tags(Some(rds_tags(&d.tags)))
        .send()
        .await
        .map_err(aws("rds:CreateDBSubnetGroup"))?;
    Ok(name)
}

pub(super) async fn update_db_subnet_group(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    if changed("subnets") {
        // NB the emulator's ModifyDBSubnetGroup deletes the group; AWS does not
        c.rds
            .modify_db_subnet_group()
            .db_subnet_group_name(&o.physical)
            .set_subnet_ids(Some(x.resolve_set(d.props.get("subnets"))?))
            .send()
            .await
            .map_err(aws("rds:ModifyDBSubnetGroup"))?;
    }
    Ok(())
}

pub(super) async fn create_db_cluster_parameter_group(
    x: &Ctx<'_>,
    d: &Desired,
) -> Result<String, Error> {
    let c = x.c;
    let name = x.prop(d, "name")?;
    c.rds
        .create_db_cluster_parameter_group()
        .db_cluster_parameter_group_name(&name)
        .db_parameter_group_family(x.prop(d, "family")?)
        .description(x.prop(d, "description")?)
        .set_tags(Some(rds_tags(&d.tags)))
        .send()
        .await
        .map_err(aws("rds:CreateDBClusterParameterGroup"))?;
    let params: Vec<(String, String)> = d
        .props
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("parameter:")?.to_string(),
                v.as_str()?.to_string(),
            ))
        })
        .collect();
    set_parameters(x, &name, &params).await?;
    Ok(name)
}

pub(super) async fn update_db_cluster_parameter_group(
    x: &Ctx<'_>,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let mut set = Vec::new();
    let mut reset = Vec::new();
    for fc in fields {
        let Some(p) = fc.field.strip_prefix("parameter:") else {
            continue;
        };
        match &fc.new {
            Some(v) => set.push((p.to_string(), v.clone())),
            None => reset.push(p.to_string()),
        }
    }
    set_parameters(x, &o.physical, &set).await?;
    if !reset.is_empty() {
        c.rds
            .reset_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(&o.physical)
            .set_parameters(Some(
                reset
                    .iter()
                    .map(|n| {
                        aws_sdk_rds::types::Parameter::builder()
                            .parameter_name(n)
                            .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                            .build()
                    })
                    .collect(),
            ))
            .send()
            .await
            .map_err(aws("rds:ResetDBClusterParameterGroup"))?;
    }
    Ok(())
}

async fn set_parameters(
    x: &Ctx<'_>,
    group: &str,
    params: &[(String, String)],
) -> Result<(), Error> {
    if params.is_empty() {
        return Ok(());
    }
    x.c.rds
        .modify_db_cluster_parameter_group()
        .db_cluster_parameter_group_name(group)
        .set_parameters(Some(
            params
                .iter()
                .map(|(n, v)| {
                    aws_sdk_rds::types::Parameter::builder()
                        .parameter_name(n)
                        .parameter_value(v)
                        // rds.logical_replication is static: it takes effect at the next reboot
                        .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .map_err(aws("rds:ModifyDBClusterParameterGroup"))?;
    Ok(())
}
