//! ECS: the cluster ([`cluster`]), a task definition per service ([`task`]) and the services ([`service`]).
//! Found by the names the config gives them; one under our name without our tags is a conflict.

pub mod cluster;
pub mod service;
mod tags;
pub mod task;

use std::collections::BTreeMap;

pub use task::{family, injected_secrets};

use crate::aws::{err as aws, Clients};
use crate::config::Config;
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::Ctx;
use crate::family::found::Sink;
use crate::family::{Created, Family};
use crate::model::{Desired, FieldChange, Kind, Observed};
use crate::Error;

/// The cluster (created early: Cloud Map and the load balancers do not need it, the services do).
pub fn desired_cluster(b: &mut Builder<'_>) {
    cluster::desired(b);
}

/// The task definitions and services (created last: they need the roles, the log group, the target groups
/// and the discovery services).
pub fn desired_workloads(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    task::desired(b, inputs);
    service::desired(b, inputs);
}

pub struct Ecs;

impl Family for Ecs {
    fn replaces(kind: Kind, field: &str) -> bool {
        match kind {
            Kind::EcsCluster => field == "name",
            // every field: a task definition revision is immutable (a change registers a new one)
            Kind::TaskDefinition => true,
            _ => ["name", "cluster", "launch_type"].contains(&field),
        }
    }

    fn creates_before_replacing(kind: Kind) -> bool {
        // a new revision first, then the old ones retired: the services never point at nothing
        kind == Kind::TaskDefinition
    }

    async fn observe(
        c: &Clients,
        cfg: &Config,
        desired: &[Desired],
    ) -> Result<Vec<Observed>, Error> {
        let mut sink = Sink::new(cfg);
        let cluster_owned = cluster::observe(c, cfg, &mut sink).await?;
        task::observe(c, cfg, desired, &mut sink).await?;
        if cluster_owned {
            service::observe(c, cfg, &mut sink).await?;
        }
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        match d.kind {
            Kind::EcsCluster => cluster::create_ecs_cluster(x, d).await,
            Kind::TaskDefinition => task::register_task_definition(x, d).await,
            _ => service::create_service(x, d).await,
        }
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        match d.kind {
            Kind::EcsCluster => cluster::update_ecs_cluster(x, d, o, fields).await,
            // every change replaces a task definition (a new revision)
            Kind::TaskDefinition => Ok(()),
            _ => service::update_ecs_service(x, d, o, fields).await,
        }
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        x.c.ecs
            .tag_resource()
            .resource_arn(o.arn_or_physical())
            .set_tags(Some(tags::ecs_tags(tags)))
            .send()
            .await
            .map_err(aws("ecs:TagResource"))?;
        Ok(())
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::EcsCluster => cluster::delete_ecs_cluster(x, o).await,
            Kind::TaskDefinition => task::delete_task_definition(x, o).await,
            _ => service::delete_ecs_service(x, o).await,
        }
    }

    async fn retire(x: &Ctx<'_>, o: &Observed, new: &str) -> Result<String, Error> {
        task::retire_revisions(x, o, new).await
    }
}
