//! The ECS log group and, in lambda mode, the REST functions' log group (both with the config's retention).
//! Found by name prefix; a name without our tags is a conflict.
//!
//! The REST functions log to the stack's group (the tenant-manager sets their `LoggingConfig`), not to
//! Lambda's default `/aws/lambda/<function>`: Lambda would create that group without retention and nothing
//! would ever delete it, while the stack's group has the config's retention, is the only one the functions'
//! role may write to, and goes with `destroy`.

use std::collections::BTreeMap;

use crate::aws::{absent, err as aws, Clients};
use crate::config::{Config, RestMode};
use crate::family::build::Builder;
use crate::family::ctx::{deleted, int, Ctx};
use crate::family::found::{is_ours, Sink};
use crate::family::{Created, Family};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::Error;

/// The ECS log group.
pub fn log_group_name(cfg: &Config) -> String {
    format!("/ecs/{}", cfg.prefix())
}

/// The log group every REST function writes to (lambda mode).
pub fn rest_log_group_name(cfg: &Config) -> String {
    format!("/aws/lambda/{}-rest", cfg.prefix())
}

/// The log group every ECS service writes to, and the REST functions' in lambda mode.
pub fn desired(b: &mut Builder<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let log_group = log_group_name(cfg);
    b.add(
        Kind::LogGroup,
        "logs/ecs",
        log_group.clone(),
        props([
            ("name", Val::Str(log_group.clone())),
            ("retention_days", Val::Int(i64::from(c.log_retention_days))),
        ]),
        Props::new(),
    );
    if c.rest.mode == RestMode::Lambda {
        let name = rest_log_group_name(cfg);
        b.add(
            Kind::LogGroup,
            "logs/rest",
            name.clone(),
            props([
                ("name", Val::Str(name)),
                ("retention_days", Val::Int(i64::from(c.log_retention_days))),
            ]),
            Props::new(),
        );
    }
}

pub struct Logs;

impl Family for Logs {
    fn replaces(_kind: Kind, field: &str) -> bool {
        field == "name"
    }

    async fn observe(
        c: &Clients,
        cfg: &Config,
        desired: &[Desired],
    ) -> Result<Vec<Observed>, Error> {
        let mut sink = Sink::new(cfg);
        let mut groups = Vec::new();
        // the REST group in either mode, so that one left from lambda mode is found and deleted
        for prefix in [log_group_name(cfg), rest_log_group_name(cfg)] {
            groups.extend(
                c.logs
                    .describe_log_groups()
                    .log_group_name_prefix(&prefix)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .map_err(crate::aws::err("logs:DescribeLogGroups"))?,
            );
        }
        for g in groups {
            let name = g.log_group_name().unwrap_or_default();
            let arn = g
                .arn()
                .unwrap_or_default()
                .trim_end_matches('*')
                .trim_end_matches(':')
                .to_string();
            let tags: BTreeMap<String, String> = c
                .logs
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(crate::aws::err("logs:ListTagsForResource"))?
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            if !is_ours(cfg, desired, Kind::LogGroup, name, &tags)? {
                continue;
            }
            sink.push(
                Kind::LogGroup,
                name,
                Some(arn.clone()),
                tags,
                props([
                    ("name", Val::str(name)),
                    (
                        "retention_days",
                        Val::Int(i64::from(g.retention_in_days().unwrap_or(0))),
                    ),
                ]),
                "available",
                BTreeMap::from([("arn".to_string(), arn)]),
            );
        }
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        let c = x.c;
        let name = x.prop(d, "name")?;
        c.logs
            .create_log_group()
            .log_group_name(&name)
            .set_tags(Some(d.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(aws("logs:CreateLogGroup"))?;
        log_retention(x, &name, int(d, "retention_days")).await?;
        Ok((name, BTreeMap::new()))
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        let changed = changes(fields);
        if changed("retention_days") {
            log_retention(x, &o.physical, int(d, "retention_days")).await?;
        }
        Ok(())
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        let c = x.c;
        let arn = o.arn_or_physical();
        c.logs
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(aws("logs:TagResource"))?;
        Ok(())
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        let c = x.c;
        let r = absent(
            "logs:DeleteLogGroup",
            c.logs.delete_log_group().log_group_name(&o.physical).send(),
            |e| e.is_resource_not_found_exception(),
        )
        .await?;
        Ok(deleted(&o.physical, r.is_some()))
    }
}

async fn log_retention(x: &Ctx<'_>, name: &str, days: i64) -> Result<(), Error> {
    if days > 0 {
        x.c.logs
            .put_retention_policy()
            .log_group_name(name)
            .retention_in_days(days as i32)
            .send()
            .await
            .map_err(aws("logs:PutRetentionPolicy"))?;
    } else {
        x.c.logs
            .delete_retention_policy()
            .log_group_name(name)
            .send()
            .await
            .map_err(aws("logs:DeleteRetentionPolicy"))?;
    }
    Ok(())
}
