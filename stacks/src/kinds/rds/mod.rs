//! Aurora Serverless v2: the DB subnet group, the cluster parameter groups (logical replication), the
//! platform and worker clusters and their instances. RDS cannot filter by tag: what the config names is
//! described by name, clusters and instances are listed and kept when they carry our tags. Subnet and
//! parameter groups: [`groups`]; clusters and instances: [`cluster`].
//!
//! A parameter group belongs to one engine family, so its name and logical id carry the family: a major
//! upgrade (16 → 17) creates the new family's group first, switches the cluster to it in the same
//! `ModifyDBCluster` that upgrades the engine, and deletes the old group last (AWS refuses to delete a group
//! a cluster still uses).

pub mod cluster;
pub mod groups;
mod tags;

use std::collections::BTreeMap;

use crate::aws::{absent, err as aws, Clients};
use crate::config::{Config, DbConfig};
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{deleted, Ctx};
use crate::family::found::Sink;
use crate::family::{not_ours, Created, Family};
use crate::kinds::network::private_subnet_group;
use crate::model::{props, Desired, FieldChange, Kind, Observed, Val};
use crate::Error;

/// The subnet group, a parameter group per cluster with logical replication, and the two clusters.
pub fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let prefix = cfg.prefix();
    private_subnet_group(
        b,
        inputs,
        (Kind::DbSubnetGroup, "db-subnet-group"),
        format!("{prefix}-db"),
        "supactl: aurora private subnets",
    );
    for db in [&cfg.platform_db, &cfg.worker_db] {
        if db.logical_replication {
            let name = parameter_group_name(db);
            b.add(
                Kind::DbClusterParameterGroup,
                &parameter_group_id(db),
                name.clone(),
                props([
                    ("name", Val::Str(name)),
                    ("family", Val::Str(db.family.clone())),
                    ("parameter:rds.logical_replication", Val::str("1")),
                ]),
                props([(
                    "description",
                    Val::Str(format!("supactl: {} cluster parameters", db.role)),
                )]),
            );
        }
    }
    for db in [&cfg.platform_db, &cfg.worker_db] {
        cluster::desired(b, db);
    }
}

/// The prefix of every parameter group name of a cluster (`<cluster>-params`, then the family).
pub fn parameter_group_prefix(db: &DbConfig) -> String {
    format!("{}-params", db.cluster_identifier)
}

/// The cluster's parameter group for its engine family, e.g. `<cluster>-params-aurora-postgresql16`.
pub fn parameter_group_name(db: &DbConfig) -> String {
    format!("{}-{}", parameter_group_prefix(db), db.family)
}

/// The logical id of that group: `db-params/<role>/<family>`.
pub fn parameter_group_id(db: &DbConfig) -> String {
    format!("db-params/{}/{}", db.role, db.family)
}

pub struct Rds;

impl Family for Rds {
    fn replaces(kind: Kind, field: &str) -> bool {
        let fields: &[&str] = match kind {
            Kind::DbSubnetGroup => &["name"],
            Kind::DbClusterParameterGroup => &["name", "family"],
            Kind::DbCluster => &[
                "identifier",
                "engine",
                "database_name",
                "master_username",
                "storage_encrypted",
                "db_subnet_group",
            ],
            Kind::DbInstance => &["identifier", "cluster", "engine"],
            _ => &[],
        };
        fields.contains(&field)
    }

    async fn observe(
        c: &Clients,
        cfg: &Config,
        desired: &[Desired],
    ) -> Result<Vec<Observed>, Error> {
        let mut sink = Sink::new(cfg);
        groups::observe_subnet_groups(c, cfg, desired, &mut sink).await?;
        groups::observe_parameter_groups(c, cfg, desired, &mut sink).await?;
        cluster::observe_clusters(c, cfg, desired, &mut sink).await?;
        cluster::observe_instances(c, cfg, desired, &mut sink).await?;
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        match d.kind {
            Kind::DbSubnetGroup => {
                Ok((groups::create_db_subnet_group(x, d).await?, BTreeMap::new()))
            }
            Kind::DbClusterParameterGroup => Ok((
                groups::create_db_cluster_parameter_group(x, d).await?,
                BTreeMap::new(),
            )),
            Kind::DbCluster => {
                let phys = cluster::create_db_cluster(x, d).await?;
                let aux = cluster::cluster_attributes(x, &phys).await?;
                Ok((phys, aux))
            }
            Kind::DbInstance => Ok((cluster::create_db_instance(x, d).await?, BTreeMap::new())),
            other => Err(not_ours(other, "an rds")),
        }
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        match d.kind {
            Kind::DbSubnetGroup => groups::update_db_subnet_group(x, d, o, fields).await,
            Kind::DbClusterParameterGroup => {
                groups::update_db_cluster_parameter_group(x, o, fields).await
            }
            Kind::DbCluster => cluster::update_db_cluster(x, d, o, fields).await,
            Kind::DbInstance => cluster::update_db_instance(x, d, o, fields).await,
            other => Err(not_ours(other, "an rds")),
        }
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        x.c.rds
            .add_tags_to_resource()
            .resource_name(o.arn.clone().unwrap_or_default())
            .set_tags(Some(tags::rds_tags(tags)))
            .send()
            .await
            .map_err(aws("rds:AddTagsToResource"))?;
        Ok(())
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::DbSubnetGroup => {
                let req =
                    x.c.rds
                        .delete_db_subnet_group()
                        .db_subnet_group_name(&o.physical);
                let r = absent("rds:DeleteDBSubnetGroup", req.send(), |e| {
                    e.is_db_subnet_group_not_found_fault()
                })
                .await?;
                Ok(deleted(&o.physical, r.is_some()))
            }
            Kind::DbClusterParameterGroup => {
                let req =
                    x.c.rds
                        .delete_db_cluster_parameter_group()
                        .db_cluster_parameter_group_name(&o.physical);
                let r = absent("rds:DeleteDBClusterParameterGroup", req.send(), |e| {
                    e.is_db_parameter_group_not_found_fault()
                })
                .await?;
                Ok(deleted(&o.physical, r.is_some()))
            }
            Kind::DbCluster => cluster::delete_db_cluster(x, o).await,
            Kind::DbInstance => cluster::delete_db_instance(x, o).await,
            other => Err(not_ours(other, "an rds")),
        }
    }
}
