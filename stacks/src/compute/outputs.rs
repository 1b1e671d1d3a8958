//! What a deployed stack gives its operator (`supactl outputs`): URLs, the DNS records to create, endpoints,
//! secret ARNs, the REST Lambda role, the storage bucket and the image repositories.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::model::Observed;

use super::REPOSITORIES;
use crate::kinds::ecr::repository_uri;

/// A DNS record the operator creates (supactl does not manage the zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The load balancer's DNS name, when it exists.
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outputs {
    pub stack: String,
    pub environment: String,
    pub region: String,
    /// `https://{apiSubdomain}.{baseDomain}`.
    pub api_url: String,
    /// Every project's URL: `https://<ref>.{baseDomain}`.
    pub project_url_pattern: String,
    /// The tenant-manager's admin API (`/admin/v1/…`), on the admin load balancer only.
    pub admin_url: String,
    pub public_load_balancer_dns: Option<String>,
    pub admin_load_balancer_dns: Option<String>,
    pub dns_records: Vec<DnsRecord>,
    pub platform_db_endpoint: Option<String>,
    pub worker_db_endpoint: Option<String>,
    pub redis_endpoint: Option<String>,
    /// Secret ARNs by key (the platform secrets and the RDS-managed master secrets).
    pub secrets: BTreeMap<String, String>,
    pub rest_lambda_role_arn: Option<String>,
    /// Repository URI by image (`push` target; overrides from the config included).
    pub ecr_repositories: BTreeMap<String, String>,
    pub ecs_cluster: Option<String>,
    /// The storage bucket (the gateway's objects).
    pub storage_bucket: Option<String>,
}

/// Builds the outputs from what is deployed.
pub fn outputs(cfg: &Config, region: &str, observed: &[Observed]) -> Outputs {
    let by = |id: &str| observed.iter().find(|o| o.id.as_str() == id);
    let aux = |id: &str, k: &str| by(id).and_then(|o| o.aux.get(k).cloned());
    let c = &cfg.compute;
    let public = aux("alb/public", "dns_name");
    let admin = aux("alb/admin", "dns_name");
    let mut secrets = BTreeMap::new();
    for o in observed
        .iter()
        .filter(|o| o.kind == crate::model::Kind::Secret)
    {
        let key = o.id.as_str().trim_start_matches("secret/").to_string();
        secrets.insert(key, o.physical.clone());
    }
    for db in ["platform", "worker"] {
        if let Some(a) = aux(&format!("db/{db}"), "master_secret_arn") {
            secrets.insert(format!("{db}-db-master"), a);
        }
    }
    let mut ecr = BTreeMap::new();
    for image in REPOSITORIES {
        let own = by(&format!("ecr/{image}")).and_then(|o| o.aux.get("endpoint").cloned());
        let uri = match own {
            Some(u) => Some(u),
            None if c.ecr_overrides.contains_key(*image) => {
                Some(repository_uri(cfg, region, image))
            }
            None => None,
        };
        if let Some(u) = uri {
            ecr.insert(image.to_string(), u);
        }
    }
    Outputs {
        stack: cfg.name.clone(),
        environment: cfg.environment.clone(),
        region: region.to_string(),
        api_url: c.api_url(),
        project_url_pattern: format!("https://<ref>.{}", c.base_domain),
        admin_url: c.admin_url(),
        dns_records: vec![
            DnsRecord {
                name: format!("*.{}", c.base_domain),
                kind: "CNAME".into(),
                value: public.clone(),
            },
            DnsRecord {
                name: format!("{}.{}", c.admin_subdomain, c.base_domain),
                kind: "CNAME".into(),
                value: admin.clone(),
            },
        ],
        public_load_balancer_dns: public,
        admin_load_balancer_dns: admin,
        platform_db_endpoint: aux("db/platform", "endpoint"),
        worker_db_endpoint: aux("db/worker", "endpoint"),
        redis_endpoint: aux("redis", "endpoint"),
        secrets,
        rest_lambda_role_arn: by("iam/role/rest-lambda").map(|o| o.physical.clone()),
        ecr_repositories: ecr,
        ecs_cluster: by("ecs/cluster").map(|o| o.physical.clone()),
        storage_bucket: by(crate::kinds::storage::ID).map(|o| o.physical.clone()),
    }
}

impl std::fmt::Display for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not deployed)".into());
        writeln!(
            f,
            "stack {} ({}) in {}\n",
            self.stack, self.environment, self.region
        )?;
        writeln!(f, "api url                 {}", self.api_url)?;
        writeln!(f, "project urls            {}", self.project_url_pattern)?;
        writeln!(f, "admin url               {}", self.admin_url)?;
        writeln!(
            f,
            "public load balancer    {}",
            or(&self.public_load_balancer_dns)
        )?;
        writeln!(
            f,
            "admin load balancer     {}",
            or(&self.admin_load_balancer_dns)
        )?;
        writeln!(
            f,
            "platform database       {}",
            or(&self.platform_db_endpoint)
        )?;
        writeln!(
            f,
            "worker database         {}",
            or(&self.worker_db_endpoint)
        )?;
        writeln!(f, "redis                   {}", or(&self.redis_endpoint))?;
        writeln!(f, "ecs cluster             {}", or(&self.ecs_cluster))?;
        writeln!(f, "storage bucket          {}", or(&self.storage_bucket))?;
        writeln!(
            f,
            "rest lambda role        {}",
            or(&self.rest_lambda_role_arn)
        )?;
        writeln!(f, "\nDNS records to create:")?;
        for r in &self.dns_records {
            writeln!(f, "  {:<32} {} {}", r.name, r.kind, or(&r.value))?;
        }
        writeln!(f, "\nsecrets:")?;
        for (k, v) in &self.secrets {
            writeln!(f, "  {k:<22} {v}")?;
        }
        writeln!(f, "\nimage repositories:")?;
        for (k, v) in &self.ecr_repositories {
            writeln!(f, "  {k:<22} {v}")?;
        }
        Ok(())
    }
}
