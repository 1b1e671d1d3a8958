//! Cloud Map: the private DNS namespace the services register in ([`crate::compute::NAMESPACE`]) and one
//! discovery service per ECS service. Creating a namespace is an operation polled to completion.

use std::collections::BTreeMap;

use crate::aws::{absent, err as aws, AwsError, Clients};
use crate::compute::NAMESPACE;
use crate::config::Config;
use crate::family::build::Builder;
use crate::family::ctx::{built, deleted, generate_secret, int, poll_until, Ctx};
use crate::family::found::{owned, s, Sink};
use crate::family::{Created, Family};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::Error;

/// The namespace and a discovery service per ECS service.
pub fn desired(b: &mut Builder<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let prefix = cfg.prefix();
    b.add(
        Kind::ServiceDiscoveryNamespace,
        "sd/namespace",
        NAMESPACE.into(),
        props([("name", Val::str(NAMESPACE))]),
        // Cloud Map does not answer a namespace's VPC (it is on the Route 53 zone): set on create only
        props([
            ("vpc", Val::r("vpc")),
            (
                "description",
                Val::Str(format!("supactl: service discovery of {prefix}")),
            ),
        ]),
    );
    for svc in &c.services {
        b.add(
            Kind::ServiceDiscoveryService,
            &format!("sd/{}", svc.name),
            svc.name.into(),
            props([
                ("name", Val::str(svc.name)),
                ("namespace", Val::r("sd/namespace")),
                ("dns_ttl", Val::Int(10)),
            ]),
            Props::new(),
        );
    }
}

pub struct Discovery;

impl Family for Discovery {
    fn replaces(kind: Kind, field: &str) -> bool {
        match kind {
            Kind::ServiceDiscoveryService => ["name", "namespace"].contains(&field),
            _ => field == "name",
        }
    }

    async fn observe(c: &Clients, cfg: &Config, _: &[Desired]) -> Result<Vec<Observed>, Error> {
        observe_discovery(c, cfg).await
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        match d.kind {
            Kind::ServiceDiscoveryNamespace => create_namespace(x, d).await,
            _ => create_service(x, d).await,
        }
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        o: &Observed,
        fields: &[FieldChange],
    ) -> Result<(), Error> {
        match d.kind {
            // nothing of a namespace changes in place
            Kind::ServiceDiscoveryNamespace => Ok(()),
            _ => update_service(x, d, o, fields).await,
        }
    }

    async fn tag(x: &Ctx<'_>, o: &Observed, tags: &BTreeMap<String, String>) -> Result<(), Error> {
        tag_resource(x, o, tags).await
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::ServiceDiscoveryNamespace => delete_namespace(x, o).await,
            _ => delete_service(x, o).await,
        }
    }
}

async fn observe_discovery(c: &Clients, cfg: &Config) -> Result<Vec<Observed>, Error> {
    use aws_sdk_servicediscovery::types::{
        FilterCondition, NamespaceFilter, NamespaceFilterName, ServiceFilter, ServiceFilterName,
    };
    let mut sink = Sink::new(cfg);
    let namespaces = c
        .discovery
        .list_namespaces()
        .filters(
            NamespaceFilter::builder()
                .name(NamespaceFilterName::Type)
                .values("DNS_PRIVATE")
                .condition(FilterCondition::Eq)
                .build()
                .map_err(|e| Error::Internal(e.to_string()))?,
        )
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(crate::aws::err("servicediscovery:ListNamespaces"))?
        .into_iter()
        .flat_map(|page| page.namespaces.unwrap_or_default())
        .collect::<Vec<_>>();
    let sd_tags = |arn: String| async move {
        c.discovery
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map(|o| {
                o.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect::<BTreeMap<String, String>>()
            })
            .map_err(crate::aws::err("servicediscovery:ListTagsForResource"))
    };
    for ns in namespaces {
        if ns.name() != Some(NAMESPACE) {
            continue;
        }
        let arn = ns.arn().unwrap_or_default().to_string();
        let tags = sd_tags(arn.clone()).await?;
        // other stacks' namespaces of the same name live in their own VPCs: not a conflict
        if !owned(cfg, &tags) {
            continue;
        }
        let ns_id = ns.id().unwrap_or_default().to_string();
        sink.push(
            Kind::ServiceDiscoveryNamespace,
            &ns_id,
            Some(arn.clone()),
            tags,
            props([("name", s(ns.name()))]),
            "available",
            BTreeMap::from([("arn".to_string(), arn)]),
        );
        let services = c
            .discovery
            .list_services()
            .filters(
                ServiceFilter::builder()
                    .name(ServiceFilterName::NamespaceId)
                    .values(&ns_id)
                    .condition(FilterCondition::Eq)
                    .build()
                    .map_err(|e| Error::Internal(e.to_string()))?,
            )
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(crate::aws::err("servicediscovery:ListServices"))?
            .into_iter()
            .flat_map(|page| page.services.unwrap_or_default())
            .collect::<Vec<_>>();
        for sv in services {
            let arn = sv.arn().unwrap_or_default().to_string();
            let tags = sd_tags(arn.clone()).await?;
            let ttl = sv
                .dns_config()
                .and_then(|d| d.dns_records().first())
                .map(|r| r.ttl())
                .unwrap_or(0);
            sink.push(
                Kind::ServiceDiscoveryService,
                sv.id().unwrap_or_default(),
                Some(arn.clone()),
                tags,
                props([
                    ("name", s(sv.name())),
                    ("namespace", Val::Str(ns_id.clone())),
                    ("dns_ttl", Val::Int(ttl)),
                ]),
                "available",
                BTreeMap::from([("arn".to_string(), arn)]),
            );
        }
    }
    Ok(sink.out)
}

async fn create_namespace(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    let r = c
        .discovery
        .create_private_dns_namespace()
        .name(x.prop(d, "name")?)
        .vpc(x.prop(d, "vpc")?)
        .description(x.prop(d, "description")?)
        .creator_request_id(format!("supactl-{}", generate_secret(20)))
        .set_tags(Some(sd_tags(&d.tags)?))
        .send()
        .await
        .map_err(aws("servicediscovery:CreatePrivateDnsNamespace"))?;
    let op = r.operation_id().unwrap_or_default().to_string();
    let id = wait_operation(x, &op, "NAMESPACE").await?;
    let ns = c
        .discovery
        .get_namespace()
        .id(&id)
        .send()
        .await
        .map_err(aws("servicediscovery:GetNamespace"))?;
    let arn = ns
        .namespace()
        .and_then(|n| n.arn())
        .unwrap_or_default()
        .to_string();
    Ok((id, BTreeMap::from([("arn".to_string(), arn)])))
}

async fn delete_namespace(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let call = c.discovery.delete_namespace().id(&o.physical).send();
    let Some(out) = absent("servicediscovery:DeleteNamespace", call, |s| {
        s.is_namespace_not_found()
    })
    .await?
    else {
        return Ok(deleted(&o.physical, false));
    };
    if let Some(op) = out.operation_id() {
        wait_operation(x, op, "NAMESPACE").await?;
    }
    Ok(deleted(&o.physical, true))
}

async fn create_service(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    use aws_sdk_servicediscovery::types::{
        DnsConfig, DnsRecord, HealthCheckCustomConfig, RecordType, RoutingPolicy,
    };
    let r = c
        .discovery
        .create_service()
        .name(x.prop(d, "name")?)
        .namespace_id(x.prop(d, "namespace")?)
        .dns_config(built(
            DnsConfig::builder()
                .routing_policy(RoutingPolicy::Multivalue)
                .dns_records(built(
                    DnsRecord::builder()
                        .r#type(RecordType::A)
                        .ttl(int(d, "dns_ttl"))
                        .build(),
                )?)
                .build(),
        )?)
        .health_check_custom_config(HealthCheckCustomConfig::builder().build())
        .set_tags(Some(sd_tags(&d.tags)?))
        .send()
        .await
        .map_err(aws("servicediscovery:CreateService"))?;
    let s = r.service();
    Ok((
        s.and_then(|s| s.id()).unwrap_or_default().to_string(),
        BTreeMap::from([(
            "arn".to_string(),
            s.and_then(|s| s.arn()).unwrap_or_default().to_string(),
        )]),
    ))
}

async fn update_service(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    if changed("dns_ttl") {
        use aws_sdk_servicediscovery::types::{
            DnsConfigChange, DnsRecord, RecordType, ServiceChange,
        };
        let r = c
            .discovery
            .update_service()
            .id(&o.physical)
            .service(
                ServiceChange::builder()
                    .dns_config(built(
                        DnsConfigChange::builder()
                            .dns_records(built(
                                DnsRecord::builder()
                                    .r#type(RecordType::A)
                                    .ttl(int(d, "dns_ttl"))
                                    .build(),
                            )?)
                            .build(),
                    )?)
                    .build(),
            )
            .send()
            .await
            .map_err(aws("servicediscovery:UpdateService"))?;
        if let Some(op) = r.operation_id() {
            wait_operation(x, op, "SERVICE").await?;
        }
    }
    Ok(())
}

async fn delete_service(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    // ECS deregisters a deleted service's instances shortly after: retry while they are in use
    let id = o.physical.clone();
    let done = std::sync::atomic::AtomicBool::new(false);
    let done_ref = &done;
    poll_until("cloud map service to be deleted", t.network, || {
        let id = id.clone();
        async move {
            match c.discovery.delete_service().id(&id).send().await {
                Ok(_) => Ok(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_service_not_found()) =>
                {
                    done_ref.store(true, std::sync::atomic::Ordering::Relaxed);
                    Ok(true)
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use()) => Ok(false),
                Err(e) => Err(Error::Aws(AwsError::new(
                    "servicediscovery:DeleteService",
                    &e,
                ))),
            }
        }
    })
    .await?;
    let gone_before = done.load(std::sync::atomic::Ordering::Relaxed);
    Ok(deleted(&o.physical, !gone_before))
}

async fn tag_resource(
    x: &Ctx<'_>,
    o: &Observed,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let c = x.c;
    let arn = o.arn_or_physical();
    c.discovery
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(sd_tags(tags)?))
        .send()
        .await
        .map_err(aws("servicediscovery:TagResource"))?;
    Ok(())
}

async fn wait_operation(x: &Ctx<'_>, op: &str, target: &str) -> Result<String, Error> {
    use aws_sdk_servicediscovery::types::{OperationStatus, OperationTargetType};
    let c = x.c;
    let t = x.opts.timeouts.network;
    let found = std::sync::Mutex::new(String::new());
    let found_ref = &found;
    poll_until("cloud map operation to finish", t, || async move {
        let r = c
            .discovery
            .get_operation()
            .operation_id(op)
            .send()
            .await
            .map_err(aws("servicediscovery:GetOperation"))?;
        let Some(o) = r.operation() else {
            return Ok(false);
        };
        match o.status() {
            Some(OperationStatus::Success) => {
                if let Some(id) = o
                    .targets()
                    .and_then(|m| m.get(&OperationTargetType::from(target)))
                {
                    if let Ok(mut f) = found_ref.lock() {
                        *f = id.clone();
                    }
                }
                Ok(true)
            }
            Some(OperationStatus::Fail) => Err(Error::Internal(format!(
                "cloud map operation {op} failed: {}",
                o.error_message().unwrap_or("no message")
            ))),
            _ => Ok(false),
        }
    })
    .await?;
    let id = found.lock().map(|f| f.clone()).unwrap_or_default();
    Ok(id)
}

fn sd_tags(
    tags: &BTreeMap<String, String>,
) -> Result<Vec<aws_sdk_servicediscovery::types::Tag>, Error> {
    tags.iter()
        .map(|(k, v)| {
            built(
                aws_sdk_servicediscovery::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build(),
            )
        })
        .collect()
}
