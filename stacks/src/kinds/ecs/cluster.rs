//! The ECS cluster (Container Insights from the config), found by its configured name.

use std::collections::BTreeMap;

use super::tags::{ecs_tags, observed_tags};
use crate::aws::{absent, err as aws, Clients};
use crate::config::Config;
use crate::family::build::Builder;
use crate::family::ctx::{deleted, Ctx};
use crate::family::found::{must_own, Sink};
use crate::family::Created;
use crate::kinds::account::{retry_while_role_not_ready, PROPAGATION_PAUSES};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::Error;

/// The cluster.
pub(super) fn desired(b: &mut Builder<'_>) {
    let c = &b.cfg.compute;
    b.add(
        Kind::EcsCluster,
        "ecs/cluster",
        c.cluster_name.clone(),
        props([
            ("name", Val::Str(c.cluster_name.clone())),
            ("container_insights", Val::str("enabled")),
        ]),
        Props::new(),
    );
}

/// The cluster, if it exists (one under our name without our tags is a conflict). Returns whether an active
/// cluster of ours exists.
pub(super) async fn observe(c: &Clients, cfg: &Config, sink: &mut Sink<'_>) -> Result<bool, Error> {
    use aws_sdk_ecs::types::ClusterField;
    let cluster_name = &cfg.compute.cluster_name;
    let clusters = c
        .ecs
        .describe_clusters()
        .clusters(cluster_name)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .map_err(crate::aws::err("ecs:DescribeClusters"))?;
    let mut ours = false;
    for cl in clusters.clusters() {
        if cl.status() != Some("ACTIVE") {
            continue;
        }
        let tags = observed_tags(cl.tags());
        let name = cl.cluster_name().unwrap_or_default();
        must_own(cfg, Kind::EcsCluster, name, &tags)?;
        ours = true;
        let insights = cl
            .settings()
            .iter()
            .find(|s| s.name().map(|n| n.as_str()) == Some("containerInsights"))
            .and_then(|s| s.value())
            .unwrap_or("disabled");
        sink.push(
            Kind::EcsCluster,
            name,
            cl.cluster_arn().map(str::to_string),
            tags,
            props([
                ("name", Val::str(name)),
                ("container_insights", Val::str(insights)),
            ]),
            "active",
            BTreeMap::new(),
        );
    }
    Ok(ours)
}

pub(super) async fn create_ecs_cluster(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    let name = x.prop(d, "name")?;
    let r = c
        .ecs
        .create_cluster()
        .cluster_name(&name)
        .settings(
            aws_sdk_ecs::types::ClusterSetting::builder()
                .name(aws_sdk_ecs::types::ClusterSettingName::ContainerInsights)
                .value(x.prop(d, "container_insights")?)
                .build(),
        )
        .set_tags(Some(ecs_tags(&d.tags)));
    // a fresh account's first cluster can fail until the ECS service-linked role is usable
    let r = retry_while_role_not_ready(&PROPAGATION_PAUSES, || r.clone().send())
        .await
        .map_err(aws("ecs:CreateCluster"))?;
    let mut aux = BTreeMap::new();
    if let Some(a) = r.cluster().and_then(|c| c.cluster_arn()) {
        aux.insert("arn".into(), a.to_string());
    }
    Ok((name, aux))
}

pub(super) async fn update_ecs_cluster(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    if changed("container_insights") {
        c.ecs
            .update_cluster()
            .cluster(&o.physical)
            .settings(
                aws_sdk_ecs::types::ClusterSetting::builder()
                    .name(aws_sdk_ecs::types::ClusterSettingName::ContainerInsights)
                    .value(x.prop(d, "container_insights")?)
                    .build(),
            )
            .send()
            .await
            .map_err(aws("ecs:UpdateCluster"))?;
    }
    Ok(())
}

pub(super) async fn delete_ecs_cluster(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let r = absent(
        "ecs:DeleteCluster",
        c.ecs.delete_cluster().cluster(&o.physical).send(),
        |e| e.is_cluster_not_found_exception(),
    )
    .await?;
    Ok(deleted(&o.physical, r.is_some()))
}
