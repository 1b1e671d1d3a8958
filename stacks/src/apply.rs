//! Apply: carry out a plan's changes in order (creates/updates forward, deletes in reverse dependency order),
//! each kind knowing how to create, update (sending only the changed fields) and delete (tolerating "already
//! gone"). Every wait is a SDK waiter or a polled predicate under an explicit timeout. Re-runnable: a partial
//! apply leaves tagged resources that the next observation finds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, IpPermission, IpRange, ResourceType, TagSpecification,
    UserIdGroupPair, VpcAttributeName,
};
use rand::Rng;

use crate::aws::{ec2_is_duplicate, ec2_is_not_found, AwsError, Clients};
use crate::config::Config;
use crate::model::{Desired, Kind, Observed, ResId, Val};
use crate::plan::{field_map, Action, Change, Plan};
use crate::Error;

/// Emulator gaps the engine must step around (off against AWS). Each is documented in
/// `shared/reference/aws-emulator.md` and named where the tests switch it on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quirks {
    /// ElastiCache deletes stay `deleting` for ever: treat `deleting` as gone.
    pub elasticache_delete_never_finishes: bool,
    /// `DeleteCacheSubnetGroup` is not implemented (HTTP 500): skip it with a warning.
    pub cache_subnet_group_delete_unimplemented: bool,
    /// An ECS service's deployment list is never refreshed (rollout state and task definition stay as
    /// created): judge a service steady by its counts and its task definition only.
    pub ecs_deployments_not_refreshed: bool,
}

impl Quirks {
    /// The gaps of moto 5.2.5.
    pub fn moto() -> Self {
        Quirks {
            elasticache_delete_never_finishes: true,
            cache_subnet_group_delete_unimplemented: true,
            ecs_deployments_not_refreshed: true,
        }
    }
}

/// How long to wait for one resource to become ready or gone.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub network: Duration,
    pub database: Duration,
    pub cache: Duration,
    /// An ECS service deployment to reach a steady state.
    pub service: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            network: Duration::from_secs(10 * 60),
            database: Duration::from_secs(45 * 60),
            cache: Duration::from_secs(45 * 60),
            service: crate::compute::apply::SERVICE_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Destroy: turn deletion protection off first.
    pub force: bool,
    pub quirks: Quirks,
    pub timeouts: Timeouts,
}

/// Progress of an apply, one resource at a time (the CLI draws it).
pub trait Progress: Send + Sync {
    fn start(&self, change: &Change);
    fn finish(&self, change: &Change, outcome: Result<&str, &Error>);
}

/// Progress that shows nothing.
pub struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: &Change) {}
    fn finish(&self, _: &Change, _: Result<&str, &Error>) {}
}

use crate::aws::err as aws;

fn ec2_tag_spec(rt: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
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

/// Generates a secret value: letters and digits only (safe in URLs, env files and as a Redis AUTH token).
pub fn generate_secret(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Polls `check` with backoff until it returns true, under `timeout`.
pub(crate) async fn poll_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Error>>,
{
    let fut = async {
        let mut delay = Duration::from_millis(200);
        loop {
            if check().await? {
                return Ok(());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(15));
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Error::Timeout {
            what: what.to_string(),
            timeout,
        })?
}

pub(crate) fn waiter_err(what: &str, timeout: Duration) -> impl Fn(String) -> Error + '_ {
    move |detail| Error::WaitFailed {
        what: what.to_string(),
        timeout,
        detail,
    }
}

/// Carries out changes.
pub struct Applier<'a> {
    pub(crate) c: &'a Clients,
    pub(crate) cfg: &'a Config,
    desired: HashMap<&'a ResId, &'a Desired>,
    observed: HashMap<(ResId, String), &'a Observed>,
    /// physical ids known so far (and `id#attr` attributes), updated as resources are created
    live: HashMap<ResId, String>,
    pub(crate) opts: ApplyOptions,
}

impl<'a> Applier<'a> {
    pub fn new(
        c: &'a Clients,
        cfg: &'a Config,
        desired: &'a [Desired],
        observed: &'a [Observed],
        opts: ApplyOptions,
    ) -> Self {
        let (primary, _) = crate::plan::index_observed(observed);
        let mut live: HashMap<ResId, String> = primary
            .iter()
            .map(|(k, o)| (k.clone(), o.physical.clone()))
            .collect();
        for (k, o) in &primary {
            for (a, v) in &o.aux {
                live.insert(ResId(format!("{k}#{a}")), v.clone());
            }
        }
        Applier {
            c,
            cfg,
            desired: desired.iter().map(|d| (&d.id, d)).collect(),
            observed: observed
                .iter()
                .map(|o| ((o.id.clone(), o.physical.clone()), o))
                .collect(),
            live,
            opts,
        }
    }

    pub(crate) fn resolve(&self, v: &Val) -> Result<String, Error> {
        crate::plan::render(v, &|id| self.live.get(id).cloned())
            .ok_or_else(|| Error::Internal(format!("a reference in {v:?} is not created yet")))
    }

    pub(crate) fn resolve_set(&self, v: Option<&Val>) -> Result<Vec<String>, Error> {
        match v {
            Some(Val::Set(items)) => items.iter().map(|i| self.resolve(i)).collect(),
            Some(other) => Ok(vec![self.resolve(other)?]),
            None => Ok(Vec::new()),
        }
    }

    pub(crate) fn prop(&self, d: &Desired, k: &str) -> Result<String, Error> {
        let v = d
            .props
            .get(k)
            .or_else(|| d.create_only.get(k))
            .ok_or_else(|| Error::Internal(format!("{} has no property {k}", d.id)))?;
        self.resolve(v)
    }

    pub(crate) fn flag(d: &Desired, k: &str) -> bool {
        d.props.get(k).and_then(Val::as_bool).unwrap_or(false)
    }

    /// Runs every pending change of `plan` in order, reporting progress; stops at the first failure.
    pub async fn run(&mut self, plan: &Plan, progress: &dyn Progress) -> Result<(), Error> {
        for ch in plan.pending() {
            progress.start(ch);
            let r = Box::pin(self.one(ch)).await;
            match &r {
                Ok(msg) => progress.finish(ch, Ok(msg)),
                Err(e) => progress.finish(ch, Err(e)),
            }
            r.map_err(|e| Error::Apply {
                id: ch.id.clone(),
                action: ch.action,
                source: Box::new(e),
            })?;
        }
        Ok(())
    }

    async fn one(&mut self, ch: &Change) -> Result<String, Error> {
        let observed = ch
            .physical
            .as_ref()
            .and_then(|p| self.observed.get(&(ch.id.clone(), p.clone())).copied());
        match ch.action {
            Action::NoOp => Ok("unchanged".into()),
            Action::Create => {
                let d = self.desired_of(&ch.id)?;
                let phys = self.create_recorded(d).await?;
                Ok(format!("created {phys}"))
            }
            Action::Update => {
                let d = self.desired_of(&ch.id)?;
                let o =
                    observed.ok_or_else(|| Error::Internal(format!("{} not observed", ch.id)))?;
                Box::pin(self.update(d, o, ch)).await?;
                Ok(format!("updated {}", o.physical))
            }
            Action::Replace => {
                let d = self.desired_of(&ch.id)?;
                let o =
                    observed.ok_or_else(|| Error::Internal(format!("{} not observed", ch.id)))?;
                if d.kind == Kind::TaskDefinition {
                    // create before delete: a new revision, then the old ones retired
                    let phys = self.create_recorded(d).await?;
                    let retired = Box::pin(self.retire_revisions(o, &phys)).await?;
                    return Ok(format!("registered {phys}; {retired}"));
                }
                Box::pin(self.delete(o)).await?;
                let phys = self.create_recorded(d).await?;
                Ok(format!("replaced {} with {phys}", o.physical))
            }
            Action::Delete => {
                let o =
                    observed.ok_or_else(|| Error::Internal(format!("{} not observed", ch.id)))?;
                let msg = Box::pin(self.delete(o)).await?;
                if self.live.get(&ch.id) == Some(&o.physical) {
                    self.live.remove(&ch.id);
                }
                Ok(msg)
            }
        }
    }

    /// Creates `d` and records its physical id and attributes for the references that follow.
    async fn create_recorded(&mut self, d: &Desired) -> Result<String, Error> {
        let (phys, aux) = Box::pin(self.create(d)).await?;
        self.live.insert(d.id.clone(), phys.clone());
        for (a, v) in aux {
            self.live.insert(ResId(format!("{}#{a}", d.id)), v);
        }
        Ok(phys)
    }

    fn desired_of(&self, id: &ResId) -> Result<&'a Desired, Error> {
        self.desired
            .get(id)
            .copied()
            .ok_or_else(|| Error::Internal(format!("{id} is not desired")))
    }

    /// Creates a resource; returns its physical id and the attributes other resources refer to.
    async fn create(&self, d: &Desired) -> Result<(String, BTreeMap<String, String>), Error> {
        if d.kind >= Kind::EcrRepository {
            return Box::pin(self.create_compute(d)).await;
        }
        let phys = Box::pin(self.create_base(d)).await?;
        let mut aux = BTreeMap::new();
        match d.kind {
            Kind::DbCluster => {
                let r = self
                    .c
                    .rds
                    .describe_db_clusters()
                    .db_cluster_identifier(&phys)
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
            }
            Kind::ReplicationGroup => {
                let r = self
                    .c
                    .elasticache
                    .describe_replication_groups()
                    .replication_group_id(&phys)
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
            }
            _ => {}
        }
        Ok((phys, aux))
    }

    async fn create_base(&self, d: &Desired) -> Result<String, Error> {
        let c = self.c;
        let t = self.opts.timeouts;
        match d.kind {
            Kind::Secret => {
                let len = d
                    .create_only
                    .get("length")
                    .and_then(Val::as_int)
                    .unwrap_or(40) as usize;
                let r = c
                    .secrets
                    .create_secret()
                    .name(self.prop(d, "name")?)
                    .description(self.prop(d, "description")?)
                    .secret_string(generate_secret(len))
                    .set_tags(Some(
                        d.tags
                            .iter()
                            .map(|(k, v)| {
                                aws_sdk_secretsmanager::types::Tag::builder()
                                    .key(k)
                                    .value(v)
                                    .build()
                            })
                            .collect(),
                    ))
                    .send()
                    .await
                    .map_err(aws("secretsmanager:CreateSecret"))?;
                Ok(r.arn().unwrap_or_default().to_string())
            }
            Kind::Vpc => {
                let r = c
                    .ec2
                    .create_vpc()
                    .cidr_block(self.prop(d, "cidr_block")?)
                    .tag_specifications(ec2_tag_spec(ResourceType::Vpc, &d.tags))
                    .send()
                    .await
                    .map_err(aws("ec2:CreateVpc"))?;
                let id = r
                    .vpc()
                    .and_then(|v| v.vpc_id())
                    .unwrap_or_default()
                    .to_string();
                use aws_sdk_ec2::client::Waiters;
                c.ec2
                    .wait_until_vpc_available()
                    .vpc_ids(&id)
                    .wait(t.network)
                    .await
                    .map_err(|e| waiter_err("vpc to become available", t.network)(e.to_string()))?;
                // AWS defaults: DNS support on, hostnames off; send only what differs
                if !Self::flag(d, "enable_dns_support") {
                    self.vpc_attr(&id, VpcAttributeName::EnableDnsSupport, false)
                        .await?;
                }
                if Self::flag(d, "enable_dns_hostnames") {
                    self.vpc_attr(&id, VpcAttributeName::EnableDnsHostnames, true)
                        .await?;
                }
                Ok(id)
            }
            Kind::Subnet => {
                let r = c
                    .ec2
                    .create_subnet()
                    .vpc_id(self.prop(d, "vpc")?)
                    .cidr_block(self.prop(d, "cidr_block")?)
                    .availability_zone(self.prop(d, "availability_zone")?)
                    .tag_specifications(ec2_tag_spec(ResourceType::Subnet, &d.tags))
                    .send()
                    .await
                    .map_err(aws("ec2:CreateSubnet"))?;
                let id = r
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .unwrap_or_default()
                    .to_string();
                if Self::flag(d, "map_public_ip_on_launch") {
                    self.subnet_public(&id, true).await?;
                }
                Ok(id)
            }
            Kind::InternetGateway => {
                let r = c
                    .ec2
                    .create_internet_gateway()
                    .tag_specifications(ec2_tag_spec(ResourceType::InternetGateway, &d.tags))
                    .send()
                    .await
                    .map_err(aws("ec2:CreateInternetGateway"))?;
                let id = r
                    .internet_gateway()
                    .and_then(|g| g.internet_gateway_id())
                    .unwrap_or_default()
                    .to_string();
                c.ec2
                    .attach_internet_gateway()
                    .internet_gateway_id(&id)
                    .vpc_id(self.prop(d, "vpc")?)
                    .send()
                    .await
                    .map_err(aws("ec2:AttachInternetGateway"))?;
                Ok(id)
            }
            Kind::ElasticIp => {
                let r = c
                    .ec2
                    .allocate_address()
                    .domain(DomainType::Vpc)
                    .tag_specifications(ec2_tag_spec(ResourceType::ElasticIp, &d.tags))
                    .send()
                    .await
                    .map_err(aws("ec2:AllocateAddress"))?;
                Ok(r.allocation_id().unwrap_or_default().to_string())
            }
            Kind::NatGateway => {
                let r = c
                    .ec2
                    .create_nat_gateway()
                    .subnet_id(self.prop(d, "subnet")?)
                    .allocation_id(self.prop(d, "allocation")?)
                    .tag_specifications(ec2_tag_spec(ResourceType::Natgateway, &d.tags))
                    .send()
                    .await
                    .map_err(aws("ec2:CreateNatGateway"))?;
                let id = r
                    .nat_gateway()
                    .and_then(|n| n.nat_gateway_id())
                    .unwrap_or_default()
                    .to_string();
                use aws_sdk_ec2::client::Waiters;
                c.ec2
                    .wait_until_nat_gateway_available()
                    .nat_gateway_ids(&id)
                    .wait(t.network)
                    .await
                    .map_err(|e| {
                        waiter_err("nat gateway to become available", t.network)(e.to_string())
                    })?;
                Ok(id)
            }
            Kind::RouteTable => {
                let r = c
                    .ec2
                    .create_route_table()
                    .vpc_id(self.prop(d, "vpc")?)
                    .tag_specifications(ec2_tag_spec(ResourceType::RouteTable, &d.tags))
                    .send()
                    .await
                    .map_err(aws("ec2:CreateRouteTable"))?;
                let id = r
                    .route_table()
                    .and_then(|t| t.route_table_id())
                    .unwrap_or_default()
                    .to_string();
                for (k, v) in &d.props {
                    if let Some(dest) = k.strip_prefix("route:") {
                        self.route(&id, dest, &self.resolve(v)?, false).await?;
                    }
                }
                for sn in self.resolve_set(d.props.get("subnets"))? {
                    self.associate(&id, &sn).await?;
                }
                Ok(id)
            }
            Kind::SecurityGroup => {
                let r = c
                    .ec2
                    .create_security_group()
                    .group_name(self.prop(d, "group_name")?)
                    .description(self.prop(d, "description")?)
                    .vpc_id(self.prop(d, "vpc")?)
                    .tag_specifications(ec2_tag_spec(ResourceType::SecurityGroup, &d.tags))
                    .send()
                    .await
                    .map_err(aws("ec2:CreateSecurityGroup"))?;
                let id = r.group_id().unwrap_or_default().to_string();
                if !Self::flag(d, "egress_all") {
                    self.egress_all(&id, false).await?;
                }
                Ok(id)
            }
            Kind::SecurityGroupRule => self.authorize_rule(d).await,
            Kind::DbSubnetGroup => {
                let name = self.prop(d, "name")?;
                c.rds
                    .create_db_subnet_group()
                    .db_subnet_group_name(&name)
                    .db_subnet_group_description(self.prop(d, "description")?)
                    .set_subnet_ids(Some(self.resolve_set(d.props.get("subnets"))?))
                    .set_tags(Some(rds_tags(&d.tags)))
                    .send()
                    .await
                    .map_err(aws("rds:CreateDBSubnetGroup"))?;
                Ok(name)
            }
            Kind::DbClusterParameterGroup => {
                let name = self.prop(d, "name")?;
                c.rds
                    .create_db_cluster_parameter_group()
                    .db_cluster_parameter_group_name(&name)
                    .db_parameter_group_family(self.prop(d, "family")?)
                    .description(self.prop(d, "description")?)
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
                self.set_parameters(&name, &params).await?;
                Ok(name)
            }
            Kind::DbCluster => {
                let ident = self.prop(d, "identifier")?;
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
                    .engine(self.prop(d, "engine")?)
                    .engine_version(self.prop(d, "engine_version")?)
                    .database_name(self.prop(d, "database_name")?)
                    .port(d.props.get("port").and_then(Val::as_int).unwrap_or(5432) as i32)
                    .master_username(self.prop(d, "master_username")?)
                    .manage_master_user_password(Self::flag(d, "manage_master_user_password"))
                    .storage_encrypted(Self::flag(d, "storage_encrypted"))
                    .db_subnet_group_name(self.prop(d, "db_subnet_group")?)
                    .set_vpc_security_group_ids(Some(
                        self.resolve_set(d.props.get("security_groups"))?,
                    ))
                    .serverless_v2_scaling_configuration(scaling)
                    .deletion_protection(Self::flag(d, "deletion_protection"))
                    .backup_retention_period(
                        d.props
                            .get("backup_retention_days")
                            .and_then(Val::as_int)
                            .unwrap_or(7) as i32,
                    )
                    .copy_tags_to_snapshot(true)
                    .set_tags(Some(rds_tags(&d.tags)));
                if d.props.contains_key("parameter_group") {
                    req = req.db_cluster_parameter_group_name(self.prop(d, "parameter_group")?);
                }
                req.send().await.map_err(aws("rds:CreateDBCluster"))?;
                self.wait_cluster(&ident).await?;
                Ok(ident)
            }
            Kind::DbInstance => {
                let ident = self.prop(d, "identifier")?;
                c.rds
                    .create_db_instance()
                    .db_instance_identifier(&ident)
                    .db_cluster_identifier(self.prop(d, "cluster")?)
                    .engine(self.prop(d, "engine")?)
                    .db_instance_class(self.prop(d, "instance_class")?)
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
                    .map_err(|e| {
                        waiter_err("db instance to become available", t.database)(e.to_string())
                    })?;
                Ok(ident)
            }
            Kind::CacheSubnetGroup => {
                let name = self.prop(d, "name")?;
                c.elasticache
                    .create_cache_subnet_group()
                    .cache_subnet_group_name(&name)
                    .cache_subnet_group_description(self.prop(d, "description")?)
                    .set_subnet_ids(Some(self.resolve_set(d.props.get("subnets"))?))
                    .set_tags(Some(ec_tags(&d.tags)))
                    .send()
                    .await
                    .map_err(aws("elasticache:CreateCacheSubnetGroup"))?;
                Ok(name)
            }
            Kind::ReplicationGroup => {
                let ident = self.prop(d, "identifier")?;
                let token = c
                    .secrets
                    .get_secret_value()
                    .secret_id(self.prop(d, "auth_token_secret")?)
                    .send()
                    .await
                    .map_err(aws("secretsmanager:GetSecretValue"))?
                    .secret_string()
                    .unwrap_or_default()
                    .to_string();
                c.elasticache
                    .create_replication_group()
                    .replication_group_id(&ident)
                    .replication_group_description(self.prop(d, "description")?)
                    .engine(self.prop(d, "engine")?)
                    .engine_version(self.prop(d, "engine_version")?)
                    .cache_node_type(self.prop(d, "node_type")?)
                    .num_cache_clusters(
                        d.props
                            .get("num_cache_clusters")
                            .and_then(Val::as_int)
                            .unwrap_or(1) as i32,
                    )
                    .automatic_failover_enabled(Self::flag(d, "automatic_failover"))
                    .multi_az_enabled(Self::flag(d, "multi_az"))
                    .transit_encryption_enabled(Self::flag(d, "transit_encryption"))
                    .at_rest_encryption_enabled(Self::flag(d, "at_rest_encryption"))
                    .auth_token(token)
                    .cache_subnet_group_name(self.prop(d, "cache_subnet_group")?)
                    .set_security_group_ids(Some(
                        self.resolve_set(d.create_only.get("security_groups"))?,
                    ))
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
                        waiter_err("redis replication group to become available", t.cache)(
                            e.to_string(),
                        )
                    })?;
                Ok(ident)
            }
            other => Err(Error::Internal(format!(
                "{other} is created by the compute tier"
            ))),
        }
    }

    async fn update(&self, d: &Desired, o: &Observed, ch: &Change) -> Result<(), Error> {
        let c = self.c;
        let f = field_map(ch);
        let changed = |k: &str| f.contains_key(k);
        // tags first: cheap and independent
        let tags: BTreeMap<String, String> = ch
            .fields
            .iter()
            .filter_map(|fc| Some((fc.field.strip_prefix("tags.")?.to_string(), fc.new.clone()?)))
            .collect();
        if !tags.is_empty() {
            self.tag(o, &tags).await?;
        }
        match d.kind {
            Kind::Vpc => {
                for (k, a) in [
                    ("enable_dns_support", VpcAttributeName::EnableDnsSupport),
                    ("enable_dns_hostnames", VpcAttributeName::EnableDnsHostnames),
                ] {
                    if changed(k) {
                        self.vpc_attr(&o.physical, a, Self::flag(d, k)).await?;
                    }
                }
            }
            Kind::Subnet => {
                if changed("map_public_ip_on_launch") {
                    self.subnet_public(&o.physical, Self::flag(d, "map_public_ip_on_launch"))
                        .await?;
                }
            }
            Kind::InternetGateway => {
                if changed("vpc") {
                    if let Some(old) = o.props.get("vpc").and_then(Val::as_str) {
                        c.ec2
                            .detach_internet_gateway()
                            .internet_gateway_id(&o.physical)
                            .vpc_id(old)
                            .send()
                            .await
                            .map_err(aws("ec2:DetachInternetGateway"))?;
                    }
                    c.ec2
                        .attach_internet_gateway()
                        .internet_gateway_id(&o.physical)
                        .vpc_id(self.prop(d, "vpc")?)
                        .send()
                        .await
                        .map_err(aws("ec2:AttachInternetGateway"))?;
                }
            }
            Kind::RouteTable => {
                for fc in &ch.fields {
                    let Some(dest) = fc.field.strip_prefix("route:") else {
                        continue;
                    };
                    match d.props.get(&fc.field) {
                        Some(v) => {
                            self.route(&o.physical, dest, &self.resolve(v)?, fc.old.is_some())
                                .await?
                        }
                        None => {
                            c.ec2
                                .delete_route()
                                .route_table_id(&o.physical)
                                .destination_cidr_block(dest)
                                .send()
                                .await
                                .map_err(aws("ec2:DeleteRoute"))?;
                        }
                    }
                }
                if changed("subnets") {
                    let want: BTreeSet<String> = self
                        .resolve_set(d.props.get("subnets"))?
                        .into_iter()
                        .collect();
                    let have: BTreeSet<String> = o
                        .aux
                        .keys()
                        .filter_map(|k| k.strip_prefix("assoc:").map(str::to_string))
                        .collect();
                    for sn in have.difference(&want) {
                        c.ec2
                            .disassociate_route_table()
                            .association_id(&o.aux[&format!("assoc:{sn}")])
                            .send()
                            .await
                            .map_err(aws("ec2:DisassociateRouteTable"))?;
                    }
                    for sn in want.difference(&have) {
                        self.associate(&o.physical, sn).await?;
                    }
                }
            }
            Kind::SecurityGroup => {
                if changed("egress_all") {
                    self.egress_all(&o.physical, Self::flag(d, "egress_all"))
                        .await?;
                }
            }
            Kind::DbSubnetGroup => {
                if changed("subnets") {
                    // NB the emulator's ModifyDBSubnetGroup deletes the group (aws-emulator.md); AWS does not
                    c.rds
                        .modify_db_subnet_group()
                        .db_subnet_group_name(&o.physical)
                        .set_subnet_ids(Some(self.resolve_set(d.props.get("subnets"))?))
                        .send()
                        .await
                        .map_err(aws("rds:ModifyDBSubnetGroup"))?;
                }
            }
            Kind::DbClusterParameterGroup => {
                let mut set = Vec::new();
                let mut reset = Vec::new();
                for fc in &ch.fields {
                    let Some(p) = fc.field.strip_prefix("parameter:") else {
                        continue;
                    };
                    match &fc.new {
                        Some(v) => set.push((p.to_string(), v.clone())),
                        None => reset.push(p.to_string()),
                    }
                }
                self.set_parameters(&o.physical, &set).await?;
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
                                        .apply_method(
                                            aws_sdk_rds::types::ApplyMethod::PendingReboot,
                                        )
                                        .build()
                                })
                                .collect(),
                        ))
                        .send()
                        .await
                        .map_err(aws("rds:ResetDBClusterParameterGroup"))?;
                }
            }
            Kind::DbCluster => {
                let mut req = c
                    .rds
                    .modify_db_cluster()
                    .db_cluster_identifier(&o.physical)
                    .apply_immediately(true);
                let mut any = false;
                if changed("engine_version") {
                    let new = self.prop(d, "engine_version")?;
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
                    req =
                        req.port(d.props.get("port").and_then(Val::as_int).unwrap_or(5432) as i32);
                    any = true;
                }
                if changed("security_groups") {
                    req = req.set_vpc_security_group_ids(Some(
                        self.resolve_set(d.props.get("security_groups"))?,
                    ));
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
                    req = req.deletion_protection(Self::flag(d, "deletion_protection"));
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
                    req = req.db_cluster_parameter_group_name(self.prop(d, "parameter_group")?);
                    any = true;
                }
                if changed("manage_master_user_password") {
                    req = req
                        .manage_master_user_password(Self::flag(d, "manage_master_user_password"));
                    any = true;
                }
                if any {
                    req.send().await.map_err(aws("rds:ModifyDBCluster"))?;
                    self.wait_cluster(&o.physical).await?;
                }
            }
            Kind::DbInstance => {
                if changed("instance_class") {
                    c.rds
                        .modify_db_instance()
                        .db_instance_identifier(&o.physical)
                        .db_instance_class(self.prop(d, "instance_class")?)
                        .apply_immediately(true)
                        .send()
                        .await
                        .map_err(aws("rds:ModifyDBInstance"))?;
                }
            }
            Kind::CacheSubnetGroup => {
                if changed("subnets") {
                    c.elasticache
                        .modify_cache_subnet_group()
                        .cache_subnet_group_name(&o.physical)
                        .set_subnet_ids(Some(self.resolve_set(d.props.get("subnets"))?))
                        .send()
                        .await
                        .map_err(aws("elasticache:ModifyCacheSubnetGroup"))?;
                }
            }
            Kind::ReplicationGroup => Box::pin(self.update_redis(d, o, ch)).await?,
            Kind::Secret | Kind::ElasticIp | Kind::NatGateway | Kind::SecurityGroupRule => {}
            _ => Box::pin(self.update_compute(d, o, ch)).await?,
        }
        Ok(())
    }

    async fn update_redis(&self, d: &Desired, o: &Observed, ch: &Change) -> Result<(), Error> {
        let c = self.c;
        let f = field_map(ch);
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
            .any(|k| f.contains_key(k));
        let modify = || async {
            let mut req = c
                .elasticache
                .modify_replication_group()
                .replication_group_id(&o.physical)
                .apply_immediately(true);
            if f.contains_key("node_type") {
                req = req.cache_node_type(self.prop(d, "node_type")?);
            }
            if f.contains_key("automatic_failover") {
                req = req.automatic_failover_enabled(Self::flag(d, "automatic_failover"));
            }
            if f.contains_key("multi_az") {
                req = req.multi_az_enabled(Self::flag(d, "multi_az"));
            }
            req.send()
                .await
                .map_err(aws("elasticache:ModifyReplicationGroup"))?;
            self.wait_redis(&o.physical).await
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
            self.wait_redis(&o.physical).await?;
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
            self.wait_redis(&o.physical).await?;
        }
        Ok(())
    }

    /// Deletes an observed resource; "already gone" is success.
    pub async fn delete(&self, o: &Observed) -> Result<String, Error> {
        let c = self.c;
        let t = self.opts.timeouts;
        let gone = || Ok(format!("deleted {}", o.physical));
        let already = || Ok(format!("{} was already gone", o.physical));
        macro_rules! ec2_try {
            ($op:literal, $fut:expr) => {
                match $fut.await {
                    Ok(_) => {}
                    Err(e) if e.as_service_error().is_some_and(ec2_is_not_found) => {
                        return already()
                    }
                    Err(e) => return Err(Error::Aws(AwsError::new($op, &e))),
                }
            };
        }
        if o.kind >= Kind::EcrRepository {
            return Box::pin(self.delete_compute(o)).await;
        }
        match o.kind {
            Kind::Secret => {
                let mut req = c.secrets.delete_secret().secret_id(&o.physical);
                req = if self.cfg.production {
                    req.recovery_window_in_days(7)
                } else {
                    req.force_delete_without_recovery(true)
                };
                match req.send().await {
                    Ok(_) => gone(),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        already()
                    }
                    Err(e) => Err(Error::Aws(AwsError::new("secretsmanager:DeleteSecret", &e))),
                }
            }
            Kind::Vpc => {
                ec2_try!(
                    "ec2:DeleteVpc",
                    c.ec2.delete_vpc().vpc_id(&o.physical).send()
                );
                gone()
            }
            Kind::Subnet => {
                ec2_try!(
                    "ec2:DeleteSubnet",
                    c.ec2.delete_subnet().subnet_id(&o.physical).send()
                );
                gone()
            }
            Kind::InternetGateway => {
                if let Some(vpc) = o.props.get("vpc").and_then(Val::as_str) {
                    ec2_try!(
                        "ec2:DetachInternetGateway",
                        c.ec2
                            .detach_internet_gateway()
                            .internet_gateway_id(&o.physical)
                            .vpc_id(vpc)
                            .send()
                    );
                }
                ec2_try!(
                    "ec2:DeleteInternetGateway",
                    c.ec2
                        .delete_internet_gateway()
                        .internet_gateway_id(&o.physical)
                        .send()
                );
                gone()
            }
            Kind::ElasticIp => {
                ec2_try!(
                    "ec2:ReleaseAddress",
                    c.ec2.release_address().allocation_id(&o.physical).send()
                );
                gone()
            }
            Kind::NatGateway => {
                ec2_try!(
                    "ec2:DeleteNatGateway",
                    c.ec2
                        .delete_nat_gateway()
                        .nat_gateway_id(&o.physical)
                        .send()
                );
                use aws_sdk_ec2::client::Waiters;
                c.ec2
                    .wait_until_nat_gateway_deleted()
                    .nat_gateway_ids(&o.physical)
                    .wait(t.network)
                    .await
                    .map_err(|e| {
                        waiter_err("nat gateway to be deleted", t.network)(e.to_string())
                    })?;
                gone()
            }
            Kind::RouteTable => {
                for (k, assoc) in &o.aux {
                    if k.starts_with("assoc:") {
                        ec2_try!(
                            "ec2:DisassociateRouteTable",
                            c.ec2
                                .disassociate_route_table()
                                .association_id(assoc)
                                .send()
                        );
                    }
                }
                ec2_try!(
                    "ec2:DeleteRouteTable",
                    c.ec2
                        .delete_route_table()
                        .route_table_id(&o.physical)
                        .send()
                );
                gone()
            }
            Kind::SecurityGroup => {
                // a load balancer's or task's network interfaces linger a while after it is deleted: retry
                // while the group is still in use (DependencyViolation)
                let id = o.physical.clone();
                let was_gone = std::sync::atomic::AtomicBool::new(false);
                let was_gone_ref = &was_gone;
                poll_until("security group to be released", t.network, || {
                    let id = id.clone();
                    async move {
                        match c.ec2.delete_security_group().group_id(&id).send().await {
                            Ok(_) => Ok(true),
                            Err(e) if e.as_service_error().is_some_and(ec2_is_not_found) => {
                                was_gone_ref.store(true, std::sync::atomic::Ordering::Relaxed);
                                Ok(true)
                            }
                            Err(e)
                                if e.as_service_error().and_then(|s| crate::aws::ec2_code(s))
                                    == Some("DependencyViolation") =>
                            {
                                Ok(false)
                            }
                            Err(e) => Err(Error::Aws(AwsError::new("ec2:DeleteSecurityGroup", &e))),
                        }
                    }
                })
                .await?;
                if was_gone.load(std::sync::atomic::Ordering::Relaxed) {
                    already()
                } else {
                    gone()
                }
            }
            Kind::SecurityGroupRule => {
                // by rule id: the emulator cannot revoke a source-group rule with a description by its permission
                let group = o
                    .props
                    .get("group")
                    .and_then(Val::as_str)
                    .unwrap_or_default();
                if o.props.get("direction").and_then(Val::as_str) == Some("egress") {
                    ec2_try!(
                        "ec2:RevokeSecurityGroupEgress",
                        c.ec2
                            .revoke_security_group_egress()
                            .group_id(group)
                            .security_group_rule_ids(&o.physical)
                            .send()
                    );
                } else {
                    ec2_try!(
                        "ec2:RevokeSecurityGroupIngress",
                        c.ec2
                            .revoke_security_group_ingress()
                            .group_id(group)
                            .security_group_rule_ids(&o.physical)
                            .send()
                    );
                }
                gone()
            }
            Kind::DbSubnetGroup => match c
                .rds
                .delete_db_subnet_group()
                .db_subnet_group_name(&o.physical)
                .send()
                .await
            {
                Ok(_) => gone(),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_db_subnet_group_not_found_fault()) =>
                {
                    already()
                }
                Err(e) => Err(Error::Aws(AwsError::new("rds:DeleteDBSubnetGroup", &e))),
            },
            Kind::DbClusterParameterGroup => match c
                .rds
                .delete_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(&o.physical)
                .send()
                .await
            {
                Ok(_) => gone(),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_db_parameter_group_not_found_fault()) =>
                {
                    already()
                }
                Err(e) => Err(Error::Aws(AwsError::new(
                    "rds:DeleteDBClusterParameterGroup",
                    &e,
                ))),
            },
            Kind::DbCluster => {
                if o.props.get("deletion_protection").and_then(Val::as_bool) == Some(true) {
                    if !self.opts.force {
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
                req = if self.cfg.production {
                    let stamp = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    req.final_db_snapshot_identifier(format!("{}-final-{stamp}", o.physical))
                } else {
                    req.skip_final_snapshot(true)
                };
                match req.send().await {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
                    {
                        return already()
                    }
                    Err(e) => return Err(Error::Aws(AwsError::new("rds:DeleteDBCluster", &e))),
                }
                use aws_sdk_rds::client::Waiters;
                c.rds
                    .wait_until_db_cluster_deleted()
                    .db_cluster_identifier(&o.physical)
                    .wait(t.database)
                    .await
                    .map_err(|e| {
                        waiter_err("db cluster to be deleted", t.database)(e.to_string())
                    })?;
                gone()
            }
            Kind::DbInstance => {
                match c
                    .rds
                    .delete_db_instance()
                    .db_instance_identifier(&o.physical)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
                    {
                        return already()
                    }
                    Err(e) => return Err(Error::Aws(AwsError::new("rds:DeleteDBInstance", &e))),
                }
                use aws_sdk_rds::client::Waiters;
                c.rds
                    .wait_until_db_instance_deleted()
                    .db_instance_identifier(&o.physical)
                    .wait(t.database)
                    .await
                    .map_err(|e| {
                        waiter_err("db instance to be deleted", t.database)(e.to_string())
                    })?;
                gone()
            }
            Kind::CacheSubnetGroup => {
                if self.opts.quirks.cache_subnet_group_delete_unimplemented {
                    return Ok(format!(
                        "kept {} (emulator cannot delete cache subnet groups)",
                        o.physical
                    ));
                }
                match c
                    .elasticache
                    .delete_cache_subnet_group()
                    .cache_subnet_group_name(&o.physical)
                    .send()
                    .await
                {
                    Ok(_) => gone(),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_cache_subnet_group_not_found_fault()) =>
                    {
                        already()
                    }
                    Err(e) => Err(Error::Aws(AwsError::new(
                        "elasticache:DeleteCacheSubnetGroup",
                        &e,
                    ))),
                }
            }
            Kind::ReplicationGroup => {
                match c
                    .elasticache
                    .delete_replication_group()
                    .replication_group_id(&o.physical)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_replication_group_not_found_fault()) =>
                    {
                        return already()
                    }
                    Err(e) => {
                        return Err(Error::Aws(AwsError::new(
                            "elasticache:DeleteReplicationGroup",
                            &e,
                        )))
                    }
                }
                let id = o.physical.clone();
                let accept_deleting = self.opts.quirks.elasticache_delete_never_finishes;
                poll_until("redis replication group to be deleted", t.cache, || {
                    let id = id.clone();
                    async move {
                        match c
                            .elasticache
                            .describe_replication_groups()
                            .replication_group_id(&id)
                            .send()
                            .await
                        {
                            Ok(o) => Ok(accept_deleting
                                && o.replication_groups()
                                    .iter()
                                    .all(|g| g.status() == Some("deleting"))),
                            Err(e)
                                if e.as_service_error()
                                    .is_some_and(|s| s.is_replication_group_not_found_fault()) =>
                            {
                                Ok(true)
                            }
                            Err(e) => Err(Error::Aws(AwsError::new(
                                "elasticache:DescribeReplicationGroups",
                                &e,
                            ))),
                        }
                    }
                })
                .await?;
                gone()
            }
            other => Err(Error::Internal(format!(
                "{other} is deleted by the compute tier"
            ))),
        }
    }

    async fn tag(&self, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        let c = self.c;
        if o.kind >= Kind::EcrRepository {
            return Box::pin(self.tag_compute(o, tags)).await;
        }
        match o.kind {
            Kind::Secret => {
                c.secrets
                    .tag_resource()
                    .secret_id(&o.physical)
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| {
                                aws_sdk_secretsmanager::types::Tag::builder()
                                    .key(k)
                                    .value(v)
                                    .build()
                            })
                            .collect(),
                    ))
                    .send()
                    .await
                    .map_err(aws("secretsmanager:TagResource"))?;
            }
            Kind::DbSubnetGroup
            | Kind::DbClusterParameterGroup
            | Kind::DbCluster
            | Kind::DbInstance => {
                c.rds
                    .add_tags_to_resource()
                    .resource_name(o.arn.clone().unwrap_or_default())
                    .set_tags(Some(rds_tags(tags)))
                    .send()
                    .await
                    .map_err(aws("rds:AddTagsToResource"))?;
            }
            Kind::CacheSubnetGroup | Kind::ReplicationGroup => {
                c.elasticache
                    .add_tags_to_resource()
                    .resource_name(o.arn.clone().unwrap_or_default())
                    .set_tags(Some(ec_tags(tags)))
                    .send()
                    .await
                    .map_err(aws("elasticache:AddTagsToResource"))?;
            }
            _ => {
                c.ec2
                    .create_tags()
                    .resources(&o.physical)
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| {
                                aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()
                            })
                            .collect(),
                    ))
                    .send()
                    .await
                    .map_err(aws("ec2:CreateTags"))?;
            }
        }
        Ok(())
    }

    async fn vpc_attr(&self, vpc: &str, a: VpcAttributeName, on: bool) -> Result<(), Error> {
        let v = AttributeBooleanValue::builder().value(on).build();
        let mut req = self.c.ec2.modify_vpc_attribute().vpc_id(vpc);
        req = match a {
            VpcAttributeName::EnableDnsSupport => req.enable_dns_support(v),
            _ => req.enable_dns_hostnames(v),
        };
        req.send().await.map_err(aws("ec2:ModifyVpcAttribute"))?;
        Ok(())
    }

    async fn subnet_public(&self, subnet: &str, on: bool) -> Result<(), Error> {
        self.c
            .ec2
            .modify_subnet_attribute()
            .subnet_id(subnet)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
            .send()
            .await
            .map_err(aws("ec2:ModifySubnetAttribute"))?;
        Ok(())
    }

    async fn route(&self, rt: &str, dest: &str, target: &str, replace: bool) -> Result<(), Error> {
        let ec2 = &self.c.ec2;
        if replace {
            let mut req = ec2
                .replace_route()
                .route_table_id(rt)
                .destination_cidr_block(dest);
            req = if target.starts_with("nat-") {
                req.nat_gateway_id(target)
            } else {
                req.gateway_id(target)
            };
            req.send().await.map_err(aws("ec2:ReplaceRoute"))?;
        } else {
            let mut req = ec2
                .create_route()
                .route_table_id(rt)
                .destination_cidr_block(dest);
            req = if target.starts_with("nat-") {
                req.nat_gateway_id(target)
            } else {
                req.gateway_id(target)
            };
            match req.send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(ec2_is_duplicate) => {
                    return Box::pin(self.route(rt, dest, target, true)).await
                }
                Err(e) => return Err(Error::Aws(AwsError::new("ec2:CreateRoute", &e))),
            }
        }
        Ok(())
    }

    async fn associate(&self, rt: &str, subnet: &str) -> Result<(), Error> {
        self.c
            .ec2
            .associate_route_table()
            .route_table_id(rt)
            .subnet_id(subnet)
            .send()
            .await
            .map_err(aws("ec2:AssociateRouteTable"))?;
        Ok(())
    }

    /// Authorizes one ingress or egress rule (TCP, one port, a group or a CIDR as its peer) with its tags, and
    /// returns the rule's id.
    async fn authorize_rule(&self, d: &Desired) -> Result<String, Error> {
        let port = d.props.get("port").and_then(Val::as_int).unwrap_or(0) as i32;
        let desc = self.prop(d, "description")?;
        let peer = self.prop(d, "peer")?;
        let perm = IpPermission::builder()
            .ip_protocol(self.prop(d, "protocol")?)
            .from_port(port)
            .to_port(port);
        let perm = match d.props.get("peer") {
            Some(Val::Ref(_)) => perm.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(peer)
                    .description(desc)
                    .build(),
            ),
            _ => perm.ip_ranges(IpRange::builder().cidr_ip(peer).description(desc).build()),
        }
        .build();
        let group = self.prop(d, "group")?;
        let tags = ec2_tag_spec(ResourceType::SecurityGroupRule, &d.tags);
        let ec2 = &self.c.ec2;
        let rules = if self.prop(d, "direction")? == "egress" {
            ec2.authorize_security_group_egress()
                .group_id(group)
                .ip_permissions(perm)
                .tag_specifications(tags)
                .send()
                .await
                .map_err(aws("ec2:AuthorizeSecurityGroupEgress"))?
                .security_group_rules
        } else {
            ec2.authorize_security_group_ingress()
                .group_id(group)
                .ip_permissions(perm)
                .tag_specifications(tags)
                .send()
                .await
                .map_err(aws("ec2:AuthorizeSecurityGroupIngress"))?
                .security_group_rules
        };
        Ok(rules
            .unwrap_or_default()
            .first()
            .and_then(|r| r.security_group_rule_id())
            .unwrap_or_default()
            .to_string())
    }

    async fn egress_all(&self, sg: &str, allow: bool) -> Result<(), Error> {
        let perm = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        if allow {
            self.c
                .ec2
                .authorize_security_group_egress()
                .group_id(sg)
                .ip_permissions(perm)
                .send()
                .await
                .map_err(aws("ec2:AuthorizeSecurityGroupEgress"))?;
        } else {
            self.c
                .ec2
                .revoke_security_group_egress()
                .group_id(sg)
                .ip_permissions(perm)
                .send()
                .await
                .map_err(aws("ec2:RevokeSecurityGroupEgress"))?;
        }
        Ok(())
    }

    async fn set_parameters(&self, group: &str, params: &[(String, String)]) -> Result<(), Error> {
        if params.is_empty() {
            return Ok(());
        }
        self.c
            .rds
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

    async fn wait_cluster(&self, ident: &str) -> Result<(), Error> {
        use aws_sdk_rds::client::Waiters;
        let t = self.opts.timeouts.database;
        self.c
            .rds
            .wait_until_db_cluster_available()
            .db_cluster_identifier(ident)
            .wait(t)
            .await
            .map_err(|e| waiter_err("db cluster to become available", t)(e.to_string()))?;
        Ok(())
    }

    async fn wait_redis(&self, ident: &str) -> Result<(), Error> {
        use aws_sdk_elasticache::client::Waiters;
        let t = self.opts.timeouts.cache;
        self.c
            .elasticache
            .wait_until_replication_group_available()
            .replication_group_id(ident)
            .wait(t)
            .await
            .map_err(|e| {
                waiter_err("redis replication group to become available", t)(e.to_string())
            })?;
        Ok(())
    }
}
