//! The commands, as library calls: preflight, plan, deploy, destroy, status. The CLI only parses arguments,
//! prints and asks for confirmation.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::apply::{Applier, ApplyOptions, Progress};
use crate::aws::{AwsError, AwsOptions, Clients};
use crate::config::{Config, Issue};
use crate::desired::{desired, Inputs};
use crate::model::{Desired, Observed};
use crate::observe::observe;
use crate::plan::{diff, Action, Change, Plan};
use crate::Error;

/// A validated config connected to an AWS account.
pub struct Session {
    pub config: Config,
    pub clients: Clients,
    pub region: String,
    /// The image tag resolved to digests at plan time (`--image-tag`, default `latest`).
    pub image_tag: String,
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
    /// Live counts of an ECS service (`running 2/2`, with pending and the rollout when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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
            image_tag: "latest".into(),
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

    /// The compute tier's checks against the account (AWS enforces them, the emulator does not): the listener
    /// certificate exists, is ISSUED and covers the hosts, and every image tag resolves to a digest in ECR.
    /// Returns the image references by digest.
    pub async fn compute_preflight(&self) -> Result<BTreeMap<String, String>, Error> {
        let (cert, images) = tokio::join!(
            crate::compute::images::check_certificate(&self.clients, &self.config),
            crate::compute::images::resolve(
                &self.clients,
                &self.config,
                &self.region,
                &self.image_tag
            )
        );
        let mut issues = cert?;
        let images = match images {
            Ok(m) => m,
            Err(more) => {
                issues.extend(more);
                BTreeMap::new()
            }
        };
        if issues.is_empty() {
            Ok(images)
        } else {
            Err(Error::Preflight(issues))
        }
    }

    /// Preflight, desired state, observation and diff.
    pub async fn plan(&self) -> Result<Planned, Error> {
        let azs = self.preflight().await?;
        let images = self.compute_preflight().await?;
        let desired = desired(
            &self.config,
            &Inputs {
                azs: &azs,
                region: &self.region,
                images: &images,
            },
        );
        let issues = crate::compute::rules::check_desired(&desired);
        if !issues.is_empty() {
            return Err(Error::Preflight(issues));
        }
        let observed = observe(&self.clients, &self.config, &desired).await?;
        Ok(self.planned(desired, observed))
    }

    /// The diff of `observed` against `desired`, with both kept for apply.
    fn planned(&self, desired: Vec<Desired>, observed: Vec<Observed>) -> Planned {
        let plan = diff(
            &self.config.name,
            &self.config.environment,
            &self.region,
            &desired,
            &observed,
        );
        Planned {
            plan,
            desired,
            observed,
        }
    }

    /// A plan restricted to some kinds (nothing else is created, changed or deleted), without the image and
    /// certificate checks: what `supactl push --env` uses to create the ECR repositories it pushes to.
    pub async fn plan_kinds(&self, kinds: &[crate::model::Kind]) -> Result<Planned, Error> {
        let azs = self.preflight().await?;
        let all = desired(
            &self.config,
            &Inputs {
                azs: &azs,
                region: &self.region,
                images: &BTreeMap::new(),
            },
        );
        let observed = observe(&self.clients, &self.config, &all).await?;
        let desired: Vec<Desired> = all
            .into_iter()
            .filter(|d| kinds.contains(&d.kind))
            .collect();
        let observed: Vec<Observed> = observed
            .into_iter()
            .filter(|o| kinds.contains(&o.kind))
            .collect();
        Ok(self.planned(desired, observed))
    }

    /// Creates the missing ECR repositories, nothing else (before the first push; see [`Session::plan_kinds`]).
    pub async fn ensure_repositories(
        &self,
        progress: &dyn Progress,
        opts: ApplyOptions,
    ) -> Result<Plan, Error> {
        let mut p = self
            .plan_kinds(&[crate::model::Kind::EcrRepository])
            .await?;
        // only the missing ones: changes to existing repositories are `deploy`'s, shown and confirmed there
        p.plan.changes.retain(|c| c.action == Action::Create);
        self.apply(&p, progress, opts).await?;
        Ok(p.plan)
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
        if p.plan.pending().any(|c| c.action != Action::Delete) {
            // a fresh account: the service-linked roles the first writes act through
            crate::kinds::account::ensure_service_linked_roles(&self.clients).await?;
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

    /// Every owned resource the stack created (read-only; no image or certificate checks). Secrets scheduled
    /// for deletion are left out: for outputs and destroy they are gone (only a deploy restores them).
    async fn observe_owned(&self) -> Result<Vec<Observed>, Error> {
        // desired names are needed to find the resources looked up by name
        let azs = self.availability_zones().await?;
        let desired = desired(
            &self.config,
            &Inputs {
                azs: &azs,
                region: &self.region,
                images: &BTreeMap::new(),
            },
        );
        let mut observed = observe(&self.clients, &self.config, &desired).await?;
        observed.retain(|o| !crate::kinds::secrets::scheduled_for_deletion(o));
        Ok(observed)
    }

    /// The destroy plan: every owned resource in reverse dependency order, with the REST functions the
    /// tenant-manager created (carrying the stack's tags) and the wait for Lambda to release their network
    /// interfaces.
    pub async fn destroy_plan(&self) -> Result<Planned, Error> {
        let mut observed = self.observe_owned().await?;
        let lambda =
            crate::kinds::lambda::observe_for_destroy(&self.clients, &self.config, &observed)
                .await?;
        observed.extend(lambda);
        Ok(self.planned(Vec::new(), observed))
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

    /// Every desired or owned resource with its live state, then the REST functions the tenant-manager
    /// created (kind `lambda-function`; those carrying this stack's tags, read with `ListTags`).
    pub async fn status(&self) -> Result<Vec<StatusRow>, Error> {
        let p = self.plan().await?;
        let mut rows = status_rows(&p);
        for f in crate::kinds::lambda::rest_functions(&self.clients, &self.config).await? {
            rows.push(StatusRow {
                id: format!("function/{}", f.name),
                kind: "lambda-function".into(),
                name: f.name.clone(),
                physical: Some(f.name),
                state: f.state,
                action: Action::NoOp,
                endpoint: None,
                detail: f.image,
            });
        }
        Ok(rows)
    }

    /// What the deployed stack gives its operator (read-only; needs no image or certificate checks).
    pub async fn outputs(&self) -> Result<crate::compute::outputs::Outputs, Error> {
        let observed = self.observe_owned().await?;
        Ok(crate::compute::outputs::outputs(
            &self.config,
            &self.region,
            &observed,
        ))
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
                detail: o
                    .filter(|o| o.kind == crate::model::Kind::EcsService)
                    .map(|o| {
                        let a = |k: &str| o.aux.get(k).cloned().unwrap_or_else(|| "?".into());
                        let mut d = format!(
                            "running {}/{}, pending {}",
                            a("running"),
                            a("desired"),
                            a("pending")
                        );
                        if let Some(r) = o.aux.get("rollout") {
                            d.push_str(&format!(", rollout {}", r.to_ascii_lowercase()));
                        }
                        d
                    }),
            }
        })
        .collect()
}
