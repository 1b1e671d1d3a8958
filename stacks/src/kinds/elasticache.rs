//! ElastiCache Redis: the cache subnet group and the replication group (AUTH token from the platform secret,
//! TLS and encryption at rest on). Found by name; a name without our tags is a conflict.

use std::collections::BTreeMap;

use crate::aws::{absent, err as aws, AwsError, Clients};
use crate::config::Config;
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{deleted, poll_until, waiter_err, Ctx};
use crate::family::found::{must_own, named, s, Sink};
use crate::family::{not_ours, Created, Family};
use crate::kinds::network::private_subnet_group;
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Val};
use crate::reach;
use crate::Error;

/// The cache subnet group and the replication group.
pub fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let prefix = cfg.prefix();
    private_subnet_group(
        b,
        inputs,
        (Kind::CacheSubnetGroup, "cache-subnet-group"),
        format!("{prefix}-redis"),
        "supactl: redis private subnets",
    );
    let rg = format!("{prefix}-redis");
    b.add(
        Kind::ReplicationGroup,
        "redis",
        rg.clone(),
        props([
            ("identifier", Val::Str(rg)),
            ("engine", Val::str("redis")),
            ("node_type", Val::Str(cfg.redis.node_type.clone())),
            ("num_cache_clusters", Val::Int(cfg.redis.nodes as i64)),
            (
                "automatic_failover",
                Val::Bool(cfg.redis.automatic_failover()),
            ),
            ("multi_az", Val::Bool(cfg.redis.multi_az)),
            ("transit_encryption", Val::Bool(true)),
            ("at_rest_encryption", Val::Bool(true)),
            ("auth_token_enabled", Val::Bool(true)),
        ]),
        props([
            // DescribeReplicationGroups has no engine version, subnet group or security groups (they are on the
            // member clusters, which the emulator does not list): set on create only
            ("cache_subnet_group", Val::r("cache-subnet-group")),
            ("security_groups", Val::Set(vec![Val::r("sg/redis")])),
            ("engine_version", Val::str("7.1")),
            ("port", Val::Int(reach::REDIS_PORT)),
            ("auth_token_secret", Val::r("secret/redis-auth-token")),
            ("description", Val::str("supactl: redis key cache")),
        ]),
    );
}

fn observed_tags(tags: &[aws_sdk_elasticache::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

async fn ec_list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, Error> {
    Ok(observed_tags(
        c.elasticache
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|err| Error::Aws(AwsError::new("elasticache:ListTagsForResource", &err)))?
            .tag_list(),
    ))
}

/// Cache subnet groups, by name.
async fn observe_subnet_groups(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    for d in named(desired, Kind::CacheSubnetGroup) {
        let groups = absent(
            "elasticache:DescribeCacheSubnetGroups",
            c.elasticache
                .describe_cache_subnet_groups()
                .cache_subnet_group_name(&d.name)
                .send(),
            |e| e.is_cache_subnet_group_not_found_fault(),
        )
        .await?
        .and_then(|o| o.cache_subnet_groups);
        for g in groups.unwrap_or_default() {
            let arn = g.arn().unwrap_or_default().to_string();
            let tags = ec_list_tags(c, &arn).await?;
            must_own(cfg, Kind::CacheSubnetGroup, &d.name, &tags)?;
            sink.push(
                Kind::CacheSubnetGroup,
                g.cache_subnet_group_name().unwrap_or_default(),
                Some(arn),
                tags,
                props([
                    ("name", s(g.cache_subnet_group_name())),
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
                "available",
                BTreeMap::new(),
            );
        }
    }
    Ok(())
}

/// Replication groups, by name.
async fn observe_replication_groups(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    for d in named(desired, Kind::ReplicationGroup) {
        let groups = absent(
            "elasticache:DescribeReplicationGroups",
            c.elasticache
                .describe_replication_groups()
                .replication_group_id(&d.name)
                .send(),
            |e| e.is_replication_group_not_found_fault(),
        )
        .await?
        .and_then(|o| o.replication_groups);
        for g in groups.unwrap_or_default() {
            let state = g.status().unwrap_or("");
            // a group being deleted is going away (the emulator never finishes deleting)
            if state == "deleting" {
                continue;
            }
            let arn = g.arn().unwrap_or_default().to_string();
            let tags = ec_list_tags(c, &arn).await?;
            must_own(cfg, Kind::ReplicationGroup, &d.name, &tags)?;
            use aws_sdk_elasticache::types::{AutomaticFailoverStatus, MultiAzStatus};
            let mut aux = BTreeMap::new();
            if let Some(ep) = g
                .node_groups()
                .iter()
                .find_map(|n| n.primary_endpoint())
                .and_then(|e| e.address())
            {
                aux.insert("endpoint".into(), ep.to_string());
            }
            sink.push(
                Kind::ReplicationGroup,
                g.replication_group_id().unwrap_or_default(),
                Some(arn),
                tags,
                props([
                    ("identifier", s(g.replication_group_id())),
                    ("engine", Val::str(g.engine().unwrap_or("redis"))),
                    ("node_type", s(g.cache_node_type())),
                    (
                        "num_cache_clusters",
                        Val::Int(g.member_clusters().len() as i64),
                    ),
                    (
                        "automatic_failover",
                        Val::Bool(matches!(
                            g.automatic_failover(),
                            Some(
                                AutomaticFailoverStatus::Enabled
                                    | AutomaticFailoverStatus::Enabling
                            )
                        )),
                    ),
                    (
                        "multi_az",
                        Val::Bool(matches!(g.multi_az(), Some(MultiAzStatus::Enabled))),
                    ),
                    (
                        "transit_encryption",
                        Val::Bool(g.transit_encryption_enabled().unwrap_or(false)),
                    ),
                    (
                        "at_rest_encryption",
                        Val::Bool(g.at_rest_encryption_enabled().unwrap_or(false)),
                    ),
                    (
                        "auth_token_enabled",
                        Val::Bool(g.auth_token_enabled().unwrap_or(false)),
                    ),
                ]),
                state,
                aux,
            );
        }
    }
    Ok(())
}

pub struct Elasticache;

impl Family for Elasticache {
    fn replaces(kind: Kind, field: &str) -> bool {
        let fields: &[&str] = match kind {
            Kind::CacheSubnetGroup => &["name"],
            Kind::ReplicationGroup => &[
                "identifier",
                "engine",
                "transit_encryption",
                "at_rest_encryption",
                "cache_subnet_group",
            ],
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
        observe_subnet_groups(c, cfg, desired, &mut sink).await?;
        observe_replication_groups(c, cfg, desired, &mut sink).await?;
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        match d.kind {
            Kind::CacheSubnetGroup => Ok((create_cache_subnet_group(x, d).await?, BTreeMap::new())),
            Kind::ReplicationGroup => {
                let phys = create_replication_group(x, d).await?;
                let aux = replication_group_attributes(x, &phys).await?;
                Ok((phys, aux))
            }
            other => Err(not_ours(other, "an elasticache")),
        }
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        match d.kind {
            Kind::CacheSubnetGroup => update_cache_subnet_group(x, d, o, fields).await,
            Kind::ReplicationGroup => update_redis(x, d, o, fields).await,
            other => Err(not_ours(other, "an elasticache")),
        }
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        x.c.elasticache
            .add_tags_to_resource()
            .resource_name(o.arn.clone().unwrap_or_default())
            .set_tags(Some(ec_tags(tags)))
            .send()
            .await
            .map_err(aws("elasticache:AddTagsToResource"))?;
        Ok(())
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::CacheSubnetGroup => delete_cache_subnet_group(x, o).await,
            Kind::ReplicationGroup => delete_replication_group(x, o).await,
            other => Err(not_ours(other, "an elasticache")),
        }
    }
}

/// What other resources refer to: the primary endpoint.
async fn replication_group_attributes(
    x: &Ctx<'_>,
    phys: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let mut aux = BTreeMap::new();
    let r =
        x.c.elasticache
            .describe_replication_groups()
            .replication_group_id(phys)
            .send()
            .await
            .map_err(aws("elasticache:DescribeReplicationGroups"))?;
    if let Some(e) = r
        .replication_groups()
        .first()
        .and_then(|g| g.node_groups().iter().find_map(|n| n.primary_endpoint()))
        .and_then(|e| e.address())
    {
        aux.insert("endpoint".to_string(), e.to_string());
    }
    Ok(aux)
}

async fn create_cache_subnet_group(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let name = x.prop(d, "name")?;
    c.elasticache
        .create_cache_subnet_group()
        .cache_subnet_group_name(&name)
        .cache_subnet_group_description(x.prop(d, "description")?)
        .set_subnet_ids(Some(x.resolve_set(d.props.get("subnets"))?))
        .set_tags(Some(ec_tags(&d.tags)))
        .send()
        .await
        .map_err(aws("elasticache:CreateCacheSubnetGroup"))?;
    Ok(name)
}

async fn update_cache_subnet_group(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    if changed("subnets") {
        c.elasticache
            .modify_cache_subnet_group()
            .cache_subnet_group_name(&o.physical)
            .set_subnet_ids(Some(x.resolve_set(d.props.get("subnets"))?))
            .send()
            .await
            .map_err(aws("elasticache:ModifyCacheSubnetGroup"))?;
    }
    Ok(())
}

async fn delete_cache_subnet_group(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    if x.opts.quirks.cache_subnet_group_delete_unimplemented {
        return Ok(format!(
            "kept {} (emulator cannot delete cache subnet groups)",
            o.physical
        ));
    }
    let call = c
        .elasticache
        .delete_cache_subnet_group()
        .cache_subnet_group_name(&o.physical)
        .send();
    let r = absent("elasticache:DeleteCacheSubnetGroup", call, |s| {
        s.is_cache_subnet_group_not_found_fault()
    })
    .await?;
    Ok(deleted(&o.physical, r.is_some()))
}

async fn create_replication_group(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    let ident = x.prop(d, "identifier")?;
    let token = c
        .secrets
        .get_secret_value()
        .secret_id(x.prop(d, "auth_token_secret")?)
        .send()
        .await
        .map_err(aws("secretsmanager:GetSecretValue"))?
        .secret_string()
        .unwrap_or_default()
        .to_string();
    c.elasticache
        .create_replication_group()
        .replication_group_id(&ident)
        .replication_group_description(x.prop(d, "description")?)
        .engine(x.prop(d, "engine")?)
        .engine_version(x.prop(d, "engine_version")?)
        .cache_node_type(x.prop(d, "node_type")?)
        .num_cache_clusters(
            d.props
                .get("num_cache_clusters")
                .and_then(Val::as_int)
                .unwrap_or(1) as i32,
        )
        .automatic_failover_enabled(Ctx::flag(d, "automatic_failover"))
        .multi_az_enabled(Ctx::flag(d, "multi_az"))
        .transit_encryption_enabled(Ctx::flag(d, "transit_encryption"))
        .at_rest_encryption_enabled(Ctx::flag(d, "at_rest_encryption"))
        .auth_token(token)
        .cache_subnet_group_name(x.prop(d, "cache_subnet_group")?)
        .set_security_group_ids(Some(x.resolve_set(d.create_only.get("security_groups"))?))
        .port(
            d.create_only
                .get("port")
                .and_then(Val::as_int)
                .unwrap_or(6379) as i32,
        )
        .set_tags(Some(ec_tags(&d.tags)))
        .send()
        .await
        .map_err(aws("elasticache:CreateReplicationGroup"))?;
    use aws_sdk_elasticache::client::Waiters;
    c.elasticache
        .wait_until_replication_group_available()
        .replication_group_id(&ident)
        .wait(t.cache)
        .await
        .map_err(|e| {
            waiter_err("redis replication group to become available", t.cache)(e.to_string())
        })?;
    Ok(ident)
}

async fn delete_replication_group(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    if absent(
        "elasticache:DeleteReplicationGroup",
        c.elasticache
            .delete_replication_group()
            .replication_group_id(&o.physical)
            .send(),
        |s| s.is_replication_group_not_found_fault(),
    )
    .await?
    .is_none()
    {
        return Ok(deleted(&o.physical, false));
    }
    let id = o.physical.clone();
    let accept_deleting = x.opts.quirks.elasticache_delete_never_finishes;
    poll_until("redis replication group to be deleted", t.cache, || {
        let id = id.clone();
        async move {
            let call = c
                .elasticache
                .describe_replication_groups()
                .replication_group_id(&id)
                .send();
            let found = absent("elasticache:DescribeReplicationGroups", call, |s| {
                s.is_replication_group_not_found_fault()
            })
            .await?;
            Ok(found.is_none_or(|o| {
                accept_deleting
                    && o.replication_groups()
                        .iter()
                        .all(|g| g.status() == Some("deleting"))
            }))
        }
    })
    .await?;
    Ok(deleted(&o.physical, true))
}

/// Waits until the replication group is available again.
async fn wait_redis(x: &Ctx<'_>, ident: &str) -> Result<(), Error> {
    use aws_sdk_elasticache::client::Waiters;
    let t = x.opts.timeouts.cache;
    x.c.elasticache
        .wait_until_replication_group_available()
        .replication_group_id(ident)
        .wait(t)
        .await
        .map_err(|e| waiter_err("redis replication group to become available", t)(e.to_string()))?;
    Ok(())
}

async fn update_redis(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    let want_nodes = d
        .props
        .get("num_cache_clusters")
        .and_then(Val::as_int)
        .unwrap_or(1);
    let have_nodes = o
        .props
        .get("num_cache_clusters")
        .and_then(Val::as_int)
        .unwrap_or(1);
    let modify_needed = ["node_type", "automatic_failover", "multi_az"]
        .iter()
        .any(|k| changed(k));
    let modify = || async {
        let mut req = c
            .elasticache
            .modify_replication_group()
            .replication_group_id(&o.physical)
            .apply_immediately(true);
        if changed("node_type") {
            req = req.cache_node_type(x.prop(d, "node_type")?);
        }
        if changed("automatic_failover") {
            req = req.automatic_failover_enabled(Ctx::flag(d, "automatic_failover"));
        }
        if changed("multi_az") {
            req = req.multi_az_enabled(Ctx::flag(d, "multi_az"));
        }
        req.send()
            .await
            .map_err(aws("elasticache:ModifyReplicationGroup"))?;
        wait_redis(x, &o.physical).await
    };
    // failover needs ≥ 2 nodes: grow before turning it on, turn it off before shrinking
    if want_nodes > have_nodes {
        c.elasticache
            .increase_replica_count()
            .replication_group_id(&o.physical)
            .new_replica_count((want_nodes - 1) as i32)
            .apply_immediately(true)
            .send()
            .await
            .map_err(aws("elasticache:IncreaseReplicaCount"))?;
        wait_redis(x, &o.physical).await?;
    }
    if modify_needed {
        modify().await?;
    }
    if want_nodes < have_nodes {
        c.elasticache
            .decrease_replica_count()
            .replication_group_id(&o.physical)
            .new_replica_count((want_nodes - 1) as i32)
            .apply_immediately(true)
            .send()
            .await
            .map_err(aws("elasticache:DecreaseReplicaCount"))?;
        wait_redis(x, &o.physical).await?;
    }
    Ok(())
}

fn ec_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_elasticache::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_elasticache::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}
