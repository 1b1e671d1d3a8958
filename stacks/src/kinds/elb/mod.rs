//! Elastic Load Balancing: target groups ([`targets`]), the two application load balancers ([`balancers`]),
//! their listeners and rules ([`listeners`]). Everything is found by listing and kept when it carries our tags;
//! a load balancer or target group under one of our names without them is a conflict.

pub mod balancers;
pub mod listeners;
mod tags;
pub mod targets;

use std::collections::BTreeMap;

pub use tags::elb_name;

use crate::aws::{err as aws, Clients};
use crate::config::Config;
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::Ctx;
use crate::family::found::Sink;
use crate::family::{not_ours, Created, Family};
use crate::model::{Desired, FieldChange, Kind, Observed};
use crate::Error;

/// Target groups, load balancers, listeners and rules, in dependency order.
pub fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    targets::desired(b);
    balancers::desired(b, inputs);
    listeners::desired(b);
}

pub struct Elb;

impl Family for Elb {
    fn replaces(kind: Kind, field: &str) -> bool {
        let fields: &[&str] = match kind {
            Kind::TargetGroup => &["name", "protocol", "port", "vpc", "target_type"],
            Kind::LoadBalancer => &["name", "scheme", "type"],
            Kind::Listener => &["load_balancer"],
            Kind::ListenerRule => &["listener"],
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
        let lbs = c
            .elb
            .describe_load_balancers()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws("elasticloadbalancing:DescribeLoadBalancers"))?;
        let tgs = c
            .elb
            .describe_target_groups()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws("elasticloadbalancing:DescribeTargetGroups"))?;
        let arns: Vec<String> = lbs
            .iter()
            .filter_map(|l| l.load_balancer_arn().map(str::to_string))
            .chain(
                tgs.iter()
                    .filter_map(|t| t.target_group_arn().map(str::to_string)),
            )
            .collect();
        let tags = tags::observed_tags(c, &arns).await?;
        for tg in &tgs {
            targets::observe(c, cfg, desired, tg, &tags, &mut sink).await?;
        }
        let mut found = Vec::new();
        for lb in &lbs {
            found.extend(balancers::observe(c, cfg, desired, lb, &tags, &mut sink).await?);
        }
        listeners::observe(c, &found, &mut sink).await?;
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        match d.kind {
            Kind::TargetGroup => targets::create_target_group(x, d).await,
            Kind::LoadBalancer => balancers::create_load_balancer(x, d).await,
            Kind::Listener => listeners::create_listener(x, d).await,
            Kind::ListenerRule => listeners::create_listener_rule(x, d).await,
            other => Err(not_ours(other, "a load balancing")),
        }
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        match d.kind {
            Kind::TargetGroup => targets::update_target_group(x, d, o, fields).await,
            Kind::LoadBalancer => balancers::update_load_balancer(x, d, o, fields).await,
            Kind::Listener => listeners::update_listener(x, d, o, fields).await,
            Kind::ListenerRule => listeners::update_listener_rule(x, d, o, fields).await,
            other => Err(not_ours(other, "a load balancing")),
        }
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        x.c.elb
            .add_tags()
            .resource_arns(o.arn_or_physical())
            .set_tags(Some(tags::elb_tags(tags)))
            .send()
            .await
            .map_err(aws("elasticloadbalancing:AddTags"))?;
        Ok(())
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::TargetGroup => targets::delete_target_group(x, o).await,
            Kind::LoadBalancer => balancers::delete_load_balancer(x, o).await,
            Kind::Listener => listeners::delete_listener(x, o).await,
            Kind::ListenerRule => listeners::delete_listener_rule(x, o).await,
            other => Err(not_ours(other, "a load balancing")),
        }
    }
}
