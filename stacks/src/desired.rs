//! Desired state: the list of resources a validated [`Config`] asks for, in forward dependency order. Pure: the
//! only outside inputs ([`Inputs`]) are the region, its availability zones and the image digests resolved from
//! ECR. The compute tier's resources are added by [`crate::compute::desired`].

use std::collections::BTreeMap;

use crate::config::{Config, DbConfig};
use crate::model::{Desired, Kind, Props, ResId, Val, TAG_ENV, TAG_ID, TAG_STACK};
use crate::reach;

/// A platform secret and how its value is generated (once: a re-deploy never regenerates it).
pub struct SecretSpec {
    pub key: &'static str,
    pub description: &'static str,
    pub length: usize,
}

pub const SECRETS: &[SecretSpec] = &[
    SecretSpec {
        key: "admin-api-key",
        description: "tenant-manager admin API key",
        length: 40,
    },
    SecretSpec {
        key: "encryption-key",
        description: "key encrypting API keys, JWT secrets and project secrets at rest",
        length: 32,
    },
    SecretSpec {
        key: "service-token",
        description: "token the gateway uses on tenant-manager's internal config endpoint",
        length: 48,
    },
    SecretSpec {
        key: "redis-auth-token",
        description: "redis AUTH token",
        length: 40,
    },
];

/// Secrets Manager name of a platform secret.
pub fn secret_name(cfg: &Config, key: &str) -> String {
    format!("{}/{}/{}", cfg.name, cfg.environment, key)
}

/// What the desired state depends on besides the config.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The region's availability zones, sorted (the first `maxAzs` are used).
    pub azs: &'a [String],
    /// The region deployed to (ARNs, log configuration).
    pub region: &'a str,
    /// Image references by repository (`gateway`, `tenant-manager`, `rest-lambda`): `<uri>@sha256:…`.
    /// Missing entries render as an empty image (destroy needs only names).
    pub images: &'a BTreeMap<String, String>,
}

pub(crate) struct Builder<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) out: Vec<Desired>,
}

impl Builder<'_> {
    pub(crate) fn add(
        &mut self,
        kind: Kind,
        id: &str,
        name: String,
        props: Props,
        create_only: Props,
    ) {
        let mut tags = self.cfg.tags.clone();
        tags.insert("Name".into(), name.clone());
        tags.insert(TAG_STACK.into(), self.cfg.name.clone());
        tags.insert(TAG_ENV.into(), self.cfg.environment.clone());
        tags.insert(TAG_ID.into(), id.into());
        self.out.push(Desired {
            id: ResId::new(id),
            kind,
            name,
            props,
            create_only,
            tags,
        });
    }
}

pub(crate) fn props<const N: usize>(kv: [(&str, Val); N]) -> Props {
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Computes the desired resources of the stack.
pub fn desired(cfg: &Config, inputs: &Inputs<'_>) -> Vec<Desired> {
    let azs = inputs.azs;
    let mut b = Builder {
        cfg,
        out: Vec::new(),
    };
    let prefix = cfg.prefix();
    let n_az = cfg.vpc.max_azs.min(azs.len());

    for s in SECRETS {
        let name = secret_name(cfg, s.key);
        b.add(
            Kind::Secret,
            &format!("secret/{}", s.key),
            name.clone(),
            props([("name", Val::Str(name))]),
            props([
                ("description", Val::str(s.description)),
                ("length", Val::Int(s.length as i64)),
            ]),
        );
    }

    b.add(
        Kind::Vpc,
        "vpc",
        format!("{prefix}-vpc"),
        props([
            ("cidr_block", Val::Str(cfg.vpc.cidr.to_string())),
            ("enable_dns_support", Val::Bool(true)),
            ("enable_dns_hostnames", Val::Bool(true)),
        ]),
        Props::new(),
    );

    // CDK's layout: one public and one private subnet per AZ, equal blocks, public ones first.
    let slots = (2 * n_az).max(1).next_power_of_two();
    let bits = slots.trailing_zeros() as u8;
    let mask = cfg.vpc.cidr.prefix + bits;
    for (tier, offset, public) in [("public", 0, true), ("private", n_az, false)] {
        for (i, az) in azs.iter().take(n_az).enumerate() {
            b.add(
                Kind::Subnet,
                &format!("subnet/{tier}/{i}"),
                format!("{prefix}-{tier}-{az}"),
                props([
                    ("vpc", Val::r("vpc")),
                    (
                        "cidr_block",
                        Val::Str(cfg.vpc.cidr.subnet(mask, (offset + i) as u32).to_string()),
                    ),
                    ("availability_zone", Val::str(az.as_str())),
                    ("map_public_ip_on_launch", Val::Bool(public)),
                ]),
                Props::new(),
            );
        }
    }

    b.add(
        Kind::InternetGateway,
        "igw",
        format!("{prefix}-igw"),
        props([("vpc", Val::r("vpc"))]),
        Props::new(),
    );
    for i in 0..cfg.vpc.nat_gateways.min(n_az) {
        b.add(
            Kind::ElasticIp,
            &format!("eip/nat/{i}"),
            format!("{prefix}-nat-{i}"),
            props([("domain", Val::str("vpc"))]),
            Props::new(),
        );
    }
    for i in 0..cfg.vpc.nat_gateways.min(n_az) {
        b.add(
            Kind::NatGateway,
            &format!("nat/{i}"),
            format!("{prefix}-nat-{i}"),
            props([
                ("subnet", Val::Ref(ResId(format!("subnet/public/{i}")))),
                ("allocation", Val::Ref(ResId(format!("eip/nat/{i}")))),
            ]),
            Props::new(),
        );
    }

    let public_subnets = (0..n_az)
        .map(|i| Val::Ref(ResId(format!("subnet/public/{i}"))))
        .collect();
    b.add(
        Kind::RouteTable,
        "rt/public",
        format!("{prefix}-public"),
        props([
            ("vpc", Val::r("vpc")),
            ("route:0.0.0.0/0", Val::r("igw")),
            ("subnets", Val::Set(public_subnets)),
        ]),
        Props::new(),
    );
    let nats = cfg.vpc.nat_gateways.min(n_az);
    for (i, az) in azs.iter().take(n_az).enumerate() {
        let mut p = props([
            ("vpc", Val::r("vpc")),
            (
                "subnets",
                Val::Set(vec![Val::Ref(ResId(format!("subnet/private/{i}")))]),
            ),
        ]);
        if nats > 0 {
            // AZs without their own NAT gateway share one of the others' (CDK does the same)
            p.insert(
                "route:0.0.0.0/0".into(),
                Val::Ref(ResId(format!("nat/{}", i % nats))),
            );
        }
        b.add(
            Kind::RouteTable,
            &format!("rt/private/{i}"),
            format!("{prefix}-private-{az}"),
            p,
            Props::new(),
        );
    }

    add_security_groups(&mut b);

    let private_subnets: Vec<Val> = (0..n_az)
        .map(|i| Val::Ref(ResId(format!("subnet/private/{i}"))))
        .collect();
    let db_subnet_group = format!("{prefix}-db");
    b.add(
        Kind::DbSubnetGroup,
        "db-subnet-group",
        db_subnet_group.clone(),
        props([
            ("name", Val::Str(db_subnet_group)),
            ("subnets", Val::Set(private_subnets.clone())),
        ]),
        props([("description", Val::str("supactl: aurora private subnets"))]),
    );
    for db in [&cfg.platform_db, &cfg.worker_db] {
        if db.logical_replication {
            let name = format!("{}-params", db.cluster_identifier);
            b.add(
                Kind::DbClusterParameterGroup,
                &format!("db-params/{}", db.role),
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
        add_cluster(&mut b, db);
    }

    let cache_subnet_group = format!("{prefix}-redis");
    b.add(
        Kind::CacheSubnetGroup,
        "cache-subnet-group",
        cache_subnet_group.clone(),
        props([
            ("name", Val::Str(cache_subnet_group)),
            ("subnets", Val::Set(private_subnets)),
        ]),
        props([("description", Val::str("supactl: redis private subnets"))]),
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
    crate::compute::desired::add(&mut b, inputs);
    b.out
}

/// The security groups: one per part of the stack in the VPC ([`reach::members`]), with the rules derived from
/// what each part connects to ([`reach::edges`], declared in [`crate::compute::edges`]). Upstream's CDK matrix
/// (`upstream.md` §5) → here: KongSG → `gateway` (which also runs auth and, in service mode, REST: upstream's
/// AuthSG and a REST service group have no task here, so no group), LambdaSG → `rest-lambda` (lambda mode
/// only), RdsSG → `platform-db`, WorkerRdsSG → `worker-db`, RedisSG → `redis`, ALBSG → `alb`, StudioALBSG →
/// `admin-alb`, TenantManagerSG → `tenant-manager`. Dropped with their services: FunctionsSG, FunctionDeploySG,
/// PostgresMetaSG, StudioSG, EFS. Differences: the gateway (not only auth) reaches the worker cluster, since
/// auth and REST run in it; the platform database is reached by the tenant-manager only (Kong kept its own
/// store there); the tenant-manager reaches Redis to invalidate the gateway's key cache; Kong's admin port 8001
/// and its 8000 from the VPC's block have no consumer here; and egress is explicit on every group (upstream
/// kept AWS's allow-all on the services and the Lambda).
fn add_security_groups(b: &mut Builder<'_>) {
    let cfg = b.cfg;
    let prefix = cfg.prefix();
    for peer in reach::members(cfg) {
        let key = peer.group().expect("every member has a security group");
        let name = format!("{prefix}-{key}");
        b.add(
            Kind::SecurityGroup,
            &format!("sg/{key}"),
            name.clone(),
            props([
                ("vpc", Val::r("vpc")),
                ("group_name", Val::Str(name)),
                (
                    "description",
                    Val::Str(format!("supactl: {}", peer.description())),
                ),
                // egress is the explicit rules below: AWS's default allow-all rule is revoked
                ("egress_all", Val::Bool(false)),
            ]),
            Props::new(),
        );
    }
    for rule in reach::rules(&reach::edges(cfg)) {
        let peer = match rule.peer.group() {
            Some(_) => rule.peer.group_ref(),
            None => Val::str(reach::ANYWHERE),
        };
        let (key, word) = (rule.peer_key(), rule.direction.as_str());
        let name = match rule.direction {
            reach::Direction::Ingress => format!("{prefix}-{}-{}-{key}", rule.group, rule.port),
            reach::Direction::Egress => {
                format!("{prefix}-{}-{word}-{}-{key}", rule.group, rule.port)
            }
        };
        b.add(
            Kind::SecurityGroupRule,
            &rule.id(),
            name,
            props([
                ("group", Val::Ref(ResId(format!("sg/{}", rule.group)))),
                ("direction", Val::str(word)),
                ("protocol", Val::str("tcp")),
                ("port", Val::Int(rule.port)),
                ("peer", peer),
            ]),
            props([(
                "description",
                Val::Str(match rule.direction {
                    reach::Direction::Ingress => format!("from {key}"),
                    reach::Direction::Egress => format!("to {key}"),
                }),
            )]),
        );
    }
}

fn add_cluster(b: &mut Builder<'_>, db: &DbConfig) {
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
            Val::Ref(ResId(format!("db-params/{}", db.role))),
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
            ]),
            Props::new(),
        );
    }
}

/// Ownership tags to filter on.
pub fn ownership(cfg: &Config) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        (TAG_STACK, cfg.name.clone()),
        (TAG_ENV, cfg.environment.clone()),
    ])
}
