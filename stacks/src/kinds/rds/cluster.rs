//! The Aurora Serverless v2 clusters (platform and worker) and their instances (a writer, and readers when
//! configured). Listed and kept when they carry our tags; a desired name without them is a conflict.
//!
//! The configured engine version is a floor: Aurora applies minor upgrades itself (automatically by default,
//! and always once a minor version reaches its end of support, whatever `AutoMinorVersionUpgrade` says), so a
//! live version of the same major at the same or a later minor is no change ([`covers`]); a downgrade is
//! impossible anyway. Instances are never publicly accessible (the VPC has an internet gateway), which is
//! observed and repaired like any other drift.

use std::collections::BTreeMap;

use super::tags::{observed_tags, rds_tags};
use crate::aws::{absent, err as aws, AwsError, Clients};
use crate::config::{Config, DbConfig};
use crate::family::build::Builder;
use crate::family::ctx::{deleted, waiter_err, Ctx};
use crate::family::found::{is_ours, named, s, Sink};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, ResId, Val};
use crate::Error;

pub(super) fn desired(b: &mut Builder<'_>, db: &DbConfig) {
    let cid = format!("db/{}", db.role);
    let mut p = props([
        ("identifier", Val::Str(db.cluster_identifier.clone())),
        ("engine", Val::Str(db.engine.clone())),
        ("engine_version", Val::Str(db.engine_version.clone())),
        ("database_name", Val::Str(db.database_name.clone())),
        ("port", Val::Int(i64::from(db.port))),
        ("master_username", Val::str("postgres")),
        ("manage_master_user_password", Val::Bool(true)),
        ("storage_encrypted", Val::Bool(true)),
        ("db_subnet_group", Val::r("db-subnet-group")),
        (
            "security_groups",
            Val::Set(vec![Val::Ref(ResId(format!("sg/{}-db", db.role)))]),
        ),
        ("min_capacity", Val::Num(db.min_acu)),
        ("max_capacity", Val::Num(db.max_acu)),
        ("deletion_protection", Val::Bool(db.deletion_protection)),
        (
            "backup_retention_days",
            Val::Int(i64::from(db.backup_retention_days)),
        ),
    ]);
    if db.logical_replication {
        p.insert(
            "parameter_group".into(),
            Val::Ref(ResId(super::parameter_group_id(db))),
        );
    }
    b.add(
        Kind::DbCluster,
        &cid,
        db.cluster_identifier.clone(),
        p,
        Props::new(),
    );
    let instances = std::iter::once(("writer".to_string(), format!("{cid}/writer")))
        .chain((1..=db.readers).map(|n| (format!("reader-{n}"), format!("{cid}/reader/{n}"))));
    for (suffix, id) in instances {
        let ident = format!("{}-{suffix}", db.cluster_identifier);
        b.add(
            Kind::DbInstance,
            &id,
            ident.clone(),
            props([
                ("identifier", Val::Str(ident)),
                ("cluster", Val::Ref(ResId(cid.clone()))),
                ("engine", Val::Str(db.engine.clone())),
                ("instance_class", Val::str("db.serverless")),
                ("publicly_accessible", Val::Bool(false)),
            ]),
            Props::new(),
        );
    }
}

/// Whether a live engine version satisfies the configured one: the same major at the same or a later minor
/// (versions compared number by number; anything else must match exactly).
pub fn covers(live: &str, wanted: &str) -> bool {
    let nums = |v: &str| -> Option<Vec<u32>> { v.split('.').map(|p| p.parse().ok()).collect() };
    match (nums(live), nums(wanted)) {
        (Some(l), Some(w)) if !l.is_empty() && !w.is_empty() => l[0] == w[0] && l >= w,
        _ => live == wanted,
    }
}

/// Aurora clusters (tags on every cluster; a desired name without our tags is a conflict).
pub(super) async fn observe_clusters(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let clusters = c
        .rds
        .describe_db_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|err| Error::Aws(AwsError::new("rds:DescribeDBClusters", &err)))?;
    for cl in &clusters {
        let tags = observed_tags(cl.tag_list());
        let ident = cl.db_cluster_identifier().unwrap_or_default();
        if !is_ours(cfg, desired, Kind::DbCluster, ident, &tags)? {
            continue;
        }
        let state = cl.status().unwrap_or("");
        if state == "deleting" {
            continue;
        }
        let scaling = cl.serverless_v2_scaling_configuration();
        let live_version = cl.engine_version().unwrap_or_default();
        // a minor upgrade Aurora applied is not drift: report the configured version it covers
        let version = named(desired, Kind::DbCluster)
            .find(|d| d.name == ident)
            .and_then(|d| d.props.get("engine_version").and_then(Val::as_str))
            .filter(|wanted| covers(live_version, wanted))
            .unwrap_or(live_version);
        let mut aux = BTreeMap::new();
        aux.insert("engine_version".into(), live_version.to_string());
        if let Some(sec) = cl.master_user_secret().and_then(|m| m.secret_arn()) {
            aux.insert("master_secret_arn".into(), sec.to_string());
        }
        if let Some(ep) = cl.endpoint() {
            aux.insert("endpoint".into(), ep.to_string());
        }
        sink.push(
            Kind::DbCluster,
            ident,
            cl.db_cluster_arn().map(str::to_string),
            tags,
            props([
                ("identifier", Val::str(ident)),
                ("engine", s(cl.engine())),
                ("engine_version", Val::str(version)),
                ("database_name", s(cl.database_name())),
                ("port", Val::Int(i64::from(cl.port().unwrap_or(0)))),
                ("master_username", s(cl.master_username())),
                (
                    "manage_master_user_password",
                    Val::Bool(cl.master_user_secret().is_some()),
                ),
                (
                    "storage_encrypted",
                    Val::Bool(cl.storage_encrypted().unwrap_or(false)),
                ),
                ("db_subnet_group", s(cl.db_subnet_group())),
                (
                    "security_groups",
                    Val::Set(
                        cl.vpc_security_groups()
                            .iter()
                            .filter_map(|g| g.vpc_security_group_id())
                            .map(Val::str)
                            .collect(),
                    ),
                ),
                (
                    "min_capacity",
                    Val::Num(scaling.and_then(|s| s.min_capacity()).unwrap_or(0.0)),
                ),
                (
                    "max_capacity",
                    Val::Num(scaling.and_then(|s| s.max_capacity()).unwrap_or(0.0)),
                ),
                (
                    "deletion_protection",
                    Val::Bool(cl.deletion_protection().unwrap_or(false)),
                ),
                (
                    "backup_retention_days",
                    Val::Int(i64::from(cl.backup_retention_period().unwrap_or(0))),
                ),
                ("parameter_group", s(cl.db_cluster_parameter_group())),
            ]),
            state,
            aux,
        );
    }
    Ok(())
}

/// DB instances.
pub(super) async fn observe_instances(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let instances = c
        .rds
        .describe_db_instances()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|err| Error::Aws(AwsError::new("rds:DescribeDBInstances", &err)))?;
    for i in &instances {
        let tags = observed_tags(i.tag_list());
        let ident = i.db_instance_identifier().unwrap_or_default();
        if !is_ours(cfg, desired, Kind::DbInstance, ident, &tags)? {
            continue;
        }
        let state = i.db_instance_status().unwrap_or("");
        if state == "deleting" {
            continue;
        }
        sink.push(
            Kind::DbInstance,
            ident,
            i.db_instance_arn().map(str::to_string),
            tags,
            props([
                ("identifier", Val::str(ident)),
                ("cluster", s(i.db_cluster_identifier())),
                ("engine", s(i.engine())),
                ("instance_class", s(i.db_instance_class())),
                (
                    "publicly_accessible",
                    Val::Bool(i.publicly_accessible().unwrap_or(false)),
                ),
            ]),
            state,
            BTreeMap::new(),
        );
    }
    Ok(())
}

/// What other resources refer to: the cluster's endpoint and the ARN of its managed master secret.
pub(super) async fn cluster_attributes(
    x: &Ctx<'_>,
    phys: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let mut aux = BTreeMap::new();
    let r =
        x.c.rds
            .describe_db_clusters()
            .db_cluster_identifier(phys)
            .send()
            .await
            .map_err(aws("rds:DescribeDBClusters"))?;
    if let Some(cl) = r.db_clusters().first() {
        if let Some(e) = cl.endpoint() {
            aux.insert("endpoint".to_string(), e.to_string());
        }
        if let Some(s) = cl.master_user_secret().and_then(|m| m.secret_arn()) {
            aux.insert("master_secret_arn".to_string(), s.to_string());
        }
    }
    Ok(aux)
}

pub(super) async fn create_db_cluster(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let ident = x.prop(d, "identifier")?;
    let scaling = aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
        .min_capacity(
            d.props
                .get("min_capacity")
                .and_then(Val::as_num)
                .unwrap_or(0.5),
        )
        .max_capacity(
            d.props
                .get("max_capacity")
                .and_then(Val::as_num)
                .unwrap_or(1.0),
        )
        .build();
    let mut req = c
        .rds
        .create_db_cluster()
        .db_cluster_identifier(&ident)
        .engine(x.prop(d, "engine")?)
        .engine_version(x.prop(d, "engine_version")?)
        .database_name(x.prop(d, "database_name")?)
        .port(d.props.get("port").and_then(Val::as_int).unwrap_or(5432) as i32)
        .master_username(x.prop(d, "master_username")?)
        .manage_master_user_password(Ctx::flag(d, "manage_master_user_password"))
        .storage_encrypted(Ctx::flag(d, "storage_encrypted"))
        .db_subnet_group_name(x.prop(d, "db_subnet_group")?)
        .set_vpc_security_group_ids(Some(x.resolve_set(d.props.get("security_groups"))?))
        .serverless_v2_scaling_configuration(scaling)
        .deletion_protection(Ctx::flag(d, "deletion_protection"))
        .backup_retention_period(
            d.props
                .get("backup_retention_days")
                .and_then(Val::as_int)
                .unwrap_or(7) as i32,
        )
        .copy_tags_to_snapshot(true)
        .set_tags(Some(rds_tags(&d.tags)));
    if d.props.contains_key("parameter_group") {
        req = req.db_cluster_parameter_group_name(x.prop(d, "parameter_group")?);
    }
    req.send().await.map_err(aws("rds:CreateDBCluster"))?;
    wait_cluster(x, &ident).await?;
    Ok(ident)
}

pub(super) async fn update_db_cluster(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    let mut req = c
        .rds
        .modify_db_cluster()
        .db_cluster_identifier(&o.physical)
        .apply_immediately(true);
    let mut any = false;
    if changed("engine_version") {
        let new = x.prop(d, "engine_version")?;
        let old_major = o
            .props
            .get("engine_version")
            .and_then(Val::as_str)
            .and_then(|v| v.split('.').next().map(str::to_string));
        let major_change = old_major.as_deref() != new.split('.').next();
        req = req
            .engine_version(new)
            .allow_major_version_upgrade(major_change);
        any = true;
    }
    if changed("port") {
        req = req.port(d.props.get("port").and_then(Val::as_int).unwrap_or(5432) as i32);
        any = true;
    }
    if changed("security_groups") {
        req = req.set_vpc_security_group_ids(Some(x.resolve_set(d.props.get("security_groups"))?));
        any = true;
    }
    if changed("min_capacity") || changed("max_capacity") {
        // the API takes the scaling configuration as a whole
        req = req.serverless_v2_scaling_configuration(
            aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
                .min_capacity(
                    d.props
                        .get("min_capacity")
                        .and_then(Val::as_num)
                        .unwrap_or(0.5),
                )
                .max_capacity(
                    d.props
                        .get("max_capacity")
                        .and_then(Val::as_num)
                        .unwrap_or(1.0),
                )
                .build(),
        );
        any = true;
    }
    if changed("deletion_protection") {
        req = req.deletion_protection(Ctx::flag(d, "deletion_protection"));
        any = true;
    }
    if changed("backup_retention_days") {
        req = req.backup_retention_period(
            d.props
                .get("backup_retention_days")
                .and_then(Val::as_int)
                .unwrap_or(7) as i32,
        );
        any = true;
    }
    if changed("parameter_group") {
        req = req.db_cluster_parameter_group_name(x.prop(d, "parameter_group")?);
        any = true;
    }
    if changed("manage_master_user_password") {
        req = req.manage_master_user_password(Ctx::flag(d, "manage_master_user_password"));
        any = true;
    }
    if any {
        req.send().await.map_err(aws("rds:ModifyDBCluster"))?;
        wait_cluster(x, &o.physical).await?;
    }
    Ok(())
}

pub(super) async fn delete_db_cluster(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    if o.props.get("deletion_protection").and_then(Val::as_bool) == Some(true) {
        if !x.opts.force {
            return Err(Error::DeletionProtected {
                names: vec![o.physical.clone()],
            });
        }
        c.rds
            .modify_db_cluster()
            .db_cluster_identifier(&o.physical)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await
            .map_err(aws("rds:ModifyDBCluster"))?;
    }
    let mut req = c.rds.delete_db_cluster().db_cluster_identifier(&o.physical);
    req = if x.cfg.production {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        req.final_db_snapshot_identifier(format!("{}-final-{stamp}", o.physical))
    } else {
        req.skip_final_snapshot(true)
    };
    if absent("rds:DeleteDBCluster", req.send(), |s| {
        s.is_db_cluster_not_found_fault()
    })
    .await?
    .is_none()
    {
        return Ok(deleted(&o.physical, false));
    }
    use aws_sdk_rds::client::Waiters;
    c.rds
        .wait_until_db_cluster_deleted()
        .db_cluster_identifier(&o.physical)
        .wait(t.database)
        .await
        .map_err(|e| waiter_err("db cluster to be deleted", t.database)(e.to_string()))?;
    Ok(deleted(&o.physical, true))
}

pub(super) async fn create_db_instance(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    let ident = x.prop(d, "identifier")?;
    c.rds
        .create_db_instance()
        .db_instance_identifier(&ident)
        .db_cluster_identifier(x.prop(d, "cluster")?)
        .engine(x.prop(d, "engine")?)
        .db_instance_class(x.prop(d, "instance_class")?)
        .publicly_accessible(Ctx::flag(d, "publicly_accessible"))
        .set_tags(Some(rds_tags(&d.tags)))
        .send()
        .await
        .map_err(aws("rds:CreateDBInstance"))?;
    use aws_sdk_rds::client::Waiters;
    c.rds
        .wait_until_db_instance_available()
        .db_instance_identifier(&ident)
        .wait(t.database)
        .await
        .map_err(|e| waiter_err("db instance to become available", t.database)(e.to_string()))?;
    Ok(ident)
}

pub(super) async fn update_db_instance(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    let mut req = c
        .rds
        .modify_db_instance()
        .db_instance_identifier(&o.physical)
        .apply_immediately(true);
    if changed("instance_class") {
        req = req.db_instance_class(x.prop(d, "instance_class")?);
    }
    if changed("publicly_accessible") {
        req = req.publicly_accessible(Ctx::flag(d, "publicly_accessible"));
    }
    if changed("instance_class") || changed("publicly_accessible") {
        req.send().await.map_err(aws("rds:ModifyDBInstance"))?;
    }
    Ok(())
}

pub(super) async fn delete_db_instance(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    if absent(
        "rds:DeleteDBInstance",
        c.rds
            .delete_db_instance()
            .db_instance_identifier(&o.physical)
            .send(),
        |s| s.is_db_instance_not_found_fault(),
    )
    .await?
    .is_none()
    {
        return Ok(deleted(&o.physical, false));
    }
    use aws_sdk_rds::client::Waiters;
    c.rds
        .wait_until_db_instance_deleted()
        .db_instance_identifier(&o.physical)
        .wait(t.database)
        .await
        .map_err(|e| waiter_err("db instance to be deleted", t.database)(e.to_string()))?;
    Ok(deleted(&o.physical, true))
}

async fn wait_cluster(x: &Ctx<'_>, ident: &str) -> Result<(), Error> {
    use aws_sdk_rds::client::Waiters;
    let t = x.opts.timeouts.database;
    x.c.rds
        .wait_until_db_cluster_available()
        .db_cluster_identifier(ident)
        .wait(t)
        .await
        .map_err(|e| waiter_err("db cluster to become available", t)(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn a_later_minor_of_the_same_major_covers_the_configured_version() {
        assert!(covers("16.6", "16.6"));
        assert!(covers("16.8", "16.6"));
        assert!(covers("16.10", "16.9"), "numbers, not text");
        assert!(!covers("16.4", "16.6"), "an older minor is upgraded");
        assert!(!covers("17.4", "16.6"), "another major is a change");
        assert!(!covers("16.6", "17.4"));
        assert!(covers("16.6.limitless", "16.6.limitless"));
        assert!(!covers("16.6.limitless", "16.6"));
    }
}
