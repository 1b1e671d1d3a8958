//! The commands, as library calls: preflight, plan, deploy, destroy, status. The CLI only parses arguments,
//! prints and asks for confirmation.

use serde::Serialize;

use crate::apply::{Applier, ApplyOptions, Progress};
use crate::aws::{AwsError, AwsOptions, Clients};
use crate::config::{Config, Issue};
use crate::desired::desired;
use crate::model::{Desired, Observed};
use crate::observe::observe;
use crate::plan::{diff, Action, Change, Plan};
use crate::Error;

/// A validated config connected to an AWS account.
pub struct Session {
    pub config: Config,
    pub clients: Clients,
    pub region: String,
}

/// One resource's live state.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub physical: Option<String>,
    /// Live state, `missing` when it does not exist, or `orphan` for an owned resource the config no longer has.
    pub state: String,
    /// Pending change, if any.
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl Session {
    /// Builds the SDK clients for the config's region (or `--region`).
    pub async fn connect(config: Config, aws: &AwsOptions) -> Result<Session, Error> {
        let region = aws
            .region
            .clone()
            .or_else(|| config.region.clone())
            .ok_or(Error::NoRegion)?;
        let clients = Clients::new(aws, &region).await;
        Ok(Session {
            config,
            clients,
            region,
        })
    }

    /// The region's availability zones, sorted by name.
    pub async fn availability_zones(&self) -> Result<Vec<String>, Error> {
        let r = self
            .clients
            .ec2
            .describe_availability_zones()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("zone-type")
                    .values("availability-zone")
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::new("ec2:DescribeAvailabilityZones", &e))?;
        let mut azs: Vec<String> = r
            .availability_zones()
            .iter()
            .filter(|z| z.state().map(|s| s.as_str()) == Some("available"))
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        azs.sort();
        Ok(azs)
    }

    /// Checks what AWS enforces but the config file cannot show: the credentials' account and the region's AZs.
    /// Returns the AZs to use.
    pub async fn preflight(&self) -> Result<Vec<String>, Error> {
        let (who, azs) = tokio::join!(
            self.clients.sts.get_caller_identity().send(),
            self.availability_zones()
        );
        let who = who.map_err(|e| AwsError::new("sts:GetCallerIdentity", &e))?;
        let azs = azs?;
        let mut issues = Vec::new();
        let account = who.account().unwrap_or_default();
        if account != self.config.account_id {
            issues.push(Issue {
                path: "project.accountId".into(),
                message: format!(
                    "the credentials belong to account {account}, the config names {}",
                    self.config.account_id
                ),
                fix: "use credentials (--profile) of the config's account, or correct accountId"
                    .into(),
            });
        }
        if self.config.vpc.max_azs > azs.len() {
            issues.push(Issue {
                path: "infraStack.vpc.maxAzs".into(),
                message: format!(
                    "region {} has {} availability zones, maxAzs is {}",
                    self.region,
                    azs.len(),
                    self.config.vpc.max_azs
                ),
                fix: format!("set maxAzs to at most {}", azs.len()),
            });
        }
        if issues.is_empty() {
            Ok(azs)
        } else {
            Err(Error::Preflight(issues))
        }
    }

    /// Preflight, desired state, observation and diff.
    pub async fn plan(&self) -> Result<Planned, Error> {
        let azs = self.preflight().await?;
        let desired = desired(&self.config, &azs);
        let observed = observe(&self.clients, &self.config, &desired).await?;
        let plan = diff(
            &self.config.name,
            &self.config.environment,
            &self.region,
            &desired,
            &observed,
        );
        Ok(Planned {
            plan,
            desired,
            observed,
        })
    }

    /// Recomputes the plan, refuses if it differs from `approved` (when given), then applies it.
    pub async fn deploy(
        &self,
        approved: Option<&Plan>,
        progress: &dyn Progress,
        opts: ApplyOptions,
    ) -> Result<Plan, Error> {
        let p = self.plan().await?;
        if let Some(a) = approved {
            if a != &p.plan {
                return Err(Error::PlanChanged);
            }
        }
        self.apply(&p, progress, opts).await?;
        Ok(p.plan)
    }

    /// Applies a freshly computed plan.
    pub async fn apply(
        &self,
        p: &Planned,
        progress: &dyn Progress,
        opts: ApplyOptions,
    ) -> Result<(), Error> {
        let mut applier = Applier::new(&self.clients, &self.config, &p.desired, &p.observed, opts);
        applier.run(&p.plan, progress).await
    }

    /// The destroy plan: every owned resource, in reverse dependency order.
    pub async fn destroy_plan(&self) -> Result<Planned, Error> {
        // desired names are needed to find the resources looked up by name
        let azs = self.availability_zones().await?;
        let desired = desired(&self.config, &azs);
        let observed = observe(&self.clients, &self.config, &desired).await?;
        let plan = diff(
            &self.config.name,
            &self.config.environment,
            &self.region,
            &[],
            &observed,
        );
        Ok(Planned {
            plan,
            desired: Vec::new(),
            observed,
        })
    }

    /// Resources with deletion protection on.
    pub fn protected(p: &Planned) -> Vec<String> {
        p.observed
            .iter()
            .filter(|o| {
                o.props
                    .get("deletion_protection")
                    .and_then(crate::model::Val::as_bool)
                    == Some(true)
            })
            .map(|o| o.physical.clone())
            .collect()
    }

    /// Deletes every owned resource in reverse order. Refuses while deletion protection is on unless
    /// `opts.force`; resources already gone are fine.
    pub async fn destroy(
        &self,
        approved: Option<&Plan>,
        progress: &dyn Progress,
        opts: ApplyOptions,
    ) -> Result<Plan, Error> {
        let p = self.destroy_plan().await?;
        if let Some(a) = approved {
            if a != &p.plan {
                return Err(Error::PlanChanged);
            }
        }
        let protected = Self::protected(&p);
        if !protected.is_empty() && !opts.force {
            return Err(Error::DeletionProtected { names: protected });
        }
        self.apply(&p, progress, opts).await?;
        Ok(p.plan)
    }

    /// Every desired or owned resource with its live state.
    pub async fn status(&self) -> Result<Vec<StatusRow>, Error> {
        let p = self.plan().await?;
        Ok(status_rows(&p))
    }
}

/// A plan with the desired and observed state it came from.
pub struct Planned {
    pub plan: Plan,
    pub desired: Vec<Desired>,
    pub observed: Vec<Observed>,
}

fn status_rows(p: &Planned) -> Vec<StatusRow> {
    p.plan
        .changes
        .iter()
        .map(|c: &Change| {
            let o = p
                .observed
                .iter()
                .find(|o| Some(&o.physical) == c.physical.as_ref() && o.id == c.id);
            StatusRow {
                id: c.id.to_string(),
                kind: c.kind.to_string(),
                name: c.name.clone(),
                physical: c.physical.clone(),
                state: match (o, c.action) {
                    (None, _) => "missing".into(),
                    (Some(_), Action::Delete) => "orphan".into(),
                    (Some(o), _) => o.state.clone(),
                },
                action: c.action,
                endpoint: o.and_then(|o| o.aux.get("endpoint").cloned()),
            }
        })
        .collect()
}
