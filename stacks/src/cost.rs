//! The estimated monthly cost of a stack: one line per billable resource of the desired state, plus the
//! usage the stack implies but does not fix (NAT data, Aurora storage and I/O, Lambda, logs, the storage
//! bucket's bytes), priced from
//! the dated table `templates/pricing.json` for the stack's region with the assumptions written there.
//! Resources that cost nothing by themselves (VPC, subnets, route tables, security groups, IAM, Cloud Map
//! namespaces, target groups, gateway endpoints) are counted, not listed. Pure: no AWS call.

use crate::config::{Config, DbConfig};
use crate::model::{Desired, Kind, Val};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const PRICING: &str = include_str!("../../templates/pricing.json");

#[derive(Deserialize)]
struct Pricing {
    date: String,
    currency: String,
    hours_per_month: f64,
    regions: BTreeMap<String, String>,
    tables: BTreeMap<String, Prices>,
    assumptions: Assumptions,
}

#[derive(Deserialize)]
struct Prices {
    fargate_vcpu_hour: f64,
    fargate_gb_hour: f64,
    aurora_serverless_v2_acu_hour: f64,
    aurora_storage_gb_month: f64,
    aurora_io_million: f64,
    nat_gateway_hour: f64,
    nat_gateway_gb: f64,
    public_ipv4_hour: f64,
    alb_hour: f64,
    alb_lcu_hour: f64,
    lambda_gb_second: f64,
    lambda_million_requests: f64,
    logs_ingest_gb: f64,
    logs_stored_gb_month: f64,
    secret_month: f64,
    ecr_gb_month: f64,
    s3_standard_gb_month: f64,
    elasticache_node_hour: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct Assumptions {
    aurora_acu: String,
    aurora_storage_gb: f64,
    aurora_io_million: f64,
    nat_gb: f64,
    alb_lcu: f64,
    lambda_million_requests: f64,
    lambda_ms: f64,
    logs_ingest_gb: f64,
    logs_stored_gb: f64,
    ecr_gb: f64,
    storage_gb: f64,
}

/// One priced line: a resource of the plan (`ecs/gateway`) or a usage (`usage/nat-data`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CostLine {
    pub id: String,
    /// What is billed and how it was computed.
    pub basis: String,
    pub monthly: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Estimate {
    pub region: String,
    pub currency: String,
    /// The date of the price table.
    pub prices_of: String,
    pub lines: Vec<CostLine>,
    pub total_monthly: f64,
    /// Resources of the plan that cost nothing by themselves.
    pub free_resources: usize,
    pub assumptions: Vec<String>,
}

/// The estimate for `desired` in `region`, or why there is none (no prices for the region).
pub fn estimate(cfg: &Config, desired: &[Desired], region: &str) -> Result<Estimate, String> {
    let pricing: Pricing = serde_json::from_str(PRICING).expect("templates/pricing.json parses");
    let table = pricing
        .regions
        .get(region)
        .and_then(|t| pricing.tables.get(t))
        .ok_or_else(|| {
            format!(
                "no prices for region {region} in templates/pricing.json (it has {}): add them there",
                pricing.regions.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
    let c = Costing {
        cfg,
        p: table,
        a: &pricing.assumptions,
        h: pricing.hours_per_month,
    };
    let mut lines: Vec<CostLine> = desired.iter().filter_map(|d| c.resource(d)).collect();
    let free_resources = desired.len() - lines.len();
    lines.extend(c.usage(desired));
    let total_monthly = lines.iter().map(|l| l.monthly).sum();
    Ok(Estimate {
        region: region.to_string(),
        currency: pricing.currency,
        prices_of: pricing.date,
        lines,
        total_monthly,
        free_resources,
        assumptions: c.assumptions(),
    })
}

struct Costing<'a> {
    cfg: &'a Config,
    p: &'a Prices,
    a: &'a Assumptions,
    h: f64,
}

impl Costing<'_> {
    fn line(id: &str, basis: String, monthly: f64) -> Option<CostLine> {
        Some(CostLine {
            id: id.to_string(),
            basis,
            monthly,
        })
    }

    /// The line of a resource that is billed by the hour or the month, None when it is free.
    fn resource(&self, d: &Desired) -> Option<CostLine> {
        let (p, h, id) = (self.p, self.h, d.id.as_str());
        match d.kind {
            Kind::EcsService => {
                let s = self
                    .cfg
                    .compute
                    .services
                    .iter()
                    .find(|s| s.name == d.name)?;
                let tasks = s.desired_count.max(s.min_count) as f64;
                let (vcpu, gb) = (s.cpu as f64 / 1024.0, s.memory as f64 / 1024.0);
                let hourly = vcpu * p.fargate_vcpu_hour + gb * p.fargate_gb_hour;
                Self::line(
                    id,
                    format!("Fargate {tasks} task(s) × ({vcpu} vCPU, {gb} GB) × {h} h"),
                    tasks * hourly * h,
                )
            }
            Kind::DbInstance => {
                let db = self.db_of(d)?;
                Self::line(
                    id,
                    format!("Aurora Serverless v2 {} ACU (minimum) × {h} h", db.min_acu),
                    db.min_acu * p.aurora_serverless_v2_acu_hour * h,
                )
            }
            Kind::ReplicationGroup => {
                let node = self.cfg.redis.node_type.as_str();
                let nodes = self.cfg.redis.nodes as f64;
                let Some(rate) = p.elasticache_node_hour.get(node) else {
                    return Self::line(
                        id,
                        format!("{node}: no price in the table (not counted)"),
                        0.0,
                    );
                };
                Self::line(
                    id,
                    format!("ElastiCache {nodes} × {node} × {h} h"),
                    nodes * rate * h,
                )
            }
            Kind::NatGateway => {
                Self::line(id, format!("NAT gateway × {h} h"), p.nat_gateway_hour * h)
            }
            Kind::ElasticIp => Self::line(
                id,
                format!("public IPv4 address × {h} h"),
                p.public_ipv4_hour * h,
            ),
            Kind::LoadBalancer => {
                let lcu = self.a.alb_lcu;
                Self::line(
                    id,
                    format!("ALB × {h} h + {lcu} LCU × {h} h"),
                    (p.alb_hour + lcu * p.alb_lcu_hour) * h,
                )
            }
            Kind::Secret => Self::line(
                id,
                "Secrets Manager secret × 1 month".into(),
                p.secret_month,
            ),
            _ => None,
        }
    }

    /// Which configured database an Aurora instance belongs to (by its identifier's cluster prefix).
    fn db_of(&self, d: &Desired) -> Option<&DbConfig> {
        let ident = d.props.get("identifier").and_then(Val::as_str)?;
        [&self.cfg.platform_db, &self.cfg.worker_db]
            .into_iter()
            .find(|db| ident.starts_with(&format!("{}-", db.cluster_identifier)))
    }

    /// What the stack's use costs beyond its hours, at the assumed volumes.
    fn usage(&self, desired: &[Desired]) -> Vec<CostLine> {
        let (p, a) = (self.p, self.a);
        let count = |k: Kind| desired.iter().filter(|d| d.kind == k).count() as f64;
        let clusters = count(Kind::DbCluster);
        let lambda_gb = self.cfg.compute.rest.memory_mb as f64 / 1024.0;
        let lambda_seconds = a.lambda_million_requests * 1e6 * a.lambda_ms / 1000.0;
        let mut out = vec![
            CostLine {
                id: "usage/nat-data".into(),
                basis: format!("{} GB through NAT gateways", a.nat_gb),
                monthly: if count(Kind::NatGateway) > 0.0 {
                    a.nat_gb * p.nat_gateway_gb
                } else {
                    0.0
                },
            },
            CostLine {
                id: "usage/aurora-storage-io".into(),
                basis: format!(
                    "{clusters} cluster(s) × ({} GB storage + {} million I/O requests)",
                    a.aurora_storage_gb, a.aurora_io_million
                ),
                monthly: clusters
                    * (a.aurora_storage_gb * p.aurora_storage_gb_month
                        + a.aurora_io_million * p.aurora_io_million),
            },
            CostLine {
                id: "usage/logs".into(),
                basis: format!(
                    "CloudWatch Logs: {} GB ingested, {} GB stored",
                    a.logs_ingest_gb, a.logs_stored_gb
                ),
                monthly: a.logs_ingest_gb * p.logs_ingest_gb
                    + a.logs_stored_gb * p.logs_stored_gb_month,
            },
            CostLine {
                id: "usage/ecr".into(),
                basis: format!("{} GB of images in ECR", a.ecr_gb),
                monthly: a.ecr_gb * p.ecr_gb_month,
            },
        ];
        if count(Kind::StorageBucket) > 0.0 {
            out.push(CostLine {
                id: "usage/storage".into(),
                basis: format!(
                    "{} GB of objects in the storage bucket (S3 Standard)",
                    a.storage_gb
                ),
                monthly: a.storage_gb * p.s3_standard_gb_month,
            });
        }
        if self.cfg.compute.rest.mode == crate::config::RestMode::Lambda {
            out.push(CostLine {
                id: "usage/rest-lambda".into(),
                basis: format!(
                    "REST on Lambda: {} million requests × {} ms at {} MB",
                    a.lambda_million_requests, a.lambda_ms, self.cfg.compute.rest.memory_mb
                ),
                monthly: lambda_seconds * lambda_gb * p.lambda_gb_second
                    + a.lambda_million_requests * p.lambda_million_requests,
            });
        }
        out
    }

    fn assumptions(&self) -> Vec<String> {
        let a = self.a;
        vec![
            format!("{} h in a month; on-demand prices, no free tier or savings plans", self.h),
            format!("Aurora: {}", a.aurora_acu),
            "ECS services run their desiredCount (or minCount when autoscaled) tasks all month".into(),
            format!(
                "usage: {} GB through NAT, {} LCU per load balancer, {} million REST requests of {} ms, \
                 {} GB of logs ingested, {} GB stored in the storage bucket (its requests not counted)",
                a.nat_gb,
                a.alb_lcu,
                a.lambda_million_requests,
                a.lambda_ms,
                a.logs_ingest_gb,
                a.storage_gb
            ),
        ]
    }
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Estimated monthly cost ({}, {} prices of {}):",
            self.currency, self.region, self.prices_of
        )?;
        let width = self.lines.iter().map(|l| l.id.len()).max().unwrap_or(0);
        for l in &self.lines {
            writeln!(f, "  {:width$}  {:>10.2}  {}", l.id, l.monthly, l.basis)?;
        }
        writeln!(f, "  {:width$}  {:>10.2}", "total", self.total_monthly)?;
        writeln!(
            f,
            "  ({} other resources cost nothing by themselves)",
            self.free_resources
        )?;
        writeln!(f, "Assumptions:")?;
        for a in &self.assumptions {
            writeln!(f, "  - {a}")?;
        }
        Ok(())
    }
}
